//! An orchestrator's state in process (no HTTP server, no loops) on each database under test,
//! and rows to put in it.

// The harness helpers fail the test the way its assertions do.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;

use kici_engine::event::{EventEnvelope, EventType};
use kici_engine::labels::LabelMatcher;
use kici_engine::lockfile::LockWorkflow;
use kici_engine::protocol::JobKind;
use kici_engine::status::{JobStatus, RunStatus};
use kici_orchestrator::config::Config;
use kici_orchestrator::state::{AppState, Shared};
use kici_store::{NewJob, NewQueueEntry, NewRun, Store};

pub struct Harness {
    pub state: Shared,
    _stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

/// An orchestrator's state without its HTTP server and loops, on each database under test.
pub async fn harnesses(env: &[(&str, &str)]) -> Vec<(&'static str, Harness)> {
    let mut urls = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("kici.db").display());
    urls.push(("sqlite", sqlite, dir));
    match std::env::var("KICI_TEST_POSTGRES_URL") {
        Ok(url) => {
            let name = format!("kici_atomic_{}", kici_telemetry::os::random_hex(16));
            create_database(&url, &name);
            let (base, _) = url.rsplit_once('/').unwrap();
            urls.push(("postgres", format!("{base}/{name}"), tempfile::tempdir().unwrap()));
        }
        Err(_) => assert!(
            std::env::var("KICI_TEST_REQUIRE_POSTGRES").is_err(),
            "KICI_TEST_REQUIRE_POSTGRES is set but KICI_TEST_POSTGRES_URL is not"
        ),
    }
    let mut harnesses = Vec::new();
    for (db, url, dir) in urls {
        let mut vars: BTreeMap<String, String> = [
            ("KICI_DATA_DIR", dir.path().display().to_string()),
            ("KICI_DATABASE_URL", url.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = Config::from_env(&vars).unwrap();
        let store = Store::open(&url).await.unwrap();
        let storage = kici_orchestrator::storage::Storage::open(&config.storage, &config.secret_keys).unwrap();
        let scalers = kici_orchestrator::scaler::load(None, None).unwrap();
        let (state, scaler) = AppState::new(config, store, storage, scalers);
        // The scaler task stops when the harness (and with it `stop`) is dropped.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(scaler.run(stopped));
        harnesses.push((
            db,
            Harness {
                state,
                _stop: stop,
                _dir: dir,
            },
        ));
    }
    harnesses
}

impl Harness {
    /// A second orchestrator state on the same database and data directory, as after a restart.
    pub async fn restarted(&self) -> Shared {
        let config = self.state.config.clone();
        let store = Store::open(&config.database_url).await.unwrap();
        let storage = kici_orchestrator::storage::Storage::open(&config.storage, &config.secret_keys).unwrap();
        let scalers = kici_orchestrator::scaler::load(None, None).unwrap();
        let (state, scaler) = AppState::new(config, store, storage, scalers);
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(scaler.run(stopped));
        state
    }
}

/// The store has no "create database"; psql is there wherever PostgreSQL is.
pub fn create_database(url: &str, name: &str) {
    let output = std::process::Command::new("psql")
        .arg(url)
        .arg("-c")
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .expect("psql runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// A lock file's workflow `ci` with these `jobs` (lock-file JSON).
pub fn lock_workflow(jobs: serde_json::Value) -> LockWorkflow {
    serde_json::from_value(serde_json::json!({
        "name": "ci",
        "source": {"file": ".kici/workflows/ci.ts", "export": "#default"},
        "contentHash": "00",
        "compileSchemaVersion": kici_engine::lockfile::COMPILE_SCHEMA_VERSION,
        "triggers": [],
        "jobs": jobs
    }))
    .unwrap()
}

/// Workflow `ci` with one job, `test`, whose matrix a function computes.
pub fn matrix_workflow() -> LockWorkflow {
    lock_workflow(serde_json::json!([{
        "_type": "static", "name": "test", "runsOn": [{"kind": "exact", "value": "linux"}], "needs": [],
        "steps": [{"name": "s", "hasOutputs": false}],
        "matrix": {"_type": "dynamic", "source": {"file": ".kici/workflows/ci.ts", "jobName": "test"}}
    }]))
}

pub fn new_run(run_id: &str, workflow: Option<LockWorkflow>) -> NewRun {
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
        event: EventEnvelope::new(EventType::Push),
        repo_url: "file:///repo".into(),
        lock_workflow: workflow,
        created_at: 1,
        completed_at: None,
        rerun_of: None,
        lockfile_hash: None,
        trust: None,
        actor: None,
    }
}

pub fn new_job(run_id: &str, job_id: &str, name: &str, kind: JobKind) -> NewJob {
    NewJob {
        job_id: job_id.into(),
        run_id: run_id.into(),
        job_name: name.into(),
        base_job_name: name.into(),
        kind,
        matrix: None,
        status: JobStatus::Queued,
        runs_on: vec![LabelMatcher::exact("linux")],
        exclude_labels: vec![],
        needs: vec![],
        error_message: None,
        init_failure: None,
        position: 0,
        created_at: 1,
        dynamic_index: None,
        definition: None,
        reused: None,
    }
}

pub fn new_entry(run_id: &str, job_id: &str, expires_at: Option<i64>) -> NewQueueEntry {
    NewQueueEntry {
        job_id: job_id.into(),
        run_id: run_id.into(),
        enqueued_at: 1,
        expires_at,
        dispatch: "{}".into(),
        concurrency_key: None,
    }
}
