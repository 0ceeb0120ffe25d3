//! The `logs/` part of a debug bundle: every `*.log` file and rotated piece (`*.log.<N>.gz`) of
//! the log directory
//! modified within the window, newest first, until the byte cap is reached (the file that
//! crosses the cap contributes its last whole lines, older ones are left out), each line masked
//! ([`SecretMask`]) and counted into `logs/summary.json`.
//!
//! Rotated `.log.gz` files are decompressed: the bundle holds plain `logs/<name>.log`. Blocking
//! I/O: call it off the async runtime.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Seek as _, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flate2::read::MultiGzDecoder;
use kici_engine::api::format_timestamp;
use serde::Serialize;
use serde_json::Value;

use super::redact::SecretMask;

/// The default cap on the bytes of log copied into a bundle.
pub const DEFAULT_MAX_LOG_BYTES: u64 = 50 * 1024 * 1024;
/// How much of a compressed file is decompressed at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("Log dir {} does not exist — skipping logs/", .0.display())]
    Missing(PathBuf),
    #[error("cannot list log dir `{}`: {source} — skipping logs/", dir.display())]
    List {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct LogOptions {
    pub dir: PathBuf,
    pub now: SystemTime,
    pub window: Duration,
    pub max_bytes: u64,
}

/// The log entries for the ZIP and their summary.
#[derive(Debug)]
pub struct CollectedLogs {
    /// `(logs/<name>.log, masked content)`, newest first.
    pub entries: Vec<(String, Vec<u8>)>,
    pub summary: LogSummary,
}

/// `logs/summary.json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogSummary {
    pub total_lines: u64,
    pub errors: u64,
    pub warnings: u64,
    /// Bytes written under `logs/` (after masking).
    pub total_bytes: u64,
    pub files: Vec<LogFileSummary>,
    /// Files in the window left out because the cap was reached, or unreadable.
    pub skipped: Vec<SkippedLog>,
    pub log_dir: String,
    pub window_hours: f64,
    pub max_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogFileSummary {
    /// The entry in the ZIP.
    pub name: String,
    pub source: String,
    pub modified_at: String,
    pub lines: u64,
    pub errors: u64,
    pub warnings: u64,
    pub bytes: u64,
    /// Only the file's last lines fitted under the cap.
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedLog {
    pub source: String,
    pub reason: String,
}

struct Candidate {
    path: PathBuf,
    name: String,
    modified: SystemTime,
    gzipped: bool,
}

pub fn collect(options: &LogOptions, mask: &SecretMask) -> Result<CollectedLogs, LogsError> {
    if !options.dir.is_dir() {
        return Err(LogsError::Missing(options.dir.clone()));
    }
    let mut candidates = candidates(options)?;
    candidates.sort_by(|a, b| b.modified.cmp(&a.modified).then_with(|| a.name.cmp(&b.name)));
    let mut summary = LogSummary {
        total_lines: 0,
        errors: 0,
        warnings: 0,
        total_bytes: 0,
        files: Vec::new(),
        skipped: Vec::new(),
        log_dir: options.dir.display().to_string(),
        window_hours: options.window.as_secs_f64() / 3600.0,
        max_bytes: options.max_bytes,
    };
    let mut entries = Vec::new();
    let mut names = HashSet::new();
    let mut remaining = options.max_bytes;
    for candidate in candidates {
        let source = candidate.path.display().to_string();
        if remaining == 0 {
            summary.skipped.push(SkippedLog {
                source,
                reason: format!("the {} byte cap was reached", options.max_bytes),
            });
            continue;
        }
        let (raw, truncated) = match read_tail(&candidate, remaining) {
            Ok(read) => read,
            Err(err) => {
                summary.skipped.push(SkippedLog {
                    source,
                    reason: format!("cannot read it: {err}"),
                });
                continue;
            }
        };
        if truncated && raw.is_empty() {
            // Not even one whole line fits.
            summary.skipped.push(SkippedLog {
                source,
                reason: format!("the {} byte cap was reached", options.max_bytes),
            });
            remaining = 0;
            continue;
        }
        // The file that crosses the cap is the last one.
        remaining = if truncated {
            0
        } else {
            remaining.saturating_sub(raw.len() as u64)
        };
        let counted = mask_and_count(&raw, mask);
        let name = entry_name(&candidate.name, &mut names);
        summary.total_lines += counted.lines;
        summary.errors += counted.errors;
        summary.warnings += counted.warnings;
        summary.total_bytes += counted.text.len() as u64;
        summary.files.push(LogFileSummary {
            name: name.clone(),
            source,
            modified_at: format_timestamp(epoch_ms(candidate.modified)),
            lines: counted.lines,
            errors: counted.errors,
            warnings: counted.warnings,
            bytes: counted.text.len() as u64,
            truncated,
        });
        entries.push((name, counted.text.into_bytes()));
    }
    Ok(CollectedLogs { entries, summary })
}

/// `x.log`, and rotated pieces `x.log.<N>` (gzipped or not yet).
fn is_log_name(name: &str) -> bool {
    name.ends_with(".log")
        || name
            .rsplit_once(".log.")
            .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The `*.log` files and rotated pieces (`*.log.<N>`, `*.log.<N>.gz`, `*.log.gz`) modified
/// within the window.
fn candidates(options: &LogOptions) -> Result<Vec<Candidate>, LogsError> {
    let list_error = |source| LogsError::List {
        dir: options.dir.clone(),
        source,
    };
    let oldest = options.now.checked_sub(options.window).unwrap_or(UNIX_EPOCH);
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&options.dir).map_err(list_error)? {
        let entry = entry.map_err(list_error)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let gzipped = name.ends_with(".gz");
        if !is_log_name(name.strip_suffix(".gz").unwrap_or(&name)) || name.starts_with('.') {
            continue;
        }
        // A file that vanished or cannot be stat'ed since the listing is not a log to bundle.
        let Ok(metadata) = entry.metadata() else { continue };
        let Ok(modified) = metadata.modified() else { continue };
        if !metadata.is_file() || modified < oldest {
            continue;
        }
        found.push(Candidate {
            path: entry.path(),
            name,
            modified,
            gzipped,
        });
    }
    Ok(found)
}

/// The file's content, or its last whole lines within `budget` bytes (`true` then).
fn read_tail(candidate: &Candidate, budget: u64) -> io::Result<(Vec<u8>, bool)> {
    let mut file = File::open(&candidate.path)?;
    let budget = usize::try_from(budget).unwrap_or(usize::MAX);
    let mut content = Vec::new();
    let mut cut = false;
    if candidate.gzipped {
        let mut decoder = MultiGzDecoder::new(file);
        let mut chunk = vec![0; READ_CHUNK_BYTES];
        loop {
            let read = decoder.read(&mut chunk)?;
            if read == 0 {
                break;
            }
            content.extend_from_slice(&chunk[..read]);
            if content.len() > budget.saturating_mul(2).max(READ_CHUNK_BYTES) {
                content.drain(..content.len() - budget);
                cut = true;
            }
        }
    } else {
        let length = file.metadata()?.len();
        if length > budget as u64 {
            file.seek(SeekFrom::Start(length - budget as u64))?;
            cut = true;
        }
        file.take(budget as u64).read_to_end(&mut content)?;
    }
    if content.len() > budget {
        content.drain(..content.len() - budget);
        cut = true;
    }
    if cut {
        // Drop the partial first line.
        let start = content
            .iter()
            .position(|byte| *byte == b'\n')
            .map_or(content.len(), |at| at + 1);
        content.drain(..start);
    }
    Ok((content, cut))
}

struct Counted {
    text: String,
    lines: u64,
    errors: u64,
    warnings: u64,
}

/// Masks every line and counts the JSON lines whose `level` is error or warn.
fn mask_and_count(raw: &[u8], mask: &SecretMask) -> Counted {
    let text = String::from_utf8_lossy(raw);
    let mut counted = Counted {
        text: String::with_capacity(text.len()),
        lines: 0,
        errors: 0,
        warnings: 0,
    };
    for line in text.lines() {
        counted.lines += 1;
        match level(line).as_deref() {
            Some("error" | "fatal") => counted.errors += 1,
            Some("warn" | "warning") => counted.warnings += 1,
            _ => {}
        }
        counted.text.push_str(&mask.text(line));
        counted.text.push('\n');
    }
    counted
}

fn level(line: &str) -> Option<String> {
    if !line.trim_start().starts_with('{') {
        return None;
    }
    let value: Value = serde_json::from_str(line).ok()?;
    value.get("level")?.as_str().map(str::to_ascii_lowercase)
}

/// `logs/<name>` without `.gz`, unique within the bundle.
fn entry_name(file_name: &str, taken: &mut HashSet<String>) -> String {
    let base = file_name.strip_suffix(".gz").unwrap_or(file_name);
    let mut name = format!("logs/{base}");
    let mut counter = 1;
    while !taken.insert(name.clone()) {
        name = format!("logs/{base}-{counter}");
        counter += 1;
    }
    name
}

pub fn epoch_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::path::Path;

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn write_log(dir: &Path, name: &str, content: &str, age: Duration, now: SystemTime) {
        let path = dir.join(name);
        if name.ends_with(".gz") {
            let mut encoder =
                flate2::write::GzEncoder::new(File::create(&path).unwrap(), flate2::Compression::default());
            encoder.write_all(content.as_bytes()).unwrap();
            encoder.finish().unwrap();
        } else {
            std::fs::write(&path, content).unwrap();
        }
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(now - age)
            .unwrap();
    }

    fn no_mask() -> SecretMask {
        SecretMask::new(Vec::new(), &[])
    }

    #[test]
    fn rotated_pieces_are_logs() {
        for (name, want) in [
            ("orchestrator-2026-11-27.log", true),
            ("orchestrator-2026-11-27.log.3", true),
            ("agent-a-2026-11-27.log.12", true),
            ("orchestrator.log.x", false),
            ("notes.txt", false),
            ("orchestrator-2026-11-27.log.", false),
        ] {
            assert_eq!(is_log_name(name), want, "{name}");
        }
    }

    #[test]
    fn newest_first_within_the_window_under_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let line = |level: &str, n: u32| format!("{{\"level\":\"{level}\",\"message\":\"m{n}\"}}\n");
        // 3 lines of 33 (error) or 32 bytes: 99 and 96 bytes per file.
        let content = |level: &str| (0..3).map(|n| line(level, n)).collect::<String>();
        write_log(dir.path(), "orchestrator-2026-11-18.log", &content("error"), HOUR, now);
        write_log(dir.path(), "agent-2026-11-18.log", &content("warn"), 2 * HOUR, now);
        write_log(
            dir.path(),
            "orchestrator-2026-11-17.log.gz",
            &content("info"),
            3 * HOUR,
            now,
        );
        write_log(
            dir.path(),
            "orchestrator-2026-11-16.log.gz",
            &content("error"),
            30 * HOUR,
            now,
        );
        write_log(dir.path(), "notes.txt", "not a log", HOUR, now);
        let options = LogOptions {
            dir: dir.path().to_path_buf(),
            now,
            window: 4 * HOUR,
            max_bytes: 250,
        };
        let collected = collect(&options, &no_mask()).unwrap();
        let names: Vec<&str> = collected.entries.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "logs/orchestrator-2026-11-18.log",
                "logs/agent-2026-11-18.log",
                "logs/orchestrator-2026-11-17.log"
            ]
        );
        // 99 + 96 fit; the third file gets its last whole line within the 55 bytes left.
        assert_eq!(
            String::from_utf8(collected.entries[2].1.clone()).unwrap(),
            line("info", 2)
        );
        let summary = &collected.summary;
        assert_eq!(
            (
                summary.total_lines,
                summary.errors,
                summary.warnings,
                summary.total_bytes
            ),
            (7, 3, 3, 227)
        );
        assert!(summary.files[2].truncated && !summary.files[1].truncated);
        assert!(summary.skipped.is_empty());

        let options = LogOptions {
            max_bytes: 102,
            ..options
        };
        // 99 fit; the 3 bytes left hold no whole line of the next file.
        let collected = collect(&options, &no_mask()).unwrap();
        assert_eq!(collected.entries.len(), 1);
        assert_eq!(collected.summary.skipped.len(), 2);
        assert_eq!(collected.summary.skipped[0].reason, "the 102 byte cap was reached");
    }

    #[test]
    fn lines_are_masked_and_a_missing_dir_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let token = format!("kat_{}", "ab".repeat(32));
        write_log(
            dir.path(),
            "agent.log",
            &format!("plain line {token}\n{{\"level\":\"ERROR\",\"message\":\"hunter22\"}}\n"),
            Duration::ZERO,
            now,
        );
        let mask = SecretMask::new([("KICI_DB_PASSWORD".to_string(), "hunter22".to_string())], &[]);
        let options = LogOptions {
            dir: dir.path().to_path_buf(),
            now,
            window: HOUR,
            max_bytes: DEFAULT_MAX_LOG_BYTES,
        };
        let collected = collect(&options, &mask).unwrap();
        assert_eq!(
            String::from_utf8(collected.entries[0].1.clone()).unwrap(),
            "plain line kat_***\n{\"level\":\"ERROR\",\"message\":\"****\"}\n"
        );
        assert_eq!(collected.summary.errors, 1);
        let missing = LogOptions {
            dir: dir.path().join("nope"),
            ..options
        };
        assert_eq!(
            collect(&missing, &mask).unwrap_err().to_string(),
            format!(
                "Log dir {} does not exist — skipping logs/",
                dir.path().join("nope").display()
            )
        );
    }
}
