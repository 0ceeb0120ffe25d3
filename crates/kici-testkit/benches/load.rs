//! Figures at fleet size with simulated agents (`kici_testkit::load`), on release binaries.
//! Run through `scripts/load.sh`, which sets these (defaults in brackets):
//!
//! - `KICI_LOAD_SCENARIOS` [jobs,agents,logs,webhooks]: which to run.
//! - jobs: `KICI_LOAD_JOBS` [2000] no-op jobs (pushes of a `KICI_LOAD_MATRIX` [250]-job
//!   matrix) through
//!   `KICI_LOAD_ORCHESTRATORS` [1] orchestrators and `KICI_LOAD_AGENTS` [50] agents, with
//!   `KICI_LOAD_DISCONNECT` [0] chance per job of a dropped connection, `KICI_LOAD_KILL=1` to
//!   SIGKILL one orchestrator half-way, `KICI_LOAD_CHECK=1` to check every guarantee (each job
//!   once, every acknowledged log line readable from every live orchestrator) after timing.
//!   `KICI_LOAD_BACKLOG` [0] jobs no agent fits are queued first and wait throughout.
//! - agents: `KICI_LOAD_IDLE_AGENTS` [1000] connected agents heartbeating every 30 s; the
//!   orchestrator's CPU and RSS over `KICI_LOAD_SECONDS` [30] s, beside `KICI_LOAD_BACKLOG`
//!   [0] queued jobs none of them fits.
//! - logs: 40 jobs of 1 MiB of log lines each (10 agents); MB/s acknowledged.
//! - webhooks: `KICI_LOAD_WEBHOOKS` [1000] push webhooks at `KICI_LOAD_WEBHOOK_RATE` [200]/s;
//!   webhook → run created (the answer lists the run) p50 and p99.
//!
//! The database is SQLite unless `KICI_TEST_E2E_DATABASE=postgres`; object storage is S3 when
//! `KICI_TEST_S3_ENDPOINT` is set (several orchestrators need both).

use std::time::{Duration, Instant};

use kici_testkit::Stack;
use kici_testkit::load::{Fleet, JobsLoad, load_source, queue_backlog, register_agents, run_jobs, webhook_burst};

fn var<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn backend() -> &'static str {
    match std::env::var("KICI_TEST_E2E_DATABASE").as_deref() {
        Ok("postgres") => "PostgreSQL",
        _ => "SQLite",
    }
}

fn s3() -> bool {
    std::env::var("KICI_TEST_S3_ENDPOINT").is_ok()
}

/// Room for every job of a large scenario in the queue.
const ENV: [(&str, &str); 1] = [("KICI_QUEUE_MAX_DEPTH", "100000")];

async fn stack() -> Stack {
    if s3() {
        Stack::start_on_s3(None, &ENV).await.expect("an S3 server").0
    } else {
        Stack::start_with(&ENV).await
    }
}

/// Seconds of CPU the process used so far (user + system).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .map_or(0.0, |f| f.iter().filter_map(|t| t.parse::<f64>().ok()).sum());
    // USER_HZ is 100 on Linux.
    ticks / 100.0
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn jobs() {
    let orchestrators = var("KICI_LOAD_ORCHESTRATORS", 1usize);
    let total = var("KICI_LOAD_JOBS", 2000usize);
    let matrix = var("KICI_LOAD_MATRIX", 250usize).clamp(1, 256);
    let load = JobsLoad {
        orchestrators,
        agents: var("KICI_LOAD_AGENTS", 50),
        runs: total.div_ceil(matrix),
        matrix: total.min(matrix),
        disconnect_per_job: var("KICI_LOAD_DISCONNECT", 0.0),
        kill_one: var("KICI_LOAD_KILL", 0) == 1,
        chunks_per_job: 1,
        lines_per_chunk: 5,
        check_logs: var("KICI_LOAD_CHECK", 0) == 1,
        backlog: var("KICI_LOAD_BACKLOG", 0),
    };
    let report = run_jobs(&load, kici_sdk::build_info(), stack().await).await;
    println!(
        "jobs: {} no-op jobs{}, {} orchestrator(s), {} agents, {} drops, {} lost connections: {:.0} jobs/s ({:.1} s)",
        report.jobs,
        if load.backlog > 0 {
            format!(
                " beside {} waiting for an agent that never comes",
                load.backlog.div_ceil(matrix) * matrix
            )
        } else {
            String::new()
        },
        orchestrators,
        load.agents,
        report.drops,
        report.lost,
        report.jobs_per_second(),
        report.elapsed.as_secs_f64()
    );
    if load.check_logs {
        if report.problems.is_empty() {
            println!(
                "jobs: checked: every job ran once and succeeded; every acknowledged log line read back from every live orchestrator"
            );
        } else {
            println!("jobs: {} problems:", report.problems.len());
            for problem in report.problems.iter().take(20) {
                println!("  {problem}");
            }
            std::process::exit(1);
        }
    }
}

async fn idle_agents() {
    let count = var("KICI_LOAD_IDLE_AGENTS", 1000usize);
    let seconds = var("KICI_LOAD_SECONDS", 30u64);
    let stack = stack().await;
    let pid = stack.orchestrator.child.id();
    let backlog = var("KICI_LOAD_BACKLOG", 0usize);
    if backlog > 0 {
        let payload = load_source(&stack, 256).await;
        let port = stack.orchestrator.port;
        queue_backlog(stack.client(), port, &payload, 256, backlog)
            .await
            .expect("queue the backlog");
    }
    let agents = register_agents(&stack, &[stack.orchestrator.port], count, &kici_sdk::build_info()).await;
    let fleet = Fleet::start(agents);
    let deadline = Instant::now() + Duration::from_secs(120);
    while fleet.stats.connected.load(std::sync::atomic::Ordering::SeqCst) < count as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Registration is over; what is left is the steady state.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let used = cpu_seconds(pid) - before;
    println!(
        "agents: {} connected agents, heartbeat every 30 s{}: orchestrator {:.2} % of a core, RSS {:.0} MB (over {seconds} s)",
        fleet.stats.connected.load(std::sync::atomic::Ordering::SeqCst),
        if backlog > 0 {
            format!(", {} jobs none of them fits waiting", backlog.div_ceil(256) * 256)
        } else {
            String::new()
        },
        100.0 * used / seconds as f64,
        rss_mb(pid)
    );
}

async fn logs() {
    let load = JobsLoad {
        orchestrators: 1,
        agents: 10,
        runs: 2,
        matrix: 20,
        disconnect_per_job: 0.0,
        kill_one: false,
        // 1 MiB a job: 200 chunks of 50 lines of 100 bytes (a real agent's chunk).
        chunks_per_job: 200,
        lines_per_chunk: 50,
        check_logs: false,
        backlog: 0,
    };
    let report = run_jobs(&load, kici_sdk::build_info(), stack().await).await;
    let megabytes = (load.runs * load.matrix * load.chunks_per_job * load.lines_per_chunk * 100) as f64 / 1e6;
    println!(
        "logs: {megabytes:.0} MB of step log lines to {}: {:.1} MB/s",
        if s3() { "S3 (moto)" } else { "the local disk" },
        megabytes / report.elapsed.as_secs_f64()
    );
}

async fn webhooks() {
    let count = var("KICI_LOAD_WEBHOOKS", 1000usize);
    let rate = var("KICI_LOAD_WEBHOOK_RATE", 200usize);
    let stack = stack().await;
    let payload = load_source(&stack, 1).await;
    let mut took = webhook_burst(stack.client(), stack.orchestrator.port, &payload, count, rate)
        .await
        .expect("every webhook answered");
    took.sort();
    let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "webhooks: {count} at {rate}/s: webhook → run created p50 {:.1} ms, p99 {:.1} ms",
        at(0.50),
        at(0.99)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let scenarios = std::env::var("KICI_LOAD_SCENARIOS").unwrap_or_else(|_| "jobs,agents,logs,webhooks".into());
    println!(
        "database: {}; storage: {}",
        backend(),
        if s3() { "S3" } else { "filesystem" }
    );
    for scenario in scenarios.split(',') {
        match scenario.trim() {
            "jobs" => jobs().await,
            "agents" => idle_agents().await,
            "logs" => logs().await,
            "webhooks" => webhooks().await,
            other => {
                eprintln!("unknown scenario `{other}` (jobs, agents, logs, webhooks)");
                std::process::exit(2);
            }
        }
    }
}
