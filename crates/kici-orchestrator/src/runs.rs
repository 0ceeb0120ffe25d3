//! What is done to a run on request: cancel it for someone, or start it again. The REST API
//! (`http::runs`) and the Platform link (`platform`) are two adapters over these; each error
//! says its API code ([`RunActionError::code`]) and its message, which both pass on as they are.
//!
//! Not here: how a cancel reaches jobs and agents (`progress::cancel_run`) and how a run is
//! created again (`pipeline::rerun`).

use kici_engine::api::run_actions::{BranchCancelled, CancelStatus, Cancelled, Rerun, nothing_to_cancel};
use kici_engine::ids::RunId;
use kici_engine::status::RunStatus;
use kici_store::StoreError;

use crate::pipeline::RerunError;
use crate::state::Shared;

/// Why a cancel or re-run was refused or failed. The message is what the caller sees.
#[derive(Debug, thiserror::Error)]
pub enum RunActionError {
    /// No such run.
    #[error("{0}")]
    NotFound(String),
    /// A cancel of a finished run.
    #[error("{}", nothing_to_cancel(run_id, *status))]
    Finished { run_id: String, status: RunStatus },
    /// A re-run of a run still going.
    #[error("{0}")]
    NotFinished(String),
    /// A re-run of a run whose lock file could not be read or whose source is gone.
    #[error("{0}")]
    NotRerunnable(String),
    /// A re-run of the failed jobs of a run whose every job succeeded.
    #[error("{0}")]
    NothingFailed(String),
    /// The request makes no sense (an empty branch).
    #[error("{0}")]
    Invalid(String),
    /// Logged where it happened; the message says only what a caller may know.
    #[error("{0}")]
    Internal(String),
}

impl RunActionError {
    /// The API's `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            RunActionError::NotFound(_) => "not_found",
            RunActionError::Finished { .. } => "run_terminal",
            RunActionError::NotFinished(_) => "run_not_finished",
            RunActionError::NotRerunnable(_) => "not_rerunnable",
            RunActionError::NothingFailed(_) => "nothing_failed",
            RunActionError::Invalid(_) => "invalid_request",
            RunActionError::Internal(_) => "internal",
        }
    }

    fn store(err: StoreError) -> RunActionError {
        tracing::error!(error = %err, source = ?std::error::Error::source(&err), "store error");
        RunActionError::Internal("internal error (details are in the orchestrator log)".into())
    }
}

/// Cancels a run for `actor` (a token label, or a dashboard user), whose name becomes the run's
/// `failureReason` (`Cancelled by <actor>`) when it has none. Running jobs are told to stop
/// (`force` skips their hooks); waiting ones are cancelled at once.
pub async fn cancel(state: &Shared, run_id: &RunId, actor: &str, force: bool) -> Result<Cancelled, RunActionError> {
    let run = state
        .store
        .get_run(run_id)
        .await
        .map_err(RunActionError::store)?
        .ok_or_else(|| RunActionError::NotFound(format!("run {run_id} not found")))?;
    if run.status.is_terminal() {
        return Err(RunActionError::Finished {
            run_id: run_id.to_string(),
            status: run.status,
        });
    }
    let reason = kici_engine::failure::cancelled_by(actor);
    let outcome = crate::progress::cancel_run(state, run_id, &reason, force)
        .await
        .map_err(RunActionError::store)?;
    let status = if outcome.notified > 0 {
        CancelStatus::Cancelling
    } else {
        CancelStatus::Cancelled
    };
    Ok(Cancelled {
        run_id: run_id.clone(),
        status,
        cancelled_jobs: (outcome.cancelled + outcome.notified) as u64,
    })
}

/// Cancels every run of `branch` that is still going, oldest first, for `actor`. A run that
/// finishes meanwhile is left out.
pub async fn cancel_branch(
    state: &Shared,
    branch: &str,
    actor: &str,
    force: bool,
) -> Result<BranchCancelled, RunActionError> {
    let branch = branch.trim();
    if branch.is_empty() {
        return Err(RunActionError::Invalid(
            "branch is empty (hint: `kici runs cancel --branch main`)".to_string(),
        ));
    }
    let full_ref = format!("refs/heads/{branch}");
    let filter = kici_store::RunFilter {
        statuses: RunStatus::ALL.into_iter().filter(|s| !s.is_terminal()).collect(),
        workflow: None,
        repo: None,
        since: None,
        limit: 10_000,
        offset: 0,
    };
    let (mut going, _) = state.store.list_runs(&filter).await.map_err(RunActionError::store)?;
    going.retain(|run| run.git_ref == full_ref || run.git_ref == branch);
    going.reverse();
    let mut runs = Vec::new();
    for run in going {
        match cancel(state, &run.run_id, actor, force).await {
            Ok(cancelled) => runs.push(cancelled),
            Err(RunActionError::Finished { .. } | RunActionError::NotFound(_)) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(BranchCancelled {
        branch: branch.to_string(),
        runs,
    })
}

/// Starts a finished run again (`pipeline::rerun`) for `by`: the same workflow, event and
/// commit; with `failed_only`, only its failed jobs and those that need them.
pub async fn rerun(state: &Shared, run_id: &RunId, by: &str, failed_only: bool) -> Result<Rerun, RunActionError> {
    match crate::pipeline::rerun(state, run_id, by, failed_only).await {
        Ok(new_run_id) => Ok(Rerun {
            run_id: run_id.clone(),
            new_run_id,
            failed_only,
        }),
        Err(err @ RerunError::NotFound(_)) => Err(RunActionError::NotFound(err.to_string())),
        Err(err @ RerunError::NotFinished { .. }) => Err(RunActionError::NotFinished(err.to_string())),
        Err(err @ (RerunError::NoWorkflow(_) | RerunError::NoSource(_))) => {
            Err(RunActionError::NotRerunnable(err.to_string()))
        }
        Err(err @ RerunError::NothingFailed(_)) => Err(RunActionError::NothingFailed(err.to_string())),
        Err(RerunError::Pipeline(err)) => {
            tracing::error!(runId = %run_id, error = %err, "re-run failed");
            Err(RunActionError::Internal(format!("cannot start the run again: {err}")))
        }
    }
}
