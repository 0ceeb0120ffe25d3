//! Internal events (spec `authoring.md` §2.4): a finished job or run (`completions`), a step's
//! `ctx.emit`, a generic webhook, an operator's `kici-admin event emit`. Each is stored once,
//! under an id that names what happened, then delivered at least once: every registration of
//! its kind whose trigger accepts it starts its workflow at the head of its default branch.
//!
//! An attempt holds the event under a lease (`KICI_EVENT_ROUTER_LEASE_MS`), so one
//! orchestrator delivers it at a time and a crashed one's attempt is taken over. An attempt in
//! which a start failed is retried with backoff; after the last attempt the event is dead,
//! listed by `kici-admin event-dlq list` until an operator retries or discards it. A retry
//! starts only what the earlier attempts did not: each start is named by the event and the
//! registration, and a start of that name is found before another is made.
//!
//! Circuit breakers: at most [`MAX_STARTS_PER_MINUTE`] starts by events per workflow (past it
//! the start is dropped and logged), and producers drop events deeper than
//! [`kici_engine::event::MAX_CHAIN_DEPTH`] in a chain of runs started by runs.

use kici_engine::event::EventEnvelope;
use kici_engine::ids::RunId;
use kici_engine::trigger::{Trigger, match_triggers};
use kici_store::{KiciEvent, Registration, StoreError};
use serde_json::Value;
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::starts::{self, StartError, StartRequest};
use crate::state::Shared;

/// Runs one workflow may be started by events in a minute.
pub const MAX_STARTS_PER_MINUTE: i64 = 100;
/// Events claimed per scan.
const SCAN_BATCH: i64 = 100;

pub async fn run(state: Shared, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(state.config.event_router.scan_interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.event_wake.notified() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(err) = deliver_due(&state).await {
            tracing::error!(error = %err, "reading the due events failed; retried at the next scan");
        }
    }
}

/// Stores `event` under `event_id` and makes its first delivery attempt at once. Returns the
/// runs it started, or `None` when an event of that id was stored before (a duplicate). A
/// failed attempt is logged and left to the retries.
pub async fn publish(state: &Shared, event_id: &str, event: &EventEnvelope) -> Result<Option<Vec<RunId>>, StoreError> {
    let envelope = serde_json::to_value(event).expect("an event envelope serializes");
    let now = now_ms();
    if !state
        .store
        .enqueue_event(event_id, event.event_type.as_str(), &envelope, now)
        .await?
    {
        return Ok(None);
    }
    Ok(Some(deliver_one(state, event_id).await?.unwrap_or_default()))
}

/// Delivers every due event (first attempts that were interrupted, and retries), each claimed
/// just before its attempt.
pub async fn deliver_due(state: &Shared) -> Result<usize, StoreError> {
    let mut delivered = 0;
    for event_id in state.store.due_event_ids(now_ms(), SCAN_BATCH).await? {
        if deliver_one(state, &event_id).await?.is_some() {
            delivered += 1;
        }
    }
    Ok(delivered)
}

/// Claims `event_id` and makes one attempt; `None` when it is not due or another attempt holds
/// it.
async fn deliver_one(state: &Shared, event_id: &str) -> Result<Option<Vec<RunId>>, StoreError> {
    let lease = state.config.event_router.lease.as_millis() as i64;
    match state.store.claim_kici_event(event_id, now_ms(), lease).await? {
        Some(stored) => attempt(state, stored).await.map(Some),
        None => Ok(None),
    }
}

/// How an attempt ended.
enum Attempt {
    Delivered,
    Failed(String),
    /// Its lease was taken over by another attempt (this one outlived it): that one decides.
    Lost,
}

/// One delivery attempt of an event the caller claimed, recorded: delivered, due again later, or
/// dead. Returns the runs the event started over all its attempts.
pub async fn attempt(state: &Shared, stored: KiciEvent) -> Result<Vec<RunId>, StoreError> {
    let mut runs = stored.run_ids.clone();
    let outcome = deliver(state, &stored, &mut runs).await?;
    let now = now_ms();
    let recorded = match outcome {
        Attempt::Lost => false,
        Attempt::Delivered => {
            state
                .store
                .event_delivered(&stored.event_id, stored.attempts, &runs, now)
                .await?
        }
        Attempt::Failed(error) => {
            let attempts = u32::try_from(stored.attempts).unwrap_or(u32::MAX);
            let retry_at = state.config.event_router.retry_at(attempts, now);
            let recorded = state
                .store
                .event_failed((&stored.event_id, stored.attempts), &error, &runs, retry_at, now)
                .await?;
            match retry_at {
                _ if !recorded => {}
                Some(at) => {
                    tracing::warn!(eventId = %stored.event_id, attempts, retryInMs = at - now, error = %error, "event delivery failed; retried later")
                }
                None => tracing::error!(eventId = %stored.event_id, attempts, error = %error, "Event moved to DLQ"),
            }
            recorded
        }
    };
    if !recorded {
        tracing::warn!(eventId = %stored.event_id, attempts = stored.attempts, "event delivery attempt outlived its lease; the attempt that took it over decides");
    }
    Ok(runs)
}

/// Starts what the event matches, renewing the lease before each start so no other attempt
/// takes the event over meanwhile.
async fn deliver(state: &Shared, stored: &KiciEvent, runs: &mut Vec<RunId>) -> Result<Attempt, StoreError> {
    let event: EventEnvelope = match serde_json::from_value(stored.envelope.clone()) {
        Ok(event) => event,
        Err(err) => {
            return Ok(Attempt::Failed(format!(
                "the stored event does not read as an event: {err}"
            )));
        }
    };
    let lease = state.config.event_router.lease.as_millis() as i64;
    let mut failures = Vec::new();
    for registration in registrations(state, event.event_type.as_str())
        .await?
        .iter()
        .filter(|r| !own_unnamed(r, &event))
    {
        if !state
            .store
            .renew_event_lease(&stored.event_id, stored.attempts, now_ms(), lease)
            .await?
        {
            return Ok(Attempt::Lost);
        }
        match start_matching(state, registration, &event, &stored.event_id).await {
            Ok(Some(run_id)) if !runs.contains(&run_id) => runs.push(run_id),
            Ok(_) => {}
            Err(err) => failures.push(format!("workflow '{}': {err}", registration.workflow_name)),
        }
    }
    Ok(if failures.is_empty() {
        Attempt::Delivered
    } else {
        Attempt::Failed(failures.join("; "))
    })
}

/// The enabled registrations of `kind`.
async fn registrations(state: &Shared, kind: &str) -> Result<Vec<Registration>, StoreError> {
    Ok(state
        .store
        .registrations(Some(kind))
        .await?
        .into_iter()
        .filter(|r| r.enabled)
        .collect())
}

/// A completion trigger that names no workflow does not listen to its own workflow's runs: two
/// of them would otherwise start each other's runs, doubling at every step of the chain.
fn own_unnamed(registration: &Registration, event: &EventEnvelope) -> bool {
    let unnamed = serde_json::from_str::<Trigger>(&registration.trigger_json).is_ok_and(|trigger| {
        matches!(
            trigger,
            Trigger::WorkflowComplete { workflows: None, .. } | Trigger::JobComplete { workflows: None, .. }
        )
    });
    let text = |key: &str| event.payload.as_ref().and_then(|p| p.get(key)).and_then(Value::as_str);
    unnamed
        && text("workflowName") == Some(registration.workflow_name.as_str())
        && text("sourceRepo") == Some(registration.repo.as_str())
}

/// Starts the registration's workflow when its trigger accepts `event`: the run (a new one, or
/// the one an earlier attempt started), `None` when it does not match or was dropped, the
/// reason when the start failed.
async fn start_matching(
    state: &Shared,
    registration: &Registration,
    event: &EventEnvelope,
    event_id: &str,
) -> Result<Option<RunId>, String> {
    let Ok(trigger) = serde_json::from_str::<Trigger>(&registration.trigger_json) else {
        return Ok(None);
    };
    let matched = match_triggers(std::slice::from_ref(&trigger), event)
        .map(|m| m.trigger_index.is_some())
        .unwrap_or(false);
    if !matched {
        return Ok(None);
    }
    let delivery_id = format!("{event_id}:{}", registration.registration_id);
    let earlier = state
        .store
        .runs_of_delivery(&delivery_id)
        .await
        .map_err(|err| err.to_string())?;
    if let Some(run_id) = earlier.into_iter().next() {
        return Ok(Some(run_id));
    }
    let key = format!(
        "{}:{}:{}",
        registration.source_id, registration.repo, registration.workflow_name
    );
    if state.event_limits.take(&key, MAX_STARTS_PER_MINUTE, now_ms()).is_err() {
        tracing::warn!(workflow = %registration.workflow_name, repo = %registration.repo, eventId = %event_id, "rate limit ({MAX_STARTS_PER_MINUTE} starts a minute by events) reached; the event starts nothing");
        return Ok(None);
    }
    let source = state
        .store
        .get_source(&registration.source_id)
        .await
        .map_err(|err| err.to_string())?;
    let Some(source) = source else {
        return Ok(None);
    };
    let request = StartRequest {
        source,
        repo: Some(registration.repo.clone()),
        git_ref: Some(registration.git_ref.clone()),
        workflow: registration.workflow_name.clone(),
        event: event.clone(),
        delivery_id,
        origin: starts::Origin::of(registration),
    };
    match starts::start(state, request).await {
        Ok(started) => {
            tracing::info!(runId = %started.run_id, workflow = %registration.workflow_name, eventId = %event_id, "run started by an event");
            Ok(Some(started.run_id))
        }
        // The head of the default branch no longer has the trigger: nothing to start.
        Err(StartError::NotTriggered { .. }) => Ok(None),
        Err(err) => Err(err.to_string()),
    }
}
