//! The dashboard in headless Chromium (Debian's `chromium` + `chromium-driver`), against a
//! real Platform, orchestrator and agent: sign-in, the failure banner and metadata summary,
//! the job tree and step logs, live logs, the offline panel and recovery, provisioning logs
//! and the Timeline, and who may do what. The runs list and a failed run's page are saved as
//! screenshots under `docs/screenshots/` (the README shows them).

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use kici_testkit::browser::Browser;
use kici_testkit::{PLATFORM_ADMIN_TOKEN, Repo, Stack};
use serde_json::{Value, json};

const FIXTURE: &str = "tests/e2e-repo";
const OFFLINE: &str = "Log content is served by the orchestrator, which is currently offline";

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
}

async fn stack(env: &[(&str, &str)], agent: bool) -> (Stack, Repo) {
    let mut stack = Stack::start_with_platform(env).await;
    if agent {
        stack.start_agent("agent-1", &["linux"]).await;
    }
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    (stack, repo)
}

/// Signs in through the form with `token`.
async fn sign_in(browser: &Browser, stack: &Stack, token: &str) {
    browser.goto(&format!("{}/runs", stack.platform_url())).await;
    browser
        .wait_for(
            "the sign-in form",
            "return document.querySelector('input[name=token]') !== null;",
            json!([]),
        )
        .await;
    browser.type_into("input[name=token]", token).await;
    browser.click("form[action='/login'] button[type=submit]").await;
    browser
        .wait_for(
            "the runs list",
            "return document.querySelector('table.runs') !== null;",
            json!([]),
        )
        .await;
}

/// Waits until the Platform has the run finished.
async fn cached(stack: &Stack, run_id: &str) {
    stack
        .wait_for("the Platform to cache the finished run", || async {
            let (status, body) = stack.platform_get(&format!("/api/v1/runs/{run_id}")).await;
            (status == 200 && !matches!(body["run"]["status"].as_str(), Some("pending" | "running"))).then_some(())
        })
        .await;
}

const LOG_TEXT: &str = "return document.getElementById('log').innerText;";

#[tokio::test]
async fn a_failed_run_shows_its_reason_in_the_banner_and_the_metadata_and_its_failed_step_log() {
    let Some(browser) = Browser::start().await else { return };
    let (stack, repo) = stack(&[], true).await;
    let detail = stack.push_and_wait("app", &repo, "failing").await;
    let run_id = detail.run.run_id.clone();
    let reason = detail.run.failure_reason.clone().unwrap();
    cached(&stack, &run_id).await;
    // A successful run too, so the list shows more than one status.
    let hello = stack.push_and_wait("app", &repo, "hello").await;
    cached(&stack, &hello.run.run_id).await;

    sign_in(&browser, &stack, PLATFORM_ADMIN_TOKEN).await;
    browser
        .wait_for(
            "the failed run's row",
            "return document.querySelector(`tr[data-run-id='${arguments[0]}'] .status-failed`) !== null;",
            json!([run_id]),
        )
        .await;
    browser.screenshot(&screenshots().join("runs.png")).await;

    browser.goto(&format!("{}/runs/{run_id}", stack.platform_url())).await;
    let banner = browser
        .wait_for(
            "the failure banner",
            "const el = document.querySelector('#failure-banner .reason'); return el && el.textContent;",
            json!([]),
        )
        .await;
    assert_eq!(banner, Value::String(reason.clone()));
    assert_eq!(
        browser.text("#metadata-failure").await.as_deref(),
        Some(reason.as_str())
    );
    // The failed job is marked and open, its failed step selected, its log shown.
    let failed_job = browser
        .eval(
            "const j = document.querySelector('details.job[data-status=failed]'); return j && j.open;",
            json!([]),
        )
        .await;
    assert_eq!(failed_job, Value::Bool(true));
    let log = browser
        .wait_for(
            "the failed step's log",
            "const t = document.getElementById('log').innerText; return t.includes('compiling') && t;",
            json!([]),
        )
        .await;
    assert!(log.as_str().unwrap().contains("compiling"), "{log}");
    let selected = browser.text("a.step.selected").await.unwrap();
    assert!(
        selected.contains("compile") && selected.contains("exit 3"),
        "{selected}"
    );
    browser.screenshot(&screenshots().join("run-failed.png")).await;
}

#[tokio::test]
async fn a_running_steps_lines_arrive_live_after_the_earlier_ones() {
    let Some(browser) = Browser::start().await else { return };
    let (stack, repo) = stack(&[], true).await;
    let runs = stack.push("app", &repo, "ticker").await;
    let run_id = runs[0].clone();
    sign_in(&browser, &stack, PLATFORM_ADMIN_TOKEN).await;
    // Join midway: some lines are already printed.
    stack
        .wait_for("the step to print a few lines", || async {
            let (status, body) = stack.platform_get(&format!("/api/v1/runs/{run_id}/logs")).await;
            let printed = body["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["lines"].as_array().cloned().unwrap_or_default())
                .count();
            (status == 200 && printed >= 3).then_some(())
        })
        .await;
    browser.goto(&format!("{}/runs/{run_id}", stack.platform_url())).await;
    let early = browser
        .wait_for(
            "the earlier lines",
            "const t = document.getElementById('log').innerText; return t.includes('tick 2') && t;",
            json!([]),
        )
        .await;
    assert!(early.as_str().unwrap().contains("tick 1"), "{early}");
    assert!(
        !early.as_str().unwrap().contains("tick 20"),
        "joined before the end: {early}"
    );
    assert_eq!(
        browser
            .eval("return !document.getElementById('log-badge').hidden;", json!([]))
            .await,
        Value::Bool(true)
    );
    // Then the later lines arrive without a reload, each once and in order.
    let full = browser
        .wait_for(
            "the last line",
            "const t = document.getElementById('log').innerText; return t.includes('tick 20') && t;",
            json!([]),
        )
        .await;
    let ticks: Vec<&str> = full
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("tick "))
        .collect();
    let expected: Vec<String> = (1..=20).map(|i| format!("tick {i}")).collect();
    assert_eq!(ticks, expected, "{full}");
}

#[tokio::test]
async fn with_the_orchestrator_stopped_the_page_renders_from_the_cache_and_logs_return_when_it_is_back() {
    let Some(browser) = Browser::start().await else { return };
    let (mut stack, repo) = stack(&[], true).await;
    let detail = stack.push_and_wait("app", &repo, "failing").await;
    let run_id = detail.run.run_id.clone();
    cached(&stack, &run_id).await;
    stack.orchestrator.kill();
    stack
        .wait_for("the Platform to see the orchestrator offline", || async {
            let (_, body) = stack.platform_get(&format!("/api/v1/runs/{run_id}/detail")).await;
            (body["orchestratorOnline"] == false).then_some(())
        })
        .await;
    sign_in(&browser, &stack, PLATFORM_ADMIN_TOKEN).await;
    browser.goto(&format!("{}/runs/{run_id}", stack.platform_url())).await;
    let banner = browser
        .wait_for(
            "the banner",
            "const el = document.querySelector('#failure-banner .reason'); return el && el.textContent;",
            json!([]),
        )
        .await;
    assert_eq!(banner, Value::String(detail.run.failure_reason.clone().unwrap()));
    assert!(browser.text(".tree").await.unwrap().contains("build"));
    let message = browser
        .wait_for(
            "the offline text",
            "const m = document.getElementById('log-message').textContent; return m && m;",
            json!([]),
        )
        .await;
    assert_eq!(message, Value::String(OFFLINE.into()));
    assert_eq!(browser.eval(LOG_TEXT, json!([])).await, Value::String(String::new()));
    // The orchestrator comes back: the logs load in the open page, without a reload.
    browser
        .eval("window.__sameDocument = true; return true;", json!([]))
        .await;
    stack.start_orchestrator_again();
    browser
        .wait_for(
            "the logs to return",
            "const t = document.getElementById('log').innerText; return t.includes('compiling');",
            json!([]),
        )
        .await;
    assert_eq!(
        browser.eval("return window.__sameDocument === true;", json!([])).await,
        Value::Bool(true)
    );
    assert_eq!(browser.text("#log-message").await.as_deref(), Some(""));
}

#[tokio::test]
async fn a_provisioning_failure_shows_in_the_provisioning_logs_and_as_provisioning_failed_in_the_timeline() {
    let Some(browser) = Browser::start().await else { return };
    let config = tempfile::tempdir().unwrap();
    let path = config.path().join("scalers.yaml");
    std::fs::write(
        &path,
        "version: 1\nscalers:\n  - name: metal\n    type: bare-metal\n    maxAgents: 1\n    labelSets:\n      - labels: [scaled]\n        binaryPath: /nonexistent/kici-agent\n",
    )
    .unwrap();
    let path_text = path.display().to_string();
    let (stack, repo) = stack(
        &[
            ("KICI_SCALER_CONFIG_PATH", &path_text),
            ("KICI_QUEUE_TIMEOUT_MS", "3000"),
        ],
        false,
    )
    .await;
    let detail = stack.push_and_wait("app", &repo, "scaled").await;
    let run_id = detail.run.run_id.clone();
    cached(&stack, &run_id).await;
    sign_in(&browser, &stack, PLATFORM_ADMIN_TOKEN).await;
    browser.goto(&format!("{}/runs/{run_id}", stack.platform_url())).await;
    let provisioning = browser
        .wait_for(
            "the provisioning logs",
            "const d = document.getElementById('provisioning'); return d && !d.hidden && d.open && d.innerText;",
            json!([]),
        )
        .await;
    let provisioning = provisioning.as_str().unwrap();
    assert!(
        provisioning.contains("scaler.failed") && provisioning.contains("spawn /nonexistent/kici-agent ENOENT"),
        "{provisioning}"
    );
    browser.click("[data-tab=timeline]").await;
    let timeline = browser.text("#tab-timeline").await.unwrap();
    assert!(timeline.contains("Provisioning failed"), "{timeline}");
    assert!(timeline.contains("Provisioning"), "{timeline}");
    // The banner carries the captured error too.
    let banner = browser.text("#failure-banner .reason").await.unwrap();
    assert!(
        banner.starts_with("agent process error: spawn /nonexistent/kici-agent ENOENT"),
        "{banner}"
    );
}

#[tokio::test]
async fn without_a_session_pages_redirect_and_the_api_refuses_and_a_member_cannot_cancel() {
    let (stack, repo) = stack(&[], false).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for page in ["/runs", "/runs/some-run"] {
        let response = client
            .get(format!("{}{page}", stack.platform_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 303, "{page}");
        let location = response.headers()["location"].to_str().unwrap().to_string();
        assert!(location.starts_with("/login?next="), "{location}");
    }
    for api in ["/api/v1/runs", "/api/v1/runs/x/detail", "/api/v1/events/live"] {
        let response = client
            .get(format!("{}{api}", stack.platform_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "{api}");
    }
    // A member: reads, cannot cancel.
    let created = client
        .post(format!("{}/api/v1/users", stack.platform_url()))
        .bearer_auth(PLATFORM_ADMIN_TOKEN)
        .json(&json!({ "name": "rita", "role": "member" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let member_token = created.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(member_token.starts_with("kici_pat_"));
    // A run that waits for an agent, so there is something to cancel.
    let run_id = stack.push("app", &repo, "hello").await.remove(0);
    stack
        .wait_for("the Platform to have the run", || async {
            (stack.platform_get(&format!("/api/v1/runs/{run_id}")).await.0 == 200).then_some(())
        })
        .await;
    let cancel = client
        .post(format!("{}/api/v1/runs/{run_id}/cancel", stack.platform_url()))
        .bearer_auth(&member_token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status().as_u16(), 403);
    assert_eq!(
        cancel.json::<Value>().await.unwrap()["error"]["message"],
        "Insufficient permission: runs.write needed"
    );
    if let Some(browser) = Browser::start().await {
        sign_in(&browser, &stack, &member_token).await;
        browser.goto(&format!("{}/runs/{run_id}", stack.platform_url())).await;
        browser
            .wait_for(
                "the run page",
                "return document.querySelector('section.run') !== null;",
                json!([]),
            )
            .await;
        let buttons = browser
            .eval("return document.querySelectorAll('[data-cancel]').length;", json!([]))
            .await;
        assert_eq!(buttons, json!(0), "a member sees no cancel button");
    }
    // The owner may.
    let cancel = client
        .post(format!("{}/api/v1/runs/{run_id}/cancel", stack.platform_url()))
        .bearer_auth(PLATFORM_ADMIN_TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status().as_u16(), 200, "{:?}", cancel.text().await);
}
