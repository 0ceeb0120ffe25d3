//! The operator tooling against a real stack: `kici-admin diagnose`, `diagnose drift` in its
//! three set-ups, `explain` on a failed run, and `debug-bundle` / `inspect-bundle` (every part,
//! no secret anywhere, the log window).

use std::io::Read;

use kici_engine::build_info::BuildInfo;
use kici_engine::status::{JobStatus, RunStatus};
use kici_testkit::{ADMIN_TOKEN, Repo, Stack};

const FIXTURE: &str = "tests/e2e-repo";

fn sdk_hash12() -> String {
    kici_sdk::sdk().hash[..12].to_string()
}

#[tokio::test]
async fn diagnose_reports_each_check_and_sets_the_exit_code() {
    let mut stack = Stack::start().await;
    let cwd = stack.dir.path().to_path_buf();
    let lonely = stack.cli("kici-admin", &["diagnose"], &cwd);
    lonely.expect_code(1);
    assert!(lonely.stdout.contains("Overall: degraded"), "{}", lonely.stdout);
    assert!(
        lonely
            .stdout
            .lines()
            .any(|l| l.starts_with("WARN") && l.contains("Agent connectivity") && l.contains("No agents connected")),
        "{}",
        lonely.stdout
    );
    stack.start_agent("agent-1", &["linux"]).await;
    let healthy = stack.cli("kici-admin", &["diagnose"], &cwd);
    healthy.expect_code(0);
    assert!(
        healthy.stdout.starts_with("Orchestrator diagnostics ("),
        "{}",
        healthy.stdout
    );
    assert!(healthy.stdout.contains("Overall: healthy"), "{}", healthy.stdout);
    for (check, message) in [
        ("Database connectivity", "Connected ("),
        ("Agent connectivity", "1 agent(s) connected"),
        ("Disk space", " free on "),
        ("Config validity", "Config valid (mode: independent)"),
    ] {
        assert!(
            healthy
                .stdout
                .lines()
                .any(|l| l.starts_with("PASS") && l.contains(check) && l.contains(message)),
            "{check}: {}",
            healthy.stdout
        );
    }
}

#[tokio::test]
async fn diagnose_drift_names_the_side_that_drifted() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    let lock = repo.work().join(".kici/kici.lock.json");
    let lock_arg = lock.display().to_string();
    let cwd = stack.dir.path().to_path_buf();
    let version = kici_sdk::sdk().version;

    let agree = stack.cli("kici-admin", &["diagnose", "drift", "--lock", &lock_arg], &cwd);
    agree.expect_code(0);
    assert!(
        agree.stdout.contains(&format!(
            "No drift: orchestrator, 1 agent(s) and the lock file use @kici-dev/sdk {version} ({}).",
            sdk_hash12()
        )),
        "{}",
        agree.stdout
    );

    let stale_lock = repo
        .read(".kici/kici.lock.json")
        .replace(kici_sdk::sdk().hash, &"e".repeat(64));
    repo.write(".kici/kici.lock.json", &stale_lock);
    let lock_drift = stack.cli("kici-admin", &["diagnose", "drift", "--lock", &lock_arg], &cwd);
    lock_drift.expect_code(1);
    assert!(lock_drift.stdout.contains(&format!("The lock file was compiled against @kici-dev/sdk {version} (eeeeeeeeeeee), the agents run {version} ({}): run 'kici compile' with a kici of the agents' build and commit the updated lock file.", sdk_hash12())), "{}", lock_drift.stdout);

    let mut old = kici_sdk::build_info();
    old.sdk_version = "0.0.9".into();
    old.sdk_bundle_hash = "f".repeat(64);
    let _old_agent = stack
        .start_fake_agent("agent-old", &["linux"], BuildInfo { ..old })
        .await;
    let agent_drift = stack.cli("kici-admin", &["diagnose", "drift"], &cwd);
    agent_drift.expect_code(1);
    assert!(agent_drift.stdout.contains(&format!("Agent agent-old runs @kici-dev/sdk 0.0.9 (ffffffffffff), the orchestrator {version} ({}): upgrade the agent's kici-agent binary (or its image) to the orchestrator's build.", sdk_hash12())), "{}", agent_drift.stdout);
}

#[tokio::test]
async fn explain_walks_a_failed_run_to_the_step_and_its_log() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    let detail = stack.push_and_wait("app", &repo, "failing").await;
    let explain = stack.cli("kici-admin", &["explain", &detail.run.run_id], stack.dir.path());
    explain.expect_code(0);
    let out = &explain.stdout;
    assert!(out.contains("Failure reason: Failed jobs: build"), "{out}");
    assert!(out.contains("Error: Step 'compile' failed (exit code 3)"), "{out}");
    assert!(out.contains("Failed step: #1 compile, exit code 3"), "{out}");
    assert!(out.contains("    compiling\n"), "{out}");
    assert!(out.contains("Next steps:"), "{out}");
}

#[tokio::test]
async fn the_debug_bundle_has_every_part_and_no_secret() {
    let canary = "canary-secret-4242424242";
    let stack = Stack::start_with(&[("KICI_METRICS_TOKEN", canary)]).await;
    let logs = stack.dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join("orchestrator-2026-11-27.log"),
        format!(
            "{{\"level\":\"error\",\"message\":\"recent\",\"token\":\"kat_{}\"}}\n",
            "a".repeat(64)
        ),
    )
    .unwrap();
    let old = logs.join("orchestrator-2026-01-01.log");
    std::fs::write(&old, "{\"level\":\"info\",\"message\":\"old\"}\n").unwrap();
    let ten_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(10 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(ten_hours_ago)
        .unwrap();
    let bundle = stack.dir.path().join("bundle.zip");
    let output = std::process::Command::new(kici_testkit::binary("kici-admin"))
        .args(["--url", &stack.url(), "debug-bundle", "-o"])
        .arg(&bundle)
        .arg("--log-dir")
        .arg(&logs)
        .env("KICI_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("KICI_SECRET_KEY", canary)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with("Collecting diagnostic data...\nDebug bundle saved to "),
        "{stdout}"
    );

    let mut zip = zip::ZipArchive::new(std::fs::File::open(&bundle).unwrap()).unwrap();
    let names: Vec<String> = zip.file_names().map(|n| n.expect("entry name").to_string()).collect();
    for part in [
        "manifest.json",
        "diagnostics/results.json",
        "config/config.json",
        "system/info.json",
        "cluster/health.json",
        "system/metrics.txt",
        "executions/recent.json",
        "logs/summary.json",
        "summary.txt",
        "logs/orchestrator-2026-11-27.log",
    ] {
        assert!(names.iter().any(|n| n == part), "missing {part} in {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.contains("2026-01-01")),
        "a log outside the window was bundled: {names:?}"
    );
    for name in &names {
        let mut text = String::new();
        zip.by_name(name).unwrap().read_to_string(&mut text).unwrap();
        for secret in [canary, ADMIN_TOKEN, &format!("kat_{}", "a".repeat(64))] {
            assert!(!text.contains(secret), "{name} contains a secret");
        }
    }
    let inspect = stack.cli(
        "kici-admin",
        &["inspect-bundle", &bundle.display().to_string()],
        stack.dir.path(),
    );
    inspect.expect_code(0);
    assert!(
        inspect
            .stdout
            .starts_with(&format!("Debug bundle summary: {}", bundle.display())),
        "{}",
        inspect.stdout
    );

    let empty = stack.dir.path().join("empty.zip");
    let mut writer = zip::ZipWriter::new(std::fs::File::create(&empty).unwrap());
    writer
        .start_file("notes.txt", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut writer, b"no manifest").unwrap();
    writer.finish().unwrap();
    let invalid = stack.cli(
        "kici-admin",
        &["inspect-bundle", &empty.display().to_string()],
        stack.dir.path(),
    );
    invalid.expect_code(1);
    assert_eq!(
        invalid.stderr.trim_end(),
        "Error: Invalid debug bundle: missing manifest.json"
    );
}

#[tokio::test]
async fn log_files_hold_the_build_info_and_the_failed_run() {
    let logs = tempfile::tempdir().unwrap();
    let dir = logs.path().display().to_string();
    let mut stack = Stack::start_with(&[("KICI_LOG_DIR", &dir)]).await;
    stack
        .start_agent_with("agent-1", &["linux"], &[("KICI_LOG_DIR", &dir)])
        .await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    let detail = stack.push_and_wait("app", &repo, "failing").await;
    let job_id = &detail.jobs[0].job_id;
    let read = |prefix: &str| -> String {
        let mut files: Vec<_> = std::fs::read_dir(logs.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with(prefix) && n.ends_with(".log"))
            .collect();
        assert_eq!(files.len(), 1, "{prefix}*.log: {files:?}");
        std::fs::read_to_string(logs.path().join(files.remove(0))).unwrap()
    };
    for (prefix, service) in [("orchestrator-", "orchestrator"), ("agent-", "agent")] {
        let text = read(prefix);
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["message"], format!("{service}.build.info"), "{text}");
        assert_eq!(first["sdkBundleHash"], kici_sdk::sdk().hash);
        assert!(
            text.lines()
                .any(|l| l.contains(detail.run.run_id.as_str()) && l.contains(job_id.as_str())),
            "{service} log has no line with the run and job ids:\n{text}"
        );
    }
}

#[tokio::test]
async fn orchestrator_metrics_pass_promtool_and_need_a_token() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    stack.push_and_wait("app", &repo, "failing").await;
    let url = format!("{}/metrics", stack.url());
    let anonymous = stack.client().get(&url).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let text = stack
        .client()
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "kici_orch_agents_active 1",
        "kici_orch_webhooks_received_total 1",
        "kici_orch_executions_total{status=\"failed\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
    }
    match kici_telemetry::metrics::promtool::check(&text) {
        Ok(checked) => println!("{checked:?}"),
        Err(complaints) => panic!("promtool check metrics failed: {complaints}"),
    }
}

#[tokio::test]
async fn runs_cancel_stops_a_running_job_on_its_agent() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    let runs = stack.push("app", &repo, "slow").await;
    let run_id = runs[0].clone();
    stack
        .wait_for("the slow step to log", || async {
            let logs = stack.logs(&run_id, Some("count")).await;
            logs.steps.iter().any(|s| !s.lines.is_empty()).then_some(())
        })
        .await;
    let cancel = stack.cli("kici-admin", &["runs", "cancel", &run_id], stack.dir.path());
    cancel.expect_code(0);
    assert_eq!(
        cancel.stdout,
        format!("Run {run_id} cancelling: 1 job(s) told to stop; see `kici-admin runs show {run_id}`\n")
    );
    let detail = stack.wait_run(&run_id).await;
    assert_eq!(detail.run.status, RunStatus::Cancelled, "{detail:#?}");
    assert_eq!(detail.run.failure_reason.as_deref(), Some("Cancelled by admin"));
    assert_eq!(detail.jobs[0].status, JobStatus::Cancelled);
    stack
        .wait_for("the agent to log the cancel", || async {
            stack.agents[0].log_text().contains("job.cancelling").then_some(())
        })
        .await;

    // The author's CLI uses the same API.
    let again = stack.cli("kici", &["runs", "cancel", &run_id], stack.dir.path());
    assert_ne!(again.code, 0);
    assert!(
        again.stderr.contains(&format!(
            "run {run_id} already finished (cancelled); there is nothing to cancel"
        )),
        "{}",
        again.stderr
    );
    let unknown = stack.cli("kici-admin", &["runs", "cancel", "no-such-run"], stack.dir.path());
    assert_ne!(unknown.code, 0);
    assert!(unknown.stderr.contains("no-such-run"), "{}", unknown.stderr);
}

/// `kici runs cancel --branch` stops every run of a branch still going; `kici runs rerun`
/// starts a finished one again.
#[tokio::test]
async fn a_branch_is_cancelled_with_kici_and_a_run_started_again() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    let run_id = stack.push("app", &repo, "slow").await[0].clone();
    stack
        .wait_for("the slow step to log", || async {
            let logs = stack.logs(&run_id, Some("count")).await;
            logs.steps.iter().any(|s| !s.lines.is_empty()).then_some(())
        })
        .await;
    let cancel = stack.cli("kici", &["runs", "cancel", "--branch", "slow"], stack.dir.path());
    assert_eq!(
        cancel.expect_code(0).stdout,
        format!("Run {run_id} cancelling: 1 job(s) told to stop\n")
    );
    let detail = stack.wait_run(&run_id).await;
    assert_eq!(detail.run.status, RunStatus::Cancelled);
    let nothing = stack.cli("kici", &["runs", "cancel", "--branch", "slow"], stack.dir.path());
    assert_eq!(nothing.expect_code(0).stdout, "No run of branch slow is going\n");
    let neither = stack.cli("kici", &["runs", "cancel"], stack.dir.path());
    assert_ne!(neither.code, 0);

    let rerun = stack.cli("kici", &["runs", "rerun", &run_id], stack.dir.path());
    let stdout = rerun.expect_code(0).stdout.clone();
    let new_run = stdout
        .strip_prefix(&format!("Run {run_id} started again as "))
        .unwrap_or_else(|| panic!("{stdout}"))
        .trim()
        .to_string();
    assert_eq!(stack.detail(&new_run).await.run.workflow_name, detail.run.workflow_name);
    stack
        .cli("kici", &["runs", "cancel", &new_run], stack.dir.path())
        .expect_code(0);
}

#[tokio::test]
async fn cancelling_a_queued_run_completes_it_at_once() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    // No agent has the labels this job asks for: it waits in the queue.
    let runs = stack.push("app", &repo, "no-agent").await;
    let answer = stack
        .post(
            &format!("/api/v1/admin/runs/{}/cancel", runs[0]),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(answer["status"], "cancelled", "{answer}");
    assert_eq!(answer["cancelledJobs"], 1, "{answer}");
    let detail = stack.detail(&runs[0]).await;
    assert_eq!(detail.run.status, RunStatus::Cancelled, "{detail:#?}");
    assert_eq!(detail.jobs[0].status, JobStatus::Cancelled);
    assert_eq!(detail.jobs[0].error_message.as_deref(), Some("Cancelled by admin"));
}

#[tokio::test]
async fn token_roles_limit_what_a_token_may_do() {
    let stack = Stack::start().await;
    let create = |role: &'static str| {
        let stack = &stack;
        async move {
            let answer = stack
                .post(
                    "/api/v1/admin/tokens",
                    &serde_json::json!({ "label": format!("{role}-token"), "role": role }),
                )
                .await;
            answer["token"].as_str().expect("token").to_string()
        }
    };
    let auditor = create("auditor").await;
    let admin = create("admin").await;
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, token: &str| {
        client
            .request(method, format!("{}{path}", stack.url()))
            .bearer_auth(token)
            .json(&serde_json::json!({ "label": "x" }))
            .send()
    };
    let read = call(reqwest::Method::GET, "/api/v1/runs", &auditor).await.unwrap();
    assert_eq!(read.status(), 200);
    let write = call(reqwest::Method::POST, "/api/v1/runs/r1/cancel", &auditor)
        .await
        .unwrap();
    assert_eq!(write.status(), 403);
    let body: serde_json::Value = write.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "token `auditor-token` has role auditor, which may only read (hint: use an admin or owner token)"
    );
    let tokens = call(reqwest::Method::POST, "/api/v1/admin/tokens", &admin)
        .await
        .unwrap();
    assert_eq!(tokens.status(), 403);
    let body: serde_json::Value = tokens.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "token `admin-token` has role admin; managing admin tokens needs an owner token"
    );
    let agents = call(reqwest::Method::GET, "/api/v1/admin/agents", &admin)
        .await
        .unwrap();
    assert_eq!(agents.status(), 200);
}

#[tokio::test]
async fn a_finished_run_is_run_again_on_the_same_commit_and_an_unfinished_one_is_refused() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    let first = stack.push_and_wait("app", &repo, "failing").await;
    let answer = stack
        .post(
            &format!("/api/v1/runs/{}/rerun", first.run.run_id),
            &serde_json::json!({}),
        )
        .await;
    let new_run_id = answer["newRunId"].as_str().unwrap().to_string();
    assert_eq!(answer["runId"], first.run.run_id.as_str());
    let again = stack.wait_run(&new_run_id).await;
    assert_eq!(
        (
            again.run.workflow_name.as_str(),
            again.run.sha.as_str(),
            again.run.git_ref.as_str()
        ),
        (
            first.run.workflow_name.as_str(),
            first.run.sha.as_str(),
            first.run.git_ref.as_str()
        )
    );
    assert_eq!(again.run.failure_reason.as_deref(), Some("Failed jobs: build"));
    // The re-run says what it is and links to its original, which links back.
    assert_eq!(
        (again.run.trigger.as_str(), again.run.rerun_of.as_deref()),
        ("rerun", Some(first.run.run_id.as_str()))
    );
    assert_eq!(
        stack.detail(&first.run.run_id).await.run.reruns,
        std::slice::from_ref(&new_run_id)
    );
    let shown = stack.cli("kici", &["runs", "show", &new_run_id], stack.dir.path());
    shown.expect_code(0);
    assert!(shown.stdout.contains(" trigger=rerun\n"), "{}", shown.stdout);
    assert!(
        shown.stdout.contains(&format!("\nre-run of {}\n", first.run.run_id)),
        "{}",
        shown.stdout
    );
    let original = stack.cli("kici", &["runs", "show", &first.run.run_id], stack.dir.path());
    assert!(
        original.stdout.contains(&format!("\nre-runs: {new_run_id}\n")),
        "{}",
        original.stdout
    );
    // A run still waiting for an agent cannot be re-run.
    let waiting = stack.push("app", &repo, "no-agent").await.remove(0);
    let response = stack
        .client()
        .post(format!("{}/api/v1/runs/{waiting}/rerun", stack.url()))
        .bearer_auth(kici_testkit::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 409);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("wait for it to finish or cancel it first"),
        "{body}"
    );
}

/// `GET /api/v1/admin/queue/waiting` says why each queued job waits: every fitting agent busy,
/// or no agent and no scaler with its labels.
#[tokio::test]
async fn queued_jobs_say_why_they_wait() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    let slow = stack.push("app", &repo, "slow").await.remove(0);
    stack
        .wait_for("the slow step to log", || async {
            let logs = stack.logs(&slow, Some("count")).await;
            logs.steps.iter().any(|s| !s.lines.is_empty()).then_some(())
        })
        .await;
    let hello = stack.push("app", &repo, "hello").await.remove(0);
    let stranded = stack.push("app", &repo, "no-agent").await.remove(0);
    let waiting = stack
        .wait_for("both jobs to be queued", || async {
            let answer = stack.get("/api/v1/admin/queue/waiting").await;
            let jobs = answer["jobs"].as_array().cloned().unwrap_or_default();
            (jobs.len() == 2).then_some(jobs)
        })
        .await;
    let why: Vec<(&str, &str, &str)> = waiting
        .iter()
        .map(|j| {
            (
                j["runId"].as_str().unwrap(),
                j["jobName"].as_str().unwrap(),
                j["explanation"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        why,
        [
            (
                hello.as_str(),
                "greet",
                "no idle agent with labels kici:os:linux; 1 busy"
            ),
            (
                stranded.as_str(),
                "gpu-job",
                "no agent with labels no-such-label is connected and no auto-scaler is configured (hint: start an agent with these labels, or configure a scaler)"
            ),
        ]
    );
    // The same from the CLI: each job, then why it waits.
    let cli = stack.cli("kici-admin", &["agent", "waiting"], stack.dir.path());
    let lines: Vec<String> = cli.expect_code(0).stdout.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("hello-world › greet  run {hello}  queued ")),
        "{lines:?}"
    );
    assert_eq!(lines[1], "  no idle agent with labels kici:os:linux; 1 busy");
    assert!(lines[2].starts_with("no-agent › gpu-job  run "), "{lines:?}");
    stack
        .cli("kici", &["runs", "cancel", "--branch", "slow"], stack.dir.path())
        .expect_code(0);
}

#[tokio::test]
async fn the_database_is_backed_up_online_and_restored_with_the_orchestrator_stopped() {
    let mut stack = Stack::start().await;
    let cwd = stack.dir.path().to_path_buf();
    let url = stack.database_url();
    let db = |stack: &Stack, args: &[&str]| {
        let mut all = vec!["db"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--database-url", &url]);
        stack.cli("kici-admin", &all, &cwd)
    };
    let known = kici_store::known_migration();
    let status = db(&stack, &["status"]);
    status.expect_code(0);
    assert!(
        status
            .stdout
            .contains(&format!("Schema:   migration {known}, this build's latest")),
        "{}",
        status.stdout
    );
    let migrated = db(&stack, &["migrate"]);
    migrated.expect_code(0);
    assert_eq!(
        migrated.stdout,
        format!("Nothing to apply: the database is at migration {known}, this build's latest.\n")
    );

    let backup = cwd.join("kici-backup.db");
    let backup_arg = backup.display().to_string();
    if url.starts_with("postgres") {
        // PostgreSQL has its own tools: the errors name them.
        let refused = db(&stack, &["backup", &backup_arg]);
        refused.expect_code(1);
        assert!(
            refused
                .stderr
                .contains("this one is PostgreSQL (hint: back it up with `pg_dump --format=custom"),
            "{}",
            refused.stderr
        );
        let refused = db(&stack, &["restore", &backup_arg]);
        refused.expect_code(1);
        assert!(
            refused.stderr.contains("`pg_restore --clean --if-exists"),
            "{}",
            refused.stderr
        );
        assert!(!refused.stderr.contains(ADMIN_TOKEN));
        return;
    }

    let token = |stack: &Stack, label: &str| stack.cli("kici-admin", &["token", "create", "--label", label], &cwd);
    token(&stack, "kept").expect_code(0);
    let written = db(&stack, &["backup", &backup_arg]);
    written.expect_code(0);
    assert!(
        written
            .stdout
            .contains(&format!("(migration {known}) to {backup_arg} (")),
        "{}",
        written.stdout
    );
    assert!(
        written.stdout.contains("Keep the secret key with it"),
        "{}",
        written.stdout
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the backup holds sealed secrets");
    let again = db(&stack, &["backup", &backup_arg]);
    again.expect_code(1);
    assert!(
        again
            .stderr
            .contains("(hint: a backup never overwrites a file: choose a new name)"),
        "{}",
        again.stderr
    );

    token(&stack, "lost").expect_code(0);
    let refused = db(&stack, &["restore", &backup_arg]);
    refused.expect_code(1);
    assert!(
        refused.stderr.contains("Error: an orchestrator is running on "),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("(hint: stop it first;"), "{}", refused.stderr);

    stack.orchestrator.signal(libc::SIGTERM);
    assert_eq!(
        stack.orchestrator.wait_exit(std::time::Duration::from_secs(20)),
        Some(0)
    );
    let restored = db(&stack, &["restore", &backup_arg]);
    restored.expect_code(0);
    assert!(
        restored
            .stdout
            .starts_with(&format!("Restored {backup_arg} (migration {known}) to ")),
        "{}",
        restored.stdout
    );
    let aside = restored
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("The database it replaced is kept at "))
        .and_then(|l| l.strip_suffix('.'))
        .expect("where the replaced database is kept");
    assert!(std::path::Path::new(aside).is_file(), "{aside}");

    stack.start_orchestrator_again();
    let tokens = stack.cli("kici-admin", &["token", "list"], &cwd);
    tokens.expect_code(0);
    assert!(tokens.stdout.contains("kept"), "{}", tokens.stdout);
    assert!(
        !tokens.stdout.contains("lost"),
        "made after the backup: {}",
        tokens.stdout
    );

    // A backup a newer build took, and a file that is no backup, are refused.
    let newer = cwd.join("newer.db");
    std::fs::copy(&backup, &newer).unwrap();
    let bumped = std::process::Command::new("python3")
        .args(["-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(\"INSERT INTO kici_migrations VALUES (9999, 'future', 0)\"); c.commit()"])
        .arg(&newer)
        .status()
        .unwrap();
    assert!(bumped.success());
    let newer_arg = newer.display().to_string();
    let status = stack.cli(
        "kici-admin",
        &["db", "status", "--database-url", &format!("sqlite://{newer_arg}")],
        &cwd,
    );
    status.expect_code(2);
    assert!(
        status.stdout.contains(&format!(
            "Schema:   migration 9999, from a newer KiCI: this build knows up to {known} and refuses to run on it"
        )),
        "{}",
        status.stdout
    );
    let refused = db(&stack, &["restore", &newer_arg]);
    refused.expect_code(1);
    assert!(
        refused.stderr.contains(&format!(
            "was taken by a newer KiCI (migration 9999; this build knows up to {known}) (hint: restore it with that build)"
        )),
        "{}",
        refused.stderr
    );
    let junk = cwd.join("junk.db");
    std::fs::write(&junk, "not a database").unwrap();
    let refused = db(&stack, &["restore", &junk.display().to_string()]);
    refused.expect_code(1);
    assert!(
        refused.stderr.contains("is not a readable KiCI database backup"),
        "{}",
        refused.stderr
    );

    // A database that cannot be read any more (what a restore is often for) is moved aside
    // whole, with its write-ahead log, and the backup takes its place.
    stack.orchestrator.signal(libc::SIGTERM);
    assert_eq!(
        stack.orchestrator.wait_exit(std::time::Duration::from_secs(20)),
        Some(0)
    );
    let live = kici_store::sqlite_path(&url).unwrap();
    std::fs::write(&live, "garbage that is no SQLite database").unwrap();
    let wal = std::path::PathBuf::from(format!("{}-wal", live.display()));
    std::fs::write(&wal, "a log of another database").unwrap();
    let restored = db(&stack, &["restore", &backup_arg]);
    restored.expect_code(0);
    let aside = restored
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("The database it replaced is kept at "))
        .and_then(|l| l.strip_suffix('.'))
        .expect("where the unreadable database is kept");
    assert_eq!(
        std::fs::read_to_string(aside).unwrap(),
        "garbage that is no SQLite database"
    );
    assert!(!wal.exists(), "the old log is moved aside too");
    stack.start_orchestrator_again();
    let tokens = stack.cli("kici-admin", &["token", "list"], &cwd);
    tokens.expect_code(0);
    assert!(tokens.stdout.contains("kept"), "{}", tokens.stdout);
}

/// The build whose data directory the upgrade test starts from (`scripts/upgrade-fixture.sh`):
/// the last before the multi-orchestrator migrations 0030 to 0032.
const EARLIER_BUILD: &str = "507f87e";

#[tokio::test]
async fn a_data_directory_of_an_earlier_release_is_migrated_and_keeps_its_runs() {
    // The fixture is a SQLite data directory.
    if std::env::var("KICI_TEST_E2E_DATABASE").as_deref() == Ok("postgres") {
        return;
    }
    let dir = tempfile::Builder::new().prefix("kici-e2e-").tempdir().unwrap();
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/data-{EARLIER_BUILD}.tar.gz"));
    let (code, output) = kici_testkit::run_to_end(
        std::process::Command::new("tar")
            .arg("-xzf")
            .arg(&fixture)
            .arg("-C")
            .arg(dir.path()),
    );
    assert_eq!(code, 0, "{output}");
    let earlier_token = std::fs::read_to_string(dir.path().join("made-by-token")).unwrap();
    let database = kici_store::default_database_url(&dir.path().join("data"));
    let cwd = dir.path().to_path_buf();
    let status = |expected: i32| {
        let (code, output) = kici_testkit::run_to_end(
            std::process::Command::new(kici_testkit::binary("kici-admin"))
                .args(["db", "status", "--database-url", &database])
                .current_dir(&cwd),
        );
        assert_eq!(code, expected, "{output}");
        output
    };
    let before = status(2);
    assert!(
        before.contains("Schema:   migration 29; this build applies 3 more when the orchestrator starts, or with `kici-admin db migrate`: 30 orchestrator_instances, 31 dispatch_queue_pages, 32 dispatch_label_sets"),
        "{before}"
    );

    // This build on it: migrated at start, the earlier run and its log still there, the earlier
    // token still valid.
    let mut stack = Stack::start_in(dir, &[]);
    assert!(status(0).contains("Schema:   migration 32, this build's latest"));
    let runs = stack
        .client()
        .get(format!("{}/api/v1/runs", stack.url()))
        .bearer_auth(earlier_token.trim())
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let earlier = &runs["runs"][0];
    assert_eq!(earlier["workflowName"], "upgrade", "{runs:#}");
    assert_eq!(earlier["status"], "success", "{runs:#}");
    let run_id = earlier["runId"].as_str().unwrap();
    assert!(
        stack.log_text(run_id).await.contains("hello from an earlier build"),
        "{}",
        stack.log_text(run_id).await
    );

    // And it runs new work.
    stack.start_agent("agent-1", &["scaled"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    // The earlier build's source `app` is there too.
    stack.add_local_source("after-the-upgrade", &repo).await;
    let detail = stack.push_and_wait("after-the-upgrade", &repo, "scaled").await;
    assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
}
