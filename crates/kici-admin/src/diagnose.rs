//! `kici-admin diagnose [--json]`: the orchestrator's self-checks (`GET /api/v1/admin/diagnose`)
//! as a table whose messages are never cut (a scaler row carries the captured provisioning
//! error), and an exit code a script can act on: [`EXIT_PASS`], [`EXIT_WARN`], [`EXIT_FAIL`].
//! `diagnose drift` lives in [`crate::drift`]; this module only routes to it.
//!
//! It runs no check itself: the orchestrator does, each within its own deadline.

use clap::{Args, Subcommand};
use kici_client::client::ApiClient;
use kici_client::format::{self, NONE};
use kici_client::table;
use kici_engine::api::ops::{CheckStatus, DiagnoseReport, OverallStatus};
use serde_json::Value;

use crate::drift::{self, DriftArgs};

/// Every check passed.
pub const EXIT_PASS: u8 = 0;
/// At least one check warned and none failed.
pub const EXIT_WARN: u8 = 1;
/// At least one check failed, or the diagnostics could not be read at all.
pub const EXIT_FAIL: u8 = 2;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DiagnoseArgs {
    #[command(subcommand)]
    command: Option<DiagnoseCommand>,
    /// Print the API's JSON (`{status, timestamp, checks}`)
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DiagnoseCommand {
    /// Compare the @kici-dev/sdk bundle hash of the orchestrator, the connected agents and a lock file
    Drift(DriftArgs),
}

/// Runs `diagnose` or `diagnose drift` and returns the exit code.
pub async fn run(client: &ApiClient, args: DiagnoseArgs) -> anyhow::Result<u8> {
    match args.command {
        Some(DiagnoseCommand::Drift(drift_args)) => drift::run(client, drift_args).await,
        None => diagnose(client, args.json).await,
    }
}

async fn diagnose(client: &ApiClient, json: bool) -> anyhow::Result<u8> {
    let answer: Value = client.get(&["api", "v1", "admin", "diagnose"], &[]).await?;
    let diagnostics: DiagnoseReport = serde_json::from_value(answer.clone())
        .map_err(|err| anyhow::anyhow!("cannot read the answer to GET /api/v1/admin/diagnose: {err}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", render(&diagnostics));
    }
    Ok(exit_code(&diagnostics))
}

/// [`EXIT_FAIL`] if any check failed (or the orchestrator calls itself unhealthy), [`EXIT_WARN`]
/// if any warned (or it calls itself degraded), else [`EXIT_PASS`].
pub fn exit_code(diagnostics: &DiagnoseReport) -> u8 {
    let any = |status: CheckStatus| diagnostics.checks.iter().any(|check| check.status == status);
    if any(CheckStatus::Fail) || diagnostics.status == OverallStatus::Unhealthy {
        EXIT_FAIL
    } else if any(CheckStatus::Warn) || diagnostics.status == OverallStatus::Degraded {
        EXIT_WARN
    } else {
        EXIT_PASS
    }
}

/// The title, the overall status and the checks table.
pub fn render(diagnostics: &DiagnoseReport) -> String {
    let mut out = format!(
        "Orchestrator diagnostics ({})\nOverall: {}\n\n",
        format::timestamp(Some(diagnostics.timestamp)),
        diagnostics.status.as_str()
    );
    if diagnostics.checks.is_empty() {
        out.push_str("No checks were reported.\n");
        return out;
    }
    let rows: Vec<Vec<String>> = diagnostics
        .checks
        .iter()
        .map(|check| {
            vec![
                check.status.label().to_string(),
                check.name.clone(),
                check.message.clone(),
                check_duration(check.duration_ms),
            ]
        })
        .collect();
    out.push_str(&table::render_multiline(
        "",
        &["Status", "Check", "Message", "Duration"],
        &rows,
    ));
    out
}

/// Checks take milliseconds: `3ms` under a second, then the usual `1.2s`.
pub fn check_duration(duration_ms: Option<i64>) -> String {
    match duration_ms {
        Some(ms) if ms < 1000 => format!("{}ms", ms.max(0)),
        Some(ms) => format::duration(Some(ms)),
        None => NONE.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diagnostics(json: &str) -> DiagnoseReport {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn table_shows_every_check_uncut_and_the_exit_code_follows_the_worst() {
        let degraded = diagnostics(
            r#"{"status": "degraded", "timestamp": 1795000000123, "checks": [
                {"name": "Database connectivity", "status": "pass", "message": "Connected (2ms latency)", "durationMs": 2},
                {"name": "Agent connectivity", "status": "warn", "message": "No agents connected", "durationMs": 0},
                {"name": "Disk space", "status": "pass", "message": "12.5 GB free on /var/lib/kici, a path long enough to be cut by the reference", "details": {"freeBytes": 1}, "durationMs": 1500}
            ]}"#,
        );
        assert_eq!(
            render(&degraded),
            "\
Orchestrator diagnostics (2026-11-18T11:06:40.123Z)
Overall: degraded

Status  Check                  Message                                                                       Duration
PASS    Database connectivity  Connected (2ms latency)                                                       2ms
WARN    Agent connectivity     No agents connected                                                           0ms
PASS    Disk space             12.5 GB free on /var/lib/kici, a path long enough to be cut by the reference  1.5s
"
        );
        assert_eq!(exit_code(&degraded), EXIT_WARN);
    }

    #[test]
    fn multi_line_messages_continue_in_their_column() {
        let unhealthy = diagnostics(
            r#"{"status": "unhealthy", "timestamp": 0, "checks": [
                {"name": "scaler:bare-metal", "status": "fail", "message": "spawn node ENOENT\nagent output:\n  line 1", "durationMs": 5000},
                {"name": "Config validity", "status": "pass", "message": "Config valid (mode: independent)", "durationMs": 0}
            ]}"#,
        );
        assert_eq!(
            render(&unhealthy),
            "\
Orchestrator diagnostics (1970-01-01T00:00:00.000Z)
Overall: unhealthy

Status  Check              Message                           Duration
FAIL    scaler:bare-metal  spawn node ENOENT                 5.0s
                           agent output:
                             line 1
PASS    Config validity    Config valid (mode: independent)  0ms
"
        );
        assert_eq!(exit_code(&unhealthy), EXIT_FAIL);
    }

    #[test]
    fn exit_codes() {
        let check = |statuses: &[&str], overall: &str| {
            let checks: Vec<String> = statuses
                .iter()
                .map(|status| format!(r#"{{"name": "c", "status": "{status}", "message": "m", "durationMs": 1}}"#))
                .collect();
            exit_code(&diagnostics(&format!(
                r#"{{"status": "{overall}", "timestamp": 0, "checks": [{}]}}"#,
                checks.join(",")
            )))
        };
        assert_eq!(check(&["pass", "pass"], "healthy"), EXIT_PASS);
        assert_eq!(check(&["pass", "warn"], "degraded"), EXIT_WARN);
        assert_eq!(check(&["warn", "fail"], "unhealthy"), EXIT_FAIL);
        assert_eq!(check(&["pass"], "unhealthy"), EXIT_FAIL);
        assert_eq!(check(&[], "healthy"), EXIT_PASS);
    }
}
