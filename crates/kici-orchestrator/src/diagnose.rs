//! The orchestrator's self-checks (`kici-admin diagnose`, the dashboard's diagnostics page):
//! database, agents, disk, configuration, TLS certificate and one row per scaler, each within
//! [`CHECK_TIMEOUT`], and the host facts `system-info` and `cluster/health` show. `http::ops`
//! and `platform` are the adapters over it.
//!
//! Blocking reads (`statvfs`, `/proc`) run in `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kici_engine::api::ops::{Check, CheckStatus, DiagnoseReport, OverallStatus};
use serde_json::{Value, json};

use crate::clock::now_ms;
use crate::scaler::health::RowStatus;
use crate::state::Shared;

/// How long one diagnose check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

const GB: u64 = 1024 * 1024 * 1024;
const MB: u64 = 1024 * 1024;

async fn timed(name: &str, check: impl std::future::Future<Output = (CheckStatus, String, Option<Value>)>) -> Check {
    let started = Instant::now();
    let (status, message, details) = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(result) => result,
        Err(_) => (
            CheckStatus::Fail,
            format!("Check timeout after {}ms", CHECK_TIMEOUT.as_millis()),
            None,
        ),
    };
    Check {
        name: name.to_string(),
        status,
        message,
        details,
        duration_ms: Some(started.elapsed().as_millis() as i64),
    }
}

/// Every check, in the documented order.
async fn run_checks(state: &Shared) -> Vec<Check> {
    let mut checks = vec![
        timed("Database connectivity", async {
            let started = Instant::now();
            match state.store.ping().await {
                Ok(()) => (
                    CheckStatus::Pass,
                    format!("Connected ({}ms latency)", started.elapsed().as_millis()),
                    None,
                ),
                Err(err) => (CheckStatus::Fail, format!("Database unreachable: {err}"), None),
            }
        })
        .await,
        timed("Agent connectivity", async {
            let agents = state.hub.all();
            if agents.is_empty() {
                (CheckStatus::Warn, "No agents connected".to_string(), None)
            } else {
                let ids: Vec<&str> = agents.iter().map(|a| a.agent_id.as_str()).collect();
                (
                    CheckStatus::Pass,
                    format!("{} agent(s) connected", agents.len()),
                    Some(json!({ "agents": ids })),
                )
            }
        })
        .await,
        timed("Disk space", disk_space(state.config.data_dir.clone())).await,
        timed("Config validity", async {
            (CheckStatus::Pass, "Config valid (mode: independent)".to_string(), None)
        })
        .await,
    ];
    if let Some(path) = &state.config.tls_cert_path {
        checks.push(timed("TLS certificate", certificate(path)).await);
    }
    checks.extend(scaler_checks(state).await);
    checks
}

/// `scaler:<name>`: recent spawn failures, then what the host must provide for the backend
/// (a failing host check makes a passing row fail, naming what is missing).
async fn scaler_checks(state: &Shared) -> Vec<Check> {
    let config = state.scaler.config();
    let mut checks = Vec::new();
    for row in state.scaler.health_rows(now_ms()) {
        let started = Instant::now();
        let check = {
            let mut status = match row.status {
                RowStatus::Pass => CheckStatus::Pass,
                RowStatus::Warn => CheckStatus::Warn,
                RowStatus::Fail => CheckStatus::Fail,
            };
            let mut message = row.message;
            let host_problems = match row.name.strip_prefix("scaler:").and_then(|name| config.scaler(name)) {
                Some(scaler) => tokio::time::timeout(CHECK_TIMEOUT, crate::scaler::backend::host_problems(scaler))
                    .await
                    .unwrap_or_else(|_| {
                        vec![format!(
                            "host checks did not finish within {}s",
                            CHECK_TIMEOUT.as_secs()
                        )]
                    }),
                None => Vec::new(),
            };
            if !host_problems.is_empty() {
                status = CheckStatus::Fail;
                message = format!("{message}; host: {}", host_problems.join("; "));
            }
            Check {
                name: row.name,
                status,
                message,
                details: row.details,
                duration_ms: Some(started.elapsed().as_millis() as i64),
            }
        };
        checks.push(check);
    }
    checks
}

/// Free space of the data directory; `statvfs` blocks, so it runs off the runtime's threads.
async fn disk_space(path: PathBuf) -> (CheckStatus, String, Option<Value>) {
    let free = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || free_bytes(&path))
            .await
            .expect("statvfs does not panic")
    };
    let Some(free) = free else {
        return (
            CheckStatus::Warn,
            format!("Cannot read free space of {}", path.display()),
            None,
        );
    };
    let details = Some(json!({ "path": path.display().to_string(), "freeBytes": free }));
    let human = if free >= GB {
        format!("{:.1} GB", free as f64 / GB as f64)
    } else {
        format!("{} MB", free / MB)
    };
    if free < 100 * MB {
        (
            CheckStatus::Fail,
            format!("Critically low disk space: {human} free on {}", path.display()),
            details,
        )
    } else if free < GB {
        (
            CheckStatus::Warn,
            format!("Low disk space: {human} free on {}", path.display()),
            details,
        )
    } else {
        (
            CheckStatus::Pass,
            format!("{human} free on {}", path.display()),
            details,
        )
    }
}

fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the struct we own; the path is a valid C string.
    #[allow(unsafe_code)]
    let stats = unsafe {
        let mut stats: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(c_path.as_ptr(), &mut stats) == 0).then_some(stats)
    }?;
    Some(stats.f_bavail as u64 * stats.f_frsize as u64)
}

/// Expiry through `openssl x509 -enddate`, which every host with certificates has.
async fn certificate(path: &Path) -> (CheckStatus, String, Option<Value>) {
    let output = tokio::process::Command::new("openssl")
        .args(["x509", "-noout", "-enddate", "-checkend", "0", "-in"])
        .arg(path)
        .output()
        .await;
    let output = match output {
        Ok(output) => output,
        Err(err) => {
            return (
                CheckStatus::Fail,
                format!("Cannot check {}: openssl is not available ({err})", path.display()),
                None,
            );
        }
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let Some(end) = text
        .lines()
        .find_map(|l| l.strip_prefix("notAfter="))
        .map(str::to_string)
    else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return (
            CheckStatus::Fail,
            format!("Cannot read certificate {}: {}", path.display(), stderr.trim()),
            None,
        );
    };
    if !output.status.success() {
        return (
            CheckStatus::Fail,
            format!("Certificate {} expired on {end}", path.display()),
            None,
        );
    }
    let soon = tokio::process::Command::new("openssl")
        .args(["x509", "-noout", "-checkend", &(30 * 24 * 3600).to_string(), "-in"])
        .arg(path)
        .status()
        .await
        .map(|s| s.success())
        .unwrap_or(true);
    if soon {
        (CheckStatus::Pass, format!("Certificate valid until {end}"), None)
    } else {
        (
            CheckStatus::Warn,
            format!("Certificate {} expires within 30 days ({end})", path.display()),
            None,
        )
    }
}

/// `{status: healthy|degraded|unhealthy, timestamp, checks}`: every check, and the worst.
pub async fn report(state: &Shared) -> DiagnoseReport {
    let checks = run_checks(state).await;
    DiagnoseReport {
        status: OverallStatus::of(&checks),
        timestamp: now_ms(),
        checks,
    }
}

/// What `/proc` says about the host; a fact it cannot read is `None`.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    pub release: Option<String>,
    pub hostname: Option<String>,
    pub total_memory: Option<u64>,
    pub free_memory: Option<u64>,
    /// Seconds since boot.
    pub uptime: Option<f64>,
}

/// Reads [`HostFacts`] off the runtime's threads.
pub async fn host_facts() -> HostFacts {
    tokio::task::spawn_blocking(|| HostFacts {
        release: read_trimmed("/proc/sys/kernel/osrelease"),
        hostname: read_trimmed("/proc/sys/kernel/hostname"),
        total_memory: meminfo("MemTotal:"),
        free_memory: meminfo("MemAvailable:"),
        uptime: read_trimmed("/proc/uptime")
            .and_then(|text| text.split_whitespace().next().and_then(|s| s.parse::<f64>().ok())),
    })
    .await
    .expect("reading /proc does not panic")
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|t| t.trim().to_string())
}

fn meminfo(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = text
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}
