//! `kici run local [event]`: compile the workflows, match them against a simulated event, and
//! run the matched workflows' jobs in `needs` order through the Node runner, in a temporary
//! checkout. Logs stream with `[job › step]` prefixes; a summary tree (or, with `--json`, a JSON
//! document) follows. Exit code 1 when a job failed.

mod checkout;
mod event;
mod job;
pub(crate) mod report;
mod schedule;
mod secrets;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use kici_compiler::compile::{CompileError, describe_staged, prepare};
use kici_compiler::project::Project;
use kici_compiler::runner::{RunnerProcess, RunnerSpec, find_node};
use kici_engine::event::EventEnvelope;
use kici_engine::lockfile::{LockFile, LockWorkflow};
use kici_engine::status::RunStatus;
use kici_engine::trigger::match_triggers;

use crate::ProjectArgs;
use job::Printer;
use report::RunReport;

#[derive(Debug, clap::Args)]
pub struct RunLocalArgs {
    /// The event to simulate: push, pr[:open|sync|close|reopen], tag[:<name>], dispatch[:<type>]
    #[arg(default_value = "push")]
    event: String,
    /// Run only this workflow
    #[arg(long)]
    workflow: Option<String>,
    /// Run only this job (and the jobs it needs)
    #[arg(long)]
    job: Option<String>,
    /// Branch of the event (default: the current branch)
    #[arg(long)]
    branch: Option<String>,
    /// Target branch of a pull request event (default: main)
    #[arg(long)]
    base: Option<String>,
    /// Commit sha of the event (default: HEAD)
    #[arg(long)]
    sha: Option<String>,
    /// Changed files of the event, for path filters (default: last commit plus uncommitted changes)
    #[arg(long = "files", value_name = "PATH")]
    files: Vec<String>,
    /// Extra environment variable for the steps (repeatable)
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// How many jobs run at once (default: the number of CPUs)
    #[arg(long)]
    concurrency: Option<usize>,
    /// Keep the temporary checkout even when every job succeeded
    #[arg(long)]
    keep: bool,
    /// Print a JSON report on stdout (logs go to stderr)
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    project: ProjectArgs,
}

pub async fn run(args: RunLocalArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let spec = event::parse(&args.event).map_err(anyhow::Error::msg)?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let project = match Project::locate(args.project.kici_dir.as_deref(), &cwd) {
        Ok(project) => project,
        Err(diagnostic) => {
            eprintln!("{diagnostic}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let node = find_node(args.project.node.as_deref()).map_err(anyhow::Error::msg)?;
    let printer = Printer { to_stderr: args.json };
    let staged = match prepare(&project) {
        Ok(staged) => staged,
        Err(err) => return report_compile_error(err),
    };
    let checkout = checkout::create_dir()?;
    let mut base_env: BTreeMap<String, String> = RunnerSpec::inherited_env();
    base_env.insert("CI".to_string(), "true".to_string());
    base_env.insert("KICI_LOCAL".to_string(), "true".to_string());
    base_env.insert("KICI_RUN_DIR".to_string(), checkout.display().to_string());
    base_env.insert("KICI_RUN_ID".to_string(), format!("local-{}", std::process::id()));
    // Start the first job's runner now, so Node boots while the workflows are described.
    let warm_runner = RunnerProcess::spawn(&schedule::runner_spec(&node, &staged, &checkout, &base_env)).ok();
    let (lock, facts, copied) = tokio::join!(
        describe_staged(&project, &staged, node.clone()),
        event::git_facts(&project.root),
        checkout::populate(&project.root, &checkout),
    );
    let outcome = match (lock, copied) {
        // A local run evaluates every function itself: the compiler's notes do not apply.
        (Ok(generated), Ok(())) => Ok(generated.lock),
        (Err(err), _) => Err(report_compile_error(err)),
        (_, Err(err)) => Err(Err(err)),
    };
    let lock = match outcome {
        Ok(lock) => lock,
        Err(result) => {
            // Best effort: nothing ran in it.
            let _ = tokio::fs::remove_dir_all(&checkout).await;
            return result;
        }
    };
    let overrides = event::Overrides {
        branch: args.branch.clone(),
        base: args.base.clone(),
        sha: args.sha.clone(),
        files: args.files.clone(),
    };
    let envelope = event::envelope(&spec, &facts, &overrides);
    let matched = match select_workflows(&lock, &envelope, args.workflow.as_deref()) {
        Ok(matched) if !matched.is_empty() => matched,
        other => {
            let _ = tokio::fs::remove_dir_all(&checkout).await;
            other?;
            printer.line(&format!(
                "No workflow matched the {} event on {}.",
                envelope.event_type.as_str(),
                envelope.target_branch.as_deref().unwrap_or("?")
            ));
            return Ok(ExitCode::SUCCESS);
        }
    };

    printer.line(&format!("running in {}", checkout.display()));
    let mut event_env = BTreeMap::new();
    event_env.insert("KICI_EVENT_TYPE".to_string(), envelope.event_type.as_str().to_string());
    if let Some(branch) = &envelope.target_branch {
        event_env.insert("KICI_BRANCH".to_string(), branch.clone());
    }
    if let Some(sha) = &envelope.sha {
        event_env.insert("KICI_SHA".to_string(), sha.clone());
    }
    event_env.extend(args.env.iter().cloned());
    let context = schedule::Context {
        warm_runner: std::cell::RefCell::new(warm_runner),
        node,
        staged: &staged,
        root: project.root.clone(),
        checkout: checkout.clone(),
        base_env,
        event_env,
        event: envelope.clone(),
        secrets: secrets::load(&project.kici_dir)?,
        printer,
        concurrency: args
            .concurrency
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1),
        only_job: args.job.clone(),
        label_workflows: matched.len() > 1,
    };
    let schedule::Outcome { workflows, interrupted } = schedule::run(&context, &matched).await?;

    let status = kici_engine::status::roll_up(workflows.iter().flat_map(|w| w.jobs.iter().map(|j| j.status)))
        .unwrap_or(RunStatus::Failed);
    let keep = args.keep || status != RunStatus::Success;
    if !keep {
        // Best effort: a leftover temporary directory is harmless and the run's result stands.
        let _ = tokio::fs::remove_dir_all(&checkout).await;
    }
    let report = RunReport {
        status,
        duration_ms: started.elapsed().as_millis() as u64,
        checkout: keep.then(|| checkout.display().to_string()),
        event: envelope,
        workflows,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("reports serialize"));
    } else {
        println!();
        print!("{}", report::render(&report));
        if keep {
            println!("checkout kept in {}", checkout.display());
        }
    }
    Ok(if interrupted {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if status == RunStatus::Failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Exit code after Ctrl-C, as shells report SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{text}`")),
    }
}

fn report_compile_error(err: CompileError) -> anyhow::Result<ExitCode> {
    match err {
        CompileError::Diagnostics(diagnostics) => {
            for diagnostic in &diagnostics {
                eprintln!("{diagnostic}");
            }
            Ok(ExitCode::FAILURE)
        }
        other => Err(other.into()),
    }
}

/// The workflows `event` triggers; with `--workflow`, only that one, and an error explaining
/// why when it does not match.
fn select_workflows(lock: &LockFile, event: &EventEnvelope, only: Option<&str>) -> anyhow::Result<Vec<LockWorkflow>> {
    if let Some(name) = only
        && lock.workflow(name).is_none()
    {
        let names: Vec<&str> = lock.workflows.iter().map(|w| w.name.as_str()).collect();
        anyhow::bail!("no workflow named '{name}'\n  hint: workflows: {}", names.join(", "));
    }
    let mut matched = Vec::new();
    for workflow in lock.workflows.iter().filter(|w| only.is_none_or(|name| w.name == name)) {
        let outcome = match_triggers(&workflow.triggers, event)
            .with_context(|| format!("workflow '{}' has an invalid trigger pattern", workflow.name))?;
        if outcome.trigger_index.is_some() {
            matched.push(workflow.clone());
        } else if only.is_some() {
            let why = if workflow.triggers.is_empty() {
                "it has no triggers".to_string()
            } else {
                let failed: Vec<String> = outcome
                    .checks
                    .iter()
                    .filter(|c| !c.pass)
                    .map(|c| format!("{}: expected {}, got {}", c.field, c.expected, c.actual))
                    .collect();
                failed.join("; ")
            };
            anyhow::bail!(
                "workflow '{}' does not match this {} event ({why})",
                workflow.name,
                event.event_type.as_str()
            );
        }
    }
    Ok(matched)
}
