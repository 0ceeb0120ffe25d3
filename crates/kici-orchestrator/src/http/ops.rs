//! Operations endpoints: the diagnose checks, system facts, the effective configuration with
//! its secrets masked, and the instance's health as a one-node cluster.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use crate::scaler::health::RowStatus;
use crate::state::Shared;
use kici_telemetry::os::now_ms;

/// How long one diagnose check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

const GB: u64 = 1024 * 1024 * 1024;
const MB: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub name: String,
    pub status: CheckStatus,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    pub duration_ms: u64,
}

async fn timed(name: &str, check: impl std::future::Future<Output = (CheckStatus, String, Option<Value>)>) -> Check {
    let started = Instant::now();
    let (status, message, details) = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(result) => result,
        Err(_) => (
            CheckStatus::Fail,
            format!("Check timeout after {}ms", CHECK_TIMEOUT.as_millis()),
            None,
        ),
    };
    Check {
        name: name.to_string(),
        status,
        message,
        details,
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

/// Every check, in the documented order.
pub async fn run_checks(state: &Shared) -> Vec<Check> {
    let mut checks = vec![
        timed("Database connectivity", async {
            let started = Instant::now();
            match state.store.ping().await {
                Ok(()) => (
                    CheckStatus::Pass,
                    format!("Connected ({}ms latency)", started.elapsed().as_millis()),
                    None,
                ),
                Err(err) => (CheckStatus::Fail, format!("Database unreachable: {err}"), None),
            }
        })
        .await,
        timed("Agent connectivity", async {
            let agents = state.hub.all();
            if agents.is_empty() {
                (CheckStatus::Warn, "No agents connected".to_string(), None)
            } else {
                let ids: Vec<&str> = agents.iter().map(|a| a.agent_id.as_str()).collect();
                (
                    CheckStatus::Pass,
                    format!("{} agent(s) connected", agents.len()),
                    Some(json!({ "agents": ids })),
                )
            }
        })
        .await,
        timed("Disk space", async { disk_space(&state.config.data_dir) }).await,
        timed("Config validity", async {
            (CheckStatus::Pass, "Config valid (mode: independent)".to_string(), None)
        })
        .await,
    ];
    if let Some(path) = &state.config.tls_cert_path {
        checks.push(timed("TLS certificate", certificate(path)).await);
    }
    checks.extend(scaler_checks(state).await);
    checks
}

/// `scaler:<name>`: recent spawn failures, then what the host must provide for the backend
/// (a failing host check makes a passing row fail, naming what is missing).
async fn scaler_checks(state: &Shared) -> Vec<Check> {
    let config = state.scaler.config();
    let mut checks = Vec::new();
    for row in state.scaler.health_rows(now_ms()) {
        let started = Instant::now();
        let check = {
            let mut status = match row.status {
                RowStatus::Pass => CheckStatus::Pass,
                RowStatus::Warn => CheckStatus::Warn,
                RowStatus::Fail => CheckStatus::Fail,
            };
            let mut message = row.message;
            let host_problems = match row.name.strip_prefix("scaler:").and_then(|name| config.scaler(name)) {
                Some(scaler) => tokio::time::timeout(CHECK_TIMEOUT, crate::scaler::backend::host_problems(scaler))
                    .await
                    .unwrap_or_else(|_| {
                        vec![format!(
                            "host checks did not finish within {}s",
                            CHECK_TIMEOUT.as_secs()
                        )]
                    }),
                None => Vec::new(),
            };
            if !host_problems.is_empty() {
                status = CheckStatus::Fail;
                message = format!("{message}; host: {}", host_problems.join("; "));
            }
            Check {
                name: row.name,
                status,
                message,
                details: row.details,
                duration_ms: started.elapsed().as_millis() as u64,
            }
        };
        checks.push(check);
    }
    checks
}

fn disk_space(path: &Path) -> (CheckStatus, String, Option<Value>) {
    let Some(free) = free_bytes(path) else {
        return (
            CheckStatus::Warn,
            format!("Cannot read free space of {}", path.display()),
            None,
        );
    };
    let details = Some(json!({ "path": path.display().to_string(), "freeBytes": free }));
    let human = if free >= GB {
        format!("{:.1} GB", free as f64 / GB as f64)
    } else {
        format!("{} MB", free / MB)
    };
    if free < 100 * MB {
        (
            CheckStatus::Fail,
            format!("Critically low disk space: {human} free on {}", path.display()),
            details,
        )
    } else if free < GB {
        (
            CheckStatus::Warn,
            format!("Low disk space: {human} free on {}", path.display()),
            details,
        )
    } else {
        (
            CheckStatus::Pass,
            format!("{human} free on {}", path.display()),
            details,
        )
    }
}

fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the struct we own; the path is a valid C string.
    #[allow(unsafe_code)]
    let stats = unsafe {
        let mut stats: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(c_path.as_ptr(), &mut stats) == 0).then_some(stats)
    }?;
    Some(stats.f_bavail as u64 * stats.f_frsize as u64)
}

/// Expiry through `openssl x509 -enddate`, which every host with certificates has.
async fn certificate(path: &Path) -> (CheckStatus, String, Option<Value>) {
    let output = tokio::process::Command::new("openssl")
        .args(["x509", "-noout", "-enddate", "-checkend", "0", "-in"])
        .arg(path)
        .output()
        .await;
    let output = match output {
        Ok(output) => output,
        Err(err) => {
            return (
                CheckStatus::Fail,
                format!("Cannot check {}: openssl is not available ({err})", path.display()),
                None,
            );
        }
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let Some(end) = text
        .lines()
        .find_map(|l| l.strip_prefix("notAfter="))
        .map(str::to_string)
    else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return (
            CheckStatus::Fail,
            format!("Cannot read certificate {}: {}", path.display(), stderr.trim()),
            None,
        );
    };
    if !output.status.success() {
        return (
            CheckStatus::Fail,
            format!("Certificate {} expired on {end}", path.display()),
            None,
        );
    }
    let soon = tokio::process::Command::new("openssl")
        .args(["x509", "-noout", "-checkend", &(30 * 24 * 3600).to_string(), "-in"])
        .arg(path)
        .status()
        .await
        .map(|s| s.success())
        .unwrap_or(true);
    if soon {
        (CheckStatus::Pass, format!("Certificate valid until {end}"), None)
    } else {
        (
            CheckStatus::Warn,
            format!("Certificate {} expires within 30 days ({end})", path.display()),
            None,
        )
    }
}

pub async fn diagnose(State(state): State<Shared>) -> ApiResult<Json<Value>> {
    Ok(Json(diagnose_report(&state).await))
}

/// `{status: healthy|degraded|unhealthy, timestamp, checks}`: every check, and the worst.
pub async fn diagnose_report(state: &Shared) -> Value {
    let checks = run_checks(state).await;
    let status = if checks.iter().any(|c| c.status == CheckStatus::Fail) {
        "unhealthy"
    } else if checks.iter().any(|c| c.status == CheckStatus::Warn) {
        "degraded"
    } else {
        "healthy"
    };
    json!({ "status": status, "timestamp": now_ms(), "checks": checks })
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|t| t.trim().to_string())
}

fn meminfo(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = text
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

pub async fn system_info(State(state): State<Shared>) -> ApiResult<Json<Value>> {
    let uptime =
        read_trimmed("/proc/uptime").and_then(|t| t.split_whitespace().next().and_then(|s| s.parse::<f64>().ok()));
    Ok(Json(json!({
        "platform": std::env::consts::OS,
        "release": read_trimmed("/proc/sys/kernel/osrelease"),
        "arch": std::env::consts::ARCH,
        "hostname": read_trimmed("/proc/sys/kernel/hostname"),
        "cpuCount": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "totalMemory": meminfo("MemTotal:"),
        "freeMemory": meminfo("MemAvailable:"),
        "uptime": uptime,
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
    Ok(Json(json!({
        "status": "ok",
        "instanceId": format!("{}:{}", read_trimmed("/proc/sys/kernel/hostname").unwrap_or_default(), state.config.port),
        "role": "standalone",
        "agentCount": agents.len(),
        "connectedAgents": agents,
        "activeRuns": active,
    })))
}

/// `POST /api/v1/admin/config/reload`: reads the scaler configuration again. 200 with what
/// changed; 400 `invalid_config` (the running configuration stays); 409 `reload_in_progress`.
pub async fn reload_config(State(state): State<Shared>) -> ApiResult<Json<Value>> {
    match crate::reload::reload(&state, "api").await {
        Ok(diff) => Ok(Json(json!({
            "status": "reloaded",
            "globalMaxAgents": state.scaler.config().global_max_agents,
            "scalers": {
                "added": diff.added,
                "removed": diff.removed,
                "changed": diff.changed,
                "typeChanged": diff.type_changed,
            },
        }))),
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
