//! From a normalized webhook to runs: dedup the delivery, read the lock file at the commit,
//! match every workflow's triggers, and create one run per matched workflow with its jobs
//! (needs graph, static matrices expanded, dynamic ones as evaluation jobs) and the queue
//! entries of the jobs that can start at once.
//!
//! No lock file is no run and no error. A lock file that does not load is a failed run whose
//! init failure (`lock_resolution`) carries the loader's exact text.

use std::path::PathBuf;

use kici_engine::dag::Need;
use kici_engine::failure::{self, InitFailure, InitFailureCategory, InitFailureScope};
use kici_engine::ids::RunId;
use kici_engine::lockfile::{LockFile, LockFileError, LockJob, LockWorkflow};
use kici_engine::status::{JobStatus, RunStatus};
use kici_engine::trigger::match_triggers;
use kici_store::{EventLogEntry, NewRun, Source, SourceKind};
use serde_json::Map;

use crate::clock::now_ms;
use crate::git::{self, LockFetch};
use crate::ids::new_id;
use crate::jobs::queue_entry;
use crate::providers::Normalized;
use crate::rows;
use crate::state::Shared;

/// The workflow name of a run whose lock file could not be read.
pub const UNRESOLVED_WORKFLOW: &str = "(unresolved workflow)";

/// A verified webhook ready to process, claimed by [`crate::deliveries::accept`].
#[derive(Debug, Clone)]
pub struct Delivery {
    pub source: Source,
    pub delivery_id: String,
    /// The claim on the body (`body:<sourceId>:<sha256>`), released with the id's on a failure
    /// a redelivery may retry.
    pub body_key: String,
    pub normalized: Normalized,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to run, and why.
    Ignored(String),
    Started(Vec<RunId>),
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] kici_store::StoreError),
    #[error("cannot read the lock file of {repo} at {sha}: {source}")]
    LockFetch {
        repo: String,
        sha: String,
        #[source]
        source: git::GitError,
    },
    #[error("source `{0}` has no repository to read the lock file from (hint: set its path or git URL)")]
    NoRepository(String),
    #[error("cannot decrypt the clone credentials of source `{source_name}`: {source}")]
    Credentials {
        source_name: String,
        #[source]
        source: crate::secret_key::SecretError,
    },
}

/// Where runs of this delivery clone from, and where the orchestrator reads the lock file.
async fn repository(state: &Shared, delivery: &Delivery) -> Result<(String, PathBuf), PipelineError> {
    let source = &delivery.source;
    let sha = &delivery.normalized.sha;
    match source.kind {
        SourceKind::Local => {
            let path = source
                .path
                .clone()
                .ok_or_else(|| PipelineError::NoRepository(source.name.clone()))?;
            Ok((format!("file://{path}"), PathBuf::from(path)))
        }
        SourceKind::Generic => {
            let url = generic_clone_url(source, &delivery.normalized)
                .ok_or_else(|| PipelineError::NoRepository(source.name.clone()))?;
            // Credentials go only to the URL the source names, never to one from a payload.
            let credentials = match source.git_url {
                Some(_) => crate::source_secrets::credentials(&state.config.secret_keys, source).map_err(|err| {
                    PipelineError::Credentials {
                        source_name: source.name.clone(),
                        source: err,
                    }
                })?,
                None => None,
            };
            let cache = state.config.data_dir.join("repos").join(&source.source_id);
            let mirror = git::mirror(&cache, &url, sha, credentials.as_ref())
                .await
                .map_err(|source| PipelineError::LockFetch {
                    repo: git::redact_userinfo(&url).into_owned(),
                    sha: sha.clone(),
                    source,
                })?;
            Ok((url, mirror))
        }
    }
}

/// The source's URL template with `{owner}` and `{name}` filled in, or the payload's clone URL.
fn generic_clone_url(source: &Source, normalized: &Normalized) -> Option<String> {
    match (&source.git_url, &normalized.repo) {
        (Some(template), Some(repo)) => {
            let (owner, name) = repo.split_once('/').unwrap_or(("", repo));
            Some(template.replace("{owner}", owner).replace("{name}", name))
        }
        (Some(template), None) => Some(template.clone()),
        (None, _) => normalized.clone_url.clone(),
    }
}

/// Processes a claimed delivery: reads the lock file and creates the runs.
pub async fn process(state: &Shared, delivery: Delivery) -> Result<Outcome, PipelineError> {
    let now = now_ms();
    let store = &state.store;
    let log = |status: &str, run_ids: Vec<RunId>, error: Option<String>| EventLogEntry {
        id: new_id(),
        delivery_id: delivery.delivery_id.clone(),
        source_id: delivery.source.source_id.clone(),
        event_type: delivery.normalized.event.event_type.as_str().to_string(),
        status: status.to_string(),
        run_ids,
        error_message: error,
        created_at: now,
    };
    let sha = delivery.normalized.sha.clone();
    let fetched = match repository(state, &delivery).await {
        Ok((repo_url, path)) => git::read_lock(&path, &sha)
            .await
            .map(|lock| (repo_url, path.clone(), lock))
            .map_err(|source| PipelineError::LockFetch {
                repo: path.display().to_string(),
                sha: sha.clone(),
                source,
            }),
        Err(err) => Err(err),
    };
    let (repo_url, repo_path, lock) = match fetched {
        Ok(found) => found,
        Err(err) => {
            // The delivery may be retried once the repository is readable.
            store
                .release_delivery(&delivery.delivery_id, &delivery.body_key)
                .await?;
            store
                .insert_event_log(&log("failed", vec![], Some(err.to_string())))
                .await?;
            return Err(err);
        }
    };
    // A local source's runs carry its own name, not one the request body claims.
    let repo = match delivery.source.kind {
        SourceKind::Local => delivery.source.name.clone(),
        SourceKind::Generic => delivery
            .normalized
            .repo
            .clone()
            .unwrap_or_else(|| delivery.source.name.clone()),
    };
    let mut context = RunContext {
        delivery: &delivery,
        repo,
        repo_url,
        repo_path: Some(repo_path),
        now,
        rerun_of: None,
        lockfile_hash: None,
    };
    let text = match lock {
        LockFetch::Missing => {
            store.insert_event_log(&log("lockfile_missing", vec![], None)).await?;
            tracing::info!(deliveryId = %delivery.delivery_id, sha = %sha, "no lock file at the commit; no run");
            return Ok(Outcome::Ignored(format!("no .kici/kici.lock.json at {sha}")));
        }
        LockFetch::Found(text) => Ok(text),
        LockFetch::TooLarge(bytes) => Err(bytes),
    };
    let location = format!("{} ref={}", context.repo, delivery.normalized.git_ref);
    let parsed = match text {
        Ok(text) => LockFile::parse(&text, &location),
        Err(bytes) => Err(LockFileError::TooLarge {
            location: kici_engine::excerpt::excerpt(&location).into_owned(),
            bytes,
        }),
    };
    let lock = match parsed {
        Ok(lock) => lock,
        Err(err) => {
            let run_id = context.failed_run(store, &err.to_string()).await?;
            state.platform.run_changed(&run_id);
            store
                .insert_event_log(&log("lockfile_corrupt", vec![run_id.clone()], Some(err.to_string())))
                .await?;
            tracing::warn!(runId = %run_id, deliveryId = %delivery.delivery_id, error = %err, "lock file rejected; run failed");
            return Ok(Outcome::Started(vec![run_id]));
        }
    };
    context.lockfile_hash = lock.lockfile_hash.clone();
    let mut run_ids = Vec::new();
    for workflow in &lock.workflows {
        // The lock loaded, so its patterns compile.
        let matched = match_triggers(&workflow.triggers, &delivery.normalized.event)
            .map(|m| m.trigger_index.is_some())
            .unwrap_or(false);
        if !matched {
            continue;
        }
        match context.create_run(state, workflow).await {
            Ok(run_id) => run_ids.push(run_id),
            Err(err) => {
                // With no run created yet, a redelivery may try again; once one exists, a retry
                // would duplicate it, so the claim stays.
                if run_ids.is_empty() {
                    store
                        .release_delivery(&delivery.delivery_id, &delivery.body_key)
                        .await?;
                }
                store
                    .insert_event_log(&log("failed", run_ids.clone(), Some(err.to_string())))
                    .await?;
                return Err(err);
            }
        }
    }
    store.insert_event_log(&log("processed", run_ids.clone(), None)).await?;
    kici_telemetry::metrics::orchestrator::webhook_processed();
    tracing::info!(deliveryId = %delivery.delivery_id, event = %delivery.normalized.event.event_type.as_str(), matchedWorkflows = run_ids.len(), "Webhook processed");
    if run_ids.is_empty() {
        return Ok(Outcome::Ignored("no workflow matched the event".to_string()));
    }
    state.wake_dispatcher();
    Ok(Outcome::Started(run_ids))
}

/// Why a run cannot be re-run.
#[derive(Debug, thiserror::Error)]
pub enum RerunError {
    #[error("run {0} not found")]
    NotFound(String),
    #[error("run {run_id} is still {status}; wait for it to finish or cancel it first")]
    NotFinished { run_id: String, status: RunStatus },
    #[error(
        "run {0} has no workflow to run again: its lock file could not be read (hint: fix the lock file and push again)"
    )]
    NoWorkflow(String),
    #[error("the source of run {0} no longer exists (hint: add the source again, then push)")]
    NoSource(String),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

impl From<kici_store::StoreError> for RerunError {
    fn from(err: kici_store::StoreError) -> RerunError {
        RerunError::Pipeline(PipelineError::Store(err))
    }
}

/// Starts a finished run again: the same event, commit and workflow (as the lock file had it
/// at that commit), without matching triggers again. Returns the new run's id.
pub async fn rerun(state: &Shared, run_id: &RunId) -> Result<RunId, RerunError> {
    let store = &state.store;
    let run = store
        .get_run(run_id)
        .await?
        .ok_or_else(|| RerunError::NotFound(run_id.to_string()))?;
    if !run.status.is_terminal() {
        return Err(RerunError::NotFinished {
            run_id: run_id.to_string(),
            status: run.status,
        });
    }
    let Some(kici_store::RunInputs {
        event,
        repo_url,
        workflow: Some(workflow),
        lockfile_hash,
    }) = store.run_context(run_id).await?
    else {
        return Err(RerunError::NoWorkflow(run_id.to_string()));
    };
    let source = store
        .list_sources()
        .await?
        .into_iter()
        .find(|s| s.source_id == run.source_id)
        .ok_or_else(|| RerunError::NoSource(run_id.to_string()))?;
    let delivery = Delivery {
        source,
        delivery_id: format!("rerun-{}", new_id()),
        body_key: String::new(),
        normalized: Normalized {
            event,
            git_ref: run.git_ref.clone(),
            sha: run.sha.clone(),
            repo: Some(run.repo.clone()),
            clone_url: Some(repo_url.clone()),
        },
    };
    let context = RunContext {
        delivery: &delivery,
        repo: run.repo.clone(),
        repo_url,
        // The first run stored the source tarball.
        repo_path: None,
        now: now_ms(),
        rerun_of: Some(run_id.clone()),
        lockfile_hash,
    };
    let new_run_id = context.create_run(state, &workflow).await?;
    // The original lists its re-runs: the dashboard gets it again.
    state.platform.run_changed(run_id);
    tracing::info!(runId = %new_run_id, rerunOf = %run_id, workflow = %workflow.name, "run started again");
    state.wake_dispatcher();
    Ok(new_run_id)
}

struct RunContext<'a> {
    delivery: &'a Delivery,
    repo: String,
    repo_url: String,
    /// The orchestrator's copy of the repository (the source tarball is packed from it).
    repo_path: Option<PathBuf>,
    now: i64,
    /// A re-run: the run it starts again (its trigger is then `rerun`).
    rerun_of: Option<RunId>,
    /// The lock file's `lockfileHash`.
    lockfile_hash: Option<String>,
}

impl RunContext<'_> {
    fn new_run(&self, workflow_name: &str) -> NewRun {
        let normalized = &self.delivery.normalized;
        NewRun {
            run_id: RunId::from(new_id()),
            source_id: self.delivery.source.source_id.clone(),
            repo: self.repo.clone(),
            workflow_name: workflow_name.to_string(),
            git_ref: normalized.git_ref.clone(),
            sha: normalized.sha.clone(),
            trigger_type: match &self.rerun_of {
                Some(_) => "rerun".to_string(),
                None => normalized.event.event_type.as_str().to_string(),
            },
            provider: normalized.event.provider.clone().unwrap_or_else(|| "local".to_string()),
            delivery_id: self.delivery.delivery_id.clone(),
            status: RunStatus::Pending,
            failure_reason: None,
            init_failure: None,
            event: normalized.event.clone(),
            repo_url: self.repo_url.clone(),
            lock_workflow: None,
            created_at: self.now,
            completed_at: None,
            rerun_of: self.rerun_of.clone(),
            lockfile_hash: self.lockfile_hash.clone(),
        }
    }

    /// A run that failed before any job: the lock file is present but unusable.
    async fn failed_run(&self, store: &kici_store::Store, message: &str) -> Result<RunId, PipelineError> {
        let mut run = self.new_run(UNRESOLVED_WORKFLOW);
        run.status = RunStatus::Failed;
        run.failure_reason = Some(message.to_string());
        run.init_failure = Some(InitFailure {
            scope: InitFailureScope::Run,
            category: InitFailureCategory::LockResolution,
            message: message.to_string(),
            job_name: None,
        });
        run.completed_at = Some(self.now);
        store.insert_run(&run, &[], &[]).await?;
        Ok(run.run_id)
    }

    async fn create_run(&self, state: &Shared, workflow: &LockWorkflow) -> Result<RunId, PipelineError> {
        let mut run = self.new_run(&workflow.name);
        run.lock_workflow = Some(workflow.clone());
        let mut jobs = Vec::new();
        for (position, entry) in workflow.jobs.iter().enumerate() {
            match entry {
                LockJob::Static(job) => jobs.extend(rows::initial(&run.run_id, job, position as i64, self.now)),
                LockJob::Dynamic(generator) => {
                    jobs.push(rows::generator(&run.run_id, generator, position as i64, self.now))
                }
            }
        }
        if let Some(path) = &self.repo_path {
            crate::build::store_source(state, path, &run.sha, workflow).await;
        }
        if let Some(build) =
            crate::build::build_row(state, &run.run_id, workflow, self.lockfile_hash.as_deref(), self.now).await
        {
            // The jobs that need nothing wait for the build (and restore what it stored).
            for job in jobs
                .iter_mut()
                .filter(|j| j.needs.is_empty() && !j.status.is_terminal())
            {
                job.needs.push(Need::Name(build.base_job_name.clone()));
                job.status = JobStatus::Pending;
            }
            jobs.insert(0, build);
        }
        // Jobs beyond the queue's capacity fail now instead of waiting without bound.
        let mut room = crate::progress::queue_room(state).await?;
        for job in jobs.iter_mut().filter(|j| j.status == JobStatus::Queued) {
            if room == 0 {
                let message = failure::queue_full(state.config.queue_max_depth);
                job.status = JobStatus::Failed;
                job.error_message = Some(message.clone());
                job.init_failure = Some(InitFailure {
                    scope: InitFailureScope::Job,
                    category: InitFailureCategory::NoAgent,
                    message,
                    job_name: Some(job.base_job_name.clone()),
                });
            } else {
                room -= 1;
            }
        }
        let queue: Vec<_> = jobs
            .iter()
            .filter(|j| j.status == JobStatus::Queued)
            .map(|j| queue_entry(&state.config, &run, workflow, j, Map::new(), self.now))
            .collect();
        state.store.insert_run(&run, &jobs, &queue).await?;
        tracing::info!(runId = %run.run_id, workflow = %workflow.name, deliveryId = %self.delivery.delivery_id, jobs = jobs.len(), "run created");
        // Jobs that failed at creation (bad matrix) may already finish the run.
        crate::progress::advance_run(state, &run.run_id).await?;
        Ok(run.run_id)
    }
}
