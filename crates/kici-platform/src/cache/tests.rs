//! Cache tests on a real SQLite file: the snapshot guard, filters, events, restart.

use kici_engine::api::{Job, Run, RunEvent};
use kici_engine::platform_protocol::RunSnapshot;
use kici_engine::status::{JobStatus, RunStatus};

use super::*;

fn run(run_id: &str, status: RunStatus, created_at: i64) -> Run {
    Run {
        run_id: run_id.into(),
        workflow_name: "ci".into(),
        status,
        repo: "acme/app".into(),
        git_ref: "refs/heads/main".into(),
        sha: "abc".into(),
        trigger: "push".into(),
        provider: "generic".into(),
        source_id: "s".into(),
        delivery_id: "d".into(),
        failure_reason: None,
        init_failure: None,
        created_at,
        started_at: None,
        completed_at: None,
        duration_ms: None,
        rerun_of: None,
        reruns: Vec::new(),
        trust: None,
        title: None,
        actor: None,
    }
}

fn job(run_id: &str, job_id: &str, status: JobStatus) -> Job {
    Job {
        job_id: job_id.into(),
        run_id: run_id.into(),
        job_name: job_id.into(),
        base_job_name: job_id.into(),
        status,
        agent_id: None,
        error_message: None,
        init_failure: None,
        needs: Vec::new(),
        created_at: 0,
        started_at: None,
        completed_at: None,
        duration_ms: None,
        steps: Some(Vec::new()),
        reused_from: None,
    }
}

#[test]
fn newer_snapshots_supersede_older_ones() {
    let with = |status: RunStatus, started: Option<i64>, completed: Option<i64>| Run {
        started_at: started,
        completed_at: completed,
        ..run("r", status, 0)
    };
    let check = |stored: &Run, incoming: &Run, expected: bool| {
        assert_eq!(
            supersedes(stored, incoming),
            expected,
            "{} {:?} -> {} {:?}",
            stored.status,
            stored.completed_at,
            incoming.status,
            incoming.completed_at
        );
    };
    let pending = with(RunStatus::Pending, None, None);
    let running = with(RunStatus::Running, Some(1), None);
    let failed = with(RunStatus::Failed, Some(1), Some(5));
    let failed_later = with(RunStatus::Failed, Some(1), Some(9));
    let success_unknown_end = with(RunStatus::Success, Some(1), None);
    check(&pending, &running, true);
    check(&running, &running, true);
    check(&running, &pending, false);
    check(&running, &failed, true);
    check(&failed, &running, false);
    check(&failed, &pending, false);
    check(&failed, &failed, true);
    check(&failed, &failed_later, true);
    check(&failed_later, &failed, false);
    check(&failed, &success_unknown_end, false);
}

async fn open(dir: &tempfile::TempDir) -> Cache {
    Cache::open(&dir.path().join("platform.db")).await.unwrap()
}

#[tokio::test]
async fn snapshots_are_upserted_filtered_and_kept_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir).await;
    let snapshot = |run: Run, jobs: Vec<Job>| RunSnapshot { run, jobs };
    let first = snapshot(
        run("r1", RunStatus::Running, 10),
        vec![job("r1", "j1", JobStatus::Running), job("r1", "j2", JobStatus::Queued)],
    );
    assert_eq!(
        cache.upsert_snapshot(&first, "orch", 100).await.unwrap(),
        SnapshotOutcome::Stored { previous: None }
    );
    let mut finished = snapshot(
        Run {
            completed_at: Some(50),
            git_ref: "feature".into(),
            ..run("r1", RunStatus::Failed, 10)
        },
        vec![job("r1", "j2", JobStatus::Failed)],
    );
    finished.run.failure_reason = Some("Failed jobs: j2".into());
    assert_eq!(
        cache.upsert_snapshot(&finished, "orch", 200).await.unwrap(),
        SnapshotOutcome::Stored {
            previous: Some(RunStatus::Running)
        }
    );
    assert_eq!(
        cache.upsert_snapshot(&first, "orch", 300).await.unwrap(),
        SnapshotOutcome::Ignored {
            stored: RunStatus::Failed
        }
    );
    let other = snapshot(
        Run {
            workflow_name: "deploy".into(),
            trigger: "schedule".into(),
            ..run("r2", RunStatus::Success, 20)
        },
        Vec::new(),
    );
    cache.upsert_snapshot(&other, "orch", 400).await.unwrap();
    let event = RunEvent {
        event_id: "e1".into(),
        run_id: "r1".into(),
        job_id: None,
        event_type: kici_engine::api::RunEventType::ScalerFailed,
        title: "Provisioning failed".into(),
        source_service: "orchestrator".into(),
        timestamp_ms: 5,
        metadata: serde_json::json!({"detail": "spawn node ENOENT"}),
    };
    cache.insert_event(&event).await.unwrap();
    cache.insert_event(&event).await.unwrap();
    cache.close().await;

    let cache = open(&dir).await;
    let cached = cache.get_run("r1").await.unwrap().unwrap();
    assert_eq!(cached.run, finished.run);
    assert_eq!((cached.orchestrator_id.as_str(), cached.updated_at), ("orch", 200));
    assert_eq!(cache.run_jobs("r1").await.unwrap(), finished.jobs);
    assert_eq!(cache.run_events("r1").await.unwrap(), vec![event]);
    let ids = |filter: RunFilter| {
        let cache = cache.clone();
        async move {
            let (runs, total) = cache.list_runs(&RunFilter { limit: 20, ..filter }).await.unwrap();
            (runs.into_iter().map(|r| r.run_id).collect::<Vec<_>>(), total)
        }
    };
    assert_eq!(ids(RunFilter::default()).await, (vec!["r2".into(), "r1".into()], 2));
    let failed = RunFilter {
        statuses: vec![RunStatus::Failed, RunStatus::Cancelled],
        ..RunFilter::default()
    };
    assert_eq!(ids(failed).await, (vec!["r1".into()], 1));
    let feature = RunFilter {
        branch: Some("feature".into()),
        ..RunFilter::default()
    };
    assert_eq!(ids(feature).await, (vec!["r1".into()], 1));
    let main = RunFilter {
        branch: Some("main".into()),
        workflow: Some("deploy".into()),
        since: Some(20),
        ..RunFilter::default()
    };
    assert_eq!(ids(main).await, (vec!["r2".into()], 1));
    let scheduled = RunFilter {
        trigger: Some("schedule".into()),
        ..RunFilter::default()
    };
    assert_eq!(ids(scheduled).await, (vec!["r2".into()], 1));
    let second_page = RunFilter {
        offset: 1,
        ..RunFilter::default()
    };
    assert_eq!(ids(second_page).await, (vec!["r1".into()], 2));
}

#[tokio::test]
async fn held_jobs_are_listed_until_a_snapshot_moves_them_on() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir).await;
    let held = RunSnapshot {
        run: run("r1", RunStatus::Pending, 10),
        jobs: vec![
            job("r1", "deploy", JobStatus::Held),
            job("r1", "smoke", JobStatus::Held),
            job("r1", "build", JobStatus::Success),
        ],
    };
    cache.upsert_snapshot(&held, "orch", 100).await.unwrap();
    let waiting = RunSnapshot {
        run: run("r2", RunStatus::Pending, 20),
        jobs: vec![job("r2", "deploy-2", JobStatus::Waiting)],
    };
    cache.upsert_snapshot(&waiting, "orch", 100).await.unwrap();
    assert_eq!(
        cache.held_jobs().await.unwrap(),
        vec!["r1".to_string(), "r1".to_string()]
    );
    let approved = RunSnapshot {
        run: run("r1", RunStatus::Pending, 10),
        jobs: vec![
            job("r1", "deploy", JobStatus::Queued),
            job("r1", "smoke", JobStatus::Held),
            job("r1", "build", JobStatus::Success),
        ],
    };
    cache.upsert_snapshot(&approved, "orch", 200).await.unwrap();
    assert_eq!(cache.held_jobs().await.unwrap(), vec!["r1".to_string()]);
}

#[tokio::test]
async fn orchestrators_go_offline_at_start_keeping_their_last_contact() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir).await;
    let record = OrchestratorRecord {
        instance_id: "orch".into(),
        version: "0.1.0".into(),
        url: "http://127.0.0.1:4000".into(),
        connected: true,
        last_seen_at: 10,
    };
    cache.upsert_orchestrator(&record).await.unwrap();
    cache.orchestrator_seen("orch", true, 20).await.unwrap();
    cache.mark_all_offline().await.unwrap();
    assert_eq!(
        cache.get_orchestrator("orch").await.unwrap(),
        Some(OrchestratorRecord {
            connected: false,
            last_seen_at: 20,
            ..record
        })
    );
}

#[tokio::test]
async fn users_are_found_by_token_hash_and_names_are_unique() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir).await;
    let reader = User {
        name: "rita".into(),
        role: Role::Member,
        created_at: 5,
    };
    assert!(cache.insert_user(&reader, "hash-1").await.unwrap());
    assert!(
        !cache.insert_user(&reader, "hash-2").await.unwrap(),
        "the name is taken"
    );
    assert_eq!(cache.user_by_token("hash-1").await.unwrap(), Some(reader.clone()));
    assert_eq!(cache.user_by_token("hash-2").await.unwrap(), None);
    assert!(cache.delete_user("rita").await.unwrap());
    assert_eq!(cache.user_by_token("hash-1").await.unwrap(), None);
    assert!(!cache.delete_user("rita").await.unwrap(), "already gone");
    assert!(
        cache.insert_user(&reader, "hash-3").await.unwrap(),
        "the name is free again"
    );
}
