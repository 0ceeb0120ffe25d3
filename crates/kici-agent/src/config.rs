//! The agent's one typed [`Config`], loaded from `KICI_*` environment variables and validated
//! before anything starts. `main` passes the process environment; tests pass a map.
//!
//! This module only parses and validates: it does not touch the network, check tools on `PATH`
//! or create directories (see `main.rs` for those boot checks).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use kici_compiler::evaluate::MATRIX_TIMEOUT;
use kici_engine::ids::AgentId;
use kici_engine::labels::{LabelError, validate_agent_label};
use kici_engine::protocol::DEFAULT_STEP_TIMEOUT_MS;
use kici_telemetry::env::{Reader, UnknownEnv, Var, var};
use kici_telemetry::logging::{LogConfig, LogConfigError};
use kici_telemetry::metrics::http::MetricsToken;

/// Every `KICI_*` variable the agent reads (the common ones, `KICI_LOG_LEVEL`, `KICI_DEV`,
/// `KICI_NODE`, ..., are added by `kici_telemetry::env::check`): its schema, which the typo
/// catcher knows and `docs/configuration.md` is generated from.
pub const VARS: &[Var] = &[
    var(
        "KICI_ORCHESTRATOR_URL",
        "",
        "Required: the orchestrator's WebSocket, `ws://host:4000/ws` (`http://` is read as `ws://`; `wss://` is refused: put a TLS proxy on the agent's network). Several, comma-separated: a lost connection is tried again on the next.",
    ),
    var(
        "KICI_AGENT_ID",
        "",
        "The agent's name. Unset: the agent token's label, else `<hostname>-<random>`.",
    ),
    var(
        "KICI_AGENT_TOKEN",
        "",
        "The agent token (`kat_…`) from `kici-admin agent register`.",
    ),
    var(
        "KICI_AGENT_TOKEN_FILE",
        "",
        "A file whose first line is the agent token, instead of `KICI_AGENT_TOKEN` (not both).",
    ),
    var(
        "KICI_LABELS",
        "",
        "The agent's labels, comma-separated, besides the `kici:os:*`, `kici:arch:*` and `kici:host:*` ones it always has.",
    ),
    var(
        "KICI_PORT",
        "8080",
        "The port of its `/health` and `/metrics`; 0 picks a free port.",
    ),
    var(
        "KICI_WORK_DIR",
        "",
        "Where jobs' work directories go. Unset: the system's temporary directory.",
    ),
    var(
        "KICI_DEFAULT_STEP_TIMEOUT_MS",
        "1800000",
        "A step without its own `timeout` is stopped after this long.",
    ),
    var(
        "KICI_MATRIX_EVAL_TIMEOUT_MS",
        "60000",
        "How long a dynamic matrix or job generator may run.",
    ),
    var(
        "KICI_JOB_HEARTBEAT_INTERVAL_MS",
        "60000",
        "How often it reports on a running job (keep it the orchestrator's).",
    ),
    var(
        "KICI_HEARTBEAT_INTERVAL_MS",
        "30000",
        "How often it pings the orchestrator.",
    ),
    var(
        "KICI_MAX_LOG_SIZE_BYTES",
        "10485760",
        "A job's log beyond this many bytes is cut; a line says so.",
    ),
    var(
        "KICI_SCALER_MANAGED",
        "false",
        "Set by a scaler for the agents it starts: run one job, then exit.",
    ),
    var(
        "KICI_SCALER_BACKEND",
        "",
        "Set by a scaler for the agents it starts: its backend (`bare-metal`, `container` or `firecracker`), named in the errors of a job it could not start.",
    ),
    var(
        "KICI_SCALER_PENDING_DISPATCH_TIMEOUT",
        "60000",
        "A scaler's agent that got no job this long after it started exits (milliseconds).",
    ),
    var(
        "KICI_BACKPRESSURE_MODE",
        "pause",
        "While the connection's queue is full: `pause` the job's output (nothing lost), or `drop` log chunks (counted; step results are never dropped).",
    ),
    var(
        "KICI_ROLES",
        "all",
        "The special jobs it offers to run, comma-separated: `builder` (dependency builds) or `all`; empty: none. `init-runner` is accepted and offers nothing yet.",
    ),
    var(
        "KICI_EXECUTION_MODE",
        "bare-metal",
        "Only `bare-metal`: jobs run as the agent's user (a scaler puts the agent itself in a container or microVM).",
    ),
    var(
        "KICI_METRICS_TOKEN",
        "",
        "The token `/metrics` requires. Unset: `/metrics` refuses every request.",
    ),
];

const DEFAULT_PORT: u16 = 8080;
/// A scaler-managed agent with no job this long after it started exits.
const DEFAULT_PENDING_DISPATCH_TIMEOUT_MS: u64 = 60_000;
const DEFAULT_JOB_HEARTBEAT_INTERVAL_MS: u64 = 60_000;
const DEFAULT_HEARTBEAT_INTERVAL_MS: u64 = 30_000;
const DEFAULT_MAX_LOG_SIZE_BYTES: u64 = 10_485_760;

/// The agent token. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentToken(String);

impl AgentToken {
    pub fn new(token: impl Into<String>) -> AgentToken {
        AgentToken(token.into())
    }

    /// The token as sent in `auth.request`.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AgentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Which special jobs this agent offers to run (`KICI_ROLES`: unset or `all` = both, empty =
/// none, else a comma-separated list). A builder advertises `kici:role:builder` and runs
/// `__build__<workflow>` jobs; the init-runner role is accepted and validated, and advertises
/// nothing yet (the orchestrator dispatches evaluations by `kici:os`/`kici:arch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles {
    pub builder: bool,
    pub init_runner: bool,
}

/// How jobs are isolated (`KICI_EXECUTION_MODE`). Only bare metal exists so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionMode {
    BareMetal,
}

/// Everything the agent needs, resolved once.
#[derive(Debug, Clone)]
pub struct Config {
    /// `ws://host:port/ws`, one per orchestrator sharing a database (`KICI_ORCHESTRATOR_URL`
    /// comma-separated): a lost connection is tried again on the next.
    pub orchestrator_urls: Vec<String>,
    pub agent_id: AgentId,
    /// No `KICI_AGENT_ID`: the orchestrator names the agent after its token's label.
    pub agent_id_generated: bool,
    pub token: AgentToken,
    /// Operator labels (`KICI_LABELS`), each validated; the automatic `kici:*` labels are added
    /// when registering.
    pub labels: Vec<String>,
    pub hostname: String,
    /// Port of `/health` and `/ready` on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Where `kici-job-*` checkouts are created.
    pub work_dir: PathBuf,
    pub default_step_timeout: Duration,
    /// How long a dynamic matrix function may run (60 s).
    pub matrix_eval_timeout: Duration,
    pub job_heartbeat_interval: Duration,
    /// Connection `heartbeat` interval.
    pub heartbeat_interval: Duration,
    /// Cap on one job's log output; the rest is replaced by a `[TRUNCATED: ...]` line.
    pub max_log_size_bytes: u64,
    /// `KICI_SCALER_MANAGED`: started by an auto-scaler for one job; exits after it.
    pub scaler_managed: bool,
    /// `KICI_SCALER_BACKEND`: the backend of the scaler that started this agent.
    pub scaler_backend: Option<String>,
    /// `KICI_SCALER_PENDING_DISPATCH_TIMEOUT` (ms): a scaler-managed agent that got no job
    /// this long after it started exits.
    pub pending_dispatch_timeout: Duration,
    pub roles: Roles,
    pub execution_mode: ExecutionMode,
    /// `KICI_BACKPRESSURE_MODE`: what a job's log output does while the connection cannot
    /// take more.
    pub backpressure: Backpressure,
    /// `KICI_NODE`: the `node` to run workflows with; `None` = `node` on `PATH`.
    pub node: Option<PathBuf>,
    /// `KICI_LOG_*`: level, format, files.
    pub log: LogConfig,
    /// `KICI_METRICS_TOKEN`: the bearer token `/metrics` requires; `None` refuses every request.
    pub metrics_token: Option<MetricsToken>,
    /// Unknown `KICI_*` variables tolerated because of `KICI_DEV=true`; `main` logs them.
    pub unknown_env_warning: Option<UnknownEnv>,
}

pub use kici_telemetry::env::ConfigError;

/// One thing wrong with the environment; [`Config::from_env`] lists them all.
#[derive(Debug, thiserror::Error)]
enum Problem {
    #[error(
        "KICI_ORCHESTRATOR_URL is not set (hint: set it to the orchestrator's agent endpoint, e.g. `ws://orchestrator:8080/ws`)"
    )]
    MissingUrl,
    #[error("KICI_ORCHESTRATOR_URL `{url}` is not supported: {reason}")]
    BadUrl { url: String, reason: &'static str },
    #[error(
        "KICI_AGENT_TOKEN is not set (hint: create one with `kici-admin agent register --label <name>` against the orchestrator, http://127.0.0.1:4000 by default, or set KICI_AGENT_TOKEN_FILE; set it empty only when the orchestrator runs without agent authentication)"
    )]
    MissingToken,
    #[error("invalid KICI_LABELS: {source} (hint: KICI_LABELS is a comma-separated list such as `linux,gpu`)")]
    Label {
        #[source]
        source: LabelError,
    },
    #[error(transparent)]
    Log(#[from] LogConfigError),
    #[error("invalid {name} `{value}`: {expected}")]
    BadValue {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl Config {
    /// Builds the configuration from `vars` (the process environment in `main`). `hostname` is
    /// the machine's name, used for the default agent id and the `kici:host:*` label.
    pub fn from_env(vars: &BTreeMap<String, String>, hostname: &str) -> Result<Config, ConfigError> {
        let mut reader = Reader::new(vars, VARS)?;
        let get = |name: &str| vars.get(name).map(String::as_str);
        let orchestrator_url = get("KICI_ORCHESTRATOR_URL")
            .ok_or(Problem::MissingUrl)
            .and_then(|urls| {
                urls.split(',')
                    .filter(|url| !url.trim().is_empty())
                    .map(normalize_url)
                    .collect::<Result<Vec<_>, _>>()
            })
            .and_then(|urls| {
                if urls.is_empty() {
                    Err(Problem::MissingUrl)
                } else {
                    Ok(urls)
                }
            });
        let orchestrator_url = reader.or_record(orchestrator_url.map(Some), None);
        let token = get("KICI_AGENT_TOKEN")
            .map(AgentToken::new)
            .ok_or(Problem::MissingToken);
        let token = reader.or_record(token.map(Some), None);
        let (agent_id, agent_id_generated) = match get("KICI_AGENT_ID").map(str::trim) {
            Some(id) if !id.is_empty() => (AgentId::from(id), false),
            _ => (
                AgentId::new(format!("{hostname}-{}", kici_telemetry::os::random_hex(8))),
                true,
            ),
        };
        let labels = reader.or_record(parse_labels(get("KICI_LABELS").unwrap_or("")), Vec::new());
        kici_telemetry::env::note_default("KICI_PORT", &DEFAULT_PORT);
        for (name, default) in [
            ("KICI_SCALER_MANAGED", "false"),
            ("KICI_BACKPRESSURE_MODE", "pause"),
            ("KICI_ROLES", "all"),
            ("KICI_EXECUTION_MODE", "bare-metal"),
        ] {
            kici_telemetry::env::note_default(name, &default);
        }
        kici_telemetry::env::note_default("KICI_MAX_LOG_SIZE_BYTES", &DEFAULT_MAX_LOG_SIZE_BYTES);
        let port = match get("KICI_PORT") {
            None => DEFAULT_PORT,
            Some(value) => reader.or_record(
                value.trim().parse::<u16>().map_err(|_| Problem::BadValue {
                    name: "KICI_PORT",
                    value: value.to_string(),
                    expected: "expected a port number from 0 to 65535 (0 picks a free port)",
                }),
                DEFAULT_PORT,
            ),
        };
        let work_dir = match get("KICI_WORK_DIR") {
            Some(dir) if !dir.trim().is_empty() => PathBuf::from(dir),
            _ => std::env::temp_dir(),
        };
        let duration = |reader: &mut Reader, name, default| {
            kici_telemetry::env::note_default(name, &default);
            reader.or_record(millis(&get, name, default), Duration::from_millis(default))
        };
        let default_step_timeout = duration(&mut reader, "KICI_DEFAULT_STEP_TIMEOUT_MS", DEFAULT_STEP_TIMEOUT_MS);
        let matrix_eval_timeout = duration(
            &mut reader,
            "KICI_MATRIX_EVAL_TIMEOUT_MS",
            MATRIX_TIMEOUT.as_millis() as u64,
        );
        let job_heartbeat_interval = duration(
            &mut reader,
            "KICI_JOB_HEARTBEAT_INTERVAL_MS",
            DEFAULT_JOB_HEARTBEAT_INTERVAL_MS,
        );
        let heartbeat_interval = duration(&mut reader, "KICI_HEARTBEAT_INTERVAL_MS", DEFAULT_HEARTBEAT_INTERVAL_MS);
        let max_log_size_bytes = reader.or_record(
            positive(&get, "KICI_MAX_LOG_SIZE_BYTES", DEFAULT_MAX_LOG_SIZE_BYTES),
            DEFAULT_MAX_LOG_SIZE_BYTES,
        );
        let scaler_managed = reader.or_record(parse_bool("KICI_SCALER_MANAGED", get("KICI_SCALER_MANAGED")), false);
        let scaler_backend = reader.or_record(parse_scaler_backend(get("KICI_SCALER_BACKEND")), None);
        let pending_dispatch_timeout = duration(
            &mut reader,
            "KICI_SCALER_PENDING_DISPATCH_TIMEOUT",
            DEFAULT_PENDING_DISPATCH_TIMEOUT_MS,
        );
        let roles = reader.or_record(parse_roles(get("KICI_ROLES")), Roles::default());
        let execution_mode = reader.or_record(
            parse_execution_mode(get("KICI_EXECUTION_MODE")),
            ExecutionMode::BareMetal,
        );
        let backpressure = reader.or_record(parse_backpressure(get("KICI_BACKPRESSURE_MODE")), Backpressure::Pause);
        let log = reader.or_record(LogConfig::from_env(vars).map_err(Problem::Log), LogConfig::default());
        let unknown_env_warning = reader.tolerated();
        let (orchestrator_urls, token) = reader.finish(orchestrator_url.zip(token))?;
        Ok(Config {
            orchestrator_urls,
            agent_id,
            agent_id_generated,
            token,
            labels,
            hostname: hostname.to_string(),
            port,
            work_dir,
            default_step_timeout,
            matrix_eval_timeout,
            job_heartbeat_interval,
            heartbeat_interval,
            max_log_size_bytes,
            scaler_managed,
            scaler_backend,
            pending_dispatch_timeout,
            roles,
            execution_mode,
            backpressure,
            node: get("KICI_NODE").filter(|n| !n.trim().is_empty()).map(PathBuf::from),
            log,
            metrics_token: get("KICI_METRICS_TOKEN").and_then(MetricsToken::new),
            unknown_env_warning,
        })
    }

    /// Labels sent in `agent.register`: the operator's plus `kici:os:*`, `kici:arch:*`,
    /// `kici:host:*`, and `kici:role:builder` for a builder.
    pub fn all_labels(&self) -> Vec<String> {
        let mut labels = self.labels.clone();
        labels.extend(kici_engine::labels::system_labels(
            std::env::consts::OS,
            std::env::consts::ARCH,
            &self.hostname,
        ));
        if self.roles.builder {
            labels.push(kici_engine::labels::BUILDER_LABEL.to_string());
        }
        labels
    }
}

/// `ws://host:port/ws` as is; `http://host:port` (no path) becomes `ws://host:port/ws`.
fn normalize_url(raw: &str) -> Result<String, Problem> {
    let url = raw.trim();
    let bad = |reason| Problem::BadUrl {
        url: url.to_string(),
        reason,
    };
    let rest = if let Some(rest) = url.strip_prefix("ws://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if url.starts_with("wss://") || url.starts_with("https://") {
        return Err(bad(
            "this agent does not speak TLS (hint: use `ws://host:port/ws` behind a TLS-terminating proxy on the same network)",
        ));
    } else {
        return Err(bad("expected `ws://host:port/ws` or `http://host:port`"));
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(bad("the host is missing (expected `ws://host:port/ws`)"));
    }
    let path = if path.is_empty() || path == "/" { "/ws" } else { path };
    Ok(format!("ws://{authority}{path}"))
}

fn parse_labels(raw: &str) -> Result<Vec<String>, Problem> {
    let mut labels: Vec<String> = Vec::new();
    for label in raw.split(',').map(str::trim).filter(|l| !l.is_empty()) {
        validate_agent_label(label).map_err(|source| Problem::Label { source })?;
        if !labels.iter().any(|l| l == label) {
            labels.push(label.to_string());
        }
    }
    Ok(labels)
}

fn millis<'a>(get: &impl Fn(&str) -> Option<&'a str>, name: &'static str, default: u64) -> Result<Duration, Problem> {
    positive(get, name, default).map(Duration::from_millis)
}

fn positive<'a>(get: &impl Fn(&str) -> Option<&'a str>, name: &'static str, default: u64) -> Result<u64, Problem> {
    let Some(value) = get(name) else { return Ok(default) };
    match value.trim().parse::<u64>() {
        Ok(parsed) if parsed > 0 => Ok(parsed),
        _ => Err(Problem::BadValue {
            name,
            value: value.to_string(),
            expected: "expected a positive whole number",
        }),
    }
}

fn parse_bool(name: &'static str, value: Option<&str>) -> Result<bool, Problem> {
    match value.map(str::trim) {
        None | Some("" | "0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(other) => Err(Problem::BadValue {
            name,
            value: other.to_string(),
            expected: "expected `true`, `false`, `1` or `0`",
        }),
    }
}

fn parse_roles(value: Option<&str>) -> Result<Roles, Problem> {
    let all = Roles {
        builder: true,
        init_runner: true,
    };
    let Some(value) = value else { return Ok(all) };
    let mut roles = Roles::default();
    for role in value.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        match role {
            "all" => roles = all,
            "builder" => roles.builder = true,
            "init-runner" => roles.init_runner = true,
            other => {
                return Err(Problem::BadValue {
                    name: "KICI_ROLES",
                    value: other.to_string(),
                    expected: "expected a comma-separated list of `builder`, `init-runner`, or `all`",
                });
            }
        }
    }
    Ok(roles)
}

/// What log output does while the connection queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backpressure {
    /// The job's output waits (the default): nothing is lost, the job may slow down.
    Pause,
    /// Log chunks that find the queue full are dropped and counted
    /// (`kici_agent_log_lines_dropped_total`); step results are never dropped.
    Drop,
}

fn parse_backpressure(value: Option<&str>) -> Result<Backpressure, Problem> {
    match value.map(str::trim) {
        None | Some("" | "pause") => Ok(Backpressure::Pause),
        Some("drop") => Ok(Backpressure::Drop),
        Some(other) => Err(Problem::BadValue {
            name: "KICI_BACKPRESSURE_MODE",
            value: other.to_string(),
            expected: "`pause` or `drop`",
        }),
    }
}

fn parse_scaler_backend(value: Option<&str>) -> Result<Option<String>, Problem> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(backend @ ("bare-metal" | "container" | "firecracker")) => Ok(Some(backend.to_string())),
        Some(other) => Err(Problem::BadValue {
            name: "KICI_SCALER_BACKEND",
            value: other.to_string(),
            expected: "one of `bare-metal`, `container`, `firecracker`",
        }),
    }
}

fn parse_execution_mode(value: Option<&str>) -> Result<ExecutionMode, Problem> {
    match value.map(str::trim) {
        None | Some("" | "bare-metal") => Ok(ExecutionMode::BareMetal),
        Some(other) => Err(Problem::BadValue {
            name: "KICI_EXECUTION_MODE",
            value: other.to_string(),
            expected: "only `bare-metal` is supported by this agent",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut vars: BTreeMap<String, String> = [("KICI_ORCHESTRATOR_URL", "ws://o:1/ws"), ("KICI_AGENT_TOKEN", "")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in pairs {
            vars.insert(k.to_string(), v.to_string());
        }
        vars
    }

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_env(&env(pairs), "box")
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        load(pairs).expect_err("should be refused").to_string()
    }

    #[test]
    fn defaults() {
        let config = load(&[]).unwrap();
        assert_eq!(config.orchestrator_urls, ["ws://o:1/ws"]);
        assert_eq!(config.port, 8080);
        assert_eq!(config.default_step_timeout, Duration::from_millis(1_800_000));
        assert_eq!(config.job_heartbeat_interval, Duration::from_secs(60));
        assert_eq!(config.heartbeat_interval, Duration::from_secs(30));
        assert_eq!(config.max_log_size_bytes, 10_485_760);
        assert!(!config.scaler_managed);
        assert_eq!(
            config.roles,
            Roles {
                builder: true,
                init_runner: true
            }
        );
        assert_eq!(config.log, LogConfig::default());
        assert_eq!(config.metrics_token, None);
        let suffix = config.agent_id.strip_prefix("box-").expect("hostname prefix");
        assert_eq!(suffix.len(), 8);
        assert!(suffix.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(format!("{:?}", AgentToken::new("kat_secret")), "***");
    }

    #[test]
    fn urls() {
        let check = |raw: &str, want: &str| {
            assert_eq!(normalize_url(raw).unwrap(), want, "{raw}");
        };
        check("ws://o:8080/ws", "ws://o:8080/ws");
        check("http://o:8080", "ws://o:8080/ws");
        check("http://o:8080/", "ws://o:8080/ws");
        check("ws://o:8080", "ws://o:8080/ws");
        check(" http://127.0.0.1:9/ws ", "ws://127.0.0.1:9/ws");
        assert!(normalize_url("https://o").is_err());
        assert!(normalize_url("o:8080").is_err());
        assert!(normalize_url("ws:///ws").is_err());
    }

    #[test]
    fn several_orchestrator_urls_are_tried_in_turn() {
        let config = load(&[("KICI_ORCHESTRATOR_URL", "http://a:4000, ws://b:4000/ws,")]).unwrap();
        assert_eq!(config.orchestrator_urls, ["ws://a:4000/ws", "ws://b:4000/ws"]);
        let text = error(&[("KICI_ORCHESTRATOR_URL", "ws://a:4000/ws,https://b")]);
        assert!(
            text.contains("KICI_ORCHESTRATOR_URL `https://b` is not supported"),
            "{text}"
        );
        let text = error(&[("KICI_ORCHESTRATOR_URL", " , ")]);
        assert!(text.contains("KICI_ORCHESTRATOR_URL is not set"), "{text}");
    }

    #[test]
    fn unknown_variables_are_refused_unless_dev() {
        let text = error(&[("KICI_PROT", "1")]);
        assert!(text.contains("KICI_PROT    (did you mean KICI_PORT?)"), "{text}");
        let config = load(&[("KICI_PROT", "1"), ("KICI_DEV", "true")]).unwrap();
        assert!(config.unknown_env_warning.is_some());
        assert!(load(&[("KICI_LOG_LEVEL", "debug"), ("KICI_NODE", "/usr/bin/node")]).is_ok());
    }

    #[test]
    fn labels_are_validated_and_named() {
        let config = load(&[("KICI_LABELS", " gpu , linux,,gpu")]).unwrap();
        assert_eq!(config.labels, ["gpu", "linux"]);
        let all = config.all_labels();
        assert!(all.contains(&format!("kici:os:{}", std::env::consts::OS)));
        assert!(all.contains(&"kici:host:box".to_string()));
        let text = error(&[("KICI_LABELS", "gpu,kici:os:linux")]);
        assert!(text.contains("`kici:os:linux`"), "{text}");
        assert!(text.contains("hint"), "{text}");
        let text = error(&[("KICI_LABELS", "my label")]);
        assert!(text.contains("`my label`"), "{text}");
    }

    #[test]
    fn logging_and_metrics_settings() {
        let config = load(&[
            ("KICI_LOG_DIR", "/var/log/kici"),
            ("KICI_LOG_LEVEL", "debug"),
            ("KICI_LOG_MAX_SIZE", "5m"),
            ("KICI_METRICS_TOKEN", "scrape-me"),
        ])
        .unwrap();
        assert_eq!(config.log.dir.as_deref(), Some(std::path::Path::new("/var/log/kici")));
        assert_eq!(config.log.level, kici_telemetry::logging::LogLevel::Debug);
        assert_eq!(config.log.max_size_bytes, 5 * 1024 * 1024);
        assert_eq!(config.metrics_token, MetricsToken::new("scrape-me"));
        assert!(!format!("{config:?}").contains("scrape-me"));
        assert_eq!(load(&[("KICI_METRICS_TOKEN", " ")]).unwrap().metrics_token, None);
    }

    #[test]
    fn bad_values() {
        let check = |pairs: &[(&str, &str)], needle: &str| {
            let text = error(pairs);
            assert!(text.contains(needle), "{text}");
        };
        check(&[("KICI_PORT", "http")], "invalid KICI_PORT `http`");
        check(
            &[("KICI_HEARTBEAT_INTERVAL_MS", "0")],
            "invalid KICI_HEARTBEAT_INTERVAL_MS `0`",
        );
        check(&[("KICI_SCALER_MANAGED", "yes")], "invalid KICI_SCALER_MANAGED");
        check(&[("KICI_ROLES", "cook")], "invalid KICI_ROLES `cook`");
        check(
            &[("KICI_BACKPRESSURE_MODE", "block")],
            "invalid KICI_BACKPRESSURE_MODE `block`",
        );
        check(&[("KICI_EXECUTION_MODE", "container")], "only `bare-metal`");
        check(
            &[("KICI_SCALER_BACKEND", "docker")],
            "invalid KICI_SCALER_BACKEND `docker`",
        );
        check(
            &[("KICI_LOG_LEVEL", "loud")],
            "invalid KICI_LOG_LEVEL `loud` (hint: use debug, info, warn or error)",
        );
        check(&[("KICI_LOG_MAX_SIZE", "big")], "invalid KICI_LOG_MAX_SIZE `big`");
        let mut vars = env(&[]);
        vars.remove("KICI_AGENT_TOKEN");
        let problems = |vars: &BTreeMap<String, String>| match Config::from_env(vars, "h") {
            Err(ConfigError::Invalid(problems)) => problems,
            other => panic!("expected invalid values, got {other:?}"),
        };
        assert_eq!(problems(&vars), [Problem::MissingToken.to_string()]);
        vars.remove("KICI_ORCHESTRATOR_URL");
        // Every problem is listed, not only the first.
        assert_eq!(
            problems(&vars),
            [Problem::MissingUrl.to_string(), Problem::MissingToken.to_string()]
        );
        assert_eq!(load(&[("KICI_ROLES", "")]).unwrap().roles, Roles::default());
        assert_eq!(load(&[("KICI_PORT", "0")]).unwrap().port, 0);
        assert!(load(&[("KICI_SCALER_MANAGED", "1")]).unwrap().scaler_managed);
        assert_eq!(
            load(&[("KICI_BACKPRESSURE_MODE", "drop")]).unwrap().backpressure,
            Backpressure::Drop
        );
        assert_eq!(load(&[]).unwrap().backpressure, Backpressure::Pause);
        assert_eq!(
            load(&[("KICI_SCALER_PENDING_DISPATCH_TIMEOUT", "5000")])
                .unwrap()
                .pending_dispatch_timeout,
            Duration::from_secs(5)
        );
    }
}
