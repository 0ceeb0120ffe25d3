//! Store tests, run against SQLite always and against PostgreSQL when
//! `KICI_TEST_POSTGRES_URL` names a server (the test command starts one;
//! `KICI_TEST_REQUIRE_POSTGRES=1` makes its absence a failure).

use kici_engine::dag::{Need, NeedsWhen};
use kici_engine::event::{EventEnvelope, EventType};
use kici_engine::failure::{InitFailure, InitFailureCategory, InitFailureScope};
use kici_engine::ids::{AgentId, JobId, RunId, SourceId};
use kici_engine::labels::LabelMatcher;
use kici_engine::status::{JobChange, JobEvent, JobStatus, RunStatus, StepStatus};

use super::*;

/// Every database the tests run on, each fresh.
pub(crate) async fn stores() -> Vec<(&'static str, Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&format!("sqlite://{}/kici.db?mode=rwc", dir.path().display()))
        .await
        .unwrap();
    let mut stores = vec![("sqlite", sqlite, Some(dir))];
    if let Some(url) = fresh_postgres_database().await {
        stores.push(("postgres", Store::open(&url).await.unwrap(), None));
    }
    stores
}

/// The URL of a new, empty PostgreSQL database; `None` without `KICI_TEST_POSTGRES_URL`.
async fn fresh_postgres_database() -> Option<String> {
    match std::env::var("KICI_TEST_POSTGRES_URL") {
        Ok(url) => {
            let admin = Store::open_admin(&url).await;
            let name = format!("kici_store_test_{}", uuid_like());
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await
                .unwrap();
            let (base, _) = url.rsplit_once('/').unwrap();
            Some(format!("{base}/{name}"))
        }
        Err(_) => {
            assert!(
                std::env::var("KICI_TEST_REQUIRE_POSTGRES").is_err(),
                "KICI_TEST_REQUIRE_POSTGRES is set but KICI_TEST_POSTGRES_URL is not"
            );
            None
        }
    }
}

impl Store {
    async fn open_admin(url: &str) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPoolOptions::new().max_connections(1).connect(url).await.unwrap()
    }
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}{:x}", std::process::id())
}

pub(crate) fn run(run_id: &str, created_at: i64) -> NewRun {
    let mut event = EventEnvelope::new(EventType::Push);
    event.target_branch = Some("main".into());
    NewRun {
        run_id: run_id.into(),
        source_id: "src".into(),
        repo: "acme/app".into(),
        workflow_name: "ci".into(),
        git_ref: "refs/heads/main".into(),
        sha: "abc".into(),
        trigger_type: "push".into(),
        provider: "local".into(),
        delivery_id: format!("d-{run_id}"),
        status: RunStatus::Pending,
        failure_reason: None,
        init_failure: None,
        event,
        repo_url: "file:///repo".into(),
        lock_workflow: None,
        created_at,
        completed_at: None,
        rerun_of: None,
        lockfile_hash: Some("c0ffee".into()),
        trust: None,
        actor: None,
    }
}

pub(crate) fn job(run_id: &str, job_id: &str, name: &str, needs: Vec<Need>, position: i64) -> NewJob {
    NewJob {
        job_id: job_id.into(),
        run_id: run_id.into(),
        job_name: name.into(),
        base_job_name: name.into(),
        kind: kici_engine::protocol::JobKind::Execute,
        matrix: None,
        status: JobStatus::Queued,
        runs_on: vec![LabelMatcher::exact("linux")],
        exclude_labels: vec![],
        needs,
        error_message: None,
        init_failure: None,
        position,
        created_at: 10,
        dynamic_index: None,
        definition: None,
        reused: None,
    }
}

pub(crate) fn entry(run_id: &str, job_id: &str, expires_at: Option<i64>) -> NewQueueEntry {
    NewQueueEntry {
        job_id: job_id.into(),
        run_id: run_id.into(),
        enqueued_at: 10,
        expires_at,
        dispatch: "{}".into(),
        concurrency_key: None,
    }
}

#[tokio::test]
async fn runs_jobs_and_steps_round_trip() {
    for (db, store, _dir) in stores().await {
        let needs = vec![Need::new("build", &NeedsWhen::Always)];
        store
            .insert_run(
                &run("r1", 10),
                &[job("r1", "j1", "build", vec![], 0), job("r1", "j2", "report", needs, 1)],
                &[entry("r1", "j1", None)],
            )
            .await
            .unwrap();
        let got = store.get_run(&RunId::from("r1")).await.unwrap().unwrap();
        assert_eq!(
            (got.status, got.workflow_name.as_str(), got.failure_reason),
            (RunStatus::Pending, "ci", None),
            "{db}"
        );
        let inputs = store.run_context(&RunId::from("r1")).await.unwrap().unwrap();
        assert_eq!(
            (
                inputs.event.target_branch.as_deref(),
                inputs.repo_url.as_str(),
                inputs.workflow,
                inputs.lockfile_hash.as_deref()
            ),
            (Some("main"), "file:///repo", None, Some("c0ffee")),
            "{db}"
        );

        assert!(
            store
                .transition_job(&JobId::from("j1"), &JobChange::on(JobEvent::Start), 20)
                .await
                .unwrap(),
            "{db}"
        );
        assert!(
            !store
                .transition_job(&JobId::from("j1"), &JobChange::on(JobEvent::Start), 21)
                .await
                .unwrap(),
            "{db}"
        );
        store.mark_run_running(&RunId::from("r1"), 20).await.unwrap();
        let step = |status, exit_code, now| StepUpdate {
            job_id: "j1".into(),
            step_index: 0,
            step_name: "compile".into(),
            step_type: "step".into(),
            status,
            exit_code,
            error_message: (status == StepStatus::Failed).then(|| "boom".to_string()),
            duration_ms: (status != StepStatus::Running).then_some(5),
            secrets_accessed: if status == StepStatus::Failed {
                vec!["DEPLOY_KEY".to_string()]
            } else {
                Vec::new()
            },
            now,
        };
        store.upsert_step(&step(StepStatus::Running, None, 21)).await.unwrap();
        store.upsert_step(&step(StepStatus::Failed, Some(3), 26)).await.unwrap();
        // A replayed `running` does not reopen a finished step.
        store.upsert_step(&step(StepStatus::Running, None, 27)).await.unwrap();
        assert!(
            store
                .finish_job(
                    "j1",
                    &JobChange::reported(JobStatus::Failed),
                    Some("Step 'compile' failed (exit code 3)"),
                    None,
                    30
                )
                .await
                .unwrap()
        );
        assert!(
            !store
                .finish_job("j1", &JobChange::reported(JobStatus::Success), None, None, 31)
                .await
                .unwrap(),
            "{db}: finished twice"
        );

        let jobs = store.run_jobs(&RunId::from("r1"), true).await.unwrap();
        assert_eq!(jobs.len(), 2, "{db}");
        let build = &jobs[0].job;
        assert_eq!(
            (build.status, build.duration_ms, build.error_message.as_deref()),
            (JobStatus::Failed, Some(10), Some("Step 'compile' failed (exit code 3)")),
            "{db}"
        );
        let steps = build.steps.as_ref().unwrap();
        assert_eq!(
            (
                steps[0].status,
                steps[0].exit_code,
                steps[0].started_at,
                steps[0].completed_at
            ),
            (StepStatus::Failed, Some(3), Some(21), Some(26)),
            "{db}"
        );
        assert_eq!(steps[0].secrets_accessed, ["DEPLOY_KEY"], "{db}");
        assert_eq!(jobs[1].needs, vec![Need::new("build", &NeedsWhen::Always)], "{db}");
        assert_eq!(jobs[1].job.needs[0].run_on.len(), 6, "{db}");

        assert!(
            store
                .complete_run(
                    &RunId::from("r1"),
                    RunStatus::Failed,
                    &ReasonUpdate::IfEmpty("Failed jobs: build".into()),
                    40
                )
                .await
                .unwrap()
        );
        assert!(
            !store
                .complete_run(&RunId::from("r1"), RunStatus::Success, &ReasonUpdate::Clear, 41)
                .await
                .unwrap(),
            "{db}"
        );
        let got = store.get_run(&RunId::from("r1")).await.unwrap().unwrap();
        assert_eq!(
            (got.status, got.failure_reason.as_deref(), got.duration_ms),
            (RunStatus::Failed, Some("Failed jobs: build"), Some(20)),
            "{db}"
        );
    }
}

/// The engine's table is the store's: from every persisted status, every event is written
/// exactly when `transition` allows it, and lands where the table says.
#[tokio::test]
async fn the_store_writes_exactly_the_engine_transitions() {
    use kici_engine::status::{RunStatusEvent, run_transition, transition};
    for (db, store, _dir) in stores().await {
        let mut n = 0;
        for from in JobStatus::ALL {
            for event in JobEvent::ALL {
                n += 1;
                let (run_id, job_id) = (format!("r{n}"), format!("j{n}"));
                let mut row = job(&run_id, &job_id, "build", vec![], 0);
                row.status = from;
                store.insert_run(&run(&run_id, 10), &[row], &[]).await.unwrap();
                let want = transition(from.state(), event).ok().and_then(JobStatus::of);
                let change = JobChange::on(event);
                let ends = change.moves().iter().any(|(_, to)| to.is_terminal());
                let applied = if ends {
                    store.finish_job(&job_id, &change, None, None, 20).await.unwrap()
                } else {
                    store.transition_job(&JobId::from(&job_id), &change, 20).await.unwrap()
                };
                let now = store.get_job(&JobId::from(&job_id)).await.unwrap().unwrap().job.status;
                assert_eq!(
                    (applied, now),
                    (want.is_some(), want.unwrap_or(from)),
                    "{db}: {from} --{event}-->"
                );
            }
        }
        for from in RunStatus::ALL {
            let events = std::iter::once(RunStatusEvent::Start).chain(RunStatus::ALL.map(RunStatusEvent::Finish));
            for event in events {
                n += 1;
                let run_id = format!("r{n}");
                let mut row = run(&run_id, 10);
                row.status = from;
                store.insert_run(&row, &[], &[]).await.unwrap();
                let applied = match event {
                    RunStatusEvent::Start => {
                        store.mark_run_running(&RunId::from(&run_id), 20).await.unwrap();
                        store.get_run(&RunId::from(&run_id)).await.unwrap().unwrap().status != from
                    }
                    RunStatusEvent::Finish(to) => store
                        .complete_run(&RunId::from(&run_id), to, &ReasonUpdate::Keep, 20)
                        .await
                        .unwrap(),
                };
                let now = store.get_run(&RunId::from(&run_id)).await.unwrap().unwrap().status;
                let want = run_transition(from, event).ok();
                assert_eq!(
                    (applied, now),
                    (want.is_some(), want.unwrap_or(from)),
                    "{db}: run {from} --{event:?}-->"
                );
            }
        }
    }
}

#[tokio::test]
async fn specific_failure_reasons_beat_generic_ones() {
    for (db, store, _dir) in stores().await {
        let mut failed = run("r", 1);
        failed.status = RunStatus::Running;
        failed.failure_reason = Some("Matrix expansion failed for job 'test': boom".into());
        failed.init_failure = Some(InitFailure {
            scope: InitFailureScope::Run,
            category: InitFailureCategory::MatrixExpansion,
            message: "Matrix expansion failed for job 'test': boom".into(),
            job_name: Some("test".into()),
        });
        store.insert_run(&failed, &[], &[]).await.unwrap();
        store
            .complete_run(
                &RunId::from("r"),
                RunStatus::Failed,
                &ReasonUpdate::IfEmpty("No agents available to dispatch jobs".into()),
                5,
            )
            .await
            .unwrap();
        let got = store.get_run(&RunId::from("r")).await.unwrap().unwrap();
        assert_eq!(
            got.failure_reason.as_deref(),
            Some("Matrix expansion failed for job 'test': boom"),
            "{db}"
        );
        assert_eq!(
            got.init_failure.unwrap().category,
            InitFailureCategory::MatrixExpansion,
            "{db}"
        );
    }
}

#[tokio::test]
async fn list_runs_filters_and_pages_newest_first() {
    for (db, store, _dir) in stores().await {
        for i in 0..5 {
            store
                .insert_run(&run(&format!("r{i}"), 100 + i), &[], &[])
                .await
                .unwrap();
        }
        store
            .complete_run(&RunId::from("r1"), RunStatus::Failed, &ReasonUpdate::Keep, 200)
            .await
            .unwrap();
        store
            .complete_run(&RunId::from("r3"), RunStatus::Failed, &ReasonUpdate::Keep, 200)
            .await
            .unwrap();
        let filter = RunFilter {
            limit: 2,
            ..RunFilter::default()
        };
        let (page, total) = store.list_runs(&filter).await.unwrap();
        assert_eq!(
            (page.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(), total),
            (vec!["r4", "r3"], 5),
            "{db}"
        );
        let failed = RunFilter {
            statuses: vec![RunStatus::Failed],
            workflow: Some("ci".into()),
            repo: Some("acme/app".into()),
            since: Some(101),
            limit: 20,
            offset: 0,
        };
        let (page, total) = store.list_runs(&failed).await.unwrap();
        assert_eq!(
            (page.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(), total),
            (vec!["r3", "r1"], 2),
            "{db}"
        );
        let none = RunFilter {
            workflow: Some("other".into()),
            limit: 20,
            ..RunFilter::default()
        };
        assert_eq!(store.list_runs(&none).await.unwrap().1, 0, "{db}");
    }
}

#[tokio::test]
async fn a_run_with_only_queued_or_running_jobs_left_needs_no_decision() {
    for (db, store, _dir) in stores().await {
        let with = |run_id: &'static str, statuses: [JobStatus; 2]| {
            let store = store.clone();
            async move {
                let jobs: Vec<_> = statuses
                    .iter()
                    .enumerate()
                    .map(|(i, status)| {
                        let mut job = job(run_id, &format!("{run_id}-{i}"), "j", vec![], i as i64);
                        job.status = *status;
                        job
                    })
                    .collect();
                store.insert_run(&run(run_id, 1), &jobs, &[]).await.unwrap();
                store.only_placed_jobs_left(&RunId::from(run_id)).await.unwrap()
            }
        };
        assert!(with("a", [JobStatus::Queued, JobStatus::Running]).await, "{db}");
        assert!(with("b", [JobStatus::Success, JobStatus::Recovering]).await, "{db}");
        assert!(
            !with("c", [JobStatus::Queued, JobStatus::Pending]).await,
            "{db}: a pending job"
        );
        assert!(
            !with("d", [JobStatus::Running, JobStatus::Held]).await,
            "{db}: a held job"
        );
        assert!(
            !with("e", [JobStatus::Success, JobStatus::Failed]).await,
            "{db}: all finished"
        );
    }
}

/// The dispatcher's pages: oldest first, ties by job id, each entry once, claimed ones gone.
#[tokio::test]
async fn waiting_entries_are_read_a_page_at_a_time_in_queue_order() {
    for (db, store, _dir) in stores().await {
        let names = ["e", "d", "c", "b", "a"];
        let jobs: Vec<_> = names.iter().map(|n| job("r", n, n, vec![], 0)).collect();
        let mut entries: Vec<_> = names.iter().map(|n| entry("r", n, None)).collect();
        // `e` and `d` were queued later; the others tie.
        entries[0].enqueued_at = 30;
        entries[1].enqueued_at = 20;
        store.insert_run(&run("r", 1), &jobs, &entries).await.unwrap();
        store
            .claim_entry(&JobId::from("b"), &AgentId::from("agent-1"), 50)
            .await
            .unwrap();
        let mut seen = Vec::new();
        let mut after: Option<(i64, JobId)> = None;
        loop {
            let page = store
                .pending_entries_after(after.as_ref().map(|(at, job)| (*at, job)), 2)
                .await
                .unwrap();
            assert!(page.len() <= 2, "{db}");
            let Some(last) = page.last() else { break };
            after = Some((last.enqueued_at, last.job_id.clone()));
            seen.extend(page.iter().map(|e| e.job_id.to_string()));
        }
        assert_eq!(seen, ["a", "c", "d", "e"], "{db}");
        let mut ids: Vec<String> = store
            .pending_job_ids()
            .await
            .unwrap()
            .into_iter()
            .map(|id| id.to_string())
            .collect();
        ids.sort();
        assert_eq!(ids, ["a", "c", "d", "e"], "{db}");
    }
}

#[tokio::test]
async fn waiting_entries_are_read_by_label_set_and_concurrency_group() {
    for (db, store, _dir) in stores().await {
        // `a`, `c` and `e` need linux; `b` needs gpu and not arm; `d` (gpu) is claimed. `b`,
        // `c` and `e` share a concurrency group.
        let gpu = |mut j: NewJob| {
            j.runs_on = vec![LabelMatcher::exact("gpu")];
            j.exclude_labels = vec![LabelMatcher::Regex {
                source: "^arm".into(),
                flags: String::new(),
            }];
            j
        };
        let jobs = vec![
            job("r", "a", "a", vec![], 0),
            gpu(job("r", "b", "b", vec![], 1)),
            job("r", "c", "c", vec![], 2),
            gpu(job("r", "d", "d", vec![], 3)),
            job("r", "e", "e", vec![], 4),
        ];
        let group = concurrency_key("acme/app", "deploy");
        let entries: Vec<_> = ["a", "b", "c", "d", "e"]
            .iter()
            .enumerate()
            .map(|(i, n)| NewQueueEntry {
                enqueued_at: 10 + i as i64,
                expires_at: Some(100 + i as i64),
                concurrency_key: ["b", "c", "e"].contains(n).then(|| group.clone()),
                ..entry("r", n, None)
            })
            .collect();
        store.insert_run(&run("r", 1), &jobs, &entries).await.unwrap();
        store
            .claim_entry(&JobId::from("d"), &AgentId::from("agent-1"), 50)
            .await
            .unwrap();

        let sets: Vec<_> = store
            .waiting_label_sets()
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let mut described: Vec<_> = sets
            .iter()
            .map(|set| (set.runs_on.clone(), set.exclude_labels.len()))
            .collect();
        described.sort_by_key(|(runs_on, _)| runs_on[0].display());
        assert_eq!(
            described,
            [
                (vec![LabelMatcher::exact("gpu")], 1),
                (vec![LabelMatcher::exact("linux")], 0)
            ],
            "{db}"
        );
        let linux = sets
            .iter()
            .find(|s| s.runs_on == [LabelMatcher::exact("linux")])
            .unwrap();
        let read_linux = || async {
            let mut seen = Vec::new();
            let mut after: Option<(i64, JobId)> = None;
            loop {
                let page = store
                    .pending_entries_of_label_set(&linux.key, after.as_ref().map(|(at, job)| (*at, job)), 2)
                    .await
                    .unwrap();
                let Some(last) = page.last() else { break };
                after = Some((last.enqueued_at, last.job_id.clone()));
                seen.extend(page.iter().map(|e| e.job_id.to_string()));
            }
            seen
        };
        assert_eq!(read_linux().await, ["a", "c", "e"], "{db}");

        // An entry an older build queued has no label set: it is indexed before a pass reads.
        sqlx::query("UPDATE dispatch_queue SET label_set = NULL, concurrency_key = NULL WHERE job_id = 'e'")
            .execute(&store.pool)
            .await
            .unwrap();
        assert_eq!(read_linux().await, ["a", "c"], "{db}");
        let indexed = store.index_waiting_entries(|e| (e.job_id == "e").then(|| group.clone()));
        assert_eq!(indexed.await.unwrap(), 1, "{db}");
        assert_eq!(read_linux().await, ["a", "c", "e"], "{db}");
        assert_eq!(store.index_waiting_entries(|_| None).await.unwrap(), 0, "{db}");

        // `b` is the group's oldest waiting entry.
        let taken = |job: &'static str, at: i64| {
            let (store, group) = (store.clone(), group.clone());
            async move { store.group_taken(&group, at, &JobId::from(job)).await.unwrap() }
        };
        assert!(!taken("b", 11).await, "{db}");
        assert!(taken("c", 12).await, "{db}");
        assert!(taken("e", 14).await, "{db}");
        assert!(
            !store.group_taken("other", 14, &JobId::from("e")).await.unwrap(),
            "{db}"
        );
        // An older entry of a run waiting for its turn in its workflow's group holds nothing.
        let mut waiting = job("q", "f", "f", vec![], 0);
        waiting.run_id = "q".into();
        let older = NewQueueEntry {
            enqueued_at: 5,
            concurrency_key: Some(group.clone()),
            ..entry("q", "f", None)
        };
        store.insert_run(&run("q", 2), &[waiting], &[older]).await.unwrap();
        let slot = |state| Slot {
            run_id: "q".into(),
            repo: "acme/app".into(),
            group_key: "workflow".into(),
            state,
            created_at: 1,
        };
        assert!(store.add_concurrency_slot(&slot(SlotState::Queued)).await.unwrap());
        assert!(!taken("b", 11).await, "{db}: `f` waits for its run's turn");
        store.remove_concurrency_slot(&RunId::from("q")).await.unwrap();
        assert!(taken("b", 11).await, "{db}: `f` is older");

        let expiring: Vec<_> = store
            .group_entries_expiring_before(103)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.job_id.to_string())
            .collect();
        assert_eq!(expiring, ["b", "c"], "{db}");

        // A group is taken while one of its entries is on an agent; once every entry of a set
        // is taken, the set is gone.
        store
            .claim_entry(&JobId::from("f"), &AgentId::from("agent-2"), 50)
            .await
            .unwrap();
        store
            .claim_entry(&JobId::from("b"), &AgentId::from("agent-3"), 50)
            .await
            .unwrap();
        assert!(taken("c", 12).await, "{db}");
        let sets = store.waiting_label_sets().await.unwrap();
        assert_eq!(sets.len(), 1, "{db}");
        assert_eq!(sets[0].as_ref().unwrap().key, linux.key, "{db}");
    }
}

#[tokio::test]
async fn the_queue_claims_once_recovers_and_expires() {
    for (db, store, _dir) in stores().await {
        store
            .insert_run(
                &run("r", 1),
                &[job("r", "a", "a", vec![], 0), job("r", "b", "b", vec![], 1)],
                &[entry("r", "a", Some(100)), entry("r", "b", None)],
            )
            .await
            .unwrap();
        assert_eq!(store.pending_entries().await.unwrap().len(), 2, "{db}");
        assert!(
            store
                .claim_entry(&JobId::from("a"), &AgentId::from("agent-1"), 50)
                .await
                .unwrap(),
            "{db}"
        );
        assert!(
            !store
                .claim_entry(&JobId::from("a"), &AgentId::from("agent-2"), 50)
                .await
                .unwrap(),
            "{db}: claimed twice"
        );
        let job_agent = |id: &'static str| {
            let store = store.clone();
            async move { store.get_job(&JobId::from(id)).await.unwrap().unwrap().job.agent_id }
        };
        assert_eq!(
            job_agent("a").await.as_deref(),
            Some("agent-1"),
            "{db}: the claim names the agent"
        );
        let entry = store.queue_entry(&JobId::from("a")).await.unwrap().unwrap();
        assert_eq!(
            (
                entry.status,
                entry.agent_id.as_deref(),
                entry.attempts,
                entry.runs_on.clone()
            ),
            (
                QueueStatus::Dispatched,
                Some("agent-1"),
                1,
                vec![LabelMatcher::exact("linux")]
            ),
            "{db}"
        );
        assert_eq!(store.overdue_acks(60).await.unwrap().len(), 1, "{db}");
        store.entry_acknowledged(&JobId::from("a")).await.unwrap();
        assert!(store.overdue_acks(60).await.unwrap().is_empty(), "{db}");
        assert_eq!(
            store
                .recover_agent_entries(&AgentId::from("agent-1"), 500)
                .await
                .unwrap(),
            vec!["a".to_string()],
            "{db}"
        );
        assert!(store.overdue_recoveries(499).await.unwrap().is_empty(), "{db}");
        assert_eq!(store.overdue_recoveries(500).await.unwrap().len(), 1, "{db}");
        assert!(
            store
                .reclaim_entry(&JobId::from("a"), &AgentId::from("agent-1"))
                .await
                .unwrap(),
            "{db}"
        );
        assert!(store.requeue_entry(&JobId::from("a")).await.unwrap(), "{db}");
        assert_eq!(job_agent("a").await, None, "{db}: the requeue frees the job");
        assert_eq!(
            store
                .expired_entries(100)
                .await
                .unwrap()
                .iter()
                .map(|e| e.job_id.as_str())
                .collect::<Vec<_>>(),
            ["a"],
            "{db}"
        );
        store
            .set_provisioning_error(&JobId::from("a"), "spawn node ENOENT")
            .await
            .unwrap();
        let expiry = crate::JobEnd {
            job_id: &JobId::from("a"),
            run_id: &RunId::from("r"),
            change: JobChange::on(JobEvent::Fail).failing_as(JobStatus::TimedOutStale),
            error: Some("spawn node ENOENT"),
            init_failure: None,
            entry: Some(QueueStatus::Expired),
            only_if_entry_open: true,
            open_steps: None,
            run_reason: Some("No agents available"),
            now: 200,
        };
        assert!(store.end_job(&expiry).await.unwrap(), "{db}");
        assert!(!store.end_job(&expiry).await.unwrap(), "{db}: expired twice");
        let entry = store.queue_entry(&JobId::from("a")).await.unwrap().unwrap();
        assert_eq!(
            (entry.status, entry.last_provisioning_error.as_deref()),
            (QueueStatus::Expired, Some("spawn node ENOENT")),
            "{db}"
        );
        let a = store.get_job(&JobId::from("a")).await.unwrap().unwrap();
        assert_eq!(
            (a.job.status, a.job.error_message.as_deref()),
            (JobStatus::TimedOutStale, Some("spawn node ENOENT")),
            "{db}"
        );
        let r = store.get_run(&RunId::from("r")).await.unwrap().unwrap();
        assert_eq!(r.failure_reason.as_deref(), Some("No agents available"), "{db}");
    }
}

#[tokio::test]
async fn sequence_numbers_apply_once() {
    for (db, store, _dir) in stores().await {
        store
            .insert_run(&run("r", 1), &[job("r", "j", "j", vec![], 0)], &[])
            .await
            .unwrap();
        assert!(store.advance_seq(&JobId::from("j"), 1, 5).await.unwrap(), "{db}");
        assert!(store.advance_seq(&JobId::from("j"), 2, 5).await.unwrap(), "{db}");
        assert!(
            !store.advance_seq(&JobId::from("j"), 2, 5).await.unwrap(),
            "{db}: replay applied"
        );
        assert!(!store.advance_seq(&JobId::from("j"), 1, 5).await.unwrap(), "{db}");
        assert_eq!(
            store.get_job(&JobId::from("j")).await.unwrap().unwrap().last_seq,
            2,
            "{db}"
        );
    }
}

#[tokio::test]
async fn deliveries_are_claimed_once_by_id_and_by_body_until_they_expire() {
    let delivery = |id: &str, body: &str, at: i64| crate::NewDelivery {
        delivery_id: id.into(),
        source_id: "s".into(),
        event_type: "push".into(),
        body_key: body.into(),
        normalized: "{}".into(),
        created_at: at,
    };
    for (db, store, _dir) in stores().await {
        assert!(
            store.claim_new_delivery(&delivery("d1", "b1", 0), 100).await.unwrap(),
            "{db}"
        );
        assert!(
            !store.claim_new_delivery(&delivery("d1", "b2", 50), 150).await.unwrap(),
            "{db}: same id"
        );
        assert!(
            !store.claim_new_delivery(&delivery("d2", "b1", 50), 150).await.unwrap(),
            "{db}: replayed body"
        );
        let record = store.get_delivery("d1").await.unwrap().unwrap();
        assert_eq!(
            (record.status.as_str(), record.body_key.as_str()),
            ("processing", "b1"),
            "{db}"
        );
        assert!(
            store.get_delivery("d2").await.unwrap().is_none(),
            "{db}: a refused claim records nothing"
        );
        assert_eq!(store.unfinished_deliveries().await.unwrap().len(), 1, "{db}");
        store
            .finish_delivery("d1", "processed", &[RunId::from("r1")], None, 60)
            .await
            .unwrap();
        let record = store.get_delivery("d1").await.unwrap().unwrap();
        assert_eq!(
            (record.status.as_str(), record.run_ids, record.updated_at),
            ("processed", vec![RunId::from("r1")], 60),
            "{db}"
        );
        assert!(store.unfinished_deliveries().await.unwrap().is_empty(), "{db}");
        assert!(
            store.claim_new_delivery(&delivery("d1", "b1", 100), 200).await.unwrap(),
            "{db}: expired claims kept"
        );
        store.release_delivery("d1", "b1").await.unwrap();
        assert!(
            store.claim_new_delivery(&delivery("d1", "b1", 101), 200).await.unwrap(),
            "{db}"
        );
        assert_eq!(
            store.get_delivery("d1").await.unwrap().unwrap().status,
            "processing",
            "{db}"
        );
    }
}

#[tokio::test]
async fn tokens_sources_and_agents() {
    for (db, store, _dir) in stores().await {
        let admin = AdminToken {
            token_id: "t1".into(),
            label: "ops".into(),
            role: "owner".into(),
            teams: vec!["release".into()],
            created_at: 1,
            last_used_at: None,
            revoked_at: None,
        };
        assert!(store.insert_admin_token(&admin, "hash-1").await.unwrap(), "{db}");
        assert!(
            !store.insert_admin_token(&admin, "hash-1").await.unwrap(),
            "{db}: same hash stored twice"
        );
        assert_eq!(
            store.use_admin_token("hash-1", 5).await.unwrap().unwrap().last_used_at,
            None,
            "{db}"
        );
        assert_eq!(
            store.list_admin_tokens().await.unwrap()[0].last_used_at,
            Some(5),
            "{db}"
        );
        assert!(store.revoke_admin_token("t1", 6).await.unwrap(), "{db}");
        assert!(
            store.use_admin_token("hash-1", 7).await.unwrap().is_none(),
            "{db}: revoked token accepted"
        );

        let token = NewAgentToken {
            token_id: "a1".into(),
            label: "builder".into(),
            token_prefix: "kat_12ab".into(),
            token_hash: "h".into(),
            labels: vec!["linux".into()],
            agent_type: "static".into(),
            created_at: 1,
            expires_at: Some(100),
        };
        store.insert_agent_token(&token).await.unwrap();
        assert_eq!(
            store.use_agent_token("h", 50).await.unwrap().unwrap().labels,
            ["linux"],
            "{db}"
        );
        assert!(
            store.use_agent_token("h", 100).await.unwrap().is_none(),
            "{db}: expired token accepted"
        );
        assert!(store.revoke_agent_token("builder", 60).await.unwrap(), "{db}");

        let source = Source {
            source_id: "s1".into(),
            org_id: "default".into(),
            name: "app".into(),
            kind: SourceKind::Local,
            path: Some("/repo".into()),
            git_url: None,
            preset: None,
            verification: Verification::None,
            secret: None,
            credentials: None,
            max_payload_bytes: 1024,
            rate_limit_rpm: 600,
            created_at: 1,
            api_url: None,
            app_id: None,
            enabled: true,
            previous_secret: None,
            previous_secret_until: None,
            allowed_owners: None,
            allowed_ips: None,
        };
        assert!(store.insert_source(&source).await.unwrap(), "{db}");
        assert!(
            !store
                .insert_source(&Source {
                    source_id: "s2".into(),
                    ..source.clone()
                })
                .await
                .unwrap(),
            "{db}: duplicate name"
        );
        assert_eq!(
            store.find_source("default", "app").await.unwrap(),
            Some(source.clone()),
            "{db}"
        );
        assert_eq!(
            store.get_source(&"s1".into()).await.unwrap().as_ref(),
            Some(&source),
            "{db}"
        );
        assert_eq!(store.get_source(&"s2".into()).await.unwrap(), None, "{db}");
        assert_eq!(store.find_source("default", "s1").await.unwrap(), Some(source), "{db}");
        assert_eq!(store.find_source("other", "s1").await.unwrap(), None, "{db}");

        let agent = AgentRecord {
            agent_id: "ag".into(),
            token_id: Some("a1".into()),
            labels: vec!["linux".into()],
            hostname: "h".into(),
            platform: "linux".into(),
            arch: "x86_64".into(),
            version: "0.1.0".into(),
            build_info: None,
            connected: true,
            first_seen_at: 1,
            last_seen_at: 1,
        };
        store.upsert_agent(&agent).await.unwrap();
        store
            .upsert_agent(&AgentRecord {
                last_seen_at: 9,
                ..agent.clone()
            })
            .await
            .unwrap();
        store.disconnect_all_agents().await.unwrap();
        let agents = store.list_agents().await.unwrap();
        assert_eq!(
            (
                agents.len(),
                agents[0].connected,
                agents[0].first_seen_at,
                agents[0].last_seen_at
            ),
            (1, false, 1, 9),
            "{db}"
        );
    }
}

#[test]
fn database_passwords_are_redacted() {
    assert_eq!(
        redact_url("postgres://kici:s3cret@db:5432/kici"),
        "postgres://kici:***@db:5432/kici"
    );
    assert_eq!(
        redact_url("sqlite:///var/lib/kici/kici.db"),
        "sqlite:///var/lib/kici/kici.db"
    );
    assert_eq!(
        redact_url("postgres://kici@db/kici?sslmode=require&password=s3cret"),
        "postgres://kici@db/kici?sslmode=require&password=***"
    );
}

#[tokio::test]
async fn run_events_read_back_in_time_order_with_their_titles() {
    for (db, store, _dir) in stores().await {
        let event = |id: &str, event_type: &str, ts: i64| crate::NewRunEvent {
            event_id: id.to_string(),
            run_id: RunId::from("r".to_string()),
            job_id: Some(JobId::from("j".to_string())),
            event_type: kici_engine::api::RunEventType::from(event_type.to_string()),
            source_service: "orchestrator".to_string(),
            timestamp_ms: ts,
            metadata: serde_json::json!({"agentId": "scaler-bare-metal-1", "detail": "boom", "category": "scaler"}),
        };
        store.insert_run_event(&event("e2", "scaler.failed", 20)).await.unwrap();
        store
            .insert_run_event(&event("e1", "scaler.provisioning", 10))
            .await
            .unwrap();
        // A replayed insert is ignored.
        store
            .insert_run_event(&event("e1", "scaler.provisioning", 10))
            .await
            .unwrap();
        let events = store.run_events(&RunId::from("r")).await.unwrap();
        let summary: Vec<(&str, &str, i64)> = events
            .iter()
            .map(|e| (e.event_type.as_str(), e.title.as_str(), e.timestamp_ms))
            .collect();
        assert_eq!(
            summary,
            [
                ("scaler.provisioning", "Provisioning", 10),
                ("scaler.failed", "Provisioning failed", 20)
            ],
            "{db}"
        );
        assert_eq!(events[1].metadata["detail"], "boom", "{db}");
        assert!(
            store.run_events(&RunId::from("other")).await.unwrap().is_empty(),
            "{db}"
        );
    }
}

#[tokio::test]
async fn pruning_deletes_only_what_finished_before_the_cutoff() {
    for (db, store, _dir) in stores().await {
        for (run_id, done_at) in [("old", Some(100)), ("new", Some(10_000)), ("going", None)] {
            let job_id = format!("{run_id}-j");
            store
                .insert_run(
                    &run(run_id, 1),
                    &[job(run_id, &job_id, "build", vec![], 0)],
                    &[entry(run_id, &job_id, None)],
                )
                .await
                .unwrap();
            store
                .insert_run_event(&crate::NewRunEvent {
                    event_id: format!("{run_id}-e"),
                    run_id: run_id.into(),
                    job_id: None,
                    event_type: kici_engine::api::RunEventType::ScalerReady,
                    source_service: "orchestrator".into(),
                    timestamp_ms: 1,
                    metadata: serde_json::json!({}),
                })
                .await
                .unwrap();
            if let Some(at) = done_at {
                store
                    .complete_run(
                        &RunId::from(run_id),
                        RunStatus::Success,
                        &crate::ReasonUpdate::Clear,
                        at,
                    )
                    .await
                    .unwrap();
            }
        }
        let delivery = |id: &str, at: i64| crate::NewDelivery {
            delivery_id: id.into(),
            source_id: "s".into(),
            event_type: "push".into(),
            body_key: format!("body-{id}"),
            normalized: "{}".into(),
            created_at: at,
        };
        for (id, status) in [
            ("d-old", Some("processed")),
            ("d-stuck", None),
            ("d-new", Some("processed")),
        ] {
            let at = if id == "d-new" { 10_000 } else { 100 };
            assert!(
                store.claim_new_delivery(&delivery(id, at), at + 1000).await.unwrap(),
                "{db}"
            );
            if let Some(status) = status {
                store.finish_delivery(id, status, &[], None, at).await.unwrap();
            }
        }
        let body = serde_json::json!({});
        for (id, at, dead) in [
            ("ev-old", 100, false),
            ("ev-dead", 100, true),
            ("ev-new", 10_000, false),
        ] {
            store.enqueue_event(id, "kici_event", &body, at).await.unwrap();
            store.claim_kici_event(id, at, 60_000).await.unwrap();
            if dead {
                store.event_failed((id, 1), "failed", &[], None, at).await.unwrap();
            } else {
                store.event_delivered(id, 1, &[], at).await.unwrap();
            }
        }
        let pruned = store.prune(5_000, 5_000, 10).await.unwrap();
        assert_eq!(pruned.run_ids, ["old"], "{db}");
        assert_eq!(pruned.events, 1, "{db}: a dead event stays until an operator decides");
        assert!(store.get_kici_event("ev-dead").await.unwrap().is_some(), "{db}");
        assert!(store.get_kici_event("ev-new").await.unwrap().is_some(), "{db}");
        assert_eq!(
            (pruned.deliveries, pruned.claims),
            (1, 4),
            "{db}: d-old's row; the claims of d-old and d-stuck"
        );
        assert!(store.get_run(&RunId::from("old")).await.unwrap().is_none(), "{db}");
        assert!(
            store.get_job(&JobId::from("old-j")).await.unwrap().is_none(),
            "{db}: jobs go with their run"
        );
        assert!(
            store.queue_entry(&JobId::from("old-j")).await.unwrap().is_none(),
            "{db}"
        );
        assert!(store.run_events(&RunId::from("old")).await.unwrap().is_empty(), "{db}");
        for kept in ["new", "going"] {
            assert!(
                store.get_run(&RunId::from(kept)).await.unwrap().is_some(),
                "{db}: {kept}"
            );
            assert_eq!(
                store.run_events(&RunId::from(kept)).await.unwrap().len(),
                1,
                "{db}: {kept}"
            );
        }
        assert!(store.get_delivery("d-old").await.unwrap().is_none(), "{db}");
        assert!(
            store.get_delivery("d-stuck").await.unwrap().is_some(),
            "{db}: still processing"
        );
        assert!(store.get_delivery("d-new").await.unwrap().is_some(), "{db}");
        assert_eq!(
            store.prune(5_000, 5_000, 10).await.unwrap(),
            crate::Pruned::default(),
            "{db}"
        );
    }
}

#[tokio::test]
async fn sealed_source_values_are_replaced_only_while_unchanged() {
    for (db, store, _dir) in stores().await {
        let source = Source {
            source_id: "g1".into(),
            org_id: "default".into(),
            name: "forge".into(),
            kind: SourceKind::Generic,
            path: None,
            git_url: Some("https://u:p@forge.example/{owner}/{name}.git".into()),
            preset: Some("github-repo".into()),
            verification: Verification::HmacSha256,
            secret: Some("enc:v1:aaaa:secret".into()),
            credentials: Some("enc:v1:aaaa:credentials".into()),
            max_payload_bytes: 1024,
            rate_limit_rpm: 600,
            created_at: 1,
            api_url: None,
            app_id: None,
            enabled: true,
            previous_secret: None,
            previous_secret_until: None,
            allowed_owners: None,
            allowed_ips: None,
        };
        assert!(store.insert_source(&source).await.unwrap(), "{db}");
        assert_eq!(
            store.find_source("default", "forge").await.unwrap().as_ref(),
            Some(&source),
            "{db}"
        );
        let replaced = |column, current: &'static str, replacement: &'static str| {
            let store = store.clone();
            async move {
                store
                    .replace_sealed(&SourceId::from("g1"), column, current, replacement)
                    .await
                    .unwrap()
            }
        };
        assert!(
            replaced(SealedColumn::Secret, "enc:v1:aaaa:secret", "enc:v1:bbbb:secret").await,
            "{db}"
        );
        assert!(
            !replaced(SealedColumn::Secret, "enc:v1:aaaa:secret", "enc:v1:cccc:secret").await,
            "{db}: stale"
        );
        assert!(
            replaced(
                SealedColumn::Credentials,
                "enc:v1:aaaa:credentials",
                "enc:v1:bbbb:credentials"
            )
            .await,
            "{db}"
        );
        let found = store.find_source("default", "g1").await.unwrap().unwrap();
        assert_eq!(
            (found.secret.as_deref(), found.credentials.as_deref()),
            (Some("enc:v1:bbbb:secret"), Some("enc:v1:bbbb:credentials")),
            "{db}"
        );
        // Credentials move out of a git URL only for a source that has none yet.
        let url = "https://u:p@forge.example/{owner}/{name}.git";
        let clean = "https://forge.example/{owner}/{name}.git";
        assert!(
            !store
                .move_git_url_credentials(&SourceId::from("g1"), url, clean, "enc:v1:x:y")
                .await
                .unwrap(),
            "{db}"
        );
        let legacy = Source {
            source_id: "g2".into(),
            name: "legacy".into(),
            credentials: None,
            ..source.clone()
        };
        assert!(store.insert_source(&legacy).await.unwrap(), "{db}");
        assert!(
            store
                .move_git_url_credentials(&SourceId::from("g2"), url, clean, "enc:v1:x:y")
                .await
                .unwrap(),
            "{db}"
        );
        assert!(
            !store
                .move_git_url_credentials(&SourceId::from("g2"), url, clean, "enc:v1:x:z")
                .await
                .unwrap(),
            "{db}: moved twice"
        );
        let moved = store.find_source("default", "legacy").await.unwrap().unwrap();
        assert_eq!(
            (moved.git_url.as_deref(), moved.credentials.as_deref()),
            (Some(clean), Some("enc:v1:x:y")),
            "{db}"
        );
    }
}

#[tokio::test]
async fn the_sqlite_file_is_private() {
    use std::os::unix::fs::PermissionsExt as _;

    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kici.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    assert_eq!(secure_database_file(&url).unwrap(), DatabaseFile::Created(path.clone()));
    assert_eq!(mode(&path), 0o600);
    let store = Store::open(&url).await.unwrap();
    store.ping().await.unwrap();
    assert_eq!(mode(&path), 0o600);
    let wal = dir.path().join("kici.db-wal");
    assert!(!wal.exists() || mode(&wal) == 0o600, "{:o}", mode(&wal));
    assert_eq!(secure_database_file(&url).unwrap(), DatabaseFile::Private(path.clone()));

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        secure_database_file(&url).unwrap(),
        DatabaseFile::Tightened {
            path: path.clone(),
            previous_mode: 0o644
        }
    );
    assert_eq!(mode(&path), 0o600);
    for url in [
        "postgres://u@h/db",
        "sqlite::memory:",
        "sqlite://x?mode=memory&cache=shared",
    ] {
        assert_eq!(secure_database_file(url).unwrap(), DatabaseFile::NotAFile, "{url}");
    }
    assert_eq!(sqlite_path("sqlite:///a/kici.db?mode=rwc"), Some("/a/kici.db".into()));
}

#[tokio::test]
async fn registrations_are_replaced_per_repository_and_each_tick_is_claimed_once() {
    for (db, store, _dir) in stores().await {
        let source = SourceId::from("s1");
        let at = |sha: &'static str, now: i64| RegisteredAt {
            source_id: &source,
            repo: "app",
            git_ref: "refs/heads/main",
            sha,
            now,
            clone_url: None,
            installation_id: None,
        };
        let schedule = |workflow: &str, cron: &str| NewRegistration {
            workflow_name: workflow.into(),
            trigger_index: 0,
            kind: "schedule".into(),
            trigger_json: format!(r#"{{"_type":"schedule","cronExpression":"{cron}","timezone":"UTC"}}"#),
        };
        let mut ids = 0;
        let mut next_id = || {
            ids += 1;
            format!("r{ids}")
        };
        store
            .replace_registrations(
                at("a1", 1_000),
                &[schedule("nightly", "0 3 * * *"), schedule("hourly", "0 * * * *")],
                &mut next_id,
            )
            .await
            .unwrap();
        let listed = store.registrations(Some("schedule")).await.unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|r| (r.workflow_name.as_str(), r.last_fired_at))
                .collect::<Vec<_>>(),
            [("hourly", 1_000), ("nightly", 1_000)],
            "{db}"
        );
        let hourly = listed[0].registration_id.clone();
        assert!(store.claim_schedule_tick(&hourly, 5_000).await.unwrap(), "{db}");
        assert!(
            !store.claim_schedule_tick(&hourly, 5_000).await.unwrap(),
            "{db}: a tick fires once"
        );
        assert!(
            !store.claim_schedule_tick(&hourly, 4_000).await.unwrap(),
            "{db}: never backwards"
        );

        // A push that keeps `hourly`, changes `nightly`'s cron and adds nothing else.
        store
            .replace_registrations(
                at("b2", 9_000),
                &[schedule("nightly", "0 4 * * *"), schedule("hourly", "0 * * * *")],
                &mut next_id,
            )
            .await
            .unwrap();
        let listed = store.registrations(None).await.unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|r| (r.workflow_name.as_str(), r.sha.as_str(), r.last_fired_at))
                .collect::<Vec<_>>(),
            [("hourly", "b2", 5_000), ("nightly", "b2", 9_000)],
            "{db}: an unchanged schedule keeps its last tick"
        );
        let hourly = listed[0].registration_id.clone();
        assert!(store.set_registration_enabled(&hourly, false, 10_000).await.unwrap());
        assert!(
            !store.claim_schedule_tick(&hourly, 20_000).await.unwrap(),
            "{db}: disabled"
        );
        assert!(store.set_registration_enabled(&hourly, true, 30_000).await.unwrap());
        assert!(
            !store.claim_schedule_tick(&hourly, 20_000).await.unwrap(),
            "{db}: missed while off"
        );
        assert!(store.claim_schedule_tick(&hourly, 40_000).await.unwrap(), "{db}");

        // A push whose lock file has no schedule any more.
        store
            .replace_registrations(at("c3", 50_000), &[], &mut next_id)
            .await
            .unwrap();
        assert!(store.registrations(None).await.unwrap().is_empty(), "{db}");
    }
}

/// Every script under `migrations/` is listed, in order, with the number and name of its file:
/// one left out would never run.
#[test]
fn every_migration_file_is_applied() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    files.sort();
    let listed: Vec<String> = MIGRATIONS
        .iter()
        .map(|(version, name, _)| format!("{version:04}_{name}.sql"))
        .collect();
    assert_eq!(listed, files);
}

#[tokio::test]
async fn check_run_ids_are_kept_per_run_and_name_the_first_wins() {
    for (db, store, _dir) in stores().await {
        let run = RunId::from("r1");
        store.save_check_run_id(&run, "kici/ci", 7).await.unwrap();
        store.save_check_run_id(&run, "kici/ci", 8).await.unwrap();
        store.save_check_run_id(&run, "kici/ci/job/test", 9).await.unwrap();
        let ids = store.check_run_ids(&run).await.unwrap();
        assert_eq!(
            (ids.get("kici/ci"), ids.get("kici/ci/job/test"), ids.len()),
            (Some(&7), Some(&9), 2),
            "{db}"
        );
        assert!(
            store.check_run_ids(&RunId::from("r2")).await.unwrap().is_empty(),
            "{db}"
        );
    }
}

#[tokio::test]
async fn internal_events_are_stored_once_leased_to_one_claimer_retried_and_dead_lettered() {
    use crate::EventStatus;
    for (db, store, _dir) in stores().await {
        let body = serde_json::json!({"type": "kici_event", "payload": {"eventName": "deployed"}});
        assert!(
            store.enqueue_event("e1", "kici_event", &body, 1_000).await.unwrap(),
            "{db}"
        );
        assert!(
            !store.enqueue_event("e1", "kici_event", &body, 2_000).await.unwrap(),
            "{db}: the same event is stored once"
        );

        assert_eq!(store.due_event_ids(1_000, 10).await.unwrap(), ["e1"], "{db}");
        let claimed = store.claim_kici_event("e1", 1_000, 60_000).await.unwrap().expect("due");
        assert_eq!((claimed.attempts, claimed.lease_until), (1, Some(61_000)), "{db}");
        assert_eq!(claimed.envelope, body, "{db}");
        assert!(
            store.due_event_ids(30_000, 10).await.unwrap().is_empty(),
            "{db}: leased"
        );
        assert!(
            store.claim_kici_event("e1", 30_000, 60_000).await.unwrap().is_none(),
            "{db}: leased to the first claimer"
        );
        assert!(store.renew_event_lease("e1", 1, 50_000, 60_000).await.unwrap(), "{db}");
        assert!(
            store.claim_kici_event("e1", 61_000, 60_000).await.unwrap().is_none(),
            "{db}: the renewed lease holds"
        );
        // The claimer died: once its lease ran out another takes the event over, and the first
        // can neither renew it nor record an outcome.
        let taken = store
            .claim_kici_event("e1", 110_000, 60_000)
            .await
            .unwrap()
            .expect("lease over");
        assert_eq!(taken.attempts, 2, "{db}");
        assert!(
            !store.renew_event_lease("e1", 1, 111_000, 60_000).await.unwrap(),
            "{db}"
        );
        assert!(
            !store.event_delivered("e1", 1, &[], 111_000).await.unwrap(),
            "{db}: fenced"
        );

        let runs = [RunId::from("r1")];
        let failed = store
            .event_failed(
                ("e1", 2),
                "workflow 'x': source `s` is disabled",
                &runs,
                Some(120_000),
                112_000,
            )
            .await
            .unwrap();
        assert!(failed, "{db}");
        assert!(
            store.due_event_ids(119_999, 10).await.unwrap().is_empty(),
            "{db}: not due yet"
        );
        let again = store
            .claim_kici_event("e1", 120_000, 60_000)
            .await
            .unwrap()
            .expect("due again");
        assert_eq!((again.attempts, again.run_ids.as_slice()), (3, &runs[..]), "{db}");
        store
            .event_failed(("e1", 3), "still disabled", &runs, None, 121_000)
            .await
            .unwrap();

        let dead = store.list_kici_events(Some(EventStatus::Dead), 10).await.unwrap();
        assert_eq!(
            dead.iter()
                .map(|e| (e.event_id.as_str(), e.attempts, e.last_error.as_deref()))
                .collect::<Vec<_>>(),
            [("e1", 3, Some("still disabled"))],
            "{db}"
        );
        assert_eq!(
            store.count_kici_events(Some(EventStatus::Dead)).await.unwrap(),
            1,
            "{db}"
        );
        assert!(
            store.due_event_ids(999_999, 10).await.unwrap().is_empty(),
            "{db}: dead is never due"
        );

        let retried = store
            .retry_dead_event("e1", 130_000, 60_000)
            .await
            .unwrap()
            .expect("retried");
        assert_eq!(retried.attempts, 1, "{db}: attempts start over");
        assert_eq!(retried.lease_until, Some(190_000), "{db}: claimed by the retry");
        assert!(
            store.retry_dead_event("e1", 130_000, 60_000).await.unwrap().is_none(),
            "{db}: only a dead one"
        );
        assert!(
            store.claim_kici_event("e1", 130_001, 60_000).await.unwrap().is_none(),
            "{db}: the router's loop cannot take a retried event from the retry"
        );
        assert!(store.event_delivered("e1", 1, &runs, 131_000).await.unwrap(), "{db}");
        let event = store.get_kici_event("e1").await.unwrap().unwrap();
        assert_eq!((event.status, event.last_error), (EventStatus::Delivered, None), "{db}");
        assert!(
            !store.discard_dead_event("e1").await.unwrap(),
            "{db}: a delivered event is not discarded"
        );

        store.enqueue_event("e2", "kici_event", &body, 1_000).await.unwrap();
        store.claim_kici_event("e2", 1_000, 60_000).await.unwrap();
        store.event_failed(("e2", 1), "broken", &[], None, 2_000).await.unwrap();
        assert_eq!(store.count_kici_events(None).await.unwrap(), 2, "{db}");
        assert!(store.discard_dead_event("e2").await.unwrap(), "{db}");
        assert!(store.get_kici_event("e2").await.unwrap().is_none(), "{db}");
    }
}

/// A job says whether it stored secret outputs (a re-run of the failed jobs runs it again when
/// a job needing them does); a row from before this was recorded counts as having some, and a
/// reused row keeps where it ran and its outputs.
#[tokio::test]
async fn jobs_record_secret_outputs_and_reuse() {
    for (db, store, _dir) in stores().await {
        let mut reused = job("r1", "j3", "lint", vec![], 2);
        reused.status = JobStatus::Success;
        reused.reused = Some(crate::ReusedJob {
            from: kici_engine::api::ReusedFrom {
                run_id: RunId::from("r0"),
                job_id: JobId::from("j0"),
            },
            outputs: Some(serde_json::json!({"version": "1"})),
            secret_outputs: true,
        });
        store
            .insert_run(
                &run("r1", 10),
                &[
                    job("r1", "j1", "token", vec![], 0),
                    job("r1", "j2", "old", vec![], 1),
                    reused,
                    job("r1", "j4", "plain", vec![], 3),
                ],
                &[],
            )
            .await
            .unwrap();
        let output = crate::SealedOutput {
            run_id: RunId::from("r1"),
            job_id: JobId::from("j1"),
            base_job_name: "token".into(),
            key: "TOKEN".into(),
            value: "sealed".into(),
        };
        store.put_secret_outputs(&[output], 20).await.unwrap();
        sqlx::query("UPDATE jobs SET secret_outputs = NULL WHERE job_id = 'j2'")
            .execute(&store.pool)
            .await
            .unwrap();
        let jobs = store.run_jobs(&RunId::from("r1"), false).await.unwrap();
        let seen: Vec<(&str, bool, Option<&str>, Option<&serde_json::Value>)> = jobs
            .iter()
            .map(|j| {
                (
                    j.job.job_name.as_str(),
                    j.secret_outputs,
                    j.job.reused_from.as_ref().map(|r| r.job_id.as_str()),
                    j.outputs.as_ref(),
                )
            })
            .collect();
        let version = serde_json::json!({"version": "1"});
        assert_eq!(
            seen,
            [
                ("token", true, None, None),
                ("old", true, None, None),
                ("lint", true, Some("j0"), Some(&version)),
                ("plain", false, None, None)
            ],
            "{db}"
        );
    }
}

/// Orchestrators starting together on one new PostgreSQL database migrate it once: each
/// waits for the others' advisory lock, then finds every migration applied.
#[tokio::test]
async fn stores_opened_together_on_postgres_migrate_once() {
    let Some(url) = fresh_postgres_database().await else {
        return;
    };
    let (a, b, c) = tokio::join!(Store::open(&url), Store::open(&url), Store::open(&url));
    for store in [a, b, c] {
        store.unwrap();
    }
}

/// A database a newer build migrated is refused, with what to do.
#[tokio::test]
async fn a_database_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![format!("sqlite://{}/kici.db?mode=rwc", dir.path().display())];
    urls.extend(fresh_postgres_database().await);
    let known = MIGRATIONS.iter().map(|(version, ..)| *version).max().unwrap();
    for url in urls {
        let store = Store::open(&url).await.unwrap();
        sqlx::query("INSERT INTO kici_migrations (version, name, applied_at) VALUES (9999, 'future', 0)")
            .execute(&store.pool)
            .await
            .unwrap();
        let err = Store::open(&url).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the database was migrated by a newer KiCI (migration 9999; this build knows up to {known}) (hint: run the newer build, or restore a backup taken before the upgrade)"
            ),
            "{url}"
        );
    }
}

/// One store leads at a time on PostgreSQL: a second try fails while the first holds the lock,
/// and succeeds once the first's connection is gone (ended by the server here, as when its
/// host vanished), which the first notices. On SQLite the one orchestrator always leads.
#[tokio::test]
async fn one_store_leads_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&format!("sqlite://{}/kici.db?mode=rwc", dir.path().display()))
        .await
        .unwrap();
    let mut alone = sqlite.try_lead().await.unwrap().expect("SQLite always leads");
    assert!(alone.still_held().await);
    let Some(url) = fresh_postgres_database().await else {
        return;
    };
    let (a, b) = (Store::open(&url).await.unwrap(), Store::open(&url).await.unwrap());
    let mut lead = a.try_lead().await.unwrap().expect("the first leads");
    assert!(b.try_lead().await.unwrap().is_none(), "a second leader");
    assert!(lead.still_held().await);
    let ended: Vec<bool> = sqlx::query_scalar(
        // This database's lock only: other tests' orchestrators share the server.
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = $1 AND objsubid = 2
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind(i64::from(crate::cluster::LOCK_SPACE))
    .fetch_all(&b.pool)
    .await
    .unwrap();
    assert_eq!(ended, [true]);
    assert!(!lead.still_held().await, "the first notices it lost the lock");
    assert!(b.try_lead().await.unwrap().is_some(), "the second takes over");
}
