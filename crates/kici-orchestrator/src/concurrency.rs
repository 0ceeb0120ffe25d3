//! Workflow concurrency groups. A job reports the key its workflow's group function returned
//! (`job.concurrency.report`); runs of one repository with the same key form a group. With
//! `cancelInProgress` (the default) a run cancels the older runs of its group beyond `max - 1`
//! and goes on, and a run older than one already there is itself superseded; without it a run
//! goes on while fewer than `max` are active and otherwise waits, first come first served,
//! until a run of the group completes ([`release`]). The rows live in the store, so the order
//! and the waiting jobs survive a restart.

use kici_engine::failure::{
    MAX_CONCURRENCY_GROUP_CHARS, concurrency_group_too_long, queued_in_group, superseded_in_group,
};
use kici_engine::ids::{AgentId, JobId, RunId};
use kici_engine::lockfile::LockConcurrency;
use kici_engine::protocol::OrchestratorMessage;
use kici_engine::runner_protocol::{ConcurrencyAck, ConcurrencyAction};
use kici_store::{Slot, SlotState, StoreError};

use crate::hub::Outbound;
use crate::state::Shared;

fn ack(action: ConcurrencyAction, reason: Option<String>) -> ConcurrencyAck {
    ConcurrencyAck { action, reason }
}

async fn settings_of(state: &Shared, run_id: &RunId) -> Result<Option<LockConcurrency>, StoreError> {
    Ok(state
        .store
        .run_context(run_id)
        .await?
        .and_then(|inputs| inputs.workflow)
        .and_then(|workflow| workflow.concurrency))
}

/// The runs of a group, oldest first. A place whose run finished (its release was cut short by
/// a failed write) or is gone (pruned) is given up here, so it cannot hold the group forever.
async fn live_group(state: &Shared, repo: &str, group: &str) -> Result<Vec<Slot>, StoreError> {
    let mut live = Vec::new();
    for slot in state.store.concurrency_group(repo, group).await? {
        let finished = state
            .store
            .get_run(&slot.run_id)
            .await?
            .is_none_or(|run| run.status.is_terminal());
        if finished {
            state.store.remove_concurrency_slot(&slot.run_id).await?;
        } else {
            live.push(slot);
        }
    }
    Ok(live)
}

/// Decides what the job that reported `group` does: proceed, wait for its run's turn, or stop;
/// with the older runs it supersedes, for the caller to cancel (their places are given up).
pub async fn report(
    state: &Shared,
    agent_id: &AgentId,
    run_id: &RunId,
    job_id: &JobId,
    group: &str,
) -> Result<(ConcurrencyAck, Vec<RunId>), StoreError> {
    let chars = group.chars().count();
    if chars > MAX_CONCURRENCY_GROUP_CHARS {
        let refused = ack(ConcurrencyAction::Cancel, Some(concurrency_group_too_long(chars)));
        return Ok((refused, Vec::new()));
    }
    // Not the agent's job (or not that run's): refused like any other message about it.
    let owner = state.store.queue_entry(job_id).await?.and_then(|e| e.agent_id);
    let job_run = state.store.get_job(job_id).await?.map(|record| record.job.run_id);
    if owner.as_deref() != Some(agent_id.as_str()) || job_run.as_ref() != Some(run_id) {
        tracing::warn!(agentId = %agent_id, jobId = %job_id, "concurrency report refused: the job is not assigned to this agent");
        let refused = ack(
            ConcurrencyAction::Cancel,
            Some("the job is not assigned to this agent".into()),
        );
        return Ok((refused, Vec::new()));
    }
    let _turn = state.concurrency_turns.lock().await;
    decide(state, agent_id, run_id, job_id, group).await
}

/// [`report`]'s decision, made holding the turn lock.
async fn decide(
    state: &Shared,
    agent_id: &AgentId,
    run_id: &RunId,
    job_id: &JobId,
    group: &str,
) -> Result<(ConcurrencyAck, Vec<RunId>), StoreError> {
    let none = Vec::new();
    let (Some(run), Some(settings)) = (state.store.get_run(run_id).await?, settings_of(state, run_id).await?) else {
        // A run without a group in its lock file: nothing to limit.
        return Ok((ack(ConcurrencyAction::Proceed, None), none));
    };
    if run.status.is_terminal() {
        return Ok((
            ack(
                ConcurrencyAction::Cancel,
                Some(format!("run {run_id} already finished")),
            ),
            none,
        ));
    }
    let max = settings.max.max(1) as usize;
    if let Some(slot) = state.store.concurrency_slot(run_id).await? {
        if slot.state == SlotState::Active {
            return Ok((ack(ConcurrencyAction::Proceed, None), none));
        }
        // A repeated report (runners report again while they wait) also takes a turn a lost
        // release left free: the first queued run goes on when fewer than `max` are active.
        let group = live_group(state, &slot.repo, &slot.group_key).await?;
        let active = group.iter().filter(|s| s.state == SlotState::Active).count();
        let first_queued = group.iter().find(|s| s.state == SlotState::Queued).map(|s| &s.run_id);
        if active < max && first_queued == Some(run_id) {
            state.store.activate_concurrency_slot(run_id).await?;
            state.wake_dispatcher();
            return Ok((ack(ConcurrencyAction::Proceed, None), none));
        }
        state.store.add_concurrency_waiter(job_id, run_id, agent_id).await?;
        return Ok((
            ack(ConcurrencyAction::Wait, Some(queued_in_group(&slot.group_key))),
            none,
        ));
    }
    let others = live_group(state, &run.repo, group).await?;
    let slot = |state| Slot {
        run_id: run_id.clone(),
        repo: run.repo.clone(),
        group_key: group.to_string(),
        state,
        created_at: run.created_at,
    };
    if settings.cancel_in_progress {
        // Runs of one delivery share `created_at`: the run id breaks the tie, as the store sorts.
        let is_newer = |s: &Slot| (s.created_at, s.run_id.as_str()) > (run.created_at, run_id.as_str());
        let newer = others.iter().filter(|s| is_newer(s)).count();
        if newer >= max {
            tracing::info!(runId = %run_id, group, "run superseded in its concurrency group before it started");
            return Ok((ack(ConcurrencyAction::Cancel, Some(superseded_in_group(group))), none));
        }
        let older: Vec<&Slot> = others.iter().filter(|s| !is_newer(s)).collect();
        let excess = (older.len() + newer + 1).saturating_sub(max).min(older.len());
        let mut superseded = Vec::new();
        for old in older.into_iter().take(excess) {
            state.store.remove_concurrency_slot(&old.run_id).await?;
            superseded.push(old.run_id.clone());
        }
        state.store.add_concurrency_slot(&slot(SlotState::Active)).await?;
        return Ok((ack(ConcurrencyAction::Proceed, None), superseded));
    }
    let active = others.iter().filter(|s| s.state == SlotState::Active).count();
    let queued_ahead = others.iter().any(|s| s.state == SlotState::Queued);
    if active < max && !queued_ahead {
        state.store.add_concurrency_slot(&slot(SlotState::Active)).await?;
        return Ok((ack(ConcurrencyAction::Proceed, None), none));
    }
    tracing::info!(runId = %run_id, group, active, "run queued in its concurrency group");
    state.store.add_concurrency_slot(&slot(SlotState::Queued)).await?;
    state.store.add_concurrency_waiter(job_id, run_id, agent_id).await?;
    Ok((ack(ConcurrencyAction::Wait, Some(queued_in_group(group))), none))
}

/// The run completed: it leaves its group, and the runs queued next get their turn (their
/// waiting jobs are told to proceed).
pub async fn release(state: &Shared, run_id: &RunId) -> Result<(), StoreError> {
    let _turn = state.concurrency_turns.lock().await;
    let Some(slot) = state.store.concurrency_slot(run_id).await? else {
        return Ok(());
    };
    state.store.remove_concurrency_slot(run_id).await?;
    let group = live_group(state, &slot.repo, &slot.group_key).await?;
    let active = group.iter().filter(|s| s.state == SlotState::Active).count();
    for (active, next) in (active..).zip(group.iter().filter(|s| s.state == SlotState::Queued)) {
        let max = settings_of(state, &next.run_id)
            .await?
            .map_or(1, |s| s.max.max(1) as usize);
        if active >= max {
            break;
        }
        state.store.activate_concurrency_slot(&next.run_id).await?;
        // Its other jobs were held back by the dispatcher.
        state.wake_dispatcher();
        tracing::info!(runId = %next.run_id, group = %slot.group_key, "run's turn in its concurrency group");
        for (job_id, agent_id) in state.store.take_concurrency_waiters(&next.run_id).await? {
            let Some(agent) = state.hub.get(&agent_id) else {
                continue;
            };
            let message = OrchestratorMessage::JobConcurrencyAck {
                run_id: next.run_id.clone(),
                job_id,
                ack: ack(ConcurrencyAction::Proceed, None),
            };
            let _ = agent.tx.send(Outbound::Message(message)).await;
        }
    }
    Ok(())
}
