//! What every backend shares: the spawn request, the agent's environment, and the started
//! instance the manager supervises (wait for it to end, destroy it).

use kici_engine::ids::AgentId;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::bare_metal::{self, AgentProcess};
use super::capture::OutputTail;
use super::config::{Backend, Resources, ScalerEntry, SpawnTarget};
use super::container::config::ContainerTarget;
use super::container::{self, AgentContainer};
use super::error::SpawnError;
use super::firecracker::config::{FirecrackerNetwork, FirecrackerTarget};
use super::firecracker::{self, IpPool, MicroVm};
use super::manager::SpawnSettings;
use super::milestones::Reporter;

/// One agent to start.
#[derive(Debug, Clone)]
pub(crate) struct SpawnRequest {
    /// `scaler-<type>-<8 hex>`.
    pub(crate) agent_id: AgentId,
    pub(crate) scaler: ScalerEntry,
    pub(crate) label_set_index: usize,
    /// The agent's whole environment, in the documented order.
    pub(crate) env: Vec<(String, String)>,
    /// The label set's resources over the config defaults.
    pub(crate) resources: Resources,
    pub(crate) firecracker_network: FirecrackerNetwork,
    pub(crate) settings: Arc<SpawnSettings>,
    pub(crate) ips: IpPool,
}

/// What the agent needs to know, from the orchestrator's side.
#[derive(Debug, Clone)]
pub(crate) struct AgentIdentity<'a> {
    pub(crate) agent_id: &'a AgentId,
    pub(crate) orchestrator_url: &'a str,
    /// Empty when the orchestrator runs without agent authentication.
    pub(crate) token: &'a str,
}

/// The spawned agent's environment, later entries winning: the host variables of
/// [`kici_engine::host_env::INHERITED`] (bare-metal only), `KICI_AGENT_ENV_*` with the prefix stripped, the required `KICI_*`,
/// `KICI_BACKPRESSURE_MODE`, the warm pool's idle timeout, then the label set's `env`.
pub(crate) fn agent_env(
    scaler: &ScalerEntry,
    label_set_index: usize,
    identity: &AgentIdentity<'_>,
    host_env: &BTreeMap<String, String>,
    agent_env_vars: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |name: &str, value: String| {
        env.retain(|(existing, _)| existing != name);
        env.push((name.to_string(), value));
    };
    if matches!(scaler.backend, Backend::BareMetal(_)) {
        for name in kici_engine::host_env::INHERITED {
            if let Some(value) = host_env.get(name) {
                set(name, value.clone());
            }
        }
    }
    for (name, value) in agent_env_vars {
        set(name, value.clone());
    }
    let label_set = &scaler.label_sets[label_set_index];
    set("KICI_ORCHESTRATOR_URL", identity.orchestrator_url.to_string());
    set("KICI_AGENT_ID", identity.agent_id.to_string());
    set("KICI_AGENT_TOKEN", identity.token.to_string());
    set("KICI_LABELS", label_set.labels.join(","));
    set("KICI_SCALER_MANAGED", "1".to_string());
    set("KICI_SCALER_BACKEND", scaler.scaler_type().as_str().to_string());
    // The agent runs jobs directly wherever it was started (a container or VM included).
    set("KICI_EXECUTION_MODE", "bare-metal".to_string());
    set("KICI_PORT", "0".to_string());
    if let Some(roles) = scaler.roles.env_value() {
        set("KICI_ROLES", roles);
    }
    if let Some(mode) = label_set.backpressure_mode {
        set("KICI_BACKPRESSURE_MODE", mode.as_str().to_string());
    }
    if scaler.warm_pool.enabled {
        // An agent of a warm pool left without a job (warm, or its job went to another agent)
        // exits by itself after the pool's idle timeout.
        set(
            "KICI_SCALER_PENDING_DISPATCH_TIMEOUT",
            scaler.warm_pool.idle_timeout.as_millis().to_string(),
        );
    }
    for (name, value) in &label_set.env {
        set(name, value.clone());
    }
    env
}

/// A started agent.
pub(crate) enum Instance {
    Process(AgentProcess),
    Container(AgentContainer),
    Vm(MicroVm),
}

impl Instance {
    /// Waits until the agent is gone; describes how it ended (`exit code 1`).
    pub(crate) async fn wait(&mut self) -> String {
        match self {
            Instance::Process(process) => process.wait().await,
            Instance::Container(container) => container.wait().await,
            Instance::Vm(vm) => vm.wait().await,
        }
    }

    /// Stops the agent if it still runs and frees what it used.
    /// The agent registered: a microVM's MMDS, which holds the agent's token, is cleared.
    pub(crate) async fn registered(&mut self) {
        if let Instance::Vm(vm) = self {
            vm.clear_mmds().await;
        }
    }

    pub(crate) async fn destroy(&mut self) {
        match self {
            Instance::Process(process) => process.destroy().await,
            Instance::Container(container) => container.destroy().await,
            Instance::Vm(vm) => vm.destroy().await,
        }
    }
}

/// Starts the agent with the backend of its scaler, reporting milestones on the way. The
/// error is the `scaler.failed` detail (without the captured output, which the caller adds).
pub(crate) async fn start(
    request: &SpawnRequest,
    reporter: &Reporter,
    tail: &OutputTail,
) -> Result<Instance, SpawnError> {
    let target = &request.scaler.label_sets[request.label_set_index].target;
    match (&request.scaler.backend, target) {
        (Backend::BareMetal(backend), SpawnTarget::BareMetal(target)) => {
            bare_metal::start(request, backend, target, reporter, tail)
                .await
                .map(Instance::Process)
        }
        (Backend::Container(backend), SpawnTarget::Container(target)) => {
            container::start(request, backend, target, reporter, tail)
                .await
                .map(Instance::Container)
        }
        (Backend::Firecracker(backend), SpawnTarget::Firecracker(target)) => {
            firecracker::start(request, backend, target, reporter, tail)
                .await
                .map(Instance::Vm)
        }
        _ => Err(SpawnError::BackendMismatch {
            scaler: request.scaler.name.clone(),
            label_set_index: request.label_set_index,
        }),
    }
}

/// What the host lacks for this scaler to start agents (`diagnose` cross-checks); empty
/// when nothing is known to be missing.
pub(crate) async fn host_problems(scaler: &ScalerEntry) -> Vec<String> {
    let mut problems = Vec::new();
    if let Backend::Container(backend) = &scaler.backend {
        let targets: Vec<(usize, &ContainerTarget)> = scaler
            .label_sets
            .iter()
            .enumerate()
            .filter_map(|(index, set)| match &set.target {
                SpawnTarget::Container(target) => Some((index, target)),
                _ => None,
            })
            .collect();
        problems.extend(container::host_problems(backend, &targets).await);
    }
    if let Backend::Firecracker(backend) = &scaler.backend {
        let targets: Vec<(usize, &FirecrackerTarget)> = scaler
            .label_sets
            .iter()
            .enumerate()
            .filter_map(|(index, set)| match &set.target {
                SpawnTarget::Firecracker(target) => Some((index, target)),
                _ => None,
            })
            .collect();
        problems.extend(firecracker::host_problems(backend, &targets));
    }
    for (index, set) in scaler.label_sets.iter().enumerate() {
        if let SpawnTarget::BareMetal(target) = &set.target
            && let Err(problem) = bare_metal::check_binary(&target.binary_path)
        {
            problems.push(format!("label set [{index}]: {problem}"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scaler::config::from_yaml_str;

    #[test]
    fn the_agent_env_is_built_in_the_documented_order_and_inherits_only_the_allowlist() {
        let config = from_yaml_str(
            r#"
version: 1
scalers:
  - name: metal
    type: bare-metal
    maxAgents: 2
    roles: [builder]
    warmPool: {enabled: true, size: 1, idleTimeoutSeconds: 30}
    labelSets:
      - labels: [linux, node-20]
        binaryPath: /usr/local/bin/kici-agent
        backpressureMode: drop
        env: {KICI_LOG_LEVEL: debug, EXTRA: label-set}
"#,
            "scalers.yaml",
        )
        .unwrap();
        let host: BTreeMap<String, String> = [("PATH", "/usr/bin"), ("HOME", "/root"), ("AWS_SECRET_ACCESS_KEY", "x")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let forwarded: BTreeMap<String, String> = [("EXTRA", "forwarded"), ("HTTP_PROXY", "http://proxy:3128")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = agent_env(
            &config.scalers[0],
            0,
            &AgentIdentity {
                agent_id: &AgentId::from("scaler-bare-metal-0a1b2c3d"),
                orchestrator_url: "ws://127.0.0.1:4000/ws",
                token: "kat_secret",
            },
            &host,
            &forwarded,
        );
        let rendered: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            rendered,
            [
                "PATH=/usr/bin",
                "HOME=/root",
                "HTTP_PROXY=http://proxy:3128",
                "KICI_ORCHESTRATOR_URL=ws://127.0.0.1:4000/ws",
                "KICI_AGENT_ID=scaler-bare-metal-0a1b2c3d",
                "KICI_AGENT_TOKEN=kat_secret",
                "KICI_LABELS=linux,node-20",
                "KICI_SCALER_MANAGED=1",
                "KICI_SCALER_BACKEND=bare-metal",
                "KICI_EXECUTION_MODE=bare-metal",
                "KICI_PORT=0",
                "KICI_ROLES=builder",
                "KICI_BACKPRESSURE_MODE=drop",
                "KICI_SCALER_PENDING_DISPATCH_TIMEOUT=30000",
                "EXTRA=label-set",
                "KICI_LOG_LEVEL=debug",
            ]
        );
    }
}
