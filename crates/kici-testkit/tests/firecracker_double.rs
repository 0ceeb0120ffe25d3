//! The `firecracker-double` binary against the Firecracker API contract it stands in for:
//! HTTP over its unix socket, its console (stdout) and its exit status.

// Helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(30);
const NOT_AFTER_START: &str = "The requested operation is not supported after starting the microVM.";

/// A running double with a scratch directory for its socket, kernel and root drive.
struct Vmm {
    dir: tempfile::TempDir,
    socket: PathBuf,
    child: Child,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
}

impl Vmm {
    async fn start(args: &[&str]) -> Vmm {
        let vmm = Vmm::spawn(tempfile::tempdir().unwrap(), args);
        let deadline = tokio::time::Instant::now() + WAIT;
        while UnixStream::connect(&vmm.socket).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "the API socket never came up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        vmm
    }

    fn spawn(dir: tempfile::TempDir, args: &[&str]) -> Vmm {
        let socket = dir.path().join("firecracker.sock");
        let mut child = Command::new(env!("CARGO_BIN_EXE_firecracker-double"))
            .arg("--api-sock")
            .arg(&socket)
            .args(args)
            // Must not leak into the guest: only PATH, HOME and kici-env do.
            .env("KICI_TEST_LEAK", "leaked")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let read_all = |mut stream: Box<dyn tokio::io::AsyncRead + Send + Unpin>| {
            tokio::spawn(async move {
                let mut text = String::new();
                stream.read_to_string(&mut text).await.unwrap();
                text
            })
        };
        let stdout = read_all(Box::new(child.stdout.take().unwrap()));
        let stderr = read_all(Box::new(child.stderr.take().unwrap()));
        Vmm {
            dir,
            socket,
            child,
            stdout,
            stderr,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    /// Writes a file in the scratch directory; its path.
    fn file(&self, name: &str, content: &str, mode: u32) -> String {
        let path = self.path(name);
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        request(&self.socket, method, path, body).await
    }

    /// A request that must succeed with 204.
    async fn ok(&self, method: &str, path: &str, body: Value) {
        let (status, answer) = self.call(method, path, Some(body)).await;
        assert_eq!(status, 204, "{method} {path}: {answer}");
    }

    /// A request that must fail with 400; its fault message.
    async fn fault(&self, method: &str, path: &str, body: Option<Value>) -> String {
        let (status, answer) = self.call(method, path, body).await;
        assert_eq!(status, 400, "{method} {path}: {answer}");
        answer["fault_message"].as_str().unwrap().to_string()
    }

    /// Boot source, root drive, network interface and MMDS for a guest running `init`.
    async fn configure(&self, kernel: &str, init: &str, init_mode: u32, kici_env: Value) {
        let kernel = self.file("vmlinux", kernel, 0o644);
        let rootfs = self.file("rootfs", init, init_mode);
        let boot = json!({"kernel_image_path": kernel, "boot_args": "console=ttyS0 reboot=k panic=1"});
        self.ok("PUT", "/boot-source", boot).await;
        let drive =
            json!({"drive_id": "rootfs", "path_on_host": rootfs, "is_root_device": true, "is_read_only": false});
        self.ok("PUT", "/drives/rootfs", drive).await;
        self.ok(
            "PUT",
            "/machine-config",
            json!({"vcpu_count": 2, "mem_size_mib": 1024, "smt": false}),
        )
        .await;
        // Any existing interface stands in for the TAP device.
        let iface = json!({"iface_id": "eth0", "host_dev_name": "lo", "guest_mac": "06:00:AC:10:00:02"});
        self.ok("PUT", "/network-interfaces/eth0", iface).await;
        let mmds_config = json!({"version": "V2", "network_interfaces": ["eth0"], "ipv4_address": "169.254.169.254"});
        self.ok("PUT", "/mmds/config", mmds_config).await;
        self.ok("PUT", "/mmds", json!({"latest": {"meta-data": {"kici-env": kici_env}}}))
            .await;
    }

    async fn start_instance(&self) {
        self.ok("PUT", "/actions", json!({"action_type": "InstanceStart"}))
            .await;
    }

    /// Waits for the process to exit; its status, stdout and stderr.
    async fn exit(&mut self) -> (ExitStatus, String, String) {
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the double did not exit")
            .unwrap();
        let stdout = (&mut self.stdout).await.unwrap();
        let stderr = (&mut self.stderr).await.unwrap();
        assert!(!self.socket.exists(), "the API socket is removed on exit");
        (status, stdout, stderr)
    }
}

async fn request(socket: &Path, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let stream = UnixStream::connect(socket).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("Host", "localhost")
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let answer = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, answer)
}

#[tokio::test]
async fn boot_runs_the_root_drive_as_init_with_the_mmds_env_and_powers_off() {
    let mut vmm = Vmm::start(&["--id", "vm-boot", "--level", "Info"]).await;
    let log = vmm.file("firecracker.log", "", 0o644);
    vmm.ok(
        "PUT",
        "/logger",
        json!({"log_path": log, "level": "Debug", "show_level": false}),
    )
    .await;
    let init = "echo \"url=$KICI_ORCHESTRATOR_URL\"\necho \"leak=${KICI_TEST_LEAK:-none}\"\necho on-stderr >&2\n";
    let env = json!({"KICI_ORCHESTRATOR_URL": "ws://10.0.0.1:8080/ws", "KICI_AGENT_TOKEN": "t0k"});
    // Not executable: run with /bin/sh.
    vmm.configure("not really a kernel\n", init, 0o644, env).await;
    vmm.start_instance().await;

    let (status, stdout, _) = vmm.exit().await;
    assert_eq!(status.code(), Some(0), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.contains(&"[    0.000000] Linux version 6.1.102 (firecracker-double) (gcc (GCC) 13.2.0) #1 SMP"));
    assert!(lines.contains(&"[    0.000000] Command line: console=ttyS0 reboot=k panic=1 root=/dev/vda rw"));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("[   12.000000] kici-init: started (pid "))
    );
    assert!(lines.contains(&"url=ws://10.0.0.1:8080/ws"), "{stdout}");
    assert!(lines.contains(&"leak=none"), "{stdout}");
    assert!(lines.contains(&"on-stderr"), "{stdout}");
    assert_eq!(lines.last(), Some(&"[   13.000000] reboot: Power down"));

    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.contains("[vm-boot:fc_api] The API server received a Put request on \"/boot-source\"."),
        "{log}"
    );
    assert!(log.contains("[vm-boot:main] Guest powered off"), "{log}");
}

#[tokio::test]
async fn describe_reports_the_state_and_pre_boot_requests_fail_after_start() {
    let mut vmm = Vmm::start(&["--id", "vm-1"]).await;
    let expected = json!({"id": "vm-1", "state": "Not started", "vmm_version": "1.7.0", "app_name": "Firecracker"});
    assert_eq!(vmm.call("GET", "/", None).await, (200, expected));
    // Executable: run directly. The marker file says it got as far as printing.
    let ready = vmm.path("ready");
    let init = format!("#!/bin/sh\necho waiting\ntouch {ready}\nexec sleep 60\n");
    vmm.configure("kernel\n", &init, 0o755, json!({})).await;
    vmm.start_instance().await;

    let (status, answer) = vmm.call("GET", "/", None).await;
    assert_eq!((status, answer["state"].as_str()), (200, Some("Running")));
    let kernel = vmm.path("vmlinux");
    let rootfs = vmm.path("rootfs");
    let pre_boot = [
        ("/boot-source", json!({"kernel_image_path": kernel})),
        ("/machine-config", json!({"vcpu_count": 1, "mem_size_mib": 128})),
        (
            "/drives/data",
            json!({"drive_id": "data", "path_on_host": rootfs, "is_root_device": false}),
        ),
        (
            "/network-interfaces/eth1",
            json!({"iface_id": "eth1", "host_dev_name": "lo"}),
        ),
        ("/actions", json!({"action_type": "InstanceStart"})),
    ];
    for (path, body) in pre_boot {
        assert_eq!(vmm.fault("PUT", path, Some(body)).await, NOT_AFTER_START, "{path}");
    }
    // MMDS stays writable at runtime.
    vmm.ok(
        "PATCH",
        "/mmds",
        json!({"latest": {"meta-data": {"instance-id": "i-1"}}}),
    )
    .await;

    // The guest runs its init on its own schedule: stop it only once the init has printed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::path::Path::new(&ready).exists() {
        assert!(std::time::Instant::now() < deadline, "the guest init never started");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    vmm.ok("PUT", "/actions", json!({"action_type": "SendCtrlAltDel"}))
        .await;
    let (status, stdout, _) = vmm.exit().await;
    assert_eq!(status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("\nwaiting\n"), "{stdout}");
    // Without a log file the VMM log goes to stdout too.
    assert!(stdout.contains("\n[   13.000000] reboot: Power down\n"), "{stdout}");
    assert!(
        stdout.contains("[vm-1:main] Firecracker exiting with status 0"),
        "{stdout}"
    );
}

#[tokio::test]
async fn invalid_configuration_is_answered_with_fault_messages() {
    let vmm = Vmm::start(&[]).await;
    let (_, answer) = vmm.call("GET", "/", None).await;
    assert_eq!(answer["id"], "anonymous-instance");
    let kernel = vmm.file("vmlinux", "kernel\n", 0o644);
    let rootfs = vmm.file("rootfs", "true\n", 0o644);
    let missing = vmm.path("missing");

    let cases = [
        (
            "PUT",
            "/boot-source",
            json!({"kernel_image_path": missing}),
            "Cannot open kernel image: No such file or directory (os error 2)".to_string(),
        ),
        (
            "PUT",
            "/drives/rootfs",
            json!({"drive_id": "rootfs", "path_on_host": missing, "is_root_device": true, "is_read_only": false}),
            format!("Unable to open the block device backing file {missing}: No such file or directory (os error 2)"),
        ),
        (
            "PUT",
            "/drives/rootfs",
            json!({"drive_id": "other", "path_on_host": rootfs, "is_root_device": true, "is_read_only": false}),
            "The id from the path does not match the id from the body!".to_string(),
        ),
        (
            "PUT",
            "/machine-config",
            json!({"vcpu_count": 0, "mem_size_mib": 128}),
            "The vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled."
                .to_string(),
        ),
        (
            "PUT",
            "/machine-config",
            json!({"vcpu_count": 33, "mem_size_mib": 128}),
            "The vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled."
                .to_string(),
        ),
        (
            "PUT",
            "/machine-config",
            json!({"vcpu_count": 2, "mem_size_mib": 0}),
            "The memory size (MiB) is invalid.".to_string(),
        ),
        (
            "PUT",
            "/network-interfaces/eth0",
            json!({"iface_id": "eth0", "host_dev_name": "kici-no-tap0"}),
            "Open tap device failed: kici-no-tap0: No such file or directory (os error 2)".to_string(),
        ),
        (
            "PUT",
            "/mmds/config",
            json!({"version": "V2", "network_interfaces": ["eth0"]}),
            "The list of network interface IDs provided contains at least one ID that does not correspond to any existing network interface.".to_string(),
        ),
        (
            "PATCH",
            "/mmds",
            json!({"a": 1}),
            "The MMDS data store is not initialized.".to_string(),
        ),
        (
            "PUT",
            "/actions",
            json!({"action_type": "InstanceStart"}),
            "Cannot start microvm without kernel configuration.".to_string(),
        ),
        (
            "PUT",
            "/actions",
            json!({"action_type": "SendCtrlAltDel"}),
            "The requested operation is not supported before starting the microVM.".to_string(),
        ),
    ];
    for (method, path, body, expected) in cases {
        assert_eq!(
            vmm.fault(method, path, Some(body.clone())).await,
            expected,
            "{method} {path} {body}"
        );
    }

    vmm.ok("PUT", "/boot-source", json!({"kernel_image_path": kernel}))
        .await;
    let start = json!({"action_type": "InstanceStart"});
    let fault = vmm.fault("PUT", "/actions", Some(start)).await;
    assert_eq!(fault, "Cannot start microvm without a root block device.");

    let fault = vmm.fault("PUT", "/logger", Some(json!({"log_path": missing}))).await;
    assert_eq!(
        fault,
        format!("Failed to open log file {missing}: No such file or directory (os error 2)")
    );
    let fault = vmm
        .fault("PUT", "/actions", Some(json!({"action_type": "Reboot"})))
        .await;
    assert!(
        fault.starts_with("An error occurred when deserializing the json body of a request: unknown variant `Reboot`")
    );
    let fault = vmm.fault("GET", "/machine", None).await;
    assert_eq!(fault, "Invalid request method and/or path: GET /machine.");
    let fault = vmm.fault("DELETE", "/boot-source", None).await;
    assert_eq!(fault, "Invalid request method and/or path: DELETE /boot-source.");

    let (_, answer) = vmm.call("GET", "/", None).await;
    assert_eq!(answer["state"], "Not started");
}

#[tokio::test]
async fn mmds_put_replaces_and_patch_merges() {
    let vmm = Vmm::start(&[]).await;
    assert_eq!(vmm.call("GET", "/mmds", None).await, (200, json!({})));
    vmm.ok("PUT", "/mmds", json!({"old": true})).await;
    vmm.ok("PUT", "/mmds", json!({"a": 1, "b": {"c": 2, "d": 3}, "list": [1, 2]}))
        .await;
    vmm.ok(
        "PATCH",
        "/mmds",
        json!({"b": {"c": null, "e": {"f": 4}}, "list": [3], "g": "h"}),
    )
    .await;
    let expected = json!({"a": 1, "b": {"d": 3, "e": {"f": 4}}, "list": [3], "g": "h"});
    assert_eq!(vmm.call("GET", "/mmds", None).await, (200, expected));
    vmm.ok("PATCH", "/mmds", json!({"a": {"nested": null, "x": 1}, "b": null}))
        .await;
    let expected = json!({"a": {"x": 1}, "list": [3], "g": "h"});
    assert_eq!(vmm.call("GET", "/mmds", None).await, (200, expected));
}

#[tokio::test]
async fn a_panicking_kernel_prints_the_panic_and_exits_1() {
    let mut vmm = Vmm::start(&[]).await;
    let kernel = "\u{7f}ELF junk\nKICI_DOUBLE_PANIC=VFS: Unable to mount root fs on unknown-block(0,0)\n";
    vmm.configure(kernel, "echo never\n", 0o644, json!({})).await;
    vmm.start_instance().await;

    let (status, stdout, _) = vmm.exit().await;
    assert_eq!(status.code(), Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines
            .contains(&"[    0.712345] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"),
        "{stdout}"
    );
    assert!(lines.contains(
        &"[    0.712400] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0) ]---"
    ));
    assert!(!stdout.contains("never") && !stdout.contains("kici-init"), "{stdout}");
}

#[tokio::test]
async fn without_a_panic_timeout_a_panicked_kernel_hangs_until_stopped() {
    let mut vmm = Vmm::start(&[]).await;
    let log = vmm.file("firecracker.log", "", 0o644);
    vmm.ok("PUT", "/logger", json!({"log_path": log, "level": "Warning"}))
        .await;
    vmm.configure("KICI_DOUBLE_PANIC=oops\n", "echo never\n", 0o644, json!({}))
        .await;
    let boot = json!({"kernel_image_path": vmm.path("vmlinux"), "boot_args": "console=ttyS0 reboot=k"});
    vmm.ok("PUT", "/boot-source", boot).await;
    vmm.start_instance().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("Guest kernel panicked and halted")
    {
        assert!(tokio::time::Instant::now() < deadline, "the guest never panicked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, answer) = vmm.call("GET", "/", None).await;
    assert_eq!(answer["state"], "Running");

    let double = vmm.child.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &double])
            .status()
            .await
            .unwrap()
            .success()
    );
    let (status, stdout, _) = vmm.exit().await;
    assert_eq!(status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("[    0.712345] Kernel panic - not syncing: oops\n"),
        "{stdout}"
    );
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        !log.contains("received a Get request"),
        "Info lines are filtered at level Warning: {log}"
    );
}

#[tokio::test]
async fn an_exit_marker_in_the_kernel_makes_the_vmm_exit_with_that_code() {
    let mut vmm = Vmm::start(&[]).await;
    vmm.configure("KICI_DOUBLE_EXIT=3\n", "echo never\n", 0o644, json!({}))
        .await;
    vmm.start_instance().await;
    let (status, stdout, _) = vmm.exit().await;
    assert_eq!(status.code(), Some(3), "{stdout}");
    assert!(!stdout.contains("never"), "{stdout}");
}

#[tokio::test]
async fn a_guest_without_kici_env_in_mmds_fails_to_boot() {
    let mut vmm = Vmm::start(&[]).await;
    vmm.configure("kernel\n", "echo never\n", 0o644, json!({})).await;
    vmm.ok("PUT", "/mmds", json!({"latest": {"meta-data": {}}})).await;
    vmm.start_instance().await;
    let (status, stdout, _) = vmm.exit().await;
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(
        stdout.lines().any(|l| l == "kici-init: no kici-env in MMDS"),
        "{stdout}"
    );
    assert!(!stdout.contains("never"), "{stdout}");
}

#[tokio::test]
async fn sigterm_stops_the_guest_and_the_vmm() {
    let mut vmm = Vmm::start(&[]).await;
    let pid_file = vmm.path("guest.pid");
    let init = format!("echo $$ > {pid_file}\nexec sleep 60\n");
    vmm.configure("kernel\n", &init, 0o644, json!({})).await;
    vmm.start_instance().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let guest = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file).ok().filter(|p| p.ends_with('\n')) {
            break pid.trim().to_string();
        }
        assert!(tokio::time::Instant::now() < deadline, "the guest never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let double = vmm.child.id().unwrap().to_string();
    let kill = Command::new("kill").args(["-TERM", &double]).status().await.unwrap();
    assert!(kill.success());
    let (status, stdout, _) = vmm.exit().await;
    assert_eq!(status.code(), Some(0), "{stdout}");
    assert!(!Path::new("/proc").join(guest).exists(), "the guest process is gone");
}

#[tokio::test]
async fn an_existing_socket_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("firecracker.sock"), "").unwrap();
    let mut vmm = Vmm::spawn(dir, &[]);
    let status = tokio::time::timeout(WAIT, vmm.child.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(1));
    let stderr = vmm.stderr.await.unwrap();
    assert!(stderr.contains("Failed to open the API socket at "), "{stderr}");
    assert!(stderr.contains("Address already in use"), "{stderr}");
    assert!(vmm.socket.exists(), "someone else's socket is left alone");
}

#[tokio::test]
async fn unknown_flags_are_rejected() {
    let mut vmm = Vmm::spawn(tempfile::tempdir().unwrap(), &["--no-such-flag"]);
    let status = tokio::time::timeout(WAIT, vmm.child.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(1));
    let stderr = vmm.stderr.await.unwrap();
    assert!(stderr.contains("'--no-such-flag'"), "{stderr}");
    assert!(!vmm.socket.exists());
}
