//! The texts of `kici-admin runs list|show|jobs`: the runs table with its footer, a run's fields
//! with its jobs and steps, and a run's jobs. They print the run's `failureReason` and every
//! job's `errorMessage` in full, because that is where provisioning errors surface.

use std::fmt::Write as _;

use kici_engine::api::{Job, Run, RunDetail, RunList};

use crate::format::{self, NONE};
use crate::table;

/// The `runs list` table and its footer.
pub fn render_list(list: &RunList, offset: u32, limit: u32) -> String {
    if list.runs.is_empty() {
        return "No execution runs found.\n".to_string();
    }
    let rows: Vec<Vec<String>> = list
        .runs
        .iter()
        .map(|run| {
            vec![
                run.run_id.to_string(),
                run.workflow_name.clone(),
                run.status.to_string(),
                format::or_none(Some(&run.repo)),
                format::or_none(Some(&run.git_ref)),
                format::prefix(&run.sha, 7),
                format::timestamp(run.started_at),
                format::duration(run.duration_ms),
            ]
        })
        .collect();
    let mut out = table::render(
        "",
        &[
            "RUN ID", "WORKFLOW", "STATUS", "REPO", "REF", "SHA", "STARTED", "DURATION",
        ],
        &rows,
    );
    let _ = writeln!(
        out,
        "\nShowing {} of {} (offset {offset}, limit {limit})",
        list.runs.len(),
        list.total
    );
    out
}

/// The `runs show` text: the run's fields, the jobs table, then each job's steps.
pub fn render_show(detail: &RunDetail) -> String {
    let run = &detail.run;
    let mut out = format!("Run: {}\n", run.run_id);
    for (label, value) in run_fields(run) {
        let _ = writeln!(out, "{label:<13}{value}");
    }
    if let Some(failure) = &run.init_failure {
        let _ = writeln!(
            out,
            "Failure category: {} ({})",
            failure.category.as_str(),
            failure.category.title()
        );
    }
    out.push('\n');
    if detail.jobs.is_empty() {
        out.push_str("No jobs for this run.\n");
        return out;
    }
    let rows: Vec<Vec<String>> = detail
        .jobs
        .iter()
        .map(|job| {
            vec![
                job.job_id.to_string(),
                job.job_name.clone(),
                match &job.reused_from {
                    Some(from) => format!("{} (reused from run {})", job.status, from.run_id),
                    None => job.status.to_string(),
                },
                format::or_none(job.agent_id.as_deref()),
                format::duration(job.duration_ms),
                job.steps
                    .as_ref()
                    .map_or_else(|| NONE.to_string(), |steps| steps.len().to_string()),
                format::or_none(job.error_message.as_deref()),
            ]
        })
        .collect();
    out.push_str(&table::render(
        "",
        &["JOB ID", "NAME", "STATUS", "AGENT", "DURATION", "STEPS", "ERROR"],
        &rows,
    ));
    out.push_str(&render_steps(&detail.jobs));
    out
}

fn run_fields(run: &Run) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("Workflow:", run.workflow_name.clone()),
        ("Status:", run.status.to_string()),
        ("Repo:", format::or_none(Some(&run.repo))),
        ("Ref:", format::or_none(Some(&run.git_ref))),
        ("SHA:", format::or_none(Some(&run.sha))),
        ("Trigger:", format::or_none(Some(&run.trigger))),
        ("Provider:", format::or_none(Some(&run.provider))),
        ("Started:", format::timestamp(run.started_at)),
        ("Completed:", format::timestamp(run.completed_at)),
        ("Duration:", format::duration(run.duration_ms)),
    ];
    if let Some(trust) = &run.trust {
        fields.push(("Trust tier:", trust.summary()));
        if let Some(hold) = &trust.hold {
            fields.push(("Held:", hold.clone()));
        }
    }
    if let Some(reason) = &run.failure_reason {
        fields.push(("Failure:", reason.clone()));
    }
    fields
}

/// `Steps for <name> (<jobId>):` and a step table for every job that has steps.
fn render_steps(jobs: &[Job]) -> String {
    let mut out = String::new();
    for job in jobs {
        let Some(steps) = job.steps.as_ref().filter(|steps| !steps.is_empty()) else {
            continue;
        };
        let _ = writeln!(out, "\nSteps for {} ({}):", job.job_name, job.job_id);
        let rows: Vec<Vec<String>> = steps
            .iter()
            .map(|step| {
                vec![
                    step.step_index.to_string(),
                    step.step_name.clone(),
                    step.status.to_string(),
                    step.exit_code.map_or_else(|| NONE.to_string(), |code| code.to_string()),
                    format::duration(step.duration_ms),
                    format::or_none(Some(&step.step_type)),
                ]
            })
            .collect();
        out.push_str(&table::render(
            "  ",
            &["#", "NAME", "STATUS", "EXIT", "DURATION", "TYPE"],
            &rows,
        ));
        for step in steps.iter().filter(|step| !step.secrets_accessed.is_empty()) {
            let _ = writeln!(
                out,
                "  Secrets read by {}: {}",
                step.step_name,
                step.secrets_accessed.join(", ")
            );
        }
    }
    out
}

/// The `runs jobs` table (and the step tables when steps were asked for).
pub fn render_jobs(jobs: &[Job]) -> String {
    if jobs.is_empty() {
        return "No jobs for this run.\n".to_string();
    }
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|job| {
            vec![
                job.job_id.to_string(),
                job.job_name.clone(),
                job.status.to_string(),
                format::or_none(job.agent_id.as_deref()),
                format::duration(job.duration_ms),
                format::timestamp(job.started_at),
                format::or_none(job.error_message.as_deref()),
            ]
        })
        .collect();
    let mut out = table::render(
        "",
        &["JOB ID", "NAME", "STATUS", "AGENT", "DURATION", "STARTED", "ERROR"],
        &rows,
    );
    out.push_str(&render_steps(jobs));
    out
}

#[cfg(test)]
mod tests;
