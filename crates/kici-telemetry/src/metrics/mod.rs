//! Prometheus metrics (`spec/operator.md` §4.4): one registry per process (the `metrics`
//! facade with `metrics-exporter-prometheus` as its recorder, installed once), rendered in the
//! Prometheus text format by [`render`] for a `GET /metrics` route that requires a bearer token
//! ([`http`]).
//!
//! A service calls [`install`] with its [`MetricSet`] at start: every metric of the set gets
//! its HELP text and its series at zero, so `/metrics` lists them all at once. It then records
//! through the typed helpers of [`orchestrator`] and [`agent`] (names in [`names`]); there is
//! no need to depend on the `metrics` crate. Histograms have fixed buckets in seconds
//! ([`SECONDS_BUCKETS`]).
//!
//! Not here: the routes themselves (each service mounts [`http::router`] or calls
//! [`http::metrics_response`]), and deciding *when* something happened (callers).

pub mod agent;
pub mod http;
pub mod names;
pub mod orchestrator;
pub mod promtool;

use std::sync::{Once, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use names::{Kind, MetricDef};

/// Histogram buckets (upper bounds, seconds): from 5 ms steps to 2 h runs.
pub const SECONDS_BUCKETS: [f64; 19] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    7200.0,
];

/// Which service's metrics to register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricSet {
    /// `kici_orch_*`.
    Orchestrator,
    /// `kici_agent_*`.
    Agent,
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static ORCHESTRATOR_REGISTERED: Once = Once::new();
static AGENT_REGISTERED: Once = Once::new();

/// The process's registry, installed as the global `metrics` recorder on first use.
fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&SECONDS_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            // Only this function installs a recorder, once; another one means a foreign crate
            // did. Metrics recorded through the facade then go there, and /metrics shows zeros.
            eprintln!("kici-telemetry: another metrics recorder is installed; /metrics will not see recorded values");
        }
        handle
    })
}

/// Installs the registry (once per process) and registers `set`: HELP texts and every initial
/// series at zero. Safe to call again, for the same or the other set (tests do).
pub fn install(set: MetricSet) {
    handle();
    let (once, defs) = match set {
        MetricSet::Orchestrator => (&ORCHESTRATOR_REGISTERED, names::ORCHESTRATOR),
        MetricSet::Agent => (&AGENT_REGISTERED, names::AGENT),
    };
    once.call_once(|| defs.iter().for_each(register));
}

fn register(def: &MetricDef) {
    for labels in names::initial_label_sets(def.series) {
        let labels: Vec<metrics::Label> = labels.into_iter().map(|(k, v)| metrics::Label::new(k, v)).collect();
        // Adding zero creates the series without changing a value recorded earlier.
        match def.kind {
            Kind::Counter => metrics::counter!(def.name, labels).increment(0),
            Kind::Gauge => metrics::gauge!(def.name, labels).increment(0.0),
            Kind::Histogram => {
                // Registering is enough: the exporter renders empty buckets.
                let _histogram = metrics::histogram!(def.name, labels);
            }
        }
    }
    match def.kind {
        Kind::Counter => metrics::describe_counter!(def.name, def.help),
        Kind::Gauge => metrics::describe_gauge!(def.name, def.help),
        Kind::Histogram => metrics::describe_histogram!(def.name, def.help),
    }
}

/// The registry in the Prometheus text format (version 0.0.4). Call [`install`] first, or
/// only what was recorded so far is listed.
pub fn render() -> String {
    let handle = handle();
    // Without an HTTP listener nothing else runs the upkeep (histogram buffers, idle metrics).
    handle.run_upkeep();
    handle.render()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kici_engine::status::{JobStatus, RunStatus, StepStatus};

    use super::*;

    /// The value of the series `series` (`name{labels}` exactly as rendered) in `text`.
    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no `{series}` in\n{text}"))
    }

    #[test]
    fn every_metric_is_listed_with_help_and_type_and_passes_promtool() {
        install(MetricSet::Orchestrator);
        install(MetricSet::Agent);
        install(MetricSet::Agent);
        orchestrator::execution_finished(RunStatus::Failed, Some(Duration::from_millis(1500)));
        agent::step_finished(StepStatus::Success, Some(Duration::from_millis(20)));
        agent::job_finished(JobStatus::Success);
        let text = render();
        for def in names::ORCHESTRATOR.iter().chain(names::AGENT) {
            assert!(
                text.contains(&format!("# HELP {} {}\n", def.name, def.help)),
                "{}\n{text}",
                def.name
            );
            let kind = match def.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            assert!(
                text.contains(&format!("# TYPE {} {kind}\n", def.name)),
                "{}\n{text}",
                def.name
            );
        }
        // Histograms are histograms, with the buckets, even when empty.
        assert!(value(&text, "kici_orch_execution_duration_seconds_count") >= 1.0);
        assert!(
            text.contains("kici_orch_execution_duration_seconds_bucket{le=\"7200\"}"),
            "{text}"
        );
        assert!(
            text.contains("kici_orch_stale_detection_duration_seconds_bucket{le=\"+Inf\"} 0"),
            "{text}"
        );
        assert!(value(&text, "kici_orch_executions_total{status=\"failed\"}") >= 1.0);
        assert!(value(&text, "kici_agent_jobs_total{status=\"success\"}") >= 1.0);
        assert_eq!(
            value(&text, "kici_orch_dispatch_queue_depth{status=\"recovering\"}"),
            0.0
        );
        assert_eq!(
            value(
                &text,
                "kici_orch_scaler_spawn_failures_total{backend=\"bare-metal\",bound=\"true\"}"
            ),
            0.0
        );
        assert!(!text.contains("# UNIT") && !text.contains("# EOF"), "{text}");
        match promtool::check(&text) {
            Ok(promtool::Checked::Passed) => {}
            Ok(promtool::Checked::Skipped(note)) => eprintln!("{note}"),
            Err(problem) => panic!("{problem}\n{text}"),
        }
    }
}
