//! Content and actions served by the run's orchestrator over its socket: step logs, a run's
//! logs, provisioning logs, cancel, re-run, approve and reject. Same paths and shapes as the
//! orchestrator's API. An offline orchestrator is 503 `orchestrator_offline` with the exact
//! texts of `spec/dashboard.md` §3.6; no answer in time is 504 `orchestrator_timeout`; the
//! orchestrator's own error codes are passed through (`not_found` → 404, `conflict` → 409).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, TryStreamExt};
use kici_engine::api::run_actions::{CancelRequest, RerunRequest, nothing_to_cancel};
use kici_engine::api::secrets::{HoldDecision, HoldsDecided};
use kici_engine::api::{Job, ProvisioningLog, RunLogs, StepLog};
use kici_engine::ids::{JobId, RunId};
use kici_engine::platform_protocol::{OrchLogsData, PlatformRequest, StepLogsData};
use kici_engine::runner_protocol::PREPARE_STEP_INDEX;
use serde::Deserialize;
use serde_json::Value;

use super::auth::{ADMIN_ACTOR, Permission, Principal};
use super::error::{ACTION_OFFLINE, ApiError, ApiResult, LOGS_OFFLINE};
use super::runs::find_run;
use crate::proxy::{self, ProxyError};
use crate::state::Shared;

/// Step-log requests in flight at once for one `GET …/logs`.
const LOG_READS_IN_FLIGHT: usize = 8;

/// An orchestrator failure as an HTTP answer; `offline_message` is the text for 503.
fn proxy_error(err: ProxyError, offline_message: &'static str) -> ApiError {
    match err {
        ProxyError::Offline { .. } => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "orchestrator_offline", offline_message)
        }
        ProxyError::Timeout { timeout_ms, .. } => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "orchestrator_timeout",
            format!("the orchestrator did not answer within {timeout_ms}ms (hint: check the orchestrator's log)"),
        ),
        ProxyError::Busy { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "orchestrator_busy",
            "the orchestrator has too many requests waiting; try again shortly",
        ),
        ProxyError::Unsupported { version, request, .. } => ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "unsupported_request_type",
            format!(
                "This orchestrator (v{version}) does not support '{request}'. Upgrade the orchestrator to use this feature."
            ),
        ),
        ProxyError::Refused { error, .. } => {
            let status = match error.code.as_str() {
                "not_found" => StatusCode::NOT_FOUND,
                "conflict" | "run_terminal" | "run_not_finished" | "no_pending_hold" | "nothing_failed" => {
                    StatusCode::CONFLICT
                }
                "not_a_reviewer" => StatusCode::FORBIDDEN,
                "not_rerunnable" | "invalid_inputs" | "not_triggered" | "cannot_start" => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                "invalid_payload" => StatusCode::BAD_REQUEST,
                "unsupported_request_type" => StatusCode::NOT_IMPLEMENTED,
                _ => StatusCode::BAD_GATEWAY,
            };
            ApiError::new(status, error.code, error.message)
        }
        err @ ProxyError::InvalidAnswer { .. } => {
            tracing::warn!(error = %err, cause = ?std::error::Error::source(&err), "unreadable orchestrator answer");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "invalid_orchestrator_answer",
                "the orchestrator's answer could not be read (details are in the Platform log)",
            )
        }
    }
}

/// Reads one step's stored log; `None` when the orchestrator has none for it.
async fn read_step(
    state: &Shared,
    orchestrator_id: &str,
    run_id: &str,
    job_id: &str,
    step_index: i64,
) -> Result<Option<StepLogsData>, ProxyError> {
    let request = PlatformRequest::StepLogs {
        run_id: RunId::from(run_id.to_string()),
        job_id: JobId::from(job_id.to_string()),
        step_index,
    };
    match proxy::request_as(state, orchestrator_id, ADMIN_ACTOR, request).await {
        Ok(data) => Ok(Some(data)),
        Err(ProxyError::Refused { error, .. }) if error.code == "not_found" => Ok(None),
        Err(err) => Err(err),
    }
}

/// `GET /api/v1/runs/:runId/jobs/:jobId/steps/:stepIndex/logs` → `{lines, totalLines}`.
#[derive(Debug, Deserialize)]
pub struct StepLogsQuery {
    /// `text`: the lines as plain text, as the step printed them.
    format: Option<String>,
    /// With `format=text`: as a file to save (`<run>-<job>-step<n>.log`).
    download: Option<String>,
}

/// `GET /api/v1/runs/:runId/jobs/:jobId/steps/:stepIndex/logs[?format=text[&download=1]]`:
/// the step's lines as JSON (`{lines: [{ts, line}], totalLines}`), or as plain text.
pub async fn step_logs(
    State(state): State<Shared>,
    Path((run_id, job_id, step_index)): Path<(String, String, i64)>,
    Query(query): Query<StepLogsQuery>,
) -> ApiResult<Response> {
    let run = find_run(&state, &run_id).await?;
    let request = PlatformRequest::StepLogs {
        run_id: RunId::from(run_id.clone()),
        job_id: JobId::from(job_id.clone()),
        step_index,
    };
    let data: StepLogsData = proxy::request_as(&state, &run.orchestrator_id, ADMIN_ACTOR, request)
        .await
        .map_err(|err| proxy_error(err, LOGS_OFFLINE))?;
    match query.format.as_deref() {
        None | Some("json") => Ok(Json(data).into_response()),
        Some("text") => {
            let mut text = String::new();
            for line in &data.lines {
                text.push_str(&line.line);
                text.push('\n');
            }
            let mut response = ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response();
            if query.download.is_some() {
                // Ids are the Platform's own (letters, digits, dashes): safe in the header.
                let safe = |id: &str| {
                    id.chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .collect::<String>()
                };
                let disposition = format!(
                    "attachment; filename=\"{}-{}-step{step_index}.log\"",
                    safe(&run_id),
                    safe(&job_id)
                );
                if let Ok(value) = header::HeaderValue::from_str(&disposition) {
                    response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
                }
            }
            Ok(response)
        }
        Some(other) => Err(ApiError::bad_request(
            "invalid_format",
            format!("format `{}` is not json or text", kici_engine::excerpt::excerpt(other)),
        )),
    }
}

#[derive(Debug, Deserialize)]
pub struct LogsQuery {
    job: Option<String>,
}

/// `GET /api/v1/runs/:runId/logs[?job=]` → `RunLogs`: the cached jobs and steps, each step's
/// lines read from the orchestrator (the prepare log, step -1, when it has lines).
pub async fn logs(
    State(state): State<Shared>,
    Path(run_id): Path<String>,
    Query(query): Query<LogsQuery>,
) -> ApiResult<Json<RunLogs>> {
    let cached = find_run(&state, &run_id).await?;
    let mut jobs: Vec<Job> = state.cache.run_jobs(&run_id).await?;
    if let Some(name) = &query.job {
        jobs.retain(|j| j.job_name == *name || j.base_job_name == *name);
        if jobs.is_empty() {
            return Err(ApiError::not_found(format!("job {name} not found in run {run_id}")));
        }
    }
    // Fail fast (and with the exact text) instead of once per step.
    proxy::link(&state, &cached.orchestrator_id).map_err(|err| proxy_error(err, LOGS_OFFLINE))?;
    let mut wanted: Vec<StepLog> = Vec::new();
    for job in jobs {
        wanted.push(StepLog {
            job_id: job.job_id.clone(),
            job_name: job.job_name.clone(),
            step_index: PREPARE_STEP_INDEX,
            step_name: "prepare".to_string(),
            status: job.prepare_status(),
            lines: Vec::new(),
        });
        for step in job.steps.unwrap_or_default() {
            wanted.push(StepLog {
                job_id: job.job_id.clone(),
                job_name: job.job_name.clone(),
                step_index: step.step_index,
                step_name: step.step_name,
                status: step.status,
                lines: Vec::new(),
            });
        }
    }
    let orchestrator_id = cached.orchestrator_id.as_str();
    let run_id_ref = run_id.as_str();
    let state_ref = &state;
    let read: Vec<Option<StepLog>> = futures_util::stream::iter(wanted)
        .map(|mut step| async move {
            let data = read_step(state_ref, orchestrator_id, run_id_ref, &step.job_id, step.step_index).await?;
            step.lines = data.map(|d| d.lines).unwrap_or_default();
            // The prepare log is listed only when it has lines, as on the orchestrator.
            let keep = step.step_index != PREPARE_STEP_INDEX || !step.lines.is_empty();
            Ok::<_, ProxyError>(keep.then_some(step))
        })
        .buffered(LOG_READS_IN_FLIGHT)
        .try_collect()
        .await
        .map_err(|err| proxy_error(err, LOGS_OFFLINE))?;
    Ok(Json(RunLogs {
        run_id: RunId::from(run_id),
        status: cached.run.status,
        steps: read.into_iter().flatten().collect(),
    }))
}

/// `GET /api/v1/runs/:runId/jobs/:jobId/provisioning` → `ProvisioningLog`.
pub async fn provisioning(
    State(state): State<Shared>,
    Path((run_id, job_id)): Path<(String, String)>,
) -> ApiResult<Json<ProvisioningLog>> {
    let run = find_run(&state, &run_id).await?;
    let request = PlatformRequest::OrchLogs {
        run_id: RunId::from(run_id.clone()),
        job_id: JobId::from(job_id.clone()),
    };
    let data: OrchLogsData = proxy::request_as(&state, &run.orchestrator_id, ADMIN_ACTOR, request)
        .await
        .map_err(|err| proxy_error(err, LOGS_OFFLINE))?;
    Ok(Json(ProvisioningLog {
        run_id: RunId::from(run_id),
        job_id: JobId::from(job_id),
        lines: data.lines,
        total_lines: data.total_lines,
    }))
}

/// `POST /api/v1/runs/:runId/cancel {force?}` → the orchestrator's answer
/// (`{runId, status, cancelledJobs}`). A run the cache knows as finished is 409 without
/// asking.
pub async fn cancel(
    State(state): State<Shared>,
    Path(run_id): Path<String>,
    axum::Extension(principal): axum::Extension<Principal>,
    body: Option<Json<CancelRequest>>,
) -> ApiResult<Json<Value>> {
    principal.require(Permission::RunsWrite)?;
    let cached = find_run(&state, &run_id).await?;
    if cached.run.status.is_terminal() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "run_terminal",
            nothing_to_cancel(&run_id, cached.run.status),
        ));
    }
    let force = body.map(|Json(b)| b.force).unwrap_or_default();
    let request = PlatformRequest::Cancel {
        run_id: RunId::from(run_id),
        force,
    };
    let answer = proxy::request(&state, &cached.orchestrator_id, &principal.name, request)
        .await
        .map_err(|err| proxy_error(err, ACTION_OFFLINE))?;
    Ok(Json(answer))
}

/// Re-runs within this long of the previous one of the same run are refused (429).
const RERUN_COOLDOWN_MS: i64 = 5_000;

/// `POST /api/v1/runs/:runId/rerun {failedOnly?}` (owners): the run's orchestrator starts it
/// again (with `failedOnly`, only its failed jobs and those that need them) → 201
/// `{runId, newRunId}`.
pub async fn rerun(
    State(state): State<Shared>,
    Path(run_id): Path<String>,
    axum::Extension(principal): axum::Extension<Principal>,
    body: Option<Json<RerunRequest>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    principal.require(Permission::RunsWrite)?;
    let cached = find_run(&state, &run_id).await?;
    if !state
        .rerun_cooldown
        .allow(&run_id, kici_telemetry::os::now_ms(), RERUN_COOLDOWN_MS)
    {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rerun_cooldown",
            format!("run {run_id} was re-run less than 5 s ago; wait a moment"),
        ));
    }
    let request = PlatformRequest::Rerun {
        run_id: RunId::from(run_id),
        failed_only: body.is_some_and(|Json(b)| b.failed_only),
    };
    let answer = proxy::request(&state, &cached.orchestrator_id, &principal.name, request)
        .await
        .map_err(|err| proxy_error(err, ACTION_OFFLINE))?;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// `POST /api/v1/runs/:runId/approve|reject {job?, reason?}` (owners) → `HoldsDecided`: the
/// caller decides the run's pending holds as themselves (reviewer clause `user:<name>`); no
/// pending hold is 409 `no_pending_hold`, a caller the clauses do not name 403
/// `not_a_reviewer`.
async fn decide(
    state: &Shared,
    run_id: String,
    principal: &Principal,
    body: Option<Json<HoldDecision>>,
    request: impl FnOnce(RunId, HoldDecision) -> PlatformRequest,
) -> ApiResult<Json<HoldsDecided>> {
    principal.require(Permission::EnvironmentsWrite)?;
    let cached = find_run(state, &run_id).await?;
    let decision = body.map(|Json(b)| b).unwrap_or_default();
    let answer = proxy::request_as(
        state,
        &cached.orchestrator_id,
        &principal.name,
        request(RunId::from(run_id), decision),
    )
    .await
    .map_err(|err| proxy_error(err, ACTION_OFFLINE))?;
    Ok(Json(answer))
}

pub async fn approve(
    State(state): State<Shared>,
    Path(run_id): Path<String>,
    axum::Extension(principal): axum::Extension<Principal>,
    body: Option<Json<HoldDecision>>,
) -> ApiResult<Json<HoldsDecided>> {
    decide(&state, run_id, &principal, body, |run_id, decision| {
        PlatformRequest::ApproveHeld {
            run_id,
            job: decision.job,
        }
    })
    .await
}

pub async fn reject(
    State(state): State<Shared>,
    Path(run_id): Path<String>,
    axum::Extension(principal): axum::Extension<Principal>,
    body: Option<Json<HoldDecision>>,
) -> ApiResult<Json<HoldsDecided>> {
    decide(&state, run_id, &principal, body, |run_id, decision| {
        PlatformRequest::RejectHeld {
            run_id,
            job: decision.job,
            // An empty reason field is no reason.
            reason: decision.reason.filter(|reason| !reason.trim().is_empty()),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use kici_engine::platform_protocol::ResponseError;

    #[test]
    fn orchestrator_failures_become_http_answers() {
        let check = |err: ProxyError, status: u16, code: &str, message: &str| {
            let api = proxy_error(err, LOGS_OFFLINE);
            assert_eq!(
                (api.status.as_u16(), api.code.as_ref(), api.message.as_str()),
                (status, code, message)
            );
        };
        let refused = |code: &str| ProxyError::Refused {
            request: "run.cancel.request",
            error: ResponseError {
                code: code.into(),
                message: "why".into(),
            },
        };
        check(
            ProxyError::Offline {
                instance_id: "o".into(),
            },
            503,
            "orchestrator_offline",
            "Log content is served by the orchestrator, which is currently offline",
        );
        check(
            ProxyError::Timeout {
                instance_id: "o".into(),
                request: "dashboard.step.logs",
                timeout_ms: 15000,
            },
            504,
            "orchestrator_timeout",
            "the orchestrator did not answer within 15000ms (hint: check the orchestrator's log)",
        );
        check(
            ProxyError::Unsupported {
                instance_id: "o".into(),
                version: "0.1.0".into(),
                request: "dashboard.orch.logs",
            },
            501,
            "unsupported_request_type",
            "This orchestrator (v0.1.0) does not support 'dashboard.orch.logs'. Upgrade the orchestrator to use this feature.",
        );
        check(refused("not_found"), 404, "not_found", "why");
        check(refused("conflict"), 409, "conflict", "why");
        check(refused("no_pending_hold"), 409, "no_pending_hold", "why");
        check(refused("not_a_reviewer"), 403, "not_a_reviewer", "why");
        check(refused("internal"), 502, "internal", "why");
    }
}

/// `POST /api/v1/workflows/dispatch {orchestratorId, source, repo, workflow, type?, inputs}` (owners) →
/// `201 Dispatched`: "Run now" of a workflow's `dispatch()` trigger, as the caller; refused
/// inputs are 422 `invalid_inputs` naming each.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DispatchBody {
    orchestrator_id: String,
    source: String,
    repo: String,
    workflow: String,
    #[serde(default, rename = "type")]
    dispatch_type: Option<String>,
    #[serde(default)]
    inputs: serde_json::Map<String, Value>,
}

pub async fn dispatch(
    State(state): State<Shared>,
    axum::Extension(principal): axum::Extension<Principal>,
    Json(body): Json<DispatchBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    principal.require(Permission::RunsWrite)?;
    let request = PlatformRequest::Dispatch {
        source: body.source,
        repo: body.repo,
        workflow: body.workflow,
        dispatch_type: body.dispatch_type,
        inputs: body.inputs,
    };
    let answer = proxy::request(&state, &body.orchestrator_id, &principal.name, request)
        .await
        .map_err(|err| proxy_error(err, ACTION_OFFLINE))?;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// `POST /api/v1/schedules/:id/run {orchestratorId}` (owners) → `201 Dispatched`: a schedule's
/// workflow now.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunScheduleBody {
    orchestrator_id: String,
}

pub async fn run_schedule(
    State(state): State<Shared>,
    Path(schedule_id): Path<String>,
    axum::Extension(principal): axum::Extension<Principal>,
    Json(body): Json<RunScheduleBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    principal.require(Permission::RunsWrite)?;
    let answer = proxy::request(
        &state,
        &body.orchestrator_id,
        &principal.name,
        PlatformRequest::RunSchedule { schedule_id },
    )
    .await
    .map_err(|err| proxy_error(err, ACTION_OFFLINE))?;
    Ok((StatusCode::CREATED, Json(answer)))
}
