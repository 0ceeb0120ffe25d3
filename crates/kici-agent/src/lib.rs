//! The KiCI agent: it connects out to an orchestrator over WebSocket, accepts one job at a
//! time, checks the repository out, verifies the lock file against the source, and runs the
//! job through the Node runner, streaming step statuses and logs back
//! (`spec/execution.md` §3–4, `sdk/PROTOCOL.md`).
//!
//! Map: [`config`] reads the environment; `connection` owns the socket and the `outbox`
//! (sequenced messages kept until acknowledged, replayed after a reconnect); `job` runs one job
//! (`job::checkout` clones and checks for drift, `job::steps` maps runner events to messages,
//! `job::reporter` numbers them) and `logs` batches its output; `health` serves `/health`,
//! `/ready` and `/metrics` (the `kici_agent_*` metrics, recorded where things happen through
//! `kici_telemetry::metrics::agent`). [`run`] wires them up
//! and is the agent core: it accepts or rejects dispatches, forwards cancels, and drains on
//! shutdown. Tasks talk only through bounded channels; each spawned task is owned here.
//!
//! Not here: signal handling and exit codes (`main.rs`), the protocol types (`kici-engine`),
//! staging and driving the runner (`kici-compiler`).

pub mod config;
mod connection;
mod health;
mod job;
mod logs;
mod outbox;
mod warm;

use std::sync::Arc;
use std::time::Duration;

use kici_engine::ids::{AgentId, JobId, RunId};
use kici_engine::protocol::{AgentMessage, InFlightJob, OrchestratorMessage, RejectReason};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

pub use config::Config;
pub use connection::ConnectionError;

use connection::{Command, Connection, ConnectionSettings};
use job::{CANCEL_GRACE, CancelMode, JobSettings};
use outbox::Outbox;

/// Messages from jobs and the core to the connection task. When full, job tasks wait (which
/// slows the runner's output down) and unsequenced messages (heartbeats, rejects) are dropped.
const COMMAND_BUFFER: usize = 1024;
/// Orchestrator messages for the core. When full, the connection task waits.
const INCOMING_BUFFER: usize = 64;
/// On SIGTERM, how long the running job may still finish before it is cancelled.
const SHUTDOWN_JOB_WAIT: Duration = Duration::from_secs(10);
/// After that cancel, how long the job gets to report before its task is aborted
/// (the cancel grace, the kill grace, and time to send the final status).
const SHUTDOWN_CANCEL_WAIT: Duration = Duration::from_secs(CANCEL_GRACE.as_secs() + 5);
/// How long unacknowledged messages may still be flushed before the socket is closed.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);
/// Bound on the connection task's close (flush, close frame) and the health server's stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// What `main` (or a test) asks the running agent to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownSignal {
    /// SIGTERM/SIGINT: reject new jobs, give the running job 10 s, cancel it, flush, exit.
    Terminate,
    /// SIGUSR1: reject new jobs, let the running job finish, then exit.
    Drain,
}

/// Why the agent stopped other than by a shutdown request.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("failed to bind the health server on 127.0.0.1:{port} (hint: set KICI_PORT to a free port, or 0)")]
    HealthBind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error("the agent's {task} task failed: {message}")]
    TaskFailed { task: &'static str, message: String },
}

/// Milliseconds since the Unix epoch, for message timestamps.
pub(crate) fn timestamp_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Runs the agent until `shutdown` says so (or its sender is dropped, which counts as
/// [`ShutdownSignal::Terminate`]). Returns an error when the orchestrator rejected the token:
/// the agent never reconnects then.
pub async fn run(config: Config, mut shutdown: mpsc::Receiver<ShutdownSignal>) -> Result<(), AgentError> {
    let started = std::time::Instant::now();
    kici_telemetry::metrics::install(kici_telemetry::metrics::MetricSet::Agent);
    let (listener, address) = health::bind(config.port)
        .await
        .map_err(|source| AgentError::HealthBind {
            port: config.port,
            source,
        })?;
    info!(port = address.port(), "agent.listening");
    let (registered_tx, registered_rx) = watch::channel(false);
    let (stop_health, health_stopped) = oneshot::channel::<()>();
    let health_task = tokio::spawn(health::serve(
        listener,
        health::app(started, registered_rx, config.metrics_token.clone()),
        async move {
            // Either a stop request or the sender dropped: both mean stop.
            let _ = health_stopped.await;
        },
    ));

    let labels = config.all_labels();
    info!(
        agentId = %config.agent_id,
        url = %config.orchestrator_urls.join(","),
        labels = %labels.join(","),
        workDir = %config.work_dir.display(),
        "agent.starting"
    );
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_BUFFER);
    let (incoming_tx, incoming_rx) = mpsc::channel(INCOMING_BUFFER);
    let (in_flight_tx, in_flight_rx) = watch::channel(None);
    let connection = Connection {
        settings: ConnectionSettings {
            urls: config.orchestrator_urls.clone(),
            token: config.token.expose().to_string(),
            agent_id: config.agent_id.clone(),
            agent_id_generated: config.agent_id_generated,
            labels,
            hostname: config.hostname.clone(),
            heartbeat_interval: config.heartbeat_interval,
        },
        commands: commands_rx,
        incoming: incoming_tx,
        registered: registered_tx,
        in_flight: in_flight_rx,
        outbox: Outbox::default(),
        next_url: 0,
    };
    let mut connection_task = tokio::spawn(connection.run());
    let mut core = Core {
        agent_id: config.agent_id.clone(),
        settings: Arc::new(JobSettings {
            runners: warm::WarmRunners::new(&config.work_dir, config.node.clone()),
            work_dir: config.work_dir.clone(),
            node: config.node.clone(),
            default_step_timeout: config.default_step_timeout,
            matrix_eval_timeout: config.matrix_eval_timeout,
            job_heartbeat_interval: config.job_heartbeat_interval,
            max_log_size_bytes: config.max_log_size_bytes,
            backpressure: config.backpressure,
            agent_kind: match &config.scaler_backend {
                Some(backend) => format!("{backend} agent"),
                None => "agent".to_string(),
            },
        }),
        commands: commands_tx.clone(),
        in_flight: in_flight_tx,
        running: None,
        mode: Mode::Serving,
        single_use: config.scaler_managed,
        // A scaler-managed agent that never gets its job must not linger.
        give_up_at: config
            .scaler_managed
            .then(|| Instant::now() + config.pending_dispatch_timeout),
    };
    core.settings.runners.refill();
    let outcome = core.run(incoming_rx, &mut shutdown, &mut connection_task).await;

    if !connection_task.is_finished() {
        let close = Command::Close { flush: SHUTDOWN_FLUSH };
        // The task may have stopped in the meantime; then there is nothing to close.
        let _ = tokio::time::timeout(STOP_TIMEOUT, commands_tx.send(close)).await;
        match tokio::time::timeout(STOP_TIMEOUT + SHUTDOWN_FLUSH, &mut connection_task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => warn!(error = %err, "connection ended with an error during shutdown"),
            Ok(Err(err)) => warn!(error = %err, "connection task failed during shutdown"),
            Err(_) => {
                warn!("the connection did not close in time");
                connection_task.abort();
            }
        }
    }
    // The health task ends when told to; if it already ended, the send fails harmlessly.
    let _ = stop_health.send(());
    match tokio::time::timeout(STOP_TIMEOUT, health_task).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(err))) => warn!(error = %err, "health server failed"),
        Ok(Err(err)) => warn!(error = %err, "health server task failed"),
        Err(_) => warn!("the health server did not stop in time"),
    }
    if outcome.is_ok() {
        info!(agentId = %config.agent_id, "agent.stopped");
    }
    outcome
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Serving,
    /// SIGUSR1: finish the running job, then stop.
    Draining,
    /// SIGTERM: wait for the job until `cancel_at`, cancel it, abort it at `abort_at`.
    Stopping {
        cancel_at: Option<Instant>,
        abort_at: Option<Instant>,
    },
}

struct RunningJob {
    run_id: RunId,
    job_id: JobId,
    cancel: watch::Sender<Option<CancelMode>>,
    /// The orchestrator's answers to the job's concurrency report.
    acks: tokio::sync::mpsc::UnboundedSender<kici_engine::runner_protocol::ConcurrencyAck>,
    handle: JoinHandle<()>,
}

/// Accepts and rejects dispatches, forwards cancels, and runs the shutdown sequence.
struct Core {
    agent_id: AgentId,
    settings: Arc<JobSettings>,
    commands: mpsc::Sender<Command>,
    in_flight: watch::Sender<Option<InFlightJob>>,
    running: Option<RunningJob>,
    mode: Mode,
    /// Scaler-managed: run one job, then drain and exit.
    single_use: bool,
    /// Scaler-managed: exit at this time unless a job arrived before.
    give_up_at: Option<Instant>,
}

/// Resolves when the running job's task ends; pending forever when there is none.
async fn job_finished(running: &mut Option<RunningJob>) -> Result<(), tokio::task::JoinError> {
    match running {
        Some(job) => (&mut job.handle).await,
        None => std::future::pending().await,
    }
}

async fn deadline(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Core {
    async fn run(
        &mut self,
        mut incoming: mpsc::Receiver<OrchestratorMessage>,
        shutdown: &mut mpsc::Receiver<ShutdownSignal>,
        connection_task: &mut JoinHandle<Result<(), ConnectionError>>,
    ) -> Result<(), AgentError> {
        let mut shutdown_open = true;
        let mut incoming_open = true;
        loop {
            if self.mode != Mode::Serving && self.running.is_none() {
                return Ok(());
            }
            let (cancel_at, abort_at) = match self.mode {
                Mode::Stopping { cancel_at, abort_at } => (cancel_at, abort_at),
                _ => (None, None),
            };
            tokio::select! {
                message = incoming.recv(), if incoming_open => match message {
                    Some(message) => self.handle(message),
                    // The connection task is ending; its result arrives in the branch below.
                    None => incoming_open = false,
                },
                finished = job_finished(&mut self.running) => {
                    if let Some(job) = self.running.take() {
                        if let Err(err) = finished {
                            error!(jobId = %job.job_id, error = %err, "job task failed");
                        }
                        debug!(jobId = %job.job_id, "job slot free");
                    }
                    self.in_flight.send_replace(None);
                }
                signal = shutdown.recv(), if shutdown_open => {
                    if signal.is_none() {
                        shutdown_open = false;
                    }
                    self.on_signal(signal.unwrap_or(ShutdownSignal::Terminate));
                }
                _ = deadline(cancel_at) => {
                    if let Some(job) = &self.running {
                        warn!(jobId = %job.job_id, "shutting down: the running job did not finish in time; cancelling it");
                        job.cancel.send_replace(Some(CancelMode::Graceful));
                    }
                    self.mode = Mode::Stopping { cancel_at: None, abort_at: Some(Instant::now() + SHUTDOWN_CANCEL_WAIT) };
                }
                _ = deadline(self.give_up_at) => {
                    info!(agentId = %self.agent_id, "scaler-managed agent got no job in time; exiting");
                    return Ok(());
                }
                _ = deadline(abort_at) => {
                    if let Some(job) = self.running.take() {
                        error!(jobId = %job.job_id, "shutting down: the cancelled job did not stop; abandoning it");
                        job.handle.abort();
                    }
                    return Ok(());
                }
                result = &mut *connection_task => {
                    if let Some(job) = self.running.take() {
                        job.handle.abort();
                    }
                    return match result {
                        Ok(Err(err)) => Err(AgentError::Connection(err)),
                        Ok(Ok(())) => Err(AgentError::TaskFailed {
                            task: "connection",
                            message: "it stopped without being asked to".to_string(),
                        }),
                        Err(err) => Err(AgentError::TaskFailed { task: "connection", message: err.to_string() }),
                    };
                }
            }
        }
    }

    fn on_signal(&mut self, signal: ShutdownSignal) {
        let was_serving = self.mode == Mode::Serving;
        match (signal, self.mode) {
            (ShutdownSignal::Terminate, Mode::Stopping { .. }) => {}
            (ShutdownSignal::Terminate, _) => {
                info!(agentId = %self.agent_id, busy = self.running.is_some(), "agent.shutdown");
                self.mode = Mode::Stopping {
                    cancel_at: Some(Instant::now() + SHUTDOWN_JOB_WAIT),
                    abort_at: None,
                };
            }
            (ShutdownSignal::Drain, Mode::Serving) => {
                info!(agentId = %self.agent_id, busy = self.running.is_some(), "agent.draining");
                self.mode = Mode::Draining;
            }
            (ShutdownSignal::Drain, _) => {}
        }
        if was_serving && self.mode != Mode::Serving {
            // Tells the orchestrator to stop dispatching here; dispatches already on the way
            // are rejected with `draining`.
            let status = AgentMessage::Status {
                agent_id: self.agent_id.clone(),
                active_jobs: u32::from(self.running.is_some()),
                draining: true,
            };
            if self.commands.try_send(Command::Send(status)).is_err() {
                debug!("connection queue full; agent.status dropped");
            }
        }
    }

    fn handle(&mut self, message: OrchestratorMessage) {
        match message {
            OrchestratorMessage::JobDispatch(dispatch) => {
                let reason = match (&self.running, self.mode) {
                    (_, Mode::Draining | Mode::Stopping { .. }) => Some(RejectReason::Draining),
                    (Some(_), Mode::Serving) => Some(RejectReason::Busy),
                    (None, Mode::Serving) => None,
                };
                if let Some(reason) = reason {
                    info!(runId = %dispatch.run_id, jobId = %dispatch.job_id, reason = ?reason, "job.rejected");
                    let reject = AgentMessage::JobReject {
                        run_id: dispatch.run_id,
                        job_id: dispatch.job_id,
                        reason,
                    };
                    if self.commands.try_send(Command::Send(reject)).is_err() {
                        warn!(
                            "connection queue full; job.reject dropped (the orchestrator's ack deadline requeues the job)"
                        );
                    }
                    return;
                }
                let (cancel, cancel_rx) = watch::channel(None);
                let (acks, acks_rx) = tokio::sync::mpsc::unbounded_channel();
                let run_id = dispatch.run_id.clone();
                let job_id = dispatch.job_id.clone();
                let handle = tokio::spawn(job::run_job(
                    self.settings.clone(),
                    *dispatch,
                    self.commands.clone(),
                    cancel_rx,
                    acks_rx,
                ));
                self.in_flight.send_replace(Some(InFlightJob {
                    run_id: run_id.clone(),
                    job_id: job_id.clone(),
                }));
                self.running = Some(RunningJob {
                    run_id,
                    job_id,
                    cancel,
                    acks,
                    handle,
                });
                if self.single_use {
                    // One job per scaler-managed agent: take no other, exit once it ends.
                    self.give_up_at = None;
                    self.on_signal(ShutdownSignal::Drain);
                }
            }
            OrchestratorMessage::JobCancel {
                run_id,
                job_id,
                reason,
                force,
            } => match &self.running {
                Some(job) if job.job_id == job_id && job.run_id == run_id => {
                    info!(runId = %run_id, jobId = %job_id, reason = %reason, force, "job.cancel");
                    let mode = if force { CancelMode::Force } else { CancelMode::Graceful };
                    // A forced cancel is never downgraded by a later graceful one.
                    job.cancel.send_if_modified(|current| {
                        if *current == Some(CancelMode::Force) || *current == Some(mode) {
                            return false;
                        }
                        *current = Some(mode);
                        true
                    });
                }
                _ => debug!(runId = %run_id, jobId = %job_id, "cancel for a job not running here; ignored"),
            },
            OrchestratorMessage::JobConcurrencyAck { run_id, job_id, ack } => match &self.running {
                Some(job) if job.job_id == job_id && job.run_id == run_id => {
                    info!(runId = %run_id, jobId = %job_id, action = ?ack.action, "job.concurrency.ack");
                    // The job's task is gone only when the job ended: nothing waits for it then.
                    let _ = job.acks.send(ack);
                }
                _ => debug!(runId = %run_id, jobId = %job_id, "concurrency answer for a job not running here; ignored"),
            },
            other => debug!(message = ?other, "ignored orchestrator message"),
        }
    }
}
