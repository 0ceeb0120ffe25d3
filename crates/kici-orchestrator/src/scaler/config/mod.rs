//! `scalers.yaml` and `scalers.d/`: the auto-scaler configuration, read strictly. This module
//! holds the resolved types every other part of the scaler reads; each backend's own settings
//! live beside the backend (`scaler::<backend>::config`).
//!
//! Two layers. The YAML is first deserialized into the `Raw*` shapes of [`raw`], which mirror
//! the file (camelCase keys, `deny_unknown_fields`): a syntax error, an unknown key or a value of
//! the wrong type stops there, reported by [`load`] with its file, line, column and key path.
//! Everything else is checked by [`validate`] while the raw shapes become the types below
//! ([`ScalerConfig`], [`ScalerEntry`], [`LabelSet`], ...), and every such problem is reported
//! together, with the texts of the operator spec (§1.7) where it gives one. A configuration is
//! either valid as a whole or not applied at all; [`diff`] says what a reload changes.
//!
//! `scalers.d/` files hold only `scalers:` (and optionally `version: 1`); their scalers are
//! appended after those of `scalers.yaml`, file by file in alphabetical order.

mod diff;
mod load;
pub(crate) mod raw;
#[cfg(test)]
mod testing;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

pub use diff::{ReloadDiff, reload_diff};
pub use load::{ParseError, ScalerConfigError, from_yaml_str, load};
pub use validate::ConfigProblem;
pub(crate) use validate::{Problems, build_network_policy, present};

use super::bare_metal::config::{BareMetalBackend, BareMetalTarget};
use super::container::config::{ContainerBackend, ContainerTarget};
use super::firecracker::config::{FirecrackerBackend, FirecrackerNetwork, FirecrackerTarget};

/// The `scalers.yaml` path.
pub const CONFIG_PATH_ENV: &str = "KICI_SCALER_CONFIG_PATH";
/// The `scalers.d/` directory.
pub const CONFIG_DIR_ENV: &str = "KICI_SCALER_CONFIG_DIR";
/// `globalMaxAgents` when the file does not set it.
pub const DEFAULT_GLOBAL_MAX_AGENTS: u32 = 50;
/// The largest `cpus` a resources block may ask for.
pub const MAX_CPUS: f64 = 256.0;
/// The problem reported for a `kici:` label in a label set (spec text, grepped by operators).
pub const RESERVED_LABEL_MESSAGE: &str =
    "Labels with 'kici:' prefix are reserved and cannot be used in scaler labelSets";
/// What the orchestrator logs when a reload finds the new configuration invalid.
pub const RELOAD_FAILED_MESSAGE: &str = "Config reload failed, keeping current config";

const DEFAULT_WARM_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The validated auto-scaler configuration. The default is "no scalers".
#[derive(Debug, Clone, PartialEq)]
pub struct ScalerConfig {
    /// Cap on scaler-managed agents alive or spawning, across all scalers.
    pub global_max_agents: u32,
    /// `defaults.resources`: the last step of the job > label set > defaults cascade.
    pub default_resources: Resources,
    /// Kept, not enforced yet (P2).
    pub global_resource_cap: Option<ResourceCap>,
    /// Kept, not enforced yet (P2); scalers may only name pools listed here.
    pub machine_pools: Vec<MachinePool>,
    /// The top-level `firecracker` network block, kept for the Firecracker backend.
    pub firecracker_network: FirecrackerNetwork,
    /// `scalers.yaml`'s scalers, then those of each `scalers.d/` file in alphabetical order.
    pub scalers: Vec<ScalerEntry>,
}

impl Default for ScalerConfig {
    fn default() -> Self {
        ScalerConfig {
            global_max_agents: DEFAULT_GLOBAL_MAX_AGENTS,
            default_resources: Resources::default(),
            global_resource_cap: None,
            machine_pools: Vec::new(),
            firecracker_network: FirecrackerNetwork::default(),
            scalers: Vec::new(),
        }
    }
}

impl ScalerConfig {
    /// The scaler called `name`.
    pub fn scaler(&self, name: &str) -> Option<&ScalerEntry> {
        self.scalers.iter().find(|s| s.name == name)
    }
}

/// One `scalers[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalerEntry {
    pub name: String,
    /// The backend and its scaler-level settings.
    pub backend: Backend,
    /// Cap on this scaler's agents alive or spawning.
    pub max_agents: u32,
    /// At least one; labels normalized (lower-case, deduplicated, sorted).
    pub label_sets: Vec<LabelSet>,
    /// The URL spawned agents dial; `None` = the orchestrator's own.
    pub orchestrator_url: Option<String>,
    pub warm_pool: WarmPool,
    /// Labels a job must require (exactly) to be routed here; normalized.
    pub mandatory_labels: Vec<String>,
    pub roles: AgentRoles,
    /// Kept, not enforced yet (P2).
    pub resource_cap: Option<ResourceCap>,
    /// Kept, not enforced yet (P2); names one of [`ScalerConfig::machine_pools`].
    pub machine_pool: Option<String>,
    /// The file the entry came from, for messages.
    pub source: String,
}

impl ScalerEntry {
    pub fn scaler_type(&self) -> ScalerType {
        match self.backend {
            Backend::Container(_) => ScalerType::Container,
            Backend::BareMetal(_) => ScalerType::BareMetal,
            Backend::Firecracker(_) => ScalerType::Firecracker,
        }
    }
}

/// The kind of agent a scaler starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScalerType {
    Container,
    BareMetal,
    Firecracker,
}

impl ScalerType {
    /// The `type:` value, also used in `kici:agent:<type>`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScalerType::Container => "container",
            ScalerType::BareMetal => "bare-metal",
            ScalerType::Firecracker => "firecracker",
        }
    }

    fn parse(text: &str) -> Option<ScalerType> {
        match text {
            "container" => Some(ScalerType::Container),
            "bare-metal" => Some(ScalerType::BareMetal),
            "firecracker" => Some(ScalerType::Firecracker),
            _ => None,
        }
    }
}

impl fmt::Display for ScalerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Scaler-level settings of each backend.
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    Container(ContainerBackend),
    BareMetal(BareMetalBackend),
    Firecracker(FirecrackerBackend),
}

/// One `labelSets[]` entry: the labels a spawned agent gets and how to start it.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSet {
    /// Normalized: lower-case, deduplicated, sorted; never `kici:`.
    pub labels: Vec<String>,
    pub target: SpawnTarget,
    /// As written (flat form and missing sides already mirrored); see [`Resources::cascade`].
    pub resources: Resources,
    /// Extra agent environment; applied last, so it wins.
    pub env: BTreeMap<String, String>,
    pub backpressure_mode: Option<BackpressureMode>,
}

/// What to start for a label set, per backend.
#[derive(Debug, Clone, PartialEq)]
pub enum SpawnTarget {
    Container(ContainerTarget),
    BareMetal(BareMetalTarget),
    Firecracker(FirecrackerTarget),
}

/// `networkPolicy {allowlist, denyAll}` of container and Firecracker label sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// CIDRs reachable despite the private-range block.
    pub allowlist: Vec<String>,
    pub deny_all: bool,
}

/// The agent's `KICI_BACKPRESSURE_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackpressureMode {
    Pause,
    Drop,
}

impl BackpressureMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BackpressureMode::Pause => "pause",
            BackpressureMode::Drop => "drop",
        }
    }
}

/// `warmPool`: idle agents kept ready (P1). They count toward the caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmPool {
    pub enabled: bool,
    pub size: u32,
    pub idle_timeout: Duration,
}

impl Default for WarmPool {
    fn default() -> Self {
        WarmPool {
            enabled: false,
            size: 0,
            idle_timeout: DEFAULT_WARM_POOL_IDLE_TIMEOUT,
        }
    }
}

/// Which job roles a spawned agent takes (`KICI_ROLES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentRoles {
    /// Unset or `all`.
    All,
    /// The listed roles only; empty = execution only.
    Only(Vec<AgentRole>),
}

impl AgentRoles {
    /// The `KICI_ROLES` value: `None` = leave unset (all roles).
    pub fn env_value(&self) -> Option<String> {
        match self {
            AgentRoles::All => None,
            AgentRoles::Only(roles) => Some(roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AgentRole {
    Builder,
    InitRunner,
}

impl AgentRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentRole::Builder => "builder",
            AgentRole::InitRunner => "init-runner",
        }
    }
}

/// A resources block. The flat form `{memory, cpus}` sets both sides; in the
/// `{requests, limits}` form a missing side mirrors the other.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// What caps are billed against.
    pub requests: ResourceAmounts,
    /// What is enforced (container `HostConfig`, cgroups, VM size).
    pub limits: ResourceAmounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResourceAmounts {
    pub memory_bytes: Option<u64>,
    pub cpus: Option<f64>,
}

impl ResourceAmounts {
    fn or(self, fallback: ResourceAmounts) -> ResourceAmounts {
        ResourceAmounts {
            memory_bytes: self.memory_bytes.or(fallback.memory_bytes),
            cpus: self.cpus.or(fallback.cpus),
        }
    }

    fn is_empty(&self) -> bool {
        self.memory_bytes.is_none() && self.cpus.is_none()
    }
}

impl Resources {
    /// The effective resources of a spawn: each value from the job (SDK) if it sets it, else
    /// the label set, else `defaults.resources`.
    pub fn cascade(job: Option<&Resources>, label_set: &Resources, defaults: &Resources) -> Resources {
        let job = job.cloned().unwrap_or_default();
        Resources {
            requests: job.requests.or(label_set.requests).or(defaults.requests),
            limits: job.limits.or(label_set.limits).or(defaults.limits),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.limits.is_empty()
    }
}

/// `resourceCap` / `globalResourceCap` / a machine pool's `cap` (kept, not enforced yet).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResourceCap {
    pub max_cpus: Option<f64>,
    pub max_memory_bytes: Option<u64>,
}

/// `machinePools[]` (kept, not enforced yet).
#[derive(Debug, Clone, PartialEq)]
pub struct MachinePool {
    pub name: String,
    pub cap: Option<ResourceCap>,
}

/// Parses `<n>k`, `<n>m` or `<n>g` (binary units, case-insensitive) into bytes.
pub fn parse_memory(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let unit = match text.chars().last()? {
        'k' => 1u64 << 10,
        'm' => 1 << 20,
        'g' => 1 << 30,
        _ => return None,
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let count: u64 = digits.parse().ok()?;
    if count == 0 {
        return None;
    }
    count.checked_mul(unit)
}

/// Bytes in the largest exact unit of [`parse_memory`]: `2g`, `1536m`.
pub fn format_memory(bytes: u64) -> String {
    for (unit, suffix) in [(1u64 << 30, "g"), (1 << 20, "m"), (1 << 10, "k")] {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    format!("{bytes} bytes")
}

/// Lower-cases, trims, deduplicates and sorts labels.
pub fn normalize_labels<'a>(labels: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let set: BTreeSet<String> = labels.into_iter().map(|l| l.trim().to_lowercase()).collect();
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::testing::amounts;
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1k"), Some(1024));
        assert_eq!(parse_memory("3M"), Some(3 << 20));
        assert_eq!(parse_memory(" 2g "), Some(2 << 30));
        for bad in ["", "g", "2", "2gb", "2t", "-1g", "1.5g", "0m", "99999999999999999999g"] {
            assert_eq!(parse_memory(bad), None, "{bad}");
        }
        assert_eq!(format_memory(2 << 30), "2g");
        assert_eq!(format_memory(1536 << 20), "1536m");
        assert_eq!(format_memory(3 << 10), "3k");
    }

    #[test]
    fn resources_cascade_job_then_label_set_then_defaults() {
        let defaults = Resources {
            requests: amounts(Some(1), Some(1.0)),
            limits: amounts(Some(10), Some(1.0)),
        };
        let label_set = Resources {
            requests: amounts(Some(2), None),
            limits: amounts(Some(20), None),
        };
        let job = Resources {
            requests: amounts(None, Some(3.0)),
            limits: amounts(None, Some(3.0)),
        };
        assert_eq!(
            Resources::cascade(Some(&job), &label_set, &defaults),
            Resources {
                requests: amounts(Some(2), Some(3.0)),
                limits: amounts(Some(20), Some(3.0))
            }
        );
        assert_eq!(Resources::cascade(None, &Resources::default(), &defaults), defaults);
    }
}
