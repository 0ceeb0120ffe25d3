//! Retention: finished runs (with their jobs, steps, queue entries and timeline), finished
//! deliveries, delivered internal events, event-log lines and expired dedup claims older than the configured age are
//! deleted, so the database does not grow forever.

use crate::{Result, Store, get, q};

/// What one pruning pass deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// The deleted runs, whose log files the caller removes.
    pub run_ids: Vec<String>,
    pub deliveries: u64,
    pub event_log: u64,
    /// Delivered internal events (dead ones stay until an operator retries or discards them).
    pub events: u64,
    pub claims: u64,
}

impl Store {
    /// Deletes what finished before `cutoff`: at most `max_runs` runs a call (oldest first, each
    /// with its rows in one transaction), and every finished delivery, delivered event and
    /// event-log line; plus the dedup claims expired at `now`. A run still going is never
    /// deleted, whatever its age.
    pub async fn prune(&self, cutoff: i64, now: i64, max_runs: i64) -> Result<Pruned> {
        let rows = sqlx::query(
            "SELECT run_id FROM runs WHERE completed_at IS NOT NULL AND completed_at < $1 ORDER BY completed_at LIMIT $2",
        )
        .bind(cutoff)
        .bind(max_runs)
        .fetch_all(&self.pool)
        .await
        .map_err(q("find old runs"))?;
        let mut pruned = Pruned::default();
        for row in &rows {
            let run_id: String = get(row, "run_id")?;
            let mut tx = self.begin().await.map_err(q("begin prune run"))?;
            // Jobs, their steps and queue entries go with the run (ON DELETE CASCADE).
            for statement in [
                "DELETE FROM run_events WHERE run_id = $1",
                "DELETE FROM runs WHERE run_id = $1",
            ] {
                sqlx::query(statement)
                    .bind(&run_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("prune run"))?;
            }
            tx.commit().await.map_err(q("commit prune run"))?;
            pruned.run_ids.push(run_id);
        }
        pruned.deliveries =
            sqlx::query("DELETE FROM webhook_deliveries WHERE status <> 'processing' AND updated_at < $1")
                .bind(cutoff)
                .execute(&self.pool)
                .await
                .map_err(q("prune deliveries"))?
                .rows_affected();
        pruned.event_log = sqlx::query("DELETE FROM event_log WHERE created_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await
            .map_err(q("prune event log"))?
            .rows_affected();
        pruned.events = sqlx::query("DELETE FROM kici_events WHERE status = 'delivered' AND updated_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await
            .map_err(q("prune events"))?
            .rows_affected();
        pruned.claims = sqlx::query("DELETE FROM dedup_cache WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(q("prune dedup claims"))?
            .rows_affected();
        Ok(pruned)
    }
}
