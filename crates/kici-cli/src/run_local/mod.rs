//! `kici run local [event]`: compile the workflows, match them against a simulated event, and
//! run the matched workflows' jobs in `needs` order through the Node runner, in a temporary
//! checkout (or, with `--in-place`, the working tree). Logs stream with `[job › step]` prefixes;
//! a summary tree (or, with `--json`, a JSON document; with `--junit`, also a JUnit file)
//! follows. Exit code 1 when a job failed, 2 for conflicting options (`--pick` with
//! `--workflow`, say).

mod checkout;
pub(crate) mod event;
mod job;
mod junit;
mod pick;
pub(crate) mod report;
pub(crate) mod schedule;
mod secrets;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use kici_compiler::compile::{CompileError, describe_staged, prepare};
use kici_compiler::runner::{RunnerProcess, RunnerSpec};
use kici_engine::event::{EventEnvelope, EventType};
use kici_engine::lockfile::{LockFile, LockWorkflow};
use kici_engine::status::RunStatus;

use crate::ProjectArgs;
use crate::matching::{self, Decision, Verdict};
use job::{Printer, Stream, Verbosity};
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
    /// Choose what runs: `--pick <workflow>` or `--pick <workflow>/<job>`; bare, pick from a list
    /// of the matched workflows and jobs (stdin must be a terminal)
    #[arg(
        short = 'p',
        long,
        value_name = "WORKFLOW[/JOB]",
        num_args = 0..=1,
        default_missing_value = pick::INTERACTIVE,
        conflicts_with_all = ["workflow", "job"]
    )]
    pick: Option<String>,
    /// The event's provider payload (`ctx.event.payload`): JSON, or `@<file>` to read it from a file
    #[arg(long, value_name = "JSON|@FILE")]
    payload: Option<String>,
    /// A dispatch input, in `ctx.event.payload.inputs` (repeatable; dispatch events only)
    #[arg(long = "input", value_name = "KEY=VALUE", value_parser = parse_env)]
    inputs: Vec<(String, String)>,
    /// Branch of the event (default: the current branch)
    #[arg(long)]
    branch: Option<String>,
    #[command(flatten)]
    event_args: event::EventArgs,
    /// Extra environment variable for the steps (repeatable)
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// How many jobs run at once (default: the number of CPUs)
    #[arg(long)]
    concurrency: Option<usize>,
    /// After a job failed, go on starting the jobs that do not need it (default: only jobs that
    /// run on failure start)
    #[arg(long)]
    keep_going: bool,
    /// Keep the temporary checkout even when every job succeeded
    #[arg(long)]
    keep: bool,
    /// Run in the working tree itself, not in a temporary copy: steps change your files
    #[arg(long, conflicts_with = "keep")]
    in_place: bool,
    /// Print a JSON report on stdout (logs go to stderr)
    #[arg(long)]
    json: bool,
    /// Also write the jobs and steps as JUnit XML to this file
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,
    /// Show only the summary, not the jobs' output
    #[arg(short = 'q', long, conflicts_with = "debug")]
    quiet: bool,
    /// Also show `ctx.log.debug` lines, the event and each workflow's trigger decision; steps
    /// see KICI_DEBUG=true
    #[arg(long)]
    debug: bool,
    #[command(flatten)]
    project: ProjectArgs,
}

pub async fn run(args: RunLocalArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let spec = event::parse(&args.event).map_err(anyhow::Error::msg)?;
    if args.pick.as_deref() == Some(pick::INTERACTIVE) {
        pick::ensure_terminal()?;
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let payload = args.payload.as_deref().map(|p| event::payload(p, &cwd)).transpose()?;
    let Some((project, node)) = args.project.open(&cwd)? else {
        return Ok(ExitCode::FAILURE);
    };
    let verbosity = if args.quiet {
        Verbosity::Quiet
    } else if args.debug {
        Verbosity::Debug
    } else {
        Verbosity::Normal
    };
    let stream = if args.json { Stream::Stderr } else { Stream::Stdout };
    let printer = Printer { stream, verbosity };
    let staged = match prepare(&project) {
        Ok(staged) => staged,
        Err(err) => return report_compile_error(err),
    };
    let workspace = if args.in_place {
        Workspace::InPlace(project.root.clone())
    } else {
        Workspace::Temporary(checkout::create_dir()?)
    };
    let checkout = workspace.path().to_path_buf();
    let mut base_env: BTreeMap<String, String> = RunnerSpec::inherited_env();
    base_env.insert("CI".to_string(), "true".to_string());
    base_env.insert("KICI_LOCAL".to_string(), "true".to_string());
    base_env.insert("KICI_RUN_DIR".to_string(), checkout.display().to_string());
    base_env.insert("KICI_RUN_ID".to_string(), format!("local-{}", std::process::id()));
    if verbosity == Verbosity::Debug {
        base_env.insert("KICI_DEBUG".to_string(), "true".to_string());
    }
    // Start the first job's runner now, so Node boots while the workflows are described.
    let warm_runner = RunnerProcess::spawn(&schedule::runner_spec(&node, &staged, &checkout, &base_env)).ok();
    let populate = async {
        match &workspace {
            Workspace::Temporary(dir) => checkout::populate(&project.root, dir).await,
            Workspace::InPlace(_) => Ok(()),
        }
    };
    let (lock, facts, copied) = tokio::join!(
        describe_staged(&project, &staged, node.clone()),
        event::git_facts(&project.root),
        populate,
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
            workspace.discard().await;
            return result;
        }
    };
    let overrides = args.event_args.overrides(args.branch.clone());
    let mut envelope = event::envelope(&spec, &facts, &overrides);
    envelope.payload = payload;
    if let (EventType::KiciEvent, Some(name)) = (spec.event_type, &spec.name)
        && let Err(err) = event::wrap_emitted(&mut envelope, name)
    {
        workspace.discard().await;
        return Err(err);
    }
    let local_env = match event::add_inputs(&mut envelope, &args.inputs)
        .and_then(|()| secrets::load_env_local(&project.kici_dir))
    {
        Ok(local_env) => local_env,
        Err(err) => {
            workspace.discard().await;
            return Err(err);
        }
    };
    printer.debug(&format!(
        "debug: event {}",
        serde_json::to_string(&envelope).expect("events serialize")
    ));
    let named = match args.pick.as_deref() {
        Some(pick::INTERACTIVE) | None => None,
        Some(value) => Some(pick::named(&lock, value)),
    };
    let only_workflow = named.as_ref().map(|c| c.workflow.clone()).or(args.workflow.clone());
    let mut only_job = named.and_then(|c| c.job).or(args.job.clone());
    let selected = select_workflows(&lock, &envelope, only_workflow.as_deref(), &printer);
    let (selected, inputs) = match selected.and_then(|matched| dispatch_inputs(&envelope, matched)) {
        Ok((matched, inputs)) => (Ok(matched), inputs),
        Err(err) => (Err(err), HashMap::new()),
    };
    let matched = match selected {
        Ok(matched) if !matched.is_empty() => matched,
        other => {
            workspace.discard().await;
            other?;
            printer.line(&format!(
                "No workflow matched the {} event on {}.",
                envelope.event_type.as_str(),
                envelope.target_branch.as_deref().unwrap_or("?")
            ));
            return Ok(ExitCode::SUCCESS);
        }
    };
    let matched = if args.pick.as_deref() == Some(pick::INTERACTIVE) {
        let choice = pick::ask(&matched).await?;
        only_job = choice.job;
        matched.into_iter().filter(|w| w.name == choice.workflow).collect()
    } else {
        matched
    };

    printer.progress(&format!("running in {}", checkout.display()));
    let mut event_env = BTreeMap::new();
    event_env.insert("KICI_EVENT_TYPE".to_string(), envelope.event_type.as_str().to_string());
    if let Some(branch) = &envelope.target_branch {
        event_env.insert("KICI_BRANCH".to_string(), branch.clone());
    }
    if let Some(sha) = &envelope.sha {
        event_env.insert("KICI_SHA".to_string(), sha.clone());
    }
    event_env.extend(local_env);
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
        inputs,
        secrets: secrets::load(&project.kici_dir)?,
        printer,
        concurrency: args
            .concurrency
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1),
        only_job,
        label_workflows: matched.len() > 1,
        after_failure: if args.keep_going {
            schedule::AfterFailure::KeepGoing
        } else {
            schedule::AfterFailure::StartFailureHandlers
        },
    };
    let schedule::Outcome { workflows, interrupted } = schedule::run(&context, &matched).await?;

    let status = kici_engine::status::roll_up(workflows.iter().flat_map(|w| w.jobs.iter().map(|j| j.status)))
        .unwrap_or(RunStatus::Failed);
    let keep = match &workspace {
        Workspace::InPlace(_) => false,
        Workspace::Temporary(_) => args.keep || status != RunStatus::Success,
    };
    if !keep {
        workspace.discard().await;
    }
    let report = RunReport {
        status,
        duration_ms: started.elapsed().as_millis() as u64,
        checkout: keep.then(|| checkout.display().to_string()),
        event: envelope,
        workflows,
    };
    if let Some(path) = &args.junit {
        let path = cwd.join(path);
        let written = match path.parent() {
            Some(dir) => std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, junit::render(&report))),
            None => std::fs::write(&path, junit::render(&report)),
        };
        written.with_context(|| format!("failed to write the JUnit report `{}`", path.display()))?;
    }
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

/// Where the steps run.
enum Workspace {
    /// A temporary copy of the working tree (`checkout`), removed unless kept.
    Temporary(PathBuf),
    /// `--in-place`: the working tree itself, never removed.
    InPlace(PathBuf),
}

impl Workspace {
    fn path(&self) -> &Path {
        match self {
            Workspace::Temporary(dir) | Workspace::InPlace(dir) => dir,
        }
    }

    /// Removes a temporary copy; the working tree stays.
    async fn discard(&self) {
        if let Workspace::Temporary(dir) = self {
            // Best effort: a leftover temporary directory is harmless and the run's result stands.
            let _ = tokio::fs::remove_dir_all(dir).await;
        }
    }
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
/// why when it does not match. Under `--debug`, each workflow's decision is printed.
/// A dispatch's inputs for each matched workflow, validated, coerced and defaulted by the
/// trigger that matched, as the orchestrator does; refused inputs are an error naming each.
fn dispatch_inputs(
    event: &EventEnvelope,
    matched: Vec<(LockWorkflow, usize)>,
) -> anyhow::Result<(Vec<LockWorkflow>, schedule::WorkflowInputs)> {
    let mut inputs = HashMap::new();
    if event.event_type == EventType::Dispatch {
        let given = event.dispatch_inputs.clone().unwrap_or_default();
        for (workflow, index) in &matched {
            let schema = workflow.triggers[*index].inputs().cloned().unwrap_or_default();
            let valid = kici_engine::inputs::validate(&schema, &given)
                .map_err(|errors| anyhow::anyhow!("workflow '{}': {errors}", workflow.name))?;
            inputs.insert(workflow.name.clone(), valid);
        }
    }
    Ok((matched.into_iter().map(|(workflow, _)| workflow).collect(), inputs))
}

fn select_workflows(
    lock: &LockFile,
    event: &EventEnvelope,
    only: Option<&str>,
    printer: &Printer,
) -> anyhow::Result<Vec<(LockWorkflow, usize)>> {
    let mut matched = Vec::new();
    for Decision { workflow, verdict } in matching::decide(lock, event, only)? {
        match verdict {
            Verdict::Runs { trigger_index } => {
                printer.debug(&format!(
                    "debug: workflow '{}' runs: trigger {} ({}) matched",
                    workflow.name,
                    trigger_index + 1,
                    workflow.triggers[trigger_index].summary()
                ));
                matched.push((workflow.clone(), trigger_index));
            }
            Verdict::DoesNotRun { why } if only.is_some() => anyhow::bail!(
                "workflow '{}' does not match this {} event ({why})",
                workflow.name,
                event.event_type.as_str()
            ),
            Verdict::DoesNotRun { why } => {
                printer.debug(&format!("debug: workflow '{}' does not run ({why})", workflow.name));
            }
        }
    }
    Ok(matched)
}
