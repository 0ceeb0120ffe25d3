//! Webhook deliveries: the dedup cache (a delivery id, and a signed body, is processed once),
//! the durable record of each accepted delivery (written before it is answered, finished when
//! processing ends) and the event log (what became of each delivery).

use kici_engine::ids::{RunId, SourceId};
use sqlx::any::AnyRow;

use crate::{Result, Store, get, get_json, q, to_json};

/// A delivery to claim and record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub delivery_id: String,
    pub source_id: SourceId,
    pub event_type: String,
    /// The source id and the body's SHA-256: the same signed body under another delivery id is
    /// a replay.
    pub body_key: String,
    /// The normalized event as JSON, so processing can resume after a crash.
    pub normalized: String,
    pub created_at: i64,
}

/// An accepted delivery and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub delivery_id: String,
    pub source_id: SourceId,
    pub event_type: String,
    pub body_key: String,
    pub normalized: String,
    /// `processing`, then `processed`, `ignored` or `failed`.
    pub status: String,
    pub run_ids: Vec<RunId>,
    /// Why it was ignored, or why it failed.
    pub detail: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const DELIVERY_COLUMNS: &str =
    "delivery_id, source_id, event_type, body_key, normalized, status, run_ids, detail, created_at, updated_at";

fn row_to_delivery(row: &AnyRow) -> Result<DeliveryRecord> {
    Ok(DeliveryRecord {
        delivery_id: get(row, "delivery_id")?,
        source_id: crate::get_id(row, "source_id")?,
        event_type: get(row, "event_type")?,
        body_key: get(row, "body_key")?,
        normalized: get(row, "normalized")?,
        status: get(row, "status")?,
        run_ids: get_json(row, "run_ids")?.unwrap_or_default(),
        detail: get(row, "detail")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

/// One line of the event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLogEntry {
    pub id: String,
    pub delivery_id: String,
    pub source_id: SourceId,
    pub event_type: String,
    /// `processed`, `duplicate`, `lockfile_missing`, `lockfile_corrupt`, `failed`.
    pub status: String,
    pub run_ids: Vec<RunId>,
    pub error_message: Option<String>,
    pub created_at: i64,
}

impl Store {
    /// Claims the delivery's id and body until `expires_at` and records it as `processing`, in
    /// one transaction; `false` (and nothing written) when either is claimed already: a
    /// redelivery, or a replay of the same body under a new id.
    pub async fn claim_new_delivery(&self, delivery: &NewDelivery, expires_at: i64) -> Result<bool> {
        let now = delivery.created_at;
        let mut tx = self.begin().await.map_err(q("begin claim delivery"))?;
        for key in [&delivery.delivery_id, &delivery.body_key] {
            sqlx::query("DELETE FROM dedup_cache WHERE delivery_id = $1 AND expires_at <= $2")
                .bind(key)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(q("expire dedup entry"))?;
            let inserted = sqlx::query(
                "INSERT INTO dedup_cache (delivery_id, expires_at) VALUES ($1, $2) ON CONFLICT (delivery_id) DO NOTHING",
            )
            .bind(key)
            .bind(expires_at)
            .execute(&mut *tx)
            .await
            .map_err(q("claim delivery"))?;
            if inserted.rows_affected() != 1 {
                tx.rollback().await.map_err(q("roll back claim delivery"))?;
                return Ok(false);
            }
        }
        sqlx::query(
            "INSERT INTO webhook_deliveries (delivery_id, source_id, event_type, body_key, normalized, status, run_ids, detail, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'processing', '[]', NULL, $6, $6)
             ON CONFLICT (delivery_id) DO UPDATE SET source_id = $2, event_type = $3, body_key = $4, normalized = $5,
               status = 'processing', run_ids = '[]', detail = NULL, created_at = $6, updated_at = $6",
        )
        .bind(&delivery.delivery_id)
        .bind(delivery.source_id.as_str())
        .bind(&delivery.event_type)
        .bind(&delivery.body_key)
        .bind(&delivery.normalized)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(q("record delivery"))?;
        tx.commit().await.map_err(q("commit claim delivery"))?;
        Ok(true)
    }

    /// Records how a delivery ended.
    pub async fn finish_delivery(
        &self,
        delivery_id: &str,
        status: &str,
        run_ids: &[RunId],
        detail: Option<&str>,
        now: i64,
    ) -> Result<()> {
        sqlx::query("UPDATE webhook_deliveries SET status = $1, run_ids = $2, detail = $3, updated_at = $4 WHERE delivery_id = $5")
            .bind(status)
            .bind(to_json(&run_ids))
            .bind(detail)
            .bind(now)
            .bind(delivery_id)
            .execute(&self.pool)
            .await
            .map_err(q("finish delivery"))?;
        Ok(())
    }

    pub async fn get_delivery(&self, delivery_id: &str) -> Result<Option<DeliveryRecord>> {
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE delivery_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(delivery_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read delivery"))?;
        row.as_ref().map(row_to_delivery).transpose()
    }

    /// Deliveries still `processing`: after a crash, the ones to process again.
    pub async fn unfinished_deliveries(&self) -> Result<Vec<DeliveryRecord>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE status = 'processing' ORDER BY created_at"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(q("read unfinished deliveries"))?;
        rows.iter().map(row_to_delivery).collect()
    }

    /// The runs a delivery created.
    pub async fn runs_of_delivery(&self, delivery_id: &str) -> Result<Vec<RunId>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT run_id FROM runs WHERE delivery_id = $1 ORDER BY created_at")
            .bind(delivery_id)
            .fetch_all(&self.pool)
            .await
            .map_err(q("read runs of delivery"))?;
        Ok(ids.into_iter().map(RunId::from).collect())
    }

    /// Forgets a delivery's claims (its id and body), so a delivery that failed before any run
    /// was stored can be retried.
    pub async fn release_delivery(&self, delivery_id: &str, body_key: &str) -> Result<()> {
        sqlx::query("DELETE FROM dedup_cache WHERE delivery_id IN ($1, $2)")
            .bind(delivery_id)
            .bind(body_key)
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
        .bind(entry.source_id.as_str())
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
