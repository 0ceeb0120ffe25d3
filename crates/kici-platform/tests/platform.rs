//! The Platform end to end over real sockets: started in-process on a free port with a cache
//! file in a temporary directory, a scripted orchestrator speaking the real protocol
//! (`kici_engine::platform_protocol`) over tokio-tungstenite, and REST and SSE calls over HTTP.
//!
//! The scripted orchestrator stands in for the orchestrator side only, so each case can send
//! exactly the frames it needs (stale snapshots, unanswered requests); everything of the
//! Platform is the real code.

#![allow(clippy::unwrap_used)]

/// Sign-in, sessions, CSRF, user deletion and the live stream limits.
#[path = "platform/sessions.rs"]
mod sessions;

/// The approval queue page and approving or rejecting through the run's orchestrator.
#[path = "platform/approvals.rs"]
mod approvals;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kici_engine::api::{Job, LogLine, ProvisioningLine, Run, RunDetail, RunEvent, RunLogs, Step};
use kici_engine::platform_protocol::{
    OrchestratorFrame, PLATFORM_PROTOCOL_VERSION, PlatformFrame, PlatformRequest, ResponseError, RunSnapshot,
    SUPPORTED_REQUESTS,
};
use kici_engine::status::{JobStatus, RunStatus, StepStatus};
use kici_platform::Platform;
use kici_platform::config::Config;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
const ORCHESTRATOR_KEY: &str = "kici_ok_test-orchestrator-key";
/// How long any single wait in these tests may take before the test fails.
const WAIT: Duration = Duration::from_secs(10);

fn config(dir: &Path, extra: &[(&str, &str)]) -> Config {
    let mut env: BTreeMap<String, String> = [
        ("KICI_PORT", "0"),
        ("KICI_DATA_DIR", dir.to_str().expect("utf-8 temp dir")),
        ("KICI_PLATFORM_ADMIN_TOKEN", ADMIN_TOKEN),
        ("KICI_PLATFORM_ORCHESTRATOR_KEY", ORCHESTRATOR_KEY),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::from_env(&env).expect("valid test configuration")
}

struct Harness {
    platform: Platform,
    http: reqwest::Client,
}

impl Harness {
    async fn start(config: Config) -> Harness {
        Harness {
            platform: Platform::start(config).await.expect("the Platform starts"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.platform.address)
    }

    /// `GET` with the admin token: (status, JSON body).
    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// Runs `GET path` in the background (while the test plays the orchestrator).
    fn spawn_get(&self, path: &str) -> tokio::task::JoinHandle<(u16, Value)> {
        let request = self.http.get(self.url(path)).bearer_auth(ADMIN_TOKEN);
        tokio::spawn(async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json().await.unwrap())
        })
    }

    fn spawn_post(&self, path: &str, body: Value) -> tokio::task::JoinHandle<(u16, Value)> {
        let request = self.http.post(self.url(path)).bearer_auth(ADMIN_TOKEN).json(&body);
        tokio::spawn(async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json().await.unwrap())
        })
    }

    async fn connect(&self) -> ScriptedOrchestrator {
        ScriptedOrchestrator::connect(&format!("ws://{}/ws/orchestrator", self.platform.address)).await
    }

    /// Polls `GET path` until `done(body)`, for state that changes after an event the test
    /// cannot observe directly (a socket closing on the server side).
    async fn wait_until(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (_, body) = self.get(path).await;
            if done(&body) {
                return body;
            }
            assert!(tokio::time::Instant::now() < deadline, "{path} never got there: {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// An orchestrator played by the test.
struct ScriptedOrchestrator {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl ScriptedOrchestrator {
    async fn connect(url: &str) -> ScriptedOrchestrator {
        let (socket, _) = tokio_tungstenite::connect_async(url).await.expect("websocket connects");
        ScriptedOrchestrator { socket }
    }

    /// Connects, authenticates with the right key and registers as `instance_id`.
    async fn online(harness: &Harness, instance_id: &str) -> ScriptedOrchestrator {
        let mut orchestrator = harness.connect().await;
        orchestrator.send(&auth(ORCHESTRATOR_KEY)).await;
        assert!(matches!(orchestrator.recv().await, PlatformFrame::AuthSuccess { .. }));
        orchestrator
            .send(&OrchestratorFrame::Register {
                instance_id: instance_id.into(),
                version: "0.1.0".into(),
                url: "http://127.0.0.1:4000".into(),
            })
            .await;
        orchestrator.sync().await;
        orchestrator
    }

    async fn send(&mut self, frame: &OrchestratorFrame) {
        let text = serde_json::to_string(frame).unwrap();
        self.socket.send(Message::text(text)).await.expect("frame sent");
    }

    async fn next_message(&mut self) -> Message {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("the Platform answers in time")
                .expect("the socket is open")
                .expect("a readable frame");
            if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
                return message;
            }
        }
    }

    async fn recv(&mut self) -> PlatformFrame {
        match self.next_message().await {
            Message::Text(text) => serde_json::from_str(&text).expect("a Platform frame"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The close code the Platform closed with.
    async fn closed_with(&mut self) -> u16 {
        match self.next_message().await {
            Message::Close(Some(frame)) => u16::from(frame.code),
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    /// A heartbeat round trip: every frame sent before it has been handled.
    async fn sync(&mut self) {
        self.send(&OrchestratorFrame::Heartbeat { timestamp: 1 }).await;
        assert!(matches!(self.recv().await, PlatformFrame::Heartbeat { .. }));
    }

    /// Waits for a request; returns its id and body.
    async fn request(&mut self) -> (String, PlatformRequest) {
        match self.recv().await {
            PlatformFrame::Request {
                request_id,
                actor,
                request,
            } => {
                assert_eq!(actor, "admin");
                (request_id, request)
            }
            other => panic!("expected a request, got {other:?}"),
        }
    }

    async fn answer(&mut self, request_id: String, data: Value) {
        self.send(&OrchestratorFrame::Response {
            request_id,
            data: Some(data),
            error: None,
        })
        .await;
    }

    async fn refuse(&mut self, request_id: String, code: &str, message: &str) {
        self.send(&OrchestratorFrame::Response {
            request_id,
            data: None,
            error: Some(ResponseError {
                code: code.into(),
                message: message.into(),
            }),
        })
        .await;
    }

    async fn push(&mut self, run: Run, jobs: Vec<Job>) {
        self.send(&OrchestratorFrame::ExecutionStatus(Box::new(RunSnapshot { run, jobs })))
            .await;
    }

    /// Pushes `run-1`, running, whose job `job-1` runs step 0, and waits until it is cached.
    async fn push_running_step(&mut self) {
        let steps = vec![step(0, "test", StepStatus::Running)];
        self.push(
            run("run-1", RunStatus::Running),
            vec![job("run-1", "job-1", JobStatus::Running, steps)],
        )
        .await;
        self.sync().await;
    }
}

fn auth(token: &str) -> OrchestratorFrame {
    OrchestratorFrame::AuthRequest {
        token: token.into(),
        protocol_version: PLATFORM_PROTOCOL_VERSION,
        supported_dashboard_requests: SUPPORTED_REQUESTS.iter().map(|s| s.to_string()).collect(),
    }
}

fn run(run_id: &str, status: RunStatus) -> Run {
    Run {
        run_id: run_id.into(),
        workflow_name: "ci".into(),
        status,
        repo: "acme/app".into(),
        git_ref: "refs/heads/main".into(),
        sha: "0123456789abcdef".into(),
        trigger: "push".into(),
        provider: "generic".into(),
        source_id: "app".into(),
        delivery_id: format!("delivery-{run_id}"),
        failure_reason: None,
        init_failure: None,
        created_at: 1_000,
        started_at: Some(1_100),
        completed_at: None,
        duration_ms: None,
        rerun_of: None,
        reruns: Vec::new(),
        trust: None,
        title: None,
        actor: None,
    }
}

fn finished(run_id: &str, status: RunStatus, completed_at: i64) -> Run {
    Run {
        completed_at: Some(completed_at),
        duration_ms: Some(completed_at - 1_100),
        failure_reason: (status == RunStatus::Failed).then(|| "Failed jobs: build".to_string()),
        ..run(run_id, status)
    }
}

fn step(step_index: i64, name: &str, status: StepStatus) -> Step {
    Step {
        step_index,
        step_name: name.into(),
        step_type: "step".into(),
        status,
        exit_code: None,
        error_message: None,
        started_at: Some(1_200),
        completed_at: None,
        duration_ms: None,
        secrets_accessed: Vec::new(),
    }
}

fn job(run_id: &str, job_id: &str, status: JobStatus, steps: Vec<Step>) -> Job {
    Job {
        job_id: job_id.into(),
        run_id: run_id.into(),
        job_name: "build".into(),
        base_job_name: "build".into(),
        status,
        agent_id: Some("agent-1".into()),
        error_message: None,
        init_failure: None,
        needs: Vec::new(),
        created_at: 1_000,
        started_at: Some(1_150),
        completed_at: None,
        duration_ms: None,
        steps: Some(steps),
        reused_from: None,
    }
}

fn lines(range: std::ops::Range<i64>) -> Vec<LogLine> {
    range
        .map(|i| LogLine {
            ts: 10_000 + i,
            line: format!("line {i}"),
        })
        .collect()
}

/// A Server-Sent Events stream read over plain HTTP.
struct SseStream {
    response: reqwest::Response,
    buffer: String,
}

#[derive(Debug)]
struct SseEvent {
    event: Option<String>,
    id: Option<String>,
    data: Value,
}

impl SseStream {
    async fn open(request: reqwest::RequestBuilder) -> SseStream {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        SseStream {
            response,
            buffer: String::new(),
        }
    }

    async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    event: None,
                    id: None,
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    } else if let Some(value) = line.strip_prefix("event:") {
                        event.event = Some(value.trim().to_string());
                    } else if let Some(value) = line.strip_prefix("id:") {
                        event.id = Some(value.trim().to_string());
                    }
                }
                if data.is_empty() {
                    // A keep-alive comment.
                    continue;
                }
                event.data = serde_json::from_str(&data).expect("JSON event data");
                return event;
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("an event in time")
                .expect("the stream is readable")
                .expect("the stream is open");
            self.buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8 events"));
        }
    }
}

#[tokio::test]
async fn a_bad_key_gets_auth_failure_and_close_4001() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::start(config(dir.path(), &[])).await;
    let mut orchestrator = harness.connect().await;
    orchestrator.send(&auth("kici_ok_wrong")).await;
    match orchestrator.recv().await {
        PlatformFrame::AuthFailure { reason } => assert!(reason.starts_with("invalid orchestrator key"), "{reason}"),
        other => panic!("expected auth.failure, got {other:?}"),
    }
    assert_eq!(orchestrator.closed_with().await, 4001);
    harness.platform.stop().await;
}

#[tokio::test]
async fn no_auth_request_in_time_closes_4002() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), &[]);
    config.timeouts.auth = Duration::from_millis(200);
    let harness = Harness::start(config).await;
    let mut orchestrator = harness.connect().await;
    assert_eq!(orchestrator.closed_with().await, 4002);
    harness.platform.stop().await;
}

#[tokio::test]
async fn a_snapshot_is_listed_shown_and_detailed() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::start(config(dir.path(), &[])).await;
    let mut orchestrator = ScriptedOrchestrator::online(&harness, "orch-1").await;
    let jobs = vec![job(
        "run-1",
        "job-1",
        JobStatus::Running,
        vec![
            step(0, "checkout", StepStatus::Success),
            step(1, "test", StepStatus::Running),
        ],
    )];
    orchestrator.push(run("run-1", RunStatus::Running), jobs.clone()).await;
    let other = Run {
        git_ref: "refs/heads/feature".into(),
        created_at: 500,
        ..finished("run-0", RunStatus::Success, 900)
    };
    orchestrator.push(other, Vec::new()).await;
    orchestrator
        .send(&OrchestratorFrame::RunEvent(Box::new(RunEvent {
            event_id: "event-1".into(),
            run_id: "run-1".into(),
            job_id: Some("job-1".into()),
            event_type: kici_engine::api::RunEventType::ScalerReady,
            title: "Agent started".into(),
            source_service: "orchestrator".into(),
            timestamp_ms: 1_120,
            metadata: json!({"agentId": "agent-1", "category": "scaler"}),
        })))
        .await;
    orchestrator.sync().await;

    let (status, list) = harness.get("/api/v1/runs").await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 2);
    let ids: Vec<&str> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["runId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["run-1", "run-0"], "newest first");
    let (_, running) = harness
        .get("/api/v1/runs?status=running,pending&branch=main&limit=5")
        .await;
    assert_eq!(
        (running["total"].as_i64(), running["runs"][0]["runId"].as_str()),
        (Some(1), Some("run-1"))
    );
    let (_, feature) = harness.get("/api/v1/runs?branch=feature").await;
    assert_eq!(feature["runs"][0]["runId"], "run-0");
    let (status, bad) = harness.get("/api/v1/runs?status=done").await;
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("invalid_query")));

    let (status, show) = harness.get("/api/v1/runs/run-1").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_value::<Run>(show["run"].clone()).unwrap(),
        run("run-1", RunStatus::Running)
    );
    let (status, missing) = harness.get("/api/v1/runs/nope").await;
    assert_eq!(
        (status, missing),
        (
            404,
            json!({"error": {"code": "not_found", "message": "run nope not found"}})
        )
    );

    let (status, detail) = harness.get("/api/v1/runs/run-1/detail").await;
    assert_eq!(status, 200);
    // What `kici runs show` reads; the Platform's extra fields do not get in its way.
    let parsed: RunDetail = serde_json::from_value(detail.clone()).unwrap();
    assert_eq!(parsed.run.run_id, "run-1");
    assert_eq!(detail["orchestratorOnline"], true);
    assert_eq!(detail["stale"], false);
    assert_eq!(
        serde_json::from_value::<Vec<Job>>(detail["jobs"].clone()).unwrap(),
        jobs
    );
    let (_, listed_jobs) = harness.get("/api/v1/runs/run-1/jobs").await;
    assert_eq!(listed_jobs["jobs"][0]["jobId"], "job-1");
    assert!(listed_jobs["jobs"][0].get("steps").is_none());
    let (_, with_steps) = harness.get("/api/v1/runs/run-1/jobs?includeSteps=true").await;
    assert_eq!(with_steps["jobs"][0]["steps"][1]["stepName"], "test");
    let (_, events) = harness.get("/api/v1/runs/run-1/events").await;
    assert_eq!(events["events"][0]["eventType"], "scaler.ready");
    harness.platform.stop().await;
}

#[tokio::test]
async fn an_older_snapshot_does_not_reopen_a_finished_run() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::start(config(dir.path(), &[])).await;
    let mut events = SseStream::open(
        harness
            .http
            .get(harness.url("/api/v1/events/live"))
            .bearer_auth(ADMIN_TOKEN),
    )
    .await;
    let mut orchestrator = ScriptedOrchestrator::online(&harness, "orch-1").await;
    let running = run("run-1", RunStatus::Running);
    orchestrator.push(running.clone(), Vec::new()).await;
    orchestrator.push(running.clone(), Vec::new()).await;
    orchestrator
        .push(finished("run-1", RunStatus::Failed, 2_000), Vec::new())
        .await;
    // Late: replayed after a reconnect, or overtaken.
    orchestrator.push(running, Vec::new()).await;
    orchestrator.sync().await;
    let (_, show) = harness.get("/api/v1/runs/run-1").await;
    assert_eq!(show["run"]["status"], "failed");
    assert_eq!(show["run"]["failureReason"], "Failed jobs: build");
    drop(orchestrator);

    let mut seen = Vec::new();
    while seen.last() != Some(&json!({"type": "orchestrator.offline", "instanceId": "orch-1"})) {
        seen.push(events.next().await.data);
    }
    assert_eq!(
        seen,
        [
            json!({"type": "orchestrator.online", "instanceId": "orch-1"}),
            json!({"type": "run.status", "runId": "run-1", "status": "running"}),
            json!({"type": "run.status", "runId": "run-1", "status": "failed"}),
            json!({"type": "orchestrator.offline", "instanceId": "orch-1"}),
        ]
    );
    harness.platform.stop().await;
}

#[tokio::test]
async fn logs_are_proxied_to_the_orchestrator_and_offline_is_a_503() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), &[("KICI_PLATFORM_STALE_AFTER_MS", "0")]);
    config.timeouts.request = Duration::from_millis(500);
    let harness = Harness::start(config).await;
    let mut orchestrator = ScriptedOrchestrator::online(&harness, "orch-1").await;
    let steps = vec![
        step(0, "checkout", StepStatus::Success),
        step(1, "test", StepStatus::Failed),
    ];
    orchestrator
        .push(
            run("run-1", RunStatus::Running),
            vec![job("run-1", "job-1", JobStatus::Running, steps)],
        )
        .await;
    orchestrator.sync().await;

    // One step's stored log.
    let pending = harness.spawn_get("/api/v1/runs/run-1/jobs/job-1/steps/1/logs");
    let (request_id, request) = orchestrator.request().await;
    assert_eq!(
        request,
        PlatformRequest::StepLogs {
            run_id: "run-1".into(),
            job_id: "job-1".into(),
            step_index: 1
        }
    );
    orchestrator
        .answer(request_id, json!({"lines": lines(0..3), "totalLines": 3}))
        .await;
    let (status, body) = pending.await.unwrap();
    assert_eq!((status, body), (200, json!({"lines": lines(0..3), "totalLines": 3})));

    // The whole run: prepare (none here), then each step, in order.
    let pending = harness.spawn_get("/api/v1/runs/run-1/logs?job=build");
    for _ in 0..3 {
        let (request_id, request) = orchestrator.request().await;
        let PlatformRequest::StepLogs { step_index, .. } = request else {
            panic!("expected a step log request, got {request:?}");
        };
        match step_index {
            -1 => orchestrator.refuse(request_id, "not_found", "No logs available").await,
            index => {
                orchestrator
                    .answer(request_id, json!({"lines": lines(index..index + 1), "totalLines": 1}))
                    .await
            }
        }
    }
    let (status, body) = pending.await.unwrap();
    assert_eq!(status, 200, "{body}");
    // What `kici runs logs` reads.
    let _: RunLogs = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(body["status"], "running");
    let steps: Vec<(i64, &str, &str)> = body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stepIndex"].as_i64().unwrap(),
                s["stepName"].as_str().unwrap(),
                s["lines"][0]["line"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(steps, [(0, "checkout", "line 0"), (1, "test", "line 1")]);

    // Provisioning logs.
    let pending = harness.spawn_get("/api/v1/runs/run-1/jobs/job-1/provisioning");
    let (request_id, request) = orchestrator.request().await;
    assert!(matches!(request, PlatformRequest::OrchLogs { .. }));
    let provisioning = ProvisioningLine {
        ts: 1,
        phase: "provisioning".into(),
        event_type: "scaler.failed".into(),
        message: "agent process error: spawn node ENOENT".into(),
        agent_id: "agent-1".into(),
    };
    orchestrator
        .answer(request_id, json!({"lines": [provisioning], "totalLines": 1}))
        .await;
    let (status, body) = pending.await.unwrap();
    assert_eq!(
        (status, body),
        (
            200,
            json!({"runId": "run-1", "jobId": "job-1", "lines": [provisioning], "totalLines": 1})
        )
    );

    // Cancel: the orchestrator's answer, and its error codes, pass through.
    let pending = harness.spawn_post("/api/v1/runs/run-1/cancel", json!({"force": true}));
    let (request_id, request) = orchestrator.request().await;
    assert_eq!(
        request,
        PlatformRequest::Cancel {
            run_id: "run-1".into(),
            force: true
        }
    );
    orchestrator
        .answer(
            request_id,
            json!({"runId": "run-1", "status": "cancelling", "cancelledJobs": 1}),
        )
        .await;
    assert_eq!(
        pending.await.unwrap(),
        (
            200,
            json!({"runId": "run-1", "status": "cancelling", "cancelledJobs": 1})
        )
    );
    let pending = harness.spawn_post("/api/v1/runs/run-1/cancel", json!({}));
    let (request_id, _) = orchestrator.request().await;
    orchestrator
        .refuse(request_id, "conflict", "run run-1 already finished")
        .await;
    assert_eq!(
        pending.await.unwrap(),
        (
            409,
            json!({"error": {"code": "conflict", "message": "run run-1 already finished"}})
        )
    );

    // No answer in time.
    let pending = harness.spawn_get("/api/v1/runs/run-1/jobs/job-1/steps/0/logs");
    let _unanswered = orchestrator.request().await;
    let (status, body) = pending.await.unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (504, Some("orchestrator_timeout"))
    );

    // The orchestrator goes away: the cache still answers, content does not.
    drop(orchestrator);
    let detail = harness
        .wait_until("/api/v1/runs/run-1/detail", |d| {
            d["orchestratorOnline"] == false && d["stale"] == true
        })
        .await;
    assert_eq!(detail["run"]["status"], "running");
    let offline = json!({"error": {"code": "orchestrator_offline", "message": "Log content is served by the orchestrator, which is currently offline"}});
    for path in [
        "/api/v1/runs/run-1/jobs/job-1/steps/1/logs",
        "/api/v1/runs/run-1/logs",
        "/api/v1/runs/run-1/jobs/job-1/provisioning",
    ] {
        assert_eq!(harness.get(path).await, (503, offline.clone()), "{path}");
    }
    assert_eq!(
        harness.post("/api/v1/runs/run-1/cancel", json!({})).await,
        (
            503,
            json!({"error": {"code": "orchestrator_offline", "message": "The orchestrator is offline; try again when it is connected"}})
        )
    );
    harness.platform.stop().await;
}

#[tokio::test]
async fn live_lines_carry_cumulative_counts_and_resume_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::start(config(dir.path(), &[])).await;
    let mut orchestrator = ScriptedOrchestrator::online(&harness, "orch-1").await;
    orchestrator.push_running_step().await;
    let live = "/api/v1/runs/run-1/jobs/job-1/steps/0/live";
    let chunk = |range: std::ops::Range<i64>| OrchestratorFrame::LogChunk {
        run_id: "run-1".into(),
        job_id: "job-1".into(),
        step_index: 0,
        lines: lines(range),
    };
    let check = |event: SseEvent, expected: std::ops::Range<i64>, line_count: u64| {
        assert_eq!(event.event, None);
        assert_eq!(event.id, Some(line_count.to_string()));
        assert_eq!(event.data, json!({"lines": lines(expected), "lineCount": line_count}));
    };

    // From now on, authenticated with `?token=` as a browser's EventSource would.
    let mut from_now = SseStream::open(harness.http.get(harness.url(&format!("{live}?token={ADMIN_TOKEN}")))).await;
    orchestrator.send(&chunk(0..2)).await;
    orchestrator.send(&chunk(2..5)).await;
    orchestrator.sync().await;
    check(from_now.next().await, 0..2, 2);
    check(from_now.next().await, 2..5, 5);

    // A page that read 3 lines over REST joins: lines 3.. from the ring, then live, once.
    let mut joined = SseStream::open(
        harness
            .http
            .get(harness.url(&format!("{live}?afterLineCount=3")))
            .bearer_auth(ADMIN_TOKEN),
    )
    .await;
    check(joined.next().await, 3..5, 5);
    // EventSource reconnecting sends the last id it saw.
    let mut reconnected = SseStream::open(
        harness
            .http
            .get(harness.url(live))
            .bearer_auth(ADMIN_TOKEN)
            .header("Last-Event-ID", "5"),
    )
    .await;
    orchestrator.send(&chunk(5..6)).await;
    orchestrator.sync().await;
    check(joined.next().await, 5..6, 6);
    check(from_now.next().await, 5..6, 6);
    check(reconnected.next().await, 5..6, 6);

    let unauthorized = harness.http.get(harness.url(live)).send().await.unwrap();
    assert_eq!(unauthorized.status().as_u16(), 401);
    let (status, _) = harness.get("/api/v1/runs/nope/jobs/job-1/steps/0/live").await;
    assert_eq!(status, 404);
    drop((from_now, joined, reconnected));
    harness.platform.stop().await;
}

#[tokio::test]
async fn the_api_needs_the_token_and_health_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::start(config(dir.path(), &[])).await;
    let unauthorized = json!({"error": {"code": "unauthorized", "message": "missing or invalid token (hint: send `Authorization: Bearer <KICI_PLATFORM_ADMIN_TOKEN>`)"}});
    for request in [
        harness.http.get(harness.url("/api/v1/runs")),
        harness
            .http
            .get(harness.url("/api/v1/runs"))
            .bearer_auth("wrong-token-0123456789"),
        // `?token=` is for the live streams only.
        harness
            .http
            .get(harness.url(&format!("/api/v1/runs?token={ADMIN_TOKEN}"))),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401);
        assert_eq!(response.json::<Value>().await.unwrap(), unauthorized);
    }
    let (status, list) = harness.get("/api/v1/runs").await;
    assert_eq!((status, list), (200, json!({"runs": [], "total": 0})));

    let health: Value = harness
        .http
        .get(harness.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["service"], "platform");
    for field in [
        "sdkVersion",
        "sdkBundleHash",
        "sharedVersion",
        "sharedBundleHash",
        "engineVersion",
        "engineBundleHash",
    ] {
        assert!(
            health[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field} in {health}"
        );
    }
    let ready = harness.http.get(harness.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    harness.platform.stop().await;
}

#[tokio::test]
async fn the_cache_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::start(config(dir.path(), &[])).await;
    let mut orchestrator = ScriptedOrchestrator::online(&harness, "orch-1").await;
    let failed = finished("run-1", RunStatus::Failed, 2_000);
    let jobs = vec![job(
        "run-1",
        "job-1",
        JobStatus::Failed,
        vec![step(0, "build", StepStatus::Failed)],
    )];
    orchestrator.push(failed.clone(), jobs.clone()).await;
    orchestrator
        .send(&OrchestratorFrame::RunEvent(Box::new(RunEvent {
            event_id: "event-1".into(),
            run_id: "run-1".into(),
            job_id: Some("job-1".into()),
            event_type: kici_engine::api::RunEventType::ScalerFailed,
            title: "Provisioning failed".into(),
            source_service: "orchestrator".into(),
            timestamp_ms: 1_500,
            metadata: json!({"detail": "spawn node ENOENT", "category": "scaler"}),
        })))
        .await;
    orchestrator.sync().await;
    harness.platform.stop().await;
    // The stopped Platform closed the socket.
    assert_eq!(orchestrator.closed_with().await, 1001);

    let harness = Harness::start(config(dir.path(), &[])).await;
    let (status, detail) = harness.get("/api/v1/runs/run-1/detail").await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_value::<Run>(detail["run"].clone()).unwrap(), failed);
    assert_eq!(
        serde_json::from_value::<Vec<Job>>(detail["jobs"].clone()).unwrap(),
        jobs
    );
    assert_eq!(
        (detail["orchestratorOnline"].as_bool(), detail["stale"].as_bool()),
        (Some(false), Some(false))
    );
    let (_, events) = harness.get("/api/v1/runs/run-1/events").await;
    assert_eq!(events["events"][0]["title"], "Provisioning failed");
    let (_, list) = harness.get("/api/v1/runs?status=failed").await;
    assert_eq!(list["total"], 1);
    harness.platform.stop().await;
}
