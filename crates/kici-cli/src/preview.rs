//! `kici preview <event>`: a dry run. Compiles the workflows (writing nothing), builds the event
//! as `kici run local` would, and prints per workflow whether the event runs it — which trigger
//! matched, or the checks that failed — and the jobs it would start with their needs. Runs no
//! step and evaluates no function (rules and dynamic matrices are decided when the job runs).
//! Exit 0 whatever matched; 1 on a compile error or bad input.
//!
//! ```text
//! 🔍 DRY RUN: push event on main (3 changed files)
//!
//! ✓ ci (.kici/workflows/ci.ts) runs: trigger 1 matched, push (branches: main)
//!     build: 2 steps, runs on linux
//!     test: 1 step, needs build, matrix of 2, runs on linux
//! ✗ release (.kici/workflows/release.ts) does not run: type: expected tag, got push
//!
//! Decision Summary: 1 of 2 workflows would run: ci
//! ```

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use kici_compiler::compile::{CompileError, compile};
use kici_engine::event::EventEnvelope;
use kici_engine::lockfile::{LockFile, LockJob, LockWorkflow, StaticJob};

use crate::ProjectArgs;
use crate::matching::{self, Decision, Verdict};
use crate::run_local::event;
use crate::run_local::schedule::with_needs;
use crate::summary;

#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    /// The event to simulate: push, pr[:open|sync|close|reopen], tag[:<name>], dispatch[:<type>]
    event: String,
    /// Preview only this workflow
    #[arg(long)]
    workflow: Option<String>,
    /// Show only this job (and the jobs it needs)
    #[arg(long)]
    job: Option<String>,
    /// Branch of the event
    #[arg(long, default_value = "main")]
    branch: String,
    #[command(flatten)]
    event_args: event::EventArgs,
    /// Also print the event as JSON
    #[arg(long)]
    debug: bool,
    #[command(flatten)]
    project: ProjectArgs,
}

pub async fn run(args: PreviewArgs) -> anyhow::Result<ExitCode> {
    let spec = event::parse(&args.event).map_err(anyhow::Error::msg)?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let Some((project, node)) = args.project.open(&cwd)? else {
        return Ok(ExitCode::FAILURE);
    };
    let (compiled, facts) = tokio::join!(compile(&project, node), event::git_facts(&project.root));
    let lock = match compiled {
        Ok(compiled) => compiled.lock,
        Err(CompileError::Diagnostics(diagnostics)) => {
            for diagnostic in &diagnostics {
                eprintln!("{diagnostic}");
            }
            return Ok(ExitCode::FAILURE);
        }
        Err(err) => return Err(err.into()),
    };
    let overrides = args.event_args.overrides(Some(args.branch.clone()));
    let envelope = event::envelope(&spec, &facts, &overrides);
    let decisions = matching::decide(&lock, &envelope, args.workflow.as_deref())?;
    if let Some(job) = &args.job {
        ensure_job_exists(&lock, &decisions, job)?;
    }
    if args.debug {
        println!(
            "debug: event {}",
            serde_json::to_string(&envelope).expect("events serialize")
        );
    }
    print!("{}", render(&envelope, &decisions, args.job.as_deref()));
    Ok(ExitCode::SUCCESS)
}

fn ensure_job_exists(lock: &LockFile, decisions: &[Decision<'_>], job: &str) -> anyhow::Result<()> {
    if decisions
        .iter()
        .any(|d| d.workflow.jobs.iter().any(|j| j.name() == job))
    {
        return Ok(());
    }
    let names: Vec<String> = lock
        .workflows
        .iter()
        .flat_map(|w| w.jobs.iter().map(LockJob::name))
        .collect();
    anyhow::bail!("no job named '{job}'\n  hint: jobs: {}", names.join(", "))
}

fn render(event: &EventEnvelope, decisions: &[Decision<'_>], only_job: Option<&str>) -> String {
    let mut out = String::new();
    let changed = event.changed_files.as_ref().map_or(0, Vec::len);
    let _ = write!(
        out,
        "🔍 DRY RUN: {} event on {}",
        describe_event(event),
        event.target_branch.as_deref().unwrap_or("?")
    );
    if let Some(source) = &event.source_branch {
        let _ = write!(out, " from {source}");
    }
    let _ = writeln!(
        out,
        " ({changed} changed file{})\n",
        if changed == 1 { "" } else { "s" }
    );
    let mut running: Vec<&str> = Vec::new();
    for Decision { workflow, verdict } in decisions {
        match verdict {
            Verdict::Runs { trigger_index } => {
                running.push(&workflow.name);
                let _ = writeln!(
                    out,
                    "✓ {} ({}) runs: trigger {} matched, {}",
                    workflow.name,
                    workflow.source.file,
                    trigger_index + 1,
                    workflow.triggers[*trigger_index].summary()
                );
                out.push_str(&jobs(workflow, only_job));
            }
            Verdict::DoesNotRun { why } => {
                let _ = writeln!(
                    out,
                    "✗ {} ({}) does not run: {why}",
                    workflow.name, workflow.source.file
                );
            }
        }
    }
    let _ = write!(
        out,
        "\nDecision Summary: {} of {} workflow{} would run",
        running.len(),
        decisions.len(),
        if decisions.len() == 1 { "" } else { "s" }
    );
    if running.is_empty() {
        out.push('\n');
    } else {
        let _ = writeln!(out, ": {}", running.join(", "));
    }
    out
}

/// `push`, `pull_request:opened`, `dispatch:deploy`.
fn describe_event(event: &EventEnvelope) -> String {
    match &event.action {
        Some(action) => format!("{}:{action}", event.event_type.as_str()),
        None => event.event_type.as_str().to_string(),
    }
}

/// The jobs the workflow would start (with `--job`, that job and what it needs).
fn jobs(workflow: &LockWorkflow, only_job: Option<&str>) -> String {
    let statics: Vec<&StaticJob> = workflow.jobs.iter().filter_map(LockJob::as_static).collect();
    let shown: Vec<usize> = match only_job {
        Some(name) => with_needs(&statics, name),
        None => (0..statics.len()).collect(),
    };
    let mut out = String::new();
    for index in shown {
        let _ = writeln!(out, "    {}: {}", statics[index].name, summary::job(statics[index]));
    }
    for job in &workflow.jobs {
        if let LockJob::Dynamic(generator) = job
            && only_job.is_none_or(|name| generator.name() == name)
        {
            let _ = writeln!(out, "    {}: jobs generated when the workflow runs", generator.name());
        }
    }
    out
}
