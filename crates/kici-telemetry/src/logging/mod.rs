//! Logging for services (`spec/operator.md` §1.3, §4.3): one JSON object per line with
//! `timestamp`, `level`, `service`, `message` and the event's fields (`runId`, `jobId`,
//! `agentId`, ...), so `grep '"agent.build.info"' | jq .` works. Agent tokens (`kat_` + 64 hex)
//! are masked in every line, on stdout and in files.
//!
//! [`LogConfig`] comes from `KICI_LOG_*` ([`LogConfig::from_env`]); [`init`] installs the
//! logger for the process. Lines go to stdout (JSON, or plain text for a terminal, see
//! [`LogFormat`]) and, with `KICI_LOG_DIR` set, also to JSON files
//! `<dir>/<service>[-<instanceId>]-YYYY-MM-DD.log`, rotated daily and by size, gzipped and
//! pruned (rules and names: `file.rs`). File lines go through a bounded queue to a writer thread
//! (`writer.rs`), so logging never waits on the disk; keep the returned [`LogGuard`] alive until
//! the end of `main` so the last lines reach the file.
//!
//! The `<service>.build.info` line ([`crate::health::log_build_info`]) is written whatever the
//! level, and starts every log file opened after it.
//!
//! Not here: what is logged (callers), job output (never goes through the logger).

mod config;
mod file;
mod writer;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use kici_engine::mask::mask_agent_tokens;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{FilterFn, LevelFilter};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

pub use config::{DEFAULT_MAX_SIZE_BYTES, DEFAULT_RETENTION_DAYS, LogConfig, LogConfigError, LogFormat, LogLevel};
pub use file::file_base;

use file::{FileSettings, FileSink};
use writer::{FileWriter, WriterGuard};

/// The tracing target of the `<service>.build.info` event: written at any level, and replayed
/// at the top of each new log file.
pub const BUILD_INFO_TARGET: &str = "kici::build_info";

/// Where the logger reads the time: the system clock, or a fake one in tests.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::os::now_ms()
    }
}

/// Why the logger could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum LogInitError {
    #[error(
        "cannot write logs to KICI_LOG_DIR `{}` (hint: point KICI_LOG_DIR at a writable directory, or unset it to log to stdout only)",
        dir.display()
    )]
    Dir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the log writer thread")]
    WriterThread {
        #[source]
        source: std::io::Error,
    },
    #[error("logging is already initialised in this process")]
    AlreadyInitialised,
}

/// Keeps the file writer running; dropping it flushes the file (waiting at most 5 s) and stops
/// the writer. Hold it until the end of `main`.
#[must_use = "dropping the guard stops writing the log file"]
pub struct LogGuard {
    _writer: Option<WriterGuard>,
}

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGuard")
            .field("file", &self._writer.is_some())
            .finish()
    }
}

/// Installs the logger of `service` (`orchestrator`, `agent`) for the whole process.
/// `instance_id` (the agent's id; `None` for the orchestrator) goes into file names. Call once,
/// first thing, then log `<service>.build.info`.
pub fn init(service: &'static str, instance_id: Option<&str>, config: &LogConfig) -> Result<LogGuard, LogInitError> {
    init_with_clock(service, instance_id, config, Arc::new(SystemClock))
}

/// [`init`] with the time taken from `clock`.
pub fn init_with_clock(
    service: &'static str,
    instance_id: Option<&str>,
    config: &LogConfig,
    clock: Arc<dyn Clock>,
) -> Result<LogGuard, LogInitError> {
    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    let (subscriber, guard) = build(service, instance_id, config, clock, Box::new(stdout), terminal)?;
    subscriber.try_init().map_err(|_| LogInitError::AlreadyInitialised)?;
    Ok(guard)
}

/// The subscriber [`init`] installs, writing stdout lines to `stdout`.
fn build(
    service: &'static str,
    instance_id: Option<&str>,
    config: &LogConfig,
    clock: Arc<dyn Clock>,
    stdout: Box<dyn Write + Send>,
    stdout_is_terminal: bool,
) -> Result<(impl Subscriber + Send + Sync + 'static, LogGuard), LogInitError> {
    let (file, guard) = match &config.dir {
        None => (None, None),
        Some(dir) => {
            let settings = FileSettings {
                dir: dir.clone(),
                service: service.to_string(),
                base: file_base(service, instance_id),
                max_size_bytes: config.max_size_bytes,
                retention_days: config.retention_days,
            };
            let sink = FileSink::open(settings, clock.now_ms()).map_err(|source| LogInitError::Dir {
                dir: dir.clone(),
                source,
            })?;
            let (writer, guard) = FileWriter::start(sink, service, Arc::clone(&clock))
                .map_err(|source| LogInitError::WriterThread { source })?;
            (Some(writer), Some(guard))
        }
    };
    let plain = match config.format {
        LogFormat::Auto => stdout_is_terminal,
        LogFormat::Plain => true,
        LogFormat::Json => false,
    };
    let layer = ServiceLayer {
        service,
        plain,
        stdout: Mutex::new(stdout),
        file,
        clock,
    };
    let level = config.level.filter();
    let filter = FilterFn::new(move |meta: &Metadata<'_>| *meta.level() <= level || meta.target() == BUILD_INFO_TARGET)
        .with_max_level_hint(level.max(LevelFilter::INFO));
    let subscriber = tracing_subscriber::registry().with(layer.with_filter(filter));
    Ok((subscriber, LogGuard { _writer: guard }))
}

struct ServiceLayer {
    service: &'static str,
    /// Plain text on stdout instead of JSON.
    plain: bool,
    stdout: Mutex<Box<dyn Write + Send>>,
    file: Option<FileWriter>,
    clock: Arc<dyn Clock>,
}

impl<S: Subscriber> Layer<S> for ServiceLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = FieldCollector(Map::new());
        event.record(&mut fields);
        let at_ms = self.clock.now_ms();
        let timestamp = kici_engine::api::format_timestamp(at_ms);
        let level = level_name(event.metadata().level());
        let message = fields.0.shift_remove("message");
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(timestamp.clone()));
        line.insert("level".into(), Value::String(level.into()));
        line.insert("service".into(), Value::String(self.service.into()));
        if let Some(message) = &message {
            line.insert("message".into(), message.clone());
        }
        let plain = self.plain.then(|| {
            let message = match &message {
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let mut text = mask_agent_tokens(&plain_line(&timestamp, level, &message, &fields.0));
            text.push('\n');
            text
        });
        line.extend(fields.0);
        let mut json = mask_agent_tokens(&Value::Object(line).to_string());
        json.push('\n');
        if let Ok(mut out) = self.stdout.lock() {
            // A line that cannot be written to stdout has nowhere else to go.
            let _ = out.write_all(plain.as_ref().unwrap_or(&json).as_bytes());
        }
        if let Some(file) = &self.file {
            file.send(at_ms, json, event.metadata().target() == BUILD_INFO_TARGET);
        }
    }
}

/// `2026-01-02T03:04:05.678Z INFO  message key=value key2="two words"`.
fn plain_line(timestamp: &str, level: &str, message: &str, fields: &Map<String, Value>) -> String {
    let mut text = format!("{timestamp} {:<5} {message}", level.to_ascii_uppercase());
    for (key, value) in fields {
        text.push(' ');
        text.push_str(key);
        text.push('=');
        match value {
            Value::String(s) if !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c == '"' || c == '=') => {
                text.push_str(s);
            }
            other => text.push_str(&other.to_string()),
        }
    }
    text
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

struct FieldCollector(Map<String, Value>);

impl Visit for FieldCollector {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_string(), Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::path::Path;
    use std::sync::atomic::{AtomicI64, Ordering};

    use flate2::read::GzDecoder;
    use tracing::{debug, info, warn};

    use super::*;

    /// 2026-03-14T10:00:00Z.
    const MAR_14_10H: i64 = 1_773_482_400_000;
    const DAY_MS: i64 = 86_400_000;

    struct FakeClock(AtomicI64);

    impl Clock for FakeClock {
        fn now_ms(&self) -> i64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn read(path: &Path) -> String {
        let bytes = std::fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        if path.extension().is_some_and(|e| e == "gz") {
            let mut text = String::new();
            GzDecoder::new(bytes.as_slice()).read_to_string(&mut text).unwrap();
            text
        } else {
            String::from_utf8(bytes).unwrap()
        }
    }

    fn json_lines(text: &str) -> Vec<Value> {
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
            .collect()
    }

    /// Runs `body` with the logger of `service` installed for this thread only.
    fn with_logger(
        config: &LogConfig,
        instance: Option<&str>,
        terminal: bool,
        clock: Arc<FakeClock>,
        body: impl FnOnce(),
    ) -> String {
        let stdout = Captured::default();
        let (subscriber, guard) =
            build("agent", instance, config, clock, Box::new(stdout.clone()), terminal).expect("logger builds");
        tracing::subscriber::with_default(subscriber, body);
        drop(guard);
        stdout.text()
    }

    fn token() -> String {
        format!("kat_{}", "ab".repeat(32))
    }

    #[test]
    fn files_get_every_line_masked_and_each_file_starts_with_build_info() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            dir: Some(dir.path().join("logs")),
            format: LogFormat::Json,
            level: LogLevel::Warn,
            ..LogConfig::default()
        };
        let clock = Arc::new(FakeClock(AtomicI64::new(MAR_14_10H)));
        let token = token();
        let stdout = with_logger(&config, Some("a 1"), false, Arc::clone(&clock), || {
            crate::health::log_build_info("agent");
            warn!(runId = "r1", jobId = "j1", token = %token, "connecting with {token}");
            info!("below the level");
            debug!("below the level too");
            clock.0.fetch_add(DAY_MS, Ordering::SeqCst);
            warn!(jobId = "j2", "the next day");
        });
        let logs = dir.path().join("logs");
        let first_day = read(&logs.join("agent-a_1-2026-03-14.log.1.gz"));
        let second_day = read(&logs.join("agent-a_1-2026-03-15.log"));
        for text in [&stdout, &first_day, &second_day] {
            assert!(!text.contains(&token), "{text}");
            assert!(!text.contains("below the level"), "{text}");
        }
        let first = json_lines(&first_day);
        assert_eq!(first.len(), 2, "{first_day}");
        assert_eq!(first[0]["message"], "agent.build.info");
        assert_eq!(first[0]["level"], "info");
        assert_eq!(first[0]["service"], "agent");
        assert_eq!(first[0]["timestamp"], "2026-03-14T10:00:00.000Z");
        assert_eq!(first[0]["sdkBundleHash"], kici_sdk::sdk().hash);
        assert_eq!(first[1]["message"], "connecting with kat_***");
        assert_eq!(first[1]["token"], "kat_***");
        assert_eq!(first[1]["runId"], "r1");
        assert_eq!(first[1]["jobId"], "j1");
        assert_eq!(first[1]["level"], "warn");
        let second = json_lines(&second_day);
        assert_eq!(second.len(), 2, "{second_day}");
        assert_eq!(second[0], first[0], "the build-info line is replayed as is");
        assert_eq!(second[1]["message"], "the next day");
        assert_eq!(second[1]["timestamp"], "2026-03-15T10:00:00.000Z");
        // Stdout has the same lines (once).
        let stdout = json_lines(&stdout);
        assert_eq!(stdout.len(), 3);
        assert_eq!(stdout[0], first[0]);
        assert_eq!(stdout[1], first[1]);
        assert_eq!(stdout[2], second[1]);
    }

    #[test]
    fn plain_format_is_for_stdout_only() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            dir: Some(dir.path().to_path_buf()),
            format: LogFormat::Plain,
            ..LogConfig::default()
        };
        let clock = Arc::new(FakeClock(AtomicI64::new(MAR_14_10H)));
        let token = token();
        let stdout = with_logger(&config, None, false, clock, || {
            info!(agentId = "a1", attempt = 3, error = "no route to host", token = %token, "agent.reconnecting");
        });
        assert_eq!(
            stdout,
            "2026-03-14T10:00:00.000Z INFO  agent.reconnecting agentId=a1 attempt=3 error=\"no route to host\" token=kat_***\n"
        );
        let file = json_lines(&read(&dir.path().join("agent-2026-03-14.log")));
        assert_eq!(file[0]["message"], "agent.reconnecting");
        assert_eq!(file[0]["attempt"], 3);
        assert_eq!(file[0]["token"], "kat_***");
    }

    #[test]
    fn auto_is_plain_on_a_terminal_and_json_otherwise() {
        let clock = || Arc::new(FakeClock(AtomicI64::new(MAR_14_10H)));
        let config = LogConfig::default();
        let terminal = with_logger(&config, None, true, clock(), || info!("hello"));
        assert_eq!(terminal, "2026-03-14T10:00:00.000Z INFO  hello\n");
        let piped = with_logger(&config, None, false, clock(), || info!("hello"));
        assert_eq!(
            piped,
            "{\"timestamp\":\"2026-03-14T10:00:00.000Z\",\"level\":\"info\",\"service\":\"agent\",\"message\":\"hello\"}\n"
        );
    }

    #[test]
    fn an_unusable_directory_is_an_error_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let config = LogConfig {
            dir: Some(blocker.join("logs")),
            ..LogConfig::default()
        };
        let clock = Arc::new(FakeClock(AtomicI64::new(MAR_14_10H)));
        let err = match build("agent", None, &config, clock, Box::new(Captured::default()), false) {
            Ok(_) => panic!("a directory under a file cannot be created"),
            Err(err) => err,
        };
        assert_eq!(
            err.to_string(),
            format!(
                "cannot write logs to KICI_LOG_DIR `{}` (hint: point KICI_LOG_DIR at a writable directory, or unset it to log to stdout only)",
                blocker.join("logs").display()
            )
        );
        assert!(matches!(err, LogInitError::Dir { .. }));
    }
}
