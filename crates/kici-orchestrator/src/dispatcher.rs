//! The dispatcher: places queued jobs on idle agents whose labels fit (lowest agent id first,
//! the reference's deterministic pick), one job per agent. A scaler-spawned agent gets the
//! job it was spawned for first, and no other while that job waits. A job no idle agent fits
//! stays queued and the scaler is asked for an agent; after each pass the scaler tops up the
//! warm pools jobs asked for. It runs when woken (a job queued, an
//! agent registered or freed, a spawned agent gone) and once a second as a safety net.

use std::collections::{BTreeMap, HashSet};

use kici_engine::failure::{InitFailure, InitFailureCategory, InitFailureScope};
use kici_engine::ids::{JobId, RunId};
use kici_engine::labels::labels_fit;
use kici_engine::protocol::{DepsCache, DepsPointer, JobDispatch, OrchestratorMessage, SecretValue};
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::hub::Outbound;
use crate::install_secrets;
use crate::scoped_secrets::{self, DEFAULT_ORG};
use crate::state::Shared;
use crate::storage::Access;

/// How long before its queue expiry a job held back for its concurrency group gets a new one.
const EXPIRY_MARGIN_MS: i64 = 60_000;

pub async fn run(state: Shared, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(state.config.dispatch_interval);
    let mut last_postponed = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = state.dispatch.woken() => {}
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(err) = dispatch_pending(&state).await {
            tracing::error!(error = %err, "dispatch pass failed");
        }
        if last_postponed.elapsed() >= POSTPONE_INTERVAL {
            last_postponed = std::time::Instant::now();
            if let Err(err) = postpone_group_expiries(&state).await {
                tracing::error!(error = %err, "postponing the queue expiry of jobs waiting for their concurrency group failed");
            }
        }
        state.scaler.fill_warm_pools();
    }
}

/// How often entries waiting for their concurrency group are looked for near their expiry
/// (well within [`EXPIRY_MARGIN_MS`]).
const POSTPONE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Entries read at a time.
const PAGE: i64 = 128;

/// The secrets the job's environments bind, decrypted for the agent about to run it; the
/// error names what could not be resolved (never a value).
async fn secrets_of(
    state: &Shared,
    dispatch: &JobDispatch,
) -> Result<Result<BTreeMap<String, SecretValue>, String>, kici_store::StoreError> {
    let mut bound = Vec::new();
    for name in &dispatch.job_config.environments {
        match state.store.get_environment(DEFAULT_ORG, name).await? {
            Some(environment) => bound.push(environment),
            None => return Ok(Err(kici_engine::protection::environment_missing(name))),
        }
    }
    let bound: Vec<&kici_engine::protection::Environment> = bound.iter().collect();
    let keys = &state.config.secret_keys;
    let mut resolved = match scoped_secrets::resolve(&state.store, keys, DEFAULT_ORG, &bound).await? {
        Ok(resolved) => resolved,
        Err(err) => return Ok(Err(err)),
    };
    // The secret outputs of the jobs it needs come on top (they name this run's values).
    let upstream: Vec<&str> = dispatch.needs.keys().map(String::as_str).collect();
    match scoped_secrets::outputs_for(&state.store, keys, &dispatch.run_id, &upstream).await? {
        Ok(outputs) => resolved.extend(outputs),
        Err(err) => return Ok(Err(err)),
    }
    Ok(Ok(resolved
        .into_iter()
        .map(|(key, secret)| {
            let value = SecretValue {
                value: secret.value,
                scope: Some(secret.scope),
            };
            (key, value)
        })
        .collect()))
}

/// A signed URL of the workflow's source tarball for a `checkout: false` job; `None` (the
/// agent then says the tarball is missing) when storage fails.
async fn source_tarball(state: &Shared, dispatch: &JobDispatch) -> Option<String> {
    let key = crate::build::source_key(&dispatch.job_config.content_hash);
    match state
        .storage
        .signed_url(Access::Get, &key, DEPS_URL_TTL, now_ms())
        .await
    {
        Ok(url) => Some(url),
        Err(err) => {
            tracing::warn!(jobId = %dispatch.job_id, key = %key, error = %err, "cannot sign the source tarball's URL");
            None
        }
    }
}

/// The run's repository and its source, when both still exist.
async fn run_source(
    state: &Shared,
    run_id: &RunId,
) -> Result<Option<(String, kici_store::Source)>, kici_store::StoreError> {
    let Some(run) = state.store.get_run(run_id).await? else {
        return Ok(None);
    };
    Ok(state
        .store
        .get_source(&run.source_id)
        .await?
        .map(|source| (run.repo, source)))
}

/// The clone credentials of `source` for `repo`, the run's repository
/// (`pipeline::clone_credentials`; a GitHub App's token reaches that repository alone, read
/// only). A failure is logged: the agent's clone then fails with git's own error.
async fn clone_credentials(
    state: &Shared,
    dispatch: &JobDispatch,
    repo: &str,
    source: &kici_store::Source,
) -> Option<crate::git::Credentials> {
    let scope = crate::github_app::TokenScope::ReadOnly(repo);
    match crate::pipeline::clone_credentials(state, source, &dispatch.event, scope).await {
        // An agent trusts the SSH host keys the orchestrator's own clone learned (accept-new)
        // or was given (pinned): never a key it sees first.
        Ok(Some(mut credentials)) if credentials.ssh_key.is_some() && credentials.known_hosts.is_none() => {
            let learned = state
                .config
                .data_dir
                .join("repos")
                .join(source.source_id.as_str())
                .join(crate::git::KNOWN_HOSTS);
            credentials.known_hosts = std::fs::read_to_string(learned).ok().filter(|k| !k.trim().is_empty());
            Some(credentials)
        }
        Ok(credentials) => credentials,
        Err(err) => {
            tracing::error!(runId = %dispatch.run_id, source = %source.name, error = %err, "no clone credentials for the job; it is sent without them");
            None
        }
    }
}

/// Rewrites a used tarball's pointer once a day, so expiry (`KICI_CACHE_TTL_DAYS`) spares it.
async fn refresh_pointer(state: &Shared, pointer_key: &str, now: i64) {
    let storage = &state.storage;
    let result = async {
        let stale = storage
            .modified(pointer_key)
            .await?
            .is_some_and(|modified| now - modified > crate::build::POINTER_REFRESH_MS);
        if stale && let Some(bytes) = storage.get(pointer_key).await? {
            storage.put(pointer_key, bytes).await?;
        }
        Ok::<_, crate::storage::StorageError>(())
    }
    .await;
    if let Err(err) = result {
        tracing::warn!(key = %pointer_key, error = %err, "cannot refresh a dependency tarball's pointer");
    }
}

/// Counts a job sent with its dependency tarball's URLs as a hit or a miss, and records it on
/// the run's timeline, with the size a hit moves (left out when it cannot be read). Only once
/// the job has reached an agent: a send that fails is requeued and sent again.
async fn record_deps_cache(state: &Shared, run_id: &RunId, job_id: &JobId, cache: &DepsCache, now: i64) {
    let hit = cache.download_url.is_some();
    let bytes = match hit {
        true => state.storage.size(&cache.key).await.ok().flatten(),
        false => None,
    };
    if hit {
        kici_telemetry::metrics::orchestrator::dep_cache_hit();
    } else {
        kici_telemetry::metrics::orchestrator::dep_cache_miss();
    }
    let event = kici_store::NewRunEvent {
        event_id: crate::ids::new_id(),
        run_id: run_id.clone(),
        job_id: Some(job_id.clone()),
        event_type: kici_engine::api::RunEventType::DepsCache,
        source_service: "orchestrator".to_string(),
        timestamp_ms: now,
        metadata: serde_json::json!({"outcome": if hit { "hit" } else { "miss" }, "key": cache.key, "bytes": bytes}),
    };
    if let Err(err) = state.timeline.record(event).await {
        tracing::warn!(jobId = %job_id, error = %err, "cannot record the dependency cache event");
    }
}

/// How long a dependency tarball's signed URLs stay valid.
const DEPS_URL_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// The job's dependency tarball for the agent's platform: a download when a complete one is
/// stored (its checksum object is written last), else where to upload the one the agent is
/// about to build. Storage trouble is logged and the agent installs inline.
async fn deps_cache(state: &Shared, dispatch: &JobDispatch, labels: &[String]) -> Option<DepsCache> {
    let hash = dispatch.job_config.lockfile_hash.as_deref()?;
    let label = |prefix: &str| labels.iter().find_map(|l| l.strip_prefix(prefix)).map(str::to_string);
    let base_key = format!("deps/{}-{}/{hash}", label("kici:os:")?, label("kici:arch:")?);
    let pointer_key = format!("{base_key}.json");
    let key = format!("{base_key}/{}.tar.gz", dispatch.job_id);
    let storage = &state.storage;
    let now = now_ms();
    let result = async {
        // An unreadable pointer is as good as none: the job installs and writes a new one.
        let pointer = storage
            .get(&pointer_key)
            .await?
            .and_then(|bytes| serde_json::from_slice::<DepsPointer>(&bytes).ok());
        if pointer.is_some() {
            refresh_pointer(state, &pointer_key, now).await;
        }
        match pointer {
            Some(pointer) => Ok::<_, crate::storage::StorageError>(DepsCache {
                download_url: Some(storage.signed_url(Access::Get, &pointer.key, DEPS_URL_TTL, now).await?),
                sha256: Some(pointer.sha256),
                upload_url: None,
                pointer_upload_url: None,
                max_bytes: None,
                key: pointer.key,
            }),
            None => Ok(DepsCache {
                download_url: None,
                sha256: None,
                upload_url: Some(storage.signed_url(Access::Put, &key, DEPS_URL_TTL, now).await?),
                pointer_upload_url: Some(storage.signed_url(Access::Put, &pointer_key, DEPS_URL_TTL, now).await?),
                max_bytes: Some(state.config.cache_max_tarball_bytes),
                key: key.clone(),
            }),
        }
    }
    .await;
    match result {
        Ok(cache) => Some(cache),
        Err(err) => {
            tracing::warn!(jobId = %dispatch.job_id, key = %key, error = %err, "dependency cache unavailable; the agent installs inline");
            None
        }
    }
}

/// The lock-file hash a build installs; `None` for any other job.
fn build_of(config: &kici_engine::protocol::JobConfig) -> Option<&str> {
    (config.kind == kici_engine::protocol::JobKind::Build)
        .then_some(config.lockfile_hash.as_deref())
        .flatten()
}

/// The (repository, concurrency group) of an entry that has one.
fn group_of(entry: &kici_store::QueueEntry) -> Option<(String, String)> {
    let config = serde_json::from_str::<JobDispatch>(&entry.dispatch).ok()?.job_config;
    config.concurrency_group.map(|group| (config.repo, group))
}

/// The (repository, concurrency group) of each entry that has one.
pub(crate) fn groups_of(entries: &[kici_store::QueueEntry]) -> HashSet<(String, String)> {
    entries.iter().filter_map(group_of).collect()
}

/// An entry's concurrency key, as the queue stores it.
fn key_of(entry: &kici_store::QueueEntry) -> Option<String> {
    group_of(entry).map(|(repo, group)| kici_store::concurrency_key(&repo, &group))
}

/// Whether `group` is taken for `entry`: a job of it is on an agent, or an older one waits
/// ([`kici_store::Store::group_taken`]).
async fn group_taken(
    state: &Shared,
    group: &(String, String),
    entry: &kici_store::QueueEntry,
) -> Result<bool, kici_store::StoreError> {
    let key = kici_store::concurrency_key(&group.0, &group.1);
    state.store.group_taken(&key, entry.enqueued_at, &entry.job_id).await
}

/// The queue timeout is for want of an agent: an entry waiting for its concurrency group gets
/// a new expiry shortly before it would come. A pass does this for the entries it reads; this
/// reaches the ones it does not (no idle agent fits them).
pub async fn postpone_group_expiries(state: &Shared) -> Result<(), kici_store::StoreError> {
    let Some(timeout) = state.config.queue_timeout else {
        return Ok(());
    };
    let now = now_ms();
    let expiring = state
        .store
        .group_entries_expiring_before(now + EXPIRY_MARGIN_MS)
        .await?;
    if expiring.is_empty() {
        return Ok(());
    }
    // A run waiting for its turn in its workflow's group waits for that, not for its jobs'.
    let waiting_runs: HashSet<RunId> = state.store.queued_concurrency_runs().await?.into_iter().collect();
    for entry in expiring {
        let Some(group) = group_of(&entry).filter(|_| !waiting_runs.contains(&entry.run_id)) else {
            continue;
        };
        if group_taken(state, &group, &entry).await? {
            let expires_at = now + timeout.as_millis() as i64;
            state.store.postpone_expiry(&entry.job_id, expires_at).await?;
        }
    }
    Ok(())
}

/// One pass: waiting entries, oldest first, are placed on fitting idle agents or ask the
/// scaler for one. Without scalers a pass reads only the label sets an idle agent fits
/// ([`by_label_set`]); with them it reads every entry, since the scaler is asked about each
/// one no idle agent fits.
pub async fn dispatch_pending(state: &Shared) -> Result<(), kici_store::StoreError> {
    state.store.index_waiting_entries(key_of).await?;
    if state.scaler.config().scalers.is_empty() {
        // Nothing to place anything on: nothing to read.
        if state.hub.idle_agents().is_empty() {
            return Ok(());
        }
        by_label_set(state, &mut PassState::new(state).await?).await
    } else {
        in_queue_order(state, &mut PassState::new(state).await?).await
    }
}

/// Every waiting entry, a page at a time.
async fn in_queue_order(state: &Shared, pass: &mut PassState) -> Result<(), kici_store::StoreError> {
    let mut after: Option<(i64, JobId)> = None;
    loop {
        let page = state
            .store
            .pending_entries_after(after.as_ref().map(|(at, job)| (*at, job)), PAGE)
            .await?;
        let more = page.len() as i64 == PAGE;
        after = page.last().map(|e| (e.enqueued_at, e.job_id.clone()));
        for entry in page {
            place(state, pass, entry).await?;
        }
        if !more {
            return Ok(());
        }
    }
}

/// The waiting entries of the label sets an idle agent fits, merged in queue order and read a
/// page of a set at a time. A set is no longer read once none of the agents that fit it is
/// idle, so a pass costs the entries it places (and a page per set), not the queue; entries
/// no idle agent fits are not read at all.
async fn by_label_set(state: &Shared, pass: &mut PassState) -> Result<(), kici_store::StoreError> {
    let idle = state.hub.idle_agents();
    if idle.is_empty() {
        return Ok(());
    }
    let mut sets = Vec::new();
    for set in state.store.waiting_label_sets().await? {
        match set {
            Ok(set) => sets.extend(SetCursor::new(set, &idle)),
            Err(err) => unreadable_label_set(&err),
        }
    }
    loop {
        let idle: HashSet<_> = state.hub.idle_agents().into_iter().map(|a| a.agent_id).collect();
        sets.retain(|set| set.fitting.iter().any(|agent| idle.contains(agent)));
        for set in &mut sets {
            set.read_page_if_empty(state).await?;
        }
        sets.retain(|set| !set.page.is_empty());
        let Some(oldest) = sets.iter_mut().min_by_key(|set| set.head()) else {
            return Ok(());
        };
        let entry = oldest.page.pop_front().expect("sets left have entries");
        place(state, pass, entry).await?;
    }
}

/// A label set the queue holds that does not read as label lists: its jobs wait until their
/// queue timeout. Said once per set, not every pass.
fn unreadable_label_set(err: &kici_store::StoreError) {
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let text = err.to_string();
    if !said.contains(&text) {
        tracing::error!(error = %text, "queued jobs have a label set that cannot be read; no agent is matched to them and they wait until their queue timeout");
        said.push(text);
    }
}

/// Where a pass is in one label set's entries.
struct SetCursor {
    set: kici_store::LabelSet,
    /// The idle agents that fit the set when the pass began.
    fitting: Vec<kici_engine::ids::AgentId>,
    page: std::collections::VecDeque<kici_store::QueueEntry>,
    /// `(enqueued_at, job_id)` of the last entry read; `None` before the first page.
    after: Option<(i64, JobId)>,
    exhausted: bool,
}

impl SetCursor {
    /// `None` when no idle agent fits the set.
    fn new(set: kici_store::LabelSet, idle: &[crate::hub::ConnectedAgent]) -> Option<SetCursor> {
        // Lock files were validated at load, so their matchers compile.
        let fitting: Vec<_> = idle
            .iter()
            .filter(|a| labels_fit(&set.runs_on, &set.exclude_labels, &a.labels).unwrap_or(false))
            .map(|a| a.agent_id.clone())
            .collect();
        (!fitting.is_empty()).then_some(SetCursor {
            set,
            fitting,
            page: Default::default(),
            after: None,
            exhausted: false,
        })
    }

    async fn read_page_if_empty(&mut self, state: &Shared) -> Result<(), kici_store::StoreError> {
        if !self.page.is_empty() || self.exhausted {
            return Ok(());
        }
        let after = self.after.as_ref().map(|(at, job)| (*at, job));
        let page = state
            .store
            .pending_entries_of_label_set(&self.set.key, after, PAGE)
            .await?;
        self.exhausted = (page.len() as i64) < PAGE;
        self.after = page.last().map(|e| (e.enqueued_at, e.job_id.clone()));
        self.page = page.into();
        Ok(())
    }

    /// The queue position of the set's next entry.
    fn head(&self) -> Option<(i64, JobId)> {
        self.page.front().map(|e| (e.enqueued_at, e.job_id.clone()))
    }
}

/// What a pass reads once, or once it needs it.
struct PassState {
    /// Every waiting job's id, read when an agent bound to a job or a build needs it.
    waiting: Option<HashSet<JobId>>,
    busy: HashSet<JobId>,
    /// (repository, group) of the concurrency groups this pass has seen: the first entry of a
    /// group holds it for the pass, placed or not.
    groups_seen: HashSet<(String, String)>,
    /// A run waiting for its turn in its workflow's concurrency group has one job waiting on
    /// an agent; its other jobs would only wait too, so they stay queued until its turn comes.
    waiting_runs: HashSet<RunId>,
}

impl PassState {
    async fn new(state: &Shared) -> Result<PassState, kici_store::StoreError> {
        Ok(PassState {
            waiting: None,
            busy: state.hub.all().into_iter().filter_map(|a| a.busy_job).collect(),
            groups_seen: HashSet::new(),
            waiting_runs: state.store.queued_concurrency_runs().await?.into_iter().collect(),
        })
    }

    async fn load_waiting(&mut self, state: &Shared) -> Result<(), kici_store::StoreError> {
        if self.waiting.is_none() {
            self.waiting = Some(state.store.pending_job_ids().await?.into_iter().collect());
        }
        Ok(())
    }

    fn is_waiting(&self, job_id: &JobId) -> bool {
        self.waiting.as_ref().is_some_and(|waiting| waiting.contains(job_id))
    }
}

/// Places one pending entry on a fitting idle agent, or asks the scaler for one.
async fn place(
    state: &Shared,
    pass: &mut PassState,
    entry: kici_store::QueueEntry,
) -> Result<(), kici_store::StoreError> {
    if pass.waiting_runs.contains(&entry.run_id) {
        return Ok(());
    }
    // An unreadable dispatch is failed once claimed, below.
    let config = serde_json::from_str::<JobDispatch>(&entry.dispatch)
        .ok()
        .map(|d| d.job_config);
    // One job of a concurrency group at a time: the others wait queued, oldest first.
    let group = config
        .as_ref()
        .and_then(|c| c.concurrency_group.clone().map(|g| (c.repo.clone(), g)));
    if let Some(group) = &group {
        // The oldest entry of the group holds it for this pass, placed or not, so a younger
        // one never overtakes it; the first asks the queue (a pass by label set may not read
        // an older one, and another orchestrator may have placed one).
        let first_seen = pass.groups_seen.insert(group.clone());
        if !first_seen || group_taken(state, group, &entry).await? {
            let first_time = state
                .group_waits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(entry.job_id.clone());
            if first_time {
                tracing::info!(runId = %entry.run_id, jobId = %entry.job_id, group = %group.1, "job waits for a job of its concurrency group to finish");
            }
            // The queue timeout is for want of an agent: waiting for the group does not
            // count against it (its expiry moves on shortly before it would come).
            if let (Some(at), Some(timeout)) = (entry.expires_at, state.config.queue_timeout) {
                let now = now_ms();
                if at - now < EXPIRY_MARGIN_MS {
                    state
                        .store
                        .postpone_expiry(&entry.job_id, now + timeout.as_millis() as i64)
                        .await?;
                }
            }
            return Ok(());
        }
    }
    // One build per lock file at a time: the others wait, then restore what it stored.
    if let Some(hash) = config.as_ref().and_then(build_of) {
        pass.load_waiting(state).await?;
        if !state.builds.try_start(hash, &entry.job_id, |job| {
            pass.is_waiting(job) || pass.busy.contains(job)
        }) {
            return Ok(());
        }
    }
    let pick_any = config.as_ref().is_some_and(|c| c.pick_any);
    // Lock files were validated at load, so their matchers compile.
    let fits = |labels: &[String]| labels_fit(&entry.runs_on, &entry.exclude_labels, labels).unwrap_or(false);
    let idle = state.hub.idle_agents();
    // An agent a scaler started for another job that still waits is kept for that job.
    if idle.iter().any(|a| a.bound_job.is_some()) {
        pass.load_waiting(state).await?;
    }
    let free_for_this_job = |bound: &Option<JobId>| {
        bound
            .as_ref()
            .is_none_or(|job| *job == entry.job_id || !pass.is_waiting(job))
    };
    // `min_by_key` keeps the first of equals: an agent bound to this job, else (with
    // `pick: 'any'`, the least used, then) the lowest id.
    let Some(agent) = idle
        .into_iter()
        .filter(|a| free_for_this_job(&a.bound_job) && fits(&a.labels))
        .min_by_key(|a| {
            (
                a.bound_job.as_deref() != Some(entry.job_id.as_str()),
                if pick_any { a.jobs_sent } else { 0 },
            )
        })
    else {
        let could_fit = state.hub.all().iter().any(|a| !a.single_use && fits(&a.labels));
        state.scaler.provision(&entry, could_fit);
        return Ok(());
    };
    let now = now_ms();
    let deadline = now + state.config.dispatch_ack_timeout.as_millis() as i64;
    if !state
        .store
        .claim_entry(&entry.job_id, &agent.agent_id, deadline)
        .await?
    {
        return Ok(());
    }
    state.hub.set_busy(&agent.agent_id, Some(&entry.job_id));
    state.scaler.dispatched(&agent.agent_id, &entry.job_id);
    if group.is_some() {
        state
            .group_waits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&entry.job_id);
    }
    let mut dispatch: JobDispatch = match serde_json::from_str(&entry.dispatch) {
        Ok(dispatch) => dispatch,
        Err(err) => {
            let error = format!("the stored dispatch of this job is unreadable: {err}");
            crate::progress::fail_job(
                state,
                &entry.job_id,
                &entry.run_id,
                kici_engine::status::JobStatus::Failed,
                &error,
                None,
            )
            .await?;
            state.hub.release(&agent.agent_id, &entry.job_id);
            return Ok(());
        }
    };
    let resolved = match secrets_of(state, &dispatch).await? {
        Err(message) => Err((
            InitFailureScope::Job,
            InitFailureCategory::SecretResolution,
            format!("Secret resolution failed: {message}"),
        )),
        Ok(secrets) => {
            dispatch.secrets = secrets;
            install_secrets::resolve(state, &dispatch).await?.map_err(|reason| {
                (
                    InitFailureScope::Run,
                    InitFailureCategory::InstallSecrets,
                    kici_engine::install::rejected(&reason),
                )
            })
        }
    };
    // A pull request that runs the base branch's workflows runs code nobody trusted yet:
    // it gets no secret, and a job that needs one fails saying why.
    let resolved = match resolved {
        Ok(install)
            if dispatch.job_config.base_workflows
                && (!dispatch.secrets.is_empty() || !install.registries.is_empty() || !install.env.is_empty()) =>
        {
            let why = kici_engine::trust::assess(&dispatch.event)
                .map(|trust| trust.reason)
                .unwrap_or_default();
            Err((
                InitFailureScope::Job,
                InitFailureCategory::SecretResolution,
                kici_engine::trust::secrets_withheld(&why),
            ))
        }
        other => other,
    };
    match resolved {
        Ok(install) => {
            dispatch.npm_registries = install.registries;
            dispatch.install_env_secrets = install.env;
        }
        Err((scope, category, message)) => {
            let init = InitFailure {
                scope,
                category,
                message,
                job_name: Some(dispatch.job_config.job_name.clone()),
            };
            crate::progress::fail_job_before_start(
                state,
                &entry.job_id,
                &entry.run_id,
                kici_engine::status::JobStatus::Failed,
                &init.message,
                None,
                Some(&init),
            )
            .await?;
            state.hub.release(&agent.agent_id, &entry.job_id);
            return Ok(());
        }
    }
    dispatch.deps = deps_cache(state, &dispatch, &agent.labels).await;
    // A store error requeues the job: sent without its repository, it could not check out.
    if let Some((repo, source)) = run_source(state, &dispatch.run_id).await? {
        dispatch.clone_credentials = clone_credentials(state, &dispatch, &repo, &source).await;
        dispatch.served_repository = crate::repo_server::serve_to(state, &source, &dispatch, &agent.agent_id, now);
    }
    if !dispatch.job_config.checkout || dispatch.job_config.base_workflows {
        dispatch.source_tar_url = source_tarball(state, &dispatch).await;
    }
    // Nor may it write the caches trusted runs restore.
    if !dispatch.job_config.repo.is_empty() && !dispatch.job_config.base_workflows {
        dispatch.cache = Some(crate::grants::issue(
            &state.grant_keys,
            &dispatch,
            &dispatch.job_config.repo,
            // The agent resolves it against the URL it reached this orchestrator at.
            String::new(),
            now,
        ));
    }
    dispatch.timestamp = now;
    let deps = dispatch.deps.clone();
    tracing::info!(runId = %entry.run_id, jobId = %entry.job_id, agentId = %agent.agent_id, attempt = entry.attempts + 1, "job dispatched");
    if agent
        .tx
        .send(Outbound::Message(OrchestratorMessage::JobDispatch(Box::new(dispatch))))
        .await
        .is_err()
    {
        state.hub.release(&agent.agent_id, &entry.job_id);
        state.store.requeue_entry(&entry.job_id).await?;
        return Ok(());
    }
    if let Some(deps) = &deps {
        record_deps_cache(state, &entry.run_id, &entry.job_id, deps, now).await;
    }
    Ok(())
}
