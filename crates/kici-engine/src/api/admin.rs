//! The admin API's shapes (`/api/v1/admin/{tokens,agents,sources,deliveries,secrets}`, and the
//! Platform's `/api/v1/users`), built by the servers and read by `kici-admin`. Fields a server
//! always sends but an older or partial answer may lack are `Option`s or default, so a reader
//! stays lenient; a server fills every one of them.

use crate::ids::{AgentId, JobId, RunId, SourceId};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::build_info::BuildInfo;

/// What an admin token may do: `owner` everything, `admin` all but tokens and key rotation,
/// `auditor` only read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminRole {
    Owner,
    Admin,
    Auditor,
}

/// What a dashboard user may do: `owner` reads and acts, `member` only reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    Owner,
    Member,
}

/// A role name that is not one of the enum's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`")]
pub struct UnknownRole(pub String);

macro_rules! role_names {
    ($role:ty, $($variant:ident => $name:literal),+) => {
        impl $role {
            /// Every role, in the order help texts list them.
            pub const ALL: &[$role] = &[$(<$role>::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(<$role>::$variant => $name),+
                }
            }
        }

        impl FromStr for $role {
            type Err = UnknownRole;

            fn from_str(text: &str) -> Result<$role, UnknownRole> {
                match text {
                    $($name => Ok(<$role>::$variant),)+
                    other => Err(UnknownRole(other.to_string())),
                }
            }
        }

        impl fmt::Display for $role {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

role_names!(AdminRole, Owner => "owner", Admin => "admin", Auditor => "auditor");
role_names!(UserRole, Owner => "owner", Member => "member");

/// `POST /api/v1/admin/tokens`. The role stays text so the server can answer an unknown one
/// with its own message; it defaults to `admin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAdminToken {
    pub label: String,
    pub role: Option<String>,
    /// Teams its holder belongs to, for environment reviewers `team:<name>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
}

/// The answer to `POST /api/v1/admin/tokens`: the token is shown only here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedAdminToken {
    pub token_id: String,
    pub token: String,
    pub label: String,
    pub role: String,
}

/// `GET /api/v1/admin/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminTokenList {
    pub tokens: Vec<AdminTokenView>,
}

/// An admin token as listed, never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminTokenView {
    pub token_id: String,
    pub label: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// `POST /api/v1/admin/agents`: a static agent token for operator `labels` (no `kici:` prefix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAgent {
    pub label: String,
    #[serde(default)]
    pub labels: Vec<String>,
}

/// The answer to `POST /api/v1/admin/agents`: the `kat_` token is shown only here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredAgent {
    pub token_id: String,
    pub token: String,
    pub label: String,
    #[serde(default)]
    pub labels: Vec<String>,
}

/// `GET /api/v1/admin/agents`, and the agents of the Platform's `dashboard.fleet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentList {
    pub agents: Vec<AgentView>,
    pub tokens: Vec<AgentTokenView>,
}

/// An agent the orchestrator has seen, with the job it runs now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentView {
    pub agent_id: AgentId,
    #[serde(default)]
    pub labels: Vec<String>,
    pub hostname: Option<String>,
    pub platform: Option<String>,
    pub arch: Option<String>,
    pub version: Option<String>,
    pub build_info: Option<AgentBuildInfo>,
    pub connected: bool,
    pub busy_job_id: Option<JobId>,
    pub first_seen_at: Option<i64>,
    pub last_seen_at: Option<i64>,
}

/// An agent's build info, read leniently (the two SDK fields drift and listings use, the rest
/// kept as sent) so an agent that reported a partial one still lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentBuildInfo {
    pub sdk_version: Option<String>,
    pub sdk_bundle_hash: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl From<BuildInfo> for AgentBuildInfo {
    fn from(build: BuildInfo) -> AgentBuildInfo {
        let rest = [
            ("sharedVersion", build.shared_version),
            ("sharedBundleHash", build.shared_bundle_hash),
            ("engineVersion", build.engine_version),
            ("engineBundleHash", build.engine_bundle_hash),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), Value::String(value)))
        .collect();
        AgentBuildInfo {
            sdk_version: Some(build.sdk_version),
            sdk_bundle_hash: Some(build.sdk_bundle_hash),
            rest,
        }
    }
}

/// An agent token as listed, never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentTokenView {
    pub token_id: String,
    pub label: String,
    pub token_prefix: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    pub agent_type: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_seen_at: Option<i64>,
}

/// `GET /api/v1/admin/sources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceList {
    pub sources: Vec<SourceView>,
}

/// A source as the API shows it: never its secret or credentials, only whether it has any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceView {
    pub source_id: SourceId,
    pub org_id: Option<String>,
    pub name: String,
    /// `local` or `generic`.
    pub kind: String,
    pub path: Option<String>,
    /// Without userinfo: credentials are stored apart, encrypted.
    pub git_url: Option<String>,
    pub preset: Option<String>,
    /// `trigger_token`, `hmac_sha256` or `none`.
    pub verification: Option<String>,
    pub has_credentials: Option<bool>,
    pub rate_limit_rpm: Option<i64>,
    pub webhook_url: Option<String>,
    pub created_at: Option<i64>,
    /// A new local source's trigger token, shown only when it is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_token: Option<String>,
    /// Where the source's commit statuses go, when it reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_api_url: Option<String>,
    /// False for a source whose webhooks are refused (`kici-admin source disable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Until when the webhook secret a rotation replaced is still accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret_until: Option<i64>,
    /// A GitHub App source's allowed repository owners (empty: any account that installs it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_owners: Vec<String>,
}

/// A source's webhook secret, revealed (`kici-admin source get-webhook-secret`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevealedWebhookSecret {
    pub source_id: SourceId,
    pub secret: String,
}

/// `GET /api/v1/admin/deliveries/{id}`: an accepted webhook delivery and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub delivery_id: String,
    pub source_id: SourceId,
    pub event_type: String,
    /// `processing`, `processed`, `ignored` or `failed`.
    pub status: String,
    #[serde(default)]
    pub run_ids: Vec<RunId>,
    /// Why it was ignored, or why it failed.
    pub detail: Option<String>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
}

/// The answer to `POST /api/v1/admin/sources/{id}/trigger-token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerToken {
    pub source_id: SourceId,
    pub trigger_token: String,
}

/// The answer to `POST /api/v1/admin/secrets/rotate-key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotatedKey {
    pub key_id: String,
    pub re_encrypted: u64,
    pub already_current: u64,
}

/// `POST /api/v1/users` on the Platform. The role stays text so the Platform can answer an
/// unknown one with its own message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    pub name: String,
    pub role: String,
}

/// A dashboard user as `GET /api/v1/users` lists them (never their token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserEntry {
    pub name: String,
    pub role: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserList {
    pub users: Vec<UserEntry>,
}

/// The answer to `POST /api/v1/users`: the user's token is shown only here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedUser {
    pub name: String,
    pub role: String,
    pub token: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_their_names() {
        for role in AdminRole::ALL {
            assert_eq!(role.as_str().parse::<AdminRole>(), Ok(*role));
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
        for role in UserRole::ALL {
            assert_eq!(role.to_string().parse::<UserRole>(), Ok(*role));
        }
        assert_eq!(
            "root".parse::<AdminRole>().unwrap_err().to_string(),
            "unknown role `root`"
        );
    }

    #[test]
    fn build_info_keeps_the_order_agents_report_it_in() {
        let build = BuildInfo {
            sdk_version: "0.1.0".into(),
            sdk_bundle_hash: "a".into(),
            shared_version: "0.1.1".into(),
            shared_bundle_hash: "b".into(),
            engine_version: "0.1.2".into(),
            engine_bundle_hash: "c".into(),
        };
        assert_eq!(
            serde_json::to_string(&AgentBuildInfo::from(build.clone())).unwrap(),
            serde_json::to_string(&build).unwrap()
        );
    }
}
