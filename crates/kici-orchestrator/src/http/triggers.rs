//! Starting workflows without a git event: `GET /api/v1/workflows` (the default branches'
//! workflows), `POST /api/v1/workflows/:workflow/dispatch` (`{source?, repo?, ref?, type?,
//! inputs}`), and the registered schedules:
//! `GET /api/v1/schedules`, `POST /api/v1/schedules/:id/run` (now, at the default branch's
//! head) and `POST /api/v1/schedules/:id/enable|disable`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kici_engine::api::triggers::{DispatchRequest, Dispatched, ScheduleEntry, ScheduleList, WorkflowList};
use kici_engine::excerpt::excerpt;
use kici_store::{Registration, Source};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use crate::clock::now_ms;
use crate::pipeline::PipelineError;
use crate::starts::{StartError, Started};
use crate::state::Shared;
use crate::{catalog, scheduler};

impl From<StartError> for ApiError {
    fn from(err: StartError) -> ApiError {
        let unprocessable =
            |code: &'static str, message: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message);
        match err {
            StartError::Pipeline(PipelineError::Store(err)) => err.into(),
            StartError::Inputs { workflow, errors } => ApiError {
                fields: errors.0.clone(),
                ..unprocessable("invalid_inputs", format!("workflow '{workflow}': {errors}"))
            },
            StartError::NoWorkflow { .. } => ApiError::not_found(err.to_string()),
            StartError::NotTriggered { .. } => unprocessable("not_triggered", err.to_string()),
            other => unprocessable("cannot_start", other.to_string()),
        }
    }
}

/// The source a request names, or the only one there is.
async fn source(state: &Shared, name: Option<&str>) -> ApiResult<Source> {
    let sources = state.store.list_sources().await?;
    match name {
        Some(name) => sources
            .into_iter()
            .find(|s| s.source_id.as_str() == name || s.name == name)
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "no source `{}` (hint: `kici-admin source list`)",
                    excerpt(name)
                ))
            }),
        None if sources.len() == 1 => Ok(sources.into_iter().next().expect("one source")),
        None => {
            let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
            Err(ApiError::bad_request(
                "source_required",
                format!(
                    "there are {} sources; name one with `source` (--source): {}",
                    sources.len(),
                    names.join(", ")
                ),
            ))
        }
    }
}

fn answer(workflow: String, started: Started) -> (StatusCode, Json<Dispatched>) {
    (
        StatusCode::CREATED,
        Json(Dispatched {
            run_id: started.run_id,
            workflow,
            git_ref: started.git_ref,
            sha: started.sha,
        }),
    )
}

pub async fn dispatch(
    State(state): State<Shared>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(workflow): Path<String>,
    Json(request): Json<DispatchRequest>,
) -> ApiResult<(StatusCode, Json<Dispatched>)> {
    let source = source(&state, request.source.as_deref()).await?;
    let dispatched = catalog::dispatch(
        &state,
        &caller.label,
        catalog::Dispatch {
            source,
            repo: request.repo,
            git_ref: request.git_ref,
            dispatch_type: request.dispatch_type,
            workflow,
            inputs: request.inputs,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(dispatched)))
}

pub async fn schedules(State(state): State<Shared>) -> ApiResult<Json<ScheduleList>> {
    Ok(Json(ScheduleList {
        schedules: catalog::schedules(&state).await?,
    }))
}

pub async fn workflows(State(state): State<Shared>) -> ApiResult<Json<WorkflowList>> {
    Ok(Json(catalog::workflows(&state).await?))
}

async fn registration(state: &Shared, id: &str) -> ApiResult<Registration> {
    state
        .store
        .registration(id)
        .await?
        .filter(|r| r.kind == "schedule")
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no schedule `{}` (hint: `kici-admin schedules list`)",
                excerpt(id)
            ))
        })
}

pub async fn run_now(
    State(state): State<Shared>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Dispatched>)> {
    let registration = registration(&state, &id).await?;
    let started = scheduler::start_now(&state, &registration, now_ms(), Some(&caller.label)).await?;
    tracing::info!(runId = %started.run_id, workflow = %registration.workflow_name, by = %caller.label, "schedule run now");
    Ok(answer(registration.workflow_name, started))
}

async fn set_enabled(state: &Shared, id: &str, enabled: bool) -> ApiResult<Json<ScheduleEntry>> {
    registration(state, id).await?;
    state.store.set_registration_enabled(id, enabled, now_ms()).await?;
    let sources = state.store.list_sources().await?;
    let updated = registration(state, id).await?;
    catalog::schedule_entry(updated, &sources, now_ms())
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no schedule `{}`", excerpt(id))))
}

pub async fn enable(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<ScheduleEntry>> {
    set_enabled(&state, &id, true).await
}

pub async fn disable(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<ScheduleEntry>> {
    set_enabled(&state, &id, false).await
}
