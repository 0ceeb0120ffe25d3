//! End-to-end jobs through an in-process agent: a scripted orchestrator dispatches jobs for a
//! real git repository (a copy of `tests/repo`), the agent clones it, checks the contentHash,
//! runs real Node, and the test asserts the exact messages that come back.

mod support;

use kici_engine::hash::{content_hash, drift_message};
use kici_engine::protocol::{AgentMessage, JobKind, OrchestratorMessage, RejectReason};
use kici_engine::status::{JobStatus, StepStatus};
use serde_json::json;
use support::{Agent, Orchestrator, Repo, assert_sequenced_from_start, final_status, log_lines, seqs, step_result};

const SLOW_WORKFLOW: &str = r#"import { workflow, job, step, push } from '@kici-dev/sdk';

export default workflow('slow', {
  on: push(),
  jobs: [
    job('wait', {
      runsOn: 'kici:os:linux',
      steps: [
        step('first', async ({ $ }) => {
          await $`echo first`;
        }),
        step('nap', async ({ $ }) => {
          await $`echo napping; sleep 4; echo woke`;
        }),
        step('last', async ({ $ }) => {
          await $`echo last`;
        }),
      ],
    }),
  ],
});
"#;

const HANG_WORKFLOW: &str = r#"import { workflow, job, step, push } from '@kici-dev/sdk';

export default workflow('hang', {
  on: push(),
  jobs: [
    job('wait', {
      runsOn: 'kici:os:linux',
      steps: [
        step('hang', async ({ $ }) => {
          await $`echo hanging; sleep 600`;
        }),
      ],
    }),
  ],
});
"#;

/// The value of `series` (`name{labels}` as rendered) in a Prometheus text exposition.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no `{series}` in\n{text}"))
}

#[tokio::test]
async fn hello_world_runs_and_reports_every_message_in_order() {
    let repo = Repo::new(&[]);
    let lock = repo.compile().await;
    let orchestrator = Orchestrator::bind().await;
    let agent = Agent::start(&orchestrator, &[("KICI_LABELS", "e2e,linux-box")]);
    let (mut peer, registration) = orchestrator.accept_registered().await;
    let AgentMessage::Register(registration) = registration else {
        unreachable!()
    };
    assert_eq!(registration.agent_id, "test-agent");
    for label in ["e2e", "linux-box", "kici:host:test-host"] {
        assert!(
            registration.labels.iter().any(|l| l == label),
            "{label} in {:?}",
            registration.labels
        );
    }
    assert!(
        registration
            .labels
            .contains(&format!("kici:os:{}", std::env::consts::OS))
    );
    assert!(registration.in_flight_jobs.is_empty());
    assert_eq!(registration.build_info, kici_sdk::build_info());

    let dispatch = repo.dispatch(&lock, "hello-world", "greet", &repo.head(), JobKind::Execute);
    peer.send(&OrchestratorMessage::JobDispatch(Box::new(dispatch))).await;
    let messages = peer.until_done(true).await;

    assert_sequenced_from_start(&messages);
    let step = step_result(&messages, "say-hello");
    assert_eq!(step.state, StepStatus::Success);
    assert_eq!(step.exit_code, Some(0));
    assert_eq!(step.step_index, 0);
    assert_eq!(step.step_type, "step");
    assert!(step.duration_ms.is_some());
    let started = messages.iter().position(
        |m| matches!(m, AgentMessage::StepStatus(s) if s.step_name == "say-hello" && s.state == StepStatus::Running),
    );
    assert!(started.is_some(), "step.status running for say-hello");
    assert!(
        log_lines(&messages, Some(0)).iter().any(|l| l == "Hello, World!"),
        "{:?}",
        log_lines(&messages, None)
    );
    let done = final_status(&messages);
    assert_eq!(done.state, JobStatus::Success, "{done:?}");
    assert_eq!(done.error, None);
    assert!(done.duration_ms.is_some());

    // Counted in the agent's metrics (other tests in this process may add to the same series).
    let metrics = kici_telemetry::metrics::render();
    for series in [
        "kici_agent_jobs_total{status=\"success\"}",
        "kici_agent_steps_total{status=\"success\"}",
        "kici_agent_step_duration_seconds_count",
        "kici_agent_clone_duration_seconds_count",
        "kici_agent_log_bytes_total",
    ] {
        assert!(metric(&metrics, series) >= 1.0, "{series} in\n{metrics}");
    }

    let leftovers = agent.leftover_job_dirs_after_stop(&mut peer).await;
    assert!(leftovers.is_empty(), "job work dirs removed: {leftovers:?}");
}

#[tokio::test]
async fn a_failing_step_names_the_step_and_its_exit_code() {
    let repo = Repo::new(&[]);
    let lock = repo.compile().await;
    let orchestrator = Orchestrator::bind().await;
    let agent = Agent::start(&orchestrator, &[]);
    let (mut peer, _) = orchestrator.accept_registered().await;

    let dispatch = repo.dispatch(&lock, "failing-step", "build", &repo.head(), JobKind::Execute);
    peer.send(&OrchestratorMessage::JobDispatch(Box::new(dispatch))).await;
    let messages = peer.until_done(true).await;

    assert_sequenced_from_start(&messages);
    assert_eq!(step_result(&messages, "prepare").state, StepStatus::Success);
    let compile = step_result(&messages, "compile");
    assert_eq!(compile.state, StepStatus::Failed);
    assert_eq!(compile.exit_code, Some(3));
    assert!(
        compile.error.as_deref().is_some_and(|e| e.contains("exit code 3")),
        "{compile:?}"
    );
    assert_eq!(step_result(&messages, "never").state, StepStatus::Skipped);
    assert!(log_lines(&messages, Some(1)).iter().any(|l| l == "compiling"));
    let done = final_status(&messages);
    assert_eq!(done.state, JobStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("Step 'compile' failed (exit code 3)"));

    agent.stop(Some(&mut peer)).await;
}

#[tokio::test]
async fn a_workflow_changed_after_compiling_fails_with_the_drift_text() {
    let repo = Repo::new(&[]);
    let lock = repo.compile().await;
    let file = ".kici/workflows/hello-world.ts";
    let changed = format!(
        "{}// edited without recompiling\n",
        std::fs::read_to_string(repo.path().join(file)).unwrap()
    );
    repo.write(file, &changed);
    let sha = repo.commit();
    let orchestrator = Orchestrator::bind().await;
    let agent = Agent::start(&orchestrator, &[]);
    let (mut peer, _) = orchestrator.accept_registered().await;

    let dispatch = repo.dispatch(&lock, "hello-world", "greet", &sha, JobKind::Execute);
    let expected_hash = dispatch.job_config.content_hash.clone();
    peer.send(&OrchestratorMessage::JobDispatch(Box::new(dispatch))).await;
    let messages = peer.until_done(true).await;

    let sdk = kici_sdk::sdk();
    let got = content_hash(sdk.hash, changed.as_bytes(), None);
    assert_ne!(got, expected_hash);
    let text = drift_message(&expected_hash, &got, sdk.version, sdk.hash);
    assert_sequenced_from_start(&messages);
    let done = final_status(&messages);
    assert_eq!(done.state, JobStatus::Failed);
    assert_eq!(done.error.as_deref(), Some(text.as_str()));
    assert_eq!(log_lines(&messages, Some(-1)), [text]);
    // The log line comes before the failed status, and no step ran.
    assert!(matches!(messages[messages.len() - 2], AgentMessage::LogChunk(_)));
    assert!(!messages.iter().any(|m| matches!(m, AgentMessage::StepStatus(_))));

    agent.stop(Some(&mut peer)).await;
}

#[tokio::test]
async fn a_matrix_evaluation_job_reports_the_values() {
    let repo = Repo::new(&[]);
    let lock = repo.compile().await;
    let orchestrator = Orchestrator::bind().await;
    let agent = Agent::start(&orchestrator, &[]);
    let (mut peer, _) = orchestrator.accept_registered().await;

    let dispatch = repo.dispatch(&lock, "dynamic-matrix", "test", &repo.head(), JobKind::MatrixEval);
    peer.send(&OrchestratorMessage::JobDispatch(Box::new(dispatch))).await;
    let messages = peer.until_done(true).await;

    assert_sequenced_from_start(&messages);
    let done = final_status(&messages);
    assert_eq!(done.state, JobStatus::Success, "{done:?}");
    assert_eq!(done.matrix, Some(json!(["alpha", "beta"])));

    agent.stop(Some(&mut peer)).await;
}

#[tokio::test]
async fn busy_draining_and_cancel() {
    let repo = Repo::new(&[(".kici/workflows/hang.ts", HANG_WORKFLOW)]);
    let lock = repo.compile().await;
    let orchestrator = Orchestrator::bind().await;
    let agent = Agent::start(&orchestrator, &[]);
    let (mut peer, _) = orchestrator.accept_registered().await;

    let dispatch = repo.dispatch(&lock, "hang", "wait", &repo.head(), JobKind::Execute);
    let job_id = dispatch.job_id.clone();
    peer.send(&OrchestratorMessage::JobDispatch(Box::new(dispatch.clone())))
        .await;
    let mut messages = Vec::new();
    loop {
        let message = peer.recv_significant().await;
        peer.ack(&message).await;
        let hanging =
            matches!(&message, AgentMessage::StepStatus(s) if s.step_name == "hang" && s.state == StepStatus::Running);
        messages.push(message);
        if hanging {
            break;
        }
    }

    let mut second = dispatch.clone();
    second.job_id = "job-second".into();
    peer.send(&OrchestratorMessage::JobDispatch(Box::new(second))).await;
    let reject = next_non_log(&mut peer, &mut messages).await;
    assert_eq!(
        reject,
        AgentMessage::JobReject {
            run_id: "run-1".into(),
            job_id: "job-second".into(),
            reason: RejectReason::Busy
        }
    );

    agent.shutdown.send(kici_agent::ShutdownSignal::Drain).await.unwrap();
    let status = next_non_log(&mut peer, &mut messages).await;
    assert!(
        matches!(
            status,
            AgentMessage::Status {
                draining: true,
                active_jobs: 1,
                ..
            }
        ),
        "{status:?}"
    );
    let mut third = dispatch.clone();
    third.job_id = "job-third".into();
    peer.send(&OrchestratorMessage::JobDispatch(Box::new(third))).await;
    let reject = next_non_log(&mut peer, &mut messages).await;
    assert!(
        matches!(&reject, AgentMessage::JobReject { job_id, reason: RejectReason::Draining, .. } if job_id == "job-third"),
        "{reject:?}"
    );

    peer.send(&OrchestratorMessage::JobCancel {
        run_id: "run-1".into(),
        job_id: job_id.clone(),
        reason: "cancelled by test".into(),
        force: false,
    })
    .await;
    messages.extend(peer.until_done(true).await);
    assert_sequenced_from_start(&messages);
    assert_eq!(step_result(&messages, "hang").state, StepStatus::Cancelled);
    assert_eq!(final_status(&messages).state, JobStatus::Cancelled);

    // Drained and idle: the agent leaves by itself, closing normally.
    loop {
        match peer.read().await {
            support::Read::Closed(code) => {
                assert_eq!(code, Some(1000));
                break;
            }
            support::Read::Message(_) => {}
        }
    }
    let result = tokio::time::timeout(support::WAIT, agent.task).await.unwrap().unwrap();
    assert!(result.is_ok(), "{result:?}");
}

/// The next message that is neither a heartbeat nor a log chunk (log chunks are kept).
async fn next_non_log(peer: &mut support::Peer, messages: &mut Vec<AgentMessage>) -> AgentMessage {
    loop {
        let message = peer.recv_significant().await;
        peer.ack(&message).await;
        if matches!(message, AgentMessage::LogChunk(_)) {
            messages.push(message);
            continue;
        }
        return message;
    }
}

#[tokio::test]
async fn a_dropped_connection_replays_every_unacknowledged_message_in_order() {
    let repo = Repo::new(&[(".kici/workflows/slow.ts", SLOW_WORKFLOW)]);
    let lock = repo.compile().await;
    let orchestrator = Orchestrator::bind().await;
    let agent = Agent::start(&orchestrator, &[]);
    let (mut peer, _) = orchestrator.accept_registered().await;

    let dispatch = repo.dispatch(&lock, "slow", "wait", &repo.head(), JobKind::Execute);
    let job_id = dispatch.job_id.clone();
    peer.send(&OrchestratorMessage::JobDispatch(Box::new(dispatch))).await;
    // Acknowledge job.ack and running only; cut the connection once `nap` runs.
    let mut before_cut = Vec::new();
    loop {
        let message = peer.recv_significant().await;
        if matches!(message.sequenced(), Some((_, seq)) if seq <= 2) {
            peer.ack(&message).await;
        }
        let napping =
            matches!(&message, AgentMessage::StepStatus(s) if s.step_name == "nap" && s.state == StepStatus::Running);
        before_cut.push(message);
        if napping {
            break;
        }
    }
    assert_eq!(seqs(&before_cut)[..2], [1, 2]);
    peer.cut();

    let (mut peer, registration) = orchestrator.accept_registered().await;
    let AgentMessage::Register(registration) = registration else {
        unreachable!()
    };
    assert_eq!(registration.in_flight_jobs.len(), 1, "the running job is reported");
    assert_eq!(registration.in_flight_jobs[0].job_id, job_id);
    let after = peer.until_done(true).await;

    // Everything from seq 3 on, in order, nothing missing; what the first connection saw
    // unacknowledged comes again unchanged.
    let replayed = seqs(&after);
    let expected: Vec<u64> = (3..3 + replayed.len() as u64).collect();
    assert_eq!(replayed, expected, "{after:#?}");
    for message in before_cut.iter().skip(2) {
        assert!(after.contains(message), "replayed: {message:?}");
    }
    assert_eq!(step_result(&after, "nap").state, StepStatus::Success);
    assert_eq!(step_result(&after, "last").state, StepStatus::Success);
    assert!(log_lines(&after, None).iter().any(|l| l == "woke"));
    assert_eq!(final_status(&after).state, JobStatus::Success);

    agent.stop(Some(&mut peer)).await;
}

#[tokio::test]
async fn an_auth_failure_stops_the_agent_for_good() {
    let orchestrator = Orchestrator::bind().await;
    let agent = Agent::start(&orchestrator, &[]);
    let mut peer = orchestrator.accept().await;
    assert!(matches!(peer.recv().await, AgentMessage::AuthRequest { token, .. } if token == "kat_test"));
    peer.send(&OrchestratorMessage::AuthFailure {
        reason: "unknown token".into(),
    })
    .await;
    let result = tokio::time::timeout(support::WAIT, agent.task).await.unwrap().unwrap();
    match result {
        Err(kici_agent::AgentError::Connection(kici_agent::ConnectionError::AuthFailed { reason })) => {
            assert_eq!(reason, "unknown token");
        }
        other => panic!("expected an auth failure, got {other:?}"),
    }
}

#[tokio::test]
async fn sigterm_gives_the_running_job_ten_seconds_then_cancels_it() {
    let repo = Repo::new(&[(".kici/workflows/hang.ts", HANG_WORKFLOW)]);
    let lock = repo.compile().await;
    let orchestrator = Orchestrator::bind().await;
    let agent = Agent::start(&orchestrator, &[]);
    let (mut peer, _) = orchestrator.accept_registered().await;

    let dispatch = repo.dispatch(&lock, "hang", "wait", &repo.head(), JobKind::Execute);
    peer.send(&OrchestratorMessage::JobDispatch(Box::new(dispatch))).await;
    let mut messages = Vec::new();
    loop {
        let message = peer.recv_significant().await;
        peer.ack(&message).await;
        let hanging =
            matches!(&message, AgentMessage::StepStatus(s) if s.step_name == "hang" && s.state == StepStatus::Running);
        messages.push(message);
        if hanging {
            break;
        }
    }
    let asked = std::time::Instant::now();
    agent
        .shutdown
        .send(kici_agent::ShutdownSignal::Terminate)
        .await
        .unwrap();
    loop {
        match peer.read().await {
            support::Read::Closed(code) => {
                assert_eq!(code, Some(1000));
                break;
            }
            support::Read::Message(message @ AgentMessage::Status { .. }) => {
                assert!(matches!(message, AgentMessage::Status { draining: true, .. }));
            }
            support::Read::Message(message) => {
                peer.ack(&message).await;
                if !matches!(
                    message,
                    AgentMessage::Heartbeat { .. } | AgentMessage::JobHeartbeat { .. }
                ) {
                    messages.push(message);
                }
            }
        }
    }
    assert!(
        asked.elapsed() >= std::time::Duration::from_secs(10),
        "the job had its 10 s"
    );
    assert_sequenced_from_start(&messages);
    assert_eq!(step_result(&messages, "hang").state, StepStatus::Cancelled);
    assert_eq!(final_status(&messages).state, JobStatus::Cancelled);
    let result = tokio::time::timeout(support::WAIT, agent.task).await.unwrap().unwrap();
    assert!(result.is_ok(), "{result:?}");
}

const CHATTY_WORKFLOW: &str = r#"import { workflow, job, step, push } from '@kici-dev/sdk';

export default workflow('chatty', {
  on: push(),
  jobs: [
    job('talk', {
      runsOn: 'kici:os:linux',
      steps: [
        step('talk', async ({ $ }) => {
          await $`for i in $(seq 1 120); do echo line-$i; done; sleep 1`;
        }),
      ],
    }),
  ],
});
"#;

#[tokio::test]
async fn logs_are_batched_and_capped_and_running_jobs_heartbeat() {
    let repo = Repo::new(&[(".kici/workflows/chatty.ts", CHATTY_WORKFLOW)]);
    let lock = repo.compile().await;
    let orchestrator = Orchestrator::bind().await;
    let agent = Agent::start(
        &orchestrator,
        &[
            ("KICI_MAX_LOG_SIZE_BYTES", "600"),
            ("KICI_JOB_HEARTBEAT_INTERVAL_MS", "100"),
        ],
    );
    let (mut peer, _) = orchestrator.accept_registered().await;

    let dispatch = repo.dispatch(&lock, "chatty", "talk", &repo.head(), JobKind::Execute);
    peer.send(&OrchestratorMessage::JobDispatch(Box::new(dispatch))).await;
    let mut messages = Vec::new();
    let mut job_heartbeats = 0;
    loop {
        let message = peer.recv().await;
        peer.ack(&message).await;
        match message {
            AgentMessage::JobHeartbeat { ref job_id, .. } => {
                assert_eq!(job_id, "job-chatty-talk");
                job_heartbeats += 1;
            }
            AgentMessage::Heartbeat { .. } => {}
            message => {
                let done = matches!(&message, AgentMessage::JobStatus(s) if s.state.is_terminal());
                messages.push(message);
                if done {
                    break;
                }
            }
        }
    }
    assert!(job_heartbeats >= 1, "job.heartbeat while the job ran");
    assert_sequenced_from_start(&messages);
    assert_eq!(final_status(&messages).state, JobStatus::Success);
    for message in &messages {
        if let AgentMessage::LogChunk(chunk) = message {
            assert!(chunk.lines.len() <= 50, "chunks hold at most 50 lines");
        }
    }
    let lines = log_lines(&messages, Some(0));
    let (truncation, kept) = lines.split_last().expect("lines");
    assert_eq!(truncation, "[TRUNCATED: log output exceeded 600 bytes]");
    let expected: Vec<String> = (1..=kept.len()).map(|i| format!("line-{i}")).collect();
    assert_eq!(kept, expected.as_slice());
    let kept_bytes: usize = kept.iter().map(|l| l.len() + 1).sum();
    assert!(kept_bytes <= 600 && kept_bytes > 590, "{kept_bytes} bytes kept");

    agent.stop(Some(&mut peer)).await;
}
