//! Runs one target in this process for a time budget: input after input from the
//! [`Generator`], each call under `catch_unwind`, on a thread with the stack a tokio worker
//! has (what the orchestrator and the agent parse on). A panic is recorded by its location;
//! the first input to panic at a location is minimized and written to the crash directory.
//!
//! Before each call the input's number is written to `<crash dir>/<target>.inflight`, so when
//! the process dies in a way `catch_unwind` cannot see (stack overflow, abort, out of memory,
//! a hang the supervisor kills), the supervisor knows which input did it and makes it again.
//!
//! The panic hook this installs is process-wide: it records panics raised inside a target call
//! instead of printing them, and leaves any other panic to the default hook.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::Target;
use crate::generate::Generator;

/// Tokio's default worker thread stack, where the orchestrator and the agent run parsers.
pub const STACK_BYTES: usize = 2 << 20;
/// How long minimizing one panicking input may take.
const MINIMIZE_BUDGET: Duration = Duration::from_secs(2);
/// Distinct panics minimized per run; later ones are saved as they came.
const MAX_MINIMIZED: usize = 10;
/// Characters of an input shown in reports.
pub const PREVIEW_CHARS: usize = 300;

/// What one worker run did: inputs executed, one entry per distinct panic location, and the
/// input that took longest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub inputs: u64,
    pub panics: Vec<PanicReport>,
    pub slowest: Option<SlowInput>,
}

/// What a worker prints on stdout for the supervisor, one JSON object per line: each new panic
/// as it is found, then the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerLine {
    Panic(PanicReport),
    Done(Report),
}

/// A panic location (`file:line:column`), its message, how many inputs panicked there, and
/// the first of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PanicReport {
    pub location: String,
    pub message: String,
    pub count: u64,
    pub first: Finding,
}

/// An input that broke a target, saved for replay: its number and strategy, its size as
/// generated and as saved (minimized for panics), and its start as text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    pub index: u64,
    pub strategy: String,
    pub original_bytes: usize,
    pub bytes: usize,
    pub preview: String,
    pub file: PathBuf,
}

/// The input that took longest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlowInput {
    pub index: u64,
    pub strategy: String,
    pub bytes: usize,
    pub millis: u64,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Budget {
    pub target: Target,
    pub duration: Duration,
    pub seed: u64,
    /// The first input number: 0, or where a crashed worker stopped plus one.
    pub start_index: u64,
    pub crash_dir: PathBuf,
    /// See [`Generator::new`].
    pub max_list: usize,
}

/// A panic raised by a target call.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Caught {
    location: String,
    message: String,
}

thread_local! {
    static IN_TARGET: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<Caught>> = const { RefCell::new(None) };
}

fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_TARGET.get() {
                default_hook(info);
                return;
            }
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(non-string panic payload)".to_string());
            let location = info.location().map_or_else(
                || "(unknown location)".to_string(),
                |at| format!("{}:{}:{}", at.file(), at.line(), at.column()),
            );
            LAST_PANIC.set(Some(Caught { location, message }));
        }));
    });
}

/// Calls the target on one input; `Err` is the panic it raised.
fn call(target: Target, input: &[u8]) -> Result<(), Caught> {
    IN_TARGET.set(true);
    let result = catch_unwind(AssertUnwindSafe(|| target.run(input)));
    IN_TARGET.set(false);
    result.map_err(|_| {
        LAST_PANIC.take().unwrap_or_else(|| Caught {
            location: "(unknown location)".to_string(),
            message: "(no panic information)".to_string(),
        })
    })
}

/// The file holding the number of the input being run.
pub fn inflight_path(crash_dir: &Path, target: Target) -> PathBuf {
    crash_dir.join(format!("{target}.inflight"))
}

/// Reads the number a dead worker left in its in-flight file.
pub fn read_inflight(crash_dir: &Path, target: Target) -> Option<u64> {
    let bytes = std::fs::read(inflight_path(crash_dir, target)).ok()?;
    Some(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// Runs the budget on a thread of [`STACK_BYTES`]; `found` hears of each new panic location
/// as soon as it is saved, so a worker that dies later has still told it.
pub fn run(budget: Budget, found: impl FnMut(&PanicReport) + Send + 'static) -> std::io::Result<Report> {
    install_hook();
    std::fs::create_dir_all(&budget.crash_dir)?;
    let inflight = File::create(inflight_path(&budget.crash_dir, budget.target))?;
    let thread = std::thread::Builder::new()
        .name(format!("fuzz-{}", budget.target))
        .stack_size(STACK_BYTES)
        .spawn(move || fuzz_loop(&budget, &inflight, found))?;
    thread
        .join()
        .map_err(|_| std::io::Error::other("the fuzz loop panicked outside a target call"))?
}

fn fuzz_loop(budget: &Budget, inflight: &File, mut found: impl FnMut(&PanicReport)) -> std::io::Result<Report> {
    let generator = Generator::new(budget.target, budget.max_list);
    let started = Instant::now();
    let mut report = Report::default();
    let mut index = budget.start_index;
    while started.elapsed() < budget.duration {
        let (input, strategy) = generator.input(budget.seed, index);
        inflight.write_all_at(&index.to_le_bytes(), 0)?;
        let call_started = Instant::now();
        let result = call(budget.target, &input);
        let millis = u64::try_from(call_started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if report.slowest.as_ref().is_none_or(|slow| millis > slow.millis) {
            report.slowest = Some(SlowInput {
                index,
                strategy: strategy.name().to_string(),
                bytes: input.len(),
                millis,
            });
        }
        if let Err(caught) = result {
            match report.panics.iter_mut().find(|known| known.location == caught.location) {
                Some(known) => known.count += 1,
                None => {
                    let minimized = if report.panics.len() < MAX_MINIMIZED {
                        minimize(budget.target, &input, &caught.location)
                    } else {
                        input.clone()
                    };
                    let file = save(&budget.crash_dir, budget.target, "panic", &caught.location, &minimized)?;
                    let panic = PanicReport {
                        location: caught.location,
                        message: caught.message,
                        count: 1,
                        first: Finding {
                            index,
                            strategy: strategy.name().to_string(),
                            original_bytes: input.len(),
                            bytes: minimized.len(),
                            preview: preview(&minimized),
                            file,
                        },
                    };
                    found(&panic);
                    report.panics.push(panic);
                }
            }
        }
        report.inputs += 1;
        index += 1;
    }
    Ok(report)
}

/// Removes chunks, halving their size, while the input still panics at `location`.
fn minimize(target: Target, input: &[u8], location: &str) -> Vec<u8> {
    let deadline = Instant::now() + MINIMIZE_BUDGET;
    let panics_here = |candidate: &[u8]| matches!(call(target, candidate), Err(caught) if caught.location == location);
    let mut best = input.to_vec();
    let mut chunk = best.len() / 2;
    while chunk > 0 && Instant::now() < deadline {
        let mut start = 0;
        let mut shrunk = false;
        while start < best.len() && Instant::now() < deadline {
            let end = (start + chunk).min(best.len());
            let candidate: Vec<u8> = best[..start].iter().chain(&best[end..]).copied().collect();
            if panics_here(&candidate) {
                best = candidate;
                shrunk = true;
            } else {
                start += chunk;
            }
        }
        if !shrunk {
            chunk /= 2;
        }
    }
    best
}

/// Writes a finding's input to `<crash dir>/<target>-<kind>-<hash of key>.bin`.
pub fn save(crash_dir: &Path, target: Target, kind: &str, key: &str, input: &[u8]) -> std::io::Result<PathBuf> {
    let hash = kici_engine::hash::sha256_hex(key.as_bytes());
    let path = crash_dir.join(format!("{target}-{kind}-{}.bin", &hash[..12]));
    std::fs::write(&path, input)?;
    Ok(path)
}

/// The start of an input as escaped text, with its size when cut.
pub fn preview(input: &[u8]) -> String {
    let text = String::from_utf8_lossy(input);
    let shown: String = text.chars().take(PREVIEW_CHARS).collect();
    let mut escaped = shown.escape_debug().to_string();
    if shown.len() < text.len() {
        escaped.push_str(&format!("… ({} bytes in all)", input.len()));
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_cut_and_escaped() {
        assert_eq!(preview(b"a\nb"), "a\\nb");
        let long = vec![b'x'; 1_000];
        assert_eq!(
            preview(&long),
            format!("{}… (1000 bytes in all)", "x".repeat(PREVIEW_CHARS))
        );
    }

    #[test]
    fn a_short_run_counts_inputs_and_keeps_the_inflight_number() {
        let dir = tempfile::tempdir().unwrap();
        let report = run(
            Budget {
                target: Target::Triggers,
                duration: Duration::from_millis(300),
                seed: 5,
                start_index: 40,
                crash_dir: dir.path().to_path_buf(),
                max_list: 100,
            },
            |_| {},
        )
        .unwrap();
        assert!(report.inputs > 0);
        assert_eq!(
            read_inflight(dir.path(), Target::Triggers),
            Some(40 + report.inputs - 1)
        );
    }
}
