//! `kici compile [--check] [--watch]`: compile the workflows and write (or, with `--check`,
//! verify) the lock file. Prints one summary line on success and GNU-style diagnostics on
//! failure; never writes a lock file when there is any error. `--watch` (in `watch`) compiles
//! again whenever the sources change.

mod verbose;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use kici_compiler::compile::{CompileError, compile};
use kici_compiler::diagnostic::Diagnostic;
use kici_compiler::project::Project;
use kici_compiler::runner::find_node;
use kici_engine::lockfile::{LOCK_FILE_NAME, LockFile};

use crate::ProjectArgs;
use crate::run_local::report::seconds;

#[derive(Debug, clap::Args)]
pub struct CompileArgs {
    /// Validate without writing; fails when the committed lock file is out of date
    #[arg(long)]
    check: bool,
    /// Compile again whenever a file under .kici/ (or a hashFiles input) changes; Ctrl+C stops
    #[arg(long, conflicts_with = "check")]
    watch: bool,
    /// Also print, per workflow file, its workflows with their triggers and jobs, and how long
    /// each compiler phase took
    #[arg(long)]
    verbose: bool,
    #[command(flatten)]
    project: ProjectArgs,
}

/// Whether a compilation writes the lock file or compares it with the committed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Write,
    Check,
}

/// Whether the result line says how long the compilation took (`--watch` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timing {
    Hidden,
    Shown,
}

/// How much a successful compilation prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detail {
    /// The result line.
    Summary,
    /// The workflows of each file and the phases' timings, then the result line.
    Verbose,
}

/// How every compilation of one `kici compile` is done.
struct Compiler {
    project: Project,
    node: PathBuf,
    mode: Mode,
    timing: Timing,
    detail: Detail,
}

pub async fn run(args: CompileArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let project = match Project::locate(args.project.kici_dir.as_deref(), &cwd) {
        Ok(project) => project,
        Err(diagnostic) => return Ok(report_errors(&[diagnostic], None)),
    };
    let node = find_node(args.project.node.as_deref()).map_err(anyhow::Error::msg)?;
    let mode = if args.check { Mode::Check } else { Mode::Write };
    let timing = if args.watch { Timing::Shown } else { Timing::Hidden };
    let detail = if args.verbose { Detail::Verbose } else { Detail::Summary };
    let compiler = Compiler {
        project,
        node,
        mode,
        timing,
        detail,
    };
    if args.watch {
        return watch::run(&compiler).await;
    }
    Ok(match compiler.compile_once().await? {
        Some(_) => ExitCode::SUCCESS,
        None => ExitCode::FAILURE,
    })
}

impl Compiler {
    /// Compiles once and prints the outcome: notes and diagnostics on stderr, the result line
    /// on stdout. The lock file when it compiled (and, with `--check`, matched), else `None`.
    async fn compile_once(&self) -> anyhow::Result<Option<LockFile>> {
        let started = Instant::now();
        let took = || match self.timing {
            Timing::Hidden => String::new(),
            Timing::Shown => format!(" in {}", seconds(started.elapsed().as_millis() as u64)),
        };
        let compiled = match compile(&self.project, self.node.clone()).await {
            Ok(compiled) => compiled,
            Err(CompileError::Diagnostics(diagnostics)) => {
                report_errors(&diagnostics, Some(&took()));
                return Ok(None);
            }
            Err(err) => return Err(err.into()),
        };
        for note in &compiled.notes {
            eprintln!("{note}");
        }
        if self.detail == Detail::Verbose {
            print!("{}", verbose::render(&compiled.lock, &compiled.timings));
        }
        let count = compiled.lock.workflows.len();
        let plural = if count == 1 { "workflow" } else { "workflows" };
        let lock_path = self.project.kici_dir.join(LOCK_FILE_NAME);
        let relative = self.project.relative(&lock_path);
        match self.mode {
            Mode::Check => {
                if !check_lock(&lock_path, &relative, &compiled.lock)? {
                    return Ok(None);
                }
                println!("✓ Workflows are valid ({count} {plural}){}", took());
            }
            Mode::Write => {
                write_lock(&lock_path, &relative, &compiled.lock.to_json())?;
                println!("✓ Compiled workflows → {relative} ({count} {plural}){}", took());
            }
        }
        Ok(Some(compiled.lock))
    }
}

/// Whether the lock file at `lock_path` holds `lock`; prints why not.
fn check_lock(lock_path: &Path, relative: &str, lock: &LockFile) -> anyhow::Result<bool> {
    match std::fs::read_to_string(lock_path) {
        // Compared as JSON, so a checkout with CRLF line endings is not "out of date".
        Ok(existing)
            if serde_json::from_str::<serde_json::Value>(&existing).ok() == serde_json::to_value(lock).ok() =>
        {
            Ok(true)
        }
        Ok(_) => {
            eprintln!("error: {relative} is out of date\n  hint: run `kici compile` and commit the result");
            Ok(false)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("error: {relative} does not exist\n  hint: run `kici compile` and commit the result");
            Ok(false)
        }
        Err(err) => Err(err).with_context(|| format!("failed to read `{relative}`")),
    }
}

/// Writes `text` next to the target and renames it, so a crash never leaves half a lock file
/// (and a watcher never reads one).
fn write_lock(lock_path: &Path, relative: &str, text: &str) -> anyhow::Result<()> {
    let partial = lock_path.with_extension("json.partial");
    std::fs::write(&partial, text).with_context(|| format!("failed to write `{}`", partial.display()))?;
    std::fs::rename(&partial, lock_path).with_context(|| format!("failed to write `{relative}`"))
}

/// Prints every diagnostic and the closing count line (with `took`, how long it took).
fn report_errors(diagnostics: &[Diagnostic], took: Option<&str>) -> ExitCode {
    for diagnostic in diagnostics {
        eprintln!("{diagnostic}");
    }
    let plural = if diagnostics.len() == 1 { "" } else { "s" };
    eprintln!(
        "✗ {} error{plural} — {LOCK_FILE_NAME} not written{}",
        diagnostics.len(),
        took.unwrap_or_default()
    );
    ExitCode::FAILURE
}
