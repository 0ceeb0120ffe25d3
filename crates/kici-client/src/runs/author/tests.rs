//! Exact texts of `kici runs list|show|logs`.

use kici_engine::api::{Job, LogLine, Run, RunDetail, RunList, RunLogs, Step, StepLog};
use kici_engine::failure::{InitFailure, InitFailureCategory, InitFailureScope};
use kici_engine::status::{JobStatus, RunStatus, StepStatus};
use serde_json::json;

use super::*;

use crate::runs::fixtures::{self, T0, step};

fn run(run_id: &str, status: RunStatus, git_ref: &str) -> Run {
    Run {
        git_ref: git_ref.into(),
        completed_at: Some(T0 + 1234),
        duration_ms: Some(1234),
        ..fixtures::run(run_id, status)
    }
}

fn job(name: &str, status: JobStatus, duration_ms: Option<i64>, error: Option<&str>, steps: Vec<Step>) -> Job {
    Job {
        duration_ms,
        ..fixtures::job(&format!("j-{name}"), name, status, error, Some(steps))
    }
}

fn step_log(job: &str, index: i64, name: &str, status: StepStatus, lines: &[&str]) -> StepLog {
    StepLog {
        job_id: format!("j-{job}").into(),
        job_name: job.into(),
        step_index: index,
        step_name: name.into(),
        status,
        lines: lines
            .iter()
            .map(|line| LogLine {
                ts: T0,
                line: line.to_string(),
            })
            .collect(),
    }
}

#[test]
fn list_table() {
    let mut pending = run("r-2", RunStatus::Pending, "refs/tags/v1.0");
    pending.started_at = None;
    pending.duration_ms = None;
    pending.trigger = "pull_request".into();
    let list = RunList {
        runs: vec![run("r-1", RunStatus::Success, "refs/heads/feature/x"), pending],
        total: 2,
    };
    assert_eq!(
        runs_table(&list),
        "\
ID   WORKFLOW  STATUS   BRANCH          TRIGGER       STARTED                   DURATION
r-1  ci        success  feature/x       push          2026-11-18T11:06:40.123Z  1.2s
r-2  ci        pending  refs/tags/v1.0  pull_request  -                         -
"
    );
    assert_eq!(runs_table(&RunList { runs: vec![], total: 0 }), "No runs found.\n");
}

#[test]
fn show_tree_with_failure_and_errors() {
    let mut failed = run("r-1", RunStatus::Failed, "refs/heads/main");
    failed.failure_reason = Some("Failed jobs: build".into());
    let detail = RunDetail {
        run: failed,
        jobs: vec![
            job(
                "lint",
                JobStatus::Success,
                Some(900),
                None,
                vec![step(0, "eslint", StepStatus::Success, Some(0), Some(900))],
            ),
            job(
                "build",
                JobStatus::Failed,
                Some(65_000),
                Some("Step 'compile' failed (exit code 2)"),
                vec![
                    step(0, "compile", StepStatus::Failed, Some(2), Some(64_000)),
                    step(1, "test", StepStatus::Skipped, None, None),
                ],
            ),
        ],
    };
    assert_eq!(
        run_tree(&detail),
        "\
Run r-1  failed
workflow=ci repo=acme/app branch=main sha=0123456 trigger=push
started=2026-11-18T11:06:40.123Z duration=1.2s
failure: Failed jobs: build

lint  success  0.9s
  └─ eslint success 0.9s exit=0
build  failed  1m 05s
  error: Step 'compile' failed (exit code 2)
  └─ compile failed 1m 04s exit=2
  └─ test skipped -
"
    );
}

#[test]
fn show_tree_of_a_run_that_never_started() {
    let mut failed = run("r-2", RunStatus::Failed, "refs/heads/main");
    failed.started_at = None;
    failed.duration_ms = None;
    failed.failure_reason = Some("scaler docker failed: exit 125\nUnable to find image 'kici-agent:dev'".into());
    failed.init_failure = Some(InitFailure {
        scope: InitFailureScope::Job,
        category: InitFailureCategory::NoAgent,
        message: "no agent".into(),
        job_name: Some("build".into()),
    });
    let queued = job(
        "build",
        JobStatus::TimedOutStale,
        None,
        Some("scaler docker failed: exit 125\nUnable to find image 'kici-agent:dev'"),
        vec![],
    );
    assert_eq!(
        run_tree(&RunDetail {
            run: failed,
            jobs: vec![queued]
        }),
        "\
Run r-2  failed
workflow=ci repo=acme/app branch=main sha=0123456 trigger=push
started=- duration=-
failure: scaler docker failed: exit 125
         Unable to find image 'kici-agent:dev'
category: no_agent — No agent available to run this job

build  timed_out_stale  -
  error: scaler docker failed: exit 125
         Unable to find image 'kici-agent:dev'
"
    );
    let empty = RunDetail {
        run: run("r-3", RunStatus::Pending, "main"),
        jobs: vec![],
    };
    assert_eq!(
        run_tree(&empty),
        "Run r-3  pending\nworkflow=ci repo=acme/app branch=main sha=0123456 trigger=push\nstarted=2026-11-18T11:06:40.123Z duration=1.2s\n"
    );
}

#[test]
fn logs_print_headers_and_only_new_lines() {
    let mut printer = LogPrinter::default();
    let first = RunLogs {
        run_id: "r-1".into(),
        status: RunStatus::Running,
        steps: vec![
            step_log("build", -1, "prepare", StepStatus::Success, &["cloning", "ok"]),
            step_log("build", 0, "compile", StepStatus::Running, &["cc a.c"]),
            step_log("build", 1, "test", StepStatus::Pending, &[]),
        ],
    };
    assert_eq!(
        printer.next_chunk(&first),
        "=== build › prepare success ===\ncloning\nok\n=== build › compile running ===\ncc a.c\n"
    );
    assert_eq!(printer.next_chunk(&first), "");
    let second = RunLogs {
        run_id: "r-1".into(),
        status: RunStatus::Success,
        steps: vec![
            step_log("build", -1, "prepare", StepStatus::Success, &["cloning", "ok"]),
            step_log("build", 0, "compile", StepStatus::Success, &["cc a.c", "cc b.c"]),
            step_log("build", 1, "test", StepStatus::Success, &["1 passed"]),
        ],
    };
    assert_eq!(
        printer.next_chunk(&second),
        "cc b.c\n=== build › test success ===\n1 passed\n"
    );
    let third = RunLogs {
        steps: vec![step_log(
            "build",
            0,
            "compile",
            StepStatus::Success,
            &["cc a.c", "cc b.c", "late"],
        )],
        ..second.clone()
    };
    assert_eq!(printer.next_chunk(&third), "=== build › compile success ===\nlate\n");

    assert_eq!(
        logs_json(&second),
        json!({"build/prepare": ["cloning", "ok"], "build/compile": ["cc a.c", "cc b.c"], "build/test": ["1 passed"]})
    );
    assert_eq!(
        serde_json::to_string(&logs_json(&first)).unwrap(),
        r#"{"build/prepare":["cloning","ok"],"build/compile":["cc a.c"]}"#
    );
}
