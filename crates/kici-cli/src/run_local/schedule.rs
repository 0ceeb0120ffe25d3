//! Running a set of matched workflows' jobs in `needs` order: a job starts when every job it
//! needs has finished and each edge's `when` is satisfied (else it is skipped); matrices expand
//! into child jobs (dynamic ones through the runner); at most `concurrency` jobs run at once.
//! Once a job failed, only jobs that run on failure (`needs` with `always`, `on-failure`) start,
//! unless `--keep-going`; the others end `cancelled`. Ctrl-C aborts running jobs (they finish
//! `cancelled`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;

use kici_compiler::evaluate::{MATRIX_TIMEOUT, evaluate_matrix};
use kici_compiler::runner::{RunnerError, RunnerProcess, RunnerSpec};
use kici_compiler::stage::StagedTree;
use kici_engine::dag::{Decision, UpstreamRow, decide, group_status, needs_context};
use kici_engine::event::EventEnvelope;
use kici_engine::lockfile::{LockJob, LockMatrix, LockWorkflow, StaticJob};
use kici_engine::matrix::{self, Combination, MatrixValues};
use kici_engine::runner_protocol::{EvaluateKind, EvaluateRequest, ExecuteRequest};
use kici_engine::status::{JobStatus, roll_up};
use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::job::{self, Abort, Printer};
use super::report::{JobReport, WorkflowReport};

pub struct Context<'a> {
    /// A runner started ahead of time (while the workflows were being described); the first
    /// job or matrix evaluation takes it instead of paying Node's start-up.
    pub warm_runner: std::cell::RefCell<Option<RunnerProcess>>,
    pub node: PathBuf,
    pub staged: &'a StagedTree,
    pub root: PathBuf,
    pub checkout: PathBuf,
    /// The runner processes' environment.
    pub base_env: BTreeMap<String, String>,
    /// Variables that depend on the event (`KICI_BRANCH`, `KICI_SHA`, ...) and `--env` ones,
    /// passed with each request because the warm runner starts before the event is known.
    pub event_env: BTreeMap<String, String>,
    pub event: EventEnvelope,
    /// A dispatch's inputs as each workflow's trigger validated them (`ctx.dispatchInputs`).
    pub inputs: WorkflowInputs,
    /// `.kici/.secrets`, for `ctx.secrets`.
    pub secrets: BTreeMap<String, kici_engine::protocol::SecretValue>,
    pub printer: Printer,
    pub concurrency: usize,
    pub only_job: Option<String>,
    pub label_workflows: bool,
    pub after_failure: AfterFailure,
}

/// Dispatch inputs by workflow name.
pub type WorkflowInputs = HashMap<String, Map<String, Value>>;

impl Context<'_> {
    /// The event `workflow`'s jobs see: with its own validated dispatch inputs.
    fn event_for(&self, workflow: &LockWorkflow) -> EventEnvelope {
        let mut event = self.event.clone();
        if let Some(inputs) = self.inputs.get(&workflow.name) {
            event.dispatch_inputs = Some(inputs.clone());
        }
        event
    }
}

/// What happens to the jobs not started yet once a job failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Only jobs that run on failure start; the others are cancelled.
    StartFailureHandlers,
    /// `--keep-going`: every job whose `needs` allow it starts, as on an agent.
    KeepGoing,
}

/// Whether `job` runs when an upstream failed (an `always` or `on-failure` edge).
fn handles_failure(job: &StaticJob) -> bool {
    job.needs.iter().any(|need| need.satisfied_by(JobStatus::Failed))
}

impl Context<'_> {
    /// The warm runner if it is still unused, else a new one.
    fn runner(&self) -> Result<RunnerProcess, RunnerError> {
        if let Some(runner) = self.warm_runner.borrow_mut().take() {
            return Ok(runner);
        }
        RunnerProcess::spawn(&runner_spec(&self.node, self.staged, &self.checkout, &self.base_env))
    }
}

/// How every runner of a local run is started.
pub fn runner_spec(
    node: &std::path::Path,
    staged: &StagedTree,
    checkout: &std::path::Path,
    env: &BTreeMap<String, String>,
) -> RunnerSpec {
    RunnerSpec {
        node: node.to_path_buf(),
        runner: staged.runner_path(),
        cwd: checkout.to_path_buf(),
        env: env.clone(),
    }
}

/// A base job: one `job()` of one workflow.
type JobKey = (usize, usize);

struct Instance {
    key: JobKey,
    request: ExecuteRequest,
    prefix: String,
}

/// What the scheduler produced.
pub struct Outcome {
    pub workflows: Vec<WorkflowReport>,
    /// Ctrl-C was pressed.
    pub interrupted: bool,
}

pub async fn run(ctx: &Context<'_>, workflows: &[LockWorkflow]) -> anyhow::Result<Outcome> {
    let jobs: Vec<Vec<&StaticJob>> = workflows
        .iter()
        .map(|w| w.jobs.iter().filter_map(LockJob::as_static).collect())
        .collect();
    let selected = select_jobs(ctx, workflows, &jobs)?;
    let mut results: HashMap<JobKey, Vec<JobReport>> = HashMap::new();
    let mut outstanding: HashMap<JobKey, usize> = HashMap::new();
    let mut queue: VecDeque<Instance> = VecDeque::new();
    let mut running: JoinSet<(JobKey, JobReport)> = JoinSet::new();
    let (abort_tx, abort_rx) = watch::channel(Abort::No);
    let mut interrupted = false;
    let mut interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|err| anyhow::anyhow!("cannot listen for Ctrl-C: {err}"))?;
    loop {
        let failed = match ctx.after_failure {
            AfterFailure::KeepGoing => None,
            AfterFailure::StartFailureHandlers => results
                .values()
                .flatten()
                .find(|r| r.status == JobStatus::Failed)
                .map(|r| r.name.clone()),
        };
        let not_started = |failed: &str| {
            format!("not started: job '{failed}' failed (hint: --keep-going starts the jobs that do not need it)")
        };
        if let Some(failed) = &failed {
            let (waiting, cancelled): (VecDeque<Instance>, VecDeque<Instance>) = queue
                .drain(..)
                .partition(|instance| handles_failure(jobs[instance.key.0][instance.key.1]));
            queue = waiting;
            for instance in cancelled {
                cancel_queued(instance, Some(not_started(failed)), &mut outstanding, &mut results);
            }
        }
        // Decide every job whose needs have all finished; a skip can unblock more.
        let mut progressed = true;
        while progressed {
            progressed = false;
            for key in &selected {
                if results.contains_key(key) || outstanding.contains_key(key) {
                    continue;
                }
                let (w, j) = *key;
                let job = jobs[w][j];
                let finished = |name: &str| {
                    // Generators (and their groups) do not run locally: they count as skipped.
                    let generator = name.strip_prefix(kici_engine::dag::GROUP_NEED_PREFIX).unwrap_or(name);
                    if workflows[w]
                        .jobs
                        .iter()
                        .any(|j| matches!(j, LockJob::Dynamic(g) if g.name() == generator))
                    {
                        return Some(JobStatus::Skipped);
                    }
                    let upstream = (w, jobs[w].iter().position(|o| o.name == name)?);
                    if outstanding.contains_key(&upstream) {
                        return None;
                    }
                    let group: Vec<JobStatus> = results.get(&upstream)?.iter().map(|r| r.status).collect();
                    Some(group_status(&group))
                };
                let halted = failed.as_ref().filter(|_| !handles_failure(job));
                let needs = match decide(&job.needs, finished) {
                    Decision::Wait => continue,
                    Decision::Run(_) if !interrupted && let Some(failed) = halted => {
                        progressed = true;
                        let report = JobReport::not_run(&job.name, JobStatus::Cancelled, Some(not_started(failed)));
                        results.insert(*key, vec![report]);
                        continue;
                    }
                    Decision::Run(needs) if !interrupted => needs_context(needs, |name| {
                        let reports = jobs[w]
                            .iter()
                            .position(|o| o.name == name)
                            .and_then(|upstream| results.get(&(w, upstream)));
                        let mut reports: Vec<&JobReport> = reports.into_iter().flatten().collect();
                        // Matrix children in name order, as the summary lists them, not in the
                        // order they happened to finish.
                        reports.sort_by(|a, b| a.name.cmp(&b.name));
                        let rows = reports
                            .iter()
                            .map(|r| UpstreamRow {
                                name: &r.name,
                                status: r.status,
                                outputs: r.outputs.as_ref(),
                            })
                            .collect();
                        (reports.iter().any(|r| r.matrix.is_some()), rows)
                    }),
                    _ => {
                        progressed = true;
                        let status = if interrupted {
                            JobStatus::Cancelled
                        } else {
                            JobStatus::Skipped
                        };
                        results.insert(*key, vec![JobReport::not_run(&job.name, status, None)]);
                        continue;
                    }
                };
                progressed = true;
                match expand(ctx, &workflows[w], job).await {
                    Ok(combinations) => {
                        outstanding.insert(*key, combinations.len());
                        results.insert(*key, Vec::new());
                        for combination in combinations {
                            queue.push_back(instance(ctx, &workflows[w], job, *key, combination, needs.clone()));
                        }
                    }
                    Err(message) => {
                        results.insert(
                            *key,
                            vec![JobReport::not_run(&job.name, JobStatus::Failed, Some(message))],
                        );
                    }
                }
            }
        }
        while running.len() < ctx.concurrency
            && let Some(next) = queue.pop_front()
        {
            let (w, j) = next.key;
            let lock_job = jobs[w][j].clone();
            let runner = ctx.runner();
            let (printer, abort) = (ctx.printer, abort_rx.clone());
            running.spawn(async move {
                let report = job::execute(runner, next.request, &lock_job, next.prefix, printer, abort).await;
                (next.key, report)
            });
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            joined = running.join_next() => {
                let Some(joined) = joined else { continue };
                let (key, report) = joined.map_err(|err| anyhow::anyhow!("a job task failed: {err}"))?;
                results.entry(key).or_default().push(report);
                let left = outstanding.get_mut(&key).expect("running jobs are outstanding");
                *left -= 1;
                if *left == 0 {
                    outstanding.remove(&key);
                }
            }
            _ = interrupts.recv() => {
                let level = if interrupted {
                    ctx.printer.line("Interrupted again: stopping running jobs now");
                    Abort::Force
                } else {
                    ctx.printer.line("Interrupted: cancelling running jobs (press Ctrl-C again to stop them at once)");
                    Abort::Graceful
                };
                interrupted = true;
                for instance in queue.drain(..) {
                    cancel_queued(instance, None, &mut outstanding, &mut results);
                }
                // Receivers live as long as their jobs; none listening means nothing to cancel.
                let _ = abort_tx.send(level);
            }
        }
    }
    let workflows = workflows
        .iter()
        .enumerate()
        .map(|(w, workflow)| {
            let mut reports: Vec<JobReport> = Vec::new();
            for j in 0..jobs[w].len() {
                if let Some(mut instances) = results.remove(&(w, j)) {
                    instances.sort_by(|a, b| a.name.cmp(&b.name));
                    reports.extend(instances);
                }
            }
            for generator in workflow.jobs.iter().filter_map(|j| match j {
                LockJob::Dynamic(generator) => Some(generator),
                LockJob::Static(_) => None,
            }) {
                reports.push(JobReport::not_run(
                    &generator.name(),
                    JobStatus::Skipped,
                    Some("dynamic job generators run on agents only; `kici run local` skips them".to_string()),
                ));
            }
            let status = roll_up(reports.iter().map(|r| r.status)).unwrap_or(kici_engine::status::RunStatus::Failed);
            WorkflowReport {
                name: workflow.name.clone(),
                file: workflow.source.file.clone(),
                status,
                failure_reason: kici_engine::status::failed_jobs_reason(
                    reports.iter().map(|r| (r.name.as_str(), r.status)),
                ),
                jobs: reports,
            }
        })
        .collect();
    Ok(Outcome { workflows, interrupted })
}

/// Records a queued instance as cancelled before it started.
fn cancel_queued(
    instance: Instance,
    reason: Option<String>,
    outstanding: &mut HashMap<JobKey, usize>,
    results: &mut HashMap<JobKey, Vec<JobReport>>,
) {
    let left = outstanding.get_mut(&instance.key).expect("queued jobs are outstanding");
    *left -= 1;
    if *left == 0 {
        outstanding.remove(&instance.key);
    }
    let mut report = JobReport::not_run(&instance.request.job, JobStatus::Cancelled, reason);
    report.name = instance.request.job_name;
    results.entry(instance.key).or_default().push(report);
}

/// The jobs to run: all, or with `--job` that job and everything it needs, transitively.
fn select_jobs(ctx: &Context<'_>, workflows: &[LockWorkflow], jobs: &[Vec<&StaticJob>]) -> anyhow::Result<Vec<JobKey>> {
    let Some(only) = &ctx.only_job else {
        return Ok(jobs
            .iter()
            .enumerate()
            .flat_map(|(w, list)| (0..list.len()).map(move |j| (w, j)))
            .collect());
    };
    let mut selected: Vec<JobKey> = jobs
        .iter()
        .enumerate()
        .flat_map(|(w, list)| with_needs(list, only).into_iter().map(move |j| (w, j)))
        .collect();
    if selected.is_empty() {
        let names: Vec<String> = workflows
            .iter()
            .flat_map(|w| w.jobs.iter().map(|j| j.name().to_string()))
            .collect();
        anyhow::bail!(
            "no job named '{only}' in the matched workflows\n  hint: jobs: {}",
            names.join(", ")
        );
    }
    selected.sort();
    Ok(selected)
}

/// The positions in `list` of the job `name` and of every job it needs, transitively, in
/// order; none when there is no such job.
pub(crate) fn with_needs(list: &[&StaticJob], name: &str) -> Vec<usize> {
    let mut selected = Vec::new();
    let mut stack: Vec<usize> = list.iter().position(|j| j.name == name).into_iter().collect();
    while let Some(j) = stack.pop() {
        if selected.contains(&j) {
            continue;
        }
        selected.push(j);
        stack.extend(
            list[j]
                .needs
                .iter()
                .filter_map(|n| list.iter().position(|o| o.name == n.name())),
        );
    }
    selected.sort();
    selected
}

/// The combinations a job runs with: one empty combination without a matrix.
async fn expand(
    ctx: &Context<'_>,
    workflow: &LockWorkflow,
    job: &StaticJob,
) -> Result<Vec<Option<Combination>>, String> {
    let failed = |message: String| format!("Matrix expansion failed for job '{}': {message}", job.name);
    let values = match &job.matrix {
        None => return Ok(vec![None]),
        Some(LockMatrix::Static { values }) => values.clone(),
        Some(LockMatrix::Dynamic { .. }) => {
            let module = ctx
                .staged
                .module_for(&workflow.source.file)
                .ok_or_else(|| failed("workflow module not staged".to_string()))?;
            let runner = ctx.runner().map_err(|err| failed(err.full_message()))?;
            let request = EvaluateRequest {
                kind: EvaluateKind::Matrix,
                module: module.module.clone(),
                file: module.file.clone(),
                workflow: workflow.name.clone(),
                job: job.name.clone(),
                work_dir: ctx.checkout.display().to_string(),
                root: ctx.root.display().to_string(),
                env: env_map(&ctx.event_env),
                event: ctx.event_for(workflow),
                index: None,
                needs: Map::new(),
            };
            let prefix = prefix(ctx, workflow, &job.name);
            let value = evaluate_matrix(runner, request, MATRIX_TIMEOUT, |line| {
                ctx.printer.progress(&format!("[{prefix}] {}", line.line))
            })
            .await
            .map_err(failed)?;
            serde_json::from_value::<MatrixValues>(value)
                .map_err(|_| failed("the matrix function must return an array or an object of arrays".to_string()))?
        }
    };
    matrix::expand(&job.name, &values, &job.include, &job.exclude)
        .map(|combinations| combinations.into_iter().map(Some).collect())
        .map_err(|err| failed(err.to_string()))
}

fn instance(
    ctx: &Context<'_>,
    workflow: &LockWorkflow,
    job: &StaticJob,
    key: JobKey,
    combination: Option<Combination>,
    needs: Map<String, Value>,
) -> Instance {
    let job_name = match &combination {
        Some(c) => matrix::child_job_name(&job.name, c),
        None => job.name.clone(),
    };
    let module = ctx
        .staged
        .module_for(&workflow.source.file)
        .expect("matched workflows come from staged modules");
    let mut env = env_map(&ctx.event_env);
    env.insert("KICI_WORKFLOW_NAME".to_string(), Value::String(workflow.name.clone()));
    env.insert("KICI_JOB_NAME".to_string(), Value::String(job_name.clone()));
    Instance {
        key,
        prefix: prefix(ctx, workflow, &job_name),
        request: ExecuteRequest {
            module: module.module.clone(),
            file: module.file.clone(),
            root: ctx.root.display().to_string(),
            workflow: workflow.name.clone(),
            job: job.name.clone(),
            job_name,
            matrix: combination,
            work_dir: ctx.checkout.display().to_string(),
            env,
            event: ctx.event_for(workflow),
            needs,
            default_step_timeout_ms: kici_engine::protocol::DEFAULT_STEP_TIMEOUT_MS,
            // The job's own `timeout` applies in the runner; a local run adds no host limit.
            job_timeout_ms: None,
            dynamic: None,
            // The runner resolves the job's environments and `env` itself, from the event.
            job_env: None,
            environments: None,
            secrets: ctx.secrets.clone(),
            // The runner's defaults: 30 s grace, and no waiting (a local run proceeds).
            grace_period_ms: None,
            concurrency_wait_timeout_ms: None,
        },
    }
}

fn prefix(ctx: &Context<'_>, workflow: &LockWorkflow, job_name: &str) -> String {
    if ctx.label_workflows {
        format!("{}/{job_name}", workflow.name)
    } else {
        job_name.to_string()
    }
}

fn env_map(env: &BTreeMap<String, String>) -> Map<String, Value> {
    env.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()
}
