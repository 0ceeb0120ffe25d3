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
pub(crate) use validate::{Problems, build_network_policy, present};

use super::bare_metal::config::{BareMetalBackend, BareMetalTarget};
use super::container::config::{ContainerBackend, ContainerTarget};
use super::firecracker::config::{FirecrackerBackend, FirecrackerNetwork, FirecrackerTarget};

/// `globalMaxAgents` when the file does not set it.
pub(crate) const DEFAULT_GLOBAL_MAX_AGENTS: u32 = 50;
/// The largest `cpus` a resources block may ask for.
pub(crate) const MAX_CPUS: f64 = 256.0;
/// The problem reported for a `kici:` label in a label set (spec text, grepped by operators).
pub(crate) const RESERVED_LABEL_MESSAGE: &str =
    "Labels with 'kici:' prefix are reserved and cannot be used in scaler labelSets";
/// What the orchestrator logs when a reload finds the new configuration invalid.
pub(crate) const RELOAD_FAILED_MESSAGE: &str = "Config reload failed, keeping current config";

const DEFAULT_WARM_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The validated auto-scaler configuration. The default is "no scalers".
#[derive(Debug, Clone, PartialEq)]
pub struct ScalerConfig {
    /// Cap on scaler-managed agents alive or spawning, across all scalers.
    pub(crate) global_max_agents: u32,
    /// `defaults.resources`: the last step of the job > label set > defaults cascade.
    pub(crate) default_resources: Resources,
    /// Kept, not enforced yet (P2).
    pub(crate) global_resource_cap: Option<ResourceCap>,
    /// Kept, not enforced yet (P2); scalers may only name pools listed here.
    pub(crate) machine_pools: Vec<MachinePool>,
    /// The top-level `firecracker` network block, kept for the Firecracker backend.
    pub(crate) firecracker_network: FirecrackerNetwork,
    /// `scalers.yaml`'s scalers, then those of each `scalers.d/` file in alphabetical order.
    pub(crate) scalers: Vec<ScalerEntry>,
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
    pub(crate) fn scaler(&self, name: &str) -> Option<&ScalerEntry> {
        self.scalers.iter().find(|s| s.name == name)
    }
}

/// One `scalers[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScalerEntry {
    pub(crate) name: String,
    /// The backend and its scaler-level settings.
    pub(crate) backend: Backend,
    /// Cap on this scaler's agents alive or spawning.
    pub(crate) max_agents: u32,
    /// At least one; labels normalized (lower-case, deduplicated, sorted).
    pub(crate) label_sets: Vec<LabelSet>,
    /// The URL spawned agents dial; `None` = the orchestrator's own.
    pub(crate) orchestrator_url: Option<String>,
    pub(crate) warm_pool: WarmPool,
    /// Labels a job must require (exactly) to be routed here; normalized.
    pub(crate) mandatory_labels: Vec<String>,
    pub(crate) roles: AgentRoles,
    /// Kept, not enforced yet (P2).
    pub(crate) resource_cap: Option<ResourceCap>,
    /// Kept, not enforced yet (P2); names one of [`ScalerConfig::machine_pools`].
    pub(crate) machine_pool: Option<String>,
    /// The file the entry came from, for messages.
    pub(crate) source: String,
}

impl ScalerEntry {
    pub(crate) fn scaler_type(&self) -> ScalerType {
        match self.backend {
            Backend::Container(_) => ScalerType::Container,
            Backend::BareMetal(_) => ScalerType::BareMetal,
            Backend::Firecracker(_) => ScalerType::Firecracker,
        }
    }
}

/// The kind of agent a scaler starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum ScalerType {
    Container,
    BareMetal,
    Firecracker,
}

impl ScalerType {
    /// The `type:` value, also used in `kici:agent:<type>`.
    pub(crate) fn as_str(self) -> &'static str {
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
pub(crate) enum Backend {
    Container(ContainerBackend),
    BareMetal(BareMetalBackend),
    Firecracker(FirecrackerBackend),
}

/// One `labelSets[]` entry: the labels a spawned agent gets and how to start it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LabelSet {
    /// Normalized: lower-case, deduplicated, sorted; never `kici:`.
    pub(crate) labels: Vec<String>,
    pub(crate) target: SpawnTarget,
    /// As written (flat form and missing sides already mirrored); see [`Resources::cascade`].
    pub(crate) resources: Resources,
    /// Extra agent environment; applied last, so it wins.
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) backpressure_mode: Option<BackpressureMode>,
}

/// What to start for a label set, per backend.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SpawnTarget {
    Container(ContainerTarget),
    BareMetal(BareMetalTarget),
    Firecracker(FirecrackerTarget),
}

/// `networkPolicy {allowlist, denyAll}` of container and Firecracker label sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NetworkPolicy {
    /// CIDRs reachable despite the private-range block.
    pub(crate) allowlist: Vec<String>,
    pub(crate) deny_all: bool,
}

/// The agent's `KICI_BACKPRESSURE_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BackpressureMode {
    Pause,
    Drop,
}

impl BackpressureMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BackpressureMode::Pause => "pause",
            BackpressureMode::Drop => "drop",
        }
    }
}

/// `warmPool`: idle agents kept ready (P1). They count toward the caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WarmPool {
    pub(crate) enabled: bool,
    pub(crate) size: u32,
    pub(crate) idle_timeout: Duration,
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
pub(crate) enum AgentRoles {
    /// Unset or `all`.
    All,
    /// The listed roles only; empty = execution only.
    Only(Vec<AgentRole>),
}

impl AgentRoles {
    pub(crate) fn includes(&self, role: AgentRole) -> bool {
        match self {
            AgentRoles::All => true,
            AgentRoles::Only(roles) => roles.contains(&role),
        }
    }

    /// The `KICI_ROLES` value: `None` = leave unset (all roles).
    pub(crate) fn env_value(&self) -> Option<String> {
        match self {
            AgentRoles::All => None,
            AgentRoles::Only(roles) => Some(roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum AgentRole {
    Builder,
    InitRunner,
}

impl AgentRole {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AgentRole::Builder => "builder",
            AgentRole::InitRunner => "init-runner",
        }
    }
}

/// A resources block. The flat form `{memory, cpus}` sets both sides; in the
/// `{requests, limits}` form a missing side mirrors the other.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Resources {
    /// What caps are billed against.
    pub(crate) requests: ResourceAmounts,
    /// What is enforced (container `HostConfig`, cgroups, VM size).
    pub(crate) limits: ResourceAmounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ResourceAmounts {
    pub(crate) memory_bytes: Option<u64>,
    pub(crate) cpus: Option<f64>,
}

impl ResourceAmounts {
    fn or(self, fallback: ResourceAmounts) -> ResourceAmounts {
        ResourceAmounts {
            memory_bytes: self.memory_bytes.or(fallback.memory_bytes),
            cpus: self.cpus.or(fallback.cpus),
        }
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.memory_bytes.is_none() && self.cpus.is_none()
    }
}

impl Resources {
    /// The effective resources of a spawn: each value from the job (SDK) if it sets it, else
    /// the label set, else `defaults.resources`.
    pub(crate) fn cascade(job: Option<&Resources>, label_set: &Resources, defaults: &Resources) -> Resources {
        let job = job.cloned().unwrap_or_default();
        Resources {
            requests: job.requests.or(label_set.requests).or(defaults.requests),
            limits: job.limits.or(label_set.limits).or(defaults.limits),
        }
    }

    /// Nothing set; only the tests ask.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.limits.is_empty()
    }
}

/// `resourceCap` / `globalResourceCap` / a machine pool's `cap` (kept, not enforced yet).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ResourceCap {
    pub(crate) max_cpus: Option<f64>,
    pub(crate) max_memory_bytes: Option<u64>,
}

/// `machinePools[]` (kept, not enforced yet).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MachinePool {
    pub(crate) name: String,
    pub(crate) cap: Option<ResourceCap>,
}

/// Parses `<n>k`, `<n>m` or `<n>g` (binary units, case-insensitive) into bytes.
pub(crate) fn parse_memory(text: &str) -> Option<u64> {
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
pub(crate) fn format_memory(bytes: u64) -> String {
    for (unit, suffix) in [(1u64 << 30, "g"), (1 << 20, "m"), (1 << 10, "k")] {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    format!("{bytes} bytes")
}

/// Lower-cases, trims, deduplicates and sorts labels.
pub(crate) fn normalize_labels<'a>(labels: impl IntoIterator<Item = &'a str>) -> Vec<String> {
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
