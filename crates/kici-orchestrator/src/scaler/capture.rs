//! What a spawned agent prints: every line goes to the orchestrator's log (the full output,
//! tagged with the agent id and where it came from), and the last [`TAIL_LINES`] stay in a
//! ring so a provisioning failure can quote them.

use kici_engine::ids::AgentId;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Lines of output a provisioning error quotes.
pub(crate) const TAIL_LINES: usize = 50;

/// The longest line of agent output kept; the rest of a longer line is dropped. A job in a
/// container can write to the agent's stdout, so nothing it writes may grow without bound.
pub(crate) const MAX_LINE_BYTES: usize = 16 * 1024;

/// Collects one line of output at most [`MAX_LINE_BYTES`] long from chunks, however long the
/// line really is (`… [<n> bytes dropped]` marks a cut line).
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    line: Vec<u8>,
    dropped: usize,
}

impl LineSplitter {
    /// Feeds `bytes`; returns the lines they completed.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            let (body, ended) = match chunk.strip_suffix(b"\n") {
                Some(body) => (body, true),
                None => (chunk, false),
            };
            let room = MAX_LINE_BYTES.saturating_sub(self.line.len());
            self.line.extend_from_slice(&body[..body.len().min(room)]);
            self.dropped += body.len().saturating_sub(room);
            if ended {
                lines.push(self.take());
            }
        }
        lines
    }

    /// What is left without a final newline.
    pub(crate) fn finish(&mut self) -> Option<String> {
        (!self.line.is_empty() || self.dropped > 0).then(|| self.take())
    }

    fn take(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.line).trim_end_matches('\r').to_string();
        let line = match std::mem::take(&mut self.dropped) {
            0 => text,
            dropped => format!("{text}… [{dropped} bytes dropped]"),
        };
        self.line.clear();
        line
    }
}

/// The last [`TAIL_LINES`] lines of an agent's merged stdout and stderr.
#[derive(Debug, Clone, Default)]
pub(crate) struct OutputTail {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl OutputTail {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        // Every update is one push/pop, so a poisoned ring is still consistent.
        self.lines.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn push(&self, line: &str) {
        let mut lines = self.lock();
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line.to_string());
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    /// `detail`, followed by the captured lines when there are any:
    /// `<detail>\n--- captured output (last 50 lines) ---\n<lines>`.
    pub(crate) fn annotate(&self, detail: &str) -> String {
        let lines = self.lines();
        if lines.is_empty() {
            return detail.to_string();
        }
        format!(
            "{detail}\n--- captured output (last {TAIL_LINES} lines) ---\n{}",
            lines.join("\n")
        )
    }
}

/// Reads `reader` line by line until it ends, into `tail` and the orchestrator's log.
pub(crate) async fn pump(
    reader: impl AsyncRead + Unpin,
    tail: OutputTail,
    agent_id: String,
    logs_source: &'static str,
) {
    let mut reader = BufReader::new(reader);
    let mut splitter = LineSplitter::default();
    let mut emit = |line: String| {
        forward(&AgentId::from(&agent_id), logs_source, &line);
        tail.push(&line);
    };
    loop {
        // A read error ends the output like EOF does: the process is gone or closed its pipe.
        let chunk = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(chunk) => chunk.to_vec(),
        };
        reader.consume(chunk.len());
        splitter.push(&chunk).into_iter().for_each(&mut emit);
    }
    splitter.finish().into_iter().for_each(emit);
}

/// Logs one line of agent output. The agent logs JSON lines; their level and message are
/// kept, anything else is logged as-is at info.
pub(crate) fn forward(agent_id: &AgentId, logs_source: &str, line: &str) {
    let parsed = serde_json::from_str::<serde_json::Value>(line).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|value| value.get(name))
            .and_then(|value| value.as_str())
            .map(str::to_string)
    };
    let message = field("message").unwrap_or_else(|| line.to_string());
    match field("level").as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("error") => tracing::error!(origin = "agent", agentId = %agent_id, logsSource = %logs_source, "{message}"),
        Some("warn") => tracing::warn!(origin = "agent", agentId = %agent_id, logsSource = %logs_source, "{message}"),
        Some("debug") | Some("trace") => {
            tracing::debug!(origin = "agent", agentId = %agent_id, logsSource = %logs_source, "{message}")
        }
        _ => tracing::info!(origin = "agent", agentId = %agent_id, logsSource = %logs_source, "{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_exactly_the_last_fifty_lines() {
        let tail = OutputTail::default();
        assert_eq!(tail.annotate("spawn failed"), "spawn failed");
        for i in 1..=60 {
            tail.push(&format!("line {i}"));
        }
        let lines = tail.lines();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines.first().map(String::as_str), Some("line 11"));
        assert_eq!(lines.last().map(String::as_str), Some("line 60"));
        let annotated = tail.annotate("agent exited before registering (exit code 1)");
        assert!(
            annotated.starts_with(
                "agent exited before registering (exit code 1)\n--- captured output (last 50 lines) ---\nline 11\n"
            ),
            "{annotated}"
        );
        assert!(annotated.ends_with("\nline 60"), "{annotated}");
    }

    #[tokio::test]
    async fn pump_reads_until_the_stream_ends() {
        let tail = OutputTail::default();
        pump(
            &b"one\n{\"level\":\"warn\",\"message\":\"two\"}\nthree"[..],
            tail.clone(),
            "a".into(),
            "stdout",
        )
        .await;
        assert_eq!(
            tail.lines(),
            ["one", "{\"level\":\"warn\",\"message\":\"two\"}", "three"]
        );
    }

    #[tokio::test]
    async fn a_line_without_end_is_cut_and_what_follows_is_kept() {
        let tail = OutputTail::default();
        let mut output = vec![b'x'; 5 * 1024 * 1024];
        output.extend_from_slice(b"\nnext\n");
        pump(&output[..], tail.clone(), "a".into(), "stdout").await;
        let lines = tail.lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            format!(
                "{}… [{} bytes dropped]",
                "x".repeat(MAX_LINE_BYTES),
                5 * 1024 * 1024 - MAX_LINE_BYTES
            )
        );
        assert_eq!(lines[1], "next");
    }
}
