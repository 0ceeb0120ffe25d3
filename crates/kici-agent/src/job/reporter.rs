//! A job's outgoing messages: [`Reporter`] numbers every sequenced message of the job (`seq`
//! from 1, strictly increasing), batches log lines through [`LogBatcher`], and hands the
//! messages to the connection task. It decides nothing about the job itself; as every step
//! result and log chunk passes here, it also counts them (`kici_agent_steps_total`,
//! `kici_agent_step_duration_seconds`, `kici_agent_log_bytes_total`).

use kici_engine::ids::{JobId, RunId};
use kici_engine::protocol::{AgentMessage, EventEmit, JobStatusUpdate, LogChunk, StepStatusUpdate};
use kici_engine::status::StepStatus;
use kici_telemetry::metrics::agent as metrics;
use tokio::sync::mpsc;
use tracing::warn;

use super::Outcome;
use crate::config::Backpressure;
use crate::connection::Command;
use crate::logs::{Batch, LogBatcher};
use crate::timestamp_ms;

/// Sequenced messages of one job: assigns `seq` (from 1) and batches log lines.
pub(super) struct Reporter {
    pub(super) run_id: RunId,
    pub(super) job_id: JobId,
    // Invariant: the seq of the last message sent; strictly increasing.
    seq: u64,
    out: mpsc::Sender<Command>,
    pub(super) logs: LogBatcher,
    backpressure: Backpressure,
}

impl Reporter {
    pub(super) fn new(
        run_id: RunId,
        job_id: JobId,
        out: mpsc::Sender<Command>,
        max_log_size_bytes: u64,
        backpressure: Backpressure,
    ) -> Reporter {
        Reporter {
            run_id,
            job_id,
            seq: 0,
            out,
            logs: LogBatcher::new(max_log_size_bytes),
            backpressure,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    async fn send(&self, message: AgentMessage) {
        // The connection task only stops when the agent shuts down; then nothing can be sent.
        if self.out.send(Command::Send(message)).await.is_err() {
            warn!(jobId = %self.job_id, "the connection is gone; job message not sent");
        }
    }

    pub(super) async fn ack(&mut self) {
        let message = AgentMessage::JobAck {
            run_id: self.run_id.clone(),
            job_id: self.job_id.clone(),
            seq: self.next_seq(),
            timestamp: timestamp_ms(),
        };
        self.send(message).await;
    }

    pub(super) async fn job_status(&mut self, outcome: Outcome) {
        let message = AgentMessage::JobStatus(Box::new(JobStatusUpdate {
            run_id: self.run_id.clone(),
            job_id: self.job_id.clone(),
            seq: self.next_seq(),
            state: outcome.state,
            timestamp: timestamp_ms(),
            error: outcome.error,
            duration_ms: outcome.duration_ms,
            matrix: outcome.matrix,
            jobs: outcome.jobs,
            init_result: outcome.init_result,
            secret_outputs: outcome.secret_outputs,
            outputs: outcome.outputs,
            init_failure: outcome.init_failure,
        }));
        self.send(message).await;
    }

    /// A step's `ctx.emit`, its payload's strings masked.
    pub(super) async fn event_emit(&mut self, name: String, mut payload: serde_json::Value) {
        mask_strings(&mut payload, &self.logs);
        let message = AgentMessage::EventEmit(EventEmit {
            run_id: self.run_id.clone(),
            job_id: self.job_id.clone(),
            seq: self.next_seq(),
            name,
            payload,
            timestamp: timestamp_ms(),
        });
        self.send(message).await;
    }

    pub(super) async fn step_status(&mut self, step: StepUpdate) {
        if step.state.is_terminal() {
            metrics::step_finished(step.state, step.duration_ms.map(std::time::Duration::from_millis));
        }
        let message = AgentMessage::StepStatus(Box::new(StepStatusUpdate {
            run_id: self.run_id.clone(),
            job_id: self.job_id.clone(),
            seq: self.next_seq(),
            step_index: step.index,
            step_name: step.name,
            step_type: step.step_type,
            state: step.state,
            timestamp: timestamp_ms(),
            exit_code: step.exit_code,
            duration_ms: step.duration_ms,
            // The runner masked it already; a value that slipped through stops here.
            error: step.error.map(|error| self.logs.mask(&error)),
            secrets_accessed: step.secrets_accessed,
        }));
        self.send(message).await;
    }

    pub(super) async fn log(&mut self, step_index: i64, line: String) {
        if let Some(batch) = self.logs.push(step_index, line, timestamp_ms()) {
            self.send_batch(batch).await;
        }
    }

    pub(super) async fn send_batch(&mut self, batch: Batch) {
        // Dropped before it gets a `seq`, so the job's sequence stays gap-free.
        if self.backpressure == Backpressure::Drop && self.out.capacity() == 0 {
            metrics::log_lines_dropped(batch.lines.len() as u64);
            warn!(jobId = %self.job_id, lines = batch.lines.len(), "connection queue full; log chunk dropped (KICI_BACKPRESSURE_MODE=drop)");
            return;
        }
        metrics::log_bytes_sent(batch.lines.iter().map(|line| line.line.len() as u64).sum());
        let message = AgentMessage::LogChunk(LogChunk {
            run_id: self.run_id.clone(),
            job_id: self.job_id.clone(),
            seq: self.next_seq(),
            step_index: batch.step_index,
            lines: batch.lines,
        });
        self.send(message).await;
    }

    pub(super) async fn flush_step(&mut self, step_index: i64) {
        if let Some(batch) = self.logs.take_step(step_index) {
            self.send_batch(batch).await;
        }
    }

    pub(super) async fn flush_logs(&mut self) {
        for batch in self.logs.take_all() {
            self.send_batch(batch).await;
        }
    }
}

pub(super) struct StepUpdate {
    pub(super) index: i64,
    pub(super) name: String,
    pub(super) step_type: String,
    pub(super) state: StepStatus,
    pub(super) exit_code: Option<i32>,
    pub(super) duration_ms: Option<u64>,
    pub(super) error: Option<String>,
    pub(super) secrets_accessed: Vec<String>,
}

/// Masks the secret values in every string of `value` (keys included).
fn mask_strings(value: &mut serde_json::Value, logs: &LogBatcher) {
    match value {
        serde_json::Value::String(text) => *text = logs.mask(text),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|item| mask_strings(item, logs)),
        serde_json::Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut item) in entries {
                mask_strings(&mut item, logs);
                map.insert(logs.mask(&key), item);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emitted_payload_has_its_secret_values_masked_in_keys_and_nested_strings() {
        let mut logs = LogBatcher::new(1 << 20);
        logs.mask_with(kici_engine::mask::SecretMasker::new(["hunter22"]));
        let mut payload = serde_json::json!({
            "token": "Bearer hunter22",
            "hunter22": [1, {"url": "https://x:hunter22@host"}, true],
            "plain": "kept",
        });
        mask_strings(&mut payload, &logs);
        let text = payload.to_string();
        assert!(!text.contains("hunter22"), "{text}");
        assert_eq!(payload["plain"], "kept");
        assert_eq!(payload["hunter22"], serde_json::Value::Null, "the key is masked too");
        assert_eq!(payload.as_object().map(|o| o.len()), Some(3));
    }
}
