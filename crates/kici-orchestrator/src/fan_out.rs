//! The jobs of one matrix as a group. `maxParallel` lets at most that many of them be past
//! `pending` and unfinished at once: the others stay pending, and the run moves forward again
//! each time one finishes. `failFast` cancels the unfinished ones when one of them fails.
//! Both read the run's rows, so they hold across orchestrator restarts.

use kici_engine::lockfile::{LockWorkflow, StaticJob};
use kici_engine::protocol::JobKind;
use kici_engine::status::JobStatus;
use kici_store::{JobRecord, StoreError};

use crate::gates;
use crate::state::Shared;

/// The job cancelled by `failFast`: why, naming the matrix job that failed.
pub fn fail_fast_reason(failed: &str) -> String {
    format!("Cancelled because matrix job '{failed}' failed (failFast)")
}

fn is_child_of(record: &JobRecord, base: &str) -> bool {
    record.kind == JobKind::Execute && record.matrix.is_some() && record.job.base_job_name == base
}

/// Whether `waiting`, a pending matrix job, must stay pending: `maxParallel` of its siblings
/// are already queued, held or running (`admitted` more were queued earlier in this pass).
pub fn window_full(jobs: &[JobRecord], waiting: &JobRecord, definition: Option<&StaticJob>, admitted: usize) -> bool {
    let Some(max) = definition.and_then(|d| d.max_parallel) else {
        return false;
    };
    if waiting.matrix.is_none() {
        return false;
    }
    let base = &waiting.job.base_job_name;
    let started = jobs
        .iter()
        .filter(|j| is_child_of(j, base))
        .filter(|j| j.job.status != JobStatus::Pending && !j.job.status.is_terminal())
        .count();
    started + admitted >= max as usize
}

/// Cancels the unfinished siblings of every failed matrix job whose definition says
/// `failFast`. Returns whether it cancelled any (the rows changed).
pub async fn cancel_siblings_of_failures(
    state: &Shared,
    workflow: &LockWorkflow,
    jobs: &[JobRecord],
    now: i64,
) -> Result<bool, StoreError> {
    let mut changed = false;
    let failed = jobs.iter().filter(|j| {
        j.kind == JobKind::Execute
            && j.matrix.is_some()
            && matches!(j.job.status, JobStatus::Failed | JobStatus::TimedOutStale)
    });
    let mut done_bases: Vec<&str> = Vec::new();
    for failure in failed {
        let base = failure.job.base_job_name.as_str();
        if done_bases.contains(&base) {
            continue;
        }
        done_bases.push(base);
        let fail_fast = gates::definition(workflow, &crate::progress::facts_of(failure)).is_some_and(|d| d.fail_fast);
        if !fail_fast {
            continue;
        }
        let reason = fail_fast_reason(&failure.job.job_name);
        for sibling in jobs.iter().filter(|j| is_child_of(j, base)) {
            if sibling.job.status.is_terminal() || sibling.job.status == JobStatus::Cancelling {
                continue;
            }
            tracing::info!(runId = %sibling.job.run_id, jobId = %sibling.job.job_id, failed = %failure.job.job_name, "matrix job cancelled: failFast");
            crate::progress::cancel_job(state, &sibling.job, &reason, false, now).await?;
            changed = true;
        }
    }
    Ok(changed)
}
