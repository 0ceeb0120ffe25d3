//! Cached timeline events (`run.event`, stored once per event id) and the orchestrator table
//! (who registered, online or not, last seen), which outlives connections so that staleness
//! is measured from the real last contact even across a Platform restart.

use kici_engine::api::RunEvent;
use sqlx::any::AnyRow;

use super::{Cache, Result, get, get_json, q, to_json};

/// An orchestrator as the cache remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrchestratorRecord {
    pub instance_id: String,
    pub version: String,
    pub url: String,
    pub connected: bool,
    /// Epoch ms of the last frame seen (or of the disconnect).
    pub last_seen_at: i64,
}

fn row_to_orchestrator(row: &AnyRow) -> Result<OrchestratorRecord> {
    Ok(OrchestratorRecord {
        instance_id: get(row, "instance_id")?,
        version: get(row, "version")?,
        url: get(row, "url")?,
        connected: get::<i64>(row, "connected")? != 0,
        last_seen_at: get(row, "last_seen_at")?,
    })
}

impl Cache {
    /// Stores a timeline event; an event id seen before is ignored (orchestrators replay).
    pub async fn insert_event(&self, event: &RunEvent) -> Result<()> {
        sqlx::query(
            "INSERT INTO run_events (event_id, run_id, timestamp_ms, event_json) VALUES ($1, $2, $3, $4)
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(&event.event_id)
        .bind(event.run_id.as_str())
        .bind(event.timestamp_ms)
        .bind(to_json(event))
        .execute(&self.pool)
        .await
        .map_err(q("insert run event"))?;
        Ok(())
    }

    /// The run's events, oldest first.
    pub async fn run_events(&self, run_id: &str) -> Result<Vec<RunEvent>> {
        let rows = sqlx::query("SELECT event_json FROM run_events WHERE run_id = $1 ORDER BY timestamp_ms, event_id")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await
            .map_err(q("list run events"))?;
        rows.iter().map(|row| get_json(row, "event_json")).collect()
    }

    /// Records (or updates) an orchestrator.
    pub async fn upsert_orchestrator(&self, record: &OrchestratorRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO orchestrators (instance_id, version, url, connected, last_seen_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (instance_id) DO UPDATE SET version = excluded.version, url = excluded.url,
               connected = excluded.connected, last_seen_at = excluded.last_seen_at",
        )
        .bind(&record.instance_id)
        .bind(&record.version)
        .bind(&record.url)
        .bind(i64::from(record.connected))
        .bind(record.last_seen_at)
        .execute(&self.pool)
        .await
        .map_err(q("upsert orchestrator"))?;
        Ok(())
    }

    /// Updates an orchestrator's liveness.
    pub async fn orchestrator_seen(&self, instance_id: &str, connected: bool, at: i64) -> Result<()> {
        sqlx::query("UPDATE orchestrators SET connected = $1, last_seen_at = $2 WHERE instance_id = $3")
            .bind(i64::from(connected))
            .bind(at)
            .bind(instance_id)
            .execute(&self.pool)
            .await
            .map_err(q("update orchestrator liveness"))?;
        Ok(())
    }

    pub async fn get_orchestrator(&self, instance_id: &str) -> Result<Option<OrchestratorRecord>> {
        sqlx::query(
            "SELECT instance_id, version, url, connected, last_seen_at FROM orchestrators WHERE instance_id = $1",
        )
        .bind(instance_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("read orchestrator"))?
        .map(|row| row_to_orchestrator(&row))
        .transpose()
    }

    /// At start nobody is connected yet: rows a previous process left "connected" become
    /// offline, keeping their last-seen time (the real last contact).
    pub async fn mark_all_offline(&self) -> Result<()> {
        sqlx::query("UPDATE orchestrators SET connected = 0 WHERE connected <> 0")
            .execute(&self.pool)
            .await
            .map_err(q("mark orchestrators offline"))?;
        Ok(())
    }
}
