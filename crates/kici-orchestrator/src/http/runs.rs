//! Read access to runs: lists, detail with jobs and steps, and step logs.

use axum::Json;
use axum::extract::{Path, Query, State};
use kici_engine::api::{Job, ProvisioningLog, Run, RunDetail, RunEvents, RunList, RunLogs, StepLog};
use kici_engine::runner_protocol::PREPARE_STEP_INDEX;
use kici_engine::status::{RunStatus, StepStatus};
use kici_store::RunFilter;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use crate::state::Shared;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    workflow: Option<String>,
    #[serde(rename = "workflow-name")]
    workflow_name: Option<String>,
    repo: Option<String>,
    since: Option<i64>,
    limit: Option<i64>,
    offset: Option<i64>,
}

pub async fn list(State(state): State<Shared>, Query(query): Query<ListQuery>) -> ApiResult<Json<RunList>> {
    let mut statuses = Vec::new();
    for name in query
        .status
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let status: RunStatus = name.parse().map_err(|_| {
            ApiError::bad_request(
                "invalid_query",
                format!("unknown run status `{name}` (hint: pending, running, success, failed, cancelled)"),
            )
        })?;
        statuses.push(status);
    }
    let filter = RunFilter {
        statuses,
        workflow: query.workflow.or(query.workflow_name),
        repo: query.repo,
        since: query.since,
        limit: query.limit.unwrap_or(20).clamp(1, 100),
        offset: query.offset.unwrap_or(0).max(0),
    };
    let (runs, total) = state.store.list_runs(&filter).await?;
    Ok(Json(RunList { runs, total }))
}

async fn find_run(state: &Shared, run_id: &str) -> ApiResult<Run> {
    let mut run = state
        .store
        .get_run(run_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("run {run_id} not found")))?;
    run.reruns = state.store.reruns_of(run_id).await?;
    Ok(run)
}

pub async fn show(State(state): State<Shared>, Path(run_id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "run": find_run(&state, &run_id).await? })))
}

pub async fn detail(State(state): State<Shared>, Path(run_id): Path<String>) -> ApiResult<Json<RunDetail>> {
    let run = find_run(&state, &run_id).await?;
    let jobs = state
        .store
        .run_jobs(&run_id, true)
        .await?
        .into_iter()
        .map(|r| r.job)
        .collect();
    Ok(Json(RunDetail { run, jobs }))
}

#[derive(Debug, Deserialize)]
pub struct JobsQuery {
    #[serde(rename = "includeSteps")]
    include_steps: Option<bool>,
}

pub async fn jobs(
    State(state): State<Shared>,
    Path(run_id): Path<String>,
    Query(query): Query<JobsQuery>,
) -> ApiResult<Json<Value>> {
    find_run(&state, &run_id).await?;
    let jobs: Vec<Job> = state
        .store
        .run_jobs(&run_id, query.include_steps.unwrap_or(false))
        .await?
        .into_iter()
        .map(|r| r.job)
        .collect();
    Ok(Json(json!({ "jobs": jobs })))
}

#[derive(Debug, Deserialize)]
pub struct LogsQuery {
    job: Option<String>,
}

pub async fn logs(
    State(state): State<Shared>,
    Path(run_id): Path<String>,
    Query(query): Query<LogsQuery>,
) -> ApiResult<Json<RunLogs>> {
    let run = find_run(&state, &run_id).await?;
    let mut jobs: Vec<Job> = state
        .store
        .run_jobs(&run_id, true)
        .await?
        .into_iter()
        .map(|r| r.job)
        .collect();
    if let Some(name) = &query.job {
        jobs.retain(|j| j.job_name == *name || j.base_job_name == *name);
        if jobs.is_empty() {
            return Err(ApiError::not_found(format!("job {name} not found in run {run_id}")));
        }
    }
    let mut steps = Vec::new();
    for job in jobs {
        let read = |index: i64| state.logs.read(&run_id, &job.job_id, index);
        let prepare = read(PREPARE_STEP_INDEX).await.map_err(log_error)?;
        if !prepare.is_empty() {
            steps.push(StepLog {
                job_id: job.job_id.clone(),
                job_name: job.job_name.clone(),
                step_index: PREPARE_STEP_INDEX,
                step_name: "prepare".to_string(),
                status: StepStatus::Success,
                lines: prepare,
            });
        }
        for step in job.steps.unwrap_or_default() {
            steps.push(StepLog {
                job_id: job.job_id.clone(),
                job_name: job.job_name.clone(),
                step_index: step.step_index,
                step_name: step.step_name,
                status: step.status,
                lines: read(step.step_index).await.map_err(log_error)?,
            });
        }
    }
    Ok(Json(RunLogs {
        run_id,
        status: run.status,
        steps,
    }))
}

pub async fn step_logs(
    State(state): State<Shared>,
    Path((run_id, job_id, step_index)): Path<(String, String, i64)>,
) -> ApiResult<Json<Value>> {
    find_run(&state, &run_id).await?;
    job_of_run(&state, &run_id, &job_id).await?;
    let lines = state.logs.read(&run_id, &job_id, step_index).await.map_err(log_error)?;
    Ok(Json(json!({ "lines": lines })))
}

/// A job id names a directory under the run's logs: only a job of that run may be read.
async fn job_of_run(state: &Shared, run_id: &str, job_id: &str) -> ApiResult<()> {
    if state
        .store
        .get_job(job_id)
        .await?
        .is_none_or(|job| job.job.run_id != run_id)
    {
        return Err(ApiError::not_found(format!(
            "job {} not found in run {run_id}",
            kici_engine::excerpt::excerpt(job_id)
        )));
    }
    Ok(())
}

/// `GET /api/v1/runs/:runId/events`: the run's timeline milestones, oldest first.
pub async fn events(State(state): State<Shared>, Path(run_id): Path<String>) -> ApiResult<Json<RunEvents>> {
    find_run(&state, &run_id).await?;
    let events = state.store.run_events(&run_id).await?;
    Ok(Json(RunEvents { run_id, events }))
}

/// `GET /api/v1/runs/:runId/jobs/:jobId/provisioning`: the job's `provisioning.jsonl`.
pub async fn provisioning(
    State(state): State<Shared>,
    Path((run_id, job_id)): Path<(String, String)>,
) -> ApiResult<Json<ProvisioningLog>> {
    find_run(&state, &run_id).await?;
    job_of_run(&state, &run_id, &job_id).await?;
    let lines = state
        .logs
        .read_provisioning(&run_id, &job_id)
        .await
        .map_err(log_error)?;
    Ok(Json(ProvisioningLog {
        run_id,
        job_id,
        total_lines: lines.len(),
        lines,
    }))
}

fn log_error(err: std::io::Error) -> ApiError {
    tracing::error!(error = %err, "cannot read a step log");
    ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "cannot read the step log (details are in the orchestrator log)",
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct CancelRequest {
    #[serde(default)]
    force: bool,
}

/// `POST /api/v1/admin/runs/:runId/cancel {force?}` → `{status: cancelling|cancelled,
/// cancelledJobs}`; 404 for an unknown run, 409 for a finished one.
pub async fn cancel(
    State(state): State<Shared>,
    Path(run_id): Path<String>,
    axum::Extension(caller): axum::Extension<super::auth::Caller>,
    body: Option<Json<CancelRequest>>,
) -> ApiResult<Json<Value>> {
    let force = body.map(|Json(b)| b.force).unwrap_or_default();
    cancel_answer(&state, &run_id, &caller.0.label, force).await.map(Json)
}

/// Cancels a run for `actor` (a token label, or a dashboard user): the answer of
/// `POST …/cancel`, also given to the Platform's `run.cancel.request`.
pub async fn cancel_answer(state: &Shared, run_id: &str, actor: &str, force: bool) -> ApiResult<Value> {
    let run = find_run(state, run_id).await?;
    if run.status.is_terminal() {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "run_terminal",
            format!(
                "run {run_id} already finished ({}); there is nothing to cancel",
                run.status
            ),
        ));
    }
    let reason = format!("Cancelled by {actor}");
    let outcome = crate::progress::cancel_run(state, run_id, &reason, force).await?;
    let status = if outcome.notified > 0 {
        "cancelling"
    } else {
        "cancelled"
    };
    Ok(json!({
        "runId": run_id,
        "status": status,
        "cancelledJobs": outcome.cancelled + outcome.notified,
    }))
}

/// `POST /api/v1/runs/:runId/rerun` → 201 `{runId, newRunId}`; 404 unknown, 409 unfinished,
/// 422 when the run has no workflow to run again.
pub async fn rerun(
    State(state): State<Shared>,
    Path(run_id): Path<String>,
) -> ApiResult<(axum::http::StatusCode, Json<Value>)> {
    rerun_answer(&state, &run_id)
        .await
        .map(|answer| (axum::http::StatusCode::CREATED, Json(answer)))
}

/// The answer of `POST …/rerun`, also given to the Platform's `run.rerun.request`.
pub async fn rerun_answer(state: &Shared, run_id: &str) -> ApiResult<Value> {
    use crate::pipeline::RerunError;
    use axum::http::StatusCode;
    match crate::pipeline::rerun(state, run_id).await {
        Ok(new_run_id) => Ok(json!({ "runId": run_id, "newRunId": new_run_id })),
        Err(err @ RerunError::NotFound(_)) => Err(ApiError::not_found(err.to_string())),
        Err(err @ RerunError::NotFinished { .. }) => {
            Err(ApiError::new(StatusCode::CONFLICT, "run_not_finished", err.to_string()))
        }
        Err(err @ (RerunError::NoWorkflow(_) | RerunError::NoSource(_))) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_rerunnable",
            err.to_string(),
        )),
        Err(RerunError::Pipeline(err)) => {
            tracing::error!(runId = %run_id, error = %err, "re-run failed");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("cannot start the run again: {err}"),
            ))
        }
    }
}
