//! The operations API's shapes (`/api/v1/admin/{diagnose,system-info,config,config/reload,
//! cluster/health}`, and the Platform's `dashboard.fleet` and `dashboard.diagnostics` answers),
//! built by the orchestrator and read by `kici-admin` and the dashboard.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::admin::AgentView;
use crate::build_info::BuildInfo;

/// `GET /api/v1/admin/diagnose`: every check, and the worst of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiagnoseReport {
    pub status: OverallStatus,
    pub timestamp: i64,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverallStatus {
    Healthy,
    Degraded,
    Unhealthy,
}

impl OverallStatus {
    /// `unhealthy` if any check failed, `degraded` if any warned, else `healthy`.
    pub fn of(checks: &[Check]) -> OverallStatus {
        if checks.iter().any(|check| check.status == CheckStatus::Fail) {
            OverallStatus::Unhealthy
        } else if checks.iter().any(|check| check.status == CheckStatus::Warn) {
            OverallStatus::Degraded
        } else {
            OverallStatus::Healthy
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OverallStatus::Healthy => "healthy",
            OverallStatus::Degraded => "degraded",
            OverallStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One diagnose check. Messages are never truncated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub name: String,
    pub status: CheckStatus,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    pub duration_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
}

impl CheckStatus {
    /// How `kici-admin diagnose` and debug bundles show it.
    pub fn label(self) -> &'static str {
        match self {
            CheckStatus::Pass => "PASS",
            CheckStatus::Warn => "WARN",
            CheckStatus::Fail => "FAIL",
        }
    }
}

/// The answer to `POST /api/v1/admin/config/reload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reloaded {
    /// Always `reloaded`: a refused reload is an error answer.
    pub status: String,
    pub global_max_agents: u32,
    pub scalers: ScalerChanges,
}

/// Which scalers a reload added, removed or changed (a changed backend type waits for a restart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalerChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub type_changed: Vec<String>,
}

/// An orchestrator's answer to the Platform's `dashboard.fleet`: its agents and its scalers'
/// overview (the scaler manager's own shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fleet {
    pub agents: Vec<AgentView>,
    pub scalers: Value,
    /// Queued jobs no agent took yet, oldest first, with why each waits.
    #[serde(default)]
    pub waiting: Vec<crate::waiting::WaitingJob>,
}

/// One orchestrator as it last beat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    /// `host:port`.
    pub instance_id: String,
    /// `leader` (runs the sweeper and the schedules) or `follower`.
    pub role: String,
    /// It beat within the last three beat intervals.
    pub alive: bool,
    pub started_at: i64,
    pub last_beat_at: i64,
}

/// `GET /api/v1/admin/system-info`: the orchestrator's host; a fact it cannot read is `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemInfo {
    pub platform: String,
    pub release: Option<String>,
    pub arch: String,
    pub hostname: Option<String>,
    pub cpu_count: usize,
    /// Bytes.
    pub total_memory: Option<u64>,
    /// Bytes.
    pub free_memory: Option<u64>,
    /// Seconds since boot.
    pub uptime: Option<f64>,
    pub orchestrator_version: String,
    pub build_info: BuildInfo,
    pub data_dir: String,
    /// `sqlite` or `postgres`.
    pub database: String,
}

/// `GET /api/v1/admin/config`: the effective configuration, every secret replaced by `****`
/// (key ids only, never a key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveConfig {
    pub mode: String,
    pub port: u16,
    pub bind_address: String,
    pub data_dir: String,
    pub database: DatabaseConfig,
    /// `token` or `none`.
    pub agent_auth: String,
    pub queue: QueueConfig,
    pub dispatch_ack_timeout_ms: u64,
    pub job_heartbeat_interval_ms: u64,
    pub stale_detector_scan_interval_ms: u64,
    pub stale_detector_threshold_multiplier: u32,
    pub agent_max_reconnect_delay_ms: u64,
    pub bootstrap_admin_token: Option<String>,
    pub metrics_token: Option<String>,
    pub secret_key: SecretKeyConfig,
    pub log_level: String,
    pub log_dir: Option<String>,
    pub tls_cert_path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseConfig {
    /// With the password replaced.
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueConfig {
    pub timeout_ms: Option<u64>,
    pub max_depth: usize,
    pub sweep_interval_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyConfig {
    pub key_id: String,
    pub old_key_id: Option<String>,
    /// `KICI_SECRET_KEY`, `KICI_SECRET_KEY_FILE` or `dataDir`.
    pub from: String,
}

/// `GET /api/v1/admin/cluster/health`: the answering instance, and every orchestrator sharing
/// its database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterHealth {
    pub status: String,
    /// The instance that answered (`host:port`).
    pub instance_id: String,
    /// Its role: `leader` (runs the sweeper and the schedules) or `follower`.
    pub role: String,
    /// Its agents.
    pub agent_count: usize,
    pub connected_agents: Vec<String>,
    pub active_runs: usize,
    /// The alive instance holding the leader lock, if any.
    #[serde(default)]
    pub leader: Option<String>,
    /// Every instance that beat in the last day, leader first, then by id.
    #[serde(default)]
    pub instances: Vec<InstanceView>,
}
