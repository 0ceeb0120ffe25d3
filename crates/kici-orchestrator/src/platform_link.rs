//! What the rest of the orchestrator tells the Platform link (`platform`): runs that changed,
//! live log lines and timeline events. Cheap and non-blocking; a no-op when no Platform is
//! configured. The link's session task drains it; nothing here knows about that task.

use std::collections::BTreeSet;
use std::sync::Mutex;

use kici_engine::api::{LogLine, RunEvent};
use kici_engine::ids::{JobId, RunId};
use kici_engine::platform_protocol::OrchestratorFrame;
use tokio::sync::{Notify, mpsc};

/// Live frames waiting for the connection; beyond this they are dropped.
const LIVE_BUFFER: usize = 1024;

/// What the rest of the orchestrator tells the link. Cheap and non-blocking; a no-op when no
/// Platform is configured.
pub struct PlatformLink {
    enabled: bool,
    dirty: Mutex<BTreeSet<RunId>>,
    wake: Notify,
    live: mpsc::Sender<OrchestratorFrame>,
    live_rx: Mutex<Option<mpsc::Receiver<OrchestratorFrame>>>,
}

impl PlatformLink {
    pub fn new(enabled: bool) -> PlatformLink {
        let (live, live_rx) = mpsc::channel(LIVE_BUFFER);
        PlatformLink {
            enabled,
            dirty: Mutex::new(BTreeSet::new()),
            wake: Notify::new(),
            live,
            live_rx: Mutex::new(Some(live_rx)),
        }
    }

    fn dirty(&self) -> std::sync::MutexGuard<'_, BTreeSet<RunId>> {
        self.dirty.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The live frames, for the one link session task that sends them.
    pub(crate) fn take_live(&self) -> Option<mpsc::Receiver<OrchestratorFrame>> {
        self.live_rx
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// The runs changed since the last call.
    pub(crate) fn take_dirty(&self) -> BTreeSet<RunId> {
        std::mem::take(&mut *self.dirty())
    }

    /// Marks runs to be sent again (a replay after reconnecting).
    pub(crate) fn mark_dirty(&self, run_ids: impl IntoIterator<Item = RunId>) {
        self.dirty().extend(run_ids);
    }

    /// Resolves when a run was marked changed.
    pub(crate) async fn changed(&self) {
        self.wake.notified().await;
    }

    /// Something about the run changed: its snapshot is sent again.
    pub fn run_changed(&self, run_id: &RunId) {
        if self.enabled {
            self.dirty().insert(run_id.clone());
            self.wake.notify_one();
        }
    }

    /// Step output just stored, for live viewers.
    pub fn log_chunk(&self, run_id: &RunId, job_id: &JobId, step_index: i64, lines: Vec<LogLine>) {
        if self.enabled {
            // Dropped when full: live viewers miss them, reads through the Platform do not.
            let _ = self.live.try_send(OrchestratorFrame::LogChunk {
                run_id: run_id.clone(),
                job_id: job_id.clone(),
                step_index,
                lines,
            });
        }
    }

    /// A timeline event just stored.
    pub fn event(&self, event: RunEvent) {
        if self.enabled {
            // Dropped when full; the replay after the next reconnect sends the run's events again.
            let _ = self.live.try_send(OrchestratorFrame::RunEvent(Box::new(event)));
        }
    }
}
