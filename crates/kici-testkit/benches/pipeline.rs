//! Benchmark of the core loop with release binaries: webhook → run `success` latency for hello
//! world with a warm agent (median of 20), idle RSS of the orchestrator and the agent, the
//! peak RSS of the per-job Node runner, and webhook → `success` for a workflow importing an npm
//! package: cold (the agent installs and saves the dependency tarball) and warm (it restores it);
//! then the runs started without a push: `POST …/dispatch` → run created, an operator's event
//! (`POST /api/v1/admin/events`) → run created, and a run's end → the `workflowComplete()` run
//! it starts created (from the runs' own timestamps).
//!
//! Run `scripts/bench.sh` (it builds the release binaries first). Latency is measured from
//! before the webhook POST until the run reads `success` (polled every 2 ms).

use std::time::{Duration, Instant};

use kici_engine::status::RunStatus;
use kici_testkit::{Repo, Stack};
use serde_json::Value;

const RUNS: usize = 20;

/// The TypeScript original on this machine class (from the issue).
const REFERENCE: (f64, f64, f64, f64) = (1.34, 230.0, 205.0, 215.0);
/// The original's webhook → success with npm dependencies, cold and warm (lower bounds; issue 14).
const REFERENCE_DEPS: (f64, f64) = (12.9, 3.8);
/// Warm dependency runs measured.
const DEPS_RUNS: usize = 5;

const DEPS_WORKFLOW: &str = r#"import { workflow, job, push } from '@kici-dev/sdk';
import { greet } from 'greeter';

export default workflow('deps', {
  on: push({ branches: 'deps' }),
  jobs: [job('greet', { runsOn: 'linux', run: async () => { console.log(greet('CI')); } })],
});
"#;

fn rss_kb(pid: i32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Direct and indirect children of `pid` (the agent's Node runners).
fn descendants(pid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let parent = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if parent == Some(pid) {
            found.push(child);
        }
    }
    found
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    values[values.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mut stack = Stack::start().await;
    stack.start_agent("bench-agent", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), "tests/e2e-repo");
    repo.push_to("hello");
    stack.add_local_source("app", &repo).await;
    let agent_pid = stack.agents[0].pid();
    let orchestrator_pid = stack.orchestrator.pid();

    // Warm up: the first run pays for caches and lazy initialisation.
    run_once(&stack, &repo, agent_pid).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_orchestrator = rss_kb(orchestrator_pid, "VmRSS:").unwrap_or(0);
    let idle_agent = rss_kb(agent_pid, "VmRSS:").unwrap_or(0);

    let mut latencies = Vec::new();
    let mut node_peaks = Vec::new();
    for _ in 0..RUNS {
        let (latency, node_peak) = run_once(&stack, &repo, agent_pid).await;
        latencies.push(latency.as_secs_f64());
        node_peaks.push(node_peak as f64);
    }
    let latency = median(latencies);
    let node_peak_mb = median(node_peaks) / 1024.0;
    println!("kici core loop benchmarks ({RUNS} runs, release binaries, SQLite)");
    println!(
        "webhook -> run success (hello world, warm agent): median {:>6.1} ms   (TypeScript original: {:.0} ms; {:.1}x faster)",
        latency * 1000.0,
        REFERENCE.0 * 1000.0,
        REFERENCE.0 / latency
    );
    println!(
        "orchestrator idle RSS:                        {:>6.1} MB   (TypeScript original: {:.0} MB)",
        idle_orchestrator as f64 / 1024.0,
        REFERENCE.1
    );
    println!(
        "agent idle RSS:                               {:>6.1} MB   (TypeScript original: {:.0} MB)",
        idle_agent as f64 / 1024.0,
        REFERENCE.2
    );
    println!(
        "per-job Node runner peak RSS:                 {:>6.1} MB   (TypeScript original: {:.0} MB)",
        node_peak_mb, REFERENCE.3
    );

    // A workflow importing an npm package (a `file:` dependency: npm ci without downloads).
    repo.write_greeter_project(DEPS_WORKFLOW);
    repo.commit_and_push("an npm dependency");
    let (cold, _) = run_on(&stack, &repo, agent_pid, "deps").await;
    let mut warm = Vec::new();
    for n in 0..DEPS_RUNS {
        repo.write("README.md", &format!("run {n}\n"));
        repo.commit_and_push("another run");
        warm.push(run_on(&stack, &repo, agent_pid, "deps").await.0.as_secs_f64());
    }
    let warm = median(warm);
    println!(
        "webhook -> run success, npm deps, cold:       {:>6.1} ms   (TypeScript original: {:.1} s, with registry downloads)",
        cold.as_secs_f64() * 1000.0,
        REFERENCE_DEPS.0
    );
    println!(
        "webhook -> run success, npm deps, warm:       {:>6.1} ms   (TypeScript original: {:.1} s; {:.1}x faster)",
        warm * 1000.0,
        REFERENCE_DEPS.1,
        REFERENCE_DEPS.1 / warm
    );
    trigger_figures(&stack).await;
}

const TRIGGERS_WORKFLOW: &str = r#"import { workflow, job, dispatch, kiciEvent, workflowComplete } from '@kici-dev/sdk';

const hello = job('hello', { runsOn: 'linux', run: async () => { console.log('hello'); } });
export default [
  workflow('manual', { on: dispatch(), jobs: [hello] }),
  workflow('on-event', { on: kiciEvent({ name: 'bench' }), jobs: [hello] }),
  workflow('after-manual', { on: workflowComplete({ name: 'manual' }), jobs: [hello] }),
];
"#;

/// Dispatch → run created, operator event → run created, run end → `workflowComplete()` run
/// created: medians of [`RUNS`].
async fn trigger_figures(stack: &Stack) {
    let repo = Repo::from_fixture(stack.dir.path(), "tests/e2e-repo");
    repo.write(".kici/workflows/triggers.ts", TRIGGERS_WORKFLOW);
    repo.compile();
    repo.commit_and_push("triggers");
    stack.add_local_source("triggers", &repo).await;
    stack.push("triggers", &repo, "main").await;
    let (mut dispatched, mut emitted, mut chained) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let started = Instant::now();
        let run = stack
            .post(
                "/api/v1/workflows/manual/dispatch",
                &serde_json::json!({"source": "triggers"}),
            )
            .await;
        dispatched.push(started.elapsed().as_secs_f64());
        let run_id = run["runId"].as_str().expect("a dispatched run").to_string();
        let started = Instant::now();
        let answer = stack
            .post("/api/v1/admin/events", &serde_json::json!({"name": "bench"}))
            .await;
        emitted.push(started.elapsed().as_secs_f64());
        assert_eq!(answer["runIds"].as_array().map(Vec::len), Some(1), "{answer}");
        let manual = stack.wait_run(&run_id).await;
        let ended = manual.run.completed_at.expect("a finished run");
        let chained_run = stack
            .wait_for("the workflowComplete run", || async {
                let list = stack.get("/api/v1/runs?workflow=after-manual&limit=100").await;
                list["runs"].as_array()?.iter().find_map(|r| {
                    let created = r["createdAt"].as_i64()?;
                    (created >= ended).then_some(created)
                })
            })
            .await;
        chained.push((chained_run - ended) as f64 / 1000.0);
    }
    println!(
        "dispatch API -> run created:                  {:>6.1} ms   (no published figure of the original)",
        median(dispatched) * 1000.0
    );
    println!(
        "operator event -> run created:                {:>6.1} ms   (no published figure of the original)",
        median(emitted) * 1000.0
    );
    println!(
        "run end -> workflowComplete run created:      {:>6.1} ms   (no published figure of the original)",
        median(chained) * 1000.0
    );
}

/// One webhook → success round of hello world; the latency and the Node runner's peak RSS (KB).
async fn run_once(stack: &Stack, repo: &Repo, agent_pid: i32) -> (Duration, u64) {
    run_on(stack, repo, agent_pid, "hello").await
}

/// One webhook → success round of a push to `branch`.
async fn run_on(stack: &Stack, repo: &Repo, agent_pid: i32, branch: &str) -> (Duration, u64) {
    repo.push_to(branch);
    let started = Instant::now();
    let answer = stack.push_webhook("app", repo, branch).await;
    let run_id = Stack::run_ids(&answer).pop().expect("a run started");
    let mut node_peak = 0;
    loop {
        for child in descendants(agent_pid) {
            node_peak = node_peak.max(rss_kb(child, "VmHWM:").unwrap_or(0));
        }
        let detail: Value = stack.get(&format!("/api/v1/runs/{run_id}")).await;
        let status = detail["run"]["status"].as_str().unwrap_or_default().to_string();
        if status == RunStatus::Success.as_str() {
            return (started.elapsed(), node_peak);
        }
        assert!(
            !matches!(status.as_str(), "failed" | "cancelled"),
            "the benchmark run {run_id} ended {status}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
