//! From a normalized webhook to runs: dedup the delivery, read the lock file at the commit,
//! match every workflow's triggers, and create one run per matched workflow with its jobs
//! (needs graph, static matrices expanded, dynamic ones as evaluation jobs) and the queue
//! entries of the jobs that can start at once.
//!
//! No lock file is no run and no error. A lock file that does not load is a failed run whose
//! init failure (`lock_resolution`) carries the loader's exact text.

use std::path::PathBuf;

use kici_engine::dag::Need;
use kici_engine::event::EventEnvelope;
use kici_engine::failure::{self, InitFailure, InitFailureCategory, InitFailureScope};
use kici_engine::ids::RunId;
use kici_engine::lockfile::{LockFile, LockFileError, LockJob, LockWorkflow};
use kici_engine::status::{JobStatus, RunStatus};
use kici_engine::trigger::{Trigger, match_triggers};
use kici_engine::trust::RunTrust;

use kici_store::{EventLogEntry, NewRun, Source, SourceKind};
use serde_json::{Map, Value};

use crate::clock::now_ms;
use crate::git::{self, LockFetch};
use crate::github_app::TokenScope;
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
    #[error("{git_ref} names no commit in {repo}")]
    UnknownRef { repo: String, git_ref: String },
    #[error("source `{0}` has no repository to read the lock file from (hint: set its path or git URL)")]
    NoRepository(String),
    #[error(transparent)]
    GitHubApp(#[from] crate::github_app::GitHubAppError),
    #[error("cannot decrypt the clone credentials of source `{source_name}`: {source}")]
    Credentials {
        source_name: String,
        #[source]
        source: crate::secret_key::SecretError,
    },
}

/// Where runs of this event clone from, and the orchestrator's copy of the repository, which
/// holds the event's commit (fetched now when the event names only a ref).
pub(crate) async fn repository(
    state: &Shared,
    source: &Source,
    normalized: &Normalized,
) -> Result<(String, PathBuf), PipelineError> {
    match source.kind {
        SourceKind::Local => {
            let path = source
                .path
                .clone()
                .ok_or_else(|| PipelineError::NoRepository(source.name.clone()))?;
            Ok((format!("file://{path}"), PathBuf::from(path)))
        }
        SourceKind::Generic | SourceKind::GitHubApp => {
            let url = generic_clone_url(source, normalized)
                .ok_or_else(|| PipelineError::NoRepository(source.name.clone()))?;
            let credentials = clone_credentials(state, source, &normalized.event, TokenScope::Installation).await?;
            let cache = state.config.data_dir.join("repos").join(&source.source_id);
            let sha = Some(normalized.sha.as_str()).filter(|sha| !sha.is_empty());
            let mirror = git::mirror(&cache, &url, sha, credentials.as_ref())
                .await
                .map_err(|err| PipelineError::LockFetch {
                    repo: git::redact_userinfo(&url).into_owned(),
                    sha: normalized.git_ref.clone(),
                    source: err,
                })?;
            Ok((url, mirror))
        }
    }
}

/// The credentials a clone of `source`'s repository uses: a generic source's own (only for the
/// URL it names itself, never one from a payload), or an installation token of a GitHub App
/// reaching `scope`.
pub(crate) async fn clone_credentials(
    state: &Shared,
    source: &Source,
    event: &EventEnvelope,
    scope: TokenScope<'_>,
) -> Result<Option<git::Credentials>, PipelineError> {
    match source.kind {
        SourceKind::Local => Ok(None),
        SourceKind::Generic if source.git_url.is_none() => Ok(None),
        SourceKind::Generic => crate::source_secrets::credentials(&state.config.secret_keys, source).map_err(|err| {
            PipelineError::Credentials {
                source_name: source.name.clone(),
                source: err,
            }
        }),
        SourceKind::GitHubApp => {
            let installation =
                crate::github_app::installation_id(event).ok_or(crate::github_app::GitHubAppError::NoInstallation)?;
            let token = state
                .github
                .installation_token(&state.config.secret_keys, source, (installation, scope), now_ms())
                .await?;
            Ok(Some(git::Credentials::password("x-access-token", token)))
        }
    }
}

/// GitHub lists at most 20 commits of a push: the files of a longer one come from the compare
/// API. A failure keeps the listed commits' files (logged).
async fn truncated_push_files(state: &Shared, delivery: &mut Delivery) {
    let normalized = &delivery.normalized;
    let Some(payload) = normalized.event.payload.as_ref() else {
        return;
    };
    let listed = payload.get("commits").and_then(Value::as_array).map_or(0, Vec::len);
    let before = payload.get("before").and_then(Value::as_str).unwrap_or_default();
    let (Some(repo), true) = (
        normalized.repo.as_deref(),
        listed >= crate::github_app::TRUNCATED_COMMITS,
    ) else {
        return;
    };
    if normalized.event.event_type != kici_engine::event::EventType::Push
        || before.is_empty()
        || before.bytes().all(|b| b == b'0')
    {
        return;
    }
    let files = async {
        let token = clone_credentials(state, &delivery.source, &normalized.event, TokenScope::Installation)
            .await?
            .map(|c| c.password)
            .unwrap_or_default();
        Ok::<_, PipelineError>(
            state
                .github
                .compare_files(&delivery.source, &token, repo, before, &normalized.sha)
                .await?,
        )
    }
    .await;
    match files {
        Ok(files) => delivery.normalized.event.changed_files = Some(files),
        Err(err) => {
            tracing::warn!(deliveryId = %delivery.delivery_id, error = %err, "the push's changed files are only those of its listed commits")
        }
    }
}

/// The commit an event that names only a ref (a dispatch) runs: the ref's head now.
pub(crate) async fn resolve_head(repo_path: &std::path::Path, git_ref: &str) -> Result<String, PipelineError> {
    let unknown = || PipelineError::UnknownRef {
        repo: repo_path.display().to_string(),
        git_ref: kici_engine::excerpt::excerpt(git_ref).into_owned(),
    };
    git::resolve_ref(repo_path, git_ref)
        .await
        .map_err(|source| PipelineError::LockFetch {
            repo: repo_path.display().to_string(),
            sha: git_ref.to_string(),
            source,
        })?
        .ok_or_else(unknown)
}

/// The commit whose lock file an event runs, and a pull request's trust: its own commit, or
/// for a pull request that is not trusted, its base (the base branch's head when the webhook
/// does not name the base commit), with the hold its trust calls for.
async fn lock_commit(
    repo_path: &std::path::Path,
    normalized: &Normalized,
) -> Result<(String, Option<RunTrust>), PipelineError> {
    let Some(trust) = kici_engine::trust::assess(&normalized.event) else {
        return Ok((normalized.sha.clone(), None));
    };
    if trust.lock_file_source == kici_engine::trust::LockSource::Head {
        return Ok((normalized.sha.clone(), Some(trust)));
    }
    let base = match (&normalized.base_sha, &normalized.event.base_branch) {
        (Some(base), _) => base.clone(),
        (None, Some(branch)) => resolve_head(repo_path, &format!("refs/heads/{branch}")).await?,
        (None, None) => {
            return Err(PipelineError::UnknownRef {
                repo: repo_path.display().to_string(),
                git_ref: "(the pull request's base)".to_string(),
            });
        }
    };
    let edits = match git::changes_under(repo_path, &base, &normalized.sha, ".kici").await {
        Ok(edits) => Some(edits),
        Err(err) => {
            tracing::warn!(sha = %normalized.sha, base = %base, error = %err, "cannot tell whether the pull request changes .kici/; it counts as a change");
            None
        }
    };
    let trust = trust.hold_for(edits);
    tracing::info!(sha = %normalized.sha, trust = %trust.summary(), held = trust.hold.is_some(), "pull request runs the base branch's workflows");
    Ok((base, Some(trust)))
}

/// The lock file at `sha` in the orchestrator's copy of the repository.
pub(crate) async fn read_lock(repo_path: &std::path::Path, sha: &str) -> Result<LockFetch, PipelineError> {
    git::read_lock(repo_path, sha)
        .await
        .map_err(|source| PipelineError::LockFetch {
            repo: repo_path.display().to_string(),
            sha: sha.to_string(),
            source,
        })
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

fn event_log(delivery: &Delivery, status: &str, run_ids: Vec<RunId>, error: Option<String>, now: i64) -> EventLogEntry {
    EventLogEntry {
        id: new_id(),
        delivery_id: delivery.delivery_id.clone(),
        source_id: delivery.source.source_id.clone(),
        event_type: delivery.normalized.event.event_type.as_str().to_string(),
        status: status.to_string(),
        run_ids,
        error_message: error,
        created_at: now,
    }
}

/// Processes a claimed delivery: reads the lock file and creates the runs.
pub async fn process(state: &Shared, mut delivery: Delivery) -> Result<Outcome, PipelineError> {
    let now = now_ms();
    let store = &state.store;
    let fetched = async {
        let (repo_url, path) = repository(state, &delivery.source, &delivery.normalized).await?;
        if delivery.normalized.sha.is_empty() {
            let sha = resolve_head(&path, &delivery.normalized.git_ref).await?;
            delivery.normalized.event.sha = Some(sha.clone());
            delivery.normalized.sha = sha;
        }
        if delivery.source.kind == SourceKind::GitHubApp {
            truncated_push_files(state, &mut delivery).await;
        }
        let (lock_sha, trust) = lock_commit(&path, &delivery.normalized).await?;
        let lock = read_lock(&path, &lock_sha).await?;
        Ok::<_, PipelineError>((repo_url, path, lock, lock_sha, trust))
    }
    .await;
    let log =
        |status: &str, run_ids: Vec<RunId>, error: Option<String>| event_log(&delivery, status, run_ids, error, now);
    let sha = delivery.normalized.sha.clone();
    let (repo_url, repo_path, lock, lock_sha, trust) = match fetched {
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
        SourceKind::Generic | SourceKind::GitHubApp => delivery
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
        lock_sha: Some(lock_sha),
        trust,
        actor: None,
        now,
        rerun_of: None,
        reuse: None,
        lockfile_hash: None,
    };
    let location = format!("{} ref={}", context.repo, delivery.normalized.git_ref);
    let parsed = match lock {
        LockFetch::Missing => None,
        LockFetch::Found(text) => Some(LockFile::parse(&text, &location)),
        LockFetch::TooLarge(bytes) => Some(Err(LockFileError::TooLarge {
            location: kici_engine::excerpt::excerpt(&location).into_owned(),
            bytes,
        })),
    };
    // A lock file that does not load keeps the registrations it would replace.
    if let None | Some(Ok(_)) = &parsed {
        let lock = parsed.as_ref().and_then(|p| p.as_ref().ok());
        let (source_id, normalized) = (&delivery.source.source_id, &delivery.normalized);
        crate::registrations::on_push(
            state,
            source_id,
            normalized,
            &context.repo,
            context.repo_path.as_deref(),
            lock,
        )
        .await;
    }
    let lock = match parsed {
        None => {
            store.insert_event_log(&log("lockfile_missing", vec![], None)).await?;
            tracing::info!(deliveryId = %delivery.delivery_id, sha = %sha, "no lock file at the commit; no run");
            return Ok(Outcome::Ignored(format!("no .kici/kici.lock.json at {sha}")));
        }
        Some(Ok(lock)) => lock,
        Some(Err(err)) => {
            let run_id = context.failed_run(store, &err.to_string()).await?;
            state.run_changed(&run_id);
            store
                .insert_event_log(&log("lockfile_corrupt", vec![run_id.clone()], Some(err.to_string())))
                .await?;
            tracing::warn!(runId = %run_id, deliveryId = %delivery.delivery_id, error = %err, "lock file rejected; run failed");
            return Ok(Outcome::Started(vec![run_id]));
        }
    };
    context.lockfile_hash = lock.lockfile_hash.clone();
    let mut run_ids = Vec::new();
    let mut refused = Vec::new();
    for workflow in &lock.workflows {
        // The lock loaded, so its patterns compile.
        let Some(index) = match_triggers(&workflow.triggers, &delivery.normalized.event)
            .ok()
            .and_then(|m| m.trigger_index)
        else {
            continue;
        };
        let inputs = match dispatch_inputs(&workflow.triggers[index], &delivery.normalized.event) {
            Ok(inputs) => inputs,
            Err(err) => {
                tracing::warn!(deliveryId = %delivery.delivery_id, workflow = %workflow.name, error = %err, "dispatch inputs refused; the workflow does not run");
                refused.push(format!("workflow '{}': {err}", workflow.name));
                continue;
            }
        };
        match context.create_run(state, workflow, inputs).await {
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
    let refused = (!refused.is_empty()).then(|| refused.join("; "));
    store
        .insert_event_log(&log("processed", run_ids.clone(), refused))
        .await?;
    kici_telemetry::metrics::orchestrator::webhook_processed();
    tracing::info!(deliveryId = %delivery.delivery_id, event = %delivery.normalized.event.event_type.as_str(), matchedWorkflows = run_ids.len(), "Webhook processed");
    if run_ids.is_empty() {
        return Ok(Outcome::Ignored("no workflow matched the event".to_string()));
    }
    state.wake_dispatcher();
    Ok(Outcome::Started(run_ids))
}

/// The inputs a run of a dispatch or schedule trigger gets: the event's, validated against the
/// trigger's schema. A trigger without a schema takes none (a forge's dispatch payload stays
/// readable as `ctx.rawPayload`).
pub(crate) fn dispatch_inputs(
    trigger: &Trigger,
    event: &EventEnvelope,
) -> Result<Option<Map<String, Value>>, kici_engine::inputs::InputErrors> {
    match trigger.inputs() {
        Some(schema) => {
            kici_engine::inputs::validate(schema, event.dispatch_inputs.as_ref().unwrap_or(&Map::new())).map(Some)
        }
        None => Ok(None),
    }
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
    #[error("{}", kici_engine::api::run_actions::nothing_failed(.0))]
    NothingFailed(String),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

impl From<kici_store::StoreError> for RerunError {
    fn from(err: kici_store::StoreError) -> RerunError {
        RerunError::Pipeline(PipelineError::Store(err))
    }
}

/// Starts a finished run again for `by` (a token's label or a dashboard user, its actor): the
/// same event, commit and workflow (as the lock file had it at that commit), without matching
/// triggers again; with `failed_only`, only the jobs [`crate::reuse`] says. Returns the new
/// run's id.
pub async fn rerun(state: &Shared, run_id: &RunId, by: &str, failed_only: bool) -> Result<RunId, RerunError> {
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
        .get_source(&run.source_id)
        .await?
        .ok_or_else(|| RerunError::NoSource(run_id.to_string()))?;
    let reuse = if failed_only {
        let original = store.run_jobs(run_id, false).await?;
        if !crate::reuse::anything_failed(&original) {
            return Err(RerunError::NothingFailed(run_id.to_string()));
        }
        Some(original)
    } else {
        None
    };
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
            default_branch: None,
            base_sha: None,
        },
    };
    let context = RunContext {
        delivery: &delivery,
        repo: run.repo.clone(),
        repo_url,
        // The first run stored the source tarball.
        repo_path: None,
        lock_sha: None,
        // A re-run is as trusted as its original: held again unless a maintainer approved it.
        trust: run.trust.clone(),
        actor: Some(by.to_string()),
        now: now_ms(),
        rerun_of: Some(run_id.clone()),
        reuse,
        lockfile_hash,
    };
    let new_run_id = context
        .create_run(state, &workflow, delivery.normalized.event.dispatch_inputs.clone())
        .await?;
    // The original lists its re-runs: the dashboard gets it again.
    state.run_changed(run_id);
    tracing::info!(runId = %new_run_id, rerunOf = %run_id, workflow = %workflow.name, "run started again");
    state.wake_dispatcher();
    Ok(new_run_id)
}

pub(crate) struct RunContext<'a> {
    pub(crate) delivery: &'a Delivery,
    pub(crate) repo: String,
    pub(crate) repo_url: String,
    /// The orchestrator's copy of the repository (the source tarball is packed from it).
    pub(crate) repo_path: Option<PathBuf>,
    /// The commit whose lock file and `.kici/` the run uses, when not its own (an untrusted
    /// pull request's base).
    pub(crate) lock_sha: Option<String>,
    /// A pull request's trust, with the hold it calls for.
    pub(crate) trust: Option<RunTrust>,
    /// Who caused the run when not who its event names (who re-ran it).
    pub(crate) actor: Option<String>,
    pub(crate) now: i64,
    /// A re-run: the run it starts again (its trigger is then `rerun`).
    pub(crate) rerun_of: Option<RunId>,
    /// A re-run of the failed jobs: the original's rows, whose successes it keeps.
    pub(crate) reuse: Option<Vec<kici_store::JobRecord>>,
    /// The lock file's `lockfileHash`.
    pub(crate) lockfile_hash: Option<String>,
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
            trust: self.trust.clone(),
            actor: self.actor.clone(),
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

    /// Creates the run of `workflow` with its jobs; `inputs` are its validated dispatch or
    /// schedule inputs (`ctx.dispatchInputs`).
    pub(crate) async fn create_run(
        &self,
        state: &Shared,
        workflow: &LockWorkflow,
        inputs: Option<Map<String, Value>>,
    ) -> Result<RunId, PipelineError> {
        let mut run = self.new_run(&workflow.name);
        run.event.dispatch_inputs = inputs;
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
        if let Some(original) = &self.reuse {
            // Before the build's need is added: a reused job waits for nothing.
            crate::reuse::apply(&mut jobs, original);
        }
        if run.trust.as_ref().is_some_and(|t| t.hold.is_some()) {
            // Held for a maintainer: the run's progress holds each job as it comes up.
            for job in jobs.iter_mut().filter(|j| j.status == JobStatus::Queued) {
                job.status = JobStatus::Pending;
            }
        }
        if let Some(path) = &self.repo_path {
            let sha = self.lock_sha.as_deref().unwrap_or(&run.sha);
            crate::build::store_source(state, path, sha, workflow).await;
        }
        if let Some(build) =
            crate::build::build_row(state, &run.run_id, workflow, self.lockfile_hash.as_deref(), self.now).await
        {
            // The jobs that need nothing wait for the build (and restore what it stored), and so
            // do a re-run's jobs that need only reused ones.
            let reused: std::collections::HashSet<String> = jobs
                .iter()
                .filter(|j| j.reused.is_some())
                .map(|j| j.base_job_name.clone())
                .collect();
            for job in jobs
                .iter_mut()
                .filter(|j| !j.status.is_terminal() && j.needs.iter().all(|n| reused.contains(n.name())))
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
