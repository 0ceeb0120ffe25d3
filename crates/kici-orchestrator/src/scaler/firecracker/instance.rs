//! The Firecracker backend: each agent runs in a microVM. The orchestrator starts the VMM
//! (`firecracker --api-sock … --id …`), configures it over its API socket — logger, boot
//! source, root drive, machine size, a TAP network interface, MMDS holding the agent's
//! environment under `latest/meta-data/kici-env` — and starts the instance. The serial console
//! (the VMM's stdout) and the VMM log are captured; a `Kernel panic` line on the console is
//! what a failed boot usually shows, and the tail carries it into the provisioning error.
//!
//! Network: the lowest free address of `firecracker.cidr` (gateway, network and broadcast
//! excluded), MAC `06:00:` + the address's octets, TAP `kici-<last 8 of the VM id>` attached to
//! `firecracker.bridgeName` when that bridge exists. Not done here: the jailer (VMs run as the
//! orchestrator's user) and the writable overlay drive (the root drive is read-only).

use kici_engine::ids::AgentId;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::process::Command;

use super::config::{FirecrackerBackend, FirecrackerNetwork, FirecrackerTarget};
use crate::scaler::backend::SpawnRequest;
use crate::scaler::bare_metal::AgentProcess;
use crate::scaler::capture::{OutputTail, forward};
use crate::scaler::error::SpawnError;
use crate::scaler::milestones::{Milestone, Reporter};

/// How long the VMM may take to create its API socket.
const API_SOCKET_WAIT: Duration = Duration::from_secs(15);
/// How often the VMM log file is read for new lines.
const VMM_LOG_POLL: Duration = Duration::from_millis(100);

/// The guest addresses of running microVMs: the one thing the VMs of all scalers share.
#[derive(Debug, Clone, Default)]
pub(crate) struct IpPool(Arc<Mutex<BTreeSet<Ipv4Addr>>>);

impl IpPool {
    fn leases(&self) -> std::sync::MutexGuard<'_, BTreeSet<Ipv4Addr>> {
        // Every update is one insert or remove, so a poisoned lock is still consistent.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reserves the lowest free guest address of `network`.
    fn lease(&self, network: &FirecrackerNetwork) -> Result<Ipv4Addr, SpawnError> {
        let mut leases = self.leases();
        let taken: Vec<Ipv4Addr> = leases.iter().copied().collect();
        let ip = lowest_free_ip(network, &taken)?;
        leases.insert(ip);
        Ok(ip)
    }

    fn release(&self, ip: Ipv4Addr) {
        self.leases().remove(&ip);
    }
}

pub(crate) struct MicroVm {
    ips: IpPool,
    /// `None` until the VMM started.
    vmm: Option<AgentProcess>,
    work_dir: PathBuf,
    tap: Option<String>,
    ip: Option<Ipv4Addr>,
    require_sudo: bool,
    tail: OutputTail,
    log_tailer: Option<tokio::task::JoinHandle<()>>,
}

/// The TAP device of a VM: `kici-` and the last 8 characters of its id.
pub(crate) fn tap_name(agent_id: &AgentId) -> String {
    let start = agent_id.len().saturating_sub(8);
    format!("kici-{}", &agent_id[start..])
}

/// `06:00:` followed by the four octets of the guest address.
pub(crate) fn guest_mac(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("06:00:{a:02X}:{b:02X}:{c:02X}:{d:02X}")
}

/// The lowest address of `network` not in `taken`, skipping the network and broadcast
/// addresses and the gateway.
pub(crate) fn lowest_free_ip(network: &FirecrackerNetwork, taken: &[Ipv4Addr]) -> Result<Ipv4Addr, SpawnError> {
    let (base, prefix) = network
        .cidr
        .split_once('/')
        .and_then(|(ip, prefix)| Some((ip.parse::<Ipv4Addr>().ok()?, prefix.parse::<u32>().ok()?)))
        .filter(|(_, prefix)| (1..=30).contains(prefix))
        .ok_or_else(|| SpawnError::BadCidr {
            cidr: network.cidr.clone(),
        })?;
    let gateway: Option<Ipv4Addr> = network.gateway.parse().ok();
    let size = 1u64 << (32 - prefix);
    let first = u64::from(u32::from(base)) & !(size - 1);
    (first + 1..first + size - 1)
        .filter_map(|ip| u32::try_from(ip).ok())
        .map(Ipv4Addr::from)
        .find(|ip| Some(*ip) != gateway && !taken.contains(ip))
        .ok_or_else(|| SpawnError::NoFreeIp {
            cidr: network.cidr.clone(),
            in_use: taken.len(),
        })
}

pub(crate) async fn start(
    request: &SpawnRequest,
    backend: &FirecrackerBackend,
    target: &FirecrackerTarget,
    reporter: &Reporter,
    tail: &OutputTail,
) -> Result<MicroVm, SpawnError> {
    reporter
        .milestone(Milestone::Provisioning, "preparing rootfs and kernel")
        .await;
    for (what, path) in [("kernel", &target.kernel_path), ("rootfs", &target.rootfs_path)] {
        if !path.is_file() {
            return Err(SpawnError::VmImageMissing {
                what,
                path: path.clone(),
                scaler: request.scaler.name.clone(),
            });
        }
    }
    let work_dir = request.settings.data_dir.join("firecracker").join(&request.agent_id);
    std::fs::create_dir_all(&work_dir).map_err(|source| SpawnError::VmDirectory {
        path: work_dir.clone(),
        source,
    })?;
    let mut vm = MicroVm {
        ips: request.ips.clone(),
        vmm: None,
        work_dir: work_dir.clone(),
        tap: None,
        ip: None,
        require_sudo: backend.require_sudo,
        tail: tail.clone(),
        log_tailer: None,
    };
    match boot(request, backend, target, reporter, tail, &mut vm).await {
        Ok(()) => Ok(vm),
        Err(err) => {
            vm.destroy().await;
            Err(err)
        }
    }
}

async fn boot(
    request: &SpawnRequest,
    backend: &FirecrackerBackend,
    target: &FirecrackerTarget,
    reporter: &Reporter,
    tail: &OutputTail,
    vm: &mut MicroVm,
) -> Result<(), SpawnError> {
    let network = &request.firecracker_network;
    let ip = vm.ips.lease(network)?;
    vm.ip = Some(ip);
    let tap = tap_name(&request.agent_id);
    reporter
        .milestone(Milestone::Network, &format!("configuring TAP device {tap}"))
        .await;
    run_ip(backend.require_sudo, &["tuntap", "add", "dev", &tap, "mode", "tap"]).await?;
    vm.tap = Some(tap.clone());
    if Path::new("/sys/class/net").join(&network.bridge_name).exists() {
        run_ip(
            backend.require_sudo,
            &["link", "set", &tap, "master", &network.bridge_name],
        )
        .await?;
    }
    run_ip(backend.require_sudo, &["link", "set", &tap, "up"]).await?;
    reporter
        .milestone(Milestone::Network, &format!("allocating IP {ip}"))
        .await;

    let socket = vm.work_dir.join("api.sock");
    let vmm_log = vm.work_dir.join("vmm.log");
    std::fs::write(&vmm_log, "").map_err(|source| SpawnError::VmmLog {
        path: vmm_log.clone(),
        source,
    })?;
    let mut command = Command::new(&backend.firecracker_path);
    command
        .arg("--api-sock")
        .arg(&socket)
        .arg("--id")
        .arg(&request.agent_id)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    let vmm = vm.vmm.insert(
        AgentProcess::spawn(
            command,
            tail,
            &request.agent_id,
            ["firecracker-serial", "firecracker-serial"],
        )
        .map_err(|source| SpawnError::StartVmm {
            path: backend.firecracker_path.clone(),
            source,
        })?,
    );
    wait_for_socket(&socket, vmm).await?;
    vm.log_tailer = Some(tokio::spawn(tail_file(
        vmm_log.clone(),
        tail.clone(),
        request.agent_id.to_string(),
    )));

    let kici_env: serde_json::Map<String, Value> = request
        .env
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let [a, b, c, d] = ip.octets();
    let boot_args = format!(
        "console=ttyS0 reboot=k panic=1 pci=off ip={a}.{b}.{c}.{d}::{}:{}::eth0:off",
        network.gateway, network.netmask
    );
    let calls: Vec<(Method, &str, Value)> = vec![
        (
            Method::PUT,
            "/logger",
            json!({ "log_path": vmm_log, "level": "Info", "show_level": true }),
        ),
        (
            Method::PUT,
            "/boot-source",
            json!({ "kernel_image_path": target.kernel_path, "boot_args": boot_args }),
        ),
        (
            Method::PUT,
            "/drives/rootfs",
            json!({ "drive_id": "rootfs", "path_on_host": target.rootfs_path, "is_root_device": true, "is_read_only": true }),
        ),
        (
            Method::PUT,
            "/machine-config",
            json!({ "vcpu_count": target.vcpu_count, "mem_size_mib": target.mem_size_mib }),
        ),
        (
            Method::PUT,
            "/network-interfaces/eth0",
            json!({ "iface_id": "eth0", "host_dev_name": tap, "guest_mac": guest_mac(ip) }),
        ),
        (
            Method::PUT,
            "/mmds/config",
            json!({ "version": "V2", "network_interfaces": ["eth0"] }),
        ),
        (
            Method::PUT,
            "/mmds",
            json!({ "latest": { "meta-data": { "kici-env": kici_env } } }),
        ),
    ];
    for (method, path, body) in calls {
        api(&socket, method, path, &body).await?;
    }
    reporter.milestone(Milestone::Provisioning, "booting microVM").await;
    api(
        &socket,
        Method::PUT,
        "/actions",
        &json!({ "action_type": "InstanceStart" }),
    )
    .await?;
    reporter.milestone(Milestone::Ready, "microVM booted").await;
    reporter
        .milestone(Milestone::Connecting, "waiting for agent WS registration from VM")
        .await;
    Ok(())
}

/// One Firecracker API call; a refusal names the call and Firecracker's `fault_message`.
async fn api(socket: &Path, method: Method, path: &str, body: &Value) -> Result<(), SpawnError> {
    let (status, text) = crate::scaler::unix_http::call(socket, method.clone(), path, Some(body)).await?;
    if status == StatusCode::NO_CONTENT || status.is_success() {
        return Ok(());
    }
    let fault = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["fault_message"].as_str().map(str::to_string))
        .unwrap_or(text);
    Err(SpawnError::FirecrackerApi {
        method,
        path: path.to_string(),
        status,
        fault,
    })
}

/// Waits until the VMM accepts connections on its API socket. The file appears at `bind`,
/// a moment before `listen`: only a connection that succeeds shows the API is up.
async fn wait_for_socket(socket: &Path, vmm: &mut AgentProcess) -> Result<(), SpawnError> {
    let deadline = tokio::time::Instant::now() + API_SOCKET_WAIT;
    while tokio::net::UnixStream::connect(socket).await.is_err() {
        if let Some(exit) = vmm.try_exit() {
            return Err(SpawnError::VmmExited { exit });
        }
        if tokio::time::Instant::now() > deadline {
            return Err(SpawnError::ApiSocketTimeout {
                socket: socket.to_path_buf(),
                seconds: API_SOCKET_WAIT.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn run_ip(require_sudo: bool, args: &[&str]) -> Result<(), SpawnError> {
    let mut command = if require_sudo {
        let mut command = Command::new("sudo");
        command.arg("-n").arg("ip");
        command
    } else {
        Command::new("ip")
    };
    let output = command.args(args).output().await.map_err(|source| SpawnError::RunIp {
        args: args.join(" "),
        source,
    })?;
    if output.status.success() {
        return Ok(());
    }
    Err(SpawnError::IpFailed {
        args: args.join(" "),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

/// Follows the VMM log file: new lines go to the tail and the orchestrator's log.
async fn tail_file(path: PathBuf, tail: OutputTail, agent_id: String) {
    let mut offset = 0usize;
    let mut partial = String::new();
    loop {
        tokio::time::sleep(VMM_LOG_POLL).await;
        let Ok(bytes) = tokio::fs::read(&path).await else {
            return;
        };
        if bytes.len() <= offset {
            continue;
        }
        partial.push_str(&String::from_utf8_lossy(&bytes[offset..]));
        offset = bytes.len();
        while let Some(end) = partial.find('\n') {
            let line: String = partial.drain(..=end).collect();
            let line = line.trim_end();
            forward(&AgentId::from(&agent_id), "firecracker-vmm", line);
            tail.push(line);
        }
    }
}

impl MicroVm {
    /// Waits for the VMM to exit; a kernel panic on the console is named.
    pub(crate) async fn wait(&mut self) -> String {
        let exit = match self.vmm.as_mut() {
            Some(vmm) => vmm.wait().await,
            None => "the VMM never started".to_string(),
        };
        self.stop_log_tailer();
        let panic = self.tail.lines().iter().find_map(|line| {
            line.split_once("Kernel panic - not syncing: ")
                .map(|(_, why)| why.to_string())
        });
        match panic {
            Some(why) => {
                tracing::error!(exit = %exit, failureType = "kernel-panic", "VM boot failed");
                format!("{exit}; kernel panic: {why}")
            }
            None => exit,
        }
    }

    /// Empties MMDS once the agent is up: its environment (the agent's token) must not stay
    /// readable inside the VM.
    pub(crate) async fn clear_mmds(&mut self) {
        let socket = self.work_dir.join("api.sock");
        if let Err(err) = api(&socket, Method::PUT, "/mmds", &json!({})).await {
            tracing::warn!(error = %err, "cannot clear the microVM's MMDS");
        }
    }

    /// Stops the VMM and frees the TAP device, the address and the VM directory.
    pub(crate) async fn destroy(&mut self) {
        if let Some(vmm) = self.vmm.as_mut() {
            vmm.destroy().await;
        }
        self.stop_log_tailer();
        if let Some(tap) = self.tap.take()
            && let Err(err) = run_ip(self.require_sudo, &["link", "del", &tap]).await
        {
            tracing::warn!(tap = %tap, error = %err, "cannot remove a VM's TAP device");
        }
        if let Some(ip) = self.ip.take() {
            self.ips.release(ip);
        }
        // Best effort: the directory holds only the socket and logs.
        let _ = std::fs::remove_dir_all(&self.work_dir);
    }

    fn stop_log_tailer(&mut self) {
        if let Some(task) = self.log_tailer.take() {
            task.abort();
        }
    }
}

/// `diagnose` cross-checks: the VMM binary, and each label set's kernel and rootfs.
pub(crate) fn host_problems(backend: &FirecrackerBackend, targets: &[(usize, &FirecrackerTarget)]) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(problem) = crate::scaler::bare_metal::check_executable(
        "firecrackerPath",
        &backend.firecracker_path,
        "point it at the firecracker binary",
    ) {
        problems.push(problem);
    }
    for (index, target) in targets {
        for (what, path) in [("kernelPath", &target.kernel_path), ("rootfsPath", &target.rootfs_path)] {
            if !path.is_file() {
                problems.push(format!(
                    "label set [{index}]: {what} `{}` does not exist",
                    path.display()
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(cidr: &str) -> FirecrackerNetwork {
        FirecrackerNetwork {
            cidr: cidr.to_string(),
            ..FirecrackerNetwork::default()
        }
    }

    #[test]
    fn addresses_skip_the_gateway_and_taken_ones_and_run_out() {
        let net = network("10.0.0.0/24");
        assert_eq!(
            lowest_free_ip(&net, &[]).map_err(|err| err.to_string()),
            Ok(Ipv4Addr::new(10, 0, 0, 2))
        );
        assert_eq!(
            lowest_free_ip(&net, &[Ipv4Addr::new(10, 0, 0, 2)]).map_err(|err| err.to_string()),
            Ok(Ipv4Addr::new(10, 0, 0, 3))
        );
        let tiny = FirecrackerNetwork {
            cidr: "10.0.0.0/30".into(),
            ..FirecrackerNetwork::default()
        };
        assert_eq!(
            lowest_free_ip(&tiny, &[Ipv4Addr::new(10, 0, 0, 2)]).map_err(|err| err.to_string()),
            Err("no available IPs in 10.0.0.0/30 (1 in use)".to_string())
        );
        assert!(
            lowest_free_ip(&network("10.0.0.0"), &[])
                .unwrap_err()
                .to_string()
                .contains("is not an IPv4 network")
        );
    }

    #[test]
    fn mac_and_tap_names_follow_the_address_and_the_vm_id() {
        assert_eq!(guest_mac(Ipv4Addr::new(172, 16, 0, 2)), "06:00:AC:10:00:02");
        assert_eq!(tap_name(&AgentId::from("scaler-firecracker-0a1b2c3d")), "kici-0a1b2c3d");
    }
}
