//! `kici-fuzz <target…|all> [--seconds N] [--seed S] [--crash-dir DIR]`: fuzzes each target for
//! N seconds and prints, per target, the inputs executed, the distinct panics and crashes, and
//! the elapsed time. Findings are printed with their input (cut) and saved under the crash
//! directory; `kici-fuzz <target> --replay FILE` runs one saved input with the default panic
//! output.
//!
//! Each target runs in a worker process (this binary with `--worker`), supervised here: a
//! worker that dies (stack overflow, abort, out of memory) or hangs past its budget is
//! reported as a crash with the input it was running, then restarted after that input.
//!
//! Exit codes: 0 nothing found, 1 a panic or crash was found, 2 bad usage or the harness
//! itself failed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use clap::builder::PossibleValuesParser;
use kici_fuzz::Target;
use kici_fuzz::generate::Generator;
use kici_fuzz::worker::{self, Budget, Finding, PanicReport, Report, SlowInput, WorkerLine};
use wait_timeout::ChildExt;

/// A panic or crash was found.
const EXIT_FOUND: u8 = 1;
/// Bad usage (clap's code too) or the harness failed.
const EXIT_HARNESS: u8 = 2;
/// How long a worker may run past its budget (slow last input, minimizing) before it counts
/// as hung and is killed.
const HANG_GRACE: Duration = Duration::from_secs(60);
/// Worker restarts per target after crashes; past this the target stops early.
const MAX_CRASHES: usize = 20;
/// Lines of a dead worker's stderr kept for the report.
const STDERR_TAIL_LINES: usize = 3;

#[derive(Parser)]
#[command(
    name = "kici-fuzz",
    about = "Throws mutated, random and hostile inputs at KiCI's parsers; no input may panic"
)]
struct Cli {
    /// What to fuzz: target names, or `all`.
    #[arg(value_parser = target_names(), required = true, num_args = 1..)]
    targets: Vec<String>,
    /// Time per target.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Seed of the run (default: from the clock); with an input number it makes any input again.
    #[arg(long)]
    seed: Option<u64>,
    /// Longest list a `long-list` input makes; lower it for short runs of a debug build, where
    /// thousands of patterns take seconds to compile.
    #[arg(long, default_value_t = 10_000)]
    max_list: usize,
    /// Where findings are saved.
    #[arg(long, default_value = "target/kici-fuzz")]
    crash_dir: PathBuf,
    /// Runs the target once on this file, panics printed as usual.
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,
    /// Writes input number INDEX of the run seeded with --seed to the crash directory (to look
    /// at a slow input) and exits.
    #[arg(long, value_name = "INDEX", requires = "seed")]
    write_input: Option<u64>,
    /// Runs as a worker process (used by the supervisor).
    #[arg(long, hide = true)]
    worker: bool,
    /// The worker's first input number.
    #[arg(long, hide = true, default_value_t = 0)]
    start_index: u64,
}

fn target_names() -> PossibleValuesParser {
    let mut names = vec!["all"];
    names.extend(Target::ALL.map(Target::name));
    PossibleValuesParser::new(names)
}

/// A worker that died or hung, and the input it was running.
struct Crash {
    kind: String,
    stderr: String,
    count: u64,
    first: Finding,
}

/// Everything one target's workers did.
#[derive(Default)]
struct Totals {
    inputs: u64,
    panics: Vec<PanicReport>,
    crashes: Vec<Crash>,
    slowest: Option<SlowInput>,
}

impl Totals {
    fn add(&mut self, report: Report) {
        self.inputs += report.inputs;
        for panic in report.panics {
            match self.panics.iter_mut().find(|known| known.location == panic.location) {
                Some(known) => known.count += panic.count,
                None => self.panics.push(panic),
            }
        }
        if let Some(slow) = report.slowest
            && self.slowest.as_ref().is_none_or(|known| slow.millis > known.millis)
        {
            self.slowest = Some(slow);
        }
    }
}

enum WorkerEnd {
    Finished(Report),
    /// Died or hung, after reporting these panics.
    Died {
        status: Option<ExitStatus>,
        stderr: String,
        panics: Vec<PanicReport>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut targets: Vec<Target> = Vec::new();
    for name in &cli.targets {
        let named = Target::from_name(name).map_or(Target::ALL.to_vec(), |target| vec![target]);
        for target in named {
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
    }
    let result = if let Some(file) = &cli.replay {
        replay(targets[0], file)
    } else if let Some(index) = cli.write_input {
        write_input(&cli, targets[0], index)
    } else if cli.worker {
        run_worker(&cli, targets[0])
    } else {
        supervise(&cli, &targets)
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(EXIT_HARNESS)
        }
    }
}

fn replay(target: Target, file: &Path) -> anyhow::Result<ExitCode> {
    let input = std::fs::read(file).map_err(|err| anyhow::anyhow!("cannot read `{}`: {err}", file.display()))?;
    target.run(&input);
    println!("{target}: `{}` ran without a panic", file.display());
    Ok(ExitCode::SUCCESS)
}

fn write_input(cli: &Cli, target: Target, index: u64) -> anyhow::Result<ExitCode> {
    let seed = cli.seed.unwrap_or_default();
    let (input, strategy) = Generator::new(target, cli.max_list).input(seed, index);
    std::fs::create_dir_all(&cli.crash_dir)?;
    let path = cli.crash_dir.join(format!("{target}-{seed}-{index}.bin"));
    std::fs::write(&path, &input)?;
    println!("{}: {} bytes ({})", path.display(), input.len(), strategy.name());
    Ok(ExitCode::SUCCESS)
}

fn run_worker(cli: &Cli, target: Target) -> anyhow::Result<ExitCode> {
    let budget = Budget {
        target,
        duration: Duration::from_secs_f64(cli.seconds.max(0.0)),
        seed: cli.seed.unwrap_or_default(),
        start_index: cli.start_index,
        crash_dir: cli.crash_dir.clone(),
        max_list: cli.max_list,
    };
    let report = worker::run(budget, |panic| print_line(&WorkerLine::Panic(panic.clone())))?;
    print_line(&WorkerLine::Done(report));
    Ok(ExitCode::SUCCESS)
}

/// One line to the supervisor, flushed: the worker may die right after.
fn print_line(line: &WorkerLine) {
    let mut stdout = std::io::stdout().lock();
    let text = serde_json::to_string(line).expect("worker lines serialize");
    // A supervisor that stopped reading is gone; the worker then has no one to tell.
    let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
}

fn supervise(cli: &Cli, targets: &[Target]) -> anyhow::Result<ExitCode> {
    let seed = cli.seed.unwrap_or_else(clock_seed);
    std::fs::create_dir_all(&cli.crash_dir)
        .map_err(|err| anyhow::anyhow!("cannot create the crash directory `{}`: {err}", cli.crash_dir.display()))?;
    println!(
        "kici-fuzz: seed {seed}, {} s per target, {} MiB stack, findings under {}",
        cli.seconds,
        worker::STACK_BYTES >> 20,
        cli.crash_dir.display()
    );
    println!(
        "{:<18} {:>10} {:>9} {:>6} {:>7} {:>8}  slowest input",
        "target", "inputs", "inputs/s", "panics", "crashes", "elapsed"
    );
    let mut found = false;
    for &target in targets {
        let started = Instant::now();
        let totals = fuzz_target(cli, target, seed)?;
        // Only a dead worker's number is worth keeping, and it has been read by now.
        let _ = std::fs::remove_file(worker::inflight_path(&cli.crash_dir, target));
        let elapsed = started.elapsed().as_secs_f64();
        print_totals(target, &totals, elapsed, seed);
        found |= !totals.panics.is_empty() || !totals.crashes.is_empty();
    }
    Ok(if found {
        ExitCode::from(EXIT_FOUND)
    } else {
        ExitCode::SUCCESS
    })
}

fn clock_seed() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    // A clock before 1970 only makes the seed 0; any seed is as good.
    now.map_or(0, |since| since.as_nanos() as u64)
}

/// Runs workers until the target's time is used, restarting after each crash.
fn fuzz_target(cli: &Cli, target: Target, seed: u64) -> anyhow::Result<Totals> {
    let budget = Duration::from_secs_f64(cli.seconds.max(0.0));
    let started = Instant::now();
    let mut totals = Totals::default();
    let mut start_index = 0;
    let mut generator: Option<Generator> = None;
    loop {
        let remaining = budget.saturating_sub(started.elapsed());
        match spawn_worker(cli, target, seed, start_index, remaining)? {
            WorkerEnd::Finished(report) => {
                totals.add(report);
                return Ok(totals);
            }
            WorkerEnd::Died { status, stderr, panics } => {
                totals.add(Report {
                    panics,
                    ..Report::default()
                });
                let index = worker::read_inflight(&cli.crash_dir, target)
                    .ok_or_else(|| anyhow::anyhow!("the {target} worker died before its first input: {stderr}"))?;
                totals.inputs += index.saturating_sub(start_index) + 1;
                let generator = generator.get_or_insert_with(|| Generator::new(target, cli.max_list));
                let (input, strategy) = generator.input(seed, index);
                let kind = crash_kind(status, &stderr, remaining + HANG_GRACE);
                match totals
                    .crashes
                    .iter_mut()
                    .find(|known| known.kind == kind && known.first.strategy == strategy.name())
                {
                    Some(known) => known.count += 1,
                    None => {
                        let key = format!("{kind} {}", strategy.name());
                        totals.crashes.push(Crash {
                            kind,
                            stderr,
                            count: 1,
                            first: Finding {
                                index,
                                strategy: strategy.name().to_string(),
                                original_bytes: input.len(),
                                bytes: input.len(),
                                preview: worker::preview(&input),
                                file: worker::save(&cli.crash_dir, target, "crash", &key, &input)?,
                            },
                        });
                    }
                }
                start_index = index + 1;
                let crashes: u64 = totals.crashes.iter().map(|crash| crash.count).sum();
                if started.elapsed() >= budget || crashes as usize >= MAX_CRASHES {
                    return Ok(totals);
                }
            }
        }
    }
}

fn spawn_worker(cli: &Cli, target: Target, seed: u64, start_index: u64, budget: Duration) -> anyhow::Result<WorkerEnd> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .arg(target.name())
        .arg("--worker")
        .args(["--seconds", &budget.as_secs_f64().to_string()])
        .args(["--seed", &seed.to_string()])
        .args(["--start-index", &start_index.to_string()])
        .args(["--max-list", &cli.max_list.to_string()])
        .arg("--crash-dir")
        .arg(&cli.crash_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = read_in_background(child.stdout.take().expect("stdout is piped"));
    let stderr = read_in_background(child.stderr.take().expect("stderr is piped"));
    let status = match child.wait_timeout(budget + HANG_GRACE)? {
        Some(status) => Some(status),
        None => {
            child.kill()?;
            child.wait()?;
            None
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let mut panics = Vec::new();
    let mut report = None;
    for line in stdout.split(|&byte| byte == b'\n').filter(|line| !line.is_empty()) {
        match serde_json::from_slice::<WorkerLine>(line) {
            Ok(WorkerLine::Panic(panic)) => panics.push(panic),
            Ok(WorkerLine::Done(done)) => report = Some(done),
            // A line cut short by the worker's death.
            Err(_) => {}
        }
    }
    Ok(match report.filter(|_| status.is_some_and(|status| status.success())) {
        Some(report) => WorkerEnd::Finished(report),
        None => WorkerEnd::Died {
            status,
            stderr: tail(&stderr),
            panics,
        },
    })
}

fn read_in_background(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error only shortens what the report shows.
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join(" | ")
}

fn crash_kind(status: Option<ExitStatus>, stderr: &str, waited: Duration) -> String {
    use std::os::unix::process::ExitStatusExt;
    let Some(status) = status else {
        return format!("hang (no answer after {} s)", waited.as_secs());
    };
    if stderr.contains("has overflowed its stack") {
        "stack overflow".to_string()
    } else if stderr.contains("memory allocation of") {
        "out of memory".to_string()
    } else if let Some(signal) = status.signal() {
        format!("killed by signal {signal}")
    } else {
        format!("worker exited with {status}")
    }
}

fn print_totals(target: Target, totals: &Totals, elapsed: f64, seed: u64) {
    let per_second = totals.inputs as f64 / elapsed.max(f64::EPSILON);
    let slowest = totals.slowest.as_ref().map_or_else(String::new, |slow| {
        format!(
            "{} ms (#{} {}, {} bytes)",
            slow.millis, slow.index, slow.strategy, slow.bytes
        )
    });
    println!(
        "{:<18} {:>10} {:>9.0} {:>6} {:>7} {:>6.1} s  {slowest}",
        target.name(),
        totals.inputs,
        per_second,
        totals.panics.len(),
        totals.crashes.len(),
        elapsed
    );
    for panic in &totals.panics {
        println!("  PANIC at {}: {}", panic.location, panic.message);
        print_finding(target, &panic.first, panic.count, seed);
    }
    for crash in &totals.crashes {
        println!("  CRASH: {}: {}", crash.kind, crash.stderr);
        print_finding(target, &crash.first, crash.count, seed);
    }
}

fn print_finding(target: Target, first: &Finding, count: u64, seed: u64) {
    println!(
        "    {count} input(s); first: #{} of seed {seed} ({}, {} bytes, saved as {}): {}",
        first.index, first.strategy, first.original_bytes, first.bytes, first.preview
    );
    println!(
        "    saved: {} (replay: kici-fuzz {target} --replay {})",
        first.file.display(),
        first.file.display()
    );
}
