//! The container scaler's settings: the `type: container` keys of a scaler (engine, runtime,
//! extra hosts, network isolation) and of its label sets (image, pull policy, volumes, engine
//! socket), resolved and checked. Keys of other backends are refused in `config::validate`.

use std::path::PathBuf;

use crate::scaler::config::raw::{RawLabelSet, RawScaler};
use crate::scaler::config::{NetworkPolicy, Problems, build_network_policy, present};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ContainerBackend {
    /// A remote engine (`tcp://…`); `None` = a local socket.
    pub(crate) host: Option<String>,
    /// `None` = auto-detect the Docker and Podman sockets.
    pub(crate) socket_path: Option<PathBuf>,
    pub(crate) runtime: ContainerRuntime,
    /// `host:ip` entries such as `host.docker.internal:host-gateway`.
    pub(crate) extra_hosts: Vec<String>,
    /// Block private ranges from containers (needs nft and NET_ADMIN). Default `true`.
    pub(crate) network_isolation: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContainerRuntime {
    Auto,
    Docker,
    Podman,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ContainerTarget {
    pub(crate) image: String,
    pub(crate) pull_policy: ImagePullPolicy,
    /// `<host path or volume>:<container path>[:ro|:rw]`.
    pub(crate) volumes: Vec<String>,
    /// Mount the engine socket into the container (root-equivalent). Default `false`.
    pub(crate) container_socket: bool,
    pub(crate) network_policy: NetworkPolicy,
}

/// `imagePullPolicy`; `IfNotPresent` when unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImagePullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// A container scaler's own keys.
pub(crate) fn build_backend(
    raw: &RawScaler,
    name: &str,
    problems: &mut Problems,
    at: Option<&str>,
) -> ContainerBackend {
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
                format!("Scaler \"{name}\" host \"{host}\" must start with tcp://, http://, https:// or unix://"),
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
                format!("Scaler \"{name}\" extraHosts entry \"{entry}\" must be \"<hostname>:<ip or host-gateway>\""),
            );
        }
    }
    ContainerBackend {
        host,
        socket_path: raw.socket_path.as_deref().map(PathBuf::from),
        runtime,
        extra_hosts,
        network_isolation: raw.network_isolation.unwrap_or(true),
    }
}

/// A container label set's own keys; `subject` names the label set in messages.
pub(crate) fn build_target(
    raw: RawLabelSet,
    scaler: &str,
    index: usize,
    subject: &str,
    problems: &mut Problems,
    at: Option<&str>,
) -> ContainerTarget {
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
    ContainerTarget {
        image,
        pull_policy,
        volumes,
        container_socket: raw.container_socket.unwrap_or(false),
        network_policy: build_network_policy(raw.network_policy, subject, problems, at),
    }
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
