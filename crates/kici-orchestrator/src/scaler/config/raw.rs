//! The file as written: the serde shapes `scalers.yaml` and `scalers.d/` files are read into.
//! Every key is optional here and every struct refuses unknown keys, so a typo stops at parsing
//! with its key path; the rules live in `validate` and the backends' `config` modules.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawConfig {
    pub(crate) version: Option<i64>,
    pub(crate) global_max_agents: Option<i64>,
    pub(crate) defaults: Option<RawDefaults>,
    pub(crate) global_resource_cap: Option<RawResourceCap>,
    pub(crate) machine_pools: Option<Vec<RawMachinePool>>,
    pub(crate) scalers: Option<Vec<RawScaler>>,
    pub(crate) firecracker: Option<RawFirecrackerNetwork>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawDropIn {
    pub(crate) version: Option<i64>,
    pub(crate) scalers: Option<Vec<RawScaler>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawDefaults {
    pub(crate) resources: Option<RawResources>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawResourceCap {
    pub(crate) max_cpu: Option<f64>,
    pub(crate) max_memory: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawMachinePool {
    pub(crate) name: Option<String>,
    pub(crate) cap: Option<RawResourceCap>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawFirecrackerNetwork {
    pub(crate) cidr: Option<String>,
    pub(crate) bridge_name: Option<String>,
    pub(crate) gateway: Option<String>,
    pub(crate) netmask: Option<String>,
    pub(crate) table: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawScaler {
    pub(crate) name: Option<String>,
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    pub(crate) max_agents: Option<i64>,
    pub(crate) label_sets: Option<Vec<RawLabelSet>>,
    pub(crate) orchestrator_url: Option<String>,
    pub(crate) warm_pool: Option<RawWarmPool>,
    pub(crate) mandatory_labels: Option<Vec<String>>,
    pub(crate) roles: Option<RawRoles>,
    pub(crate) resource_cap: Option<RawResourceCap>,
    pub(crate) machine_pool: Option<String>,
    // container
    pub(crate) host: Option<String>,
    pub(crate) socket_path: Option<String>,
    pub(crate) runtime: Option<String>,
    pub(crate) extra_hosts: Option<Vec<String>>,
    pub(crate) network_isolation: Option<bool>,
    // bare-metal
    pub(crate) enforce_cgroups: Option<bool>,
    // firecracker
    pub(crate) firecracker_path: Option<String>,
    pub(crate) jailer_path: Option<String>,
    pub(crate) kernel_path: Option<String>,
    pub(crate) uid: Option<i64>,
    pub(crate) gid: Option<i64>,
    pub(crate) chroot_base_dir: Option<String>,
    pub(crate) vcpu_count: Option<i64>,
    pub(crate) mem_size_mib: Option<i64>,
    pub(crate) require_sudo: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawWarmPool {
    pub(crate) enabled: Option<bool>,
    pub(crate) size: Option<i64>,
    pub(crate) idle_timeout_seconds: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawLabelSet {
    pub(crate) labels: Option<Vec<String>>,
    pub(crate) image: Option<String>,
    pub(crate) image_pull_policy: Option<String>,
    pub(crate) binary_path: Option<String>,
    pub(crate) rootfs_path: Option<String>,
    pub(crate) kernel_path: Option<String>,
    pub(crate) vcpu_count: Option<i64>,
    pub(crate) mem_size_mib: Option<i64>,
    pub(crate) overlay_drive_size_mib: Option<i64>,
    pub(crate) resources: Option<RawResources>,
    pub(crate) volumes: Option<Vec<String>>,
    pub(crate) container_socket: Option<bool>,
    pub(crate) env: Option<BTreeMap<String, String>>,
    pub(crate) backpressure_mode: Option<String>,
    pub(crate) network_policy: Option<RawNetworkPolicy>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawResources {
    pub(crate) memory: Option<String>,
    pub(crate) cpus: Option<f64>,
    pub(crate) requests: Option<RawAmounts>,
    pub(crate) limits: Option<RawAmounts>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawAmounts {
    pub(crate) memory: Option<String>,
    pub(crate) cpus: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawNetworkPolicy {
    pub(crate) allowlist: Option<Vec<String>>,
    pub(crate) deny_all: Option<bool>,
}

/// `roles: all` or `roles: [builder, init-runner]`.
#[derive(Debug, Default)]
pub(crate) struct RawRoles(pub(crate) Vec<String>);

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
