//! From a verified push to runs, in process: a real git repository holding a lock file, a
//! local source in a real store, and `pipeline::process`. The push's workflow becomes a run
//! whose root job is queued and the rest wait; a lock file that does not load is one failed
//! `lock_resolution` run, never a panic; a push the triggers do not match starts nothing.

// The harness helpers fail the test the way its assertions do.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Command;

use kici_engine::failure::InitFailureCategory;
use kici_engine::status::{JobStatus, RunStatus};
use kici_orchestrator::pipeline::{self, Delivery, Outcome};
use kici_orchestrator::providers::normalize;
use kici_orchestrator::scheduler;
use kici_orchestrator::starts::{self, StartError, StartRequest};
use kici_orchestrator::state::Shared;
use kici_store::{NewSource, RunFilter, SourceKind, Verification};
use serde_json::json;
use support::{harnesses, lock_workflow};

fn git(repo: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A repository on `main` whose one commit holds `lock` as `.kici/kici.lock.json`; its sha.
fn repository(repo: &Path, lock: &str) -> String {
    git(repo, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(repo.join(".kici")).unwrap();
    std::fs::write(repo.join(".kici/kici.lock.json"), lock).unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "ci"]);
    git(repo, &["rev-parse", "HEAD"])
}

/// A lock file with workflow `ci` (push on `branches`): `build`, then `test`.
fn lock(branches: &[&str]) -> String {
    lock_with_triggers(
        json!([{"_type": "push", "branches": branches.iter().map(|b| json!({"type": "glob", "pattern": b})).collect::<Vec<_>>(), "paths": []}]),
    )
}

/// A lock file whose workflow `ci` has these triggers.
fn lock_with_triggers(triggers: serde_json::Value) -> String {
    let job = |name: &str, needs: serde_json::Value| {
        json!({
            "_type": "static", "name": name, "runsOn": [{"kind": "exact", "value": "linux"}], "needs": needs,
            "steps": [{"name": "s", "hasOutputs": false}]
        })
    };
    let mut workflow = serde_json::to_value(lock_workflow(json!([
        job("build", json!([])),
        job("test", json!(["build"]))
    ])))
    .unwrap();
    workflow["triggers"] = triggers;
    json!({
        "schemaVersion": kici_engine::lockfile::SCHEMA_VERSION,
        "source": {"file": ".kici/workflows/ci.ts", "export": "#default"},
        "contentHash": "00",
        "sdk": {"version": "0.1.0", "bundleHash": "00"},
        "workflows": [workflow]
    })
    .to_string()
}

/// A push of `sha` to `main` from the local source at `repo`.
async fn push(state: &Shared, repo: &Path, sha: &str) -> Result<Outcome, pipeline::PipelineError> {
    let source = match state.store.find_source("default", "app").await.unwrap() {
        Some(source) => source,
        None => {
            let new = NewSource {
                source_id: "src-app".into(),
                org_id: "default".into(),
                name: "app".into(),
                kind: SourceKind::Local,
                path: Some(repo.display().to_string()),
                git_url: None,
                preset: None,
                verification: Verification::None,
                secret: None,
                credentials: None,
                max_payload_bytes: 1 << 20,
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
            state.store.insert_source(&new).await.unwrap();
            state.store.find_source("default", "app").await.unwrap().unwrap()
        }
    };
    let body = json!({"ref": "refs/heads/main", "after": sha, "repository": {"full_name": "app"}});
    let delivery = Delivery {
        source,
        delivery_id: format!("d-{sha}"),
        body_key: String::new(),
        normalized: normalize("push", &body, "local").unwrap(),
    };
    pipeline::process(state, delivery).await
}

#[tokio::test]
async fn a_push_becomes_a_run_whose_root_job_is_queued() {
    for (db, harness) in harnesses(&[]).await {
        let state = &harness.state;
        let repo = tempfile::tempdir().unwrap();
        let sha = repository(repo.path(), &lock(&["main"]));
        let Outcome::Started(runs) = push(state, repo.path(), &sha).await.unwrap() else {
            panic!("{db}: the push matches `ci`");
        };
        assert_eq!(runs.len(), 1, "{db}");
        let run = state.store.get_run(&runs[0]).await.unwrap().unwrap();
        assert_eq!(
            (
                run.status,
                run.workflow_name.as_str(),
                run.sha.as_str(),
                run.git_ref.as_str()
            ),
            (RunStatus::Pending, "ci", sha.as_str(), "refs/heads/main"),
            "{db}: {:?}",
            run.init_failure
        );
        let jobs: Vec<(String, JobStatus)> = state
            .store
            .run_jobs(&runs[0], false)
            .await
            .unwrap()
            .into_iter()
            .map(|j| (j.job.job_name, j.job.status))
            .collect();
        assert_eq!(
            jobs,
            [
                ("build".to_string(), JobStatus::Queued),
                ("test".to_string(), JobStatus::Pending)
            ],
            "{db}"
        );
        assert_eq!(
            state.store.pending_entries().await.unwrap().len(),
            1,
            "{db}: only `build` waits for an agent"
        );
    }
}

#[tokio::test]
async fn a_lock_file_that_does_not_load_is_one_failed_run() {
    for (db, harness) in harnesses(&[]).await {
        let state = &harness.state;
        let repo = tempfile::tempdir().unwrap();
        let sha = repository(repo.path(), "{\"schemaVersion\": 30, \"workflows\": [");
        let Outcome::Started(runs) = push(state, repo.path(), &sha).await.unwrap() else {
            panic!("{db}: a broken lock file is a failed run, not nothing");
        };
        let run = state.store.get_run(&runs[0]).await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Failed, "{db}");
        let init = run.init_failure.unwrap();
        assert_eq!(
            init.category,
            InitFailureCategory::LockResolution,
            "{db}: {}",
            init.message
        );
        assert_eq!(run.failure_reason.as_deref(), Some(init.message.as_str()), "{db}");
    }
}

#[tokio::test]
async fn a_push_the_triggers_do_not_match_starts_nothing() {
    for (db, harness) in harnesses(&[]).await {
        let state = &harness.state;
        let repo = tempfile::tempdir().unwrap();
        let sha = repository(repo.path(), &lock(&["release/*"]));
        let outcome = push(state, repo.path(), &sha).await.unwrap();
        assert!(
            !matches!(&outcome, Outcome::Started(runs) if !runs.is_empty()),
            "{db}: {outcome:?}"
        );
        let (runs, total) = state
            .store
            .list_runs(&RunFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!((runs.len(), total), (0, 0), "{db}");
    }
}

/// The schedule of `ci` (every minute, one input with a default) and a push trigger.
fn scheduled_lock() -> String {
    lock_with_triggers(json!([
        {"_type": "push", "branches": [{"type": "glob", "pattern": "main"}], "paths": []},
        {"_type": "schedule", "cronExpression": "* * * * *", "timezone": "UTC",
         "inputs": {"level": {"type": "string", "optional": false, "nullable": false, "default": "full"}}}
    ]))
}

const MINUTE: i64 = 60_000;

/// The schedule runs, oldest first, with the tick and inputs each one got.
async fn schedule_runs(state: &Shared) -> Vec<(i64, serde_json::Value)> {
    let (runs, _) = state
        .store
        .list_runs(&RunFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut ticks = Vec::new();
    for run in runs.iter().filter(|r| r.trigger == "schedule") {
        let event = state.store.run_context(&run.run_id).await.unwrap().unwrap().event;
        ticks.push((
            event.payload.as_ref().unwrap()["scheduledAt"].as_i64().unwrap(),
            serde_json::Value::from(event.dispatch_inputs.clone().unwrap()),
        ));
    }
    ticks.sort_by_key(|(tick, _)| *tick);
    ticks
}

/// A default-branch push registers the schedule; the scheduler, asked at chosen times (its
/// clock is a parameter), fires each minute's tick once, with the input's default, and after a
/// restart the latest tick missed while down once.
#[tokio::test]
async fn a_schedule_fires_once_per_tick_across_a_restart() {
    for (db, harness) in harnesses(&[]).await {
        let state = &harness.state;
        let repo = tempfile::tempdir().unwrap();
        let sha = repository(repo.path(), &scheduled_lock());
        push(state, repo.path(), &sha).await.unwrap();
        let registrations = state.store.registrations(Some("schedule")).await.unwrap();
        assert_eq!(
            registrations.len(),
            1,
            "{db}: the default-branch push registers the schedule"
        );
        let registered = registrations[0].registered_at;
        let first = (registered / MINUTE + 1) * MINUTE;

        assert!(scheduler::fire_due(state, registered).await.unwrap().is_empty(), "{db}");
        assert_eq!(
            scheduler::fire_due(state, first + 5_000).await.unwrap().len(),
            1,
            "{db}"
        );
        assert!(
            scheduler::fire_due(state, first + 30_000).await.unwrap().is_empty(),
            "{db}: once per tick"
        );
        assert_eq!(
            scheduler::fire_due(state, first + MINUTE).await.unwrap().len(),
            1,
            "{db}"
        );

        // Down for ten minutes, then back: the latest tick fires once, then nothing.
        let restarted = harness.restarted().await;
        let back = first + 11 * MINUTE + 7_000;
        assert_eq!(scheduler::fire_due(&restarted, back).await.unwrap().len(), 1, "{db}");
        assert!(scheduler::fire_due(&restarted, back).await.unwrap().is_empty(), "{db}");
        assert!(
            scheduler::fire_due(state, back).await.unwrap().is_empty(),
            "{db}: the old instance too"
        );

        let full = json!({"level": "full"});
        assert_eq!(
            schedule_runs(state).await,
            [
                (first, full.clone()),
                (first + MINUTE, full.clone()),
                (first + 11 * MINUTE, full)
            ],
            "{db}"
        );

        // A push that drops the schedule removes its registration.
        std::fs::write(repo.path().join(".kici/kici.lock.json"), lock(&["main"])).unwrap();
        git(repo.path(), &["commit", "-q", "-am", "no schedule"]);
        let sha = git(repo.path(), &["rev-parse", "HEAD"]);
        push(state, repo.path(), &sha).await.unwrap();
        assert!(
            state.store.registrations(Some("schedule")).await.unwrap().is_empty(),
            "{db}"
        );
    }
}

fn dispatch_lock() -> String {
    lock_with_triggers(json!([{"_type": "dispatch", "types": [], "inputs": {
        "environment": {"type": "enum", "optional": false, "nullable": false, "values": ["staging", "production"]},
        "replicas": {"type": "integer", "optional": false, "nullable": false, "default": 2, "min": 1, "max": 10},
        "dryRun": {"type": "boolean", "optional": true, "nullable": false}
    }}]))
}

async fn dispatch(state: &Shared, inputs: serde_json::Value) -> Result<starts::Started, StartError> {
    let source = state.store.find_source("default", "app").await.unwrap().unwrap();
    let mut event = kici_engine::event::EventEnvelope::new(kici_engine::event::EventType::Dispatch);
    event.dispatch_inputs = inputs.as_object().cloned();
    starts::start(
        state,
        StartRequest {
            source,
            repo: None,
            git_ref: None,
            workflow: "ci".into(),
            event,
            delivery_id: format!("dispatch:{}", kici_telemetry::os::random_hex(8)),
            origin: Default::default(),
        },
    )
    .await
}

/// A dispatch runs the default branch's head with its inputs validated, coerced and defaulted,
/// or is refused naming every bad input.
#[tokio::test]
async fn dispatch_inputs_are_coerced_defaulted_or_refused_by_field() {
    for (db, harness) in harnesses(&[]).await {
        let state = &harness.state;
        let repo = tempfile::tempdir().unwrap();
        let sha = repository(repo.path(), &dispatch_lock());
        // The push registers the source; a dispatch-only workflow does not run on it.
        push(state, repo.path(), &sha).await.unwrap();

        let started = dispatch(state, json!({"environment": "staging", "dryRun": "yes"}))
            .await
            .unwrap();
        assert_eq!(
            (started.git_ref.as_str(), started.sha.as_str()),
            ("refs/heads/main", sha.as_str()),
            "{db}"
        );
        let run = state.store.get_run(&started.run_id).await.unwrap().unwrap();
        assert_eq!(run.trigger, "dispatch", "{db}");
        let event = state.store.run_context(&started.run_id).await.unwrap().unwrap().event;
        assert_eq!(
            serde_json::Value::from(event.dispatch_inputs.unwrap()),
            json!({"dryRun": true, "environment": "staging", "replicas": 2}),
            "{db}"
        );

        let err = dispatch(state, json!({"replicas": "0", "colour": "red"}))
            .await
            .unwrap_err();
        let StartError::Inputs { errors, .. } = &err else {
            panic!("{db}: {err}");
        };
        assert_eq!(
            errors.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "colour: unknown input (declared: dryRun, environment, replicas)",
                "environment: required: one of staging, production",
                "replicas: must be at least 1, got 0",
            ],
            "{db}"
        );
    }
}

/// A lock file with one workflow named `name`, run on pull requests.
fn pr_lock(name: &str) -> String {
    let lock = lock_with_triggers(
        json!([{"_type": "pr", "events": ["opened"], "targetBranches": [], "sourceBranches": [], "paths": []}]),
    );
    lock.replace("\"name\":\"ci\"", &format!("\"name\":\"{name}\""))
}

/// A pull request from `head` (a fork's commit) to `main` at `base`, by `association`.
async fn pull_request(
    state: &Shared,
    head: &str,
    base: &str,
    fork: bool,
    association: &str,
) -> Vec<kici_engine::ids::RunId> {
    let source = state.store.find_source("default", "app").await.unwrap().unwrap();
    let head_repo = if fork { "mallory/app" } else { "acme/app" };
    let body = json!({
        "action": "opened",
        "sender": {"login": "mallory", "id": 7},
        "pull_request": {
            "author_association": association,
            "head": {"ref": "feature", "sha": head, "repo": {"full_name": head_repo}},
            "base": {"ref": "main", "sha": base, "repo": {"full_name": "acme/app"}}
        },
        "repository": {"full_name": "acme/app"}
    });
    let delivery = Delivery {
        source,
        delivery_id: format!("pr-{head}-{association}"),
        body_key: String::new(),
        normalized: normalize("pull_request", &body, "github").unwrap(),
    };
    match pipeline::process(state, delivery).await.unwrap() {
        Outcome::Started(runs) => runs,
        Outcome::Ignored(why) => panic!("{why}"),
    }
}

/// A fork's pull request that rewrites the workflow runs the base branch's workflow against
/// its commit, and its jobs are told to take `.kici/` from the base; a member's runs its own.
#[tokio::test]
async fn a_fork_pull_request_runs_the_base_branchs_workflows() {
    for (db, harness) in harnesses(&[]).await {
        let state = &harness.state;
        let repo = tempfile::tempdir().unwrap();
        let base = repository(repo.path(), &pr_lock("ci"));
        push(state, repo.path(), &base).await.unwrap();
        git(repo.path(), &["checkout", "-q", "-b", "feature"]);
        std::fs::write(repo.path().join(".kici/kici.lock.json"), pr_lock("evil")).unwrap();
        git(repo.path(), &["commit", "-q", "-am", "rewrite the workflow"]);
        let head = git(repo.path(), &["rev-parse", "HEAD"]);

        let runs = pull_request(state, &head, &base, true, "NONE").await;
        let run = state.store.get_run(&runs[0]).await.unwrap().unwrap();
        assert_eq!(
            (run.workflow_name.as_str(), run.sha.as_str()),
            ("ci", head.as_str()),
            "{db}"
        );
        let trust = run.trust.unwrap();
        assert_eq!(
            trust.summary(),
            "unknown (the base branch's workflows): a pull request from a fork by mallory, author association NONE",
            "{db}"
        );
        assert_eq!(
            trust.hold.as_deref(),
            Some(
                "an unknown contributor's pull request (a pull request from a fork by mallory, author association NONE): a maintainer approves it before it runs"
            ),
            "{db}"
        );
        let holds = state.store.holds(Some(&runs[0]), None).await.unwrap();
        assert_eq!(
            holds
                .iter()
                .map(|h| (h.job_name.as_str(), h.scope.as_str()))
                .collect::<Vec<_>>(),
            [("build", "trust")],
            "{db}: held for a maintainer (approving it is tested end to end in kici-testkit forges.rs)"
        );
        assert!(
            state.store.pending_entries().await.unwrap().is_empty(),
            "{db}: nothing queued"
        );

        // A contributor known to the repository whose pull request leaves .kici/ alone is not held;
        // its jobs still take .kici/ from the base.
        git(repo.path(), &["checkout", "-q", "-b", "docs", &base]);
        std::fs::write(repo.path().join("README.md"), "docs\n").unwrap();
        git(repo.path(), &["add", "README.md"]);
        git(repo.path(), &["commit", "-q", "-m", "docs"]);
        let docs = git(repo.path(), &["rev-parse", "HEAD"]);
        let runs = pull_request(state, &docs, &base, true, "CONTRIBUTOR").await;
        let run = state.store.get_run(&runs[0]).await.unwrap().unwrap();
        assert_eq!(run.trust.unwrap().hold, None, "{db}");
        let entry = &state.store.pending_entries().await.unwrap()[0];
        let dispatch: kici_engine::protocol::JobDispatch = serde_json::from_str(&entry.dispatch).unwrap();
        assert!(dispatch.job_config.base_workflows, "{db}");
        assert_eq!(dispatch.sha, docs, "{db}: the pull request's code is what is tested");

        let runs = pull_request(state, &head, &base, true, "MEMBER").await;
        let run = state.store.get_run(&runs[0]).await.unwrap().unwrap();
        assert_eq!(
            run.workflow_name, "evil",
            "{db}: a member's pull request runs its own workflows"
        );
        assert_eq!(run.trust.unwrap().tier, kici_engine::trust::TrustTier::Trusted, "{db}");
    }
}
