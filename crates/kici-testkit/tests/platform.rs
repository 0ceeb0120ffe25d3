//! The dashboard service (`kici-platform`) with a real orchestrator and agent: run metadata
//! pushed and cached, logs relayed from the orchestrator, the `kici` CLI reading runs from
//! the Platform, and the offline behaviour when the orchestrator is stopped.

#![allow(clippy::unwrap_used)]

use kici_engine::status::RunStatus;
use kici_testkit::{PLATFORM_ADMIN_TOKEN, Repo, Stack, binary};
use serde_json::Value;

const FIXTURE: &str = "tests/e2e-repo";
const OFFLINE: &str = "Log content is served by the orchestrator, which is currently offline";

/// `kici` pointed at the Platform.
fn kici(stack: &Stack, args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(binary("kici"))
        .args(args)
        .current_dir(stack.dir.path())
        .env("KICI_URL", stack.platform_url())
        .env("KICI_TOKEN", PLATFORM_ADMIN_TOKEN)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn setup() -> (Stack, Repo) {
    let mut stack = Stack::start_with_platform(&[]).await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    (stack, repo)
}

/// Waits until the Platform has the run in a finished state.
async fn cached_run(stack: &Stack, run_id: &str) -> Value {
    stack
        .wait_for("the Platform to cache the finished run", || async {
            let (status, body) = stack.platform_get(&format!("/api/v1/runs/{run_id}")).await;
            let finished = status == 200
                && body["run"]["status"]
                    .as_str()
                    .and_then(|s| s.parse::<RunStatus>().ok())
                    .is_some_and(|s| s.is_terminal());
            finished.then_some(body)
        })
        .await
}

#[tokio::test]
async fn runs_reach_the_platform_and_kici_reads_them_there() {
    let (stack, repo) = setup().await;
    let detail = stack.push_and_wait("app", &repo, "failing").await;
    let run_id = detail.run.run_id.clone();
    let cached = cached_run(&stack, &run_id).await;
    assert_eq!(cached["run"]["status"], "failed");
    assert_eq!(cached["run"]["failureReason"], "Failed jobs: build");
    let (status, platform_detail) = stack.platform_get(&format!("/api/v1/runs/{run_id}/detail")).await;
    assert_eq!(status, 200);
    assert_eq!(platform_detail["orchestratorOnline"], true);
    assert_eq!(platform_detail["jobs"][0]["steps"][1]["stepName"], "compile");
    assert_eq!(
        platform_detail["jobs"][0]["steps"][1]["exitCode"], 3,
        "{platform_detail}"
    );
    let (code, out, err) = kici(&stack, &["runs", "show", &run_id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("failure: Failed jobs: build\n"), "{out}");
    let (code, out, err) = kici(&stack, &["runs", "logs", &run_id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("compiling"), "{out}");
    let (code, out, err) = kici(&stack, &["runs", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&run_id[..8]), "{out}");
}

#[tokio::test]
async fn with_the_orchestrator_stopped_the_cache_serves_the_run_and_logs_say_offline() {
    let (mut stack, repo) = setup().await;
    let detail = stack.push_and_wait("app", &repo, "failing").await;
    let run_id = detail.run.run_id.clone();
    let job_id = detail.jobs[0].job_id.clone();
    cached_run(&stack, &run_id).await;
    stack.orchestrator.kill();
    let (status, offline) = stack
        .wait_for("the Platform to see the orchestrator offline", || async {
            let (status, body) = stack.platform_get(&format!("/api/v1/runs/{run_id}/detail")).await;
            (status == 200 && body["orchestratorOnline"] == false).then_some((status, body))
        })
        .await;
    assert_eq!(status, 200);
    assert_eq!(offline["run"]["failureReason"], "Failed jobs: build");
    assert_eq!(offline["jobs"][0]["status"], "failed");
    let logs_path = format!("/api/v1/runs/{run_id}/jobs/{job_id}/steps/1/logs");
    let (status, body) = stack.platform_get(&logs_path).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["message"], OFFLINE);
    let (code, _, err) = kici(&stack, &["runs", "logs", &run_id]);
    assert_ne!(code, 0);
    assert!(err.contains(OFFLINE), "{err}");
    // Back online: the logs come back.
    stack.start_orchestrator_again();
    stack
        .wait_for("the logs to be served again", || async {
            let (status, body) = stack.platform_get(&logs_path).await;
            (status == 200 && body["lines"].as_array().is_some_and(|l| !l.is_empty())).then_some(())
        })
        .await;
}

#[tokio::test]
async fn runs_and_timeline_events_made_while_the_platform_was_down_reach_it_when_it_is_back() {
    let mut stack = Stack::start_with_platform(&[("KICI_QUEUE_TIMEOUT_MS", "1000")]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    stack.platform.as_mut().unwrap().kill();
    // No agent: the job expires in the queue, which is a timeline event.
    let detail = stack.push_and_wait("app", &repo, "no-agent").await;
    let run_id = detail.run.run_id.clone();
    stack.restart_platform();
    let events = stack
        .wait_for("the replayed run and its events", || async {
            let (status, body) = stack.platform_get(&format!("/api/v1/runs/{run_id}/events")).await;
            let events = body["events"].as_array().cloned().unwrap_or_default();
            (status == 200 && !events.is_empty()).then_some(events)
        })
        .await;
    assert_eq!(events[0]["eventType"], "orchestrator.job.queue_expired");
    assert_eq!(events[0]["title"], "Queue timeout");
    let cached = cached_run(&stack, &run_id).await;
    assert_eq!(cached["run"]["failureReason"], "No agents available to dispatch jobs");
}

const DEPLOY: &str = r#"import { workflow, job, step, dispatch, schedule, z } from '@kici-dev/sdk';
export default workflow('deploy', {
  on: [
    dispatch({ inputs: { environment: z.enum(['staging', 'production']), replicas: z.number().int().min(1).default(2) } }),
    schedule({ cron: '0 3 * * *', inputs: { environment: z.enum(['staging', 'production']).default('staging') } }),
  ],
  jobs: [job('ship', { runsOn: 'linux', steps: [step('ship', async (ctx) => { console.log(`shipping to ${ctx.dispatchInputs.environment}`); })] })],
});
"#;

/// The Workflows page's data through the Platform: each default-branch workflow with its
/// triggers, inputs and schedule, and "Run now" of a dispatch (inputs checked by the
/// orchestrator, refusals passed through) and of a schedule, as the signed-in owner.
#[tokio::test]
async fn the_platform_lists_workflows_and_runs_them_now() {
    let (stack, repo) = setup().await;
    repo.write(".kici/workflows/deploy.ts", DEPLOY);
    repo.compile();
    repo.commit_and_push("deploy");
    stack.push("app", &repo, "main").await;

    let (status, body) = stack.platform_get("/api/v1/workflows").await;
    assert_eq!(status, 200, "{body}");
    let report = &body["orchestrators"][0];
    let orchestrator_id = report["instanceId"].as_str().unwrap().to_string();
    let deploy = report["data"]["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["workflow"] == "deploy")
        .cloned()
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(
        deploy["triggers"][1],
        "schedule (cron: 0 3 * * * UTC; inputs: environment)"
    );
    assert_eq!(deploy["dispatch"]["inputs"]["environment"]["values"][1], "production");
    assert!(deploy["schedules"][0]["nextFireAt"].as_i64().is_some(), "{deploy}");

    let post = |path: &str, body: Value| {
        stack
            .client()
            .post(format!("{}{path}", stack.platform_url()))
            .bearer_auth(PLATFORM_ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let response = post(
        "/api/v1/workflows/dispatch",
        serde_json::json!({"orchestratorId": orchestrator_id, "source": "app", "repo": "app", "workflow": "deploy", "inputs": {"environment": "production"}}),
    )
    .await
    .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let answer: Value = response.json().await.unwrap();
    let run = stack.wait_run(answer["runId"].as_str().unwrap()).await;
    assert_eq!(run.run.status, RunStatus::Success);
    assert!(
        stack
            .log_text(run.run.run_id.as_ref())
            .await
            .contains("shipping to production")
    );

    let response = post(
        "/api/v1/workflows/dispatch",
        serde_json::json!({"orchestratorId": orchestrator_id, "source": "app", "repo": "app", "workflow": "deploy", "inputs": {"replicas": "0"}}),
    )
    .await
    .unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["error"]["message"],
        "workflow 'deploy': invalid inputs: environment: required: one of staging, production; replicas: must be at least 1, got 0"
    );

    let schedule_id = deploy["schedules"][0]["id"].as_str().unwrap();
    let response = post(
        &format!("/api/v1/schedules/{schedule_id}/run"),
        serde_json::json!({"orchestratorId": orchestrator_id}),
    )
    .await
    .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let answer: Value = response.json().await.unwrap();
    let run = stack.wait_run(answer["runId"].as_str().unwrap()).await;
    assert_eq!(
        (run.run.status, run.run.trigger.as_str()),
        (RunStatus::Success, "schedule")
    );
    assert!(
        stack
            .log_text(run.run.run_id.as_ref())
            .await
            .contains("shipping to staging")
    );
}
