//! The shapes of scoped secrets, variables, environments, holds and the audit log
//! (`/api/v1/admin/{secrets,variables,environments,audit}`, `/api/v1/holds`). A secret's value
//! is in exactly one answer: a reveal.

use serde::{Deserialize, Serialize};

use crate::ids::{JobId, RunId};
use crate::protection::{Approver, ApproverClause, Environment};

/// A stored secret without its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretMeta {
    pub scope: String,
    pub key: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub updated_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretList {
    pub secrets: Vec<SecretMeta>,
}

/// `PUT /api/v1/admin/secrets/:scope/:key` and `PUT …/variables/:scope/:name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetValue {
    pub value: String,
}

/// The answer to a set: whether the key was new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueSet {
    pub scope: String,
    pub key: String,
    pub created: bool,
}

/// `POST /api/v1/admin/secrets/:scope/:key/reveal` (owner and admin tokens; audited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevealedSecret {
    pub scope: String,
    pub key: String,
    pub value: String,
}

/// A plain variable: jobs in an environment binding its scope see it in their env.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Variable {
    pub scope: String,
    pub name: String,
    pub value: String,
    pub updated_at: i64,
    pub updated_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableList {
    pub variables: Vec<Variable>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentList {
    pub environments: Vec<Environment>,
}

/// `POST /api/v1/admin/environments` creates, `PATCH …/:name` changes the fields given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branches: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewers: Option<Vec<ApproverClause>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_timer_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_expiry_seconds: Option<u64>,
}

/// One line of `secret_audit_log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub timestamp: i64,
    /// `secret.set`, `secret.delete`, `secret.reveal`, `variable.set`, `variable.delete`,
    /// `environment.create`, `environment.update`, `environment.delete`, `key.rotate`,
    /// `hold.approve`, `hold.reject`.
    pub action: String,
    /// The scope or environment acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_name: Option<String>,
    #[serde(default)]
    pub secret_keys: Vec<String>,
    /// `success` or `denied`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    /// Who acted: the admin token's label, or `system`.
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditList {
    pub entries: Vec<AuditEntry>,
}

/// The state of a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldStatus {
    Pending,
    Approved,
    Rejected,
    Expired,
}

impl HoldStatus {
    pub const ALL: [HoldStatus; 4] = [
        HoldStatus::Pending,
        HoldStatus::Approved,
        HoldStatus::Rejected,
        HoldStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Pending => "pending",
            HoldStatus::Approved => "approved",
            HoldStatus::Rejected => "rejected",
            HoldStatus::Expired => "expired",
        }
    }
}

impl std::str::FromStr for HoldStatus {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        HoldStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| format!("unknown hold status `{text}`"))
    }
}

/// A held job waiting for approvals (the approval queue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldJob {
    pub hold_id: String,
    pub run_id: RunId,
    pub job_id: JobId,
    pub job_name: String,
    pub workflow_name: String,
    pub repo: String,
    pub git_ref: String,
    /// Environment names, `job` for the job's own `approval`, `trust` for an untrusted pull
    /// request (spec trust defaults).
    pub scope: String,
    #[serde(default)]
    pub clauses: Vec<ApproverClause>,
    #[serde(default)]
    pub approvals: Vec<Approver>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub status: HoldStatus,
    pub created_at: i64,
    pub expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldJobList {
    pub holds: Vec<HeldJob>,
}

/// `POST /api/v1/runs/:runId/approve` and `…/reject`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldDecision {
    /// Only this job's hold (by id or name); otherwise every pending hold of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer to an approval or rejection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldsDecided {
    pub run_id: RunId,
    /// The holds this decision touched, in their state afterwards (an approval that leaves a
    /// clause unmet keeps its hold `pending`).
    pub holds: Vec<HeldJob>,
}
