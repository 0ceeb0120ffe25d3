//! The load harness's guarantees at a size CI can afford (`scripts/load.sh` runs the same at
//! fleet size and prints figures): every job reaches a terminal state once, none is dispatched
//! twice, and every acknowledged log line is read back from every live orchestrator, while
//! simulated agents drop their connections at random and, on PostgreSQL, an orchestrator is
//! SIGKILLed half-way.

use kici_testkit::Stack;
use kici_testkit::load::{JobsLoad, run_jobs};

fn load(orchestrators: usize, kill_one: bool) -> JobsLoad {
    JobsLoad {
        orchestrators,
        agents: 12,
        runs: 6,
        matrix: 50,
        disconnect_per_job: 0.05,
        kill_one,
        chunks_per_job: 3,
        lines_per_chunk: 5,
        check_logs: true,
        // Waiting the whole time, they must not hold up the others.
        backlog: 100,
    }
}

#[tokio::test]
async fn jobs_through_one_orchestrator_with_agents_dropping_run_once_with_their_logs() {
    let stack = Stack::start().await;
    let report = run_jobs(&load(1, false), kici_sdk::build_info(), stack).await;
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert!(report.drops > 0, "no agent dropped its connection: {report:?}");
}

#[tokio::test]
async fn jobs_through_three_orchestrators_survive_one_killed_half_way() {
    if std::env::var("KICI_TEST_E2E_DATABASE").as_deref() != Ok("postgres") {
        return;
    }
    let Some((stack, _, _)) = Stack::start_on_s3(None, &[]).await else {
        return;
    };
    let report = run_jobs(&load(3, true), kici_sdk::build_info(), stack).await;
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert!(report.lost > 0, "no agent lost its orchestrator: {report:?}");
}
