//! Installing the `.kici/` project's npm dependencies in the checkout before the runner imports
//! anything: when `.kici/package.json` exists and `.kici/node_modules` does not, with the
//! package manager its lock file belongs to (`npm ci`, `pnpm install --frozen-lockfile`, …;
//! `npm install` without a lock file), in the host variables runners inherit.

use std::path::Path;
use std::time::{Duration, Instant};

use kici_compiler::deps::{PackageManager, find_lockfile};
use kici_compiler::runner::RunnerSpec;
use tokio::process::Command;

/// An install must finish within this.
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// Lines of the package manager's output quoted when it fails.
const TAIL_LINES: usize = 20;

/// Installs the dependencies when they are needed; the line for the job's prepare log.
pub(super) async fn install(dir: &Path) -> Result<Option<String>, String> {
    let kici_dir = dir.join(".kici");
    if !kici_dir.join("package.json").is_file() || kici_dir.join("node_modules").exists() {
        return Ok(None);
    }
    let lockfile = find_lockfile(dir, &kici_dir);
    let (manager, (program, args)) = match &lockfile {
        Some(lockfile) => (lockfile.manager, lockfile.manager.install_command()),
        None => (
            PackageManager::Npm,
            ("npm", &["install", "--no-audit", "--no-fund", "--loglevel=error"][..]),
        ),
    };
    let command_line = format!("{program} {}", args.join(" "));
    let started = Instant::now();
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(&kici_dir)
        .env_clear()
        .envs(RunnerSpec::inherited_env())
        .env("CI", "true")
        .kill_on_drop(true);
    let output = match tokio::time::timeout(INSTALL_TIMEOUT, command.output()).await {
        Err(_) => {
            return Err(format!(
                "Installing the .kici dependencies failed: `{command_line}` did not finish within {}s",
                INSTALL_TIMEOUT.as_secs()
            ));
        }
        Ok(Err(err)) => {
            return Err(format!(
                "Installing the .kici dependencies failed: cannot run `{program}`: {err} (hint: the agent needs {program} on PATH)"
            ));
        }
        Ok(Ok(output)) => output,
    };
    if !output.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
        return Err(format!(
            "Installing the .kici dependencies failed: `{command_line}` exited with {}{}",
            output.status,
            if tail.is_empty() {
                String::new()
            } else {
                format!(":\n{tail}")
            }
        ));
    }
    Ok(Some(format!(
        "Installed the .kici dependencies with {} in {:.1}s",
        manager.as_str(),
        started.elapsed().as_secs_f64()
    )))
}
