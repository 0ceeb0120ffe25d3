//! `kici-admin explain <runId> [--json]`: the troubleshooting page's ladder for one run in one
//! report. The run's `failureReason` and init-failure category; for each failed job its
//! `errorMessage`, the failed step with its exit code and the last [`LOG_TAIL_LINES`] lines of
//! its log (the prepare log, step `-1`, when the job failed before any step); the provisioning
//! output when the agent's output was captured in the error; the drift verdict when a job failed
//! with `Lock file is out of date`; and next steps for what was found.
//!
//! It reads only the API (`/api/v1/admin/runs/:id/detail`, step logs, `/health`, agents) and
//! changes nothing. [`gather`] fetches, [`render`] is pure.

use std::fmt::Write as _;

use clap::Args;
use kici_client::client::ApiClient;
use kici_client::format;
use kici_engine::api::admin::AgentList;
use kici_engine::api::answers::LogLinesAnswer;
use kici_engine::api::{Job, LogLine, Run, RunDetail, Step};
use kici_engine::failure::{InitFailure, InitFailureCategory, NO_AGENTS_AVAILABLE, QUEUE_TIMEOUT_EXPIRED};
use kici_engine::hash::DRIFT_PREFIX;
use kici_engine::status::{JobStatus, RunStatus, StepStatus};
use serde::Serialize;

use crate::drift::{self, DriftReport};

/// How many of the last log lines the report shows.
pub const LOG_TAIL_LINES: usize = 50;
/// The step index of a job's prepare log (clone, drift check, module import).
const PREPARE_STEP_INDEX: i64 = -1;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The run's id (see `kici-admin runs list --status failed`)
    run_id: String,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplainReport {
    pub run: Run,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_failure_title: Option<&'static str>,
    pub failed_jobs: Vec<FailedJob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftSection>,
    pub next_steps: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedJob {
    pub job_id: String,
    pub job_name: String,
    pub status: JobStatus,
    pub agent_id: Option<String>,
    pub error_message: Option<String>,
    pub init_failure: Option<InitFailure>,
    /// The whole `errorMessage` when it spans several lines (captured agent output).
    pub provisioning_output: Option<String>,
    pub failed_step: Option<FailedStep>,
    pub log: LogTail,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedStep {
    pub step_index: i64,
    pub step_name: String,
    pub exit_code: Option<i32>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogTail {
    /// `-1` for the prepare log.
    pub step_index: i64,
    pub total_lines: usize,
    /// The last [`LOG_TAIL_LINES`] lines.
    pub lines: Vec<String>,
    /// Why the log could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftSection {
    /// The jobs whose error is the drift error.
    pub jobs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<DriftReport>,
    /// Why the SDK builds could not be compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub verdict: String,
}

pub async fn run(client: &ApiClient, args: ExplainArgs) -> anyhow::Result<()> {
    let detail: RunDetail = client
        .get(&["api", "v1", "admin", "runs", &args.run_id, "detail"], &[])
        .await?;
    let report = gather(client, detail).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// Fetches what the report needs beyond the run detail. Every fetch is best-effort: a log or a
/// build info that cannot be read is said in the report, not fatal.
pub async fn gather(client: &ApiClient, detail: RunDetail) -> ExplainReport {
    let RunDetail { run, jobs } = detail;
    let mut failed_jobs = Vec::new();
    for job in jobs.iter().filter(|job| job.status.is_failure()) {
        let failed_step = job
            .steps
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|step| step.status == StepStatus::Failed)
            .map(|step: &Step| FailedStep {
                step_index: step.step_index,
                step_name: step.step_name.clone(),
                exit_code: step.exit_code,
            });
        let step_index = failed_step.as_ref().map_or(PREPARE_STEP_INDEX, |step| step.step_index);
        let log = log_tail(client, &run.run_id, &job.job_id, step_index).await;
        failed_jobs.push(failed_job(job, failed_step, log));
    }
    let drift = drift_section(client, &failed_jobs).await;
    let mut report = ExplainReport {
        init_failure_title: run.init_failure.as_ref().map(|failure| failure.category.title()),
        run,
        failed_jobs,
        drift,
        next_steps: Vec::new(),
    };
    report.next_steps = next_steps(&report);
    report
}

fn failed_job(job: &Job, failed_step: Option<FailedStep>, log: LogTail) -> FailedJob {
    FailedJob {
        job_id: job.job_id.to_string(),
        job_name: job.job_name.clone(),
        status: job.status,
        agent_id: job.agent_id.clone().map(Into::into),
        error_message: job.error_message.clone(),
        init_failure: job.init_failure.clone(),
        provisioning_output: job
            .error_message
            .clone()
            .filter(|message| message.trim_end().contains('\n')),
        failed_step,
        log,
    }
}

async fn log_tail(client: &ApiClient, run_id: &str, job_id: &str, step_index: i64) -> LogTail {
    let index = step_index.to_string();
    let answer: Result<LogLinesAnswer, _> = client
        .get(
            &["api", "v1", "runs", run_id, "jobs", job_id, "steps", &index, "logs"],
            &[],
        )
        .await;
    match answer {
        Ok(answer) => tail(step_index, &answer.lines),
        Err(err) => LogTail {
            step_index,
            total_lines: 0,
            lines: Vec::new(),
            error: Some(err.to_string()),
        },
    }
}

/// The last [`LOG_TAIL_LINES`] of `lines`.
pub fn tail(step_index: i64, lines: &[LogLine]) -> LogTail {
    let skip = lines.len().saturating_sub(LOG_TAIL_LINES);
    LogTail {
        step_index,
        total_lines: lines.len(),
        lines: lines[skip..]
            .iter()
            .map(|line| line.line.trim_end_matches(['\r', '\n']).to_string())
            .collect(),
        error: None,
    }
}

async fn drift_section(client: &ApiClient, failed_jobs: &[FailedJob]) -> Option<DriftSection> {
    let drifted: Vec<&FailedJob> = failed_jobs
        .iter()
        .filter(|job| {
            job.error_message
                .as_deref()
                .is_some_and(|message| message.starts_with(DRIFT_PREFIX))
        })
        .collect();
    if drifted.is_empty() {
        return None;
    }
    let jobs: Vec<String> = drifted.iter().map(|job| job.job_name.clone()).collect();
    let job_agents: Vec<&str> = drifted.iter().filter_map(|job| job.agent_id.as_deref()).collect();
    let compared = async {
        let mut sides = vec![drift::orchestrator_side(client).await?];
        let agents: AgentList = client.get(&["api", "v1", "admin", "agents"], &[]).await?;
        sides.extend(drift::agent_sides(&agents, &job_agents));
        anyhow::Ok(drift::compare(sides))
    }
    .await;
    Some(match compared {
        Ok(comparison) => DriftSection {
            verdict: drift_verdict(&comparison),
            jobs,
            comparison: Some(comparison),
            error: None,
        },
        Err(err) => DriftSection {
            verdict: "The SDK builds could not be compared; run `kici-admin diagnose drift --lock .kici/kici.lock.json` once the orchestrator answers.".to_string(),
            jobs,
            comparison: None,
            error: Some(format!("{err:#}")),
        },
    })
}

/// Which side drifted. The agent computed a content hash the lock file does not record: when
/// the orchestrator and the agents agree on the SDK build, the lock file is the odd one out.
pub fn drift_verdict(comparison: &DriftReport) -> String {
    if comparison.drift {
        return comparison.verdicts.join("\n");
    }
    let main = match &comparison.reference {
        Some(reference) => format!(
            "The orchestrator and the agents agree on @kici-dev/sdk {} ({}), so the lock file is the side that drifted: run 'kici compile' with a kici of the agents' build and commit the updated lock file.",
            reference.version,
            format::prefix(&reference.bundle_hash, 12)
        ),
        None => "No side reports an @kici-dev/sdk bundle hash; compare the hash in the error with the lock file's `sdk.bundleHash` by hand.".to_string(),
    };
    std::iter::once(main)
        .chain(drift::unknown_lines(comparison))
        .collect::<Vec<_>>()
        .join("\n")
}

fn next_steps(report: &ExplainReport) -> Vec<String> {
    let run = &report.run;
    let mut steps: Vec<String> = Vec::new();
    let mut add = |step: String| {
        if !steps.contains(&step) {
            steps.push(step);
        }
    };
    if let Some(failure) = &run.init_failure {
        add(init_failure_step(failure.category, &run.run_id));
    }
    for job in &report.failed_jobs {
        if let Some(failure) = &job.init_failure {
            add(init_failure_step(failure.category, &run.run_id));
        }
        let message = job.error_message.as_deref().unwrap_or_default();
        if message.starts_with(DRIFT_PREFIX) {
            continue;
        }
        if job.failed_step.is_some() {
            add(format!(
                "Read the whole log of the failed step: kici runs logs {} --job '{}'",
                run.run_id, job.job_name
            ));
        } else if job.log.total_lines > 0 {
            add(format!(
                "Read the whole prepare log: kici runs logs {} --job '{}'",
                run.run_id, job.job_name
            ));
        }
        if job.provisioning_output.is_some() {
            add(
                "Check the scaler:<name> rows, which carry the captured provisioning error: kici-admin diagnose"
                    .to_string(),
            );
            add(format!(
                "Read the full agent output and the scaler's launch sequence: grep {} ${{KICI_LOG_DIR}}/orchestrator-*.log",
                job.job_id
            ));
        }
        if message == QUEUE_TIMEOUT_EXPIRED {
            add("No agent took the job: check that an agent with the job's labels is connected (kici-admin agent list) and run kici-admin diagnose".to_string());
        }
        if job.status == JobStatus::TimedOutStale {
            add(format!(
                "The job stopped heartbeating: check its agent (kici-admin agent list) and the agent's logs (${{KICI_LOG_DIR}}/agent-*.log) around {}",
                format::timestamp(run.completed_at)
            ));
        }
    }
    if run.failure_reason.as_deref() == Some(NO_AGENTS_AVAILABLE) {
        add("No agent took the jobs: check that an agent with the jobs' labels is connected (kici-admin agent list) and run kici-admin diagnose".to_string());
    }
    if let Some(drift) = &report.drift {
        let lock_drifted = drift.comparison.as_ref().is_some_and(|comparison| !comparison.drift);
        if lock_drifted {
            add("Recompile the lock file: kici compile, then commit .kici/kici.lock.json".to_string());
        } else if drift.comparison.is_some() {
            add("Upgrade the drifted side named above, then re-run the workflow".to_string());
        }
        add("Compare with your lock file: kici-admin diagnose drift --lock .kici/kici.lock.json".to_string());
    }
    add("If this does not explain it, attach a debug bundle when escalating: kici-admin debug-bundle".to_string());
    steps
}

fn init_failure_step(category: InitFailureCategory, run_id: &str) -> String {
    match category {
        InitFailureCategory::LockResolution => {
            "Fix the lock file at that commit: kici compile, then commit .kici/kici.lock.json".to_string()
        }
        InitFailureCategory::NoAgent => {
            "No agent matches the job's labels: kici-admin agent list, then kici-admin diagnose".to_string()
        }
        InitFailureCategory::MatrixExpansion | InitFailureCategory::DynamicEval => {
            "Fix the workflow's matrix or dynamic job function and try it locally: kici run local".to_string()
        }
        InitFailureCategory::SecretResolution => {
            "Bind the secret to the job's environment: kici-admin secret list, kici-admin environment show <name>"
                .to_string()
        }
        InitFailureCategory::Checkout => {
            "The agent could not fetch the job's commit: the hint above says why; check the source's path (kici-admin source list) and that the agent reaches the orchestrator's URL"
                .to_string()
        }
        InitFailureCategory::EnvironmentRules => {
            "Check the environment's rules and decisions: kici-admin environment show <name>, kici-admin audit --action hold.reject"
                .to_string()
        }
        _ => format!("See the whole run: kici-admin runs show {run_id}"),
    }
}

/// The text report.
pub fn render(report: &ExplainReport) -> String {
    let run = &report.run;
    if run.status == RunStatus::Success {
        return format!("Run {} succeeded; nothing to explain.\n", run.run_id);
    }
    let mut out = String::new();
    for (label, value) in [
        ("Run:", run.run_id.to_string()),
        ("Workflow:", run.workflow_name.clone()),
        ("Status:", run.status.to_string()),
        ("Repo:", format::or_none(Some(&run.repo))),
        ("Ref:", format::or_none(Some(&run.git_ref))),
        ("SHA:", format::or_none(Some(&run.sha))),
    ] {
        let _ = writeln!(out, "{label:<10}{value}");
    }
    out.push('\n');
    push_labelled(
        &mut out,
        "",
        "Failure reason: ",
        &format::or_none(run.failure_reason.as_deref()),
    );
    if let Some(failure) = &run.init_failure {
        push_init_failure(&mut out, "", failure, run.failure_reason.as_deref());
    }
    if report.failed_jobs.is_empty() {
        out.push_str("\nNo job failed.\n");
    }
    for job in &report.failed_jobs {
        render_job(&mut out, job);
    }
    if let Some(drift) = &report.drift {
        let _ = writeln!(
            out,
            "\nSDK bundle drift: {} failed with \"Lock file is out of date\".",
            drift
                .jobs
                .iter()
                .map(|job| format!("job {job}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(comparison) = &drift.comparison {
            out.push_str(&drift::render_table(comparison, "  "));
        }
        if let Some(error) = &drift.error {
            let _ = writeln!(out, "  Cannot compare the SDK builds: {error}");
        }
        for line in drift.verdict.lines() {
            let _ = writeln!(out, "  Verdict: {line}");
        }
    }
    out.push_str("\nNext steps:\n");
    for step in &report.next_steps {
        let _ = writeln!(out, "  - {step}");
    }
    out
}

fn render_job(out: &mut String, job: &FailedJob) {
    let agent = job
        .agent_id
        .as_deref()
        .map_or_else(String::new, |agent| format!(", agent {agent}"));
    let _ = writeln!(
        out,
        "\nFailed job: {} ({}, {}{agent})",
        job.job_name, job.job_id, job.status
    );
    if let Some(output) = &job.provisioning_output {
        out.push_str("  Provisioning output:\n");
        for line in output.trim_end().lines() {
            push_line(out, "    ", line);
        }
    } else {
        push_labelled(out, "  ", "Error: ", &format::or_none(job.error_message.as_deref()));
    }
    if let Some(failure) = &job.init_failure {
        push_init_failure(out, "  ", failure, job.error_message.as_deref());
    }
    let what = match &job.failed_step {
        Some(step) => {
            let exit = step
                .exit_code
                .map_or_else(|| "no exit code".to_string(), |code| format!("exit code {code}"));
            let _ = writeln!(out, "  Failed step: #{} {}, {exit}", step.step_index, step.step_name);
            format!("Log of step #{} {}", step.step_index, step.step_name)
        }
        None => {
            out.push_str("  Failed before any step ran.\n");
            "Prepare log".to_string()
        }
    };
    let log = &job.log;
    if let Some(error) = &log.error {
        let _ = writeln!(out, "  {what}: unavailable ({error})");
    } else if log.total_lines == 0 {
        let _ = writeln!(out, "  {what}: no lines");
    } else {
        let count = if log.total_lines > log.lines.len() {
            format!("last {} of {} lines", log.lines.len(), log.total_lines)
        } else {
            match log.total_lines {
                1 => "its one line".to_string(),
                all => format!("all {all} lines"),
            }
        };
        let _ = writeln!(out, "  {what} ({count}):");
        for line in &log.lines {
            push_line(out, "    ", line);
        }
    }
}

fn push_init_failure(out: &mut String, indent: &str, failure: &InitFailure, already_shown: Option<&str>) {
    let _ = writeln!(
        out,
        "{indent}Failure category: {} ({})",
        failure.category.as_str(),
        failure.category.title()
    );
    if already_shown != Some(failure.message.as_str()) {
        push_labelled(out, indent, "Failure message: ", &failure.message);
    }
}

/// `label` and the first line of `text`; further lines indented under the label's indent.
fn push_labelled(out: &mut String, indent: &str, label: &str, text: &str) {
    let mut lines = text.trim_end().lines();
    push_line(out, &format!("{indent}{label}"), lines.next().unwrap_or(""));
    for line in lines {
        push_line(out, &format!("{indent}  "), line);
    }
}

fn push_line(out: &mut String, prefix: &str, line: &str) {
    let text = format!("{prefix}{line}");
    out.push_str(text.trim_end());
    out.push('\n');
}

#[cfg(test)]
mod tests;
