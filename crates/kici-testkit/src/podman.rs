//! Podman for the tests that build and run KiCI's images: whether it is there with the base
//! image (`scripts/base-image.sh`), running it, and removing what a test made however it ends.

use std::process::Command;

/// The base every image is built on.
pub const BASE_IMAGE: &str = "localhost/kici-base:bookworm";

/// Runs `podman args`; its output, trimmed. A failure fails the test with Podman's error.
pub fn podman(args: &[&str]) -> String {
    let output = Command::new("podman").args(args).output().expect("podman runs");
    assert!(
        output.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Whether Podman and the base image are there. They must be under
/// `KICI_TEST_REQUIRE_PODMAN=1` (`scripts/test.sh`); otherwise the test is skipped.
pub fn ready(test: &str) -> bool {
    let ready = Command::new("podman")
        .args(["image", "exists", BASE_IMAGE])
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        ready || std::env::var("KICI_TEST_REQUIRE_PODMAN").as_deref() != Ok("1"),
        "Podman or {BASE_IMAGE} is missing but KICI_TEST_REQUIRE_PODMAN=1 (hint: run scripts/base-image.sh)"
    );
    if !ready {
        eprintln!("note: no Podman or {BASE_IMAGE}; {test} skipped (run scripts/base-image.sh)");
    }
    ready
}

/// Builds the `stage` of the repository's `Containerfile` from this build's debug binaries as
/// `tag` (Podman's layer cache makes a second build of the same binaries quick).
pub fn build_stage(stage: &str, tag: &str) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.display().to_string();
    podman(&[
        "build",
        "--quiet",
        "--pull=never",
        "--target",
        stage,
        "--build-arg",
        "PROFILE=debug",
        "-t",
        tag,
        "-f",
        &format!("{root}/Containerfile"),
        &root,
    ]);
}

/// A container or volume, removed when dropped.
pub struct Removed {
    kind: &'static str,
    pub id: String,
}

impl Removed {
    pub fn container(id: String) -> Removed {
        Removed { kind: "container", id }
    }

    pub fn volume(id: String) -> Removed {
        Removed { kind: "volume", id }
    }
}

impl Drop for Removed {
    fn drop(&mut self) {
        // A container's anonymous volumes (an image's `VOLUME`) go with it.
        let volumes: &[&str] = if self.kind == "container" { &["-v"] } else { &[] };
        let _ = Command::new("podman")
            .args([self.kind, "rm", "-f"])
            .args(volumes)
            .arg(&self.id)
            .output();
    }
}
