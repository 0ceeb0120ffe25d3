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
    /// Live streams open per session or token, for the per-caller cap.
    pub open_streams: Arc<crate::http::OpenStreams>,
    /// When each run was last re-run, for the cooldown.
    pub rerun_cooldown: Cooldown,
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

/// Last time per key, refusing a repeat within a window.
#[derive(Debug, Default)]
pub struct Cooldown {
    last: Mutex<std::collections::HashMap<String, i64>>,
}

impl Cooldown {
    /// Whether `key` may act at `now` (nothing within `window_ms` before); records it if so.
    pub fn allow(&self, key: &str, now: i64, window_ms: i64) -> bool {
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        last.retain(|_, at| now - *at < window_ms);
        if last.contains_key(key) {
            return false;
        }
        last.insert(key.to_string(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cooldown_refuses_a_repeat_within_its_window() {
        let cooldown = Cooldown::default();
        assert!(cooldown.allow("run", 1_000, 5_000));
        assert!(!cooldown.allow("run", 5_999, 5_000));
        assert!(cooldown.allow("other", 5_999, 5_000));
        assert!(cooldown.allow("run", 6_000, 5_000));
    }
}
