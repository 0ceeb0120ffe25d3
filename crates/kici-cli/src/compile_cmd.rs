//! `kici compile [--check]`: compile the workflows and write (or, with `--check`, verify) the
//! lock file. Prints one summary line on success and GNU-style diagnostics on failure; never
//! writes a lock file when there is any error.

use std::process::ExitCode;

use anyhow::Context;
use kici_compiler::compile::{CompileError, compile};
use kici_compiler::diagnostic::Diagnostic;
use kici_compiler::project::Project;
use kici_compiler::runner::find_node;
use kici_engine::lockfile::LOCK_FILE_NAME;

use crate::ProjectArgs;

#[derive(Debug, clap::Args)]
pub struct CompileArgs {
    /// Validate without writing; fails when the committed lock file is out of date
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    project: ProjectArgs,
}

pub async fn run(args: CompileArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let project = match Project::locate(args.project.kici_dir.as_deref(), &cwd) {
        Ok(project) => project,
        Err(diagnostic) => return Ok(report_errors(&[diagnostic])),
    };
    let node = find_node(args.project.node.as_deref()).map_err(anyhow::Error::msg)?;
    let compiled = match compile(&project, node).await {
        Ok(compiled) => compiled,
        Err(CompileError::Diagnostics(diagnostics)) => {
            for diagnostic in &diagnostics {
                eprintln!("{diagnostic}");
            }
            eprintln!(
                "✗ {} error{} — {LOCK_FILE_NAME} not written",
                diagnostics.len(),
                if diagnostics.len() == 1 { "" } else { "s" }
            );
            return Ok(ExitCode::FAILURE);
        }
        Err(err) => return Err(err.into()),
    };
    for note in &compiled.notes {
        eprintln!("{note}");
    }
    let count = compiled.lock.workflows.len();
    let plural = if count == 1 { "workflow" } else { "workflows" };
    let lock_path = project.kici_dir.join(LOCK_FILE_NAME);
    let relative = project.relative(&lock_path);
    let text = compiled.lock.to_json();
    if args.check {
        match std::fs::read_to_string(&lock_path) {
            // Compared as JSON, so a checkout with CRLF line endings is not "out of date".
            Ok(existing)
                if serde_json::from_str::<serde_json::Value>(&existing).ok()
                    == serde_json::to_value(&compiled.lock).ok() => {}
            Ok(_) => {
                eprintln!("error: {relative} is out of date\n  hint: run `kici compile` and commit the result");
                return Ok(ExitCode::FAILURE);
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("error: {relative} does not exist\n  hint: run `kici compile` and commit the result");
                return Ok(ExitCode::FAILURE);
            }
            Err(err) => return Err(err).with_context(|| format!("failed to read `{relative}`")),
        }
        println!("✓ Workflows are valid ({count} {plural})");
    } else {
        // Written next to the target and renamed, so a crash never leaves half a lock file.
        let partial = lock_path.with_extension("json.partial");
        std::fs::write(&partial, text).with_context(|| format!("failed to write `{}`", partial.display()))?;
        std::fs::rename(&partial, &lock_path).with_context(|| format!("failed to write `{relative}`"))?;
        println!("✓ Compiled workflows → {relative} ({count} {plural})");
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints every diagnostic and the closing count line.
fn report_errors(diagnostics: &[Diagnostic]) -> ExitCode {
    for diagnostic in diagnostics {
        eprintln!("{diagnostic}");
    }
    let plural = if diagnostics.len() == 1 { "" } else { "s" };
    eprintln!("✗ {} error{plural} — {LOCK_FILE_NAME} not written", diagnostics.len());
    ExitCode::FAILURE
}
