//! What every handler and connection shares: the configuration, the cache, the orchestrator
//! registry, the live hub, and the shutdown signal. One `Arc` per process.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cache::Cache;
use crate::config::Config;
use crate::connections::Connections;
use crate::live::LiveHub;

pub struct AppState {
    pub config: Config,
    pub cache: Cache,
    pub connections: Connections,
    pub live: LiveHub,
    pub started: Instant,
    /// Turns `true` when the Platform stops: sockets and streams end on it.
    pub shutdown: watch::Receiver<bool>,
    /// Signed-in browsers.
    pub browser_sessions: crate::http::Sessions,
    /// Orchestrator socket sessions; owned here so `Platform::stop` can wait for them.
    pub sessions: Mutex<JoinSet<()>>,
}

pub type Shared = Arc<AppState>;

impl AppState {
    /// Runs an orchestrator session as a task owned by the Platform.
    pub fn spawn_session(&self, session: impl Future<Output = ()> + Send + 'static) {
        let mut sessions = self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Reap finished sessions so the set does not grow with every reconnect.
        while sessions.try_join_next().is_some() {}
        sessions.spawn(session);
    }

    /// Takes the sessions to wait for at shutdown.
    pub fn take_sessions(&self) -> JoinSet<()> {
        std::mem::take(&mut *self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
