//! Build coordination: what every job of a run would otherwise prepare for itself is made once
//! and stored.
//!
//! - The **source tarball** `source/<contentHash>.tar.gz` (`.kici/` and the `hashFiles`) is
//!   packed by the orchestrator from its own copy of the repository with `git archive` when a
//!   run is created, so nothing of the author's runs to make it; `checkout: false` jobs unpack
//!   it instead of cloning.
//! - The **dependency tarball** (`deps/<platform>-<arch>/<lockfileHash>`) is made by a build
//!   job, `__build__<workflow>`, on an agent labelled `kici:role:builder` that fits the first
//!   job: installing runs the packages' scripts, so it happens on an agent. The run's other
//!   jobs wait for it and restore the tarball; a failed build fails the run
//!   (`build_coordination`, `Build failed: <err>`). Builds of one lock file coalesce: while
//!   one runs, the others stay queued (`build_slots`), then restore what it stored instead of
//!   installing.
//!
//! With a tarball stored already, nothing is built.

use std::path::Path;

use kici_engine::failure::build_job_name;
use kici_engine::ids::{JobId, RunId};
use kici_engine::labels::{BUILDER_LABEL, LabelMatcher, labels_fit};
use kici_engine::lockfile::{LockJob, LockWorkflow};
use kici_engine::protocol::JobKind;
use kici_engine::status::JobStatus;
use kici_store::NewJob;

use crate::state::Shared;

/// The object key of a workflow's source tarball.
pub fn source_key(content_hash: &str) -> String {
    format!("source/{content_hash}.tar.gz")
}

/// Stores the workflow's source tarball unless it is stored already. Failures are logged:
/// only `checkout: false` jobs need it, and they say so when it is missing.
pub async fn store_source(state: &Shared, repo: &Path, sha: &str, workflow: &LockWorkflow) {
    let key = source_key(&workflow.content_hash);
    let result = async {
        if state.storage.exists(&key).await.map_err(|err| err.to_string())? {
            kici_telemetry::metrics::orchestrator::source_cache(true);
            return Ok(());
        }
        kici_telemetry::metrics::orchestrator::source_cache(false);
        let mut paths = vec![".kici".to_string()];
        paths.extend(workflow.resolved_hash_files.iter().cloned());
        let tarball = crate::git::archive(repo, sha, &paths)
            .await
            .map_err(|err| err.to_string())?;
        state.storage.put(&key, tarball).await.map_err(|err| err.to_string())
    }
    .await;
    if let Err(err) = result {
        tracing::warn!(workflow = %workflow.name, key = %key, error = %err, "workflow source tarball not stored");
    }
}

/// The platform the run's dependencies are built for: that of the first connected agent that
/// fits the first job, else this host's.
fn target_platform(state: &Shared, runs_on: &[LabelMatcher], exclude: &[LabelMatcher]) -> (String, String) {
    let agents = state.hub.all();
    let fitting = agents
        .iter()
        .find(|agent| labels_fit(runs_on, exclude, &agent.labels).unwrap_or(false));
    let label = |prefix: &str| {
        fitting.and_then(|agent| {
            agent
                .labels
                .iter()
                .find_map(|l| l.strip_prefix(prefix))
                .map(str::to_string)
        })
    };
    (
        label("kici:os:").unwrap_or_else(|| std::env::consts::OS.to_string()),
        label("kici:arch:").unwrap_or_else(|| std::env::consts::ARCH.to_string()),
    )
}

/// The run's build job, when the workflow has a lock file hash and no dependency tarball is
/// stored for the target platform yet.
pub async fn build_row(
    state: &Shared,
    run_id: &RunId,
    workflow: &LockWorkflow,
    lockfile_hash: Option<&str>,
    now: i64,
) -> Option<NewJob> {
    let hash = lockfile_hash?;
    let first = workflow.jobs.iter().find_map(LockJob::as_static);
    let (runs_on, exclude) = first.map_or((Vec::new(), Vec::new()), |job| {
        (job.runs_on.clone(), job.exclude_labels.clone())
    });
    let (os, arch) = target_platform(state, &runs_on, &exclude);
    let pointer = format!("deps/{os}-{arch}/{hash}.json");
    match state.storage.exists(&pointer).await {
        Ok(true) => return None,
        Ok(false) => {}
        Err(err) => {
            // Jobs install inline when storage fails; a build could not store anything either.
            tracing::warn!(workflow = %workflow.name, error = %err, "dependency tarball lookup failed; no build");
            return None;
        }
    }
    let mut runs_on = runs_on;
    runs_on.push(LabelMatcher::Exact {
        value: BUILDER_LABEL.to_string(),
    });
    let name = build_job_name(&workflow.name);
    Some(NewJob {
        job_id: JobId::from(crate::ids::new_id()),
        run_id: run_id.clone(),
        job_name: name.clone(),
        base_job_name: name,
        kind: JobKind::Build,
        matrix: None,
        status: JobStatus::Queued,
        runs_on,
        exclude_labels: exclude,
        needs: Vec::new(),
        error_message: None,
        init_failure: None,
        position: -1,
        created_at: now,
        dynamic_index: None,
        definition: None,
        reused: None,
    })
}

/// A stored dependency tarball is kept while its pointer is younger than `KICI_CACHE_TTL_DAYS`;
/// a job that restores it rewrites the pointer when it is older than this.
pub const POINTER_REFRESH_MS: i64 = 24 * 3600 * 1000;

/// Deletes what is past `KICI_CACHE_TTL_DAYS`: source tarballs written before it, dependency
/// pointers not refreshed since (with the tarballs they name), and tarballs no fresh pointer
/// names (a lost race, an abandoned upload). How many objects went.
pub async fn expire_tarballs(state: &Shared, now_ms: i64) -> Result<usize, crate::storage::StorageError> {
    let before = now_ms - state.config.cache_ttl.as_millis() as i64;
    let storage = &state.storage;
    let mut expired: Vec<String> = storage
        .list("source/")
        .await?
        .into_iter()
        .filter(|(_, modified)| *modified < before)
        .map(|(key, _)| key)
        .collect();
    let deps = storage.list("deps/").await?;
    let mut kept = std::collections::HashSet::new();
    for (key, modified) in deps.iter().filter(|(key, _)| key.ends_with(".json")) {
        if *modified < before {
            expired.push(key.clone());
            continue;
        }
        let named = storage
            .get(key)
            .await?
            .and_then(|bytes| serde_json::from_slice::<kici_engine::protocol::DepsPointer>(&bytes).ok());
        if let Some(pointer) = named {
            kept.insert(pointer.key);
        }
    }
    expired.extend(
        deps.into_iter()
            .filter(|(key, modified)| !key.ends_with(".json") && *modified < before && !kept.contains(key))
            .map(|(key, _)| key),
    );
    for key in &expired {
        storage.delete(key).await?;
    }
    if !expired.is_empty() {
        tracing::info!(count = expired.len(), "expired source and dependency tarballs");
    }
    Ok(expired.len())
}
