//! Webhook ingress: `POST /webhook/:orgId/generic/:sourceId`. Finds the source, enforces its
//! size limit, verifies the signature, parses the body, normalizes the event and hands it to
//! the pipeline. Bad requests get a clear 4xx and store nothing.

use std::net::{IpAddr, SocketAddr};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use hmac::{Hmac, KeyInit, Mac};
use kici_engine::excerpt::excerpt;
use kici_store::{Source, SourceKind, Verification};
use serde_json::{Value, json};
use sha2::Sha256;

use super::admin::DEFAULT_ORG;
use super::error::{ApiError, ApiResult};
use crate::clock::now_ms;
use crate::deliveries::{self, Answer};
use crate::ids::token_hash;
use crate::pipeline::{self, Delivery, Outcome};
use crate::providers::{self, Normalized, Skip};
use crate::state::Shared;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The event and delivery headers of a source's preset.
fn event_and_delivery(source: &Source, headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let pick = |names: &[&str]| names.iter().find_map(|n| header(headers, n)).map(str::to_string);
    match source.preset.as_deref() {
        Some("gitlab-repo") => (
            pick(&["x-gitlab-event"]),
            pick(&["x-gitlab-event-uuid", "x-gitlab-webhook-uuid"]),
        ),
        Some("gitea") => (
            pick(&["x-gitea-event", "x-github-event"]),
            pick(&["x-gitea-delivery", "x-github-delivery"]),
        ),
        Some("gogs") => (pick(&["x-gogs-event"]), pick(&["x-gogs-delivery"])),
        Some("custom") => (pick(&["x-event-type"]), pick(&["x-delivery-id"])),
        Some("forgejo") => (
            pick(&["x-forgejo-event", "x-gitea-event"]),
            pick(&["x-forgejo-delivery", "x-gitea-delivery"]),
        ),
        Some(_) => (pick(&["x-github-event"]), pick(&["x-github-delivery"])),
        None => (
            pick(&["x-event-type", "x-github-event"]),
            pick(&["x-delivery-id", "x-github-delivery"]),
        ),
    }
}

/// A local source's push is authentic with `Authorization: Bearer` carrying the source's
/// trigger token or an admin token that may act (not an auditor's).
async fn verify_local(state: &Shared, source: &Source, headers: &HeaderMap) -> ApiResult<bool> {
    let Some(token) = header(headers, "authorization")
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
    else {
        return Ok(false);
    };
    let hash = token_hash(token);
    if source.verification == Verification::TriggerToken
        && source
            .secret
            .as_deref()
            .is_some_and(|stored| constant_time_eq(stored.as_bytes(), hash.as_bytes()))
    {
        return Ok(true);
    }
    let admin = state.store.use_admin_token(&hash, now_ms()).await?;
    Ok(admin.is_some_and(|token| token.role != "auditor"))
}

/// Forge webhooks: the HMAC of the body under the source's secret (decrypted here), or
/// GitLab's token header. A secret no configured key decrypts is the orchestrator's problem,
/// not the sender's: a 500 whose details go to the log only.
fn verify(state: &Shared, source: &Source, peer: Option<IpAddr>, headers: &HeaderMap, body: &[u8]) -> ApiResult<bool> {
    if source.verification == Verification::IpAllowlist {
        // The TCP peer: behind a proxy, that is the proxy (no forwarded header is trusted).
        let ranges = source.allowed_ips.as_deref().unwrap_or_default();
        return Ok(peer.is_some_and(|peer| {
            ranges
                .split(',')
                .filter_map(|range| kici_engine::netmask::Range::parse(range).ok())
                .any(|range| range.contains(peer))
        }));
    }
    if !matches!(
        source.verification,
        Verification::HmacSha256 | Verification::BearerToken
    ) {
        return Ok(false);
    }
    let secret = crate::source_secrets::webhook_secret(&state.config.secret_keys, source).map_err(|err| {
        tracing::error!(sourceId = %source.source_id, error = %err, "webhook secret cannot be decrypted");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "secret_unavailable",
            "the source's webhook secret cannot be decrypted with the orchestrator's secret key (details are in the orchestrator log)",
        )
    })?;
    let Some(secret) = secret.as_deref() else {
        return Ok(false);
    };
    if verify_signature(source, secret, headers, body) {
        return Ok(true);
    }
    // During a rotation window the secret it replaced is still accepted.
    let previous = match (&source.previous_secret, source.previous_secret_until) {
        (Some(sealed), Some(until)) if until > now_ms() => {
            crate::source_secrets::previous_webhook_secret(&state.config.secret_keys, source, sealed).ok()
        }
        _ => None,
    };
    Ok(previous.is_some_and(|previous| verify_signature(source, &previous, headers, body)))
}

fn verify_signature(source: &Source, secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    if source.verification == Verification::BearerToken {
        return header(headers, "authorization")
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(|token| constant_time_eq(token.trim().as_bytes(), secret.as_bytes()));
    }
    if source.preset.as_deref() == Some("gitlab-repo") {
        // GitLab sends the secret itself; compare in constant time through HMAC.
        return header(headers, "x-gitlab-token").is_some_and(|t| constant_time_eq(t.as_bytes(), secret.as_bytes()));
    }
    let signature = header(headers, "x-hub-signature-256")
        .and_then(|s| s.strip_prefix("sha256="))
        .or_else(|| header(headers, "x-gitea-signature"))
        .or_else(|| header(headers, "x-forgejo-signature"));
    let Some(expected) = signature.and_then(decode_hex) else {
        return false;
    };
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A local push names a ref and a commit; both are checked against the repository itself, so
/// a caller cannot run an unreviewed commit as if it were on `main`.
async fn check_local_push(source: &Source, event_name: &str, normalized: &Normalized) -> ApiResult<()> {
    let invalid = |message: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_push", message);
    if event_name != "push" {
        return Err(invalid(format!(
            "local sources take push events only, not `{}`",
            excerpt(event_name)
        )));
    }
    let Some(path) = source.path.as_deref() else {
        return Err(invalid(format!("source `{}` has no repository path", source.name)));
    };
    let contained = crate::git::ref_contains(std::path::Path::new(path), &normalized.git_ref, &normalized.sha)
        .await
        .map_err(|err| match err {
            // The operator's own path and what to do with it: said whole.
            crate::git::GitError::NotTrusted { .. } => invalid(err.to_string()),
            other => invalid(excerpt(&other.to_string()).into_owned()),
        })?;
    if !contained {
        return Err(invalid(format!(
            "{} in {path} does not contain commit {}: a local push must name a ref and a commit on it",
            excerpt(&normalized.git_ref),
            excerpt(&normalized.sha)
        )));
    }
    Ok(())
}

/// A `custom` source's webhook: no git, the payload is the event. It goes to every
/// `genericWebhook({ source })` registration naming the source, once per delivery id.
async fn generic_event(
    state: &Shared,
    source: &Source,
    event_name: Option<String>,
    (raw_delivery, replay_key): (&str, Option<String>),
    payload: Value,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let delivery_id = format!("{}:{raw_delivery}", source.source_id);
    let duplicate = || {
        Ok((
            StatusCode::OK,
            Json(json!({ "accepted": false, "duplicate": true, "deliveryId": delivery_id })),
        ))
    };
    if let Some(key) = &replay_key
        && !state.store.claim_event(key, now_ms()).await?
    {
        return duplicate();
    }
    let event_type = event_name
        .or_else(|| payload.get("eventType").and_then(Value::as_str).map(str::to_string))
        .or_else(|| payload.get("action").and_then(Value::as_str).map(str::to_string));
    let mut event = kici_engine::event::EventEnvelope::new(kici_engine::event::EventType::GenericWebhook);
    event.provider = Some("generic".to_string());
    event.action = event_type.clone();
    event.payload = Some(json!({ "source": source.name, "eventType": event_type, "payload": payload }));
    let event_id = format!("generic_webhook:{delivery_id}");
    let published = crate::event_router::publish(state, &event_id, &event).await;
    if let (Err(_), Some(key)) = (&published, &replay_key) {
        // Not stored: the sender's retry must not be taken for a replay.
        state.store.release_event_claim(key).await?;
    }
    let Some(run_ids) = published? else {
        return duplicate();
    };
    tracing::info!(deliveryId = %delivery_id, source = %source.name, runs = run_ids.len(), "generic webhook delivered");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": true, "deliveryId": delivery_id, "eventId": event_id, "runIds": run_ids })),
    ))
}

/// Reads the body only once the source is known, and never more than its limit: a declared
/// length over it is refused before reading, a body that turns out longer while being read.
async fn read_body(body: Body, headers: &HeaderMap, source: &Source) -> ApiResult<Bytes> {
    let limit = source.max_payload_bytes.max(0) as usize;
    let too_large = |what: String| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("{what} exceeds this source's limit of {limit} bytes"),
        )
    };
    let declared = header(headers, "content-length").and_then(|length| length.parse::<u64>().ok());
    if let Some(length) = declared
        && length > limit as u64
    {
        return Err(too_large(format!("payload of {length} bytes")));
    }
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        let over = std::error::Error::source(&err).is_some_and(|cause| cause.is::<http_body_util::LengthLimitError>());
        if over {
            too_large("the payload".to_string())
        } else {
            ApiError::bad_request("invalid_payload", "the body could not be read")
        }
    })
}

fn known_org(org_id: &str) -> ApiResult<()> {
    if org_id == DEFAULT_ORG {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_organization",
            format!("Unknown organization {org_id}"),
        ))
    }
}

/// `POST /webhook/:orgId/generic/:sourceId`: a local source's push or a forge's webhook.
pub async fn receive(
    State(state): State<Shared>,
    Path((org_id, source_id)): Path<(String, String)>,
    peer: Peer,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    kici_telemetry::metrics::orchestrator::webhook_received();
    known_org(&org_id)?;
    let source = state.store.find_source(&org_id, &source_id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_source",
            format!("Unknown source {source_id}"),
        )
    })?;
    accept(state, source, peer, headers, body).await
}

/// `POST /webhook/:orgId/github`: a GitHub App's webhook, routed by the App id GitHub names in
/// `X-GitHub-Hook-Installation-Target-ID`.
pub async fn receive_github(
    State(state): State<Shared>,
    Path(org_id): Path<String>,
    peer: Peer,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    kici_telemetry::metrics::orchestrator::webhook_received();
    known_org(&org_id)?;
    let app_id = header(&headers, "x-github-hook-installation-target-id").unwrap_or_default();
    let sources = state.store.list_sources().await?;
    let source = sources
        .into_iter()
        .find(|s| s.kind == SourceKind::GitHubApp && s.org_id == org_id && s.app_id.as_deref() == Some(app_id))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_source",
                format!(
                    "Unknown routing key github:{} (hint: `kici-admin source add github --app-id <id>`)",
                    excerpt(app_id)
                ),
            )
        })?;
    accept(state, source, peer, headers, body).await
}

/// The connection's peer, when the server records it (tests of the router alone do not).
type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

async fn accept(
    state: Shared,
    source: Source,
    peer: Peer,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let peer = peer.map(|Extension(ConnectInfo(peer))| peer.ip());
    if !source.enabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "source_disabled",
            format!(
                "Source {} is disabled (hint: `kici-admin source enable {}`)",
                source.name, source.name
            ),
        ));
    }
    let body = read_body(body, &headers, &source).await?;
    if source.kind == SourceKind::Local {
        if !verify_local(&state, &source, &headers).await? {
            tracing::warn!(sourceId = %source.source_id, "local push rejected: missing or invalid trigger token");
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_signature",
                "Missing or invalid trigger token (hint: send `Authorization: Bearer <token>` with the source's trigger token or an admin token; `kici-admin source install-hook` writes a hook that does)",
            ));
        }
    } else if !verify(&state, &source, peer, &headers, &body)? {
        tracing::warn!(sourceId = %source.source_id, peer = ?peer, "webhook rejected: invalid signature");
        let message = match source.verification {
            Verification::IpAllowlist => format!(
                "Invalid signature: source {} takes webhooks only from its allowed addresses",
                source.name
            ),
            _ => "Invalid signature".to_string(),
        };
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", message));
    }
    // Counted once verified: unsigned floods cost an HMAC each, and cannot use up the limit of
    // the forge that owns the source.
    if let Err(seconds) = state
        .webhook_limits
        .take(source.source_id.as_str(), source.rate_limit_rpm, now_ms())
    {
        tracing::warn!(sourceId = %source.source_id, retryAfterSeconds = seconds, "webhook refused: rate limit");
        return Err(ApiError::rate_limited(
            format!(
                "source `{}` takes at most {} deliveries a minute; retry in {seconds}s",
                source.name, source.rate_limit_rpm
            ),
            seconds,
        ));
    }
    let payload: Value = serde_json::from_slice(&body)
        .map_err(|err| ApiError::bad_request("invalid_payload", format!("the body is not valid JSON: {err}")))?;
    if let Some(allowed) = source.allowed_owners.as_deref() {
        let owner = payload
            .pointer("/repository/owner/login")
            .or_else(|| payload.pointer("/installation/account/login"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !allowed.split(',').any(|o| o.eq_ignore_ascii_case(owner)) {
            tracing::warn!(source = %source.name, owner = %excerpt(owner), "GitHub App webhook from an account the source does not allow");
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "installation_not_allowed",
                format!(
                    "The GitHub App's installation on `{}` is not allowed by source {} (hint: `--allow-owner {}` when adding the source)",
                    excerpt(owner),
                    source.name,
                    excerpt(owner)
                ),
            ));
        }
    }
    let (event_name, raw_delivery) = event_and_delivery(&source, &headers);
    if source.preset.as_deref() == Some("custom") {
        let body_hash = kici_engine::hash::sha256_hex(&body);
        let raw_delivery = raw_delivery.unwrap_or_else(|| body_hash.clone());
        // A signed body sent again under a new delivery id is a replay.
        let replay_key = (source.verification == Verification::HmacSha256)
            .then(|| format!("generic_webhook:body:{}:{body_hash}", source.source_id));
        return generic_event(&state, &source, event_name, (&raw_delivery, replay_key), payload).await;
    }
    let event_name = event_name.ok_or_else(|| {
        ApiError::bad_request(
            "invalid_payload",
            "missing event type header (x-event-type or the preset's)",
        )
    })?;
    let raw_delivery = raw_delivery.unwrap_or_else(|| kici_engine::hash::sha256_hex(&body));
    let delivery_id = format!("{}:{raw_delivery}", source.source_id);
    let provider = match source.kind {
        SourceKind::GitHubApp => "github",
        _ => source
            .preset
            .as_deref()
            .map_or("local", |p| p.trim_end_matches("-repo")),
    };
    if event_name == "issue_comment" && provider == "github" {
        // A signed comment sent again (a redelivery or a replay) decides nothing again.
        let key = format!("comment:{}", deliveries::body_key(&source.source_id, &body));
        if !state.store.claim_event(&key, now_ms()).await? {
            return Ok((
                StatusCode::OK,
                Json(json!({ "accepted": false, "duplicate": true, "deliveryId": delivery_id })),
            ));
        }
        let mut answer = match crate::comment_commands::handle(&state, &source, &payload).await {
            Ok(answer) => answer,
            Err(err) => {
                state.store.release_event_claim(&key).await?;
                return Err(err.into());
            }
        };
        answer["accepted"] = json!(true);
        answer["deliveryId"] = json!(delivery_id);
        return Ok((StatusCode::ACCEPTED, Json(answer)));
    }
    let normalized = match providers::normalize(&event_name, &payload, provider) {
        Ok(normalized) => normalized,
        Err(Skip::Invalid(message)) => return Err(ApiError::bad_request("invalid_payload", message)),
        Err(Skip::Ignored(reason)) => {
            return Ok((
                StatusCode::ACCEPTED,
                Json(json!({ "accepted": true, "deliveryId": delivery_id, "runIds": [], "ignored": reason })),
            ));
        }
    };
    if source.kind == SourceKind::Local {
        check_local_push(&source, &event_name, &normalized).await?;
    }
    tracing::info!(deliveryId = %delivery_id, sourceId = %source.source_id, event = %event_name, "Webhook accepted");
    // A signed body replayed under a new delivery id is a duplicate. A local push is
    // authenticated by its token, not its body, and may be sent again on purpose.
    let body_key = match source.kind {
        SourceKind::Generic | SourceKind::GitHubApp => deliveries::body_key(&source.source_id, &body),
        SourceKind::Local => format!("delivery:{delivery_id}"),
    };
    let delivery = Delivery {
        source,
        delivery_id: delivery_id.clone(),
        body_key,
        normalized,
    };
    let outcome = match deliveries::accept(&state, delivery).await? {
        Answer::Duplicate => {
            return Ok((
                StatusCode::OK,
                Json(json!({ "accepted": false, "duplicate": true, "deliveryId": delivery_id })),
            ));
        }
        Answer::Processing => {
            return Ok((
                StatusCode::ACCEPTED,
                Json(json!({ "accepted": true, "deliveryId": delivery_id, "status": "processing", "runIds": [] })),
            ));
        }
        Answer::Done(result) => result.map_err(|err| match err {
            pipeline::PipelineError::Store(err) => ApiError::from(err),
            other => {
                tracing::warn!(deliveryId = %delivery_id, error = %other, "delivery failed");
                ApiError::new(StatusCode::BAD_GATEWAY, "lock_fetch_failed", other.to_string())
            }
        })?,
    };
    Ok(match outcome {
        Outcome::Ignored(reason) => (
            StatusCode::ACCEPTED,
            Json(json!({ "accepted": true, "deliveryId": delivery_id, "runIds": [], "ignored": reason })),
        ),
        Outcome::Started(run_ids) => (
            StatusCode::ACCEPTED,
            Json(json!({ "accepted": true, "deliveryId": delivery_id, "runIds": run_ids })),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_is_read_only_up_to_the_sources_limit() {
        let source = Source {
            source_id: "s".into(),
            org_id: "default".into(),
            name: "s".into(),
            kind: SourceKind::Local,
            path: None,
            git_url: None,
            preset: None,
            verification: Verification::TriggerToken,
            secret: None,
            credentials: None,
            max_payload_bytes: 10,
            rate_limit_rpm: 600,
            created_at: 1,
            api_url: None,
            app_id: None,
            enabled: true,
            previous_secret: None,
            previous_secret_until: None,
            allowed_owners: None,
            allowed_ips: None,
        };
        let read = |text: &'static str, declared: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(length) = declared {
                headers.insert("content-length", length.parse().unwrap());
            }
            let source = source.clone();
            async move { read_body(Body::from(text), &headers, &source).await }
        };
        assert_eq!(read("0123456789", None).await.unwrap().len(), 10);
        let err = read("0123456789x", None).await.unwrap_err();
        assert_eq!(
            (err.status, err.message.as_str()),
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                "the payload exceeds this source's limit of 10 bytes"
            )
        );
        let err = read("", Some("11")).await.unwrap_err();
        assert_eq!(
            err.message,
            "payload of 11 bytes exceeds this source's limit of 10 bytes"
        );
    }

    #[test]
    fn hex_decoding() {
        assert_eq!(decode_hex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(decode_hex("0"), None);
        assert_eq!(decode_hex("zz"), None);
    }
}
