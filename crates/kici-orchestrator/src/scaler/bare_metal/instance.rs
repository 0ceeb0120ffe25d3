//! The bare-metal backend: the agent as a local process of the orchestrator's user, in its
//! own process group, with its stdout and stderr captured. Destroying it sends SIGTERM to the
//! group and SIGKILL 5 s later. With `enforceCgroups`, the process runs in a transient
//! systemd scope with `CPUQuota` and `MemoryMax` from the label set's resource limits.

use kici_engine::ids::AgentId;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use super::config::{BareMetalBackend, BareMetalTarget};
use crate::scaler::backend::SpawnRequest;
use crate::scaler::capture::{OutputTail, pump};
use crate::scaler::error::SpawnError;
use crate::scaler::milestones::{Milestone, Reporter};

/// Between SIGTERM and SIGKILL on destroy.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// After the process exits, how long its output may still drain (a grandchild may hold the
/// pipes open).
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// A child process in its own group whose output is captured: the agent itself
/// (bare-metal), or the VMM running it (Firecracker).
pub(crate) struct AgentProcess {
    child: Child,
    pid: i32,
    pumps: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

pub(crate) async fn start(
    request: &SpawnRequest,
    backend: &BareMetalBackend,
    target: &BareMetalTarget,
    reporter: &Reporter,
    tail: &OutputTail,
) -> Result<AgentProcess, SpawnError> {
    reporter
        .milestone(Milestone::Provisioning, "spawning agent process")
        .await;
    let mut command = if backend.enforce_cgroups && which("systemd-run").is_some() {
        let mut command = Command::new("systemd-run");
        command.env_clear().args([
            "--user",
            "--scope",
            "--quiet",
            "--slice=kici-scaler",
            &format!("--unit=kici-agent-{}", request.agent_id),
        ]);
        let limits = &request.resources.limits;
        if let Some(cpus) = limits.cpus {
            command.arg(format!("--property=CPUQuota={}%", (cpus * 100.0).round() as u64));
        }
        if let Some(bytes) = limits.memory_bytes {
            command.arg(format!("--property=MemoryMax={bytes}"));
        }
        command.arg("--").arg(&target.binary_path);
        // `systemd-run --user` reaches the user's service manager through these; the agent
        // inherits them too (they name no secret).
        for name in crate::config::SYSTEMD_USER_ENV {
            if let Some(value) = request.settings.host_env.get(name) {
                command.env(name, value);
            }
        }
        command
    } else {
        if backend.enforce_cgroups {
            tracing::warn!(agentId = %request.agent_id, scaler = %request.scaler.name, "enforceCgroups is set but systemd-run is not on PATH; the agent runs without cgroup limits");
        }
        let mut command = Command::new(&target.binary_path);
        command.env_clear();
        command
    };
    command.envs(request.env.iter().map(|(k, v)| (k, v)));
    let process = AgentProcess::spawn(command, tail, &request.agent_id, ["stdout", "stderr"])
        .map_err(|err| spawn_error(&target.binary_path, &request.scaler.name, request.label_set_index, &err))?;
    let pid = process.pid;
    reporter
        .milestone(Milestone::Ready, &format!("agent process started (PID {pid})"))
        .await;
    reporter
        .milestone(Milestone::Connecting, "waiting for agent WS registration")
        .await;
    Ok(process)
}

impl AgentProcess {
    /// Starts `command` in its own process group with stdin closed and stdout/stderr read into
    /// `tail` and the orchestrator's log (`logs_sources` names each stream there).
    pub(crate) fn spawn(
        mut command: Command,
        tail: &OutputTail,
        agent_id: &AgentId,
        logs_sources: [&'static str; 2],
    ) -> std::io::Result<AgentProcess> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command.spawn()?;
        let pid = child.id().map_or(0, |pid| pid as i32);
        let mut pumps = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            pumps.push(tokio::spawn(pump(
                stdout,
                tail.clone(),
                agent_id.to_string(),
                logs_sources[0],
            )));
        }
        if let Some(stderr) = child.stderr.take() {
            pumps.push(tokio::spawn(pump(
                stderr,
                tail.clone(),
                agent_id.to_string(),
                logs_sources[1],
            )));
        }
        Ok(AgentProcess {
            child,
            pid,
            pumps,
            status: None,
        })
    }

    /// How it ended, if it has.
    pub(crate) fn try_exit(&mut self) -> Option<String> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status.map(describe_exit)
    }

    /// Waits for the process to exit and its output to be read; describes how it ended.
    pub(crate) async fn wait(&mut self) -> String {
        let status = match self.status {
            Some(status) => status,
            None => match self.child.wait().await {
                Ok(status) => {
                    self.status = Some(status);
                    status
                }
                Err(err) => return format!("cannot wait for the agent process: {err}"),
            },
        };
        for pump in self.pumps.drain(..) {
            // A pump still blocked after the drain time is left to end on its own.
            let _ = tokio::time::timeout(OUTPUT_DRAIN, pump).await;
        }
        describe_exit(status)
    }

    /// SIGTERM to the group, SIGKILL after 5 s; nothing when it has exited.
    pub(crate) async fn destroy(&mut self) {
        if self.status.is_some() || self.pid <= 0 {
            return;
        }
        signal_group(self.pid, libc::SIGTERM);
        match tokio::time::timeout(KILL_GRACE, self.child.wait()).await {
            Ok(Ok(status)) => self.status = Some(status),
            _ => {
                signal_group(self.pid, libc::SIGKILL);
                if let Ok(status) = self.child.wait().await {
                    self.status = Some(status);
                }
            }
        }
    }
}

fn signal_group(pid: i32, signal: i32) {
    // SAFETY: plain syscall; ESRCH when the group is already gone is fine.
    #[allow(unsafe_code)]
    unsafe {
        libc::killpg(pid, signal);
    }
}

/// `exit code 1`, `signal 9 (SIGKILL)`.
pub(crate) fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}{}", signal_name(signal)),
        (None, None) => "unknown exit status".to_string(),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGTERM => " (SIGTERM)",
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGINT => " (SIGINT)",
        _ => "",
    }
}

/// `agent process error: spawn <path> ENOENT (No such file or directory; hint: …)`.
fn spawn_error(path: &Path, scaler: &str, label_set: usize, err: &std::io::Error) -> SpawnError {
    let (code, hint) = match err.raw_os_error() {
        Some(libc::ENOENT) => (
            Some("ENOENT"),
            format!(
                "binaryPath of scaler \"{scaler}\" label set [{label_set}] does not exist; point it at the kici-agent binary"
            ),
        ),
        Some(libc::EACCES) => (
            Some("EACCES"),
            "the orchestrator's user may not execute binaryPath; make it executable (chmod +x)".to_string(),
        ),
        Some(libc::ENOEXEC) => (
            Some("ENOEXEC"),
            "binaryPath is not an executable for this machine; point it at the kici-agent binary".to_string(),
        ),
        _ => (None, "check binaryPath and the orchestrator's permissions".to_string()),
    };
    let what = std::io::Error::from_raw_os_error(err.raw_os_error().unwrap_or(0));
    let reason = if err.raw_os_error().is_some() {
        what.to_string()
            .split(" (os error")
            .next()
            .unwrap_or_default()
            .to_string()
    } else {
        err.to_string()
    };
    SpawnError::AgentProcess {
        path: path.to_path_buf(),
        code,
        reason,
        hint,
    }
}

/// The first `name` on `PATH`.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// `diagnose` cross-check: the binary exists and the orchestrator's user may execute it.
pub(crate) fn check_binary(path: &Path) -> Result<(), String> {
    check_executable("binaryPath", path, "point it at the kici-agent binary")
}

/// The file at `path` (configured as `field`) exists and is executable; `hint` says what it
/// should be when it does not exist.
pub(crate) fn check_executable(field: &str, path: &Path, hint: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(path)
        .map_err(|err| format!("{field} `{}` cannot be read: {err} (hint: {hint})", path.display()))?;
    if !metadata.is_file() {
        return Err(format!("{field} `{}` is not a file", path.display()));
    }
    if metadata.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "{field} `{}` is not executable (hint: chmod +x it)",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_errors_name_the_path_the_cause_and_the_fix() {
        let err = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(
            spawn_error(Path::new("/opt/kici/agent"), "metal", 0, &err).to_string(),
            "agent process error: spawn /opt/kici/agent ENOENT (No such file or directory; hint: binaryPath of scaler \"metal\" label set [0] does not exist; point it at the kici-agent binary)"
        );
        let err = std::io::Error::from_raw_os_error(libc::EACCES);
        assert!(
            spawn_error(Path::new("/x"), "metal", 1, &err)
                .to_string()
                .starts_with("agent process error: spawn /x EACCES (Permission denied; hint:")
        );
    }

    #[test]
    fn binaries_are_checked_for_existence_and_the_execute_bit() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert!(check_binary(&missing).unwrap_err().contains("cannot be read"));
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        assert!(check_binary(&plain).unwrap_err().contains("is not executable"));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(check_binary(&plain), Ok(()));
    }
}
