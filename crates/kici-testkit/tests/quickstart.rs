//! The quickstarts of `examples/quickstart/`, brought up as their READMEs say, each running a
//! pushed workflow end to end.
//!
//! `single-host`: the Debian packages (`scripts/packages.sh`, cargo-deb) on a host with a real
//! systemd (a Podman container whose first process is systemd), the README's `sh` blocks pasted
//! in order as root; then an upgrade to newer packages and a rollback, every run and log kept.
//! Needs Podman and the base image (`scripts/base-image.sh`).
//!
//! `containers`: `compose.yaml` with `podman-compose` (`scripts/podman-compose.sh`) and the
//! images of this build's debug binaries, the README's `sh` blocks pasted on this host (its
//! `/srv/git` and port 4000 moved to the test's own).
//!
//! `several-hosts`: two orchestrators with its `orchestrator.env` and `scalers.yaml` (their
//! addresses, credentials and paths replaced by the test's) on a real PostgreSQL and a real S3
//! server (`scripts/postgres.sh`, `scripts/s3.sh`); agents only from the bare-metal scaler.

// Helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kici_engine::status::RunStatus;
use kici_testkit::podman::{build_stage, ready};
use kici_testkit::systemd::Host;
use kici_testkit::{Repo, Stack, binary, free_port, fresh_postgres_database, random_id, test_service};

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

    // The upgrade the README describes, after a backup: both services restart on the new build.
    let pids = || {
        let shown = host.sh("systemctl show -p MainPID --value kici-orchestrator kici-agent");
        shown.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let before = pids();
    host.sh(
        "kici-admin db backup --database-url sqlite:///var/lib/kici/kici-orchestrator/kici.db /var/backups/kici-before-upgrade.db \
         && cd /debs && apt-get install -y -qq ./kici-orchestrator_*-2_amd64.deb ./kici-agent_*-2_amd64.deb ./kici_*-2_amd64.deb",
    );
    // The restarted orchestrator answers once it listens; until then its section says why not.
    let status = host.sh(
        "for _ in $(seq 50); do kici-admin orchestrator status > /tmp/status || true; grep -q '^Mode:' /tmp/status && break; sleep 0.2; done; cat /tmp/status",
    );
    assert!(status.contains("Version:  0.1.0-2 (package)"), "{status}");
    assert!(
        status.contains("\n--- KiCI orchestrator ---\nMode:     independent, leader of 1 instance\n"),
        "{status}"
    );
    let upgraded_pids = pids();
    for (old, new) in before.split(' ').zip(upgraded_pids.split(' ')) {
        assert!(new != old && new != "0", "{before} -> {upgraded_pids}");
    }
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
    for (old, new) in upgraded_pids.split(' ').zip(pids().split(' ')) {
        assert!(new != old && new != "0", "{upgraded_pids} -> {new}");
    }
    let status = host.sh("kici-admin orchestrator status && kici-admin agent status");
    assert!(status.contains("Version:  0.1.0-1 (package)"), "{status}");
    assert!(!status.contains("0.1.0-2"), "{status}");
    host.sh("cd /root/app && git commit -q --allow-empty -m once-more && git push -q origin HEAD:main");
    let back = runs_and_logs(&host, 3);
    assert_eq!(back.len(), 3, "{back:?}");
    assert_eq!(back[1..], upgraded[..], "every run and log, after the rollback");
    assert!(back[0].0.contains("success"), "{back:?}");
}

/// The `NAME=value` lines of an environment file.
fn env_lines(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l.split_once('=').unwrap();
            (name.to_string(), value.to_string())
        })
        .collect()
}

#[tokio::test]
async fn the_several_hosts_quickstart_runs_on_either_orchestrator_and_survives_the_loss_of_one() {
    let (Some(postgres), Some(s3)) = (
        test_service("KICI_TEST_POSTGRES_URL", "KICI_TEST_REQUIRE_POSTGRES"),
        test_service("KICI_TEST_S3_ENDPOINT", "KICI_TEST_REQUIRE_S3"),
    ) else {
        return;
    };
    let quickstart = repository().join("examples/quickstart/several-hosts");
    let dir = tempfile::tempdir().unwrap();

    // The quickstart's files, with this machine's database, bucket, key and agent binary.
    let bucket = format!("kici-quickstart-{}", random_id().replace(['-', '_'], ""));
    let created = reqwest::Client::new()
        .put(format!("{s3}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    let scalers = dir.path().join("scalers.yaml");
    let yaml = std::fs::read_to_string(quickstart.join("scalers.yaml")).unwrap();
    assert!(yaml.contains("binaryPath: /usr/bin/kici-agent"), "{yaml}");
    std::fs::write(
        &scalers,
        yaml.replace("/usr/bin/kici-agent", &binary("kici-agent").display().to_string()),
    )
    .unwrap();
    let key = kici_engine::hash::sha256_hex(random_id().as_bytes());
    let mut env = Vec::new();
    for (name, value) in env_lines(&quickstart.join("orchestrator.env")) {
        let value = match name.as_str() {
            "KICI_DATABASE_URL" => fresh_postgres_database(&postgres),
            "KICI_STORAGE_ENDPOINT" => s3.clone(),
            "KICI_STORAGE_BUCKET" => bucket.clone(),
            "KICI_SECRET_KEY" => key.clone(),
            "KICI_BOOTSTRAP_ADMIN_TOKEN" => kici_testkit::ADMIN_TOKEN.to_string(),
            "KICI_SCALER_CONFIG_PATH" => scalers.display().to_string(),
            _ => value,
        };
        env.push((name, value));
    }
    let settings: Vec<&str> = env.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        settings,
        [
            "KICI_DATABASE_URL",
            "KICI_STORAGE_TYPE",
            "KICI_STORAGE_ENDPOINT",
            "KICI_STORAGE_BUCKET",
            "KICI_STORAGE_REGION",
            "KICI_STORAGE_FORCE_PATH_STYLE",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "KICI_BOOTSTRAP_ADMIN_TOKEN",
            "KICI_SECRET_KEY",
            "KICI_SCALER_CONFIG_PATH",
        ],
        "each setting of orchestrator.env is one this test gives a value or keeps"
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();

    // Host A and host B.
    let mut stack = Stack::start_with(&env).await;
    let peer = stack.start_peer("host-b");
    let health = stack.get("/api/v1/admin/cluster/health").await;
    assert_eq!(health["instances"].as_array().map(Vec::len), Some(2), "{health:#}");

    // A push to host A runs on an agent its scaler starts; its log is in the bucket.
    let repo = Repo::from_fixture(stack.dir.path(), "tests/e2e-repo");
    repo.write(
        ".kici/workflows/quickstart.ts",
        "import { workflow, job, step, push } from '@kici-dev/sdk';\n\
         export default workflow('quickstart', {\n\
           on: push({ branches: 'quickstart' }),\n\
           jobs: [job('greet', { runsOn: 'linux', steps: [step('hello', async ({ $ }) => { await $`echo hello from a scaled agent`; })] })],\n\
         });\n",
    );
    repo.compile();
    repo.commit_and_push("the quickstart workflow");
    stack.add_local_source("app", &repo).await;
    let first = stack.push_and_wait("app", &repo, "quickstart").await;
    assert_eq!(first.run.status, RunStatus::Success, "{first:#?}");
    let agent = first.jobs[0].agent_id.clone().unwrap_or_default();
    assert!(agent.starts_with("scaler-bare-metal-"), "{agent}");
    assert!(
        stack
            .log_text(&first.run.run_id)
            .await
            .contains("hello from a scaled agent"),
        "{}",
        stack.log_text(&first.run.run_id).await
    );

    // Host A dies: host B leads, takes the next push, and still has the first run and its log.
    let mut host_a = std::mem::replace(&mut stack.orchestrator, peer);
    host_a.kill();
    stack
        .wait_for("host B to lead", || async {
            (stack.get("/api/v1/admin/cluster/health").await["role"] == "leader").then_some(())
        })
        .await;
    repo.commit_and_push("again");
    let second = stack.push_and_wait("app", &repo, "quickstart").await;
    assert_eq!(second.run.status, RunStatus::Success, "{second:#?}");
    assert_ne!(second.jobs[0].agent_id.as_deref(), Some(agent.as_str()));
    assert_eq!(stack.detail(&first.run.run_id).await.run.status, RunStatus::Success);
    assert!(
        stack
            .log_text(&first.run.run_id)
            .await
            .contains("hello from a scaled agent")
    );
    assert!(
        stack
            .log_text(&second.run.run_id)
            .await
            .contains("hello from a scaled agent")
    );
}

/// A compose project, taken down with its volume when dropped.
struct ComposeProject {
    compose: String,
    name: String,
    dir: PathBuf,
}

impl Drop for ComposeProject {
    fn drop(&mut self) {
        let _ = Command::new(&self.compose)
            .args(["-p", &self.name, "down", "-v"])
            .current_dir(&self.dir)
            .output();
    }
}

#[test]
fn the_containers_quickstart_comes_up_with_compose_and_runs_a_push() {
    if !ready("the containers quickstart test") {
        return;
    }
    let Some(compose) = test_service("KICI_TEST_PODMAN_COMPOSE", "KICI_TEST_REQUIRE_PODMAN") else {
        return;
    };
    build_stage("orchestrator", "localhost/kici-orchestrator:test");
    build_stage("agent", "localhost/kici-agent:test");
    let quickstart = repository().join("examples/quickstart/containers");
    let dir = tempfile::tempdir().unwrap();
    let git_dir = dir.path().join("git");
    let git = git_dir.display().to_string();
    let work = dir.path().join("compose");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    // The agent fetches the job's commit from the orchestrator: it mounts nothing.
    let compose_file = std::fs::read_to_string(quickstart.join("compose.yaml")).unwrap();
    let agent = &compose_file[compose_file.find("\n  agent:\n").unwrap()..compose_file.find("\nvolumes:").unwrap()];
    assert!(!agent.contains("volumes"), "{agent}");
    for file in ["compose.yaml", "gitconfig"] {
        let text = std::fs::read_to_string(quickstart.join(file)).unwrap();
        assert!(text.contains("/srv/git"), "{file}");
        std::fs::write(work.join(file), text.replace("/srv/git", &git)).unwrap();
    }
    let project = ComposeProject {
        compose: compose.clone(),
        name: format!("kici-quickstart-{}", std::process::id()),
        dir: work.clone(),
    };
    let port = free_port();
    let script = sh_blocks(&quickstart.join("README.md"))
        .replace("/srv/git", &git)
        .replace("sudo ", "")
        .replace("~/app", "$HOME/app")
        .replace("127.0.0.1:4000", &format!("127.0.0.1:{port}"))
        .replace("podman-compose", &format!("{compose} -p {}", project.name));
    let url = format!("http://127.0.0.1:{port}");
    let binaries = binary("kici").parent().unwrap().display().to_string();
    let path = format!("{binaries}:{}", std::env::var("PATH").unwrap_or_default());
    let (code, output) = kici_testkit::run_to_end(
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(&work)
            .env("HOME", &home)
            .env("PATH", &path)
            .env("KICI_PORT", port.to_string())
            .env("KICI_IMAGE_TAG", "test")
            .env("KICI_ADMIN_URL", &url)
            .env("KICI_URL", &url)
            .env("GIT_AUTHOR_NAME", "ops")
            .env("GIT_AUTHOR_EMAIL", "ops@example.com")
            .env("GIT_COMMITTER_NAME", "ops")
            .env("GIT_COMMITTER_EMAIL", "ops@example.com"),
    );
    assert_eq!(code, 0, "{script}\n{output}");
    let env = std::fs::read_to_string(work.join(".env")).unwrap();
    let token = env.lines().find_map(|l| l.strip_prefix("KICI_ADMIN_TOKEN=")).unwrap();
    let kici = |args: &[&str]| {
        let (code, output) = kici_testkit::run_to_end(
            Command::new(binary("kici"))
                .args(args)
                .env("KICI_URL", &url)
                .env("KICI_TOKEN", token),
        );
        assert_eq!(code, 0, "kici {args:?}: {output}");
        output
    };
    let mut runs = String::new();
    for _ in 0..150 {
        runs = kici(&["runs", "list"]);
        if runs.contains("success") || runs.contains("failed") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let id = runs
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_default();
    let log = kici(&["runs", "logs", id]);
    assert!(
        runs.contains("success") && log.contains("Hello, World!"),
        "{runs}\n{log}\n{output}"
    );
    drop(project);
}
