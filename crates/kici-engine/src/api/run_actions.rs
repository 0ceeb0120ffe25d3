//! The shapes of what is done to a run (`POST /api/v1/runs/:runId/{cancel,rerun}`, also under
//! `/admin` and as the Platform's `run.cancel.request` and `run.rerun.request`).

use crate::ids::RunId;
use serde::{Deserialize, Serialize};

use crate::status::RunStatus;

/// `POST …/cancel`'s optional body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRequest {
    /// Kill the jobs' processes at once and skip their hooks.
    #[serde(default)]
    pub force: bool,
}

/// The answer to a cancel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancelled {
    pub run_id: RunId,
    pub status: CancelStatus,
    /// Jobs told to stop plus jobs cancelled at once.
    pub cancelled_jobs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CancelStatus {
    /// Running jobs were told to stop; the run completes when they report back.
    Cancelling,
    /// Nothing was running: every job is cancelled already.
    Cancelled,
}

/// Why a finished run cannot be cancelled (409 `run_terminal`), from the orchestrator or the
/// Platform.
pub fn nothing_to_cancel(run_id: &str, status: RunStatus) -> String {
    format!("run {run_id} already finished ({status}); there is nothing to cancel")
}

/// `POST /api/v1/runs/cancel-by-branch`: every run of `branch` still going.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelBranchRequest {
    pub branch: String,
    #[serde(default)]
    pub force: bool,
}

/// The answer to a branch cancel: what became of each run (none when nothing was going).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchCancelled {
    pub branch: String,
    pub runs: Vec<Cancelled>,
}

/// `POST …/rerun`'s optional body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RerunRequest {
    /// Run again only the jobs that did not succeed and the jobs that need them; the others
    /// keep their success and outputs.
    #[serde(default)]
    pub failed_only: bool,
}

/// Why a "re-run failed jobs" of a run without a failed job is refused (409
/// `nothing_failed`).
pub fn nothing_failed(run_id: &str) -> String {
    format!("no job of run {run_id} failed; there is nothing to re-run on its own (re-run the whole run instead)")
}

/// The answer to a re-run: the run started again is `new_run_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rerun {
    pub run_id: RunId,
    pub new_run_id: RunId,
    /// Only the failed jobs (and those needing them) run again; an orchestrator that predates
    /// it leaves it out, having run every job.
    #[serde(default)]
    pub failed_only: bool,
}
