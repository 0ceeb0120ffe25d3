//! The REST API's data shapes (`/api/v1/...`), shared by the orchestrator that serves them and
//! the CLIs that print them. Times are epoch milliseconds; JSON field names are camelCase.
//! The runs' shapes are here; [`answers`], [`admin`], [`ops`] and [`run_actions`] hold the rest.

pub mod admin;
pub mod answers;
pub mod ops;
pub mod run_actions;
pub mod secrets;
pub mod triggers;

use crate::ids::{AgentId, JobId, RunId, SourceId};
use serde::{Deserialize, Serialize};

use crate::failure::InitFailure;
use crate::status::{JobStatus, RunStatus, StepStatus};

/// `{"error": {"code", "message"}}`, the body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    /// Each refused field of a request (dispatch inputs), when the error is about fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<crate::inputs::FieldError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub run_id: RunId,
    pub workflow_name: String,
    pub status: RunStatus,
    /// `owner/repo`, or the local source's name.
    pub repo: String,
    pub git_ref: String,
    pub sha: String,
    /// The event type that started the run (`push`, `pull_request`, ...).
    pub trigger: String,
    pub provider: String,
    pub source_id: SourceId,
    pub delivery_id: String,
    pub failure_reason: Option<String>,
    pub init_failure: Option<InitFailure>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub duration_ms: Option<i64>,
    /// A re-run (`trigger` `rerun`): the run it started again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<RunId>,
    /// The runs that started this one again, oldest first (filled where a single run is shown).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reruns: Vec<RunId>,
    /// A pull request's run: whose workflows it ran, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<crate::trust::RunTrust>,
    /// The pushed commit's title (or the pull request's), when the event names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Who caused the run (the forge user, the dispatching token, the commit's author).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunList {
    pub runs: Vec<Run>,
    pub total: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub job_id: JobId,
    pub run_id: RunId,
    /// Expanded name, e.g. `test (linux, 20)`.
    pub job_name: String,
    pub base_job_name: String,
    pub status: JobStatus,
    pub agent_id: Option<AgentId>,
    pub error_message: Option<String>,
    pub init_failure: Option<InitFailure>,
    pub needs: Vec<JobNeed>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub duration_ms: Option<i64>,
    /// Present when steps were asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<Step>>,
    /// A job a "re-run failed jobs" did not run again: where it ran and succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<ReusedFrom>,
}

impl Job {
    /// The status of the job's `prepare` log (checkout, dependencies, loading: what comes
    /// before its first step): the job's own while none of its steps has run, since then it
    /// is the preparing that failed, was cancelled or is going on; success once a step ran.
    pub fn prepare_status(&self) -> StepStatus {
        let a_step_ran = self.steps.iter().flatten().any(|step| {
            matches!(
                step.status,
                StepStatus::Running | StepStatus::Success | StepStatus::Failed
            )
        });
        if a_step_ran {
            return StepStatus::Success;
        }
        match self.status {
            JobStatus::Success => StepStatus::Success,
            JobStatus::Failed | JobStatus::TimedOutStale | JobStatus::DriftDropped => StepStatus::Failed,
            JobStatus::Cancelled | JobStatus::Cancelling => StepStatus::Cancelled,
            JobStatus::Running | JobStatus::Recovering => StepStatus::Running,
            JobStatus::Skipped => StepStatus::Skipped,
            JobStatus::Pending | JobStatus::Held | JobStatus::Waiting | JobStatus::Queued => StepStatus::Pending,
        }
    }
}

/// The run and job whose success a re-run's job reuses (the run it actually ran in, however
/// many re-runs ago).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReusedFrom {
    pub run_id: RunId,
    pub job_id: JobId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobNeed {
    pub upstream_name: String,
    pub run_on: Vec<JobStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub step_index: i64,
    pub step_name: String,
    pub step_type: String,
    pub status: StepStatus,
    pub exit_code: Option<i32>,
    pub error_message: Option<String>,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub duration_ms: Option<i64>,
    /// Names of the secrets the step read (never values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets_accessed: Vec<String>,
}

/// `GET /api/v1/runs/:runId/detail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDetail {
    pub run: Run,
    pub jobs: Vec<Job>,
}

/// One stored log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub ts: i64,
    pub line: String,
}

/// The log of one step (`GET /api/v1/runs/:runId/logs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepLog {
    pub job_id: JobId,
    pub job_name: String,
    pub step_index: i64,
    pub step_name: String,
    pub status: StepStatus,
    pub lines: Vec<LogLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunLogs {
    pub run_id: RunId,
    pub status: RunStatus,
    pub steps: Vec<StepLog>,
}

/// One milestone on a run's timeline (`GET /api/v1/runs/:runId/events`), the dashboard's
/// `run.event`. Scaler milestones carry `metadata {agentId, detail, category: "scaler"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEvent {
    pub event_id: String,
    pub run_id: RunId,
    pub job_id: Option<JobId>,
    pub event_type: RunEventType,
    /// What the Timeline tab calls it: `scaler.failed` is "Provisioning failed".
    pub title: String,
    /// `orchestrator` or `agent`.
    pub source_service: String,
    pub timestamp_ms: i64,
    #[serde(default)]
    pub metadata: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEvents {
    pub run_id: RunId,
    pub events: Vec<RunEvent>,
}

/// What a timeline milestone is. On the wire and in the store it is its name
/// (`scaler.failed`); a name this build does not know is kept as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum RunEventType {
    ScalerProvisioning,
    ScalerNetwork,
    ScalerReady,
    ScalerFailed,
    AgentConnecting,
    QueueExpired,
    /// A job is held for approvals (`metadata.scope`, `clauses`, `expiresAt`).
    HoldCreated,
    /// Someone approved a hold (`metadata.by`; `remaining` clauses when more are needed).
    HoldApproved,
    /// Someone rejected a hold (`metadata.by`, `reason`).
    HoldRejected,
    /// Nobody decided in time.
    HoldExpired,
    /// A job was sent with its dependency tarball to restore (`metadata.outcome` `hit`) or to
    /// install and save (`miss`), `metadata.key` naming the object.
    DepsCache,
    /// A job asked for a cache (`metadata.key`, `outcome` `hit`/`miss`, `matchedKey`, `bytes`).
    CacheRestore,
    /// A job saved a cache (`metadata.key`, `outcome` `saved`/`exists`, `bytes`).
    CacheSave,
    Other(String),
}

impl RunEventType {
    const KNOWN: [RunEventType; 13] = [
        RunEventType::ScalerProvisioning,
        RunEventType::ScalerNetwork,
        RunEventType::ScalerReady,
        RunEventType::ScalerFailed,
        RunEventType::AgentConnecting,
        RunEventType::QueueExpired,
        RunEventType::HoldCreated,
        RunEventType::HoldApproved,
        RunEventType::HoldRejected,
        RunEventType::HoldExpired,
        RunEventType::DepsCache,
        RunEventType::CacheRestore,
        RunEventType::CacheSave,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            RunEventType::ScalerProvisioning => "scaler.provisioning",
            RunEventType::ScalerNetwork => "scaler.network",
            RunEventType::ScalerReady => "scaler.ready",
            RunEventType::ScalerFailed => "scaler.failed",
            RunEventType::AgentConnecting => "agent.connecting",
            RunEventType::QueueExpired => "orchestrator.job.queue_expired",
            RunEventType::HoldCreated => "orchestrator.job.held",
            RunEventType::HoldApproved => "orchestrator.hold.approved",
            RunEventType::HoldRejected => "orchestrator.hold.rejected",
            RunEventType::HoldExpired => "orchestrator.hold.expired",
            RunEventType::DepsCache => "orchestrator.deps.cache",
            RunEventType::CacheRestore => "orchestrator.cache.restore",
            RunEventType::CacheSave => "orchestrator.cache.save",
            RunEventType::Other(name) => name,
        }
    }

    /// What the Timeline tab calls it; unknown types show as themselves.
    pub fn title(&self) -> &str {
        match self {
            RunEventType::ScalerProvisioning => "Provisioning",
            RunEventType::ScalerNetwork => "Provisioning network",
            RunEventType::ScalerReady => "Agent started",
            RunEventType::ScalerFailed => "Provisioning failed",
            RunEventType::AgentConnecting => "Agent connecting",
            RunEventType::QueueExpired => "Queue timeout",
            RunEventType::HoldCreated => "Waiting for approval",
            RunEventType::HoldApproved => "Approved",
            RunEventType::HoldRejected => "Rejected",
            RunEventType::HoldExpired => "Approval expired",
            RunEventType::DepsCache => "Dependency cache",
            RunEventType::CacheRestore => "Cache restore",
            RunEventType::CacheSave => "Cache save",
            RunEventType::Other(name) => name,
        }
    }

    /// Whether it belongs to starting an agent (the Timeline's provisioning band).
    pub fn is_provisioning(&self) -> bool {
        matches!(
            self,
            RunEventType::ScalerProvisioning
                | RunEventType::ScalerNetwork
                | RunEventType::ScalerReady
                | RunEventType::ScalerFailed
                | RunEventType::AgentConnecting
        ) || matches!(self, RunEventType::Other(name) if name.starts_with("scaler."))
    }

    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            RunEventType::ScalerFailed | RunEventType::HoldRejected | RunEventType::HoldExpired
        )
    }
}

impl From<String> for RunEventType {
    fn from(name: String) -> RunEventType {
        RunEventType::KNOWN
            .into_iter()
            .find(|known| known.as_str() == name)
            .unwrap_or(RunEventType::Other(name))
    }
}

impl From<RunEventType> for String {
    fn from(event_type: RunEventType) -> String {
        match event_type {
            RunEventType::Other(name) => name,
            known => known.as_str().to_string(),
        }
    }
}

impl std::fmt::Display for RunEventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of a job's `provisioning.jsonl`:
/// `{"ts", "phase": "provisioning", "eventType", "message", "agentId"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningLine {
    pub ts: i64,
    pub phase: String,
    pub event_type: String,
    pub message: String,
    pub agent_id: AgentId,
}

/// `GET /api/v1/runs/:runId/jobs/:jobId/provisioning`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningLog {
    pub run_id: RunId,
    pub job_id: JobId,
    pub lines: Vec<ProvisioningLine>,
    pub total_lines: usize,
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for an epoch-milliseconds time.
pub fn format_timestamp(epoch_ms: i64) -> String {
    let seconds = epoch_ms.div_euclid(1000);
    let millis = epoch_ms.rem_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let secs_of_day = seconds.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        secs_of_day / 3600,
        secs_of_day % 3600 / 60,
        secs_of_day % 60
    )
}

/// `1.2s`, `3m 04s`, `1h 02m`.
pub fn format_duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m {:02}s", ms / 60_000, ms % 60_000 / 1000)
    } else {
        format!("{}h {:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prepare_log_has_the_jobs_status_until_a_step_runs() {
        let job = |status: JobStatus, steps: &[StepStatus]| Job {
            job_id: "j".into(),
            run_id: "r".into(),
            job_name: "build".into(),
            base_job_name: "build".into(),
            status,
            agent_id: None,
            error_message: None,
            init_failure: None,
            needs: Vec::new(),
            created_at: 0,
            started_at: None,
            completed_at: None,
            duration_ms: None,
            steps: Some(
                steps
                    .iter()
                    .enumerate()
                    .map(|(index, status)| Step {
                        step_index: index as i64,
                        step_name: format!("s{index}"),
                        step_type: "run".into(),
                        status: *status,
                        exit_code: None,
                        error_message: None,
                        started_at: None,
                        completed_at: None,
                        duration_ms: None,
                        secrets_accessed: Vec::new(),
                    })
                    .collect(),
            ),
            reused_from: None,
        };
        // A lock file out of date, a failed checkout: no step ran.
        assert_eq!(
            job(JobStatus::Failed, &[StepStatus::Pending]).prepare_status(),
            StepStatus::Failed
        );
        assert_eq!(job(JobStatus::Failed, &[]).prepare_status(), StepStatus::Failed);
        assert_eq!(
            job(JobStatus::Cancelled, &[StepStatus::Cancelled]).prepare_status(),
            StepStatus::Cancelled
        );
        assert_eq!(
            job(JobStatus::Running, &[StepStatus::Pending]).prepare_status(),
            StepStatus::Running
        );
        // A step ran: preparing succeeded, whatever the step did.
        assert_eq!(
            job(JobStatus::Failed, &[StepStatus::Success, StepStatus::Failed]).prepare_status(),
            StepStatus::Success
        );
        assert_eq!(
            job(JobStatus::Running, &[StepStatus::Running]).prepare_status(),
            StepStatus::Success
        );
        assert_eq!(job(JobStatus::Success, &[]).prepare_status(), StepStatus::Success);
    }

    #[test]
    fn timestamps() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_timestamp(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
        assert_eq!(format_timestamp(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(1234), "1.2s");
        assert_eq!(format_duration(184_000), "3m 04s");
        assert_eq!(format_duration(3_720_000), "1h 02m");
    }
}
