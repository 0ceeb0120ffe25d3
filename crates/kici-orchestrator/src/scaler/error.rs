//! Why an agent could not be started. The `Display` of [`SpawnError`] is the `scaler.failed`
//! detail that reaches operators as the queue entry's `last_provisioning_error` (with the
//! agent's captured output added by the caller), so its texts are contract; [`SpawnError::kind`]
//! is a bounded code for logs and metric labels.

use std::path::PathBuf;

use hyper::{Method, StatusCode};

use super::unix_http::HttpError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum SpawnError {
    /// The engine's API socket did not answer (Docker, Podman or Firecracker).
    #[error(transparent)]
    Engine(#[from] HttpError),
    /// The container engine answered with an error; `action` says what was asked.
    #[error("{action} failed: {message}")]
    EngineRefused { action: String, message: String },
    #[error("starting the container failed: {0}")]
    StartContainer(#[source] HttpError),
    #[error("the engine's answer to container create has no Id: {0}")]
    NoContainerId(String),
    #[error(
        "container host `{0}` is not supported: only local unix sockets are (hint: set socketPath, or run the orchestrator next to the engine)"
    )]
    RemoteEngine(String),
    #[error("No container runtime found. Install Docker or Podman, or configure host.")]
    NoContainerRuntime,
    #[error(
        "image {image} is not present and imagePullPolicy is Never (hint: build or load it on this host, e.g. `podman build -t {image} -f Containerfile .`)"
    )]
    ImageAbsent { image: String },
    /// `what` is `kernel` or `rootfs`, which also names the scaler key to fix.
    #[error("{what} image `{}` does not exist (hint: set {what}Path of scaler \"{scaler}\")", path.display())]
    VmImageMissing {
        what: &'static str,
        path: PathBuf,
        scaler: String,
    },
    #[error("cannot create the VM directory `{}`: {source}", path.display())]
    VmDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create `{}`: {source}", path.display())]
    VmmLog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start {}: {source}", path.display())]
    StartVmm {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `exit` describes how the VMM ended (`exit code 1`).
    #[error("firecracker exited before opening its API socket ({exit})")]
    VmmExited { exit: String },
    #[error("firecracker did not open its API socket `{}` within {seconds}s", socket.display())]
    ApiSocketTimeout { socket: PathBuf, seconds: u64 },
    /// Firecracker refused a call; `fault` is its `fault_message` (else the body).
    #[error("Firecracker API {method} {path} failed ({status}): {fault}")]
    FirecrackerApi {
        method: Method,
        path: String,
        status: StatusCode,
        fault: String,
    },
    #[error("cannot run `ip {args}`: {source}")]
    RunIp {
        args: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "`ip {args}` failed: {stderr} (hint: the orchestrator needs CAP_NET_ADMIN, or requireSudo with passwordless sudo for ip)"
    )]
    IpFailed { args: String, stderr: String },
    #[error("firecracker.cidr `{cidr}` is not an IPv4 network with a prefix of /1 to /30, such as 10.0.0.0/24")]
    BadCidr { cidr: String },
    #[error("no available IPs in {cidr} ({in_use} in use)")]
    NoFreeIp { cidr: String, in_use: usize },
    /// The agent binary could not be started; `code` is the errno name when known.
    #[error(
        "agent process error: spawn {}{} ({reason}; hint: {hint})",
        path.display(),
        code.map(|code| format!(" {code}")).unwrap_or_default()
    )]
    AgentProcess {
        path: PathBuf,
        code: Option<&'static str>,
        reason: String,
        hint: String,
    },
    #[error("label set [{label_set_index}] of scaler \"{scaler}\" does not match its backend type")]
    BackendMismatch { scaler: String, label_set_index: usize },
    #[error("cannot create the agent's token: {0}")]
    Token(#[source] kici_store::StoreError),
}

impl SpawnError {
    /// A bounded, metric-safe code for the failure (`error_kind`).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            SpawnError::Engine(_) | SpawnError::StartContainer(_) => "engine_unreachable",
            SpawnError::EngineRefused { .. } | SpawnError::NoContainerId(_) | SpawnError::FirecrackerApi { .. } => {
                "engine_refused"
            }
            SpawnError::RemoteEngine(_) | SpawnError::NoContainerRuntime => "no_container_runtime",
            SpawnError::ImageAbsent { .. } | SpawnError::VmImageMissing { .. } => "image_missing",
            SpawnError::VmDirectory { .. } | SpawnError::VmmLog { .. } => "vm_files",
            SpawnError::StartVmm { .. } | SpawnError::VmmExited { .. } | SpawnError::ApiSocketTimeout { .. } => "vmm",
            SpawnError::RunIp { .. }
            | SpawnError::IpFailed { .. }
            | SpawnError::BadCidr { .. }
            | SpawnError::NoFreeIp { .. } => "network",
            SpawnError::AgentProcess { .. } => "agent_process",
            SpawnError::BackendMismatch { .. } => "backend_mismatch",
            SpawnError::Token(_) => "token",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn texts_are_the_operators_and_kinds_are_bounded() {
        let cases = [
            (
                SpawnError::NoContainerRuntime,
                "No container runtime found. Install Docker or Podman, or configure host.",
                "no_container_runtime",
            ),
            (
                SpawnError::ImageAbsent {
                    image: "kici-agent:dev".into(),
                },
                "image kici-agent:dev is not present and imagePullPolicy is Never (hint: build or load it on this host, e.g. `podman build -t kici-agent:dev -f Containerfile .`)",
                "image_missing",
            ),
            (
                SpawnError::VmImageMissing {
                    what: "rootfs",
                    path: "/var/lib/kici/rootfs.ext4".into(),
                    scaler: "fc".into(),
                },
                "rootfs image `/var/lib/kici/rootfs.ext4` does not exist (hint: set rootfsPath of scaler \"fc\")",
                "image_missing",
            ),
            (
                SpawnError::FirecrackerApi {
                    method: Method::PUT,
                    path: "/actions".into(),
                    status: StatusCode::BAD_REQUEST,
                    fault: "no kernel".into(),
                },
                "Firecracker API PUT /actions failed (400 Bad Request): no kernel",
                "engine_refused",
            ),
            (
                SpawnError::Engine(HttpError::NoAnswer {
                    method: Method::GET,
                    path: "/v1.41/images/a/json".into(),
                    socket: "/run/podman/podman.sock".into(),
                    limit: Duration::from_secs(60),
                }),
                "GET /v1.41/images/a/json on /run/podman/podman.sock got no answer within 60s",
                "engine_unreachable",
            ),
            (
                SpawnError::BackendMismatch {
                    scaler: "metal".into(),
                    label_set_index: 1,
                },
                "label set [1] of scaler \"metal\" does not match its backend type",
                "backend_mismatch",
            ),
        ];
        for (err, text, kind) in cases {
            assert_eq!((err.to_string(), err.kind()), (text.to_string(), kind));
        }
    }
}
