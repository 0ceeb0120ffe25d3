//! Auto-scalers end to end: the orchestrator starts real agents for queued jobs (bare-metal:
//! local processes), caps them, and surfaces a failed spawn everywhere an operator looks —
//! the run timeline, the job's `provisioning.jsonl`, the job error and run failure reason after
//! the queue timeout, the CLIs, `explain` and `diagnose`.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use kici_engine::status::{JobStatus, RunStatus};
use kici_testkit::{Repo, Stack, binary};
use serde_json::Value;

const FIXTURE: &str = "tests/e2e-repo";

/// A `scalers.yaml` with one bare-metal scaler `metal` serving label `scaled`.
fn bare_metal_config(binary_path: &Path, extra: &str) -> String {
    format!(
        "version: 1\n{extra}scalers:\n  - name: metal\n    type: bare-metal\n    maxAgents: 4\n    labelSets:\n      - labels: [scaled]\n        binaryPath: {}\n",
        binary_path.display()
    )
}

/// Writes `yaml` to a fresh directory and starts an orchestrator reading it (no static agent).
async fn stack_with_scalers(yaml: &str, env: &[(&str, &str)]) -> (Stack, Repo, PathBuf) {
    let config_dir = tempfile::Builder::new()
        .prefix("kici-scalers-")
        .tempdir()
        .unwrap()
        .keep();
    let path = config_dir.join("scalers.yaml");
    std::fs::write(&path, yaml).unwrap();
    let path_text = path.display().to_string();
    let mut vars = vec![("KICI_SCALER_CONFIG_PATH", path_text.as_str())];
    vars.extend_from_slice(env);
    let stack = Stack::start_with(&vars).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    (stack, repo, path)
}

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A stand-in agent binary that records its environment in a file, then sleeps `seconds`
/// without registering: the script and the file.
fn env_recording_agent(dir: &Path, seconds: u32) -> (PathBuf, PathBuf) {
    let env_file = dir.join("env");
    let script = write_script(
        dir,
        "env-agent",
        &format!("env > {}\nexec sleep {seconds}\n", env_file.display()),
    );
    (script, env_file)
}

/// The environment an [`env_recording_agent`] was spawned with, once it wrote it.
async fn spawned_env(stack: &Stack, env_file: &Path) -> String {
    stack
        .wait_for("the spawned agent's environment", || async {
            std::fs::read_to_string(env_file)
                .ok()
                .filter(|t| t.contains("KICI_AGENT_ID="))
        })
        .await
}

async fn events(stack: &Stack, run_id: &str) -> Vec<Value> {
    stack.get(&format!("/api/v1/runs/{run_id}/events")).await["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_bare_metal_scaler_starts_an_agent_for_a_queued_job_which_exits_after_it() {
    let (stack, repo, _) = stack_with_scalers(&bare_metal_config(&binary("kici-agent"), ""), &[]).await;
    let detail = stack.push_and_wait("app", &repo, "scaled").await;
    assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
    let agent_id = detail.jobs[0].agent_id.clone().expect("the job ran on an agent");
    assert!(agent_id.starts_with("scaler-bare-metal-"), "{agent_id}");
    let logs = stack.logs(&detail.run.run_id, None).await;
    assert!(
        logs.steps
            .iter()
            .any(|s| s.lines.iter().any(|l| l.line == "hello from a spawned agent")),
        "{logs:#?}"
    );
    // The agent registered with its scaler's automatic labels and exits after its one job.
    stack
        .wait_for("the spawned agent to exit", || async {
            stack
                .orchestrator
                .log_text()
                .lines()
                .any(|l| {
                    l.contains("scaler agent exited") && l.contains(agent_id.as_str()) && l.contains("exit code 0")
                })
                .then_some(())
        })
        .await;
    let agents = stack.get("/api/v1/admin/agents").await;
    let agent = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agentId"] == agent_id.as_str())
        .cloned()
        .expect("the spawned agent is recorded");
    let labels: Vec<&str> = agent["labels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for label in ["scaled", "kici:agent:bare-metal", "kici:scaler:metal", "kici:os:linux"] {
        assert!(labels.contains(&label), "{label} missing from {labels:?}");
    }
    let milestones: Vec<(String, String)> = events(&stack, &detail.run.run_id)
        .await
        .iter()
        .map(|e| {
            (
                e["eventType"].as_str().unwrap().to_string(),
                e["metadata"]["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(milestones.len(), 3, "{milestones:?}");
    assert_eq!(
        milestones[0],
        ("scaler.provisioning".into(), "spawning agent process".into())
    );
    assert_eq!(milestones[1].0, "scaler.ready");
    assert!(
        milestones[1].1.starts_with("agent process started (PID "),
        "{milestones:?}"
    );
    assert_eq!(
        milestones[2],
        ("agent.connecting".into(), "waiting for agent WS registration".into())
    );
}

/// The run, once its job expired in the queue after a failed spawn, and every view of it.
struct FailedSpawn {
    run_id: String,
    job_id: String,
    error: String,
}

async fn failed_spawn(stack: &Stack, repo: &Repo) -> FailedSpawn {
    let detail = stack.push_and_wait("app", repo, "scaled").await;
    assert_eq!(detail.run.status, RunStatus::Failed, "{detail:#?}");
    let job = &detail.jobs[0];
    assert_eq!(job.status, JobStatus::TimedOutStale, "{job:#?}");
    let error = job.error_message.clone().expect("the job has the provisioning error");
    assert_eq!(detail.run.failure_reason.as_deref(), Some(error.as_str()));
    FailedSpawn {
        run_id: detail.run.run_id.to_string(),
        job_id: job.job_id.to_string(),
        error,
    }
}

/// Every place the page says a provisioning error must show.
async fn check_surfaces(stack: &Stack, failed: &FailedSpawn) {
    let timeline = events(stack, &failed.run_id).await;
    let provisioning_failed = timeline
        .iter()
        .find(|e| e["eventType"] == "scaler.failed")
        .expect("a scaler.failed event");
    assert_eq!(provisioning_failed["title"], "Provisioning failed");
    assert_eq!(provisioning_failed["metadata"]["detail"], failed.error.as_str());
    assert_eq!(provisioning_failed["metadata"]["category"], "scaler");
    let provisioning = stack
        .get(&format!(
            "/api/v1/runs/{}/jobs/{}/provisioning",
            failed.run_id, failed.job_id
        ))
        .await;
    let last = provisioning["lines"].as_array().unwrap().last().cloned().unwrap();
    assert_eq!(last["eventType"], "scaler.failed");
    assert_eq!(last["phase"], "provisioning");
    assert_eq!(last["message"], failed.error.as_str());
    let file = stack
        .data_dir()
        .join("executions")
        .join(&failed.run_id)
        .join("jobs")
        .join(&failed.job_id)
        .join("provisioning.jsonl");
    let text = std::fs::read_to_string(&file).expect("provisioning.jsonl exists");
    assert!(text.contains("\"eventType\":\"scaler.failed\""), "{text}");
    let cwd = stack.dir.path();
    let first_line = failed.error.lines().next().unwrap();
    for (binary, args) in [
        ("kici-admin", vec!["runs", "show", failed.run_id.as_str()]),
        ("kici", vec!["runs", "show", failed.run_id.as_str()]),
        ("kici-admin", vec!["explain", failed.run_id.as_str()]),
    ] {
        let output = stack.cli(binary, &args, cwd);
        output.expect_code(0);
        assert!(
            output.stdout.contains(first_line),
            "{binary} {args:?}:\n{}",
            output.stdout
        );
    }
    let diagnose = stack.cli("kici-admin", &["diagnose", "--json"], cwd);
    let report: Value = serde_json::from_str(&diagnose.stdout).expect("diagnose --json");
    let row = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "scaler:metal")
        .cloned()
        .expect("a scaler:metal row");
    assert_eq!(row["status"], "fail", "{row}");
    // One failure, or more when a slow machine let the job outlive the retry delay.
    let failures = row["details"]["boundCount"].as_u64().unwrap();
    assert!(failures >= 1, "{row}");
    let expected = format!("{failures} spawn failures in last 5m ({failures} bound, 0 warm-pool; last: ");
    assert!(row["message"].as_str().unwrap().starts_with(&expected), "{row}");
    assert_eq!(row["details"]["lastError"], failed.error.as_str());
}

#[tokio::test]
async fn a_missing_binary_surfaces_as_the_jobs_error_and_the_runs_failure_reason() {
    let missing = PathBuf::from("/nonexistent/kici-agent");
    let (stack, repo, _) =
        stack_with_scalers(&bare_metal_config(&missing, ""), &[("KICI_QUEUE_TIMEOUT_MS", "3000")]).await;
    let failed = failed_spawn(&stack, &repo).await;
    assert_eq!(
        failed.error,
        "agent process error: spawn /nonexistent/kici-agent ENOENT (No such file or directory; hint: binaryPath of scaler \"metal\" label set [0] does not exist; point it at the kici-agent binary)"
    );
    check_surfaces(&stack, &failed).await;
    let log = stack.orchestrator.log_text();
    assert!(
        log.lines().any(|l| l.contains("Scaler spawn failed")
            && l.contains("bare-metal")
            && l.contains(&failed.run_id)
            && l.contains(&failed.job_id)),
        "{log}"
    );
}

#[tokio::test]
async fn an_agent_that_exits_before_registering_leaves_exactly_its_last_fifty_lines() {
    let scripts = tempfile::tempdir().unwrap();
    let script = write_script(
        scripts.path(),
        "noisy-agent",
        "i=1\nwhile [ $i -le 60 ]; do echo \"noisy line $i\"; i=$((i+1)); done\nexit 1\n",
    );
    let (stack, repo, _) =
        stack_with_scalers(&bare_metal_config(&script, ""), &[("KICI_QUEUE_TIMEOUT_MS", "3000")]).await;
    let failed = failed_spawn(&stack, &repo).await;
    let expected: Vec<String> = (11..=60).map(|i| format!("noisy line {i}")).collect();
    assert_eq!(
        failed.error,
        format!(
            "agent exited before registering (exit code 1)\n--- captured output (last 50 lines) ---\n{}",
            expected.join("\n")
        )
    );
    check_surfaces(&stack, &failed).await;
    // The whole output is in the orchestrator's log, tagged with the agent.
    let log = stack.orchestrator.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("noisy line 1\"") && l.contains("scaler-bare-metal-")),
        "{log}"
    );
}

#[tokio::test]
async fn global_max_agents_caps_spawned_agents_and_every_job_still_runs() {
    let scripts = tempfile::tempdir().unwrap();
    let ledger = scripts.path().join("ledger");
    // A wrapper that records when each agent starts and ends.
    let wrapper = write_script(
        scripts.path(),
        "counting-agent",
        &format!(
            "echo start >> {ledger}\n{agent}\nstatus=$?\necho end >> {ledger}\nexit $status\n",
            ledger = ledger.display(),
            agent = binary("kici-agent").display()
        ),
    );
    let (stack, repo, _) = stack_with_scalers(&bare_metal_config(&wrapper, "globalMaxAgents: 2\n"), &[]).await;
    let detail = stack.push_and_wait("app", &repo, "scaled-five").await;
    assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
    assert_eq!(detail.jobs.len(), 5);
    let agents: std::collections::BTreeSet<&str> = detail.jobs.iter().filter_map(|j| j.agent_id.as_deref()).collect();
    assert_eq!(agents.len(), 5, "each job ran on its own single-use agent: {agents:?}");
    let text = std::fs::read_to_string(&ledger).unwrap();
    let mut alive = 0i32;
    let mut most = 0i32;
    for line in text.lines() {
        alive += if line == "start" { 1 } else { -1 };
        most = most.max(alive);
    }
    assert_eq!(most, 2, "at most two agents at a time, and two at some point:\n{text}");
}

#[tokio::test]
async fn a_reload_with_an_invalid_file_keeps_the_running_scalers() {
    let agent = binary("kici-agent");
    let (stack, repo, path) = stack_with_scalers(&bare_metal_config(&agent, ""), &[]).await;
    std::fs::write(
        &path,
        "version: 1\nscalers:\n  - name: metal\n    type: bare-metal\n    maxAgents: 1\n    labelSets:\n      - labels: [kici:special]\n        binaryPath: /x\n",
    )
    .unwrap();
    stack.orchestrator.signal(libc::SIGHUP);
    stack
        .wait_for("the reload to be refused", || async {
            let log = stack.orchestrator.log_text();
            log.lines()
                .any(|l| {
                    l.contains("Config reload failed, keeping current config")
                        && l.contains("Labels with 'kici:' prefix are reserved and cannot be used in scaler labelSets")
                })
                .then_some(())
        })
        .await;
    // The same refusal through the API, with the cause.
    let refused = stack.cli("kici-admin", &["config", "reload"], stack.dir.path());
    refused.expect_code(1);
    assert!(
        refused.stderr.contains("Config reload failed, keeping current config")
            && refused
                .stderr
                .contains("Labels with 'kici:' prefix are reserved and cannot be used in scaler labelSets"),
        "{}",
        refused.stderr
    );
    let detail = stack.push_and_wait("app", &repo, "scaled").await;
    assert_eq!(
        detail.run.status,
        RunStatus::Success,
        "the old config still spawns: {detail:#?}"
    );
    // A valid file is applied, by SIGHUP as by the API.
    std::fs::write(&path, bare_metal_config(&agent, "globalMaxAgents: 3\n")).unwrap();
    stack.orchestrator.signal(libc::SIGHUP);
    stack
        .wait_for("the reload to be applied", || async {
            let log = stack.orchestrator.log_text();
            log.lines()
                .any(|l| l.contains("scaler config reloaded") && l.contains("\"globalMaxAgents\":3"))
                .then_some(())
        })
        .await;
    let applied = stack.cli("kici-admin", &["config", "reload"], stack.dir.path());
    applied.expect_code(0);
    assert_eq!(
        applied.stdout,
        "Scaler configuration reloaded (globalMaxAgents 3).\n  added:   -\n  removed: -\n  changed: -\n"
    );
}

#[test]
fn an_invalid_scaler_config_stops_the_orchestrator_at_start_with_the_documented_message() {
    let cases = [
        (
            "version: 1\nscalers:\n  - name: c\n    type: container\n    maxAgents: 1\n    labelSets:\n      - labels: [linux]\n",
            "Container scaler \"c\" label set [0] requires an 'image' field",
        ),
        (
            "version: 1\nscalers:\n  - name: m\n    type: bare-metal\n    maxAgents: 1\n    labelSets:\n      - labels: [linux]\n",
            "Bare-metal scaler \"m\" label set [0] requires a 'binaryPath' field",
        ),
        (
            "version: 1\nscalers:\n  - name: m\n    type: bare-metal\n    maxAgents: 1\n    labelSets:\n      - labels: [kici:gpu]\n        binaryPath: /x\n",
            "Labels with 'kici:' prefix are reserved and cannot be used in scaler labelSets",
        ),
        (
            "version: 1\nscalers:\n  - name: f\n    type: firecracker\n    maxAgents: 1\n    jailerPath: /j\n    kernelPath: /k\n    uid: 1\n    gid: 1\n    labelSets:\n      - labels: [vm]\n        rootfsPath: /r\n",
            "Firecracker scaler \"f\" requires a 'firecrackerPath' field",
        ),
        (
            "version: 1\nscalers:\n  - name: a\n    type: bare-metal\n    maxAgents: 1\n    labelSets:\n      - labels: [linux, container]\n        binaryPath: /x\n  - name: b\n    type: bare-metal\n    maxAgents: 1\n    labelSets:\n      - labels: [container, linux]\n        binaryPath: /y\n",
            "Label set [container,linux] overlaps between scalers \"a\" and \"b\"",
        ),
    ];
    for (yaml, message) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scalers.yaml");
        std::fs::write(&path, yaml).unwrap();
        let output = std::process::Command::new(binary("kici-orchestrator"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("KICI_PORT", "0")
            .env("KICI_DATA_DIR", dir.path().join("data"))
            .env("KICI_SCALER_CONFIG_PATH", &path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{message}: {stderr}");
        assert!(stderr.contains(message), "expected `{message}` in:\n{stderr}");
    }
}

/// A Firecracker scaler driving the test double: the kernel file says how the "boot" goes,
/// the rootfs file is the guest's init (here: the agent).
fn firecracker_config(dir: &Path, kernel: &str) -> String {
    firecracker_config_running(dir, kernel, &binary("kici-agent"))
}

/// [`firecracker_config`] whose guest's init runs `agent`.
fn firecracker_config_running(dir: &Path, kernel: &str, agent: &Path) -> String {
    let kernel_path = dir.join("vmlinux");
    std::fs::write(&kernel_path, kernel).unwrap();
    let rootfs = write_script(dir, "rootfs.ext4", &format!("exec {}\n", agent.display()));
    format!(
        "version: 1\nscalers:\n  - name: vms\n    type: firecracker\n    maxAgents: 2\n    firecrackerPath: {}\n    jailerPath: /usr/bin/jailer\n    kernelPath: {}\n    uid: 0\n    gid: 0\n    labelSets:\n      - labels: [scaled]\n        rootfsPath: {}\n",
        binary("firecracker-double").display(),
        kernel_path.display(),
        rootfs.display()
    )
}

/// An agent that cannot see `hidden`: it runs in a mount namespace of its own where that
/// directory is an empty tmpfs, as an agent in a microVM or on another host has no view of the
/// orchestrator's repositories.
fn agent_blind_to(dir: &Path, hidden: &Path) -> PathBuf {
    let wrapper = format!(
        "exec unshare --mount sh -c 'mount -t tmpfs kici-hidden {} && exec \"$0\"' {}\n",
        hidden.display(),
        binary("kici-agent").display()
    );
    write_script(dir, "blind-agent", &wrapper)
}

/// A run of a local source on the agent `config` starts (given a directory for its files and
/// an agent that cannot see the repository), which fetches the repository from the
/// orchestrator.
async fn run_on_blind_agent(config: impl FnOnce(&Path, &Path) -> String) -> kici_engine::api::RunDetail {
    let files = tempfile::tempdir().unwrap();
    let repos = tempfile::tempdir().unwrap();
    let agent = agent_blind_to(files.path(), repos.path());
    let (stack, _, _) = stack_with_scalers(&config(files.path(), &agent), &[]).await;
    let repo = Repo::from_fixture(repos.path(), FIXTURE);
    // The blindfold holds: behind it, the repository is not there.
    let hidden = std::process::Command::new("unshare")
        .args(["--mount", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs kici-hidden {} && test ! -e {}",
            repos.path().display(),
            repo.origin().display()
        ))
        .status()
        .unwrap();
    assert!(hidden.success(), "a tmpfs mount hides {}", repos.path().display());
    stack.add_local_source("blind", &repo).await;
    stack.push_and_wait("blind", &repo, "scaled").await
}

#[tokio::test]
async fn a_local_source_runs_on_a_bare_metal_agent_that_cannot_see_its_path() {
    let detail = run_on_blind_agent(|_, agent| bare_metal_config(agent, "")).await;
    assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
    assert!(
        detail.jobs[0]
            .agent_id
            .as_ref()
            .unwrap()
            .starts_with("scaler-bare-metal-")
    );
}

#[tokio::test]
async fn a_local_source_runs_in_a_microvm_that_cannot_see_its_path() {
    let detail =
        run_on_blind_agent(|files, agent| firecracker_config_running(files, "vmlinux (test double)\n", agent)).await;
    assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
    assert!(
        detail.jobs[0]
            .agent_id
            .as_ref()
            .unwrap()
            .starts_with("scaler-firecracker-")
    );
}

#[tokio::test]
async fn a_firecracker_scaler_boots_a_microvm_whose_agent_runs_the_job() {
    let images = tempfile::tempdir().unwrap();
    let (stack, repo, _) = stack_with_scalers(&firecracker_config(images.path(), "vmlinux (test double)\n"), &[]).await;
    let detail = stack.push_and_wait("app", &repo, "scaled").await;
    assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
    let agent_id = detail.jobs[0].agent_id.clone().unwrap();
    assert!(agent_id.starts_with("scaler-firecracker-"), "{agent_id}");
    let details: Vec<String> = events(&stack, &detail.run.run_id)
        .await
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["eventType"].as_str().unwrap(),
                e["metadata"]["detail"].as_str().unwrap()
            )
        })
        .collect();
    let tap = format!("kici-{}", &agent_id[agent_id.len() - 8..]);
    assert_eq!(
        details,
        [
            "scaler.provisioning preparing rootfs and kernel".to_string(),
            format!("scaler.network configuring TAP device {tap}"),
            "scaler.network allocating IP 10.0.0.2".to_string(),
            "scaler.provisioning booting microVM".to_string(),
            "scaler.ready microVM booted".to_string(),
            "agent.connecting waiting for agent WS registration from VM".to_string(),
        ]
    );
    // The VM powers off after its one job; its TAP device goes with it.
    stack
        .wait_for("the microVM to be torn down", || async {
            let gone = !Path::new("/sys/class/net").join(&tap).exists();
            let exited = stack
                .orchestrator
                .log_text()
                .lines()
                .any(|l| l.contains("scaler agent exited") && l.contains(agent_id.as_str()));
            (gone && exited).then_some(())
        })
        .await;
}

#[tokio::test]
async fn a_kernel_panic_at_boot_reaches_the_runs_failure_reason_with_the_console_tail() {
    let images = tempfile::tempdir().unwrap();
    let (stack, repo, _) = stack_with_scalers(
        &firecracker_config(
            images.path(),
            "KICI_DOUBLE_PANIC=VFS: Unable to mount root fs on unknown-block(0,0)\n",
        ),
        &[("KICI_QUEUE_TIMEOUT_MS", "3000")],
    )
    .await;
    let failed = failed_spawn(&stack, &repo).await;
    assert!(
        failed.error.starts_with(
            "agent exited before registering (exit code 1; kernel panic: VFS: Unable to mount root fs on unknown-block(0,0))\n--- captured output (last 50 lines) ---\n"
        ),
        "{}",
        failed.error
    );
    assert!(
        failed
            .error
            .contains("Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"),
        "{}",
        failed.error
    );
    let timeline = events(&stack, &failed.run_id).await;
    assert!(
        timeline.iter().any(|e| e["title"] == "Provisioning failed"),
        "{timeline:?}"
    );
}

/// The Podman API socket, or `None` (the test is skipped) when Podman is not set up and
/// `KICI_TEST_REQUIRE_PODMAN` is not `1`. `scripts/test.sh` sets it up and requires it.
fn podman_socket() -> Option<PathBuf> {
    let socket = PathBuf::from("/run/podman/podman.sock");
    if socket.exists() {
        return Some(socket);
    }
    assert_ne!(
        std::env::var("KICI_TEST_REQUIRE_PODMAN").as_deref(),
        Ok("1"),
        "Podman's API socket {} is missing but KICI_TEST_REQUIRE_PODMAN=1 (hint: run scripts/agent-image.sh)",
        socket.display()
    );
    eprintln!("note: no Podman API socket; container scaler test skipped (run scripts/agent-image.sh)");
    None
}

/// A container scaler on Podman; the agents share the host's network (the orchestrator
/// listens on 127.0.0.1) and nothing of its filesystem: they fetch the local source's
/// repository from the orchestrator.
fn container_config(socket: &Path, image: &str, pull_policy: &str) -> String {
    format!(
        "version: 1\nscalers:\n  - name: pods\n    type: container\n    maxAgents: 2\n    socketPath: {}\n    networkIsolation: false\n    labelSets:\n      - labels: [scaled]\n        image: {image}\n        imagePullPolicy: {pull_policy}\n",
        socket.display()
    )
}

#[tokio::test]
async fn a_container_scaler_runs_the_job_in_a_podman_container_and_removes_it() {
    let Some(socket) = podman_socket() else { return };
    let (stack, repo, _) =
        stack_with_scalers(&container_config(&socket, "localhost/kici-agent:dev", "Never"), &[]).await;
    let detail = stack.push_and_wait("app", &repo, "scaled").await;
    assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
    let agent_id = detail.jobs[0].agent_id.clone().unwrap();
    assert!(agent_id.starts_with("scaler-container-"), "{agent_id}");
    let kinds: Vec<String> = events(&stack, &detail.run.run_id)
        .await
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["eventType"].as_str().unwrap(),
                e["metadata"]["detail"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(kinds[0], "scaler.provisioning creating container", "{kinds:?}");
    assert!(kinds[1].starts_with("scaler.ready container started ("), "{kinds:?}");
    assert_eq!(
        kinds[2], "agent.connecting waiting for agent WS registration",
        "{kinds:?}"
    );
    // Gone after the job: no container with its name is left.
    stack
        .wait_for("the agent container to be removed", || async {
            let output = std::process::Command::new("podman")
                .args([
                    "ps",
                    "-a",
                    "--filter",
                    &format!("name={agent_id}"),
                    "--format",
                    "{{.Names}}",
                ])
                .output()
                .ok()?;
            String::from_utf8_lossy(&output.stdout).trim().is_empty().then_some(())
        })
        .await;
}

/// The README's `scalers.yaml` as written (the agent binary at this build's path) runs a local
/// source added as the README adds one: a job on its bare-metal scaler and one in a container
/// of its Podman scaler, which has no volume and fetches the repository from the orchestrator.
#[tokio::test]
async fn the_readmes_scaler_examples_run_a_local_source() {
    let Some(_) = podman_socket() else { return };
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let section = &readme[readme.find("## Auto-scalers").expect("the README's scaler section")..];
    let start = section.find("```yaml\n").expect("its scalers.yaml") + "```yaml\n".len();
    let yaml = &section[start..start + section[start..].find("```").unwrap()];
    assert!(!yaml.contains("volumes"), "{yaml}");
    let yaml = yaml.replace("/usr/local/bin/kici-agent", &binary("kici-agent").display().to_string());
    let (stack, repo, _) = stack_with_scalers(&yaml, &[]).await;
    repo.write(
        ".kici/workflows/readme-scalers.ts",
        "import { workflow, job, step, push } from '@kici-dev/sdk';\n\
         export default workflow('readme-scalers', {\n\
           on: push({ branches: 'readme-scalers' }),\n\
           jobs: [\n\
             job('metal', { runsOn: ['linux', 'node-20'], steps: [step('hello', async ({ $ }) => { await $`echo on metal`; })] }),\n\
             job('pod', { runsOn: 'docker', steps: [step('hello', async ({ $ }) => { await $`echo in a pod`; })] }),\n\
           ],\n\
         });\n",
    );
    repo.compile();
    repo.commit_and_push("the README's scalers");
    let detail = stack.push_and_wait("app", &repo, "readme-scalers").await;
    assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
    let mut agents: Vec<String> = detail
        .jobs
        .iter()
        .map(|j| format!("{} {}", j.job_name, j.agent_id.as_deref().unwrap_or_default()))
        .collect();
    agents.sort();
    assert!(agents[0].starts_with("metal scaler-bare-metal-"), "{agents:?}");
    assert!(agents[1].starts_with("pod scaler-container-"), "{agents:?}");
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_surfaces_the_engines_error() {
    let Some(socket) = podman_socket() else { return };
    let (stack, repo, _) = stack_with_scalers(
        &container_config(&socket, "localhost/kici-no-such-image:dev", "IfNotPresent"),
        // Room for the failed pull to be recorded before the job expires, on a loaded machine.
        &[("KICI_QUEUE_TIMEOUT_MS", "10000")],
    )
    .await;
    let detail = stack.push_and_wait("app", &repo, "scaled").await;
    assert_eq!(detail.run.status, RunStatus::Failed, "{detail:#?}");
    let error = detail.jobs[0].error_message.clone().unwrap();
    assert!(
        error.starts_with("pulling image localhost/kici-no-such-image:dev failed: "),
        "{error}"
    );
    assert_eq!(detail.run.failure_reason.as_deref(), Some(error.as_str()));
    let timeline = events(&stack, &detail.run.run_id).await;
    let details: Vec<&str> = timeline
        .iter()
        .filter_map(|e| e["metadata"]["detail"].as_str())
        .collect();
    assert_eq!(
        details[0], "pulling image localhost/kici-no-such-image:dev",
        "{details:?}"
    );
    assert!(
        timeline.iter().any(|e| e["title"] == "Provisioning failed"),
        "{timeline:?}"
    );
}

fn podman(args: &[&str]) -> String {
    let output = std::process::Command::new("podman").args(args).output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[tokio::test]
async fn orphaned_agent_containers_of_this_orchestrator_are_removed_at_start_and_no_others() {
    let Some(socket) = podman_socket() else { return };
    let (mut stack, _repo, _) =
        stack_with_scalers(&container_config(&socket, "localhost/kici-agent:dev", "Never"), &[]).await;
    let data_dir = stack.data_dir().display().to_string();
    let instance = kici_engine::hash::sha256_hex(data_dir.as_bytes())[..16].to_string();
    let suffix = kici_testkit::random_id();
    let orphan = format!("kici-orphan-{suffix}");
    let foreign = format!("kici-foreign-{suffix}");
    for (name, owner) in [(&orphan, instance.as_str()), (&foreign, "another-orchestrator")] {
        podman(&[
            "create",
            "--name",
            name,
            "--label",
            "kici-managed=true",
            "--label",
            &format!("kici-instance={owner}"),
            "localhost/kici-agent:dev",
        ]);
    }
    stack.orchestrator.kill();
    stack.start_orchestrator_again();
    stack
        .wait_for("the orphan to be removed", || async {
            podman(&[
                "ps",
                "-a",
                "--filter",
                &format!("name={orphan}"),
                "--format",
                "{{.Names}}",
            ])
            .is_empty()
            .then_some(())
        })
        .await;
    let survivor = podman(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={foreign}"),
        "--format",
        "{{.Names}}",
    ]);
    podman(&["rm", "-f", &foreign]);
    assert_eq!(survivor, foreign, "another orchestrator's container must be left alone");
    stack
        .wait_for("the clean-up to be logged", || async {
            stack
                .orchestrator
                .log_text()
                .contains("Cleaned up 1 orphaned containers")
                .then_some(())
        })
        .await;
}

/// Spawned agents the orchestrator has registered and still sees connected.
async fn connected_scaler_agents(stack: &Stack) -> Vec<String> {
    stack.get("/api/v1/admin/agents").await["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["connected"] == true)
        .filter_map(|a| a["agentId"].as_str().map(str::to_string))
        .filter(|id| id.starts_with("scaler-"))
        .collect()
}

fn warm_config(idle_seconds: u32) -> String {
    format!(
        "{}    warmPool: {{enabled: true, size: 1, idleTimeoutSeconds: {idle_seconds}}}\n",
        bare_metal_config(&binary("kici-agent"), "")
    )
}

#[tokio::test]
async fn a_warm_pool_keeps_an_agent_ready_once_a_job_asked_for_one() {
    let (stack, repo, _) = stack_with_scalers(&warm_config(60), &[]).await;
    let first = stack.push_and_wait("app", &repo, "scaled").await;
    assert_eq!(first.run.status, RunStatus::Success, "{first:#?}");
    let first_agent = first.jobs[0].agent_id.clone().unwrap();
    let warm = stack
        .wait_for("a warm agent to be ready", || async {
            connected_scaler_agents(&stack)
                .await
                .into_iter()
                .find(|id| *id != first_agent)
        })
        .await;
    let second = stack.push_and_wait("app", &repo, "scaled").await;
    assert_eq!(second.run.status, RunStatus::Success, "{second:#?}");
    assert_eq!(
        second.jobs[0].agent_id.as_deref(),
        Some(warm.as_str()),
        "the warm agent took the job"
    );
    assert!(
        events(&stack, &second.run.run_id).await.is_empty(),
        "a job on a ready warm agent waits for no provisioning"
    );
    // The pool refills after its agent was used.
    stack
        .wait_for("the warm pool to refill", || async {
            connected_scaler_agents(&stack)
                .await
                .into_iter()
                .find(|id| *id != first_agent && *id != warm)
        })
        .await;
}

#[tokio::test]
async fn an_idle_warm_agent_exits_after_the_idle_timeout_and_the_pool_waits_for_demand() {
    let (stack, repo, _) = stack_with_scalers(&warm_config(1), &[]).await;
    let first = stack.push_and_wait("app", &repo, "scaled").await;
    assert_eq!(first.run.status, RunStatus::Success, "{first:#?}");
    let unused = stack
        .wait_for("an unused agent to idle out", || async {
            let log = stack.orchestrator.log_text();
            log.lines()
                .find(|l| l.contains("spawned agent exited without a job; its warm pool is not refilled"))
                .and_then(|l| serde_json::from_str::<Value>(l).ok())
                .and_then(|entry| entry["agentId"].as_str().map(str::to_string))
        })
        .await;
    assert_ne!(first.jobs[0].agent_id.as_deref(), Some(unused.as_str()));
    // Several dispatcher passes (one a second) later, nothing was spawned to refill the pool.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let log = stack.orchestrator.log_text();
    let spawns = log
        .lines()
        .filter(|l| l.contains("\"message\":\"spawning agent\""))
        .count();
    assert_eq!(spawns, 2, "the job's agent and one warm agent, no refill:\n{log}");
}

#[tokio::test]
async fn a_spawned_agent_gets_only_the_documented_env_and_a_token_no_other_agent_may_use() {
    let scripts = tempfile::tempdir().unwrap();
    // Stays up a moment without registering.
    let (script, env_file) = env_recording_agent(scripts.path(), 3);
    let (stack, repo, _) = stack_with_scalers(
        &bare_metal_config(&script, ""),
        &[("KICI_AGENT_ENV_HTTP_PROXY", "http://proxy.internal:3128")],
    )
    .await;
    stack.push("app", &repo, "scaled").await;
    let env_text = spawned_env(&stack, &env_file).await;
    let env: std::collections::BTreeMap<&str, &str> = env_text.lines().filter_map(|l| l.split_once('=')).collect();
    let mut names: Vec<&str> = env
        .keys()
        .copied()
        .filter(|name| !["PWD", "SHLVL", "_", "OLDPWD"].contains(name))
        .collect();
    names.sort();
    let mut expected = vec![
        "HTTP_PROXY",
        "KICI_AGENT_ID",
        "KICI_AGENT_TOKEN",
        "KICI_EXECUTION_MODE",
        "KICI_LABELS",
        "KICI_ORCHESTRATOR_URL",
        "KICI_PORT",
        "KICI_SCALER_BACKEND",
        "KICI_SCALER_MANAGED",
    ];
    // The test harness starts the orchestrator with the host variables KiCI passes on only.
    for inherited in kici_engine::host_env::INHERITED {
        if std::env::var(inherited).is_ok() && !expected.contains(&inherited) {
            expected.push(inherited);
        }
    }
    expected.sort();
    assert_eq!(names, expected, "{env_text}");
    assert_eq!(env["HTTP_PROXY"], "http://proxy.internal:3128");
    assert_eq!(env["KICI_LABELS"], "scaled");
    assert_eq!(env["KICI_SCALER_MANAGED"], "1");
    assert_eq!(env["KICI_SCALER_BACKEND"], "bare-metal");
    assert!(
        !env_text.contains(kici_testkit::ADMIN_TOKEN),
        "the bootstrap admin token leaked"
    );
    // The token serves only the agent it was issued to.
    let ws = format!("ws://127.0.0.1:{}/ws", stack.orchestrator.port);
    let build = kici_engine::build_info::BuildInfo {
        sdk_version: "0.0.0".into(),
        sdk_bundle_hash: "x".into(),
        shared_version: "0.0.0".into(),
        shared_bundle_hash: "x".into(),
        engine_version: "0.0.0".into(),
        engine_bundle_hash: "x".into(),
    };
    let _intruder =
        kici_testkit::FakeAgent::connect(&ws, env["KICI_AGENT_TOKEN"], "intruder", &["scaled"], build).await;
    stack
        .wait_for("the intruder to be refused", || async {
            stack
                .orchestrator
                .log_text()
                .contains("was issued to another spawned agent and cannot register `intruder`")
                .then_some(())
        })
        .await;
}

/// A spawned agent's token serves one connection: once an agent registered with it, a second
/// connection with the same token and agent id is refused.
#[tokio::test]
async fn a_spawned_agents_token_serves_one_connection() {
    let scripts = tempfile::tempdir().unwrap();
    // Stays up without registering; the test connects in its place.
    let (script, env_file) = env_recording_agent(scripts.path(), 30);
    let (stack, repo, _) = stack_with_scalers(&bare_metal_config(&script, ""), &[]).await;
    stack.push("app", &repo, "scaled").await;
    let env_text = spawned_env(&stack, &env_file).await;
    let env: std::collections::BTreeMap<&str, &str> = env_text.lines().filter_map(|l| l.split_once('=')).collect();
    let ws = format!("ws://127.0.0.1:{}/ws", stack.orchestrator.port);
    let (token, agent_id) = (env["KICI_AGENT_TOKEN"], env["KICI_AGENT_ID"]);
    let _first = kici_testkit::FakeAgent::connect(&ws, token, agent_id, &["scaled"], kici_sdk::build_info()).await;
    stack.wait_agent_connected(agent_id).await;
    let _second = kici_testkit::FakeAgent::connect(&ws, token, agent_id, &["scaled"], kici_sdk::build_info()).await;
    stack
        .wait_for("the second connection to be refused", || async {
            stack
                .orchestrator
                .log_text()
                .contains("was used already: a spawned agent's token serves one connection")
                .then_some(())
        })
        .await;
}
