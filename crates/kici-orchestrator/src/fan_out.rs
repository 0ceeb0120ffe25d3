//! The jobs of one matrix as a group. `maxParallel` lets at most that many of them be past
//! `pending` and unfinished at once: the others stay pending, and the run moves forward again
//! each time one finishes. `failFast` cancels the unfinished ones when one of them fails.
//! Both read the run's rows, so they hold across orchestrator restarts.

use kici_engine::lockfile::{LockWorkflow, StaticJob};
use kici_engine::protocol::JobKind;
use kici_engine::status::JobStatus;
use kici_store::JobRecord;

use crate::gates;
use crate::jobs::JobFacts;

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

/// The unfinished siblings of every failed matrix job whose definition says `failFast`, each
/// with the reason it is cancelled (the caller cancels them).
pub fn siblings_to_cancel<'a>(workflow: &LockWorkflow, jobs: &'a [JobRecord]) -> Vec<(&'a JobRecord, String)> {
    let mut cancels = Vec::new();
    let mut bases: Vec<&str> = Vec::new();
    let failed = jobs.iter().filter(|j| {
        j.kind == JobKind::Execute
            && j.matrix.is_some()
            && matches!(j.job.status, JobStatus::Failed | JobStatus::TimedOutStale)
    });
    for failure in failed {
        let base = failure.job.base_job_name.as_str();
        if bases.contains(&base) {
            continue;
        }
        bases.push(base);
        if !gates::definition(workflow, &JobFacts::from(failure)).is_some_and(|d| d.fail_fast) {
            continue;
        }
        let unfinished = jobs
            .iter()
            .filter(|j| is_child_of(j, base))
            .filter(|j| !j.job.status.is_terminal() && j.job.status != JobStatus::Cancelling);
        for sibling in unfinished {
            cancels.push((sibling, fail_fast_reason(&failure.job.job_name)));
        }
    }
    cancels
}
