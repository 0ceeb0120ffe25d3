//! What every part of the orchestrator shares, as handles that say what each part may touch:
//! the configuration, the store, the log files, the connected agents (`hub`), the dispatcher's
//! wake signal, the run timeline, the Platform link and the scaler's handle. The scaler gets
//! only its own [`ScalerContext`] of these, never the state.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use kici_engine::ids::JobId;
use kici_store::Store;

use crate::config::Config;
use crate::events::Timeline;
use crate::hub::Hub;
use crate::logs::LogStore;
use crate::platform_link::PlatformLink;
use crate::rate_limit::RateLimits;
use crate::scaler::{ScalerConfig, ScalerContext, ScalerManager, ScalerTask, SpawnSettings};
use crate::storage::Storage;
use crate::tasks::Tasks;
use crate::wake::DispatchWake;

pub type Shared = Arc<AppState>;

pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub logs: LogStore,
    /// Objects shared across agents (dependency tarballs), reached by signed URLs.
    pub storage: Arc<Storage>,
    pub hub: Arc<Hub>,
    /// Auto-scalers: agents started when no connected agent fits a queued job.
    pub scaler: ScalerManager,
    /// Run metadata and live logs pushed to the dashboard, when one is configured.
    pub(crate) platform: Arc<PlatformLink>,
    /// Runs whose commit statuses may have changed.
    pub(crate) forge_watch: crate::run_watch::RunWatch,
    /// Runs that may have finished jobs to announce to `jobComplete()`/`workflowComplete()`.
    pub(crate) completion_watch: crate::run_watch::RunWatch,
    /// Woken when an event was stored for the router to deliver.
    pub(crate) event_wake: tokio::sync::Notify,
    /// GitHub App installation tokens and the client that asks for them.
    pub(crate) github: crate::github_app::GitHubApps,
    pub(crate) timeline: Timeline,
    /// Woken whenever a job may have become dispatchable (queued, agent free, agent joined).
    pub(crate) dispatch: DispatchWake,
    /// Verified webhook deliveries per source and minute.
    pub(crate) webhook_limits: RateLimits,
    /// Runs started by events, per workflow and minute.
    pub(crate) event_limits: RateLimits,
    /// Background work started while serving; shutdown waits for it.
    pub(crate) background: Tasks,
    /// The dependency builds running now (one per lock file).
    pub(crate) builds: crate::build_slots::BuildSlots,
    /// Signs the grants jobs reach the cache API with.
    pub(crate) grant_keys: crate::grants::GrantKeys,
    /// Concurrency group decisions are made one at a time (read the group, then change it).
    pub(crate) concurrency_turns: tokio::sync::Mutex<()>,
    /// Queued jobs the dispatcher holds back for their job concurrency group (logged once).
    pub(crate) group_waits: std::sync::Mutex<HashSet<JobId>>,
    /// How this orchestrator names itself to its peers and the Platform: `host:port`.
    pub instance_id: String,
    pub(crate) started_at_ms: i64,
    /// Since when it holds the leader lock (`cluster`), 0 when it does not: it then runs the
    /// sweeper and the schedules.
    pub(crate) leading_since: std::sync::atomic::AtomicI64,
    /// A dispatch announcement to the other orchestrators is on its way.
    announcing: Arc<std::sync::atomic::AtomicBool>,
    pub started: Instant,
}

impl AppState {
    /// The state, and the scaler task its owner runs (until shutdown).
    pub fn new(config: Config, store: Store, storage: Storage, scalers: ScalerConfig) -> (Shared, ScalerTask) {
        let storage = Arc::new(storage);
        // Object storage is what several orchestrators share; the filesystem backend is this
        // host's alone.
        let logs = if storage.is_shared() {
            LogStore::objects(&config.data_dir, storage.clone())
        } else {
            LogStore::files(&config.data_dir)
        };
        let hub = Arc::new(Hub::default());
        let platform = Arc::new(PlatformLink::new(config.platform_url.is_some()));
        let timeline = Timeline::new(store.clone(), platform.clone());
        let dispatch = DispatchWake::default();
        let (scaler, task) = ScalerManager::new(
            scalers,
            ScalerContext {
                store: store.clone(),
                timeline: timeline.clone(),
                logs: logs.clone(),
                hub: hub.clone(),
                wake: dispatch.clone(),
                spawn: Arc::new(SpawnSettings::new(&config)),
            },
        );
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let instance_id = format!("{}:{}", host.trim(), config.port);
        let grant_keys = crate::grants::GrantKeys::of(config.secret_keys.current(), config.secret_keys.old());
        let state = AppState {
            config,
            store,
            logs,
            storage,
            hub,
            scaler,
            platform,
            forge_watch: crate::run_watch::RunWatch::default(),
            completion_watch: crate::run_watch::RunWatch::default(),
            event_wake: tokio::sync::Notify::new(),
            github: crate::github_app::GitHubApps::default(),
            timeline,
            dispatch,
            webhook_limits: RateLimits::default(),
            event_limits: RateLimits::default(),
            background: Tasks::default(),
            builds: crate::build_slots::BuildSlots::default(),
            grant_keys,
            concurrency_turns: tokio::sync::Mutex::new(()),
            group_waits: std::sync::Mutex::new(HashSet::new()),
            instance_id,
            started_at_ms: crate::clock::now_ms(),
            leading_since: std::sync::atomic::AtomicI64::new(0),
            announcing: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            started: Instant::now(),
        };
        (Arc::new(state), task)
    }

    /// This orchestrator runs the singleton duties (`cluster`).
    pub fn leads(&self) -> bool {
        self.leading_since.load(std::sync::atomic::Ordering::SeqCst) > 0
    }

    /// Something about the run changed: the dashboard and the forge statuses follow.
    pub(crate) fn run_changed(&self, run_id: &kici_engine::ids::RunId) {
        self.platform.run_changed(run_id);
        self.forge_watch.changed(run_id);
        self.completion_watch.changed(run_id);
    }

    /// Wakes this dispatcher and, on PostgreSQL, the other orchestrators' (the job may be for
    /// their agents): one announcement in flight at a time, wakes meanwhile folded into it.
    pub fn wake_dispatcher(&self) {
        self.dispatch.wake();
        if self.store.backend() == kici_store::Backend::Postgres
            && !self.announcing.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let (store, announcing) = (self.store.clone(), self.announcing.clone());
            tokio::spawn(async move {
                announcing.store(false, std::sync::atomic::Ordering::SeqCst);
                if let Err(err) = store.announce_dispatch().await {
                    tracing::warn!(error = %err, "telling the other orchestrators a job was queued failed; their dispatchers find it at their next pass");
                }
            });
        }
    }
}
