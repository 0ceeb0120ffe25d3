//! Runs that changed, for a task that follows them (the forge status reporter): a set drained
//! by the task and a wake-up. Cheap and non-blocking for whoever marks a run.

use std::collections::BTreeSet;
use std::sync::Mutex;

use kici_engine::ids::RunId;
use tokio::sync::Notify;

#[derive(Default)]
pub struct RunWatch {
    dirty: Mutex<BTreeSet<RunId>>,
    wake: Notify,
}

impl RunWatch {
    fn dirty(&self) -> std::sync::MutexGuard<'_, BTreeSet<RunId>> {
        self.dirty.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn changed(&self, run_id: &RunId) {
        self.dirty().insert(run_id.clone());
        self.wake.notify_one();
    }

    /// The runs changed since the last call.
    pub fn take(&self) -> BTreeSet<RunId> {
        std::mem::take(&mut *self.dirty())
    }

    /// Resolves when a run was marked changed.
    pub async fn wait(&self) {
        self.wake.notified().await;
    }
}
