//! The registry of orchestrators, keyed by instance id: whether each is online, since when,
//! when it was last heard from, and — while connected — the link used to send it requests
//! (its socket's outbox and the table of requests waiting for an answer).
//!
//! A newer connection of the same instance replaces the older one (which is told to close);
//! the older session ending later does not mark the instance offline. When the current
//! connection ends, its waiting requests are dropped, so their callers see "offline" at once
//! instead of waiting for the timeout.
//!
//! Not here: the socket itself (`ws`), the request/response flow (`proxy`), persistence of
//! the same facts (`cache::orchestrators`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use kici_engine::platform_protocol::{PlatformFrame, ResponseError};
use tokio::sync::{mpsc, oneshot};

/// Frames queued for one orchestrator socket. When full, senders wait (a proxied request
/// within its own timeout).
pub const OUTBOX: usize = 256;
/// Requests waiting for an answer from one orchestrator; more are refused with 503.
pub const MAX_PENDING_REQUESTS: usize = 256;

/// What the socket writer sends.
#[derive(Debug)]
pub enum Outbound {
    Frame(PlatformFrame),
    Close(u16, String),
}

/// An orchestrator's answer: `data`, or its error.
pub type Reply = Result<Option<serde_json::Value>, ResponseError>;

type PendingTable = HashMap<String, oneshot::Sender<Reply>>;

/// How to reach a connected orchestrator.
#[derive(Debug, Clone)]
pub struct Link {
    pub connection_id: String,
    pub version: String,
    pub outbox: mpsc::Sender<Outbound>,
    /// Request types it said it answers (`auth.request`'s `supportedDashboardRequests`).
    pub supported_requests: Vec<String>,
    pending: Arc<Mutex<PendingTable>>,
}

impl Link {
    pub fn new(
        connection_id: String,
        version: String,
        outbox: mpsc::Sender<Outbound>,
        supported_requests: Vec<String>,
    ) -> Link {
        Link {
            connection_id,
            version,
            outbox,
            supported_requests,
            pending: Arc::default(),
        }
    }

    fn pending(&self) -> MutexGuard<'_, PendingTable> {
        // Inserts and removes only; a poisoned table is still consistent.
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a request waiting for its answer; `None` when too many already wait.
    pub fn expect(&self, request_id: &str) -> Option<oneshot::Receiver<Reply>> {
        let mut pending = self.pending();
        if pending.len() >= MAX_PENDING_REQUESTS {
            return None;
        }
        let (sender, receiver) = oneshot::channel();
        pending.insert(request_id.to_string(), sender);
        Some(receiver)
    }

    /// Forgets a request (its caller gave up).
    pub fn forget(&self, request_id: &str) {
        self.pending().remove(request_id);
    }

    /// Hands an answer to its waiting caller; `false` when nobody waits for it (it came
    /// after the timeout, or the id is unknown).
    pub fn answer(&self, request_id: &str, reply: Reply) -> bool {
        match self.pending().remove(request_id) {
            // The caller may have just given up; then nobody needs the answer.
            Some(waiter) => waiter.send(reply).is_ok(),
            None => false,
        }
    }

    /// Drops every waiting request: their callers see the orchestrator as offline.
    fn fail_all(&self) {
        self.pending().clear();
    }
}

/// What the Platform knows about one orchestrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrchestratorState {
    pub instance_id: String,
    pub version: String,
    pub url: String,
    pub online: bool,
    /// Epoch ms the current connection registered (`None` while offline).
    pub connected_since: Option<i64>,
    pub last_seen_at: i64,
}

struct Entry {
    state: OrchestratorState,
    link: Option<Link>,
}

/// Every orchestrator that registered since this process started.
#[derive(Default)]
pub struct Connections {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Connections {
    fn entries(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Every section below leaves the map consistent even if it panicked half-way.
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Marks `instance_id` online through `link`; returns the link it replaced, if any (the
    /// caller closes it).
    pub fn connect(&self, instance_id: &str, url: &str, link: Link, now: i64) -> Option<Link> {
        let mut entries = self.entries();
        let state = OrchestratorState {
            instance_id: instance_id.to_string(),
            version: link.version.clone(),
            url: url.to_string(),
            online: true,
            connected_since: Some(now),
            last_seen_at: now,
        };
        let previous = entries.insert(
            instance_id.to_string(),
            Entry {
                state,
                link: Some(link),
            },
        );
        let replaced = previous.and_then(|entry| entry.link);
        if let Some(old) = &replaced {
            old.fail_all();
        }
        replaced
    }

    /// Notes a frame from `connection_id`.
    pub fn seen(&self, instance_id: &str, connection_id: &str, now: i64) {
        if let Some(entry) = self.entries().get_mut(instance_id)
            && entry.link.as_ref().is_some_and(|l| l.connection_id == connection_id)
        {
            entry.state.last_seen_at = now;
        }
    }

    /// The connection `connection_id` ended. Returns `true` when it was the instance's
    /// current one (the instance is now offline).
    pub fn disconnect(&self, instance_id: &str, connection_id: &str, now: i64) -> bool {
        let mut entries = self.entries();
        let Some(entry) = entries.get_mut(instance_id) else {
            return false;
        };
        if entry.link.as_ref().is_none_or(|l| l.connection_id != connection_id) {
            return false;
        }
        if let Some(link) = entry.link.take() {
            link.fail_all();
        }
        entry.state.online = false;
        entry.state.connected_since = None;
        entry.state.last_seen_at = now;
        true
    }

    /// The link to a connected orchestrator.
    pub fn link(&self, instance_id: &str) -> Option<Link> {
        self.entries().get(instance_id).and_then(|entry| entry.link.clone())
    }

    /// The current connection of `instance_id`, if it is `connection_id`'s.
    pub fn current_link(&self, instance_id: &str, connection_id: &str) -> Option<Link> {
        self.link(instance_id)
            .filter(|link| link.connection_id == connection_id)
    }

    pub fn state(&self, instance_id: &str) -> Option<OrchestratorState> {
        self.entries().get(instance_id).map(|entry| entry.state.clone())
    }

    /// Every known orchestrator, by instance id.
    pub fn all(&self) -> Vec<OrchestratorState> {
        let mut all: Vec<OrchestratorState> = self.entries().values().map(|e| e.state.clone()).collect();
        all.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        all
    }
}

/// Whether a run is stale: not finished while its orchestrator has been offline longer than
/// `stale_after_ms` (measured from its last contact).
pub fn is_stale(run_terminal: bool, online: bool, last_seen_at: i64, now: i64, stale_after_ms: i64) -> bool {
    !run_terminal && !online && now.saturating_sub(last_seen_at) > stale_after_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staleness() {
        let check = |terminal, online, last_seen, now, expected| {
            assert_eq!(
                is_stale(terminal, online, last_seen, now, 1000),
                expected,
                "terminal={terminal} online={online} last_seen={last_seen} now={now}"
            );
        };
        check(false, false, 0, 1001, true);
        check(false, false, 0, 1000, false);
        check(false, true, 0, 5000, false);
        check(true, false, 0, 5000, false);
    }

    fn link(connection_id: &str) -> (Link, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(1);
        (Link::new(connection_id.into(), "1.0".into(), tx, Vec::new()), rx)
    }

    #[test]
    fn a_replaced_connection_ending_does_not_mark_the_instance_offline() {
        let connections = Connections::default();
        let (first, _rx1) = link("c1");
        assert!(connections.connect("orch", "http://o", first, 10).is_none());
        let (second, _rx2) = link("c2");
        let waiting = connections.link("orch").unwrap().expect("r1").unwrap();
        let replaced = connections.connect("orch", "http://o", second, 20).unwrap();
        assert_eq!(replaced.connection_id, "c1");
        // The replaced connection's waiting requests were dropped.
        assert!(waiting.blocking_recv().is_err());
        assert!(!connections.disconnect("orch", "c1", 30));
        assert!(connections.state("orch").unwrap().online);
        assert!(connections.disconnect("orch", "c2", 40));
        let state = connections.state("orch").unwrap();
        assert_eq!(
            (state.online, state.connected_since, state.last_seen_at),
            (false, None, 40)
        );
        assert!(connections.link("orch").is_none());
    }

    #[test]
    fn answers_reach_the_waiting_request_once() {
        let (link, _rx) = link("c1");
        let receiver = link.expect("r1").unwrap();
        assert!(link.answer("r1", Ok(None)));
        assert!(!link.answer("r1", Ok(None)));
        assert_eq!(receiver.blocking_recv().unwrap(), Ok(None));
    }
}
