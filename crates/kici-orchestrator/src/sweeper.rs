//! Periodic checks on what time decides: runs past their workflow `timeout` (cancelled), jobs
//! whose wait timer is up (queued) and holds nobody decided in time (failed), queue entries that expired without an agent,
//! dispatches not acknowledged in time, disconnected agents that did not come back, and
//! running jobs that stopped sending heartbeats; with the stale scan it also moves every
//! active run forward once more, in case an earlier attempt was cut short. Runs every
//! `KICI_QUEUE_SWEEP_INTERVAL_MS` (1 s) so a failure reason appears promptly.

use kici_engine::failure::{self, attempts_exhausted};
use kici_engine::ids::{AgentId, JobId, RunId};
use kici_engine::protocol::{OrchestratorMessage, close_code};
use kici_engine::status::{JobChange, JobEvent, JobStatus};
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::holds;
use crate::hub::Outbound;
use crate::progress;
use crate::state::Shared;

use crate::progress::MAX_DISPATCH_ATTEMPTS;

/// How often old runs, deliveries and event-log lines are pruned.
const PRUNE_INTERVAL_MS: i64 = 60 * 60 * 1000;
/// Runs deleted per pruning pass, so one pass stays short.
const PRUNE_BATCH: i64 = 500;

pub async fn run(state: Shared, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(state.config.queue_sweep_interval);
    let mut last_stale_scan = 0i64;
    let mut last_prune = 0i64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        // One orchestrator of several sharing the database sweeps (`cluster`).
        if !state.leads() {
            continue;
        }
        let now = now_ms();
        let scan_stale = now - last_stale_scan >= state.config.stale_scan_interval.as_millis() as i64;
        if scan_stale {
            last_stale_scan = now;
        }
        if let Err(err) = sweep(&state, now, scan_stale).await {
            tracing::error!(error = %err, "sweep failed");
        }
        if now - last_prune >= PRUNE_INTERVAL_MS {
            last_prune = now;
            if let Err(err) = prune(&state, now).await {
                tracing::error!(error = %err, "pruning old runs failed; retried in an hour");
            }
            // Generic webhooks' delivery ids and bodies are remembered a day against replays.
            let day_ago = now - 24 * 60 * 60 * 1000;
            if let Err(err) = state.store.forget_event_claims("generic_webhook:", day_ago).await {
                tracing::error!(error = %err, "forgetting old generic webhook deliveries failed; retried in an hour");
            }
            if let Err(err) = crate::user_cache::expire(&state).await {
                tracing::error!(error = %err, "expiring unused caches failed; retried in an hour");
            }
            if let Err(err) = crate::build::expire_tarballs(&state, now).await {
                tracing::error!(error = %err, "expiring source and dependency tarballs failed; retried in an hour");
            }
        }
    }
}

/// Logs the failure of one item of a sweep; the sweep goes on with the next item, and the
/// next sweep tries this one again (every step is written in one transaction, so a failed one
/// left nothing half done).
fn logged(what: &str, job_id: &JobId, result: Result<(), kici_store::StoreError>) {
    if let Err(err) = result {
        tracing::error!(jobId = %job_id, error = %err, "{what} failed; retried at the next sweep");
    }
}

/// One pass of the checks above (the loop in [`run`] calls it every sweep interval).
pub async fn sweep(state: &Shared, now: i64, scan_stale: bool) -> Result<(), kici_store::StoreError> {
    if let Err(err) = progress::release_waiting(state).await {
        tracing::error!(error = %err, "releasing jobs whose wait timer is up failed; retried at the next sweep");
    }
    if let Err(err) = holds::expire(state).await {
        tracing::error!(error = %err, "failing expired holds failed; retried at the next sweep");
    }
    for (run_id, timeout_ms) in state.store.overdue_runs(now).await? {
        tracing::warn!(runId = %run_id, timeoutMs = timeout_ms, "run exceeded its workflow timeout; cancelling it");
        let cancelled = async {
            progress::cancel_run(state, &run_id, &failure::workflow_timeout(timeout_ms), false).await?;
            state.store.clear_run_deadline(&run_id).await
        }
        .await;
        if let Err(err) = cancelled {
            tracing::error!(runId = %run_id, error = %err, "cancelling a run past its workflow timeout failed; retried at the next sweep");
        }
    }
    for entry in state.store.expired_entries(now).await? {
        logged("queue expiry", &entry.job_id, progress::expire(state, &entry).await);
    }
    for entry in state.store.overdue_acks(now).await? {
        let agent_id = entry.agent_id.clone().unwrap_or_default();
        tracing::warn!(runId = %entry.run_id, jobId = %entry.job_id, agentId = %agent_id, "dispatch not acknowledged in time; requeued");
        if entry.attempts >= MAX_DISPATCH_ATTEMPTS {
            let error = attempts_exhausted(entry.attempts as u32, "dispatch not acknowledged");
            let failed = progress::fail_job(state, &entry.job_id, &entry.run_id, JobStatus::Failed, &error, None).await;
            logged("failing an unacknowledged job", &entry.job_id, failed);
        } else {
            let requeued = state.store.requeue_entry(&entry.job_id).await.map(|_| ());
            logged("requeueing an unacknowledged job", &entry.job_id, requeued);
        }
        if let Some(agent) = state.hub.get(&agent_id) {
            // The agent is unusable; closing makes it reconnect fresh. It may be gone already.
            let _ = agent
                .tx
                .send(Outbound::Close(
                    close_code::DISPATCH_ACK_TIMEOUT,
                    "dispatch ack timeout".into(),
                ))
                .await;
        }
        state.wake_dispatcher();
    }
    for entry in state.store.overdue_recoveries(now).await? {
        let settled = progress::settle_unclaimed(state, &entry, failure::AGENT_DID_NOT_RECONNECT).await;
        logged("settling a job whose agent did not come back", &entry.job_id, settled);
    }
    if scan_stale {
        let scan_started = std::time::Instant::now();
        let threshold = state.config.stale_threshold();
        let stale = state
            .store
            .stale_running_jobs(now - threshold.as_millis() as i64)
            .await?;
        let found = stale.len() as u64;
        for job in stale {
            let error = match job.last_heartbeat_at {
                Some(at) => format!("No heartbeat received for {}s", (now - at) / 1000),
                None => "No heartbeat received (heartbeat was never set)".to_string(),
            };
            // The agent stays busy until it reports the job cancelled, or until its silent
            // connection is closed: a job may still be running there.
            if let Some(agent) = job
                .job
                .agent_id
                .as_deref()
                .and_then(|id| state.hub.get(&AgentId::from(id)))
            {
                let _ = agent
                    .tx
                    .send(Outbound::Message(OrchestratorMessage::JobCancel {
                        run_id: job.job.run_id.clone(),
                        job_id: job.job.job_id.clone(),
                        reason: error.clone(),
                        force: true,
                    }))
                    .await;
            }
            let failed = progress::fail_job(
                state,
                &job.job.job_id,
                &job.job.run_id,
                JobStatus::TimedOutStale,
                &error,
                Some(failure::STALE_RUN_REASON),
            )
            .await;
            logged("failing a stale job", &job.job.job_id, failed);
        }
        kici_telemetry::metrics::orchestrator::stale_scan(scan_started.elapsed(), found, found);
        // Reconciliation: a run whose last job finished while moving it forward failed (a
        // database error between the two writes) would otherwise never complete.
        for run_id in state.store.active_run_ids().await? {
            if let Err(err) = progress::advance_run(state, &run_id).await {
                tracing::error!(runId = %run_id, error = %err, "moving a run forward failed; retried at the next scan");
            }
        }
    }
    for status in [
        kici_store::QueueStatus::Pending,
        kici_store::QueueStatus::Dispatched,
        kici_store::QueueStatus::Recovering,
    ] {
        let count = state.store.count_queue_entries(status).await?;
        kici_telemetry::metrics::orchestrator::set_dispatch_queue_depth(status.as_str(), count);
    }
    Ok(())
}

/// Retention: deletes what finished more than `KICI_RETENTION_DAYS` ago, with the log files of
/// the deleted runs. Returns how many runs went.
pub async fn prune(state: &Shared, now: i64) -> Result<usize, kici_store::StoreError> {
    let Some(retention) = state.config.retention else {
        return Ok(0);
    };
    let cutoff = now - retention.as_millis() as i64;
    let pruned = state.store.prune(cutoff, now, PRUNE_BATCH).await?;
    for run_id in &pruned.run_ids {
        if let Err(err) = state.logs.remove_run(&RunId::from(run_id)).await {
            tracing::warn!(runId = %run_id, error = %err, "cannot remove the logs of a pruned run");
        }
    }
    if !pruned.run_ids.is_empty() || pruned.deliveries > 0 || pruned.event_log > 0 || pruned.events > 0 {
        tracing::info!(
            runs = pruned.run_ids.len(),
            deliveries = pruned.deliveries,
            eventLog = pruned.event_log,
            events = pruned.events,
            claims = pruned.claims,
            "pruned what is past retention"
        );
    }
    Ok(pruned.run_ids.len())
}

/// At start: connections did not survive, so dispatched jobs wait for their agents (fresh
/// recovery window) and jobs that were already recovering are settled (requeued if their
/// agent never acknowledged them, else failed). One row that cannot be
/// handled is logged and left to the sweeper; it does not stop the start.
pub async fn recover_after_restart(state: &Shared) -> Result<(), kici_store::StoreError> {
    let now = now_ms();
    state.store.disconnect_all_agents().await?;
    for entry in state.store.in_flight_entries().await? {
        if entry.status == kici_store::QueueStatus::Recovering {
            let settled =
                progress::settle_unclaimed(state, &entry, failure::ORCHESTRATOR_RESTARTED_DURING_RECOVERY).await;
            logged("settling a job that was recovering", &entry.job_id, settled);
        }
    }
    let deadline = now + state.config.recovery_window().as_millis() as i64;
    state.store.recover_all_dispatched(deadline).await?;
    for entry in state.store.in_flight_entries().await? {
        let recovered = async {
            let Some(job) = state.store.get_job(&entry.job_id).await? else {
                return Ok(());
            };
            // A job not started yet stays `queued` while its agent may come back with it.
            if job.job.status != JobStatus::Queued {
                state
                    .store
                    .transition_job(&entry.job_id, &JobChange::on(JobEvent::Recover), now)
                    .await?;
            }
            Ok::<(), kici_store::StoreError>(())
        }
        .await;
        logged("recovering a job after the restart", &entry.job_id, recovered);
    }
    for run_id in state.store.active_run_ids().await? {
        if let Err(err) = progress::advance_run(state, &run_id).await {
            tracing::error!(runId = %run_id, error = %err, "moving a run forward after the restart failed; retried by the sweeper");
        }
    }
    Ok(())
}
