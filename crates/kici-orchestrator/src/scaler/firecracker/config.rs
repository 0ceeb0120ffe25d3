//! The Firecracker scaler's settings: the VMM, jailer, kernel, ids and machine size of a
//! scaler, the rootfs and size overrides of its label sets, and the top-level `firecracker`
//! network block the VMs share, resolved and checked.

use std::path::PathBuf;

use crate::scaler::config::raw::{RawFirecrackerNetwork, RawLabelSet, RawScaler};
use crate::scaler::config::{NetworkPolicy, Problems, build_network_policy, present};

const DEFAULT_CHROOT_BASE_DIR: &str = "/srv/jailer";
const DEFAULT_VCPU_COUNT: u32 = 2;
const MAX_VCPU_COUNT: u32 = 32;
const DEFAULT_MEM_SIZE_MIB: u32 = 512;
const DEFAULT_OVERLAY_DRIVE_SIZE_MIB: u32 = 2048;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FirecrackerBackend {
    pub(crate) firecracker_path: PathBuf,
    pub(crate) jailer_path: PathBuf,
    /// The default kernel; a label set may override it.
    pub(crate) kernel_path: PathBuf,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) chroot_base_dir: PathBuf,
    /// Defaults for label sets that do not override them.
    pub(crate) vcpu_count: u32,
    pub(crate) mem_size_mib: u32,
    /// Run `ip`/`chown` through `sudo -n`.
    pub(crate) require_sudo: bool,
}

/// Label-set overrides already applied over the scaler's defaults.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FirecrackerTarget {
    pub(crate) rootfs_path: PathBuf,
    pub(crate) kernel_path: PathBuf,
    pub(crate) vcpu_count: u32,
    pub(crate) mem_size_mib: u32,
    pub(crate) overlay_drive_size_mib: u32,
    pub(crate) network_policy: NetworkPolicy,
}

/// The top-level `firecracker` block: the host network the VMs share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FirecrackerNetwork {
    pub(crate) cidr: String,
    pub(crate) bridge_name: String,
    pub(crate) gateway: String,
    pub(crate) netmask: String,
    pub(crate) table: String,
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

/// The top-level `firecracker` block; a missing key keeps its default.
pub(crate) fn build_network(raw: RawFirecrackerNetwork) -> FirecrackerNetwork {
    let defaults = FirecrackerNetwork::default();
    FirecrackerNetwork {
        cidr: raw.cidr.unwrap_or(defaults.cidr),
        bridge_name: raw.bridge_name.unwrap_or(defaults.bridge_name),
        gateway: raw.gateway.unwrap_or(defaults.gateway),
        netmask: raw.netmask.unwrap_or(defaults.netmask),
        table: raw.table.unwrap_or(defaults.table),
    }
}

/// A Firecracker scaler's own keys.
pub(crate) fn build_backend(
    raw: &RawScaler,
    name: &str,
    problems: &mut Problems,
    at: Option<&str>,
) -> FirecrackerBackend {
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
    FirecrackerBackend {
        firecracker_path,
        jailer_path,
        kernel_path,
        uid,
        gid,
        chroot_base_dir: PathBuf::from(raw.chroot_base_dir.as_deref().unwrap_or(DEFAULT_CHROOT_BASE_DIR)),
        vcpu_count,
        mem_size_mib,
        require_sudo: raw.require_sudo.unwrap_or(false),
    }
}

/// A Firecracker label set's own keys over the scaler's defaults (`fc`, when the scaler's
/// own keys could be read); `subject` names the label set in messages.
pub(crate) fn build_target(
    raw: RawLabelSet,
    scaler: &str,
    index: usize,
    subject: &str,
    fc: Option<&FirecrackerBackend>,
    problems: &mut Problems,
    at: Option<&str>,
) -> FirecrackerTarget {
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
    FirecrackerTarget {
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
        network_policy: build_network_policy(raw.network_policy, subject, problems, at),
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
