//! Recording the orchestrator's metrics (`kici_orch_*`). Each function is one event or one
//! reading; where to call it is listed on each. Call [`super::install`] with
//! [`super::MetricSet::Orchestrator`] at start so every series exists before the first event.

use std::time::Duration;

use kici_engine::status::{RunStatus, StepStatus};

use super::names::{
    LABEL_BACKEND, LABEL_BOUND, LABEL_RESULT, LABEL_STATUS, ORCH_AGENTS_ACTIVE, ORCH_BUILD_DURATION_SECONDS,
    ORCH_DEDUP_HITS_TOTAL, ORCH_DEP_CACHE_HITS_TOTAL, ORCH_DEP_CACHE_MISSES_TOTAL, ORCH_DISPATCH_QUEUE_DEPTH,
    ORCH_EXECUTION_DURATION_SECONDS, ORCH_EXECUTIONS_TOTAL, ORCH_LOG_BYTES_STORED_TOTAL,
    ORCH_LOG_CHUNKS_RECEIVED_TOTAL, ORCH_SCALER_CONFIG_RELOADS_TOTAL, ORCH_SCALER_SPAWN_FAILURES_TOTAL,
    ORCH_SOURCE_CACHE_HITS_TOTAL, ORCH_SOURCE_CACHE_MISSES_TOTAL, ORCH_STALE_DETECTION_DURATION_SECONDS,
    ORCH_STALE_RUNS_CURRENT, ORCH_STALE_RUNS_DETECTED_TOTAL, ORCH_STEPS_TOTAL, ORCH_WEBHOOKS_PROCESSED_TOTAL,
    ORCH_WEBHOOKS_RECEIVED_TOTAL,
};

/// Agents registered now (after each register and disconnect).
pub fn set_agents_active(count: usize) {
    metrics::gauge!(ORCH_AGENTS_ACTIVE).set(count as f64);
}

/// Queue entries in `status` (a `QueueStatus::as_str()`, e.g. `pending`), read from the store.
pub fn set_dispatch_queue_depth(status: &'static str, count: u64) {
    metrics::gauge!(ORCH_DISPATCH_QUEUE_DEPTH, LABEL_STATUS => status).set(count as f64);
}

/// An agent spawn failed; `backend` is the backend type (`container`, `bare-metal`), `bound`
/// whether the spawn was for a specific job (not a warm-pool spawn).
pub fn scaler_spawn_failed(backend: &str, bound: bool) {
    let bound = if bound { "true" } else { "false" };
    metrics::counter!(ORCH_SCALER_SPAWN_FAILURES_TOTAL, LABEL_BACKEND => backend.to_string(), LABEL_BOUND => bound)
        .increment(1);
}

/// A scaler configuration reload: `attempted` when it starts, then `success` or `failed`.
pub fn scaler_config_reload(result: &'static str) {
    metrics::counter!(ORCH_SCALER_CONFIG_RELOADS_TOTAL, LABEL_RESULT => result).increment(1);
}

/// A webhook delivery arrived (before dedup and validation of its content).
pub fn webhook_received() {
    metrics::counter!(ORCH_WEBHOOKS_RECEIVED_TOTAL).increment(1);
}

/// A delivery was processed to the end (triggers matched, runs created or none matched).
pub fn webhook_processed() {
    metrics::counter!(ORCH_WEBHOOKS_PROCESSED_TOTAL).increment(1);
}

/// A delivery was ignored as a duplicate.
pub fn dedup_hit() {
    metrics::counter!(ORCH_DEDUP_HITS_TOTAL).increment(1);
}

/// A job was sent with a stored dependency tarball to restore.
pub fn dep_cache_hit() {
    metrics::counter!(ORCH_DEP_CACHE_HITS_TOTAL).increment(1);
}

/// A job was sent to install its dependencies and store the tarball.
pub fn dep_cache_miss() {
    metrics::counter!(ORCH_DEP_CACHE_MISSES_TOTAL).increment(1);
}

/// A run's workflow source tarball was stored already (`hit`) or was packed now.
pub fn source_cache(hit: bool) {
    let name = if hit {
        ORCH_SOURCE_CACHE_HITS_TOTAL
    } else {
        ORCH_SOURCE_CACHE_MISSES_TOTAL
    };
    metrics::counter!(name).increment(1);
}

/// A `__build__` job finished, after `duration` on its agent.
pub fn build_finished(duration: Duration) {
    metrics::histogram!(ORCH_BUILD_DURATION_SECONDS).record(duration.as_secs_f64());
}

/// A run reached its final `status`; `duration` from its creation, when known.
pub fn execution_finished(status: RunStatus, duration: Option<Duration>) {
    metrics::counter!(ORCH_EXECUTIONS_TOTAL, LABEL_STATUS => status.as_str()).increment(1);
    if let Some(duration) = duration {
        metrics::histogram!(ORCH_EXECUTION_DURATION_SECONDS).record(duration.as_secs_f64());
    }
}

/// A step reached a final `status` (once per step, not per replayed message).
pub fn step_finished(status: StepStatus) {
    metrics::counter!(ORCH_STEPS_TOTAL, LABEL_STATUS => status.as_str()).increment(1);
}

/// One stale-detector scan: how long it took, how many jobs it found stale (`current`) and how
/// many of them it failed as `timed_out_stale` now (`newly_failed`).
pub fn stale_scan(duration: Duration, current: u64, newly_failed: u64) {
    metrics::histogram!(ORCH_STALE_DETECTION_DURATION_SECONDS).record(duration.as_secs_f64());
    metrics::gauge!(ORCH_STALE_RUNS_CURRENT).set(current as f64);
    metrics::counter!(ORCH_STALE_RUNS_DETECTED_TOTAL).increment(newly_failed);
}

/// A `log.chunk` was stored (not a replayed duplicate); `bytes` of its lines' text.
pub fn log_chunk_stored(bytes: u64) {
    metrics::counter!(ORCH_LOG_CHUNKS_RECEIVED_TOTAL).increment(1);
    metrics::counter!(ORCH_LOG_BYTES_STORED_TOTAL).increment(bytes);
}
