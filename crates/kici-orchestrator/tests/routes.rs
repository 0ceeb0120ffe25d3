//! Every HTTP route, in process through `http::router` (no listener, no binary): what it
//! answers without a token, with one, and for a run that exists or does not.

// Test helpers fail the test the way its assertions do.
#![allow(clippy::unwrap_used)]

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use kici_engine::ids::JobId;
use kici_engine::protocol::JobKind;
use kici_orchestrator::clock::now_ms;
use kici_orchestrator::http::router;
use kici_orchestrator::ids::{new_admin_token, token_hash};
use kici_store::AdminToken;
use serde_json::{Value, json};
use support::{Harness, harnesses, new_entry, new_job, new_run};
use tower::ServiceExt;

/// The answer's status and body (JSON when it parses, else the text as a JSON string).
async fn call(
    harness: &Harness,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    }
    .unwrap();
    let answer = router(harness.state.clone()).oneshot(request).await.unwrap();
    let status = answer.status();
    let bytes = answer.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).to_string();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn admin_token(harness: &Harness) -> String {
    let token = new_admin_token();
    let record = AdminToken {
        token_id: "t-test".into(),
        label: "test".into(),
        role: "owner".into(),
        teams: Vec::new(),
        created_at: now_ms(),
        last_used_at: None,
        revoked_at: None,
    };
    harness
        .state
        .store
        .insert_admin_token(&record, &token_hash(&token))
        .await
        .unwrap();
    token
}

#[tokio::test]
async fn open_routes_answer_without_a_token_and_the_api_needs_one() {
    for (db, harness) in harnesses(&[]).await {
        let (status, health) = call(&harness, Method::GET, "/health", None, None).await;
        assert_eq!(
            (status, health["service"].as_str()),
            (StatusCode::OK, Some("orchestrator")),
            "{db}"
        );
        assert_eq!(
            call(&harness, Method::GET, "/ready", None, None).await,
            (StatusCode::OK, json!("ready")),
            "{db}"
        );
        let (status, _) = call(&harness, Method::GET, "/ws", None, None).await;
        assert!(
            status.is_client_error(),
            "{db}: a GET without an upgrade is refused, got {status}"
        );
        for (method, path) in [
            (Method::GET, "/metrics"),
            (Method::GET, "/api/v1/runs"),
            (Method::GET, "/api/v1/admin/tokens"),
            (Method::GET, "/api/v1/admin/diagnose"),
            (Method::POST, "/api/v1/admin/config/reload"),
        ] {
            let (status, body) = call(&harness, method.clone(), path, None, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{db}: {method} {path}: {body}");
        }
        let (status, body) = call(&harness, Method::GET, "/api/v1/runs", Some("kici_not_a_token"), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{db}: {body}");
        let token = admin_token(&harness).await;
        kici_telemetry::metrics::install(kici_telemetry::metrics::MetricSet::Orchestrator);
        let (status, metrics) = call(&harness, Method::GET, "/metrics", Some(&token), None).await;
        assert_eq!(status, StatusCode::OK, "{db}");
        assert!(
            metrics.as_str().is_some_and(|text| text.contains("kici_orch_")),
            "{db}: {metrics}"
        );
    }
}

#[tokio::test]
async fn run_routes_serve_a_stored_run_and_404_an_unknown_one() {
    for (db, harness) in harnesses(&[]).await {
        let token = admin_token(&harness).await;
        let store = &harness.state.store;
        store
            .insert_run(
                &new_run("r1", None),
                &[new_job("r1", "j1", "build", JobKind::Execute)],
                &[new_entry("r1", "j1", None)],
            )
            .await
            .unwrap();
        let (status, list) = call(&harness, Method::GET, "/api/v1/runs", Some(&token), None).await;
        assert_eq!(
            (status, list["total"].as_i64()),
            (StatusCode::OK, Some(1)),
            "{db}: {list}"
        );
        for path in ["/api/v1/runs/r1", "/api/v1/admin/runs/r1"] {
            let (status, run) = call(&harness, Method::GET, path, Some(&token), None).await;
            assert_eq!(
                (status, run["run"]["runId"].as_str()),
                (StatusCode::OK, Some("r1")),
                "{db}: {path}: {run}"
            );
        }
        let (status, detail) = call(&harness, Method::GET, "/api/v1/runs/r1/detail", Some(&token), None).await;
        assert_eq!(
            (status, detail["jobs"][0]["jobName"].as_str()),
            (StatusCode::OK, Some("build")),
            "{db}: {detail}"
        );
        let (status, jobs) = call(&harness, Method::GET, "/api/v1/runs/r1/jobs", Some(&token), None).await;
        assert_eq!(
            (status, jobs["jobs"][0]["status"].as_str()),
            (StatusCode::OK, Some("queued")),
            "{db}: {jobs}"
        );
        let (status, logs) = call(&harness, Method::GET, "/api/v1/runs/r1/logs", Some(&token), None).await;
        assert_eq!(
            (status, logs["steps"].as_array().map(Vec::len)),
            (StatusCode::OK, Some(0)),
            "{db}: {logs}"
        );
        let (status, events) = call(&harness, Method::GET, "/api/v1/runs/r1/events", Some(&token), None).await;
        assert_eq!(
            (status, events["events"].as_array().map(Vec::len)),
            (StatusCode::OK, Some(0)),
            "{db}: {events}"
        );
        let (status, lines) = call(
            &harness,
            Method::GET,
            "/api/v1/runs/r1/jobs/j1/provisioning",
            Some(&token),
            None,
        )
        .await;
        assert_eq!(
            (status, lines["totalLines"].as_u64()),
            (StatusCode::OK, Some(0)),
            "{db}: {lines}"
        );
        let (status, step) = call(
            &harness,
            Method::GET,
            "/api/v1/runs/r1/jobs/j1/steps/0/logs",
            Some(&token),
            None,
        )
        .await;
        assert_eq!(
            (status, step),
            (StatusCode::OK, json!({"lines": []})),
            "{db}: no step 0 was reported yet"
        );
        for (method, path) in [
            (Method::GET, "/api/v1/runs/nope"),
            (Method::GET, "/api/v1/runs/nope/detail"),
            (Method::GET, "/api/v1/runs/nope/jobs"),
            (Method::GET, "/api/v1/runs/nope/logs"),
            (Method::GET, "/api/v1/runs/nope/events"),
            (Method::GET, "/api/v1/runs/nope/jobs/j1/provisioning"),
            (Method::POST, "/api/v1/runs/nope/cancel"),
            (Method::POST, "/api/v1/runs/nope/rerun"),
            (Method::GET, "/api/v1/admin/deliveries/nope"),
        ] {
            let (status, body) = call(&harness, method.clone(), path, Some(&token), None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{db}: {method} {path}: {body}");
            assert!(
                body["error"].is_object() || body["error"].is_string(),
                "{db}: {method} {path}: {body}"
            );
        }
        let (status, cancel) = call(
            &harness,
            Method::POST,
            "/api/v1/runs/r1/cancel",
            Some(&token),
            Some(json!({})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{db}: {cancel}");
        let job = store.get_job(&JobId::from("j1")).await.unwrap().unwrap();
        assert_eq!(job.job.status, kici_engine::status::JobStatus::Cancelled, "{db}");
    }
}

#[tokio::test]
async fn admin_routes_create_list_and_revoke() {
    for (db, harness) in harnesses(&[]).await {
        let token = admin_token(&harness).await;
        let (status, created) = call(
            &harness,
            Method::POST,
            "/api/v1/admin/tokens",
            Some(&token),
            Some(json!({"label": "ci"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{db}: {created}");
        let (status, tokens) = call(&harness, Method::GET, "/api/v1/admin/tokens", Some(&token), None).await;
        assert_eq!(status, StatusCode::OK, "{db}: {tokens}");
        assert!(tokens.to_string().contains("\"ci\""), "{db}: {tokens}");
        let (status, _) = call(
            &harness,
            Method::DELETE,
            "/api/v1/admin/tokens/nope",
            Some(&token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{db}");

        let (status, agent) = call(
            &harness,
            Method::POST,
            "/api/v1/admin/agents",
            Some(&token),
            Some(json!({"label": "builder"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{db}: {agent}");
        let (status, agents) = call(&harness, Method::GET, "/api/v1/admin/agents", Some(&token), None).await;
        assert_eq!(status, StatusCode::OK, "{db}: {agents}");
        let (status, _) = call(
            &harness,
            Method::DELETE,
            "/api/v1/admin/agents/nope",
            Some(&token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{db}");

        let repo = tempfile::tempdir().unwrap();
        let path = repo.path().display().to_string();
        let (status, source) = call(
            &harness,
            Method::POST,
            "/api/v1/admin/sources",
            Some(&token),
            Some(json!({"kind": "local", "name": "app", "path": path})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{db}: {source}");
        let (status, sources) = call(&harness, Method::GET, "/api/v1/admin/sources", Some(&token), None).await;
        assert_eq!(status, StatusCode::OK, "{db}: {sources}");
        assert!(sources.to_string().contains("\"app\""), "{db}: {sources}");
        let (status, _) = call(
            &harness,
            Method::POST,
            "/api/v1/admin/sources/nope/trigger-token",
            Some(&token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{db}");

        let (status, rotated) = call(
            &harness,
            Method::POST,
            "/api/v1/admin/secrets/rotate-key",
            Some(&token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{db}: {rotated}");
    }
}

#[tokio::test]
async fn ops_routes_report_on_the_orchestrator() {
    for (db, harness) in harnesses(&[]).await {
        let token = admin_token(&harness).await;
        let (status, report) = call(&harness, Method::GET, "/api/v1/admin/diagnose", Some(&token), None).await;
        assert_eq!(status, StatusCode::OK, "{db}: {report}");
        assert!(
            report["checks"].as_array().is_some_and(|c| !c.is_empty()),
            "{db}: {report}"
        );
        let (status, info) = call(&harness, Method::GET, "/api/v1/admin/system-info", Some(&token), None).await;
        assert_eq!(status, StatusCode::OK, "{db}: {info}");
        let (status, config) = call(&harness, Method::GET, "/api/v1/admin/config", Some(&token), None).await;
        assert_eq!(status, StatusCode::OK, "{db}: {config}");
        let (status, reload) = call(
            &harness,
            Method::POST,
            "/api/v1/admin/config/reload",
            Some(&token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{db}: {reload}");
        let (status, cluster) = call(
            &harness,
            Method::GET,
            "/api/v1/admin/cluster/health",
            Some(&token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{db}: {cluster}");
        let (status, scalers) = call(&harness, Method::GET, "/api/v1/admin/scalers", Some(&token), None).await;
        assert_eq!(
            (status, &scalers["alive"], &scalers["scalers"]),
            (StatusCode::OK, &json!(0), &json!([])),
            "{db}: {scalers}"
        );
        let (status, _) = call(&harness, Method::GET, "/api/v1/admin/scalers", None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{db}");
        let (status, hook) = call(
            &harness,
            Method::POST,
            "/webhook/default/generic/nope",
            None,
            Some(json!({})),
        )
        .await;
        assert!(
            status.is_client_error(),
            "{db}: an unknown source is refused: {status} {hook}"
        );
    }
}
