//! The outbox: every sequenced message (`job.ack`, `job.status`, `step.status`, `log.chunk`)
//! waits here until the orchestrator acknowledges it with `ack {jobId, seq}`, so a reconnect
//! can replay what was not stored yet, in the original order.
//!
//! Bounded: at [`OUTBOX_CAPACITY`] entries the oldest `log.chunk` entries are dropped (never a
//! status: those are few and decide the job's outcome). Unsequenced messages never enter it.
//! The outbox does no I/O; the connection task owns it and does the sending.

use std::collections::VecDeque;

use kici_engine::ids::JobId;
use kici_engine::protocol::AgentMessage;

/// Entries kept before log chunks are dropped.
pub const OUTBOX_CAPACITY: usize = 10_000;

/// How many log chunks one overflow drops at most: dropping in batches keeps overflow warnings
/// (one per batch) rare.
const OVERFLOW_BATCH: usize = OUTBOX_CAPACITY / 10;

/// Sequenced messages not yet acknowledged, oldest first.
#[derive(Debug)]
pub struct Outbox {
    capacity: usize,
    // Invariant: only messages whose `sequenced()` is `Some`.
    entries: VecDeque<AgentMessage>,
}

/// What [`Outbox::push`] did, and what it had to give up to stay bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// False only for a log chunk pushed into an outbox full of statuses.
    pub stored: bool,
    /// Log chunks removed (older ones, or the pushed one when it was not stored).
    pub dropped_log_chunks: usize,
    /// The log lines in those chunks.
    pub dropped_log_lines: usize,
}

impl Pushed {
    const STORED: Pushed = Pushed {
        stored: true,
        dropped_log_chunks: 0,
        dropped_log_lines: 0,
    };
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox::with_capacity(OUTBOX_CAPACITY)
    }
}

impl Outbox {
    pub fn with_capacity(capacity: usize) -> Outbox {
        Outbox {
            capacity: capacity.max(1),
            entries: VecDeque::new(),
        }
    }

    /// Appends a sequenced message. Returns `None` for an unsequenced one (not stored), else
    /// what was dropped to make room.
    pub fn push(&mut self, message: AgentMessage) -> Option<Pushed> {
        message.sequenced()?;
        let mut pushed = Pushed::STORED;
        if self.entries.len() >= self.capacity {
            let batch = OVERFLOW_BATCH.clamp(1, self.capacity);
            let mut to_drop = batch;
            let mut dropped_lines = 0;
            self.entries.retain(|entry| {
                if to_drop > 0 && is_log_chunk(entry) {
                    to_drop -= 1;
                    dropped_lines += log_lines(entry);
                    false
                } else {
                    true
                }
            });
            pushed.dropped_log_chunks = batch - to_drop;
            pushed.dropped_log_lines = dropped_lines;
            // Only statuses left: a new log chunk is the one to go; a status stays regardless.
            if pushed.dropped_log_chunks == 0 && is_log_chunk(&message) {
                return Some(Pushed {
                    stored: false,
                    dropped_log_chunks: 1,
                    dropped_log_lines: log_lines(&message),
                });
            }
        }
        self.entries.push_back(message);
        Some(pushed)
    }

    /// Removes every entry of `job_id` with a sequence number up to `seq`; returns how many.
    pub fn ack(&mut self, job_id: &JobId, seq: u64) -> usize {
        let before = self.entries.len();
        self.entries.retain(|entry| match entry.sequenced() {
            Some((job, entry_seq)) => !(job == job_id && entry_seq <= seq),
            None => true,
        });
        before - self.entries.len()
    }

    /// The unacknowledged messages in the order they were pushed.
    pub fn pending(&self) -> impl Iterator<Item = &AgentMessage> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn is_log_chunk(message: &AgentMessage) -> bool {
    matches!(message, AgentMessage::LogChunk(_))
}

/// The lines of a log chunk (0 for other messages).
fn log_lines(message: &AgentMessage) -> usize {
    match message {
        AgentMessage::LogChunk(chunk) => chunk.lines.len(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use kici_engine::protocol::{JobStatusUpdate, LogChunk, LogLine};
    use kici_engine::status::JobStatus;

    use super::*;

    fn log(job: &str, seq: u64) -> AgentMessage {
        AgentMessage::LogChunk(LogChunk {
            run_id: "r".into(),
            job_id: job.into(),
            seq,
            step_index: 0,
            lines: vec![LogLine {
                ts: 0,
                line: format!("line {seq}"),
            }],
        })
    }

    fn status(job: &str, seq: u64) -> AgentMessage {
        AgentMessage::JobStatus(Box::new(JobStatusUpdate::new(
            "r".into(),
            job.into(),
            seq,
            JobStatus::Running,
            0,
        )))
    }

    fn seqs(outbox: &Outbox) -> Vec<(String, u64)> {
        outbox
            .pending()
            .map(|m| {
                let (job, seq) = m.sequenced().unwrap();
                (job.to_string(), seq)
            })
            .collect()
    }

    fn pairs(list: &[(&str, u64)]) -> Vec<(String, u64)> {
        list.iter().map(|(j, s)| (j.to_string(), *s)).collect()
    }

    #[test]
    fn unsequenced_messages_are_not_stored() {
        let mut outbox = Outbox::default();
        assert_eq!(outbox.push(AgentMessage::Heartbeat { timestamp: 1 }), None);
        assert!(outbox.is_empty());
    }

    #[test]
    fn ack_removes_everything_up_to_the_seq_of_that_job_only() {
        let mut outbox = Outbox::default();
        for seq in 1..=4 {
            outbox.push(status("a", seq));
            outbox.push(log("b", seq));
        }
        assert_eq!(outbox.ack(&JobId::from("a"), 2), 2);
        assert_eq!(
            seqs(&outbox),
            pairs(&[("b", 1), ("b", 2), ("a", 3), ("b", 3), ("a", 4), ("b", 4)])
        );
        // A stale (lower) ack changes nothing; an unknown job neither.
        assert_eq!(outbox.ack(&JobId::from("a"), 1), 0);
        assert_eq!(outbox.ack(&JobId::from("zzz"), 99), 0);
        assert_eq!(outbox.ack(&JobId::from("b"), 4), 4);
        assert_eq!(seqs(&outbox), pairs(&[("a", 3), ("a", 4)]));
    }

    #[test]
    fn replay_order_is_push_order() {
        let mut outbox = Outbox::default();
        outbox.push(status("j", 1));
        outbox.push(log("j", 2));
        outbox.push(status("j", 3));
        outbox.push(log("j", 4));
        assert_eq!(outbox.ack(&JobId::from("j"), 1), 1);
        assert_eq!(seqs(&outbox), pairs(&[("j", 2), ("j", 3), ("j", 4)]));
    }

    #[test]
    fn overflow_drops_the_oldest_log_chunks_only() {
        let mut outbox = Outbox::with_capacity(4);
        outbox.push(status("j", 1));
        outbox.push(log("j", 2));
        outbox.push(log("j", 3));
        outbox.push(status("j", 4));
        let pushed = outbox.push(status("j", 5)).unwrap();
        // The batch is capped at the capacity: both chunks go, the statuses stay.
        assert_eq!(
            pushed,
            Pushed {
                stored: true,
                dropped_log_chunks: 2,
                dropped_log_lines: 2,
            }
        );
        assert_eq!(seqs(&outbox), pairs(&[("j", 1), ("j", 4), ("j", 5)]));
    }

    #[test]
    fn a_full_outbox_of_statuses_keeps_statuses_and_refuses_log_chunks() {
        let mut outbox = Outbox::with_capacity(2);
        outbox.push(status("j", 1));
        outbox.push(status("j", 2));
        assert_eq!(
            outbox.push(log("j", 3)).unwrap(),
            Pushed {
                stored: false,
                dropped_log_chunks: 1,
                dropped_log_lines: 1,
            }
        );
        assert_eq!(outbox.push(status("j", 4)).unwrap(), Pushed::STORED);
        assert_eq!(seqs(&outbox), pairs(&[("j", 1), ("j", 2), ("j", 4)]));
    }

    #[test]
    fn default_capacity_drops_a_batch_of_the_oldest_chunks() {
        let mut outbox = Outbox::default();
        outbox.push(status("j", 1));
        for seq in 2..=OUTBOX_CAPACITY as u64 {
            assert_eq!(outbox.push(log("j", seq)).unwrap(), Pushed::STORED);
        }
        let pushed = outbox.push(log("j", OUTBOX_CAPACITY as u64 + 1)).unwrap();
        assert_eq!(pushed.dropped_log_chunks, OVERFLOW_BATCH);
        assert_eq!(pushed.dropped_log_lines, OVERFLOW_BATCH);
        assert!(pushed.stored);
        let kept = seqs(&outbox);
        assert_eq!(kept[0], ("j".to_string(), 1));
        assert_eq!(kept[1], ("j".to_string(), 2 + OVERFLOW_BATCH as u64));
        assert_eq!(kept.len(), OUTBOX_CAPACITY - OVERFLOW_BATCH + 1);
    }
}
