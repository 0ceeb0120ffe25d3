//! The operations API's shapes (`/api/v1/admin/diagnose`, `config/reload`, and the Platform's
//! `dashboard.fleet` and `dashboard.diagnostics` answers), built by the orchestrator and read
//! by `kici-admin` and the dashboard.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::admin::AgentView;

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
}
