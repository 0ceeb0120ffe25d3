//! `scalers.yaml` and `scalers.d/`: the auto-scaler configuration, read strictly.
//!
//! Two layers. The YAML is first deserialized into the private `Raw*` shapes below, which mirror
//! the file (camelCase keys, `deny_unknown_fields`): a syntax error, an unknown key or a value of
//! the wrong type stops there, reported with its file, line, column and key path. Everything
//! else is checked while the raw shapes become the domain types ([`ScalerConfig`],
//! [`ScalerEntry`], [`LabelSet`], ...), and every such problem is reported together, with the
//! texts of the operator spec (§1.7) where it gives one. A configuration is either valid as a
//! whole or not applied at all.
//!
//! `scalers.d/` files hold only `scalers:` (and optionally `version: 1`); their scalers are
//! appended after those of `scalers.yaml`, file by file in alphabetical order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kici_engine::labels::RESERVED_PREFIX;
use serde::Deserialize;
use serde::de::DeserializeOwned;

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
const DEFAULT_CHROOT_BASE_DIR: &str = "/srv/jailer";
const DEFAULT_VCPU_COUNT: u32 = 2;
const MAX_VCPU_COUNT: u32 = 32;
const DEFAULT_MEM_SIZE_MIB: u32 = 512;
const DEFAULT_OVERLAY_DRIVE_SIZE_MIB: u32 = 2048;

const HINT_PATH: &str = "check KICI_SCALER_CONFIG_PATH, or unset it to run without auto-scalers";
const HINT_DIR: &str = "check KICI_SCALER_CONFIG_DIR: it must be a readable directory of *.yaml files, or unset";
const HINT_SYNTAX: &str = "fix the file at that position; an invalid scaler config is never partly applied";
const HINT_UNKNOWN_KEY: &str = "keys are case-sensitive camelCase; rename or remove the key";
const HINT_DROP_IN_KEY: &str =
    "a scalers.d file holds only `scalers:` and optionally `version: 1`; other settings belong in scalers.yaml";

// ---------------------------------------------------------------------------------------------
// Domain types
// ---------------------------------------------------------------------------------------------

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

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerBackend {
    /// A remote engine (`tcp://…`); `None` = a local socket.
    pub host: Option<String>,
    /// `None` = auto-detect the Docker and Podman sockets.
    pub socket_path: Option<PathBuf>,
    pub runtime: ContainerRuntime,
    /// `host:ip` entries such as `host.docker.internal:host-gateway`.
    pub extra_hosts: Vec<String>,
    /// Block private ranges from containers (needs nft and NET_ADMIN). Default `true`.
    pub network_isolation: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerRuntime {
    Auto,
    Docker,
    Podman,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BareMetalBackend {
    /// Wrap agents in `systemd-run --user --scope` with CPU and memory limits. Default `false`.
    pub enforce_cgroups: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FirecrackerBackend {
    pub firecracker_path: PathBuf,
    pub jailer_path: PathBuf,
    /// The default kernel; a label set may override it.
    pub kernel_path: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub chroot_base_dir: PathBuf,
    /// Defaults for label sets that do not override them.
    pub vcpu_count: u32,
    pub mem_size_mib: u32,
    /// Run `ip`/`chown` through `sudo -n`.
    pub require_sudo: bool,
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

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerTarget {
    pub image: String,
    pub pull_policy: ImagePullPolicy,
    /// `<host path or volume>:<container path>[:ro|:rw]`.
    pub volumes: Vec<String>,
    /// Mount the engine socket into the container (root-equivalent). Default `false`.
    pub container_socket: bool,
    pub network_policy: NetworkPolicy,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BareMetalTarget {
    pub binary_path: PathBuf,
}

/// Label-set overrides already applied over the scaler's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct FirecrackerTarget {
    pub rootfs_path: PathBuf,
    pub kernel_path: PathBuf,
    pub vcpu_count: u32,
    pub mem_size_mib: u32,
    pub overlay_drive_size_mib: u32,
    pub network_policy: NetworkPolicy,
}

/// `imagePullPolicy`; `IfNotPresent` when unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImagePullPolicy {
    Always,
    IfNotPresent,
    Never,
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

/// The top-level `firecracker` block: the host network the VMs share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirecrackerNetwork {
    pub cidr: String,
    pub bridge_name: String,
    pub gateway: String,
    pub netmask: String,
    pub table: String,
}

impl Default for FirecrackerNetwork {
    fn default() -> Self {
        FirecrackerNetwork {
            cidr: "10.0.0.0/24".to_string(),
            bridge_name: "kici-br0".to_string(),
            gateway: "10.0.0.1".to_string(),
            netmask: "255.255.255.0".to_string(),
            table: "kici".to_string(),
        }
    }
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

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// One validation problem and the file it is about (`None` when no single file is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub file: Option<String>,
    /// The spec's text where it has one.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{file}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScalerConfigError {
    #[error("cannot read scaler config `{}` (hint: {hint})", path.display())]
    Read {
        path: PathBuf,
        hint: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read scaler config directory `{}` (hint: {HINT_DIR})", path.display())]
    ReadDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The YAML itself: syntax, an unknown key, a value of the wrong type (first one only).
    #[error(transparent)]
    Parse(Box<ParseError>),
    /// Every problem found in an otherwise well-formed configuration.
    #[error(
        "invalid scaler config:\n{}\n(hint: fix every problem listed; an invalid scaler config is never partly applied)",
        problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
    )]
    Invalid { problems: Vec<ConfigProblem> },
}

/// A YAML error, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot parse scaler config `{file}`{}: {message}{} (hint: {hint})",
    position(*line, *column),
    key_path.as_ref().map(|p| format!(" (at `{p}`)")).unwrap_or_default()
)]
pub struct ParseError {
    pub file: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
    /// Where in the document, e.g. `scalers[0].labelSets[1].imag`.
    pub key_path: Option<String>,
    /// The parser's text, e.g. "unknown field `imag`, expected one of labels, image, ...".
    pub message: String,
    pub hint: String,
}

fn position(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(" at line {line}, column {column}"),
        (Some(line), None) => format!(" at line {line}"),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/// Reads `scalers.yaml` (`path`) and appends the scalers of every `*.yaml`/`*.yml` file of
/// `dir` in alphabetical order (dot-files skipped), then validates the whole. A configured file
/// or directory that cannot be read is an error; neither configured = no scalers.
pub fn load(path: Option<&Path>, dir: Option<&Path>) -> Result<ScalerConfig, ScalerConfigError> {
    let main = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ScalerConfigError::Read {
                path: path.to_path_buf(),
                hint: HINT_PATH,
                source,
            })?;
            let file = path.display().to_string();
            let raw: Option<RawConfig> = parse_yaml(&text, &file, false)?;
            Some((file, raw.unwrap_or_default()))
        }
        None => None,
    };
    let mut drop_ins = Vec::new();
    if let Some(dir) = dir {
        for path in drop_in_files(dir)? {
            let text = std::fs::read_to_string(&path).map_err(|source| ScalerConfigError::Read {
                path: path.clone(),
                hint: HINT_DIR,
                source,
            })?;
            let file = path.display().to_string();
            let raw: Option<RawDropIn> = parse_yaml(&text, &file, true)?;
            drop_ins.push((file, raw.unwrap_or_default()));
        }
    }
    assemble(main, drop_ins)
}

/// Parses and validates one `scalers.yaml` text; `file` names it in errors.
pub fn from_yaml_str(text: &str, file: &str) -> Result<ScalerConfig, ScalerConfigError> {
    let raw: Option<RawConfig> = parse_yaml(text, file, false)?;
    assemble(Some((file.to_string(), raw.unwrap_or_default())), Vec::new())
}

/// The `*.yaml` / `*.yml` files of a `scalers.d/` directory, in alphabetical order.
fn drop_in_files(dir: &Path) -> Result<Vec<PathBuf>, ScalerConfigError> {
    let read_dir_error = |source| ScalerConfigError::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_dir_error)? {
        let entry = entry.map_err(read_dir_error)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        let path = entry.path();
        if yaml && !name.starts_with('.') && path.is_file() {
            files.push((name, path));
        }
    }
    files.sort();
    Ok(files.into_iter().map(|(_, path)| path).collect())
}

fn parse_yaml<T: DeserializeOwned>(text: &str, file: &str, drop_in: bool) -> Result<Option<T>, ScalerConfigError> {
    let mut key_path = None;
    let result = serde_saphyr::with_deserializer_from_str(text, |deserializer| {
        serde_path_to_error::deserialize::<_, Option<T>>(deserializer).map_err(|err| {
            key_path = Some(err.path().to_string());
            err.into_inner()
        })
    });
    result.map_err(|err| {
        let location = err.location();
        let (line, column) = (location.map(|l| l.line()), location.map(|l| l.column()));
        let mut message = err.without_snippet().to_string();
        if let (Some(line), Some(column)) = (line, column) {
            let suffix = format!(" at line {line}, column {column}");
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
        let key_path = key_path.filter(|p| p != "." && p != "?");
        let hint = parse_hint(&message, key_path.as_deref(), drop_in);
        ScalerConfigError::Parse(Box::new(ParseError {
            file: file.to_string(),
            line,
            column,
            key_path,
            message,
            hint,
        }))
    })
}

/// The hint of a parse error; an unknown key gets "did you mean" when a known key is close.
fn parse_hint(message: &str, key_path: Option<&str>, drop_in: bool) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return HINT_SYNTAX.to_string();
    };
    let top_level = key_path.is_some_and(|p| !p.contains(['.', '[']));
    if drop_in && top_level {
        return HINT_DROP_IN_KEY.to_string();
    }
    let Some((key, expected)) = rest.split_once("`, expected one of ") else {
        return HINT_UNKNOWN_KEY.to_string();
    };
    let candidates = expected.split(", ").map(|c| c.trim_matches('`'));
    match kici_engine::suggest::closest(key, candidates) {
        Some(close) => format!("did you mean `{close}`? {HINT_UNKNOWN_KEY}"),
        None => HINT_UNKNOWN_KEY.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Raw shapes (the file as written)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    version: Option<i64>,
    global_max_agents: Option<i64>,
    defaults: Option<RawDefaults>,
    global_resource_cap: Option<RawResourceCap>,
    machine_pools: Option<Vec<RawMachinePool>>,
    scalers: Option<Vec<RawScaler>>,
    firecracker: Option<RawFirecrackerNetwork>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawDropIn {
    version: Option<i64>,
    scalers: Option<Vec<RawScaler>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawDefaults {
    resources: Option<RawResources>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawResourceCap {
    max_cpu: Option<f64>,
    max_memory: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawMachinePool {
    name: Option<String>,
    cap: Option<RawResourceCap>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawFirecrackerNetwork {
    cidr: Option<String>,
    bridge_name: Option<String>,
    gateway: Option<String>,
    netmask: Option<String>,
    table: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawScaler {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    max_agents: Option<i64>,
    label_sets: Option<Vec<RawLabelSet>>,
    orchestrator_url: Option<String>,
    warm_pool: Option<RawWarmPool>,
    mandatory_labels: Option<Vec<String>>,
    roles: Option<RawRoles>,
    resource_cap: Option<RawResourceCap>,
    machine_pool: Option<String>,
    // container
    host: Option<String>,
    socket_path: Option<String>,
    runtime: Option<String>,
    extra_hosts: Option<Vec<String>>,
    network_isolation: Option<bool>,
    // bare-metal
    enforce_cgroups: Option<bool>,
    // firecracker
    firecracker_path: Option<String>,
    jailer_path: Option<String>,
    kernel_path: Option<String>,
    uid: Option<i64>,
    gid: Option<i64>,
    chroot_base_dir: Option<String>,
    vcpu_count: Option<i64>,
    mem_size_mib: Option<i64>,
    require_sudo: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawWarmPool {
    enabled: Option<bool>,
    size: Option<i64>,
    idle_timeout_seconds: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawLabelSet {
    labels: Option<Vec<String>>,
    image: Option<String>,
    image_pull_policy: Option<String>,
    binary_path: Option<String>,
    rootfs_path: Option<String>,
    kernel_path: Option<String>,
    vcpu_count: Option<i64>,
    mem_size_mib: Option<i64>,
    overlay_drive_size_mib: Option<i64>,
    resources: Option<RawResources>,
    volumes: Option<Vec<String>>,
    container_socket: Option<bool>,
    env: Option<BTreeMap<String, String>>,
    backpressure_mode: Option<String>,
    network_policy: Option<RawNetworkPolicy>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawResources {
    memory: Option<String>,
    cpus: Option<f64>,
    requests: Option<RawAmounts>,
    limits: Option<RawAmounts>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawAmounts {
    memory: Option<String>,
    cpus: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawNetworkPolicy {
    allowlist: Option<Vec<String>>,
    deny_all: Option<bool>,
}

/// `roles: all` or `roles: [builder, init-runner]`.
#[derive(Debug, Default)]
struct RawRoles(Vec<String>);

impl<'de> Deserialize<'de> for RawRoles {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RolesVisitor;
        impl<'de> serde::de::Visitor<'de> for RolesVisitor {
            type Value = RawRoles;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a role or a list of roles (builder, init-runner, all)")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<RawRoles, E> {
                Ok(RawRoles(vec![value.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawRoles, A::Error> {
                let mut roles = Vec::new();
                while let Some(role) = seq.next_element::<String>()? {
                    roles.push(role);
                }
                Ok(RawRoles(roles))
            }
        }
        deserializer.deserialize_any(RolesVisitor)
    }
}

// ---------------------------------------------------------------------------------------------
// Validation: raw shapes -> domain types, every problem collected
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn add(&mut self, file: Option<&str>, message: String) {
        let problem = ConfigProblem {
            file: file.map(str::to_string),
            message,
        };
        if !self.0.contains(&problem) {
            self.0.push(problem);
        }
    }
}

/// What cross-scaler checks need from each entry, valid or not.
struct Checked {
    name: Option<String>,
    index: usize,
    file: String,
    label_sets: Vec<Vec<String>>,
    machine_pool: Option<String>,
    entry: Option<ScalerEntry>,
}

fn assemble(
    main: Option<(String, RawConfig)>,
    drop_ins: Vec<(String, RawDropIn)>,
) -> Result<ScalerConfig, ScalerConfigError> {
    let mut problems = Problems::default();
    let mut config = ScalerConfig::default();
    let mut raw_scalers: Vec<(String, Vec<RawScaler>)> = Vec::new();
    if let Some((file, raw)) = main {
        let at = Some(file.as_str());
        match raw.version {
            None => problems.add(
                at,
                "'version' is required: start the file with `version: 1`".to_string(),
            ),
            Some(1) => {}
            Some(v) => problems.add(at, format!("version must be 1 (got {v})")),
        }
        match raw.global_max_agents {
            None => {}
            Some(n) if n < 1 => problems.add(at, format!("globalMaxAgents must be at least 1 (got {n})")),
            Some(n) => config.global_max_agents = u32::try_from(n).unwrap_or(u32::MAX),
        }
        if let Some(defaults) = raw.defaults {
            config.default_resources = build_resources(defaults.resources, "defaults", &mut problems, at);
        }
        config.global_resource_cap = raw
            .global_resource_cap
            .map(|cap| build_cap(cap, "globalResourceCap", &mut problems, at));
        let mut pool_names = BTreeSet::new();
        for (index, pool) in raw.machine_pools.unwrap_or_default().into_iter().enumerate() {
            let context = format!("machinePools[{index}]");
            let name = match pool.name.map(|n| n.trim().to_string()) {
                Some(name) if !name.is_empty() => name,
                _ => {
                    problems.add(at, format!("{context} requires a 'name' field"));
                    continue;
                }
            };
            if !pool_names.insert(name.clone()) {
                problems.add(
                    at,
                    format!("{context}: machinePool name \"{name}\" is used more than once"),
                );
            }
            let cap = pool
                .cap
                .map(|cap| build_cap(cap, &format!("{context}.cap"), &mut problems, at));
            config.machine_pools.push(MachinePool { name, cap });
        }
        if let Some(fc) = raw.firecracker {
            let defaults = FirecrackerNetwork::default();
            config.firecracker_network = FirecrackerNetwork {
                cidr: fc.cidr.unwrap_or(defaults.cidr),
                bridge_name: fc.bridge_name.unwrap_or(defaults.bridge_name),
                gateway: fc.gateway.unwrap_or(defaults.gateway),
                netmask: fc.netmask.unwrap_or(defaults.netmask),
                table: fc.table.unwrap_or(defaults.table),
            };
        }
        raw_scalers.push((file, raw.scalers.unwrap_or_default()));
    }
    for (file, raw) in drop_ins {
        if let Some(v) = raw.version.filter(|v| *v != 1) {
            problems.add(Some(&file), format!("version must be 1 (got {v})"));
        }
        raw_scalers.push((file, raw.scalers.unwrap_or_default()));
    }

    let mut checked = Vec::new();
    for (file, scalers) in raw_scalers {
        for (index, raw) in scalers.into_iter().enumerate() {
            checked.push(build_scaler(raw, index, &file, &mut problems));
        }
    }
    check_across_scalers(&checked, &config.machine_pools, &mut problems);

    if !problems.0.is_empty() {
        return Err(ScalerConfigError::Invalid { problems: problems.0 });
    }
    config.scalers = checked.into_iter().filter_map(|c| c.entry).collect();
    Ok(config)
}

/// Duplicate names, label sets shared between scalers, unknown machine pools.
fn check_across_scalers(checked: &[Checked], pools: &[MachinePool], problems: &mut Problems) {
    let mut names: BTreeMap<String, &Checked> = BTreeMap::new();
    for scaler in checked {
        let Some(name) = &scaler.name else { continue };
        match names.get(&name.to_lowercase()) {
            Some(first) => {
                let place = |c: &Checked| format!("scalers[{}] of {}", c.index, c.file);
                problems.add(
                    Some(&scaler.file),
                    format!(
                        "Scaler name \"{name}\" is used more than once ({} and {}); scaler names must be unique",
                        place(first),
                        place(scaler)
                    ),
                );
            }
            None => {
                names.insert(name.to_lowercase(), scaler);
            }
        }
    }

    // Identical label sets in two scalers would make routing depend on order; within one
    // scaler they are allowed (different images for the same labels, for instance).
    let mut owners: BTreeMap<&[String], &str> = BTreeMap::new();
    for scaler in checked {
        let Some(name) = &scaler.name else { continue };
        for labels in &scaler.label_sets {
            match owners.get(labels.as_slice()) {
                Some(first) if *first != name.as_str() => problems.add(
                    Some(&scaler.file),
                    format!(
                        "Label set [{}] overlaps between scalers \"{first}\" and \"{name}\"",
                        labels.join(",")
                    ),
                ),
                Some(_) => {}
                None => {
                    owners.insert(labels, name);
                }
            }
        }
    }

    for scaler in checked {
        let (Some(name), Some(pool)) = (&scaler.name, &scaler.machine_pool) else {
            continue;
        };
        if !pools.iter().any(|p| &p.name == pool) {
            problems.add(
                Some(&scaler.file),
                format!(
                    "Scaler \"{name}\" references unknown machinePool \"{pool}\". Define it under top-level machinePools[]."
                ),
            );
        }
    }
}

/// The label of a field owned by some backends, for "does not take" messages.
fn owners_text(owners: &[ScalerType]) -> String {
    owners.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(" and ")
}

fn build_scaler(raw: RawScaler, index: usize, file: &str, problems: &mut Problems) -> Checked {
    let at = Some(file);
    let declared_name = raw.name.as_deref().map(str::trim).map(str::to_string);
    let name = match &declared_name {
        None => {
            problems.add(at, format!("scalers[{index}] requires a 'name' field"));
            format!("scalers[{index}]")
        }
        Some(name) => {
            if !valid_scaler_name(name) {
                problems.add(
                    at,
                    format!("Scaler name \"{name}\" is invalid: use letters, digits, '.', '_' or '-'"),
                );
            }
            name.clone()
        }
    };

    let kind = match raw.kind.as_deref().map(str::trim) {
        None => {
            problems.add(
                at,
                format!("Scaler \"{name}\" requires a 'type' field (container, bare-metal or firecracker)"),
            );
            None
        }
        Some("docker") => {
            problems.add(
                at,
                format!(
                    "Scaler \"{name}\" has type \"docker\", which is not supported: use type \"container\" (it drives Docker or Podman)"
                ),
            );
            None
        }
        Some(other) => {
            let kind = ScalerType::parse(other);
            if kind.is_none() {
                problems.add(
                    at,
                    format!(
                        "Scaler \"{name}\" has unknown type \"{other}\" (expected container, bare-metal or firecracker)"
                    ),
                );
            }
            kind
        }
    };

    let max_agents = match raw.max_agents {
        None => {
            problems.add(at, format!("Scaler \"{name}\" requires a 'maxAgents' field"));
            1
        }
        Some(n) if n < 1 => {
            problems.add(at, format!("Scaler \"{name}\" maxAgents must be at least 1 (got {n})"));
            1
        }
        Some(n) => u32::try_from(n).unwrap_or(u32::MAX),
    };

    let backend = kind.map(|kind| build_backend(&raw, &name, kind, problems, at));

    let raw_sets = raw.label_sets.unwrap_or_default();
    if raw_sets.is_empty() {
        problems.add(
            at,
            format!("Scaler \"{name}\" requires at least one label set in 'labelSets'"),
        );
    }
    let fc_backend = match &backend {
        Some(Backend::Firecracker(fc)) => Some(fc),
        _ => None,
    };
    let mut label_sets = Vec::new();
    let mut label_lists = Vec::new();
    for (set_index, raw_set) in raw_sets.into_iter().enumerate() {
        let (labels, set) = build_label_set(raw_set, &name, set_index, kind, fc_backend, problems, at);
        label_lists.push(labels);
        label_sets.extend(set);
    }

    let orchestrator_url = raw.orchestrator_url.map(|url| url.trim().to_string());
    if let Some(url) = &orchestrator_url {
        let rest = ["ws://", "wss://", "http://", "https://"]
            .iter()
            .find_map(|scheme| url.strip_prefix(scheme));
        if rest.is_none_or(|rest| rest.is_empty() || rest.starts_with('/')) {
            problems.add(
                at,
                format!(
                    "Scaler \"{name}\" orchestratorUrl \"{url}\" must be ws://, wss://, http:// or https:// followed by a host (e.g. ws://10.0.0.1:4000/ws)"
                ),
            );
        }
    }

    let warm_pool = build_warm_pool(raw.warm_pool, &name, max_agents, problems, at);

    let mut mandatory_labels = Vec::new();
    for label in raw.mandatory_labels.unwrap_or_default() {
        let label = label.trim().to_lowercase();
        if malformed_label(&label) {
            problems.add(
                at,
                format!(
                    "Scaler \"{name}\" mandatory label \"{label}\" is invalid: labels cannot be empty or contain whitespace or commas"
                ),
            );
        } else {
            mandatory_labels.push(label);
        }
    }
    let mandatory_labels = normalize_labels(mandatory_labels.iter().map(String::as_str));
    if let Some(kind) = kind {
        let auto = crate::scaler::routing::auto_labels(kind, &name);
        for label in &mandatory_labels {
            let present = auto.contains(label) || label_lists.iter().any(|set| set.contains(label));
            if !present && !label_lists.is_empty() {
                problems.add(
                    at,
                    format!(
                        "Scaler \"{name}\" mandatory label \"{label}\" is absent from every label set, so no job could be routed to it"
                    ),
                );
            }
        }
    }

    let roles = build_roles(raw.roles, &name, problems, at);
    let resource_cap = raw
        .resource_cap
        .map(|cap| build_cap(cap, &format!("Scaler \"{name}\" resourceCap"), problems, at));
    let machine_pool = raw.machine_pool.map(|p| p.trim().to_string());

    let entry = backend.map(|backend| ScalerEntry {
        name: name.clone(),
        backend,
        max_agents,
        label_sets,
        orchestrator_url,
        warm_pool,
        mandatory_labels,
        roles,
        resource_cap,
        machine_pool: machine_pool.clone(),
        source: file.to_string(),
    });
    Checked {
        name: declared_name,
        index,
        file: file.to_string(),
        label_sets: label_lists,
        machine_pool,
        entry,
    }
}

fn valid_scaler_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn malformed_label(label: &str) -> bool {
    label.is_empty() || label.contains(|c: char| c.is_whitespace() || c == ',')
}

/// Reports fields set on a scaler or label set whose backend does not use them.
fn reject_foreign_fields(
    fields: &[(&str, bool, &[ScalerType])],
    kind: ScalerType,
    subject: &str,
    problems: &mut Problems,
    at: Option<&str>,
) {
    for (field, present, owners) in fields {
        if *present && !owners.contains(&kind) {
            problems.add(
                at,
                format!(
                    "{subject} does not take '{field}': it is a {} setting",
                    owners_text(owners)
                ),
            );
        }
    }
}

fn build_backend(raw: &RawScaler, name: &str, kind: ScalerType, problems: &mut Problems, at: Option<&str>) -> Backend {
    use ScalerType::{BareMetal, Container, Firecracker};
    let fields: [(&str, bool, &[ScalerType]); 15] = [
        ("host", raw.host.is_some(), &[Container]),
        ("socketPath", raw.socket_path.is_some(), &[Container]),
        ("runtime", raw.runtime.is_some(), &[Container]),
        ("extraHosts", raw.extra_hosts.is_some(), &[Container]),
        ("networkIsolation", raw.network_isolation.is_some(), &[Container]),
        ("enforceCgroups", raw.enforce_cgroups.is_some(), &[BareMetal]),
        ("firecrackerPath", raw.firecracker_path.is_some(), &[Firecracker]),
        ("jailerPath", raw.jailer_path.is_some(), &[Firecracker]),
        ("kernelPath", raw.kernel_path.is_some(), &[Firecracker]),
        ("uid", raw.uid.is_some(), &[Firecracker]),
        ("gid", raw.gid.is_some(), &[Firecracker]),
        ("chrootBaseDir", raw.chroot_base_dir.is_some(), &[Firecracker]),
        ("vcpuCount", raw.vcpu_count.is_some(), &[Firecracker]),
        ("memSizeMib", raw.mem_size_mib.is_some(), &[Firecracker]),
        ("requireSudo", raw.require_sudo.is_some(), &[Firecracker]),
    ];
    reject_foreign_fields(&fields, kind, &format!("Scaler \"{name}\" ({kind})"), problems, at);

    match kind {
        Container => {
            let runtime = match raw.runtime.as_deref().map(str::trim) {
                None | Some("auto") => ContainerRuntime::Auto,
                Some("docker") => ContainerRuntime::Docker,
                Some("podman") => ContainerRuntime::Podman,
                Some(other) => {
                    problems.add(
                        at,
                        format!("Scaler \"{name}\" runtime \"{other}\" is not one of auto, docker, podman"),
                    );
                    ContainerRuntime::Auto
                }
            };
            let host = raw.host.as_deref().map(str::trim).map(str::to_string);
            if let Some(host) = &host {
                let schemes = ["tcp://", "http://", "https://", "unix://"];
                if !schemes.iter().any(|s| host.len() > s.len() && host.starts_with(s)) {
                    problems.add(
                        at,
                        format!(
                            "Scaler \"{name}\" host \"{host}\" must start with tcp://, http://, https:// or unix://"
                        ),
                    );
                }
                if raw.socket_path.is_some() {
                    problems.add(
                        at,
                        format!("Scaler \"{name}\" sets both 'host' and 'socketPath'; use one"),
                    );
                }
            }
            let extra_hosts = raw.extra_hosts.clone().unwrap_or_default();
            for entry in &extra_hosts {
                let well_formed = entry
                    .split_once(':')
                    .is_some_and(|(host, target)| !host.trim().is_empty() && !target.trim().is_empty());
                if !well_formed {
                    problems.add(
                        at,
                        format!(
                            "Scaler \"{name}\" extraHosts entry \"{entry}\" must be \"<hostname>:<ip or host-gateway>\""
                        ),
                    );
                }
            }
            Backend::Container(ContainerBackend {
                host,
                socket_path: raw.socket_path.as_deref().map(PathBuf::from),
                runtime,
                extra_hosts,
                network_isolation: raw.network_isolation.unwrap_or(true),
            })
        }
        BareMetal => Backend::BareMetal(BareMetalBackend {
            enforce_cgroups: raw.enforce_cgroups.unwrap_or(false),
        }),
        Firecracker => {
            let mut required_path = |field: &str, value: &Option<String>| match value.as_deref().map(str::trim) {
                Some(path) if !path.is_empty() => PathBuf::from(path),
                _ => {
                    problems.add(at, format!("Firecracker scaler \"{name}\" requires a '{field}' field"));
                    PathBuf::new()
                }
            };
            let firecracker_path = required_path("firecrackerPath", &raw.firecracker_path);
            let jailer_path = required_path("jailerPath", &raw.jailer_path);
            let kernel_path = required_path("kernelPath", &raw.kernel_path);
            let mut id = |field: &str, value: Option<i64>| match value {
                None => {
                    problems.add(at, format!("Firecracker scaler \"{name}\" requires a '{field}' field"));
                    0
                }
                Some(v) => u32::try_from(v).unwrap_or_else(|_| {
                    problems.add(
                        at,
                        format!("Firecracker scaler \"{name}\" {field} must be a non-negative integer (got {v})"),
                    );
                    0
                }),
            };
            let uid = id("uid", raw.uid);
            let gid = id("gid", raw.gid);
            let subject = format!("Firecracker scaler \"{name}\"");
            let vcpu_count = vcpus(raw.vcpu_count, DEFAULT_VCPU_COUNT, &subject, problems, at);
            let mem_size_mib = at_least_one(
                raw.mem_size_mib,
                "memSizeMib",
                DEFAULT_MEM_SIZE_MIB,
                &subject,
                problems,
                at,
            );
            Backend::Firecracker(FirecrackerBackend {
                firecracker_path,
                jailer_path,
                kernel_path,
                uid,
                gid,
                chroot_base_dir: PathBuf::from(raw.chroot_base_dir.as_deref().unwrap_or(DEFAULT_CHROOT_BASE_DIR)),
                vcpu_count,
                mem_size_mib,
                require_sudo: raw.require_sudo.unwrap_or(false),
            })
        }
    }
}

fn vcpus(value: Option<i64>, default: u32, subject: &str, problems: &mut Problems, at: Option<&str>) -> u32 {
    match value {
        None => default,
        Some(v) if (1..=i64::from(MAX_VCPU_COUNT)).contains(&v) => v as u32,
        Some(v) => {
            problems.add(
                at,
                format!("{subject} vcpuCount must be between 1 and {MAX_VCPU_COUNT} (got {v})"),
            );
            default
        }
    }
}

fn at_least_one(
    value: Option<i64>,
    field: &str,
    default: u32,
    subject: &str,
    problems: &mut Problems,
    at: Option<&str>,
) -> u32 {
    match value {
        None => default,
        Some(v) if v >= 1 => u32::try_from(v).unwrap_or(u32::MAX),
        Some(v) => {
            problems.add(at, format!("{subject} {field} must be at least 1 (got {v})"));
            default
        }
    }
}

/// Returns the set's normalized labels (for the cross-scaler checks, even when the set is
/// otherwise invalid) and the label set when the scaler's type is known.
fn build_label_set(
    raw: RawLabelSet,
    scaler: &str,
    index: usize,
    kind: Option<ScalerType>,
    fc: Option<&FirecrackerBackend>,
    problems: &mut Problems,
    at: Option<&str>,
) -> (Vec<String>, Option<LabelSet>) {
    let subject = format!("Scaler \"{scaler}\" label set [{index}]");
    let mut labels = Vec::new();
    match &raw.labels {
        None => problems.add(at, format!("{subject} requires a 'labels' field")),
        Some(raw_labels) => {
            for label in raw_labels {
                let label = label.trim().to_lowercase();
                if label.starts_with(RESERVED_PREFIX) {
                    problems.add(at, RESERVED_LABEL_MESSAGE.to_string());
                } else if malformed_label(&label) {
                    problems.add(
                        at,
                        format!(
                            "{subject} has an invalid label \"{label}\": labels cannot be empty or contain whitespace or commas"
                        ),
                    );
                } else {
                    labels.push(label);
                }
            }
        }
    }
    let labels = normalize_labels(labels.iter().map(String::as_str));

    let resources = build_resources(raw.resources, &subject, problems, at);
    let env = raw.env.unwrap_or_default();
    for key in env.keys() {
        let valid = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            problems.add(
                at,
                format!(
                    "{subject} env name \"{key}\" is invalid: use letters, digits and '_', not starting with a digit"
                ),
            );
        }
    }
    let backpressure_mode = match raw.backpressure_mode.as_deref().map(str::trim) {
        None => None,
        Some("pause") => Some(BackpressureMode::Pause),
        Some("drop") => Some(BackpressureMode::Drop),
        Some(other) => {
            problems.add(
                at,
                format!("{subject} backpressureMode \"{other}\" is not one of pause, drop"),
            );
            None
        }
    };

    let Some(kind) = kind else {
        return (labels, None);
    };
    use ScalerType::{BareMetal, Container, Firecracker};
    let fields: [(&str, bool, &[ScalerType]); 11] = [
        ("image", raw.image.is_some(), &[Container]),
        ("imagePullPolicy", raw.image_pull_policy.is_some(), &[Container]),
        ("volumes", raw.volumes.is_some(), &[Container]),
        ("containerSocket", raw.container_socket.is_some(), &[Container]),
        ("binaryPath", raw.binary_path.is_some(), &[BareMetal]),
        ("rootfsPath", raw.rootfs_path.is_some(), &[Firecracker]),
        ("kernelPath", raw.kernel_path.is_some(), &[Firecracker]),
        ("vcpuCount", raw.vcpu_count.is_some(), &[Firecracker]),
        ("memSizeMib", raw.mem_size_mib.is_some(), &[Firecracker]),
        (
            "overlayDriveSizeMib",
            raw.overlay_drive_size_mib.is_some(),
            &[Firecracker],
        ),
        ("networkPolicy", raw.network_policy.is_some(), &[Container, Firecracker]),
    ];
    reject_foreign_fields(
        &fields,
        kind,
        &format!("Scaler \"{scaler}\" ({kind}) label set [{index}]"),
        problems,
        at,
    );

    let present = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let target = match kind {
        Container => {
            let image = present(&raw.image).unwrap_or_else(|| {
                problems.add(
                    at,
                    format!("Container scaler \"{scaler}\" label set [{index}] requires an 'image' field"),
                );
                String::new()
            });
            let pull_policy = match raw.image_pull_policy.as_deref().map(str::trim) {
                None | Some("IfNotPresent") => ImagePullPolicy::IfNotPresent,
                Some("Always") => ImagePullPolicy::Always,
                Some("Never") => ImagePullPolicy::Never,
                Some(other) => {
                    problems.add(
                        at,
                        format!("{subject} imagePullPolicy \"{other}\" is not one of Always, IfNotPresent, Never"),
                    );
                    ImagePullPolicy::IfNotPresent
                }
            };
            let volumes = raw.volumes.unwrap_or_default();
            for volume in &volumes {
                if !valid_volume(volume) {
                    problems.add(
                        at,
                        format!(
                            "{subject} volume \"{volume}\" must be \"<host path or volume>:<container path>\" with an optional \":ro\" or \":rw\""
                        ),
                    );
                }
            }
            SpawnTarget::Container(ContainerTarget {
                image,
                pull_policy,
                volumes,
                container_socket: raw.container_socket.unwrap_or(false),
                network_policy: build_network_policy(raw.network_policy, &subject, problems, at),
            })
        }
        BareMetal => {
            let binary_path = present(&raw.binary_path).unwrap_or_else(|| {
                problems.add(
                    at,
                    format!("Bare-metal scaler \"{scaler}\" label set [{index}] requires a 'binaryPath' field"),
                );
                String::new()
            });
            SpawnTarget::BareMetal(BareMetalTarget {
                binary_path: PathBuf::from(binary_path),
            })
        }
        Firecracker => {
            let rootfs_path = present(&raw.rootfs_path).unwrap_or_else(|| {
                problems.add(
                    at,
                    format!("Firecracker scaler \"{scaler}\" label set [{index}] requires a 'rootfsPath' field"),
                );
                String::new()
            });
            let kernel_path = match present(&raw.kernel_path) {
                Some(path) => PathBuf::from(path),
                None => fc.map(|fc| fc.kernel_path.clone()).unwrap_or_default(),
            };
            let default_vcpus = fc.map_or(DEFAULT_VCPU_COUNT, |fc| fc.vcpu_count);
            let default_mem = fc.map_or(DEFAULT_MEM_SIZE_MIB, |fc| fc.mem_size_mib);
            let fc_subject = format!("Firecracker scaler \"{scaler}\" label set [{index}]");
            SpawnTarget::Firecracker(FirecrackerTarget {
                rootfs_path: PathBuf::from(rootfs_path),
                kernel_path,
                vcpu_count: vcpus(raw.vcpu_count, default_vcpus, &fc_subject, problems, at),
                mem_size_mib: at_least_one(raw.mem_size_mib, "memSizeMib", default_mem, &fc_subject, problems, at),
                overlay_drive_size_mib: at_least_one(
                    raw.overlay_drive_size_mib,
                    "overlayDriveSizeMib",
                    DEFAULT_OVERLAY_DRIVE_SIZE_MIB,
                    &fc_subject,
                    problems,
                    at,
                ),
                network_policy: build_network_policy(raw.network_policy, &subject, problems, at),
            })
        }
    };
    let set = LabelSet {
        labels: labels.clone(),
        target,
        resources,
        env,
        backpressure_mode,
    };
    (labels, Some(set))
}

fn valid_volume(volume: &str) -> bool {
    let parts: Vec<&str> = volume.split(':').collect();
    let mode_ok = match parts.len() {
        2 => true,
        3 => matches!(parts[2], "ro" | "rw"),
        _ => false,
    };
    mode_ok && !parts[0].is_empty() && parts[1].starts_with('/')
}

fn build_network_policy(
    raw: Option<RawNetworkPolicy>,
    subject: &str,
    problems: &mut Problems,
    at: Option<&str>,
) -> NetworkPolicy {
    let Some(raw) = raw else {
        return NetworkPolicy::default();
    };
    let allowlist = raw.allowlist.unwrap_or_default();
    for cidr in &allowlist {
        if !valid_cidr(cidr) {
            problems.add(
                at,
                format!("{subject} networkPolicy.allowlist entry \"{cidr}\" is not a CIDR (e.g. 10.1.2.0/24)"),
            );
        }
    }
    NetworkPolicy {
        allowlist,
        deny_all: raw.deny_all.unwrap_or(false),
    }
}

fn valid_cidr(text: &str) -> bool {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let Ok(address) = address.parse::<IpAddr>() else {
        return false;
    };
    let max = if address.is_ipv4() { 32 } else { 128 };
    prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= max))
}

fn build_warm_pool(
    raw: Option<RawWarmPool>,
    name: &str,
    max_agents: u32,
    problems: &mut Problems,
    at: Option<&str>,
) -> WarmPool {
    let mut pool = WarmPool::default();
    let Some(raw) = raw else {
        return pool;
    };
    pool.enabled = raw.enabled.unwrap_or(false);
    match raw.size {
        None => {}
        Some(size) if size < 0 => problems.add(
            at,
            format!("Scaler \"{name}\" warmPool.size must be 0 or more (got {size})"),
        ),
        Some(size) if size > i64::from(max_agents) => problems.add(
            at,
            format!("Scaler \"{name}\" warmPool.size ({size}) exceeds maxAgents ({max_agents})"),
        ),
        Some(size) => pool.size = size as u32,
    }
    match raw.idle_timeout_seconds {
        None => {}
        Some(seconds) if seconds < 1 => problems.add(
            at,
            format!("Scaler \"{name}\" warmPool.idleTimeoutSeconds must be at least 1 (got {seconds})"),
        ),
        Some(seconds) => pool.idle_timeout = Duration::from_secs(seconds as u64),
    }
    pool
}

fn build_roles(raw: Option<RawRoles>, name: &str, problems: &mut Problems, at: Option<&str>) -> AgentRoles {
    let Some(RawRoles(raw)) = raw else {
        return AgentRoles::All;
    };
    let mut all = false;
    let mut roles = BTreeSet::new();
    for role in raw {
        match role.trim() {
            "all" => all = true,
            "builder" => {
                roles.insert(AgentRole::Builder);
            }
            "init-runner" => {
                roles.insert(AgentRole::InitRunner);
            }
            other => problems.add(
                at,
                format!("Scaler \"{name}\" has unknown role \"{other}\" (expected builder, init-runner or all)"),
            ),
        }
    }
    if all {
        AgentRoles::All
    } else {
        AgentRoles::Only(roles.into_iter().collect())
    }
}

/// Checks a resources block and mirrors a missing side; `context` starts each message.
fn build_resources(raw: Option<RawResources>, context: &str, problems: &mut Problems, at: Option<&str>) -> Resources {
    let Some(raw) = raw else {
        return Resources::default();
    };
    let flat = raw.memory.is_some() || raw.cpus.is_some();
    let split = raw.requests.is_some() || raw.limits.is_some();
    if flat && split {
        problems.add(
            at,
            format!("{context} resources: use either the flat form {{memory, cpus}} or {{requests, limits}}, not both"),
        );
    }
    let mut amounts = |memory: Option<String>, cpus: Option<f64>, prefix: &str| {
        let memory_bytes = memory.and_then(|text| {
            let bytes = parse_memory(&text);
            if bytes.is_none() {
                problems.add(
                    at,
                    format!(
                        "{context} {prefix}memory \"{text}\" is invalid (expected <n>k, <n>m or <n>g in binary units, e.g. 512m or 2g)"
                    ),
                );
            }
            bytes
        });
        let cpus = cpus.and_then(|cpus| {
            if cpus.is_finite() && cpus > 0.0 && cpus <= MAX_CPUS {
                Some(cpus)
            } else {
                problems.add(
                    at,
                    format!("{context} {prefix}cpus must be greater than 0 and at most {MAX_CPUS} (got {cpus})"),
                );
                None
            }
        });
        ResourceAmounts { memory_bytes, cpus }
    };
    if flat {
        let both = amounts(raw.memory, raw.cpus, "resources.");
        return Resources {
            requests: both,
            limits: both,
        };
    }
    let requests = raw.requests.map(|r| amounts(r.memory, r.cpus, "resources.requests."));
    let limits = raw.limits.map(|l| amounts(l.memory, l.cpus, "resources.limits."));
    let (requests, limits) = match (requests, limits) {
        (Some(requests), Some(limits)) => (requests, limits),
        (Some(only), None) | (None, Some(only)) => (only, only),
        (None, None) => (ResourceAmounts::default(), ResourceAmounts::default()),
    };
    if let (Some(request), Some(limit)) = (requests.memory_bytes, limits.memory_bytes)
        && request > limit
    {
        problems.add(
            at,
            format!(
                "{context} resources.requests.memory ({}) exceeds resources.limits.memory ({})",
                format_memory(request),
                format_memory(limit)
            ),
        );
    }
    if let (Some(request), Some(limit)) = (requests.cpus, limits.cpus)
        && request > limit
    {
        problems.add(
            at,
            format!("{context} resources.requests.cpus ({request}) exceeds resources.limits.cpus ({limit})"),
        );
    }
    Resources { requests, limits }
}

fn build_cap(raw: RawResourceCap, context: &str, problems: &mut Problems, at: Option<&str>) -> ResourceCap {
    let max_cpus = raw.max_cpu.filter(|cpus| {
        let ok = cpus.is_finite() && *cpus > 0.0;
        if !ok {
            problems.add(at, format!("{context}.maxCpu must be greater than 0 (got {cpus})"));
        }
        ok
    });
    let max_memory_bytes = raw.max_memory.and_then(|text| {
        let bytes = parse_memory(&text);
        if bytes.is_none() {
            problems.add(
                at,
                format!(
                    "{context}.maxMemory \"{text}\" is invalid (expected <n>k, <n>m or <n>g in binary units, e.g. 64g)"
                ),
            );
        }
        bytes
    });
    ResourceCap {
        max_cpus,
        max_memory_bytes,
    }
}

// ---------------------------------------------------------------------------------------------
// Reload
// ---------------------------------------------------------------------------------------------

/// What a reload changes, scaler by scaler (by name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Same name and backend type, some setting changed (label sets, caps, warm pool, ...).
    pub changed: Vec<String>,
    /// Same name, other backend type: not applied by a reload (running agents are never
    /// touched; the old backend keeps serving until a restart).
    pub type_changed: Vec<String>,
}

impl ReloadDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty() && self.type_changed.is_empty()
    }
}

/// Compares the running configuration with a newly loaded (valid) one.
pub fn reload_diff(current: &ScalerConfig, next: &ScalerConfig) -> ReloadDiff {
    let mut diff = ReloadDiff::default();
    for new in &next.scalers {
        match current.scaler(&new.name) {
            None => diff.added.push(new.name.clone()),
            Some(old) if old.scaler_type() != new.scaler_type() => diff.type_changed.push(new.name.clone()),
            Some(old) if old != new => diff.changed.push(new.name.clone()),
            Some(_) => {}
        }
    }
    for old in &current.scalers {
        if next.scaler(&old.name).is_none() {
            diff.removed.push(old.name.clone());
        }
    }
    diff
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "scalers.yaml";

    fn valid(yaml: &str) -> ScalerConfig {
        from_yaml_str(yaml, FILE).unwrap_or_else(|err| panic!("expected a valid config, got: {err}"))
    }

    /// The messages of an invalid config, in order.
    fn problems(yaml: &str) -> Vec<String> {
        match from_yaml_str(yaml, FILE) {
            Err(ScalerConfigError::Invalid { problems }) => problems.into_iter().map(|p| p.message).collect(),
            other => panic!("expected validation problems, got {other:?}"),
        }
    }

    fn check(yaml: &str, expected: &[&str]) {
        assert_eq!(problems(yaml), expected, "for:\n{yaml}");
    }

    /// `version: 1` and one scaler written in flow style.
    fn one(scaler: &str) -> String {
        format!("version: 1\nscalers:\n  - {scaler}\n")
    }

    const BM: &str =
        "{name: bm, type: bare-metal, maxAgents: 2, labelSets: [{labels: [linux], binaryPath: /usr/bin/kici-agent}]}";

    #[test]
    fn spec_messages_are_exact() {
        let cases: &[(&str, String, &[&str])] = &[
            (
                "kici: label",
                one(
                    "{name: bm, type: bare-metal, maxAgents: 2, labelSets: [{labels: [linux, 'kici:os:linux'], binaryPath: /a}, {labels: ['KICI:x'], binaryPath: /a}]}",
                ),
                &["Labels with 'kici:' prefix are reserved and cannot be used in scaler labelSets"],
            ),
            (
                "container image",
                one(
                    "{name: c, type: container, maxAgents: 2, labelSets: [{labels: [a], image: 'alpine:3'}, {labels: [b]}, {labels: [c], image: ''}]}",
                ),
                &[
                    "Container scaler \"c\" label set [1] requires an 'image' field",
                    "Container scaler \"c\" label set [2] requires an 'image' field",
                ],
            ),
            (
                "bare-metal binaryPath",
                one("{name: bm, type: bare-metal, maxAgents: 2, labelSets: [{labels: [linux]}]}"),
                &["Bare-metal scaler \"bm\" label set [0] requires a 'binaryPath' field"],
            ),
            (
                "firecracker fields",
                one("{name: fc, type: firecracker, maxAgents: 2, labelSets: [{labels: [vm]}]}"),
                &[
                    "Firecracker scaler \"fc\" requires a 'firecrackerPath' field",
                    "Firecracker scaler \"fc\" requires a 'jailerPath' field",
                    "Firecracker scaler \"fc\" requires a 'kernelPath' field",
                    "Firecracker scaler \"fc\" requires a 'uid' field",
                    "Firecracker scaler \"fc\" requires a 'gid' field",
                    "Firecracker scaler \"fc\" label set [0] requires a 'rootfsPath' field",
                ],
            ),
            (
                "unknown machine pool",
                "version: 1\nmachinePools: [{name: big}]\nscalers:\n  - {name: bm, type: bare-metal, maxAgents: 1, machinePool: small, labelSets: [{labels: [a], binaryPath: /a}]}\n".to_string(),
                &["Scaler \"bm\" references unknown machinePool \"small\". Define it under top-level machinePools[]."],
            ),
            (
                "overlap between scalers",
                "version: 1\nscalers:\n  - {name: a, type: bare-metal, maxAgents: 1, labelSets: [{labels: [Linux, container], binaryPath: /a}]}\n  - {name: b, type: container, maxAgents: 1, labelSets: [{labels: [container, linux, linux], image: i}]}\n".to_string(),
                &["Label set [container,linux] overlaps between scalers \"a\" and \"b\""],
            ),
            (
                "mandatory label in no label set",
                one(
                    "{name: gpu, type: bare-metal, maxAgents: 1, mandatoryLabels: [gpu, linux], labelSets: [{labels: [linux], binaryPath: /a}]}",
                ),
                &[
                    "Scaler \"gpu\" mandatory label \"gpu\" is absent from every label set, so no job could be routed to it",
                ],
            ),
        ];
        for (name, yaml, expected) in cases {
            assert_eq!(&problems(yaml), expected, "case {name}");
        }
    }

    #[test]
    fn entry_rules() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "docker type",
                "{name: d, type: docker, maxAgents: 1, labelSets: [{labels: [a], image: i}]}",
                &[
                    "Scaler \"d\" has type \"docker\", which is not supported: use type \"container\" (it drives Docker or Podman)",
                ],
            ),
            (
                "unknown type",
                "{name: k, type: kubernetes, maxAgents: 1, labelSets: [{labels: [a]}]}",
                &["Scaler \"k\" has unknown type \"kubernetes\" (expected container, bare-metal or firecracker)"],
            ),
            (
                "missing type",
                "{name: k, maxAgents: 1, labelSets: [{labels: [a]}]}",
                &["Scaler \"k\" requires a 'type' field (container, bare-metal or firecracker)"],
            ),
            (
                "missing name",
                "{type: bare-metal, maxAgents: 1, labelSets: [{labels: [a], binaryPath: /a}]}",
                &["scalers[0] requires a 'name' field"],
            ),
            (
                "bad name",
                "{name: 'my scaler', type: bare-metal, maxAgents: 1, labelSets: [{labels: [a], binaryPath: /a}]}",
                &["Scaler name \"my scaler\" is invalid: use letters, digits, '.', '_' or '-'"],
            ),
            (
                "missing maxAgents",
                "{name: bm, type: bare-metal, labelSets: [{labels: [a], binaryPath: /a}]}",
                &["Scaler \"bm\" requires a 'maxAgents' field"],
            ),
            (
                "maxAgents zero",
                "{name: bm, type: bare-metal, maxAgents: 0, labelSets: [{labels: [a], binaryPath: /a}]}",
                &["Scaler \"bm\" maxAgents must be at least 1 (got 0)"],
            ),
            (
                "maxAgents negative",
                "{name: bm, type: bare-metal, maxAgents: -3, labelSets: [{labels: [a], binaryPath: /a}]}",
                &["Scaler \"bm\" maxAgents must be at least 1 (got -3)"],
            ),
            (
                "no label sets",
                "{name: bm, type: bare-metal, maxAgents: 1, labelSets: []}",
                &["Scaler \"bm\" requires at least one label set in 'labelSets'"],
            ),
            (
                "labelSets missing",
                "{name: bm, type: bare-metal, maxAgents: 1}",
                &["Scaler \"bm\" requires at least one label set in 'labelSets'"],
            ),
            (
                "labels missing",
                "{name: bm, type: bare-metal, maxAgents: 1, labelSets: [{binaryPath: /a}]}",
                &["Scaler \"bm\" label set [0] requires a 'labels' field"],
            ),
            (
                "malformed label",
                "{name: bm, type: bare-metal, maxAgents: 1, labelSets: [{labels: ['a b', 'c,d', ''], binaryPath: /a}]}",
                &[
                    "Scaler \"bm\" label set [0] has an invalid label \"a b\": labels cannot be empty or contain whitespace or commas",
                    "Scaler \"bm\" label set [0] has an invalid label \"c,d\": labels cannot be empty or contain whitespace or commas",
                    "Scaler \"bm\" label set [0] has an invalid label \"\": labels cannot be empty or contain whitespace or commas",
                ],
            ),
            (
                "field of another backend",
                "{name: bm, type: bare-metal, maxAgents: 1, runtime: podman, labelSets: [{labels: [a], binaryPath: /a, image: alpine, networkPolicy: {denyAll: true}}]}",
                &[
                    "Scaler \"bm\" (bare-metal) does not take 'runtime': it is a container setting",
                    "Scaler \"bm\" (bare-metal) label set [0] does not take 'image': it is a container setting",
                    "Scaler \"bm\" (bare-metal) label set [0] does not take 'networkPolicy': it is a container and firecracker setting",
                ],
            ),
            (
                "orchestratorUrl",
                "{name: bm, type: bare-metal, maxAgents: 1, orchestratorUrl: 'localhost:4000', labelSets: [{labels: [a], binaryPath: /a}]}",
                &[
                    "Scaler \"bm\" orchestratorUrl \"localhost:4000\" must be ws://, wss://, http:// or https:// followed by a host (e.g. ws://10.0.0.1:4000/ws)",
                ],
            ),
            (
                "warm pool",
                "{name: bm, type: bare-metal, maxAgents: 2, warmPool: {enabled: true, size: 3, idleTimeoutSeconds: 0}, labelSets: [{labels: [a], binaryPath: /a}]}",
                &[
                    "Scaler \"bm\" warmPool.size (3) exceeds maxAgents (2)",
                    "Scaler \"bm\" warmPool.idleTimeoutSeconds must be at least 1 (got 0)",
                ],
            ),
            (
                "roles",
                "{name: bm, type: bare-metal, maxAgents: 1, roles: [builder, deployer], labelSets: [{labels: [a], binaryPath: /a}]}",
                &["Scaler \"bm\" has unknown role \"deployer\" (expected builder, init-runner or all)"],
            ),
            (
                "mandatory label malformed",
                "{name: bm, type: bare-metal, maxAgents: 1, mandatoryLabels: ['a b'], labelSets: [{labels: [a], binaryPath: /a}]}",
                &[
                    "Scaler \"bm\" mandatory label \"a b\" is invalid: labels cannot be empty or contain whitespace or commas",
                ],
            ),
            (
                "container settings",
                "{name: c, type: container, maxAgents: 1, runtime: lxc, host: 'localhost:2375', socketPath: /run/d.sock, extraHosts: [nocolon], labelSets: [{labels: [a], image: i, imagePullPolicy: always, volumes: ['/a', '/a:/b:rx', 'cache:/cache:ro']}]}",
                &[
                    "Scaler \"c\" runtime \"lxc\" is not one of auto, docker, podman",
                    "Scaler \"c\" host \"localhost:2375\" must start with tcp://, http://, https:// or unix://",
                    "Scaler \"c\" sets both 'host' and 'socketPath'; use one",
                    "Scaler \"c\" extraHosts entry \"nocolon\" must be \"<hostname>:<ip or host-gateway>\"",
                    "Scaler \"c\" label set [0] imagePullPolicy \"always\" is not one of Always, IfNotPresent, Never",
                    "Scaler \"c\" label set [0] volume \"/a\" must be \"<host path or volume>:<container path>\" with an optional \":ro\" or \":rw\"",
                    "Scaler \"c\" label set [0] volume \"/a:/b:rx\" must be \"<host path or volume>:<container path>\" with an optional \":ro\" or \":rw\"",
                ],
            ),
            (
                "firecracker numbers",
                "{name: fc, type: firecracker, maxAgents: 1, firecrackerPath: /fc, jailerPath: /j, kernelPath: /k, uid: -1, gid: 0, vcpuCount: 64, labelSets: [{labels: [vm], rootfsPath: /r, memSizeMib: 0, networkPolicy: {allowlist: [10.1.0.0/16, 10.1.0.0/33, nope]}}]}",
                &[
                    "Firecracker scaler \"fc\" uid must be a non-negative integer (got -1)",
                    "Firecracker scaler \"fc\" vcpuCount must be between 1 and 32 (got 64)",
                    "Firecracker scaler \"fc\" label set [0] memSizeMib must be at least 1 (got 0)",
                    "Scaler \"fc\" label set [0] networkPolicy.allowlist entry \"10.1.0.0/33\" is not a CIDR (e.g. 10.1.2.0/24)",
                    "Scaler \"fc\" label set [0] networkPolicy.allowlist entry \"nope\" is not a CIDR (e.g. 10.1.2.0/24)",
                ],
            ),
            (
                "env and backpressure",
                "{name: bm, type: bare-metal, maxAgents: 1, labelSets: [{labels: [a], binaryPath: /a, backpressureMode: block, env: {GOOD_1: x, 1BAD: y, 'A-B': z}}]}",
                &[
                    "Scaler \"bm\" label set [0] env name \"1BAD\" is invalid: use letters, digits and '_', not starting with a digit",
                    "Scaler \"bm\" label set [0] env name \"A-B\" is invalid: use letters, digits and '_', not starting with a digit",
                    "Scaler \"bm\" label set [0] backpressureMode \"block\" is not one of pause, drop",
                ],
            ),
        ];
        for (name, scaler, expected) in cases {
            assert_eq!(&problems(&one(scaler)), expected, "case {name}");
        }
    }

    #[test]
    fn top_level_rules() {
        check(
            &format!("scalers:\n  - {BM}\n"),
            &["'version' is required: start the file with `version: 1`"],
        );
        check(
            &format!("version: 2\nscalers:\n  - {BM}\n"),
            &["version must be 1 (got 2)"],
        );
        check(
            "version: 1\nglobalMaxAgents: 0\n",
            &["globalMaxAgents must be at least 1 (got 0)"],
        );
        check(
            "version: 1\nmachinePools: [{name: p}, {name: p}, {cap: {maxCpu: 4}}]\n",
            &[
                "machinePools[1]: machinePool name \"p\" is used more than once",
                "machinePools[2] requires a 'name' field",
            ],
        );
        check(
            "version: 1\nglobalResourceCap: {maxCpu: 0, maxMemory: 10x}\n",
            &[
                "globalResourceCap.maxCpu must be greater than 0 (got 0)",
                "globalResourceCap.maxMemory \"10x\" is invalid (expected <n>k, <n>m or <n>g in binary units, e.g. 64g)",
            ],
        );
        check(
            &format!(
                "version: 1\nscalers:\n  - {BM}\n  - {}\n",
                BM.replace("[linux]", "[linux, x]")
            ),
            &[
                "Scaler name \"bm\" is used more than once (scalers[0] of scalers.yaml and scalers[1] of scalers.yaml); scaler names must be unique",
            ],
        );
    }

    #[test]
    fn every_problem_is_reported_together() {
        let yaml = "version: 3\nglobalMaxAgents: -1\nscalers:\n  - {name: c, type: container, maxAgents: 0, labelSets: [{labels: ['kici:x', linux]}]}\n  - {name: d, type: docker, maxAgents: 1, labelSets: [{labels: [linux]}]}\n  - {name: b, type: bare-metal, maxAgents: 1, labelSets: [{labels: [linux]}]}\n";
        check(
            yaml,
            &[
                "version must be 1 (got 3)",
                "globalMaxAgents must be at least 1 (got -1)",
                "Scaler \"c\" maxAgents must be at least 1 (got 0)",
                "Labels with 'kici:' prefix are reserved and cannot be used in scaler labelSets",
                "Container scaler \"c\" label set [0] requires an 'image' field",
                "Scaler \"d\" has type \"docker\", which is not supported: use type \"container\" (it drives Docker or Podman)",
                "Bare-metal scaler \"b\" label set [0] requires a 'binaryPath' field",
                "Label set [linux] overlaps between scalers \"c\" and \"d\"",
                "Label set [linux] overlaps between scalers \"c\" and \"b\"",
            ],
        );
    }

    #[test]
    fn intra_scaler_duplicate_label_sets_are_allowed() {
        let config = valid(&one(
            "{name: c, type: container, maxAgents: 2, labelSets: [{labels: [linux], image: a}, {labels: [LINUX], image: b}]}",
        ));
        assert_eq!(config.scalers[0].label_sets.len(), 2);
    }

    #[test]
    fn defaults_and_normalization() {
        let config = valid(&one(
            "{name: c, type: container, maxAgents: 3, mandatoryLabels: [' GPU '], labelSets: [{labels: [Linux, gpu, linux, ' x64 '], image: 'kici-agent:dev'}]}",
        ));
        assert_eq!(config.global_max_agents, 50);
        assert_eq!(config.firecracker_network, FirecrackerNetwork::default());
        assert!(config.default_resources.is_empty());
        let scaler = &config.scalers[0];
        assert_eq!(scaler.scaler_type(), ScalerType::Container);
        assert_eq!(scaler.source, FILE);
        assert_eq!(scaler.max_agents, 3);
        assert_eq!(scaler.mandatory_labels, ["gpu"]);
        assert_eq!(scaler.roles, AgentRoles::All);
        assert_eq!(
            scaler.warm_pool,
            WarmPool {
                enabled: false,
                size: 0,
                idle_timeout: Duration::from_secs(300)
            }
        );
        assert_eq!(scaler.orchestrator_url, None);
        assert_eq!(
            scaler.backend,
            Backend::Container(ContainerBackend {
                host: None,
                socket_path: None,
                runtime: ContainerRuntime::Auto,
                extra_hosts: vec![],
                network_isolation: true,
            })
        );
        let set = &scaler.label_sets[0];
        assert_eq!(set.labels, ["gpu", "linux", "x64"]);
        assert_eq!(
            set.target,
            SpawnTarget::Container(ContainerTarget {
                image: "kici-agent:dev".into(),
                pull_policy: ImagePullPolicy::IfNotPresent,
                volumes: vec![],
                container_socket: false,
                network_policy: NetworkPolicy::default(),
            })
        );
    }

    #[test]
    fn every_backend_reads_its_fields() {
        let yaml = r#"
version: 1
globalMaxAgents: 7
globalResourceCap: {maxCpu: 16, maxMemory: 64g}
machinePools: [{name: host-a, cap: {maxCpu: 8}}]
firecracker: {cidr: 10.9.0.0/24, bridgeName: br9}
scalers:
  - name: c
    type: container
    maxAgents: 4
    host: tcp://10.0.0.5:2375
    runtime: podman
    extraHosts: ['host.docker.internal:host-gateway']
    networkIsolation: false
    orchestratorUrl: ws://10.0.0.1:4000/ws
    warmPool: {enabled: true, size: 2, idleTimeoutSeconds: 60}
    roles: []
    resourceCap: {maxMemory: 8g}
    machinePool: host-a
    labelSets:
      - labels: [docker]
        image: kici-agent:dev
        imagePullPolicy: Never
        volumes: ['/var/cache:/cache:ro', 'npm:/root/.npm']
        containerSocket: true
        backpressureMode: drop
        env: {RETRIES: 3, DEBUG: true, NAME: x}
        networkPolicy: {allowlist: [192.168.1.0/24, 'fd00::/8', 10.0.0.7], denyAll: true}
  - name: bm
    type: bare-metal
    maxAgents: 2
    enforceCgroups: true
    roles: all
    labelSets:
      - {labels: [metal], binaryPath: /usr/local/bin/kici-agent}
  - name: fc
    type: firecracker
    maxAgents: 1
    firecrackerPath: /usr/bin/firecracker
    jailerPath: /usr/bin/jailer
    kernelPath: /var/lib/kici/vmlinux
    uid: 1000
    gid: 1000
    vcpuCount: 4
    roles: [init-runner, builder]
    labelSets:
      - {labels: [vm], rootfsPath: /var/lib/kici/rootfs.ext4}
      - {labels: [vm, big], rootfsPath: /r2, kernelPath: /k2, vcpuCount: 8, memSizeMib: 4096, overlayDriveSizeMib: 10240}
"#;
        let config = valid(yaml);
        assert_eq!(config.global_max_agents, 7);
        assert_eq!(
            config.global_resource_cap,
            Some(ResourceCap {
                max_cpus: Some(16.0),
                max_memory_bytes: Some(64 << 30)
            })
        );
        assert_eq!(
            config.machine_pools,
            [MachinePool {
                name: "host-a".into(),
                cap: Some(ResourceCap {
                    max_cpus: Some(8.0),
                    max_memory_bytes: None
                })
            }]
        );
        assert_eq!(config.firecracker_network.cidr, "10.9.0.0/24");
        assert_eq!(config.firecracker_network.bridge_name, "br9");
        assert_eq!(config.firecracker_network.gateway, "10.0.0.1");

        let c = config.scaler("c").unwrap();
        assert_eq!(
            c.backend,
            Backend::Container(ContainerBackend {
                host: Some("tcp://10.0.0.5:2375".into()),
                socket_path: None,
                runtime: ContainerRuntime::Podman,
                extra_hosts: vec!["host.docker.internal:host-gateway".into()],
                network_isolation: false,
            })
        );
        assert_eq!(c.orchestrator_url.as_deref(), Some("ws://10.0.0.1:4000/ws"));
        assert_eq!(
            c.warm_pool,
            WarmPool {
                enabled: true,
                size: 2,
                idle_timeout: Duration::from_secs(60)
            }
        );
        assert_eq!(c.roles, AgentRoles::Only(vec![]));
        assert_eq!(c.roles.env_value().as_deref(), Some(""));
        assert_eq!(
            c.resource_cap,
            Some(ResourceCap {
                max_cpus: None,
                max_memory_bytes: Some(8 << 30)
            })
        );
        assert_eq!(c.machine_pool.as_deref(), Some("host-a"));
        let set = &c.label_sets[0];
        assert_eq!(set.backpressure_mode, Some(BackpressureMode::Drop));
        assert_eq!(
            set.env,
            BTreeMap::from([
                ("DEBUG".to_string(), "true".to_string()),
                ("NAME".to_string(), "x".to_string()),
                ("RETRIES".to_string(), "3".to_string()),
            ])
        );
        let SpawnTarget::Container(target) = &set.target else {
            panic!("container target")
        };
        assert_eq!(target.pull_policy, ImagePullPolicy::Never);
        assert_eq!(target.volumes, ["/var/cache:/cache:ro", "npm:/root/.npm"]);
        assert!(target.container_socket);
        assert_eq!(
            target.network_policy,
            NetworkPolicy {
                allowlist: vec!["192.168.1.0/24".into(), "fd00::/8".into(), "10.0.0.7".into()],
                deny_all: true
            }
        );

        let bm = config.scaler("bm").unwrap();
        assert_eq!(
            bm.backend,
            Backend::BareMetal(BareMetalBackend { enforce_cgroups: true })
        );
        assert_eq!(bm.roles, AgentRoles::All);
        assert_eq!(bm.roles.env_value(), None);
        assert_eq!(
            bm.label_sets[0].target,
            SpawnTarget::BareMetal(BareMetalTarget {
                binary_path: "/usr/local/bin/kici-agent".into()
            })
        );

        let fc = config.scaler("fc").unwrap();
        assert_eq!(
            fc.roles,
            AgentRoles::Only(vec![AgentRole::Builder, AgentRole::InitRunner])
        );
        assert_eq!(fc.roles.env_value().as_deref(), Some("builder,init-runner"));
        let Backend::Firecracker(backend) = &fc.backend else {
            panic!("firecracker backend")
        };
        assert_eq!(backend.chroot_base_dir, PathBuf::from("/srv/jailer"));
        assert_eq!(
            (backend.uid, backend.gid, backend.vcpu_count, backend.mem_size_mib),
            (1000, 1000, 4, 512)
        );
        assert!(!backend.require_sudo);
        assert_eq!(
            fc.label_sets[0].target,
            SpawnTarget::Firecracker(FirecrackerTarget {
                rootfs_path: "/var/lib/kici/rootfs.ext4".into(),
                kernel_path: "/var/lib/kici/vmlinux".into(),
                vcpu_count: 4,
                mem_size_mib: 512,
                overlay_drive_size_mib: 2048,
                network_policy: NetworkPolicy::default(),
            })
        );
        assert_eq!(
            fc.label_sets[1].target,
            SpawnTarget::Firecracker(FirecrackerTarget {
                rootfs_path: "/r2".into(),
                kernel_path: "/k2".into(),
                vcpu_count: 8,
                mem_size_mib: 4096,
                overlay_drive_size_mib: 10240,
                network_policy: NetworkPolicy::default(),
            })
        );
    }

    fn amounts(memory: Option<u64>, cpus: Option<f64>) -> ResourceAmounts {
        ResourceAmounts {
            memory_bytes: memory,
            cpus,
        }
    }

    #[test]
    fn resources_forms() {
        const G: u64 = 1 << 30;
        const M: u64 = 1 << 20;
        let cases: &[(&str, Resources)] = &[
            (
                "{memory: 2g, cpus: 2}",
                Resources {
                    requests: amounts(Some(2 * G), Some(2.0)),
                    limits: amounts(Some(2 * G), Some(2.0)),
                },
            ),
            (
                "{memory: 512M}",
                Resources {
                    requests: amounts(Some(512 * M), None),
                    limits: amounts(Some(512 * M), None),
                },
            ),
            (
                "{requests: {memory: 1g, cpus: 0.5}}",
                Resources {
                    requests: amounts(Some(G), Some(0.5)),
                    limits: amounts(Some(G), Some(0.5)),
                },
            ),
            (
                "{limits: {cpus: 4}}",
                Resources {
                    requests: amounts(None, Some(4.0)),
                    limits: amounts(None, Some(4.0)),
                },
            ),
            (
                "{requests: {memory: 1g, cpus: 1}, limits: {memory: 4g, cpus: 256}}",
                Resources {
                    requests: amounts(Some(G), Some(1.0)),
                    limits: amounts(Some(4 * G), Some(256.0)),
                },
            ),
            (
                "{memory: 64k}",
                Resources {
                    requests: amounts(Some(64 << 10), None),
                    limits: amounts(Some(64 << 10), None),
                },
            ),
            ("{}", Resources::default()),
        ];
        for (resources, expected) in cases {
            let config = valid(&format!("version: 1\ndefaults:\n  resources: {resources}\n"));
            assert_eq!(&config.default_resources, expected, "defaults {resources}");
            let config = valid(&one(&format!(
                "{{name: bm, type: bare-metal, maxAgents: 1, labelSets: [{{labels: [a], binaryPath: /a, resources: {resources}}}]}}"
            )));
            assert_eq!(
                &config.scalers[0].label_sets[0].resources, expected,
                "label set {resources}"
            );
        }
    }

    #[test]
    fn resources_problems() {
        let cases: &[(&str, &[&str])] = &[
            (
                "{memory: 2gb}",
                &[
                    "defaults resources.memory \"2gb\" is invalid (expected <n>k, <n>m or <n>g in binary units, e.g. 512m or 2g)",
                ],
            ),
            (
                "{memory: 2048}",
                &[
                    "defaults resources.memory \"2048\" is invalid (expected <n>k, <n>m or <n>g in binary units, e.g. 512m or 2g)",
                ],
            ),
            (
                "{memory: 0g}",
                &[
                    "defaults resources.memory \"0g\" is invalid (expected <n>k, <n>m or <n>g in binary units, e.g. 512m or 2g)",
                ],
            ),
            (
                "{memory: 1.5g}",
                &[
                    "defaults resources.memory \"1.5g\" is invalid (expected <n>k, <n>m or <n>g in binary units, e.g. 512m or 2g)",
                ],
            ),
            (
                "{cpus: 257}",
                &["defaults resources.cpus must be greater than 0 and at most 256 (got 257)"],
            ),
            (
                "{cpus: 0}",
                &["defaults resources.cpus must be greater than 0 and at most 256 (got 0)"],
            ),
            (
                "{requests: {cpus: -1}}",
                &["defaults resources.requests.cpus must be greater than 0 and at most 256 (got -1)"],
            ),
            (
                "{limits: {memory: lots}}",
                &[
                    "defaults resources.limits.memory \"lots\" is invalid (expected <n>k, <n>m or <n>g in binary units, e.g. 512m or 2g)",
                ],
            ),
            (
                "{memory: 1g, limits: {memory: 2g}}",
                &["defaults resources: use either the flat form {memory, cpus} or {requests, limits}, not both"],
            ),
            (
                "{requests: {memory: 4g, cpus: 2}, limits: {memory: 1536m, cpus: 1}}",
                &[
                    "defaults resources.requests.memory (4g) exceeds resources.limits.memory (1536m)",
                    "defaults resources.requests.cpus (2) exceeds resources.limits.cpus (1)",
                ],
            ),
        ];
        for (resources, expected) in cases {
            check(&format!("version: 1\ndefaults:\n  resources: {resources}\n"), expected);
        }
        check(
            &one(
                "{name: bm, type: bare-metal, maxAgents: 1, labelSets: [{labels: [a], binaryPath: /a, resources: {cpus: 300}}]}",
            ),
            &["Scaler \"bm\" label set [0] resources.cpus must be greater than 0 and at most 256 (got 300)"],
        );
    }

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

    fn parse_error(yaml: &str) -> ParseError {
        match from_yaml_str(yaml, FILE) {
            Err(ScalerConfigError::Parse(err)) => *err,
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_keys_name_the_key_its_path_and_position() {
        let err = parse_error(
            "version: 1\nscalers:\n  - name: c\n    type: container\n    maxAgents: 1\n    labelSets:\n      - labels: [a]\n        imag: alpine\n",
        );
        let ParseError {
            file,
            line,
            column,
            key_path,
            message,
            hint,
        } = &err;
        assert_eq!(file, FILE);
        assert_eq!((*line, *column), (Some(8), Some(9)));
        assert_eq!(key_path.as_deref(), Some("scalers[0].labelSets[0].imag"));
        assert!(
            message.starts_with("unknown field `imag`, expected one of "),
            "{message}"
        );
        assert_eq!(
            hint,
            "did you mean `image`? keys are case-sensitive camelCase; rename or remove the key"
        );
        assert!(
            err.to_string().starts_with(
                "cannot parse scaler config `scalers.yaml` at line 8, column 9: unknown field `imag`, expected one of labels, image,"
            ),
            "{err}"
        );
        assert!(
            err.to_string().ends_with(
                " (at `scalers[0].labelSets[0].imag`) (hint: did you mean `image`? keys are case-sensitive camelCase; rename or remove the key)"
            ),
            "{err}"
        );

        let cases: &[(&str, &str)] = &[
            ("version: 1\nglobalmaxagents: 3\n", "globalmaxagents"),
            (
                "version: 1\ndefaults: {resources: {memory: 1g}, image: x}\n",
                "defaults.image",
            ),
            (
                "version: 1\nscalers: [{name: a, type: container, maxagents: 1}]\n",
                "scalers[0].maxagents",
            ),
            (
                "version: 1\nscalers: [{name: a, warmPool: {size: 1, idle: 3}}]\n",
                "scalers[0].warmPool.idle",
            ),
            (
                "version: 1\ndefaults: {resources: {requests: {cpu: 1}}}\n",
                "defaults.resources.requests.cpu",
            ),
            ("version: 1\nfirecracker: {bridge: br0}\n", "firecracker.bridge"),
            (
                "version: 1\nmachinePools: [{name: a, size: 3}]\n",
                "machinePools[0].size",
            ),
        ];
        for (yaml, path) in cases {
            let ParseError { key_path, message, .. } = parse_error(yaml);
            assert_eq!(key_path.as_deref(), Some(*path), "{yaml}");
            assert!(message.starts_with("unknown field"), "{message}");
        }
    }

    #[test]
    fn wrong_types_and_syntax_are_parse_errors() {
        let ParseError {
            line, key_path, hint, ..
        } = parse_error("version: 1\nscalers:\n  - name: a\n    maxAgents: many\n");
        assert_eq!(line, Some(4));
        assert_eq!(key_path.as_deref(), Some("scalers[0].maxAgents"));
        assert_eq!(hint, HINT_SYNTAX);
        assert!(parse_error("version: 1\nscalers: [\n").line.is_some());
        let message = parse_error("version: 1\nversion: 1\n").message;
        assert!(message.contains("duplicate"), "{message}");
    }

    #[test]
    fn an_empty_file_needs_a_version() {
        check("", &["'version' is required: start the file with `version: 1`"]);
        assert_eq!(valid("version: 1\n"), ScalerConfig::default());
        assert_eq!(valid("version: 1\nscalers: []\n").scalers, []);
    }

    #[test]
    fn invalid_display_lists_every_problem_with_its_file_and_a_hint() {
        let err = from_yaml_str("version: 1\nglobalMaxAgents: 0\nscalers:\n  - {name: bm, type: docker, maxAgents: 1, labelSets: [{labels: [a]}]}\n", "/etc/kici/scalers.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid scaler config:\n  - /etc/kici/scalers.yaml: globalMaxAgents must be at least 1 (got 0)\n  - /etc/kici/scalers.yaml: Scaler \"bm\" has type \"docker\", which is not supported: use type \"container\" (it drives Docker or Podman)\n(hint: fix every problem listed; an invalid scaler config is never partly applied)"
        );
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn names(config: &ScalerConfig) -> Vec<&str> {
        config.scalers.iter().map(|s| s.name.as_str()).collect()
    }

    fn bare_metal(name: &str, label: &str) -> String {
        format!("{{name: {name}, type: bare-metal, maxAgents: 1, labelSets: [{{labels: [{label}], binaryPath: /a}}]}}")
    }

    #[test]
    fn load_merges_scalers_d_in_alphabetical_order() {
        let root = tempfile::tempdir().unwrap();
        let main = write(
            root.path(),
            "scalers.yaml",
            &format!(
                "version: 1\nglobalMaxAgents: 9\nscalers:\n  - {}\n",
                bare_metal("main", "m")
            ),
        );
        let dir = root.path().join("scalers.d");
        std::fs::create_dir(&dir).unwrap();
        write(
            &dir,
            "20-c.yml",
            &format!(
                "scalers:\n  - {}\n  - {}\n",
                bare_metal("c1", "c1"),
                bare_metal("c2", "c2")
            ),
        );
        write(
            &dir,
            "10-b.yaml",
            &format!("version: 1\nscalers:\n  - {}\n", bare_metal("b", "b")),
        );
        write(&dir, "05-empty.yaml", "# nothing yet\n");
        write(
            &dir,
            ".hidden.yaml",
            &format!("scalers:\n  - {}\n", bare_metal("hidden", "h")),
        );
        write(&dir, "notes.txt", "not yaml: [");
        write(&dir, "30-d.yaml.bak", "not yaml: [");
        std::fs::create_dir(dir.join("40-sub.yaml")).unwrap();

        let config = load(Some(&main), Some(&dir)).unwrap();
        assert_eq!(names(&config), ["main", "b", "c1", "c2"]);
        assert_eq!(config.global_max_agents, 9);
        assert_eq!(config.scalers[1].source, dir.join("10-b.yaml").display().to_string());

        let only_dir = load(None, Some(&dir)).unwrap();
        assert_eq!(names(&only_dir), ["b", "c1", "c2"]);
        assert_eq!(only_dir.global_max_agents, DEFAULT_GLOBAL_MAX_AGENTS);

        assert_eq!(load(None, None).unwrap(), ScalerConfig::default());
        assert_eq!(names(&load(Some(&main), None).unwrap()), ["main"]);
    }

    #[test]
    fn load_reports_problems_with_the_file_they_are_in() {
        let root = tempfile::tempdir().unwrap();
        let main = write(
            root.path(),
            "scalers.yaml",
            &format!("version: 1\nscalers:\n  - {}\n", bare_metal("a", "linux")),
        );
        let dir = root.path().join("scalers.d");
        std::fs::create_dir(&dir).unwrap();
        let gpu = write(
            &dir,
            "gpu.yaml",
            &format!(
                "version: 2\nscalers:\n  - {}\n  - {}\n",
                bare_metal("a", "gpu"),
                bare_metal("b", "linux")
            ),
        );
        let Err(ScalerConfigError::Invalid { problems }) = load(Some(&main), Some(&dir)) else {
            panic!("expected problems")
        };
        let gpu = gpu.display().to_string();
        let main = main.display().to_string();
        assert_eq!(
            problems,
            [
                ConfigProblem {
                    file: Some(gpu.clone()),
                    message: "version must be 1 (got 2)".into()
                },
                ConfigProblem {
                    file: Some(gpu.clone()),
                    message: format!(
                        "Scaler name \"a\" is used more than once (scalers[0] of {main} and scalers[0] of {gpu}); scaler names must be unique"
                    ),
                },
                ConfigProblem {
                    file: Some(gpu.clone()),
                    message: "Label set [linux] overlaps between scalers \"a\" and \"b\"".into()
                },
            ]
        );
    }

    #[test]
    fn load_errors_name_the_file_and_hint() {
        let root = tempfile::tempdir().unwrap();
        let missing = root.path().join("nope.yaml");
        let err = load(Some(&missing), None).unwrap_err();
        assert!(matches!(err, ScalerConfigError::Read { .. }));
        assert_eq!(
            err.to_string(),
            format!("cannot read scaler config `{}` (hint: {HINT_PATH})", missing.display())
        );
        let err = load(None, Some(&root.path().join("scalers.d"))).unwrap_err();
        assert!(matches!(err, ScalerConfigError::ReadDir { .. }), "{err}");
        assert!(err.to_string().ends_with(&format!("(hint: {HINT_DIR})")), "{err}");

        let dir = root.path().join("d");
        std::fs::create_dir(&dir).unwrap();
        let extra = write(&dir, "extra.yaml", "globalMaxAgents: 3\n");
        let ScalerConfigError::Parse(err) = load(None, Some(&dir)).unwrap_err() else {
            panic!("expected a parse error")
        };
        let ParseError {
            file, key_path, hint, ..
        } = *err;
        assert_eq!(file, extra.display().to_string());
        assert_eq!(key_path.as_deref(), Some("globalMaxAgents"));
        assert_eq!(hint, HINT_DROP_IN_KEY);
        write(&dir, "extra.yaml", "scalers:\n  - {name: a, labelSet: []}\n");
        let ScalerConfigError::Parse(err) = load(None, Some(&dir)).unwrap_err() else {
            panic!("expected a parse error")
        };
        let ParseError { key_path, hint, .. } = *err;
        assert_eq!(key_path.as_deref(), Some("scalers[0].labelSet"));
        assert_eq!(
            hint,
            "did you mean `labelSets`? keys are case-sensitive camelCase; rename or remove the key"
        );
    }

    #[test]
    fn reload_diff_by_name() {
        let current = valid(&format!(
            "version: 1\nscalers:\n  - {}\n  - {}\n  - {}\n",
            bare_metal("same", "a"),
            bare_metal("gone", "b"),
            bare_metal("edited", "c")
        ));
        let next = valid(&format!(
            "version: 1\nscalers:\n  - {}\n  - {}\n  - {}\n",
            bare_metal("same", "a"),
            bare_metal("edited", "c2"),
            "{name: new, type: container, maxAgents: 1, labelSets: [{labels: [n], image: i}]}"
        ));
        assert_eq!(
            reload_diff(&current, &next),
            ReloadDiff {
                added: vec!["new".into()],
                removed: vec!["gone".into()],
                changed: vec!["edited".into()],
                type_changed: vec![]
            }
        );
        let retyped = valid(&one(
            "{name: same, type: container, maxAgents: 1, labelSets: [{labels: [a], image: i}]}",
        ));
        assert_eq!(reload_diff(&current, &retyped).type_changed, ["same"]);
        assert!(reload_diff(&current, &current).is_empty());
    }
}
