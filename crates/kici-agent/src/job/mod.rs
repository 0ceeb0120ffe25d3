//! One dispatched job, from `job.ack` to the final `job.status`: clone the repository at the
//! commit, verify the workflow's `contentHash` (drift check), stage `.kici/`, then either run
//! the job through the Node runner (`execute`) or evaluate its dynamic matrix (`matrixEval`),
//! turning runner events into `step.status` / `log.chunk` messages.
//!
//! The job speaks only through [`Command`]s to the connection task; it never sees the socket.
//! Cancellation arrives on a watch channel: before the runner starts the job stops at once;
//! afterwards the runner gets `abort` (it stops the step's commands within the job's grace
//! period, then runs the cancel hooks), and its process group is killed if it has not finished
//! by the grace period plus the hooks' time ([`cancel_wait`]). A workflow concurrency group
//! the runner reports goes to the orchestrator, and its answers come back on `acks`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kici_compiler::compile::{prepare, prepare_within};
use kici_compiler::evaluate::{INIT_TIMEOUT, JOBS_TIMEOUT, evaluate_init, evaluate_jobs, evaluate_matrix};
use kici_compiler::project::Project;
use kici_compiler::runner::{KILL_GRACE, RunnerEvent, RunnerProcess, RunnerSpec, find_node};
use kici_compiler::stage::StagedTree;
use kici_engine::failure::{InitFailure, InitFailureCategory, InitFailureScope};
use kici_engine::protocol::{AgentMessage, JobDispatch, JobKind, Redacted};
use kici_engine::runner_protocol::{
    ConcurrencyAck, EvaluateKind, EvaluateRequest, ExecuteRequest, HostMessage, PREPARE_STEP_INDEX, RunnerMessage,
};
use kici_engine::status::{JobStatus, StepStatus};
use kici_telemetry::service::error_chain;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{info, warn};

use crate::connection::Command;
use crate::logs::{Batch, FLUSH_INTERVAL};
use crate::timestamp_ms;

mod checkout;
mod deps;
mod reporter;
mod steps;
mod transfer;
mod user_cache;

use reporter::{Reporter, StepUpdate};
use steps::{StepTracker, job_error, runner_exited_early};

/// When the agent itself stops (SIGTERM), how long a cancelled job gets to finish.
pub const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// The runner's grace period when the job sets none (`gracePeriod`).
const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(30);
/// The time the cancel hooks (`onCancel`, `cleanup`) get by default, and a margin to report.
const CANCEL_HOOKS_TIME: Duration = Duration::from_secs(5 * 60 + 10);

/// After `abort`, how long the runner gets before its process group is killed: the job's
/// grace period for its commands, then its cancel hooks.
fn cancel_wait(grace_period: Duration) -> Duration {
    grace_period + CANCEL_HOOKS_TIME
}

/// The parts of the configuration a job needs.
#[derive(Debug)]
pub struct JobSettings {
    /// A runner started ahead of the next job.
    pub runners: crate::warm::WarmRunners,
    pub work_dir: PathBuf,
    pub node: Option<PathBuf>,
    pub default_step_timeout: Duration,
    pub matrix_eval_timeout: Duration,
    pub job_heartbeat_interval: Duration,
    pub max_log_size_bytes: u64,
    pub backpressure: crate::config::Backpressure,
    /// What kind of agent this is, for errors: `container agent` (`KICI_SCALER_BACKEND`), or
    /// `agent` when no scaler said.
    pub agent_kind: String,
}

/// How the orchestrator asked to cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelMode {
    /// Hooks (`onCancel`, `cleanup`) still run.
    Graceful,
    /// No hook runs.
    Force,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    state: JobStatus,
    error: Option<String>,
    duration_ms: Option<u64>,
    matrix: Option<Value>,
    jobs: Option<Value>,
    init_result: Option<Value>,
    secret_outputs: BTreeMap<String, Redacted>,
    outputs: Option<Value>,
    init_failure: Option<InitFailure>,
}

impl Outcome {
    fn of(state: JobStatus) -> Outcome {
        Outcome {
            state,
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

    fn failed(error: String) -> Outcome {
        Outcome {
            error: Some(error),
            ..Outcome::of(JobStatus::Failed)
        }
    }

    /// The job's source could not be fetched: a `checkout` failure before any step ran, which
    /// the run shows as its reason.
    fn checkout_failed(error: String) -> Outcome {
        Outcome {
            init_failure: Some(InitFailure {
                scope: InitFailureScope::Job,
                category: InitFailureCategory::Checkout,
                message: error.clone(),
                job_name: None,
            }),
            ..Outcome::failed(error)
        }
    }

    fn cancelled() -> Outcome {
        Outcome::of(JobStatus::Cancelled)
    }
}

/// Runs `dispatch` to the end; every message goes to `out`.
pub async fn run_job(
    settings: Arc<JobSettings>,
    dispatch: JobDispatch,
    out: mpsc::Sender<Command>,
    mut cancel: watch::Receiver<Option<CancelMode>>,
    acks: mpsc::UnboundedReceiver<ConcurrencyAck>,
) {
    let started = Instant::now();
    // Counted in `kici_agent_jobs_active` until this task ends, aborted or not.
    let _active = kici_telemetry::metrics::agent::ActiveJob::start();
    let mut reporter = Reporter::new(
        dispatch.run_id.clone(),
        dispatch.job_id.clone(),
        out.clone(),
        settings.max_log_size_bytes,
        settings.backpressure,
    );
    reporter.logs.mask_with(kici_engine::mask::SecretMasker::new(
        dispatch
            .secrets
            .values()
            .map(|secret| secret.value.as_str())
            .chain(dispatch.npm_registries.iter().map(|r| r.token.as_str()))
            .chain(dispatch.install_env_secrets.values().map(|v| v.0.as_str()))
            .chain(dispatch.clone_credentials.iter().map(|c| c.password.as_str()))
            .chain(dispatch.served_repository.iter().map(|s| s.token.as_str())),
    ));
    info!(
        runId = %dispatch.run_id,
        jobId = %dispatch.job_id,
        workflow = %dispatch.job_config.workflow_name,
        job = %dispatch.job_config.display_name,
        kind = ?dispatch.job_config.kind,
        "job.started"
    );
    reporter.ack().await;
    reporter.job_status(Outcome::of(JobStatus::Running)).await;
    let checkout = tempfile::Builder::new()
        .prefix("kici-job-")
        .tempdir_in(&settings.work_dir);
    let mut outcome = match &checkout {
        Err(err) => {
            let message = format!(
                "failed to create the job's work directory in `{}`: {err}",
                settings.work_dir.display()
            );
            reporter.log(PREPARE_STEP_INDEX, message.clone()).await;
            Outcome::failed(message)
        }
        Ok(dir) => {
            let job = Job {
                settings: &settings,
                dispatch: &dispatch,
                dir: dir.path(),
                out: &out,
                acks: tokio::sync::Mutex::new(acks),
                transfer: transfer::Transfer::new(dispatch.orchestrator_url.as_deref()),
            };
            let work = job.run(&mut reporter, &mut cancel);
            with_heartbeat(work, &out, &dispatch, settings.job_heartbeat_interval).await
        }
    };
    outcome.duration_ms = outcome
        .duration_ms
        .or_else(|| Some(started.elapsed().as_millis() as u64));
    reporter.flush_logs().await;
    info!(
        runId = %dispatch.run_id,
        jobId = %dispatch.job_id,
        state = %outcome.state,
        durationMs = outcome.duration_ms.unwrap_or_default(),
        error = outcome.error.as_deref().unwrap_or(""),
        "job.finished"
    );
    kici_telemetry::metrics::agent::job_finished(outcome.state);
    reporter.job_status(outcome).await;
    settings.runners.refill();
    if let Ok(dir) = checkout {
        let path = dir.path().to_path_buf();
        let removed = tokio::task::spawn_blocking(move || dir.close()).await;
        if !matches!(removed, Ok(Ok(()))) {
            warn!(jobId = %dispatch.job_id, path = %path.display(), "could not remove the job's work directory");
        }
    }
}

/// Sends `job.heartbeat` every `period` while `work` runs. Heartbeats are not sequenced: one
/// that finds the connection busy or down is dropped.
async fn with_heartbeat<F: std::future::Future>(
    work: F,
    out: &mpsc::Sender<Command>,
    dispatch: &JobDispatch,
    period: Duration,
) -> F::Output {
    tokio::pin!(work);
    let mut tick = tokio::time::interval_at(Instant::now() + period, period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            output = &mut work => return output,
            _ = tick.tick() => {
                let beat = AgentMessage::JobHeartbeat {
                    run_id: dispatch.run_id.clone(),
                    job_id: dispatch.job_id.clone(),
                    timestamp: timestamp_ms(),
                };
                // Dropped when the connection's queue is full: the next beat follows.
                let _ = out.try_send(Command::Send(beat));
            }
        }
    }
}

/// Resolves when a cancel is requested (never, if the sender is gone without one).
async fn cancel_requested(cancel: &mut watch::Receiver<Option<CancelMode>>) -> CancelMode {
    next_cancel(cancel, None).await
}

/// Resolves with the requested cancel mode once it differs from `current` (a graceful cancel
/// followed by a forced one escalates).
async fn next_cancel(cancel: &mut watch::Receiver<Option<CancelMode>>, current: Option<CancelMode>) -> CancelMode {
    loop {
        let requested = *cancel.borrow_and_update();
        if let Some(mode) = requested
            && requested != current
        {
            return mode;
        }
        if cancel.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

struct Job<'a> {
    settings: &'a Arc<JobSettings>,
    dispatch: &'a JobDispatch,
    dir: &'a Path,
    out: &'a mpsc::Sender<Command>,
    /// The orchestrator's answers to the job's concurrency report.
    acks: tokio::sync::Mutex<mpsc::UnboundedReceiver<ConcurrencyAck>>,
    /// The HTTP clients of the job's archives and caches.
    transfer: transfer::Transfer,
}

/// What preparation produced: the staged tree and the workflow's module in it.
struct Prepared {
    staged: StagedTree,
    module: kici_engine::runner_protocol::ModuleRef,
}

impl Job<'_> {
    async fn run(&self, reporter: &mut Reporter, cancel: &mut watch::Receiver<Option<CancelMode>>) -> Outcome {
        let checked_out = tokio::select! {
            checked_out = self.checkout() => checked_out,
            _ = cancel_requested(cancel) => return Outcome::cancelled(),
        };
        if let Err(outcome) = checked_out {
            reporter
                .log(PREPARE_STEP_INDEX, outcome.error.clone().unwrap_or_default())
                .await;
            return outcome;
        }
        // Before staging, which links `.kici/node_modules` into the staged tree.
        if deps::needed(self.dir) {
            let installed = tokio::select! {
                installed = self.dependencies(reporter) => installed,
                _ = cancel_requested(cancel) => return Outcome::cancelled(),
            };
            if let Err(message) = installed {
                return Outcome::failed(message);
            }
        }
        let evaluation = match self.dispatch.job_config.kind {
            JobKind::Execute => None,
            JobKind::MatrixEval => Some(EvaluateKind::Matrix),
            JobKind::DynamicEval => Some(EvaluateKind::Jobs),
            JobKind::InitEval => Some(EvaluateKind::Init),
            // A build installs and stores the dependencies (above), and loads no workflow.
            JobKind::Build => return Outcome::of(JobStatus::Success),
        };
        let prepared = tokio::select! {
            prepared = self.stage() => prepared,
            _ = cancel_requested(cancel) => return Outcome::cancelled(),
        };
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(message) => {
                reporter.log(PREPARE_STEP_INDEX, message.clone()).await;
                return Outcome::failed(message);
            }
        };
        let node = match find_node(self.settings.node.as_deref()) {
            Ok(node) => node,
            Err(message) => {
                reporter.log(PREPARE_STEP_INDEX, message.clone()).await;
                return Outcome::failed(message);
            }
        };
        let spec = RunnerSpec {
            node,
            runner: prepared.staged.runner_path(),
            cwd: self.dir.to_path_buf(),
            env: self.runner_env(),
        };
        let spare = self.settings.runners.take().map(Ok);
        let runner = match spare.unwrap_or_else(|| RunnerProcess::spawn(&spec)) {
            Ok(runner) => runner,
            Err(err) => {
                let message = format!("could not start the workflow runner: {}", err.full_message());
                reporter.log(PREPARE_STEP_INDEX, message.clone()).await;
                return Outcome::failed(message);
            }
        };
        match evaluation {
            None => self.execute(runner, &prepared, reporter, cancel).await,
            Some(kind) => self.evaluate(kind, runner, &prepared, reporter, cancel).await,
        }
    }

    /// Clone and drift check. Err is the job's outcome: a failed fetch or clone is a
    /// `checkout` failure before any step ran.
    async fn checkout(&self) -> Result<(), Outcome> {
        let config = &self.dispatch.job_config;
        checkout::check_paths(config).map_err(Outcome::failed)?;
        if config.checkout {
            let fetched = match &self.dispatch.served_repository {
                Some(served) => {
                    checkout::fetch_served(served, self.dir, &self.dispatch.sha, &self.settings.agent_kind).await
                }
                None => {
                    checkout::clone_at(
                        &self.dispatch.repo_url,
                        self.dir,
                        &self.dispatch.sha,
                        &self.dispatch.git_ref,
                        self.dispatch.clone_credentials.as_ref(),
                        &self.settings.agent_kind,
                    )
                    .await
                }
            };
            fetched.map_err(Outcome::checkout_failed)?;
            self.after_clone().await.map_err(Outcome::failed)
        } else {
            checkout::unpack_source(self.dispatch.source_tar_url.as_deref(), self.dir, &self.transfer)
                .await
                .map_err(Outcome::failed)?;
            checkout::check_drift(self.dir, config).await.map_err(Outcome::failed)
        }
    }

    /// A clone's base workflows (an untrusted pull request's), then the drift check.
    async fn after_clone(&self) -> Result<(), String> {
        let config = &self.dispatch.job_config;
        if config.base_workflows {
            checkout::base_workflows(self.dispatch.source_tar_url.as_deref(), self.dir, &self.transfer).await?;
        }
        checkout::check_drift(self.dir, config).await
    }

    /// The `.kici/` dependencies, installed or restored as the job's own `dependencies` row
    /// (its log says which, with the cache key and size). Err is the job's error message.
    async fn dependencies(&self, reporter: &mut Reporter) -> Result<(), String> {
        let row = |state, duration_ms, error| StepUpdate {
            index: deps::STEP_INDEX,
            name: deps::STEP_NAME.to_string(),
            step_type: deps::STEP_TYPE.to_string(),
            state,
            exit_code: None,
            duration_ms,
            error,
            secrets_accessed: Vec::new(),
        };
        reporter.step_status(row(StepStatus::Running, None, None)).await;
        let started = Instant::now();
        let secrets = deps::InstallSecrets::of(self.dispatch);
        let must_save = self.dispatch.job_config.kind == JobKind::Build;
        let result = deps::install(
            self.dir,
            self.dispatch.deps.as_ref(),
            &secrets,
            must_save,
            &self.transfer,
        )
        .await;
        let (lines, state, error) = match &result {
            Ok(notes) => (notes.clone(), StepStatus::Success, None),
            Err(message) => (vec![message.clone()], StepStatus::Failed, Some(message.clone())),
        };
        for line in lines {
            reporter.log(deps::STEP_INDEX, line).await;
        }
        reporter.flush_step(deps::STEP_INDEX).await;
        let duration_ms = Some(started.elapsed().as_millis() as u64);
        reporter.step_status(row(state, duration_ms, error)).await;
        result.map(|_| ())
    }

    /// Staging the checked-out workflows. Err is the job's error message.
    async fn stage(&self) -> Result<Prepared, String> {
        let config = &self.dispatch.job_config;
        let project = Project {
            root: self.dir.to_path_buf(),
            kici_dir: self.dir.join(".kici"),
        };
        let settings = Arc::clone(self.settings);
        let staged = tokio::task::spawn_blocking(move || match settings.runners.runtime() {
            Some(runtime) => prepare_within(&project, runtime),
            None => prepare(&project),
        })
        .await
        .map_err(|err| format!("staging the workflows failed: {err}"))?
        .map_err(|err| error_chain(&err))?;
        let module = staged.module_for(&config.workflow_file).cloned().ok_or_else(|| {
            format!(
                "workflow file `{}` is not a workflow entry point under .kici/workflows/ at {}",
                config.workflow_file, self.dispatch.sha
            )
        })?;
        Ok(Prepared { staged, module })
    }

    /// The runner's environment: the host's inherited variables, `CI=true`, then the job's env.
    fn runner_env(&self) -> BTreeMap<String, String> {
        let mut env = RunnerSpec::inherited_env();
        env.insert("CI".to_string(), "true".to_string());
        for (name, value) in &self.dispatch.job_config.env {
            let value = match value {
                Value::String(text) => text.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            env.insert(name.clone(), value);
        }
        env
    }

    async fn execute(
        &self,
        mut runner: RunnerProcess,
        prepared: &Prepared,
        reporter: &mut Reporter,
        cancel: &mut watch::Receiver<Option<CancelMode>>,
    ) -> Outcome {
        let config = &self.dispatch.job_config;
        let dir = self.dir.to_string_lossy().to_string();
        let grace_period = config
            .grace_period_secs
            .map_or(DEFAULT_GRACE_PERIOD, Duration::from_secs);
        let mut acks = self.acks.lock().await;
        let request = ExecuteRequest {
            module: prepared.module.module.clone(),
            file: prepared.module.file.clone(),
            root: dir.clone(),
            workflow: config.workflow_name.clone(),
            job: config.job_name.clone(),
            job_name: config.display_name.clone(),
            matrix: config.matrix.clone(),
            dynamic: config
                .dynamic_index
                .map(|index| kici_engine::runner_protocol::DynamicRef { index }),
            work_dir: dir,
            env: config.env.clone(),
            event: self.dispatch.event.clone(),
            needs: self.dispatch.needs.clone(),
            default_step_timeout_ms: self.settings.default_step_timeout.as_millis() as u64,
            job_timeout_ms: config.timeout_ms,
            job_env: config.job_env.clone(),
            environments: Some(config.environments.clone()),
            secrets: self.dispatch.secrets.clone(),
            grace_period_ms: Some(grace_period.as_millis() as u64),
            concurrency_wait_timeout_ms: config.concurrency_wait_timeout_ms,
        };
        if let Err(err) = runner.send(&HostMessage::Execute(Box::new(request))).await {
            return Outcome::failed(err.full_message());
        }
        let mut steps = StepTracker::default();
        let mut flush = tokio::time::interval(FLUSH_INTERVAL);
        flush.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let caches = user_cache::CacheClient::new(
            self.dispatch.cache.clone(),
            self.dir,
            self.runner_env().get("HOME").map(PathBuf::from),
            self.transfer.clone(),
        );
        // Cache transfers run beside the loop; their answers come back here for the runner.
        let (cache_done, mut cache_answers) = tokio::sync::mpsc::unbounded_channel();
        let mut cancel_mode: Option<CancelMode> = None;
        // SIGTERM at the first deadline, SIGKILL at the second.
        let mut kill_at: Option<Instant> = None;
        let mut kill_signal = libc::SIGTERM;
        let mut exit_status = None;
        loop {
            tokio::select! {
                event = runner.next() => match event {
                    None => break,
                    Some(RunnerEvent::Exited(status)) => exit_status = Some(status),
                    Some(RunnerEvent::Message(RunnerMessage::ConcurrencyReport { group })) => {
                        info!(jobId = %self.dispatch.job_id, group = %group, "job.concurrency.report");
                        let report = AgentMessage::JobConcurrencyReport {
                            run_id: self.dispatch.run_id.clone(),
                            job_id: self.dispatch.job_id.clone(),
                            group,
                        };
                        // Not sequenced: a report lost to a reconnect leaves the job waiting
                        // until its concurrency wait timeout.
                        let _ = self.out.send(Command::Send(report)).await;
                    }
                    Some(RunnerEvent::Message(RunnerMessage::EmitRequest(request))) => {
                        // Queued with the job's sequenced messages: sent again after a reconnect
                        // until the orchestrator acknowledges it.
                        let error = kici_engine::protocol::check_emitted(&request.name, &request.payload).err();
                        if error.is_none() {
                            info!(jobId = %self.dispatch.job_id, event = %request.name, "event.emit");
                            reporter.event_emit(request.name, request.payload).await;
                        }
                        let answer = HostMessage::EmitResponse { request_id: request.request_id, error };
                        if let Err(err) = runner.send(&answer).await {
                            warn!(jobId = %self.dispatch.job_id, error = %err, "could not answer the runner's event");
                        }
                    }
                    Some(RunnerEvent::Message(RunnerMessage::CacheRequest(request))) => {
                        let (caches, done) = (caches.clone(), cache_done.clone());
                        tokio::spawn(async move {
                            let _ = done.send(caches.handle(request).await);
                        });
                    }
                    Some(event) => steps.handle(event, reporter).await,
                },
                Some(ack) = acks.recv() => {
                    if let Err(err) = runner.send(&HostMessage::ConcurrencyAck(ack)).await {
                        warn!(jobId = %self.dispatch.job_id, error = %err, "could not pass the concurrency answer to the runner");
                    }
                }
                Some(answer) = cache_answers.recv() => {
                    if let Err(err) = runner.send(&HostMessage::CacheResponse(answer)).await {
                        warn!(jobId = %self.dispatch.job_id, error = %err, "could not answer the runner's cache request");
                    }
                }
                _ = flush.tick() => reporter.flush_logs().await,
                mode = next_cancel(cancel, cancel_mode), if steps.completed.is_none() && cancel_mode != Some(CancelMode::Force) => {
                    cancel_mode = Some(mode);
                    info!(jobId = %self.dispatch.job_id, force = mode == CancelMode::Force, "job.cancelling");
                    let force = mode == CancelMode::Force;
                    if let Err(err) = runner.send(&HostMessage::Abort { force }).await {
                        warn!(jobId = %self.dispatch.job_id, error = %err, "could not send abort to the runner");
                    }
                    // A forced cancel runs no hook: the runner gets the short grace only.
                    let wait = if force { CANCEL_GRACE } else { cancel_wait(grace_period) };
                    let deadline = Instant::now() + wait;
                    kill_at = Some(kill_at.map_or(deadline, |at| at.min(deadline)));
                }
                _ = tokio::time::sleep_until(kill_at.unwrap_or_else(Instant::now)), if kill_at.is_some() => {
                    warn!(jobId = %self.dispatch.job_id, signal = kill_signal, "the runner ignored the cancel; killing its process group");
                    runner.signal_group(kill_signal);
                    if kill_signal == libc::SIGTERM {
                        kill_signal = libc::SIGKILL;
                        kill_at = Some(Instant::now() + KILL_GRACE);
                    } else {
                        kill_at = None;
                    }
                }
            }
        }
        let cancelled = cancel_mode.is_some();
        steps.close_open_steps(reporter, cancelled).await;
        match steps.completed.take() {
            Some(done) => {
                let state = if cancelled && !steps.completed_before_cancel {
                    JobStatus::Cancelled
                } else {
                    done.status
                };
                let error = if state == JobStatus::Failed {
                    job_error(done.error.as_deref(), steps.first_failed.as_ref())
                } else {
                    // A skipped job's error says which rule skipped it.
                    done.error.or_else(|| done.skipped.as_ref().map(|s| s.reason.clone()))
                };
                let outcome = Outcome {
                    error,
                    duration_ms: done.duration_ms,
                    secret_outputs: done.secret_outputs,
                    outputs: done.outputs,
                    ..Outcome::of(state)
                };
                self.without_secrets_in_outputs(outcome)
            }
            None if cancelled => Outcome::cancelled(),
            None => {
                let status = exit_status.map_or_else(|| "unknown status".to_string(), |s| s.to_string());
                Outcome::failed(runner_exited_early(&status, &steps.stderr_tail))
            }
        }
    }

    /// Outputs are stored and passed on in the clear: ones holding a secret's value fail the
    /// job instead (secrets travel with `ctx.setSecretOutput`).
    fn without_secrets_in_outputs(&self, outcome: Outcome) -> Outcome {
        let Some(outputs) = &outcome.outputs else {
            return outcome;
        };
        let text = outputs.to_string();
        let leaked = self
            .dispatch
            .secrets
            .iter()
            .find(|(_, secret)| !secret.value.is_empty() && text.contains(secret.value.as_str()));
        match leaked {
            None => outcome,
            Some((key, _)) => Outcome {
                duration_ms: outcome.duration_ms,
                ..Outcome::failed(format!(
                    "Job outputs hold the value of secret '{key}'; outputs are stored and passed on in the clear, so return a secret with ctx.setSecretOutput instead"
                ))
            },
        }
    }

    async fn evaluate(
        &self,
        kind: EvaluateKind,
        runner: RunnerProcess,
        prepared: &Prepared,
        reporter: &mut Reporter,
        cancel: &mut watch::Receiver<Option<CancelMode>>,
    ) -> Outcome {
        let config = &self.dispatch.job_config;
        let dir = self.dir.to_string_lossy().to_string();
        let jobs = kind == EvaluateKind::Jobs;
        let request = EvaluateRequest {
            kind,
            module: prepared.module.module.clone(),
            file: prepared.module.file.clone(),
            workflow: config.workflow_name.clone(),
            job: config.job_name.clone(),
            work_dir: dir.clone(),
            root: dir,
            env: config.env.clone(),
            event: self.dispatch.event.clone(),
            index: if jobs { config.dynamic_index } else { None },
            needs: if jobs {
                self.dispatch.needs.clone()
            } else {
                Default::default()
            },
        };
        let mut ready: Vec<Batch> = Vec::new();
        let logs = &mut reporter.logs;
        let on_log = |line: kici_engine::runner_protocol::LogLine| {
            ready.extend(logs.push(line.step_index, line.line, timestamp_ms()));
        };
        // Dropping the evaluation on cancel drops the runner, which kills its process group.
        let result = tokio::select! {
            result = async {
                match kind {
                    EvaluateKind::Jobs => evaluate_jobs(runner, request, JOBS_TIMEOUT, on_log).await,
                    EvaluateKind::Init => evaluate_init(runner, request, INIT_TIMEOUT, on_log).await,
                    EvaluateKind::Matrix => {
                        evaluate_matrix(runner, request, self.settings.matrix_eval_timeout, on_log).await
                    }
                }
            } => Some(result),
            _ = cancel_requested(cancel) => None,
        };
        for batch in ready {
            reporter.send_batch(batch).await;
        }
        match result {
            None => Outcome::cancelled(),
            Some(Ok(value)) => match kind {
                EvaluateKind::Matrix => Outcome {
                    matrix: Some(value),
                    ..Outcome::of(JobStatus::Success)
                },
                EvaluateKind::Jobs => Outcome {
                    jobs: Some(value),
                    ..Outcome::of(JobStatus::Success)
                },
                EvaluateKind::Init => Outcome {
                    init_result: Some(value),
                    ..Outcome::of(JobStatus::Success)
                },
            },
            Some(Err(message)) => {
                reporter.log(PREPARE_STEP_INDEX, message.clone()).await;
                Outcome::failed(message)
            }
        }
    }
}
