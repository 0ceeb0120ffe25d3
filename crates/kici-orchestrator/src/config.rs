//! The orchestrator's configuration, read once from `KICI_*` environment variables and
//! validated before anything starts. Unknown `KICI_*` names are refused (typo catcher).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use kici_telemetry::env::{Reader, Var, var};

use crate::secret_key::Keyring;
use crate::storage::{S3Config, StorageConfig};

/// Every variable the orchestrator reads (plus the logging ones every service accepts): its
/// schema, which the typo catcher knows and `docs/configuration.md` is generated from.
pub const VARS: &[Var] = &[
    var(
        "KICI_PORT",
        "4000",
        "The HTTP port: webhooks, the API, `/health`, `/metrics` and the agents' WebSocket (`/ws`).",
    ),
    var(
        "KICI_BIND_ADDRESS",
        "127.0.0.1",
        "The address it listens on. Set `0.0.0.0` (behind TLS) for agents and forges on other hosts.",
    ),
    var(
        "KICI_DATA_DIR",
        "",
        "Its data: the SQLite database, step logs, stored files, the secret key and the first admin token. Unset: `/var/lib/kici` when writable, else `${XDG_STATE_HOME:-~/.local/state}/kici`.",
    ),
    var(
        "KICI_DATABASE_URL",
        "",
        "`sqlite://<path>?mode=rwc` or `postgres://user:password@host/db`. Unset: `kici.db` in the data directory.",
    ),
    var(
        "KICI_MODE",
        "independent",
        "Only `independent`: the hosted relay's `platform` and `hybrid` modes are refused.",
    ),
    var(
        "KICI_BOOTSTRAP_ADMIN_TOKEN",
        "",
        "An owner token (16 characters or more), valid from every start with it set. Unset: one is generated at the first start, printed once and written to `admin-token` in the data directory.",
    ),
    var(
        "KICI_AGENT_AUTH",
        "token",
        "`token`: agents register with an agent token. `none` lets any agent register (tests only).",
    ),
    var(
        "KICI_AGENT_TOKEN_TTL_MS",
        "3600000",
        "How long the token of an agent a scaler starts is valid; it is also revoked when the agent exits.",
    ),
    var(
        "KICI_QUEUE_TIMEOUT_MS",
        "3600000",
        "A job no agent took for this long fails `timed_out_stale`. 0: jobs wait forever.",
    ),
    var(
        "KICI_CONCURRENCY_WAIT_TIMEOUT_MS",
        "3600000",
        "How long a run may wait for its turn in a workflow concurrency group.",
    ),
    var(
        "KICI_QUEUE_MAX_DEPTH",
        "1000",
        "Jobs that may wait for an agent; a job beyond it fails at once (`queue full`).",
    ),
    var(
        "KICI_QUEUE_SWEEP_INTERVAL_MS",
        "1000",
        "How often expiries, deadlines and unacknowledged dispatches are looked for.",
    ),
    var(
        "KICI_SCHEDULE_INTERVAL_MS",
        "10000",
        "How often due schedules are looked for.",
    ),
    var(
        "KICI_DISPATCH_INTERVAL_MS",
        "1000",
        "How often the dispatcher looks at the queue without being woken (a queued job wakes it at once, also from another orchestrator).",
    ),
    var(
        "KICI_EVENT_ROUTER_SCAN_INTERVAL_MS",
        "10000",
        "How often due internal events (`kiciEvent()` triggers) are looked for.",
    ),
    var(
        "KICI_EVENT_ROUTER_LEASE_MS",
        "60000",
        "How long a delivery attempt holds an internal event.",
    ),
    var(
        "KICI_EVENT_ROUTER_MAX_ATTEMPTS",
        "5",
        "Attempts before an internal event is dead (`kici-admin event-dlq list`).",
    ),
    var(
        "KICI_EVENT_ROUTER_BACKOFF_BASE_MS",
        "5000",
        "The delay before the first retry of an internal event, doubled per attempt.",
    ),
    var(
        "KICI_EVENT_ROUTER_BACKOFF_MAX_MS",
        "300000",
        "The longest delay between retries of an internal event.",
    ),
    var(
        "KICI_DISPATCH_ACK_TIMEOUT_MS",
        "10000",
        "A dispatched job its agent did not acknowledge in this time goes back to the queue.",
    ),
    var(
        "KICI_JOB_HEARTBEAT_INTERVAL_MS",
        "60000",
        "The job heartbeat interval the orchestrator expects of agents (it does not set theirs: keep the two equal). With the multiplier below, it decides when a running job is stale.",
    ),
    var(
        "KICI_HEARTBEAT_INTERVAL_MS",
        "30000",
        "The ping interval the orchestrator expects of agents (it does not set theirs: keep the two equal). An agent silent for six of them is disconnected.",
    ),
    var(
        "KICI_STALE_DETECTOR_SCAN_INTERVAL_MS",
        "60000",
        "How often running jobs without heartbeats are looked for.",
    ),
    var(
        "KICI_STALE_DETECTOR_THRESHOLD_MULTIPLIER",
        "2",
        "A running job silent for this many job heartbeat intervals fails `timed_out_stale`.",
    ),
    var(
        "KICI_AGENT_MAX_RECONNECT_DELAY_MS",
        "60000",
        "How long the orchestrator expects a lost agent to take to come back (agents retry with a backoff of up to 60 s: keep it at least that). Its jobs wait twice this for it before they are requeued or failed.",
    ),
    var(
        "KICI_SECRET_KEY",
        "",
        "The key (64 hex characters or base64 of 32 bytes) that seals secrets and credentials at rest. Unset: `KICI_SECRET_KEY_FILE`, else `secret-key` in the data directory, created at the first start.",
    ),
    var("KICI_SECRET_KEY_FILE", "", "A file holding the secret key."),
    var(
        "KICI_SECRET_KEY_OLD",
        "",
        "The previous key during a rotation (`kici-admin rotate-key`).",
    ),
    var(
        "KICI_SECRET_KEY_FILE_OLD",
        "",
        "A file holding the previous key during a rotation.",
    ),
    var(
        "KICI_WEBHOOK_PUBLIC_URL",
        "",
        "Not supported by this build: setting it stops the orchestrator, naming it. Forges are given the webhook URL `kici-admin source add` prints.",
    ),
    var(
        "KICI_SCALER_CONFIG_PATH",
        "",
        "A `scalers.yaml`: how to start agents for jobs no connected agent fits.",
    ),
    var(
        "KICI_SCALER_CONFIG_DIR",
        "",
        "A `scalers.d/` directory of more scaler files.",
    ),
    var(
        "KICI_SERVER_TLS_CERT_PATH",
        "",
        "The certificate of the TLS proxy in front of it: `kici-admin diagnose` warns before it expires.",
    ),
    var(
        "KICI_METRICS_TOKEN",
        "",
        "A token that may read `/metrics` (besides admin tokens), for a scraper.",
    ),
    var(
        "KICI_ORCHESTRATOR_URL",
        "",
        "The URL agents a scaler starts connect to, unless the scaler sets `orchestratorUrl`. Unset: `ws://127.0.0.1:<port>/ws`.",
    ),
    var(
        "KICI_PLATFORM_URL",
        "",
        "The dashboard's orchestrator endpoint, e.g. `ws://127.0.0.1:4100/ws/orchestrator`. Unset: no dashboard.",
    ),
    var(
        "KICI_DASHBOARD_URL",
        "",
        "The dashboard's public address: commit statuses link to `<it>/runs/<runId>`.",
    ),
    var(
        "KICI_PLATFORM_TOKEN",
        "",
        "The orchestrator key the dashboard issued (`kici_ok_…`); required with `KICI_PLATFORM_URL`.",
    ),
    var(
        "KICI_WEBHOOK_ANSWER_BUDGET_MS",
        "3000",
        "How long a webhook's answer waits for the runs it starts before answering `processing` (forges hang up after 5 to 10 s).",
    ),
    var(
        "KICI_RETENTION_DAYS",
        "90",
        "Finished runs with their logs, deliveries and event-log lines older than this are deleted. 0 keeps everything.",
    ),
    var(
        "KICI_STORAGE_TYPE",
        "filesystem",
        "Where logs of several orchestrators and stored files go: `filesystem` (the data directory) or `s3`.",
    ),
    var(
        "KICI_STORAGE_FS_PATH",
        "",
        "The filesystem store's directory. Unset: `storage` in the data directory.",
    ),
    var(
        "KICI_STORAGE_FS_BASE_URL",
        "",
        "The address agents reach the filesystem store's signed URLs at. Unset: the address each agent reached the orchestrator at.",
    ),
    var(
        "KICI_USER_CACHE_QUOTA_BYTES",
        "5368709120",
        "Bytes the caches of an organization may take; a save beyond it is refused.",
    ),
    var(
        "KICI_CACHE_MAX_TARBALL_BYTES",
        "524288000",
        "The largest dependency tarball stored.",
    ),
    var(
        "KICI_CACHE_TTL_DAYS",
        "30",
        "Dependency and source tarballs unused this long are deleted.",
    ),
    var(
        "KICI_USER_CACHE_TTL_MS",
        "604800000",
        "Caches unused this long are deleted.",
    ),
    var(
        "KICI_STORAGE_BUCKET",
        "",
        "The S3 bucket; required with `KICI_STORAGE_TYPE=s3`. Credentials come from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.",
    ),
    var("KICI_STORAGE_PREFIX", "", "A prefix for every object key."),
    var("KICI_STORAGE_REGION", "us-east-1", "The S3 region."),
    var(
        "KICI_STORAGE_ENDPOINT",
        "",
        "An S3-compatible server's endpoint (MinIO, SeaweedFS, R2). Unset: AWS.",
    ),
    var(
        "KICI_STORAGE_EXTERNAL_ENDPOINT",
        "",
        "The endpoint signed URLs name, when agents reach the server at another address than the orchestrator does.",
    ),
    var(
        "KICI_STORAGE_FORCE_PATH_STYLE",
        "true",
        "Requests are path-style (what S3-compatible servers expect, and AWS accepts); `false`, virtual-hosted style, is refused.",
    ),
];

/// A whole number that must be at least 1 (0 would mean "never" where it cannot).
fn at_least_one(reader: &mut Reader<'_>, name: &str, default: u32) -> u32 {
    let value = reader.number(name, default);
    if value == 0 {
        reader.problem(format!("{name}: must be at least 1"));
        return default;
    }
    value
}

/// Delivering internal events (`KICI_EVENT_ROUTER_*`): due events are looked for every
/// `scan_interval`; an attempt holds an event for `lease`; a failed one is retried after
/// `backoff_base` doubled per attempt up to `backoff_max`; after `max_attempts` the event is
/// dead (the dead-letter list).
#[derive(Debug, Clone)]
pub struct EventRouterConfig {
    pub scan_interval: Duration,
    pub lease: Duration,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl EventRouterConfig {
    /// When the attempt after `attempts` failed ones is due; `None` when they are spent.
    pub fn retry_at(&self, attempts: u32, now: i64) -> Option<i64> {
        if attempts >= self.max_attempts {
            return None;
        }
        let factor = 1u128 << attempts.saturating_sub(1).min(32);
        let delay = (self.backoff_base.as_millis() * factor).min(self.backoff_max.as_millis());
        Some(now + delay as i64)
    }
}

const FILESYSTEM_ONLY: &[&str] = &["KICI_STORAGE_FS_PATH", "KICI_STORAGE_FS_BASE_URL"];
const S3_ONLY: &[&str] = &[
    "KICI_STORAGE_BUCKET",
    "KICI_STORAGE_PREFIX",
    "KICI_STORAGE_REGION",
    "KICI_STORAGE_ENDPOINT",
    "KICI_STORAGE_EXTERNAL_ENDPOINT",
    "KICI_STORAGE_FORCE_PATH_STYLE",
];

/// `KICI_STORAGE_*`: the filesystem under the data directory unless `KICI_STORAGE_TYPE=s3`.
fn storage_config(
    env: &BTreeMap<String, String>,
    data_dir: &std::path::Path,
    reader: &mut Reader<'_>,
) -> StorageConfig {
    let get = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();
    let kind = get("KICI_STORAGE_TYPE");
    kici_telemetry::env::note_default("KICI_STORAGE_TYPE", &"filesystem");
    kici_telemetry::env::note_default("KICI_STORAGE_REGION", &"us-east-1");
    kici_telemetry::env::note_default("KICI_STORAGE_FORCE_PATH_STYLE", &"true");
    // A setting of the other kind of storage would be silently ignored: an operator who set a
    // bucket and forgot the type would get logs on each host's disk.
    let (others, needs) = match kind.as_deref() {
        Some("s3") => (FILESYSTEM_ONLY, "KICI_STORAGE_TYPE=filesystem"),
        _ => (S3_ONLY, "KICI_STORAGE_TYPE=s3"),
    };
    for name in others.iter().filter(|name| get(name).is_some()) {
        reader.problem(format!(
            "{name}: only read with {needs} (hint: set that, or unset {name})"
        ));
    }
    match kind.as_deref() {
        None | Some("filesystem") => {
            let base_url = get("KICI_STORAGE_FS_BASE_URL");
            // Agents download from it as it is: it must be a whole http(s) URL.
            if let Some(base) = &base_url
                && !url::Url::parse(base).is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            {
                reader.problem(format!(
                    "KICI_STORAGE_FS_BASE_URL: `{base}` is not an http or https URL (hint: e.g. https://ci.example.com, where agents reach this orchestrator's /storage/; or unset it, and agents use the address they reach it at)"
                ));
            }
            StorageConfig::Filesystem {
                root: get("KICI_STORAGE_FS_PATH").map_or_else(|| data_dir.join("storage"), PathBuf::from),
                base_url,
            }
        }
        Some("s3") => {
            let bucket = get("KICI_STORAGE_BUCKET").unwrap_or_else(|| {
                reader.problem("KICI_STORAGE_BUCKET: required with KICI_STORAGE_TYPE=s3 (e.g. kici-cache)");
                String::new()
            });
            match get("KICI_STORAGE_FORCE_PATH_STYLE").as_deref() {
                None | Some("true") => {}
                Some("false") => reader.problem(
                    "KICI_STORAGE_FORCE_PATH_STYLE: `false` asks for virtual-hosted URLs, which this build does not make (hint: unset it; requests are path-style)",
                ),
                Some(style) => reader.problem(format!("KICI_STORAGE_FORCE_PATH_STYLE: `{style}` is not true or false")),
            }
            StorageConfig::S3(S3Config {
                bucket,
                prefix: get("KICI_STORAGE_PREFIX").unwrap_or_default(),
                region: get("KICI_STORAGE_REGION").unwrap_or_else(|| "us-east-1".to_string()),
                endpoint: get("KICI_STORAGE_ENDPOINT"),
                external_endpoint: get("KICI_STORAGE_EXTERNAL_ENDPOINT"),
                access_key_id: get("AWS_ACCESS_KEY_ID"),
                secret_access_key: get("AWS_SECRET_ACCESS_KEY"),
            })
        }
        Some(other) => {
            reader.problem(format!("KICI_STORAGE_TYPE: `{other}` is not filesystem or s3"));
            StorageConfig::Filesystem {
                root: data_dir.join("storage"),
                base_url: None,
            }
        }
    }
}

/// How agents authenticate on `/ws`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentAuth {
    /// `auth.request` with a `kat_` token (the default).
    Token,
    /// No token: any agent may register. Only for trusted single-user setups.
    None,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where objects shared across agents live (dependency tarballs).
    pub storage: StorageConfig,
    pub bind_address: IpAddr,
    /// `0` picks a free port (tests).
    pub port: u16,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub bootstrap_admin_token: Option<String>,
    pub agent_auth: AgentAuth,
    /// `None` = jobs wait for an agent forever.
    pub queue_timeout: Option<Duration>,
    pub queue_max_depth: usize,
    /// How long a job may wait for its run's turn in a concurrency group.
    pub concurrency_wait_timeout: Duration,
    pub queue_sweep_interval: Duration,
    /// How often due schedules are looked for.
    pub schedule_interval: Duration,
    /// How often the dispatcher looks at the queue without being woken (a wake, also from
    /// another orchestrator on the database, comes at once).
    pub dispatch_interval: Duration,
    pub event_router: EventRouterConfig,
    pub dispatch_ack_timeout: Duration,
    pub job_heartbeat_interval: Duration,
    pub stale_scan_interval: Duration,
    pub stale_threshold_multiplier: u32,
    /// How often agents ping (`KICI_HEARTBEAT_INTERVAL_MS`, shared with the agent's setting).
    pub agent_heartbeat_interval: Duration,
    /// Agents get twice this to reconnect before their jobs fail.
    pub agent_max_reconnect_delay: Duration,
    pub log_level: String,
    /// The log directory, for the redacted configuration view.
    pub log_dir: Option<PathBuf>,
    /// A certificate whose expiry `diagnose` checks.
    pub tls_cert_path: Option<PathBuf>,
    /// Lets a scraper read `/metrics` without an admin token.
    pub metrics_token: Option<String>,
    /// `scalers.yaml` (`KICI_SCALER_CONFIG_PATH`).
    pub scaler_config_path: Option<PathBuf>,
    /// `scalers.d/` (`KICI_SCALER_CONFIG_DIR`).
    pub scaler_config_dir: Option<PathBuf>,
    /// The URL spawned agents connect to unless their scaler sets `orchestratorUrl`
    /// (`KICI_ORCHESTRATOR_URL`; default `ws://127.0.0.1:<port>/ws`).
    pub agent_orchestrator_url: Option<String>,
    /// `KICI_AGENT_ENV_<NAME>=value`: passed to spawned agents as `<NAME>=value`.
    pub agent_env: BTreeMap<String, String>,
    /// The Platform's orchestrator endpoint (`KICI_PLATFORM_URL`, e.g.
    /// `ws://127.0.0.1:4100/ws/orchestrator`); `None` = no dashboard.
    pub platform_url: Option<String>,
    /// The dashboard's public address (`KICI_DASHBOARD_URL`, e.g. `https://ci.example.com`):
    /// commit statuses link to `<it>/runs/<runId>`.
    pub dashboard_url: Option<String>,
    /// The orchestrator key the Platform issued (`KICI_PLATFORM_TOKEN`, `kici_ok_…`).
    pub platform_token: Option<String>,
    /// How long a spawned agent's token is valid (`KICI_AGENT_TOKEN_TTL_MS`, default 1 h); it
    /// is also revoked when the agent exits.
    pub agent_token_ttl: Duration,
    /// Finished runs (with their logs), deliveries and event-log lines older than this are
    /// deleted (`KICI_RETENTION_DAYS`, default 90; 0 keeps everything).
    pub retention: Option<Duration>,
    /// How long a webhook answer waits for its processing before saying `processing`
    /// (`KICI_WEBHOOK_ANSWER_BUDGET_MS`, default 3 s: forges hang up after 5–10 s).
    pub webhook_answer_budget: Duration,
    /// The keys that encrypt webhook secrets and clone credentials at rest
    /// (`KICI_SECRET_KEY` / `KICI_SECRET_KEY_FILE`, else `<data dir>/secret-key`;
    /// `KICI_SECRET_KEY_OLD` / `KICI_SECRET_KEY_FILE_OLD` during a rotation).
    pub secret_keys: Keyring,
    /// The largest dependency tarball stored (`KICI_CACHE_MAX_TARBALL_BYTES`, default 500 MB).
    pub cache_max_tarball_bytes: u64,
    /// Dependency and source tarballs unused this long are deleted (`KICI_CACHE_TTL_DAYS`,
    /// default 30; a dependency tarball's use refreshes it).
    pub cache_ttl: Duration,
    /// Bytes an organization's caches (`cache`, `ctx.cache`) may take
    /// (`KICI_USER_CACHE_QUOTA_BYTES`, default 5 GiB): a save beyond it is refused.
    pub user_cache_quota_bytes: u64,
    /// Caches unused for this long are deleted (`KICI_USER_CACHE_TTL_MS`, default 7 days).
    pub user_cache_ttl: Duration,
    /// The host variables a bare-metal agent may inherit ([`kici_engine::host_env::INHERITED`],
    /// and what `systemd-run --user` needs), captured once from `env`.
    pub host_env: BTreeMap<String, String>,
}

/// What `systemd-run --user` needs to reach the user's service manager; they name no secret.
pub const SYSTEMD_USER_ENV: [&str; 2] = ["XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"];

pub use kici_telemetry::env::ConfigError;

impl Config {
    /// Reads the configuration from `env` (the process environment in `main`).
    pub fn from_env(env: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let mut reader = Reader::new(env, VARS)?;
        let port = reader.number("KICI_PORT", 4000u16);
        let bind_address = reader.parse(
            "KICI_BIND_ADDRESS",
            IpAddr::from([127, 0, 0, 1]),
            "an IP address such as 127.0.0.1",
        );
        let queue_timeout_ms = reader.number("KICI_QUEUE_TIMEOUT_MS", 3_600_000u64);
        let queue_max_depth = reader.number("KICI_QUEUE_MAX_DEPTH", 1000usize);
        let concurrency_wait_timeout = reader.millis("KICI_CONCURRENCY_WAIT_TIMEOUT_MS", 3_600_000);
        let queue_sweep_interval = reader.interval("KICI_QUEUE_SWEEP_INTERVAL_MS", 1000);
        let schedule_interval = reader.interval("KICI_SCHEDULE_INTERVAL_MS", 10_000);
        let dispatch_interval = reader.interval("KICI_DISPATCH_INTERVAL_MS", 1_000);
        let event_router = EventRouterConfig {
            scan_interval: reader.interval("KICI_EVENT_ROUTER_SCAN_INTERVAL_MS", 10_000),
            lease: reader.interval("KICI_EVENT_ROUTER_LEASE_MS", 60_000),
            max_attempts: at_least_one(&mut reader, "KICI_EVENT_ROUTER_MAX_ATTEMPTS", 5),
            backoff_base: reader.interval("KICI_EVENT_ROUTER_BACKOFF_BASE_MS", 5_000),
            backoff_max: reader.interval("KICI_EVENT_ROUTER_BACKOFF_MAX_MS", 300_000),
        };
        let dispatch_ack_timeout = reader.millis("KICI_DISPATCH_ACK_TIMEOUT_MS", 10_000);
        let job_heartbeat_interval = reader.interval("KICI_JOB_HEARTBEAT_INTERVAL_MS", 60_000);
        let stale_scan_interval = reader.interval("KICI_STALE_DETECTOR_SCAN_INTERVAL_MS", 60_000);
        let stale_threshold_multiplier = reader.number("KICI_STALE_DETECTOR_THRESHOLD_MULTIPLIER", 2u32);
        let agent_heartbeat_interval = reader.interval("KICI_HEARTBEAT_INTERVAL_MS", 30_000);
        let agent_max_reconnect_delay = reader.millis("KICI_AGENT_MAX_RECONNECT_DELAY_MS", 60_000);
        let webhook_answer_budget = reader.millis("KICI_WEBHOOK_ANSWER_BUDGET_MS", 3_000);
        let agent_token_ttl = reader.interval("KICI_AGENT_TOKEN_TTL_MS", 3_600_000);
        let retention_days = reader.number("KICI_RETENTION_DAYS", 90u64);
        let user_cache_quota_bytes = reader.number("KICI_USER_CACHE_QUOTA_BYTES", 5u64 << 30);
        let cache_max_tarball_bytes = reader.number("KICI_CACHE_MAX_TARBALL_BYTES", 524_288_000u64);
        let cache_ttl_days = u64::from(at_least_one(&mut reader, "KICI_CACHE_TTL_DAYS", 30));
        let user_cache_ttl = reader.interval("KICI_USER_CACHE_TTL_MS", 7 * 24 * 3_600_000);
        kici_telemetry::env::note_default("KICI_AGENT_AUTH", &"token");
        kici_telemetry::env::note_default("KICI_MODE", &"independent");
        let agent_auth = match env.get("KICI_AGENT_AUTH").map(String::as_str) {
            None | Some("token") => AgentAuth::Token,
            Some("none") => AgentAuth::None,
            Some(other) => {
                reader.problem(format!("KICI_AGENT_AUTH: `{other}` is not `token` or `none`"));
                AgentAuth::Token
            }
        };
        if env.contains_key("KICI_WEBHOOK_PUBLIC_URL") {
            reader.problem("KICI_WEBHOOK_PUBLIC_URL: this build does not use it (hint: unset it; give forges the webhook URL `kici-admin source add` prints)");
        }
        match env.get("KICI_MODE").map(String::as_str) {
            None | Some("independent") => {}
            Some(mode @ ("platform" | "hybrid")) => reader.problem(format!(
                "KICI_MODE: `{mode}` needs the hosted relay, which this build does not have (hint: unset it or use `independent`)"
            )),
            Some(other) => reader.problem(format!("KICI_MODE: `{other}` is not a mode (hint: use `independent`)")),
        }
        let log_level = env.get("KICI_LOG_LEVEL").cloned().unwrap_or_else(|| "info".to_string());
        let bootstrap_admin_token = env.get("KICI_BOOTSTRAP_ADMIN_TOKEN").cloned().filter(|t| !t.is_empty());
        if let Some(token) = &bootstrap_admin_token
            && token.len() < 16
        {
            reader.problem("KICI_BOOTSTRAP_ADMIN_TOKEN: must be at least 16 characters (hint: `openssl rand -hex 32`)");
        }
        let data_dir = reader.data_dir();
        let database_url = env
            .get("KICI_DATABASE_URL")
            .cloned()
            .unwrap_or_else(|| kici_store::default_database_url(&data_dir));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            reader.problem("KICI_DATABASE_URL: must start with sqlite: or postgres://");
        }
        let platform_url = env.get("KICI_PLATFORM_URL").cloned().filter(|u| !u.is_empty());
        let platform_token = env.get("KICI_PLATFORM_TOKEN").cloned().filter(|t| !t.is_empty());
        let dashboard_url = env.get("KICI_DASHBOARD_URL").cloned().filter(|u| !u.is_empty());
        if let Some(url) = &dashboard_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            reader.problem(format!(
                "KICI_DASHBOARD_URL: `{url}` must start with http:// or https:// (e.g. https://ci.example.com)"
            ));
        }
        if let Some(url) = &platform_url {
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                reader.problem(format!(
                    "KICI_PLATFORM_URL: `{url}` must start with ws:// or wss:// (e.g. ws://127.0.0.1:4100/ws/orchestrator)"
                ));
            }
            if platform_token.is_none() {
                reader.problem(
                    "KICI_PLATFORM_TOKEN: required with KICI_PLATFORM_URL (hint: the orchestrator key the Platform shows once, kici_ok_…)",
                );
            }
        }
        let secret_keys = match Keyring::from_env(env, &data_dir) {
            Ok(keys) => Some(keys),
            Err(problems) => {
                problems.into_iter().for_each(|problem| reader.problem(problem));
                None
            }
        };
        let storage = storage_config(env, &data_dir, &mut reader);
        let secret_keys = reader.finish(secret_keys)?;
        Ok(Config {
            storage,
            bind_address,
            port,
            data_dir,
            database_url,
            bootstrap_admin_token,
            agent_auth,
            queue_timeout: (queue_timeout_ms > 0).then(|| Duration::from_millis(queue_timeout_ms)),
            queue_max_depth,
            concurrency_wait_timeout,
            queue_sweep_interval,
            schedule_interval,
            dispatch_interval,
            event_router,
            dispatch_ack_timeout,
            job_heartbeat_interval,
            stale_scan_interval,
            stale_threshold_multiplier,
            agent_heartbeat_interval,
            agent_max_reconnect_delay,
            log_level,
            log_dir: env.get("KICI_LOG_DIR").map(PathBuf::from),
            tls_cert_path: env.get("KICI_SERVER_TLS_CERT_PATH").map(PathBuf::from),
            metrics_token: env.get("KICI_METRICS_TOKEN").cloned().filter(|t| !t.is_empty()),
            scaler_config_path: env
                .get("KICI_SCALER_CONFIG_PATH")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            scaler_config_dir: env
                .get("KICI_SCALER_CONFIG_DIR")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            agent_orchestrator_url: env.get("KICI_ORCHESTRATOR_URL").cloned().filter(|u| !u.is_empty()),
            platform_url,
            dashboard_url,
            platform_token,
            webhook_answer_budget,
            agent_token_ttl,
            retention: (retention_days > 0).then(|| Duration::from_secs(retention_days * 24 * 3600)),
            secret_keys,
            user_cache_quota_bytes,
            user_cache_ttl,
            cache_max_tarball_bytes,
            cache_ttl: Duration::from_secs(cache_ttl_days * 24 * 3600),
            host_env: env
                .iter()
                .filter(|(name, _)| {
                    kici_engine::host_env::INHERITED.contains(&name.as_str())
                        || SYSTEMD_USER_ENV.contains(&name.as_str())
                })
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
            agent_env: env
                .iter()
                .filter_map(|(name, value)| {
                    let stripped = name.strip_prefix("KICI_AGENT_ENV_").filter(|n| !n.is_empty())?;
                    Some((stripped.to_string(), value.clone()))
                })
                .collect(),
        })
    }

    /// How long an agent may stay silent about a running job.
    pub fn stale_threshold(&self) -> Duration {
        self.job_heartbeat_interval * self.stale_threshold_multiplier
    }

    /// An agent connection with no frame at all for this long is closed (4004): six missed
    /// pings, 180 s by default.
    pub fn agent_silence_timeout(&self) -> Duration {
        self.agent_heartbeat_interval * 6
    }

    /// Where spawned agents connect unless their scaler says otherwise.
    pub fn agent_url(&self) -> String {
        self.agent_orchestrator_url
            .clone()
            .unwrap_or_else(|| format!("ws://127.0.0.1:{}/ws", self.port))
    }

    /// How long a disconnected agent's jobs wait for it.
    pub fn recovery_window(&self) -> Duration {
        self.agent_max_reconnect_delay * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_bind_localhost_on_4000() {
        let config = Config::from_env(&env(&[("KICI_DATA_DIR", "/tmp/kici-config-test")])).unwrap();
        assert_eq!(
            (config.bind_address.to_string(), config.port),
            ("127.0.0.1".to_string(), 4000)
        );
        assert_eq!(config.database_url, "sqlite:///tmp/kici-config-test/kici.db?mode=rwc");
        assert_eq!(config.queue_timeout, Some(Duration::from_secs(3600)));
        assert_eq!(config.recovery_window(), Duration::from_secs(120));
        assert_eq!(config.agent_token_ttl, Duration::from_secs(3600));
        assert_eq!(config.retention, Some(Duration::from_secs(90 * 24 * 3600)));
        assert_eq!(config.webhook_answer_budget, Duration::from_secs(3));
        let config = Config::from_env(&env(&[
            ("KICI_DATA_DIR", "/tmp/x"),
            ("KICI_AGENT_TOKEN_TTL_MS", "60000"),
        ]))
        .unwrap();
        assert_eq!(config.agent_token_ttl, Duration::from_secs(60));
    }

    #[test]
    fn unknown_variables_and_bad_values_are_refused() {
        let err = Config::from_env(&env(&[("KICI_PROT", "4000")])).unwrap_err();
        assert!(
            err.to_string().contains("  - KICI_PROT    (did you mean KICI_PORT?)"),
            "{err}"
        );
        let err = Config::from_env(&env(&[
            ("KICI_PORT", "abc"),
            ("KICI_DATA_DIR", "rel"),
            ("KICI_MODE", "platform"),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Configuration validation failed:\n  - KICI_PORT: `abc` is not a non-negative whole number\n  - KICI_MODE: `platform` needs the hosted relay, which this build does not have (hint: unset it or use `independent`)\n  - KICI_DATA_DIR: `rel` must be an absolute path"
        );
        assert!(
            Config::from_env(&env(&[
                ("KICI_PROT", "1"),
                ("KICI_DEV", "true"),
                ("KICI_DATA_DIR", "/tmp/x")
            ]))
            .is_ok()
        );
    }

    #[test]
    fn settings_this_build_does_not_honour_stop_it() {
        let err = Config::from_env(&env(&[
            ("KICI_DATA_DIR", "/tmp/x"),
            ("KICI_WEBHOOK_PUBLIC_URL", "https://ci.example.com"),
            ("KICI_STORAGE_TYPE", "s3"),
            ("KICI_STORAGE_BUCKET", "kici"),
            ("KICI_STORAGE_FORCE_PATH_STYLE", "false"),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Configuration validation failed:\n  - KICI_WEBHOOK_PUBLIC_URL: this build does not use it (hint: unset it; give forges the webhook URL `kici-admin source add` prints)\n  - KICI_STORAGE_FORCE_PATH_STYLE: `false` asks for virtual-hosted URLs, which this build does not make (hint: unset it; requests are path-style)"
        );
    }

    #[test]
    fn a_setting_of_the_storage_not_in_use_or_a_zero_that_cannot_be_stop_it() {
        let err = Config::from_env(&env(&[
            ("KICI_DATA_DIR", "/tmp/x"),
            ("KICI_STORAGE_BUCKET", "kici"),
            ("KICI_CACHE_TTL_DAYS", "0"),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Configuration validation failed:\n  - KICI_CACHE_TTL_DAYS: must be at least 1\n  - KICI_STORAGE_BUCKET: only read with KICI_STORAGE_TYPE=s3 (hint: set that, or unset KICI_STORAGE_BUCKET)"
        );
        let err = Config::from_env(&env(&[
            ("KICI_DATA_DIR", "/tmp/x"),
            ("KICI_STORAGE_TYPE", "s3"),
            ("KICI_STORAGE_BUCKET", "kici"),
            ("KICI_STORAGE_FS_PATH", "/srv/kici"),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Configuration validation failed:\n  - KICI_STORAGE_FS_PATH: only read with KICI_STORAGE_TYPE=filesystem (hint: set that, or unset KICI_STORAGE_FS_PATH)"
        );
        let err = Config::from_env(&env(&[
            ("KICI_DATA_DIR", "/tmp/x"),
            ("KICI_STORAGE_FS_BASE_URL", "ci.example.com:4000"),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Configuration validation failed:\n  - KICI_STORAGE_FS_BASE_URL: `ci.example.com:4000` is not an http or https URL (hint: e.g. https://ci.example.com, where agents reach this orchestrator's /storage/; or unset it, and agents use the address they reach it at)"
        );
        let config = Config::from_env(&env(&[
            ("KICI_DATA_DIR", "/tmp/x"),
            ("KICI_STORAGE_FS_BASE_URL", "https://ci.example.com/kici"),
        ]))
        .unwrap();
        assert!(matches!(
            config.storage,
            StorageConfig::Filesystem { base_url: Some(_), .. }
        ));
    }

    #[test]
    fn secret_key_settings_are_validated_without_echoing_them() {
        let err = Config::from_env(&env(&[
            ("KICI_DATA_DIR", "/tmp/x"),
            ("KICI_SECRET_KEY", "c2hvcnQtc2VjcmV0"),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Configuration validation failed:\n  - KICI_SECRET_KEY: Encryption key must be exactly 32 bytes, got 12 bytes. Use 64 hex characters or the base64 of 32 bytes (hint: `openssl rand -hex 32`)"
        );
        let key = "ab".repeat(32);
        let config = Config::from_env(&env(&[
            ("KICI_DATA_DIR", "/tmp/x"),
            ("KICI_SECRET_KEY", &key),
            ("KICI_SECRET_KEY_OLD", &"cd".repeat(32)),
        ]))
        .unwrap();
        assert!(config.secret_keys.old_id().is_some());
        assert!(!format!("{config:?}").contains(&key));
    }

    #[test]
    fn zero_timer_periods_are_refused() {
        let err = Config::from_env(&env(&[
            ("KICI_DATA_DIR", "/tmp/x"),
            ("KICI_QUEUE_SWEEP_INTERVAL_MS", "0"),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Configuration validation failed:\n  - KICI_QUEUE_SWEEP_INTERVAL_MS: must be at least 1 (milliseconds)"
        );
    }
}
