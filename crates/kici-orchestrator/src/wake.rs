//! The signal that wakes the dispatcher: a job was queued, an agent joined or was freed, a
//! spawned agent is gone. A handle, so whoever frees capacity (the scaler included) can say so
//! without reaching the dispatcher or the state.

use std::sync::Arc;

use tokio::sync::Notify;

#[derive(Debug, Clone, Default)]
pub struct DispatchWake(Arc<Notify>);

impl DispatchWake {
    pub fn wake(&self) {
        self.0.notify_one();
    }

    /// Resolves at the next wake (or at once if one came since the last wait).
    pub async fn woken(&self) {
        self.0.notified().await;
    }
}
