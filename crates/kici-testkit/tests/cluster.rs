//! Several orchestrators on one database: one leads (runs the sweeper and the schedules), the
//! others follow, and when the leader dies another takes over. Peers need PostgreSQL
//! (`KICI_TEST_E2E_DATABASE=postgres`); on SQLite the one orchestrator leads.

// The harness helpers fail the test the way its assertions do.
#![allow(clippy::unwrap_used)]

use kici_engine::status::RunStatus;
use kici_testkit::{ADMIN_TOKEN, Repo, Stack};
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
    if std::env::var("KICI_TEST_E2E_DATABASE").as_deref() != Ok("postgres") {
        return;
    }
    let Some((mut stack, _, _)) = Stack::start_on_s3(None, &[("KICI_DISPATCH_INTERVAL_MS", "3600000")]).await else {
        return;
    };
    let peer = stack.start_peer("peer");
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
    if std::env::var("KICI_TEST_E2E_DATABASE").as_deref() != Ok("postgres") {
        return;
    }
    let Some((mut stack, _, _)) = Stack::start_on_s3(None, &[]).await else {
        return;
    };
    let peer = stack.start_peer("peer");
    let urls = format!(
        "ws://127.0.0.1:{}/ws,ws://127.0.0.1:{}/ws",
        stack.orchestrator.port, peer.port
    );
    stack
        .start_agent_with("agent-1", &["linux"], &[("KICI_ORCHESTRATOR_URL", &urls)])
        .await;
    let first = health(stack.orchestrator.port).await;
    assert_eq!(first["connectedAgents"], serde_json::json!(["agent-1"]), "{first}");
    // The stack's helpers now speak to the peer.
    let mut killed = std::mem::replace(&mut stack.orchestrator, peer);
    killed.kill();
    stack
        .wait_for("the agent to register with the peer", || async {
            let answer = health(stack.orchestrator.port).await;
            (answer["connectedAgents"] == serde_json::json!(["agent-1"])).then_some(())
        })
        .await;
    let repo = Repo::from_fixture(stack.dir.path(), "tests/e2e-repo");
    stack.add_local_source("app", &repo).await;
    let run = stack.push_and_wait("app", &repo, "hello").await;
    assert_eq!(run.run.status, RunStatus::Success, "{:?}", run.jobs);
    assert!(run.jobs.iter().all(|j| j.agent_id.as_deref() == Some("agent-1")));
}
