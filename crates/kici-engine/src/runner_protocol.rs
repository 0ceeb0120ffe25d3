//! Messages between a host (the `kici` CLI, the agent) and the Node runner, one JSON object per
//! line on the runner's fd 3. The contract is written down in `sdk/PROTOCOL.md`; the runner's
//! side lives in `sdk/engine/`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::EventEnvelope;
use crate::lockfile::SourceLocation;
use crate::protocol::{Redacted, SecretValue};
use crate::status::StepStatus;

/// Step index of the job's prepare log (module import, rules, matrix evaluation).
pub const PREPARE_STEP_INDEX: i64 = -1;

/// Host to runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum HostMessage {
    #[serde(rename = "describe")]
    Describe { root: String, files: Vec<ModuleRef> },
    #[serde(rename = "evaluate")]
    Evaluate(Box<EvaluateRequest>),
    #[serde(rename = "execute")]
    Execute(Box<ExecuteRequest>),
    #[serde(rename = "abort")]
    Abort { force: bool },
    #[serde(rename = "cache.response")]
    CacheResponse(CacheResponse),
    /// The answer to an [`EmitRequest`]: `error` when the event was refused.
    #[serde(rename = "event.emit.response", rename_all = "camelCase")]
    EmitResponse {
        request_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The orchestrator's answer to the job's `concurrency.report`.
    #[serde(rename = "concurrency.ack")]
    ConcurrencyAck(ConcurrencyAck),
}

/// What a job whose workflow has a concurrency group does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConcurrencyAction {
    Proceed,
    /// Wait for a later ack (the reason goes to the prepare log).
    Wait,
    /// Stop: the job ends `cancelled` with the reason as its error.
    Cancel,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConcurrencyAck {
    pub action: ConcurrencyAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A transpiled module and the repository-relative source file it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleRef {
    pub module: String,
    pub file: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluateRequest {
    pub kind: EvaluateKind,
    pub module: String,
    pub file: String,
    pub workflow: String,
    pub job: String,
    pub work_dir: String,
    pub root: String,
    pub env: Map<String, Value>,
    pub event: EventEnvelope,
    /// `jobs`: the generator's position in the workflow's jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// `jobs`: upstream results by job name.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub needs: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvaluateKind {
    Matrix,
    /// Run a dynamic job generator.
    Jobs,
    /// Evaluate a job's `environment`/`env` functions (impure ones, for an init job).
    Init,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteRequest {
    pub module: String,
    pub file: String,
    pub root: String,
    pub workflow: String,
    /// Base job name (matrix children share it).
    pub job: String,
    /// Display name, e.g. `test (linux, 20)`.
    pub job_name: String,
    pub matrix: Option<Map<String, Value>>,
    pub work_dir: String,
    pub env: Map<String, Value>,
    pub event: EventEnvelope,
    pub needs: Map<String, Value>,
    pub default_step_timeout_ms: u64,
    pub job_timeout_ms: Option<u64>,
    /// The job comes from the generator at this index of the workflow's jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic: Option<DynamicRef>,
    /// The job env the orchestrator resolved; the runner uses the module's `env` without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_env: Option<Map<String, Value>>,
    /// The resolved environment names; the runner resolves the module's without them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<String>>,
    /// Secrets for `ctx.secrets`, never put in the environment by the runner.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretValue>,
    /// On a cancel or the job deadline, how long running commands get between SIGTERM and
    /// SIGKILL (the runner's default: 30 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_ms: Option<u64>,
    /// How long the job may wait for its turn in a concurrency group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_wait_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicRef {
    pub index: u32,
}

/// Runner to host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RunnerMessage {
    #[serde(rename = "ready")]
    Ready,
    #[serde(rename = "describe.result")]
    DescribeResult { files: Vec<DescribedFile> },
    #[serde(rename = "evaluate.result")]
    EvaluateResult {
        #[serde(default)]
        value: Option<Value>,
        #[serde(default)]
        error: Option<RunnerError>,
    },
    #[serde(rename = "step.start")]
    StepStart(StepStart),
    #[serde(rename = "log.line")]
    LogLine(LogLine),
    #[serde(rename = "step.complete")]
    StepComplete(StepComplete),
    #[serde(rename = "job.complete")]
    JobComplete(JobComplete),
    #[serde(rename = "cache.request")]
    CacheRequest(CacheRequest),
    /// A step's `ctx.emit`; the host answers with `event.emit.response` once the event is on
    /// its way to the orchestrator.
    #[serde(rename = "event.emit")]
    EmitRequest(EmitRequest),
    /// The key the workflow's concurrency group function returned; the runner waits for a
    /// [`ConcurrencyAck`].
    #[serde(rename = "concurrency.report")]
    ConcurrencyReport { group: String },
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmitRequest {
    pub request_id: String,
    pub name: String,
    pub payload: serde_json::Value,
}

/// The runner asks its host to restore or save a cache (`cache` options, `ctx.cache`); the
/// host moves the files and answers with a [`CacheResponse`] of the same `requestId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheRequest {
    pub request_id: String,
    pub op: CacheOp,
    pub key: String,
    pub paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restore_keys: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheOp {
    Restore,
    Save,
}

/// What became of a [`CacheRequest`]: `hit`/`matchedKey`/`sizeBytes` for a restore,
/// `saved`/`sizeBytes`/`reason` for a save, or `error`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheResponse {
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hit: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CacheResponse {
    pub fn error(request_id: &str, error: String) -> CacheResponse {
        CacheResponse {
            request_id: request_id.to_string(),
            error: Some(error),
            ..CacheResponse::default()
        }
    }

    pub fn restored(request_id: &str, matched: Option<(String, u64)>) -> CacheResponse {
        CacheResponse {
            request_id: request_id.to_string(),
            hit: Some(matched.is_some()),
            size_bytes: matched.as_ref().map(|(_, size)| *size),
            matched_key: matched.map(|(key, _)| key),
            ..CacheResponse::default()
        }
    }

    /// A save: its size when stored, else why not (`exists`, `empty`).
    pub fn saved(request_id: &str, outcome: Result<u64, String>) -> CacheResponse {
        CacheResponse {
            request_id: request_id.to_string(),
            saved: Some(outcome.is_ok()),
            size_bytes: outcome.as_ref().ok().copied(),
            reason: outcome.err(),
            ..CacheResponse::default()
        }
    }
}

/// One file of a `describe` answer; `workflows` stays raw JSON so the compiler can report a
/// malformed description per workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DescribedFile {
    pub file: String,
    #[serde(default)]
    pub workflows: Option<Vec<Value>>,
    #[serde(default)]
    pub error: Option<RunnerError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerError {
    pub message: String,
    #[serde(default)]
    pub location: Option<SourceLocation>,
    #[serde(default)]
    pub suggestion: Option<String>,
    /// The compiler's error code when the SDK knows it (`E109`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default)]
    pub stack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepStart {
    pub step_index: i64,
    pub step_name: String,
    #[serde(default = "default_step_type")]
    pub step_type: String,
    #[serde(default = "default_state")]
    pub state: StepStatus,
    #[serde(default)]
    pub concurrency_kind: Option<String>,
    #[serde(default)]
    pub group_id: Option<String>,
    #[serde(default)]
    pub group_name: Option<String>,
}

fn default_step_type() -> String {
    "step".to_string()
}

fn default_state() -> StepStatus {
    StepStatus::Running
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    pub step_index: i64,
    #[serde(default)]
    pub stream: LogStream,
    pub line: String,
    #[serde(default)]
    pub level: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    #[default]
    Stdout,
    Stderr,
    Log,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepComplete {
    pub step_index: i64,
    #[serde(default)]
    pub step_name: Option<String>,
    pub status: StepStatus,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    #[serde(default)]
    pub attempts: Option<u32>,
    #[serde(default)]
    pub error: Option<StepError>,
    /// Names of the secrets the step read.
    #[serde(default)]
    pub secrets_accessed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepError {
    pub message: String,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub signal: Option<String>,
}

/// The runner's verdict on the job. Its status uses the job vocabulary restricted to what a
/// runner can decide: success, failed, skipped, cancelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobComplete {
    pub status: crate::status::JobStatus,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    #[serde(default)]
    pub error: Option<String>,
    /// `ctx.setSecretOutput` values, for the jobs that need this one.
    #[serde(default)]
    pub secret_outputs: BTreeMap<String, Redacted>,
    /// What the job's steps returned: a `run` job's value, else `{<step>: value}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Value>,
    /// Why a `skipped` job was skipped (a workflow or job rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<Skipped>,
}

/// The rule that skipped a job: `{scope: 'workflow' | 'job', reason}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub scope: String,
    pub reason: String,
}
