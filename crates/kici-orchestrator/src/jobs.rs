//! What an agent is sent for a job: the `job.dispatch` message kept in its queue entry, built
//! from the run (event, clone URL, workflow entry) and the job row.

use kici_engine::event::EventEnvelope;
use kici_engine::ids::{JobId, RunId};
use kici_engine::lockfile::{LockWorkflow, StaticJob};
use kici_engine::protocol::{JobConfig, JobDispatch, JobKind};
use kici_store::{NewQueueEntry, NewRun};
use serde_json::{Map, Value};

use crate::config::Config;

/// The parts of a run a dispatch needs.
pub struct RunFacts<'a> {
    pub run_id: &'a RunId,
    pub repo: &'a str,
    pub git_ref: &'a str,
    pub sha: &'a str,
    pub repo_url: &'a str,
    pub event: &'a EventEnvelope,
    /// The `.kici/` dependencies' cache key (`lockfileHash`).
    pub lockfile_hash: Option<&'a str>,
}

impl<'a> From<&'a NewRun> for RunFacts<'a> {
    fn from(run: &'a NewRun) -> Self {
        RunFacts {
            run_id: &run.run_id,
            repo: &run.repo,
            git_ref: &run.git_ref,
            sha: &run.sha,
            repo_url: &run.repo_url,
            event: &run.event,
            lockfile_hash: run.lockfile_hash.as_deref(),
        }
    }
}

/// The job's fields a dispatch needs.
pub struct JobFacts<'a> {
    pub job_id: &'a JobId,
    pub job_name: &'a str,
    pub base_job_name: &'a str,
    pub kind: JobKind,
    pub matrix: Option<&'a Map<String, Value>>,
    /// Generated jobs and generator evaluations: the generator's index.
    pub dynamic_index: Option<i64>,
    /// Generated jobs: their definition (JSON `StaticJob`).
    pub definition: Option<&'a str>,
}

impl<'a> From<&'a kici_store::JobRecord> for JobFacts<'a> {
    fn from(record: &'a kici_store::JobRecord) -> JobFacts<'a> {
        JobFacts {
            job_id: &record.job.job_id,
            job_name: &record.job.job_name,
            base_job_name: &record.job.base_job_name,
            kind: record.kind,
            matrix: record.matrix.as_ref(),
            dynamic_index: record.dynamic_index,
            definition: record.definition.as_deref(),
        }
    }
}

impl<'a> From<&'a kici_store::NewJob> for JobFacts<'a> {
    fn from(job: &'a kici_store::NewJob) -> Self {
        JobFacts {
            job_id: &job.job_id,
            job_name: &job.job_name,
            base_job_name: &job.base_job_name,
            kind: job.kind,
            matrix: job.matrix.as_ref(),
            dynamic_index: job.dynamic_index,
            definition: job.definition.as_deref(),
        }
    }
}

/// What the gates resolved for a job: its environments, its `env` when it is a function, and
/// the variables of its environments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prepared {
    pub environments: Vec<String>,
    /// The job's concurrency group: `concurrencyGroup` resolved, else its first environment.
    pub concurrency_group: Option<String>,
    pub job_env: Option<Map<String, Value>>,
    pub variables: std::collections::BTreeMap<String, String>,
}

/// The `job.dispatch` for a job; `needs` holds the upstream results by base job name.
pub fn dispatch_message(
    run: &RunFacts<'_>,
    workflow: &LockWorkflow,
    job: &JobFacts<'_>,
    prepared: &Prepared,
    needs: Map<String, Value>,
    now: i64,
) -> JobDispatch {
    let generated: Option<StaticJob> = job.definition.and_then(|d| serde_json::from_str(d).ok());
    let definition = generated
        .as_ref()
        .or_else(|| crate::rows::lock_job(workflow, job.base_job_name));
    let timeout_ms = definition.and_then(|j| j.timeout);
    // Builds and evaluations load the workflow from a clone.
    let checkout = job.kind != JobKind::Execute || definition.is_none_or(|j| j.checkout != Some(false));
    let kind = job.kind;
    // The environments' variables are the lowest layer: KiCI's own variables win.
    let mut env: Map<String, Value> = prepared
        .variables
        .iter()
        .map(|(name, value)| (name.clone(), Value::String(value.clone())))
        .collect();
    let mut set = |key: &str, value: &str| {
        env.insert(key.to_string(), Value::String(value.to_string()));
    };
    set("KICI_RUN_ID", run.run_id);
    set("KICI_JOB_ID", job.job_id);
    set("KICI_WORKFLOW_NAME", &workflow.name);
    set("KICI_JOB_NAME", job.job_name);
    set("KICI_REPO", run.repo);
    set("KICI_REF", run.git_ref);
    set("KICI_SHA", run.sha);
    set("KICI_EVENT_TYPE", run.event.event_type.as_str());
    if let Some(branch) = &run.event.target_branch {
        set("KICI_BRANCH", branch);
    }
    JobDispatch {
        run_id: run.run_id.clone(),
        job_id: job.job_id.clone(),
        repo_url: run.repo_url.to_string(),
        git_ref: run.git_ref.to_string(),
        sha: run.sha.to_string(),
        job_config: JobConfig {
            kind,
            repo: run.repo.to_string(),
            workflow_name: workflow.name.clone(),
            workflow_file: workflow.source.file.clone(),
            content_hash: workflow.content_hash.clone(),
            resolved_hash_files: workflow.resolved_hash_files.clone(),
            job_name: job.base_job_name.to_string(),
            display_name: job.job_name.to_string(),
            matrix: job.matrix.cloned(),
            timeout_ms,
            dynamic_index: job.dynamic_index.map(|i| i as u32),
            env,
            job_env: prepared.job_env.clone(),
            environments: prepared.environments.clone(),
            lockfile_hash: run.lockfile_hash.map(str::to_string),
            checkout,
            base_workflows: kici_engine::trust::assess(run.event)
                .is_some_and(|trust| trust.lock_file_source == kici_engine::trust::LockSource::Base),
            pick_any: definition.and_then(|j| j.runs_on_pick) == Some(kici_engine::lockfile::RunsOnPick::Any),
            concurrency_group: prepared.concurrency_group.clone(),
            grace_period_secs: definition.and_then(|j| j.grace_period),
            concurrency_wait_timeout_ms: None,
            registries: workflow.registries.clone(),
            install_env: workflow.install_env.clone(),
        },
        event: run.event.clone(),
        needs,
        timestamp: now,
        secrets: Default::default(),
        deps: None,
        npm_registries: Vec::new(),
        install_env_secrets: Default::default(),
        source_tar_url: None,
        clone_credentials: None,
        cache: None,
        served_repository: None,
        orchestrator_url: None,
    }
}

/// A queue entry for a new job of `run`.
pub fn queue_entry(
    config: &Config,
    run: &NewRun,
    workflow: &LockWorkflow,
    job: &kici_store::NewJob,
    needs: Map<String, Value>,
    now: i64,
) -> NewQueueEntry {
    entry(
        config,
        &RunFacts::from(run),
        workflow,
        &JobFacts::from(job),
        &Prepared::default(),
        needs,
        now,
    )
}

pub fn entry(
    config: &Config,
    run: &RunFacts<'_>,
    workflow: &LockWorkflow,
    job: &JobFacts<'_>,
    prepared: &Prepared,
    needs: Map<String, Value>,
    now: i64,
) -> NewQueueEntry {
    let mut dispatch = dispatch_message(run, workflow, job, prepared, needs, now);
    if workflow.concurrency.is_some() {
        dispatch.job_config.concurrency_wait_timeout_ms = Some(config.concurrency_wait_timeout.as_millis() as u64);
    }
    let concurrency_key = (dispatch.job_config.concurrency_group.as_deref())
        .map(|group| kici_store::concurrency_key(&dispatch.job_config.repo, group));
    NewQueueEntry {
        job_id: job.job_id.clone(),
        run_id: run.run_id.clone(),
        enqueued_at: now,
        expires_at: config.queue_timeout.map(|t| now + t.as_millis() as i64),
        dispatch: serde_json::to_string(&dispatch).expect("dispatch messages serialize"),
        concurrency_key,
    }
}
