//! The connected agents: a registry of live connections, their labels and the job each one
//! runs. The dispatcher reads it to place jobs; connection handlers update it. Persistent
//! agent records live in the store; this is only what is true right now.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use kici_engine::ids::{AgentId, JobId};
use kici_engine::protocol::OrchestratorMessage;
use tokio::sync::mpsc;

/// Messages waiting to be written to one agent. When full, the sender waits: an agent that
/// does not read cannot be sent more work anyway.
pub const AGENT_OUTBOX: usize = 256;

/// What the connection task should do besides sending messages.
#[derive(Debug)]
pub enum Outbound {
    Message(OrchestratorMessage),
    /// A WebSocket ping: the agent's pong proves the connection is alive.
    Ping,
    /// Close the socket with this code and reason.
    Close(u16, String),
}

/// When a connection last showed a sign of life (any frame), in epoch milliseconds; shared by
/// its reader, which updates it, and whoever asks whether the connection is alive.
#[derive(Debug, Clone, Default)]
pub struct LastSeen(Arc<AtomicI64>);

impl LastSeen {
    pub fn touch(&self, now: i64) {
        self.0.store(now, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone)]
pub struct ConnectedAgent {
    pub agent_id: AgentId,
    pub connection_id: String,
    pub token_id: Option<String>,
    pub labels: Vec<String>,
    pub busy_job: Option<JobId>,
    pub draining: bool,
    /// Spawned by a scaler for this job: the dispatcher gives it this job first and, while the
    /// job waits in the queue, no other.
    pub bound_job: Option<JobId>,
    /// Scaler-spawned agents run one job; once freed they only wait to exit.
    pub single_use: bool,
    pub tx: mpsc::Sender<Outbound>,
    pub last_seen: LastSeen,
    /// Jobs sent to it on this connection: a `pick: 'any'` job goes to the fitting agent with
    /// the fewest, spreading the load.
    pub jobs_sent: u64,
}

#[derive(Debug, Default)]
pub struct Hub {
    agents: Mutex<BTreeMap<AgentId, ConnectedAgent>>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<AgentId, ConnectedAgent>> {
        // A panic while holding the lock leaves the map consistent (every update is one insert
        // or field write), so a poisoned lock is still usable.
        self.agents.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a connection. Callers check [`Hub::conflicts`] first: a live connection is
    /// never replaced.
    pub fn register(&self, agent: ConnectedAgent) {
        self.lock().insert(agent.agent_id.clone(), agent);
    }

    /// Connections a new one for `agent_id` with `token_id` would share an identity with: the
    /// same agent id, or the same agent token (a token serves one agent at a time).
    pub fn conflicts(&self, agent_id: &AgentId, token_id: Option<&str>) -> Vec<ConnectedAgent> {
        self.lock()
            .values()
            .filter(|a| a.agent_id == agent_id || (token_id.is_some() && a.token_id.as_deref() == token_id))
            .cloned()
            .collect()
    }

    /// Removes the agent if `connection_id` is still its current connection.
    pub fn unregister(&self, agent_id: &AgentId, connection_id: &str) -> Option<ConnectedAgent> {
        let mut agents = self.lock();
        if agents.get(agent_id).is_some_and(|a| a.connection_id == connection_id) {
            agents.remove(agent_id)
        } else {
            None
        }
    }

    /// Idle, non-draining agents in agent-id order (deterministic pick = first that fits).
    pub fn idle_agents(&self) -> Vec<ConnectedAgent> {
        self.lock()
            .values()
            .filter(|a| a.busy_job.is_none() && !a.draining)
            .cloned()
            .collect()
    }

    pub fn get(&self, agent_id: &AgentId) -> Option<ConnectedAgent> {
        self.lock().get(agent_id).cloned()
    }

    pub fn all(&self) -> Vec<ConnectedAgent> {
        self.lock().values().cloned().collect()
    }

    pub fn set_busy(&self, agent_id: &AgentId, job_id: Option<&JobId>) {
        if let Some(agent) = self.lock().get_mut(agent_id) {
            agent.busy_job = job_id.cloned();
            agent.jobs_sent += u64::from(job_id.is_some());
        }
    }

    /// Frees the agent if it was running `job_id`; returns whether it did.
    pub fn release(&self, agent_id: &AgentId, job_id: &JobId) -> bool {
        match self.lock().get_mut(agent_id) {
            Some(agent) if agent.busy_job.as_deref() == Some(job_id) => {
                agent.busy_job = None;
                agent.draining |= agent.single_use;
                true
            }
            _ => false,
        }
    }

    pub fn set_draining(&self, agent_id: &AgentId, draining: bool) {
        if let Some(agent) = self.lock().get_mut(agent_id) {
            agent.draining = draining;
        }
    }

    /// Agents connected with a token, to disconnect them when it is revoked.
    pub fn with_token(&self, token_id: &str) -> Vec<ConnectedAgent> {
        self.lock()
            .values()
            .filter(|a| a.token_id.as_deref() == Some(token_id))
            .cloned()
            .collect()
    }
}
