//! The orchestrator ⇄ agent protocol: one JSON object per WebSocket text frame, tagged by
//! `type` (names from the reference, `spec/execution.md` §3).
//!
//! Delivery: everything an agent reports about a job (`job.ack`, `job.status`, `step.status`,
//! `log.chunk`) carries a per-job sequence number `seq` starting at 1. The orchestrator answers
//! `ack {jobId, seq}` once the message is stored; the agent keeps unacknowledged messages and
//! replays them, in order, after a reconnect. The orchestrator ignores a `seq` it has already
//! stored, so replays are idempotent and no acknowledged log line is lost.

use crate::ids::{AgentId, JobId, RunId};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::build_info::BuildInfo;
use crate::event::EventEnvelope;
use crate::install::{LockRegistry, NpmRegistry};
use crate::status::{JobStatus, StepStatus};

/// This build speaks protocol version 2: a dispatch may carry URLs relative to the orchestrator
/// (`JobDispatch::resolve_orchestrator_urls`) and a served repository, and a scaler passes
/// `KICI_SCALER_BACKEND`, none of which an agent of version 1 knows.
pub const PROTOCOL_VERSION: u32 = 2;

/// The largest message either side accepts: a dispatch carries at most a 2 MiB lock file's
/// workflow, a report at most 100 generated jobs or a batch of capped log lines.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// WebSocket close codes.
pub mod close_code {
    /// The orchestrator could not record a message (database or disk trouble); the agent
    /// reconnects and replays its outbox.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// `auth.request` or `agent.register` did not arrive in time.
    pub const AUTH_TIMEOUT: u16 = 4002;
    /// A frame that is not a valid message.
    pub const INVALID_MESSAGE: u16 = 4003;
    /// No heartbeat for too long.
    pub const HEARTBEAT_TIMEOUT: u16 = 4004;
    /// Unsupported protocol version.
    pub const PROTOCOL_ERROR: u16 = 4005;
    /// Bad token; the agent must not reconnect.
    pub const AUTH_FAILED: u16 = 4010;
    /// A dispatched job was not acknowledged in time.
    pub const DISPATCH_ACK_TIMEOUT: u16 = 4031;
}

/// Agent to orchestrator.
/// Step timeout when a step sets none (`KICI_DEFAULT_STEP_TIMEOUT_MS` on agents, `kici run`).
pub const DEFAULT_STEP_TIMEOUT_MS: u64 = 30 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum AgentMessage {
    #[serde(rename = "auth.request", rename_all = "camelCase")]
    AuthRequest { token: String, protocol_version: u32 },
    #[serde(rename = "agent.register")]
    Register(Box<Registration>),
    #[serde(rename = "heartbeat")]
    Heartbeat { timestamp: i64 },
    #[serde(rename = "job.heartbeat", rename_all = "camelCase")]
    JobHeartbeat {
        run_id: RunId,
        job_id: JobId,
        timestamp: i64,
    },
    #[serde(rename = "agent.status", rename_all = "camelCase")]
    Status {
        agent_id: AgentId,
        active_jobs: u32,
        draining: bool,
    },
    #[serde(rename = "job.ack", rename_all = "camelCase")]
    JobAck {
        run_id: RunId,
        job_id: JobId,
        seq: u64,
        timestamp: i64,
    },
    #[serde(rename = "job.reject", rename_all = "camelCase")]
    JobReject {
        run_id: RunId,
        job_id: JobId,
        reason: RejectReason,
    },
    #[serde(rename = "job.status")]
    JobStatus(Box<JobStatusUpdate>),
    #[serde(rename = "step.status")]
    StepStatus(Box<StepStatusUpdate>),
    #[serde(rename = "log.chunk")]
    LogChunk(LogChunk),
    /// A step's `ctx.emit`: a custom event for the workflows whose `kiciEvent()` trigger names
    /// it. Sequenced, so it reaches the orchestrator at least once and is stored once.
    #[serde(rename = "event.emit")]
    EventEmit(EventEmit),
    /// The key a job's workflow concurrency group function returned; the orchestrator answers
    /// with `job.concurrency.ack`.
    #[serde(rename = "job.concurrency.report", rename_all = "camelCase")]
    JobConcurrencyReport {
        run_id: RunId,
        job_id: JobId,
        group: String,
    },
}

impl AgentMessage {
    /// The job and sequence number of a message that must be acknowledged.
    pub fn sequenced(&self) -> Option<(&JobId, u64)> {
        match self {
            AgentMessage::JobAck { job_id, seq, .. } => Some((job_id, *seq)),
            AgentMessage::JobStatus(update) => Some((&update.job_id, update.seq)),
            AgentMessage::StepStatus(update) => Some((&update.job_id, update.seq)),
            AgentMessage::LogChunk(chunk) => Some((&chunk.job_id, chunk.seq)),
            AgentMessage::EventEmit(emit) => Some((&emit.job_id, emit.seq)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub agent_id: AgentId,
    /// Operator labels plus the automatic `kici:os:*`, `kici:arch:*`, `kici:host:*`.
    pub labels: Vec<String>,
    pub platform: String,
    pub arch: String,
    pub hostname: String,
    pub version: String,
    /// The six build-info fields: the SDK this agent verifies lock files against.
    pub build_info: BuildInfo,
    /// Jobs still running on the agent after a reconnect.
    #[serde(default)]
    pub in_flight_jobs: Vec<InFlightJob>,
    /// The agent made `agent_id` up (no `KICI_AGENT_ID`): the orchestrator names it after its
    /// token's label instead, and `register.ack` says the name.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub id_generated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InFlightJob {
    pub run_id: RunId,
    pub job_id: JobId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RejectReason {
    Busy,
    Draining,
}

/// A job's state as the agent reports it. `running` first, then one terminal state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatusUpdate {
    pub run_id: RunId,
    pub job_id: JobId,
    pub seq: u64,
    pub state: JobStatus,
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// A matrix evaluation job's result: the values the matrix function returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<Value>,
    /// A dynamic job evaluation's result: the generated jobs' descriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<Value>,
    /// An init evaluation's result: `{environments?, env?}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_result: Option<Value>,
    /// Secret outputs the job set (`ctx.setSecretOutput`), for the jobs that need it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_outputs: BTreeMap<String, Redacted>,
    /// What the job's steps returned, for the jobs that need it (`ctx.needs.<job>.result`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Value>,
    /// A failure before any step ran that the agent names (a failed checkout: `checkout`,
    /// job scope); the orchestrator accepts no other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_failure: Option<crate::failure::InitFailure>,
}

impl JobStatusUpdate {
    /// `state` of `job_id` as message `seq`, with nothing else to say.
    pub fn new(run_id: RunId, job_id: JobId, seq: u64, state: JobStatus, timestamp: i64) -> JobStatusUpdate {
        JobStatusUpdate {
            run_id,
            job_id,
            seq,
            state,
            timestamp,
            error: None,
            duration_ms: None,
            matrix: None,
            jobs: None,
            init_result: None,
            secret_outputs: BTreeMap::new(),
            outputs: None,
            init_failure: None,
        }
    }
}

/// The largest job outputs (serialized JSON) the orchestrator keeps and passes on.
pub const MAX_JOB_OUTPUTS_BYTES: usize = 1024 * 1024;

/// A secret value in a message. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepStatusUpdate {
    pub run_id: RunId,
    pub job_id: JobId,
    pub seq: u64,
    pub step_index: i64,
    pub step_name: String,
    pub step_type: String,
    pub state: StepStatus,
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Names of the secrets the step read (never values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets_accessed: Vec<String>,
}

/// The most bytes an emitted event's payload may take as JSON.
pub const MAX_EMIT_PAYLOAD_BYTES: usize = 65_536;

/// Whether `name` and `payload` make an event a step may emit (`ctx.emit`): a name of 1–128
/// letters, digits and `._:-` starting with a letter or digit, and a JSON object of at most
/// [`MAX_EMIT_PAYLOAD_BYTES`]. The runner checks the same before sending.
pub fn check_emitted(name: &str, payload: &serde_json::Value) -> Result<(), String> {
    let name_ok = name.len() <= 128
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if !name_ok {
        return Err(format!(
            "event name '{}' must be 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit",
            crate::excerpt::excerpt(name)
        ));
    }
    if !payload.is_object() {
        return Err("an event's payload must be a JSON object".to_string());
    }
    let bytes = payload.to_string().len();
    if bytes > MAX_EMIT_PAYLOAD_BYTES {
        return Err(format!(
            "the payload of event '{name}' is {bytes} bytes; the limit is {MAX_EMIT_PAYLOAD_BYTES}"
        ));
    }
    Ok(())
}

/// A custom event a step emitted (`ctx.emit(name, payload)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEmit {
    pub run_id: RunId,
    pub job_id: JobId,
    pub seq: u64,
    pub name: String,
    /// A JSON object, masked by the agent.
    pub payload: serde_json::Value,
    pub timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogChunk {
    pub run_id: RunId,
    pub job_id: JobId,
    pub seq: u64,
    pub step_index: i64,
    pub lines: Vec<LogLine>,
}

/// One line of a step's log with the time it was produced (epoch ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub ts: i64,
    pub line: String,
}

/// Orchestrator to agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum OrchestratorMessage {
    #[serde(rename = "auth.success", rename_all = "camelCase")]
    AuthSuccess { connection_id: String },
    #[serde(rename = "auth.failure")]
    AuthFailure { reason: String },
    #[serde(rename = "register.ack", rename_all = "camelCase")]
    RegisterAck { agent_id: AgentId, labels: Vec<String> },
    #[serde(rename = "job.dispatch")]
    JobDispatch(Box<JobDispatch>),
    #[serde(rename = "job.cancel", rename_all = "camelCase")]
    JobCancel {
        run_id: RunId,
        job_id: JobId,
        reason: String,
        force: bool,
    },
    /// What a job that reported its concurrency group does next (also sent unasked to a
    /// waiting job whose turn came).
    #[serde(rename = "job.concurrency.ack", rename_all = "camelCase")]
    JobConcurrencyAck {
        run_id: RunId,
        job_id: JobId,
        #[serde(flatten)]
        ack: crate::runner_protocol::ConcurrencyAck,
    },
    /// Everything up to `seq` for `job_id` is stored.
    #[serde(rename = "ack", rename_all = "camelCase")]
    Ack { job_id: JobId, seq: u64 },
    #[serde(rename = "error")]
    Error { code: String, message: String },
}

/// What an agent needs to run one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDispatch {
    pub run_id: RunId,
    pub job_id: JobId,
    /// Where the run's source is (`file:///path` for local sources, which the agent fetches
    /// from `served_repository` when it is given).
    pub repo_url: String,
    pub git_ref: String,
    pub sha: String,
    pub job_config: JobConfig,
    pub event: EventEnvelope,
    /// Upstream results by base job name: `{"build": {"status": "success"}}`.
    #[serde(default)]
    pub needs: Map<String, Value>,
    pub timestamp: i64,
    /// The secrets the job's environments bind, added when the job is sent (never stored with
    /// the queue entry); the runner hands them to steps over IPC and masks them in logs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretValue>,
    /// Where the `.kici/` dependencies' tarball is (or goes), added when the job is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deps: Option<DepsCache>,
    /// The `registries` with their tokens, resolved when the job is sent (never stored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub npm_registries: Vec<NpmRegistry>,
    /// The `installEnv` secrets by variable name, resolved when the job is sent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub install_env_secrets: BTreeMap<String, Redacted>,
    /// A signed URL of the workflow's source tarball (`source/<contentHash>.tar.gz`: `.kici/`
    /// and the `hashFiles`), added when the job is sent with `checkout: false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_tar_url: Option<String>,
    /// The source's clone credentials, added when the job is sent (never stored in the queue)
    /// for a repository that needs them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_credentials: Option<crate::git_auth::GitCredentials>,
    /// Where the job restores and saves its caches, added when the job is sent and object
    /// storage is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheGrant>,
    /// A local source's repository as the orchestrator serves it to this job, added when the
    /// job is sent: the agent fetches the job's commit from there, so it needs no view of the
    /// orchestrator's filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_repository: Option<ServedRepository>,
    /// The orchestrator's HTTP URL as the agent reaches it, set by
    /// [`JobDispatch::resolve_orchestrator_urls`] on the agent; never sent. The agent reaches
    /// what is under it without the environment's proxies.
    #[serde(skip)]
    pub orchestrator_url: Option<String>,
}

impl JobDispatch {
    /// Makes the orchestrator's own URLs in this dispatch (a path, or empty for its root)
    /// absolute against `orchestrator_url`, the agent's WebSocket URL it came through: only the
    /// agent knows how it reaches the orchestrator (a container, a microVM, another host, a
    /// proxy), and a grant is valid only on the orchestrator that issued it.
    pub fn resolve_orchestrator_urls(&mut self, orchestrator_url: &str) {
        let Some(base) = orchestrator_http_url(orchestrator_url) else {
            return;
        };
        let resolve = |url: &mut String| *url = resolve_orchestrator_url(&base, url);
        self.orchestrator_url = Some(base.clone());
        if let Some(served) = &mut self.served_repository {
            resolve(&mut served.url);
        }
        if let Some(cache) = &mut self.cache {
            resolve(&mut cache.url);
        }
        // The filesystem store's signed URLs are paths; S3's are absolute.
        let deps = self.deps.iter_mut().flat_map(|deps| {
            [
                &mut deps.download_url,
                &mut deps.upload_url,
                &mut deps.pointer_upload_url,
            ]
        });
        for url in deps.chain([&mut self.source_tar_url]).flatten() {
            resolve(url);
        }
    }
}

/// `url` made absolute against `base`, the orchestrator's HTTP URL, when it is a path (or
/// empty, for the orchestrator's root); an absolute URL stays as it is.
pub fn resolve_orchestrator_url(base: &str, url: &str) -> String {
    match url.is_empty() || url.starts_with('/') {
        true => format!("{}{url}", base.trim_end_matches('/')),
        false => url.to_string(),
    }
}

/// The HTTP URL of the orchestrator an agent reaches at WebSocket URL `ws_url`:
/// `ws://10.0.0.1:4000/ws` is `http://10.0.0.1:4000`, `wss://ci.example.com/kici/ws` is
/// `https://ci.example.com/kici`.
pub fn orchestrator_http_url(ws_url: &str) -> Option<String> {
    let url = url::Url::parse(ws_url).ok()?;
    let scheme = match url.scheme() {
        "ws" | "http" => "http",
        "wss" | "https" => "https",
        _ => return None,
    };
    let host = url.host_str()?;
    let port = url.port().map(|port| format!(":{port}")).unwrap_or_default();
    let path = url.path().trim_end_matches('/');
    let path = path.strip_suffix("/ws").unwrap_or(path);
    Some(format!("{scheme}://{host}{port}{path}"))
}

/// Where and how an agent fetches a job's commit from the orchestrator: `url` (a path until
/// [`JobDispatch::resolve_orchestrator_urls`]) with `token` as the password, which is bound to
/// the job, its source and its commit and lives as long as the job runs. `Debug` never shows
/// the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServedRepository {
    /// The source's name, for messages.
    pub source: String,
    pub url: String,
    pub token: String,
}

impl std::fmt::Debug for ServedRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedRepository")
            .field("source", &self.source)
            .field("url", &self.url)
            .field("token", &"***")
            .finish()
    }
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// The orchestrator's cache API for one job: its base URL and a token bound to the job, its
/// repository and a deadline. `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheGrant {
    pub url: String,
    pub token: String,
}

impl std::fmt::Debug for CacheGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheGrant")
            .field("url", &self.url)
            .field("token", &"***")
            .finish()
    }
}

/// `POST /api/v1/cache/restore`: the exact key, else the newest entry per prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheRestoreRequest {
    pub key: String,
    #[serde(default)]
    pub restore_keys: Vec<String>,
}

/// The answer to a restore: on a hit, the entry's key, a signed download URL and its checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheRestoreAnswer {
    pub hit: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
}

/// `POST /api/v1/cache/save` (reserve: where to upload) and `/api/v1/cache/commit` (the upload
/// is complete: record it), with the archive's size and checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheSaveRequest {
    pub key: String,
    pub size_bytes: u64,
    pub sha256: String,
    /// `commit`: the object the `save` answer named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_key: Option<String>,
}

impl CacheSaveAnswer {
    /// The key is taken: nothing to upload.
    pub fn exists() -> CacheSaveAnswer {
        CacheSaveAnswer {
            exists: true,
            saved: false,
            upload_url: None,
            object_key: None,
        }
    }
}

/// The answer to a save or commit: `exists` when the key is taken (the first save wins);
/// else, to `save`, where to upload, and to `commit`, `saved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheSaveAnswer {
    #[serde(default)]
    pub exists: bool,
    #[serde(default)]
    pub saved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_key: Option<String>,
}

/// A dependency tarball in object storage: a signed URL to download it and its SHA-256 when
/// one is stored for `deps/<platform>-<arch>/<lockfileHash>`, else signed URLs to upload a new
/// one (`…/<lockfileHash>/<jobId>.tar.gz`) and then the pointer `…/<lockfileHash>.json`
/// (`{"key", "sha256"}`) that names it. Each upload has its own object and the pointer is
/// written last, so concurrent jobs never pair one tarball with another's checksum.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DepsCache {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer_upload_url: Option<String>,
    /// The largest tarball the cache takes (`KICI_CACHE_MAX_TARBALL_BYTES`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
}

/// The pointer object of a stored dependency tarball.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepsPointer {
    /// The tarball's object key (without the storage prefix).
    pub key: String,
    pub sha256: String,
}

/// Signed URLs are credentials: `Debug` shows the key only.
impl std::fmt::Debug for DepsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DepsCache")
            .field("key", &self.key)
            .field("download", &self.download_url.is_some())
            .field("upload", &self.upload_url.is_some())
            .finish()
    }
}

/// A secret as a job receives it. `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretValue {
    pub value: String,
    /// The scope it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("value", &"***")
            .field("scope", &self.scope)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobConfig {
    pub kind: JobKind,
    /// The repository the run belongs to (caches are kept per repository).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub repo: String,
    pub workflow_name: String,
    /// Repository-relative workflow file.
    pub workflow_file: String,
    /// The lock file's contentHash for the workflow; the agent recomputes and compares it.
    pub content_hash: String,
    #[serde(default)]
    pub resolved_hash_files: Vec<String>,
    /// Base job name (matrix children share it).
    pub job_name: String,
    /// Display name, e.g. `test (linux, 20)`.
    pub display_name: String,
    #[serde(default)]
    pub matrix: Option<Map<String, Value>>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// The job was generated by the `dynamicJob()` at this index of the workflow's jobs (the
    /// runner re-runs the generator to find its steps); for `dynamicEval`, the generator to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_index: Option<u32>,
    /// Environment variables for the steps (`KICI_RUN_ID`, ..., and the variables of the job's
    /// environments).
    #[serde(default)]
    pub env: Map<String, Value>,
    /// The job's `env`, when the orchestrator evaluated it (a function of the event); replaces
    /// the module's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_env: Option<Map<String, Value>>,
    /// The job's environments, resolved (functions of the event evaluated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<String>,
    /// The lock file's `lockfileHash`: the `.kici/` dependencies' cache key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lockfile_hash: Option<String>,
    /// `runsOn.pick: 'any'`: any fitting agent, the least used first, rather than the lowest id.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pick_any: bool,
    /// The job's concurrency group, resolved (`concurrencyGroup`, else its first environment):
    /// the dispatcher sends no two jobs of one repository and group at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_group: Option<String>,
    /// The job's `gracePeriod` (seconds): SIGTERM to SIGKILL on cancel or job timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_secs: Option<u64>,
    /// `KICI_CONCURRENCY_WAIT_TIMEOUT_MS`, for a workflow with a concurrency group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_wait_timeout_ms: Option<u64>,
    /// `checkout: false`: the agent does not clone; it unpacks the workflow's source tarball.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub checkout: bool,
    /// An untrusted pull request's job: its `.kici/` comes from the workflow's source tarball
    /// (the base branch's), over the checkout of the pull request's head.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub base_workflows: bool,
    /// The workflow's `registries` (references; the dispatch carries the resolved tokens).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registries: Vec<LockRegistry>,
    /// The workflow's `installEnv` references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub install_env: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum JobKind {
    /// Run the job's steps.
    Execute,
    /// Evaluate the job's dynamic matrix and report the values (`job.status` `matrix`).
    MatrixEval,
    /// Run a `dynamicJob()` generator and report the jobs it made (`job.status` `jobs`).
    DynamicEval,
    /// Evaluate a job's impure `environment`/`env` functions and report what they returned
    /// (`job.status` `initResult`).
    InitEval,
    /// Install the workflow's `.kici/` dependencies once and store their tarball
    /// (`__build__<workflow>`), before the run's jobs start.
    Build,
}

impl JobKind {
    pub const ALL: [JobKind; 5] = [
        JobKind::Execute,
        JobKind::MatrixEval,
        JobKind::DynamicEval,
        JobKind::InitEval,
        JobKind::Build,
    ];

    /// The name stored in a job row (`jobs.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Execute => "execute",
            JobKind::MatrixEval => "matrix_eval",
            JobKind::DynamicEval => "dynamic_eval",
            JobKind::InitEval => "init_eval",
            JobKind::Build => "build",
        }
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobKind {
    type Err = String;

    fn from_str(text: &str) -> Result<JobKind, String> {
        JobKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| format!("unknown job kind `{text}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orchestrators_own_urls_are_resolved_against_the_one_the_agent_dialled() {
        for (ws, http) in [
            ("ws://10.0.0.1:4000/ws", Some("http://10.0.0.1:4000")),
            ("wss://ci.example.com/kici/ws/", Some("https://ci.example.com/kici")),
            ("ws://[::1]:4000/ws", Some("http://[::1]:4000")),
            ("ftp://x/ws", None),
        ] {
            assert_eq!(orchestrator_http_url(ws).as_deref(), http, "{ws}");
        }
        let mut dispatch: JobDispatch = serde_json::from_value(serde_json::json!({
            "runId": "r", "jobId": "j", "repoUrl": "file:///srv/git/app.git", "gitRef": "refs/heads/main",
            "sha": "abc", "jobConfig": {"kind": "execute", "workflowName": "w", "workflowFile": "f",
            "contentHash": "h", "jobName": "a", "displayName": "a"}, "event": {"type": "push"}, "timestamp": 0,
            "servedRepository": {"source": "app", "url": "/git/app.git", "token": "secret-token"},
            "cache": {"url": "", "token": "t"},
            "deps": {"key": "deps/k", "downloadUrl": "/storage/deps/k?expires=1&signature=s",
                "uploadUrl": "https://bucket.s3.example.com/deps/k?X-Amz-Signature=s"},
            "sourceTarUrl": "/storage/source/h.tar.gz?expires=1&signature=s"
        }))
        .unwrap();
        assert!(!format!("{:?}", dispatch.served_repository).contains("secret-token"));
        dispatch.resolve_orchestrator_urls("ws://10.0.0.1:4000/ws");
        assert_eq!(
            dispatch.served_repository.as_ref().unwrap().url,
            "http://10.0.0.1:4000/git/app.git"
        );
        assert_eq!(dispatch.cache.as_ref().unwrap().url, "http://10.0.0.1:4000");
        assert_eq!(dispatch.orchestrator_url.as_deref(), Some("http://10.0.0.1:4000"));
        assert!(!serde_json::to_string(&dispatch).unwrap().contains("orchestratorUrl"));
        let deps = dispatch.deps.as_ref().unwrap();
        assert_eq!(
            deps.download_url.as_deref(),
            Some("http://10.0.0.1:4000/storage/deps/k?expires=1&signature=s")
        );
        assert_eq!(
            dispatch.source_tar_url.as_deref(),
            Some("http://10.0.0.1:4000/storage/source/h.tar.gz?expires=1&signature=s")
        );
        // An absolute URL is the orchestrator's (or S3's) to choose, and stays.
        assert_eq!(
            deps.upload_url.as_deref(),
            Some("https://bucket.s3.example.com/deps/k?X-Amz-Signature=s")
        );
        assert_eq!(deps.pointer_upload_url, None);
        dispatch.resolve_orchestrator_urls("ws://elsewhere:1/ws");
        assert_eq!(dispatch.cache.as_ref().unwrap().url, "http://10.0.0.1:4000");
        assert_eq!(
            resolve_orchestrator_url("https://ci.example.com/kici/", "/storage/x"),
            "https://ci.example.com/kici/storage/x"
        );
    }

    #[test]
    fn wire_names() {
        let message = AgentMessage::JobAck {
            run_id: "r".into(),
            job_id: "j".into(),
            seq: 1,
            timestamp: 5,
        };
        assert_eq!(
            serde_json::to_string(&message).unwrap(),
            r#"{"type":"job.ack","runId":"r","jobId":"j","seq":1,"timestamp":5}"#
        );
        let ack: OrchestratorMessage = serde_json::from_str(r#"{"type":"ack","jobId":"j","seq":3}"#).unwrap();
        assert_eq!(
            ack,
            OrchestratorMessage::Ack {
                job_id: "j".into(),
                seq: 3
            }
        );
        let chunk = AgentMessage::LogChunk(LogChunk {
            run_id: "r".into(),
            job_id: "j".into(),
            seq: 2,
            step_index: 0,
            lines: vec![LogLine {
                ts: 1,
                line: "hi".into(),
            }],
        });
        assert_eq!(chunk.sequenced(), Some((&JobId::from("j"), 2)));
        let text = serde_json::to_string(&chunk).unwrap();
        assert!(text.starts_with(r#"{"type":"log.chunk","runId":"r""#), "{text}");
        assert!(serde_json::from_str::<AgentMessage>(r#"{"type":"nope"}"#).is_err());
    }

    #[test]
    fn deeply_nested_messages_are_errors_not_crashes() {
        let deep = format!(
            r#"{{"type":"job.dispatch","needs":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let err = serde_json::from_str::<OrchestratorMessage>(&deep).unwrap_err();
        assert!(err.to_string().starts_with("recursion limit exceeded"), "{err}");
        assert!(serde_json::from_str::<AgentMessage>(&deep.replace("job.dispatch", "job.status")).is_err());
    }
}
