//! The CLIs against a real stack: a push through the installed `post-receive` hook, then what
//! `kici runs show|logs` and `kici-admin runs show|jobs|list` print for a successful and a
//! failed run.

use kici_engine::status::RunStatus;
use kici_testkit::{Repo, Stack};

const FIXTURE: &str = "tests/e2e-repo";

/// A stack with one agent and the e2e repository registered through `kici-admin`, its hook
/// installed.
async fn setup() -> (Stack, Repo) {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    let origin = repo.origin().display().to_string();
    let added = stack.cli(
        "kici-admin",
        &["source", "add", "local", "--name", "app", "--path", &origin],
        stack.dir.path(),
    );
    added.expect_code(0);
    assert!(added.stdout.starts_with("Source created: app\n"), "{}", added.stdout);
    stack
        .cli("kici-admin", &["source", "install-hook", "app"], stack.dir.path())
        .expect_code(0);
    (stack, repo)
}

/// Pushes `branch` (the hook reports it) and waits for the run it started.
async fn push(stack: &Stack, repo: &Repo, branch: &str) -> String {
    let before = stack.get("/api/v1/runs").await["total"].as_i64().unwrap_or(0);
    repo.push_to(branch);
    let run_id = stack
        .wait_for("the hook's run", || async {
            let list = stack.get("/api/v1/runs").await;
            (list["total"].as_i64().unwrap_or(0) > before)
                .then(|| list["runs"][0]["runId"].as_str().unwrap_or_default().to_string())
        })
        .await;
    stack.wait_run(&run_id).await;
    run_id
}

#[tokio::test]
async fn hello_world_in_every_cli_view() {
    let (stack, repo) = setup().await;
    let run_id = push(&stack, &repo, "hello").await;
    assert_eq!(stack.detail(&run_id).await.run.status, RunStatus::Success);
    let cwd = stack.dir.path();

    let show = stack.cli("kici", &["runs", "show", &run_id], cwd);
    show.expect_code(0);
    let lines: Vec<&str> = show.stdout.lines().collect();
    assert_eq!(lines[0], format!("Run {run_id}  success"), "{}", show.stdout);
    assert!(
        lines[1].starts_with("workflow=hello-world repo=app branch=hello sha="),
        "{}",
        show.stdout
    );
    assert!(lines[1].ends_with(" trigger=push"), "{}", show.stdout);
    assert!(show.stdout.contains("\ngreet  success  "), "{}", show.stdout);
    assert!(
        show.stdout
            .lines()
            .any(|l| l.starts_with("  └─ say-hello success ") && l.ends_with(" exit=0")),
        "{}",
        show.stdout
    );
    assert!(!show.stdout.contains("failure:"), "{}", show.stdout);

    let admin = stack.cli("kici-admin", &["runs", "show", &run_id], cwd);
    admin.expect_code(0);
    assert!(
        admin.stdout.starts_with(&format!(
            "Run: {run_id}\nWorkflow:    hello-world\nStatus:      success\n"
        )),
        "{}",
        admin.stdout
    );
    assert!(admin.stdout.contains("Steps for greet ("), "{}", admin.stdout);
    assert!(
        admin
            .stdout
            .lines()
            .any(|l| l.contains(" greet ") && l.contains(" success ") && l.contains(" agent-1 ")),
        "{}",
        admin.stdout
    );

    let logs = stack.cli("kici", &["runs", "logs", &run_id, "--job", "greet"], cwd);
    logs.expect_code(0);
    assert!(
        logs.stdout
            .contains("=== greet › say-hello success ===\nHello, World!\n"),
        "{}",
        logs.stdout
    );
}

#[tokio::test]
async fn a_failed_run_shows_its_reason_and_the_step_exit_code_everywhere() {
    let (stack, repo) = setup().await;
    let run_id = push(&stack, &repo, "failing").await;
    let cwd = stack.dir.path();
    let error = "Step 'compile' failed (exit code 3)";

    let show = stack.cli("kici", &["runs", "show", &run_id], cwd);
    show.expect_code(0);
    assert!(
        show.stdout.starts_with(&format!("Run {run_id}  failed\n")),
        "{}",
        show.stdout
    );
    assert!(show.stdout.contains("failure: Failed jobs: build\n"), "{}", show.stdout);
    assert!(show.stdout.contains(&format!("  error: {error}\n")), "{}", show.stdout);
    assert!(
        show.stdout
            .lines()
            .any(|l| l.starts_with("  └─ compile failed ") && l.ends_with(" exit=3")),
        "{}",
        show.stdout
    );

    let admin = stack.cli("kici-admin", &["runs", "show", &run_id], cwd);
    admin.expect_code(0);
    assert!(
        admin.stdout.contains("Failure:     Failed jobs: build\n"),
        "{}",
        admin.stdout
    );
    assert!(admin.stdout.contains(error), "{}", admin.stdout);

    let jobs = stack.cli("kici-admin", &["runs", "jobs", &run_id], cwd);
    jobs.expect_code(0);
    assert!(
        jobs.stdout
            .lines()
            .any(|l| l.contains(" build ") && l.contains(" failed ") && l.ends_with(error)),
        "{}",
        jobs.stdout
    );

    let failed = stack.cli("kici-admin", &["runs", "list", "--status", "failed"], cwd);
    failed.expect_code(0);
    assert!(
        failed
            .stdout
            .lines()
            .any(|l| l.starts_with(&run_id) && l.contains(" failing ") && l.contains(" failed ")),
        "{}",
        failed.stdout
    );
    assert!(
        failed.stdout.contains("Showing 1 of 1 (offset 0, limit 20)"),
        "{}",
        failed.stdout
    );

    let logs = stack.cli("kici", &["runs", "logs", &run_id, "--job", "build"], cwd);
    logs.expect_code(0);
    assert!(
        logs.stdout.contains("=== build › compile failed ===\ncompiling\n"),
        "{}",
        logs.stdout
    );
}

#[test]
fn kici_up_runs_the_demo_end_to_end_and_again_on_the_same_state() {
    let state = tempfile::tempdir().unwrap();
    // Free ports: bound and released just before `kici up` binds them.
    let free_port = || kici_testkit::free_port().to_string();
    let up = || {
        let (port, dashboard_port) = (free_port(), free_port());
        let output = std::process::Command::new(kici_testkit::binary("kici"))
            .args([
                "up",
                "--once",
                "--port",
                &port,
                "--dashboard-port",
                &dashboard_port,
                "--state-dir",
            ])
            .arg(state.path())
            .output()
            .expect("kici up runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let run_line = |stdout: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with("Run ") && l.ends_with("  success"))
            .unwrap_or_else(|| panic!("no successful run in:\n{stdout}"))
            .to_string()
    };
    let stdout = up();
    let first = run_line(&stdout);
    assert!(
        stdout.contains("=== greet › say-hello success ===\nHello, World!\n"),
        "{stdout}"
    );
    assert!(
        state.path().join("orchestrator/kici.db").is_file(),
        "the embedded SQLite database is under the state directory"
    );
    assert!(
        state.path().join("platform/platform.db").is_file(),
        "the dashboard's cache"
    );
    // --once stops the stack: it prints no URL that is already dead, and says how to keep it up.
    assert!(!stdout.contains("Dashboard     "), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "The stack has stopped (--once). Keep it running with: {} up --state-dir ",
            kici_testkit::binary("kici").display()
        )),
        "{stdout}"
    );
    // The same state directory again: a new commit, a new run.
    let second = run_line(&up());
    assert_ne!(first, second);
}
