//! Runs started without a webhook: a dispatch through the API (`kici dispatch`) and a
//! schedule's tick. Each names a source, a repository, a ref and a workflow; the workflow runs
//! as the lock file at the ref's head has it, when one of its triggers accepts the event, with
//! that trigger's inputs validated, coerced and defaulted.

use kici_engine::event::EventEnvelope;
use kici_engine::ids::RunId;
use kici_engine::inputs::InputErrors;
use kici_engine::lockfile::LockFile;
use kici_engine::trigger::match_triggers;
use kici_store::{Source, SourceKind};

use crate::clock::now_ms;
use crate::git::{self, LockFetch};
use crate::pipeline::{self, Delivery, PipelineError, RunContext};
use crate::providers::Normalized;
use crate::state::Shared;

/// What to start.
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub source: Source,
    /// `owner/name`, for a generic source whose URL is a template.
    pub repo: Option<String>,
    /// A branch, tag, full ref or commit; the repository's default branch when `None`.
    pub git_ref: Option<String>,
    pub workflow: String,
    /// A `dispatch` (with its action) or `schedule` event; its `dispatchInputs` are the inputs
    /// as given, not yet validated.
    pub event: EventEnvelope,
    /// Names the start in the event log (`dispatch:<id>`, `schedule:<registration>:<tick>`).
    pub delivery_id: String,
    /// Where the registering push came from: the clone URL its payload named (for a source
    /// without one of its own) and its GitHub App installation.
    pub origin: Origin,
}

/// What a registration remembers of the push that registered it.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub clone_url: Option<String>,
    pub installation_id: Option<i64>,
}

impl Origin {
    pub fn of(registration: &kici_store::Registration) -> Origin {
        Origin {
            clone_url: registration.clone_url.clone(),
            installation_id: registration.installation_id,
        }
    }
}

/// The run started, and where.
#[derive(Debug, Clone)]
pub struct Started {
    pub run_id: RunId,
    pub git_ref: String,
    pub sha: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("source `{0}` is disabled (hint: `kici-admin source enable {0}`)")]
    Disabled(String),
    #[error("{repo} has no default branch (hint: name a branch with --ref)")]
    NoDefaultBranch { repo: String },
    #[error(
        "there is no .kici/kici.lock.json at {git_ref} ({sha}) (hint: run `kici compile`, commit the lock file and push)"
    )]
    NoLock { git_ref: String, sha: String },
    #[error("{0}")]
    Lock(String),
    #[error("the lock file at {git_ref} has no workflow named '{name}' (workflows: {known})")]
    NoWorkflow {
        git_ref: String,
        name: String,
        known: String,
    },
    #[error("workflow '{workflow}' does not run on {what}: {why}")]
    NotTriggered {
        workflow: String,
        what: String,
        why: String,
    },
    #[error("workflow '{workflow}': {errors}")]
    Inputs { workflow: String, errors: InputErrors },
}

impl From<kici_store::StoreError> for StartError {
    fn from(err: kici_store::StoreError) -> StartError {
        StartError::Pipeline(PipelineError::Store(err))
    }
}

/// The full ref a name means in `repo`: a branch first, then a tag; a commit stays as given.
async fn full_ref(repo: &std::path::Path, name: &str) -> Result<String, PipelineError> {
    if name.starts_with("refs/") {
        return Ok(name.to_string());
    }
    for candidate in [format!("refs/heads/{name}"), format!("refs/tags/{name}")] {
        let found = git::resolve_ref(repo, &candidate)
            .await
            .map_err(|source| PipelineError::LockFetch {
                repo: repo.display().to_string(),
                sha: name.to_string(),
                source,
            })?;
        if found.is_some() {
            return Ok(candidate);
        }
    }
    Ok(name.to_string())
}

/// Starts the request's workflow at the head of its ref.
pub async fn start(state: &Shared, request: StartRequest) -> Result<Started, StartError> {
    if !request.source.enabled {
        return Err(StartError::Disabled(request.source.name.clone()));
    }
    let mut event = request.event;
    if let Some(id) = request.origin.installation_id {
        // Clones and check runs of a GitHub App source go through the push's installation.
        let payload = event.payload.get_or_insert_with(|| serde_json::json!({}));
        if let Some(object) = payload.as_object_mut() {
            object.insert("installation".into(), serde_json::json!({ "id": id }));
        }
    }
    let mut normalized = Normalized {
        event,
        git_ref: String::new(),
        sha: String::new(),
        repo: request.repo.clone(),
        clone_url: request.origin.clone_url.clone(),
        default_branch: None,
        base_sha: None,
    };
    let (repo_url, path) = pipeline::repository(state, &request.source, &normalized).await?;
    let repo = match request.source.kind {
        SourceKind::Local => request.source.name.clone(),
        SourceKind::Generic | SourceKind::GitHubApp => {
            request.repo.clone().unwrap_or_else(|| request.source.name.clone())
        }
    };
    let name = match request.git_ref {
        Some(name) => name,
        None => git::head_branch(&path)
            .await
            .ok()
            .flatten()
            .ok_or_else(|| StartError::NoDefaultBranch { repo: repo.clone() })?,
    };
    let git_ref = full_ref(&path, &name).await?;
    let sha = pipeline::resolve_head(&path, &git_ref).await?;
    normalized.event.target_branch = Some(
        git_ref
            .strip_prefix("refs/heads/")
            .or_else(|| git_ref.strip_prefix("refs/tags/"))
            .unwrap_or(&git_ref)
            .to_string(),
    );
    normalized.event.sha = Some(sha.clone());
    normalized.git_ref = git_ref.clone();
    normalized.sha = sha.clone();
    let text = match pipeline::read_lock(&path, &sha).await? {
        LockFetch::Found(text) => text,
        LockFetch::Missing => return Err(StartError::NoLock { git_ref, sha }),
        LockFetch::TooLarge(bytes) => {
            return Err(StartError::Lock(format!(
                "the lock file at {git_ref} is {bytes} bytes, over the limit"
            )));
        }
    };
    let lock =
        LockFile::parse(&text, &format!("{repo} ref={git_ref}")).map_err(|err| StartError::Lock(err.to_string()))?;
    let Some(workflow) = lock.workflow(&request.workflow) else {
        let known: Vec<&str> = lock.workflows.iter().map(|w| w.name.as_str()).collect();
        return Err(StartError::NoWorkflow {
            git_ref,
            name: kici_engine::excerpt::excerpt(&request.workflow).into_owned(),
            known: known.join(", "),
        });
    };
    let event_type = normalized.event.event_type.as_str();
    let outcome =
        match_triggers(&workflow.triggers, &normalized.event).map_err(|err| StartError::Lock(err.to_string()))?;
    let Some(index) = outcome.trigger_index else {
        let failed: Vec<String> = outcome
            .checks
            .iter()
            .filter(|c| !c.pass && c.field != "type")
            .map(|c| format!("{} expects {}, got {}", c.field, c.expected, c.actual))
            .collect();
        let why = if failed.is_empty() {
            format!("it has no {event_type}() trigger (hint: add `{event_type}()` to its `on` and compile)")
        } else {
            failed.join("; ")
        };
        return Err(StartError::NotTriggered {
            workflow: workflow.name.clone(),
            what: format!("a {event_type}"),
            why,
        });
    };
    let trigger = &workflow.triggers[index];
    let given = normalized.event.dispatch_inputs.clone().unwrap_or_default();
    let inputs = match trigger.inputs() {
        None if !given.is_empty() => {
            let errors = kici_engine::inputs::validate(&Default::default(), &given).expect_err("no input is declared");
            return Err(StartError::Inputs {
                workflow: workflow.name.clone(),
                errors,
            });
        }
        _ => pipeline::dispatch_inputs(trigger, &normalized.event).map_err(|errors| StartError::Inputs {
            workflow: workflow.name.clone(),
            errors,
        })?,
    };
    let delivery = Delivery {
        source: request.source,
        delivery_id: request.delivery_id,
        body_key: String::new(),
        normalized,
    };
    let context = RunContext {
        delivery: &delivery,
        repo,
        repo_url,
        repo_path: Some(path),
        lock_sha: None,
        trust: None,
        actor: None,
        now: now_ms(),
        rerun_of: None,
        reuse: None,
        lockfile_hash: lock.lockfile_hash.clone(),
    };
    let run_id = context.create_run(state, workflow, inputs).await?;
    state
        .store
        .insert_event_log(&kici_store::EventLogEntry {
            id: crate::ids::new_id(),
            delivery_id: delivery.delivery_id.clone(),
            source_id: delivery.source.source_id.clone(),
            event_type: event_type.to_string(),
            status: "processed".to_string(),
            run_ids: vec![run_id.clone()],
            error_message: None,
            created_at: now_ms(),
        })
        .await?;
    tracing::info!(runId = %run_id, workflow = %workflow.name, gitRef = %git_ref, sha = %sha, event = %event_type, "run started without a webhook");
    state.wake_dispatcher();
    Ok(Started { run_id, git_ref, sha })
}
