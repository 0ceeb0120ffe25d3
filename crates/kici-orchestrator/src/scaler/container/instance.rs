//! The container backend: each agent runs in a container created through the Docker Engine
//! API on a unix socket — Docker's, or Podman's (`podman system service` serves the same API).
//! The image is pulled per `imagePullPolicy`, the container carries the `kici-*` labels, its
//! multiplexed log stream is captured, and it is removed once the agent is gone (never
//! auto-removed, so its exit code can be read). Containers a previous run of this orchestrator
//! left behind (`kici-managed=true` and this data directory's `kici-instance`) are removed at
//! start; other orchestrators' containers on the same engine are left alone.
//!
//! `networkIsolation: false` runs the container in the host's network namespace, so an
//! orchestrator on 127.0.0.1 is reachable. With `true` (the default) the engine's default bridge
//! network is used and `orchestratorUrl` must name an address containers can reach; the
//! RFC 1918 blocking rules of the reference are not applied yet.

use kici_engine::ids::AgentId;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use super::config::{ContainerBackend, ContainerRuntime, ContainerTarget, ImagePullPolicy};
use crate::scaler::backend::SpawnRequest;
use crate::scaler::capture::{OutputTail, forward};
use crate::scaler::error::SpawnError;
use crate::scaler::milestones::{Milestone, Reporter};
use crate::scaler::unix_http::{call, call_unbounded, call_within, send};

/// The API version every request names; Docker ≥ 20.10 and Podman ≥ 3 serve it.
const API: &str = "/v1.41";
/// Seconds a container gets between SIGTERM and SIGKILL when stopped.
const STOP_GRACE_SECS: u64 = 10;
/// How long an image pull may take.
const PULL_TIMEOUT: Duration = Duration::from_secs(600);
/// Between two attempts to wait for a container when the engine did not answer.
const WAIT_RETRY: Duration = Duration::from_secs(1);
/// After the container exits, how long its log stream may still drain.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// The `kici-instance` label: the same for every run of an orchestrator on one data
/// directory, different for two orchestrators sharing an engine.
pub(crate) fn instance_label(data_dir: &Path) -> String {
    kici_engine::hash::sha256_hex(data_dir.to_string_lossy().as_bytes())[..16].to_string()
}

/// Where engines listen by default, in probe order.
fn candidate_sockets() -> Vec<PathBuf> {
    let mut sockets = vec![
        PathBuf::from("/var/run/docker.sock"),
        PathBuf::from("/run/podman/podman.sock"),
    ];
    if let Some(runtime_dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        sockets.push(PathBuf::from(runtime_dir).join("podman/podman.sock"));
    }
    sockets
}

/// The engine socket of a container scaler: `socketPath`, else the first default that exists.
pub(crate) fn socket(backend: &ContainerBackend) -> Result<PathBuf, SpawnError> {
    if let Some(host) = &backend.host {
        return Err(SpawnError::RemoteEngine(host.clone()));
    }
    if let Some(path) = &backend.socket_path {
        return Ok(path.clone());
    }
    let preferred = |path: &Path| match backend.runtime {
        ContainerRuntime::Auto => true,
        ContainerRuntime::Docker => path.to_string_lossy().contains("docker"),
        ContainerRuntime::Podman => path.to_string_lossy().contains("podman"),
    };
    candidate_sockets()
        .into_iter()
        .find(|path| preferred(path) && path.exists())
        .ok_or(SpawnError::NoContainerRuntime)
}

/// A running agent container.
pub(crate) struct AgentContainer {
    socket: PathBuf,
    id: String,
    logs: Option<tokio::task::JoinHandle<()>>,
    removed: bool,
}

pub(crate) async fn start(
    request: &SpawnRequest,
    backend: &ContainerBackend,
    target: &ContainerTarget,
    reporter: &Reporter,
    tail: &OutputTail,
) -> Result<AgentContainer, SpawnError> {
    let socket = socket(backend)?;
    ensure_image(&socket, &target.image, target.pull_policy, reporter).await?;
    reporter.milestone(Milestone::Provisioning, "creating container").await;
    let label_set = &request.scaler.label_sets[request.label_set_index];
    let mut labels = json!({
        "kici-managed": "true",
        "kici-instance": instance_label(&request.settings.data_dir),
        "kici-scaler-name": request.scaler.name,
        "kici-agent-id": request.agent_id,
        "kici-labels": label_set.labels.join(","),
    });
    if let Some(binding) = reporter.binding() {
        labels["kici-bound-job-id"] = json!(binding.job_id);
        labels["kici-run-id"] = json!(binding.run_id);
    }
    let mut binds = target.volumes.clone();
    if target.container_socket {
        binds.push(format!("{0}:{0}", socket.display()));
    }
    let mut host_config = json!({
        "AutoRemove": false,
        "Binds": binds,
        "ExtraHosts": backend.extra_hosts,
        "NetworkMode": if backend.network_isolation { "bridge" } else { "host" },
    });
    if let Some(bytes) = request.resources.limits.memory_bytes {
        host_config["Memory"] = json!(bytes);
    }
    if let Some(cpus) = request.resources.limits.cpus {
        host_config["NanoCpus"] = json!((cpus * 1e9).round() as u64);
    }
    let body = json!({
        "Image": target.image,
        "Env": request.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "Labels": labels,
        "HostConfig": host_config,
    });
    let (status, text) = call(
        &socket,
        Method::POST,
        &format!("{API}/containers/create?name={}", request.agent_id),
        Some(&body),
    )
    .await?;
    if status != StatusCode::CREATED {
        return Err(refused("creating the container".to_string(), status, &text));
    }
    let id = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["Id"].as_str().map(str::to_string))
        .ok_or_else(|| SpawnError::NoContainerId(text.clone()))?;
    let mut container = AgentContainer {
        socket: socket.clone(),
        id: id.clone(),
        logs: None,
        removed: false,
    };
    let started = match call(&socket, Method::POST, &format!("{API}/containers/{id}/start"), None).await {
        Ok((status, _)) if status.is_success() => Ok(()),
        Ok((status, text)) => Err(refused("starting the container".to_string(), status, &text)),
        Err(err) => Err(SpawnError::StartContainer(err)),
    };
    if let Err(err) = started {
        container.destroy().await;
        return Err(err);
    }
    container.logs = Some(tokio::spawn(follow_logs(
        socket,
        id.clone(),
        tail.clone(),
        request.agent_id.to_string(),
    )));
    reporter
        .milestone(
            Milestone::Ready,
            &format!("container started ({})", &id[..12.min(id.len())]),
        )
        .await;
    reporter
        .milestone(Milestone::Connecting, "waiting for agent WS registration")
        .await;
    Ok(container)
}

/// Pulls the image when the policy asks for it.
async fn ensure_image(
    socket: &Path,
    image: &str,
    policy: ImagePullPolicy,
    reporter: &Reporter,
) -> Result<(), SpawnError> {
    let present = match policy {
        ImagePullPolicy::Always => false,
        _ => image_present(socket, image).await?,
    };
    if present {
        return Ok(());
    }
    if policy == ImagePullPolicy::Never {
        return Err(SpawnError::ImageAbsent {
            image: image.to_string(),
        });
    }
    reporter
        .milestone(Milestone::Provisioning, &format!("pulling image {image}"))
        .await;
    pull(socket, image).await
}

pub(crate) async fn image_present(socket: &Path, image: &str) -> Result<bool, SpawnError> {
    let (status, text) = call(socket, Method::GET, &format!("{API}/images/{image}/json"), None).await?;
    match status {
        StatusCode::OK => Ok(true),
        StatusCode::NOT_FOUND => Ok(false),
        _ => Err(refused(format!("inspecting image {image}"), status, &text)),
    }
}

/// `POST /images/create`: errors come either as a non-2xx answer or as a `{"error": …}` line in
/// the progress stream.
async fn pull(socket: &Path, image: &str) -> Result<(), SpawnError> {
    let (name, tag) = split_image(image);
    let path = format!("{API}/images/create?fromImage={}&tag={}", encode(name), encode(tag));
    let (status, text) = call_within(socket, Method::POST, &path, None, PULL_TIMEOUT).await?;
    if !status.is_success() {
        return Err(refused(format!("pulling image {image}"), status, &text));
    }
    for line in text.lines() {
        if let Ok(progress) = serde_json::from_str::<Value>(line)
            && let Some(error) = progress["error"].as_str()
        {
            return Err(SpawnError::EngineRefused {
                action: format!("pulling image {image}"),
                message: error.to_string(),
            });
        }
    }
    Ok(())
}

/// `registry/name:tag` → (`registry/name`, `tag`); no tag means `latest`.
fn split_image(image: &str) -> (&str, &str) {
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(colon) => (&image[..last_slash + colon], &image[last_slash + colon + 1..]),
        None => (image, "latest"),
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The engine's `{"message": …}`, else the body as is.
fn engine_message(status: StatusCode, text: &str) -> String {
    let message = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| text.trim().to_string());
    format!("{message} (HTTP {})", status.as_u16())
}

/// The engine said no to `action` (`creating the container`).
fn refused(action: String, status: StatusCode, text: &str) -> SpawnError {
    SpawnError::EngineRefused {
        action,
        message: engine_message(status, text),
    }
}

/// Reads the container's multiplexed log stream until it ends.
async fn follow_logs(socket: PathBuf, id: String, tail: OutputTail, agent_id: String) {
    let path = format!("{API}/containers/{id}/logs?follow=1&stdout=1&stderr=1");
    let Ok(response) = send(&socket, Method::GET, &path, None).await else {
        return;
    };
    let mut body = response.into_body();
    let mut demux = Demux::default();
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            for line in demux.push(data) {
                forward(&AgentId::from(&agent_id), "container", &line);
                tail.push(&line);
            }
        }
    }
    for line in demux.finish() {
        forward(&AgentId::from(&agent_id), "container", &line);
        tail.push(&line);
    }
}

/// Splits Docker's multiplexed stream (8-byte headers: stream, 0, 0, 0, big-endian length)
/// into lines of at most [`crate::scaler::capture::MAX_LINE_BYTES`]. Payload from both streams is
/// merged, as the tail shows them together.
#[derive(Debug, Default)]
pub(crate) struct Demux {
    buffer: Vec<u8>,
    lines: crate::scaler::capture::LineSplitter,
}

impl Demux {
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buffer.extend_from_slice(bytes);
        let mut lines = Vec::new();
        loop {
            if self.buffer.len() < 8 {
                break;
            }
            let size = u32::from_be_bytes([self.buffer[4], self.buffer[5], self.buffer[6], self.buffer[7]]) as usize;
            if self.buffer.len() < 8 + size {
                break;
            }
            let payload: Vec<u8> = self.buffer.drain(..8 + size).skip(8).collect();
            lines.extend(self.lines.push(&payload));
        }
        lines
    }

    /// What is left without a final newline.
    pub(crate) fn finish(&mut self) -> Vec<String> {
        self.lines.finish().into_iter().collect()
    }
}

impl AgentContainer {
    /// Waits for the container to exit; `exit code N`. A failed wait (the engine restarted,
    /// the socket hiccuped) is retried while the container exists: it may still run a job.
    pub(crate) async fn wait(&mut self) -> String {
        let path = format!("{API}/containers/{}/wait", self.id);
        let mut warned = false;
        let outcome = loop {
            let problem = match call_unbounded(&self.socket, Method::POST, &path, None).await {
                Ok((status, text)) if status.is_success() => {
                    break serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| v["StatusCode"].as_i64())
                        .map_or_else(
                            || format!("unknown exit status: {text}"),
                            |code| format!("exit code {code}"),
                        );
                }
                Ok((StatusCode::NOT_FOUND, _)) => break "the container is gone".to_string(),
                Ok((status, text)) => engine_message(status, &text),
                Err(err) => err.to_string(),
            };
            if !warned {
                tracing::warn!(containerId = %self.id, error = %problem, "cannot wait for an agent container; retrying every second");
                warned = true;
            }
            tokio::time::sleep(WAIT_RETRY).await;
        };
        if let Some(logs) = self.logs.take() {
            // A stream still open after the drain time is abandoned.
            let _ = tokio::time::timeout(OUTPUT_DRAIN, logs).await;
        }
        outcome
    }

    /// Stops (SIGTERM, SIGKILL after 10 s) and removes the container.
    pub(crate) async fn destroy(&mut self) {
        if self.removed {
            return;
        }
        let stop = format!("{API}/containers/{}/stop?t={STOP_GRACE_SECS}", self.id);
        // Already stopped (304) or gone is fine; removal below is forced anyway.
        let _ = call(&self.socket, Method::POST, &stop, None).await;
        match call(
            &self.socket,
            Method::DELETE,
            &format!("{API}/containers/{}?force=true", self.id),
            None,
        )
        .await
        {
            Ok((status, _)) if status.is_success() || status == StatusCode::NOT_FOUND => self.removed = true,
            Ok((status, text)) => {
                tracing::warn!(containerId = %self.id, error = %engine_message(status, &text), "cannot remove an agent container")
            }
            Err(err) => tracing::warn!(containerId = %self.id, error = %err, "cannot remove an agent container"),
        }
        if let Some(logs) = self.logs.take() {
            logs.abort();
        }
    }
}

/// Removes containers a previous run of this orchestrator left (`kici-managed=true` and its
/// `kici-instance`), on every engine socket the configured container scalers use.
pub(crate) async fn remove_orphans(sockets: Vec<PathBuf>, instance: String) {
    let filters = encode(&json!({ "label": ["kici-managed=true", format!("kici-instance={instance}")] }).to_string());
    for socket in sockets {
        let path = format!("{API}/containers/json?all=true&filters={filters}");
        let ids: Vec<String> = match call(&socket, Method::GET, &path, None).await {
            Ok((status, text)) if status.is_success() => serde_json::from_str::<Vec<Value>>(&text)
                .unwrap_or_default()
                .iter()
                .filter_map(|c| c["Id"].as_str().map(str::to_string))
                .collect(),
            Ok((status, text)) => {
                tracing::warn!(socket = %socket.display(), error = %engine_message(status, &text), "cannot list orphaned agent containers");
                continue;
            }
            Err(err) => {
                tracing::warn!(socket = %socket.display(), error = %err, "cannot list orphaned agent containers");
                continue;
            }
        };
        let mut removed = 0;
        for id in &ids {
            if let Ok((status, _)) = call(
                &socket,
                Method::DELETE,
                &format!("{API}/containers/{id}?force=true"),
                None,
            )
            .await
                && status.is_success()
            {
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(socket = %socket.display(), "Cleaned up {removed} orphaned containers");
        }
    }
}

/// `diagnose` cross-checks: an engine answers, and each image is present or may be pulled.
pub(crate) async fn host_problems(backend: &ContainerBackend, targets: &[(usize, &ContainerTarget)]) -> Vec<String> {
    let socket = match socket(backend) {
        Ok(socket) => socket,
        Err(problem) => return vec![problem.to_string()],
    };
    let mut problems = Vec::new();
    for (index, target) in targets {
        match image_present(&socket, &target.image).await {
            Ok(true) => {}
            Ok(false) if target.pull_policy == ImagePullPolicy::Never => problems.push(format!(
                "label set [{index}]: image {} is not present and imagePullPolicy is Never",
                target.image
            )),
            Ok(false) => {}
            Err(problem) => problems.push(format!("label set [{index}]: {problem}")),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, payload: &str) -> Vec<u8> {
        let mut bytes = vec![stream, 0, 0, 0];
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(payload.as_bytes());
        bytes
    }

    #[test]
    fn the_log_stream_is_split_into_lines_across_frames_and_reads() {
        let mut stream = frame(1, "one\ntw");
        stream.extend(frame(2, "o\nthree"));
        let mut demux = Demux::default();
        // Fed in awkward pieces: inside a header and inside a payload.
        let mut lines = demux.push(&stream[..5]);
        lines.extend(demux.push(&stream[5..13]));
        lines.extend(demux.push(&stream[13..]));
        assert_eq!(lines, ["one", "two"]);
        assert_eq!(demux.finish(), ["three"]);
        assert!(demux.finish().is_empty());
    }

    #[test]
    fn images_split_into_name_and_tag() {
        assert_eq!(split_image("localhost/kici-agent:dev"), ("localhost/kici-agent", "dev"));
        assert_eq!(split_image("localhost:5000/agent"), ("localhost:5000/agent", "latest"));
        assert_eq!(split_image("agent"), ("agent", "latest"));
        assert_eq!(encode("a/b:c"), "a%2Fb%3Ac");
    }
}
