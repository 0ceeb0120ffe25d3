//! What a local run produced, and how it is shown: the summary tree printed after the logs and
//! the `--json` document.

use std::fmt::Write as _;

use kici_engine::event::EventEnvelope;
use kici_engine::status::{JobStatus, RunStatus, StepStatus};
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub status: RunStatus,
    pub duration_ms: u64,
    /// The temporary checkout, when it was kept.
    pub checkout: Option<String>,
    pub event: EventEnvelope,
    pub workflows: Vec<WorkflowReport>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowReport {
    pub name: String,
    pub file: String,
    pub status: RunStatus,
    pub failure_reason: Option<String>,
    pub jobs: Vec<JobReport>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobReport {
    pub name: String,
    pub base_name: String,
    pub matrix: Option<Map<String, Value>>,
    pub status: JobStatus,
    pub duration_ms: Option<u64>,
    pub error_message: Option<String>,
    pub steps: Vec<StepReport>,
    /// What the job's steps returned (`ctx.needs.<job>.result` downstream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    pub index: i64,
    pub name: String,
    pub step_type: String,
    pub status: StepStatus,
    pub duration_ms: Option<u64>,
    pub exit_code: Option<i32>,
    pub error_message: Option<String>,
    pub attempts: Option<u32>,
}

impl JobReport {
    /// A job that never ran (skipped by `needs`, or failed before any step).
    pub fn not_run(base_name: &str, status: JobStatus, error_message: Option<String>) -> JobReport {
        JobReport {
            name: base_name.to_string(),
            base_name: base_name.to_string(),
            matrix: None,
            status,
            duration_ms: None,
            error_message,
            steps: Vec::new(),
            outputs: None,
        }
    }
}

fn icon_run(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Success => "✓",
        RunStatus::Failed => "✗",
        RunStatus::Cancelled => "⊘",
        _ => "•",
    }
}

fn icon_job(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Success => "✓",
        JobStatus::Failed | JobStatus::TimedOutStale | JobStatus::DriftDropped => "✗",
        JobStatus::Cancelled => "⊘",
        JobStatus::Skipped => "○",
        _ => "•",
    }
}

fn icon_step(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Success => "✓",
        StepStatus::Failed => "✗",
        StepStatus::Cancelled => "⊘",
        StepStatus::Skipped => "○",
        _ => "•",
    }
}

/// Seconds with two decimals: `0.12s`.
pub fn seconds(ms: u64) -> String {
    format!("{:.2}s", ms as f64 / 1000.0)
}

/// The summary tree:
///
/// ```text
/// ✗ ci  failed  1.02s
///   Failed jobs: test
///   ✓ build  success  0.20s
///       ✓ compile  success  0.10s  exit=0
///   ✗ test  failed  0.30s
///       ✗ run  failed  0.20s  exit=3
///         Command failed with exit code 3: exit 3
/// ```
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    for workflow in &report.workflows {
        let duration = workflow.jobs.iter().filter_map(|j| j.duration_ms).max();
        let _ = write!(
            out,
            "{} {}  {}",
            icon_run(workflow.status),
            workflow.name,
            workflow.status
        );
        if let Some(ms) = duration {
            let _ = write!(out, "  {}", seconds(ms));
        }
        out.push('\n');
        if let Some(reason) = &workflow.failure_reason {
            let _ = writeln!(out, "  {reason}");
        }
        for job in &workflow.jobs {
            let _ = write!(out, "  {} {}  {}", icon_job(job.status), job.name, job.status);
            if let Some(ms) = job.duration_ms {
                let _ = write!(out, "  {}", seconds(ms));
            }
            out.push('\n');
            if let Some(error) = &job.error_message {
                let _ = writeln!(out, "      {error}");
            }
            for step in &job.steps {
                let _ = write!(out, "      {} {}  {}", icon_step(step.status), step.name, step.status);
                if let Some(ms) = step.duration_ms {
                    let _ = write!(out, "  {}", seconds(ms));
                }
                if let Some(code) = step.exit_code {
                    let _ = write!(out, "  exit={code}");
                }
                if step.attempts.is_some_and(|a| a > 1) {
                    let _ = write!(out, "  attempts={}", step.attempts.unwrap_or(1));
                }
                out.push('\n');
                if let Some(error) = step
                    .error_message
                    .as_ref()
                    .filter(|_| step.status == StepStatus::Failed)
                {
                    let _ = writeln!(out, "        {error}");
                }
            }
        }
    }
    out
}
