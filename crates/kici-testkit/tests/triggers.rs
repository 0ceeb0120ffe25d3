//! Workflows started without a push, through the real orchestrator, agent and CLIs: `kici
//! dispatch` with inputs (coerced, defaulted, refused by field), and a schedule registered by
//! the default branch's push, listed by `kici-admin schedules list` with its next fire time and
//! run now. (The once-per-tick guarantee across restarts is tested in process, with the
//! scheduler's clock as a parameter: `kici-orchestrator/tests/pipeline.rs`.)

// The harness helpers fail the test the way its assertions do.
#![allow(clippy::unwrap_used)]

use kici_engine::status::RunStatus;
use kici_testkit::{Repo, Stack};

const FIXTURE: &str = "tests/e2e-repo";

/// The newest run of `workflow` (waiting for `what`, its start), once it has finished.
async fn finished_run_of(stack: &Stack, workflow: &str, what: &str) -> kici_engine::api::RunDetail {
    let run_id = stack
        .wait_for(what, || async {
            let list = stack.get(&format!("/api/v1/runs?workflow={workflow}")).await;
            list["runs"][0]["runId"].as_str().map(str::to_string)
        })
        .await;
    stack.wait_run(&run_id).await
}

/// A stack with one linux agent and a local source `app` whose repository holds `workflow` as
/// `.kici/workflows/<file>`, compiled and committed to main (not yet pushed to the orchestrator).
async fn stack_with(file: &str, workflow: &str) -> (Stack, Repo) {
    let mut stack = Stack::start().await;
    stack.start_agent("linux-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(&format!(".kici/workflows/{file}"), workflow);
    repo.compile();
    repo.commit_and_push(file);
    stack.add_local_source("app", &repo).await;
    (stack, repo)
}

const WORKFLOW: &str = r#"import { workflow, job, step, dispatch, schedule, defineDispatchInputs, z } from '@kici-dev/sdk';

const inputs = defineDispatchInputs({
  environment: z.enum(['staging', 'production']),
  replicas: z.number().int().min(1).max(10).default(2),
  dryRun: z.boolean().optional(),
});

export default workflow('deploy', {
  on: [
    dispatch({ inputs }),
    schedule({ cron: '0 3 * * *', timezone: 'Europe/Paris', inputs: { level: z.string().default('full') } }),
  ],
  jobs: [
    job('ship', {
      runsOn: 'linux',
      steps: [step('show', async (ctx) => { console.log(`${ctx.event.type} inputs ${JSON.stringify(ctx.dispatchInputs)}`); })],
    }),
  ],
});
"#;

#[tokio::test]
async fn dispatch_with_inputs_and_a_schedule_run_through_the_clis() {
    let (stack, repo) = stack_with("deploy.ts", WORKFLOW).await;
    // The default branch's push registers the schedule (no run: nothing listens to pushes).
    assert!(stack.push("app", &repo, "main").await.is_empty());

    let cwd = stack.dir.path();
    let dispatched = stack.cli(
        "kici",
        &[
            "dispatch",
            "deploy",
            "--input",
            "environment=staging",
            "-i",
            "dryRun=yes",
            "--json",
        ],
        cwd,
    );
    assert_eq!(dispatched.code, 0, "{}", dispatched.stderr);
    let answer: serde_json::Value = serde_json::from_str(&dispatched.stdout).unwrap();
    assert_eq!(
        (answer["workflow"].as_str(), answer["ref"].as_str()),
        (Some("deploy"), Some("refs/heads/main"))
    );
    let run = stack.wait_run(answer["runId"].as_str().unwrap()).await;
    assert_eq!(
        (run.run.status, run.run.trigger.as_str()),
        (RunStatus::Success, "dispatch")
    );
    let log = stack.log_text(run.run.run_id.as_ref()).await;
    assert!(
        log.contains(r#"dispatch inputs {"dryRun":true,"environment":"staging","replicas":2}"#),
        "{log}"
    );

    let refused = stack.cli(
        "kici",
        &["dispatch", "deploy", "--input", "replicas=0", "--input", "colour=red"],
        cwd,
    );
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert!(
        refused.stderr.contains(
            "workflow 'deploy': invalid inputs: colour: unknown input (declared: dryRun, environment, replicas); environment: required: one of staging, production; replicas: must be at least 1, got 0"
        ),
        "{}",
        refused.stderr
    );
    let unknown = stack.cli("kici", &["dispatch", "deplyo"], cwd);
    assert!(
        unknown
            .stderr
            .contains("the lock file at refs/heads/main has no workflow named 'deplyo' (workflows: "),
        "{}",
        unknown.stderr
    );

    let listed = stack.cli("kici-admin", &["schedules", "list"], cwd);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(listed.stdout.contains("0 3 * * * (Europe/Paris)"), "{}", listed.stdout);
    let schedules = stack.get("/api/v1/schedules").await;
    let schedule = &schedules["schedules"][0];
    assert_eq!(schedule["workflow"], "deploy");
    let next = schedule["nextFireAt"].as_i64().unwrap();
    assert!(next > schedule["registeredAt"].as_i64().unwrap(), "{schedule}");

    let id = schedule["id"].as_str().unwrap();
    let ran = stack.cli("kici-admin", &["schedules", "run", id], cwd);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let run_id = ran.stdout.split_whitespace().nth(1).unwrap().to_string();
    let run = stack.wait_run(&run_id).await;
    assert_eq!(
        (run.run.status, run.run.trigger.as_str()),
        (RunStatus::Success, "schedule")
    );
    assert!(
        stack
            .log_text(&run_id)
            .await
            .contains(r#"schedule inputs {"level":"full"}"#)
    );

    let disabled = stack.cli("kici-admin", &["schedules", "disable", id], cwd);
    assert_eq!(disabled.stdout, format!("Schedule {id} disabled.\n"));
    let schedules = stack.get("/api/v1/schedules").await;
    assert_eq!(schedules["schedules"][0]["enabled"], false);
    assert!(schedules["schedules"][0].get("nextFireAt").is_none());
}

const CHAINED: &str = r#"import { workflow, job, step, push, dispatch, workflowComplete, jobComplete } from '@kici-dev/sdk';

const say = (text) => step('say', async (ctx) => { console.log(`${text} ${JSON.stringify(ctx.event.payload)}`); });

export const ci = workflow('ci', {
  on: push({ branches: 'main' }),
  jobs: [job('test', { runsOn: 'linux', steps: [say('tested')] })],
});
export const deploy = workflow('deploy', {
  on: workflowComplete({ name: 'ci', status: 'success' }),
  jobs: [job('ship', { runsOn: 'linux', steps: [say('deployed after')] })],
});
export const audit = workflow('audit', {
  on: jobComplete({ workflow: 'ci', job: 'test', status: 'failed' }),
  jobs: [job('look', { runsOn: 'linux', steps: [say('never')] })],
});
export const looping = workflow('looping', {
  on: [dispatch(), workflowComplete({ name: 'looping' })],
  jobs: [job('again', { runsOn: 'linux', steps: [say('again')] })],
});
"#;

/// `workflowComplete()` and `jobComplete()` registered by the default branch start their
/// workflows when a matching run or job finishes (and not when it does not match); a workflow
/// that restarts itself stops at chain depth 10.
#[tokio::test]
async fn finished_runs_start_the_workflows_that_listen_to_them_up_to_a_chain_depth_of_10() {
    let (stack, repo) = stack_with("chained.ts", CHAINED).await;
    let runs = stack.push("app", &repo, "main").await;
    let ci = stack.wait_run(&runs[0]).await;
    assert_eq!(
        (ci.run.workflow_name.as_str(), ci.run.status),
        ("ci", RunStatus::Success)
    );

    let deploy = finished_run_of(&stack, "deploy", "deploy to start after ci").await;
    assert_eq!(
        (deploy.run.status, deploy.run.trigger.as_str()),
        (RunStatus::Success, "workflow_complete")
    );
    let log = stack.log_text(deploy.run.run_id.as_ref()).await;
    assert!(
        log.contains(&format!(
            r#""workflowName":"ci","status":"success","sourceRepo":"app","runId":"{}""#,
            ci.run.run_id
        )),
        "{log}"
    );

    let cwd = stack.dir.path();
    assert_eq!(stack.cli("kici", &["dispatch", "looping"], cwd).code, 0);
    let looping = stack
        .wait_for("the loop to stop at depth 10", || async {
            let list = stack.get("/api/v1/runs?workflow=looping&limit=100").await;
            let runs = list["runs"].as_array().cloned().unwrap_or_default();
            let done = runs.len() == 11 && runs.iter().all(|r| r["status"] == "success");
            done.then_some(runs)
        })
        .await;
    assert_eq!(
        looping.iter().filter(|r| r["trigger"] == "workflow_complete").count(),
        10
    );
    // The last run's completion is dropped, not delayed: the log says so, and no twelfth run.
    stack
        .wait_for("the dropped completion in the log", || async {
            stack
                .orchestrator
                .log_tail(500)
                .contains("event chain depth limit (10) reached")
                .then_some(())
        })
        .await;
    let list = stack.get("/api/v1/runs?workflow=looping&limit=100").await;
    assert_eq!(list["runs"].as_array().unwrap().len(), 11);
    let audits = stack.get("/api/v1/runs?workflow=audit").await;
    assert_eq!(audits["total"], 0, "a job that succeeded does not match status: failed");
}

const ALERTS: &str = r#"import { workflow, job, step, genericWebhook } from '@kici-dev/sdk';

export default workflow('page', {
  on: genericWebhook({
    source: 'alerts',
    events: 'fired',
    match: { '$.alert.severity': ['critical', 'high'] },
    not: { '$.alert.service': /^test-/ },
  }),
  jobs: [job('page', { runsOn: 'linux', steps: [step('page', async (ctx) => {
    console.log(`paging for ${ctx.event.payload.payload.alert.service} (${ctx.event.action})`);
  })] })],
});
"#;

/// A `custom` source carries a service's JSON events without git: `genericWebhook()` triggers
/// naming it (registered by the default branch) run when the event type and JSONPath filters
/// accept the payload; a wrong bearer token is 401 and a delivery id seen before a duplicate.
#[tokio::test]
async fn generic_webhooks_start_the_workflows_whose_filters_accept_them() {
    let (stack, repo) = stack_with("page.ts", ALERTS).await;
    stack.push("app", &repo, "main").await;
    let added = stack.cli(
        "kici-admin",
        &[
            "source",
            "add",
            "generic",
            "--name",
            "alerts",
            "--preset",
            "custom",
            "--secret",
            "alert-token",
            "--verification",
            "bearer_token",
        ],
        stack.dir.path(),
    );
    assert_eq!(added.code, 0, "{}", added.stderr);

    let stack = &stack;
    let send = |token: &'static str, delivery: &'static str, body: serde_json::Value| async move {
        let response = stack
            .client()
            .post(format!("{}/webhook/default/generic/alerts", stack.url()))
            .bearer_auth(token)
            .header("x-event-type", "fired")
            .header("x-delivery-id", delivery)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json::<serde_json::Value>().await.unwrap())
    };
    let critical = serde_json::json!({"alert": {"severity": "critical", "service": "api-gateway"}});
    let (status, answer) = send("alert-token", "d1", critical.clone()).await;
    assert_eq!(status, 202, "{answer}");
    let runs = Stack::run_ids(&answer);
    assert_eq!(runs.len(), 1, "{answer}");
    let run = stack.wait_run(&runs[0]).await;
    assert_eq!(
        (run.run.status, run.run.trigger.as_str()),
        (RunStatus::Success, "generic_webhook")
    );
    assert!(
        stack
            .log_text(&runs[0])
            .await
            .contains("paging for api-gateway (fired)")
    );

    let (status, answer) = send("alert-token", "d1", critical).await;
    assert_eq!((status, answer["duplicate"].as_bool()), (200, Some(true)), "{answer}");
    for (delivery, body) in [
        (
            "d2",
            serde_json::json!({"alert": {"severity": "low", "service": "api-gateway"}}),
        ),
        (
            "d3",
            serde_json::json!({"alert": {"severity": "critical", "service": "test-runner"}}),
        ),
    ] {
        let (status, answer) = send("alert-token", delivery, body).await;
        assert_eq!(
            (status, Stack::run_ids(&answer).len()),
            (202, 0),
            "{delivery}: {answer}"
        );
    }
    let (status, answer) = send("wrong-token", "d4", serde_json::json!({})).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("invalid_signature"))
    );
}

/// A source verified by the sender's address: a webhook from an allowed range is taken, one
/// from elsewhere is refused with the reason.
#[tokio::test]
async fn ip_allowlist_sources_take_webhooks_only_from_their_ranges() {
    let stack = Stack::start().await;
    let cwd = stack.dir.path();
    for (name, range) in [("loopback", "127.0.0.1/32"), ("elsewhere", "192.0.2.0/24")] {
        let added = stack.cli(
            "kici-admin",
            &[
                "source",
                "add",
                "generic",
                "--name",
                name,
                "--preset",
                "custom",
                "--verification",
                "ip_allowlist",
                "--allow-ip",
                range,
            ],
            cwd,
        );
        assert_eq!(added.code, 0, "{}", added.stderr);
    }
    let send = |name: &'static str| {
        stack
            .client()
            .post(format!("{}/webhook/default/generic/{name}", stack.url()))
            .header("x-delivery-id", name)
            .json(&serde_json::json!({"eventType": "ping"}))
            .send()
    };
    let response = send("loopback").await.unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let response = send("elsewhere").await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        answer["error"]["message"],
        "Invalid signature: source elsewhere takes webhooks only from its allowed addresses"
    );
    let refused = stack.cli(
        "kici-admin",
        &[
            "source",
            "add",
            "generic",
            "--name",
            "bad",
            "--preset",
            "custom",
            "--verification",
            "ip_allowlist",
            "--allow-ip",
            "10.0.0.0/33",
        ],
        cwd,
    );
    assert!(
        refused
            .stderr
            .contains("`10.0.0.0/33` is not an IP address or range such as 192.0.2.0/24"),
        "{}",
        refused.stderr
    );
}

const DEPLOY_EMITS: &str = r#"import { workflow, job, step, dispatch, defineEvent, z } from '@kici-dev/sdk';

const deployed = defineEvent('deployed', z.object({ env: z.enum(['staging', 'prod']), version: z.string() }));

export default workflow('deploy', {
  on: dispatch(),
  jobs: [job('ship', { runsOn: 'linux', steps: [step('announce', async (ctx) => {
    await ctx.emit(deployed, { env: 'prod', version: '1.2.3' });
  })] })],
});
"#;

const SMOKE_LISTENS: &str = r#"import { workflow, job, step, kiciEvent } from '@kici-dev/sdk';

export default workflow('smoke', {
  on: kiciEvent({ name: 'deployed', match: { '$.env': 'prod' } }),
  jobs: [job('check', { runsOn: 'linux', steps: [step('check', async (ctx) => {
    const event = ctx.event.payload;
    console.log(`smoke ${event.payload.version} after ${event.workflowName ?? 'an operator'}`);
  })] })],
});
"#;

/// A step's `ctx.emit` starts the workflows whose `kiciEvent()` trigger accepts the event; an
/// operator emits one with `kici-admin event emit`. An event whose start keeps failing (its
/// source is disabled) is retried, then dead-lettered with the reason, and retried by the
/// operator once the cause is fixed.
#[tokio::test]
async fn emitted_events_start_workflows_and_undeliverable_ones_reach_the_dead_letter_list() {
    let mut stack = Stack::start_with(&[
        ("KICI_EVENT_ROUTER_SCAN_INTERVAL_MS", "100"),
        ("KICI_EVENT_ROUTER_BACKOFF_BASE_MS", "100"),
        ("KICI_EVENT_ROUTER_BACKOFF_MAX_MS", "200"),
        ("KICI_EVENT_ROUTER_MAX_ATTEMPTS", "3"),
    ])
    .await;
    stack.start_agent("linux-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(".kici/workflows/deploy.ts", DEPLOY_EMITS);
    repo.write(".kici/workflows/smoke.ts", SMOKE_LISTENS);
    repo.compile();
    repo.commit_and_push("events");
    stack.add_local_source("app", &repo).await;
    assert!(stack.push("app", &repo, "main").await.is_empty());
    let cwd = stack.dir.path();

    let dispatched = stack.cli("kici", &["dispatch", "deploy"], cwd);
    assert_eq!(dispatched.code, 0, "{}", dispatched.stderr);
    let smoke = finished_run_of(&stack, "smoke", "the smoke run the emitted event starts").await;
    assert_eq!(
        (smoke.run.status, smoke.run.trigger.as_str()),
        (RunStatus::Success, "kici_event")
    );
    assert!(
        stack
            .log_text(smoke.run.run_id.as_ref())
            .await
            .contains("smoke 1.2.3 after deploy"),
        "the payload and the emitting workflow reach ctx.event"
    );
    let deploy = stack.get("/api/v1/runs?workflow=deploy").await;
    let deploy_log = stack.log_text(deploy["runs"][0]["runId"].as_str().unwrap()).await;
    assert!(deploy_log.contains("Emitted event 'deployed'"), "{deploy_log}");

    // An operator's event the filter refuses starts nothing.
    let staging = stack.cli(
        "kici-admin",
        &[
            "event",
            "emit",
            "deployed",
            "--payload",
            r#"{"env":"staging","version":"2"}"#,
        ],
        cwd,
    );
    assert_eq!(staging.code, 0, "{}", staging.stderr);
    assert!(staging.stdout.ends_with("; it started no run.\n"), "{}", staging.stdout);

    // With the source disabled every attempt fails: the event ends in the dead-letter list.
    assert_eq!(stack.cli("kici-admin", &["source", "disable", "app"], cwd).code, 0);
    let emitted = stack.cli(
        "kici-admin",
        &[
            "event",
            "emit",
            "deployed",
            "--payload",
            r#"{"env":"prod","version":"3"}"#,
        ],
        cwd,
    );
    assert!(emitted.stdout.ends_with("; it started no run.\n"), "{}", emitted.stdout);
    let event_id = emitted.stdout.split(['(', ')']).nth(1).unwrap().to_string();
    stack
        .wait_for("the event in the dead-letter list", || async {
            let count = stack.cli("kici-admin", &["event-dlq", "count"], cwd);
            (count.stdout == "1\n").then_some(())
        })
        .await;
    let listed = stack.cli("kici-admin", &["event-dlq", "list", "--json"], cwd);
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let dead = &listed["events"][0];
    assert_eq!(
        (
            dead["eventId"].as_str(),
            dead["attempts"].as_i64(),
            dead["lastError"].as_str()
        ),
        (
            Some(event_id.as_str()),
            Some(3),
            Some("workflow 'smoke': source `app` is disabled (hint: `kici-admin source enable app`)")
        ),
        "{listed}"
    );
    assert!(stack.orchestrator.log_tail(500).contains("Event moved to DLQ"));
    let table = stack.cli("kici-admin", &["event-dlq", "list"], cwd);
    assert!(
        table.stdout.contains(&event_id) && table.stdout.contains("source `app` is disabled"),
        "{}",
        table.stdout
    );

    assert_eq!(stack.cli("kici-admin", &["source", "enable", "app"], cwd).code, 0);
    let retried = stack.cli("kici-admin", &["event-dlq", "retry", &event_id], cwd);
    assert_eq!(retried.code, 0, "{}", retried.stderr);
    let run_id = retried
        .stdout
        .strip_prefix(&format!("Event {event_id} delivered; runs started: "))
        .and_then(|rest| rest.strip_suffix(".\n"))
        .unwrap_or_else(|| panic!("{}", retried.stdout))
        .to_string();
    let rerun = stack.wait_run(&run_id).await;
    assert_eq!(rerun.run.status, RunStatus::Success);
    assert!(stack.log_text(&run_id).await.contains("smoke 3 after an operator"));
    assert_eq!(stack.cli("kici-admin", &["event-dlq", "count"], cwd).stdout, "0\n");
    let missing = stack.cli("kici-admin", &["event-dlq", "discard", "nope"], cwd);
    assert_ne!(missing.code, 0);
    assert!(
        missing
            .stderr
            .contains("no dead event `nope` (hint: `kici-admin event-dlq list`)"),
        "{}",
        missing.stderr
    );
}
