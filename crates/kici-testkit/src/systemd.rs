//! A host with a real systemd for the service and package tests: a Podman container whose first
//! process is Debian's systemd, on the KiCI base image. Services run in it as on a server:
//! units, their own users, the journal. Needs Podman and the base image
//! (`scripts/base-image.sh`); as root, with runc (`scripts/podman.sh`).

use std::path::Path;
use std::time::Duration;

use crate::podman::{BASE_IMAGE, Removed, podman};

const IMAGE: &str = "localhost/kici-systemd:test";

/// A running systemd container, removed when dropped.
pub struct Host(Removed);

impl Host {
    /// Builds the image once (Debian's systemd and sudo, from its mirror) and starts a host with
    /// each `(host path, container path)` mounted read-only; returns once systemd is up.
    pub fn start(mounts: &[(&Path, &str)]) -> Host {
        build_image();
        let mut args = vec!["run".to_string(), "-d".to_string(), "--systemd=always".to_string()];
        for (from, to) in mounts {
            args.extend(["-v".to_string(), format!("{}:{to}:ro", from.display())]);
        }
        args.push(IMAGE.to_string());
        let id = podman(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let host = Host(Removed::container(id));
        let mut state = String::new();
        for _ in 0..150 {
            state = host.run(&["systemctl", "is-system-running"]).1;
            if matches!(state.trim(), "running" | "degraded") {
                return host;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("systemd did not come up in the container: {state}");
    }

    /// Runs `args` in the container; its exit code and output.
    pub fn run(&self, args: &[&str]) -> (i32, String) {
        crate::run_to_end(
            std::process::Command::new("podman")
                .args(["exec", &self.0.id])
                .args(args),
        )
    }

    /// Runs a shell script (`sh -ec`), which must succeed; its output.
    pub fn sh(&self, script: &str) -> String {
        let (code, output) = self.run(&["sh", "-ec", script]);
        assert_eq!(code, 0, "{script}\n{output}");
        output
    }

    /// Writes `text` to `path` in the container.
    pub fn write(&self, path: &str, text: &str) {
        self.sh(&format!("cat > {path} <<'EOF'\n{text}EOF\n"));
    }
}

fn build_image() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(
        dir.path().join("Containerfile"),
        format!(
            "FROM {BASE_IMAGE}\n\
             RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd systemd-sysv dbus sudo libpam-systemd dbus-user-session >/dev/null && apt-get clean\n\
             CMD [\"/lib/systemd/systemd\"]\n"
        ),
    )
    .expect("the Containerfile is written");
    podman(&[
        "build",
        "--quiet",
        "--pull=never",
        "-t",
        IMAGE,
        &dir.path().display().to_string(),
    ]);
}
