//! The `--- KiCI orchestrator ---` part of `kici-admin orchestrator status`: what the running
//! service says of itself through its admin API. It is reached where its settings put it
//! (`KICI_PORT`, `KICI_BIND_ADDRESS`; one listening on every interface is reached on the
//! loopback address of its family), with a token of its own: its settings'
//! `KICI_BOOTSTRAP_ADMIN_TOKEN`, else the one it wrote to its data directory at its first start,
//! else `--token`/`KICI_ADMIN_TOKEN` (which may be another orchestrator's).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kici_client::client::{ApiClient, ClientError};
use kici_engine::api::ops::{ClusterHealth, EffectiveConfig};
use serde::{Deserialize, Serialize};

use super::unit::Layout;

/// What the orchestrator says of itself.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub url: String,
    /// `independent`, the only mode of this build.
    pub mode: String,
    /// `leader` or `follower`, and how many instances share the database.
    pub role: String,
    pub instances: usize,
    pub port: u16,
    pub bind_address: String,
    /// Its URL with the password replaced.
    pub database: String,
    pub agents: Vec<String>,
    pub global_max_agents: u32,
    pub scalers: Vec<Scaler>,
    pub waiting_jobs: usize,
    pub active_runs: usize,
}

/// A scaler as `GET /api/v1/admin/scalers` shows it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scaler {
    pub name: String,
    #[serde(rename = "type")]
    pub scaler_type: String,
    pub alive: u64,
    pub max_agents: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Scalers {
    global_max_agents: u32,
    scalers: Vec<Scaler>,
}

#[derive(Deserialize)]
struct Waiting {
    jobs: Vec<serde_json::Value>,
}

/// How long the orchestrator has to answer: `status` is for a glance.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Asks the service `layout` describes; Err says why it could not be asked, or did not
/// answer, and what to do.
pub async fn fetch(layout: &Layout, given_token: Option<String>) -> Result<Report, String> {
    let settings = read_settings(&layout.env_file)?;
    let port = settings.get("KICI_PORT").map_or("4000", String::as_str);
    let host = match settings
        .get("KICI_BIND_ADDRESS")
        .map(|address| address.trim_matches(['[', ']']).parse::<IpAddr>())
    {
        None => "127.0.0.1".to_string(),
        Some(Ok(IpAddr::V4(address))) if address.is_unspecified() => "127.0.0.1".to_string(),
        Some(Ok(IpAddr::V6(address))) if address.is_unspecified() => "[::1]".to_string(),
        Some(Ok(IpAddr::V4(address))) => address.to_string(),
        Some(Ok(IpAddr::V6(address))) => format!("[{address}]"),
        Some(Err(_)) => {
            return Err(format!(
                "KICI_BIND_ADDRESS in {} is not an IP address",
                layout.env_file.display()
            ));
        }
    };
    let url = format!("http://{host}:{port}");
    let data_dir = settings
        .get("KICI_DATA_DIR")
        .map_or_else(|| layout.state.clone(), PathBuf::from);
    let own_token = match settings.get("KICI_BOOTSTRAP_ADMIN_TOKEN") {
        Some(token) if !token.trim().is_empty() => Ok(token.trim().to_string()),
        _ => read_token(&data_dir),
    };
    let token = match (own_token, given_token) {
        (Ok(token), _) | (Err(_), Some(token)) => token,
        (Err(why), None) => return Err(why),
    };
    let client = ApiClient::new(&url, Some(token), "KICI_ADMIN_URL").map_err(|err| err.to_string())?;
    let answer = |err: ClientError| match err {
        ClientError::Unreachable { cause, .. } => format!(
            "nothing answers at {url}: {cause} (hint: KICI_PORT and KICI_BIND_ADDRESS in {} say where it listens; one that just started may need a moment)",
            layout.env_file.display()
        ),
        err => err.to_string(),
    };
    let asked = async {
        tokio::try_join!(
            client.get::<EffectiveConfig>(&["api", "v1", "admin", "config"], &[]),
            client.get::<ClusterHealth>(&["api", "v1", "admin", "cluster", "health"], &[]),
            client.get::<Scalers>(&["api", "v1", "admin", "scalers"], &[]),
            client.get::<Waiting>(&["api", "v1", "admin", "queue", "waiting"], &[]),
        )
    };
    let (config, cluster, scalers, waiting) = tokio::time::timeout(ANSWER_TIMEOUT, asked)
        .await
        .map_err(|_| {
            format!(
                "{url} did not answer within {}s (hint: `kici-admin orchestrator logs` says what it is doing)",
                ANSWER_TIMEOUT.as_secs()
            )
        })?
        .map_err(answer)?;
    Ok(Report {
        url,
        mode: config.mode,
        role: cluster.role,
        instances: cluster.instances.iter().filter(|i| i.alive).count().max(1),
        port: config.port,
        bind_address: config.bind_address,
        database: config.database.url,
        agents: cluster.connected_agents,
        global_max_agents: scalers.global_max_agents,
        scalers: scalers.scalers,
        waiting_jobs: waiting.jobs.len(),
        active_runs: cluster.active_runs,
    })
}

/// The section's lines.
pub fn lines(report: &Report) -> Vec<String> {
    let agents = match report.agents.as_slice() {
        [] => "none connected".to_string(),
        agents => format!("{} connected ({})", agents.len(), agents.join(", ")),
    };
    let scaler = match report.scalers.as_slice() {
        [] => "none (agents are started by hand)".to_string(),
        scalers => {
            let each: Vec<String> = scalers
                .iter()
                .map(|s| format!("{} ({}, {} of {} agents)", s.name, s.scaler_type, s.alive, s.max_agents))
                .collect();
            format!(
                "{}; at most {} agents in all",
                each.join(", "),
                report.global_max_agents
            )
        }
    };
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    vec![
        "--- KiCI orchestrator ---".to_string(),
        format!(
            "Mode:     {}, {} of {}",
            report.mode,
            report.role,
            plural(report.instances, "instance", "instances")
        ),
        format!("Port:     {} on {}", report.port, report.bind_address),
        format!("Database: {}", report.database),
        format!("Agents:   {agents}"),
        format!("Scaler:   {scaler}"),
        format!(
            "Jobs:     {} waiting for an agent ({} in progress)",
            report.waiting_jobs,
            plural(report.active_runs, "run", "runs")
        ),
    ]
}

/// The service's environment file as `KEY=value` pairs (systemd's `EnvironmentFile`: comments
/// and blank lines skipped, one level of quotes removed). A missing file is an empty one (the
/// defaults apply); one that cannot be read is an error, since guessing could reach another
/// orchestrator.
fn read_settings(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => {
            return Err(format!(
                "cannot read its settings at {}: {err} (hint: run this as root or the service's user)",
                path.display()
            ));
        }
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| {
            let value = value.trim();
            let unquoted = ['"', '\'']
                .iter()
                .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
                .unwrap_or(value);
            (key.trim().to_string(), unquoted.to_string())
        })
        .collect())
}

fn read_token(data_dir: &Path) -> Result<String, String> {
    let path = data_dir.join("admin-token");
    match std::fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_string()),
        Ok(_) => Err(format!(
            "{} is empty (hint: pass --token or set KICI_ADMIN_TOKEN)",
            path.display()
        )),
        Err(err) => Err(format!(
            "cannot read its admin token at {}: {err} (hint: run this as root or the service's user, or pass --token)",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_read_as_systemd_reads_an_environment_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.env");
        std::fs::write(&path, "# a comment\n\nKICI_PORT=4100\nKICI_DATA_DIR=\"/srv/kici data\"\n KICI_LOG_LEVEL = 'debug'\nnot a setting\n").unwrap();
        let settings = read_settings(&path).unwrap();
        assert_eq!(settings.get("KICI_PORT").map(String::as_str), Some("4100"));
        assert_eq!(
            settings.get("KICI_DATA_DIR").map(String::as_str),
            Some("/srv/kici data")
        );
        assert_eq!(settings.get("KICI_LOG_LEVEL").map(String::as_str), Some("debug"));
        assert_eq!(settings.len(), 3);
        assert!(read_settings(&dir.path().join("missing")).unwrap().is_empty());
        let unreadable = read_settings(dir.path()).unwrap_err();
        assert!(
            unreadable.starts_with(&format!("cannot read its settings at {}: ", dir.path().display())),
            "{unreadable}"
        );
    }

    #[test]
    fn the_section_says_mode_port_database_agents_scaler_and_jobs() {
        let report = Report {
            url: "http://127.0.0.1:4000".into(),
            mode: "independent".into(),
            role: "leader".into(),
            instances: 2,
            port: 4000,
            bind_address: "127.0.0.1".into(),
            database: "postgres://kici:***@db:5432/kici".into(),
            agents: vec!["a1".into(), "a2".into()],
            global_max_agents: 10,
            scalers: vec![Scaler {
                name: "pods".into(),
                scaler_type: "container".into(),
                alive: 1,
                max_agents: 4,
            }],
            waiting_jobs: 3,
            active_runs: 1,
        };
        assert_eq!(
            lines(&report).join("\n"),
            "--- KiCI orchestrator ---\n\
             Mode:     independent, leader of 2 instances\n\
             Port:     4000 on 127.0.0.1\n\
             Database: postgres://kici:***@db:5432/kici\n\
             Agents:   2 connected (a1, a2)\n\
             Scaler:   pods (container, 1 of 4 agents); at most 10 agents in all\n\
             Jobs:     3 waiting for an agent (1 run in progress)"
        );
    }
}
