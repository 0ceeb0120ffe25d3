//! Recording a timeline event: stored, then forwarded to the dashboard.

use kici_engine::api::RunEvent;
use kici_store::{NewRunEvent, StoreError};

use crate::state::Shared;

pub async fn record(state: &Shared, event: NewRunEvent) -> Result<(), StoreError> {
    state.store.insert_run_event(&event).await?;
    state.platform.event(RunEvent {
        title: event.event_type.title().to_string(),
        event_id: event.event_id,
        run_id: event.run_id,
        job_id: event.job_id,
        event_type: event.event_type,
        source_service: event.source_service,
        timestamp_ms: event.timestamp_ms,
        metadata: event.metadata,
    });
    Ok(())
}
