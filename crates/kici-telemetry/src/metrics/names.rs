//! The metric names (`spec/operator.md` §4.4), their HELP texts and the series registered with
//! a zero value at install, so `/metrics` lists every metric before anything happened.
//!
//! Orchestrator metrics start with `kici_orch_`, agent metrics with `kici_agent_`. Durations
//! are histograms in seconds; counters end in `_total`.

use kici_engine::status::{JobStatus, RunStatus, StepStatus};

// Orchestrator (P0 set, plus dedup and log storage).
pub const ORCH_AGENTS_ACTIVE: &str = "kici_orch_agents_active";
pub const ORCH_DISPATCH_QUEUE_DEPTH: &str = "kici_orch_dispatch_queue_depth";
pub const ORCH_SCALER_SPAWN_FAILURES_TOTAL: &str = "kici_orch_scaler_spawn_failures_total";
pub const ORCH_SCALER_CONFIG_RELOADS_TOTAL: &str = "kici_orch_scaler_config_reloads_total";
pub const ORCH_WEBHOOKS_RECEIVED_TOTAL: &str = "kici_orch_webhooks_received_total";
pub const ORCH_WEBHOOKS_PROCESSED_TOTAL: &str = "kici_orch_webhooks_processed_total";
pub const ORCH_EXECUTIONS_TOTAL: &str = "kici_orch_executions_total";
pub const ORCH_EXECUTION_DURATION_SECONDS: &str = "kici_orch_execution_duration_seconds";
pub const ORCH_STEPS_TOTAL: &str = "kici_orch_steps_total";
pub const ORCH_STALE_RUNS_DETECTED_TOTAL: &str = "kici_orch_stale_runs_detected_total";
pub const ORCH_STALE_RUNS_CURRENT: &str = "kici_orch_stale_runs_current";
pub const ORCH_STALE_DETECTION_DURATION_SECONDS: &str = "kici_orch_stale_detection_duration_seconds";
pub const ORCH_DEDUP_HITS_TOTAL: &str = "kici_orch_dedup_hits_total";
pub const ORCH_LOG_CHUNKS_RECEIVED_TOTAL: &str = "kici_orch_log_chunks_received_total";
pub const ORCH_LOG_BYTES_STORED_TOTAL: &str = "kici_orch_log_bytes_stored_total";
pub const ORCH_DEP_CACHE_HITS_TOTAL: &str = "kici_orch_dep_cache_hits_total";
pub const ORCH_DEP_CACHE_MISSES_TOTAL: &str = "kici_orch_dep_cache_misses_total";
pub const ORCH_SOURCE_CACHE_HITS_TOTAL: &str = "kici_orch_source_cache_hits_total";
pub const ORCH_SOURCE_CACHE_MISSES_TOTAL: &str = "kici_orch_source_cache_misses_total";
pub const ORCH_BUILD_DURATION_SECONDS: &str = "kici_orch_build_duration_seconds";

// Agent.
pub const AGENT_JOBS_TOTAL: &str = "kici_agent_jobs_total";
pub const AGENT_JOBS_ACTIVE: &str = "kici_agent_jobs_active";
pub const AGENT_STEPS_TOTAL: &str = "kici_agent_steps_total";
pub const AGENT_STEP_DURATION_SECONDS: &str = "kici_agent_step_duration_seconds";
pub const AGENT_CLONE_DURATION_SECONDS: &str = "kici_agent_clone_duration_seconds";
pub const AGENT_LOG_BYTES_TOTAL: &str = "kici_agent_log_bytes_total";
pub const AGENT_CONNECTION_STATUS: &str = "kici_agent_connection_status";
pub const AGENT_LOG_LINES_DROPPED_TOTAL: &str = "kici_agent_log_lines_dropped_total";

// Label names.
pub const LABEL_STATUS: &str = "status";
pub const LABEL_BACKEND: &str = "backend";
pub const LABEL_BOUND: &str = "bound";
pub const LABEL_RESULT: &str = "result";

/// `kici_orch_scaler_config_reloads_total{result}`: every reload is `attempted`, then
/// `success` or `failed`.
pub const RELOAD_RESULTS: [&str; 3] = ["attempted", "success", "failed"];

/// The dispatch-queue statuses `kici_orch_dispatch_queue_depth` reports: the open states of
/// `kici_store::queue::QueueStatus` (this crate sits below the store, so they are named here).
pub const DISPATCH_QUEUE_OPEN_STATUSES: [&str; 3] = ["pending", "dispatched", "recovering"];

/// Scaler backend types registered at zero for `kici_orch_scaler_spawn_failures_total` (the P0
/// backends); `backend` is the backend *type*, which keeps the label's values few.
pub const SCALER_BACKEND_TYPES: [&str; 3] = ["container", "bare-metal", "firecracker"];

/// The job statuses an agent reports at the end of a job.
pub const AGENT_JOB_END_STATUSES: [JobStatus; 3] = [JobStatus::Success, JobStatus::Failed, JobStatus::Cancelled];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Which series exist from the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Series {
    /// One series, no labels.
    Single,
    /// One per finished run status.
    RunStatuses,
    /// One per finished step status.
    StepStatuses,
    /// One per [`AGENT_JOB_END_STATUSES`].
    AgentJobStatuses,
    /// One per [`DISPATCH_QUEUE_OPEN_STATUSES`].
    QueueStatuses,
    /// One per [`SCALER_BACKEND_TYPES`] × bound `true`/`false`.
    ScalerBackends,
    /// One per [`RELOAD_RESULTS`].
    ReloadResults,
}

/// A metric: name, type, HELP text, initial series.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MetricDef {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub series: Series,
}

const fn def(name: &'static str, kind: Kind, help: &'static str, series: Series) -> MetricDef {
    MetricDef {
        name,
        kind,
        help,
        series,
    }
}

pub(crate) const ORCHESTRATOR: &[MetricDef] = &[
    def(
        ORCH_AGENTS_ACTIVE,
        Kind::Gauge,
        "Agents currently connected and registered.",
        Series::Single,
    ),
    def(
        ORCH_DISPATCH_QUEUE_DEPTH,
        Kind::Gauge,
        "Dispatch queue entries by status.",
        Series::QueueStatuses,
    ),
    def(
        ORCH_SCALER_SPAWN_FAILURES_TOTAL,
        Kind::Counter,
        "Agent spawns that failed, by backend type and whether the spawn was bound to a job.",
        Series::ScalerBackends,
    ),
    def(
        ORCH_SCALER_CONFIG_RELOADS_TOTAL,
        Kind::Counter,
        "Scaler configuration reloads, by result (attempted, then success or failed).",
        Series::ReloadResults,
    ),
    def(
        ORCH_WEBHOOKS_RECEIVED_TOTAL,
        Kind::Counter,
        "Webhook deliveries received.",
        Series::Single,
    ),
    def(
        ORCH_WEBHOOKS_PROCESSED_TOTAL,
        Kind::Counter,
        "Webhook deliveries processed to the end (triggers matched, runs created).",
        Series::Single,
    ),
    def(
        ORCH_EXECUTIONS_TOTAL,
        Kind::Counter,
        "Runs finished, by final status.",
        Series::RunStatuses,
    ),
    def(
        ORCH_EXECUTION_DURATION_SECONDS,
        Kind::Histogram,
        "Duration of finished runs, from creation to the final status, in seconds.",
        Series::Single,
    ),
    def(
        ORCH_STEPS_TOTAL,
        Kind::Counter,
        "Steps finished, by final status, as reported by agents.",
        Series::StepStatuses,
    ),
    def(
        ORCH_STALE_RUNS_DETECTED_TOTAL,
        Kind::Counter,
        "Jobs failed as timed_out_stale by the stale detector.",
        Series::Single,
    ),
    def(
        ORCH_STALE_RUNS_CURRENT,
        Kind::Gauge,
        "Jobs found stale by the last stale-detector scan.",
        Series::Single,
    ),
    def(
        ORCH_STALE_DETECTION_DURATION_SECONDS,
        Kind::Histogram,
        "Duration of one stale-detector scan, in seconds.",
        Series::Single,
    ),
    def(
        ORCH_DEDUP_HITS_TOTAL,
        Kind::Counter,
        "Webhook deliveries ignored because their delivery id was already processed.",
        Series::Single,
    ),
    def(
        ORCH_LOG_CHUNKS_RECEIVED_TOTAL,
        Kind::Counter,
        "Log chunks received from agents.",
        Series::Single,
    ),
    def(
        ORCH_LOG_BYTES_STORED_TOTAL,
        Kind::Counter,
        "Bytes of job log lines stored.",
        Series::Single,
    ),
    def(
        ORCH_DEP_CACHE_HITS_TOTAL,
        Kind::Counter,
        "Jobs sent with a stored dependency tarball to restore.",
        Series::Single,
    ),
    def(
        ORCH_DEP_CACHE_MISSES_TOTAL,
        Kind::Counter,
        "Jobs sent to install their dependencies and store the tarball.",
        Series::Single,
    ),
    def(
        ORCH_SOURCE_CACHE_HITS_TOTAL,
        Kind::Counter,
        "Runs whose workflow source tarball was already stored.",
        Series::Single,
    ),
    def(
        ORCH_SOURCE_CACHE_MISSES_TOTAL,
        Kind::Counter,
        "Runs whose workflow source tarball was packed and stored.",
        Series::Single,
    ),
    def(
        ORCH_BUILD_DURATION_SECONDS,
        Kind::Histogram,
        "Duration of __build__ jobs (installing and storing dependencies).",
        Series::Single,
    ),
];

pub(crate) const AGENT: &[MetricDef] = &[
    def(
        AGENT_JOBS_TOTAL,
        Kind::Counter,
        "Jobs finished on this agent, by final status.",
        Series::AgentJobStatuses,
    ),
    def(
        AGENT_JOBS_ACTIVE,
        Kind::Gauge,
        "Jobs running on this agent.",
        Series::Single,
    ),
    def(
        AGENT_STEPS_TOTAL,
        Kind::Counter,
        "Steps finished on this agent, by final status.",
        Series::StepStatuses,
    ),
    def(
        AGENT_STEP_DURATION_SECONDS,
        Kind::Histogram,
        "Duration of finished steps, in seconds.",
        Series::Single,
    ),
    def(
        AGENT_CLONE_DURATION_SECONDS,
        Kind::Histogram,
        "Duration of successful repository checkouts (clone and checkout of the commit), in seconds.",
        Series::Single,
    ),
    def(
        AGENT_LOG_BYTES_TOTAL,
        Kind::Counter,
        "Bytes of job log lines sent to the orchestrator.",
        Series::Single,
    ),
    def(
        AGENT_CONNECTION_STATUS,
        Kind::Gauge,
        "1 while registered with an orchestrator, else 0.",
        Series::Single,
    ),
    def(
        AGENT_LOG_LINES_DROPPED_TOTAL,
        Kind::Counter,
        "Job log lines dropped because the outbox was full while the orchestrator was unreachable (lines cut by KICI_MAX_LOG_SIZE_BYTES are not counted).",
        Series::Single,
    ),
];

/// The label sets of `series` registered at install.
pub(crate) fn initial_label_sets(series: Series) -> Vec<Vec<(&'static str, &'static str)>> {
    let by_status = |statuses: &mut dyn Iterator<Item = &'static str>| {
        statuses.map(|status| vec![(LABEL_STATUS, status)]).collect()
    };
    match series {
        Series::Single => vec![Vec::new()],
        Series::RunStatuses => by_status(
            &mut RunStatus::ALL
                .into_iter()
                .filter(|s| s.is_terminal())
                .map(RunStatus::as_str),
        ),
        Series::StepStatuses => by_status(
            &mut StepStatus::ALL
                .into_iter()
                .filter(|s| s.is_terminal())
                .map(StepStatus::as_str),
        ),
        Series::AgentJobStatuses => by_status(&mut AGENT_JOB_END_STATUSES.into_iter().map(JobStatus::as_str)),
        Series::QueueStatuses => by_status(&mut DISPATCH_QUEUE_OPEN_STATUSES.into_iter()),
        Series::ScalerBackends => SCALER_BACKEND_TYPES
            .into_iter()
            .flat_map(|backend| {
                ["true", "false"]
                    .into_iter()
                    .map(move |bound| vec![(LABEL_BACKEND, backend), (LABEL_BOUND, bound)])
            })
            .collect(),
        Series::ReloadResults => RELOAD_RESULTS
            .into_iter()
            .map(|result| vec![(LABEL_RESULT, result)])
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_and_typed_by_suffix() {
        for (set, prefix) in [(ORCHESTRATOR, "kici_orch_"), (AGENT, "kici_agent_")] {
            for metric in set {
                assert!(metric.name.starts_with(prefix), "{}", metric.name);
                assert_eq!(
                    metric.name.ends_with("_total"),
                    metric.kind == Kind::Counter,
                    "{}",
                    metric.name
                );
                assert_eq!(
                    metric.name.ends_with("_seconds"),
                    metric.kind == Kind::Histogram,
                    "{}",
                    metric.name
                );
                assert!(metric.help.ends_with('.'), "{}", metric.name);
            }
        }
    }

    #[test]
    fn initial_series() {
        let statuses = |series| {
            initial_label_sets(series)
                .into_iter()
                .map(|labels| {
                    labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(statuses(Series::Single), [""]);
        assert_eq!(
            statuses(Series::RunStatuses),
            ["status=success", "status=failed", "status=cancelled"]
        );
        assert_eq!(
            statuses(Series::StepStatuses),
            ["status=success", "status=failed", "status=skipped", "status=cancelled"]
        );
        assert_eq!(
            statuses(Series::AgentJobStatuses),
            ["status=success", "status=failed", "status=cancelled"]
        );
        assert_eq!(
            statuses(Series::QueueStatuses),
            ["status=pending", "status=dispatched", "status=recovering"]
        );
        assert_eq!(
            statuses(Series::ScalerBackends),
            [
                "backend=container,bound=true",
                "backend=container,bound=false",
                "backend=bare-metal,bound=true",
                "backend=bare-metal,bound=false",
                "backend=firecracker,bound=true",
                "backend=firecracker,bound=false"
            ]
        );
        assert_eq!(
            statuses(Series::ReloadResults),
            ["result=attempted", "result=success", "result=failed"]
        );
    }
}
