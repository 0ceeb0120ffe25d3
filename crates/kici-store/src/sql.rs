//! The SQL plumbing every KiCI database shares: a SQLite pool set up for one writer beside
//! readers, and the migration runner that applies numbered SQL scripts once each, recording
//! them in a ledger table. The store uses both; so does the Platform's cache, which keeps its
//! own database and ledger.
//!
//! Not here: what the scripts say.

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

/// How long a caller waits for a database connection before getting an error instead of a hang.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// One migration: its version (the order they apply in), its name and its SQL.
pub type Migration = (i64, &'static str, &'static str);

/// The table recording which migrations a database has had, and how errors name the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ledger {
    /// The database in error texts: `database` (the store), `cache` (the Platform's).
    pub database: &'static str,
    pub table: &'static str,
    pub columns: LedgerColumns,
}

impl Ledger {
    /// A failure to `action` the ledger table, naming the database and the table.
    fn error(&self, action: &'static str) -> impl FnOnce(sqlx::Error) -> MigrateError {
        let (database, table) = (self.database, self.table);
        move |source| MigrateError::Ledger {
            database,
            action,
            table,
            source,
        }
    }
}

/// The columns of a [`Ledger`] table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerColumns {
    /// `(version, name, applied_at)`, `applied_at` always 0: the store's `kici_migrations`.
    VersionNameAppliedAt,
    /// `(version, name)`: the Platform cache's `platform_migrations`, which never had a time.
    VersionName,
}

/// Why [`migrate`] stopped; the database keeps every migration applied before it.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The ledger could not be created (`create`) or read (`read`).
    #[error("{database} query failed: {action} {table}")]
    Ledger {
        database: &'static str,
        action: &'static str,
        table: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The database has a migration this build does not know: a newer build ran on it.
    #[error(
        "the {database} was migrated by a newer KiCI (migration {found}; this build knows up to {known}) (hint: run the newer build, or restore a backup taken before the upgrade)"
    )]
    Newer {
        database: &'static str,
        found: i64,
        known: i64,
    },
    /// A migration failed; its transaction was rolled back.
    #[error("failed to apply {database} migration {version} ({name})")]
    Apply {
        database: &'static str,
        version: i64,
        name: &'static str,
        #[source]
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
/// transaction with its ledger row. On PostgreSQL, under an advisory lock named after the
/// ledger, so orchestrators starting together on one database migrate it once. A database that
/// has a migration beyond the last of `migrations` is refused.
pub async fn migrate(pool: &AnyPool, ledger: &Ledger, migrations: &[Migration]) -> Result<(), MigrateError> {
    let table = ledger.table;
    let mut conn = pool.acquire().await.map_err(ledger.error("connect for"))?;
    let postgres = conn.backend_name() == "PostgreSQL";
    if postgres {
        sqlx::query("SELECT pg_advisory_lock($1, hashtext($2))")
            .bind(crate::cluster::LOCK_SPACE)
            .bind(table)
            .execute(&mut *conn)
            .await
            .map_err(ledger.error("lock"))?;
    }
    let applied = migrate_on(&mut conn, ledger, migrations).await;
    if postgres {
        let unlocked: Result<bool, _> = sqlx::query_scalar("SELECT pg_advisory_unlock($1, hashtext($2))")
            .bind(crate::cluster::LOCK_SPACE)
            .bind(table)
            .fetch_one(&mut *conn)
            .await;
        // A session lock lives as long as its connection: one that may still hold it (the
        // unlock failed, or found no lock of this session's: a transaction-pooling proxy in
        // between) is closed rather than put back in the pool.
        if !matches!(unlocked, Ok(true)) {
            drop(conn.detach());
        }
    }
    applied
}

async fn migrate_on(
    conn: &mut sqlx::AnyConnection,
    ledger: &Ledger,
    migrations: &[Migration],
) -> Result<(), MigrateError> {
    use sqlx::Connection;
    let Ledger { database, table, .. } = *ledger;
    let (columns, insert) = match ledger.columns {
        LedgerColumns::VersionNameAppliedAt => (
            "version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL",
            format!("INSERT INTO {table} (version, name, applied_at) VALUES ($1, $2, 0)"),
        ),
        LedgerColumns::VersionName => (
            "version BIGINT PRIMARY KEY, name TEXT NOT NULL",
            format!("INSERT INTO {table} (version, name) VALUES ($1, $2)"),
        ),
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS {table} ({columns})"
    )))
    .execute(&mut *conn)
    .await
    .map_err(ledger.error("create"))?;
    let latest: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT MAX(version) FROM {table}")))
        .fetch_one(&mut *conn)
        .await
        .map_err(ledger.error("read"))?;
    let known = migrations.iter().map(|(version, ..)| *version).max().unwrap_or(0);
    if let Some(found) = latest.filter(|found| *found > known) {
        return Err(MigrateError::Newer { database, found, known });
    }
    let select = format!("SELECT version FROM {table} WHERE version = $1");
    for (version, name, sql) in migrations {
        let applied: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(select.as_str()))
            .bind(*version)
            .fetch_optional(&mut *conn)
            .await
            .map_err(ledger.error("read"))?;
        if applied.is_some() {
            continue;
        }
        let failed = |source| MigrateError::Apply {
            database,
            version: *version,
            name,
            source,
        };
        let mut tx = conn.begin().await.map_err(failed)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_database_the_ledger_and_the_migration() {
        let create = MigrateError::Ledger {
            database: "database",
            action: "create",
            table: "kici_migrations",
            source: sqlx::Error::PoolTimedOut,
        };
        assert_eq!(create.to_string(), "database query failed: create kici_migrations");
        let apply = MigrateError::Apply {
            database: "cache",
            version: 2,
            name: "users",
            source: sqlx::Error::PoolTimedOut,
        };
        assert_eq!(apply.to_string(), "failed to apply cache migration 2 (users)");
    }
}
