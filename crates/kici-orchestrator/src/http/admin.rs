//! Administration: admin tokens, agent tokens and the connected agents, event sources.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kici_engine::labels::validate_agent_label;
use kici_store::{AdminToken, NewAgentToken, Source, SourceKind, Verification};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use crate::git;
use crate::hub::Outbound;
use crate::ids::{new_admin_token, new_agent_token, new_id, new_trigger_token, token_hash};
use crate::source_secrets::{self, Reseal};
use crate::state::Shared;
use kici_telemetry::os::now_ms;

/// The only organisation.
pub const DEFAULT_ORG: &str = "default";

/// Largest webhook body a source accepts by default (and at most).
pub const MAX_PAYLOAD_BYTES: i64 = 10 * 1024 * 1024;

#[derive(Debug, Deserialize)]
pub struct NewToken {
    label: String,
    role: Option<String>,
}

pub async fn create_token(
    State(state): State<Shared>,
    Json(body): Json<NewToken>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let role = body.role.unwrap_or_else(|| "admin".to_string());
    if !matches!(role.as_str(), "owner" | "admin" | "auditor") {
        return Err(ApiError::bad_request(
            "invalid_role",
            format!("role `{role}` is not owner, admin or auditor"),
        ));
    }
    let token = new_admin_token();
    let record = AdminToken {
        token_id: new_id(),
        label: body.label,
        role,
        created_at: now_ms(),
        last_used_at: None,
        revoked_at: None,
    };
    state.store.insert_admin_token(&record, &token_hash(&token)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "tokenId": record.token_id, "token": token, "label": record.label, "role": record.role })),
    ))
}

pub async fn list_tokens(State(state): State<Shared>) -> ApiResult<Json<Value>> {
    let tokens: Vec<Value> = state
        .store
        .list_admin_tokens()
        .await?
        .into_iter()
        .map(|t| json!({ "tokenId": t.token_id, "label": t.label, "role": t.role, "createdAt": t.created_at, "lastUsedAt": t.last_used_at, "revokedAt": t.revoked_at }))
        .collect();
    Ok(Json(json!({ "tokens": tokens })))
}

pub async fn revoke_token(State(state): State<Shared>, Path(token_id): Path<String>) -> ApiResult<StatusCode> {
    if state.store.revoke_admin_token(&token_id, now_ms()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "admin token {token_id} not found or already revoked"
        )))
    }
}

#[derive(Debug, Deserialize)]
pub struct NewAgent {
    label: String,
    #[serde(default)]
    labels: Vec<String>,
}

pub async fn register_agent(
    State(state): State<Shared>,
    Json(body): Json<NewAgent>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    for label in &body.labels {
        validate_agent_label(label).map_err(|err| ApiError::bad_request("invalid_label", err.to_string()))?;
    }
    let token = new_agent_token();
    let record = NewAgentToken {
        token_id: new_id(),
        label: body.label,
        token_prefix: token.chars().take(12).collect(),
        token_hash: token_hash(&token),
        labels: body.labels,
        agent_type: "static".to_string(),
        created_at: now_ms(),
        expires_at: None,
    };
    state.store.insert_agent_token(&record).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "tokenId": record.token_id, "token": token, "label": record.label, "labels": record.labels })),
    ))
}

/// Every agent the orchestrator has seen, with the job it runs now.
pub async fn agents_json(state: &Shared) -> Result<Vec<Value>, kici_store::StoreError> {
    Ok(state
        .store
        .list_agents()
        .await?
        .into_iter()
        .map(|a| {
            let busy = state.hub.get(&a.agent_id).and_then(|c| c.busy_job);
            json!({
                "agentId": a.agent_id, "labels": a.labels, "hostname": a.hostname, "platform": a.platform, "arch": a.arch,
                "version": a.version, "buildInfo": a.build_info, "connected": a.connected, "busyJobId": busy,
                "firstSeenAt": a.first_seen_at, "lastSeenAt": a.last_seen_at,
            })
        })
        .collect())
}

pub async fn list_agents(State(state): State<Shared>) -> ApiResult<Json<Value>> {
    let agents = agents_json(&state).await?;
    let tokens: Vec<Value> = state
        .store
        .list_agent_tokens()
        .await?
        .into_iter()
        .map(|t| {
            json!({
                "tokenId": t.token_id, "label": t.label, "tokenPrefix": t.token_prefix, "labels": t.labels, "agentType": t.agent_type,
                "createdAt": t.created_at, "expiresAt": t.expires_at, "revokedAt": t.revoked_at, "lastSeenAt": t.last_seen_at,
            })
        })
        .collect();
    Ok(Json(json!({ "agents": agents, "tokens": tokens })))
}

pub async fn revoke_agent(State(state): State<Shared>, Path(id_or_label): Path<String>) -> ApiResult<StatusCode> {
    let tokens = state.store.list_agent_tokens().await?;
    let Some(token) = tokens
        .iter()
        .find(|t| (t.token_id == id_or_label || t.label == id_or_label) && t.revoked_at.is_none())
    else {
        return Err(ApiError::not_found(format!(
            "agent token {id_or_label} not found or already revoked"
        )));
    };
    state.store.revoke_agent_token(&token.token_id, now_ms()).await?;
    for agent in state.hub.with_token(&token.token_id) {
        // The agent may be disconnecting already.
        let _ = agent
            .tx
            .send(Outbound::Close(
                kici_engine::protocol::close_code::AUTH_FAILED,
                "agent token revoked".into(),
            ))
            .await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSource {
    kind: String,
    name: String,
    path: Option<String>,
    preset: Option<String>,
    secret: Option<String>,
    git_url: Option<String>,
    /// Clone credentials for `gitUrl`, stored encrypted.
    credentials: Option<NewCredentials>,
    /// Verified deliveries per minute (default [`DEFAULT_RATE_LIMIT_RPM`]).
    rate_limit_rpm: Option<i64>,
}

/// Verified deliveries a source may send per minute unless it says otherwise.
pub const DEFAULT_RATE_LIMIT_RPM: i64 = 600;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCredentials {
    username: String,
    password: String,
}

const PRESETS: [&str; 4] = ["forgejo", "gitea", "gitlab-repo", "github-repo"];

/// A source as the API shows it: never its secret or credentials, only whether it has any.
pub fn source_view(state: &Shared, source: &Source) -> Value {
    let base = format!("http://{}:{}", state.config.bind_address, state.config.port);
    let git_url = source.git_url.as_deref().map(git::redact_userinfo);
    json!({
        "sourceId": source.source_id, "orgId": source.org_id, "name": source.name, "kind": source.kind.as_str(),
        "path": source.path, "gitUrl": git_url, "preset": source.preset, "verification": source.verification.as_str(),
        "hasCredentials": source.credentials.is_some(), "rateLimitRpm": source.rate_limit_rpm,
        "webhookUrl": format!("{base}/webhook/{}/generic/{}", source.org_id, source.source_id), "createdAt": source.created_at,
    })
}

/// Refuses credentials inside a git URL (they would show in views, runs and checkouts) and
/// credentials git cannot be given.
fn check_git_access(git_url: Option<&str>, credentials: Option<&NewCredentials>) -> Result<(), String> {
    if let Some(url) = git_url
        && let Some(userinfo) = git::url_userinfo(url)
    {
        let http = url.starts_with("http://") || url.starts_with("https://");
        if http || userinfo.contains(':') {
            return Err(format!(
                "gitUrl `{}` contains credentials; give the URL without them and pass the credentials with --git-username and --git-password-file (API: `credentials`), which are stored encrypted",
                git::redact_userinfo(url)
            ));
        }
    }
    if let Some(credentials) = credentials {
        if git_url.is_none() {
            return Err("credentials need a gitUrl: they are sent only to the repository the source names".into());
        }
        if credentials.username.is_empty() || credentials.password.is_empty() {
            return Err("credentials need a non-empty username and password".into());
        }
        let bad = |text: &str| text.contains(['\n', '\r', '\0']);
        if bad(&credentials.username) || bad(&credentials.password) {
            return Err("credentials must not contain line breaks or NUL characters".into());
        }
    }
    Ok(())
}

pub async fn add_source(
    State(state): State<Shared>,
    Json(body): Json<NewSource>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let invalid = |message: String| ApiError::bad_request("invalid_source", message);
    let rate_limit_rpm = body.rate_limit_rpm.unwrap_or(DEFAULT_RATE_LIMIT_RPM);
    if !(1..=60_000).contains(&rate_limit_rpm) {
        return Err(invalid(format!(
            "rateLimitRpm {rate_limit_rpm} must be from 1 to 60000 deliveries a minute"
        )));
    }
    if body.name.is_empty() || body.name.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(invalid(format!(
            "source name `{}` must be non-empty without spaces or slashes",
            body.name
        )));
    }
    let (kind, verification) = match body.kind.as_str() {
        "local" => {
            let path = body
                .path
                .as_deref()
                .ok_or_else(|| invalid("a local source needs --path <repository>".into()))?;
            if !std::path::Path::new(path).is_absolute() {
                return Err(invalid(format!("path `{path}` must be absolute")));
            }
            (SourceKind::Local, Verification::TriggerToken)
        }
        "generic" => {
            let preset = body.preset.as_deref().unwrap_or("github-repo");
            if !PRESETS.contains(&preset) {
                return Err(invalid(format!(
                    "unknown preset `{preset}` (hint: {})",
                    PRESETS.join(", ")
                )));
            }
            check_git_access(body.git_url.as_deref(), body.credentials.as_ref()).map_err(invalid)?;
            match &body.secret {
                Some(secret) if !secret.is_empty() => (SourceKind::Generic, Verification::HmacSha256),
                _ => return Err(invalid("a generic source needs --secret <webhook secret>".into())),
            }
        }
        other => {
            return Err(invalid(format!(
                "unknown source kind `{other}` (hint: local or generic)"
            )));
        }
    };
    if kind == SourceKind::Local && body.credentials.is_some() {
        return Err(invalid(
            "a local source reads its repository from disk and takes no credentials".into(),
        ));
    }
    let trigger_token = (kind == SourceKind::Local).then(new_trigger_token);
    let source_id = new_id();
    let keys = &state.config.secret_keys;
    let source = Source {
        credentials: body.credentials.as_ref().map(|c| {
            let credentials = git::Credentials {
                username: c.username.clone(),
                password: c.password.clone(),
            };
            source_secrets::seal_credentials(keys, &source_id, &credentials)
        }),
        source_id: source_id.clone(),
        org_id: DEFAULT_ORG.to_string(),
        name: body.name,
        kind,
        path: body.path,
        git_url: body.git_url,
        preset: (kind == SourceKind::Generic).then(|| body.preset.unwrap_or_else(|| "github-repo".into())),
        verification,
        secret: match &trigger_token {
            Some(token) => Some(token_hash(token)),
            None => body
                .secret
                .as_deref()
                .map(|secret| source_secrets::seal_webhook_secret(keys, &source_id, secret)),
        },
        max_payload_bytes: MAX_PAYLOAD_BYTES,
        rate_limit_rpm,
        created_at: now_ms(),
    };
    if !state.store.insert_source(&source).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("a source named `{}` already exists", source.name),
        ));
    }
    let mut view = source_view(&state, &source);
    if let Some(token) = trigger_token {
        // Shown once: the store keeps only its hash.
        view["triggerToken"] = Value::String(token);
    }
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /api/v1/admin/deliveries/{id}`: an accepted webhook delivery and how it ended.
pub async fn get_delivery(State(state): State<Shared>, Path(delivery_id): Path<String>) -> ApiResult<Json<Value>> {
    let record = state
        .store
        .get_delivery(&delivery_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("delivery {delivery_id} not found")))?;
    Ok(Json(json!({
        "deliveryId": record.delivery_id, "sourceId": record.source_id, "eventType": record.event_type,
        "status": record.status, "runIds": record.run_ids, "detail": record.detail,
        "createdAt": record.created_at, "updatedAt": record.updated_at,
    })))
}

/// `POST /api/v1/admin/sources/{id}/trigger-token`: a new trigger token for a local source;
/// the previous one stops working.
pub async fn rotate_trigger_token(
    State(state): State<Shared>,
    Path(id_or_name): Path<String>,
) -> ApiResult<Json<Value>> {
    let source = state
        .store
        .find_source(DEFAULT_ORG, &id_or_name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("source {id_or_name} not found")))?;
    if source.kind != SourceKind::Local {
        return Err(ApiError::bad_request(
            "invalid_source",
            format!(
                "source `{}` is a {} source; only local sources have trigger tokens (forges sign with their webhook secret)",
                source.name,
                source.kind.as_str()
            ),
        ));
    }
    let token = new_trigger_token();
    state
        .store
        .set_source_secret(&source.source_id, Verification::TriggerToken, &token_hash(&token))
        .await?;
    Ok(Json(json!({ "sourceId": source.source_id, "triggerToken": token })))
}

pub async fn list_sources(State(state): State<Shared>) -> ApiResult<Json<Value>> {
    let sources: Vec<Value> = state
        .store
        .list_sources()
        .await?
        .iter()
        .map(|s| source_view(&state, s))
        .collect();
    Ok(Json(json!({ "sources": sources })))
}

/// `POST /api/v1/admin/secrets/rotate-key` (owner tokens only: `key.rotate`): re-encrypts every
/// stored secret under the current key (`KICI_SECRET_KEY`), reading those under the previous
/// one with `KICI_SECRET_KEY_OLD`. 409 `rotation_incomplete` when some value no configured key
/// decrypts; the others are re-encrypted all the same.
pub async fn rotate_key(State(state): State<Shared>, Extension(caller): Extension<Caller>) -> ApiResult<Json<Value>> {
    let caller = caller.0;
    if caller.role != "owner" {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "token `{}` has role {}; rotating the secret key needs an owner token",
                caller.label, caller.role
            ),
        ));
    }
    let keys = &state.config.secret_keys;
    let resealed = source_secrets::reseal(&state.store, keys, Reseal::All).await?;
    tracing::info!(
        keyId = %keys.current_id(),
        reEncrypted = resealed.re_encrypted,
        alreadyCurrent = resealed.already_current,
        failed = resealed.failures.len(),
        tokenId = %caller.token_id,
        "secret key rotation"
    );
    if !resealed.failures.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "rotation_incomplete",
            format!(
                "re-encrypted {} secrets under key `{}`, but {} cannot be decrypted with the configured keys: {}",
                resealed.re_encrypted,
                keys.current_id(),
                resealed.failures.len(),
                resealed.failures.join("; ")
            ),
        ));
    }
    Ok(Json(json!({
        "keyId": keys.current_id(),
        "reEncrypted": resealed.re_encrypted,
        "alreadyCurrent": resealed.already_current,
    })))
}
