//! The quickstarts of `examples/quickstart/`, brought up as their READMEs say, each running a
//! pushed workflow end to end.
//!
//! `single-host`: the Debian packages (`scripts/packages.sh`, cargo-deb) on a host with a real
//! systemd (a Podman container whose first process is systemd), the README's `sh` blocks pasted
//! in order as root; then an upgrade to newer packages and a rollback, every run and log kept.
//! Needs Podman and the base image (`scripts/base-image.sh`).

// Helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kici_testkit::podman::ready;
use kici_testkit::systemd::Host;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `sh` blocks of a README, in order, as one script.
fn sh_blocks(readme: &Path) -> String {
    let text = std::fs::read_to_string(readme).unwrap();
    let mut script = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line == "```sh" {
            for line in lines.by_ref().take_while(|l| *l != "```") {
                script.push_str(line);
                script.push('\n');
            }
        }
    }
    assert!(!script.is_empty(), "no sh block in {}", readme.display());
    script
}

/// Builds the packages of this build's debug binaries with Debian revision `revision`; their
/// directory.
fn packages(revision: u32) -> PathBuf {
    let (code, output) = kici_testkit::run_to_end(
        Command::new(repository().join("scripts/packages.sh"))
            .args(["debug", &revision.to_string()])
            .current_dir(repository()),
    );
    assert_eq!(code, 0, "scripts/packages.sh:\n{output}");
    let first = output.lines().next().unwrap();
    repository().join(Path::new(first).parent().unwrap())
}

/// Polls `kici runs list` until `count` runs have ended; the list.
fn ended_runs(host: &Host, count: usize) -> String {
    let mut runs = String::new();
    for _ in 0..150 {
        runs = host.sh("export KICI_TOKEN=$(cat /root/.kici/admin-token); kici runs list");
        if runs.matches("success").count() + runs.matches("failed").count() >= count {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    runs
}

/// Each run of the list (newest first) and its steps' log.
fn runs_and_logs(host: &Host, count: usize) -> Vec<(String, String)> {
    let runs = ended_runs(host, count);
    runs.lines()
        .skip(1)
        .map(|line| {
            let id = line.split_whitespace().next().unwrap().to_string();
            let log = host.sh(&format!(
                "export KICI_TOKEN=$(cat /root/.kici/admin-token); kici runs logs {id}"
            ));
            (line.to_string(), log)
        })
        .collect()
}

#[test]
fn the_single_host_quickstart_runs_from_the_packages_and_survives_an_upgrade_and_a_rollback() {
    if !ready("the single-host quickstart test") {
        return;
    }
    let first = packages(1);
    let next = packages(2);
    assert_eq!(first, next);
    let quickstart = repository().join("examples/quickstart/single-host");
    let host = Host::start(&[(&first, "/debs"), (&quickstart, "/quickstart")]);
    host.sh(
        "git config --global user.name ops && git config --global user.email ops@example.com \
         && mkdir /root/packages && cp /debs/*-1_amd64.deb /root/packages/",
    );

    // The README, pasted.
    host.write("/root/quickstart.sh", &sh_blocks(&quickstart.join("README.md")));
    let pasted = host.sh("cd /root/packages && bash -euo pipefail /root/quickstart.sh");
    assert!(pasted.contains("Service:  kici-orchestrator (system)"), "{pasted}");
    assert!(pasted.contains("Version:  0.1.0-1 (package)"), "{pasted}");
    assert!(
        pasted.contains("kici-agent is running (0.1.0-1 (package))."),
        "{pasted}"
    );
    let runs = runs_and_logs(&host, 1);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(runs[0].0.contains("success"), "{runs:?}");
    assert!(runs[0].1.contains("Hello, World!"), "{runs:?}");
    // The token went to its file, not to the journal.
    let token = host.sh("cat /root/.kici/admin-token");
    let journal = host.sh("journalctl --no-pager -u kici-orchestrator");
    assert!(!journal.contains(token.trim()), "{journal}");
    // A packaged service is upgraded with its package, not by kici-admin.
    let (code, refused) = host.run(&[
        "kici-admin",
        "orchestrator",
        "upgrade",
        "--binary",
        "/usr/bin/kici-orchestrator",
    ]);
    assert_eq!(code, 1);
    assert!(
        refused.contains("kici-orchestrator is installed by its Debian package (/usr/lib/systemd/system/kici-orchestrator.service) (hint: upgrade it with its package"),
        "{refused}"
    );

    // The upgrade the README describes, after a backup.
    host.sh(
        "kici-admin db backup --database-url sqlite:///var/lib/kici/kici-orchestrator/kici.db /var/backups/kici-before-upgrade.db \
         && cd /debs && apt-get install -y -qq ./kici-orchestrator_*-2_amd64.deb ./kici-agent_*-2_amd64.deb ./kici_*-2_amd64.deb",
    );
    let status = host.sh("kici-admin orchestrator status");
    assert!(status.contains("Version:  0.1.0-2 (package)"), "{status}");
    assert!(status.contains("State:    active (running)"), "{status}");
    host.sh("cd /root/app && git commit -q --allow-empty -m again && git push -q origin HEAD:main");
    let upgraded = runs_and_logs(&host, 2);
    assert_eq!(upgraded.len(), 2, "{upgraded:?}");
    assert_eq!(upgraded[1], runs[0], "the first run and its log, after the upgrade");
    assert!(
        upgraded[0].0.contains("success") && upgraded[0].1.contains("Hello, World!"),
        "{upgraded:?}"
    );

    // And back.
    host.sh(
        "cd /debs && apt-get install -y -qq --allow-downgrades ./kici-orchestrator_*-1_amd64.deb ./kici-agent_*-1_amd64.deb ./kici_*-1_amd64.deb",
    );
    let status = host.sh("kici-admin orchestrator status && kici-admin agent status");
    assert!(status.contains("Version:  0.1.0-1 (package)"), "{status}");
    assert!(!status.contains("0.1.0-2"), "{status}");
    host.sh("cd /root/app && git commit -q --allow-empty -m once-more && git push -q origin HEAD:main");
    let back = runs_and_logs(&host, 3);
    assert_eq!(back.len(), 3, "{back:?}");
    assert_eq!(back[1..], upgraded[..], "every run and log, after the rollback");
    assert!(back[0].0.contains("success"), "{back:?}");
}
