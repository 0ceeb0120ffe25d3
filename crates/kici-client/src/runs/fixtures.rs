//! Runs, jobs and steps for the views' tests: one of each with every field set, which a test
//! changes where its case differs.

use kici_engine::api::{Job, Run, Step};
use kici_engine::status::{JobStatus, RunStatus, StepStatus};

pub const T0: i64 = 1_795_000_000_123;

/// A `ci` run of `acme/app` on `refs/heads/main`, pushed, started at [`T0`], 3m 04s long.
pub fn run(run_id: &str, status: RunStatus) -> Run {
    Run {
        run_id: run_id.into(),
        workflow_name: "ci".into(),
        status,
        repo: "acme/app".into(),
        git_ref: "refs/heads/main".into(),
        sha: "0123456789abcdef0123456789abcdef01234567".into(),
        trigger: "push".into(),
        provider: "local".into(),
        source_id: "src-1".into(),
        delivery_id: "d-1".into(),
        failure_reason: None,
        init_failure: None,
        created_at: T0,
        started_at: Some(T0),
        completed_at: Some(T0 + 184_000),
        duration_ms: Some(184_000),
        rerun_of: None,
        reruns: Vec::new(),
        trust: None,
        title: None,
        actor: None,
    }
}

/// A `run` step that has not started.
pub fn step(index: i64, name: &str, status: StepStatus, exit_code: Option<i32>, duration_ms: Option<i64>) -> Step {
    Step {
        step_index: index,
        step_name: name.into(),
        step_type: "run".into(),
        status,
        exit_code,
        error_message: None,
        started_at: None,
        completed_at: None,
        duration_ms,
        secrets_accessed: Vec::new(),
    }
}

/// A job of run `r-1` without agent, needs or times.
pub fn job(job_id: &str, name: &str, status: JobStatus, error: Option<&str>, steps: Option<Vec<Step>>) -> Job {
    Job {
        job_id: job_id.into(),
        run_id: "r-1".into(),
        job_name: name.into(),
        base_job_name: name.into(),
        status,
        agent_id: None,
        error_message: error.map(str::to_string),
        init_failure: None,
        needs: vec![],
        created_at: T0,
        started_at: None,
        completed_at: None,
        duration_ms: None,
        steps,
        reused_from: None,
    }
}
