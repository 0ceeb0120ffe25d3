//! The triggers that fire without a git event (spec `authoring.md` §2.4): a push to a
//! repository's default branch registers its lock file's schedules and event triggers
//! (`kiciEvent()`, `workflowComplete()`, `jobComplete()`, `genericWebhook()`), replacing what
//! the previous default-branch push registered. A push whose lock file is gone removes them;
//! one whose lock file does not load keeps them (the failed run says why).

use std::path::Path;

use kici_engine::event::EventType;
use kici_engine::ids::SourceId;
use kici_engine::lockfile::LockFile;
use kici_engine::trigger::Trigger;
use kici_store::{NewRegistration, RegisteredAt};

use crate::ids::new_id;
use crate::providers::Normalized;
use crate::state::Shared;

/// A workflow of the default branch, listed with its triggers (`kind` `workflow`, trigger
/// index -1, the triggers as the lock file has them): the dashboard's Workflows page.
pub const WORKFLOW_KIND: &str = "workflow";

/// The registrations a lock file declares: each workflow, and its triggers that fire without a
/// git event.
pub fn declared(lock: &LockFile) -> Vec<NewRegistration> {
    let listed = lock.workflows.iter().map(|workflow| NewRegistration {
        workflow_name: workflow.name.clone(),
        trigger_index: -1,
        kind: WORKFLOW_KIND.to_string(),
        trigger_json: serde_json::to_string(&workflow.triggers).expect("triggers serialize"),
    });
    let fired = lock.workflows.iter().flat_map(|workflow| {
        workflow
            .triggers
            .iter()
            .enumerate()
            .filter(|(_, trigger)| {
                matches!(
                    trigger,
                    Trigger::Schedule { .. }
                        | Trigger::KiciEvent { .. }
                        | Trigger::WorkflowComplete { .. }
                        | Trigger::JobComplete { .. }
                        | Trigger::GenericWebhook { .. }
                )
            })
            .map(|(index, trigger)| NewRegistration {
                workflow_name: workflow.name.clone(),
                trigger_index: index as i64,
                kind: trigger.kind().to_string(),
                trigger_json: serde_json::to_string(trigger).expect("a trigger serializes"),
            })
    });
    listed.chain(fired).collect()
}

/// After a push's lock file was read: on the default branch, the repository's registrations
/// become the lock file's (`None`: there is none). Failures are logged; the push's runs go on.
pub async fn on_push(
    state: &Shared,
    source_id: &SourceId,
    normalized: &Normalized,
    repo: &str,
    repo_path: Option<&Path>,
    lock: Option<&LockFile>,
) {
    let Some(branch) = normalized.git_ref.strip_prefix("refs/heads/") else {
        return;
    };
    if normalized.event.event_type != EventType::Push {
        return;
    }
    let default_branch = match (&normalized.default_branch, repo_path) {
        (Some(branch), _) => Some(branch.clone()),
        (None, Some(path)) => crate::git::head_branch(path).await.ok().flatten(),
        (None, None) => None,
    };
    if default_branch.as_deref() != Some(branch) {
        return;
    }
    let registrations = lock.map(declared).unwrap_or_default();
    let at = RegisteredAt {
        source_id,
        repo,
        git_ref: &normalized.git_ref,
        sha: &normalized.sha,
        now: crate::clock::now_ms(),
        clone_url: normalized.clone_url.as_deref(),
        installation_id: crate::github_app::installation_id(&normalized.event).and_then(|id| i64::try_from(id).ok()),
    };
    match state.store.replace_registrations(at, &registrations, new_id).await {
        Ok(()) => tracing::info!(
            repo = %repo,
            sha = %normalized.sha,
            registrations = registrations.len(),
            "registrations replaced from the default branch's lock file"
        ),
        Err(err) => tracing::error!(
            repo = %repo,
            sha = %normalized.sha,
            error = %err,
            "replacing the registrations of the default branch failed; the previous ones stay until its next push"
        ),
    }
}
