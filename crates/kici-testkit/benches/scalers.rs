//! Auto-scaler benchmarks with release binaries: how long a spawned agent takes from the spawn
//! decision to its registration (median of 10, bare-metal and — when Podman's API socket is up —
//! container), and five simultaneous webhooks served by a bare-metal scaler of four agents
//! (first webhook sent → all five runs `success`).
//!
//! Run `scripts/bench.sh` (it builds the release binaries and the agent image first). The
//! spawn latency is the `spawnToRegisteredMs` the orchestrator logs for each spawned agent.

use std::path::Path;
use std::time::{Duration, Instant};

use kici_engine::status::RunStatus;
use kici_testkit::{Repo, Stack, binary};

const SPAWNS: usize = 10;
/// The TypeScript original: five simultaneous webhooks with one static agent.
const REFERENCE_FIVE_WEBHOOKS_S: f64 = 6.58;
const PODMAN_SOCKET: &str = "/run/podman/podman.sock";

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    values[values.len() / 2]
}

async fn stack_with(yaml: &str) -> (Stack, Repo, tempfile::TempDir) {
    let config = tempfile::tempdir().expect("temp dir");
    let path = config.path().join("scalers.yaml");
    std::fs::write(&path, yaml).expect("scalers.yaml");
    let stack = Stack::start_with(&[("KICI_SCALER_CONFIG_PATH", &path.display().to_string())]).await;
    let repo = Repo::from_fixture(stack.dir.path(), "tests/e2e-repo");
    repo.push_to("scaled");
    stack.add_local_source("app", &repo).await;
    (stack, repo, config)
}

/// Runs `SPAWNS` one-job runs one after the other; the spawn → registered times in ms.
async fn spawn_latencies(stack: &Stack, repo: &Repo) -> Vec<f64> {
    for _ in 0..SPAWNS {
        let runs = Stack::run_ids(&stack.push_webhook("app", repo, "scaled").await);
        let detail = stack.wait_run(&runs[0]).await;
        assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
    }
    let log = stack.orchestrator.log_text();
    let values: Vec<f64> = log
        .lines()
        .filter(|line| line.contains("spawned successfully via"))
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|entry| entry["spawnToRegisteredMs"].as_f64())
        .collect();
    assert_eq!(values.len(), SPAWNS, "one registration per run");
    values
}

fn bare_metal_yaml(max_agents: u32) -> String {
    format!(
        "version: 1\nscalers:\n  - name: metal\n    type: bare-metal\n    maxAgents: {max_agents}\n    labelSets:\n      - labels: [scaled]\n        binaryPath: {}\n",
        binary("kici-agent").display()
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!("kici auto-scaler benchmarks (release binaries, SQLite)");
    let (stack, repo, _config) = stack_with(&bare_metal_yaml(4)).await;
    let bare_metal = median(spawn_latencies(&stack, &repo).await);
    println!("bare-metal spawn -> registered:      median {bare_metal:>7.1} ms (of {SPAWNS})");

    let started = Instant::now();
    let pushes = (0..5).map(|_| stack.push_webhook("app", &repo, "scaled"));
    let answers = futures_util::future::join_all(pushes).await;
    for answer in &answers {
        for run_id in Stack::run_ids(answer) {
            let detail = stack.wait_run(&run_id).await;
            assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
        }
    }
    let five = started.elapsed().as_secs_f64();
    println!(
        "5 simultaneous webhooks, bare-metal scaler of 4 agents: {:>7.1} ms   (TypeScript original, one static agent: {:.0} ms; {:.1}x faster)",
        five * 1000.0,
        REFERENCE_FIVE_WEBHOOKS_S * 1000.0,
        REFERENCE_FIVE_WEBHOOKS_S / five
    );
    drop(stack);

    if !Path::new(PODMAN_SOCKET).exists() {
        println!("container spawn -> registered:       skipped (no Podman API socket; run scripts/agent-image.sh)");
        return;
    }
    let yaml = format!(
        "version: 1\nscalers:\n  - name: pods\n    type: container\n    maxAgents: 4\n    socketPath: {PODMAN_SOCKET}\n    networkIsolation: false\n    labelSets:\n      - labels: [scaled]\n        image: localhost/kici-agent:dev\n        imagePullPolicy: Never\n        volumes: [\"/tmp:/tmp\"]\n"
    );
    let (stack, repo, _config) = stack_with(&yaml).await;
    let container = median(spawn_latencies(&stack, &repo).await);
    println!("container spawn -> registered:       median {container:>7.1} ms (of {SPAWNS}, Podman)");
    // Containers are removed after their job; give the last one time to go.
    tokio::time::sleep(Duration::from_secs(1)).await;
}
