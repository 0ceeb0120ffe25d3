//! Batching a job's log lines into `log.chunk` messages: per step, a chunk when 50 lines are
//! waiting, on a 100 ms tick and at step end (the caller decides when to take them). The whole
//! job's output is capped at `KICI_MAX_LOG_SIZE_BYTES`; past it one
//! `[TRUNCATED: log output exceeded <n> bytes]` line is kept and the rest dropped.
//!
//! Pure bookkeeping: no clock, no I/O. Timestamps come from the caller.

use std::collections::BTreeMap;
use std::time::Duration;

use kici_engine::protocol::LogLine;

/// A step's buffer is sent as soon as it holds this many lines.
pub const FLUSH_LINES: usize = 50;
/// Lines wait at most this long before they are sent.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// The line that replaces everything past the job's log cap.
pub fn truncated_line(max_bytes: u64) -> String {
    format!("[TRUNCATED: log output exceeded {max_bytes} bytes]")
}

/// Lines of one step ready to go out as a `log.chunk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub step_index: i64,
    pub lines: Vec<LogLine>,
}

/// One job's pending log lines, by step index.
#[derive(Debug)]
pub struct LogBatcher {
    max_bytes: u64,
    used_bytes: u64,
    truncated: bool,
    pending: BTreeMap<i64, Vec<LogLine>>,
    /// The job's secret values, masked in every line (the runner masks them first).
    masker: kici_engine::mask::SecretMasker,
}

impl LogBatcher {
    pub fn new(max_bytes: u64) -> LogBatcher {
        LogBatcher {
            max_bytes,
            used_bytes: 0,
            truncated: false,
            pending: BTreeMap::new(),
            masker: Default::default(),
        }
    }

    /// `text` with the job's secret values masked.
    pub fn mask(&self, text: &str) -> String {
        self.masker.mask(text)
    }

    /// Masks the values of `masker` in every line pushed from now on.
    pub fn mask_with(&mut self, masker: kici_engine::mask::SecretMasker) {
        self.masker = masker;
    }

    /// Adds a line; returns the step's batch when it reached [`FLUSH_LINES`].
    pub fn push(&mut self, step_index: i64, line: String, ts: i64) -> Option<Batch> {
        if self.truncated {
            return None;
        }
        let line = if self.masker.is_empty() {
            line
        } else {
            self.masker.mask(&line)
        };
        let size = line.len() as u64 + 1;
        let line = if self.used_bytes + size > self.max_bytes {
            self.truncated = true;
            truncated_line(self.max_bytes)
        } else {
            self.used_bytes += size;
            line
        };
        let lines = self.pending.entry(step_index).or_default();
        lines.push(LogLine { ts, line });
        if lines.len() >= FLUSH_LINES {
            return self.take_step(step_index);
        }
        None
    }

    /// Whatever `step_index` has waiting.
    pub fn take_step(&mut self, step_index: i64) -> Option<Batch> {
        let lines = self.pending.remove(&step_index)?;
        (!lines.is_empty()).then_some(Batch { step_index, lines })
    }

    /// Everything waiting, by step index.
    pub fn take_all(&mut self) -> Vec<Batch> {
        std::mem::take(&mut self.pending)
            .into_iter()
            .filter(|(_, lines)| !lines.is_empty())
            .map(|(step_index, lines)| Batch { step_index, lines })
            .collect()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(batch: &Batch) -> Vec<&str> {
        batch.lines.iter().map(|l| l.line.as_str()).collect()
    }

    #[test]
    fn a_step_flushes_at_fifty_lines() {
        let mut batcher = LogBatcher::new(u64::MAX);
        for i in 0..FLUSH_LINES - 1 {
            assert_eq!(batcher.push(0, format!("l{i}"), i as i64), None);
            assert_eq!(batcher.push(1, "other".into(), 0), None);
        }
        let batch = batcher.push(0, "last".into(), 99).expect("full batch");
        assert_eq!(batch.step_index, 0);
        assert_eq!(batch.lines.len(), FLUSH_LINES);
        assert_eq!(
            batch.lines[0],
            LogLine {
                ts: 0,
                line: "l0".into()
            }
        );
        assert_eq!(batch.lines[FLUSH_LINES - 1].line, "last");
        assert_eq!(batcher.take_step(0), None);
        assert_eq!(batcher.take_step(1).expect("step 1").lines.len(), FLUSH_LINES - 1);
        assert!(batcher.is_empty());
    }

    #[test]
    fn take_all_returns_every_step_in_index_order() {
        let mut batcher = LogBatcher::new(u64::MAX);
        batcher.push(2, "b".into(), 0);
        batcher.push(-1, "prep".into(), 0);
        batcher.push(2, "c".into(), 0);
        let batches = batcher.take_all();
        assert_eq!(batches.iter().map(|b| b.step_index).collect::<Vec<_>>(), [-1, 2]);
        assert_eq!(texts(&batches[1]), ["b", "c"]);
        assert!(batcher.take_all().is_empty());
    }

    #[test]
    fn output_past_the_cap_becomes_one_truncation_line() {
        // "12345" + newline = 6 bytes each: two fit in 15, the third does not.
        let mut batcher = LogBatcher::new(15);
        batcher.push(0, "12345".into(), 0);
        batcher.push(0, "12345".into(), 0);
        batcher.push(1, "12345".into(), 0);
        batcher.push(1, "more".into(), 0);
        batcher.push(0, "more".into(), 0);
        let batches = batcher.take_all();
        assert_eq!(texts(&batches[0]), ["12345", "12345"]);
        assert_eq!(texts(&batches[1]), ["[TRUNCATED: log output exceeded 15 bytes]"]);
        assert_eq!(batcher.push(0, "x".into(), 0), None);
        assert!(batcher.is_empty());
    }
}
