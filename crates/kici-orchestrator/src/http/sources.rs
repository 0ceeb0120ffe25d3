//! Changing a source after it was added: `PATCH /api/v1/admin/sources/:idOrName`
//! (`{secret?, rotationWindowSeconds?, gitUrl?, apiUrl?, credentials?, rateLimitRpm?}`),
//! `DELETE` (its schedules go with it, its runs stay), `POST …/enable|disable`, and
//! `POST …/webhook-secret` (the secret revealed, for owner and admin tokens, logged). A new
//! webhook secret does not cut off the forge at once: the one it replaces is accepted too for
//! the rotation window (24 h unless given; 0 ends it now).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kici_engine::api::admin::{RevealedWebhookSecret, SourceView};
use kici_engine::excerpt::excerpt;
use kici_store::{Source, SourceKind};
use serde::Deserialize;

use super::admin::{NewCredentials, check_api_url, check_git_access, source_view};
use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use crate::clock::now_ms;
use crate::state::Shared;
use crate::{git, source_secrets};

/// How long a replaced webhook secret is still accepted, unless the update says.
const DEFAULT_ROTATION_WINDOW_SECONDS: i64 = 24 * 3600;
const MAX_ROTATION_WINDOW_SECONDS: i64 = 30 * 24 * 3600;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceUpdate {
    secret: Option<String>,
    rotation_window_seconds: Option<i64>,
    git_url: Option<String>,
    api_url: Option<String>,
    credentials: Option<NewCredentials>,
    rate_limit_rpm: Option<i64>,
}

async fn find(state: &Shared, id: &str) -> ApiResult<Source> {
    state
        .store
        .find_source(crate::scoped_secrets::DEFAULT_ORG, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no source `{}` (hint: `kici-admin source list`)", excerpt(id))))
}

fn invalid(message: String) -> ApiError {
    ApiError::bad_request("invalid_source", message)
}

pub async fn update(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Json(body): Json<SourceUpdate>,
) -> ApiResult<Json<SourceView>> {
    let mut source = find(&state, &id).await?;
    let forge_fields =
        body.secret.is_some() || body.git_url.is_some() || body.api_url.is_some() || body.credentials.is_some();
    if source.kind == SourceKind::Local && forge_fields {
        return Err(invalid(
            "a local source takes only rateLimitRpm (its trigger token is renewed by `kici-admin source install-hook`)"
                .into(),
        ));
    }
    if source.kind == SourceKind::GitHubApp && (body.git_url.is_some() || body.credentials.is_some()) {
        return Err(invalid(
            "a GitHub App source clones with installation tokens and takes no gitUrl or credentials".into(),
        ));
    }
    let mut changed = Vec::new();
    if let Some(rpm) = body.rate_limit_rpm {
        if !(1..=60_000).contains(&rpm) {
            return Err(invalid(format!(
                "rateLimitRpm {rpm} must be from 1 to 60000 deliveries a minute"
            )));
        }
        source.rate_limit_rpm = rpm;
        changed.push("rateLimitRpm");
    }
    let keys = &state.config.secret_keys;
    if body.git_url.is_some() || body.credentials.is_some() {
        let git_url = body.git_url.clone().or_else(|| source.git_url.clone());
        check_git_access(git_url.as_deref(), body.credentials.as_ref()).map_err(invalid)?;
        if body.git_url.is_some() {
            source.git_url = git_url;
            changed.push("gitUrl");
        }
        if let Some(c) = &body.credentials {
            source.credentials = Some(source_secrets::seal_credentials(
                keys,
                &source.source_id,
                &c.to_credentials(),
            ));
            changed.push("credentials");
        }
    }
    if source.preset.as_deref() == Some("custom") && (body.git_url.is_some() || body.credentials.is_some()) {
        return Err(invalid(
            "a custom source carries events without git; it takes no gitUrl or credentials".into(),
        ));
    }
    if let Some(url) = body.api_url.as_deref().filter(|u| !u.is_empty()) {
        if !(url.starts_with("http://") || url.starts_with("https://")) || git::url_userinfo(url).is_some() {
            return Err(invalid(format!(
                "apiUrl `{}` must be an http(s) URL without credentials",
                git::redact_userinfo(url)
            )));
        }
        if source.kind == SourceKind::Generic {
            let preset = source.preset.clone().unwrap_or_default();
            // The token that sets statuses is a password, not an SSH key.
            let has_token = match &body.credentials {
                Some(c) => !c.password.is_empty(),
                None => source_secrets::credentials(keys, &source)
                    .ok()
                    .flatten()
                    .is_some_and(|c| !c.password.is_empty()),
            };
            check_api_url(&preset, Some(url), has_token).map_err(invalid)?;
        }
    }
    if let Some(url) = &body.api_url {
        source.api_url = Some(url.clone()).filter(|u| !u.is_empty());
        changed.push("apiUrl");
    }
    if let Some(secret) = &body.secret {
        if secret.is_empty() {
            return Err(invalid("secret must not be empty".into()));
        }
        let window = body.rotation_window_seconds.unwrap_or(DEFAULT_ROTATION_WINDOW_SECONDS);
        if !(0..=MAX_ROTATION_WINDOW_SECONDS).contains(&window) {
            return Err(invalid(format!(
                "rotationWindowSeconds {window} must be from 0 to {MAX_ROTATION_WINDOW_SECONDS} (30 days)"
            )));
        }
        (source.previous_secret, source.previous_secret_until) = match window {
            0 => (None, None),
            _ => (source.secret.clone(), Some(now_ms() + window * 1000)),
        };
        source.secret = Some(source_secrets::seal_webhook_secret(keys, &source.source_id, secret));
        changed.push("secret");
    }
    if changed.is_empty() {
        return Err(invalid(
            "nothing to change (hint: --secret, --git-url, --api-url, --git-username with --git-password-file, or --rate-limit)".into(),
        ));
    }
    state.store.update_source(&source).await?;
    tracing::info!(source = %source.name, changed = %changed.join(", "), "source updated");
    Ok(Json(source_view(&state, &source)))
}

pub async fn remove(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let source = find(&state, &id).await?;
    state.store.delete_source(&source.source_id).await?;
    tracing::info!(source = %source.name, sourceId = %source.source_id, "source removed; its runs stay");
    Ok(StatusCode::NO_CONTENT)
}

async fn set_enabled(state: &Shared, id: &str, enabled: bool) -> ApiResult<Json<SourceView>> {
    let mut source = find(state, id).await?;
    source.enabled = enabled;
    state.store.update_source(&source).await?;
    tracing::info!(source = %source.name, enabled, "source {}", if enabled { "enabled" } else { "disabled" });
    Ok(Json(source_view(state, &source)))
}

pub async fn enable(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<SourceView>> {
    set_enabled(&state, &id, true).await
}

pub async fn disable(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<SourceView>> {
    set_enabled(&state, &id, false).await
}

pub async fn reveal_webhook_secret(
    State(state): State<Shared>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<RevealedWebhookSecret>> {
    let source = find(&state, &id).await?;
    if source.kind == SourceKind::Local {
        return Err(invalid(
            "a local source has a trigger token, stored only as its hash (`kici-admin source install-hook` makes a new one)".into(),
        ));
    }
    let secret = source_secrets::webhook_secret(&state.config.secret_keys, &source)
        .map_err(|err| {
            tracing::error!(source = %source.name, error = %err, "webhook secret cannot be decrypted");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "secret_unavailable",
                "the source's webhook secret cannot be decrypted with the orchestrator's secret key (details are in the orchestrator log)",
            )
        })?
        .unwrap_or_default();
    tracing::warn!(source = %source.name, by = %caller.label, "webhook secret revealed");
    Ok(Json(RevealedWebhookSecret {
        source_id: source.source_id,
        secret,
    }))
}
