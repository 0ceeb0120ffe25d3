//! Background work started while serving — a webhook's processing that outlives its answer,
//! a reconnected agent's grace timer — owned here, so shutdown waits for it (within the
//! grace) instead of dropping it mid-write, and timers that have not fired are dropped at once.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

pub struct Tasks {
    running: Mutex<JoinSet<()>>,
    stopping: watch::Sender<bool>,
}

impl Default for Tasks {
    fn default() -> Tasks {
        Tasks {
            running: Mutex::new(JoinSet::new()),
            stopping: watch::Sender::new(false),
        }
    }
}

impl Tasks {
    fn running(&self) -> std::sync::MutexGuard<'_, JoinSet<()>> {
        // A panic while holding the lock leaves the set usable.
        self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `work` in the background; shutdown waits for it.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        let mut running = self.running();
        // Reap what finished, so the set holds only what runs.
        while running.try_join_next().is_some() {}
        running.spawn(work);
    }

    /// Runs `work` after `delay`, unless the orchestrator is stopping by then.
    pub fn spawn_after(&self, delay: Duration, work: impl Future<Output = ()> + Send + 'static) {
        let mut stopping = self.stopping.subscribe();
        self.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(delay) => work.await,
                _ = async { stopping.wait_for(|stopping| *stopping).await.map(|_| ()) } => {}
            }
        });
    }

    /// Drops the timers that have not fired and waits for the rest, up to `grace`, including
    /// work started while it waits (a webhook accepted during the HTTP drain); whatever still
    /// runs then is stopped.
    pub async fn shutdown(&self, grace: Duration) {
        self.stopping.send_replace(true);
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let mut running = std::mem::take(&mut *self.running());
            if running.is_empty() {
                return;
            }
            let drained =
                tokio::time::timeout_at(deadline, async { while running.join_next().await.is_some() {} }).await;
            if drained.is_err() {
                tracing::warn!(
                    tasks = running.len(),
                    "background work still running after the shutdown grace; stopped"
                );
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn shutdown_waits_for_work_and_drops_timers_that_have_not_fired() {
        let tasks = Tasks::default();
        let done = Arc::new(AtomicUsize::new(0));
        let work = done.clone();
        tasks.spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            work.fetch_add(1, Ordering::SeqCst);
        });
        let timer = done.clone();
        tasks.spawn_after(Duration::from_secs(60), async move {
            timer.fetch_add(10, Ordering::SeqCst);
        });
        tasks.shutdown(Duration::from_secs(10)).await;
        assert_eq!(
            done.load(Ordering::SeqCst),
            1,
            "the work finished, the timer never fired"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_also_waits_for_work_started_while_it_waits() {
        let tasks = Arc::new(Tasks::default());
        let done = Arc::new(AtomicUsize::new(0));
        let (inner_tasks, inner_done) = (tasks.clone(), done.clone());
        tasks.spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let late = inner_done.clone();
            inner_tasks.spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                late.fetch_add(1, Ordering::SeqCst);
            });
            inner_done.fetch_add(1, Ordering::SeqCst);
        });
        tasks.shutdown(Duration::from_secs(10)).await;
        assert_eq!(done.load(Ordering::SeqCst), 2, "the late work finished too");
    }
}
