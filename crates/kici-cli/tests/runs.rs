//! `kici runs list|show|logs` end to end against a fake API: paths, queries, the token
//! fallback, `--follow` polling, and the printed texts.

// Helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use kici_testkit::fake_api::{self, FakeApi};
use serde_json::{Value, json};

fn kici(args: &[&str], token_env: Option<(&str, &str)>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kici"));
    command
        .arg("runs")
        .args(args)
        .env_remove("KICI_TOKEN")
        .env_remove("KICI_ADMIN_TOKEN")
        .env_remove("KICI_URL");
    if let Some((name, value)) = token_env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn run_json(run_id: &str, git_ref: &str, status: &str) -> Value {
    json!({
        "runId": run_id, "workflowName": "ci", "status": status, "repo": "app", "gitRef": git_ref,
        "sha": "0123456789abcdef0123456789abcdef01234567", "trigger": "push", "provider": "local",
        "sourceId": "src-1", "deliveryId": "d-1", "failureReason": null, "initFailure": null,
        "createdAt": 1795000000123_i64, "startedAt": 1795000000123_i64, "completedAt": null, "durationMs": null
    })
}

#[test]
fn show_uses_the_admin_token_as_a_fallback() {
    let api = FakeApi::start(|_| {
        (
            200,
            json!({"run": run_json("r-1", "refs/heads/main", "running"), "jobs": []}).to_string(),
        )
    });
    let output = kici(
        &["show", "r-1", "--url", &api.url],
        Some(("KICI_ADMIN_TOKEN", "admin-tok")),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let request = &api.requests()[0];
    assert_eq!(request.target, "/api/v1/runs/r-1/detail");
    assert_eq!(request.headers["authorization"], "Bearer admin-tok");
    assert_eq!(
        text(&output.stdout),
        "Run r-1  running\nworkflow=ci repo=app branch=main sha=0123456 trigger=push\nstarted=2026-11-18T11:06:40.123Z duration=-\n"
    );
    let output = kici(&["--url", &api.url, "show", "r-1", "--json"], Some(("KICI_TOKEN", "t")));
    assert_eq!(api.requests()[1].headers["authorization"], "Bearer t");
    let printed: Value = serde_json::from_str(&text(&output.stdout)).unwrap();
    assert_eq!(printed["run"]["runId"], "r-1");
}

#[test]
fn list_filters_branches_among_the_newest_runs() {
    let api = FakeApi::start(|_| {
        let runs = [
            run_json("r-3", "refs/heads/main", "running"),
            run_json("r-2", "refs/heads/dev", "success"),
            run_json("r-1", "refs/heads/main", "failed"),
        ];
        (200, json!({"runs": runs, "total": 3}).to_string())
    });
    let output = kici(
        &[
            "--url",
            &api.url,
            "list",
            "--branch",
            "main",
            "--status",
            "running,failed",
            "--limit",
            "1",
        ],
        None,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        api.requests()[0].target,
        "/api/v1/runs?status=running%2Cfailed&limit=100"
    );
    assert!(!api.requests()[0].headers.contains_key("authorization"));
    assert_eq!(
        text(&output.stdout),
        "\
ID   WORKFLOW  STATUS   BRANCH  TRIGGER  STARTED                   DURATION
r-3  ci        running  main    push     2026-11-18T11:06:40.123Z  -
"
    );
}

#[test]
fn logs_follow_until_the_run_is_finished() {
    let calls = AtomicUsize::new(0);
    let api = FakeApi::start(move |_| {
        let call = calls.fetch_add(1, Ordering::SeqCst);
        let (status, lines) = if call == 0 {
            ("running", vec!["one"])
        } else {
            ("success", vec!["one", "two"])
        };
        let lines: Vec<Value> = lines.iter().map(|line| json!({"ts": 0, "line": line})).collect();
        let step = json!({"jobId": "j-1", "jobName": "build", "stepIndex": 0, "stepName": "compile",
            "status": status, "lines": lines});
        (
            200,
            json!({"runId": "r-1", "status": status, "steps": [step]}).to_string(),
        )
    });
    let output = kici(&["--url", &api.url, "logs", "r-1", "--job", "build", "-f"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "=== build › compile running ===\none\ntwo\n");
    let requests = api.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].target, "/api/v1/runs/r-1/logs?job=build");
}

#[test]
fn errors_name_the_url_and_the_server_message() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let output = kici(&["--url", &url, "logs", "r-1"], None);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        format!(
            "error: cannot reach the orchestrator at {url}: Connection refused (os error 111) (hint: is kici-orchestrator running? set --url or KICI_URL)\n"
        )
    );
    let api = FakeApi::start(|_| fake_api::not_found("job lint not found in run r-1"));
    let output = kici(&["--url", &api.url, "logs", "r-1", "--job", "lint"], None);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stderr), "error: job lint not found in run r-1\n");
}
