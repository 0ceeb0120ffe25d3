//! The SQL plumbing every KiCI database shares: a SQLite pool set up for one writer beside
//! readers, and the migration runner that applies numbered SQL scripts once each, recording
//! them in a ledger table. The store uses both; so does the Platform's cache, which keeps its
//! own database and ledger.
//!
//! Not here: what the scripts say, or how a caller words its errors (it maps [`MigrateError`]).

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

/// How long a caller waits for a database connection before getting an error instead of a hang.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// One migration: its version (the order they apply in), its name and its SQL.
pub type Migration = (i64, &'static str, &'static str);

/// The table recording which migrations a database has had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ledger {
    /// `(version, name, applied_at)`, `applied_at` always 0: the store's `kici_migrations`.
    WithAppliedAt(&'static str),
    /// `(version, name)`: the Platform cache's `platform_migrations`, which never had a time.
    VersionAndName(&'static str),
}

impl Ledger {
    fn table(self) -> &'static str {
        match self {
            Ledger::WithAppliedAt(table) | Ledger::VersionAndName(table) => table,
        }
    }
}

/// Why [`migrate`] stopped; the database keeps every migration applied before it. Callers
/// word it in their own error type.
#[derive(Debug)]
pub enum MigrateError {
    /// The ledger table could not be created.
    CreateLedger(sqlx::Error),
    /// The ledger could not be read.
    ReadLedger(sqlx::Error),
    /// A migration failed; its transaction was rolled back.
    Apply {
        version: i64,
        name: &'static str,
        source: sqlx::Error,
    },
}

/// A pool on the SQLite database of `url` (`sqlite://path?mode=rwc`): four connections, each
/// in WAL mode so readers proceed while the one writer writes, waiting up to 10 s for a lock.
pub async fn open_sqlite_pool(url: &str) -> Result<AnyPool, sqlx::Error> {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .max_connections(4)
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::raw_sql("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .connect(url)
        .await
}

/// Applies the `migrations` not yet recorded in `ledger`, in the order given, each in its own
/// transaction with its ledger row.
pub async fn migrate(pool: &AnyPool, ledger: Ledger, migrations: &[Migration]) -> Result<(), MigrateError> {
    let table = ledger.table();
    let (columns, insert) = match ledger {
        Ledger::WithAppliedAt(_) => (
            "version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL",
            format!("INSERT INTO {table} (version, name, applied_at) VALUES ($1, $2, 0)"),
        ),
        Ledger::VersionAndName(_) => (
            "version BIGINT PRIMARY KEY, name TEXT NOT NULL",
            format!("INSERT INTO {table} (version, name) VALUES ($1, $2)"),
        ),
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS {table} ({columns})"
    )))
    .execute(pool)
    .await
    .map_err(MigrateError::CreateLedger)?;
    let select = format!("SELECT version FROM {table} WHERE version = $1");
    for (version, name, sql) in migrations {
        let applied: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(select.as_str()))
            .bind(*version)
            .fetch_optional(pool)
            .await
            .map_err(MigrateError::ReadLedger)?;
        if applied.is_some() {
            continue;
        }
        let failed = |source| MigrateError::Apply {
            version: *version,
            name,
            source,
        };
        let mut tx = pool.begin().await.map_err(failed)?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        sqlx::query(sqlx::AssertSqlSafe(insert.as_str()))
            .bind(*version)
            .bind(*name)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
    }
    Ok(())
}
