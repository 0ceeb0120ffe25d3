//! Benchmark of the dashboard's run page in headless Chromium, with release binaries: the page
//! weight (the HTML, stylesheet and scripts as transferred) and, for a finished run whose step
//! printed 10,000 lines, the time to first render (`first-contentful-paint`) and until every
//! line is shown. Median of 5 loads. Run `scripts/bench.sh`; skipped without Chromium.

use kici_testkit::browser::Browser;
use kici_testkit::{PLATFORM_ADMIN_TOKEN, Repo, Stack};
use serde_json::json;

const LOADS: usize = 5;
const LINES: usize = 10_000;

const WORKFLOW: &str = r#"import { workflow, job, push } from '@kici-dev/sdk';

export default workflow('long-log', {
  on: push({ branches: 'long-log' }),
  jobs: [job('print', { runsOn: 'linux', run: async () => {
    for (let i = 1; i <= 10000; i++) console.log(`line ${i} of a long log, with some text to make it look real`);
  } })],
});
"#;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    values[values.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(browser) = Browser::start().await else { return };
    let mut stack = Stack::start_with_platform(&[]).await;
    stack.start_agent("bench-agent", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), "tests/e2e-repo");
    repo.write(".kici/workflows/long-log.ts", WORKFLOW);
    repo.compile();
    repo.commit_and_push("a long log");
    stack.add_local_source("app", &repo).await;
    let run = stack.push_and_wait("app", &repo, "long-log").await;
    let run_id = run.run.run_id.to_string();
    stack
        .wait_for("the Platform to cache the run", || async {
            let (status, body) = stack.platform_get(&format!("/api/v1/runs/{run_id}")).await;
            (status == 200 && body["run"]["status"] == "success").then_some(())
        })
        .await;

    browser.sign_in(&stack.platform_url(), PLATFORM_ADMIN_TOKEN).await;

    let (mut painted, mut shown, mut weight) = (Vec::new(), Vec::new(), 0.0);
    let page = format!("{}/runs/{run_id}", stack.platform_url());
    for _ in 0..LOADS {
        browser.goto(&page).await;
        let figures = browser
            .wait_for(
                "every line",
                "if (document.querySelectorAll('#log .ln').length < arguments[0]) return null;
                 const paint = performance.getEntriesByName('first-contentful-paint')[0];
                 const bytes = [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')]
                   .filter((e) => !e.name.includes('/api/'))
                   .reduce((sum, e) => sum + (e.encodedBodySize || 0), 0);
                 return [paint ? paint.startTime : 0, performance.now(), bytes];",
                json!([LINES]),
            )
            .await;
        painted.push(figures[0].as_f64().unwrap_or(0.0));
        shown.push(figures[1].as_f64().unwrap_or(0.0));
        weight = figures[2].as_f64().unwrap_or(0.0);
    }
    println!("dashboard run page benchmarks ({LOADS} loads, release binaries, headless Chromium)");
    println!(
        "page weight (HTML, CSS, JS):                  {:>6.1} KB",
        weight / 1024.0
    );
    println!(
        "run page, {LINES}-line log: first render      {:>6.1} ms",
        median(painted)
    );
    println!(
        "run page, {LINES}-line log: all lines shown   {:>6.1} ms",
        median(shown)
    );
}
