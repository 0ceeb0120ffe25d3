//! Webhook deliveries: the dedup cache (a delivery id is processed once) and the event log
//! (what became of each delivery).

use crate::{Result, Store, q, to_json};

/// One line of the event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLogEntry {
    pub id: String,
    pub delivery_id: String,
    pub source_id: String,
    pub event_type: String,
    /// `processed`, `duplicate`, `lockfile_missing`, `lockfile_corrupt`, `failed`.
    pub status: String,
    pub run_ids: Vec<String>,
    pub error_message: Option<String>,
    pub created_at: i64,
}

impl Store {
    /// Claims a delivery id until `expires_at`; `false` when it was already claimed and has
    /// not expired (a duplicate).
    pub async fn claim_delivery(&self, delivery_id: &str, now: i64, expires_at: i64) -> Result<bool> {
        sqlx::query("DELETE FROM dedup_cache WHERE delivery_id = $1 AND expires_at <= $2")
            .bind(delivery_id)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(q("expire dedup entry"))?;
        let inserted = sqlx::query(
            "INSERT INTO dedup_cache (delivery_id, expires_at) VALUES ($1, $2) ON CONFLICT (delivery_id) DO NOTHING",
        )
        .bind(delivery_id)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(q("claim delivery"))?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Forgets a claim, so a delivery that failed before any run was stored can be retried.
    pub async fn release_delivery(&self, delivery_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM dedup_cache WHERE delivery_id = $1")
            .bind(delivery_id)
            .execute(&self.pool)
            .await
            .map_err(q("release delivery"))?;
        Ok(())
    }

    pub async fn insert_event_log(&self, entry: &EventLogEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO event_log (id, delivery_id, source_id, event_type, status, matched_count, run_ids, error_message, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&entry.id)
        .bind(&entry.delivery_id)
        .bind(&entry.source_id)
        .bind(&entry.event_type)
        .bind(&entry.status)
        .bind(entry.run_ids.len() as i64)
        .bind(to_json(&entry.run_ids))
        .bind(&entry.error_message)
        .bind(entry.created_at)
        .execute(&self.pool)
        .await
        .map_err(q("insert event log"))?;
        Ok(())
    }

    /// The event-log entries of a delivery, oldest first.
    pub async fn event_log_for(&self, delivery_id: &str) -> Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT status, matched_count FROM event_log WHERE delivery_id = $1 ORDER BY created_at")
                .bind(delivery_id)
                .fetch_all(&self.pool)
                .await
                .map_err(q("read event log"))?;
        rows.iter()
            .map(|row| Ok((crate::get(row, "status")?, crate::get(row, "matched_count")?)))
            .collect()
    }
}
