//! `kici dispatch <workflow> [--input name=value]…`: starts a workflow through its `dispatch()`
//! trigger (`POST /api/v1/workflows/:workflow/dispatch`), at the head of `--ref` (default: the
//! repository's default branch). The orchestrator validates the inputs against the trigger's
//! schema: strings become numbers and booleans (`true/false`, `1/0`, `yes/no`) where declared,
//! defaults fill the rest, and every refused input is named.

use std::process::ExitCode;

use clap::Args;
use kici_engine::api::triggers::{DispatchRequest, Dispatched};

use crate::runs::{ApiArgs, client};

#[derive(Debug, Args)]
pub struct DispatchArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The workflow's name
    workflow: String,
    /// An input, `name=value` (repeat for each)
    #[arg(long = "input", short = 'i', value_name = "NAME=VALUE")]
    inputs: Vec<String>,
    /// Branch, tag or commit to run (default: the default branch's head)
    #[arg(long = "ref", value_name = "REF")]
    git_ref: Option<String>,
    /// The dispatch type a `dispatch({ types })` trigger listens to
    #[arg(long = "type", value_name = "TYPE")]
    dispatch_type: Option<String>,
    /// The source (id or name); needed when the orchestrator has several
    #[arg(long)]
    source: Option<String>,
    /// `owner/name`, for a forge source whose clone URL is a template
    #[arg(long)]
    repo: Option<String>,
    /// Print the answer as JSON
    #[arg(long)]
    json: bool,
}

pub async fn run(args: DispatchArgs) -> anyhow::Result<ExitCode> {
    let inputs =
        kici_engine::inputs::parse_pairs(args.inputs.iter().map(String::as_str)).map_err(anyhow::Error::msg)?;
    let body = DispatchRequest {
        source: args.source,
        repo: args.repo,
        git_ref: args.git_ref,
        dispatch_type: args.dispatch_type,
        inputs,
    };
    let dispatched: Dispatched = client(args.api)?
        .post(&["api", "v1", "workflows", &args.workflow, "dispatch"], &body)
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&dispatched)?);
    } else {
        println!(
            "Run {} started: workflow {} at {} ({}).",
            dispatched.run_id,
            dispatched.workflow,
            dispatched.git_ref,
            &dispatched.sha[..dispatched.sha.len().min(12)]
        );
        println!("  follow it: kici runs show {}", dispatched.run_id);
    }
    Ok(ExitCode::SUCCESS)
}
