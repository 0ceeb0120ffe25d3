//! `kici-admin` end to end against a fake API: the requests it sends (paths, queries, token,
//! bodies, webhook headers) and what it prints, including its errors and exit codes.

// Helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use kici_testkit::fake_api::{FakeApi, not_found};
use serde_json::{Value, json};

fn admin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kici-admin"))
        .args(args)
        .env_remove("KICI_ADMIN_TOKEN")
        .env_remove("KICI_ADMIN_URL")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn run_json(run_id: &str) -> Value {
    json!({
        "runId": run_id, "workflowName": "ci", "status": "failed", "repo": "app", "gitRef": "refs/heads/main",
        "sha": "0123456789abcdef0123456789abcdef01234567", "trigger": "push", "provider": "local",
        "sourceId": "src-1", "deliveryId": "d-1", "failureReason": "Failed jobs: build", "initFailure": null,
        "createdAt": 1795000000123_i64, "startedAt": 1795000000123_i64, "completedAt": 1795000001357_i64,
        "durationMs": 1234
    })
}

#[test]
fn a_token_is_required() {
    let output = admin(&["runs", "list"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stderr), "Error: --token or KICI_ADMIN_TOKEN is required\n");
    assert!(admin(&["--help"]).status.success());
    assert!(admin(&["--version"]).status.success());
}

#[test]
fn an_unreachable_orchestrator_is_named() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let output = admin(&["--url", &url, "--token", "t", "runs", "list"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        format!(
            "Error: cannot reach the orchestrator at {url}: Connection refused (os error 111) (hint: is kici-orchestrator running? set --url or KICI_ADMIN_URL)\n"
        )
    );
}

#[test]
fn runs_list_sends_filters_and_prints_the_footer() {
    let api = FakeApi::start(|_| (200, json!({"runs": [run_json("r-1")], "total": 7}).to_string()));
    let output = admin(&[
        "-u",
        &api.url,
        "-t",
        "tok",
        "runs",
        "list",
        "--status",
        "failed,success",
        "--workflow-name",
        "ci",
        "--repo",
        "acme/app",
        "--since",
        "2026-03-01",
        "--limit",
        "5",
        "--offset",
        "5",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let request = &api.requests()[0];
    assert_eq!(request.method, "GET");
    assert_eq!(
        request.target,
        "/api/v1/admin/runs?status=failed%2Csuccess&workflow=ci&repo=acme%2Fapp&since=1772323200000&limit=5&offset=5"
    );
    assert_eq!(request.headers["authorization"], "Bearer tok");
    assert_eq!(
        text(&output.stdout),
        "\
RUN ID  WORKFLOW  STATUS  REPO  REF              SHA      STARTED                   DURATION
r-1     ci        failed  app   refs/heads/main  0123456  2026-11-18T11:06:40.123Z  1.2s

Showing 1 of 7 (offset 5, limit 5)
"
    );
    let output = admin(&["-u", &api.url, "-t", "tok", "runs", "list", "--count"]);
    assert_eq!(text(&output.stdout), "7\n");
}

#[test]
fn runs_show_prints_the_detail_and_api_errors_their_message() {
    let api = FakeApi::start(|request| {
        if request.target == "/api/v1/admin/runs/r-1/detail" {
            let job = json!({
                "jobId": "j-1", "runId": "r-1", "jobName": "build", "baseJobName": "build", "status": "failed",
                "agentId": "agent-a", "errorMessage": "Step 'compile' failed (exit code 2)", "initFailure": null,
                "needs": [], "createdAt": 0, "startedAt": 0, "completedAt": 1000, "durationMs": 1000,
                "steps": [{"stepIndex": 0, "stepName": "compile", "stepType": "run", "status": "failed",
                           "exitCode": 2, "errorMessage": null, "startedAt": 0, "completedAt": 1000, "durationMs": 1000}]
            });
            (200, json!({"run": run_json("r-1"), "jobs": [job]}).to_string())
        } else {
            not_found("run nope not found")
        }
    });
    let output = admin(&["-u", &api.url, "-t", "tok", "runs", "show", "r-1"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "\
Run: r-1
Workflow:    ci
Status:      failed
Repo:        app
Ref:         refs/heads/main
SHA:         0123456789abcdef0123456789abcdef01234567
Trigger:     push
Provider:    local
Started:     2026-11-18T11:06:40.123Z
Completed:   2026-11-18T11:06:41.357Z
Duration:    1.2s
Failure:     Failed jobs: build

JOB ID  NAME   STATUS  AGENT    DURATION  STEPS  ERROR
j-1     build  failed  agent-a  1.0s      1      Step 'compile' failed (exit code 2)

Steps for build (j-1):
  #  NAME     STATUS  EXIT  DURATION  TYPE
  0  compile  failed  2     1.0s      run
"
    );
    let output = admin(&["-u", &api.url, "-t", "tok", "runs", "show", "nope"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stderr), "Error: run nope not found\n");
}

#[test]
fn token_create_and_revoke() {
    let api = FakeApi::start(|request| match request.method.as_str() {
        "POST" => (
            201,
            json!({"tokenId": "tok-2", "token": "f".repeat(64), "label": "ops", "role": "owner"}).to_string(),
        ),
        _ => (204, String::new()),
    });
    let output = admin(&[
        "-u", &api.url, "-t", "tok", "token", "create", "--label", "ops", "--role", "owner",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).starts_with(&format!("Token created: {}\nToken ID: tok-2\n", "f".repeat(64))));
    let output = admin(&["-u", &api.url, "-t", "tok", "token", "revoke", "tok-2"]);
    assert_eq!(text(&output.stdout), "Token tok-2 revoked.\n");
    let requests = api.requests();
    assert_eq!(requests[0].target, "/api/v1/admin/tokens");
    assert_eq!(
        serde_json::from_str::<Value>(&requests[0].body).unwrap(),
        json!({"label": "ops", "role": "owner"})
    );
    assert_eq!(
        (requests[1].method.as_str(), requests[1].target.as_str()),
        ("DELETE", "/api/v1/admin/tokens/tok-2")
    );
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}: {}", text(&output.stderr));
    text(&output.stdout).trim().to_string()
}

#[test]
fn trigger_local_posts_a_push_to_the_sources_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().canonicalize().unwrap();
    git(&repo, &["init", "--quiet", "--initial-branch=main"]);
    std::fs::write(repo.join("a.txt"), "a\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "--quiet", "-m", "first"]);
    let sha = git(&repo, &["rev-parse", "HEAD"]);
    let source = json!({"sourceId": "src-1", "orgId": "default", "name": "app", "kind": "local",
        "path": repo.display().to_string(), "gitUrl": null, "preset": null, "verification": "none",
        "webhookUrl": "/webhook/default/generic/src-1", "createdAt": 0});
    let api = FakeApi::start(move |request| match request.method.as_str() {
        "GET" => (200, json!({"sources": [source]}).to_string()),
        _ => {
            let delivery = request.headers["x-delivery-id"].clone();
            (
                202,
                json!({"accepted": true, "deliveryId": delivery, "runIds": ["r-1"]}).to_string(),
            )
        }
    });
    let output = admin(&["-u", &api.url, "-t", "tok", "source", "trigger-local", "app"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let requests = api.requests();
    let post = &requests[1];
    assert_eq!(post.target, "/webhook/default/generic/src-1");
    assert_eq!(post.headers["x-event-type"], "push");
    let delivery = &post.headers["x-delivery-id"];
    assert!(uuid_v4_like(delivery), "{delivery}");
    assert_eq!(post.headers["authorization"], "Bearer tok");
    let body: Value = serde_json::from_str(&post.body).unwrap();
    assert_eq!(body["ref"], "refs/heads/main");
    assert_eq!(body["after"], sha.as_str());
    assert_eq!(body["repository"]["clone_url"], format!("file://{}", repo.display()));
    assert_eq!(body["commits"][0]["added"], json!(["a.txt"]));
    assert_eq!(
        text(&output.stdout),
        format!("Delivery {delivery}: 1 run(s) started: r-1\n")
    );

    let output = admin(&["-u", &api.url, "-t", "tok", "source", "trigger-local", "other"]);
    assert_eq!(
        text(&output.stderr),
        "Error: unknown source `other` (hint: `kici-admin source list` shows the sources)\n"
    );
}

fn uuid_v4_like(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|group| group.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && groups[2].starts_with('4')
        && text.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

#[test]
fn the_installed_hook_triggers_the_source_on_push() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let work = root.join("work");
    let bare = root.join("app.git");
    std::fs::create_dir(&work).unwrap();
    git(&work, &["init", "--quiet", "--initial-branch=main"]);
    std::fs::write(work.join("a.txt"), "a\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "--quiet", "-m", "first"]);
    let first = git(&work, &["rev-parse", "HEAD"]);
    git(
        &root,
        &[
            "clone",
            "--quiet",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);

    let source = json!({"sourceId": "src-1", "orgId": "default", "name": "app", "kind": "local",
        "path": bare.display().to_string(), "verification": "none", "createdAt": 0});
    let api = FakeApi::start(move |request| match request.method.as_str() {
        "GET" => (200, json!({"sources": [source]}).to_string()),
        _ if request.target.ends_with("/trigger-token") => (
            200,
            json!({"sourceId": "src-1", "triggerToken": "ktt_issued"}).to_string(),
        ),
        _ => (
            202,
            json!({"accepted": true, "deliveryId": "d-1", "runIds": ["r-9"]}).to_string(),
        ),
    });
    let output = admin(&["-u", &api.url, "-t", "secret-token", "source", "install-hook", "src-1"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let hook = bare.join("hooks/post-receive");
    let token_file = bare.join("hooks/kici-trigger-token");
    let binary = Path::new(env!("CARGO_BIN_EXE_kici-admin")).canonicalize().unwrap();
    assert_eq!(
        text(&output.stdout),
        format!(
            "Installed post-receive hook: {}\nFor every pushed ref (deletions skipped) it runs:\n  {} --url {} source trigger-local src-1 --token-file {} --repo-path <repo> --ref <ref> --sha <new> [--before <old>]\nThe source's new trigger token is in {} (mode 0600); the one issued before no longer works.\n",
            hook.display(),
            binary.display(),
            api.url,
            token_file.display(),
            token_file.display()
        )
    );
    assert_eq!(std::fs::metadata(&hook).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), "ktt_issued\n");
    assert!(!std::fs::read_to_string(&hook).unwrap().contains("secret-token"));
    let again = admin(&["-u", &api.url, "-t", "secret-token", "source", "install-hook", "app"]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        text(&again.stderr),
        format!(
            "Error: a post-receive hook already exists at `{}` (hint: pass --force to replace it)\n",
            hook.display()
        )
    );

    std::fs::write(work.join("a.txt"), "a2\n").unwrap();
    std::fs::write(work.join("b.txt"), "b\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "--quiet", "-m", "second"]);
    std::fs::write(work.join("c.txt"), "c\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "--quiet", "-m", "third"]);
    let third = git(&work, &["rev-parse", "HEAD"]);
    let push = Command::new("git")
        .arg("-C")
        .arg(&work)
        .args(["push", "origin", "main"])
        .output()
        .unwrap();
    assert!(push.status.success(), "{}", text(&push.stderr));
    assert!(
        text(&push.stderr).contains("remote: Delivery d-1: 1 run(s) started: r-9"),
        "{}",
        text(&push.stderr)
    );
    let requests = api.requests();
    let post = requests
        .iter()
        .find(|request| request.method == "POST" && request.target.starts_with("/webhook/"))
        .unwrap();
    assert_eq!(post.headers["authorization"], "Bearer ktt_issued");
    assert!(
        requests
            .iter()
            .filter(|request| request.method == "GET")
            .all(|request| request.headers["authorization"] == "Bearer secret-token"),
        "the hook looks nothing up with the trigger token"
    );
    let body: Value = serde_json::from_str(&post.body).unwrap();
    assert_eq!(body["before"], first.as_str());
    assert_eq!(body["after"], third.as_str());
    assert_eq!(body["head_commit"]["message"], "third");
    assert_eq!(body["repository"]["clone_url"], format!("file://{}", bare.display()));
    assert_eq!(
        body["commits"],
        json!([{"id": third, "added": ["b.txt", "c.txt"], "modified": ["a.txt"], "removed": []}])
    );
}

#[test]
fn a_credential_type_must_come_with_its_credential() {
    let api = FakeApi::start(|_| (500, "{}".to_string()));
    let add = |extra: &[&str]| {
        let mut args = vec![
            "--url",
            &api.url,
            "--token",
            "t",
            "source",
            "add",
            "generic",
            "--name",
            "forge",
            "--preset",
            "gitea",
            "--secret",
            "s",
            "--git-url",
            "https://forge.example/{owner}/{name}.git",
        ];
        args.extend_from_slice(extra);
        admin(&args)
    };
    let output = add(&["--credential-type", "pat"]);
    assert_eq!(
        (output.status.code(), text(&output.stderr)),
        (
            Some(1),
            "Error: --credential-type pat needs --git-username <name> and --git-password-file <file holding the token>\n"
                .to_string()
        )
    );
    let output = add(&["--credential-type", "ssh"]);
    assert_eq!(
        text(&output.stderr),
        "Error: --credential-type ssh needs --ssh-key-file <file holding the deploy key>\n"
    );
    assert!(api.requests().is_empty(), "nothing was sent");
}
