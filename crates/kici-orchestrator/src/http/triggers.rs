//! Starting workflows without a git event: `POST /api/v1/workflows/:workflow/dispatch`
//! (`{source?, repo?, ref?, type?, inputs}`), and the registered schedules:
//! `GET /api/v1/schedules`, `POST /api/v1/schedules/:id/run` (now, at the default branch's
//! head) and `POST /api/v1/schedules/:id/enable|disable`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kici_engine::api::triggers::{DispatchRequest, Dispatched, ScheduleEntry, ScheduleList};
use kici_engine::event::{EventEnvelope, EventType};
use kici_engine::excerpt::excerpt;
use kici_engine::trigger::Trigger;
use kici_store::{Registration, Source};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use crate::clock::now_ms;
use crate::ids::new_id;
use crate::pipeline::PipelineError;
use crate::scheduler;
use crate::starts::{self, StartError, StartRequest, Started};
use crate::state::Shared;

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
    let mut event = EventEnvelope::new(EventType::Dispatch);
    event.action = request.dispatch_type;
    event.provider = Some("api".to_string());
    event.sender_username = Some(caller.label.clone());
    event.dispatch_inputs = Some(request.inputs);
    let started = starts::start(
        &state,
        StartRequest {
            source,
            repo: request.repo,
            git_ref: request.git_ref,
            workflow: workflow.clone(),
            event,
            delivery_id: format!("dispatch:{}", new_id()),
        },
    )
    .await?;
    tracing::info!(runId = %started.run_id, workflow = %workflow, by = %caller.label, "workflow dispatched");
    Ok(answer(workflow, started))
}

fn entry(registration: Registration, sources: &[Source], now: i64) -> Option<ScheduleEntry> {
    let (trigger, schedule) = scheduler::schedule_of(&registration)?;
    let Trigger::Schedule {
        cron_expression,
        timezone,
        description,
        inputs,
    } = trigger
    else {
        return None;
    };
    let source = sources
        .iter()
        .find(|s| s.source_id == registration.source_id)
        .map_or_else(|| registration.source_id.to_string(), |s| s.name.clone());
    Some(ScheduleEntry {
        id: registration.registration_id,
        source,
        repo: registration.repo,
        workflow: registration.workflow_name,
        cron: cron_expression,
        timezone,
        description,
        inputs,
        enabled: registration.enabled,
        git_ref: registration.git_ref,
        sha: registration.sha,
        last_fired_at: registration.last_fired_at,
        next_fire_at: registration
            .enabled
            .then(|| schedule.next_after(registration.last_fired_at.max(now)))
            .flatten(),
        registered_at: registration.registered_at,
    })
}

pub async fn schedules(State(state): State<Shared>) -> ApiResult<Json<ScheduleList>> {
    let sources = state.store.list_sources().await?;
    let now = now_ms();
    let schedules = state
        .store
        .registrations(Some("schedule"))
        .await?
        .into_iter()
        .filter_map(|r| entry(r, &sources, now))
        .collect();
    Ok(Json(ScheduleList { schedules }))
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
    entry(updated, &sources, now_ms())
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no schedule `{}`", excerpt(id))))
}

pub async fn enable(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<ScheduleEntry>> {
    set_enabled(&state, &id, true).await
}

pub async fn disable(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<ScheduleEntry>> {
    set_enabled(&state, &id, false).await
}
