//! Why runs and jobs fail before or outside their steps: the init-failure categories with their
//! banner titles, and the exact failure texts operators grep for (`spec/execution.md` §1.6–1.7).

use serde::{Deserialize, Serialize};

/// The run `failureReason` when jobs expired in the queue and nothing more specific is known.
pub const NO_AGENTS_AVAILABLE: &str = "No agents available to dispatch jobs";
/// Job `errorMessage` of a queue expiry without a captured provisioning error.
pub const QUEUE_TIMEOUT_EXPIRED: &str = "Queue timeout expired (job was never dispatched to an agent)";
/// Job `errorMessage` when a static agent vanished mid-job and did not come back in time.
pub const AGENT_DID_NOT_RECONNECT: &str =
    "Job failed: agent disconnected and did not reconnect within the recovery window";
/// Why an agent that comes back naming a job it no longer holds is told to stop it (the job
/// was settled or given to another agent while it was away).
pub const JOB_NO_LONGER_YOURS: &str = "the job was settled or given to another agent while this agent was away";
/// Job `errorMessage` when the orchestrator restarted while the job was recovering.
pub const ORCHESTRATOR_RESTARTED_DURING_RECOVERY: &str =
    "Job failed: orchestrator restarted during recovery (recovery state lost)";
/// Run `failureReason` written by stale detection when nothing more specific is known.
pub const STALE_RUN_REASON: &str = "Run completed via stale detection (no heartbeat received)";
/// Warned when neither a scaler nor a registered agent could ever serve a queued job (spec §2.1).
pub const QUEUED_NO_BACKEND_MESSAGE: &str = "Job has no matching backend (queued-no-backend)";

/// Job `errorMessage` when an agent came back after a restart without the job it ran.
pub fn agent_restarted_without_job(agent_id: &str) -> String {
    format!("Job failed: agent {agent_id} reconnected without the job (it restarted)")
}

/// Logged when no scaler's label sets fit a job's `runsOn` / `excludeLabels`.
pub const NO_BACKEND_MESSAGE: &str = "No scaler backend matches requested labels";

/// The dashboard's answer to a log read while the run's orchestrator is offline (exact text:
/// `spec/dashboard.md` §3.6).
pub const LOGS_OFFLINE: &str = "Log content is served by the orchestrator, which is currently offline";
/// The dashboard's answer to an action (cancel, re-run) while the orchestrator is offline.
pub const ACTION_OFFLINE: &str = "The orchestrator is offline; try again when it is connected";
/// The dashboard's fleet and diagnostics pages for an orchestrator that is not connected.
pub const FLEET_OFFLINE: &str = "This is served by the orchestrator, which is currently offline";

/// The dashboard's 403 for a member without `permission` (`runs.write`, `users.admin`).
pub fn insufficient_permission(permission: &str) -> String {
    format!("Insufficient permission: {permission} needed")
}

/// Job `errorMessage` when the dispatch queue has no room (`KICI_QUEUE_MAX_DEPTH`).
pub fn queue_full(max_depth: usize) -> String {
    format!(
        "Dispatch queue full: {max_depth} jobs are already waiting for an agent (KICI_QUEUE_MAX_DEPTH={max_depth}); add agents or raise the limit"
    )
}

/// Run `failureReason` and job `errorMessage` of a cancel someone asked for.
pub fn cancelled_by(actor: &str) -> String {
    format!("Cancelled by {actor}")
}

/// Run `failureReason` of a run a newer run of its concurrency group cancelled
/// (`cancelInProgress`), and the answer a superseded job gets.
pub fn superseded_in_group(group: &str) -> String {
    format!("Superseded by run in concurrency group '{group}'")
}

/// The longest concurrency group key the orchestrator keeps (it is stored and logged).
pub const MAX_CONCURRENCY_GROUP_CHARS: usize = 200;

/// Why a concurrency group key was refused: it is too long.
pub fn concurrency_group_too_long(chars: usize) -> String {
    format!(
        "the concurrency group key is {chars} characters; at most {MAX_CONCURRENCY_GROUP_CHARS} are allowed (return a shorter key)"
    )
}

/// What a job whose run waits for its turn in a concurrency group logs.
pub fn queued_in_group(group: &str) -> String {
    format!("Queued in concurrency group '{group}'")
}

/// Run `failureReason` and job `errorMessage` when a run outlives its workflow `timeout`: the
/// run is cancelled (its jobs' `onCancel` and `cleanup` hooks run).
pub fn workflow_timeout(timeout_ms: i64) -> String {
    format!("workflow_timeout: workflow exceeded its timeout of {timeout_ms}ms")
}

/// `Job failed: re-dispatch attempts exhausted after <n> attempts (<context>)`.
pub fn attempts_exhausted(attempts: u32, context: &str) -> String {
    format!("Job failed: re-dispatch attempts exhausted after {attempts} attempts ({context})")
}

/// `Matrix expansion failed for job '<job>': <message>`.
pub fn matrix_expansion_failed(job: &str, message: &str) -> String {
    format!("Matrix expansion failed for job '{job}': {message}")
}

/// Build jobs are named `__build__<workflow>`.
pub const BUILD_JOB_PREFIX: &str = "__build__";

/// The name of a workflow's build job: `__build__<workflow>`.
pub fn build_job_name(workflow: &str) -> String {
    format!("{BUILD_JOB_PREFIX}{workflow}")
}

/// `Build failed: <err>`: a `build_coordination` failure of the run.
pub fn build_failed(error: &str) -> String {
    format!("Build failed: {error}")
}

/// `Dynamic job evaluation failed for '<generator>': <message>`.
pub fn dynamic_eval_failed(generator: &str, message: &str) -> String {
    format!("Dynamic job evaluation failed for '{generator}': {message}")
}

/// `Step '<name>' failed (exit code <n>)`: a job's `errorMessage` naming the step and its code.
pub fn step_failed(step: &str, exit_code: Option<i32>) -> String {
    match exit_code {
        Some(code) => format!("Step '{step}' failed (exit code {code})"),
        None => format!("Step '{step}' failed"),
    }
}

/// The nine categories of failures that happen before any step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitFailureCategory {
    SecretResolution,
    InstallSecrets,
    LockResolution,
    BuildCoordination,
    EnvironmentRules,
    DynamicEval,
    NoAgent,
    MatrixExpansion,
    /// The agent could not get the job's source (clone or fetch of its commit).
    Checkout,
}

impl InitFailureCategory {
    /// The dashboard banner title (from the troubleshooting page).
    pub fn title(self) -> &'static str {
        match self {
            InitFailureCategory::SecretResolution => "Secret context resolution failed",
            InitFailureCategory::InstallSecrets => "Install-secrets resolution rejected",
            InitFailureCategory::LockResolution => "Lock-file / dependency resolution failed",
            InitFailureCategory::BuildCoordination => "Build coordination failed",
            InitFailureCategory::EnvironmentRules => "Rejected by environment protection rules",
            InitFailureCategory::DynamicEval => "Dynamic / deferred-init evaluation failed",
            InitFailureCategory::NoAgent => "No agent available to run this job",
            InitFailureCategory::MatrixExpansion => "Matrix expansion failed",
            InitFailureCategory::Checkout => "Source checkout failed",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InitFailureCategory::SecretResolution => "secret_resolution",
            InitFailureCategory::InstallSecrets => "install_secrets",
            InitFailureCategory::LockResolution => "lock_resolution",
            InitFailureCategory::BuildCoordination => "build_coordination",
            InitFailureCategory::EnvironmentRules => "environment_rules",
            InitFailureCategory::DynamicEval => "dynamic_eval",
            InitFailureCategory::NoAgent => "no_agent",
            InitFailureCategory::MatrixExpansion => "matrix_expansion",
            InitFailureCategory::Checkout => "checkout",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitFailureScope {
    Run,
    Job,
}

/// A failure before any step ran, stored on the run or job it stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitFailure {
    pub scope: InitFailureScope,
    pub category: InitFailureCategory,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_serialize_with_their_wire_names() {
        let failure = InitFailure {
            scope: InitFailureScope::Run,
            category: InitFailureCategory::LockResolution,
            message: "m".into(),
            job_name: None,
        };
        assert_eq!(
            serde_json::to_string(&failure).unwrap(),
            r#"{"scope":"run","category":"lock_resolution","message":"m"}"#
        );
        assert_eq!(InitFailureCategory::MatrixExpansion.title(), "Matrix expansion failed");
        assert_eq!(
            matrix_expansion_failed("test", "boom"),
            "Matrix expansion failed for job 'test': boom"
        );
        assert_eq!(step_failed("compile", Some(3)), "Step 'compile' failed (exit code 3)");
    }
}
