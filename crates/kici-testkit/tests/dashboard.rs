//! The dashboard in headless Chromium (Debian's `chromium` + `chromium-driver`), against a
//! real Platform, orchestrator and agent: sign-in, the failure banner and metadata summary,
//! the job tree and a job's steps as log sections, live logs and "Jump to bottom", the offline
//! panel and recovery, provisioning logs and the Timeline, approving and rejecting held jobs,
//! and who may do what. The runs list and a failed run's page are saved as screenshots under
//! `target/screenshots/`, or `KICI_E2E_SCREENSHOTS_DIR`:
//! `scripts/screenshots.sh` refreshes the README's in `docs/screenshots/` that way, so running
//! the tests leaves tracked files alone.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use kici_testkit::browser::Browser;
use kici_testkit::{PLATFORM_ADMIN_TOKEN, Repo, Stack};
use serde_json::{Value, json};

const FIXTURE: &str = "tests/e2e-repo";
const OFFLINE: &str = "Log content is served by the orchestrator, which is currently offline";

fn screenshots() -> PathBuf {
    let dir = std::env::var_os("KICI_E2E_SCREENSHOTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
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
    browser.sign_in(&stack.platform_url(), token).await;
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

/// A step's section in the run page's log pane.
const SECTION: &str = "#log details.step-log";

/// A member user `name`, created with kici-admin against the Platform; their token.
fn create_member(stack: &Stack, name: &str) -> String {
    let created = std::process::Command::new(kici_testkit::binary("kici-admin"))
        .args(["--url", &stack.platform_url(), "--token", PLATFORM_ADMIN_TOKEN])
        .args(["user", "create", "--name", name, "--role", "member"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&created.stdout).to_string();
    assert!(
        created.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(
        stdout.starts_with(&format!("Created member user {name}.\n")),
        "{stdout}"
    );
    let token = stdout
        .split("shown once; sign in to the dashboard with it): ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    assert!(token.starts_with("kici_pat_"), "{stdout}");
    token
}

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
    // The failed job is marked and open, its failed step selected. The log pane shows each of
    // the job's steps as a section whose header sticks to the pane's top: the failed step open
    // with its lines, the other closed and not fetched yet.
    let failed_job = browser
        .eval(
            "const j = document.querySelector('details.job[data-status=failed]'); return j && j.open;",
            json!([]),
        )
        .await;
    assert_eq!(failed_job, Value::Bool(true));
    let sections = browser
        .wait_for(
            "the failed step's lines",
            "if (!document.querySelector(`${arguments[0]}[data-step-index='1'] .ln`)) return null;
             return [document.getElementById('log-title').textContent, [...document.querySelectorAll(arguments[0])].map(d => [
               d.dataset.stepIndex, d.querySelector('.step-name').textContent, d.dataset.status, d.open, d.querySelector('.exit').textContent,
               [...d.querySelectorAll('.ln')].map(l => l.textContent.trim()), getComputedStyle(d.querySelector('summary')).position])];",
            json!([SECTION]),
        )
        .await;
    assert_eq!(
        sections,
        json!([
            "build",
            [
                ["0", "prepare", "success", false, "", [], "sticky"],
                ["1", "compile", "failed", true, "exit 3", ["compiling"], "sticky"]
            ]
        ])
    );
    let selected = browser.text("a.step.selected").await.unwrap();
    assert!(
        selected.contains("compile") && selected.contains("exit 3"),
        "{selected}"
    );
    // Search covers every step: a term only the closed step printed fetches its lines, is
    // counted, and opens its section; next and previous go from step to step.
    browser.type_into("#log-search", "prepar").await;
    let found = browser
        .wait_for(
            "the match in the closed step",
            "const m = document.querySelector('#log .ln.match.current'); const d = m && m.closest('details.step-log');
             return d && document.getElementById('log-matches').textContent === '1 of 1' && [d.dataset.stepIndex, d.open, m.textContent];",
            json!([]),
        )
        .await;
    assert_eq!(
        (found[0].as_str(), found[1].as_bool()),
        (Some("0"), Some(true)),
        "{found}"
    );
    assert!(found[2].as_str().unwrap().contains("preparing"), "{found}");
    const SEARCH_AGAIN: &str = "const s = document.getElementById('log-search'); s.value = arguments[0]; s.dispatchEvent(new Event('input')); return true;";
    const CURRENT_MATCH: &str = "const m = document.querySelector('#log .ln.match.current'); return [document.getElementById('log-matches').textContent, m && m.closest('details.step-log').dataset.stepIndex];";
    browser.eval(SEARCH_AGAIN, json!(["ing"])).await;
    assert_eq!(browser.eval(CURRENT_MATCH, json!([])).await, json!(["1 of 2", "0"]));
    browser.click("#log-next").await;
    assert_eq!(browser.eval(CURRENT_MATCH, json!([])).await, json!(["2 of 2", "1"]));
    browser.click("#log-prev").await;
    assert_eq!(browser.eval(CURRENT_MATCH, json!([])).await, json!(["1 of 2", "0"]));
    browser.eval(SEARCH_AGAIN, json!(["zzz"])).await;
    assert_eq!(
        browser.eval(CURRENT_MATCH, json!([])).await,
        json!(["No matches", null])
    );
    browser.eval(SEARCH_AGAIN, json!([""])).await;
    // Timestamps on demand, in every section; each step's raw text and a download.
    browser.click("#log-times").await;
    let times = browser
        .eval(
            "const ts = [...document.querySelectorAll('#log .ln .ts')]; return [document.getElementById('log-times').getAttribute('aria-pressed'), ts.length > 1, ts.every(t => getComputedStyle(t).display === 'inline' && t.dataset.ts.length === 12)];",
            json!([]),
        )
        .await;
    assert_eq!(times, json!(["true", true, true]));
    let links = browser
        .eval(
            "return [...document.querySelectorAll(arguments[0])].map(d => [...d.parentElement.querySelectorAll('.step-links a')].map(a => a.textContent));",
            json!([SECTION]),
        )
        .await;
    assert_eq!(links, json!([["Raw", "Download"], ["Raw", "Download"]]));
    let raw = browser
        .wait_for(
            "the compile step's raw and downloaded log",
            "const [raw, download] = document.querySelector(`${arguments[0]}[data-step-index='1']`).parentElement.querySelectorAll('.step-links a');
             return window.__raw || (Promise.all([fetch(raw.href).then(r => r.text()), fetch(download.href).then(r => r.headers.get('content-disposition'))]).then(v => window.__raw = v), null);",
            json!([SECTION]),
        )
        .await;
    assert_eq!(raw[0], "compiling\n");
    assert!(raw[1].as_str().unwrap().starts_with("attachment; filename=\""), "{raw}");
    browser.screenshot(&screenshots().join("run-failed.png")).await;
    // Line anchors: a line number marks the line and names the job, step and line in the
    // address, which opens that step's section (only it) and marks the line again.
    browser
        .click(&format!("{SECTION}[data-step-index='0'] a.n[data-n='1']"))
        .await;
    let address = browser
        .eval(
            "return [location.search, location.hash, document.getElementById('step0-L1').classList.contains('hl')];",
            json!([]),
        )
        .await;
    let job_id = detail.jobs[0].job_id.to_string();
    assert_eq!(address, json!([format!("?job={job_id}&step=0"), "#L1", true]));
    let anchored = browser.current_url().await;
    // Elsewhere first: the same address again would only move within the page.
    browser.goto("about:blank").await;
    browser.goto(&anchored).await;
    let again = browser
        .wait_for(
            "the anchored line again",
            "return document.querySelector('#step0-L1.hl') && [document.querySelector('a.step.selected').dataset.stepName, [...document.querySelectorAll(arguments[0])].map(d => d.open)];",
            json!([SECTION]),
        )
        .await;
    assert_eq!(again, json!(["prepare", [true, false]]));
    // A step chosen in the tree opens its section, whose lines are fetched then.
    browser.click("a.step[data-step-index='1']").await;
    let opened = browser
        .wait_for(
            "the compile step's lines once opened",
            "const d = document.querySelector(`${arguments[0]}[data-step-index='1']`); const l = d.querySelector('.ln');
             return l && [d.open, l.textContent.trim(), location.search.endsWith('&step=1'), document.querySelector('a.step.selected').dataset.stepName];",
            json!([SECTION]),
        )
        .await;
    assert_eq!(opened, json!([true, "compiling", true, "compile"]));

    // Every run has a timeline: the run, each job (its wait for an agent, then the job) and each
    // step as bars; and a summary with each job's wait and duration and the slowest steps.
    browser.click("[data-tab=timeline]").await;
    let chart = browser
        .eval(
            "return [...document.querySelectorAll('.gantt .g-row')].map(r => [r.className.replace('g-row ', ''), r.querySelector('.g-label').textContent, [...r.querySelectorAll('.bar')].map(b => b.className.replace('bar ', ''))]);",
            json!([]),
        )
        .await;
    assert_eq!(
        chart,
        json!([
            ["run", "failing", ["st-failed"]],
            ["job", "build", ["queued", "st-failed"]],
            ["step", "prepare", ["st-success"]],
            ["step", "compile", ["st-failed"]]
        ]),
        "{chart}"
    );
    let compile = browser
        .eval(
            "return document.querySelectorAll('.gantt .g-row.step .bar')[1].title;",
            json!([]),
        )
        .await;
    assert!(compile.as_str().unwrap().starts_with("compile: "), "{compile}");
    browser.screenshot(&screenshots().join("run-timeline.png")).await;
    browser.click("[data-tab=summary]").await;
    let summary = browser
        .eval(
            "return [[...document.querySelectorAll('.job-durations tbody td:first-child')].map(c => c.textContent), [...document.querySelectorAll('.slowest tbody td:first-child')].map(c => c.textContent)];",
            json!([]),
        )
        .await;
    assert_eq!(summary[0], json!(["build"]));
    let slowest = summary[1].as_array().unwrap();
    assert_eq!(slowest.len(), 2, "{summary}");
    assert!(
        slowest.contains(&json!("compile")) && slowest.contains(&json!("prepare")),
        "{summary}"
    );

    // Re-run: the same workflow on the same commit, and the page moves to the new run.
    let new_run_id = rerun_from_page(&browser, "all", run_id.as_str()).await;
    assert_ne!(new_run_id, run_id);
    let again = stack.wait_run(&new_run_id).await;
    assert_eq!(again.run.workflow_name, "failing");
    assert_eq!(again.run.sha, detail.run.sha);
    assert_eq!(
        (again.run.actor.as_deref(), again.run.trigger.as_str()),
        (Some("admin"), "rerun"),
        "who re-ran it caused the re-run"
    );
    // A second re-run right away is refused.
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/runs/{run_id}/rerun", stack.platform_url()))
        .bearer_auth(PLATFORM_ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
}

/// A workflow whose step prints `half` lines (`tick 1`, …), waits until `marker` exists, then
/// prints `half` more: the test decides when the second half comes, so nothing depends on
/// timing.
fn ticker(marker: &std::path::Path, half: usize) -> String {
    format!(
        r#"import {{ workflow, job, step, push }} from '@kici-dev/sdk';

export default workflow('ticker', {{
  on: push({{ branches: 'ticker' }}),
  jobs: [
    job('tick', {{
      runsOn: 'kici:os:linux',
      steps: [
        step('count', async ({{ $ }}) => {{
          await $`for i in $(seq 1 {half}); do echo "tick $i"; done; for w in $(seq 1 600); do [ -e {marker} ] && break; sleep 0.1; done; for i in $(seq {next} {last}); do echo "tick $i"; done`;
        }}),
      ],
    }}),
  ],
}});
"#,
        marker = marker.display(),
        next = half + 1,
        last = 2 * half,
    )
}

/// Pushes [`ticker`] and waits until the Platform can serve its first `half` lines, the step
/// still running; the run id.
async fn ticking(stack: &Stack, repo: &Repo, marker: &std::path::Path, half: usize) -> String {
    repo.write(".kici/workflows/ticker.ts", &ticker(marker, half));
    repo.compile();
    repo.commit_and_push("a step that waits for the test");
    let run_id = stack.push("app", repo, "ticker").await.remove(0);
    stack
        .wait_for("the first half of the lines", || async {
            let (status, body) = stack.platform_get(&format!("/api/v1/runs/{run_id}/logs")).await;
            let printed = body["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["lines"].as_array().cloned().unwrap_or_default())
                .filter(|l| l["line"].as_str().is_some_and(|l| l.starts_with("tick ")))
                .count();
            (status == 200 && printed == half).then_some(())
        })
        .await;
    run_id
}

#[tokio::test]
async fn a_running_steps_lines_arrive_live_after_the_earlier_ones() {
    let Some(browser) = Browser::start().await else { return };
    let (stack, repo) = stack(&[], true).await;
    let marker = stack.dir.path().join("go-on");
    sign_in(&browser, &stack, PLATFORM_ADMIN_TOKEN).await;
    // Join midway: the first half is printed, the step still runs.
    let run_id = ticking(&stack, &repo, &marker, 5).await;
    browser.goto(&format!("{}/runs/{run_id}", stack.platform_url())).await;
    let early = browser
        .wait_for(
            "the earlier lines",
            "const t = document.getElementById('log').innerText; return t.includes('tick 5') && t;",
            json!([]),
        )
        .await;
    assert!(early.as_str().unwrap().contains("tick 1"), "{early}");
    assert!(!early.as_str().unwrap().contains("tick 6"), "{early}");
    assert_eq!(
        browser
            .eval("return !document.getElementById('log-badge').hidden;", json!([]))
            .await,
        Value::Bool(true),
        "the Streaming badge shows while the step runs"
    );
    // While it runs, the header's clock ticks; the tab's icon says running.
    let first = browser
        .wait_for(
            "the running clock",
            "const e = document.querySelector('#run-elapsed .elapsed[data-since]'); return e && e.textContent;",
            json!([]),
        )
        .await;
    browser
        .wait_for(
            "the clock to tick",
            "const e = document.querySelector('#run-elapsed .elapsed'); return e.textContent !== arguments[0];",
            json!([first]),
        )
        .await;
    assert_eq!(
        browser
            .eval(
                "return document.querySelector('link[rel=icon]').dataset.status;",
                json!([])
            )
            .await,
        "running"
    );
    browser.screenshot(&screenshots().join("run-live.png")).await;
    // The second half arrives in the open page, each line once and in order.
    std::fs::write(&marker, "").unwrap();
    let full = browser
        .wait_for(
            "the last line",
            "const t = document.getElementById('log').innerText; return t.includes('tick 10') && t;",
            json!([]),
        )
        .await;
    let ticks: Vec<&str> = full
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("tick "))
        .collect();
    let expected: Vec<String> = (1..=10).map(|i| format!("tick {i}")).collect();
    assert_eq!(ticks, expected, "{full}");
    // The end of the step is noted under its lines, and streaming stops.
    let notice = browser
        .wait_for(
            "the completion notice",
            "const n = document.querySelector('#log .notice'); return n && document.getElementById('log-badge').hidden && n.textContent;",
            json!([]),
        )
        .await;
    assert_eq!(notice, "Step finished: success");
}

/// While a step streams, the pane follows its end as long as the reader is there; scrolled up,
/// new lines leave the reader where they are and offer "Jump to bottom", which goes back to
/// the end and follows again.
#[tokio::test]
async fn a_streaming_step_stays_where_the_reader_scrolled_and_jump_to_bottom_returns_to_the_end() {
    let Some(browser) = Browser::start().await else { return };
    let (stack, repo) = stack(&[], true).await;
    let marker = stack.dir.path().join("go-on");
    sign_in(&browser, &stack, PLATFORM_ADMIN_TOKEN).await;
    let run_id = ticking(&stack, &repo, &marker, 200).await;
    browser.goto(&format!("{}/runs/{run_id}", stack.platform_url())).await;
    let following = browser
        .wait_for(
            "the first half, streaming, the pane at its end",
            "const l = document.getElementById('log'); return l.innerText.includes('tick 200') && !document.getElementById('log-badge').hidden
               && l.scrollHeight - l.scrollTop - l.clientHeight < 24;",
            json!([]),
        )
        .await;
    assert_eq!(following, true);
    let pane = browser
        .eval(
            "const l = document.getElementById('log'); return [l.scrollHeight > l.clientHeight, document.getElementById('log-jump').hidden];",
            json!([]),
        )
        .await;
    assert_eq!(pane, json!([true, true]), "a pane that scrolls, followed: no button");
    // Scrolled up, the second half arrives: the reader stays, the button shows.
    browser
        .eval("document.getElementById('log').scrollTop = 0; return true;", json!([]))
        .await;
    std::fs::write(&marker, "").unwrap();
    let scrolled_up = browser
        .wait_for(
            "the last line, and the button",
            "const l = document.getElementById('log'), j = document.getElementById('log-jump');
             return l.innerText.includes('tick 400') && !j.hidden && j.offsetParent !== null && [l.scrollTop, l.scrollHeight - l.scrollTop - l.clientHeight > 24];",
            json!([]),
        )
        .await;
    assert_eq!(scrolled_up, json!([0, true]), "the pane stayed where the reader was");
    assert_eq!(browser.text("#log-jump").await.as_deref(), Some("Jump to bottom ↓"));
    browser.click("#log-jump").await;
    let back = browser
        .wait_for(
            "the pane at its end, the button gone",
            "const l = document.getElementById('log'); return l.scrollHeight - l.scrollTop - l.clientHeight < 24 && document.getElementById('log-jump').hidden;",
            json!([]),
        )
        .await;
    assert_eq!(back, true);
    // The step ends: a notice under its lines, each line once.
    let notice = browser
        .wait_for(
            "the completion notice",
            "const n = document.querySelector('#log .notice'); return n && document.getElementById('log-badge').hidden && n.textContent;",
            json!([]),
        )
        .await;
    assert_eq!(notice, "Step finished: success");
    let ticks = browser
        .eval(
            "return [...document.querySelectorAll('#log .ln')].map(l => l.textContent.trim()).filter(t => t.startsWith('tick '));",
            json!([]),
        )
        .await;
    let expected: Vec<String> = (1..=400).map(|i| format!("tick {i}")).collect();
    assert_eq!(ticks, json!(expected));
}

/// The three marker files [`two_steps`] waits for, in a fresh stack's directory.
struct Markers {
    first: PathBuf,
    between: PathBuf,
    second: PathBuf,
}

impl Markers {
    fn new(stack: &Stack) -> Markers {
        let dir = stack.dir.path();
        Markers {
            first: dir.join("first"),
            between: dir.join("between"),
            second: dir.join("second"),
        }
    }
}

/// A job of two steps, each printing a line, waiting for its marker file, then printing another.
/// The second starts only once `between` exists (its rule waits for it): the test decides how
/// long the job has no running step.
fn two_steps(markers: &Markers) -> String {
    format!(
        r#"import {{ workflow, job, step, push, rule }} from '@kici-dev/sdk';

export default workflow('stepper', {{
  on: push({{ branches: 'stepper' }}),
  jobs: [
    job('steps', {{
      runsOn: 'kici:os:linux',
      steps: [
        step('first', async ({{ $ }}) => {{
          await $`echo first starts; for w in $(seq 1 600); do [ -e {first} ] && break; sleep 0.1; done; echo first ends`;
        }}),
        step('second', {{
          rules: [rule('after the test says so', async ({{ $ }}) => {{
            await $`for w in $(seq 1 600); do [ -e {between} ] && break; sleep 0.1; done`;
            return true;
          }})],
          run: async ({{ $ }}) => {{
            await $`echo second starts; for w in $(seq 1 600); do [ -e {second} ] && break; sleep 0.1; done; echo second ends`;
          }},
        }}),
      ],
    }}),
  ],
}});
"#,
        first = markers.first.display(),
        between = markers.between.display(),
        second = markers.second.display(),
    )
}

/// Pushes [`two_steps`] and waits until the Platform can serve the first step's first line;
/// the run id.
async fn stepping(stack: &Stack, repo: &Repo, markers: &Markers) -> String {
    repo.write(".kici/workflows/stepper.ts", &two_steps(markers));
    repo.compile();
    repo.commit_and_push("two steps that wait for the test");
    let run_id = stack.push("app", repo, "stepper").await.remove(0);
    stack
        .wait_for("the first step's first line", || async {
            let (_, body) = stack.platform_get(&format!("/api/v1/runs/{run_id}/logs")).await;
            body.to_string().contains("first starts").then_some(())
        })
        .await;
    run_id
}

/// The name, status, open state, lines and notice of each step section in the log pane.
const STATE: &str = "return [...document.querySelectorAll(arguments[0])].map(d => [d.querySelector('.step-name').textContent, d.dataset.status, d.open, [...d.querySelectorAll('.ln')].map(l => l.textContent.trim()), d.querySelector('.notice')?.textContent ?? null]);";

/// Followed live, a job moves from step to step: the step that ends gets its notice, the next
/// one opens and streams in its place, even when it starts only after the page saw the first
/// one end, and after polls failed meanwhile. A stream that connects again (asking from where
/// it first started) adds no line twice.
#[tokio::test]
async fn a_job_followed_live_moves_from_step_to_step() {
    let Some(browser) = Browser::start().await else { return };
    let (stack, repo) = stack(&[], true).await;
    let markers = Markers::new(&stack);
    let run_id = stepping(&stack, &repo, &markers).await;
    sign_in(&browser, &stack, PLATFORM_ADMIN_TOKEN).await;
    browser.goto(&format!("{}/runs/{run_id}", stack.platform_url())).await;
    let streaming = browser
        .wait_for(
            "the first step streaming",
            "const d = document.querySelector(arguments[0]); return d && d.open && d.innerText.includes('first starts') && !document.getElementById('log-badge').hidden;",
            json!([SECTION]),
        )
        .await;
    assert_eq!(streaming, true);
    assert_eq!(
        browser.eval(STATE, json!([SECTION])).await,
        json!([["first", "running", true, ["first starts"], null]])
    );
    // From now on each step stream is opened twice, the second connection delivering to the
    // first one's handler: what a reconnect does, as it asks for the same `afterLineCount`.
    browser
        .eval(
            "const Real = window.EventSource;
             window.EventSource = class extends Real {
               constructor(url) {
                 super(url);
                 this.again = new Real(url);
                 this.again.onmessage = (event) => this.onmessage?.(event);
               }
               close() { this.again.close(); super.close(); }
             };
             return true;",
            json!([]),
        )
        .await;
    std::fs::write(&markers.first, "").unwrap();
    // The page sees the first step end while the second has not started.
    let ended = browser
        .wait_for(
            "the first step's notice",
            "const d = document.querySelector(arguments[0]); return document.getElementById('log-badge').hidden && d.querySelector('.notice')?.textContent;",
            json!([SECTION]),
        )
        .await;
    assert_eq!(ended, "Step finished: success");
    assert_eq!(
        browser.eval(STATE, json!([SECTION])).await,
        json!([[
            "first",
            "success",
            true,
            ["first starts", "first ends"],
            "Step finished: success"
        ]])
    );
    // Two polls fail (the Platform unreachable); the ones after them still work. (Whether a
    // failure goes unhandled cannot be told here: under ChromeDriver the page gets no
    // `unhandledrejection` events.)
    browser
        .eval(
            "window.failedPolls = 0;
             const real = window.fetch;
             window.fetch = (url, init) => {
               if (window.failedPolls < 2 && String(url).endsWith('/detail')) {
                 window.failedPolls += 1;
                 return Promise.reject(new TypeError('Failed to fetch'));
               }
               return real(url, init);
             };
             return true;",
            json!([]),
        )
        .await;
    browser
        .wait_for("two failed polls", "return window.failedPolls === 2;", json!([]))
        .await;
    std::fs::write(&markers.between, "").unwrap();
    let moved = browser
        .wait_for(
            "the second step streaming in the first one's place",
            "const [a, b] = document.querySelectorAll(arguments[0]);
             return b && a.querySelector('.notice')?.textContent === 'Step finished: success' && b.open && b.innerText.includes('second starts') && !document.getElementById('log-badge').hidden;",
            json!([SECTION]),
        )
        .await;
    assert_eq!(moved, true);
    assert_eq!(
        browser.eval(STATE, json!([SECTION])).await,
        json!([
            [
                "first",
                "success",
                true,
                ["first starts", "first ends"],
                "Step finished: success"
            ],
            ["second", "running", true, ["second starts"], null]
        ])
    );
    std::fs::write(&markers.second, "").unwrap();
    let ended = browser
        .wait_for(
            "the second step's notice",
            "const b = document.querySelectorAll(arguments[0])[1]; return document.getElementById('log-badge').hidden && b.querySelector('.notice')?.textContent;",
            json!([SECTION]),
        )
        .await;
    assert_eq!(ended, "Step finished: success");
    assert_eq!(
        browser.eval(STATE, json!([SECTION])).await,
        json!([
            [
                "first",
                "success",
                true,
                ["first starts", "first ends"],
                "Step finished: success"
            ],
            [
                "second",
                "success",
                true,
                ["second starts", "second ends"],
                "Step finished: success"
            ]
        ])
    );
}

/// A running step opened in the tree that ends before its stored lines arrive still gets the
/// lines it printed after them, and its notice.
#[tokio::test]
async fn a_step_that_ends_while_its_lines_load_gets_its_last_lines() {
    let Some(browser) = Browser::start().await else { return };
    let (stack, repo) = stack(&[], true).await;
    let markers = Markers::new(&stack);
    let run_id = stepping(&stack, &repo, &markers).await;
    std::fs::write(&markers.first, "").unwrap();
    std::fs::write(&markers.between, "").unwrap();
    let detail = stack
        .wait_for("the second step running, its first line stored", || async {
            let (_, logs) = stack.platform_get(&format!("/api/v1/runs/{run_id}/logs")).await;
            let (_, detail) = stack.platform_get(&format!("/api/v1/runs/{run_id}/detail")).await;
            let running = detail["jobs"][0]["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s["stepName"] == "second" && s["status"] == "running");
            (running && logs.to_string().contains("second starts")).then_some(detail)
        })
        .await;
    let job = &detail["jobs"][0];
    let index = |name: &str| {
        job["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stepName"] == name)
            .unwrap()["stepIndex"]
            .clone()
    };
    sign_in(&browser, &stack, PLATFORM_ADMIN_TOKEN).await;
    // The address names the first step: the second, running, is neither open nor loaded.
    browser
        .goto(&format!(
            "{}/runs/{run_id}?job={}&step={}",
            stack.platform_url(),
            job["jobId"].as_str().unwrap(),
            index("first")
        ))
        .await;
    browser
        .wait_for(
            "the first step's lines",
            "const d = document.querySelector(arguments[0]); return d && d.open && d.innerText.includes('first ends');",
            json!([SECTION]),
        )
        .await;
    // The second step's stored lines are read now, and handed to the page only once it has
    // seen the step end.
    browser
        .eval(
            "const suffix = arguments[0];
             const real = window.fetch;
             const gate = new Promise((resolve) => { window.release = resolve; });
             window.held = false;
             window.fetch = async (url, init) => {
               const response = await real(url, init);
               if (!String(url).endsWith(suffix)) return response;
               const body = await response.text();
               window.held = true;
               await gate;
               return new Response(body, { status: response.status, headers: response.headers });
             };
             return true;",
            json!([format!("/steps/{}/logs", index("second"))]),
        )
        .await;
    browser.click("a.step[data-step-name=second]").await;
    browser
        .wait_for("the held lines", "return window.held;", json!([]))
        .await;
    std::fs::write(&markers.second, "").unwrap();
    browser
        .wait_for(
            "the page to see the second step end",
            "return document.querySelectorAll(arguments[0])[1]?.dataset.status === 'success';",
            json!([SECTION]),
        )
        .await;
    browser.eval("window.release(); return true;", json!([])).await;
    let ended = browser
        .wait_for(
            "the second step's notice",
            "return document.querySelectorAll(arguments[0])[1].querySelector('.notice')?.textContent;",
            json!([SECTION]),
        )
        .await;
    assert_eq!(ended, "Step finished: success");
    assert_eq!(
        browser.eval(STATE, json!([SECTION])).await,
        json!([
            ["first", "success", true, ["first starts", "first ends"], null],
            [
                "second",
                "success",
                true,
                ["second starts", "second ends"],
                "Step finished: success"
            ]
        ])
    );
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
    // The steps show from the cache, their lines do not.
    let sections = browser
        .eval(
            "return [...document.querySelectorAll(arguments[0])].map(d => [d.querySelector('.step-name').textContent, d.open, d.querySelectorAll('.ln').length]);",
            json!([SECTION]),
        )
        .await;
    assert_eq!(sections, json!([["prepare", false, 0], ["compile", true, 0]]));
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

/// A job that cannot check out its commit: the banner names the checkout and quotes the error
/// with its hint, as the run's failure reason.
#[tokio::test]
async fn a_checkout_failure_shows_in_the_banner_with_its_category_and_hint() {
    let Some(browser) = Browser::start().await else { return };
    let (mut stack, repo) = stack(&[], false).await;
    let runs = stack.push("app", &repo, "hello").await;
    // The orchestrator read the lock file at the push; the repository is gone when the agent
    // fetches the job's commit.
    let origin = repo.origin();
    std::fs::rename(&origin, origin.with_extension("moved")).unwrap();
    stack.start_agent("agent-1", &["linux"]).await;
    let detail = stack.wait_run(&runs[0]).await;
    let reason = detail.run.failure_reason.clone().unwrap();
    assert!(
        reason.contains("(hint: the source's path must stay readable"),
        "{reason}"
    );
    cached(&stack, &runs[0]).await;
    sign_in(&browser, &stack, PLATFORM_ADMIN_TOKEN).await;
    browser
        .goto(&format!("{}/runs/{}", stack.platform_url(), runs[0]))
        .await;
    let banner = browser
        .wait_for(
            "the failure banner",
            "const b = document.getElementById('failure-banner'); return b && [b.getAttribute('role'), b.querySelector('.category').textContent, b.querySelector('.reason').textContent];",
            json!([]),
        )
        .await;
    assert_eq!(banner, json!(["alert", "Source checkout failed", reason]));
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
    // A member, created with kici-admin against the Platform: reads, cannot cancel.
    let member_token = create_member(&stack, "rita");
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
    let rerun = client
        .post(format!("{}/api/v1/runs/{run_id}/rerun", stack.platform_url()))
        .bearer_auth(&member_token)
        .send()
        .await
        .unwrap();
    assert_eq!(rerun.status().as_u16(), 403);
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
        // Signing out posts the session's CSRF token with the header's form.
        browser.click("form[action='/logout'] button").await;
        browser
            .wait_for(
                "the sign-in page after signing out",
                "return location.pathname === '/login' && document.querySelector('input[name=token]') !== null;",
                json!([]),
            )
            .await;
        browser.goto(&format!("{}/runs/{run_id}", stack.platform_url())).await;
        browser
            .wait_for(
                "the sign-in page, the session being over",
                "return location.pathname === '/login';",
                json!([]),
            )
            .await;
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

#[tokio::test]
async fn the_agents_scalers_and_diagnostics_pages_show_what_the_orchestrator_reports() {
    let Some(browser) = Browser::start().await else { return };
    let config = tempfile::tempdir().unwrap();
    let path = config.path().join("scalers.yaml");
    std::fs::write(
        &path,
        "version: 1\nglobalMaxAgents: 3\nscalers:\n  - name: metal\n    type: bare-metal\n    maxAgents: 2\n    labelSets:\n      - labels: [scaled]\n        binaryPath: /nonexistent/kici-agent\n",
    )
    .unwrap();
    let path_text = path.display().to_string();
    let (mut stack, _repo) = stack(&[("KICI_SCALER_CONFIG_PATH", &path_text)], true).await;
    sign_in(&browser, &stack, PLATFORM_ADMIN_TOKEN).await;
    browser.goto(&format!("{}/agents", stack.platform_url())).await;
    let agents = browser
        .wait_for(
            "the agents table",
            "const t = document.querySelector('table.agents'); return t && t.innerText;",
            json!([]),
        )
        .await;
    let agents = agents.as_str().unwrap();
    assert!(
        agents.contains("agent-1") && agents.contains("connected") && agents.contains("linux"),
        "{agents}"
    );
    browser.goto(&format!("{}/scalers", stack.platform_url())).await;
    let scalers = browser.text("main").await.unwrap();
    assert!(scalers.contains("0 of 3 agents alive or starting"), "{scalers}");
    assert!(
        scalers.contains("metal") && scalers.contains("bare-metal") && scalers.contains("0 / 2"),
        "{scalers}"
    );
    assert!(scalers.contains("[scaled]"), "{scalers}");
    browser.goto(&format!("{}/diagnostics", stack.platform_url())).await;
    let diagnostics = browser.text("main").await.unwrap();
    assert!(diagnostics.contains("Database connectivity"), "{diagnostics}");
    // The host check of the scaler's missing binary, as `kici-admin diagnose` shows it.
    assert!(diagnostics.contains("scaler:metal"), "{diagnostics}");
    assert!(
        diagnostics.contains("binaryPath `/nonexistent/kici-agent` cannot be read"),
        "{diagnostics}"
    );
    // With the orchestrator gone, the pages say where the data would come from.
    stack.orchestrator.kill();
    stack
        .wait_for("the Platform to see the orchestrator offline", || async {
            let (_, body) = stack.platform_get("/api/v1/fleet").await;
            (body["orchestrators"][0]["online"] == false).then_some(())
        })
        .await;
    browser.goto(&format!("{}/agents", stack.platform_url())).await;
    let offline = browser.text("main").await.unwrap();
    assert!(
        offline.contains("This is served by the orchestrator, which is currently offline"),
        "{offline}"
    );
}

/// A job any owner must approve before it ships (`approval: true`).
const RELEASE_WORKFLOW: &str = r#"import { workflow, job, step, push } from '@kici-dev/sdk';

export default workflow('release', {
  on: push({ branches: 'release' }),
  jobs: [
    job('deploy', {
      runsOn: 'kici:os:linux',
      approval: true,
      steps: [
        step('ship', async ({ $ }) => {
          await $`echo shipped`;
        }),
      ],
    }),
  ],
});
"#;

/// Pushes the release workflow and waits until the Platform has its job held, with the
/// `orchestrator.job.held` event the banner is made from; the run id.
async fn held_release(stack: &Stack, repo: &Repo) -> String {
    repo.write(".kici/workflows/release.ts", RELEASE_WORKFLOW);
    repo.compile();
    repo.commit_and_push("a job that waits for approval");
    let run_id = stack.push("app", repo, "release").await.remove(0);
    stack
        .wait_for("the Platform to have the job held", || async {
            let (_, jobs) = stack.platform_get(&format!("/api/v1/runs/{run_id}/jobs")).await;
            let (_, events) = stack.platform_get(&format!("/api/v1/runs/{run_id}/events")).await;
            let held_event = events["events"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["eventType"] == "orchestrator.job.held");
            (jobs["jobs"][0]["status"] == "held" && held_event).then_some(())
        })
        .await;
    run_id
}

/// The queue's row of `run_id` has loaded.
async fn queue_row(browser: &Browser, run_id: &str) -> Value {
    browser
        .wait_for(
            "the held job in the approval queue",
            "const row = document.querySelector(`#pending-holds tr[data-run-id='${arguments[0]}']`); return row && row.innerText;",
            json!([run_id]),
        )
        .await
}

#[tokio::test]
async fn an_owner_follows_the_held_banner_to_the_queue_approves_and_the_run_succeeds() {
    let Some(browser) = Browser::start().await else { return };
    let (stack, repo) = stack(&[], true).await;
    let run_id = held_release(&stack, &repo).await;
    sign_in(&browser, &stack, PLATFORM_ADMIN_TOKEN).await;
    assert_eq!(browser.text("#approvals-count").await.as_deref(), Some("1"));
    browser.goto(&format!("{}/runs/{run_id}", stack.platform_url())).await;
    let banner = browser
        .wait_for(
            "the held banner",
            "const el = document.getElementById('held-banner'); return el && el.innerText;",
            json!([]),
        )
        .await;
    let banner = banner.as_str().unwrap();
    assert!(
        banner.starts_with("Waiting for approval: deploy (job) — any owner may approve — expires in "),
        "{banner}"
    );
    assert_eq!(
        browser
            .text("details.job[data-status=held] .status-held")
            .await
            .as_deref(),
        Some("held")
    );

    browser.click("#held-banner a").await;
    browser
        .wait_for(
            "the queue of this run",
            "return location.pathname === '/approvals' && location.search === `?runId=${arguments[0]}`;",
            json!([run_id]),
        )
        .await;
    let row = queue_row(&browser, &run_id).await;
    let row = row.as_str().unwrap();
    assert!(
        row.contains("release") && row.contains("deploy") && row.contains("any owner"),
        "{row}"
    );
    browser
        .click(&format!("#pending-holds tr[data-run-id='{run_id}'] [data-approve]"))
        .await;
    let done = stack.wait_run(&run_id).await;
    assert_eq!(
        done.run.status,
        kici_engine::status::RunStatus::Success,
        "{:?}",
        done.run.failure_reason
    );
    // The page shows the queue as it is after the decision.
    let decided = browser
        .wait_for(
            "the approval among the decided holds",
            "const t = document.getElementById('decided-holds'); return t && t.innerText.includes('approved') && t.innerText;",
            json!([]),
        )
        .await;
    assert!(decided.as_str().unwrap().contains("admin"), "{decided}");
}

#[tokio::test]
async fn a_member_sees_the_queue_without_buttons_and_may_not_approve() {
    let (stack, repo) = stack(&[], false).await;
    let run_id = held_release(&stack, &repo).await;
    let member_token = create_member(&stack, "sam");
    let forged = reqwest::Client::new()
        .post(format!("{}/api/v1/runs/{run_id}/approve", stack.platform_url()))
        .bearer_auth(&member_token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    assert_eq!(
        forged.json::<Value>().await.unwrap()["error"]["message"],
        "Insufficient permission: environments.write needed"
    );
    if let Some(browser) = Browser::start().await {
        sign_in(&browser, &stack, &member_token).await;
        browser.goto(&format!("{}/approvals", stack.platform_url())).await;
        let row = queue_row(&browser, &run_id).await;
        assert!(row.as_str().unwrap().contains("deploy"), "{row}");
        let buttons = browser
            .eval(
                "return document.querySelectorAll('[data-approve], form[data-reject]').length;",
                json!([]),
            )
            .await;
        assert_eq!(buttons, json!(0), "a member sees no Approve or Reject");
        assert!(
            browser
                .text("main")
                .await
                .unwrap()
                .contains("Only owners may approve or reject.")
        );
        // The same POST from the member's own page, with its session and CSRF token.
        let status = browser
            .eval(
                "return fetch(`/api/v1/runs/${arguments[0]}/approve`, {method: 'POST', headers: {'content-type': 'application/json', 'x-csrf-token': document.querySelector('meta[name=csrf-token]').content}, body: '{}'}).then((r) => r.status);",
                json!([run_id]),
            )
            .await;
        assert_eq!(status, json!(403));
    }
    assert_eq!(
        stack.detail(&run_id).await.jobs[0].status,
        kici_engine::status::JobStatus::Held
    );
}

#[tokio::test]
async fn an_owner_rejects_with_a_reason_and_the_run_page_says_who_and_why() {
    let Some(browser) = Browser::start().await else { return };
    let (stack, repo) = stack(&[], false).await;
    let run_id = held_release(&stack, &repo).await;
    sign_in(&browser, &stack, PLATFORM_ADMIN_TOKEN).await;
    browser.goto(&format!("{}/approvals", stack.platform_url())).await;
    queue_row(&browser, &run_id).await;
    let row = format!("#pending-holds tr[data-run-id='{run_id}']");
    browser
        .type_into(&format!("{row} input[name=reason]"), "freeze week")
        .await;
    browser
        .click(&format!("{row} form[data-reject] button[type=submit]"))
        .await;
    let rejected = stack.wait_run(&run_id).await;
    assert_eq!(rejected.run.status, kici_engine::status::RunStatus::Failed);
    cached(&stack, &run_id).await;
    browser.goto(&format!("{}/runs/{run_id}", stack.platform_url())).await;
    let category = browser
        .wait_for(
            "the rejection banner",
            "const el = document.querySelector('#failure-banner .category'); return el && el.textContent;",
            json!([]),
        )
        .await;
    assert_eq!(category, json!("Rejected by environment protection rules"));
    assert_eq!(
        browser.text("#failure-banner .reason").await.as_deref(),
        Some("Approval rejected for job hold by admin: freeze week")
    );
    assert_eq!(
        browser
            .eval("return document.getElementById('held-banner') === null;", json!([]))
            .await,
        Value::Bool(true)
    );
}

const MASKED_CANARY: &str = "page-canary-1f2e3d4c5b";

#[tokio::test]
async fn a_secret_a_step_prints_is_masked_on_the_run_page_and_in_the_platform_api() {
    let Some(browser) = Browser::start().await else { return };
    let (stack, repo) = stack(&[], true).await;
    let admin = |args: &[&str], input: &str| stack.cli_with_input("kici-admin", args, stack.dir.path(), input);
    admin(&["environment", "create", "staging"], "").expect_code(0);
    admin(&["secret", "set", "staging", "DEPLOY_KEY"], MASKED_CANARY).expect_code(0);
    repo.write(
        ".kici/workflows/masked.ts",
        "import { workflow, job, push } from '@kici-dev/sdk';\n\nexport default workflow('masked', {\n  on: push({ branches: 'masked' }),\n  jobs: [job('deploy', {\n    runsOn: 'linux',\n    environment: 'staging',\n    run: async ({ $, secrets }) => {\n      const key = await secrets.get('DEPLOY_KEY');\n      await $`echo deploying with ${key}`;\n      console.log(JSON.stringify({ key }), Buffer.from(key).toString('base64'));\n    },\n  })],\n});\n",
    );
    repo.compile();
    repo.commit_and_push("masked workflow");
    let detail = stack.push_and_wait("app", &repo, "masked").await;
    let run_id = detail.run.run_id.to_string();
    cached(&stack, &run_id).await;
    for path in ["", "/detail", "/logs", "/events"] {
        let (status, body) = stack.platform_get(&format!("/api/v1/runs/{run_id}{path}")).await;
        assert_eq!(status, 200, "{path}");
        assert!(!body.to_string().contains(MASKED_CANARY), "{path}: {body}");
    }

    sign_in(&browser, &stack, PLATFORM_ADMIN_TOKEN).await;
    browser.goto(&format!("{}/runs/{run_id}", stack.platform_url())).await;
    let log = browser
        .wait_for(
            "the step's log",
            "const t = document.getElementById('log').innerText; return t.includes('deploying with') && t;",
            json!([]),
        )
        .await;
    assert!(log.as_str().unwrap().contains("deploying with ***"), "{log}");
    let page = browser
        .eval("return document.documentElement.outerHTML;", json!([]))
        .await;
    assert!(
        !page.as_str().unwrap().contains(MASKED_CANARY),
        "the run page shows the secret"
    );
}

/// The design system: the sign-in page shows no navigation; the header marks the current page;
/// the theme follows the system until the toggle chooses light or dark, kept across pages;
/// each status has its own colours and icon (running spins); the tab's icon shows the run's
/// status; the live indicator says what it is.
#[tokio::test]
async fn the_theme_toggle_status_colours_and_icons_and_the_status_favicon() {
    let Some(browser) = Browser::start().await else { return };
    let (stack, repo) = stack(&[], true).await;
    let failed = stack.push_and_wait("app", &repo, "failing").await;
    cached(&stack, &failed.run.run_id).await;

    let title = failed.run.title.clone().expect("a pushed commit's title");
    assert_eq!(failed.run.actor.as_deref(), Some("KiCI Test"));

    browser.goto(&format!("{}/login", stack.platform_url())).await;
    let bare = browser
        .eval(
            "return [document.querySelector('nav') === null, document.getElementById('theme-toggle') !== null];",
            json!([]),
        )
        .await;
    assert_eq!(bare, json!([true, true]), "no navigation before signing in");
    sign_in(&browser, &stack, PLATFORM_ADMIN_TOKEN).await;
    assert_eq!(browser.text("nav a[aria-current=page]").await.as_deref(), Some("Runs"));
    // The list says what each run is about and who caused it.
    let row = browser
        .eval(
            "const r = document.querySelector(`tr[data-run-id='${arguments[0]}']`);
             return [r.querySelector('.title').textContent, r.querySelector('.sub').textContent, r.querySelector('.branch').textContent];",
            json!([failed.run.run_id]),
        )
        .await;
    assert_eq!(row, json!([title, "failing · push by KiCI Test", "failing"]));

    const THEME: &str = "return [document.documentElement.dataset.theme, localStorage.getItem('kici-theme'), \
        getComputedStyle(document.body).backgroundColor, document.getElementById('theme-toggle').getAttribute('aria-label')];";
    browser
        .eval("localStorage.clear(); location.reload(); return true;", json!([]))
        .await;
    browser
        .wait_for(
            "the runs list again",
            "return document.querySelector('table.runs') !== null;",
            json!([]),
        )
        .await;
    assert_eq!(
        browser.eval(THEME, json!([])).await,
        json!([
            "light",
            null,
            "rgb(255, 255, 255)",
            "Theme: follows the system (switch to light)"
        ])
    );
    browser.click("#theme-toggle").await;
    browser.click("#theme-toggle").await;
    assert_eq!(
        browser.eval(THEME, json!([])).await,
        json!([
            "dark",
            "dark",
            "rgb(13, 17, 23)",
            "Theme: dark (switch to the system's)"
        ])
    );
    browser.screenshot(&screenshots().join("runs-dark.png")).await;

    // Kept on the next page, which is painted dark from the start.
    browser
        .goto(&format!("{}/runs/{}", stack.platform_url(), failed.run.run_id))
        .await;
    browser
        .wait_for(
            "the failure banner",
            "return document.getElementById('failure-banner') !== null;",
            json!([]),
        )
        .await;
    assert_eq!(browser.eval(THEME, json!([])).await[0], "dark");
    let icon = browser
        .wait_for(
            "the tab's icon to show the status",
            "const l = document.querySelector('link[rel=icon]'); return l.dataset.status && [l.dataset.status, l.href.startsWith('data:image/svg+xml')];",
            json!([]),
        )
        .await;
    assert_eq!(icon, json!(["failed", true]));
    let header = browser
        .eval(
            "return [document.querySelector('.run-title').textContent, document.querySelector('.run-header .facts').textContent];",
            json!([]),
        )
        .await;
    assert_eq!(header[0], title.as_str());
    assert!(
        header[1]
            .as_str()
            .unwrap()
            .starts_with("push by KiCI Test · app · failing · "),
        "{header}"
    );
    browser.click(".run-header [data-copy]").await;
    browser
        .wait_for(
            "the copied notice",
            "const t = document.querySelector('.toast'); return t && t.textContent === 'Copied';",
            json!([]),
        )
        .await;
    browser.screenshot(&screenshots().join("run-failed-dark.png")).await;
    let live = browser
        .wait_for(
            "the live indicator",
            "const l = document.getElementById('live-label'); return l.textContent === 'Live' && !l.parentElement.hidden;",
            json!([]),
        )
        .await;
    assert_eq!(live, json!(true));
    browser.click("#theme-toggle").await;
    assert_eq!(
        browser.eval(THEME, json!([])).await[1],
        Value::Null,
        "back to the system's"
    );

    // Each status its own colours; an icon for each, a spinning ring while running.
    let statuses = browser
        .eval(
            "const out = {};
             for (const s of ['queued', 'waiting', 'running', 'success', 'failed', 'cancelled', 'skipped', 'held']) {
               const el = document.createElement('span');
               el.className = `status status-${s}`;
               el.textContent = s;
               document.body.append(el);
               const style = getComputedStyle(el), icon = getComputedStyle(el, '::before');
               out[s] = [style.color + ' ' + style.backgroundColor, icon.animationName, icon.maskImage !== 'none' || icon.webkitMaskImage !== 'none'];
               el.remove();
             }
             return out;",
            json!([]),
        )
        .await;
    let statuses = statuses.as_object().unwrap();
    let colours: std::collections::HashSet<&str> = statuses.values().map(|s| s[0].as_str().unwrap()).collect();
    assert_eq!(colours.len(), 8, "{statuses:?}");
    for (status, style) in statuses {
        if status == "running" {
            assert_eq!(style[1], "spin", "{status}: {style}");
        } else {
            assert_eq!(
                (style[1].as_str(), style[2].as_bool()),
                (Some("none"), Some(true)),
                "{status}: {style}"
            );
        }
    }
}

/// Sessions live in the Platform's database: a member stays signed in across a Platform
/// restart. Owners list users (CLI and the Users page, which members do not get) and remove
/// them there: the token stops working at once.
#[tokio::test]
async fn a_session_outlives_a_platform_restart_and_owners_list_and_remove_users() {
    let Some(browser) = Browser::start().await else { return };
    let (mut stack, _repo) = stack(&[], false).await;
    let token = create_member(&stack, "rita");
    sign_in(&browser, &stack, &token).await;
    stack.restart_platform();
    browser.goto(&format!("{}/runs", stack.platform_url())).await;
    let signed_in = browser
        .wait_for(
            "the runs list after the restart",
            "return document.querySelector('table.runs') !== null && [document.querySelector('.account .user').textContent, document.querySelector('nav a[href=\"/users\"]') === null];",
            json!([]),
        )
        .await;
    assert_eq!(
        signed_in,
        json!(["rita", true]),
        "still signed in; no Users link for a member"
    );
    let refused = reqwest::Client::new()
        .get(format!("{}/api/v1/users", stack.platform_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);

    let listed = std::process::Command::new(kici_testkit::binary("kici-admin"))
        .args([
            "--url",
            &stack.platform_url(),
            "--token",
            PLATFORM_ADMIN_TOKEN,
            "user",
            "list",
        ])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed.starts_with("NAME") && listed.lines().nth(1).is_some_and(|l| l.starts_with("rita  member")),
        "{listed}"
    );

    browser.click(".account button.link").await;
    browser
        .wait_for(
            "the sign-in page after signing out",
            "return document.querySelector('input[name=token]') !== null;",
            json!([]),
        )
        .await;
    sign_in(&browser, &stack, PLATFORM_ADMIN_TOKEN).await;
    browser.click("nav a[href='/users']").await;
    browser
        .wait_for(
            "rita's row",
            "return document.querySelector(\"tr[data-user='rita']\") !== null;",
            json!([]),
        )
        .await;
    browser
        .eval("window.confirm = () => true; return true;", json!([]))
        .await;
    browser.click("[data-remove-user='rita']").await;
    browser
        .wait_for(
            "the row to go",
            "return document.querySelector(\"tr[data-user='rita']\") === null && document.querySelector('.toast')?.textContent;",
            json!([]),
        )
        .await;
    let gone = reqwest::Client::new()
        .get(format!("{}/api/v1/runs", stack.platform_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status().as_u16(), 401, "a removed user's token stops working");
}

const GRAPH: &str = r#"import { workflow, job, push } from '@kici-dev/sdk';

const ok = async () => { console.log('ok'); };
export default workflow('graph', {
  on: push({ branches: 'graph' }),
  jobs: [
    job('lint', { runsOn: 'linux', run: ok }),
    job('test', { runsOn: 'linux', matrix: ['a', 'b', 'c'], needs: ['lint'], run: ok }),
    job('build', { runsOn: 'linux', needs: ['lint'], run: async () => { throw new Error('no compiler'); } }),
    job('deploy "<b>now</b>"', { runsOn: 'linux', needs: ['test', 'build'], run: ok }),
  ],
});
"#;

/// A stack with an agent, and a finished run of [`GRAPH`] the Platform has cached.
async fn graph_run() -> (Stack, kici_engine::api::RunDetail) {
    let (stack, repo) = stack(&[], true).await;
    repo.write(".kici/workflows/graph.ts", GRAPH);
    repo.compile();
    repo.commit_and_push("a graph");
    let run = stack.push_and_wait("app", &repo, "graph").await;
    cached(&stack, &run.run.run_id).await;
    (stack, run)
}

/// A browser signed in as the owner on the page of a finished [`GRAPH`] run; `None` without
/// Chromium.
async fn graph_run_page() -> Option<(Browser, Stack)> {
    let browser = Browser::start().await?;
    let (stack, run) = graph_run().await;
    sign_in(&browser, &stack, PLATFORM_ADMIN_TOKEN).await;
    browser
        .goto(&format!("{}/runs/{}", stack.platform_url(), run.run.run_id))
        .await;
    Some((browser, stack))
}

/// The job graph: a column per depth of `needs`, an edge per need, matrix children grouped as
/// "test (3)" and listed when opened; a node selects its job in the list and its log.
#[tokio::test]
async fn the_job_graph_groups_a_matrix_and_selects_jobs() {
    let Some((browser, _stack)) = graph_run_page().await else {
        return;
    };
    let columns = browser
        .wait_for(
            "the graph's edges",
            "const g = document.querySelector('.graph'); if (!g || g.querySelectorAll('svg.edges path').length < 4) return null;
             return [...g.querySelectorAll('.g-col')].map(c => [...c.querySelectorAll('.node')].map(n => [n.querySelector('.node-main').textContent.trim(), n.dataset.status]));",
            json!([]),
        )
        .await;
    assert_eq!(
        columns,
        json!([
            [["success lint", "success"]],
            [["success test (3)", "success"], ["failed build", "failed"]],
            [["skipped deploy \"<b>now</b>\"", "skipped"]]
        ])
    );
    let edges = browser
        .eval(
            "return [...document.querySelectorAll('.graph svg.edges path')].map(p => p.dataset.from + '>' + p.dataset.to).sort();",
            json!([]),
        )
        .await;
    assert_eq!(
        edges,
        json!([
            "build>deploy \"<b>now</b>\"",
            "lint>build",
            "lint>test",
            "test>deploy \"<b>now</b>\""
        ])
    );
    // A job's name is text, wherever it shows.
    let markup = browser
        .eval(
            "return document.querySelectorAll('.graph b, .tree b, .gantt b').length;",
            json!([]),
        )
        .await;
    assert_eq!(markup, 0);
    // The failed job is selected at first: its node is marked.
    let marked = browser
        .wait_for(
            "the failed job's node marked",
            "const n = document.querySelector('.graph .node.selected'); return n && n.dataset.job;",
            json!([]),
        )
        .await;
    assert_eq!(marked, "build");
    browser.click(".graph .node-group summary").await;
    browser.click(".graph .node-group li:nth-child(2) button").await;
    // Its one step opens with it.
    let selected = browser
        .wait_for(
            "test (b) selected",
            "const n = document.querySelector('.graph .node.selected'); const d = document.querySelectorAll(arguments[0]);
             return n && n.dataset.job === 'test' && d.length === 1 && d[0].open && d[0].innerText.includes('ok')
               && [document.getElementById('log-title').textContent, document.querySelector('.tree details.job.selected .job-name').textContent];",
            json!([SECTION]),
        )
        .await;
    assert_eq!(selected, json!(["test (b)", "test (b)"]));
    browser.screenshot(&screenshots().join("run-graph.png")).await;
}

/// Every page, light and dark, passes axe-core with no serious or critical violation.
#[tokio::test]
async fn every_page_passes_axe_with_no_serious_or_critical_violation() {
    let Some(browser) = Browser::start().await else { return };
    let (stack, run) = graph_run().await;
    let base = stack.platform_url();
    browser.goto(&format!("{base}/login")).await;
    let Some(found) = browser.accessibility_violations().await else {
        return;
    };
    assert_eq!(found, Vec::<String>::new(), "/login");
    sign_in(&browser, &stack, PLATFORM_ADMIN_TOKEN).await;
    let run_page = format!("/runs/{}", run.run.run_id);
    for theme in ["light", "dark"] {
        for path in [
            "/runs",
            &run_page,
            "/workflows",
            "/approvals",
            "/agents",
            "/scalers",
            "/diagnostics",
            "/users",
        ] {
            browser.goto(&format!("{base}{path}")).await;
            browser
                .eval("localStorage.setItem('kici-theme', arguments[0]); document.documentElement.dataset.theme = arguments[0]; return true;", json!([theme]))
                .await;
            if path == run_page {
                browser
                    .wait_for(
                        "the log",
                        "return document.querySelector('#log .ln') !== null;",
                        json!([]),
                    )
                    .await;
                for tab in ["timeline", "summary"] {
                    browser.click(&format!("[data-tab={tab}]")).await;
                    let found = browser.accessibility_violations().await.unwrap_or_default();
                    assert_eq!(found, Vec::<String>::new(), "{path} {tab} ({theme})");
                }
                browser.click("[data-tab=logs]").await;
            }
            let found = browser.accessibility_violations().await.unwrap_or_default();
            assert_eq!(found, Vec::<String>::new(), "{path} ({theme})");
        }
    }
}

/// The run page works from the keyboard: a graph node and a step are chosen with Enter, and
/// the log search moves between matches with Enter.
#[tokio::test]
async fn jobs_steps_and_the_log_search_work_from_the_keyboard() {
    let Some((browser, _stack)) = graph_run_page().await else {
        return;
    };
    browser
        .wait_for(
            "the log",
            "return document.querySelector('#log .ln') !== null;",
            json!([]),
        )
        .await;
    const ENTER: &str = "\u{E007}";
    browser.type_into(".graph .node[data-job=lint] .node-main", ENTER).await;
    let lint = browser
        .wait_for(
            "lint shown",
            "const d = document.querySelector(arguments[0]);
             return document.getElementById('log-title').textContent === 'lint' && d && d.open && d.innerText.includes('ok');",
            json!([SECTION]),
        )
        .await;
    assert_eq!(lint, true);
    // A step's header opens and closes its section with Enter.
    let header = format!("{SECTION} > summary");
    browser.type_into(&header, ENTER).await;
    assert_eq!(
        browser
            .eval("return document.querySelector(arguments[0]).open;", json!([SECTION]))
            .await,
        false
    );
    browser.type_into(&header, ENTER).await;
    assert_eq!(
        browser
            .eval("return document.querySelector(arguments[0]).open;", json!([SECTION]))
            .await,
        true
    );
    let build_step = "details.job[data-status=failed] a.step";
    browser
        .eval(
            &format!("document.querySelector('{build_step}').closest('details').open = true; return true;"),
            json!([]),
        )
        .await;
    browser.type_into(build_step, ENTER).await;
    browser
        .wait_for(
            "build's step chosen",
            "const d = document.querySelector(arguments[0]);
             return document.querySelector('a.step.selected')?.closest('details.job').dataset.status === 'failed'
               && document.getElementById('log-title').textContent === 'build' && d.open && d.innerText.includes('no compiler');",
            json!([SECTION]),
        )
        .await;
    browser.type_into("#log-search", "no compiler").await;
    browser.type_into("#log-search", ENTER).await;
    let found = browser
        .wait_for(
            "the match",
            "return document.getElementById('log-matches').textContent === '1 of 1';",
            json!([]),
        )
        .await;
    assert_eq!(found, true);
}

/// Clicks the run page's re-run button `which` (`all` or `failed`), confirms, and returns the
/// id of the run the page then moves to.
async fn rerun_from_page(browser: &Browser, which: &str, run_id: &str) -> String {
    browser
        .eval("window.confirm = () => true; return true;", json!([]))
        .await;
    browser.click(&format!("[data-rerun={which}]")).await;
    let path = browser
        .wait_for(
            "the new run's page",
            "return !location.pathname.endsWith(arguments[0]) && location.pathname.startsWith('/runs/') && location.pathname;",
            json!([run_id]),
        )
        .await;
    path.as_str().unwrap().trim_start_matches("/runs/").to_string()
}

/// "Re-run failed jobs" beside "Re-run": the new run runs `build` (failed) and `deploy` (needs
/// it) again and keeps `lint` and `test`, which say where they ran.
#[tokio::test]
async fn re_running_the_failed_jobs_keeps_the_others_and_says_where_they_ran() {
    let Some((browser, stack)) = graph_run_page().await else {
        return;
    };
    let buttons = browser
        .wait_for(
            "the re-run buttons",
            "const b = [...document.querySelectorAll('[data-rerun]')].map(b => [b.dataset.rerun, b.textContent]); return b.length === 2 && b;",
            json!([]),
        )
        .await;
    assert_eq!(buttons, json!([["failed", "Re-run failed jobs"], ["all", "Re-run"]]));
    let original = browser.current_url().await;
    let original = original
        .rsplit("/runs/")
        .next()
        .unwrap()
        .split(['?', '#'])
        .next()
        .unwrap()
        .to_string();
    let new_run = rerun_from_page(&browser, "failed", &original).await;
    stack.wait_run(&new_run).await;
    cached(&stack, &new_run).await;
    browser.goto(&format!("{}/runs/{new_run}", stack.platform_url())).await;
    let jobs = browser
        .wait_for(
            "the re-run's finished jobs",
            "const jobs = [...document.querySelectorAll('details.job')]; if (jobs.some(j => !['success', 'failed', 'skipped'].includes(j.dataset.status))) return null;
             return jobs.map(j => [j.querySelector('.job-name').textContent, j.dataset.status, j.querySelector('.badge.reused') !== null, j.querySelector('.reused-from a')?.getAttribute('href') ?? null]);",
            json!([]),
        )
        .await;
    let from = |job: &str| json!(format!("/runs/{original}?job={job}"));
    let detail = stack.detail(&original).await;
    let id = |name: &str| {
        detail
            .jobs
            .iter()
            .find(|j| j.job_name == name)
            .unwrap()
            .job_id
            .to_string()
    };
    assert_eq!(
        jobs,
        json!([
            ["lint", "success", true, from(&id("lint"))],
            ["test (a)", "success", true, from(&id("test (a)"))],
            ["test (b)", "success", true, from(&id("test (b)"))],
            ["test (c)", "success", true, from(&id("test (c)"))],
            ["build", "failed", false, null],
            ["deploy \"<b>now</b>\"", "skipped", false, null]
        ])
    );
}

/// The Agents page lists the jobs waiting for an agent and why each waits.
#[tokio::test]
async fn the_agents_page_says_why_a_job_waits() {
    let Some(browser) = Browser::start().await else { return };
    let (stack, repo) = stack(&[], false).await;
    let run_id = stack.push("app", &repo, "no-agent").await.remove(0);
    sign_in(&browser, &stack, PLATFORM_ADMIN_TOKEN).await;
    browser.goto(&format!("{}/agents", stack.platform_url())).await;
    let row = browser
        .wait_for(
            "the waiting job",
            "const r = document.querySelector('table.waiting tbody tr'); return r && [r.querySelector('a').getAttribute('href').split('?')[0], r.querySelector('a').textContent, r.querySelector('.why').textContent];",
            json!([]),
        )
        .await;
    assert_eq!(
        row,
        json!([
            format!("/runs/{run_id}"),
            "gpu-job",
            "no agent with labels no-such-label is connected and no auto-scaler is configured (hint: start an agent with these labels, or configure a scaler)"
        ])
    );
}
