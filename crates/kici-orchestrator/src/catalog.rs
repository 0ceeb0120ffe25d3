//! What the default branches hold, for people: each registered workflow with its triggers, its
//! dispatch inputs and its schedules with their next tick (`GET /api/v1/workflows`,
//! `GET /api/v1/schedules`, the dashboard's Workflows page), and dispatches started by a person
//! (the API and the dashboard's "Run now").

use kici_engine::api::triggers::{DispatchForm, Dispatched, ScheduleEntry, WorkflowEntry, WorkflowList};
use kici_engine::event::{EventEnvelope, EventType};
use kici_engine::trigger::Trigger;
use kici_store::{Registration, Source, StoreError};
use serde_json::{Map, Value};

use crate::clock::now_ms;
use crate::ids::new_id;
use crate::registrations::WORKFLOW_KIND;
use crate::scheduler;
use crate::starts::{self, StartError, StartRequest};
use crate::state::Shared;

fn source_name(registration: &Registration, sources: &[Source]) -> String {
    sources
        .iter()
        .find(|s| s.source_id == registration.source_id)
        .map_or_else(|| registration.source_id.to_string(), |s| s.name.clone())
}

/// A schedule registration as people see it, with its next tick after `now`.
pub fn schedule_entry(registration: Registration, sources: &[Source], now: i64) -> Option<ScheduleEntry> {
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
    Some(ScheduleEntry {
        source: source_name(&registration, sources),
        id: registration.registration_id,
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

pub async fn schedules(state: &Shared) -> Result<Vec<ScheduleEntry>, StoreError> {
    let sources = state.store.list_sources().await?;
    let now = now_ms();
    Ok(state
        .store
        .registrations(Some("schedule"))
        .await?
        .into_iter()
        .filter_map(|r| schedule_entry(r, &sources, now))
        .collect())
}

pub async fn workflows(state: &Shared) -> Result<WorkflowList, StoreError> {
    let sources = state.store.list_sources().await?;
    let schedules = schedules(state).await?;
    let mut workflows = Vec::new();
    for registration in state.store.registrations(Some(WORKFLOW_KIND)).await? {
        let triggers: Vec<Trigger> = serde_json::from_str(&registration.trigger_json).unwrap_or_default();
        let dispatch = triggers.iter().find_map(|trigger| match trigger {
            Trigger::Dispatch { types, inputs } => Some(DispatchForm {
                types: types.clone(),
                inputs: inputs.clone(),
            }),
            _ => None,
        });
        let source = source_name(&registration, &sources);
        workflows.push(WorkflowEntry {
            schedules: schedules
                .iter()
                .filter(|s| {
                    s.source == source && s.repo == registration.repo && s.workflow == registration.workflow_name
                })
                .cloned()
                .collect(),
            triggers: triggers.iter().map(Trigger::summary).collect(),
            dispatch,
            source,
            repo: registration.repo,
            workflow: registration.workflow_name,
            git_ref: registration.git_ref,
            sha: registration.sha,
        });
    }
    Ok(WorkflowList { workflows })
}

/// What a person's dispatch names.
pub struct Dispatch {
    pub source: Source,
    pub repo: Option<String>,
    pub git_ref: Option<String>,
    pub dispatch_type: Option<String>,
    pub workflow: String,
    pub inputs: Map<String, Value>,
}

/// Starts a workflow through its `dispatch()` trigger for `actor`.
pub async fn dispatch(state: &Shared, actor: &str, request: Dispatch) -> Result<Dispatched, StartError> {
    // The repository's last default-branch push says where to clone from and through which
    // GitHub App installation.
    let repo = request.repo.clone().unwrap_or_else(|| request.source.name.clone());
    let origin = state
        .store
        .registrations(Some(WORKFLOW_KIND))
        .await?
        .iter()
        .find(|r| r.source_id == request.source.source_id && r.repo == repo)
        .map(starts::Origin::of)
        .unwrap_or_default();
    let mut event = EventEnvelope::new(EventType::Dispatch);
    event.action = request.dispatch_type;
    event.provider = Some("api".to_string());
    event.sender_username = Some(actor.to_string());
    event.dispatch_inputs = Some(request.inputs);
    let started = starts::start(
        state,
        StartRequest {
            source: request.source,
            repo: request.repo,
            git_ref: request.git_ref,
            workflow: request.workflow.clone(),
            event,
            delivery_id: format!("dispatch:{}", new_id()),
            origin,
        },
    )
    .await?;
    tracing::info!(runId = %started.run_id, workflow = %request.workflow, by = %actor, "workflow dispatched");
    Ok(Dispatched {
        run_id: started.run_id,
        workflow: request.workflow,
        git_ref: started.git_ref,
        sha: started.sha,
    })
}
