//! The `KICI_LOG_DIR` file sink: file names, daily and size rotation, gzip of rotated files and
//! retention. It is synchronous and has one owner, the writer thread (`writer.rs`); times come
//! with each line, so tests drive it with chosen times and no clock.
//!
//! Names (every one matches the `<service>-*.log*` glob):
//! - the live file: `<base>-YYYY-MM-DD.log` (UTC date), where `<base>` is `<service>` or
//!   `<service>-<instanceId>` with the id sanitized to `[A-Za-z0-9_.-]` (see [`file_base`]);
//! - rotated pieces of that day: `<base>-YYYY-MM-DD.log.<N>.gz`, N = 1, 2, 3, … in the order
//!   they were closed (higher is newer, the live file is newest). Nothing is ever renumbered,
//!   so a reader never sees a name change meaning under it. While a piece is being compressed
//!   it exists uncompressed as `<base>-YYYY-MM-DD.log.<N>`; the compressor writes
//!   `.<piece>.gz.tmp` (hidden, outside the glob) and renames it, so a `.gz` is always whole.
//!
//! Rotation: the first line dated after the live file's day closes it (daily rotation at UTC
//! midnight); a line that would take the live file past `KICI_LOG_MAX_SIZE` closes it first
//! (a line larger than the cap still goes, alone, into a file of its own). A closed file is
//! renamed to the next piece and gzipped on a short-lived thread so the writer keeps going. Each
//! new file starts with the process's `<service>.build.info` line once that line was seen.
//!
//! At start: files of days older than the retention are deleted, pieces left uncompressed by an
//! earlier process are compressed, an earlier day's live file of this base is rotated, and
//! today's live file is opened for appending (a restart the same day continues the same file).
//!
//! Retention (at start and at each rotation) covers every file of the *service* — all
//! instance ids, so the files of agents that no longer exist go too — whose day ended more than
//! `KICI_LOG_RETENTION_DAYS` ago. Files not named like ours are never touched.
//!
//! Errors here cannot be logged through the logger that is failing: they go to stderr.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use flate2::Compression;
use flate2::write::GzEncoder;

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;
/// Instance ids are cut to this many characters so names stay far below file-name limits.
const MAX_INSTANCE_ID_CHARS: usize = 64;

/// `<service>` or `<service>-<instanceId>`, the id's characters outside `[A-Za-z0-9_.-]`
/// replaced by `_`. A blank id counts as none.
pub fn file_base(service: &str, instance_id: Option<&str>) -> String {
    match instance_id.map(str::trim).filter(|id| !id.is_empty()) {
        None => service.to_string(),
        Some(id) => {
            let id: String = id
                .chars()
                .take(MAX_INSTANCE_ID_CHARS)
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("{service}-{id}")
        }
    }
}

/// The UTC date (`YYYY-MM-DD`) of an epoch-milliseconds time.
pub(crate) fn utc_date(epoch_ms: i64) -> String {
    let stamp = kici_engine::api::format_timestamp(epoch_ms);
    stamp.get(..10).unwrap_or(&stamp).to_string()
}

/// A file name of ours, taken apart: `<base>-<date>.log[.<piece>[.gz]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LogFileName<'a> {
    base: &'a str,
    date: &'a str,
    piece: Option<u32>,
    gz: bool,
}

fn parse_name(name: &str) -> Option<LogFileName<'_>> {
    let (rest, gz) = match name.strip_suffix(".gz") {
        Some(rest) => (rest, true),
        None => (name, false),
    };
    let (rest, piece) = match rest.rsplit_once('.') {
        Some((head, digits)) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            (head, Some(digits.parse::<u32>().ok()?))
        }
        _ => (rest, None),
    };
    if gz && piece.is_none() {
        return None;
    }
    let rest = rest.strip_suffix(".log")?;
    let split = rest.len().checked_sub(10)?;
    let date = rest.get(split..)?;
    let base = rest.get(..split)?.strip_suffix('-')?;
    (is_date(date) && !base.is_empty()).then_some(LogFileName { base, date, piece, gz })
}

fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
}

/// Where and how files are written.
#[derive(Debug, Clone)]
pub(crate) struct FileSettings {
    pub dir: PathBuf,
    pub service: String,
    /// See [`file_base`].
    pub base: String,
    pub max_size_bytes: u64,
    pub retention_days: u32,
}

struct LiveFile {
    date: String,
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
    /// Nothing but the replayed build-info line so far: never rotated for size.
    fresh: bool,
}

/// The file sink. See the module docs for the rules.
pub(crate) struct FileSink {
    settings: FileSettings,
    live: Option<LiveFile>,
    /// The `<service>.build.info` line, written first in every file opened after it was seen.
    header: Option<Vec<u8>>,
    /// Running gzip threads; joined when finished, and all by [`FileSink::finish`].
    compressions: Vec<JoinHandle<()>>,
}

impl FileSink {
    /// Creates the directory, cleans up (retention, leftovers of earlier processes) and opens
    /// the live file of the day of `now_ms`.
    pub(crate) fn open(settings: FileSettings, now_ms: i64) -> io::Result<FileSink> {
        fs::create_dir_all(&settings.dir)?;
        let mut sink = FileSink {
            settings,
            live: None,
            header: None,
            compressions: Vec::new(),
        };
        sink.prune(now_ms);
        let today = utc_date(now_ms);
        sink.finish_leftovers(&today);
        sink.open_live(&today)?;
        Ok(sink)
    }

    /// Appends one line (with its `\n`) logged at `at_ms`, rotating first when its day is
    /// later than the live file's or it would take the file past the size cap.
    pub(crate) fn write_line(&mut self, at_ms: i64, line: &[u8]) -> io::Result<()> {
        let date = utc_date(at_ms);
        let max = self.settings.max_size_bytes;
        let rotate_to = match &self.live {
            // Lines of an earlier day (threads race at midnight) stay in the live file.
            Some(live) if date > live.date => Some(date),
            Some(live) if !live.fresh && live.size + line.len() as u64 > max => Some(live.date.clone()),
            Some(_) => None,
            None => Some(date),
        };
        if let Some(date) = rotate_to {
            self.close_live();
            self.prune(at_ms);
            self.open_live(&date)?;
        }
        let live = self
            .live
            .as_mut()
            .expect("open_live succeeded above or the file was already open");
        live.out.write_all(line)?;
        live.size += line.len() as u64;
        live.fresh = false;
        Ok(())
    }

    /// Remembers the build-info line (the first one given wins) for files opened later.
    pub(crate) fn set_header(&mut self, line: &[u8]) {
        if self.header.is_none() {
            self.header = Some(line.to_vec());
        }
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        match &mut self.live {
            Some(live) => live.out.flush(),
            None => Ok(()),
        }
    }

    /// Flushes and waits for every compression to end.
    pub(crate) fn finish(&mut self) {
        if let Err(err) = self.flush() {
            report(
                "cannot flush log file",
                self.live.as_ref().map(|l| l.path.as_path()),
                &err,
            );
        }
        for handle in std::mem::take(&mut self.compressions) {
            if handle.join().is_err() {
                eprintln!("kici-telemetry: a log compression thread panicked");
            }
        }
    }

    fn live_file_path(&self, date: &str) -> PathBuf {
        self.settings.dir.join(format!("{}-{date}.log", self.settings.base))
    }

    fn open_live(&mut self, date: &str) -> io::Result<()> {
        let path = self.live_file_path(date);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        let mut live = LiveFile {
            date: date.to_string(),
            path,
            out: BufWriter::new(file),
            size,
            fresh: size == 0,
        };
        if let (Some(header), 0) = (&self.header, size) {
            live.out.write_all(header)?;
            live.size += header.len() as u64;
        }
        self.live = Some(live);
        Ok(())
    }

    /// Closes the live file and turns it into the next piece of its day.
    fn close_live(&mut self) {
        let Some(mut live) = self.live.take() else { return };
        if let Err(err) = live.out.flush() {
            report("cannot flush log file", Some(&live.path), &err);
        }
        drop(live.out);
        self.retire(&live.path, &live.date);
    }

    /// Renames a closed live file to the next piece of `date` and compresses it.
    fn retire(&mut self, path: &Path, date: &str) {
        let piece = self.next_piece(date);
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{piece}"));
        let piece_path = PathBuf::from(name);
        match fs::rename(path, &piece_path) {
            Ok(()) => self.compress_later(piece_path),
            // Deleted under us (by hand, or by another process's retention): nothing to keep.
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => report("cannot rotate log file", Some(path), &err),
        }
    }

    /// 1 + the highest piece number of `date` in the directory.
    fn next_piece(&self, date: &str) -> u32 {
        self.own_files()
            .into_iter()
            .filter_map(|(_, name)| {
                let parsed = parse_name(&name)?;
                (parsed.date == date).then_some(parsed.piece?)
            })
            .max()
            .unwrap_or(0)
            .saturating_add(1)
    }

    /// The files of this base: (path, file name).
    fn own_files(&self) -> Vec<(PathBuf, String)> {
        self.files()
            .into_iter()
            .filter(|(_, name)| parse_name(name).is_some_and(|p| p.base == self.settings.base))
            .collect()
    }

    /// Every file in the directory with a UTF-8 name: (path, file name).
    fn files(&self) -> Vec<(PathBuf, String)> {
        let entries = match fs::read_dir(&self.settings.dir) {
            Ok(entries) => entries,
            Err(err) => {
                report("cannot list log directory", Some(&self.settings.dir), &err);
                return Vec::new();
            }
        };
        entries
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let name = entry.file_name().into_string().ok()?;
                Some((entry.path(), name))
            })
            .collect()
    }

    /// Deletes the service's files of days that ended more than the retention before `now_ms`.
    fn prune(&mut self, now_ms: i64) {
        let retention_ms = i64::from(self.settings.retention_days).saturating_mul(DAY_MS);
        let cutoff = utc_date(now_ms.saturating_sub(retention_ms));
        let service = self.settings.service.as_str();
        let live = self.live.as_ref().map(|l| l.path.clone());
        for (path, name) in self.files() {
            let Some(parsed) = parse_name(&name) else { continue };
            let ours = parsed.base == service
                || parsed
                    .base
                    .strip_prefix(service)
                    .is_some_and(|rest| rest.starts_with('-'));
            if !ours || parsed.date >= cutoff.as_str() || live.as_ref() == Some(&path) {
                continue;
            }
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => report("cannot delete old log file", Some(&path), &err),
            }
        }
    }

    /// Finishes what an earlier process of this base left: temporary files, uncompressed
    /// pieces, and live files of days before `today`.
    fn finish_leftovers(&mut self, today: &str) {
        for (path, name) in self.files() {
            // `.<piece>.gz.tmp` of this base (another base's may be in progress right now).
            let unfinished = name
                .strip_prefix('.')
                .and_then(|rest| rest.strip_suffix(".gz.tmp"))
                .and_then(parse_name)
                .is_some_and(|piece| piece.base == self.settings.base && piece.piece.is_some() && !piece.gz);
            if unfinished && let Err(err) = fs::remove_file(&path) {
                report("cannot delete unfinished compression", Some(&path), &err);
            }
        }
        for (path, name) in self.own_files() {
            let Some(parsed) = parse_name(&name) else { continue };
            match (parsed.piece, parsed.gz) {
                (Some(_), false) => {
                    let mut gz = path.as_os_str().to_owned();
                    gz.push(".gz");
                    if Path::new(&gz).exists() {
                        // Compressed, but the process stopped before removing the original.
                        if let Err(err) = fs::remove_file(&path) {
                            report("cannot delete compressed log file", Some(&path), &err);
                        }
                    } else {
                        self.compress_later(path);
                    }
                }
                (None, _) if parsed.date != today => {
                    let date = parsed.date.to_string();
                    self.retire(&path, &date);
                }
                _ => {}
            }
        }
    }

    fn compress_later(&mut self, path: PathBuf) {
        let finished: Vec<JoinHandle<()>>;
        (finished, self.compressions) = std::mem::take(&mut self.compressions)
            .into_iter()
            .partition(|handle| handle.is_finished());
        for handle in finished {
            if handle.join().is_err() {
                eprintln!("kici-telemetry: a log compression thread panicked");
            }
        }
        let job_path = path.clone();
        let spawned = std::thread::Builder::new()
            .name("kici-log-gzip".to_string())
            .spawn(move || compress_or_report(&job_path));
        match spawned {
            Ok(handle) => self.compressions.push(handle),
            // No thread to spare: compress here, holding the writer up once.
            Err(_) => compress_or_report(&path),
        }
    }
}

fn compress_or_report(path: &Path) {
    if let Err(err) = compress(path) {
        report("cannot compress rotated log file", Some(path), &err);
    }
}

/// `<piece>` → `<piece>.gz` through a hidden temporary file; the original is removed last.
fn compress(path: &Path) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".gz.tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut gz_name = name.to_owned();
    gz_name.push(".gz");
    let gz = path.with_file_name(gz_name);
    let result = (|| {
        let mut input = File::open(path)?;
        let mut encoder = GzEncoder::new(BufWriter::new(File::create(&tmp)?), Compression::default());
        io::copy(&mut input, &mut encoder)?;
        let file = encoder.finish()?.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        fs::rename(&tmp, &gz)
    })();
    if let Err(err) = result {
        // Best effort: the temporary file is hidden and removed at the next start anyway.
        let _ = fs::remove_file(&tmp);
        return Err(err);
    }
    fs::remove_file(path)
}

fn report(what: &str, path: Option<&Path>, err: &io::Error) {
    match path {
        Some(path) => eprintln!("kici-telemetry: {what} `{}`: {err}", path.display()),
        None => eprintln!("kici-telemetry: {what}: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::GzDecoder;

    use super::*;

    /// 2026-03-14T00:00:00Z.
    const MAR_14: i64 = 1_773_446_400_000;

    fn at(day_offset: i64, ms_of_day: i64) -> i64 {
        MAR_14 + day_offset * DAY_MS + ms_of_day
    }

    fn settings(dir: &Path, instance: Option<&str>, max_size_bytes: u64) -> FileSettings {
        FileSettings {
            dir: dir.to_path_buf(),
            service: "agent".to_string(),
            base: file_base("agent", instance),
            max_size_bytes,
            retention_days: 7,
        }
    }

    /// File names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn read(path: &Path) -> String {
        let bytes = fs::read(path).unwrap();
        if path.extension().is_some_and(|e| e == "gz") {
            let mut text = String::new();
            GzDecoder::new(bytes.as_slice()).read_to_string(&mut text).unwrap();
            text
        } else {
            String::from_utf8(bytes).unwrap()
        }
    }

    #[test]
    fn bases_and_dates() {
        assert_eq!(file_base("orchestrator", None), "orchestrator");
        assert_eq!(file_base("agent", Some("build-01")), "agent-build-01");
        assert_eq!(file_base("agent", Some("host 1/../x:y")), "agent-host_1_.._x_y");
        assert_eq!(file_base("agent", Some("Ünï.v2_a")), "agent-_n_.v2_a");
        assert_eq!(file_base("agent", Some("  ")), "agent");
        assert_eq!(file_base("agent", Some(&"x".repeat(100))).len(), "agent-".len() + 64);
        assert_eq!(utc_date(MAR_14), "2026-03-14");
        assert_eq!(utc_date(MAR_14 - 1), "2026-03-13");
    }

    #[test]
    fn names_are_parsed_strictly() {
        let check = |name: &str, want: Option<(&str, &str, Option<u32>, bool)>| {
            let got = parse_name(name).map(|p| (p.base, p.date, p.piece, p.gz));
            assert_eq!(got, want, "{name}");
        };
        check("agent-2026-03-14.log", Some(("agent", "2026-03-14", None, false)));
        check(
            "agent-a1-2026-03-14.log.3",
            Some(("agent-a1", "2026-03-14", Some(3), false)),
        );
        check(
            "agent-a1-2026-03-14.log.12.gz",
            Some(("agent-a1", "2026-03-14", Some(12), true)),
        );
        check(
            "agent-2026-01-01-2026-03-14.log",
            Some(("agent-2026-01-01", "2026-03-14", None, false)),
        );
        check("agent-2026-03-14.log.gz", None);
        check("agent-2026-3-14.log", None);
        check("2026-03-14.log", None);
        check("-2026-03-14.log", None);
        check("agent-2026-03-14.txt", None);
        check("notes.log", None);
        check(".agent-2026-03-14.log.1.gz.tmp", None);
        check("ä-ü2026-03-14.log", None);
    }

    #[test]
    fn lines_go_to_the_days_file_named_after_service_and_instance() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = FileSink::open(settings(dir.path(), Some("box 1"), 1 << 20), at(0, 5)).unwrap();
        sink.write_line(at(0, 10), b"one\n").unwrap();
        sink.write_line(at(0, 20), b"two\n").unwrap();
        sink.finish();
        assert_eq!(names(dir.path()), ["agent-box_1-2026-03-14.log"]);
        assert_eq!(read(&dir.path().join("agent-box_1-2026-03-14.log")), "one\ntwo\n");
    }

    #[test]
    fn a_new_utc_day_rotates_and_gzips_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = FileSink::open(settings(dir.path(), None, 1 << 20), at(0, 1000)).unwrap();
        sink.write_line(at(0, 1000), b"{\"message\":\"agent.build.info\"}\n")
            .unwrap();
        sink.set_header(b"{\"message\":\"agent.build.info\"}\n");
        sink.write_line(at(0, DAY_MS - 1), b"last of the 14th\n").unwrap();
        sink.write_line(at(1, 0), b"first of the 15th\n").unwrap();
        // A line stamped just before midnight that arrives late stays in the new file.
        sink.write_line(at(0, DAY_MS - 2), b"late\n").unwrap();
        sink.write_line(at(3, 0), b"the 17th\n").unwrap();
        sink.finish();
        assert_eq!(
            names(dir.path()),
            [
                "agent-2026-03-14.log.1.gz",
                "agent-2026-03-15.log.1.gz",
                "agent-2026-03-17.log",
            ]
        );
        assert_eq!(
            read(&dir.path().join("agent-2026-03-14.log.1.gz")),
            "{\"message\":\"agent.build.info\"}\nlast of the 14th\n"
        );
        assert_eq!(
            read(&dir.path().join("agent-2026-03-15.log.1.gz")),
            "{\"message\":\"agent.build.info\"}\nfirst of the 15th\nlate\n"
        );
        assert_eq!(
            read(&dir.path().join("agent-2026-03-17.log")),
            "{\"message\":\"agent.build.info\"}\nthe 17th\n"
        );
    }

    #[test]
    fn the_size_cap_rotates_into_numbered_gzipped_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = FileSink::open(settings(dir.path(), Some("a"), 20), at(0, 0)).unwrap();
        sink.set_header(b"H\n");
        let lines: Vec<String> = (0..7).map(|i| format!("line-{i:02}\n")).collect(); // 8 bytes each
        for line in &lines {
            sink.write_line(at(0, 1), line.as_bytes()).unwrap();
        }
        // Bigger than the cap: alone in a file (after the header), never split.
        let big = format!("{}\n", "x".repeat(29));
        sink.write_line(at(0, 2), big.as_bytes()).unwrap();
        sink.write_line(at(0, 3), b"after\n").unwrap();
        sink.finish();
        assert_eq!(
            names(dir.path()),
            [
                "agent-a-2026-03-14.log",
                "agent-a-2026-03-14.log.1.gz",
                "agent-a-2026-03-14.log.2.gz",
                "agent-a-2026-03-14.log.3.gz",
                "agent-a-2026-03-14.log.4.gz",
                "agent-a-2026-03-14.log.5.gz",
            ]
        );
        let piece = |n: u32| read(&dir.path().join(format!("agent-a-2026-03-14.log.{n}.gz")));
        // The header, set after the first file was opened, starts every later file.
        assert_eq!(piece(1), "line-00\nline-01\n");
        assert_eq!(piece(2), "H\nline-02\nline-03\n");
        assert_eq!(piece(3), "H\nline-04\nline-05\n");
        assert_eq!(piece(4), "H\nline-06\n");
        assert_eq!(piece(5), format!("H\n{big}"));
        assert_eq!(read(&dir.path().join("agent-a-2026-03-14.log")), "H\nafter\n");
        for name in names(dir.path()) {
            assert!(name.starts_with("agent-") && name.contains(".log"), "{name}");
        }
    }

    #[test]
    fn a_restart_appends_to_todays_file_and_continues_the_numbering() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("agent-2026-03-14.log"), "earlier process\n").unwrap();
        fs::write(dir.path().join("agent-2026-03-14.log.1.gz"), "").unwrap();
        let mut sink = FileSink::open(settings(dir.path(), None, 30), at(0, 0)).unwrap();
        sink.write_line(at(0, 1), b"this process\n").unwrap();
        sink.write_line(at(0, 2), b"rotates now\n").unwrap();
        sink.finish();
        assert_eq!(
            names(dir.path()),
            [
                "agent-2026-03-14.log",
                "agent-2026-03-14.log.1.gz",
                "agent-2026-03-14.log.2.gz"
            ]
        );
        assert_eq!(
            read(&dir.path().join("agent-2026-03-14.log.2.gz")),
            "earlier process\nthis process\n"
        );
        assert_eq!(read(&dir.path().join("agent-2026-03-14.log")), "rotates now\n");
    }

    #[test]
    fn leftovers_of_an_earlier_process_are_finished_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| fs::write(dir.path().join(name), text).unwrap();
        file("agent-x-2026-03-13.log", "yesterday, never rotated\n");
        file("agent-x-2026-03-14.log.1", "piece left uncompressed\n");
        file(".agent-x-2026-03-14.log.1.gz.tmp", "half written");
        // Another agent's files are its own business, even an unfinished compression.
        file("agent-y-2026-03-13.log", "other agent\n");
        file(".agent-x-y-2026-03-14.log.1.gz.tmp", "agent x-y compressing");
        let mut sink = FileSink::open(settings(dir.path(), Some("x"), 1 << 20), at(0, 0)).unwrap();
        sink.finish();
        assert_eq!(
            names(dir.path()),
            [
                ".agent-x-y-2026-03-14.log.1.gz.tmp",
                "agent-x-2026-03-13.log.1.gz",
                "agent-x-2026-03-14.log",
                "agent-x-2026-03-14.log.1.gz",
                "agent-y-2026-03-13.log",
            ]
        );
        assert_eq!(
            read(&dir.path().join("agent-x-2026-03-13.log.1.gz")),
            "yesterday, never rotated\n"
        );
        assert_eq!(
            read(&dir.path().join("agent-x-2026-03-14.log.1.gz")),
            "piece left uncompressed\n"
        );
    }

    #[test]
    fn retention_deletes_the_services_old_files_at_start_and_at_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let touch = |name: &str| fs::write(dir.path().join(name), "").unwrap();
        // Now is 2026-03-14; 7 days keep 2026-03-07 and later.
        touch("agent-2026-03-06.log.1.gz");
        touch("agent-old-agent-2026-03-01.log.4.gz");
        touch("agent-2026-03-07.log.1.gz");
        touch("agent-x-2026-03-07.log");
        touch("orchestrator-2026-03-01.log.1.gz");
        touch("agentsmith-2026-03-01.log");
        touch("notes-2026-01-01.txt");
        let mut sink = FileSink::open(settings(dir.path(), None, 1 << 20), at(0, 0)).unwrap();
        sink.finish();
        assert_eq!(
            names(dir.path()),
            [
                "agent-2026-03-07.log.1.gz",
                "agent-2026-03-14.log",
                "agent-x-2026-03-07.log",
                "agentsmith-2026-03-01.log",
                "notes-2026-01-01.txt",
                "orchestrator-2026-03-01.log.1.gz",
            ]
        );
        // A day later the 7th is out of the window: the rotation at midnight deletes it.
        sink.write_line(at(1, 0), b"next day\n").unwrap();
        sink.finish();
        assert_eq!(
            names(dir.path()),
            [
                "agent-2026-03-14.log.1.gz",
                "agent-2026-03-15.log",
                "agentsmith-2026-03-01.log",
                "notes-2026-01-01.txt",
                "orchestrator-2026-03-01.log.1.gz",
            ]
        );
    }
}
