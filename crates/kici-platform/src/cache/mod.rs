//! The Platform's cache: its own SQLite database `<data dir>/platform.db`, holding what
//! orchestrators pushed (run rows with their jobs and steps, timeline events) and what the
//! Platform knows about orchestrators (version, URL, online, last seen). It is what makes the
//! run list, the run header, the failure banner and the timeline work while an orchestrator is
//! offline, and it survives a restart of the Platform.
//!
//! SQL goes through sqlx's `Any` driver with portable SQL (TEXT ids and JSON, BIGINT epoch-ms
//! times and 0/1 flags), as in `kici-store`, so a PostgreSQL cache stays a small step; the pool
//! and the migration runner are the store's (`kici_store::sql`). Whole API objects are stored
//! as JSON next to the columns the list filters on.
//!
//! Not here: deciding what to do with a snapshot beyond "newer wins" ([`runs::supersedes`]),
//! log content (never cached: it stays on the orchestrator).

mod orchestrators;
mod runs;
mod sessions;
mod users;

use std::path::Path;

use kici_store::sql::{self, Ledger, LedgerColumns, MigrateError, Migration};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

pub use orchestrators::OrchestratorRecord;
pub use runs::{CachedRun, RunFilter, SnapshotOutcome, supersedes};
pub use sessions::StoredSession;
pub use users::{Role, User};

const LEDGER: Ledger = Ledger {
    database: "cache",
    table: "platform_migrations",
    columns: LedgerColumns::VersionName,
};

static MIGRATIONS: &[Migration] = &[
    (
        1,
        "cache",
        "CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        run_json TEXT NOT NULL,
        status TEXT NOT NULL,
        workflow_name TEXT NOT NULL,
        repo TEXT NOT NULL,
        git_ref TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        orchestrator_id TEXT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX runs_by_created ON runs (created_at, run_id);
    CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        position BIGINT NOT NULL,
        job_json TEXT NOT NULL
    );
    CREATE INDEX jobs_by_run ON jobs (run_id, position);
    CREATE TABLE run_events (
        event_id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        timestamp_ms BIGINT NOT NULL,
        event_json TEXT NOT NULL
    );
    CREATE INDEX run_events_by_run ON run_events (run_id, timestamp_ms);
    CREATE TABLE orchestrators (
        instance_id TEXT PRIMARY KEY,
        version TEXT NOT NULL,
        url TEXT NOT NULL,
        connected BIGINT NOT NULL,
        last_seen_at BIGINT NOT NULL
    );",
    ),
    (
        2,
        "users",
        "CREATE TABLE users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL
    );",
    ),
    // Jobs cached before this have '' until their run's next snapshot; an orchestrator
    // replays its active runs whenever it connects.
    (
        3,
        "job status",
        "ALTER TABLE jobs ADD COLUMN status TEXT NOT NULL DEFAULT '';
    CREATE INDEX jobs_by_status ON jobs (status);",
    ),
    (
        4,
        "sessions",
        "CREATE TABLE sessions (
        id_hash TEXT PRIMARY KEY,
        principal_name TEXT NOT NULL,
        role TEXT NOT NULL,
        kind TEXT NOT NULL,
        csrf_token TEXT NOT NULL,
        credential TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    );
    CREATE INDEX sessions_by_principal ON sessions (principal_name);",
    ),
    // Runs cached before this take theirs from the run they hold.
    (
        5,
        "run trigger",
        "ALTER TABLE runs ADD COLUMN trigger_type TEXT NOT NULL DEFAULT '';
    UPDATE runs SET trigger_type = COALESCE(json_extract(run_json, '$.trigger'), '');",
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("failed to open the cache database `{path}`")]
    Open {
        path: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error("cache query failed: {context}")]
    Query {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the cache holds an unreadable value in `{column}` (hint: delete platform.db; orchestrators push their runs again on reconnect)"
    )]
    Corrupt {
        column: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

pub type Result<T> = std::result::Result<T, CacheError>;

/// The cache database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Cache {
    pool: AnyPool,
    /// Serialises snapshot upserts: each reads the stored run, decides, then writes, and two
    /// of them interleaving could let an older snapshot win.
    write: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Cache {
    /// Opens (creating it when missing) the SQLite file at `path` and applies migrations.
    pub async fn open(path: &Path) -> Result<Cache> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = sql::open_sqlite_pool(&url).await.map_err(|source| CacheError::Open {
            path: path.display().to_string(),
            source,
        })?;
        sql::migrate(&pool, &LEDGER, MIGRATIONS).await?;
        Ok(Cache {
            pool,
            write: Default::default(),
        })
    }

    /// A trivial query, for `/ready`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(q("ping"))?;
        Ok(())
    }

    /// Closes the pool (waits for connections in use to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn q(context: &'static str) -> impl FnOnce(sqlx::Error) -> CacheError {
    move |source| CacheError::Query { context, source }
}

fn get<'r, T>(row: &'r AnyRow, column: &'static str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(column).map_err(|source| CacheError::Query {
        context: column,
        source,
    })
}

/// Reads a column holding a JSON document.
fn get_json<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &'static str) -> Result<T> {
    let text: String = get(row, column)?;
    serde_json::from_str(&text).map_err(|source| CacheError::Corrupt { column, source })
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("API types serialize")
}

/// A value bound to a query built at run time.
#[derive(Debug, Clone)]
enum Arg {
    Int(i64),
    Text(String),
}

/// Prepares `sql` with `args` bound to `$1`, `$2`, … in order.
fn dynamic(sql: String, args: &[Arg]) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
    args.iter()
        .fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |query, arg| match arg {
            Arg::Int(value) => query.bind(*value),
            Arg::Text(value) => query.bind(value.as_str()),
        })
}

#[cfg(test)]
mod tests;
