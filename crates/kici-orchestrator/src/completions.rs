//! Workflows started by other runs (spec `authoring.md` §2.1, §2.4): when a job or a run
//! finishes, it is published as an internal event (`job_complete:<jobId>`,
//! `workflow_complete:<runId>`, stored once) for the `jobComplete()` and `workflowComplete()`
//! triggers registered from the default branches' lock files; `ctx.event.payload` names the
//! finished run or job. A chain of runs started this way stops at depth 10 (`chainDepth` in the
//! payload), logged when it drops an event; `event_router` delivers them. An untrusted pull
//! request's run announces nothing (see `emits`).

use kici_engine::event::{EventEnvelope, EventType, MAX_CHAIN_DEPTH};
use kici_engine::ids::RunId;
use kici_engine::protocol::JobKind;
use kici_engine::status::JobStatus;
use kici_store::StoreError;
use serde_json::json;
use tokio::sync::watch;

use crate::event_router;
use crate::state::Shared;

const KINDS: [&str; 2] = ["workflow_complete", "job_complete"];

pub async fn run(state: Shared, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = state.completion_watch.wait() => {}
            _ = shutdown.changed() => return,
        }
        for run_id in state.completion_watch.take() {
            if let Err(err) = announce(&state, &run_id).await {
                tracing::error!(runId = %run_id, error = %err, "announcing finished jobs failed; they start nothing");
            }
        }
    }
}

/// The status word a completion event carries.
fn job_word(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Success => "success",
        JobStatus::Skipped => "skipped",
        JobStatus::Cancelled => "cancelled",
        _ => "failed",
    }
}

/// Announces the run's newly finished jobs, and the run once it has finished.
async fn announce(state: &Shared, run_id: &RunId) -> Result<(), StoreError> {
    let mut listening = false;
    for kind in KINDS {
        listening |= !state.store.registrations(Some(kind)).await?.is_empty();
    }
    if !listening {
        return Ok(());
    }
    let Some((run, depth)) = crate::emits::next_in_chain(state, run_id).await? else {
        return Ok(());
    };
    if crate::emits::untrusted(&run) {
        if run.status.is_terminal()
            && state
                .store
                .claim_event(&format!("untrusted:{run_id}"), crate::clock::now_ms())
                .await?
        {
            tracing::info!(runId = %run_id, "an untrusted pull request's run finished; its jobComplete()/workflowComplete() events start nothing");
        }
        return Ok(());
    }
    let mut events = Vec::new();
    for job in state.store.run_jobs(run_id, false).await? {
        if job.kind != JobKind::Execute || !job.job.status.is_terminal() {
            continue;
        }
        events.push((
            format!("job_complete:{}", job.job.job_id),
            EventType::JobComplete,
            json!({
                "workflowName": run.workflow_name, "jobName": job.job.job_name, "status": job_word(job.job.status),
                "sourceRepo": run.repo, "runId": run.run_id, "jobId": job.job.job_id, "chainDepth": depth,
            }),
        ));
    }
    if run.status.is_terminal() {
        events.push((
            format!("workflow_complete:{run_id}"),
            EventType::WorkflowComplete,
            json!({
                "workflowName": run.workflow_name, "status": run.status.as_str(), "sourceRepo": run.repo,
                "runId": run.run_id, "failureReason": run.failure_reason, "chainDepth": depth,
            }),
        ));
    }
    for (event_id, event_type, payload) in events {
        if depth > MAX_CHAIN_DEPTH {
            // Claimed so the drop is logged once, however often the run changes.
            if state.store.claim_event(&event_id, crate::clock::now_ms()).await? {
                tracing::warn!(runId = %run_id, event = %event_type.as_str(), depth, "event chain depth limit ({MAX_CHAIN_DEPTH}) reached; the event starts nothing");
            }
            continue;
        }
        let mut event = EventEnvelope::new(event_type);
        event.provider = Some("kici".to_string());
        event.source_repo = Some(run.repo.clone());
        event.payload = Some(payload);
        event_router::publish(state, &event_id, &event).await?;
    }
    Ok(())
}
