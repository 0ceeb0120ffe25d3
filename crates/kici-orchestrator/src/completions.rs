//! Workflows started by other runs (spec `authoring.md` §2.1, §2.4): when a job or a run
//! finishes, the `jobComplete()` and `workflowComplete()` triggers registered from the default
//! branches' lock files are matched against it, and the workflows they belong to start at the
//! head of their default branch (`ctx.event.payload` names the finished run or job). Each
//! finished job and run is announced once, claimed in the store first. A chain of runs started
//! this way stops at depth 10 (`chainDepth` in the payload), and one workflow is started at
//! most 100 times a minute this way; both are logged when they drop an event.

use std::collections::{HashMap, VecDeque};

use kici_engine::event::{EventEnvelope, EventType};
use kici_engine::ids::RunId;
use kici_engine::protocol::JobKind;
use kici_engine::status::JobStatus;
use kici_engine::trigger::{Trigger, match_triggers};
use kici_store::{Registration, StoreError};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::starts::{self, StartRequest};
use crate::state::Shared;

/// Runs started by runs started by runs…: beyond this the event is dropped.
pub const MAX_CHAIN_DEPTH: u64 = 10;
/// Starts of one workflow by completion events in any minute.
pub const MAX_STARTS_PER_MINUTE: usize = 100;
const MINUTE_MS: i64 = 60_000;

const KINDS: [&str; 2] = ["workflow_complete", "job_complete"];

pub async fn run(state: Shared, mut shutdown: watch::Receiver<bool>) {
    let mut recent: HashMap<String, VecDeque<i64>> = HashMap::new();
    loop {
        tokio::select! {
            _ = state.completion_watch.wait() => {}
            _ = shutdown.changed() => return,
        }
        for run_id in state.completion_watch.take() {
            if let Err(err) = announce(&state, &run_id, &mut recent).await {
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

/// Announces the run's newly finished jobs, and the run once it has finished.
async fn announce(
    state: &Shared,
    run_id: &RunId,
    recent: &mut HashMap<String, VecDeque<i64>>,
) -> Result<(), StoreError> {
    let registrations: Vec<Registration> = state
        .store
        .registrations(None)
        .await?
        .into_iter()
        .filter(|r| r.enabled && KINDS.contains(&r.kind.as_str()))
        .collect();
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
        for registration in &registrations {
            start_matching(state, registration, &event, recent).await?;
        }
    }
    Ok(())
}

/// Starts the registration's workflow when its trigger accepts `event` and its rate allows.
async fn start_matching(
    state: &Shared,
    registration: &Registration,
    event: &EventEnvelope,
    recent: &mut HashMap<String, VecDeque<i64>>,
) -> Result<(), StoreError> {
    let Ok(trigger) = serde_json::from_str::<Trigger>(&registration.trigger_json) else {
        return Ok(());
    };
    let matched = match_triggers(std::slice::from_ref(&trigger), event)
        .map(|m| m.trigger_index.is_some())
        .unwrap_or(false);
    if !matched {
        return Ok(());
    }
    let now = now_ms();
    let key = format!(
        "{}:{}:{}",
        registration.source_id, registration.repo, registration.workflow_name
    );
    let starts = recent.entry(key).or_default();
    while starts.front().is_some_and(|at| now - at >= MINUTE_MS) {
        starts.pop_front();
    }
    if starts.len() >= MAX_STARTS_PER_MINUTE {
        tracing::warn!(workflow = %registration.workflow_name, repo = %registration.repo, "rate limit ({MAX_STARTS_PER_MINUTE} starts a minute by events) reached; the event starts nothing");
        return Ok(());
    }
    starts.push_back(now);
    let sources = state.store.list_sources().await?;
    let Some(source) = sources.into_iter().find(|s| s.source_id == registration.source_id) else {
        return Ok(());
    };
    let origin = event
        .payload
        .as_ref()
        .and_then(|p| p.get("jobId").or_else(|| p.get("runId")))
        .and_then(Value::as_str)
        .unwrap_or_default();
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
    };
    match starts::start(state, request).await {
        Ok(started) => {
            tracing::info!(runId = %started.run_id, workflow = %registration.workflow_name, event = %event.event_type.as_str(), origin, "run started by a finished run")
        }
        Err(err) => {
            tracing::error!(workflow = %registration.workflow_name, event = %event.event_type.as_str(), origin, error = %err, "a finished run should have started this workflow; it did not")
        }
    }
    Ok(())
}
