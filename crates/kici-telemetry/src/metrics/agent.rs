//! Recording the agent's metrics (`kici_agent_*`). Call [`super::install`] with
//! [`super::MetricSet::Agent`] at start so every series exists before the first event.

use std::time::Duration;

use kici_engine::status::{JobStatus, StepStatus};

use super::names::{
    AGENT_CLONE_DURATION_SECONDS, AGENT_CONNECTION_STATUS, AGENT_JOBS_ACTIVE, AGENT_JOBS_TOTAL, AGENT_LOG_BYTES_TOTAL,
    AGENT_LOG_LINES_DROPPED_TOTAL, AGENT_STEP_DURATION_SECONDS, AGENT_STEPS_TOTAL, LABEL_STATUS,
};

/// Counts a running job in `kici_agent_jobs_active` for as long as it lives (so an aborted
/// job task still leaves the gauge right).
#[derive(Debug)]
#[must_use = "the job stops counting as active when this is dropped"]
pub struct ActiveJob(());

impl ActiveJob {
    pub fn start() -> ActiveJob {
        metrics::gauge!(AGENT_JOBS_ACTIVE).increment(1.0);
        ActiveJob(())
    }
}

impl Drop for ActiveJob {
    fn drop(&mut self) {
        metrics::gauge!(AGENT_JOBS_ACTIVE).decrement(1.0);
    }
}

/// A job ended with `status`.
pub fn job_finished(status: JobStatus) {
    metrics::counter!(AGENT_JOBS_TOTAL, LABEL_STATUS => status.as_str()).increment(1);
}

/// A step ended with `status`, after `duration` when the runner reported it.
pub fn step_finished(status: StepStatus, duration: Option<Duration>) {
    metrics::counter!(AGENT_STEPS_TOTAL, LABEL_STATUS => status.as_str()).increment(1);
    if let Some(duration) = duration {
        metrics::histogram!(AGENT_STEP_DURATION_SECONDS).record(duration.as_secs_f64());
    }
}

/// The repository was cloned and the commit checked out in `duration`.
pub fn clone_finished(duration: Duration) {
    metrics::histogram!(AGENT_CLONE_DURATION_SECONDS).record(duration.as_secs_f64());
}

/// `bytes` of job log text were handed to the connection in a `log.chunk`.
pub fn log_bytes_sent(bytes: u64) {
    metrics::counter!(AGENT_LOG_BYTES_TOTAL).increment(bytes);
}

/// Registered with an orchestrator (true) or not (false).
pub fn set_connected(connected: bool) {
    metrics::gauge!(AGENT_CONNECTION_STATUS).set(if connected { 1.0 } else { 0.0 });
}

/// `lines` job log lines were dropped because the outbox was full.
pub fn log_lines_dropped(lines: u64) {
    metrics::counter!(AGENT_LOG_LINES_DROPPED_TOTAL).increment(lines);
}
