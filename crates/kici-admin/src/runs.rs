//! `kici-admin runs list|show|jobs`: execution runs, their jobs and steps, read from
//! `/api/v1/admin/runs…`. The text views print the run's `failureReason` and every job's
//! `errorMessage` in full, because that is where provisioning errors surface.

use std::fmt::Write as _;

use clap::{Args, Subcommand};
use kici_engine::api::{Job, Run, RunDetail, RunList};
use kici_engine::status::RunStatus;
use serde::Deserialize;

use crate::client::ApiClient;
use crate::format::{self, NONE};
use crate::since::parse_since;
use crate::table;

/// The server's cap on `limit`.
const MAX_LIMIT: u32 = 100;

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List execution runs, newest first
    List(ListArgs),
    /// Show one run with its jobs and steps
    Show(ShowArgs),
    /// List the jobs of a run
    Jobs(JobsArgs),
    /// Cancel a run: running jobs are told to stop (their onCancel/cleanup hooks run unless
    /// --force), waiting ones are cancelled at once
    Cancel(CancelArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only runs with these statuses (comma-separated: pending,running,cancelling,held,success,failed,cancelled)
    #[arg(long, value_delimiter = ',', value_parser = parse_status)]
    status: Vec<RunStatus>,
    /// Only runs of this workflow
    #[arg(long, value_name = "NAME")]
    workflow_name: Option<String>,
    /// Only runs of this repository (`owner/repo`, or a local source's name)
    #[arg(long)]
    repo: Option<String>,
    /// Only runs created at or after this time (ISO date or date-time, or epoch milliseconds)
    #[arg(long, value_name = "TIME", value_parser = parse_since_arg)]
    since: Option<i64>,
    /// Print only the number of matching runs
    #[arg(long)]
    count: bool,
    /// How many runs to show (at most 100)
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_LIMIT)))]
    limit: u32,
    /// How many runs to skip
    #[arg(long, default_value_t = 0)]
    offset: u32,
    /// Print the API's JSON (`{runs, total}`)
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    run_id: String,
    /// Print the API's JSON (`{run, jobs}` with steps)
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    run_id: String,
    /// Also list each job's steps
    #[arg(long)]
    include_steps: bool,
    /// Print the jobs as a JSON array (with errorMessage and needs)
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    run_id: String,
    /// Kill the jobs' processes at once and skip their hooks
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CancelAnswer {
    status: String,
    cancelled_jobs: u64,
}

fn parse_status(text: &str) -> Result<RunStatus, String> {
    text.trim().parse::<RunStatus>().map_err(|err| {
        let names: Vec<&str> = RunStatus::ALL.iter().map(|status| status.as_str()).collect();
        format!("{err} (expected one of {})", names.join(", "))
    })
}

fn parse_since_arg(text: &str) -> Result<i64, String> {
    parse_since(text).map_err(|err| err.to_string())
}

#[derive(Debug, Deserialize)]
struct JobsAnswer {
    jobs: Vec<Job>,
}

pub async fn run(client: &ApiClient, command: RunsCommand) -> anyhow::Result<()> {
    match command {
        RunsCommand::List(args) => list(client, args).await,
        RunsCommand::Show(args) => show(client, args).await,
        RunsCommand::Jobs(args) => jobs(client, args).await,
        RunsCommand::Cancel(args) => cancel(client, args).await,
    }
}

async fn list(client: &ApiClient, args: ListArgs) -> anyhow::Result<()> {
    let mut query: Vec<(&str, String)> = Vec::new();
    if !args.status.is_empty() {
        let statuses: Vec<&str> = args.status.iter().map(|status| status.as_str()).collect();
        query.push(("status", statuses.join(",")));
    }
    if let Some(workflow) = &args.workflow_name {
        query.push(("workflow", workflow.clone()));
    }
    if let Some(repo) = &args.repo {
        query.push(("repo", repo.clone()));
    }
    if let Some(since) = args.since {
        query.push(("since", since.to_string()));
    }
    // `--count` needs only the total.
    let limit = if args.count { 1 } else { args.limit };
    query.push(("limit", limit.to_string()));
    query.push(("offset", args.offset.to_string()));
    let list: RunList = client.get(&["api", "v1", "admin", "runs"], &query).await?;
    if args.count {
        println!("{}", list.total);
    } else if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        print!("{}", render_list(&list, args.offset, args.limit));
    }
    Ok(())
}

async fn show(client: &ApiClient, args: ShowArgs) -> anyhow::Result<()> {
    let detail: RunDetail = client
        .get(&["api", "v1", "admin", "runs", &args.run_id, "detail"], &[])
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&detail)?);
    } else {
        print!("{}", render_show(&detail));
    }
    Ok(())
}

async fn jobs(client: &ApiClient, args: JobsArgs) -> anyhow::Result<()> {
    let query = if args.include_steps {
        vec![("includeSteps", "true".to_string())]
    } else {
        Vec::new()
    };
    let answer: JobsAnswer = client
        .get(&["api", "v1", "admin", "runs", &args.run_id, "jobs"], &query)
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer.jobs)?);
    } else {
        print!("{}", render_jobs(&answer.jobs));
    }
    Ok(())
}

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
                run.run_id.clone(),
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
                job.job_id.clone(),
                job.job_name.clone(),
                job.status.to_string(),
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
                job.job_id.clone(),
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

async fn cancel(client: &ApiClient, args: CancelArgs) -> anyhow::Result<()> {
    let answer: CancelAnswer = client
        .post(
            &["api", "v1", "admin", "runs", &args.run_id, "cancel"],
            &serde_json::json!({ "force": args.force }),
        )
        .await?;
    match answer.status.as_str() {
        "cancelling" => println!(
            "Run {} cancelling: {} job(s) told to stop; see `kici-admin runs show {}`",
            args.run_id, answer.cancelled_jobs, args.run_id
        ),
        _ => println!("Run {} cancelled ({} job(s))", args.run_id, answer.cancelled_jobs),
    }
    Ok(())
}
