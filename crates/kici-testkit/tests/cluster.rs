//! Several orchestrators on one database: one leads (runs the sweeper and the schedules), the
//! others follow, and when the leader dies another takes over. Peers need PostgreSQL
//! (`KICI_TEST_E2E_DATABASE=postgres`); on SQLite the one orchestrator leads.

// The harness helpers fail the test the way its assertions do.
#![allow(clippy::unwrap_used)]

use kici_engine::status::RunStatus;
use kici_testkit::load::{Fleet, load_source, register_agents, webhook_burst};
use kici_testkit::{ADMIN_TOKEN, Repo, Service, Stack};
use serde_json::Value;

async fn health(port: u16) -> Value {
    reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/admin/cluster/health"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `[instanceId, role, alive]` of each instance listed.
fn roles(health: &Value) -> Vec<(String, String, bool)> {
    health["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["instanceId"].as_str().unwrap().to_string(),
                i["role"].as_str().unwrap().to_string(),
                i["alive"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// An orchestrator and a peer on one PostgreSQL database and one S3 bucket; `None` unless the
/// end-to-end tests run on PostgreSQL with an S3 server.
async fn two_on_s3(extra: &[(&str, &str)]) -> Option<(Stack, Service)> {
    if std::env::var("KICI_TEST_E2E_DATABASE").as_deref() != Ok("postgres") {
        return None;
    }
    let (stack, _, _) = Stack::start_on_s3(None, extra).await?;
    let peer = stack.start_peer("peer");
    Some((stack, peer))
}

/// Starts `agent-1` with both orchestrators' URLs, the stack's first.
async fn agent_on_both(stack: &mut Stack, peer: &Service) {
    let urls = format!(
        "ws://127.0.0.1:{}/ws,ws://127.0.0.1:{}/ws",
        stack.orchestrator.port, peer.port
    );
    stack
        .start_agent_with("agent-1", &["linux"], &[("KICI_ORCHESTRATOR_URL", &urls)])
        .await;
}

/// SIGKILLs the stack's orchestrator and waits for `agent-1` to register with `peer`, which
/// the stack's helpers speak to from then on.
async fn agent_fails_over_to(stack: &mut Stack, peer: Service) {
    let mut killed = std::mem::replace(&mut stack.orchestrator, peer);
    killed.kill();
    stack
        .wait_for("the agent to register with the peer", || async {
            let answer = health(stack.orchestrator.port).await;
            (answer["connectedAgents"] == serde_json::json!(["agent-1"])).then_some(())
        })
        .await;
}

/// SIGKILLs whichever of the stack's orchestrator and `peer` leads and waits for the other to
/// lead; the stack's helpers speak to the survivor, whose port this returns.
async fn kill_the_leader(stack: &mut Stack, mut peer: Service) -> u16 {
    if health(stack.orchestrator.port).await["role"] == "leader" {
        std::mem::swap(&mut stack.orchestrator, &mut peer);
    }
    peer.kill();
    let survivor = stack.orchestrator.port;
    stack
        .wait_for("the survivor to lead", || async {
            (health(survivor).await["role"] == "leader").then_some(())
        })
        .await;
    survivor
}

#[tokio::test]
async fn a_lone_orchestrator_leads() {
    let stack = Stack::start().await;
    let answer = health(stack.orchestrator.port).await;
    let me = answer["instanceId"].as_str().unwrap().to_string();
    assert!(me.ends_with(&format!(":{}", stack.orchestrator.port)), "{answer}");
    assert_eq!(
        (answer["role"].as_str(), answer["leader"].as_str()),
        (Some("leader"), Some(me.as_str()))
    );
    assert_eq!(roles(&answer), [(me.clone(), "leader".to_string(), true)]);
    let cli = stack.cli("kici-admin", &["cluster", "health"], stack.dir.path());
    let shown = cli.expect_code(0).stdout.clone();
    assert!(
        shown.starts_with(&format!("Answered by {me} (leader); leader: {me}\n\nINSTANCE")),
        "{shown}"
    );
}

#[tokio::test]
async fn one_of_two_orchestrators_leads_and_the_other_takes_over_when_it_dies() {
    if std::env::var("KICI_TEST_E2E_DATABASE").as_deref() != Ok("postgres") {
        return;
    }
    let mut stack = Stack::start().await;
    let peer = stack.start_peer("peer");
    let first = health(stack.orchestrator.port).await["instanceId"]
        .as_str()
        .unwrap()
        .to_string();
    let answer = health(peer.port).await;
    let second = answer["instanceId"].as_str().unwrap().to_string();
    assert_eq!(answer["role"], "follower", "{answer}");
    assert_eq!(answer["leader"].as_str(), Some(first.as_str()), "{answer}");
    assert_eq!(
        roles(&answer),
        [
            (first.clone(), "leader".to_string(), true),
            (second.clone(), "follower".to_string(), true)
        ]
    );

    // SIGKILL: its connection ends, so does its lock; the peer takes it at its next beat.
    stack.orchestrator.kill();
    let taken = stack
        .wait_for("the peer to lead", || async {
            let answer = health(peer.port).await;
            (answer["role"] == "leader").then_some(answer)
        })
        .await;
    assert_eq!(taken["leader"].as_str(), Some(second.as_str()), "{taken}");
    let listed = roles(&taken);
    assert_eq!(listed[0], (second, "leader".to_string(), true), "{taken}");
    assert_eq!(listed[1].0, first, "{taken}");
    assert_eq!(
        listed[1].1, "follower",
        "the dead leader is no longer shown leading: {taken}"
    );
}

/// A job queued by the orchestrator that took the webhook runs on an agent connected to
/// another: the first announces it (`NOTIFY`), the other's dispatcher wakes. Neither looks at
/// the queue unwoken here (`KICI_DISPATCH_INTERVAL_MS` is an hour), and they share object
/// storage for the source tarballs.
#[tokio::test]
async fn a_job_queued_by_one_orchestrator_runs_on_an_agent_of_another() {
    let Some((mut stack, peer)) = two_on_s3(&[("KICI_DISPATCH_INTERVAL_MS", "3600000")]).await else {
        return;
    };
    let peer_ws = format!("ws://127.0.0.1:{}/ws", peer.port);
    stack
        .start_agent_with("agent-1", &["linux"], &[("KICI_ORCHESTRATOR_URL", &peer_ws)])
        .await;
    let repo = Repo::from_fixture(stack.dir.path(), "tests/e2e-repo");
    stack.add_local_source("app", &repo).await;
    let run = stack.push_and_wait("app", &repo, "hello").await;
    assert_eq!(run.run.status, RunStatus::Success, "{:?}", run.jobs);
    assert!(
        run.jobs.iter().all(|j| j.agent_id.as_deref() == Some("agent-1")),
        "{:?}",
        run.jobs
    );
}

/// An agent given both orchestrators' URLs fails over: the one it was connected to is
/// SIGKILLed, it registers with the other, which then runs a pushed run's job on it.
#[tokio::test]
async fn an_agent_given_several_urls_fails_over_to_the_next_orchestrator() {
    let Some((mut stack, peer)) = two_on_s3(&[]).await else {
        return;
    };
    agent_on_both(&mut stack, &peer).await;
    let first = health(stack.orchestrator.port).await;
    assert_eq!(first["connectedAgents"], serde_json::json!(["agent-1"]), "{first}");
    agent_fails_over_to(&mut stack, peer).await;
    let repo = Repo::from_fixture(stack.dir.path(), "tests/e2e-repo");
    stack.add_local_source("app", &repo).await;
    let run = stack.push_and_wait("app", &repo, "hello").await;
    assert_eq!(run.run.status, RunStatus::Success, "{:?}", run.jobs);
    assert!(run.jobs.iter().all(|j| j.agent_id.as_deref() == Some("agent-1")));
}

/// Every line of a step's log as one orchestrator serves it.
async fn log_lines(port: u16, run_id: &str) -> Vec<String> {
    let logs: Value = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/runs/{run_id}/logs"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    logs["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|step| step["lines"].as_array().unwrap().clone())
        .map(|line| line["line"].as_str().unwrap().to_string())
        .collect()
}

/// With object storage, a step's log written through the orchestrator its agent is connected
/// to is read from another, while the step runs and after: none of it is on either's disk.
#[tokio::test]
async fn a_step_log_is_served_by_every_orchestrator_live_and_finished() {
    let Some((mut stack, peer)) = two_on_s3(&[]).await else {
        return;
    };
    let peer_ws = format!("ws://127.0.0.1:{}/ws", peer.port);
    stack
        .start_agent_with("agent-1", &["linux"], &[("KICI_ORCHESTRATOR_URL", &peer_ws)])
        .await;
    let repo = Repo::from_fixture(stack.dir.path(), "tests/e2e-repo");
    stack.add_local_source("app", &repo).await;
    let run_id = stack.push("app", &repo, "gate").await[0].clone();

    let port = stack.orchestrator.port;
    stack
        .wait_for(
            "the running step's first line, read from the other orchestrator",
            || async {
                let lines = log_lines(port, &run_id).await;
                lines.iter().any(|l| l.contains("before the gate")).then_some(())
            },
        )
        .await;
    assert_eq!(stack.detail(&run_id).await.run.status, RunStatus::Running);
    std::fs::write(format!("/tmp/kici-e2e-gate-{run_id}"), "open").unwrap();
    let run = stack.wait_run(&run_id).await;
    let _ = std::fs::remove_file(format!("/tmp/kici-e2e-gate-{run_id}"));
    assert_eq!(run.run.status, RunStatus::Success, "{:?}", run.jobs);

    let here = log_lines(port, &run_id).await;
    assert_eq!(here, log_lines(peer.port, &run_id).await);
    let before = here.iter().position(|l| l.contains("before the gate")).unwrap();
    let after = here.iter().position(|l| l.contains("after the gate")).unwrap();
    assert!(before < after, "{here:?}");
    for dir in [stack.data_dir(), stack.dir.path().join("peer/data")] {
        assert!(!dir.join("logs").exists(), "{} holds step logs", dir.display());
    }
}

/// The orchestrator an agent runs a job for is SIGKILLed mid-step: the agent carries the job
/// to the other, which finishes it, and the log holds every line once.
#[tokio::test]
async fn a_job_survives_the_death_of_its_orchestrator_with_its_log_whole() {
    let Some((mut stack, peer)) = two_on_s3(&[]).await else {
        return;
    };
    agent_on_both(&mut stack, &peer).await;
    let repo = Repo::from_fixture(stack.dir.path(), "tests/e2e-repo");
    stack.add_local_source("app", &repo).await;
    let run_id = stack.push("app", &repo, "gate").await[0].clone();
    let port = stack.orchestrator.port;
    stack
        .wait_for("the step's first line", || async {
            let lines = log_lines(port, &run_id).await;
            lines.iter().any(|l| l.contains("before the gate")).then_some(())
        })
        .await;
    agent_fails_over_to(&mut stack, peer).await;
    std::fs::write(format!("/tmp/kici-e2e-gate-{run_id}"), "open").unwrap();
    let run = stack.wait_run(&run_id).await;
    let _ = std::fs::remove_file(format!("/tmp/kici-e2e-gate-{run_id}"));
    assert_eq!(run.run.status, RunStatus::Success, "{:?}", run.jobs);
    let lines = log_lines(stack.orchestrator.port, &run_id).await;
    let count = |text: &str| lines.iter().filter(|l| l.contains(text)).count();
    assert_eq!((count("before the gate"), count("after the gate")), (1, 1), "{lines:?}");
}

/// A schedule firing every minute, registered through the leader, fires on the peer once the
/// leader is SIGKILLed: one run for the tick, however many instances there were.
#[tokio::test]
async fn schedules_fire_once_on_the_new_leader_after_the_old_one_dies() {
    let Some((mut stack, peer)) = two_on_s3(&[("KICI_SCHEDULE_INTERVAL_MS", "200")]).await else {
        return;
    };
    let repo = Repo::from_fixture(stack.dir.path(), "tests/load-repo");
    repo.write(
        ".kici/workflows/nightly.ts",
        r#"import { workflow, job, step, schedule } from '@kici-dev/sdk';

export default workflow('every-minute', {
  on: schedule({ cron: '* * * * *' }),
  jobs: [job('tick', { runsOn: 'nobody', steps: [step('noop', async () => {})] })],
});
"#,
    );
    repo.compile();
    repo.commit_and_push("every minute");
    stack.add_local_source("app", &repo).await;
    // The default branch's push registers the schedule.
    stack.push("app", &repo, "main").await;
    kill_the_leader(&mut stack, peer).await;
    let runs = || async {
        let list = stack.get("/api/v1/runs?workflow=every-minute").await;
        list["runs"].as_array().unwrap().clone()
    };
    // The next minute's tick (the one registered in the minute before may fire first).
    let first = stack
        .wait_for("a scheduled run", || async { runs().await.first().cloned() })
        .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let fired: Vec<Value> = runs()
        .await
        .into_iter()
        .filter(|run| run["createdAt"].as_i64().unwrap() / 60_000 == first["createdAt"].as_i64().unwrap() / 60_000)
        .collect();
    assert_eq!(fired.len(), 1, "one run per tick: {fired:#?}");
    assert_eq!(first["trigger"], "schedule", "{first}");
}

/// The leader is SIGKILLed; a job then hangs on an agent of the survivor (it reported running,
/// then nothing): the survivor, now leading, runs the stale-job scan that fails it.
#[tokio::test]
async fn stale_jobs_are_failed_by_the_new_leader_after_the_old_one_dies() {
    let quick = [
        ("KICI_JOB_HEARTBEAT_INTERVAL_MS", "1000"),
        ("KICI_STALE_DETECTOR_SCAN_INTERVAL_MS", "300"),
    ];
    let Some((mut stack, peer)) = two_on_s3(&quick).await else {
        return;
    };
    let survivor = kill_the_leader(&mut stack, peer).await;
    let mut agents = register_agents(&stack, &[survivor], 1, &kici_sdk::build_info()).await;
    // `job.ack` and `job.status running`, then silence.
    agents[0].stall_after = Some(2);
    let _fleet = Fleet::start(agents);
    let payload = load_source(&stack, 1).await;
    webhook_burst(stack.client(), survivor, &payload, 1, 1).await.unwrap();
    let run_id = stack
        .wait_for("the run", || async {
            let list = stack.get("/api/v1/runs?workflow=load").await;
            list["runs"][0]["runId"].as_str().map(str::to_string)
        })
        .await;
    let run = stack.wait_run(&run_id).await;
    assert_eq!(run.run.status, RunStatus::Failed, "{:?}", run.jobs);
    let job = &run.jobs[0];
    assert_eq!(job.status, kici_engine::status::JobStatus::TimedOutStale, "{job:?}");
    assert!(
        job.error_message
            .as_deref()
            .unwrap_or("")
            .starts_with("No heartbeat received for"),
        "{job:?}"
    );
}
