//! Webhook ingress: `POST /webhook/:orgId/generic/:sourceId`. Finds the source, enforces its
//! size limit, verifies the signature, parses the body, normalizes the event and hands it to
//! the pipeline. Bad requests get a clear 4xx and store nothing.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, KeyInit, Mac};
use kici_engine::excerpt::excerpt;
use kici_store::{Source, SourceKind, Verification};
use serde_json::{Value, json};
use sha2::Sha256;

use super::admin::DEFAULT_ORG;
use super::error::{ApiError, ApiResult};
use crate::deliveries::{self, Answer};
use crate::pipeline::{self, Delivery, Outcome};
use crate::providers::{self, Normalized, Skip};
use crate::secrets::{now_ms, token_hash};
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
fn verify(state: &Shared, source: &Source, headers: &HeaderMap, body: &[u8]) -> ApiResult<bool> {
    if source.verification != Verification::HmacSha256 {
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
    Ok(verify_signature(source, secret, headers, body))
}

fn verify_signature(source: &Source, secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
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
        .map_err(|err| invalid(excerpt(&err.to_string()).into_owned()))?;
    if !contained {
        return Err(invalid(format!(
            "{} in {path} does not contain commit {}: a local push must name a ref and a commit on it",
            excerpt(&normalized.git_ref),
            excerpt(&normalized.sha)
        )));
    }
    Ok(())
}

pub async fn receive(
    State(state): State<Shared>,
    Path((org_id, source_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = body.map_err(|rejection| {
        ApiError::new(
            rejection.status(),
            "payload_too_large",
            format!("cannot read the webhook body: {}", rejection.body_text()),
        )
    })?;
    kici_telemetry::metrics::orchestrator::webhook_received();
    if org_id != DEFAULT_ORG {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_organization",
            format!("Unknown organization {org_id}"),
        ));
    }
    let source = state.store.find_source(&org_id, &source_id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_source",
            format!("Unknown source {source_id}"),
        )
    })?;
    if body.len() as i64 > source.max_payload_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "payload of {} bytes exceeds this source's limit of {} bytes",
                body.len(),
                source.max_payload_bytes
            ),
        ));
    }
    if source.kind == SourceKind::Local {
        if !verify_local(&state, &source, &headers).await? {
            tracing::warn!(sourceId = %source.source_id, "local push rejected: missing or invalid trigger token");
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_signature",
                "Missing or invalid trigger token (hint: send `Authorization: Bearer <token>` with the source's trigger token or an admin token; `kici-admin source install-hook` writes a hook that does)",
            ));
        }
    } else if !verify(&state, &source, &headers, &body)? {
        tracing::warn!(sourceId = %source.source_id, "webhook rejected: invalid signature");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            "Invalid signature",
        ));
    }
    let payload: Value = serde_json::from_slice(&body)
        .map_err(|err| ApiError::bad_request("invalid_payload", format!("the body is not valid JSON: {err}")))?;
    let (event_name, raw_delivery) = event_and_delivery(&source, &headers);
    let event_name = event_name.ok_or_else(|| {
        ApiError::bad_request(
            "invalid_payload",
            "missing event type header (x-event-type or the preset's)",
        )
    })?;
    let raw_delivery = raw_delivery.unwrap_or_else(|| kici_engine::hash::sha256_hex(&body));
    let delivery_id = format!("{}:{raw_delivery}", source.source_id);
    let provider = source
        .preset
        .as_deref()
        .map_or("local", |p| p.trim_end_matches("-repo"));
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
        SourceKind::Generic => deliveries::body_key(&source.source_id, &body),
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

    #[test]
    fn hex_decoding() {
        assert_eq!(decode_hex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(decode_hex("0"), None);
        assert_eq!(decode_hex("zz"), None);
    }
}
