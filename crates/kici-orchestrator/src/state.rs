//! What every part of the orchestrator shares: configuration, the store, the log files, the
//! registry of connected agents, and the signal that wakes the dispatcher.

use std::sync::Arc;
use std::time::Instant;

use kici_store::Store;
use tokio::sync::Notify;

use crate::config::Config;
use crate::hub::Hub;
use crate::logs::LogStore;
use crate::platform::PlatformLink;
use crate::rate_limit::RateLimits;
use crate::scaler::ScalerManager;

pub type Shared = Arc<AppState>;

pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub logs: LogStore,
    pub hub: Hub,
    /// Auto-scalers: agents started when no connected agent fits a queued job.
    pub scaler: ScalerManager,
    /// Run metadata and live logs pushed to the dashboard, when one is configured.
    pub platform: PlatformLink,
    /// Woken whenever a job may have become dispatchable (queued, agent free, agent joined).
    pub dispatch: Notify,
    /// Verified webhook deliveries per source and minute.
    pub webhook_limits: RateLimits,
    pub started: Instant,
}

impl AppState {
    pub fn wake_dispatcher(&self) {
        self.dispatch.notify_one();
    }
}
