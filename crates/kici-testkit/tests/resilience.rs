//! Failures around the run: an agent killed mid-step, an orchestrator killed and restarted
//! mid-run, and bad webhooks and settings.

use kici_engine::failure::AGENT_DID_NOT_RECONNECT;
use kici_engine::ids::RunId;
use kici_engine::status::{JobStatus, RunStatus};
use kici_testkit::{Repo, Stack, binary, hmac_sha256_hex};
use serde_json::json;

const FIXTURE: &str = "tests/e2e-repo";

/// Waits until the run's `count` step has logged `line <n>`.
async fn wait_for_line(stack: &Stack, run_id: &str, n: u32) {
    let wanted = format!("line {n}");
    stack
        .wait_for(&wanted, || async {
            let logs = stack.logs(run_id, Some("count")).await;
            logs.steps
                .iter()
                .any(|s| s.lines.iter().any(|l| l.line == wanted))
                .then_some(())
        })
        .await;
}

#[tokio::test]
async fn an_agent_killed_mid_step_fails_the_job_after_the_recovery_window() {
    let mut stack = Stack::start_with(&[("KICI_AGENT_MAX_RECONNECT_DELAY_MS", "500")]).await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    let runs = stack.push("app", &repo, "slow").await;
    wait_for_line(&stack, &runs[0], 3).await;
    stack.agents[0].kill();
    let detail = stack.wait_run(&runs[0]).await;
    assert_eq!(detail.run.status, RunStatus::Failed);
    assert_eq!(detail.run.failure_reason.as_deref(), Some("Failed jobs: count"));
    let job = &detail.jobs[0];
    assert_eq!(
        (job.status, job.error_message.as_deref()),
        (JobStatus::Failed, Some(AGENT_DID_NOT_RECONNECT))
    );
}

#[tokio::test]
async fn a_restarted_orchestrator_finishes_the_run_without_losing_log_lines() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    let runs = stack.push("app", &repo, "slow").await;
    wait_for_line(&stack, &runs[0], 5).await;
    stack.restart_orchestrator();
    let detail = stack.wait_run(&runs[0]).await;
    assert_eq!(
        detail.run.status,
        RunStatus::Success,
        "{detail:#?}\n{}",
        stack.orchestrator.log_tail(30)
    );
    let logs = stack.logs(&runs[0], Some("count")).await;
    let lines: Vec<&str> = logs
        .steps
        .iter()
        .filter(|s| s.step_name == "count")
        .flat_map(|s| s.lines.iter().map(|l| l.line.as_str()))
        .collect();
    let expected: Vec<String> = (1..=40).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, expected, "every line exactly once, in order");
}

#[tokio::test]
async fn a_job_that_finishes_while_the_orchestrator_is_down_keeps_its_result() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    let runs = stack.push("app", &repo, "slow").await;
    wait_for_line(&stack, &runs[0], 5).await;
    stack.orchestrator.kill();
    // The agent finishes the job alone; it reconnects with nothing in flight and replays the
    // job's last messages from its outbox.
    stack
        .wait_for("the agent to finish the job", || async {
            stack.agents[0].log_text().contains("job.finished").then_some(())
        })
        .await;
    stack.start_orchestrator_again();
    let detail = stack.wait_run(&runs[0]).await;
    assert_eq!(
        detail.run.status,
        RunStatus::Success,
        "{detail:#?}\n{}",
        stack.orchestrator.log_tail(30)
    );
    assert_eq!(detail.jobs[0].status, JobStatus::Success);
}

#[tokio::test]
async fn bad_webhooks_get_a_4xx_and_store_nothing() {
    let stack = Stack::start().await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    stack.post("/api/v1/admin/sources", &json!({"kind": "generic", "name": "forge", "preset": "github-repo", "secret": "s3cret", "gitUrl": format!("file://{}", repo.origin().display())})).await;
    let client = stack.client();
    let url = |source: &str| format!("{}/webhook/default/generic/{source}", stack.url());
    let check = |status: u16, code: &str| {
        let (status, code) = (status, code.to_string());
        move |response: (u16, serde_json::Value)| {
            assert_eq!(response.0, status, "{}", response.1);
            assert_eq!(response.1["error"]["code"], code.as_str(), "{}", response.1);
        }
    };
    async fn send(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }
    // Its own connection: the server answers before reading the body, then closes it.
    check(400, "invalid_payload")(
        send(
            reqwest::Client::new()
                .post(url("app"))
                .bearer_auth(kici_testkit::ADMIN_TOKEN)
                .header("x-event-type", "push")
                .body("{not json"),
        )
        .await,
    );
    check(404, "unknown_source")(send(client.post(url("nope")).header("x-event-type", "push").body("{}")).await);
    check(404, "unknown_organization")(
        send(
            client
                .post(format!("{}/webhook/acme/generic/app", stack.url()))
                .body("{}"),
        )
        .await,
    );
    let body = serde_json::to_vec(&repo.push_payload("forge", "main")).unwrap();
    check(401, "invalid_signature")(
        send(
            client
                .post(url("forge"))
                .header("x-github-event", "push")
                .header("x-hub-signature-256", format!("sha256={}", "00".repeat(32)))
                .body(body.clone()),
        )
        .await,
    );
    check(401, "invalid_signature")(
        send(
            client
                .post(url("forge"))
                .header("x-github-event", "push")
                .body(body.clone()),
        )
        .await,
    );
    // Only the headers are sent: the answer must come without the body being read.
    check(413, "payload_too_large")(declared_only(&stack, "/webhook/default/generic/app", 11 * 1024 * 1024).await);
    assert_eq!(stack.get("/api/v1/runs").await["total"], 0);

    // A correct signature is accepted, and the orchestrator still serves.
    let signature = hmac_sha256_hex(b"s3cret", &body);
    let (status, answer) = send(
        client
            .post(url("forge"))
            .header("x-github-event", "push")
            .header("x-github-delivery", "d-1")
            .header("x-hub-signature-256", format!("sha256={signature}"))
            .body(body.clone()),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], true);
    // The same signed body under a new delivery id is a replay, not a new push.
    let (status, replay) = send(
        client
            .post(url("forge"))
            .header("x-github-event", "push")
            .header("x-github-delivery", "d-2")
            .header("x-hub-signature-256", format!("sha256={signature}"))
            .body(body),
    )
    .await;
    assert_eq!((status, replay["duplicate"].as_bool()), (200, Some(true)), "{replay}");
    let health = client
        .get(format!("{}/health", stack.url()))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status().as_u16(), 200);
}

#[test]
fn unknown_kici_variables_stop_the_services_with_a_suggestion() {
    for (service, typo, suggestion) in [
        ("kici-orchestrator", "KICI_PROT", "KICI_PORT"),
        ("kici-agent", "KICI_LABLES", "KICI_LABELS"),
    ] {
        let output = std::process::Command::new(binary(service))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(typo, "x")
            .env("KICI_ORCHESTRATOR_URL", "ws://127.0.0.1:9/ws")
            .output()
            .expect("service runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{service}: {stderr}");
        assert!(
            stderr.contains("Unknown KICI_* env var(s) detected — refusing to start."),
            "{service}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("  - {typo}    (did you mean {suggestion}?)")),
            "{service}: {stderr}"
        );
    }
}

#[tokio::test]
async fn a_frozen_agent_makes_its_job_timed_out_stale() {
    let heartbeat = [("KICI_JOB_HEARTBEAT_INTERVAL_MS", "500")];
    let mut stack = Stack::start_with(&[
        heartbeat[0],
        ("KICI_STALE_DETECTOR_SCAN_INTERVAL_MS", "250"),
        ("KICI_STALE_DETECTOR_THRESHOLD_MULTIPLIER", "2"),
    ])
    .await;
    stack.start_agent_with("agent-1", &["linux"], &heartbeat).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    let runs = stack.push("app", &repo, "slow").await;
    wait_for_line(&stack, &runs[0], 3).await;
    stack.agents[0].signal(libc::SIGSTOP);
    let detail = stack.wait_run(&runs[0]).await;
    stack.agents[0].signal(libc::SIGCONT);
    assert_eq!(detail.run.status, RunStatus::Failed);
    assert_eq!(
        detail.run.failure_reason.as_deref(),
        Some(kici_engine::failure::STALE_RUN_REASON)
    );
    let job = &detail.jobs[0];
    assert_eq!(job.status, JobStatus::TimedOutStale);
    let error = job.error_message.clone().unwrap_or_default();
    assert!(
        error.starts_with("No heartbeat received for ") && error.ends_with('s'),
        "{error}"
    );
    // Thawed, the agent is told to cancel the job it still runs, and then takes new work.
    stack
        .wait_for("the thawed agent to cancel the stale job", || async {
            stack.agents[0].log_text().contains("job.cancelling").then_some(())
        })
        .await;
    let next = stack.push("app", &repo, "hello").await;
    let detail = stack.wait_run(&next[0]).await;
    assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
    assert_eq!(detail.jobs[0].agent_id.as_deref(), Some("agent-1"));
    let stale = stack.wait_run(&runs[0]).await;
    assert_eq!(
        stale.jobs[0].status,
        JobStatus::TimedOutStale,
        "a late report changes nothing"
    );
}

#[tokio::test]
async fn an_unacknowledged_dispatch_is_requeued_for_another_agent() {
    let mut stack = Stack::start_with(&[("KICI_DISPATCH_ACK_TIMEOUT_MS", "500")]).await;
    // A scripted agent that registers and then never answers a dispatch.
    let _silent = stack
        .start_fake_agent("silent", &["linux"], kici_sdk::build_info())
        .await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    let runs = stack.push("app", &repo, "hello").await;
    stack
        .wait_for("the dispatch to time out", || async {
            stack
                .orchestrator
                .log_text()
                .contains("dispatch not acknowledged in time; requeued")
                .then_some(())
        })
        .await;
    stack.start_agent("agent-1", &["linux"]).await;
    let detail = stack.wait_run(&runs[0]).await;
    assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
    assert_eq!(detail.jobs[0].agent_id.as_deref(), Some("agent-1"));
}

#[tokio::test]
async fn a_silent_agent_connection_is_closed_and_the_agent_marked_disconnected() {
    // Agents ping every KICI_HEARTBEAT_INTERVAL_MS; six missed pings close the connection.
    let stack = Stack::start_with(&[("KICI_HEARTBEAT_INTERVAL_MS", "300")]).await;
    let _silent = stack
        .start_fake_agent("silent", &["linux"], kici_sdk::build_info())
        .await;
    stack
        .wait_for("the silent agent to be dropped", || async {
            let agents = stack.get("/api/v1/admin/agents").await;
            agents["agents"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["agentId"] == "silent" && a["connected"] == false)
                .then_some(())
        })
        .await;
    stack
        .wait_for("the orchestrator to log why it closed the connection", || async {
            stack
                .orchestrator
                .log_text()
                .contains("agent silent for too long; closing its connection")
                .then_some(())
        })
        .await;
}

/// A local source's webhook takes only its trigger token or an acting admin token, and only a
/// commit the named ref holds; rotating the trigger token ends the old one.
#[tokio::test]
async fn local_pushes_need_the_trigger_token_and_a_ref_that_holds_the_commit() {
    let stack = Stack::start().await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    let added = stack.add_local_source("app", &repo).await;
    let token = added["triggerToken"]
        .as_str()
        .expect("a trigger token, shown once")
        .to_string();
    assert!(token.starts_with("ktt_"), "{token}");
    assert!(
        stack
            .get("/api/v1/admin/sources")
            .await
            .to_string()
            .find(&token)
            .is_none()
    );
    let auditor = stack
        .post("/api/v1/admin/tokens", &json!({"label": "audit", "role": "auditor"}))
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    repo.push_to("hello");
    let hello = repo.push_payload("app", "hello");
    let send = |token: Option<&str>, body: &serde_json::Value| {
        let mut request = stack
            .client()
            .post(format!("{}/webhook/default/generic/app", stack.url()))
            .header("x-event-type", "push")
            .header("x-delivery-id", kici_testkit::random_id())
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.expect("webhook");
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    for wrong in [None, Some("ktt_wrong"), Some(auditor.as_str())] {
        let (status, answer) = send(wrong, &hello).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (401, Some("invalid_signature")),
            "{answer}"
        );
    }
    assert_eq!(stack.get("/api/v1/runs").await["total"], 0);
    let (status, answer) = send(Some(&token), &hello).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["runIds"].as_array().map(Vec::len), Some(1), "{answer}");

    // A commit only on a feature branch, claimed as a push to main.
    std::process::Command::new("git")
        .args(["commit", "-q", "--allow-empty", "-m", "unreviewed"])
        .current_dir(repo.work())
        .status()
        .expect("git commit");
    repo.push_to("feature");
    let mut claimed = repo.push_payload("app", "feature");
    claimed["ref"] = json!("refs/heads/main");
    let (status, answer) = send(Some(&token), &claimed).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("invalid_push")),
        "{answer}"
    );
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("refs/heads/main in "), "{message}");
    assert!(message.contains(" does not contain commit "), "{message}");

    let rotated = stack.post("/api/v1/admin/sources/app/trigger-token", &json!({})).await;
    let new_token = rotated["triggerToken"].as_str().unwrap();
    assert_ne!(new_token, token);
    repo.commit_and_push("after the rotation");
    let main = repo.push_payload("app", "main");
    assert_eq!(send(Some(&token), &main).await.0, 401);
    assert_eq!(send(Some(new_token), &main).await.0, 202);

    // A repository another user owns: git will not read it, and the answer says so and how to
    // trust it (only root can give a file away).
    let root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
    if root {
        let nobody = std::process::Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(repo.origin())
            .status()
            .unwrap();
        assert!(nobody.success());
        let (status, answer) = send(Some(new_token), &main).await;
        assert_eq!(status, 422, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        let origin = repo.origin().display().to_string();
        assert_eq!(
            message,
            format!(
                "git will not read {origin}: it belongs to another user (\"dubious ownership\") (hint: trust it with `git config --system --add safe.directory {origin}`, or let the orchestrator's user own it)"
            )
        );
    }
}

/// A delivery is recorded before it is answered: past the answer budget the answer is
/// `processing` and the delivery's record tells how it ended; one a crash interrupted is
/// processed again at the next start, and a failed one can be delivered again.
#[tokio::test]
async fn deliveries_outlive_the_answer_and_a_crash() {
    let mut stack = Stack::start_with(&[("KICI_WEBHOOK_ANSWER_BUDGET_MS", "0")]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    repo.push_to("hello");
    let answer = stack.push_webhook("app", &repo, "hello").await;
    assert_eq!(
        (answer["accepted"].as_bool(), answer["status"].as_str()),
        (Some(true), Some("processing")),
        "{answer}"
    );
    let delivery_id = answer["deliveryId"].as_str().unwrap().to_string();
    let path = format!("/api/v1/admin/deliveries/{delivery_id}");
    let record = stack
        .wait_for("the delivery to be processed", || async {
            let record = stack.get(&path).await;
            (record["status"] == "processed").then_some(record)
        })
        .await;
    assert_eq!(record["runIds"].as_array().map(Vec::len), Some(1), "{record}");
    let shown = stack.cli("kici-admin", &["source", "delivery", &delivery_id], stack.dir.path());
    shown.expect_code(0);
    assert!(
        shown.stdout.contains("\nStatus:   processed\nRuns:     "),
        "{}",
        shown.stdout
    );

    // A forge whose git server never answers: processing hangs until the orchestrator dies.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hang.local_addr().unwrap().port();
    let held = std::thread::spawn(move || hang.accept().map(|(socket, _)| socket));
    let git_url = format!("http://127.0.0.1:{port}/{{owner}}/{{name}}.git");
    stack
        .post(
            "/api/v1/admin/sources",
            &json!({"kind": "generic", "name": "forge", "preset": "github-repo", "secret": "s3cret", "gitUrl": git_url}),
        )
        .await;
    let body = serde_json::to_vec(&repo.push_payload("forge", "main")).unwrap();
    let signature = hmac_sha256_hex(b"s3cret", &body);
    let deliver = |client: reqwest::Client, url: String| {
        let body = body.clone();
        let signature = signature.clone();
        async move {
            let response = client
                .post(format!("{url}/webhook/default/generic/forge"))
                .header("x-github-event", "push")
                .header("x-github-delivery", "forge-1")
                .header("x-hub-signature-256", format!("sha256={signature}"))
                .body(body)
                .send()
                .await
                .expect("webhook");
            (
                response.status().as_u16(),
                response.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let (status, answer) = deliver(stack.client().clone(), stack.url()).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (202, Some("processing")),
        "{answer}"
    );
    let forge_path = "/api/v1/admin/deliveries/".to_string() + answer["deliveryId"].as_str().unwrap();
    let _socket = held.join().unwrap().expect("git connected to the hanging server");
    assert_eq!(stack.get(&forge_path).await["status"], "processing");

    stack.orchestrator.kill();
    drop(_socket);
    stack.start_orchestrator_again();
    // Resumed at start: the git server is gone now, so the delivery fails and is released.
    let record = stack
        .wait_for("the interrupted delivery to end", || async {
            let record = stack.get(&forge_path).await;
            (record["status"] == "failed").then_some(record)
        })
        .await;
    let detail = record["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("cannot read the lock file of http://127.0.0.1:"),
        "{record}"
    );
    let (status, again) = deliver(stack.client().clone(), stack.url()).await;
    assert_eq!(status, 202, "a failed delivery may be delivered again: {again}");
    assert_ne!(again["duplicate"], true, "{again}");
}

/// An agent token serves one live agent: a second agent with the same token, or a second
/// connection claiming the same agent id, is refused and the first keeps its connection.
#[tokio::test]
async fn a_token_serves_one_live_agent_and_is_not_taken_over() {
    let stack = Stack::start().await;
    let token = stack.agent_token("shared", &["linux"]).await;
    let ws = format!("ws://127.0.0.1:{}/ws", stack.orchestrator.port);
    let build = kici_sdk::build_info;
    let _first = kici_testkit::FakeAgent::connect(&ws, &token, "first", &["linux"], build()).await;
    stack.wait_agent_connected("first").await;
    let _copy = kici_testkit::FakeAgent::connect(&ws, &token, "second", &["linux"], build()).await;
    let _same_id = kici_testkit::FakeAgent::connect(&ws, &token, "first", &["linux"], build()).await;
    stack
        .wait_for("both newcomers to be refused", || async {
            let log = stack.orchestrator.log_text();
            (log.contains("agent token `shared` is in use by connected agent `first`")
                && log.contains("agent `first` is already connected"))
            .then_some(())
        })
        .await;
    let agents = stack.get("/api/v1/admin/agents").await;
    let connected: Vec<&str> = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["connected"] == true)
        .filter_map(|a| a["agentId"].as_str())
        .collect();
    assert_eq!(connected, ["first"], "{agents}");
    assert!(
        !stack
            .orchestrator
            .log_text()
            .contains("replacing a connection that no longer answers"),
        "a live connection was replaced"
    );
}

/// `job.heartbeat` and `job.reject` about a job another agent holds are refused and logged;
/// the job runs on to success on its own agent.
#[tokio::test]
async fn messages_about_another_agents_job_are_refused() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    let runs = stack.push("app", &repo, "slow").await;
    let run_id = runs[0].clone();
    let job_id = stack
        .wait_for("the job to run on agent-1", || async {
            let detail = stack.detail(&run_id).await;
            let job = detail.jobs.first()?;
            (job.status == JobStatus::Running).then(|| job.job_id.clone())
        })
        .await;
    let intruder = stack
        .start_fake_agent("intruder", &["other"], kici_sdk::build_info())
        .await;
    intruder.send(kici_engine::protocol::AgentMessage::JobHeartbeat {
        run_id: RunId::from(run_id.clone()),
        job_id: job_id.clone(),
        timestamp: 0,
    });
    intruder.send(kici_engine::protocol::AgentMessage::JobReject {
        run_id: RunId::from(run_id.clone()),
        job_id: job_id.clone(),
        reason: kici_engine::protocol::RejectReason::Draining,
    });
    stack
        .wait_for("both messages to be refused", || async {
            let log = stack.orchestrator.log_text();
            let refused = |what: &str| {
                log.lines().any(|l| {
                    l.contains("agent message refused: the job is not assigned to this agent")
                        && l.contains("\"agentId\":\"intruder\"")
                        && l.contains(what)
                })
            };
            (refused("job.heartbeat") && refused("job.reject")).then_some(())
        })
        .await;
    let detail = stack.wait_run(&run_id).await;
    assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
    assert_eq!(detail.jobs[0].agent_id.as_deref(), Some("agent-1"));
}

/// Before it authenticates, a connection may send only small messages: a big first message
/// closes it (4003) with the reason logged, and the orchestrator goes on serving.
#[tokio::test]
async fn a_big_message_before_authentication_closes_the_socket() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let stack = Stack::start().await;
    let ws = format!("ws://127.0.0.1:{}/ws", stack.orchestrator.port);
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws).await.expect("connects");
    socket
        .send(Message::Text("x".repeat(1024 * 1024).into()))
        .await
        .expect("sends");
    let close = loop {
        match socket.next().await {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let close = close.expect("a close code");
    assert_eq!(u16::from(close.code), 4003, "{close:?}");
    assert_eq!(
        close.reason.as_str(),
        "a 1048576-byte message before registration (at most 65536)"
    );
    let health = stack
        .client()
        .get(format!("{}/health", stack.url()))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status().as_u16(), 200);
}

/// A body is read only once its source is known, and never past the source's limit; verified
/// deliveries beyond a source's rate limit are answered 429 with `Retry-After`.
#[tokio::test]
async fn webhook_bodies_and_rates_are_bounded_per_source() {
    let stack = Stack::start().await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    let url = |source: &str| format!("{}/webhook/default/generic/{source}", stack.url());
    // Only the headers are sent: the answer must come without the body being read.
    let unknown = declared_only(&stack, "/webhook/default/generic/nope", 11 * 1024 * 1024).await;
    assert_eq!(unknown.0, 404, "the source is looked up before the body is read");

    stack
        .post(
            "/api/v1/admin/sources",
            &json!({"kind": "generic", "name": "forge", "preset": "github-repo", "secret": "s3cret",
                "gitUrl": format!("file://{}", repo.origin().display()), "rateLimitRpm": 2}),
        )
        .await;
    let sources = stack.get("/api/v1/admin/sources").await;
    assert_eq!(sources["sources"][0]["rateLimitRpm"], 2, "{sources}");
    let mut statuses = Vec::new();
    let mut last = None;
    for delivery in ["r-1", "r-2", "r-3"] {
        let mut payload = repo.push_payload("forge", "main");
        payload["after"] = json!("0".repeat(40));
        payload["delivery"] = json!(delivery);
        let body = serde_json::to_vec(&payload).unwrap();
        let response = stack
            .client()
            .post(url("forge"))
            .header("x-github-event", "push")
            .header("x-github-delivery", delivery)
            .header(
                "x-hub-signature-256",
                format!("sha256={}", hmac_sha256_hex(b"s3cret", &body)),
            )
            .body(body)
            .send()
            .await
            .expect("webhook");
        statuses.push(response.status().as_u16());
        last = Some(response);
    }
    assert_eq!(statuses[2], 429, "{statuses:?}");
    assert!(statuses[..2].iter().all(|s| *s != 429), "{statuses:?}");
    let last = last.unwrap();
    let retry_after: u64 = last.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    let answer: serde_json::Value = last.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "rate_limited", "{answer}");
    assert_eq!(
        answer["error"]["message"],
        format!("source `forge` takes at most 2 deliveries a minute; retry in {retry_after}s")
    );
}

/// An agent started without KICI_AGENT_ID is named after its token's label.
#[tokio::test]
async fn an_agent_without_an_id_is_named_after_its_token() {
    let mut stack = Stack::start().await;
    // `start_agent_with` waits until an agent named `builder-1` is connected.
    stack
        .start_agent_with("builder-1", &["linux"], &[("KICI_AGENT_ID", "")])
        .await;
    let agents = stack.get("/api/v1/admin/agents").await;
    let ids: Vec<&str> = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["agentId"].as_str())
        .collect();
    assert_eq!(ids, ["builder-1"], "{agents}");
}

/// An agent's automatic labels describe its own host only, and a static token serves the host
/// it first registered from: a copied token cannot take another machine's pinned jobs.
#[tokio::test]
async fn an_agent_claims_only_its_own_host_and_a_token_stays_on_its_host() {
    let stack = Stack::start().await;
    let token = stack.agent_token("shared", &["linux"]).await;
    let ws = format!("ws://127.0.0.1:{}/ws", stack.orchestrator.port);
    let build = kici_sdk::build_info;
    let _claims =
        kici_testkit::FakeAgent::connect_on_host(&ws, &token, "a-1", "h1", &["linux", "kici:host:victim"], build())
            .await;
    stack
        .wait_for("the foreign host label to be refused", || async {
            stack
                .orchestrator
                .log_text()
                .contains("label `kici:host:victim` does not describe this agent (its own are kici:os:linux, kici:arch:x86_64, kici:host:h1)")
                .then_some(())
        })
        .await;
    let first = kici_testkit::FakeAgent::connect_on_host(&ws, &token, "a-1", "h1", &["linux"], build()).await;
    stack.wait_agent_connected("a-1").await;
    drop(first);
    let _elsewhere = kici_testkit::FakeAgent::connect_on_host(&ws, &token, "a-2", "h2", &["linux"], build()).await;
    stack
        .wait_for("the token to be refused on another host", || async {
            stack
                .orchestrator
                .log_text()
                .contains("agent token `shared` belongs to host h1; register another token for host `h2`")
                .then_some(())
        })
        .await;
}

/// Sends a webhook's headers declaring a `length`-byte body, but no body, and reads the answer:
/// status and JSON. A server that waited for the body would never answer.
async fn declared_only(stack: &Stack, path: &str, length: usize) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = stack.url().trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&address).await.expect("connects");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nx-event-type: push\r\nAuthorization: Bearer {}\r\nContent-Length: {length}\r\n\r\n",
        kici_testkit::ADMIN_TOKEN
    );
    socket.write_all(head.as_bytes()).await.expect("sends the headers");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "no answer without the body: {}",
        String::from_utf8_lossy(&answer)
    );
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
}

/// An agent of an older protocol (one that knows no served repository or relative URL) is
/// refused at once, saying what to do, instead of failing its jobs in ways it cannot explain.
#[tokio::test]
async fn an_agent_of_an_older_protocol_is_refused_with_what_to_do() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let stack = Stack::start().await;
    let token = stack.agent_token("old", &["linux"]).await;
    let ws = format!("ws://127.0.0.1:{}/ws", stack.orchestrator.port);
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws).await.unwrap();
    let auth = serde_json::json!({"type": "auth.request", "token": token, "protocolVersion": 1});
    socket.send(Message::Text(auth.to_string().into())).await.unwrap();
    let answer = loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => break serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("no answer: {other:?}"),
        }
    };
    assert_eq!(answer["type"], "auth.failure", "{answer}");
    assert_eq!(
        answer["reason"],
        format!(
            "protocol version 1 is not supported: this orchestrator speaks {} (hint: upgrade the agent to the orchestrator's build)",
            kici_engine::protocol::PROTOCOL_VERSION
        )
    );
}
