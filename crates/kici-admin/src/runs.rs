//! `kici-admin runs list|show|jobs|cancel`: execution runs, their jobs and steps, read from
//! `/api/v1/admin/runs…` and printed by `kici_client::runs::operator`.

use clap::{Args, Subcommand};
use kici_client::client::ApiClient;
use kici_client::runs::operator::{render_jobs, render_list, render_show};
use kici_client::runs::parse_status;
use kici_engine::api::answers::JobsAnswer;
use kici_engine::api::run_actions::{CancelRequest, CancelStatus, Cancelled};
use kici_engine::api::{RunDetail, RunList};
use kici_engine::status::RunStatus;

use crate::since::parse_since;

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

fn parse_since_arg(text: &str) -> Result<i64, String> {
    parse_since(text).map_err(|err| err.to_string())
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

async fn cancel(client: &ApiClient, args: CancelArgs) -> anyhow::Result<()> {
    let answer: Cancelled = client
        .post(
            &["api", "v1", "admin", "runs", &args.run_id, "cancel"],
            &CancelRequest { force: args.force },
        )
        .await?;
    match answer.status {
        CancelStatus::Cancelling => println!(
            "Run {} cancelling: {} job(s) told to stop; see `kici-admin runs show {}`",
            args.run_id, answer.cancelled_jobs, args.run_id
        ),
        CancelStatus::Cancelled => println!("Run {} cancelled ({} job(s))", args.run_id, answer.cancelled_jobs),
    }
    Ok(())
}
