//! Operations endpoints: the diagnose checks and host facts (both from [`crate::diagnose`]),
//! the effective configuration with its secrets masked, the instance's health as a one-node
//! cluster, and reloading the scaler configuration.

use axum::Json;
use axum::extract::State;
use kici_engine::api::ops::{
    ClusterHealth, DatabaseConfig, DiagnoseReport, EffectiveConfig, QueueConfig, Reloaded, ScalerChanges,
    SecretKeyConfig, SystemInfo,
};

use super::error::{ApiError, ApiResult};
use crate::diagnose;
use crate::state::Shared;

pub async fn diagnose(State(state): State<Shared>) -> ApiResult<Json<DiagnoseReport>> {
    Ok(Json(diagnose::report(&state).await))
}

pub async fn system_info(State(state): State<Shared>) -> ApiResult<Json<SystemInfo>> {
    let host = diagnose::host_facts().await;
    Ok(Json(SystemInfo {
        platform: std::env::consts::OS.to_string(),
        release: host.release,
        arch: std::env::consts::ARCH.to_string(),
        hostname: host.hostname,
        cpu_count: std::thread::available_parallelism().map_or(1, |n| n.get()),
        total_memory: host.total_memory,
        free_memory: host.free_memory,
        uptime: host.uptime,
        orchestrator_version: env!("CARGO_PKG_VERSION").to_string(),
        build_info: kici_sdk::build_info(),
        data_dir: state.config.data_dir.display().to_string(),
        database: match state.store.backend() {
            kici_store::Backend::Sqlite => "sqlite",
            kici_store::Backend::Postgres => "postgres",
        }
        .to_string(),
    }))
}

pub async fn config(State(state): State<Shared>) -> ApiResult<Json<EffectiveConfig>> {
    use crate::config::AgentAuth;
    use crate::secret_key::KeyOrigin;
    let c = &state.config;
    let millis = |duration: std::time::Duration| duration.as_millis() as u64;
    let masked = |secret: Option<&String>| secret.map(|_| "****".to_string());
    Ok(Json(EffectiveConfig {
        mode: "independent".to_string(),
        port: c.port,
        bind_address: c.bind_address.to_string(),
        data_dir: c.data_dir.display().to_string(),
        database: DatabaseConfig {
            url: kici_store::redact_url(&c.database_url),
        },
        agent_auth: match c.agent_auth {
            AgentAuth::Token => "token",
            AgentAuth::None => "none",
        }
        .to_string(),
        queue: QueueConfig {
            timeout_ms: c.queue_timeout.map(millis),
            max_depth: c.queue_max_depth,
            sweep_interval_ms: millis(c.queue_sweep_interval),
        },
        dispatch_ack_timeout_ms: millis(c.dispatch_ack_timeout),
        job_heartbeat_interval_ms: millis(c.job_heartbeat_interval),
        stale_detector_scan_interval_ms: millis(c.stale_scan_interval),
        stale_detector_threshold_multiplier: c.stale_threshold_multiplier,
        agent_max_reconnect_delay_ms: millis(c.agent_max_reconnect_delay),
        bootstrap_admin_token: masked(c.bootstrap_admin_token.as_ref()),
        metrics_token: masked(c.metrics_token.as_ref()),
        secret_key: SecretKeyConfig {
            key_id: c.secret_keys.current_id().to_string(),
            old_key_id: c.secret_keys.old_id().map(str::to_string),
            from: match c.secret_keys.origin() {
                KeyOrigin::Env => "KICI_SECRET_KEY",
                KeyOrigin::File(_) => "KICI_SECRET_KEY_FILE",
                KeyOrigin::DataDir(_) | KeyOrigin::Generated(_) => "dataDir",
            }
            .to_string(),
        },
        log_level: c.log_level.clone(),
        log_dir: c.log_dir.as_ref().map(|d| d.display().to_string()),
        tls_cert_path: c.tls_cert_path.as_ref().map(|p| p.display().to_string()),
    }))
}

/// `GET /api/v1/admin/cluster/health`: this instance (its role, agents and the active runs) and
/// every orchestrator sharing the database (`cluster`).
pub async fn cluster_health(State(state): State<Shared>) -> ApiResult<Json<ClusterHealth>> {
    let agents: Vec<String> = state.hub.all().into_iter().map(|a| a.agent_id.into_string()).collect();
    let active = state.store.active_run_ids().await?.len();
    let instances = crate::cluster::instances(&state).await?;
    Ok(Json(ClusterHealth {
        status: "ok".to_string(),
        instance_id: state.instance_id.clone(),
        role: if state.leads() { "leader" } else { "follower" }.to_string(),
        agent_count: agents.len(),
        connected_agents: agents,
        active_runs: active,
        leader: instances
            .iter()
            .find(|i| i.role == "leader")
            .map(|i| i.instance_id.clone()),
        instances,
    }))
}

/// `GET /api/v1/admin/scalers`: the global cap, the agents alive and each scaler's type, limit,
/// agents and health, as the dashboard's scalers page shows them.
pub async fn scalers(State(state): State<Shared>) -> Json<serde_json::Value> {
    Json(state.scaler.overview(crate::clock::now_ms()))
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
