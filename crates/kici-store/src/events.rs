//! The run timeline: milestones recorded beside status changes (provisioning an agent, queue
//! expiry), read back in time order.

use kici_engine::api::{RunEvent, RunEventType};
use kici_engine::ids::{JobId, RunId};
use sqlx::any::AnyRow;

use crate::{Result, Store, get, get_id, get_json, get_opt_id, q, to_json};

/// What a caller records; the store fills in the title when reading.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRunEvent {
    pub event_id: String,
    pub run_id: RunId,
    pub job_id: Option<JobId>,
    pub event_type: RunEventType,
    pub source_service: String,
    pub timestamp_ms: i64,
    pub metadata: serde_json::Value,
}

fn row_to_event(row: &AnyRow) -> Result<RunEvent> {
    let event_type = RunEventType::from(get::<String>(row, "event_type")?);
    Ok(RunEvent {
        event_id: get(row, "event_id")?,
        run_id: get_id(row, "run_id")?,
        job_id: get_opt_id(row, "job_id")?,
        title: event_type.title().to_string(),
        event_type,
        source_service: get(row, "source_service")?,
        timestamp_ms: get(row, "timestamp_ms")?,
        metadata: get_json(row, "metadata")?.unwrap_or(serde_json::Value::Null),
    })
}

impl Store {
    pub async fn insert_run_event(&self, event: &NewRunEvent) -> Result<()> {
        sqlx::query(
            "INSERT INTO run_events (event_id, run_id, job_id, event_type, source_service, timestamp_ms, metadata)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(&event.event_id)
        .bind(event.run_id.as_str())
        .bind(event.job_id.as_deref())
        .bind(event.event_type.as_str())
        .bind(&event.source_service)
        .bind(event.timestamp_ms)
        .bind(to_json(&event.metadata))
        .execute(&self.pool)
        .await
        .map_err(q("insert run event"))?;
        Ok(())
    }

    /// The run's events, oldest first (ties in insertion order of their ids).
    pub async fn run_events(&self, run_id: &RunId) -> Result<Vec<RunEvent>> {
        let rows = sqlx::query(
            "SELECT event_id, run_id, job_id, event_type, source_service, timestamp_ms, metadata
             FROM run_events WHERE run_id = $1 ORDER BY timestamp_ms, event_id",
        )
        .bind(run_id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(q("list run events"))?;
        rows.iter().map(row_to_event).collect()
    }
}
