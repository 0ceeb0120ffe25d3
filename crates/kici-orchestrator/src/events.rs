//! The run timeline: an event is stored, then forwarded to the dashboard. A handle, so the
//! parts that record milestones (progress, the scaler) need neither the whole state nor each
//! other.

use std::sync::Arc;

use kici_engine::api::RunEvent;
use kici_store::{NewRunEvent, Store, StoreError};

use crate::platform_link::PlatformLink;

#[derive(Clone)]
pub struct Timeline {
    store: Store,
    platform: Arc<PlatformLink>,
}

impl Timeline {
    pub fn new(store: Store, platform: Arc<PlatformLink>) -> Timeline {
        Timeline { store, platform }
    }

    pub async fn record(&self, event: NewRunEvent) -> Result<(), StoreError> {
        self.store.insert_run_event(&event).await?;
        self.platform.event(RunEvent {
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
}
