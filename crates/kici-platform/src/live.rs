//! Live fan-out to browsers: step log lines relayed from `log.chunk` frames, and status events
//! (`run.status`, `orchestrator.online`/`offline`).
//!
//! Each step that has streamed keeps a [`StepRing`]: the last [`RING_LINES`] lines and the
//! cumulative number of lines the Platform has relayed for it (`lineCount`). A subscriber that
//! read the stored log over REST (N lines) subscribes with `afterLineCount = N` and gets lines
//! N.. from the ring, then every later batch, with no gap and no duplicate: the ring snapshot
//! and the channel subscription are taken under the same lock the relay appends under, and
//! each subscriber skips any line whose index it already delivered. A subscriber that falls
//! behind the channel is refilled from the ring; only lines already evicted from the ring are
//! reported as a gap.
//!
//! The counter starts at the first line the Platform sees for a step, so it equals the
//! orchestrator's stored line count when the Platform was connected from the step's first line
//! (the normal case). Not here: the HTTP side (`http::live`), storing lines (never: content
//! stays on the orchestrator).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};

use kici_engine::api::LogLine;
use kici_engine::status::RunStatus;
use serde::Serialize;
use tokio::sync::broadcast;

/// Lines kept per step for late subscribers.
pub const RING_LINES: usize = 1000;
/// Steps with live state kept at once; beyond it the least recently updated step is dropped
/// (its subscribers' streams end; a later chunk starts a new count).
pub const MAX_LIVE_STEPS: usize = 256;
/// Batches queued per step subscriber. When a subscriber is further behind, it is refilled
/// from the ring (or told about the gap), never waited for.
const STEP_CHANNEL: usize = 64;
/// Status events queued per subscriber; a slower one is told how many it missed so it can
/// refetch.
const STATUS_CHANNEL: usize = 1024;

/// One step of one job of one run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StepKey {
    pub run_id: String,
    pub job_id: String,
    pub step_index: i64,
}

/// Lines `first_line ..` of a step, as relayed together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogBatch {
    pub first_line: u64,
    pub lines: Vec<LogLine>,
}

/// The last lines of a step and its cumulative count.
#[derive(Debug, Clone)]
pub struct StepRing {
    lines: VecDeque<LogLine>,
    line_count: u64,
    capacity: usize,
    /// When it last changed, in the hub's logical clock (for eviction).
    touched: u64,
}

/// What a subscriber starting at some line gets from the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// Lines the subscriber asked for that the ring no longer holds.
    pub dropped: u64,
    /// The lines from `max(after, oldest retained)` to the end.
    pub lines: Vec<LogLine>,
    /// The cumulative count after `lines`.
    pub line_count: u64,
}

impl StepRing {
    pub fn new(capacity: usize) -> StepRing {
        StepRing {
            lines: VecDeque::with_capacity(capacity.min(64)),
            line_count: 0,
            capacity,
            touched: 0,
        }
    }

    pub fn line_count(&self) -> u64 {
        self.line_count
    }

    /// Index of the oldest line still held.
    fn first_retained(&self) -> u64 {
        self.line_count - self.lines.len() as u64
    }

    /// Appends `lines`; returns the index of the first one.
    pub fn push(&mut self, lines: &[LogLine]) -> u64 {
        let first = self.line_count;
        for line in lines {
            if self.lines.len() == self.capacity {
                self.lines.pop_front();
            }
            self.lines.push_back(line.clone());
        }
        // A capacity of 0 keeps nothing but still counts.
        self.lines.truncate(self.capacity);
        self.line_count += lines.len() as u64;
        first
    }

    /// Lines `after ..` (as far as the ring still holds them).
    pub fn since(&self, after: u64) -> Replay {
        let first_retained = self.first_retained();
        let start = after.max(first_retained);
        let lines = if start >= self.line_count {
            Vec::new()
        } else {
            self.lines
                .iter()
                .skip((start - first_retained) as usize)
                .cloned()
                .collect()
        };
        Replay {
            dropped: first_retained.saturating_sub(after),
            lines,
            line_count: self.line_count.max(after),
        }
    }
}

struct StepLive {
    ring: Mutex<StepRing>,
    sender: broadcast::Sender<Arc<LogBatch>>,
}

/// A status change browsers are told about (`GET /api/v1/events/live`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum StatusEvent {
    #[serde(rename = "run.status", rename_all = "camelCase")]
    RunStatus { run_id: String, status: RunStatus },
    #[serde(rename = "orchestrator.online", rename_all = "camelCase")]
    OrchestratorOnline { instance_id: String },
    #[serde(rename = "orchestrator.offline", rename_all = "camelCase")]
    OrchestratorOffline { instance_id: String },
}

/// The live state of every streaming step, and the status event channel.
pub struct LiveHub {
    steps: Mutex<HashMap<StepKey, Arc<StepLive>>>,
    clock: std::sync::atomic::AtomicU64,
    status: broadcast::Sender<StatusEvent>,
}

impl Default for LiveHub {
    fn default() -> LiveHub {
        LiveHub {
            steps: Mutex::new(HashMap::new()),
            clock: std::sync::atomic::AtomicU64::new(0),
            status: broadcast::channel(STATUS_CHANNEL).0,
        }
    }
}

impl LiveHub {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }

    /// The step's live state, created (evicting the stalest step when full) if new.
    fn step(&self, key: &StepKey) -> Arc<StepLive> {
        let mut steps = self.steps.lock().expect("live step map lock is never poisoned");
        if let Some(step) = steps.get(key) {
            return step.clone();
        }
        if steps.len() >= MAX_LIVE_STEPS {
            let stalest = steps
                .iter()
                .min_by_key(|(_, step)| lock(&step.ring).touched)
                .map(|(key, _)| key.clone());
            if let Some(stalest) = stalest {
                steps.remove(&stalest);
            }
        }
        let mut ring = StepRing::new(RING_LINES);
        ring.touched = self.tick();
        let step = Arc::new(StepLive {
            ring: Mutex::new(ring),
            sender: broadcast::channel(STEP_CHANNEL).0,
        });
        steps.insert(key.clone(), step.clone());
        step
    }

    /// Relays `lines` of a step to its subscribers; returns the step's new `lineCount`.
    pub fn relay(&self, key: &StepKey, lines: Vec<LogLine>) -> u64 {
        let step = self.step(key);
        let mut ring = lock(&step.ring);
        let first_line = ring.push(&lines);
        ring.touched = self.tick();
        let line_count = ring.line_count();
        // Sent under the ring lock, so a subscriber joining now sees each line exactly once:
        // in its ring snapshot or in the channel. No receiver is not an error.
        let _receivers = step.sender.send(Arc::new(LogBatch { first_line, lines }));
        line_count
    }

    /// Subscribes to a step: from `after_line_count` when given (replaying the ring), else
    /// from now on.
    pub fn subscribe(&self, key: &StepKey, after_line_count: Option<u64>) -> LogSubscription {
        let step = self.step(key);
        let ring = lock(&step.ring);
        let receiver = step.sender.subscribe();
        let mut pending = VecDeque::new();
        let delivered = match after_line_count {
            None => ring.line_count(),
            Some(after) => {
                let replay = ring.since(after);
                push_replay(&mut pending, replay)
            }
        };
        drop(ring);
        LogSubscription {
            step: Arc::downgrade(&step),
            receiver,
            pending,
            delivered,
        }
    }

    /// Tells status subscribers; nobody listening is fine.
    pub fn publish(&self, event: StatusEvent) {
        let _receivers = self.status.send(event);
    }

    pub fn subscribe_status(&self) -> broadcast::Receiver<StatusEvent> {
        self.status.subscribe()
    }
}

fn lock(ring: &Mutex<StepRing>) -> std::sync::MutexGuard<'_, StepRing> {
    // The ring is only touched by short, non-panicking sections; a poisoned lock still
    // holds a consistent ring.
    ring.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Queues a replay's gap and lines; returns the count delivered after it.
fn push_replay(pending: &mut VecDeque<LiveItem>, replay: Replay) -> u64 {
    let after_gap = replay.line_count - replay.lines.len() as u64;
    if replay.dropped > 0 {
        pending.push_back(LiveItem::Gap {
            dropped_line_count: replay.dropped,
            line_count: after_gap,
        });
    }
    if !replay.lines.is_empty() {
        pending.push_back(LiveItem::Lines {
            lines: replay.lines,
            line_count: replay.line_count,
        });
    }
    replay.line_count
}

/// What a step subscriber receives next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveItem {
    /// New lines; `line_count` is the cumulative count after them.
    Lines { lines: Vec<LogLine>, line_count: u64 },
    /// Lines that can no longer be sent (evicted from the ring before this subscriber read
    /// them); the next lines start at `line_count`.
    Gap { dropped_line_count: u64, line_count: u64 },
}

/// One subscriber of one step.
pub struct LogSubscription {
    /// Weak: dropping the step from the hub ends the subscription.
    step: Weak<StepLive>,
    receiver: broadcast::Receiver<Arc<LogBatch>>,
    pending: VecDeque<LiveItem>,
    /// Lines `0 .. delivered` were sent (or skipped as a gap).
    delivered: u64,
}

impl LogSubscription {
    /// The next item; `None` when the step's live state is gone.
    pub async fn next(&mut self) -> Option<LiveItem> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            match self.receiver.recv().await {
                Ok(batch) => {
                    if batch.first_line > self.delivered {
                        self.refill()?;
                    }
                    self.take(&batch);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => self.refill()?,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Queues the part of `batch` not delivered yet.
    fn take(&mut self, batch: &LogBatch) {
        let end = batch.first_line + batch.lines.len() as u64;
        if end <= self.delivered || batch.first_line > self.delivered {
            return;
        }
        let skip = (self.delivered - batch.first_line) as usize;
        self.pending.push_back(LiveItem::Lines {
            lines: batch.lines[skip..].to_vec(),
            line_count: end,
        });
        self.delivered = end;
    }

    /// Catches up from the ring after missing batches.
    fn refill(&mut self) -> Option<()> {
        let step = self.step.upgrade()?;
        let replay = lock(&step.ring).since(self.delivered);
        self.delivered = push_replay(&mut self.pending, replay);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(range: std::ops::Range<u64>) -> Vec<LogLine> {
        range
            .map(|i| LogLine {
                ts: i as i64,
                line: format!("line {i}"),
            })
            .collect()
    }

    #[test]
    fn ring_keeps_the_last_lines_and_counts_all() {
        let mut ring = StepRing::new(3);
        assert_eq!(ring.push(&lines(0..2)), 0);
        assert_eq!(ring.push(&lines(2..5)), 2);
        assert_eq!(ring.line_count(), 5);
        let check = |after: u64, dropped: u64, expected: std::ops::Range<u64>, line_count: u64| {
            assert_eq!(
                ring.since(after),
                Replay {
                    dropped,
                    lines: lines(expected),
                    line_count
                },
                "after {after}"
            );
        };
        check(0, 2, 2..5, 5);
        check(2, 0, 2..5, 5);
        check(4, 0, 4..5, 5);
        check(5, 0, 5..5, 5);
        // A subscriber ahead of the ring (the REST read saw lines still in flight).
        check(7, 0, 7..7, 7);
    }

    fn key() -> StepKey {
        StepKey {
            run_id: "run".into(),
            job_id: "job".into(),
            step_index: 0,
        }
    }

    async fn next_lines(subscription: &mut LogSubscription) -> (Vec<LogLine>, u64) {
        match tokio::time::timeout(std::time::Duration::from_secs(5), subscription.next()).await {
            Ok(Some(LiveItem::Lines { lines, line_count })) => (lines, line_count),
            other => panic!("expected lines, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn late_subscribers_get_the_ring_then_live_lines_once() {
        let hub = LiveHub::default();
        assert_eq!(hub.relay(&key(), lines(0..3)), 3);
        let mut from_now = hub.subscribe(&key(), None);
        let mut from_one = hub.subscribe(&key(), Some(1));
        assert_eq!(hub.relay(&key(), lines(3..5)), 5);
        assert_eq!(next_lines(&mut from_one).await, (lines(1..3), 3));
        assert_eq!(next_lines(&mut from_one).await, (lines(3..5), 5));
        assert_eq!(next_lines(&mut from_now).await, (lines(3..5), 5));
        // Ahead of the relay: the in-flight lines are skipped, not sent twice.
        let mut ahead = hub.subscribe(&key(), Some(6));
        hub.relay(&key(), lines(5..8));
        assert_eq!(next_lines(&mut ahead).await, (lines(6..8), 8));
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_refilled_from_the_ring() {
        let hub = LiveHub::default();
        let mut slow = hub.subscribe(&key(), Some(0));
        for i in 0..(STEP_CHANNEL as u64 + 10) {
            hub.relay(&key(), lines(i..i + 1));
        }
        let total = STEP_CHANNEL as u64 + 10;
        let mut received = Vec::new();
        while received.len() < total as usize {
            let (batch, line_count) = next_lines(&mut slow).await;
            received.extend(batch);
            assert_eq!(line_count, received.len() as u64);
        }
        assert_eq!(received, lines(0..total));
    }

    #[test]
    fn status_events_have_the_documented_shape() {
        let event = StatusEvent::RunStatus {
            run_id: "r1".into(),
            status: RunStatus::Failed,
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"type":"run.status","runId":"r1","status":"failed"}"#
        );
        let event = StatusEvent::OrchestratorOffline {
            instance_id: "o1".into(),
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"type":"orchestrator.offline","instanceId":"o1"}"#
        );
    }
}
