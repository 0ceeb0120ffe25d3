//! Multi-row state changes are atomic: with the database refusing one of their writes (a
//! trigger injected by kici-store's `test-faults`), nothing is left half done — no job queued
//! beside a closed queue entry, no run left unfinished, no child job created twice — and once
//! writes succeed again the normal paths (the next sweep, the agent's replay) finish the work.
//! In process, on SQLite and, with `KICI_TEST_POSTGRES_URL`, PostgreSQL.

// The harness helpers fail the test the way its assertions do.
#![allow(clippy::unwrap_used)]

mod support;

use kici_engine::ids::{AgentId, JobId, RunId};
use kici_engine::protocol::{AgentMessage, JobKind, JobStatusUpdate};
use kici_engine::status::{JobStatus, RunStatus};
use kici_orchestrator::{progress, sweeper};
use kici_store::{QueueStatus, Store};
use serde_json::json;
use support::{harnesses, matrix_workflow, new_entry, new_job, new_run};

async fn job_status(store: &Store, job_id: &str) -> JobStatus {
    store.get_job(&JobId::from(job_id)).await.unwrap().unwrap().job.status
}

async fn entry_status(store: &Store, job_id: &str) -> QueueStatus {
    store.queue_entry(&JobId::from(job_id)).await.unwrap().unwrap().status
}

/// Queue expiry: the entry closes only with its job, and one refused row does not stop the
/// sweep from expiring the others.
#[tokio::test]
async fn queue_expiry_is_all_or_nothing_and_one_bad_row_does_not_stop_the_sweep() {
    for (db, harness) in harnesses(&[]).await {
        let (state, store) = (&harness.state, &harness.state.store);
        for run in ["r1", "r2"] {
            let job = format!("{run}-job");
            store
                .insert_run(
                    &new_run(run, None),
                    &[new_job(run, &job, "build", JobKind::Execute)],
                    &[new_entry(run, &job, Some(10))],
                )
                .await
                .unwrap();
        }
        store
            .inject_fault(
                "jobs",
                false,
                "NEW.job_id = 'r1-job' AND NEW.status = 'timed_out_stale'",
            )
            .await
            .unwrap();
        sweeper::sweep(state, 1_000, false).await.unwrap();
        assert_eq!(
            (job_status(store, "r1-job").await, entry_status(store, "r1-job").await),
            (JobStatus::Queued, QueueStatus::Pending),
            "{db}: the refused expiry left its entry open for the next sweep"
        );
        assert_eq!(job_status(store, "r2-job").await, JobStatus::TimedOutStale, "{db}");
        assert_eq!(
            store.get_run(&RunId::from("r2")).await.unwrap().unwrap().status,
            RunStatus::Failed,
            "{db}"
        );

        store.clear_faults("jobs").await.unwrap();
        sweeper::sweep(state, 2_000, false).await.unwrap();
        assert_eq!(
            (job_status(store, "r1-job").await, entry_status(store, "r1-job").await),
            (JobStatus::TimedOutStale, QueueStatus::Expired),
            "{db}"
        );
        let run = store.get_run(&RunId::from("r1")).await.unwrap().unwrap();
        assert_eq!(
            (run.status, run.failure_reason.as_deref()),
            (RunStatus::Failed, Some(kici_engine::failure::NO_AGENTS_AVAILABLE)),
            "{db}"
        );
    }
}

/// Cancelling: a job is cancelled with its entry, or not at all.
#[tokio::test]
async fn a_refused_cancel_leaves_the_job_and_its_entry_together() {
    for (db, harness) in harnesses(&[]).await {
        let (state, store) = (&harness.state, &harness.state.store);
        store
            .insert_run(
                &new_run("r", None),
                &[new_job("r", "j", "build", JobKind::Execute)],
                &[new_entry("r", "j", None)],
            )
            .await
            .unwrap();
        store
            .inject_fault("jobs", false, "NEW.status = 'cancelled'")
            .await
            .unwrap();
        assert!(
            progress::cancel_run(state, &RunId::from("r"), "Cancelled by ops", false)
                .await
                .is_err(),
            "{db}"
        );
        assert_eq!(
            (job_status(store, "j").await, entry_status(store, "j").await),
            (JobStatus::Queued, QueueStatus::Pending),
            "{db}: a queued job beside a closed entry would wait forever"
        );
        store.clear_faults("jobs").await.unwrap();
        progress::cancel_run(state, &RunId::from("r"), "Cancelled by ops", false)
            .await
            .unwrap();
        assert_eq!(
            (job_status(store, "j").await, entry_status(store, "j").await),
            (JobStatus::Cancelled, QueueStatus::Failed),
            "{db}"
        );
        assert_eq!(
            store.get_run(&RunId::from("r")).await.unwrap().unwrap().status,
            RunStatus::Cancelled,
            "{db}"
        );
    }
}

/// A matrix evaluation's children join the run with the evaluation's end, in one transaction:
/// when that end is refused, the agent's replay adds them, once.
#[tokio::test]
async fn matrix_children_are_created_once_when_the_evaluations_end_is_refused() {
    for (db, harness) in harnesses(&[]).await {
        let (state, store) = (&harness.state, &harness.state.store);
        store
            .insert_run(
                &new_run("r", Some(matrix_workflow())),
                &[new_job("r", "eval", "test", JobKind::MatrixEval)],
                &[new_entry("r", "eval", None)],
            )
            .await
            .unwrap();
        assert!(
            store
                .claim_entry(&JobId::from("eval"), &AgentId::from("agent-1"), i64::MAX)
                .await
                .unwrap(),
            "{db}"
        );
        let report = |seq: u64, state: JobStatus, matrix: Option<serde_json::Value>| {
            AgentMessage::JobStatus(Box::new(JobStatusUpdate {
                matrix,
                ..JobStatusUpdate::new("r".into(), "eval".into(), seq, state, 5)
            }))
        };
        progress::apply(state, &AgentId::from("agent-1"), report(1, JobStatus::Running, None))
            .await
            .unwrap();
        store
            .inject_fault("jobs", false, "NEW.job_id = 'eval' AND NEW.status = 'success'")
            .await
            .unwrap();
        let done = || report(2, JobStatus::Success, Some(json!(["a", "b", "c"])));
        assert!(
            progress::apply(state, &AgentId::from("agent-1"), done()).await.is_err(),
            "{db}"
        );
        let names = || async {
            let mut names: Vec<String> = store
                .run_jobs(&RunId::from("r"), false)
                .await
                .unwrap()
                .into_iter()
                .map(|j| j.job.job_name)
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            names().await,
            ["test"],
            "{db}: children added without their evaluation's end"
        );
        store.clear_faults("jobs").await.unwrap();
        // The agent replays the unacknowledged report; a second replay must change nothing.
        progress::apply(state, &AgentId::from("agent-1"), done()).await.unwrap();
        progress::apply(state, &AgentId::from("agent-1"), done()).await.unwrap();
        assert_eq!(names().await, ["test", "test (a)", "test (b)", "test (c)"], "{db}");
        assert_eq!(job_status(store, "eval").await, JobStatus::Success, "{db}");
    }
}
