//! Checking a configuration: the raw shapes become the resolved types, every problem is
//! collected (with the operator spec's texts, §1.7) and none stops the others. The common keys
//! are checked here, each backend's own keys beside the backend; [`check_across_scalers`] then
//! looks at names, label sets and machine pools across every file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use kici_engine::labels::RESERVED_PREFIX;

use super::load::ScalerConfigError;
use super::raw::{
    RawConfig, RawDropIn, RawLabelSet, RawNetworkPolicy, RawResourceCap, RawResources, RawRoles, RawScaler, RawWarmPool,
};
use super::{
    AgentRole, AgentRoles, Backend, BackpressureMode, LabelSet, MAX_CPUS, MachinePool, NetworkPolicy,
    RESERVED_LABEL_MESSAGE, ResourceAmounts, ResourceCap, Resources, ScalerConfig, ScalerEntry, ScalerType,
    SpawnTarget, WarmPool, format_memory, normalize_labels, parse_memory,
};
use crate::scaler::firecracker::config::FirecrackerBackend;
use crate::scaler::{
    bare_metal::config as bare_metal, container::config as container, firecracker::config as firecracker,
};

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

/// Every problem found so far, each once, in the order found.
#[derive(Default)]
pub(crate) struct Problems(Vec<ConfigProblem>);

impl Problems {
    pub(crate) fn add(&mut self, file: Option<&str>, message: String) {
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

pub(super) fn assemble(
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
        if let Some(network) = raw.firecracker {
            config.firecracker_network = firecracker::build_network(network);
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

/// The backend's scaler-level keys: keys of another backend are refused here, the backend's
/// own are read beside it (`scaler::<backend>::config`).
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
        Container => Backend::Container(container::build_backend(raw, name, problems, at)),
        BareMetal => Backend::BareMetal(bare_metal::build_backend(raw)),
        Firecracker => Backend::Firecracker(firecracker::build_backend(raw, name, problems, at)),
    }
}

/// Returns the set's normalized labels (for the cross-scaler checks, even when the set is
/// otherwise invalid) and the label set when the scaler's type is known.
fn build_label_set(
    mut raw: RawLabelSet,
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

    // Taken out, so that what is left of the set goes whole to its backend below.
    let resources = build_resources(raw.resources.take(), &subject, problems, at);
    let env = raw.env.take().unwrap_or_default();
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

    let target = match kind {
        Container => SpawnTarget::Container(container::build_target(raw, scaler, index, &subject, problems, at)),
        BareMetal => SpawnTarget::BareMetal(bare_metal::build_target(&raw, scaler, index, problems, at)),
        Firecracker => SpawnTarget::Firecracker(firecracker::build_target(
            raw, scaler, index, &subject, fc, problems, at,
        )),
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

/// A label set's `networkPolicy` (container and Firecracker); `subject` starts each message.
pub(crate) fn build_network_policy(
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

/// A string key that is set and not blank, trimmed.
pub(crate) fn present(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::time::Duration;

    use super::super::testing::{FILE, amounts, one, valid};
    use super::super::*;
    use crate::scaler::bare_metal::config::{BareMetalBackend, BareMetalTarget};
    use crate::scaler::container::config::{ContainerBackend, ContainerRuntime, ContainerTarget, ImagePullPolicy};
    use crate::scaler::firecracker::config::{FirecrackerNetwork, FirecrackerTarget};

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
    fn an_empty_file_needs_a_version() {
        check("", &["'version' is required: start the file with `version: 1`"]);
        assert_eq!(valid("version: 1\n"), ScalerConfig::default());
        assert_eq!(valid("version: 1\nscalers: []\n").scalers, []);
    }
}
