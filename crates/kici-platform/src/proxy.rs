//! REST-over-WS: asking a run's orchestrator for content the Platform does not keep (stored
//! step logs, provisioning logs, the approval queue) or for an action (cancel, re-run,
//! approve, reject). A request goes out as a `request`
//! frame with a fresh `requestId`; the orchestrator's `response` frame with the same id
//! completes it. No answer within the request timeout is [`ProxyError::Timeout`] (504); no
//! connection, or the connection dropping while waiting, is [`ProxyError::Offline`] (503).
//!
//! Not here: turning answers into HTTP responses (`http::proxy`).

use kici_engine::platform_protocol::{PlatformFrame, PlatformRequest, RERUN_FAILED_ONLY, ResponseError};
use serde::de::DeserializeOwned;

use crate::connections::{Link, Outbound};
use crate::state::Shared;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("orchestrator `{instance_id}` is not connected")]
    Offline { instance_id: String },
    #[error("orchestrator `{instance_id}` did not answer `{request}` within {timeout_ms}ms")]
    Timeout {
        instance_id: String,
        request: &'static str,
        timeout_ms: u64,
    },
    #[error("orchestrator `{instance_id}` has too many requests waiting")]
    Busy { instance_id: String },
    #[error("orchestrator `{instance_id}` (v{version}) does not support `{request}`")]
    Unsupported {
        instance_id: String,
        version: String,
        request: &'static str,
    },
    #[error("orchestrator refused `{request}`: {} ({})", .error.message, .error.code)]
    Refused {
        request: &'static str,
        error: ResponseError,
    },
    #[error("orchestrator answered `{request}` with an unreadable body")]
    InvalidAnswer {
        request: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// The name an orchestrator lists a request type under: its wire name, or for a re-run of the
/// failed jobs the capability an orchestrator that would ignore `failedOnly` lacks.
pub fn request_type(request: &PlatformRequest) -> &'static str {
    match request {
        PlatformRequest::StepLogs { .. } => "dashboard.step.logs",
        PlatformRequest::OrchLogs { .. } => "dashboard.orch.logs",
        PlatformRequest::Cancel { .. } => "run.cancel.request",
        PlatformRequest::Rerun { failed_only: true, .. } => RERUN_FAILED_ONLY,
        PlatformRequest::Rerun { .. } => "run.rerun.request",
        PlatformRequest::Fleet => "dashboard.fleet",
        PlatformRequest::Diagnostics => "dashboard.diagnostics",
        PlatformRequest::HeldRuns { .. } => "dashboard.held-runs",
        PlatformRequest::ApproveHeld { .. } => "dashboard.held-runs.approve",
        PlatformRequest::RejectHeld { .. } => "dashboard.held-runs.reject",
        PlatformRequest::Workflows => "dashboard.workflows",
        PlatformRequest::Dispatch { .. } => "run.dispatch.request",
        PlatformRequest::RunSchedule { .. } => "run.manual_schedule.request",
    }
}

/// The link to `instance_id`, or [`ProxyError::Offline`].
pub fn link(state: &Shared, instance_id: &str) -> Result<Link, ProxyError> {
    state.connections.link(instance_id).ok_or_else(|| ProxyError::Offline {
        instance_id: instance_id.to_string(),
    })
}

/// Sends `request` to orchestrator `instance_id` on behalf of `actor` and waits for its
/// answer's `data` (JSON `null` when it sent none).
pub async fn request(
    state: &Shared,
    instance_id: &str,
    actor: &str,
    request: PlatformRequest,
) -> Result<serde_json::Value, ProxyError> {
    let link = link(state, instance_id)?;
    let kind = request_type(&request);
    // An orchestrator that listed what it answers is not asked anything else.
    if !link.supported_requests.is_empty() && !link.supported_requests.iter().any(|r| r == kind) {
        return Err(ProxyError::Unsupported {
            instance_id: instance_id.to_string(),
            version: link.version.clone(),
            request: kind,
        });
    }
    let timeout = state.config.timeouts.request;
    let timed_out = || ProxyError::Timeout {
        instance_id: instance_id.to_string(),
        request: kind,
        timeout_ms: timeout.as_millis() as u64,
    };
    let offline = || ProxyError::Offline {
        instance_id: instance_id.to_string(),
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let answer = link.expect(&request_id).ok_or_else(|| ProxyError::Busy {
        instance_id: instance_id.to_string(),
    })?;
    let frame = PlatformFrame::Request {
        request_id: request_id.clone(),
        actor: actor.to_string(),
        request,
    };
    let started = tokio::time::Instant::now();
    let sent = tokio::time::timeout(timeout, link.outbox.send(Outbound::Frame(frame))).await;
    let outcome = match sent {
        Err(_) => Err(timed_out()),
        Ok(Err(_)) => Err(offline()),
        Ok(Ok(())) => match tokio::time::timeout_at(started + timeout, answer).await {
            Err(_) => Err(timed_out()),
            // The sender was dropped: the connection ended.
            Ok(Err(_)) => Err(offline()),
            Ok(Ok(Err(error))) => Err(ProxyError::Refused { request: kind, error }),
            Ok(Ok(Ok(data))) => Ok(data.unwrap_or(serde_json::Value::Null)),
        },
    };
    if outcome.is_err() {
        link.forget(&request_id);
    }
    if let Err(err @ ProxyError::Timeout { .. }) = &outcome {
        tracing::warn!(orchestratorId = %instance_id, requestId = %request_id, error = %err, "proxied request timed out");
    }
    outcome
}

/// [`request`], reading the answer as `T`.
pub async fn request_as<T: DeserializeOwned>(
    state: &Shared,
    instance_id: &str,
    actor: &str,
    request: PlatformRequest,
) -> Result<T, ProxyError> {
    let kind = request_type(&request);
    let data = self::request(state, instance_id, actor, request).await?;
    serde_json::from_value(data).map_err(|source| ProxyError::InvalidAnswer { request: kind, source })
}
