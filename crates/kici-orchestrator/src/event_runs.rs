//! Starting the workflows an event registered for (spec `authoring.md` §2.4): a finished run
//! or job (`completions`) or a generic webhook. Each registration whose trigger accepts the
//! event starts its workflow at the head of its default branch, at most
//! [`MAX_STARTS_PER_MINUTE`] times a minute per workflow (a token bucket; past it the event is
//! logged and starts nothing).

use kici_engine::event::EventEnvelope;
use kici_engine::ids::RunId;
use kici_engine::trigger::{Trigger, match_triggers};
use kici_store::{Registration, StoreError};

use crate::clock::now_ms;
use crate::starts::{self, StartRequest};
use crate::state::Shared;

/// Runs one workflow may be started by events in a minute.
pub const MAX_STARTS_PER_MINUTE: i64 = 100;

/// The enabled registrations of `kind`.
pub async fn registrations(state: &Shared, kind: &str) -> Result<Vec<Registration>, StoreError> {
    Ok(state
        .store
        .registrations(Some(kind))
        .await?
        .into_iter()
        .filter(|r| r.enabled)
        .collect())
}

/// Starts the registration's workflow when its trigger accepts `event`; `origin` names what
/// happened (a run, a job, a delivery) in the run's delivery id and the log.
pub async fn start_matching(
    state: &Shared,
    registration: &Registration,
    event: &EventEnvelope,
    origin: &str,
) -> Result<Option<RunId>, StoreError> {
    let Ok(trigger) = serde_json::from_str::<Trigger>(&registration.trigger_json) else {
        return Ok(None);
    };
    let matched = match_triggers(std::slice::from_ref(&trigger), event)
        .map(|m| m.trigger_index.is_some())
        .unwrap_or(false);
    if !matched {
        return Ok(None);
    }
    let key = format!(
        "{}:{}:{}",
        registration.source_id, registration.repo, registration.workflow_name
    );
    if state.event_limits.take(&key, MAX_STARTS_PER_MINUTE, now_ms()).is_err() {
        tracing::warn!(workflow = %registration.workflow_name, repo = %registration.repo, event = %event.event_type.as_str(), origin, "rate limit ({MAX_STARTS_PER_MINUTE} starts a minute by events) reached; the event starts nothing");
        return Ok(None);
    }
    let sources = state.store.list_sources().await?;
    let Some(source) = sources.into_iter().find(|s| s.source_id == registration.source_id) else {
        return Ok(None);
    };
    let request = StartRequest {
        source,
        repo: Some(registration.repo.clone()),
        git_ref: Some(registration.git_ref.clone()),
        workflow: registration.workflow_name.clone(),
        event: event.clone(),
        delivery_id: format!(
            "{}:{origin}:{}",
            event.event_type.as_str(),
            registration.registration_id
        ),
        origin: starts::Origin::of(registration),
    };
    match starts::start(state, request).await {
        Ok(started) => {
            tracing::info!(runId = %started.run_id, workflow = %registration.workflow_name, event = %event.event_type.as_str(), origin, "run started by an event");
            Ok(Some(started.run_id))
        }
        Err(err) => {
            tracing::error!(workflow = %registration.workflow_name, event = %event.event_type.as_str(), origin, error = %err, "an event should have started this workflow; it did not");
            Ok(None)
        }
    }
}
