//! `kici runs list|show|logs|cancel|rerun`: the runs of a KiCI orchestrator, over its HTTP API
//! (`/api/v1/runs…`, `docs/api.md`). `show` prints the run's `failureReason` and every job's
//! `errorMessage`; `logs --follow` polls until the run is terminal.
//!
//! Exit codes: 0 when the command worked (whatever the run's status), 1 on any error.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use kici_client::client::ApiClient;
use kici_client::runs::author::{self, LogPrinter};
use kici_client::runs::parse_status;
use kici_engine::api::run_actions::{
    BranchCancelled, CancelBranchRequest, CancelRequest, CancelStatus, Cancelled, Rerun, RerunRequest,
};
use kici_engine::api::{RunDetail, RunList, RunLogs};
use kici_engine::status::RunStatus;

/// The server's cap on `limit`.
const MAX_LIMIT: u32 = 100;
/// How often `logs --follow` asks for new lines.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(subcommand)]
    command: RunsCommand,
}

/// Where the API is and how to authenticate.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The orchestrator's (or dashboard's) base URL
    #[arg(long, env = "KICI_URL", default_value = "http://127.0.0.1:4000", global = true)]
    url: String,
    /// An API token (default: $KICI_TOKEN, else $KICI_ADMIN_TOKEN)
    #[arg(long, env = "KICI_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
}

#[derive(Debug, Subcommand)]
enum RunsCommand {
    /// List recent runs, newest first
    List(ListArgs),
    /// Show a run: status, failure reason, jobs with their errors, and steps
    Show(ShowArgs),
    /// Print a run's step logs
    Logs(LogsArgs),
    /// Cancel a run, or every run of a branch still going: running jobs stop (their
    /// onCancel/cleanup hooks run unless --force)
    Cancel(CancelArgs),
    /// Start a finished run again: the same workflow, event and commit
    Rerun(RerunArgs),
}

#[derive(Debug, Args)]
struct CancelArgs {
    #[arg(required_unless_present = "branch", conflicts_with = "branch")]
    run_id: Option<String>,
    /// Cancel every run of this branch that is still going
    #[arg(long)]
    branch: Option<String>,
    /// Kill the jobs' processes at once and skip their hooks
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct RerunArgs {
    run_id: String,
    /// Run again only the jobs that did not succeed and the jobs that need them; the others keep their results
    #[arg(long)]
    failed: bool,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Only runs with these statuses (comma-separated: pending,running,cancelling,held,success,failed,cancelled)
    #[arg(long, value_delimiter = ',', value_parser = parse_status)]
    status: Vec<RunStatus>,
    /// Only runs of this workflow
    #[arg(long)]
    workflow: Option<String>,
    /// Only runs of this branch (filtered here, among the newest 100 runs that match the other filters)
    #[arg(long)]
    branch: Option<String>,
    /// How many runs to show (at most 100)
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_LIMIT)))]
    limit: u32,
    /// Print the API's JSON (`{runs, total}`)
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ShowArgs {
    run_id: String,
    /// Print the API's JSON (`{run, jobs}` with steps)
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct LogsArgs {
    run_id: String,
    /// Only this job (its name, or the base name of matrix children)
    #[arg(long)]
    job: Option<String>,
    /// Keep printing new lines every 2 s until the run is finished
    #[arg(short, long)]
    follow: bool,
    /// Print `{"<job>/<step>": [lines]}` (with --follow: once the run is finished)
    #[arg(long)]
    json: bool,
}

/// The API client `api` describes.
pub fn client(api: ApiArgs) -> anyhow::Result<ApiClient> {
    let token = api
        .token
        .or_else(|| std::env::var("KICI_ADMIN_TOKEN").ok())
        .filter(|token| !token.trim().is_empty());
    Ok(ApiClient::new(&api.url, token, "KICI_URL")?)
}

pub async fn run(args: RunsArgs) -> anyhow::Result<ExitCode> {
    let client = client(args.api)?;
    match args.command {
        RunsCommand::List(args) => list(&client, args).await?,
        RunsCommand::Show(args) => show(&client, args).await?,
        RunsCommand::Logs(args) => logs(&client, args).await?,
        RunsCommand::Cancel(args) => cancel(&client, args).await?,
        RunsCommand::Rerun(args) => rerun(&client, args).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(client: &ApiClient, args: ListArgs) -> anyhow::Result<()> {
    let mut query: Vec<(&str, String)> = Vec::new();
    if !args.status.is_empty() {
        let statuses: Vec<&str> = args.status.iter().map(|status| status.as_str()).collect();
        query.push(("status", statuses.join(",")));
    }
    if let Some(workflow) = &args.workflow {
        query.push(("workflow", workflow.clone()));
    }
    // The API filters by ref only through `repo`/`workflow`; a branch is matched here, in the
    // largest page the API gives.
    let limit = if args.branch.is_some() { MAX_LIMIT } else { args.limit };
    query.push(("limit", limit.to_string()));
    let mut list: RunList = client.get(&["api", "v1", "runs"], &query).await?;
    if let Some(branch) = &args.branch {
        list.runs.retain(|run| author::branch(&run.git_ref) == branch);
        list.runs.truncate(args.limit as usize);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        print!("{}", author::runs_table(&list));
    }
    Ok(())
}

async fn show(client: &ApiClient, args: ShowArgs) -> anyhow::Result<()> {
    let detail: RunDetail = client.get(&["api", "v1", "runs", &args.run_id, "detail"], &[]).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&detail)?);
    } else {
        print!("{}", author::run_tree(&detail));
    }
    Ok(())
}

async fn logs(client: &ApiClient, args: LogsArgs) -> anyhow::Result<()> {
    let query: Vec<(&str, String)> = args.job.iter().map(|job| ("job", job.clone())).collect();
    let path = ["api", "v1", "runs", args.run_id.as_str(), "logs"];
    let mut printer = LogPrinter::default();
    loop {
        let logs: RunLogs = client.get(&path, &query).await?;
        let finished = !args.follow || logs.status.is_terminal();
        if args.json {
            if finished {
                println!("{}", serde_json::to_string_pretty(&author::logs_json(&logs))?);
            }
        } else {
            let chunk = printer.next_chunk(&logs);
            print!("{chunk}");
            if !args.follow && chunk.is_empty() {
                println!("No log lines for run {}.", logs.run_id);
            }
            std::io::Write::flush(&mut std::io::stdout())?;
        }
        if finished {
            return Ok(());
        }
        tokio::time::sleep(FOLLOW_INTERVAL).await;
    }
}

async fn cancel(client: &ApiClient, args: CancelArgs) -> anyhow::Result<()> {
    let print = |answer: &Cancelled| {
        let (run, jobs) = (&answer.run_id, answer.cancelled_jobs);
        match answer.status {
            CancelStatus::Cancelling => println!("Run {run} cancelling: {jobs} job(s) told to stop"),
            CancelStatus::Cancelled => println!("Run {run} cancelled ({jobs} job(s))"),
        }
    };
    if let Some(branch) = args.branch {
        let request = CancelBranchRequest {
            branch,
            force: args.force,
        };
        let answer: BranchCancelled = client
            .post(&["api", "v1", "runs", "cancel-by-branch"], &request)
            .await?;
        if answer.runs.is_empty() {
            println!("No run of branch {} is going", answer.branch);
        }
        answer.runs.iter().for_each(print);
        return Ok(());
    }
    let run_id = args.run_id.unwrap_or_default();
    let answer: Cancelled = client
        .post(
            &["api", "v1", "runs", &run_id, "cancel"],
            &CancelRequest { force: args.force },
        )
        .await?;
    print(&answer);
    Ok(())
}

async fn rerun(client: &ApiClient, args: RerunArgs) -> anyhow::Result<()> {
    let answer: Rerun = client
        .post(
            &["api", "v1", "runs", &args.run_id, "rerun"],
            &RerunRequest {
                failed_only: args.failed,
            },
        )
        .await?;
    if args.failed && !answer.failed_only {
        anyhow::bail!(
            "run {} started again as {} with every job: this orchestrator does not support --failed (hint: upgrade the orchestrator)",
            answer.run_id,
            answer.new_run_id
        );
    }
    let what = if args.failed { "Failed jobs of run" } else { "Run" };
    println!("{what} {} started again as {}", answer.run_id, answer.new_run_id);
    Ok(())
}
