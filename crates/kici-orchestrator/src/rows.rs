//! The job rows a run is made of, in one place: a workflow job's rows when the run is created
//! (one job, its static matrix children, or the job that evaluates its dynamic matrix), a
//! generator's evaluation row, a dynamic matrix's children and a generator's jobs. Pure: the
//! run id, position and time come in; nothing is written here.

use kici_engine::failure::{InitFailure, InitFailureCategory, InitFailureScope, matrix_expansion_failed};
use kici_engine::ids::{JobId, RunId};
use kici_engine::lockfile::{DynamicJob, LockJob, LockMatrix, LockWorkflow, StaticJob};
use kici_engine::matrix::{self, Combination, child_job_name};
use kici_engine::protocol::JobKind;
use kici_engine::status::JobStatus;
use kici_store::NewJob;

use crate::ids::new_id;

/// Display position of the first generated job: after the workflow's own.
const GENERATED_POSITION: i64 = 1000;

/// A job of the lock file's workflow by name.
pub fn lock_job<'a>(workflow: &'a LockWorkflow, base_name: &str) -> Option<&'a StaticJob> {
    workflow
        .jobs
        .iter()
        .filter_map(LockJob::as_static)
        .find(|j| j.name == base_name)
}

/// Where a workflow job shows among the run's jobs.
pub fn position_of(workflow: &LockWorkflow, base: &str) -> i64 {
    workflow.jobs.iter().position(|j| j.name() == base).unwrap_or(0) as i64
}

/// The job that evaluates `job`'s dynamic matrix.
pub fn matrix_eval_job_name(job: &str) -> String {
    format!("Evaluate matrix: {job}")
}

pub fn matrix_failure(job: &str, message: String) -> InitFailure {
    InitFailure {
        scope: InitFailureScope::Job,
        category: InitFailureCategory::MatrixExpansion,
        message,
        job_name: Some(job.to_string()),
    }
}

/// `job` as one row to execute: `queued` when it needs nothing, passes no gate and has no
/// `maxParallel` window, else `pending` (the run's progress queues it, holds it or fails it).
fn row(run_id: &RunId, job: &StaticJob, position: i64, now: i64) -> NewJob {
    NewJob {
        job_id: JobId::from(new_id()),
        run_id: run_id.clone(),
        job_name: job.name.clone(),
        base_job_name: job.name.clone(),
        kind: JobKind::Execute,
        matrix: None,
        status: if job.needs.is_empty() && !job.is_gated() && job.max_parallel.is_none() {
            JobStatus::Queued
        } else {
            JobStatus::Pending
        },
        runs_on: job.runs_on.clone(),
        exclude_labels: job.exclude_labels.clone(),
        needs: job.needs.clone(),
        error_message: None,
        init_failure: None,
        position,
        created_at: now,
        dynamic_index: None,
        definition: None,
        reused: None,
    }
}

/// One child of a matrix.
fn child(run_id: &RunId, job: &StaticJob, combination: Combination, position: i64, now: i64) -> NewJob {
    NewJob {
        job_name: child_job_name(&job.name, &combination),
        matrix: Some(combination),
        ..row(run_id, job, position, now)
    }
}

/// The rows a workflow job starts as: one job, its static matrix children, or the job that
/// evaluates its dynamic matrix. A static matrix that does not expand is one failed row.
pub fn initial(run_id: &RunId, job: &StaticJob, position: i64, now: i64) -> Vec<NewJob> {
    match &job.matrix {
        None => vec![row(run_id, job, position, now)],
        Some(LockMatrix::Dynamic { .. }) => vec![NewJob {
            job_name: matrix_eval_job_name(&job.name),
            kind: JobKind::MatrixEval,
            ..row(run_id, job, position, now)
        }],
        Some(LockMatrix::Static { values }) => match matrix::expand(&job.name, values, &job.include, &job.exclude) {
            Ok(combinations) => combinations
                .into_iter()
                .map(|c| child(run_id, job, c, position, now))
                .collect(),
            Err(err) => {
                let message = matrix_expansion_failed(&job.name, &err.to_string());
                vec![NewJob {
                    status: JobStatus::Failed,
                    error_message: Some(message.clone()),
                    init_failure: Some(matrix_failure(&job.name, message)),
                    ..row(run_id, job, position, now)
                }]
            }
        },
    }
}

/// The job that evaluates `job`'s impure `environment`/`env` functions (`Init: <job>`): one
/// per run and job, its id derived from both.
pub fn init_eval(run_id: &RunId, workflow: &LockWorkflow, job: &StaticJob, now: i64) -> NewJob {
    let digest = kici_engine::hash::sha256_hex(format!("{run_id}\0{}", job.name).as_bytes());
    NewJob {
        job_id: JobId::from(format!("init-{}", &digest[..32])),
        job_name: format!("Init: {}", job.name),
        kind: JobKind::InitEval,
        status: JobStatus::Queued,
        needs: Vec::new(),
        ..row(run_id, job, position_of(workflow, &job.name), now)
    }
}

/// The job that runs a `dynamicJob()` generator; its jobs are added when it succeeds.
pub fn generator(run_id: &RunId, generator: &DynamicJob, position: i64, now: i64) -> NewJob {
    NewJob {
        job_id: JobId::from(new_id()),
        run_id: run_id.clone(),
        job_name: format!("Evaluate: {}", generator.name()),
        base_job_name: generator.name(),
        kind: JobKind::DynamicEval,
        matrix: None,
        status: if generator.needs.is_empty() {
            JobStatus::Queued
        } else {
            JobStatus::Pending
        },
        runs_on: Vec::new(),
        exclude_labels: Vec::new(),
        needs: generator.needs.clone(),
        error_message: None,
        init_failure: None,
        position,
        created_at: now,
        dynamic_index: Some(i64::from(generator.source.index)),
        definition: None,
        reused: None,
    }
}

/// The children of an evaluated dynamic matrix: `queued`, as the evaluation ran after the
/// job's needs, unless a gate or a `maxParallel` window keeps them `pending`.
pub fn matrix_children(
    run_id: &RunId,
    workflow: &LockWorkflow,
    job: &StaticJob,
    combinations: Vec<Combination>,
    now: i64,
) -> Vec<NewJob> {
    let position = position_of(workflow, &job.name);
    combinations
        .into_iter()
        .map(|c| NewJob {
            status: if job.is_gated() || job.max_parallel.is_some() {
                JobStatus::Pending
            } else {
                JobStatus::Queued
            },
            ..child(run_id, job, c, position, now)
        })
        .collect()
}

/// The rows of the jobs a generator (the job at `dynamic_index`) described, listed after the
/// workflow's own; `Err` is a static matrix of theirs that does not expand.
pub fn generated(
    run_id: &RunId,
    jobs: &[StaticJob],
    dynamic_index: Option<i64>,
    now: i64,
) -> Result<Vec<NewJob>, String> {
    let mut rows = Vec::new();
    for job in jobs {
        let definition = serde_json::to_string(&job).expect("static jobs serialize");
        let combinations: Vec<Option<Combination>> = match &job.matrix {
            Some(LockMatrix::Static { values }) => matrix::expand(&job.name, values, &job.include, &job.exclude)
                .map_err(|err| err.to_string())?
                .into_iter()
                .map(Some)
                .collect(),
            _ => vec![None],
        };
        for combination in combinations {
            let position = GENERATED_POSITION + rows.len() as i64;
            let base = match combination {
                Some(c) => child(run_id, job, c, position, now),
                None => row(run_id, job, position, now),
            };
            rows.push(NewJob {
                dynamic_index,
                definition: Some(definition.clone()),
                reused: None,
                ..base
            });
        }
    }
    Ok(rows)
}
