//! Runs over REST: lists, detail with jobs and steps, step logs, timelines and provisioning logs,
//! and cancel and re-run as adapters over [`crate::runs`].

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use futures_util::StreamExt as _;
use kici_engine::api::answers::{JobsAnswer, LogLinesAnswer, RunAnswer};
use kici_engine::api::run_actions::{CancelRequest, Cancelled, Rerun, RerunRequest};
use kici_engine::api::{Job, ProvisioningLog, Run, RunDetail, RunEvents, RunList, RunLogs, StepLog};
use kici_engine::ids::{JobId, RunId};
use kici_engine::runner_protocol::PREPARE_STEP_INDEX;
use kici_engine::status::RunStatus;
use kici_store::RunFilter;
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use crate::runs::RunActionError;
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

async fn find_run(state: &Shared, run_id: &RunId) -> ApiResult<Run> {
    let mut run = state
        .store
        .get_run(run_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("run {run_id} not found")))?;
    run.reruns = state.store.reruns_of(run_id).await?;
    Ok(run)
}

pub async fn show(State(state): State<Shared>, Path(run_id): Path<RunId>) -> ApiResult<Json<RunAnswer>> {
    Ok(Json(RunAnswer {
        run: find_run(&state, &run_id).await?,
    }))
}

pub async fn detail(State(state): State<Shared>, Path(run_id): Path<RunId>) -> ApiResult<Json<RunDetail>> {
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
    Path(run_id): Path<RunId>,
    Query(query): Query<JobsQuery>,
) -> ApiResult<Json<JobsAnswer>> {
    find_run(&state, &run_id).await?;
    let jobs: Vec<Job> = state
        .store
        .run_jobs(&run_id, query.include_steps.unwrap_or(false))
        .await?
        .into_iter()
        .map(|r| r.job)
        .collect();
    Ok(Json(JobsAnswer { jobs }))
}

#[derive(Debug, Deserialize)]
pub struct LogsQuery {
    job: Option<String>,
}

pub async fn logs(
    State(state): State<Shared>,
    Path(run_id): Path<RunId>,
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
    // Jobs are read a few at a time: with object storage each is a listing and its objects.
    let (logs, of_run) = (&state.logs, &run_id);
    let ids: Vec<JobId> = jobs.iter().map(|j| j.job_id.clone()).collect();
    let read: Vec<std::io::Result<_>> = futures_util::stream::iter(ids)
        .map(move |job_id| async move { logs.read_job(of_run, &job_id).await })
        .buffered(8)
        .collect()
        .await;
    let mut steps = Vec::new();
    for (job, logs) in jobs.into_iter().zip(read) {
        let mut logs = logs.map_err(log_error)?;
        let prepare = logs.remove(&PREPARE_STEP_INDEX).unwrap_or_default();
        if !prepare.is_empty() {
            steps.push(StepLog {
                job_id: job.job_id.clone(),
                job_name: job.job_name.clone(),
                step_index: PREPARE_STEP_INDEX,
                step_name: "prepare".to_string(),
                status: job.prepare_status(),
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
                lines: logs.remove(&step.step_index).unwrap_or_default(),
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
    Path((run_id, job_id, step_index)): Path<(RunId, JobId, i64)>,
) -> ApiResult<Json<LogLinesAnswer>> {
    find_run(&state, &run_id).await?;
    job_of_run(&state, &run_id, &job_id).await?;
    let lines = state.logs.read(&run_id, &job_id, step_index).await.map_err(log_error)?;
    Ok(Json(LogLinesAnswer { lines }))
}

/// A job id names a directory under the run's logs: only a job of that run may be read.
async fn job_of_run(state: &Shared, run_id: &RunId, job_id: &JobId) -> ApiResult<()> {
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
pub async fn events(State(state): State<Shared>, Path(run_id): Path<RunId>) -> ApiResult<Json<RunEvents>> {
    find_run(&state, &run_id).await?;
    let events = state.store.run_events(&run_id).await?;
    Ok(Json(RunEvents { run_id, events }))
}

/// `GET /api/v1/runs/:runId/jobs/:jobId/provisioning`: the job's `provisioning.jsonl`.
pub async fn provisioning(
    State(state): State<Shared>,
    Path((run_id, job_id)): Path<(RunId, JobId)>,
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
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "cannot read the step log (details are in the orchestrator log)",
    )
}

/// `POST /api/v1/admin/runs/:runId/cancel {force?}` → `{runId, status: cancelling|cancelled,
/// cancelledJobs}`; 404 for an unknown run, 409 for a finished one.
pub async fn cancel(
    State(state): State<Shared>,
    Path(run_id): Path<RunId>,
    axum::Extension(caller): axum::Extension<super::auth::Caller>,
    body: Option<Json<CancelRequest>>,
) -> ApiResult<Json<Cancelled>> {
    let force = body.map(|Json(b)| b.force).unwrap_or_default();
    crate::runs::cancel(&state, &run_id, &caller.0.label, force)
        .await
        .map(Json)
        .map_err(action_error)
}

/// `POST /api/v1/runs/cancel-by-branch {branch, force?}` → `{branch, runs: [Cancelled]}`; 400
/// for an empty branch.
pub async fn cancel_branch(
    State(state): State<Shared>,
    axum::Extension(caller): axum::Extension<super::auth::Caller>,
    Json(request): Json<kici_engine::api::run_actions::CancelBranchRequest>,
) -> ApiResult<Json<kici_engine::api::run_actions::BranchCancelled>> {
    crate::runs::cancel_branch(&state, &request.branch, &caller.0.label, request.force)
        .await
        .map(Json)
        .map_err(action_error)
}

/// `POST /api/v1/runs/:runId/rerun {failedOnly?}` → 201 `{runId, newRunId}`; 404 unknown, 409
/// unfinished (or, failed jobs only, nothing failed), 422 when the run has no workflow to run
/// again.
pub async fn rerun(
    State(state): State<Shared>,
    Path(run_id): Path<RunId>,
    axum::Extension(caller): axum::Extension<super::auth::Caller>,
    body: Option<Json<RerunRequest>>,
) -> ApiResult<(StatusCode, Json<Rerun>)> {
    let failed_only = body.is_some_and(|Json(b)| b.failed_only);
    crate::runs::rerun(&state, &run_id, &caller.0.label, failed_only)
        .await
        .map(|answer| (StatusCode::CREATED, Json(answer)))
        .map_err(action_error)
}

fn action_error(err: RunActionError) -> ApiError {
    let status = match err {
        RunActionError::NotFound(_) => StatusCode::NOT_FOUND,
        RunActionError::Finished { .. } | RunActionError::NotFinished(_) | RunActionError::NothingFailed(_) => {
            StatusCode::CONFLICT
        }
        RunActionError::NotRerunnable(_) => StatusCode::UNPROCESSABLE_ENTITY,
        RunActionError::Invalid(_) => StatusCode::BAD_REQUEST,
        RunActionError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, err.code(), err.to_string())
}
