//! `kici-admin debug-bundle`: one ZIP to attach when escalating (`spec/operator.md` §3.3).
//!
//! Layout: `manifest.json` (what, when, from where, and each part's status), then
//! `diagnostics/results.json`, `config/config.json`, `system/info.json`,
//! `cluster/health.json`, `system/metrics.txt`, `executions/recent.json`, `logs/*.log` with
//! `logs/summary.json`, and `summary.txt` for humans. Every part is best-effort: a part that
//! cannot be collected is recorded in the manifest with its error and the bundle is still
//! written. Secrets are kept out by [`redact`]: the allowlist on configuration (the config
//! part, and each diagnose check's `details`), the mask on everything.
//!
//! The HTTP calls run concurrently on the runtime; reading logs and writing the ZIP run in
//! `spawn_blocking`. [`assemble`] builds the entries from what was fetched.

pub mod archive;
pub mod inspect;
mod local;
pub mod logs;
pub mod redact;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::Args;
use kici_client::client::ApiClient;
use kici_engine::api::format_timestamp;
use kici_engine::api::ops::{CheckStatus, DiagnoseReport};
use serde_json::{Map, Value, json};

use self::logs::{CollectedLogs, DEFAULT_MAX_LOG_BYTES, LogOptions, LogSummary};
pub use self::redact::SecretMask;

pub const MANIFEST: &str = "manifest.json";
pub const DIAGNOSTICS: &str = "diagnostics/results.json";
pub const CONFIG: &str = "config/config.json";
pub const SYSTEM_INFO: &str = "system/info.json";
pub const CLUSTER_HEALTH: &str = "cluster/health.json";
pub const METRICS: &str = "system/metrics.txt";
pub const RECENT_EXECUTIONS: &str = "executions/recent.json";
/// The part name of the log files and their summary.
pub const LOGS: &str = "logs/";
pub const LOG_SUMMARY: &str = "logs/summary.json";
pub const SUMMARY: &str = "summary.txt";

/// A part's status in the manifest when it was collected.
pub const PART_OK: &str = "ok";
pub const BUNDLE_VERSION: &str = "1.0";
pub const BUNDLE_SOURCE: &str = "kici-admin debug-bundle";
/// How many recent runs `executions/recent.json` holds.
const RECENT_RUNS: u32 = 50;

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// Where to write the ZIP (default: kici-debug-<time>.zip in the current directory)
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The orchestrator's log directory (its KICI_LOG_DIR)
    #[arg(long, value_name = "DIR", env = "KICI_LOG_DIR")]
    log_dir: Option<PathBuf>,
    /// Bundle the log files modified within this many hours
    #[arg(long, value_name = "HOURS", default_value_t = 4.0, value_parser = parse_hours)]
    log_window: f64,
    /// The cap on log bytes in the bundle (50 MB; smaller in tests)
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_LOG_BYTES, hide = true)]
    max_log_bytes: u64,
}

fn parse_hours(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(hours) if hours.is_finite() && hours > 0.0 => Ok(hours),
        _ => Err(format!(
            "invalid --log-window `{text}`: expected a positive number of hours"
        )),
    }
}

/// What the API answered, each call on its own (the error text when it failed).
#[derive(Debug)]
pub struct Fetched {
    pub diagnose: Result<Value, String>,
    pub config: Result<Value, String>,
    pub system_info: Result<Value, String>,
    pub cluster_health: Result<Value, String>,
    pub metrics: Result<String, String>,
    pub recent_executions: Result<Value, String>,
}

#[derive(Debug)]
pub struct BundleInput {
    pub fetched: Fetched,
    pub orchestrator_url: String,
    pub generated_at_ms: i64,
    /// `None` when no log directory was given.
    pub logs: Option<LogOptions>,
    pub mask: SecretMask,
}

/// The ZIP's entries in order (manifest first) and each part's status.
#[derive(Debug)]
pub struct Bundle {
    pub entries: Vec<(String, Vec<u8>)>,
    pub parts: Vec<(String, String)>,
}

pub async fn run(client: &ApiClient, args: BundleArgs, mask: SecretMask) -> anyhow::Result<()> {
    println!("Collecting diagnostic data...");
    let now = SystemTime::now();
    let generated_at_ms = logs::epoch_ms(now);
    let recent_query = [("limit", RECENT_RUNS.to_string())];
    let (diagnose, config, system_info, cluster_health, metrics, recent_executions) = tokio::join!(
        client.get::<Value>(&["api", "v1", "admin", "diagnose"], &[]),
        client.get::<Value>(&["api", "v1", "admin", "config"], &[]),
        client.get::<Value>(&["api", "v1", "admin", "system-info"], &[]),
        client.get::<Value>(&["api", "v1", "admin", "cluster", "health"], &[]),
        client.get_text(&["metrics"]),
        client.get::<Value>(&["api", "v1", "admin", "runs"], &recent_query),
    );
    let failed = |what: &str, err: kici_client::client::ClientError| format!("GET {what} failed: {err}");
    let fetched = Fetched {
        diagnose: diagnose.map_err(|err| failed("/api/v1/admin/diagnose", err)),
        config: config.map_err(|err| failed("/api/v1/admin/config", err)),
        system_info: system_info.map_err(|err| failed("/api/v1/admin/system-info", err)),
        cluster_health: cluster_health.map_err(|err| failed("/api/v1/admin/cluster/health", err)),
        metrics: metrics.map_err(|err| failed("/metrics", err)),
        recent_executions: recent_executions
            .map_err(|err| failed(&format!("/api/v1/admin/runs?limit={RECENT_RUNS}"), err)),
    };
    let path = args
        .output
        .unwrap_or_else(|| PathBuf::from(default_file_name(generated_at_ms)));
    let input = BundleInput {
        fetched,
        orchestrator_url: client.base_url().to_string(),
        generated_at_ms,
        logs: args.log_dir.map(|dir| LogOptions {
            dir,
            now,
            window: Duration::from_secs_f64(args.log_window * 3600.0),
            max_bytes: args.max_log_bytes,
        }),
        mask,
    };
    let written_path = path.clone();
    let (size, parts) = tokio::task::spawn_blocking(move || {
        let bundle = assemble(input);
        let size = archive::write(&written_path, &bundle.entries, archive::zip_time(generated_at_ms))?;
        Ok::<_, archive::WriteError>((size, bundle.parts))
    })
    .await??;
    for (part, status) in parts.iter().filter(|(_, status)| status != PART_OK) {
        eprintln!("Warning: {part}: {status}");
    }
    println!("Debug bundle saved to {} ({} KB)", path.display(), size.div_ceil(1024));
    Ok(())
}

/// `kici-debug-2026-11-18T11-06-40-123Z.zip`.
pub fn default_file_name(epoch_ms: i64) -> String {
    format!("kici-debug-{}.zip", format_timestamp(epoch_ms).replace([':', '.'], "-"))
}

/// Builds every entry from what was fetched, reading the logs. Blocking.
pub fn assemble(input: BundleInput) -> Bundle {
    let BundleInput {
        fetched,
        orchestrator_url,
        generated_at_ms,
        logs: log_options,
        mask,
    } = input;
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let mut parts: Vec<(String, String)> = Vec::new();
    let mut record = |entries: &mut Vec<(String, Vec<u8>)>, name: &str, content: Option<Vec<u8>>, status: String| {
        if let Some(content) = content {
            entries.push((name.to_string(), content));
        }
        parts.push((name.to_string(), mask.text(&status)));
    };

    let diagnostics_value = fetched.diagnose.map(|mut value| {
        redact_check_details(&mut value);
        mask.json(&value)
    });
    let diagnostics: Option<DiagnoseReport> = diagnostics_value
        .as_ref()
        .ok()
        .and_then(|value| serde_json::from_value(value.clone()).ok());
    match diagnostics_value {
        Ok(value) => record(&mut entries, DIAGNOSTICS, Some(json_bytes(&value)), PART_OK.into()),
        Err(err) => record(&mut entries, DIAGNOSTICS, None, err),
    }
    match fetched.config {
        Ok(value) => {
            let value = mask.json(&redact::redact(&value));
            record(&mut entries, CONFIG, Some(json_bytes(&value)), PART_OK.into());
        }
        Err(err) => record(&mut entries, CONFIG, None, err),
    }
    match fetched.system_info {
        Ok(value) => record(
            &mut entries,
            SYSTEM_INFO,
            Some(json_bytes(&mask.json(&value))),
            PART_OK.into(),
        ),
        Err(err) => {
            let local = mask.json(&local::system_info());
            let status = format!("{err} — wrote the facts of the machine kici-admin ran on instead");
            record(&mut entries, SYSTEM_INFO, Some(json_bytes(&local)), status);
        }
    }
    let cluster_health = fetched.cluster_health.map(|value| mask.json(&value));
    match &cluster_health {
        Ok(value) => record(&mut entries, CLUSTER_HEALTH, Some(json_bytes(value)), PART_OK.into()),
        Err(err) => record(&mut entries, CLUSTER_HEALTH, None, err.clone()),
    }
    match fetched.metrics {
        Ok(text) => record(
            &mut entries,
            METRICS,
            Some(mask.text(&text).into_bytes()),
            PART_OK.into(),
        ),
        Err(err) => record(&mut entries, METRICS, None, err),
    }
    let recent_executions = fetched.recent_executions.map(|value| mask.json(&value));
    match &recent_executions {
        Ok(value) => record(&mut entries, RECENT_EXECUTIONS, Some(json_bytes(value)), PART_OK.into()),
        Err(err) => record(&mut entries, RECENT_EXECUTIONS, None, err.clone()),
    }
    let collected: Result<CollectedLogs, String> = match &log_options {
        None => Err("No log dir given (--log-dir or KICI_LOG_DIR) — skipping logs/".to_string()),
        Some(options) => logs::collect(options, &mask).map_err(|err| err.to_string()),
    };
    let log_summary = match collected {
        Ok(collected) => {
            let summary_json = mask.json(&serde_json::to_value(&collected.summary).expect("a log summary serializes"));
            entries.extend(collected.entries);
            record(&mut entries, LOGS, None, PART_OK.into());
            entries.push((LOG_SUMMARY.to_string(), json_bytes(&summary_json)));
            Some(collected.summary)
        }
        Err(err) => {
            record(&mut entries, LOGS, None, err);
            None
        }
    };

    let generated_at = format_timestamp(generated_at_ms);
    let summary = summary_text(&SummaryFacts {
        generated_at: &generated_at,
        orchestrator_url: &orchestrator_url,
        diagnostics: diagnostics.as_ref(),
        recent_executions: recent_executions.as_ref().ok(),
        cluster_health: cluster_health.as_ref().ok(),
        logs: log_summary.as_ref(),
        parts: &parts,
    });
    entries.push((SUMMARY.to_string(), mask.text(&summary).into_bytes()));
    let manifest = json!({
        "version": BUNDLE_VERSION,
        "generated_at": generated_at,
        "source": BUNDLE_SOURCE,
        "orchestrator_url": orchestrator_url,
        "kici_admin_version": env!("CARGO_PKG_VERSION"),
        "platform": platform(),
        "parts": parts
            .iter()
            .map(|(part, status)| (part.clone(), Value::String(status.clone())))
            .collect::<Map<String, Value>>(),
    });
    entries.insert(0, (MANIFEST.to_string(), json_bytes(&mask.json(&manifest))));
    Bundle { entries, parts }
}

/// `linux/x86_64`.
fn platform() -> String {
    format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH)
}

/// A check's `details` may carry configuration: the allowlist applies to it.
fn redact_check_details(diagnostics: &mut Value) {
    let Some(checks) = diagnostics.get_mut("checks").and_then(Value::as_array_mut) else {
        return;
    };
    for check in checks {
        if let Some(details) = check.get_mut("details") {
            *details = redact::redact(details);
        }
    }
}

fn json_bytes(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("a JSON value serializes");
    bytes.push(b'\n');
    bytes
}

struct SummaryFacts<'a> {
    generated_at: &'a str,
    orchestrator_url: &'a str,
    diagnostics: Option<&'a DiagnoseReport>,
    recent_executions: Option<&'a Value>,
    cluster_health: Option<&'a Value>,
    logs: Option<&'a LogSummary>,
    parts: &'a [(String, String)],
}

/// `summary.txt`: the overall diagnose status, the checks that did not pass, counts, and each
/// part's status.
fn summary_text(facts: &SummaryFacts<'_>) -> String {
    let mut out = String::from("KiCI debug bundle\n");
    let _ = writeln!(out, "Generated:     {}", facts.generated_at);
    let _ = writeln!(out, "Orchestrator:  {}", facts.orchestrator_url);
    let _ = writeln!(out, "kici-admin:    {} ({})", env!("CARGO_PKG_VERSION"), platform());
    out.push('\n');
    match facts.diagnostics {
        Some(diagnostics) => {
            let _ = writeln!(out, "Diagnostics: {}", diagnostics.status.as_str());
            let failing: Vec<_> = diagnostics
                .checks
                .iter()
                .filter(|check| check.status != CheckStatus::Pass)
                .collect();
            if failing.is_empty() {
                let _ = writeln!(out, "  All {} checks pass.", diagnostics.checks.len());
            }
            for check in failing {
                let mut lines = check.message.lines();
                let _ = writeln!(
                    out,
                    "  {}  {}: {}",
                    check.status.label(),
                    check.name,
                    lines.next().unwrap_or("")
                );
                for line in lines {
                    let _ = writeln!(out, "        {line}");
                }
            }
        }
        None => out.push_str("Diagnostics: unavailable (see Parts)\n"),
    }
    match facts
        .recent_executions
        .and_then(|value| value.get("runs"))
        .and_then(Value::as_array)
    {
        Some(runs) => {
            let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
            for run in runs {
                *by_status
                    .entry(run.get("status").and_then(Value::as_str).unwrap_or("unknown"))
                    .or_default() += 1;
            }
            let counts: Vec<String> = by_status
                .iter()
                .map(|(status, count)| format!("{status} {count}"))
                .collect();
            let _ = writeln!(
                out,
                "Recent executions: {}{}",
                runs.len(),
                if counts.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", counts.join(", "))
                }
            );
        }
        None => out.push_str("Recent executions: unavailable (see Parts)\n"),
    }
    match facts
        .cluster_health
        .and_then(|value| value.get("agentCount"))
        .and_then(Value::as_u64)
    {
        Some(count) => {
            let _ = writeln!(out, "Connected agents: {count}");
        }
        None => out.push_str("Connected agents: unavailable (see Parts)\n"),
    }
    match facts.logs {
        Some(logs) => {
            let _ = writeln!(
                out,
                "Logs: {} file(s), {} line(s), {} error(s), {} warning(s), {} bytes",
                logs.files.len(),
                logs.total_lines,
                logs.errors,
                logs.warnings,
                logs.total_bytes
            );
        }
        None => out.push_str("Logs: not collected (see Parts)\n"),
    }
    out.push_str("\nParts:\n");
    for (part, status) in facts.parts {
        let _ = writeln!(out, "  {part}: {status}");
    }
    out
}

#[cfg(test)]
mod tests;
