//! Administration: admin tokens, agent tokens and the agents (listed by [`crate::fleet`]),
//! event sources and their deliveries, and secret-key rotation.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kici_engine::api::admin::{
    AdminRole, AdminTokenList, AdminTokenView, AgentList, CreatedAdminToken, DeliveryView, NewAdminToken, NewAgent,
    RegisteredAgent, RotatedKey, SourceList, SourceView, TriggerToken,
};
use kici_engine::ids::SourceId;
use kici_engine::labels::validate_agent_label;
use kici_store::{AdminToken, NewAgentToken, Source, SourceKind, Verification};
use serde::Deserialize;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use crate::clock::now_ms;
use crate::hub::Outbound;
use crate::ids::{new_admin_token, new_agent_token, new_id, new_trigger_token, token_hash};
use crate::scoped_secrets;
use crate::source_secrets::{self, Reseal};
use crate::state::Shared;
use crate::{fleet, git};

pub use crate::scoped_secrets::DEFAULT_ORG;

/// Largest webhook body a source accepts by default (and at most).
pub const MAX_PAYLOAD_BYTES: i64 = 10 * 1024 * 1024;

pub async fn create_token(
    State(state): State<Shared>,
    Json(body): Json<NewAdminToken>,
) -> ApiResult<(StatusCode, Json<CreatedAdminToken>)> {
    let role = match body.role {
        None => AdminRole::Admin,
        Some(role) => role.parse::<AdminRole>().map_err(|_| {
            ApiError::bad_request("invalid_role", format!("role `{role}` is not owner, admin or auditor"))
        })?,
    };
    if let Some(team) = body.teams.iter().find(|t| !kici_engine::protection::valid_name(t)) {
        return Err(ApiError::bad_request(
            "invalid_team",
            format!(
                "team `{}` must be 1–64 letters, digits, `-`, `_` or `.`",
                kici_engine::excerpt::excerpt(team)
            ),
        ));
    }
    let token = new_admin_token();
    let record = AdminToken {
        token_id: new_id(),
        label: body.label,
        role: role.as_str().to_string(),
        teams: body.teams,
        created_at: now_ms(),
        last_used_at: None,
        revoked_at: None,
    };
    state.store.insert_admin_token(&record, &token_hash(&token)).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedAdminToken {
            token_id: record.token_id,
            token,
            label: record.label,
            role: record.role,
        }),
    ))
}

pub async fn list_tokens(State(state): State<Shared>) -> ApiResult<Json<AdminTokenList>> {
    let tokens = state
        .store
        .list_admin_tokens()
        .await?
        .into_iter()
        .map(|t| AdminTokenView {
            token_id: t.token_id,
            label: t.label,
            role: t.role,
            teams: t.teams,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        })
        .collect();
    Ok(Json(AdminTokenList { tokens }))
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

pub async fn register_agent(
    State(state): State<Shared>,
    Json(body): Json<NewAgent>,
) -> ApiResult<(StatusCode, Json<RegisteredAgent>)> {
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
        Json(RegisteredAgent {
            token_id: record.token_id,
            token,
            label: record.label,
            labels: record.labels,
        }),
    ))
}

pub async fn list_agents(State(state): State<Shared>) -> ApiResult<Json<AgentList>> {
    Ok(Json(AgentList {
        agents: fleet::agents(&state).await?,
        tokens: fleet::agent_tokens(&state).await?,
    }))
}

/// `GET /api/v1/admin/queue/waiting` → `{jobs: [WaitingJob]}`: the queued jobs no agent took,
/// oldest first, each with why it waits.
pub async fn waiting_jobs(State(state): State<Shared>) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(serde_json::json!({ "jobs": fleet::waiting(&state).await? })))
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
    /// The forge API for commit statuses, when not the one `gitUrl` implies; for a GitHub
    /// App, its API (default `https://api.github.com`).
    api_url: Option<String>,
    /// `hmac_sha256` (default) or, for the `custom` preset, `bearer_token`.
    verification: Option<String>,
    /// `ip_allowlist` verification: the ranges webhooks may come from.
    #[serde(default)]
    allowed_ips: Vec<String>,
    /// A GitHub App's repository owners whose installations may send webhooks (none: any).
    #[serde(default)]
    allowed_owners: Vec<String>,
    /// A GitHub App's id and private key (PEM, stored encrypted).
    app_id: Option<String>,
    private_key: Option<String>,
    /// A GitHub App created from a manifest: the code GitHub's redirect carried, exchanged
    /// here for the App's id, key and webhook secret (which never pass through the CLI).
    manifest_code: Option<String>,
}

/// Verified deliveries a source may send per minute unless it says otherwise.
pub const DEFAULT_RATE_LIMIT_RPM: i64 = 600;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCredentials {
    pub(super) username: String,
    /// A password or token (HTTPS), or
    #[serde(default)]
    pub(super) password: String,
    /// an SSH private key (an `ssh://` or `user@host:path` URL),
    #[serde(default)]
    pub(super) ssh_key: Option<String>,
    /// with the `known_hosts` lines its server's key must be in (`pinned`); without them the
    /// first key seen is kept (`accept-new`).
    #[serde(default)]
    pub(super) known_hosts: Option<String>,
}

impl NewCredentials {
    pub(super) fn to_credentials(&self) -> git::Credentials {
        git::Credentials {
            username: self.username.clone(),
            password: self.password.clone(),
            ssh_key: self.ssh_key.clone(),
            known_hosts: self.known_hosts.clone(),
        }
    }
}

/// A source as the API shows it: never its secret or credentials, only whether it has any.
pub fn source_view(state: &Shared, source: &Source) -> SourceView {
    let base = format!("http://{}:{}", state.config.bind_address, state.config.port);
    SourceView {
        source_id: source.source_id.clone(),
        org_id: Some(source.org_id.clone()),
        name: source.name.clone(),
        kind: source.kind.as_str().to_string(),
        path: source.path.clone(),
        git_url: source
            .git_url
            .as_deref()
            .map(|url| git::redact_userinfo(url).into_owned()),
        preset: source.preset.clone(),
        verification: Some(source.verification.as_str().to_string()),
        has_credentials: Some(source.credentials.is_some()),
        rate_limit_rpm: Some(source.rate_limit_rpm),
        webhook_url: Some(match source.kind {
            SourceKind::GitHubApp => format!("{base}/webhook/{}/github", source.org_id),
            _ => format!("{base}/webhook/{}/generic/{}", source.org_id, source.source_id),
        }),
        created_at: Some(source.created_at),
        enabled: Some(source.enabled),
        previous_secret_until: source.previous_secret_until.filter(|until| *until > now_ms()),
        trigger_token: None,
        status_api_url: crate::forge_status::target_api(source).map(|(_, url)| url),
        allowed_owners: source
            .allowed_owners
            .as_deref()
            .map(|owners| owners.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
    }
}

/// Refuses an API URL a source cannot report commit statuses to.
pub(super) fn check_api_url(preset: &str, api_url: Option<&str>, has_token: bool) -> Result<(), String> {
    let Some(url) = api_url else {
        return Ok(());
    };
    if kici_engine::forge::ForgeApi::of_preset(preset).is_none() {
        return Err(format!(
            "preset `{preset}` has no commit-status API, so --api-url has nothing to report to (hint: leave it out)"
        ));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) || git::url_userinfo(url).is_some() {
        return Err(format!(
            "apiUrl `{}` must be an http(s) URL without credentials, e.g. https://git.example.com/api/v1",
            git::redact_userinfo(url)
        ));
    }
    if !has_token {
        return Err(
            "commit statuses need a token: pass --git-username and --git-password-file with a token that may set statuses"
                .into(),
        );
    }
    Ok(())
}

/// Refuses credentials inside a git URL (they would show in views, runs and checkouts) and
/// credentials git cannot be given.
pub(super) fn check_git_access(git_url: Option<&str>, credentials: Option<&NewCredentials>) -> Result<(), String> {
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
        let ssh = credentials.ssh_key.is_some();
        if credentials.username.is_empty() || (credentials.password.is_empty() != ssh) {
            return Err("credentials need a username and either a password (a token) or an SSH key".into());
        }
        let url = git_url.unwrap_or_default();
        let ssh_url = url.starts_with("ssh://") || (!url.contains("://") && url.contains('@') && url.contains(':'));
        if ssh != ssh_url {
            return Err(if ssh {
                format!(
                    "an SSH key clones an SSH URL (ssh://git@host/owner/name.git), not `{}`",
                    git::redact_userinfo(url)
                )
            } else {
                format!("`{url}` is an SSH URL: give it an SSH key (--ssh-key-file), not a password")
            });
        }
        if credentials.known_hosts.as_deref().is_some_and(|k| k.trim().is_empty()) {
            return Err("pinned known hosts are empty (hint: `ssh-keyscan -p <port> <host>` prints the lines)".into());
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
    Json(mut body): Json<NewSource>,
) -> ApiResult<(StatusCode, Json<SourceView>)> {
    let Some(code) = body.manifest_code.take() else {
        return create_source(&state, body).await;
    };
    let invalid = |message: String| ApiError::bad_request("invalid_source", message);
    if body.kind != "github" || body.app_id.is_some() || body.private_key.is_some() || body.secret.is_some() {
        return Err(invalid(
            "--manifest-code creates a GitHub App source by itself: give it without --app-id, --private-key or --webhook-secret".into(),
        ));
    }
    if code.is_empty() || code.len() > 128 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid(format!(
            "`{}` is not a manifest code (letters and digits, from the address GitHub redirected to)",
            kici_engine::excerpt::excerpt(&code)
        )));
    }
    // A code works once: everything that could refuse the source is checked before it is spent.
    check_common(&body).map_err(invalid)?;
    check_github_options(&body).map_err(invalid)?;
    if state.store.list_sources().await?.iter().any(|s| s.name == body.name) {
        return Err(name_taken(&body.name));
    }
    let api = body.api_url.as_deref().unwrap_or(crate::github_app::DEFAULT_API);
    let app = state
        .github
        .convert_manifest(api, &code)
        .await
        .map_err(|err| ApiError::new(StatusCode::BAD_GATEWAY, "manifest_conversion_failed", err.to_string()))?;
    tracing::info!(app = %app.slug, appId = app.id, "GitHub App created from a manifest");
    let (id, slug, name) = (app.id, app.slug.clone(), body.name.clone());
    body.app_id = Some(app.id.to_string());
    body.private_key = Some(app.pem);
    body.secret = Some(app.webhook_secret);
    create_source(&state, body).await.map_err(|mut err| {
        err.message = format!(
            "{} (GitHub App {slug}, id {id}, was created on GitHub but not added; hint: on its settings page generate a new private key and set a new webhook secret, then `kici-admin source add github --name {name} --app-id {id} --private-key @key.pem --webhook-secret <the new secret>`)",
            err.message
        );
        err
    })
}

fn name_taken(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "conflict",
        format!("a source named `{name}` already exists"),
    )
}

/// What every source is checked for: its rate limit and name.
fn check_common(body: &NewSource) -> Result<(), String> {
    let rate_limit_rpm = body.rate_limit_rpm.unwrap_or(DEFAULT_RATE_LIMIT_RPM);
    if !(1..=60_000).contains(&rate_limit_rpm) {
        return Err(format!(
            "rateLimitRpm {rate_limit_rpm} must be from 1 to 60000 deliveries a minute"
        ));
    }
    if body.name.is_empty() || body.name.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(format!(
            "source name `{}` must be non-empty without spaces or slashes",
            body.name
        ));
    }
    Ok(())
}

/// A GitHub App source's options besides its App: no git URL or credentials, owner logins, an
/// http(s) API.
fn check_github_options(body: &NewSource) -> Result<(), String> {
    if body.credentials.is_some() || body.git_url.is_some() {
        return Err("a GitHub App source clones with installation tokens and takes no gitUrl or credentials".into());
    }
    if let Some(bad) = body
        .allowed_owners
        .iter()
        .find(|o| o.is_empty() || !o.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    {
        return Err(format!(
            "`{}` is not a GitHub account login",
            kici_engine::excerpt::excerpt(bad)
        ));
    }
    if let Some(url) = body.api_url.as_deref()
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(format!(
            "apiUrl `{url}` must be an http(s) URL, e.g. https://api.github.com"
        ));
    }
    Ok(())
}

async fn create_source(state: &Shared, body: NewSource) -> ApiResult<(StatusCode, Json<SourceView>)> {
    let invalid = |message: String| ApiError::bad_request("invalid_source", message);
    check_common(&body).map_err(invalid)?;
    let rate_limit_rpm = body.rate_limit_rpm.unwrap_or(DEFAULT_RATE_LIMIT_RPM);
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
            if !kici_engine::forge::PRESETS.iter().any(|p| p.name == preset) {
                let names: Vec<&str> = kici_engine::forge::PRESETS.iter().map(|p| p.name).collect();
                return Err(invalid(format!(
                    "unknown preset `{preset}` (hint: {}; `kici-admin source list-presets` says what each expects)",
                    names.join(", ")
                )));
            }
            check_git_access(body.git_url.as_deref(), body.credentials.as_ref()).map_err(invalid)?;
            check_api_url(
                preset,
                body.api_url.as_deref(),
                body.credentials.as_ref().is_some_and(|c| !c.password.is_empty()),
            )
            .map_err(invalid)?;
            let verification = match body.verification.as_deref() {
                None | Some("hmac_sha256") => Verification::HmacSha256,
                Some("bearer_token") if preset == "custom" => Verification::BearerToken,
                Some("ip_allowlist") => Verification::IpAllowlist,
                Some(other) => {
                    return Err(invalid(format!(
                        "verification `{other}` is not one this source takes (hint: hmac_sha256, ip_allowlist with --allow-ip, or bearer_token for the custom preset, whose senders cannot sign)"
                    )));
                }
            };
            if verification == Verification::IpAllowlist {
                if body.allowed_ips.is_empty() {
                    return Err(invalid(
                        "ip_allowlist needs the ranges webhooks come from (--allow-ip 192.0.2.0/24)".into(),
                    ));
                }
                for range in &body.allowed_ips {
                    kici_engine::netmask::Range::parse(range).map_err(invalid)?;
                }
            } else if !body.allowed_ips.is_empty() {
                return Err(invalid("--allow-ip is for --verification ip_allowlist".into()));
            }
            if preset == "custom" && (body.git_url.is_some() || body.credentials.is_some()) {
                return Err(invalid(
                    "a custom source carries events without git; it takes no gitUrl or credentials".into(),
                ));
            }
            match &body.secret {
                Some(secret) if !secret.is_empty() => (SourceKind::Generic, verification),
                _ if verification == Verification::IpAllowlist => (SourceKind::Generic, verification),
                _ => return Err(invalid("a generic source needs --secret <webhook secret>".into())),
            }
        }
        "github" => {
            let app_id = body.app_id.as_deref().unwrap_or_default();
            if app_id.is_empty() || !app_id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    "a GitHub App source needs --app-id <the App's numeric id>".into(),
                ));
            }
            let key = body.private_key.as_deref().unwrap_or_default();
            crate::github_app::AppAuth::new(app_id, key).map_err(|err| invalid(err.to_string()))?;
            if body.secret.as_deref().is_none_or(str::is_empty) {
                return Err(invalid(
                    "a GitHub App source needs --webhook-secret <the App's webhook secret>".into(),
                ));
            }
            check_github_options(&body).map_err(invalid)?;
            let sources = state.store.list_sources().await?;
            if sources.iter().any(|s| s.app_id.as_deref() == Some(app_id)) {
                return Err(invalid(format!("a source for GitHub App {app_id} exists already")));
            }
            (SourceKind::GitHubApp, Verification::HmacSha256)
        }
        other => {
            return Err(invalid(format!(
                "unknown source kind `{other}` (hint: local, generic or github)"
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
    // A GitHub App's private key is kept as its credentials: the App id and the PEM.
    let credentials = match (&body.credentials, kind) {
        (_, SourceKind::GitHubApp) => Some(git::Credentials::password(
            body.app_id.clone().unwrap_or_default(),
            body.private_key.clone().unwrap_or_default(),
        )),
        (Some(c), _) => Some(c.to_credentials()),
        (None, _) => None,
    };
    let source = Source {
        credentials: credentials
            .as_ref()
            .map(|c| source_secrets::seal_credentials(keys, &SourceId::from(&source_id), c)),
        source_id: SourceId::from(source_id.clone()),
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
                .map(|secret| source_secrets::seal_webhook_secret(keys, &SourceId::from(&source_id), secret)),
        },
        max_payload_bytes: MAX_PAYLOAD_BYTES,
        rate_limit_rpm,
        created_at: now_ms(),
        api_url: body.api_url,
        app_id: (kind == SourceKind::GitHubApp).then(|| body.app_id.clone().unwrap_or_default()),
        enabled: true,
        previous_secret: None,
        previous_secret_until: None,
        allowed_owners: (kind == SourceKind::GitHubApp && !body.allowed_owners.is_empty())
            .then(|| body.allowed_owners.join(",")),
        allowed_ips: (verification == Verification::IpAllowlist).then(|| body.allowed_ips.join(",")),
    };
    if !state.store.insert_source(&source).await? {
        return Err(name_taken(&source.name));
    }
    let view = SourceView {
        // Shown once: the store keeps only its hash.
        trigger_token,
        ..source_view(state, &source)
    };
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /api/v1/admin/deliveries/{id}`: an accepted webhook delivery and how it ended.
pub async fn get_delivery(
    State(state): State<Shared>,
    Path(delivery_id): Path<String>,
) -> ApiResult<Json<DeliveryView>> {
    let record = state
        .store
        .get_delivery(&delivery_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("delivery {delivery_id} not found")))?;
    Ok(Json(DeliveryView {
        delivery_id: record.delivery_id,
        source_id: record.source_id,
        event_type: record.event_type,
        status: record.status,
        run_ids: record.run_ids,
        detail: record.detail,
        created_at: Some(record.created_at),
        updated_at: Some(record.updated_at),
    }))
}

/// `POST /api/v1/admin/sources/{id}/trigger-token`: a new trigger token for a local source;
/// the previous one stops working.
pub async fn rotate_trigger_token(
    State(state): State<Shared>,
    Path(id_or_name): Path<String>,
) -> ApiResult<Json<TriggerToken>> {
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
    Ok(Json(TriggerToken {
        source_id: source.source_id,
        trigger_token: token,
    }))
}

pub async fn list_sources(State(state): State<Shared>) -> ApiResult<Json<SourceList>> {
    let sources = state
        .store
        .list_sources()
        .await?
        .iter()
        .map(|s| source_view(&state, s))
        .collect();
    Ok(Json(SourceList { sources }))
}

/// `POST /api/v1/admin/secrets/rotate-key` (owner tokens only: `key.rotate`): re-encrypts every
/// stored secret under the current key (`KICI_SECRET_KEY`), reading those under the previous
/// one with `KICI_SECRET_KEY_OLD`. 409 `rotation_incomplete` when some value no configured key
/// decrypts; the others are re-encrypted all the same.
pub async fn rotate_key(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<RotatedKey>> {
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
    let mut resealed = source_secrets::reseal(&state.store, keys, Reseal::All).await?;
    let scoped = scoped_secrets::reseal(&state.store, keys).await?;
    resealed.re_encrypted += scoped.re_encrypted;
    resealed.already_current += scoped.already_current;
    resealed.failures.extend(scoped.failures);
    let entry = kici_store::NewAudit {
        entry_id: new_id(),
        org_id: DEFAULT_ORG.to_string(),
        entry: kici_engine::api::secrets::AuditEntry {
            timestamp: now_ms(),
            action: "key.rotate".to_string(),
            context_name: None,
            secret_keys: Vec::new(),
            outcome: if resealed.failures.is_empty() {
                "success"
            } else {
                "error"
            }
            .to_string(),
            run_id: None,
            job_id: None,
            actor: caller.label.clone(),
            role: Some(caller.role.clone()),
            metadata: Some(serde_json::json!({
                "keyId": keys.current_id(),
                "reEncrypted": resealed.re_encrypted,
                "alreadyCurrent": resealed.already_current,
                "failed": resealed.failures.len(),
            })),
        },
    };
    state.store.insert_audit(&entry).await?;
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
    Ok(Json(RotatedKey {
        key_id: keys.current_id().to_string(),
        re_encrypted: resealed.re_encrypted as u64,
        already_current: resealed.already_current as u64,
    }))
}
