//! KiCI's persistence: one API over SQLite (the single-node default, a file under the data
//! directory) and PostgreSQL (`KICI_DATABASE_URL=postgres://…`, for production and several
//! orchestrators), with the same SQL on both through sqlx's `Any` driver.
//!
//! Architecture invariant: this is the only crate that writes SQL. Rows are read into the
//! engine's API types (`kici_engine::api`) or small records defined here; statuses are parsed
//! back into their enums, never compared as strings elsewhere.
//!
//! Times are epoch milliseconds passed in by callers (`now`), so tests control the clock.

mod agents;
mod cluster;
mod concurrency;
mod deliveries;
mod events;
#[cfg(feature = "test-faults")]
mod faults;
mod holds;
mod kici_events;
mod maintenance;
mod queue;
mod registrations;
mod retention;
mod runs;
mod secrets;
mod sources;
pub mod sql;
mod tokens;
mod user_caches;

use std::str::FromStr;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::sql::{Ledger, LedgerColumns, MigrateError, Migration};

pub use agents::AgentRecord;
pub use cluster::{DispatchListener, InstanceRecord, Leadership};
pub use concurrency::{Slot, SlotState};
pub use deliveries::{DeliveryRecord, EventLogEntry, NewDelivery};
pub use events::NewRunEvent;
pub use holds::{HoldDecisionRecord, HoldOutcome, NewHold};
pub use kici_events::{EventStatus, KiciEvent};
pub use maintenance::{SchemaStatus, inspect_sqlite_backup, known_migration};
pub use queue::{LabelSet, NewQueueEntry, QueueEntry, QueueStatus, concurrency_key};
pub use registrations::{NewRegistration, RegisteredAt, Registration};
pub use retention::Pruned;
pub use runs::{JobEnd, JobRecord, NewJob, NewRun, ReasonUpdate, ReusedJob, RunFilter, RunInputs, StepUpdate};
pub use secrets::{NewAudit, SealedOutput, SealedSecret, Upsert};
pub use sources::{NewSource, SealedColumn, Source, SourceKind, Verification};
pub use tokens::{AdminToken, AgentToken, NewAgentToken};
pub use user_caches::UserCache;

const LEDGER: Ledger = Ledger {
    database: "database",
    table: "kici_migrations",
    columns: LedgerColumns::VersionNameAppliedAt,
};

static MIGRATIONS: &[Migration] = &[
    (1, "core", include_str!("../migrations/0001_core.sql")),
    (2, "dynamic_jobs", include_str!("../migrations/0002_dynamic_jobs.sql")),
    (3, "run_events", include_str!("../migrations/0003_run_events.sql")),
    (
        4,
        "webhook_deliveries",
        include_str!("../migrations/0004_webhook_deliveries.sql"),
    ),
    (
        5,
        "source_credentials",
        include_str!("../migrations/0005_source_credentials.sql"),
    ),
    (
        6,
        "source_rate_limit",
        include_str!("../migrations/0006_source_rate_limit.sql"),
    ),
    (7, "rerun_of", include_str!("../migrations/0007_rerun_of.sql")),
    (
        8,
        "secrets_environments",
        include_str!("../migrations/0008_secrets_environments.sql"),
    ),
    (
        9,
        "secrets_accessed",
        include_str!("../migrations/0009_secrets_accessed.sql"),
    ),
    (10, "token_teams", include_str!("../migrations/0010_token_teams.sql")),
    (
        11,
        "init_results_secret_outputs",
        include_str!("../migrations/0011_init_results_secret_outputs.sql"),
    ),
    (
        12,
        "run_lockfile_hash",
        include_str!("../migrations/0012_run_lockfile_hash.sql"),
    ),
    (13, "user_caches", include_str!("../migrations/0013_user_caches.sql")),
    (14, "job_outputs", include_str!("../migrations/0014_job_outputs.sql")),
    (
        15,
        "run_deadlines",
        include_str!("../migrations/0015_run_deadlines.sql"),
    ),
    (
        16,
        "concurrency_groups",
        include_str!("../migrations/0016_concurrency_groups.sql"),
    ),
    (
        17,
        "workflow_registrations",
        include_str!("../migrations/0017_workflow_registrations.sql"),
    ),
    (18, "run_trust", include_str!("../migrations/0018_run_trust.sql")),
    (
        19,
        "source_api_url",
        include_str!("../migrations/0019_source_api_url.sql"),
    ),
    (
        20,
        "source_app_id",
        include_str!("../migrations/0020_source_app_id.sql"),
    ),
    (
        21,
        "source_lifecycle",
        include_str!("../migrations/0021_source_lifecycle.sql"),
    ),
    (22, "event_claims", include_str!("../migrations/0022_event_claims.sql")),
    (
        23,
        "registration_origin",
        include_str!("../migrations/0023_registration_origin.sql"),
    ),
    (24, "check_runs", include_str!("../migrations/0024_check_runs.sql")),
    (
        25,
        "source_allowed_owners",
        include_str!("../migrations/0025_source_allowed_owners.sql"),
    ),
    (
        26,
        "source_allowed_ips",
        include_str!("../migrations/0026_source_allowed_ips.sql"),
    ),
    (27, "kici_events", include_str!("../migrations/0027_kici_events.sql")),
    (28, "run_title", include_str!("../migrations/0028_run_title.sql")),
    (29, "reused_jobs", include_str!("../migrations/0029_reused_jobs.sql")),
    (
        30,
        "orchestrator_instances",
        include_str!("../migrations/0030_orchestrator_instances.sql"),
    ),
    (
        31,
        "dispatch_queue_pages",
        include_str!("../migrations/0031_dispatch_queue_pages.sql"),
    ),
    (
        32,
        "dispatch_label_sets",
        include_str!("../migrations/0032_dispatch_label_sets.sql"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to connect to the database `{url}`")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error("database query failed: {context}")]
    Query {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("database holds an unreadable value in `{column}`: {value}")]
    Corrupt { column: &'static str, value: String },
}

/// A handler's `?` answers a store failure as 500 `internal`: the details are logged, never
/// sent.
impl kici_engine::internal_error::InternalError for StoreError {
    const LOG_MESSAGE: &'static str = "store error";
    const ANSWER: &'static str = "internal error (details are in the orchestrator log)";
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Where it connects (PostgreSQL's listener opens its own connection).
    url: ConnectUrl,
}

/// A database URL, its password left out of `Debug`.
#[derive(Clone)]
struct ConnectUrl(String);

impl std::fmt::Debug for ConnectUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl Store {
    /// A write transaction. On SQLite it takes the database's write lock at its start (`BEGIN
    /// IMMEDIATE`), waiting up to the busy timeout for it: a deferred transaction that reads
    /// first fails at once (`SQLITE_BUSY_SNAPSHOT`) when it comes to write after another
    /// connection committed.
    async fn begin(&self) -> std::result::Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://…`) and applies migrations.
    pub async fn open(url: &str) -> Result<Store> {
        let store = Store::connect_pool(url).await?;
        sql::migrate(&store.pool, &LEDGER, MIGRATIONS).await?;
        Ok(store)
    }

    async fn connect_pool(url: &str) -> Result<Store> {
        let backend = if url.starts_with("postgres") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let pool = match backend {
            Backend::Sqlite => sql::open_sqlite_pool(url).await,
            Backend::Postgres => {
                sqlx::any::install_default_drivers();
                AnyPoolOptions::new()
                    .acquire_timeout(sql::ACQUIRE_TIMEOUT)
                    .max_connections(10)
                    .connect(url)
                    .await
            }
        }
        .map_err(|source| StoreError::Connect {
            url: redact_url(url),
            source,
        })?;
        Ok(Store {
            pool,
            backend,
            url: ConnectUrl(url.to_string()),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A trivial query, for readiness and diagnostics.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(q("ping"))?;
        Ok(())
    }
}

/// What [`secure_database_file`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseFile {
    /// PostgreSQL, or an in-memory SQLite database.
    NotAFile,
    /// Created empty with mode 0600; SQLite fills it when the store opens.
    Created(std::path::PathBuf),
    /// There already, readable by its owner only.
    Private(std::path::PathBuf),
    /// It (or its `-wal`/`-shm` file) was open to others: now 0600. `previous_mode` is the
    /// database file's.
    Tightened {
        path: std::path::PathBuf,
        previous_mode: u32,
    },
}

/// The single-node database: SQLite in the data directory (`KICI_DATABASE_URL` unset).
pub fn default_database_url(data_dir: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("kici.db").display())
}

/// The file of a SQLite URL (`sqlite://<path>?…`, `sqlite:<path>`), if it names one.
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = path.is_empty() || path == ":memory:" || query.split('&').any(|pair| pair == "mode=memory");
    (!in_memory).then(|| std::path::PathBuf::from(path))
}

/// Makes the SQLite database of `url` readable and writable by its owner only (mode 0600),
/// creating it so when absent (SQLite gives its `-wal` and `-shm` files the database's mode).
/// Call it before [`Store::open`]; the caller says when something had to be tightened.
pub fn secure_database_file(url: &str) -> std::io::Result<DatabaseFile> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};

    let Some(path) = sqlite_path(url) else {
        return Ok(DatabaseFile::NotAFile);
    };
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(_) => return Ok(DatabaseFile::Created(path)),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err),
    }
    let previous_mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
    let mut tightened = false;
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        let mode = match std::fs::metadata(&file) {
            Ok(metadata) => metadata.permissions().mode() & 0o777,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            tightened = true;
        }
    }
    Ok(if tightened {
        DatabaseFile::Tightened { path, previous_mode }
    } else {
        DatabaseFile::Private(path)
    })
}

/// `postgres://user:secret@host/db?password=x` → `postgres://user:***@host/db?password=***`.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut redacted = match (base.find("://"), base.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &base[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &base[..scheme_end + 3],
                    &credentials[..colon],
                    &base[at..]
                ),
                None => base.to_string(),
            }
        }
        _ => base.to_string(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_string(),
            })
            .collect();
        redacted.push('?');
        redacted.push_str(&pairs.join("&"));
    }
    redacted
}

fn q(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { context, source }
}

/// Reads a text column as an id type (`RunId`, `JobId`, …).
fn get_id<T: From<String>>(row: &AnyRow, column: &'static str) -> Result<T> {
    get::<String>(row, column).map(T::from)
}

/// Reads a nullable text column as an id type.
fn get_opt_id<T: From<String>>(row: &AnyRow, column: &'static str) -> Result<Option<T>> {
    get::<Option<String>>(row, column).map(|id| id.map(T::from))
}

fn get<'r, T>(row: &'r AnyRow, column: &'static str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(column).map_err(|source| StoreError::Query {
        context: column,
        source,
    })
}

/// Reads a column holding an enum's wire name.
fn get_enum<T: FromStr>(row: &AnyRow, column: &'static str) -> Result<T> {
    let text: String = get(row, column)?;
    text.parse().map_err(|_| StoreError::Corrupt { column, value: text })
}

/// Reads a nullable JSON column.
fn get_json<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &'static str) -> Result<Option<T>> {
    let text: Option<String> = get(row, column)?;
    match text {
        None => Ok(None),
        // JSON `null` reads as absent, like SQL NULL.
        Some(t) => serde_json::from_str::<Option<T>>(&t).map_err(|_| StoreError::Corrupt { column, value: t }),
    }
}

/// A value bound to a query built at run time.
#[derive(Debug, Clone, Copy)]
enum Arg<'a> {
    Int(i64),
    Text(&'a str),
}

/// Prepares `sql` with `args` bound to `$1`, `$2`, … in order.
fn dynamic<'q>(sql: String, args: &[Arg<'q>]) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    args.iter()
        .fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |query, arg| match *arg {
            Arg::Int(value) => query.bind(value),
            Arg::Text(value) => query.bind(value),
        })
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("store values serialize")
}

#[cfg(test)]
mod tests;
