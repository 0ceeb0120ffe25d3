//! Test support: checking a `/metrics` output with Prometheus's own linter,
//! `promtool check metrics` (Debian package `prometheus`). Used by the services' tests; it
//! reads `PATH` and `KICI_TEST_REQUIRE_PROMTOOL` itself so every test does the same thing:
//! without `promtool` the check is skipped with a note, unless `KICI_TEST_REQUIRE_PROMTOOL=1`
//! (CI), where a missing `promtool` is a failure. It never installs anything.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Set to `1` to fail instead of skipping when `promtool` is missing.
pub const REQUIRE_ENV: &str = "KICI_TEST_REQUIRE_PROMTOOL";

/// What [`check`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// `promtool check metrics` accepted the text.
    Passed,
    /// `promtool` is not on `PATH`; the note says so (print it).
    Skipped(String),
}

/// Runs `promtool check metrics` on `exposition`. Err holds promtool's complaints, or says
/// that promtool is missing while required.
pub fn check(exposition: &str) -> Result<Checked, String> {
    let Some(promtool) = find_promtool() else {
        if std::env::var(REQUIRE_ENV).is_ok_and(|value| value.trim() == "1") {
            return Err(format!(
                "promtool is not on PATH but {REQUIRE_ENV}=1 (hint: install the Debian package `prometheus`)"
            ));
        }
        return Ok(Checked::Skipped(format!(
            "note: promtool is not on PATH; `promtool check metrics` skipped (set {REQUIRE_ENV}=1 to require it)"
        )));
    };
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot run `{}`: {err}", promtool.display()))?;
    let mut stdin = child.stdin.take().ok_or("promtool's stdin is not piped")?;
    stdin
        .write_all(exposition.as_bytes())
        .map_err(|err| format!("cannot write to promtool: {err}"))?;
    drop(stdin);
    let output = child
        .wait_with_output()
        .map_err(|err| format!("promtool did not finish: {err}"))?;
    if output.status.success() {
        return Ok(Checked::Passed);
    }
    Err(format!(
        "`promtool check metrics` failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

fn find_promtool() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("promtool"))
        .find(|candidate| candidate.is_file())
}
