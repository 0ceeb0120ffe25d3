//! What `kici-admin db` does to a database, beside a running orchestrator or instead of one:
//! read the schema's state, apply migrations ahead of an upgrade, take SQLite's online backup,
//! and check a backup before it is restored. PostgreSQL is backed up and restored with its own
//! tools (`pg_dump`, `pg_restore`).

use std::path::Path;

use sqlx::any::AnyPoolOptions;

use crate::{Backend, LEDGER, MIGRATIONS, Result, Store, StoreError, q};

/// Where a database's schema is against this build's migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The latest migration the database has (0: none, a new database).
    pub applied: i64,
    /// The latest this build knows.
    pub known: i64,
    /// This build's migrations the database lacks, in order.
    pub pending: Vec<(i64, &'static str)>,
}

impl SchemaStatus {
    /// A newer build migrated it: this one refuses to run on it.
    pub fn is_newer(&self) -> bool {
        self.applied > self.known
    }
}

/// The latest migration this build knows.
pub fn known_migration() -> i64 {
    MIGRATIONS.iter().map(|(version, ..)| *version).max().unwrap_or(0)
}

impl Store {
    /// Connects to `url` without applying migrations (see [`Store::open`]).
    pub async fn connect(url: &str) -> Result<Store> {
        Store::connect_pool(url).await
    }

    /// The schema's state: which migrations it has, and which of this build's it lacks.
    pub async fn schema_status(&self) -> Result<SchemaStatus> {
        let exists = match self.backend {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'kici_migrations'",
            Backend::Postgres => "SELECT COUNT(*) FROM pg_tables WHERE tablename = 'kici_migrations'",
        };
        let has_ledger: i64 = sqlx::query_scalar(exists)
            .fetch_one(&self.pool)
            .await
            .map_err(q("look for the migration ledger"))?;
        let applied: Vec<i64> = if has_ledger > 0 {
            sqlx::query_scalar("SELECT version FROM kici_migrations ORDER BY version")
                .fetch_all(&self.pool)
                .await
                .map_err(q("read the migration ledger"))?
        } else {
            Vec::new()
        };
        Ok(SchemaStatus {
            applied: applied.iter().copied().max().unwrap_or(0),
            known: known_migration(),
            pending: MIGRATIONS
                .iter()
                .filter(|(version, ..)| !applied.contains(version))
                .map(|(version, name, _)| (*version, *name))
                .collect(),
        })
    }

    /// Applies the migrations the database lacks (under the same lock as [`Store::open`]).
    pub async fn migrate(&self) -> Result<()> {
        crate::sql::migrate(&self.pool, &LEDGER, MIGRATIONS).await?;
        Ok(())
    }

    /// Writes a consistent copy of a SQLite database to `to` (which must not exist) while
    /// orchestrators keep using it (`VACUUM INTO`).
    pub async fn backup_sqlite(&self, to: &Path) -> Result<()> {
        let to = to.to_str().ok_or_else(|| StoreError::Corrupt {
            column: "backup path",
            value: to.display().to_string(),
        })?;
        sqlx::query("VACUUM INTO $1")
            .bind(to)
            .execute(&self.pool)
            .await
            .map_err(q("write the backup"))?;
        Ok(())
    }

    /// Moves what a SQLite database's write-ahead log holds into the database file and empties
    /// the log, so the file alone is the database. `false`: another connection kept it from
    /// finishing (the log still holds transactions).
    pub async fn checkpoint_sqlite(&self) -> Result<bool> {
        let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&self.pool)
            .await
            .map_err(q("checkpoint the write-ahead log"))?;
        let busy: i64 = sqlx::Row::try_get(&row, 0).map_err(q("read the checkpoint's result"))?;
        Ok(busy == 0)
    }

    /// Closes every connection (before the database file is replaced).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// What a SQLite backup file holds, read without writing to it: its latest migration, after
/// SQLite's own consistency check.
pub async fn inspect_sqlite_backup(path: &Path) -> Result<i64> {
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=ro", path.display());
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .map_err(|source| StoreError::Connect {
            url: url.clone(),
            source,
        })?;
    let checked: String = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_one(&pool)
        .await
        .map_err(q("check the backup"))?;
    if checked != "ok" {
        return Err(StoreError::Corrupt {
            column: "backup file",
            value: checked,
        });
    }
    let latest: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM kici_migrations")
        .fetch_one(&pool)
        .await
        .map_err(q("read the backup's migration ledger"))?;
    pool.close().await;
    Ok(latest.unwrap_or(0))
}
