//! The approval queue over real HTTP: the page asks every orchestrator for its holds, owners get
//! Approve and Reject and members only the queue, approving and rejecting go to the run's
//! orchestrator as the caller (its refusals passed through), members are refused before
//! anything is sent, held jobs show in the nav's badge, the runs list and the run page, and an
//! offline orchestrator is named instead of its holds.

use kici_engine::api::RunEventType;
use kici_engine::api::secrets::{HeldJob, HeldJobList, HoldStatus, HoldsDecided};
use kici_engine::protection::ApproverClause;

use super::sessions::{Browser, bearer};
use super::*;

fn held(status: HoldStatus) -> HeldJob {
    HeldJob {
        hold_id: "hold-1".into(),
        run_id: "run-1".into(),
        job_id: "job-1".into(),
        job_name: "build".into(),
        workflow_name: "ci".into(),
        repo: "acme/app".into(),
        git_ref: "refs/heads/main".into(),
        scope: "production".into(),
        clauses: vec![ApproverClause::User("admin".into())],
        approvals: Vec::new(),
        reason: None,
        status,
        created_at: 1_000,
        expires_at: 3_601_000,
        decided_at: None,
        decided_by: None,
        decision_reason: None,
    }
}

/// `run-1` with its job `job-1` held, and the `orchestrator.job.held` event, cached.
async fn push_held_run(orchestrator: &mut ScriptedOrchestrator) {
    orchestrator
        .push(
            Run {
                started_at: None,
                ..run("run-1", RunStatus::Pending)
            },
            vec![job("run-1", "job-1", JobStatus::Held, Vec::new())],
        )
        .await;
    orchestrator
        .send(&OrchestratorFrame::RunEvent(Box::new(RunEvent {
            event_id: "e-held".into(),
            run_id: "run-1".into(),
            job_id: Some("job-1".into()),
            event_type: RunEventType::HoldCreated,
            title: "Waiting for approval".into(),
            source_service: "orchestrator".into(),
            timestamp_ms: 1_000,
            metadata: json!({"job": "build", "scope": "production", "clauses": [{"user": "admin"}], "expiresAt": 3_601_000}),
        })))
        .await;
    orchestrator.sync().await;
}

/// A page that makes the Platform ask the orchestrator for the queue: the request it sends
/// (with whom it names as asking), answered with `holds`, and the page.
async fn queue_page(
    harness: &Harness,
    browser: &Browser,
    orchestrator: &mut ScriptedOrchestrator,
    path: &str,
    holds: Vec<HeldJob>,
) -> ((String, PlatformRequest), String) {
    let (page, asked) = tokio::join!(browser.page(harness, path), async {
        let PlatformFrame::Request {
            request_id,
            actor,
            request,
        } = orchestrator.recv().await
        else {
            panic!("expected a request");
        };
        orchestrator.answer(request_id, json!(HeldJobList { holds })).await;
        (actor, request)
    });
    assert_eq!(page.0, 200, "{}", page.1);
    (asked, page.1)
}

#[tokio::test]
async fn owners_decide_held_jobs_through_the_runs_orchestrator_and_members_only_see_them() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::start(config(dir.path(), &[])).await;
    let mut orchestrator = ScriptedOrchestrator::online(&harness, "orch-1").await;
    push_held_run(&mut orchestrator).await;
    let owner = Browser::sign_in(&harness, ADMIN_TOKEN).await;

    // The queue, filtered to the run; the owner may decide.
    let (asked, page) = queue_page(
        &harness,
        &owner,
        &mut orchestrator,
        "/approvals?runId=run-1",
        vec![held(HoldStatus::Pending)],
    )
    .await;
    assert_eq!(
        asked,
        (
            "admin".to_string(),
            PlatformRequest::HeldRuns {
                status: None,
                run_id: Some("run-1".into())
            }
        )
    );
    assert!(
        page.contains(r#"<tr data-hold-id="hold-1" data-run-id="run-1" data-job-id="job-1">"#),
        "{page}"
    );
    assert!(page.contains("<button data-approve>Approve</button>"), "{page}");
    assert!(page.contains("No decided holds"), "{page}");
    // The nav counts the cached held job on every page; the runs list and the run page mark it.
    assert!(
        page.contains(r#"id="approvals-count" title="Jobs waiting for approval">1</span>"#),
        "{page}"
    );
    let (_, runs) = owner.page(&harness, "/runs").await;
    assert!(
        runs.contains(r#"<a class="chip held" href="/approvals?runId=run-1">Waiting for approval</a>"#),
        "{runs}"
    );
    let (_, run_page) = owner.page(&harness, "/runs/run-1").await;
    assert!(
        run_page.contains("<p>Waiting for approval: build (production) — reviewers user:admin — expires "),
        "{run_page}"
    );
    assert!(
        run_page.contains(r#"<span class="status status-held">held</span>"#),
        "{run_page}"
    );

    // Approve: the orchestrator decides as the caller, its answer passes through.
    let pending = harness.spawn_post("/api/v1/runs/run-1/approve", json!({"job": "job-1"}));
    let (request_id, request) = orchestrator.request().await;
    assert_eq!(
        request,
        PlatformRequest::ApproveHeld {
            run_id: "run-1".into(),
            job: Some("job-1".into())
        }
    );
    let decided = HoldsDecided {
        run_id: "run-1".into(),
        holds: vec![held(HoldStatus::Approved)],
    };
    orchestrator.answer(request_id, json!(decided)).await;
    assert_eq!(pending.await.unwrap(), (200, json!(decided)));

    // Reject: an empty reason is none; refusals keep their codes.
    let pending = harness.spawn_post("/api/v1/runs/run-1/reject", json!({"reason": " "}));
    let (request_id, request) = orchestrator.request().await;
    assert_eq!(
        request,
        PlatformRequest::RejectHeld {
            run_id: "run-1".into(),
            job: None,
            reason: None
        }
    );
    orchestrator
        .refuse(
            request_id,
            "no_pending_hold",
            "run run-1 has no job waiting for approval",
        )
        .await;
    assert_eq!(
        pending.await.unwrap(),
        (
            409,
            json!({"error": {"code": "no_pending_hold", "message": "run run-1 has no job waiting for approval"}})
        )
    );
    let pending = harness.spawn_post("/api/v1/runs/run-1/approve", json!({}));
    let (request_id, _) = orchestrator.request().await;
    orchestrator
        .refuse(request_id, "not_a_reviewer", "`admin` is not among the reviewers")
        .await;
    assert_eq!(pending.await.unwrap().0, 403);

    // A member sees the queue without buttons and is refused before anything is sent.
    let (status, created) = harness
        .post("/api/v1/users", json!({"name": "rita", "role": "member"}))
        .await;
    assert_eq!(status, 201, "{created}");
    let member_token = created["token"].as_str().unwrap();
    let member = Browser::sign_in(&harness, member_token).await;
    let ((actor, _), page) = queue_page(
        &harness,
        &member,
        &mut orchestrator,
        "/approvals",
        vec![held(HoldStatus::Pending)],
    )
    .await;
    assert_eq!(actor, "rita");
    assert!(
        !page.contains("data-approve") && !page.contains("data-reject"),
        "{page}"
    );
    assert!(page.contains("Only owners may approve or reject."), "{page}");
    let refused =
        json!({"error": {"code": "forbidden", "message": "Insufficient permission: environments.write needed"}});
    for verdict in ["approve", "reject"] {
        let path = format!("/api/v1/runs/run-1/{verdict}");
        assert_eq!(
            bearer(&harness, "POST", &path, member_token, Some(json!({}))).await,
            (403, refused.clone()),
            "{path}"
        );
        assert_eq!(
            member.api(&harness, "POST", &path, Some(&member.csrf), json!({})).await,
            (403, refused.clone()),
            "{path}"
        );
    }
    // Nothing reached the orchestrator: the next request it sees is the next page's.
    let mut decided_hold = held(HoldStatus::Rejected);
    decided_hold.decided_by = Some("admin".into());
    decided_hold.decided_at = Some(2_000);
    decided_hold.decision_reason = Some("freeze week".into());
    let ((_, request), page) = queue_page(
        &harness,
        &owner,
        &mut orchestrator,
        "/approvals?status=rejected",
        vec![decided_hold],
    )
    .await;
    assert_eq!(
        request,
        PlatformRequest::HeldRuns {
            status: Some(HoldStatus::Rejected),
            run_id: None
        }
    );
    assert!(
        page.contains(r#"<span class="status status-rejected">rejected</span></td><td>admin</td>"#),
        "{page}"
    );
    assert!(page.contains("freeze week"), "{page}");
    assert!(!page.contains("pending-holds"), "{page}");

    // The orchestrator goes away: the page says so, deciding is 503.
    drop(orchestrator);
    harness
        .wait_until("/api/v1/runs/run-1/detail", |d| d["orchestratorOnline"] == false)
        .await;
    let (_, page) = owner.page(&harness, "/approvals").await;
    assert!(
        page.contains(
            "Orchestrator <code>orch-1</code>: This is served by the orchestrator, which is currently offline"
        ),
        "{page}"
    );
    assert_eq!(
        harness.post("/api/v1/runs/run-1/approve", json!({})).await,
        (
            503,
            json!({"error": {"code": "orchestrator_offline", "message": "The orchestrator is offline; try again when it is connected"}})
        )
    );
    harness.platform.stop().await;
}
