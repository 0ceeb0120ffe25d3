//! The orchestrator ⇄ Platform protocol (`kici-platform`, the dashboard): one JSON object per
//! WebSocket text frame on the Platform's `/ws/orchestrator`, tagged by `type`. Names follow
//! the reference (`spec/dashboard.md` §3.2–3.3) where it has them.
//!
//! The orchestrator connects out, authenticates with its orchestrator key (`kici_ok_…`,
//! `KICI_PLATFORM_TOKEN`), registers, and then pushes run metadata: a whole-run snapshot
//! ([`OrchestratorFrame::ExecutionStatus`]) whenever anything of the run changed (the Platform
//! upserts it, so a snapshot sent twice or late is harmless), timeline events, and live log
//! lines. On every (re)connect it replays the snapshots and timeline events of active runs and
//! of runs finished in the last 24 hours. Content — stored step logs, provisioning logs — stays on the
//! orchestrator; the Platform asks for it with a [`PlatformRequest`] and the orchestrator
//! answers with an [`OrchestratorFrame::Response`] carrying the same `requestId`.

use crate::ids::{JobId, RunId};
use serde::{Deserialize, Serialize};

use crate::api::secrets::HoldStatus;
use crate::api::{Job, LogLine, ProvisioningLine, Run, RunEvent};

/// This build speaks Platform protocol version 1.
pub const PLATFORM_PROTOCOL_VERSION: u32 = 1;

/// A `run.rerun.request` with `failedOnly` (an orchestrator that does not list it would run
/// every job again).
pub const RERUN_FAILED_ONLY: &str = "run.rerun.failed-only";

/// Request types this orchestrator answers.
pub const SUPPORTED_REQUESTS: [&str; 13] = [
    "dashboard.step.logs",
    "dashboard.orch.logs",
    "run.cancel.request",
    "run.rerun.request",
    RERUN_FAILED_ONLY,
    "dashboard.fleet",
    "dashboard.diagnostics",
    "dashboard.held-runs",
    "dashboard.held-runs.approve",
    "dashboard.held-runs.reject",
    "dashboard.workflows",
    "run.dispatch.request",
    "run.manual_schedule.request",
];

/// Orchestrator to Platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum OrchestratorFrame {
    #[serde(rename = "auth.request", rename_all = "camelCase")]
    AuthRequest {
        token: String,
        protocol_version: u32,
        supported_dashboard_requests: Vec<String>,
    },
    /// After `auth.success`: who this orchestrator is.
    #[serde(rename = "source.register", rename_all = "camelCase")]
    Register {
        instance_id: String,
        version: String,
        /// The orchestrator's own API, for operators (not used for traffic).
        url: String,
    },
    /// Everything the dashboard caches about one run: the run row and its jobs with steps.
    #[serde(rename = "execution.status")]
    ExecutionStatus(Box<RunSnapshot>),
    #[serde(rename = "run.event")]
    RunEvent(Box<RunEvent>),
    /// Live step output as the orchestrator stores it.
    #[serde(rename = "log.chunk", rename_all = "camelCase")]
    LogChunk {
        run_id: RunId,
        job_id: JobId,
        step_index: i64,
        lines: Vec<LogLine>,
    },
    #[serde(rename = "heartbeat")]
    Heartbeat { timestamp: i64 },
    /// The answer to a [`PlatformRequest`].
    #[serde(rename = "response", rename_all = "camelCase")]
    Response {
        request_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ResponseError>,
    },
}

/// A run with its jobs (steps included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSnapshot {
    pub run: Run,
    pub jobs: Vec<Job>,
}

/// Why a request failed: `code` is machine-readable (`not_found`, `conflict`, `invalid_payload`,
/// `unsupported_request_type`, `internal`), `message` is for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseError {
    pub code: String,
    pub message: String,
}

/// Platform to orchestrator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum PlatformFrame {
    #[serde(rename = "auth.success", rename_all = "camelCase")]
    AuthSuccess { connection_id: String },
    #[serde(rename = "auth.failure")]
    AuthFailure { reason: String },
    #[serde(rename = "heartbeat")]
    Heartbeat { timestamp: i64 },
    #[serde(rename = "request", rename_all = "camelCase")]
    Request {
        request_id: String,
        /// Who asked (a dashboard user's name), for `cancelled_by` and logs.
        actor: String,
        #[serde(flatten)]
        request: PlatformRequest,
    },
}

/// What the Platform asks an orchestrator for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "request")]
pub enum PlatformRequest {
    /// → `{lines: [LogLine], totalLines}`.
    #[serde(rename = "dashboard.step.logs", rename_all = "camelCase")]
    StepLogs {
        run_id: RunId,
        job_id: JobId,
        step_index: i64,
    },
    /// → `{lines: [ProvisioningLine], totalLines}`.
    #[serde(rename = "dashboard.orch.logs", rename_all = "camelCase")]
    OrchLogs { run_id: RunId, job_id: JobId },
    /// → `{runId, status, cancelledJobs}` (the orchestrator's cancel answer).
    #[serde(rename = "run.cancel.request", rename_all = "camelCase")]
    Cancel { run_id: RunId, force: bool },
    /// → `{runId, newRunId}`: the same workflow, event and commit run again (with
    /// `failedOnly`, only the jobs that did not succeed and those that need them).
    #[serde(rename = "run.rerun.request", rename_all = "camelCase")]
    Rerun {
        run_id: RunId,
        #[serde(default)]
        failed_only: bool,
    },
    /// → `{agents: [..], scalers: {globalMaxAgents, alive, scalers: [..]}}`: the agents the
    /// orchestrator knows and its auto-scalers, as `GET /api/v1/admin/agents` and
    /// `kici-admin diagnose` show them.
    #[serde(rename = "dashboard.fleet")]
    Fleet,
    /// → `{status, checks: [{name, status, message, details?, durationMs}]}`: the
    /// orchestrator's diagnose checks.
    #[serde(rename = "dashboard.diagnostics")]
    Diagnostics,
    /// → `HeldJobList`: the approval queue, newest first (every status when `status` is
    /// absent), as `GET /api/v1/holds` answers it.
    #[serde(rename = "dashboard.held-runs", rename_all = "camelCase")]
    HeldRuns {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<HoldStatus>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<RunId>,
    },
    /// → `HoldsDecided`: the request's `actor` approves the run's pending holds (only `job`'s,
    /// by id or name, when given). Refused with `no_pending_hold` or `not_a_reviewer`.
    #[serde(rename = "dashboard.held-runs.approve", rename_all = "camelCase")]
    ApproveHeld {
        run_id: RunId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job: Option<String>,
    },
    /// → `HoldsDecided`: the request's `actor` rejects them; their jobs fail
    /// (`environment_rules`) with `reason` in the message.
    #[serde(rename = "dashboard.held-runs.reject", rename_all = "camelCase")]
    RejectHeld {
        run_id: RunId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// → `WorkflowList`: the workflows of each repository's default branch, with their
    /// triggers, dispatch inputs and schedules.
    #[serde(rename = "dashboard.workflows")]
    Workflows,
    /// → `Dispatched`: the request's `actor` starts `workflow` through its `dispatch()`
    /// trigger with `inputs` (refused with `invalid_inputs`, `not_triggered`, …).
    #[serde(rename = "run.dispatch.request", rename_all = "camelCase")]
    Dispatch {
        source: String,
        repo: String,
        workflow: String,
        /// The dispatch type, for a `dispatch({ types })` trigger.
        #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
        dispatch_type: Option<String>,
        #[serde(default)]
        inputs: serde_json::Map<String, serde_json::Value>,
    },
    /// → `Dispatched`: a schedule's workflow now.
    #[serde(rename = "run.manual_schedule.request", rename_all = "camelCase")]
    RunSchedule { schedule_id: String },
}

/// `dashboard.step.logs` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepLogsData {
    pub lines: Vec<LogLine>,
    pub total_lines: usize,
}

/// `dashboard.orch.logs` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrchLogsData {
    pub lines: Vec<ProvisioningLine>,
    pub total_lines: usize,
}

/// Close codes of `/ws/orchestrator`.
pub mod close_code {
    /// Bad or revoked orchestrator key; do not retry with it.
    pub const UNAUTHORIZED: u16 = 4001;
    /// No `auth.request` in time.
    pub const AUTH_TIMEOUT: u16 = 4002;
    /// A frame that is not a valid message.
    pub const INVALID_MESSAGE: u16 = 4003;
    /// Silent for too long.
    pub const HEARTBEAT_TIMEOUT: u16 = 4004;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_use_the_documented_type_tags() {
        let request = PlatformFrame::Request {
            request_id: "r1".into(),
            actor: "alice".into(),
            request: PlatformRequest::StepLogs {
                run_id: "run".into(),
                job_id: "job".into(),
                step_index: 0,
            },
        };
        let text = serde_json::to_string(&request).unwrap();
        assert_eq!(
            text,
            r#"{"type":"request","requestId":"r1","actor":"alice","request":"dashboard.step.logs","runId":"run","jobId":"job","stepIndex":0}"#
        );
        assert_eq!(serde_json::from_str::<PlatformFrame>(&text).unwrap(), request);
        let fleet = PlatformFrame::Request {
            request_id: "r2".into(),
            actor: "admin".into(),
            request: PlatformRequest::Fleet,
        };
        let text = serde_json::to_string(&fleet).unwrap();
        assert_eq!(
            text,
            r#"{"type":"request","requestId":"r2","actor":"admin","request":"dashboard.fleet"}"#
        );
        assert_eq!(serde_json::from_str::<PlatformFrame>(&text).unwrap(), fleet);
        let chunk = OrchestratorFrame::LogChunk {
            run_id: "run".into(),
            job_id: "job".into(),
            step_index: 1,
            lines: vec![LogLine {
                ts: 5,
                line: "hello".into(),
            }],
        };
        let text = serde_json::to_string(&chunk).unwrap();
        assert_eq!(
            text,
            r#"{"type":"log.chunk","runId":"run","jobId":"job","stepIndex":1,"lines":[{"ts":5,"line":"hello"}]}"#
        );
        let response = OrchestratorFrame::Response {
            request_id: "r1".into(),
            data: None,
            error: Some(ResponseError {
                code: "not_found".into(),
                message: "run x not found".into(),
            }),
        };
        assert_eq!(
            serde_json::to_string(&response).unwrap(),
            r#"{"type":"response","requestId":"r1","error":{"code":"not_found","message":"run x not found"}}"#
        );
    }

    #[test]
    fn held_run_requests_use_the_documented_tags() {
        let check = |request: PlatformRequest, expected: &str| {
            let frame = PlatformFrame::Request {
                request_id: "r".into(),
                actor: "alice".into(),
                request,
            };
            let text = serde_json::to_string(&frame).unwrap();
            assert_eq!(text, expected);
            assert_eq!(serde_json::from_str::<PlatformFrame>(&text).unwrap(), frame);
        };
        check(
            PlatformRequest::HeldRuns {
                status: None,
                run_id: None,
            },
            r#"{"type":"request","requestId":"r","actor":"alice","request":"dashboard.held-runs"}"#,
        );
        check(
            PlatformRequest::HeldRuns {
                status: Some(HoldStatus::Pending),
                run_id: Some("run".into()),
            },
            r#"{"type":"request","requestId":"r","actor":"alice","request":"dashboard.held-runs","status":"pending","runId":"run"}"#,
        );
        check(
            PlatformRequest::ApproveHeld {
                run_id: "run".into(),
                job: Some("deploy".into()),
            },
            r#"{"type":"request","requestId":"r","actor":"alice","request":"dashboard.held-runs.approve","runId":"run","job":"deploy"}"#,
        );
        check(
            PlatformRequest::RejectHeld {
                run_id: "run".into(),
                job: None,
                reason: Some("freeze week".into()),
            },
            r#"{"type":"request","requestId":"r","actor":"alice","request":"dashboard.held-runs.reject","runId":"run","reason":"freeze week"}"#,
        );
    }
}
