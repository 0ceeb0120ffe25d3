//! The orchestrator's core in process, on a real store (SQLite, and PostgreSQL when
//! `KICI_TEST_POSTGRES_URL` is set): a run moves from queued through the dispatcher to an agent
//! (an in-process connection in the hub) and through progress to its end; the sweeper's
//! deadlines (dispatch ack, stale heartbeat) are passed by giving `sweep` a later time, so
//! nothing waits for real.

// The harness helpers fail the test the way its assertions do.
#![allow(clippy::unwrap_used)]

mod support;

use kici_engine::dag::{Need, NeedsWhen};
use kici_engine::ids::{AgentId, JobId, RunId};
use kici_engine::lockfile::LockWorkflow;
use kici_engine::protocol::{AgentMessage, JobDispatch, JobKind, JobStatusUpdate, OrchestratorMessage, close_code};
use kici_engine::status::{JobStatus, RunStatus};
use kici_orchestrator::hub::{ConnectedAgent, LastSeen, Outbound};
use kici_orchestrator::state::Shared;
use kici_orchestrator::{dispatcher, progress, sweeper};
use kici_store::QueueStatus;
use serde_json::json;
use support::{harnesses, lock_workflow, matrix_workflow, new_job, new_run};
use tokio::sync::mpsc;

/// `build`, then `test` (needs `build`), then `report` (needs `test`, runs `always`).
fn workflow() -> LockWorkflow {
    let job = |name: &str, needs: serde_json::Value| {
        json!({
            "_type": "static", "name": name, "runsOn": [{"kind": "exact", "value": "linux"}], "needs": needs,
            "steps": [{"name": "s", "hasOutputs": false}]
        })
    };
    lock_workflow(json!([
        job("build", json!([])),
        job("test", json!(["build"])),
        job(
            "report",
            json!([{"name": "test", "runOn": ["success", "failed", "cancelled", "skipped", "timed_out_stale", "drift_dropped"]}])
        ),
    ]))
}

/// A run of [`workflow`] with every job pending, moved forward once (as the pipeline does).
async fn start_run(state: &Shared, run_id: &str) {
    let pending = |name: &str, needs: Vec<Need>, position: i64| {
        let mut job = new_job(run_id, &format!("{run_id}-{name}"), name, JobKind::Execute);
        job.status = JobStatus::Pending;
        job.needs = needs;
        job.position = position;
        job
    };
    let jobs = [
        pending("build", vec![], 0),
        pending("test", vec![Need::new("build", &NeedsWhen::OnSuccess)], 1),
        pending("report", vec![Need::new("test", &NeedsWhen::Always)], 2),
    ];
    state
        .store
        .insert_run(&new_run(run_id, Some(workflow())), &jobs, &[])
        .await
        .unwrap();
    progress::advance_run(state, &RunId::from(run_id)).await.unwrap();
}

/// An agent connected in process: what the orchestrator sends it arrives on the receiver.
fn connect(state: &Shared, agent_id: &str) -> mpsc::Receiver<Outbound> {
    connect_with(state, agent_id, &["linux"])
}

/// [`connect`] with the agent's labels.
fn connect_with(state: &Shared, agent_id: &str, labels: &[&str]) -> mpsc::Receiver<Outbound> {
    let (tx, rx) = mpsc::channel(16);
    state.hub.register(ConnectedAgent {
        jobs_sent: 0,
        agent_id: agent_id.into(),
        connection_id: format!("{agent_id}-connection"),
        token_id: None,
        labels: labels.iter().map(|l| l.to_string()).collect(),
        busy_job: None,
        draining: false,
        bound_job: None,
        single_use: false,
        tx,
        last_seen: LastSeen::default(),
    });
    rx
}

/// Run `r` with its `build` dispatched to agent `a1` (and reported running when `running`);
/// what `a1` is sent next arrives on the receiver.
async fn build_on_a1(state: &Shared, running: bool) -> mpsc::Receiver<Outbound> {
    start_run(state, "r").await;
    let mut agent = connect(state, "a1");
    dispatcher::dispatch_pending(state).await.unwrap();
    assert_eq!(dispatched(&mut agent).job_id, "r-build");
    if running {
        report(state, "a1", "r-build", 1, JobStatus::Running, None).await;
    }
    agent
}

fn dispatched(rx: &mut mpsc::Receiver<Outbound>) -> JobDispatch {
    match rx.try_recv() {
        Ok(Outbound::Message(OrchestratorMessage::JobDispatch(dispatch))) => *dispatch,
        other => panic!("expected a job.dispatch, got {other:?}"),
    }
}

/// A `job.status` for `job_id` (`<run>-<job>`).
fn status_update(job_id: &str, seq: u64, status: JobStatus) -> JobStatusUpdate {
    JobStatusUpdate::new(job_id.split('-').next().unwrap().into(), job_id.into(), seq, status, 5)
}

async fn report(state: &Shared, agent_id: &str, job_id: &str, seq: u64, status: JobStatus, error: Option<&str>) {
    let update = JobStatusUpdate {
        error: error.map(str::to_string),
        ..status_update(job_id, seq, status)
    };
    send(state, agent_id, update).await;
}

/// Applies `update` from `agent_id` and checks it is acknowledged.
async fn send(state: &Shared, agent_id: &str, update: JobStatusUpdate) {
    let seq = update.seq;
    let ack = progress::apply(
        state,
        &AgentId::from(agent_id),
        AgentMessage::JobStatus(Box::new(update)),
    )
    .await
    .unwrap();
    assert!(
        matches!(ack, Some(OrchestratorMessage::Ack { seq: s, .. }) if s == seq),
        "{ack:?}"
    );
}

async fn statuses(state: &Shared, run_id: &str) -> (RunStatus, Vec<(String, JobStatus)>) {
    let run = state.store.get_run(&RunId::from(run_id)).await.unwrap().unwrap();
    let jobs = state.store.run_jobs(&RunId::from(run_id), false).await.unwrap();
    (
        run.status,
        jobs.into_iter().map(|j| (j.job.job_name, j.job.status)).collect(),
    )
}

fn named(list: &[(&str, JobStatus)]) -> Vec<(String, JobStatus)> {
    list.iter().map(|(name, status)| (name.to_string(), *status)).collect()
}

#[tokio::test]
async fn a_run_goes_from_the_queue_through_an_agent_to_success() {
    for (db, harness) in harnesses(&[]).await {
        let state = &harness.state;
        start_run(state, "r").await;
        assert_eq!(
            statuses(state, "r").await,
            (
                RunStatus::Pending,
                named(&[
                    ("build", JobStatus::Queued),
                    ("test", JobStatus::Pending),
                    ("report", JobStatus::Pending)
                ])
            ),
            "{db}"
        );
        let mut agent = connect(state, "a1");
        dispatcher::dispatch_pending(state).await.unwrap();
        let dispatch = dispatched(&mut agent);
        assert_eq!(
            (dispatch.job_id.as_str(), dispatch.job_config.kind),
            ("r-build", JobKind::Execute),
            "{db}"
        );
        assert_eq!(
            state.hub.get(&AgentId::from("a1")).unwrap().busy_job.as_deref(),
            Some("r-build"),
            "{db}"
        );
        assert_eq!(
            state
                .store
                .queue_entry(&JobId::from("r-build"))
                .await
                .unwrap()
                .unwrap()
                .status,
            QueueStatus::Dispatched,
            "{db}"
        );

        report(state, "a1", "r-build", 1, JobStatus::Running, None).await;
        assert_eq!(
            statuses(state, "r").await.0,
            RunStatus::Running,
            "{db}: the first running job starts the run"
        );
        report(state, "a1", "r-build", 2, JobStatus::Success, None).await;
        assert_eq!(
            state.hub.get(&AgentId::from("a1")).unwrap().busy_job,
            None,
            "{db}: the agent is free again"
        );
        assert_eq!(
            statuses(state, "r").await.1,
            named(&[
                ("build", JobStatus::Success),
                ("test", JobStatus::Queued),
                ("report", JobStatus::Pending)
            ]),
            "{db}"
        );
        dispatcher::dispatch_pending(state).await.unwrap();
        let test = dispatched(&mut agent);
        assert_eq!(test.job_id, "r-test", "{db}");
        assert_eq!(
            test.needs["build"]["status"], "success",
            "{db}: the upstream result reaches the job"
        );
        // A replayed report changes nothing and is acknowledged again.
        report(state, "a1", "r-test", 1, JobStatus::Running, None).await;
        report(state, "a1", "r-test", 1, JobStatus::Running, None).await;
        report(state, "a1", "r-test", 2, JobStatus::Success, None).await;
        dispatcher::dispatch_pending(state).await.unwrap();
        assert_eq!(dispatched(&mut agent).job_id, "r-report", "{db}");
        report(state, "a1", "r-report", 1, JobStatus::Success, None).await;
        assert_eq!(
            statuses(state, "r").await,
            (
                RunStatus::Success,
                named(&[
                    ("build", JobStatus::Success),
                    ("test", JobStatus::Success),
                    ("report", JobStatus::Success)
                ])
            ),
            "{db}: a result without a running report implies the start"
        );
    }
}

#[tokio::test]
async fn a_failed_job_skips_what_needs_its_success_and_fails_the_run() {
    for (db, harness) in harnesses(&[]).await {
        let state = &harness.state;
        let mut agent = build_on_a1(state, true).await;
        report(
            state,
            "a1",
            "r-build",
            2,
            JobStatus::Failed,
            Some("Step 's' failed (exit code 1)"),
        )
        .await;
        assert_eq!(
            statuses(state, "r").await.1,
            named(&[
                ("build", JobStatus::Failed),
                ("test", JobStatus::Skipped),
                ("report", JobStatus::Queued)
            ]),
            "{db}: `report` runs always, so it runs after a skipped `test`"
        );
        dispatcher::dispatch_pending(state).await.unwrap();
        let report_job = dispatched(&mut agent);
        assert_eq!(report_job.needs["test"]["status"], "skipped", "{db}");
        report(state, "a1", "r-report", 1, JobStatus::Success, None).await;
        let run = state.store.get_run(&RunId::from("r")).await.unwrap().unwrap();
        assert_eq!(
            (run.status, run.failure_reason.as_deref()),
            (RunStatus::Failed, Some("Failed jobs: build")),
            "{db}"
        );
    }
}

#[tokio::test]
async fn a_job_no_agent_fits_waits_and_a_busy_agent_gets_nothing_more() {
    for (db, harness) in harnesses(&[]).await {
        let state = &harness.state;
        start_run(state, "r1").await;
        start_run(state, "r2").await;
        let mut agent = connect(state, "a1");
        dispatcher::dispatch_pending(state).await.unwrap();
        assert_eq!(dispatched(&mut agent).job_id, "r1-build", "{db}: oldest first");
        dispatcher::dispatch_pending(state).await.unwrap();
        assert!(agent.try_recv().is_err(), "{db}: one job per agent");
        assert_eq!(
            state
                .store
                .queue_entry(&JobId::from("r2-build"))
                .await
                .unwrap()
                .unwrap()
                .status,
            QueueStatus::Pending,
            "{db}"
        );
        let mut second = connect(state, "a2");
        dispatcher::dispatch_pending(state).await.unwrap();
        assert_eq!(dispatched(&mut second).job_id, "r2-build", "{db}");
    }
}

#[tokio::test]
async fn an_unacknowledged_dispatch_is_requeued_and_its_agent_closed() {
    for (db, harness) in harnesses(&[("KICI_DISPATCH_ACK_TIMEOUT_MS", "5000")]).await {
        let state = &harness.state;
        let mut agent = build_on_a1(state, false).await;
        let now = kici_orchestrator::clock::now_ms();
        sweeper::sweep(state, now + 1_000, false).await.unwrap();
        assert_eq!(
            state
                .store
                .queue_entry(&JobId::from("r-build"))
                .await
                .unwrap()
                .unwrap()
                .status,
            QueueStatus::Dispatched,
            "{db}: before the deadline"
        );
        sweeper::sweep(state, now + 10_000, false).await.unwrap();
        let entry = state.store.queue_entry(&JobId::from("r-build")).await.unwrap().unwrap();
        assert_eq!((entry.status, entry.agent_id), (QueueStatus::Pending, None), "{db}");
        assert!(
            matches!(agent.try_recv(), Ok(Outbound::Close(code, _)) if code == close_code::DISPATCH_ACK_TIMEOUT),
            "{db}: the silent agent is disconnected"
        );
    }
}

/// A lost agent's job that the recovery window ran out on: one the agent never acknowledged
/// goes back to the queue (it cannot be running there); an acknowledged one may be, so it
/// fails rather than run twice.
#[tokio::test]
async fn a_lost_agents_job_is_requeued_only_if_it_was_never_acknowledged() {
    for (db, harness) in harnesses(&[]).await {
        let state = &harness.state;
        let _agent = build_on_a1(state, false).await;
        let job = JobId::from("r-build");
        let now = kici_orchestrator::clock::now_ms();
        let lost = |deadline: i64| async move {
            state.hub.unregister(&AgentId::from("a1"), "a1-connection");
            state
                .store
                .recover_agent_entries(&AgentId::from("a1"), deadline)
                .await
                .unwrap()
        };
        assert_eq!(lost(now + 1_000).await, std::slice::from_ref(&job), "{db}");
        sweeper::sweep(state, now + 2_000, false).await.unwrap();
        let entry = state.store.queue_entry(&job).await.unwrap().unwrap();
        assert_eq!(
            (entry.status, entry.agent_id),
            (QueueStatus::Pending, None),
            "{db}: requeued"
        );

        // Dispatched again, acknowledged, then lost before it reported running.
        let _again = connect(state, "a1");
        dispatcher::dispatch_pending(state).await.unwrap();
        let ack = AgentMessage::JobAck {
            run_id: RunId::from("r"),
            job_id: job.clone(),
            seq: 1,
            timestamp: now,
        };
        progress::apply(state, &AgentId::from("a1"), ack).await.unwrap();
        assert_eq!(lost(now + 3_000).await, std::slice::from_ref(&job), "{db}");
        sweeper::sweep(state, now + 4_000, false).await.unwrap();
        let record = state.store.get_job(&job).await.unwrap().unwrap();
        assert_eq!(
            (record.job.status, record.job.error_message.as_deref()),
            (JobStatus::Failed, Some(kici_engine::failure::AGENT_DID_NOT_RECONNECT)),
            "{db}: an acknowledged job is never sent to a second agent"
        );
    }
}

#[tokio::test]
async fn a_job_without_heartbeats_times_out_stale_and_its_agent_is_told_to_stop() {
    for (db, harness) in harnesses(&[]).await {
        let state = &harness.state;
        let mut agent = build_on_a1(state, true).await;
        let later = kici_orchestrator::clock::now_ms() + state.config.stale_threshold().as_millis() as i64 + 60_000;
        sweeper::sweep(state, later, true).await.unwrap();
        assert!(
            matches!(
                agent.try_recv(),
                Ok(Outbound::Message(OrchestratorMessage::JobCancel { force: true, .. }))
            ),
            "{db}"
        );
        let build = state.store.get_job(&JobId::from("r-build")).await.unwrap().unwrap().job;
        assert_eq!(build.status, JobStatus::TimedOutStale, "{db}");
        assert!(
            build
                .error_message
                .as_deref()
                .unwrap()
                .starts_with("No heartbeat received for "),
            "{db}: {:?}",
            build.error_message
        );
        let run = state.store.get_run(&RunId::from("r")).await.unwrap().unwrap();
        assert_eq!(
            run.failure_reason.as_deref(),
            Some(kici_engine::failure::STALE_RUN_REASON),
            "{db}"
        );
    }
}

#[tokio::test]
async fn a_cancel_stops_the_running_job_through_its_agent_and_cancels_the_rest() {
    for (db, harness) in harnesses(&[]).await {
        let state = &harness.state;
        let mut agent = build_on_a1(state, true).await;
        let outcome = progress::cancel_run(state, &RunId::from("r"), "Cancelled by ops", false)
            .await
            .unwrap();
        assert_eq!((outcome.notified, outcome.cancelled), (1, 2), "{db}");
        assert!(
            matches!(
                agent.try_recv(),
                Ok(Outbound::Message(OrchestratorMessage::JobCancel { force: false, .. }))
            ),
            "{db}"
        );
        assert_eq!(
            statuses(state, "r").await,
            (
                RunStatus::Running,
                named(&[
                    ("build", JobStatus::Cancelling),
                    ("test", JobStatus::Cancelled),
                    ("report", JobStatus::Cancelled)
                ])
            ),
            "{db}: the run waits for its agent"
        );
        // The job finished as the cancel arrived: a job being cancelled ends cancelled.
        report(state, "a1", "r-build", 2, JobStatus::Success, None).await;
        let run = state.store.get_run(&RunId::from("r")).await.unwrap().unwrap();
        assert_eq!(
            (run.status, run.failure_reason.as_deref()),
            (RunStatus::Cancelled, Some("Cancelled by ops")),
            "{db}"
        );
        assert_eq!(
            statuses(state, "r").await.1[0],
            ("build".to_string(), JobStatus::Cancelled),
            "{db}"
        );
    }
}

#[tokio::test]
async fn messages_about_a_job_another_agent_holds_are_refused() {
    for (db, harness) in harnesses(&[]).await {
        let state = &harness.state;
        let _agent = build_on_a1(state, false).await;
        let _other = connect(state, "a2");
        report(state, "a2", "r-build", 1, JobStatus::Success, None).await;
        assert_eq!(
            statuses(state, "r").await.1[0],
            ("build".to_string(), JobStatus::Queued),
            "{db}"
        );
    }
}

/// A matrix evaluation that finishes while its run is being cancelled adds no jobs: it ends
/// cancelled, and so does the run.
#[tokio::test]
async fn an_evaluation_finishing_during_a_cancel_adds_no_jobs() {
    for (db, harness) in harnesses(&[]).await {
        let state = &harness.state;
        let workflow = matrix_workflow();
        let mut eval = new_job("r", "r-eval", "test", JobKind::MatrixEval);
        eval.status = JobStatus::Pending;
        state
            .store
            .insert_run(&new_run("r", Some(workflow)), &[eval], &[])
            .await
            .unwrap();
        progress::advance_run(state, &"r".into()).await.unwrap();
        let mut agent = connect(state, "a1");
        dispatcher::dispatch_pending(state).await.unwrap();
        assert_eq!(dispatched(&mut agent).job_id, "r-eval", "{db}");
        report(state, "a1", "r-eval", 1, JobStatus::Running, None).await;
        progress::cancel_run(state, &"r".into(), "Cancelled by ops", false)
            .await
            .unwrap();
        let done = JobStatusUpdate {
            matrix: Some(json!(["a", "b"])),
            ..status_update("r-eval", 2, JobStatus::Success)
        };
        send(state, "a1", done).await;
        assert_eq!(
            statuses(state, "r").await,
            (RunStatus::Cancelled, named(&[("test", JobStatus::Cancelled)])),
            "{db}: no `test (a)`, `test (b)` under a cancelled run"
        );
    }
}

/// Run `g`: `deploy-arm` and `deploy-linux` share concurrency group `deploy`; `lint` has none.
/// Their entries are queued together, so they are in queue order by job id.
async fn start_group_run(state: &Shared) {
    let job = |name: &str, label: &str, group: Option<&str>| {
        let mut job = json!({
            "_type": "static", "name": name, "runsOn": [{"kind": "exact", "value": label}],
            "steps": [{"name": "s", "hasOutputs": false}]
        });
        if let Some(group) = group {
            job["concurrencyGroup"] = json!(group);
        }
        job
    };
    let workflow = lock_workflow(json!([
        job("deploy-arm", "arm", Some("deploy")),
        job("deploy-linux", "linux", Some("deploy")),
        job("lint", "linux", None),
    ]));
    let jobs: Vec<_> = ["deploy-arm", "deploy-linux", "lint"]
        .iter()
        .enumerate()
        .map(|(position, name)| {
            let mut job = new_job("g", &format!("g-{name}"), name, JobKind::Execute);
            job.status = JobStatus::Pending;
            job.position = position as i64;
            job.runs_on = vec![kici_engine::labels::LabelMatcher::exact(if *name == "deploy-arm" {
                "arm"
            } else {
                "linux"
            })];
            job
        })
        .collect();
    state
        .store
        .insert_run(&new_run("g", Some(workflow)), &jobs, &[])
        .await
        .unwrap();
    progress::advance_run(state, &RunId::from("g")).await.unwrap();
}

fn nothing_sent(rx: &mut mpsc::Receiver<Outbound>) -> bool {
    matches!(rx.try_recv(), Err(mpsc::error::TryRecvError::Empty))
}

#[tokio::test]
async fn a_pass_reads_the_label_sets_idle_agents_fit_and_the_oldest_of_a_group_goes_first() {
    // A short queue timeout: every entry is near its expiry at once.
    for (db, harness) in harnesses(&[("KICI_QUEUE_TIMEOUT_MS", "30000")]).await {
        let state = &harness.state;
        start_group_run(state).await;
        let expiry = |job: &'static str| async move {
            let entry = state.store.queue_entry(&JobId::from(job)).await.unwrap().unwrap();
            entry.expires_at.unwrap()
        };
        let (arm_expiry, linux_expiry, lint_expiry) = (
            expiry("g-deploy-arm").await,
            expiry("g-deploy-linux").await,
            expiry("g-lint").await,
        );

        // `deploy-linux` fits the agent and comes before `lint`, but `deploy-arm`, older and
        // of its group, waits for an agent no one has: `lint` goes.
        let mut linux = connect_with(state, "a1", &["linux"]);
        dispatcher::dispatch_pending(state).await.unwrap();
        assert_eq!(dispatched(&mut linux).job_id, "g-lint", "{db}");

        // Waiting for its group does not count against a job's queue timeout, even when no
        // agent fits it; waiting for an agent does.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        dispatcher::postpone_group_expiries(state).await.unwrap();
        assert!(expiry("g-deploy-linux").await > linux_expiry, "{db}: postponed");
        assert_eq!(
            expiry("g-deploy-arm").await,
            arm_expiry,
            "{db}: the oldest waits for an agent"
        );
        assert_eq!(expiry("g-lint").await, lint_expiry, "{db}: taken");

        let mut arm = connect_with(state, "a2", &["arm"]);
        let mut linux2 = connect_with(state, "a3", &["linux"]);
        dispatcher::dispatch_pending(state).await.unwrap();
        assert_eq!(dispatched(&mut arm).job_id, "g-deploy-arm", "{db}");
        assert!(nothing_sent(&mut linux2), "{db}: its group is taken");
        // Its group is on an agent now: its expiry still moves on.
        let postponed = expiry("g-deploy-linux").await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        dispatcher::postpone_group_expiries(state).await.unwrap();
        assert!(expiry("g-deploy-linux").await > postponed, "{db}: postponed again");

        report(state, "a2", "g-deploy-arm", 1, JobStatus::Running, None).await;
        report(state, "a2", "g-deploy-arm", 2, JobStatus::Success, None).await;
        dispatcher::dispatch_pending(state).await.unwrap();
        assert_eq!(dispatched(&mut linux2).job_id, "g-deploy-linux", "{db}");
        assert!(nothing_sent(&mut arm), "{db}");
    }
}

#[tokio::test]
async fn an_agent_fitting_several_label_sets_takes_the_oldest_job_of_any() {
    for (db, harness) in harnesses(&[]).await {
        let state = &harness.state;
        start_group_run(state).await;
        // `deploy-arm` (label set arm) is older than `deploy-linux` and `lint` (linux).
        let mut both = connect_with(state, "a1", &["linux", "arm"]);
        dispatcher::dispatch_pending(state).await.unwrap();
        assert_eq!(dispatched(&mut both).job_id, "g-deploy-arm", "{db}");
        let mut linux = connect_with(state, "a2", &["linux"]);
        dispatcher::dispatch_pending(state).await.unwrap();
        assert_eq!(
            dispatched(&mut linux).job_id,
            "g-lint",
            "{db}: `deploy-linux` waits for its group"
        );
        report(state, "a1", "g-deploy-arm", 1, JobStatus::Running, None).await;
        report(state, "a1", "g-deploy-arm", 2, JobStatus::Success, None).await;
        dispatcher::dispatch_pending(state).await.unwrap();
        assert_eq!(dispatched(&mut both).job_id, "g-deploy-linux", "{db}");
    }
}
