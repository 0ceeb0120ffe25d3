//! The scaler manager: decides when to start an agent for a queued job, supervises each
//! spawned agent until it is gone, and keeps the configuration (reloadable) and the failure
//! records `diagnose` reads.
//!
//! The scaler is a task fed commands ([`ScalerManager`] is its handle): the dispatcher's
//! requests (provision, warm pools, dispatched, forget) are applied one at a time by
//! [`ScalerTask`], which owns every agent's supervisor and stops them at shutdown; what it
//! knows (configuration, spawned agents, failures) is read through the handle. It reaches the
//! rest of the orchestrator only through its [`ScalerContext`].
//!
//! Flow (operator spec §2.1): the dispatcher finds no idle agent that fits a queued job and
//! asks for an agent ([`ScalerManager::provision`]). Under the manager's lock the job is routed and the caps
//! are checked against agents alive or still spawning; a spawn is recorded before it starts,
//! so the caps hold. The supervisor task then creates the agent's single-use token (bound to
//! its id and label set), starts it through its backend, and waits: the agent registers (the
//! dispatcher hands it its bound job first), exits before registering, or does not register
//! in time — the latter two are `scaler.failed` with the captured output. When the agent is
//! gone its token is revoked and the dispatcher is woken, since a cap may have freed up.
//!
//! Warm pools (`warmPool {enabled, size, idleTimeoutSeconds}`) fill on demand: once a job was
//! routed to a label set with a warm pool, the dispatcher's passes keep `size` unbound agents of
//! it starting or idle (within the caps). A job claims a warm agent that is still starting; an
//! idle one simply gets the job from the dispatcher. A warm agent that waits longer than the
//! idle timeout exits by itself (its pending-dispatch timeout), and the pool is not refilled
//! until a job needs it again.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kici_engine::failure::QUEUED_NO_BACKEND_MESSAGE;
use kici_engine::ids::{AgentId, JobId};
use kici_engine::labels::LabelMatcher;
use kici_engine::waiting::ScalerWait;
use kici_store::{NewAgentToken, QueueEntry, Store};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
// Tokio's clock, so a test on a paused clock passes the retry backoff without waiting.
use tokio::time::Instant;

use super::backend::{self, AgentIdentity, SpawnRequest};
use super::capture::OutputTail;
use super::config::{ReloadDiff, Resources, ScalerConfig, ScalerConfigError, ScalerEntry};
use super::error::SpawnError;
use super::firecracker::IpPool;
use super::health::{self, FailureRecord, ScalerRow};
use super::milestones::{Binding, Reporter};
use super::routing::{Admission, AgentCounts, NO_BACKEND_MESSAGE, admit, caps_refuse, route};
use crate::clock::now_ms;
use crate::config::{AgentAuth, Config};
use crate::events::Timeline;
use crate::hub::Hub;
use crate::ids::{new_agent_token, new_id, token_hash};
use crate::logs::LogStore;
use crate::wake::DispatchWake;
use kici_telemetry::os::random_hex;

/// A spawned agent must register this soon after it started.
pub(crate) const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(60);
/// Token type of the tokens spawned agents get; such a token is bound to one agent id.
pub(crate) const EPHEMERAL_TOKEN_TYPE: &str = "ephemeral";
/// First wait before a job whose spawn failed gets another spawn; doubles up to the cap.
const RETRY_BASE: Duration = Duration::from_secs(5);
const RETRY_CAP: Duration = Duration::from_secs(300);
/// The label of a spawned agent's token: it binds the token to that agent.
pub(crate) fn ephemeral_token_label(agent_id: &AgentId) -> String {
    format!("scaler:{agent_id}")
}

/// A spawned agent, from the decision to spawn until it is gone.
struct Tracked {
    scaler: String,
    label_set_index: usize,
    /// `None` for a warm agent no job has claimed yet.
    binding: Option<Binding>,
    auto_labels: Vec<String>,
    registered: watch::Sender<bool>,
    /// A job was dispatched to it.
    dispatched: bool,
}

impl Tracked {
    /// Warm, of this pool, and not used by a job yet.
    fn is_available_warm(&self, scaler: &str, label_set_index: usize) -> bool {
        self.binding.is_none() && !self.dispatched && self.scaler == scaler && self.label_set_index == label_set_index
    }
}

#[derive(Debug, Clone, Copy)]
struct Retry {
    failures: u32,
    not_before: Instant,
}

#[derive(Default)]
struct Inner {
    agents: BTreeMap<AgentId, Tracked>,
    /// Jobs (by id) and warm pools (by [`warm_key`]) whose last spawn failed: when they may
    /// get another.
    retries: HashMap<String, Retry>,
    /// Warm pools a job asked for: (scaler, label set index).
    warm_demand: BTreeSet<(String, usize)>,
    /// Jobs already warned about (no backend), so the warning is logged once.
    warned: HashSet<JobId>,
    failures: VecDeque<FailureRecord>,
}

impl Inner {
    fn counts(&self) -> AgentCounts {
        let mut counts = AgentCounts::default();
        for tracked in self.agents.values() {
            counts.total += 1;
            *counts.by_scaler.entry(tracked.scaler.clone()).or_default() += 1;
        }
        counts
    }
}

fn warm_key(scaler: &str, label_set_index: usize) -> String {
    format!("warm:{scaler}:{label_set_index}")
}

/// What the orchestrator knows about a registering agent it spawned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpawnedAgent {
    /// `kici:agent:<type>`, `kici:os:linux`, `kici:scaler:<name>`.
    pub(crate) auto_labels: Vec<String>,
    pub(crate) bound_job: Option<JobId>,
}

/// What a spawned agent is started with, taken from the orchestrator's configuration once.
#[derive(Debug, Clone)]
pub struct SpawnSettings {
    /// `KICI_ORCHESTRATOR_URL` of agents whose scaler names none.
    pub agent_url: String,
    /// `KICI_AGENT_ENV_*`, the prefix stripped.
    pub agent_env: BTreeMap<String, String>,
    pub agent_auth: AgentAuth,
    pub agent_token_ttl: Duration,
    pub data_dir: std::path::PathBuf,
    /// What bare-metal agents may inherit of the orchestrator's environment.
    pub host_env: BTreeMap<String, String>,
}

impl SpawnSettings {
    pub fn new(config: &Config) -> SpawnSettings {
        SpawnSettings {
            agent_url: config.agent_url(),
            agent_env: config.agent_env.clone(),
            agent_auth: config.agent_auth,
            agent_token_ttl: config.agent_token_ttl,
            data_dir: config.data_dir.clone(),
            host_env: config.host_env.clone(),
        }
    }
}

/// What the scaler reaches outside itself; it never holds the orchestrator's whole state.
#[derive(Clone)]
pub struct ScalerContext {
    /// Spawned agents' tokens and the queue entries' provisioning errors.
    pub store: Store,
    /// `scaler.*` milestones.
    pub timeline: Timeline,
    /// Each job's `provisioning.jsonl`.
    pub logs: LogStore,
    /// The connected agents, named when a job fits none of them nor any scaler.
    pub hub: Arc<Hub>,
    /// A cap may have freed up when a spawned agent is gone.
    pub wake: DispatchWake,
    pub spawn: Arc<SpawnSettings>,
}

/// A request to the scaler task.
#[derive(Debug)]
enum Command {
    Provision {
        entry: Box<QueueEntry>,
        agent_could_fit: bool,
    },
    FillWarmPools,
    Dispatched {
        agent_id: AgentId,
        job_id: JobId,
    },
    ForgetJob(JobId),
}

/// The scaler's handle: commands to its task, reads of what it knows. Cheap to clone.
#[derive(Clone)]
pub struct ScalerManager {
    // Unbounded: the dispatcher sends at most a few commands per queued job and pass, and a
    // dropped `Dispatched` would leave a spawned agent bound to a job it never gets.
    commands: mpsc::UnboundedSender<Command>,
    core: Arc<Core>,
}

/// The scaler task: applies commands one at a time and owns every spawned agent's supervisor.
pub struct ScalerTask {
    commands: mpsc::UnboundedReceiver<Command>,
    core: Arc<Core>,
    supervisors: JoinSet<()>,
}

/// What the handle, the task and the supervisors share.
pub(crate) struct Core {
    config: RwLock<Arc<ScalerConfig>>,
    inner: Mutex<Inner>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    /// Guest addresses of running microVMs.
    ips: IpPool,
    ctx: ScalerContext,
}

impl ScalerManager {
    pub fn new(config: ScalerConfig, ctx: ScalerContext) -> (ScalerManager, ScalerTask) {
        let (commands, receiver) = mpsc::unbounded_channel();
        let core = Arc::new(Core {
            config: RwLock::new(Arc::new(config)),
            inner: Mutex::new(Inner::default()),
            reloading: tokio::sync::Mutex::new(()),
            ips: IpPool::default(),
            ctx,
        });
        let task = ScalerTask {
            commands: receiver,
            core: core.clone(),
            supervisors: JoinSet::new(),
        };
        (ScalerManager { commands, core }, task)
    }

    fn send(&self, command: Command) {
        // The task is gone only at shutdown, when nothing is spawned any more.
        let _ = self.commands.send(command);
    }

    /// Asks for an agent for a queued job no idle agent fits. `agent_could_fit`: a registered
    /// agent (busy or not) fits the job, so it will run once that agent is free.
    pub(crate) fn provision(&self, entry: &QueueEntry, agent_could_fit: bool) {
        if !self.config().scalers.is_empty() {
            self.send(Command::Provision {
                entry: Box::new(entry.clone()),
                agent_could_fit,
            });
        }
    }

    /// Keeps every warm pool a job asked for at its size (within the caps); asked after each
    /// dispatcher pass.
    pub(crate) fn fill_warm_pools(&self) {
        if !self.config().scalers.is_empty() {
            self.send(Command::FillWarmPools);
        }
    }

    /// The dispatcher placed job `job_id` on `agent_id`.
    pub(crate) fn dispatched(&self, agent_id: &AgentId, job_id: &JobId) {
        self.send(Command::Dispatched {
            agent_id: agent_id.clone(),
            job_id: job_id.clone(),
        });
    }

    /// Forgets per-job bookkeeping of a job that left the queue.
    pub(crate) fn forget_job(&self, job_id: &JobId) {
        self.send(Command::ForgetJob(job_id.clone()));
    }

    pub(crate) fn config(&self) -> Arc<ScalerConfig> {
        self.core.config()
    }

    /// Called when an agent registers; `None` when the orchestrator did not spawn it.
    pub(crate) fn registered(&self, agent_id: &AgentId) -> Option<SpawnedAgent> {
        self.core.registered(agent_id)
    }

    /// The `scaler:<name>` diagnose rows.
    pub(crate) fn health_rows(&self, now_ms: i64) -> Vec<ScalerRow> {
        self.core.health_rows(now_ms)
    }

    /// Reads the configuration files again and swaps them in when valid; an invalid set
    /// keeps the running configuration. Running agents are not touched, and a scaler whose
    /// backend type changed keeps its old definition until a restart.
    /// `Ok(None)` when another reload is running.
    pub(crate) async fn reload(
        &self,
        path: Option<&Path>,
        dir: Option<&Path>,
    ) -> Result<Option<ReloadDiff>, ScalerConfigError> {
        self.core.reload(path, dir).await
    }

    /// The scalers as the dashboard shows them: caps, agents alive or spawning, warm pool,
    /// label sets, and the `scaler:<name>` health row.
    pub(crate) fn overview(&self, now_ms: i64) -> serde_json::Value {
        self.core.overview(now_ms)
    }

    /// What the scalers do about `entry`, a job no agent took.
    pub(crate) fn wait_verdict(&self, entry: &QueueEntry) -> ScalerWait {
        self.core.wait_verdict(entry)
    }
}

impl ScalerTask {
    /// Applies commands until shutdown; then the supervisors stop (the agents they watch keep
    /// running until they exit, and their tokens expire).
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    // A command that panics is lost, not the scaler: the next ones still apply
                    // (every update of the shared state is whole, so it stays consistent).
                    Some(command) => {
                        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.apply(command))).is_err() {
                            tracing::error!("a scaler command failed; the scaler goes on with the next");
                        }
                    }
                    None => break,
                },
                Some(ended) = self.supervisors.join_next(), if !self.supervisors.is_empty() => {
                    if let Err(err) = ended {
                        tracing::error!(error = %err, "the supervisor of a spawned agent failed");
                    }
                }
                _ = shutdown.changed() => break,
            }
        }
        self.supervisors.shutdown().await;
    }

    fn apply(&mut self, command: Command) {
        let core = &self.core;
        let spawns = match command {
            Command::Provision { entry, agent_could_fit } => core.provision(&entry, agent_could_fit),
            Command::FillWarmPools => core.fill_warm_pools(),
            Command::Dispatched { agent_id, job_id } => {
                core.dispatched(&agent_id, &job_id);
                Vec::new()
            }
            Command::ForgetJob(job_id) => {
                core.forget_job(&job_id);
                Vec::new()
            }
        };
        for request in spawns {
            self.supervisors.spawn(supervise(core.clone(), request));
        }
    }
}

impl Core {
    pub(crate) fn context(&self) -> &ScalerContext {
        &self.ctx
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every update is a whole insert or remove, so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn config(&self) -> Arc<ScalerConfig> {
        self.config
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Agents alive or spawning, per scaler.
    fn counts(&self) -> AgentCounts {
        self.lock().counts()
    }

    /// The agent to start for a queued job no idle agent fits, if one is to start.
    fn provision(&self, entry: &QueueEntry, agent_could_fit: bool) -> Vec<SpawnRequest> {
        let config = self.config();
        if config.scalers.is_empty() {
            return Vec::new();
        }
        let mut inner = self.lock();
        if inner
            .agents
            .values()
            .any(|t| t.binding.as_ref().is_some_and(|b| b.job_id == entry.job_id))
        {
            return Vec::new();
        }
        if inner
            .retries
            .get(entry.job_id.as_str())
            .is_some_and(|retry| Instant::now() < retry.not_before)
        {
            return Vec::new();
        }
        let binding = Binding {
            job_id: entry.job_id.clone(),
            run_id: entry.run_id.clone(),
        };
        if let Some(route) = route(&config, &entry.runs_on, &entry.exclude_labels) {
            let (name, index) = (route.scaler.name.as_str(), route.label_set_index);
            if route.scaler.warm_pool.enabled {
                inner.warm_demand.insert((name.to_string(), index));
            }
            // A warm agent of this pool that is still starting: the job takes it.
            if let Some((agent_id, warm)) = inner
                .agents
                .iter_mut()
                .find(|(_, t)| t.is_available_warm(name, index) && !*t.registered.borrow())
            {
                warm.binding = Some(binding);
                tracing::info!(agentId = %agent_id, scaler = %name, runId = %entry.run_id, jobId = %entry.job_id, "warm agent claimed by a job");
                return Vec::new();
            }
        }
        match admit(&config, &entry.runs_on, &entry.exclude_labels, &inner.counts()) {
            Admission::NoBackend => {
                if inner.warned.insert(entry.job_id.clone()) {
                    let labels = describe(&entry.runs_on);
                    tracing::warn!(runId = %entry.run_id, jobId = %entry.job_id, labels = %labels, "{NO_BACKEND_MESSAGE}");
                    if !agent_could_fit {
                        let agents: Vec<String> = self
                            .ctx
                            .hub
                            .all()
                            .iter()
                            .map(|a| format!("{} [{}]", a.agent_id, a.labels.join(",")))
                            .collect();
                        tracing::warn!(runId = %entry.run_id, jobId = %entry.job_id, labels = %labels, agents = %agents.join("; "), "{QUEUED_NO_BACKEND_MESSAGE}");
                    }
                }
            }
            Admission::AtCapacity { reason } => {
                tracing::debug!(runId = %entry.run_id, jobId = %entry.job_id, reason = %reason, "scaler at capacity; job stays queued");
            }
            Admission::Spawn {
                scaler,
                label_set_index,
            } => return vec![self.spawn(&mut inner, &config, scaler, label_set_index, Some(binding))],
        }
        Vec::new()
    }

    /// The agents that bring every warm pool a job asked for to its size (within the caps).
    fn fill_warm_pools(&self) -> Vec<SpawnRequest> {
        let config = self.config();
        let mut inner = self.lock();
        let mut spawns = Vec::new();
        let now = Instant::now();
        for (name, index) in inner.warm_demand.clone() {
            let Some(scaler) = config
                .scaler(&name)
                .filter(|s| s.warm_pool.enabled && index < s.label_sets.len())
            else {
                inner.warm_demand.remove(&(name, index));
                continue;
            };
            if inner
                .retries
                .get(&warm_key(&name, index))
                .is_some_and(|retry| now < retry.not_before)
            {
                continue;
            }
            let available = inner
                .agents
                .values()
                .filter(|t| t.is_available_warm(&name, index))
                .count() as u32;
            for _ in available..scaler.warm_pool.size {
                if caps_refuse(&config, scaler, &inner.counts()).is_some() {
                    break;
                }
                spawns.push(self.spawn(&mut inner, &config, scaler, index, None));
            }
        }
        spawns
    }

    /// The dispatcher placed job `job_id` on `agent_id`. An agent spawned for that job but
    /// not chosen (another agent was ready first) becomes an unbound, warm-like agent: it serves
    /// the next job of its label set or exits when its wait runs out.
    fn dispatched(&self, agent_id: &AgentId, job_id: &JobId) {
        let mut inner = self.lock();
        inner.retries.remove(job_id.as_str());
        inner.warned.remove(job_id);
        for (id, tracked) in inner.agents.iter_mut() {
            if id == agent_id {
                tracked.dispatched = true;
            } else if tracked.binding.as_ref().is_some_and(|b| b.job_id == job_id) {
                tracked.binding = None;
            }
        }
    }

    /// The job `agent_id` was spawned for when that job was never dispatched to it.
    fn unserved_binding(&self, agent_id: &AgentId) -> Option<Binding> {
        let inner = self.lock();
        let tracked = inner.agents.get(agent_id)?;
        if tracked.dispatched {
            None
        } else {
            tracked.binding.clone()
        }
    }

    /// The job an agent is spawning for, if any (a warm agent gets one when a job claims it).
    pub(crate) fn binding_of(&self, agent_id: &AgentId) -> Option<Binding> {
        self.lock().agents.get(agent_id).and_then(|t| t.binding.clone())
    }

    /// Called when an agent registers; `None` when the orchestrator did not spawn it.
    fn registered(&self, agent_id: &AgentId) -> Option<SpawnedAgent> {
        let inner = self.lock();
        let tracked = inner.agents.get(agent_id)?;
        tracked.registered.send_replace(true);
        Some(SpawnedAgent {
            auto_labels: tracked.auto_labels.clone(),
            bound_job: tracked.binding.as_ref().map(|b| b.job_id.clone()),
        })
    }

    pub(crate) fn record_failure(&self, record: FailureRecord) {
        health::remember(&mut self.lock().failures, record);
    }

    /// The `scaler:<name>` diagnose rows.
    fn health_rows(&self, now_ms: i64) -> Vec<ScalerRow> {
        let config = self.config();
        health::rows(&config, &self.lock().failures, now_ms)
    }

    /// Reads the configuration files again and swaps them in when valid; an invalid set
    /// keeps the running configuration. Running agents are not touched, and a scaler whose
    /// backend type changed keeps its old definition until a restart.
    /// `Ok(None)` when another reload is running.
    async fn reload(&self, path: Option<&Path>, dir: Option<&Path>) -> Result<Option<ReloadDiff>, ScalerConfigError> {
        let Ok(_one_at_a_time) = self.reloading.try_lock() else {
            return Ok(None);
        };
        let mut next = super::config::load(path, dir)?;
        let current = self.config();
        let diff = super::config::reload_diff(&current, &next);
        for name in &diff.type_changed {
            if let (Some(old), Some(slot)) = (current.scaler(name), next.scalers.iter_mut().find(|s| &s.name == name)) {
                *slot = old.clone();
            }
        }
        *self.config.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(next);
        Ok(Some(diff))
    }

    fn finished(&self, agent_id: &AgentId, spawn_failed: bool) {
        let mut inner = self.lock();
        let Some(tracked) = inner.agents.remove(agent_id) else {
            return;
        };
        // Retries are kept per job, and per warm pool for the agents no job claimed.
        let key = match &tracked.binding {
            Some(binding) => binding.job_id.to_string(),
            None => warm_key(&tracked.scaler, tracked.label_set_index),
        };
        if spawn_failed {
            let failures = inner.retries.get(&key).map_or(0, |r| r.failures) + 1;
            let wait = RETRY_BASE
                .saturating_mul(2u32.saturating_pow(failures - 1))
                .min(RETRY_CAP);
            inner.retries.insert(
                key,
                Retry {
                    failures,
                    not_before: Instant::now() + wait,
                },
            );
            return;
        }
        inner.retries.remove(&key);
        if tracked.binding.is_none() && !tracked.dispatched {
            // A warm agent idled out: no refill until a job asks for this pool again.
            inner
                .warm_demand
                .remove(&(tracked.scaler.clone(), tracked.label_set_index));
            tracing::info!(agentId = %agent_id, scaler = %tracked.scaler, "spawned agent exited without a job; its warm pool is not refilled until a job needs it");
        }
    }

    /// The scalers as the dashboard shows them: caps, agents alive or spawning, warm pool,
    /// label sets, and the `scaler:<name>` health row.
    fn overview(&self, now_ms: i64) -> serde_json::Value {
        let config = self.config();
        let counts = self.counts();
        let rows = self.health_rows(now_ms);
        let scalers: Vec<serde_json::Value> = config
            .scalers
            .iter()
            .map(|scaler| {
                let row = rows.iter().find(|r| r.name == format!("scaler:{}", scaler.name));
                serde_json::json!({
                    "name": scaler.name,
                    "type": scaler.scaler_type().as_str(),
                    "maxAgents": scaler.max_agents,
                    "alive": counts.of(&scaler.name),
                    "warmPool": { "enabled": scaler.warm_pool.enabled, "size": scaler.warm_pool.size },
                    "labelSets": scaler.label_sets.iter().map(|set| set.labels.clone()).collect::<Vec<_>>(),
                    "health": row.map(|r| serde_json::json!({
                        "status": match r.status {
                            super::health::RowStatus::Pass => "pass",
                            super::health::RowStatus::Warn => "warn",
                            super::health::RowStatus::Fail => "fail",
                        },
                        "message": r.message,
                    })),
                })
            })
            .collect();
        serde_json::json!({
            "globalMaxAgents": config.global_max_agents,
            "alive": counts.total,
            "scalers": scalers,
        })
    }

    /// See [`ScalerManager::wait_verdict`]: an agent started for the job, else what admission
    /// would answer now.
    fn wait_verdict(&self, entry: &QueueEntry) -> ScalerWait {
        let config = self.config();
        if config.scalers.is_empty() {
            return ScalerWait::NoScalers;
        }
        let inner = self.lock();
        if let Some(tracked) = inner
            .agents
            .values()
            .find(|t| t.binding.as_ref().is_some_and(|b| b.job_id == entry.job_id))
        {
            return ScalerWait::Starting {
                scaler: tracked.scaler.clone(),
            };
        }
        match admit(&config, &entry.runs_on, &entry.exclude_labels, &inner.counts()) {
            Admission::NoBackend => ScalerWait::NoBackend,
            Admission::AtCapacity { reason } => ScalerWait::AtCapacity {
                reason: reason.to_string(),
            },
            Admission::Spawn { scaler, .. } => ScalerWait::Starting {
                scaler: scaler.name.clone(),
            },
        }
    }

    /// Forgets per-job bookkeeping of a job that left the queue.
    fn forget_job(&self, job_id: &JobId) {
        let mut inner = self.lock();
        inner.retries.remove(job_id.as_str());
        inner.warned.remove(job_id);
    }

    /// Records a spawn (it counts toward the caps from now on); the task starts its supervisor.
    fn spawn(
        &self,
        inner: &mut Inner,
        config: &ScalerConfig,
        scaler: &ScalerEntry,
        label_set_index: usize,
        binding: Option<Binding>,
    ) -> SpawnRequest {
        let agent_id = format!("scaler-{}-{}", scaler.scaler_type(), random_hex(8));
        let (registered, _) = watch::channel(false);
        inner.agents.insert(
            AgentId::from(agent_id.clone()),
            Tracked {
                scaler: scaler.name.clone(),
                label_set_index,
                binding: binding.clone(),
                auto_labels: scaler.auto_labels().to_vec(),
                registered,
                dispatched: false,
            },
        );
        let label_set = &scaler.label_sets[label_set_index];
        let request = SpawnRequest {
            agent_id: AgentId::from(agent_id.clone()),
            scaler: scaler.clone(),
            label_set_index,
            env: Vec::new(),
            resources: Resources::cascade(None, &label_set.resources, &config.default_resources),
            firecracker_network: config.firecracker_network.clone(),
            settings: self.ctx.spawn.clone(),
            ips: self.ips.clone(),
        };
        let (run_id, job_id) = binding
            .as_ref()
            .map_or(("", ""), |b| (b.run_id.as_str(), b.job_id.as_str()));
        tracing::info!(agentId = %agent_id, scaler = %scaler.name, backend = %scaler.scaler_type(), runId = %run_id, jobId = %job_id, warm = binding.is_none(), labels = %label_set.labels.join(","), "spawning agent");
        request
    }
}

fn describe(matchers: &[LabelMatcher]) -> String {
    matchers.iter().map(LabelMatcher::display).collect::<Vec<_>>().join(",")
}

/// Starts one agent and watches it until it is gone; whatever happens inside (a panic
/// included), the agent's token is revoked and its slot freed.
async fn supervise(core: Arc<Core>, request: SpawnRequest) {
    let agent_id = request.agent_id.clone();
    let spawn_failed = match tokio::spawn(watch_spawn(core.clone(), request)).await {
        Ok(failed) => failed,
        Err(err) => {
            tracing::error!(agentId = %agent_id, error = %err, "the supervisor of a spawned agent failed");
            true
        }
    };
    // By label: the token may not have been created, or its id not returned.
    if let Err(err) = core
        .ctx
        .store
        .revoke_agent_token(&ephemeral_token_label(&agent_id), now_ms())
        .await
    {
        tracing::warn!(agentId = %agent_id, error = %err, "cannot revoke a spawned agent's token");
    }
    core.finished(&agent_id, spawn_failed);
    core.ctx.wake.wake();
}

/// The spawn itself; `true` when it failed (a `scaler.failed` was reported).
async fn watch_spawn(core: Arc<Core>, mut request: SpawnRequest) -> bool {
    let agent_id = request.agent_id.clone();
    let reporter = Reporter {
        core: core.clone(),
        agent_id: agent_id.clone(),
        scaler_name: request.scaler.name.clone(),
        backend: request.scaler.scaler_type(),
    };
    let token = match issue_token(&core.ctx, &request).await {
        Ok(token) => token,
        Err(err) => {
            reporter.failed(&err.to_string()).await;
            return true;
        }
    };
    let orchestrator_url = request
        .scaler
        .orchestrator_url
        .clone()
        .unwrap_or_else(|| core.ctx.spawn.agent_url.clone());
    request.env = backend::agent_env(
        &request.scaler,
        request.label_set_index,
        &AgentIdentity {
            agent_id: &agent_id,
            orchestrator_url: &orchestrator_url,
            token: token.as_deref().unwrap_or(""),
        },
        &core.ctx.spawn.host_env,
        &core.ctx.spawn.agent_env,
    );
    let tail = OutputTail::default();
    let started = Instant::now();
    let mut instance = match backend::start(&request, &reporter, &tail).await {
        Ok(instance) => instance,
        Err(err) => {
            tracing::debug!(agentId = %agent_id, errorKind = err.kind(), "agent spawn failed");
            reporter.failed(&tail.annotate(&err.to_string())).await;
            return true;
        }
    };
    let mut registered = core.lock().agents.get(&agent_id).map(|t| t.registered.subscribe());
    let registration = async {
        match registered.as_mut() {
            Some(registered) => registered.wait_for(|r| *r).await.is_ok(),
            None => false,
        }
    };
    let failed = tokio::select! {
        // An agent that registered and exited at once registered all the same.
        biased;
        true = registration => {
            tracing::info!(agentId = %agent_id, scaler = %request.scaler.name, spawnToRegisteredMs = started.elapsed().as_millis() as u64, "Agent {agent_id} spawned successfully via {}", request.scaler.name);
            instance.registered().await;
            let exit = instance.wait().await;
            tracing::info!(agentId = %agent_id, scaler = %request.scaler.name, exit = %exit, "scaler agent exited");
            match core.unserved_binding(&agent_id) {
                Some(binding) => {
                    reporter.failed(&tail.annotate(&format!(
                        "agent registered but exited ({exit}) without receiving job {}: its labels, with the kici:arch:* and kici:host:* labels it adds itself, may not fit the job's runsOn/excludeLabels",
                        binding.job_id
                    ))).await;
                    true
                }
                None => false,
            }
        }
        exit = instance.wait() => {
            reporter.failed(&tail.annotate(&format!("agent exited before registering ({exit})"))).await;
            true
        }
        _ = tokio::time::sleep(REGISTRATION_TIMEOUT) => {
            instance.destroy().await;
            reporter.failed(&tail.annotate(&format!(
                "agent did not register within {}s (hint: check that it can reach the orchestrator at {orchestrator_url})",
                REGISTRATION_TIMEOUT.as_secs()
            ))).await;
            true
        }
    };
    instance.destroy().await;
    failed
}

/// A token bound to the agent id and its label set, when agents authenticate.
async fn issue_token(ctx: &ScalerContext, request: &SpawnRequest) -> Result<Option<String>, SpawnError> {
    if ctx.spawn.agent_auth == AgentAuth::None {
        return Ok(None);
    }
    let token = new_agent_token();
    let now = now_ms();
    let record = NewAgentToken {
        token_id: new_id(),
        label: ephemeral_token_label(&request.agent_id),
        token_prefix: token.chars().take(12).collect(),
        token_hash: token_hash(&token),
        labels: request.scaler.label_sets[request.label_set_index].labels.clone(),
        agent_type: EPHEMERAL_TOKEN_TYPE.to_string(),
        created_at: now,
        // Spawned agents' tokens expire even if the orchestrator dies before revoking them.
        expires_at: Some(now + ctx.spawn.agent_token_ttl.as_millis() as i64),
    };
    ctx.store.insert_agent_token(&record).await.map_err(SpawnError::Token)?;
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use kici_engine::labels::LabelMatcher;
    use kici_store::QueueStatus;

    use super::*;
    use crate::platform_link::PlatformLink;

    /// The scaler's core with one bare-metal scaler for `linux` jobs, on a real store.
    async fn core(dir: &std::path::Path) -> Arc<Core> {
        let store = Store::open(&format!("sqlite://{}/kici.db?mode=rwc", dir.display()))
            .await
            .unwrap();
        let config =
            crate::config::Config::from_env(&[("KICI_DATA_DIR".to_string(), dir.display().to_string())].into())
                .unwrap();
        let scalers = super::super::from_yaml_str(
            "version: 1\nscalers:\n  - {name: local, type: bare-metal, maxAgents: 4, labelSets: [{labels: [linux], binaryPath: /a}]}\n",
            "scalers.yaml",
        )
        .unwrap();
        let platform = Arc::new(PlatformLink::new(false));
        let ctx = ScalerContext {
            store: store.clone(),
            timeline: Timeline::new(store, platform),
            logs: LogStore::files(dir),
            hub: Arc::new(Hub::default()),
            wake: DispatchWake::default(),
            spawn: Arc::new(SpawnSettings::new(&config)),
        };
        ScalerManager::new(scalers, ctx).0.core
    }

    fn queued(job_id: &str) -> QueueEntry {
        QueueEntry {
            job_id: job_id.into(),
            run_id: "r".into(),
            status: QueueStatus::Pending,
            agent_id: None,
            attempts: 0,
            enqueued_at: 0,
            expires_at: None,
            ack_deadline: None,
            recovery_deadline: None,
            last_provisioning_error: None,
            dispatch: "{}".into(),
            runs_on: vec![LabelMatcher::exact("linux")],
            exclude_labels: vec![],
        }
    }

    /// A job whose spawn failed gets its next one after 5 s, then 10 s (doubling up to 300 s),
    /// on tokio's paused clock: no real waiting.
    #[tokio::test]
    async fn a_failed_spawn_backs_off_five_then_ten_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let core = core(dir.path()).await;
        tokio::time::pause();
        let job = queued("j");
        for wait in [Duration::from_secs(5), Duration::from_secs(10)] {
            let spawned = core.provision(&job, false);
            assert_eq!(spawned.len(), 1, "a spawn for the job");
            assert!(core.provision(&job, false).is_empty(), "one spawn at a time per job");
            core.finished(&spawned[0].agent_id, true);
            assert!(core.provision(&job, false).is_empty(), "backing off after the failure");
            tokio::time::advance(wait - Duration::from_millis(1)).await;
            assert!(
                core.provision(&job, false).is_empty(),
                "still backing off just before {wait:?}"
            );
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert_eq!(core.provision(&job, false).len(), 1, "the third spawn after 5 s + 10 s");
        assert_eq!(
            core.provision(&queued("other"), false).len(),
            1,
            "another job is not held back"
        );
    }
}
