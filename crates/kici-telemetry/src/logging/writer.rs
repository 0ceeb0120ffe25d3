//! The file writer: a thread that owns the [`FileSink`] and is fed lines over a bounded
//! channel, so a slow or stalled disk never holds up the threads that log (tokio's workers
//! among them). [`FileWriter::send`] never blocks; [`WriterGuard`] flushes at shutdown.
//!
//! Not here: naming and rotation rules (`file.rs`), formatting and masking (`mod.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::Clock;
use super::file::FileSink;

/// Lines waiting for the writer thread. When full, a line is dropped from the file (stdout
/// still gets it) and counted; the writer then writes one `log.file_lines_dropped` warning
/// with the count. Dropping, not waiting: logging must not stall the async runtime.
pub(crate) const FILE_BUFFER_LINES: usize = 8192;
/// How long [`WriterGuard`]'s drop waits for the writer to flush what was sent.
const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

enum Message {
    Line {
        at_ms: i64,
        text: String,
        /// The `<service>.build.info` line.
        header: bool,
    },
    /// Flush, wait for compressions, stop.
    Stop,
}

#[derive(Default)]
struct Progress {
    /// Lines taken off the channel and flushed.
    written: u64,
    stopped: bool,
}

struct Shared {
    /// Lines accepted by the channel.
    sent: AtomicU64,
    /// Lines refused since the last drop warning.
    dropped: AtomicU64,
    progress: Mutex<Progress>,
    changed: Condvar,
}

/// The sending side, held by the logging layer.
pub(crate) struct FileWriter {
    tx: SyncSender<Message>,
    shared: Arc<Shared>,
}

/// Stops the writer thread when dropped: waits (at most 5 s) until the lines sent so far are
/// flushed and running compressions have ended.
pub(crate) struct WriterGuard {
    tx: SyncSender<Message>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl FileWriter {
    /// Starts the writer thread.
    pub(crate) fn start(
        sink: FileSink,
        service: &'static str,
        clock: Arc<dyn Clock>,
    ) -> std::io::Result<(FileWriter, WriterGuard)> {
        let (tx, rx) = sync_channel(FILE_BUFFER_LINES);
        let shared = Arc::new(Shared {
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            progress: Mutex::new(Progress::default()),
            changed: Condvar::new(),
        });
        let worker = Worker {
            sink,
            service,
            clock,
            shared: Arc::clone(&shared),
            failing: false,
        };
        let thread = std::thread::Builder::new()
            .name("kici-log-writer".to_string())
            .spawn(move || worker.run(rx))?;
        Ok((
            FileWriter {
                tx: tx.clone(),
                shared: Arc::clone(&shared),
            },
            WriterGuard {
                tx,
                shared,
                thread: Some(thread),
            },
        ))
    }

    /// Queues a line (with its `\n`) for the file; drops and counts it when the queue is full or
    /// the writer has stopped.
    pub(crate) fn send(&self, at_ms: i64, text: String, header: bool) {
        match self.tx.try_send(Message::Line { at_ms, text, header }) {
            Ok(()) => {
                self.shared.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        let target = self.shared.sent.load(Ordering::Relaxed);
        // A full queue means the writer is busy anyway: then wait for the lines only.
        let stop_sent = self.tx.try_send(Message::Stop).is_ok();
        let deadline = Instant::now() + SHUTDOWN_FLUSH_TIMEOUT;
        let mut progress = self.shared.progress.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if progress.stopped || (!stop_sent && progress.written >= target) {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                eprintln!("kici-telemetry: the log writer did not finish within 5s; some file lines may be lost");
                return;
            }
            progress = self
                .shared
                .changed
                .wait_timeout(progress, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let stopped = progress.stopped;
        drop(progress);
        if let (true, Some(thread)) = (stopped, self.thread.take()) {
            // It has set `stopped` and returns right after.
            if thread.join().is_err() {
                eprintln!("kici-telemetry: the log writer thread panicked");
            }
        }
    }
}

struct Worker {
    sink: FileSink,
    service: &'static str,
    clock: Arc<dyn Clock>,
    shared: Arc<Shared>,
    /// The last write failed (reported once on stderr until a write succeeds again).
    failing: bool,
}

impl Worker {
    fn run(mut self, rx: Receiver<Message>) {
        // Every sender gone (the process is exiting without the guard): end quietly.
        while let Ok(first) = rx.recv() {
            let mut written = 0u64;
            let mut stop = self.handle(first, &mut written);
            while !stop {
                match rx.try_recv() {
                    Ok(message) => stop = self.handle(message, &mut written),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            self.report_drops();
            let flushed = self.sink.flush();
            self.note(flushed);
            if stop {
                self.sink.finish();
            }
            let mut progress = self.shared.progress.lock().unwrap_or_else(PoisonError::into_inner);
            progress.written += written;
            progress.stopped = stop;
            drop(progress);
            self.shared.changed.notify_all();
            if stop {
                return;
            }
        }
    }

    /// Writes one message; true for [`Message::Stop`].
    fn handle(&mut self, message: Message, written: &mut u64) -> bool {
        match message {
            Message::Line { at_ms, text, header } => {
                let result = self.sink.write_line(at_ms, text.as_bytes());
                self.note(result);
                if header {
                    self.sink.set_header(text.as_bytes());
                }
                *written += 1;
                false
            }
            Message::Stop => true,
        }
    }

    fn report_drops(&mut self) {
        let dropped = self.shared.dropped.swap(0, Ordering::Relaxed);
        if dropped == 0 {
            return;
        }
        let at_ms = self.clock.now_ms();
        let mut line = Map::new();
        line.insert("timestamp".into(), kici_engine::api::format_timestamp(at_ms).into());
        line.insert("level".into(), "warn".into());
        line.insert("service".into(), self.service.into());
        line.insert("message".into(), "log.file_lines_dropped".into());
        line.insert("count".into(), dropped.into());
        line.insert(
            "hint".into(),
            "the log file could not keep up; these lines went to stdout only".into(),
        );
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        let result = self.sink.write_line(at_ms, text.as_bytes());
        self.note(result);
    }

    fn note(&mut self, result: std::io::Result<()>) {
        match result {
            Ok(()) => self.failing = false,
            Err(err) => {
                if !self.failing {
                    eprintln!(
                        "kici-telemetry: cannot write the log file: {err} (lines go to stdout only until it works again)"
                    );
                }
                self.failing = true;
            }
        }
    }
}
