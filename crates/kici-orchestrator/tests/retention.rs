//! Retention: finished runs older than `KICI_RETENTION_DAYS`, with their log files, go; a run
//! still going and a recent one stay; 0 keeps everything.

mod support;

use kici_engine::ids::{JobId, RunId};
use kici_engine::protocol::JobKind;
use kici_orchestrator::sweeper;
use kici_store::ReasonUpdate;
use support::{harnesses, new_entry, new_job, new_run};

const DAY_MS: i64 = 24 * 3600 * 1000;

#[tokio::test]
async fn runs_past_retention_go_with_their_logs() {
    for (days, pruned) in [("90", true), ("0", false)] {
        for (db, harness) in harnesses(&[("KICI_RETENTION_DAYS", days)]).await {
            let (state, store) = (&harness.state, &harness.state.store);
            for run in ["old", "recent", "going"] {
                let job = format!("{run}-j");
                store
                    .insert_run(
                        &new_run(run, None),
                        &[new_job(run, &job, "build", JobKind::Execute)],
                        &[new_entry(run, &job, None)],
                    )
                    .await
                    .unwrap();
                state
                    .logs
                    .append(
                        &RunId::from(run),
                        &JobId::from(&job),
                        0,
                        1,
                        &[(1, format!("{run} line"))],
                    )
                    .await
                    .unwrap();
            }
            let now = 200 * DAY_MS;
            for (run, at) in [("old", now - 91 * DAY_MS), ("recent", now - 89 * DAY_MS)] {
                store
                    .complete_run(
                        &RunId::from(run),
                        kici_engine::status::RunStatus::Success,
                        &ReasonUpdate::Clear,
                        at,
                    )
                    .await
                    .unwrap();
            }
            let removed = sweeper::prune(state, now).await.unwrap();
            let logs_of = |run: &str| state.config.data_dir.join("logs").join(run);
            assert_eq!(removed, usize::from(pruned), "{db} {days}");
            assert_eq!(
                store.get_run(&RunId::from("old")).await.unwrap().is_none(),
                pruned,
                "{db} {days}"
            );
            assert_eq!(!logs_of("old").exists(), pruned, "{db} {days}");
            for kept in ["recent", "going"] {
                assert!(
                    store.get_run(&RunId::from(kept)).await.unwrap().is_some(),
                    "{db} {days} {kept}"
                );
                assert!(logs_of(kept).exists(), "{db} {days} {kept}");
            }
        }
    }
}
