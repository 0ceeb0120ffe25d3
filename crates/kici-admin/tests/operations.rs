//! The operations commands end to end against a fake API: `diagnose` (table and exit codes),
//! `diagnose drift` (agent stale, lock stale, all in agreement), `explain` (exit code and the
//! last 50 log lines of the failed step), `debug-bundle` (every part, no canary secret anywhere,
//! the log window and cap) and `inspect-bundle` (summary and errors, offline).

// Helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use kici_testkit::fake_api::{FakeApi, Request, not_found};
use serde_json::{Value, json};

const HASH_A: &str = "aaaaaaaaaaaa0000000000000000000000000000000000000000000000000000";
const HASH_B: &str = "bbbbbbbbbbbb0000000000000000000000000000000000000000000000000000";

fn admin_in(dir: Option<&Path>, envs: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kici-admin"));
    command
        .args(args)
        .env_remove("KICI_ADMIN_TOKEN")
        .env_remove("KICI_ADMIN_URL")
        .env_remove("KICI_LOG_DIR");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    for (name, value) in envs {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn admin(api: &FakeApi, args: &[&str]) -> Output {
    let mut all = vec!["-u", &api.url, "-t", "tok"];
    all.extend_from_slice(args);
    admin_in(None, &[], &all)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn json_answer(value: Value) -> (u16, String) {
    (200, value.to_string())
}

fn check(name: &str, status: &str, message: &str, duration_ms: i64) -> Value {
    json!({"name": name, "status": status, "message": message, "durationMs": duration_ms})
}

fn diagnose_api(status: &'static str, checks: Vec<Value>) -> FakeApi {
    FakeApi::start(move |request| {
        assert_eq!(request.target, "/api/v1/admin/diagnose");
        json_answer(json!({"status": status, "timestamp": 1795000000123_i64, "checks": checks}))
    })
}

#[test]
fn diagnose_prints_every_check_and_exits_by_the_worst() {
    let api = diagnose_api(
        "degraded",
        vec![
            check("Database connectivity", "pass", "Connected (3ms latency)", 3),
            check("Agent connectivity", "warn", "No agents connected", 0),
            check("Disk space", "pass", "41.2 GB free on /var/lib/kici", 1),
            check("Config validity", "pass", "Config valid (mode: independent)", 0),
        ],
    );
    let output = admin(&api, &["diagnose"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "\
Orchestrator diagnostics (2026-11-18T11:06:40.123Z)
Overall: degraded

Status  Check                  Message                           Duration
PASS    Database connectivity  Connected (3ms latency)           3ms
WARN    Agent connectivity     No agents connected               0ms
PASS    Disk space             41.2 GB free on /var/lib/kici     1ms
PASS    Config validity        Config valid (mode: independent)  0ms
"
    );
    assert_eq!(api.requests()[0].headers["authorization"], "Bearer tok");
    let output = admin(&api, &["diagnose", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["checks"][1]["message"], "No agents connected");

    let provisioning =
        "Scaler spawn failed: spawn /opt/kici/node ENOENT\n--- agent output (last 2 lines) ---\nexec: not found";
    let api = diagnose_api(
        "unhealthy",
        vec![
            check("Database connectivity", "pass", "Connected (1ms latency)", 1),
            check("scaler:bare-metal", "fail", provisioning, 5000),
        ],
    );
    let output = admin(&api, &["diagnose"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stdout),
        "\
Orchestrator diagnostics (2026-11-18T11:06:40.123Z)
Overall: unhealthy

Status  Check                  Message                                           Duration
PASS    Database connectivity  Connected (1ms latency)                           1ms
FAIL    scaler:bare-metal      Scaler spawn failed: spawn /opt/kici/node ENOENT  5.0s
                               --- agent output (last 2 lines) ---
                               exec: not found
"
    );

    let api = diagnose_api(
        "healthy",
        vec![check("Database connectivity", "pass", "Connected (1ms latency)", 1)],
    );
    assert_eq!(admin(&api, &["diagnose"]).status.code(), Some(0));
}

#[test]
fn diagnose_errors_exit_2() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let output = admin_in(None, &[], &["-u", &url, "-t", "tok", "diagnose"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).starts_with(&format!("Error: cannot reach the orchestrator at {url}")));
}

fn drift_api(
    orchestrator: (&'static str, &'static str),
    agents: Vec<(&'static str, &'static str, &'static str, bool)>,
) -> FakeApi {
    FakeApi::start(move |request| match request.target.as_str() {
        "/health" => json_answer(json!({
            "status": "ok", "service": "orchestrator", "version": "0.1.0", "uptimeMs": 5,
            "sdkVersion": orchestrator.0, "sdkBundleHash": orchestrator.1,
            "sharedVersion": "0.1.0", "sharedBundleHash": "s", "engineVersion": "0.1.0", "engineBundleHash": "e"
        })),
        "/api/v1/admin/agents" => {
            let agents: Vec<Value> = agents
                .iter()
                .map(|(id, version, hash, connected)| {
                    json!({"agentId": id, "labels": [], "hostname": "h", "platform": "linux", "arch": "x64",
                           "version": "0.1.0", "connected": connected, "busyJobId": null, "firstSeenAt": 0, "lastSeenAt": 0,
                           "buildInfo": {"sdkVersion": version, "sdkBundleHash": hash, "sharedVersion": "0.1.0",
                                         "sharedBundleHash": "s", "engineVersion": "0.1.0", "engineBundleHash": "e"}})
                })
                .collect();
            json_answer(json!({"agents": agents, "tokens": []}))
        }
        _ => not_found("no such path"),
    })
}

fn write_lock(dir: &Path, version: &str, hash: &str) {
    std::fs::create_dir_all(dir.join(".kici")).unwrap();
    std::fs::write(
        dir.join(".kici/kici.lock.json"),
        json!({"schemaVersion": 30, "source": {"file": ".kici/workflows/ci.ts", "export": "#default"},
               "contentHash": "c", "sdk": {"version": version, "bundleHash": hash}, "workflows": []})
        .to_string(),
    )
    .unwrap();
}

#[test]
fn drift_all_in_agreement() {
    let dir = tempfile::tempdir().unwrap();
    write_lock(dir.path(), "0.2.0", HASH_A);
    let api = drift_api(
        ("0.2.0", HASH_A),
        vec![
            ("agent-a", "0.2.0", HASH_A, true),
            ("agent-gone", "0.1.0", HASH_B, false),
        ],
    );
    // The lock file is found in the current directory.
    let output = admin_in(
        Some(dir.path()),
        &[],
        &["-u", &api.url, "-t", "tok", "diagnose", "drift"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "\
SIDE                            VERSION  BUNDLE HASH   VERDICT
orchestrator                    0.2.0    aaaaaaaaaaaa  ok
agent agent-a                   0.2.0    aaaaaaaaaaaa  ok
lock file .kici/kici.lock.json  0.2.0    aaaaaaaaaaaa  ok

No drift: orchestrator, 1 agent(s) and the lock file use @kici-dev/sdk 0.2.0 (aaaaaaaaaaaa).
"
    );
}

#[test]
fn drift_names_a_stale_agent() {
    let api = drift_api(
        ("0.2.0", HASH_A),
        vec![("agent-a", "0.2.0", HASH_A, true), ("agent-old", "0.1.0", HASH_B, true)],
    );
    let output = admin(&api, &["diagnose", "drift"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "\
SIDE             VERSION  BUNDLE HASH   VERDICT
orchestrator     0.2.0    aaaaaaaaaaaa  ok
agent agent-a    0.2.0    aaaaaaaaaaaa  ok
agent agent-old  0.1.0    bbbbbbbbbbbb  drifted

Agent agent-old runs @kici-dev/sdk 0.1.0 (bbbbbbbbbbbb), the orchestrator 0.2.0 (aaaaaaaaaaaa): upgrade the agent's kici-agent binary (or its image) to the orchestrator's build.
"
    );
    let output = admin(&api, &["diagnose", "drift", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["drift"], true);
    assert_eq!(report["sides"][2]["agentId"], "agent-old");
    assert_eq!(report["sides"][2]["verdict"], "drifted");
}

#[test]
fn drift_names_a_stale_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    write_lock(dir.path(), "0.1.0", HASH_B);
    let lock = dir.path().join(".kici/kici.lock.json");
    let api = drift_api(("0.2.0", HASH_A), vec![("agent-a", "0.2.0", HASH_A, true)]);
    let output = admin(&api, &["diagnose", "drift", "--lock", lock.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.ends_with(
            "\n\nThe lock file was compiled against @kici-dev/sdk 0.1.0 (bbbbbbbbbbbb), the agents run 0.2.0 (aaaaaaaaaaaa): run 'kici compile' with a kici of the agents' build and commit the updated lock file.\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains(&format!(
        "lock file {}  0.1.0    bbbbbbbbbbbb  drifted\n",
        lock.display()
    )));
    let output = admin(&api, &["diagnose", "drift", "--lock", "/nonexistent/kici.lock.json"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr),
        "Error: cannot read lock file `/nonexistent/kici.lock.json`: No such file or directory (os error 2)\n"
    );
}

fn run_json(run_id: &str, status: &str, failure_reason: Option<&str>) -> Value {
    json!({
        "runId": run_id, "workflowName": "ci", "status": status, "repo": "acme/app", "gitRef": "refs/heads/main",
        "sha": "0123456789abcdef0123456789abcdef01234567", "trigger": "push", "provider": "local",
        "sourceId": "src-1", "deliveryId": "d-1", "failureReason": failure_reason, "initFailure": null,
        "createdAt": 0, "startedAt": 0, "completedAt": 1000, "durationMs": 1000
    })
}

fn step_json(index: i64, name: &str, status: &str, exit_code: Option<i32>) -> Value {
    json!({"stepIndex": index, "stepName": name, "stepType": "run", "status": status, "exitCode": exit_code,
           "errorMessage": null, "startedAt": 0, "completedAt": 1000, "durationMs": 1000})
}

fn job_json(
    job_id: &str,
    name: &str,
    status: &str,
    agent: Option<&str>,
    error: Option<&str>,
    steps: Vec<Value>,
) -> Value {
    json!({"jobId": job_id, "runId": "r-1", "jobName": name, "baseJobName": name, "status": status,
           "agentId": agent, "errorMessage": error, "initFailure": null, "needs": [], "createdAt": 0,
           "startedAt": 0, "completedAt": 1000, "durationMs": 1000, "steps": steps})
}

fn log_lines(count: usize) -> Value {
    let lines: Vec<Value> = (1..=count)
        .map(|n| json!({"ts": n, "line": format!("compile output {n}")}))
        .collect();
    json!({"lines": lines})
}

fn explain_api() -> FakeApi {
    FakeApi::start(|request: &Request| match request.target.as_str() {
        "/api/v1/admin/runs/r-1/detail" => json_answer(json!({
            "run": run_json("r-1", "failed", Some("Failed jobs: build")),
            "jobs": [
                job_json("j-lint", "lint", "success", Some("agent-a"), None, vec![step_json(0, "lint", "success", Some(0))]),
                job_json("j-build", "build", "failed", Some("agent-a"), Some("Step 'compile' failed (exit code 2)"), vec![
                    step_json(0, "checkout", "success", Some(0)),
                    step_json(1, "compile", "failed", Some(2)),
                    step_json(2, "test", "skipped", None),
                ]),
            ]
        })),
        "/api/v1/runs/r-1/jobs/j-build/steps/1/logs" => json_answer(log_lines(120)),
        "/api/v1/admin/runs/r-ok/detail" => json_answer(json!({"run": run_json("r-ok", "success", None), "jobs": []})),
        "/api/v1/admin/runs/r-drift/detail" => json_answer(json!({
            "run": run_json("r-drift", "failed", Some("Failed jobs: build")),
            "jobs": [job_json("j-d", "build", "failed", Some("agent-a"),
                Some("Lock file is out of date: workflow source changed without regenerating kici.lock.json (expected contentHash x, got y, agent baked @kici-dev/sdk@0.2.0 bundleHash=aaaa). Run 'kici compile' and commit the updated lock file."),
                vec![])]
        })),
        "/api/v1/runs/r-drift/jobs/j-d/steps/-1/logs" => json_answer(json!({"lines": [
            {"ts": 1, "line": "Cloning acme/app at 0123456"},
            {"ts": 2, "line": "Lock file is out of date: ..."}
        ]})),
        "/health" => json_answer(json!({"status": "ok", "sdkVersion": "0.2.0", "sdkBundleHash": HASH_A})),
        "/api/v1/admin/agents" => json_answer(json!({"agents": [
            {"agentId": "agent-a", "connected": false, "buildInfo": {"sdkVersion": "0.2.0", "sdkBundleHash": HASH_A}}
        ], "tokens": []})),
        _ => not_found("run nope not found"),
    })
}

#[test]
fn explain_shows_the_failed_step_exit_code_and_its_last_50_log_lines() {
    let api = explain_api();
    let output = admin(&api, &["explain", "r-1"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let tail: String = (71..=120).map(|n| format!("    compile output {n}\n")).collect();
    assert_eq!(
        stdout,
        format!(
            "\
Run:      r-1
Workflow: ci
Status:   failed
Repo:     acme/app
Ref:      refs/heads/main
SHA:      0123456789abcdef0123456789abcdef01234567

Failure reason: Failed jobs: build

Failed job: build (j-build, failed, agent agent-a)
  Error: Step 'compile' failed (exit code 2)
  Failed step: #1 compile, exit code 2
  Log of step #1 compile (last 50 of 120 lines):
{tail}
Next steps:
  - Read the whole log of the failed step: kici runs logs r-1 --job 'build'
  - If this does not explain it, attach a debug bundle when escalating: kici-admin debug-bundle
"
        )
    );
    assert!(!stdout.contains("compile output 70\n"));

    let output = admin(&api, &["explain", "r-1", "--json"]);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["failedJobs"][0]["failedStep"]["exitCode"], 2);
    assert_eq!(report["failedJobs"][0]["log"]["lines"].as_array().unwrap().len(), 50);
    assert_eq!(report["failedJobs"][0]["log"]["totalLines"], 120);

    let output = admin(&api, &["explain", "r-ok"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(text(&output.stdout), "Run r-ok succeeded; nothing to explain.\n");

    let output = admin(&api, &["explain", "nope"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stderr), "Error: run nope not found\n");
}

#[test]
fn explain_gives_the_drift_verdict() {
    let api = explain_api();
    let output = admin(&api, &["explain", "r-drift"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(
            "\
  Failed before any step ran.
  Prepare log (all 2 lines):
    Cloning acme/app at 0123456
    Lock file is out of date: ...

SDK bundle drift: job build failed with \"Lock file is out of date\".
  SIDE           VERSION  BUNDLE HASH   VERDICT
  orchestrator   0.2.0    aaaaaaaaaaaa  ok
  agent agent-a  0.2.0    aaaaaaaaaaaa  ok
  Verdict: The orchestrator and the agents agree on @kici-dev/sdk 0.2.0 (aaaaaaaaaaaa), so the lock file is the side that drifted: run 'kici compile' with a kici of the agents' build and commit the updated lock file.

Next steps:
  - Recompile the lock file: kici compile, then commit .kici/kici.lock.json
"
        ),
        "{stdout}"
    );
}

const CANARY_ENV: &str = "env-canary-5f1e2d3c";
const CANARY_CONFIG: &str = "config-canary-9a8b7c";

fn bundle_api() -> FakeApi {
    FakeApi::start(|request| match request.target.as_str() {
        "/api/v1/admin/diagnose" => {
            json_answer(json!({"status": "degraded", "timestamp": 1795000000123_i64, "checks": [
                check("Database connectivity", "pass", "Connected (1ms latency)", 1),
                check("Agent connectivity", "warn", "No agents connected", 0),
                json!({"name": "Config validity", "status": "pass", "message": format!("Config valid (mode: independent) {CANARY_ENV}"),
                       "details": {"webhookSecret": CANARY_CONFIG}, "durationMs": 0}),
            ]}))
        }
        "/api/v1/admin/config" => json_answer(json!({
            "mode": "independent", "port": 4000, "bindAddress": "127.0.0.1", "dataDir": "/var/lib/kici",
            "database": {"url": format!("postgres://kici:{CANARY_CONFIG}@db/kici")},
            "agentAuth": "static", "queue": {"timeoutMs": 60000, "maxDepth": 1000, "sweepIntervalMs": 1000},
            "bootstrapAdminToken": "****", "apiToken": CANARY_CONFIG, "logLevel": "info",
            "logDir": "/var/log/kici", "labels": [CANARY_ENV]
        })),
        "/api/v1/admin/system-info" => json_answer(json!({"platform": "linux", "release": "6.1", "arch": "x64",
            "hostname": "ci-host", "cpuCount": 2, "totalMemory": 1, "freeMemory": 1, "uptime": 5,
            "orchestratorVersion": "0.1.0", "dataDir": "/var/lib/kici", "database": "sqlite"})),
        "/api/v1/admin/cluster/health" => {
            json_answer(json!({"status": "ok", "instanceId": "i-1", "role": "standalone",
            "agentCount": 0, "connectedAgents": [], "activeRuns": 0}))
        }
        "/metrics" => (
            200,
            format!("# HELP kici_orch_agents_active Agents\nkici_orch_agents_active 0\n# {CANARY_ENV}\n"),
        ),
        "/api/v1/admin/runs?limit=50" => {
            json_answer(json!({"runs": [run_json("r-1", "failed", Some(CANARY_ENV))], "total": 1}))
        }
        _ => not_found("no such path"),
    })
}

fn set_age(path: &Path, age: Duration) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - age)
        .unwrap();
}

fn unzip(path: &Path) -> Vec<(String, String)> {
    let mut zip = zip::ZipArchive::new(File::open(path).unwrap()).unwrap();
    (0..zip.len())
        .map(|index| {
            let mut entry = zip.by_index(index).unwrap();
            let mut content = String::new();
            entry.read_to_string(&mut content).unwrap();
            (entry.name().unwrap().into_owned(), content)
        })
        .collect()
}

#[test]
fn debug_bundle_has_every_part_and_no_secret() {
    const HOUR: Duration = Duration::from_secs(3600);
    let api = bundle_api();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let kat = format!("kat_{}", "c0".repeat(32));
    // Lines of 38 or 39 bytes (with the newline), two per file.
    let line = |level: &str, n: u32| format!("{{\"level\":\"{level}\",\"message\":\"line-{n:03}\"}}\n");
    let newest = logs.join("orchestrator-2026-11-18.log");
    std::fs::write(&newest, format!("{}{}", line("error", 1), line("info", 2))).unwrap();
    let middle = logs.join("agent-2026-11-18.log");
    std::fs::write(&middle, format!("{}{}", line("warn", 3), line("info", 4))).unwrap();
    set_age(&middle, HOUR);
    let secrets = logs.join("orchestrator-secrets.log");
    std::fs::write(&secrets, format!("token {kat} secret {CANARY_ENV} {CANARY_CONFIG}\n")).unwrap();
    set_age(&secrets, 2 * HOUR);
    let old = logs.join("orchestrator-2026-11-10.log");
    std::fs::write(&old, "{\"level\":\"error\",\"message\":\"too old\"}\n").unwrap();
    set_age(&old, 30 * HOUR);

    let out = dir.path().join("bundle.zip");
    let output = admin_in(
        None,
        &[("KICI_CANARY_SECRET", CANARY_ENV), ("KICI_DB_PASSWORD", CANARY_CONFIG)],
        &[
            "-u",
            &api.url,
            "-t",
            "tok-admin-1234",
            "debug-bundle",
            "-o",
            out.to_str().unwrap(),
            "--log-dir",
            logs.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let size_kb = std::fs::metadata(&out).unwrap().len().div_ceil(1024);
    assert_eq!(
        text(&output.stdout),
        format!(
            "Collecting diagnostic data...\nDebug bundle saved to {} ({size_kb} KB)\n",
            out.display()
        )
    );
    let entries = unzip(&out);
    let names: Vec<&str> = entries.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "manifest.json",
            "diagnostics/results.json",
            "config/config.json",
            "system/info.json",
            "cluster/health.json",
            "system/metrics.txt",
            "executions/recent.json",
            "logs/orchestrator-2026-11-18.log",
            "logs/agent-2026-11-18.log",
            "logs/orchestrator-secrets.log",
            "logs/summary.json",
            "summary.txt"
        ]
    );
    for (name, content) in &entries {
        for canary in [CANARY_ENV, CANARY_CONFIG, kat.as_str(), "tok-admin-1234"] {
            assert!(!content.contains(canary), "{canary} in {name}:\n{content}");
        }
    }
    let raw = std::fs::read(&out).unwrap();
    assert!(
        !raw.windows(CANARY_ENV.len())
            .any(|window| window == CANARY_ENV.as_bytes())
    );
    let content = |name: &str| entries.iter().find(|(entry, _)| entry == name).unwrap().1.clone();
    let manifest: Value = serde_json::from_str(&content("manifest.json")).unwrap();
    assert_eq!(manifest["version"], "1.0");
    assert_eq!(manifest["source"], "kici-admin debug-bundle");
    assert_eq!(manifest["orchestrator_url"], api.url.as_str());
    assert!(
        manifest["parts"]
            .as_object()
            .unwrap()
            .values()
            .all(|status| status == "ok")
    );
    let config: Value = serde_json::from_str(&content("config/config.json")).unwrap();
    assert_eq!(config["mode"], "independent");
    assert_eq!(config["port"], 4000);
    assert_eq!(config["database"]["url"], "****");
    assert_eq!(config["queue"]["timeoutMs"], 60000);
    assert_eq!(config["logDir"], "/var/log/kici");
    assert_eq!(
        content("logs/orchestrator-secrets.log"),
        "token kat_*** secret **** ****\n"
    );
    assert_eq!(
        content("logs/orchestrator-2026-11-18.log"),
        format!("{}{}", line("error", 1), line("info", 2))
    );
    let summary: Value = serde_json::from_str(&content("logs/summary.json")).unwrap();
    assert_eq!(
        (&summary["totalLines"], &summary["errors"], &summary["warnings"]),
        (&json!(5), &json!(1), &json!(1))
    );
    assert!(
        content("summary.txt").contains("Diagnostics: degraded\n  WARN  Agent connectivity: No agents connected\n")
    );

    // A small cap: newest first, the crossing file cut to its last whole line, older ones out.
    let capped = dir.path().join("capped.zip");
    let output = admin(
        &api,
        &[
            "debug-bundle",
            "-o",
            capped.to_str().unwrap(),
            "--log-dir",
            logs.to_str().unwrap(),
            "--max-log-bytes",
            "120",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let entries = unzip(&capped);
    let logs_in: Vec<(&str, &str)> = entries
        .iter()
        .filter(|(name, _)| name.ends_with(".log"))
        .map(|(name, content)| (name.as_str(), content.as_str()))
        .collect();
    let second = line("info", 4);
    assert_eq!(
        logs_in,
        [
            (
                "logs/orchestrator-2026-11-18.log",
                format!("{}{}", line("error", 1), line("info", 2)).as_str()
            ),
            ("logs/agent-2026-11-18.log", second.as_str()),
        ]
    );

    // A log window of one minute keeps only the newest file.
    let windowed = dir.path().join("windowed.zip");
    let output = admin(
        &api,
        &[
            "debug-bundle",
            "-o",
            windowed.to_str().unwrap(),
            "--log-dir",
            logs.to_str().unwrap(),
            "--log-window",
            "0.0167",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let logs_in: Vec<String> = unzip(&windowed)
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.ends_with(".log"))
        .collect();
    assert_eq!(logs_in, ["logs/orchestrator-2026-11-18.log"]);
}

#[test]
fn debug_bundle_is_written_when_parts_fail() {
    let api = FakeApi::start(|request| match request.target.as_str() {
        "/api/v1/admin/config" => json_answer(json!({"mode": "independent"})),
        _ => not_found("not here"),
    });
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-logs");
    let output = admin_in(
        Some(dir.path()),
        &[("KICI_LOG_DIR", missing.to_str().unwrap())],
        &["-u", &api.url, "-t", "tok", "debug-bundle"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let name = stdout
        .lines()
        .nth(1)
        .unwrap()
        .strip_prefix("Debug bundle saved to ")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(
        name.starts_with("kici-debug-") && name.ends_with("Z.zip") && !name.contains(':'),
        "{name}"
    );
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("Warning: diagnostics/results.json: GET /api/v1/admin/diagnose failed: not here\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "Warning: logs/: Log dir {} does not exist — skipping logs/\n",
            missing.display()
        )),
        "{stderr}"
    );
    let entries = unzip(&dir.path().join(&name));
    let names: Vec<&str> = entries.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        ["manifest.json", "config/config.json", "system/info.json", "summary.txt"]
    );

    // inspect-bundle needs neither token nor orchestrator.
    let output = admin_in(Some(dir.path()), &[], &["inspect-bundle", &name]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.starts_with(&format!("Debug bundle summary: {name}\n\nBundle info\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains("\nHealth checks: not in the bundle (GET /api/v1/admin/diagnose failed: not here)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "\nLogs: not in the bundle (Log dir {} does not exist — skipping logs/)\n",
            missing.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("\nFiles\n  BYTES  NAME\n"), "{stdout}");
    let output = admin_in(Some(dir.path()), &[], &["inspect-bundle", &name, "--json"]);
    let inspection: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(inspection["manifest"]["parts"]["config/config.json"], "ok");
    assert_eq!(inspection["files"].as_array().unwrap().len(), 4);
}

#[test]
fn inspect_bundle_summarizes_and_refuses_what_is_not_a_bundle() {
    let api = bundle_api();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::write(
        logs.join("orchestrator.log"),
        "{\"level\":\"error\",\"message\":\"a\"}\n{\"level\":\"warn\",\"message\":\"b\"}\nplain\n",
    )
    .unwrap();
    let out = dir.path().join("b.zip");
    let output = admin(
        &api,
        &[
            "debug-bundle",
            "-o",
            out.to_str().unwrap(),
            "--log-dir",
            logs.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let output = admin_in(None, &[], &["inspect-bundle", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    for expected in [
        "  Source:         kici-admin debug-bundle\n".to_string(),
        format!("  Orchestrator:   {}\n", api.url),
        "  Bundle version: 1.0\n".to_string(),
        "  logs/                     ok\n".to_string(),
        "\nHealth checks: degraded\n  Status  Check               Message\n  WARN    Agent connectivity  No agents connected\n"
            .to_string(),
        "\nLogs\n  Files:       1\n  Total lines: 3\n  Errors:      1\n  Warnings:    1\n".to_string(),
        "  manifest.json\n".to_string(),
        "  logs/orchestrator.log\n".to_string(),
    ] {
        assert!(stdout.contains(&expected), "missing {expected:?} in:\n{stdout}");
    }

    let not_zip = dir.path().join("notes.txt");
    std::fs::write(&not_zip, "just text").unwrap();
    let output = admin_in(None, &[], &["inspect-bundle", not_zip.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with(&format!(
            "Error: Invalid debug bundle: {} is not a ZIP archive (",
            not_zip.display()
        )) && stderr.ends_with(")\n"),
        "{stderr}"
    );

    let no_manifest = dir.path().join("other.zip");
    {
        let mut zip = zip::ZipWriter::new(File::create(&no_manifest).unwrap());
        zip.start_file("a.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut zip, b"a").unwrap();
        zip.finish().unwrap();
    }
    let output = admin_in(None, &[], &["inspect-bundle", no_manifest.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        "Error: Invalid debug bundle: missing manifest.json\n"
    );
}
