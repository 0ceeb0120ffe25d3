//! How runs move forward: applying what agents report (acks, job and step states, logs),
//! deciding downstream jobs when their needs finish (queue them or skip them), expanding
//! dynamic matrices, and completing runs with their `failureReason`.
//!
//! Every status write is guarded in the store, so concurrent callers (two matrix children
//! finishing together) and replayed messages cannot move a job or run twice.

use std::collections::HashMap;

use kici_engine::api;
use kici_engine::dag::{Decision, UpstreamRow, decide, group_status};
use kici_engine::description::JobDescription;
use kici_engine::excerpt::excerpt;
use kici_engine::failure::{self, InitFailure, InitFailureCategory, InitFailureScope, matrix_expansion_failed};
use kici_engine::ids::{AgentId, JobId, RunId};
use kici_engine::lockfile::{LockWorkflow, StaticJob};
use kici_engine::matrix::{self, MatrixValues};
use kici_engine::protocol::MAX_JOB_OUTPUTS_BYTES;
use kici_engine::protocol::{AgentMessage, JobKind, JobStatusUpdate, OrchestratorMessage, StepStatusUpdate};
use kici_engine::status::{JobChange, JobEvent, JobStatus, RunStatus, StepStatus, failed_jobs_reason, roll_up};
use kici_store::{JobEnd, JobRecord, NewJob, NewQueueEntry, QueueStatus, ReasonUpdate, StepUpdate, StoreError};
use serde_json::{Map, Value};

use crate::clock::now_ms;
use crate::fan_out;
use crate::gates::{self, Admission, InitResult};
use crate::jobs::{JobFacts, Prepared, RunFacts, entry};
use crate::rows::{self, lock_job, matrix_failure};
use crate::state::Shared;

/// A run with what is needed to dispatch more of its jobs.
struct LoadedRun {
    run: api::Run,
    event: kici_engine::event::EventEnvelope,
    repo_url: String,
    workflow: Option<LockWorkflow>,
    lockfile_hash: Option<String>,
}

impl LoadedRun {
    fn facts(&self) -> RunFacts<'_> {
        RunFacts {
            run_id: &self.run.run_id,
            repo: &self.run.repo,
            git_ref: &self.run.git_ref,
            sha: &self.run.sha,
            repo_url: &self.repo_url,
            event: &self.event,
            lockfile_hash: self.lockfile_hash.as_deref(),
        }
    }
}

async fn load_run(state: &Shared, run_id: &RunId) -> Result<Option<LoadedRun>, StoreError> {
    let Some(run) = state.store.get_run(run_id).await? else {
        return Ok(None);
    };
    let Some(kici_store::RunInputs {
        event,
        repo_url,
        workflow,
        lockfile_hash,
    }) = state.store.run_context(run_id).await?
    else {
        return Ok(None);
    };
    Ok(Some(LoadedRun {
        run,
        event,
        repo_url,
        workflow,
        lockfile_hash,
    }))
}

/// The status a base job's rows present to `needs`: its executed rows, or the matrix
/// evaluation row when it produced none. `None` while any row is unfinished.
fn base_status(jobs: &[JobRecord], base: &str) -> Option<JobStatus> {
    if let Some(group) = base.strip_prefix(kici_engine::dag::GROUP_NEED_PREFIX) {
        return group_need_status(jobs, group);
    }
    let rows: Vec<&JobRecord> = jobs.iter().filter(|j| j.job.base_job_name == base).collect();
    if rows.is_empty() || rows.iter().any(|j| !j.job.status.is_terminal()) {
        return None;
    }
    let executed: Vec<JobStatus> = rows
        .iter()
        .filter(|j| j.kind == JobKind::Execute)
        .map(|j| j.job.status)
        .collect();
    if executed.is_empty() {
        Some(group_status(&rows.iter().map(|j| j.job.status).collect::<Vec<_>>()))
    } else {
        Some(group_status(&executed))
    }
}

/// The status a dynamic group presents to `needs: [dynamicGroup(group)]`: once its generators
/// ran (one that failed fails it) and every job they produced finished, those jobs' status;
/// `success` when they produced none. `None` while any of that is unfinished.
fn group_need_status(jobs: &[JobRecord], group: &str) -> Option<JobStatus> {
    let generators: Vec<&JobRecord> = jobs
        .iter()
        .filter(|j| j.kind == JobKind::DynamicEval && j.job.base_job_name == group)
        .collect();
    if generators.is_empty() || generators.iter().any(|g| !g.job.status.is_terminal()) {
        return None;
    }
    if let Some(failed) = generators.iter().find(|g| g.job.status != JobStatus::Success) {
        return Some(failed.job.status);
    }
    let produced: Vec<JobStatus> = jobs
        .iter()
        .filter(|j| {
            j.kind == JobKind::Execute
                && j.dynamic_index.is_some()
                && generators.iter().any(|g| g.dynamic_index == j.dynamic_index)
        })
        .map(|j| j.job.status)
        .collect();
    if produced.iter().any(|s| !s.is_terminal()) {
        return None;
    }
    Some(group_status(&produced))
}

/// A job's upstream results as its steps see them (`ctx.needs`), from the run's rows.
fn needs_context(needs: Map<String, Value>, jobs: &[JobRecord]) -> Map<String, Value> {
    kici_engine::dag::needs_context(needs, |name| {
        let rows: Vec<&JobRecord> = jobs
            .iter()
            .filter(|j| j.job.base_job_name == name && j.kind == JobKind::Execute)
            .collect();
        let fanned_out = rows.iter().any(|j| j.matrix.is_some());
        let rows = rows
            .into_iter()
            .map(|j| UpstreamRow {
                name: &j.job.job_name,
                status: j.job.status,
                outputs: j.outputs.as_ref(),
            })
            .collect();
        (fanned_out, rows)
    })
}

/// Queues or skips every waiting job whose needs have finished, then completes the run when
/// every job has.
pub async fn advance_run(state: &Shared, run_id: &RunId) -> Result<(), StoreError> {
    let result = advance(state, run_id).await;
    // Whatever brought us here changed the run; the dashboard gets its state once it settled.
    state.run_changed(run_id);
    result
}

async fn advance(state: &Shared, run_id: &RunId) -> Result<(), StoreError> {
    let Some(loaded) = load_run(state, run_id).await? else {
        return Ok(());
    };
    let now = now_ms();
    // An untrusted pull request's run: every job but the dependency build waits for a
    // maintainer, until one approves.
    let trust_hold = loaded.run.trust.as_ref().and_then(|t| t.hold.as_deref());
    loop {
        let jobs = state.store.run_jobs(run_id, false).await?;
        if let Some(workflow) = &loaded.workflow {
            let cancels = fan_out::siblings_to_cancel(workflow, &jobs);
            for (sibling, reason) in &cancels {
                tracing::info!(runId = %run_id, jobId = %sibling.job.job_id, reason = %reason, "matrix job cancelled: failFast");
                cancel_job(state, &sibling.job, reason, false, now).await?;
            }
            if !cancels.is_empty() {
                continue;
            }
        }
        let mut progressed = false;
        // Matrix jobs queued in this pass, by base job (for `maxParallel`).
        let mut admitted: HashMap<&str, usize> = HashMap::new();
        for waiting in jobs.iter().filter(|j| j.job.status == JobStatus::Pending) {
            let needs = match decide(&waiting.needs, |name| base_status(&jobs, name)) {
                Decision::Wait => continue,
                Decision::Skip { need, status } => {
                    progressed = true;
                    tracing::info!(runId = %run_id, jobId = %waiting.job.job_id, upstream = %need.name(), upstreamStatus = %status, "job skipped: upstream_unmet");
                    state
                        .store
                        .finish_job(
                            &waiting.job.job_id,
                            &JobChange::on(JobEvent::Skip).only_from(JobStatus::Pending),
                            None,
                            None,
                            now,
                        )
                        .await?;
                    continue;
                }
                Decision::Run(needs) => needs_context(needs, &jobs),
            };
            let Some(workflow) = &loaded.workflow else { continue };
            let facts = JobFacts::from(waiting);
            let full_definition = gates::definition(workflow, &facts);
            let base = waiting.job.base_job_name.as_str();
            let admitted_here = admitted.get(base).copied().unwrap_or(0);
            if fan_out::window_full(&jobs, waiting, full_definition.as_ref(), admitted_here) {
                continue;
            }
            let held = trust_hold.filter(|_| waiting.kind != JobKind::Build);
            let definition = full_definition.filter(|d| held.is_some() || d.is_gated());
            // Impure environment/env functions: an init job evaluates them first.
            let init = match definition.as_ref().filter(|d| d.needs_init()) {
                None => Ok(None),
                Some(definition) => match init_state(&jobs, &waiting.job.base_job_name) {
                    InitState::Missing => {
                        let (row, init_entry) = init_job(state, &loaded, workflow, definition, now);
                        if state.store.add_init_job(&row, &init_entry).await? {
                            tracing::info!(runId = %run_id, jobId = %row.job_id, job = %waiting.job.base_job_name, "init job added");
                            state.wake_dispatcher();
                        }
                        continue;
                    }
                    InitState::Running => continue,
                    InitState::Failed(init) => Err(init),
                    InitState::Done(result) => Ok(Some(result)),
                },
            };
            progressed = true;
            *admitted.entry(base).or_default() += 1;
            if queue_room(state).await? == 0 {
                let message = failure::queue_full(state.config.queue_max_depth);
                let init = InitFailure {
                    scope: InitFailureScope::Job,
                    category: InitFailureCategory::NoAgent,
                    message: message.clone(),
                    job_name: Some(waiting.job.base_job_name.clone()),
                };
                // A job the queue has no room for is enqueued and fails at once.
                let unqueued = JobChange::on(JobEvent::Enqueue).then(JobEvent::Fail);
                state
                    .store
                    .finish_job(&waiting.job.job_id, &unqueued, Some(&message), Some(&init), now)
                    .await?;
                continue;
            }
            let admission = match (&definition, init) {
                (_, Err(init)) => Admission::Fail(init),
                (Some(definition), Ok(init)) => {
                    gates::admit(state, &loaded.event, definition, init.as_ref(), Some(held)).await?
                }
                (None, _) => match held {
                    Some(reason) => gates::trust_only(reason),
                    None => Admission::Queue(Prepared::default()),
                },
            };
            match admission {
                Admission::Queue(prepared) => {
                    let queue_entry = entry(&state.config, &loaded.facts(), workflow, &facts, &prepared, needs, now);
                    if state
                        .store
                        .queue_job(&waiting.job.job_id, JobEvent::Enqueue, &queue_entry)
                        .await?
                    {
                        state.wake_dispatcher();
                    }
                }
                Admission::Fail(init) => {
                    tracing::info!(runId = %run_id, jobId = %waiting.job.job_id, category = init.category.as_str(), reason = %init.message, "job rejected before it started");
                    let unqueued = JobChange::on(JobEvent::Enqueue).then(JobEvent::Fail);
                    state
                        .store
                        .finish_job(&waiting.job.job_id, &unqueued, Some(&init.message), Some(&init), now)
                        .await?;
                }
                Admission::Hold(hold) => {
                    let record = kici_store::NewHold {
                        hold_id: crate::ids::new_id(),
                        run_id: run_id.clone(),
                        job_id: waiting.job.job_id.clone(),
                        scope: hold.scope.clone(),
                        clauses: hold.clauses.clone(),
                        reason: hold.reason.clone(),
                        created_at: now,
                        expires_at: now + hold.expires_in_seconds as i64 * 1000,
                    };
                    if state.store.hold_job(&record).await? {
                        tracing::info!(runId = %run_id, jobId = %waiting.job.job_id, scope = %hold.scope, holdId = %record.hold_id, "Job held by protection rules");
                        let event = kici_store::NewRunEvent {
                            event_id: crate::ids::new_id(),
                            run_id: run_id.clone(),
                            job_id: Some(waiting.job.job_id.clone()),
                            event_type: api::RunEventType::HoldCreated,
                            source_service: "orchestrator".to_string(),
                            timestamp_ms: now,
                            metadata: serde_json::json!({
                                "job": waiting.job.job_name, "scope": hold.scope,
                                "clauses": hold.clauses, "expiresAt": record.expires_at,
                            }),
                        };
                        state.timeline.record(event).await?;
                    }
                }
                Admission::Wait { seconds } => {
                    let ready_at = now + seconds as i64 * 1000;
                    if state.store.wait_job(&waiting.job.job_id, ready_at, now).await? {
                        tracing::info!(runId = %run_id, jobId = %waiting.job.job_id, seconds, "job waits for its environment's wait timer");
                    }
                }
            }
        }
        if !progressed {
            complete_if_done(state, run_id, &jobs, now).await?;
            return Ok(());
        }
    }
}

/// The queue entry of a held or waiting job that may go now (its environments and `env`
/// resolved again, the gates not); `Err` when it no longer resolves (an environment was
/// deleted meanwhile). `None` when the run or job is gone.
pub(crate) async fn release_entry(
    state: &Shared,
    run_id: &RunId,
    job_id: &JobId,
) -> Result<Option<Result<NewQueueEntry, InitFailure>>, StoreError> {
    let Some(loaded) = load_run(state, run_id).await? else {
        return Ok(None);
    };
    let Some(workflow) = &loaded.workflow else {
        return Ok(None);
    };
    let jobs = state.store.run_jobs(run_id, false).await?;
    let Some(record) = jobs.iter().find(|j| j.job.job_id == *job_id) else {
        return Ok(None);
    };
    let facts = JobFacts::from(record);
    let needs = match decide(&record.needs, |name| base_status(&jobs, name)) {
        Decision::Run(needs) => needs_context(needs, &jobs),
        _ => Map::new(),
    };
    let now = now_ms();
    let admission = match gates::definition(workflow, &facts) {
        // A generator held with its untrusted run.
        None => Admission::Queue(Prepared::default()),
        Some(definition) => {
            let init = match init_result_of(&jobs, &record.job.base_job_name) {
                Ok(init) => init,
                Err(init) => return Ok(Some(Err(init))),
            };
            gates::admit(state, &loaded.event, &definition, init.as_ref(), None).await?
        }
    };
    Ok(Some(match admission {
        Admission::Queue(prepared) => Ok(entry(
            &state.config,
            &loaded.facts(),
            workflow,
            &facts,
            &prepared,
            needs,
            now,
        )),
        Admission::Fail(init) => Err(init),
        Admission::Hold(_) | Admission::Wait { .. } => return Ok(None),
    }))
}

/// Queues the waiting jobs whose timer is up (a timer set before a restart included).
pub(crate) async fn release_waiting(state: &Shared) -> Result<(), StoreError> {
    for (run_id, job_id) in state.store.waiting_jobs_due(now_ms()).await? {
        match release_entry(state, &run_id, &job_id).await? {
            Some(Ok(queue_entry)) => {
                if state
                    .store
                    .queue_job(&job_id, JobEvent::TimerDone, &queue_entry)
                    .await?
                {
                    tracing::info!(runId = %run_id, jobId = %job_id, "wait timer done; job queued");
                    state.wake_dispatcher();
                }
            }
            Some(Err(init)) => {
                let change = JobChange::on(JobEvent::TimerDone).then(JobEvent::Fail);
                state
                    .store
                    .finish_job(&job_id, &change, Some(&init.message), Some(&init), now_ms())
                    .await?;
            }
            None => continue,
        }
        advance_run(state, &run_id).await?;
    }
    Ok(())
}

/// Seals a job's secret outputs for the jobs that need it (`output:<run>:<job>:<key>`); a
/// replayed report stores nothing new.
async fn store_secret_outputs(
    state: &Shared,
    record: &JobRecord,
    outputs: &std::collections::BTreeMap<String, kici_engine::protocol::Redacted>,
    now: i64,
) -> Result<(), StoreError> {
    let sealed: Vec<kici_store::SealedOutput> = outputs
        .iter()
        .filter(|(key, _)| kici_engine::protection::valid_key(key))
        .map(|(key, value)| kici_store::SealedOutput {
            run_id: record.job.run_id.clone(),
            job_id: record.job.job_id.clone(),
            base_job_name: record.job.base_job_name.clone(),
            key: key.clone(),
            value: crate::scoped_secrets::seal_output(
                &state.config.secret_keys,
                &record.job.run_id,
                &record.job.job_id,
                key,
                &value.0,
            ),
        })
        .collect();
    state.store.put_secret_outputs(&sealed, now).await
}

/// Where a job's init job is.
enum InitState {
    Missing,
    Running,
    Failed(InitFailure),
    Done(InitResult),
}

/// The state of the init job of `base` among the run's `jobs`.
fn init_state(jobs: &[JobRecord], base: &str) -> InitState {
    let Some(row) = jobs
        .iter()
        .find(|j| j.kind == JobKind::InitEval && j.job.base_job_name == base)
    else {
        return InitState::Missing;
    };
    let failed = |message: String| {
        InitState::Failed(InitFailure {
            scope: InitFailureScope::Job,
            category: InitFailureCategory::DynamicEval,
            message,
            job_name: Some(base.to_string()),
        })
    };
    match (row.job.status, &row.init_result) {
        (JobStatus::Success, Some(result)) => match InitResult::parse(result) {
            Ok(result) => InitState::Done(result),
            Err(message) => failed(format!("Init job for '{base}' failed: {message}")),
        },
        (JobStatus::Success, None) => failed(format!("Init job for '{base}' failed: it reported no result")),
        (status, _) if status.is_terminal() => failed(format!(
            "Init job for '{base}' failed: {}",
            row.job.error_message.as_deref().unwrap_or(status.as_str())
        )),
        _ => InitState::Running,
    }
}

/// The init job of `job` (one per run and job; its id is derived from both, so two passes
/// cannot add it twice) with its queue entry.
fn init_job(
    state: &Shared,
    loaded: &LoadedRun,
    workflow: &LockWorkflow,
    job: &StaticJob,
    now: i64,
) -> (NewJob, NewQueueEntry) {
    let row = rows::init_eval(&loaded.run.run_id, workflow, job, now);
    let queue_entry = entry(
        &state.config,
        &loaded.facts(),
        workflow,
        &JobFacts::from(&row),
        &Prepared::default(),
        Map::new(),
        now,
    );
    (row, queue_entry)
}

/// What an init job's result resolves for a held or waiting job of `base`, if it has one.
fn init_result_of(jobs: &[JobRecord], base: &str) -> Result<Option<InitResult>, InitFailure> {
    match init_state(jobs, base) {
        InitState::Done(result) => Ok(Some(result)),
        InitState::Failed(init) => Err(init),
        InitState::Missing | InitState::Running => Ok(None),
    }
}

/// How many more jobs the dispatch queue takes (`KICI_QUEUE_MAX_DEPTH` minus the pending ones).
pub async fn queue_room(state: &Shared) -> Result<usize, StoreError> {
    let pending = state.store.count_queue_entries(QueueStatus::Pending).await? as usize;
    Ok(state.config.queue_max_depth.saturating_sub(pending))
}

async fn complete_if_done(state: &Shared, run_id: &RunId, jobs: &[JobRecord], now: i64) -> Result<(), StoreError> {
    let Some(status) = roll_up(jobs.iter().map(|j| j.job.status)) else {
        return Ok(());
    };
    let skipped_by_rule = jobs
        .iter()
        .all(|j| j.job.status == JobStatus::Skipped)
        .then(|| jobs.iter().find_map(|j| j.job.error_message.clone()))
        .flatten();
    let reason = if let Some(rule) = skipped_by_rule {
        // A run whose rules skipped every job says which rule.
        ReasonUpdate::IfEmpty(rule)
    } else if status == RunStatus::Success {
        ReasonUpdate::Clear
    } else if let Some(init) = jobs.iter().find_map(|j| j.job.init_failure.as_ref()) {
        // The run shows the category of the job failure that decided it.
        state.store.set_init_failure_if_empty(run_id, init).await?;
        ReasonUpdate::IfEmpty(init.message.clone())
    } else {
        match failed_jobs_reason(jobs.iter().map(|j| (j.job.job_name.as_str(), j.job.status))) {
            Some(text) => ReasonUpdate::IfEmpty(text),
            None => ReasonUpdate::Keep,
        }
    };
    if state.store.complete_run(run_id, status, &reason, now).await? {
        // Secret outputs live as long as the run that may pass them on.
        state.store.delete_secret_outputs(run_id).await?;
        crate::concurrency::release(state, run_id).await?;
        let run = state.store.get_run(run_id).await?;
        let duration = run
            .as_ref()
            .and_then(|r| r.duration_ms)
            .map(|ms| std::time::Duration::from_millis(ms.max(0) as u64));
        kici_telemetry::metrics::orchestrator::execution_finished(status, duration);
        let failure = run.and_then(|r| r.failure_reason).unwrap_or_default();
        tracing::info!(runId = %run_id, status = %status, failureReason = %failure, "run completed");
    }
    Ok(())
}

/// An agent message that could not be recorded. It is not acknowledged; the caller closes the
/// connection so the agent replays it (and everything after it) from its outbox on reconnect.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the step log of job {job_id} (run {run_id})")]
    Log {
        run_id: RunId,
        job_id: JobId,
        #[source]
        source: std::io::Error,
    },
}

/// Whether `agent_id` holds `job_id` (its queue entry names the agent). A message about a job
/// the agent does not hold is refused and logged: it would otherwise keep another agent's job
/// alive or put it back in the queue.
async fn holds(state: &Shared, agent_id: &AgentId, job_id: &JobId, what: &str) -> Result<bool, StoreError> {
    let owner = state.store.queue_entry(job_id).await?.and_then(|e| e.agent_id);
    Ok(owned_by(owner.as_deref(), agent_id, job_id, what))
}

/// Whether `owner` (the agent a job was given to) is `agent_id`; a refusal is logged.
fn owned_by(owner: Option<&str>, agent_id: &AgentId, job_id: &JobId, what: &str) -> bool {
    if owner == Some(agent_id.as_str()) {
        return true;
    }
    tracing::warn!(agentId = %agent_id, jobId = %excerpt(job_id), owner = ?owner, messageType = what, "agent message refused: the job is not assigned to this agent");
    false
}

/// Applies one message from `agent_id`; returns the acknowledgement to send, if any.
pub async fn apply(
    state: &Shared,
    agent_id: &AgentId,
    message: AgentMessage,
) -> Result<Option<OrchestratorMessage>, ApplyError> {
    let now = now_ms();
    match message {
        AgentMessage::JobHeartbeat { job_id, .. } => {
            if holds(state, agent_id, &job_id, "job.heartbeat").await? {
                state.store.job_heartbeat(&job_id, now).await?;
            }
            Ok(None)
        }
        AgentMessage::Status { draining, .. } => {
            state.hub.set_draining(agent_id, draining);
            state.wake_dispatcher();
            Ok(None)
        }
        AgentMessage::JobConcurrencyReport { run_id, job_id, group } => {
            let (ack, superseded) = crate::concurrency::report(state, agent_id, &run_id, &job_id, &group).await?;
            // Cancelling a run may complete it, which releases its place in the group.
            for old in superseded {
                tracing::info!(runId = %old, by = %run_id, group = %group, "run superseded in its concurrency group");
                cancel_run(state, &old, &kici_engine::failure::superseded_in_group(&group), false).await?;
            }
            Ok(Some(OrchestratorMessage::JobConcurrencyAck { run_id, job_id, ack }))
        }
        AgentMessage::JobReject { job_id, reason, .. } => {
            if !holds(state, agent_id, &job_id, "job.reject").await? {
                return Ok(None);
            }
            // Only a job that has not started goes back to the queue; a running one is the
            // agent's to finish (or to fail through its status).
            let queued = state
                .store
                .get_job(&job_id)
                .await?
                .is_some_and(|record| record.job.status == JobStatus::Queued);
            tracing::info!(agentId = %agent_id, jobId = %job_id, reason = ?reason, requeued = queued, "job refused by agent");
            if queued {
                state.store.requeue_entry(&job_id).await?;
            }
            state.hub.release(agent_id, &job_id);
            if matches!(reason, kici_engine::protocol::RejectReason::Draining) {
                state.hub.set_draining(agent_id, true);
            }
            state.wake_dispatcher();
            Ok(None)
        }
        sequenced => {
            let Some((job_id, seq)) = sequenced.sequenced().map(|(j, s)| (j.clone(), s)) else {
                return Ok(None);
            };
            let ack = OrchestratorMessage::Ack {
                job_id: job_id.clone(),
                seq,
            };
            let Some(record) = state.store.get_job(&job_id).await? else {
                tracing::warn!(agentId = %agent_id, jobId = %job_id, "message for an unknown job ignored");
                return Ok(Some(ack));
            };
            if record.last_seq >= seq as i64 {
                return Ok(Some(ack));
            }
            // The job's agent is its queue entry's (one claim sets both).
            let what = "job.ack, job.status, step.status, log.chunk or event.emit";
            if !owned_by(record.job.agent_id.as_deref(), agent_id, &job_id, what) {
                return Ok(Some(ack));
            }
            match sequenced {
                AgentMessage::JobAck { .. } => state.store.entry_acknowledged(&job_id).await?,
                AgentMessage::JobStatus(update) => job_status(state, agent_id, &record, *update, now).await?,
                AgentMessage::StepStatus(update) => {
                    let ended = update.state.is_terminal().then_some(update.step_index);
                    step_status(state, *update, now).await?;
                    if let Some(step_index) = ended {
                        state.logs.step_ended(&record.job.run_id, &job_id, step_index).await;
                    }
                    state.run_changed(&record.job.run_id);
                }
                AgentMessage::EventEmit(emit) => crate::emits::emitted(state, &record, emit).await?,
                AgentMessage::LogChunk(chunk) => {
                    let lines: Vec<(i64, String)> = chunk.lines.into_iter().map(|l| (l.ts, l.line)).collect();
                    if let Err(err) = state
                        .logs
                        .append(&record.job.run_id, &job_id, chunk.step_index, seq, &lines)
                        .await
                    {
                        return Err(ApplyError::Log {
                            run_id: record.job.run_id.clone(),
                            job_id,
                            source: err,
                        });
                    }
                    kici_telemetry::metrics::orchestrator::log_chunk_stored(
                        lines.iter().map(|(_, l)| l.len() as u64).sum(),
                    );
                    let live = lines
                        .into_iter()
                        .map(|(ts, line)| kici_engine::api::LogLine { ts, line })
                        .collect();
                    state
                        .platform
                        .log_chunk(&record.job.run_id, &job_id, chunk.step_index, live);
                }
                _ => {}
            }
            state.store.advance_seq(&job_id, seq as i64, now).await?;
            Ok(Some(ack))
        }
    }
}

async fn step_status(state: &Shared, update: StepStatusUpdate, now: i64) -> Result<(), StoreError> {
    if update.state.is_terminal() {
        kici_telemetry::metrics::orchestrator::step_finished(update.state);
    }
    state
        .store
        .upsert_step(&StepUpdate {
            job_id: update.job_id,
            step_index: update.step_index,
            step_name: update.step_name,
            step_type: update.step_type,
            status: update.state,
            exit_code: update.exit_code,
            error_message: update.error,
            duration_ms: update.duration_ms.map(|d| d as i64),
            secrets_accessed: update.secrets_accessed,
            now,
        })
        .await
}

async fn job_status(
    state: &Shared,
    agent_id: &AgentId,
    record: &JobRecord,
    mut update: JobStatusUpdate,
    now: i64,
) -> Result<(), StoreError> {
    let job_id = &record.job.job_id;
    let run_id = &record.job.run_id;
    if !update.state.is_terminal() {
        state.store.entry_acknowledged(job_id).await?;
        if state
            .store
            .transition_job(job_id, &JobChange::on(JobEvent::Start), now)
            .await?
        {
            state.store.mark_run_running(run_id, now).await?;
            tracing::info!(runId = %run_id, jobId = %job_id, agentId = %agent_id, "job running");
        }
        return Ok(());
    }
    state.logs.job_ended(run_id, job_id).await;
    if record.job.status.is_terminal() {
        // Already finished elsewhere (expired, cancelled, reclaimed): a late result must not add
        // a matrix's or generator's jobs to the run.
        tracing::info!(runId = %run_id, jobId = %job_id, agentId = %agent_id, status = %record.job.status, "late result for a finished job ignored");
    } else if record.kind == JobKind::MatrixEval {
        matrix_evaluated(state, record, &update, now).await?;
    } else if record.kind == JobKind::DynamicEval {
        generator_evaluated(state, record, &update, now).await?;
    } else if let (JobKind::InitEval, JobStatus::Success, Some(result)) =
        (record.kind, update.state, &update.init_result)
    {
        // The job it resolves for moves on when the run advances below.
        state.store.finish_init_evaluation(job_id, result, now).await?;
    }
    if !update.secret_outputs.is_empty() {
        store_secret_outputs(state, record, &update.secret_outputs, now).await?;
    }
    if let Some(outputs) = update.outputs.take().filter(|_| !record.job.status.is_terminal()) {
        let size = outputs.to_string().len();
        if size > MAX_JOB_OUTPUTS_BYTES {
            update.state = JobStatus::Failed;
            update.error = Some(format!(
                "Job outputs are {size} bytes; the limit is {MAX_JOB_OUTPUTS_BYTES}"
            ));
        } else {
            state.store.set_job_outputs(job_id, &outputs).await?;
        }
    }
    let queue_status = if update.state == JobStatus::Success {
        QueueStatus::Completed
    } else {
        QueueStatus::Failed
    };
    let leftover = if update.state == JobStatus::Cancelled {
        StepStatus::Cancelled
    } else {
        StepStatus::Skipped
    };
    let build_failure = match record.kind {
        JobKind::Build => {
            state.builds.finish(job_id);
            if let Some(duration) = update.duration_ms {
                kici_telemetry::metrics::orchestrator::build_finished(std::time::Duration::from_millis(duration));
            }
            (update.state == JobStatus::Failed).then(|| InitFailure {
                scope: InitFailureScope::Run,
                category: InitFailureCategory::BuildCoordination,
                message: kici_engine::failure::build_failed(update.error.as_deref().unwrap_or("the build job failed")),
                job_name: None,
            })
        }
        // An agent names one failure before any step ran: its checkout of the job's source.
        _ => update
            .init_failure
            .take()
            .filter(|init| {
                update.state == JobStatus::Failed
                    && init.scope == InitFailureScope::Job
                    && init.category == InitFailureCategory::Checkout
            })
            .map(|init| InitFailure {
                job_name: Some(record.job.base_job_name.clone()),
                ..init
            }),
    };
    // An evaluation row has ended above; this closes its entry and steps. Any other job ends
    // here, with its entry and steps, in one transaction.
    let finished = state
        .store
        .end_job(&JobEnd {
            job_id,
            run_id,
            change: JobChange::reported(update.state),
            error: update.error.as_deref(),
            init_failure: build_failure.as_ref(),
            entry: Some(queue_status),
            only_if_entry_open: false,
            open_steps: Some(leftover),
            run_reason: None,
            now,
        })
        .await?;
    if finished {
        tracing::info!(runId = %run_id, jobId = %job_id, agentId = %agent_id, status = %update.state, error = update.error.as_deref().unwrap_or(""), "job finished");
    }
    state.hub.release(agent_id, job_id);
    state.wake_dispatcher();
    // A plain job's success beside jobs that are all queued or running decides nothing: a
    // 250-job matrix does not re-read its run 250 times.
    if finished
        && update.state == JobStatus::Success
        && record.kind == JobKind::Execute
        && state.store.only_placed_jobs_left(run_id).await?
    {
        state.run_changed(run_id);
        return Ok(());
    }
    advance_run(state, run_id).await
}

/// A matrix evaluation job finished: its values become child jobs, or its failure the job's
/// `matrix_expansion` error.
async fn matrix_evaluated(
    state: &Shared,
    record: &JobRecord,
    update: &JobStatusUpdate,
    now: i64,
) -> Result<(), StoreError> {
    let base = &record.job.base_job_name;
    let outcome = match (update.state, &update.matrix) {
        (JobStatus::Success, Some(value)) => expand_dynamic(state, record, value, now).await?,
        (JobStatus::Success, None) => Err("the matrix function returned nothing".to_string()),
        (_, _) => Err(evaluation_error(update)),
    };
    finish_evaluation(state, record, update.state, outcome, now, |message| {
        let text = matrix_expansion_failed(base, message);
        (text.clone(), matrix_failure(base, text))
    })
    .await
}

/// The error an evaluation job reported, or its final status when it gave none.
fn evaluation_error(update: &JobStatusUpdate) -> String {
    update
        .error
        .clone()
        .unwrap_or_else(|| format!("evaluation {}", update.state))
}

/// The jobs an evaluation produced, with the queue entries of those that can start at once.
type Produced = (Vec<NewJob>, Vec<NewQueueEntry>);

/// Ends a matrix or generator evaluation job: `success` with its jobs added to the run in the
/// same transaction (never twice: a replayed report finds the row ended), `cancelled` when it
/// was, else `failed` with the error text and init failure `failure` makes of the problem.
async fn finish_evaluation(
    state: &Shared,
    record: &JobRecord,
    reported: JobStatus,
    outcome: Result<Produced, String>,
    now: i64,
    failure: impl FnOnce(&str) -> (String, InitFailure),
) -> Result<(), StoreError> {
    let job = &record.job;
    match outcome {
        Ok((children, entries)) => {
            if state
                .store
                .finish_evaluation(&job.job_id, &children, &entries, now)
                .await?
            {
                state.wake_dispatcher();
                tracing::info!(runId = %job.run_id, job = %job.base_job_name, jobs = children.len(), "evaluation done; jobs added to the run");
            }
        }
        Err(message) if reported == JobStatus::Cancelled => {
            state
                .store
                .finish_job(
                    &job.job_id,
                    &JobChange::reported(JobStatus::Cancelled),
                    Some(&message),
                    None,
                    now,
                )
                .await?;
        }
        Err(message) => {
            let (text, init) = failure(&message);
            state
                .store
                .finish_job(
                    &job.job_id,
                    &JobChange::on(JobEvent::Fail),
                    Some(&text),
                    Some(&init),
                    now,
                )
                .await?;
            tracing::warn!(runId = %job.run_id, jobId = %job.job_id, error = %text, "evaluation failed");
        }
    }
    Ok(())
}

/// The children of a dynamic matrix; `Err` carries the expansion problem.
async fn expand_dynamic(
    state: &Shared,
    record: &JobRecord,
    value: &Value,
    now: i64,
) -> Result<Result<Produced, String>, StoreError> {
    let Some(loaded) = load_run(state, &record.job.run_id).await? else {
        return Ok(Err("the run is gone".into()));
    };
    let Some(workflow) = &loaded.workflow else {
        return Ok(Err("the run has no workflow".into()));
    };
    let Some(job) = lock_job(workflow, &record.job.base_job_name) else {
        return Ok(Err("the job is not in the lock file".into()));
    };
    let Ok(values) = serde_json::from_value::<MatrixValues>(value.clone()) else {
        return Ok(Err(
            "the matrix function must return an array or an object of arrays".into()
        ));
    };
    let combinations = match matrix::expand(&job.name, &values, &job.include, &job.exclude) {
        Ok(combinations) => combinations,
        Err(err) => return Ok(Err(err.to_string())),
    };
    let needs: Map<String, Value> = state
        .store
        .queue_entry(&record.job.job_id)
        .await?
        .and_then(|e| serde_json::from_str::<kici_engine::protocol::JobDispatch>(&e.dispatch).ok())
        .map(|d| d.needs)
        .unwrap_or_default();
    let children = rows::matrix_children(&record.job.run_id, workflow, job, combinations, now);
    // Children of a gated job are pending: the run's progress takes them through the gates.
    let entries: Vec<_> = children
        .iter()
        .filter(|child| child.status == JobStatus::Queued)
        .map(|child| {
            entry(
                &state.config,
                &loaded.facts(),
                workflow,
                &JobFacts::from(child),
                &Prepared::default(),
                needs.clone(),
                now,
            )
        })
        .collect();
    Ok(Ok((children, entries)))
}

/// A dynamic job generator finished: its jobs join the run, or its failure becomes the job's
/// `dynamic_eval` error.
async fn generator_evaluated(
    state: &Shared,
    record: &JobRecord,
    update: &JobStatusUpdate,
    now: i64,
) -> Result<(), StoreError> {
    let generator = &record.job.base_job_name;
    let outcome = match (update.state, &update.jobs) {
        (JobStatus::Success, Some(value)) => add_generated_jobs(state, record, value, now).await?,
        (JobStatus::Success, None) => Err("the generator returned nothing".to_string()),
        (_, _) => Err(evaluation_error(update)),
    };
    finish_evaluation(state, record, update.state, outcome, now, |message| {
        let text = failure::dynamic_eval_failed(generator, message);
        let init = InitFailure {
            scope: InitFailureScope::Job,
            category: InitFailureCategory::DynamicEval,
            message: text.clone(),
            job_name: Some(generator.clone()),
        };
        (text, init)
    })
    .await
}

/// The jobs a generator described; `Err` says what is wrong with them.
async fn add_generated_jobs(
    state: &Shared,
    record: &JobRecord,
    value: &Value,
    now: i64,
) -> Result<Result<Produced, String>, StoreError> {
    let Some(loaded) = load_run(state, &record.job.run_id).await? else {
        return Ok(Err("the run is gone".into()));
    };
    let Some(workflow) = &loaded.workflow else {
        return Ok(Err("the run has no workflow".into()));
    };
    let Ok(descriptions) = serde_json::from_value::<Vec<JobDescription>>(value.clone()) else {
        return Ok(Err("the generator's jobs could not be read".into()));
    };
    // Counted before any of their label patterns is compiled.
    if let Err(message) = kici_engine::description::check_generated_size(&descriptions) {
        return Ok(Err(message));
    }
    let jobs = match descriptions
        .iter()
        .map(JobDescription::to_static_job)
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(jobs) => jobs,
        Err(message) => return Ok(Err(message)),
    };
    let declared: Vec<String> = workflow.jobs.iter().map(|j| j.name()).collect();
    let declared: Vec<&str> = declared.iter().map(String::as_str).collect();
    if let Err(message) = kici_engine::description::validate_generated(&jobs, &declared) {
        return Ok(Err(message));
    }
    let children = match rows::generated(&record.job.run_id, &jobs, record.dynamic_index, now) {
        Ok(children) => children,
        Err(message) => return Ok(Err(message)),
    };
    let entries: Vec<_> = children
        .iter()
        .filter(|child| child.status == JobStatus::Queued)
        .map(|child| {
            entry(
                &state.config,
                &loaded.facts(),
                workflow,
                &JobFacts::from(child),
                &Prepared::default(),
                Map::new(),
                now,
            )
        })
        .collect();
    Ok(Ok((children, entries)))
}

/// A job left the queue without an agent: `timed_out_stale` with the captured provisioning
/// error or the generic text, and the run's failure reason when it has none yet.
pub async fn expire(state: &Shared, entry: &kici_store::QueueEntry) -> Result<(), StoreError> {
    let now = now_ms();
    let error = entry
        .last_provisioning_error
        .clone()
        .unwrap_or_else(|| failure::QUEUE_TIMEOUT_EXPIRED.to_string());
    let init = InitFailure {
        scope: InitFailureScope::Job,
        category: InitFailureCategory::NoAgent,
        message: error.clone(),
        job_name: None,
    };
    let run_reason = entry
        .last_provisioning_error
        .as_deref()
        .unwrap_or(failure::NO_AGENTS_AVAILABLE);
    // The entry's close is the claim: of two sweeps, one expires the job.
    let ended = state
        .store
        .end_job(&JobEnd {
            job_id: &entry.job_id,
            run_id: &entry.run_id,
            change: JobChange::on(JobEvent::Fail).failing_as(JobStatus::TimedOutStale),
            error: Some(&error),
            init_failure: Some(&init),
            entry: Some(QueueStatus::Expired),
            only_if_entry_open: true,
            open_steps: None,
            run_reason: Some(run_reason),
            now,
        })
        .await?;
    if !ended {
        return Ok(());
    }
    state.scaler.forget_job(&entry.job_id);
    tracing::warn!(runId = %entry.run_id, jobId = %entry.job_id, error = %error, "queue timeout: job never dispatched");
    advance_run(state, &entry.run_id).await?;
    let job_name = state
        .store
        .get_job(&entry.job_id)
        .await?
        .map(|j| j.job.job_name)
        .unwrap_or_default();
    state
        .timeline
        .record(kici_store::NewRunEvent {
            event_id: crate::ids::new_id(),
            run_id: entry.run_id.clone(),
            job_id: Some(entry.job_id.clone()),
            event_type: api::RunEventType::QueueExpired,
            source_service: "orchestrator".to_string(),
            timestamp_ms: now,
            metadata: serde_json::json!({ "jobName": job_name, "reason": error }),
        })
        .await
}

/// Fails a job the orchestrator gave up on (recovery window, stale heartbeat, attempts).
pub async fn fail_job(
    state: &Shared,
    job_id: &JobId,
    run_id: &RunId,
    status: JobStatus,
    error: &str,
    run_reason: Option<&str>,
) -> Result<(), StoreError> {
    fail_job_before_start(state, job_id, run_id, status, error, run_reason, None).await
}

/// Dispatches of one job before it fails.
pub const MAX_DISPATCH_ATTEMPTS: i64 = 5;

/// A dispatched job its agent did not take back (the agent did not reconnect in time, came
/// back without it, or the orchestrator restarted meanwhile). Nothing is done when the job
/// moved on since (another agent holds it, or it finished). One its agent never acknowledged
/// goes back to the queue (and fails once its dispatch attempts are spent); an acknowledged
/// one may be running on that agent and fails with `error`.
pub(crate) async fn settle_unclaimed(
    state: &Shared,
    entry: &kici_store::QueueEntry,
    error: &str,
) -> Result<(), StoreError> {
    let (job_id, run_id) = (&entry.job_id, &entry.run_id);
    let (Some(current), Some(job)) = (
        state.store.queue_entry(job_id).await?,
        state.store.get_job(job_id).await?,
    ) else {
        return Ok(());
    };
    let held = matches!(current.status, QueueStatus::Dispatched | QueueStatus::Recovering);
    if !held || current.agent_id != entry.agent_id || job.job.status.is_terminal() {
        return Ok(());
    }
    let never_acknowledged = job.job.status == JobStatus::Queued && current.ack_deadline.is_some();
    if !never_acknowledged {
        return fail_job(state, job_id, run_id, JobStatus::Failed, error, None).await;
    }
    if current.attempts >= MAX_DISPATCH_ATTEMPTS {
        let error = kici_engine::failure::attempts_exhausted(current.attempts as u32, "dispatch not acknowledged");
        return fail_job(state, job_id, run_id, JobStatus::Failed, &error, None).await;
    }
    let Some(agent_id) = &current.agent_id else {
        return Ok(());
    };
    if state.store.requeue_entry_held_by(job_id, agent_id).await? {
        tracing::info!(runId = %run_id, jobId = %job_id, agentId = %agent_id, "job never acknowledged by its lost agent; requeued");
        state.wake_dispatcher();
    }
    Ok(())
}

/// [`fail_job`] for a failure before any step ran, shown with its category.
pub(crate) async fn fail_job_before_start(
    state: &Shared,
    job_id: &JobId,
    run_id: &RunId,
    status: JobStatus,
    error: &str,
    run_reason: Option<&str>,
    init_failure: Option<&InitFailure>,
) -> Result<(), StoreError> {
    let ended = state
        .store
        .end_job(&JobEnd {
            job_id,
            run_id,
            change: JobChange::on(JobEvent::Fail).failing_as(status),
            error: Some(error),
            init_failure,
            entry: Some(QueueStatus::Failed),
            only_if_entry_open: false,
            open_steps: Some(StepStatus::Cancelled),
            run_reason,
            now: now_ms(),
        })
        .await?;
    if ended {
        tracing::warn!(runId = %run_id, jobId = %job_id, status = %status, error = %error, "job failed by the orchestrator");
    }
    advance_run(state, run_id).await
}

/// Cancels one unfinished job: a running one gets `job.cancel` on its agent's open socket and
/// becomes `cancelling` (true: it finishes through its agent's report); any other is
/// `cancelled` now, no hooks run (false).
pub(crate) async fn cancel_job(
    state: &Shared,
    job: &kici_engine::api::Job,
    reason: &str,
    force: bool,
    now: i64,
) -> Result<bool, StoreError> {
    let run_id = &job.run_id;
    let agent = job.agent_id.as_deref().and_then(|id| state.hub.get(&AgentId::from(id)));
    if let Some(agent) = &agent {
        let message = OrchestratorMessage::JobCancel {
            run_id: run_id.clone(),
            job_id: job.job_id.clone(),
            reason: reason.to_string(),
            force,
        };
        let sent = agent.tx.send(crate::hub::Outbound::Message(message)).await.is_ok();
        // A dispatched job not yet started is cancelled here and now; the agent only
        // drops it. A started one finishes through its agent's report.
        if sent && matches!(job.status, JobStatus::Running | JobStatus::Cancelling) {
            state
                .store
                .transition_job(&job.job_id, &JobChange::on(JobEvent::CancelGraceful), now)
                .await?;
            state.store.set_job_error_if_empty(&job.job_id, reason).await?;
            tracing::info!(runId = %run_id, jobId = %job.job_id, agentId = %agent.agent_id, force, "job.cancel sent");
            return Ok(true);
        }
    }
    state
        .store
        .end_job(&JobEnd {
            job_id: &job.job_id,
            run_id,
            change: JobChange::on(JobEvent::Cancel).or(JobChange::on(JobEvent::CancelForce)),
            error: Some(reason),
            init_failure: None,
            entry: Some(QueueStatus::Failed),
            only_if_entry_open: false,
            open_steps: Some(StepStatus::Cancelled),
            run_reason: None,
            now,
        })
        .await?;
    if let Some(agent_id) = &job.agent_id {
        state.hub.release(agent_id, &job.job_id);
    }
    Ok(false)
}

/// What cancelling a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelOutcome {
    /// Jobs told to stop on their agents; the run completes when they report back.
    pub notified: usize,
    /// Jobs cancelled at once (waiting, queued, or on an agent that is gone).
    pub cancelled: usize,
}

/// Cancels every unfinished job of a run: running jobs get `job.cancel` on their agent's open
/// socket and become `cancelling`; the others are `cancelled` now (no hooks run). The run
/// completes as soon as no job is left running.
pub async fn cancel_run(
    state: &Shared,
    run_id: &RunId,
    reason: &str,
    force: bool,
) -> Result<CancelOutcome, StoreError> {
    let now = now_ms();
    let mut outcome = CancelOutcome {
        notified: 0,
        cancelled: 0,
    };
    for record in state.store.run_jobs(run_id, false).await? {
        if record.job.status.is_terminal() {
            continue;
        }
        if cancel_job(state, &record.job, reason, force, now).await? {
            outcome.notified += 1;
        } else {
            outcome.cancelled += 1;
        }
    }
    state.store.set_failure_reason_if_empty(run_id, reason).await?;
    tracing::info!(runId = %run_id, notified = outcome.notified, cancelled = outcome.cancelled, force, "run cancelled");
    state.wake_dispatcher();
    advance_run(state, run_id).await?;
    Ok(outcome)
}
