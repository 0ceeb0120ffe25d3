//! Workflows started by other runs (spec `authoring.md` §2.1, §2.4): when a job or a run
//! finishes, the `jobComplete()` and `workflowComplete()` triggers registered from the default
//! branches' lock files are matched against it, and the workflows they belong to start at the
//! head of their default branch (`ctx.event.payload` names the finished run or job). Each
//! finished job and run is announced once, claimed in the store first. A chain of runs started
//! this way stops at depth 10 (`chainDepth` in the payload), logged when it drops an event;
//! `event_runs` starts what matches.

use kici_engine::event::{EventEnvelope, EventType};
use kici_engine::ids::RunId;
use kici_engine::protocol::JobKind;
use kici_engine::status::JobStatus;
use kici_store::{Registration, StoreError};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::event_runs;
use crate::state::Shared;

/// Runs started by runs started by runs…: beyond this the event is dropped.
pub const MAX_CHAIN_DEPTH: u64 = 10;
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

/// How many completion events led to this run.
fn chain_depth(event: &EventEnvelope) -> u64 {
    match event.event_type {
        EventType::WorkflowComplete | EventType::JobComplete => event
            .payload
            .as_ref()
            .and_then(|p| p.get("chainDepth"))
            .and_then(Value::as_u64)
            .unwrap_or(0),
        _ => 0,
    }
}

/// A trigger that names no workflow does not listen to its own workflow's runs: two of them
/// would otherwise start each other's runs, doubling at every step of the chain.
fn own_unnamed(registration: &Registration, workflow: &str, repo: &str) -> bool {
    let unnamed =
        serde_json::from_str::<kici_engine::trigger::Trigger>(&registration.trigger_json).is_ok_and(|trigger| {
            matches!(
                trigger,
                kici_engine::trigger::Trigger::WorkflowComplete { workflows: None, .. }
                    | kici_engine::trigger::Trigger::JobComplete { workflows: None, .. }
            )
        });
    unnamed && registration.workflow_name == workflow && registration.repo == repo
}

/// Announces the run's newly finished jobs, and the run once it has finished.
async fn announce(state: &Shared, run_id: &RunId) -> Result<(), StoreError> {
    let mut registrations: Vec<Registration> = Vec::new();
    for kind in KINDS {
        registrations.extend(event_runs::registrations(state, kind).await?);
    }
    if registrations.is_empty() {
        return Ok(());
    }
    let (Some(run), Some(inputs)) = (
        state.store.get_run(run_id).await?,
        state.store.run_context(run_id).await?,
    ) else {
        return Ok(());
    };
    let depth = chain_depth(&inputs.event) + 1;
    let mut events = Vec::new();
    for job in state.store.run_jobs(run_id, false).await? {
        if job.kind != JobKind::Execute || !job.job.status.is_terminal() {
            continue;
        }
        if state
            .store
            .claim_event(&format!("job_complete:{}", job.job.job_id), now_ms())
            .await?
        {
            events.push((
                EventType::JobComplete,
                json!({
                    "workflowName": run.workflow_name, "jobName": job.job.job_name, "status": job_word(job.job.status),
                    "sourceRepo": run.repo, "runId": run.run_id, "jobId": job.job.job_id, "chainDepth": depth,
                }),
            ));
        }
    }
    if run.status.is_terminal()
        && state
            .store
            .claim_event(&format!("workflow_complete:{run_id}"), now_ms())
            .await?
    {
        events.push((
            EventType::WorkflowComplete,
            json!({
                "workflowName": run.workflow_name, "status": run.status.as_str(), "sourceRepo": run.repo,
                "runId": run.run_id, "failureReason": run.failure_reason, "chainDepth": depth,
            }),
        ));
    }
    for (event_type, payload) in events {
        if depth > MAX_CHAIN_DEPTH {
            tracing::warn!(runId = %run_id, event = %event_type.as_str(), depth, "event chain depth limit ({MAX_CHAIN_DEPTH}) reached; the event starts nothing");
            continue;
        }
        let mut event = EventEnvelope::new(event_type);
        event.provider = Some("kici".to_string());
        event.source_repo = Some(run.repo.clone());
        event.payload = Some(payload);
        let origin = event
            .payload
            .as_ref()
            .and_then(|p| p.get("jobId").or_else(|| p.get("runId")))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        for registration in registrations
            .iter()
            .filter(|r| !own_unnamed(r, &run.workflow_name, &run.repo))
        {
            event_runs::start_matching(state, registration, &event, &origin).await?;
        }
    }
    Ok(())
}
