//! Exact texts of `runs list|show|jobs`.

use kici_engine::api::{Job, JobNeed, Run, RunDetail, RunList, Step};
use kici_engine::failure::{InitFailure, InitFailureCategory, InitFailureScope};
use kici_engine::status::{JobStatus, RunStatus, StepStatus};

use super::*;

use crate::runs::fixtures::{self, T0};

fn run(run_id: &str, status: RunStatus) -> Run {
    fixtures::run(run_id, status)
}

fn step(index: i64, name: &str, status: StepStatus, exit_code: Option<i32>, duration_ms: Option<i64>) -> Step {
    Step {
        started_at: Some(T0),
        ..fixtures::step(index, name, status, exit_code, duration_ms)
    }
}

fn job(job_id: &str, name: &str, status: JobStatus, error: Option<&str>, steps: Option<Vec<Step>>) -> Job {
    Job {
        agent_id: Some("agent-a".into()),
        needs: vec![JobNeed {
            upstream_name: "lint".into(),
            run_on: vec![JobStatus::Success],
        }],
        started_at: Some(T0 + 1000),
        duration_ms: Some(1234),
        ..fixtures::job(job_id, name, status, error, steps)
    }
}

#[test]
fn list_table_and_footer() {
    let mut pending = run("r-2", RunStatus::Pending);
    pending.started_at = None;
    pending.duration_ms = None;
    pending.sha = String::new();
    let list = RunList {
        runs: vec![run("r-1", RunStatus::Success), pending],
        total: 12,
    };
    assert_eq!(
        render_list(&list, 0, 2),
        "\
RUN ID  WORKFLOW  STATUS   REPO      REF              SHA      STARTED                   DURATION
r-1     ci        success  acme/app  refs/heads/main  0123456  2026-11-18T11:06:40.123Z  3m 04s
r-2     ci        pending  acme/app  refs/heads/main  -        -                         -

Showing 2 of 12 (offset 0, limit 2)
"
    );
    assert_eq!(
        render_list(&RunList { runs: vec![], total: 0 }, 0, 20),
        "No execution runs found.\n"
    );
}

#[test]
fn show_prints_failure_errors_and_steps() {
    let mut failed = run("r-1", RunStatus::Failed);
    failed.failure_reason = Some("Failed jobs: build".into());
    let detail = RunDetail {
        run: failed,
        jobs: vec![
            job(
                "j-1",
                "lint",
                JobStatus::Success,
                None,
                Some(vec![step(0, "eslint", StepStatus::Success, Some(0), Some(900))]),
            ),
            job(
                "j-2",
                "build",
                JobStatus::Failed,
                Some("Step 'compile' failed (exit code 2)"),
                Some(vec![
                    step(-1, "prepare", StepStatus::Success, None, Some(300)),
                    Step {
                        secrets_accessed: vec!["NPM_TOKEN".into(), "SIGNING_KEY".into()],
                        ..step(0, "compile", StepStatus::Failed, Some(2), Some(65_000))
                    },
                    step(1, "test", StepStatus::Skipped, None, None),
                ]),
            ),
            job("j-3", "deploy", JobStatus::Skipped, None, Some(vec![])),
        ],
    };
    assert_eq!(
        render_show(&detail),
        "\
Run: r-1
Workflow:    ci
Status:      failed
Repo:        acme/app
Ref:         refs/heads/main
SHA:         0123456789abcdef0123456789abcdef01234567
Trigger:     push
Provider:    local
Started:     2026-11-18T11:06:40.123Z
Completed:   2026-11-18T11:09:44.123Z
Duration:    3m 04s
Failure:     Failed jobs: build

JOB ID  NAME    STATUS   AGENT    DURATION  STEPS  ERROR
j-1     lint    success  agent-a  1.2s      1      -
j-2     build   failed   agent-a  1.2s      3      Step 'compile' failed (exit code 2)
j-3     deploy  skipped  agent-a  1.2s      0      -

Steps for lint (j-1):
  #  NAME    STATUS   EXIT  DURATION  TYPE
  0  eslint  success  0     0.9s      run

Steps for build (j-2):
  #   NAME     STATUS   EXIT  DURATION  TYPE
  -1  prepare  success  -     0.3s      run
  0   compile  failed   2     1m 05s    run
  1   test     skipped  -     -         run
  Secrets read by compile: NPM_TOKEN, SIGNING_KEY
"
    );
}

#[test]
fn show_prints_the_init_failure_category_and_a_multi_line_provisioning_error() {
    let mut failed = run("r-9", RunStatus::Failed);
    failed.started_at = None;
    failed.duration_ms = None;
    failed.failure_reason = Some("Lock file schemaVersion 3 is incompatible".into());
    failed.init_failure = Some(InitFailure {
        scope: InitFailureScope::Run,
        category: InitFailureCategory::LockResolution,
        message: "Lock file schemaVersion 3 is incompatible".into(),
        job_name: None,
    });
    let mut queued = job(
        "j-1",
        "build",
        JobStatus::TimedOutStale,
        Some("spawn failed: exit 1\nstderr: no image"),
        None,
    );
    queued.agent_id = None;
    queued.duration_ms = None;
    let text = render_show(&RunDetail {
        run: failed,
        jobs: vec![queued],
    });
    assert!(
        text.contains(
            "\
Duration:    -
Failure:     Lock file schemaVersion 3 is incompatible
Failure category: lock_resolution (Lock-file / dependency resolution failed)

JOB ID  NAME   STATUS           AGENT  DURATION  STEPS  ERROR
j-1     build  timed_out_stale  -      -         -      spawn failed: exit 1
                                                        stderr: no image
"
        ),
        "{text}"
    );
    assert!(!text.contains("Steps for"), "{text}");
}

#[test]
fn show_without_jobs() {
    let text = render_show(&RunDetail {
        run: run("r-1", RunStatus::Pending),
        jobs: vec![],
    });
    assert!(
        text.ends_with("Duration:    3m 04s\n\nNo jobs for this run.\n"),
        "{text}"
    );
}

#[test]
fn jobs_table() {
    assert_eq!(render_jobs(&[]), "No jobs for this run.\n");
    let jobs = vec![
        job("j-1", "test (linux, 20)", JobStatus::Running, None, None),
        job(
            "j-2",
            "build",
            JobStatus::Failed,
            Some("Queue timeout expired (job was never dispatched to an agent)"),
            None,
        ),
    ];
    assert_eq!(
        render_jobs(&jobs),
        "\
JOB ID  NAME              STATUS   AGENT    DURATION  STARTED                   ERROR
j-1     test (linux, 20)  running  agent-a  1.2s      2026-11-18T11:06:41.123Z  -
j-2     build             failed   agent-a  1.2s      2026-11-18T11:06:41.123Z  Queue timeout expired (job was never dispatched to an agent)
"
    );
    let json = serde_json::to_value(&jobs).unwrap();
    assert_eq!(
        json[1]["errorMessage"],
        "Queue timeout expired (job was never dispatched to an agent)"
    );
    assert_eq!(
        json[1]["needs"],
        serde_json::json!([{"upstreamName": "lint", "runOn": ["success"]}])
    );
}
