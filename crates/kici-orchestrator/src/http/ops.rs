//! Operations endpoints: the diagnose checks and host facts (both from [`crate::diagnose`]),
//! the effective configuration with its secrets masked, the instance's health as a one-node
//! cluster, and reloading the scaler configuration.

use axum::Json;
use axum::extract::State;
use kici_engine::api::ops::{DiagnoseReport, Reloaded, ScalerChanges};
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use crate::diagnose;
use crate::state::Shared;

pub async fn diagnose(State(state): State<Shared>) -> ApiResult<Json<DiagnoseReport>> {
    Ok(Json(diagnose::report(&state).await))
}

pub async fn system_info(State(state): State<Shared>) -> ApiResult<Json<Value>> {
    let host = diagnose::host_facts().await;
    Ok(Json(json!({
        "platform": std::env::consts::OS,
        "release": host.release,
        "arch": std::env::consts::ARCH,
        "hostname": host.hostname,
        "cpuCount": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "totalMemory": host.total_memory,
        "freeMemory": host.free_memory,
        "uptime": host.uptime,
        "orchestratorVersion": env!("CARGO_PKG_VERSION"),
        "buildInfo": kici_sdk::build_info(),
        "dataDir": state.config.data_dir.display().to_string(),
        "database": match state.store.backend() { kici_store::Backend::Sqlite => "sqlite", kici_store::Backend::Postgres => "postgres" },
    })))
}

pub async fn config(State(state): State<Shared>) -> ApiResult<Json<Value>> {
    let c = &state.config;
    Ok(Json(json!({
        "mode": "independent",
        "port": c.port,
        "bindAddress": c.bind_address.to_string(),
        "dataDir": c.data_dir.display().to_string(),
        "database": { "url": kici_store::redact_url(&c.database_url) },
        "agentAuth": match c.agent_auth { crate::config::AgentAuth::Token => "token", crate::config::AgentAuth::None => "none" },
        "queue": {
            "timeoutMs": c.queue_timeout.map(|t| t.as_millis() as u64),
            "maxDepth": c.queue_max_depth,
            "sweepIntervalMs": c.queue_sweep_interval.as_millis() as u64,
        },
        "dispatchAckTimeoutMs": c.dispatch_ack_timeout.as_millis() as u64,
        "jobHeartbeatIntervalMs": c.job_heartbeat_interval.as_millis() as u64,
        "staleDetectorScanIntervalMs": c.stale_scan_interval.as_millis() as u64,
        "staleDetectorThresholdMultiplier": c.stale_threshold_multiplier,
        "agentMaxReconnectDelayMs": c.agent_max_reconnect_delay.as_millis() as u64,
        "bootstrapAdminToken": c.bootstrap_admin_token.as_ref().map(|_| "****"),
        "metricsToken": c.metrics_token.as_ref().map(|_| "****"),
        "secretKey": {
            "keyId": c.secret_keys.current_id(),
            "oldKeyId": c.secret_keys.old_id(),
            "from": match c.secret_keys.origin() {
                crate::secret_key::KeyOrigin::Env => "KICI_SECRET_KEY",
                crate::secret_key::KeyOrigin::File(_) => "KICI_SECRET_KEY_FILE",
                crate::secret_key::KeyOrigin::DataDir(_) | crate::secret_key::KeyOrigin::Generated(_) => "dataDir",
            },
        },
        "logLevel": c.log_level,
        "logDir": c.log_dir.as_ref().map(|d| d.display().to_string()),
        "tlsCertPath": c.tls_cert_path.as_ref().map(|p| p.display().to_string()),
    })))
}

pub async fn cluster_health(State(state): State<Shared>) -> ApiResult<Json<Value>> {
    let agents: Vec<String> = state.hub.all().into_iter().map(|a| a.agent_id).collect();
    let active = state.store.active_run_ids().await?.len();
    let hostname = diagnose::host_facts().await.hostname;
    Ok(Json(json!({
        "status": "ok",
        "instanceId": format!("{}:{}", hostname.unwrap_or_default(), state.config.port),
        "role": "standalone",
        "agentCount": agents.len(),
        "connectedAgents": agents,
        "activeRuns": active,
    })))
}

/// `POST /api/v1/admin/config/reload`: reads the scaler configuration again. 200 with what
/// changed; 400 `invalid_config` (the running configuration stays); 409 `reload_in_progress`.
pub async fn reload_config(State(state): State<Shared>) -> ApiResult<Json<Reloaded>> {
    match crate::reload::reload(&state, "api").await {
        Ok(diff) => Ok(Json(Reloaded {
            status: "reloaded".to_string(),
            global_max_agents: state.scaler.config().global_max_agents,
            scalers: ScalerChanges {
                added: diff.added,
                removed: diff.removed,
                changed: diff.changed,
                type_changed: diff.type_changed,
            },
        })),
        Err(err @ crate::reload::ReloadError::Busy) => Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "reload_in_progress",
            err.to_string(),
        )),
        Err(err @ crate::reload::ReloadError::Invalid(_)) => {
            Err(ApiError::bad_request("invalid_config", err.to_string()))
        }
    }
}
