//! Run reads served from the cache, so they work while the orchestrator is offline: the list,
//! one run, its detail (with `orchestratorOnline` and `stale`), its jobs and its timeline.
//! Paths and shapes are the orchestrator's (`docs/api.md`), so `kici runs …` works against
//! either.

use axum::Json;
use axum::extract::{Path, Query, State};
use kici_engine::api::answers::{JobsAnswer, RunAnswer};
use kici_engine::api::{Job, RunDetail, RunEvents, RunList};
use kici_engine::ids::RunId;
use kici_engine::status::RunStatus;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};
use crate::cache::{CachedRun, RunFilter};
use crate::connections::is_stale;
use crate::state::Shared;
use kici_telemetry::os::now_ms;

/// Page size when none is asked for, and the largest allowed.
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    workflow: Option<String>,
    #[serde(rename = "workflow-name")]
    workflow_name: Option<String>,
    repo: Option<String>,
    branch: Option<String>,
    trigger: Option<String>,
    since: Option<i64>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `status=failed,running` → the statuses, or a 400 naming the bad one.
fn parse_statuses(text: Option<&str>) -> ApiResult<Vec<RunStatus>> {
    text.iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            name.parse().map_err(|_| {
                let names: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::bad_request(
                    "invalid_query",
                    format!("unknown run status `{name}` (hint: one of {})", names.join(", ")),
                )
            })
        })
        .collect()
}

pub async fn list(State(state): State<Shared>, Query(query): Query<ListQuery>) -> ApiResult<Json<RunList>> {
    let filter = RunFilter {
        statuses: parse_statuses(query.status.as_deref())?,
        workflow: query.workflow.or(query.workflow_name).filter(|w| !w.is_empty()),
        repo: query.repo.filter(|r| !r.is_empty()),
        branch: query.branch.filter(|b| !b.is_empty()),
        trigger: query.trigger.filter(|t| !t.is_empty()),
        since: query.since,
        limit: query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
        offset: query.offset.unwrap_or(0).max(0),
    };
    let (runs, total) = state.cache.list_runs(&filter).await?;
    Ok(Json(RunList { runs, total }))
}

pub async fn find_run(state: &Shared, run_id: &str) -> ApiResult<CachedRun> {
    state
        .cache
        .get_run(run_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("run {run_id} not found")))
}

pub async fn show(State(state): State<Shared>, Path(run_id): Path<String>) -> ApiResult<Json<RunAnswer>> {
    Ok(Json(RunAnswer {
        run: find_run(&state, &run_id).await?.run,
    }))
}

/// `GET /api/v1/runs/:runId/detail`: the orchestrator's `RunDetail` plus what only the
/// Platform knows.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DetailResponse {
    #[serde(flatten)]
    detail: RunDetail,
    /// Whether the orchestrator that owns the run is connected (log reads and actions work).
    orchestrator_online: bool,
    /// The run is not finished but its orchestrator has been away longer than
    /// `KICI_PLATFORM_STALE_AFTER_MS`: its status may never be updated.
    stale: bool,
}

pub async fn detail(State(state): State<Shared>, Path(run_id): Path<String>) -> ApiResult<Json<DetailResponse>> {
    let cached = find_run(&state, &run_id).await?;
    let jobs = state.cache.run_jobs(&run_id).await?;
    let (online, stale) = freshness(&state, &cached).await?;
    Ok(Json(DetailResponse {
        detail: RunDetail { run: cached.run, jobs },
        orchestrator_online: online,
        stale,
    }))
}

/// Whether the run's orchestrator is online, and whether the run is stale (unfinished, its
/// orchestrator away longer than `KICI_PLATFORM_STALE_AFTER_MS`).
pub async fn freshness(state: &Shared, cached: &CachedRun) -> ApiResult<(bool, bool)> {
    let (online, last_seen_at) = match state.connections.state(&cached.orchestrator_id) {
        Some(orchestrator) => (orchestrator.online, orchestrator.last_seen_at),
        None => match state.cache.get_orchestrator(&cached.orchestrator_id).await? {
            // Not seen by this process: offline since its last recorded contact.
            Some(record) => (false, record.last_seen_at),
            None => (false, cached.updated_at),
        },
    };
    let stale = is_stale(
        cached.run.status.is_terminal(),
        online,
        last_seen_at,
        now_ms(),
        state.config.stale_after.as_millis() as i64,
    );
    Ok((online, stale))
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
) -> ApiResult<Json<JobsAnswer>> {
    find_run(&state, &run_id).await?;
    let mut jobs: Vec<Job> = state.cache.run_jobs(&run_id).await?;
    if !query.include_steps.unwrap_or(false) {
        for job in &mut jobs {
            job.steps = None;
        }
    }
    Ok(Json(JobsAnswer { jobs }))
}

/// `GET /api/v1/runs/:runId/events`: the cached timeline, oldest first.
pub async fn events(State(state): State<Shared>, Path(run_id): Path<String>) -> ApiResult<Json<RunEvents>> {
    find_run(&state, &run_id).await?;
    let events = state.cache.run_events(&run_id).await?;
    Ok(Json(RunEvents {
        run_id: RunId::from(run_id),
        events,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_parsed_or_refused() {
        assert_eq!(
            parse_statuses(Some("failed, running,")).unwrap(),
            vec![RunStatus::Failed, RunStatus::Running]
        );
        assert_eq!(parse_statuses(None).unwrap(), Vec::<RunStatus>::new());
        let err = parse_statuses(Some("done")).unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.code.as_ref(), err.message.as_str()),
            (
                400,
                "invalid_query",
                "unknown run status `done` (hint: one of pending, running, cancelling, held, success, failed, cancelled)"
            )
        );
    }
}
