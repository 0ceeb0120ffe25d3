//! Events steps emit (`ctx.emit`, an agent's sequenced `event.emit`): checked, stored as
//! `kici_event`s for `event_router` to deliver, and the router woken. The message's id makes
//! the event's (`kici_event:<jobId>:<seq>`), so a message the agent sent again after a
//! reconnect is stored once. An untrusted pull request's run emits nothing: the workflows an
//! event starts run at the default branch with the repository's secrets.

use kici_engine::api::Run;
use kici_engine::event::{EventEnvelope, EventType, MAX_CHAIN_DEPTH, chain_depth};
use kici_engine::ids::RunId;
use kici_engine::protocol::EventEmit;
use kici_store::{JobRecord, StoreError};

use crate::clock::now_ms;
use crate::state::Shared;

/// A step's `ctx.emit`: stored as a `kici_event` for the router (`kici_event:<jobId>:<seq>`, so
/// a message sent again is stored once). One the runner should have refused is logged and
/// dropped; so is one past the chain depth limit.
pub async fn emitted(state: &Shared, record: &JobRecord, emit: EventEmit) -> Result<(), StoreError> {
    let run_id = &record.job.run_id;
    if let Err(why) = kici_engine::protocol::check_emitted(&emit.name, &emit.payload) {
        tracing::warn!(runId = %run_id, jobId = %emit.job_id, error = %why, "emitted event refused");
        return Ok(());
    }
    let Some((run, depth)) = next_in_chain(state, run_id).await? else {
        return Ok(());
    };
    if untrusted(&run) {
        tracing::warn!(runId = %run_id, event = %emit.name, "an untrusted pull request's run emitted an event; it starts nothing (its code was not reviewed, and the workflows it would start run with the repository's secrets)");
        return Ok(());
    }
    if depth > MAX_CHAIN_DEPTH {
        tracing::warn!(runId = %run_id, event = %emit.name, depth, "event chain depth limit ({MAX_CHAIN_DEPTH}) reached; the event starts nothing");
        return Ok(());
    }
    let mut event = EventEnvelope::new(EventType::KiciEvent);
    event.provider = Some("kici".to_string());
    event.action = Some(emit.name.clone());
    event.source_repo = Some(run.repo.clone());
    event.payload = Some(serde_json::json!({
        "eventName": emit.name, "payload": emit.payload, "sourceRepo": run.repo, "workflowName": run.workflow_name,
        "runId": run.run_id, "jobId": emit.job_id, "chainDepth": depth,
    }));
    let event_id = format!("kici_event:{}:{}", emit.job_id, emit.seq);
    let envelope = serde_json::to_value(&event).expect("an event envelope serializes");
    if state
        .store
        .enqueue_event(&event_id, "kici_event", &envelope, now_ms())
        .await?
    {
        state.event_wake.notify_one();
        tracing::info!(runId = %run_id, jobId = %emit.job_id, event = %emit.name, eventId = %event_id, "event emitted");
    }
    Ok(())
}

/// The run, and the chain depth of an event it causes (one more than its own).
pub async fn next_in_chain(state: &Shared, run_id: &RunId) -> Result<Option<(Run, u64)>, StoreError> {
    let (Some(run), Some(inputs)) = (
        state.store.get_run(run_id).await?,
        state.store.run_context(run_id).await?,
    ) else {
        return Ok(None);
    };
    Ok(Some((run, chain_depth(&inputs.event) + 1)))
}

/// A run of a pull request whose author is not trusted: the events it causes start nothing.
pub fn untrusted(run: &Run) -> bool {
    run.trust
        .as_ref()
        .is_some_and(|trust| trust.tier != kici_engine::trust::TrustTier::Trusted)
}
