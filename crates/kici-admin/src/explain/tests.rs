//! Exact texts of `explain` reports, built by hand (the fetching is tested end to end in
//! `tests/cli.rs`).

use kici_engine::api::{LogLine, Run};
use kici_engine::failure::{InitFailure, InitFailureCategory, InitFailureScope};
use kici_engine::hash::drift_message;
use kici_engine::status::{JobStatus, RunStatus};

use super::*;
use crate::drift::{Side, SideKind};

fn run(status: RunStatus, failure_reason: Option<&str>) -> Run {
    Run {
        run_id: "r-1".into(),
        workflow_name: "ci".into(),
        status,
        repo: "acme/app".into(),
        git_ref: "refs/heads/main".into(),
        sha: "0123456789abcdef0123456789abcdef01234567".into(),
        trigger: "push".into(),
        provider: "local".into(),
        source_id: "src-1".into(),
        delivery_id: "d-1".into(),
        failure_reason: failure_reason.map(str::to_string),
        init_failure: None,
        created_at: 0,
        started_at: Some(0),
        completed_at: Some(1000),
        duration_ms: Some(1000),
        rerun_of: None,
        reruns: Vec::new(),
        trust: None,
        title: None,
        actor: None,
    }
}

fn lines(count: usize) -> Vec<LogLine> {
    (1..=count)
        .map(|n| LogLine {
            ts: n as i64,
            line: format!("line {n}"),
        })
        .collect()
}

fn job(name: &str, status: JobStatus, error: &str, failed_step: Option<FailedStep>, log: LogTail) -> FailedJob {
    FailedJob {
        job_id: format!("j-{name}"),
        job_name: name.into(),
        status,
        agent_id: Some("agent-a".into()),
        error_message: Some(error.into()),
        init_failure: None,
        provisioning_output: Some(error.to_string()).filter(|error| error.contains('\n')),
        failed_step,
        log,
    }
}

fn report(run: Run, failed_jobs: Vec<FailedJob>, drift: Option<DriftSection>) -> ExplainReport {
    let mut report = ExplainReport {
        init_failure_title: run.init_failure.as_ref().map(|failure| failure.category.title()),
        run,
        failed_jobs,
        drift,
        next_steps: Vec::new(),
    };
    report.next_steps = next_steps(&report);
    report
}

#[test]
fn the_tail_keeps_the_last_fifty_lines() {
    let tail = tail(0, &lines(120));
    assert_eq!(tail.total_lines, 120);
    assert_eq!(tail.lines.len(), LOG_TAIL_LINES);
    assert_eq!(tail.lines.first().map(String::as_str), Some("line 71"));
    assert_eq!(tail.lines.last().map(String::as_str), Some("line 120"));
    assert_eq!(super::tail(0, &lines(3)).lines, ["line 1", "line 2", "line 3"]);
}

#[test]
fn a_failed_step_with_its_exit_code_and_log_tail() {
    let step = FailedStep {
        step_index: 1,
        step_name: "compile".into(),
        exit_code: Some(2),
    };
    let report = report(
        run(RunStatus::Failed, Some("Failed jobs: build")),
        vec![job(
            "build",
            JobStatus::Failed,
            "Step 'compile' failed (exit code 2)",
            Some(step),
            tail(1, &lines(52)),
        )],
        None,
    );
    let text = render(&report);
    let expected_head = "\
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
  Log of step #1 compile (last 50 of 52 lines):
    line 3
    line 4
";
    assert!(text.starts_with(expected_head), "{text}");
    assert!(!text.contains("    line 2\n"));
    assert!(text.ends_with(
        "    line 52

Next steps:
  - Read the whole log of the failed step: kici runs logs r-1 --job 'build'
  - If this does not explain it, attach a debug bundle when escalating: kici-admin debug-bundle
"
    ));
}

#[test]
fn provisioning_output_and_init_failures() {
    let mut failed_run = run(
        RunStatus::Failed,
        Some("scaler spawn failed: spawn node ENOENT\nagent output:\n  boom"),
    );
    failed_run.init_failure = Some(InitFailure {
        scope: InitFailureScope::Run,
        category: InitFailureCategory::NoAgent,
        message: "no agent".into(),
        job_name: None,
    });
    let empty = LogTail {
        step_index: -1,
        total_lines: 0,
        lines: Vec::new(),
        error: None,
    };
    let report = report(
        failed_run,
        vec![job(
            "build",
            JobStatus::TimedOutStale,
            "scaler spawn failed: spawn node ENOENT\nagent output:\n  boom\n",
            None,
            empty,
        )],
        None,
    );
    assert_eq!(
        render(&report),
        "\
Run:      r-1
Workflow: ci
Status:   failed
Repo:     acme/app
Ref:      refs/heads/main
SHA:      0123456789abcdef0123456789abcdef01234567

Failure reason: scaler spawn failed: spawn node ENOENT
  agent output:
    boom
Failure category: no_agent (No agent available to run this job)
Failure message: no agent

Failed job: build (j-build, timed_out_stale, agent agent-a)
  Provisioning output:
    scaler spawn failed: spawn node ENOENT
    agent output:
      boom
  Failed before any step ran.
  Prepare log: no lines

Next steps:
  - No agent matches the job's labels: kici-admin agent list, then kici-admin diagnose
  - Check the scaler:<name> rows, which carry the captured provisioning error: kici-admin diagnose
  - Read the full agent output and the scaler's launch sequence: grep j-build ${KICI_LOG_DIR}/orchestrator-*.log
  - The job stopped heartbeating: check its agent (kici-admin agent list) and the agent's logs (${KICI_LOG_DIR}/agent-*.log) around 1970-01-01T00:00:01.000Z
  - If this does not explain it, attach a debug bundle when escalating: kici-admin debug-bundle
"
    );
}

#[test]
fn drift_names_the_lock_file_when_orchestrator_and_agents_agree() {
    let hash = "a".repeat(64);
    let comparison = drift::compare(vec![
        Side {
            kind: SideKind::Orchestrator,
            version: Some("0.2.0".into()),
            bundle_hash: Some(hash.clone()),
        },
        Side {
            kind: SideKind::Agent {
                agent_id: "agent-a".into(),
            },
            version: Some("0.2.0".into()),
            bundle_hash: Some(hash.clone()),
        },
    ]);
    let message = drift_message("x1", "y2", "0.2.0", &hash);
    let drift = DriftSection {
        jobs: vec!["build".into()],
        verdict: drift_verdict(&comparison),
        comparison: Some(comparison),
        error: None,
    };
    let empty = LogTail {
        step_index: -1,
        total_lines: 1,
        lines: vec![message.clone()],
        error: None,
    };
    let report = report(
        run(RunStatus::Failed, Some("Failed jobs: build")),
        vec![job("build", JobStatus::Failed, &message, None, empty)],
        Some(drift),
    );
    let text = render(&report);
    assert!(
        text.ends_with(
            "\
SDK bundle drift: job build failed with \"Lock file is out of date\".
  SIDE           VERSION  BUNDLE HASH   VERDICT
  orchestrator   0.2.0    aaaaaaaaaaaa  ok
  agent agent-a  0.2.0    aaaaaaaaaaaa  ok
  Verdict: The orchestrator and the agents agree on @kici-dev/sdk 0.2.0 (aaaaaaaaaaaa), so the lock file is the side that drifted: run 'kici compile' with a kici of the agents' build and commit the updated lock file.

Next steps:
  - Recompile the lock file: kici compile, then commit .kici/kici.lock.json
  - Compare with your lock file: kici-admin diagnose drift --lock .kici/kici.lock.json
  - If this does not explain it, attach a debug bundle when escalating: kici-admin debug-bundle
"
        ),
        "{text}"
    );
    assert!(message.starts_with(DRIFT_PREFIX));
}

#[test]
fn a_successful_run_has_nothing_to_explain() {
    let report = report(run(RunStatus::Success, None), Vec::new(), None);
    assert_eq!(render(&report), "Run r-1 succeeded; nothing to explain.\n");
}
