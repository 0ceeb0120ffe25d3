//! The CI smoke run: every target for two seconds through the `kici-fuzz` binary (so a stack
//! overflow or abort is reported as a crash instead of killing the test), with a fixed seed.
//! Each target must execute inputs and find no panic and no crash.

use std::process::Command;

/// Seconds per target; eight targets stay well under twenty seconds on two cores.
const SECONDS: &str = "2";
const SEED: &str = "20260101";
/// Long lists of patterns compile slowly on the debug build tests run on.
const MAX_LIST: &str = "100";

fn smoke(target: &str) {
    let crash_dir = tempfile::tempdir().expect("a temporary directory");
    let output = Command::new(env!("CARGO_BIN_EXE_kici-fuzz"))
        .args([
            target,
            "--seconds",
            SECONDS,
            "--seed",
            SEED,
            "--max-list",
            MAX_LIST,
            "--crash-dir",
        ])
        .arg(crash_dir.path())
        .output()
        .expect("kici-fuzz runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let figures: Vec<&str> = stdout
        .lines()
        .find(|line| line.split_whitespace().next() == Some(target))
        .unwrap_or_else(|| panic!("no figures for {target}:\n{stdout}\n{stderr}"))
        .split_whitespace()
        .collect();
    let inputs: u64 = figures[1].parse().expect("an input count");
    assert!(inputs > 0, "{target} executed no input:\n{stdout}");
    assert!(
        output.status.success() && figures[3] == "0" && figures[4] == "0",
        "{target} found panics or crashes:\n{stdout}\n{stderr}"
    );
}

#[test]
fn lockfile() {
    smoke("lockfile");
}

#[test]
fn webhook() {
    smoke("webhook");
}

#[test]
fn agent_protocol() {
    smoke("agent-protocol");
}

#[test]
fn platform_protocol() {
    smoke("platform-protocol");
}

#[test]
fn runner_protocol() {
    smoke("runner-protocol");
}

#[test]
fn scalers() {
    smoke("scalers");
}

#[test]
fn patterns() {
    smoke("patterns");
}

#[test]
fn triggers() {
    smoke("triggers");
}
