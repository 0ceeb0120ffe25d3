//! `kici-admin db status|migrate|backup|restore`: the orchestrator's database, read and written
//! directly (no orchestrator, no token). The database is `--database-url`, else
//! `KICI_DATABASE_URL`, else the single-node default in the data directory
//! (`KICI_DATA_DIR`, as the orchestrator picks it).
//!
//! `backup` and `restore` copy SQLite databases: the backup is online (`VACUUM INTO`), the
//! restore refuses while an orchestrator runs on the database and keeps the database it
//! replaces. PostgreSQL has its own tools (`pg_dump`, `pg_restore`), which the errors name.
//!
//! Exit codes: 0 done (`status`: the schema is this build's), 1 an error, 2 (`status`) the
//! schema is not this build's: migrations are pending, or a newer build migrated it.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use kici_store::{Backend, SchemaStatus, Store};

/// `status`: the schema has migrations to apply, or is a newer build's.
pub const EXIT_SCHEMA_DIFFERS: u8 = 2;

/// An orchestrator that beat this recently is running (it beats every 2 s).
const RUNNING_WITHIN_MS: i64 = 6_000;

#[derive(Debug, clap::Subcommand)]
pub enum DbCommand {
    /// Which migrations the database has and which this build would apply (exit 2 when they differ)
    Status {
        #[command(flatten)]
        database: DatabaseArg,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Apply this build's pending migrations now (the orchestrator also does at start)
    Migrate {
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Copy a SQLite database to FILE while orchestrators keep running (PostgreSQL: pg_dump)
    Backup {
        /// The backup to write; it must not exist
        file: PathBuf,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Replace a SQLite database with a backup; the orchestrator must be stopped (PostgreSQL: pg_restore)
    Restore {
        /// A backup written by `kici-admin db backup`
        file: PathBuf,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

#[derive(Debug, clap::Args)]
pub struct DatabaseArg {
    /// The orchestrator's database (default: the single-node SQLite file in KICI_DATA_DIR)
    #[arg(long, env = "KICI_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
}

impl DatabaseArg {
    fn url(&self) -> anyhow::Result<String> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        let env = std::env::vars().collect();
        let data_dir = match std::env::var("KICI_DATA_DIR") {
            Ok(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
            Ok(dir) => bail!("KICI_DATA_DIR: `{dir}` must be an absolute path"),
            Err(_) => kici_telemetry::env::default_data_dir(&env),
        };
        Ok(kici_store::default_database_url(&data_dir))
    }
}

pub async fn run(command: DbCommand) -> anyhow::Result<u8> {
    match command {
        DbCommand::Status { database, json } => status(&database.url()?, json).await,
        DbCommand::Migrate { database } => migrate(&database.url()?).await,
        DbCommand::Backup { file, database } => backup(&database.url()?, &file).await,
        DbCommand::Restore { file, database } => restore(&database.url()?, &file).await,
    }
}

/// The store of an existing database: a SQLite URL naming no file is a mistake here (the
/// orchestrator creates the database, `kici-admin db` does not).
async fn existing(url: &str) -> anyhow::Result<Store> {
    if let Some(path) = kici_store::sqlite_path(url)
        && !path.exists()
    {
        bail!(
            "no database at {} (hint: pass the orchestrator's --database-url, or set KICI_DATABASE_URL or KICI_DATA_DIR as it has them)",
            path.display()
        );
    }
    Store::connect(url)
        .await
        .with_context(|| format!("cannot open the database {}", kici_store::redact_url(url)))
}

fn pending_list(status: &SchemaStatus) -> String {
    let names: Vec<String> = status
        .pending
        .iter()
        .map(|(version, name)| format!("{version} {name}"))
        .collect();
    names.join(", ")
}

async fn status(url: &str, json: bool) -> anyhow::Result<u8> {
    let store = existing(url).await?;
    let status = store.schema_status().await?;
    let (state, code) = if status.is_newer() {
        ("newer", EXIT_SCHEMA_DIFFERS)
    } else if !status.pending.is_empty() {
        ("pending", EXIT_SCHEMA_DIFFERS)
    } else {
        ("current", crate::EXIT_OK)
    };
    if json {
        let pending: Vec<_> = status
            .pending
            .iter()
            .map(|(version, name)| serde_json::json!({"version": version, "name": name}))
            .collect();
        let answer = serde_json::json!({
            "database": kici_store::redact_url(url),
            "backend": backend_name(store.backend()),
            "applied": status.applied,
            "known": status.known,
            "pending": if status.is_newer() { Vec::new() } else { pending },
            "state": state,
        });
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(code);
    }
    println!(
        "Database: {} ({})",
        kici_store::redact_url(url),
        backend_name(store.backend())
    );
    if status.is_newer() {
        println!(
            "Schema:   migration {}, from a newer KiCI: this build knows up to {} and refuses to run on it (hint: run the newer build, or restore a backup taken before the upgrade)",
            status.applied, status.known
        );
    } else if status.pending.is_empty() {
        println!("Schema:   migration {}, this build's latest", status.applied);
    } else {
        println!(
            "Schema:   migration {}; this build applies {} more when the orchestrator starts, or with `kici-admin db migrate`: {}",
            status.applied,
            status.pending.len(),
            pending_list(&status)
        );
    }
    Ok(code)
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    }
}

async fn migrate(url: &str) -> anyhow::Result<u8> {
    let store = existing(url).await?;
    let before = store.schema_status().await?;
    store.migrate().await?;
    if before.pending.is_empty() {
        println!(
            "Nothing to apply: the database is at migration {}, this build's latest.",
            before.applied
        );
    } else {
        println!(
            "Applied {} migrations: {}. The database is at migration {}.",
            before.pending.len(),
            pending_list(&before),
            before.known
        );
    }
    Ok(crate::EXIT_OK)
}

/// PostgreSQL's own tools, for what `backup` and `restore` do to SQLite.
fn postgres_tools(url: &str) -> String {
    let url = kici_store::redact_url(url);
    format!(
        "back it up with `pg_dump --format=custom --file=kici.dump '{url}'` and restore it, with the orchestrators stopped, with `pg_restore --clean --if-exists --no-owner --dbname='{url}' kici.dump`"
    )
}

async fn backup(url: &str, file: &Path) -> anyhow::Result<u8> {
    let store = existing(url).await?;
    if store.backend() == Backend::Postgres {
        bail!(
            "kici-admin db backup copies SQLite databases, and this one is PostgreSQL (hint: {})",
            postgres_tools(url)
        );
    }
    let status = store.schema_status().await?;
    // SQLite writes into an empty file; created here, it is the owner's only (the database
    // holds sealed secrets and tokens' hashes), and it cannot be one that already existed.
    create_private(file).with_context(|| {
        format!(
            "cannot create {} (hint: a backup never overwrites a file: choose a new name)",
            file.display()
        )
    })?;
    let written = async {
        store.backup_sqlite(file).await?;
        durable(file).with_context(|| format!("cannot write {} to disk", file.display()))
    };
    if let Err(err) = written.await {
        let _ = std::fs::remove_file(file);
        return Err(err);
    }
    let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    println!(
        "Backed up {} (migration {}) to {} ({bytes} bytes).",
        kici_store::redact_url(url),
        status.applied,
        file.display()
    );
    println!(
        "It holds the database only. Keep the secret key with it (KICI_SECRET_KEY, or secret-key in the data directory): stored secrets are sealed with it. Step logs and stored files stay in the data directory (logs, executions, storage) or in object storage."
    );
    Ok(crate::EXIT_OK)
}

fn create_private(file: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
}

/// The directory `file` is in (`.` for a bare name).
fn dir_of(file: &Path) -> &Path {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Flushes `file` and the directory entry naming it to the disk.
fn durable(file: &Path) -> std::io::Result<()> {
    std::fs::File::open(file)?.sync_all()?;
    std::fs::File::open(dir_of(file))?.sync_all()
}

/// `<database>-wal` and `<database>-shm`.
fn sidecars(database: &Path) -> [PathBuf; 2] {
    ["-wal", "-shm"].map(|suffix| PathBuf::from(format!("{}{suffix}", database.display())))
}

async fn restore(url: &str, file: &Path) -> anyhow::Result<u8> {
    let Some(target) = kici_store::sqlite_path(url) else {
        bail!(
            "kici-admin db restore replaces SQLite databases, and this one is PostgreSQL (hint: {})",
            postgres_tools(url)
        );
    };
    // A database behind a symbolic link is restored where the link points.
    let target = std::fs::canonicalize(&target).unwrap_or(target);
    let from = kici_store::inspect_sqlite_backup(file)
        .await
        .with_context(|| format!("{} is not a readable KiCI database backup", file.display()))?;
    let known = kici_store::known_migration();
    if from > known {
        bail!(
            "{} was taken by a newer KiCI (migration {from}; this build knows up to {known}) (hint: restore it with that build)",
            file.display()
        );
    }
    // The restored database gets the owner and mode of the one it replaces (a service user's).
    let owner = std::fs::metadata(&target).ok();
    let aside = set_aside(url, &target).await?;
    let kept = aside
        .as_ref()
        .map(|aside| format!("; the database it replaced is kept at {}", aside.display()))
        .unwrap_or_default();
    replace(file, &target, owner.as_ref()).with_context(|| format!("cannot write {}{kept}", target.display()))?;
    println!(
        "Restored {} (migration {from}) to {}.",
        file.display(),
        target.display()
    );
    if let Some(aside) = aside {
        println!("The database it replaced is kept at {}.", aside.display());
    }
    if from < known {
        println!(
            "The orchestrator applies migrations {} to {known} when it starts (or run `kici-admin db migrate`).",
            from + 1
        );
    }
    Ok(crate::EXIT_OK)
}

/// Refuses while an orchestrator runs on the database, then keeps it aside and leaves nothing
/// of it at `target`: no file, no write-ahead log. A readable database is copied aside with
/// what its log held; one that cannot be read (what a restore is often for) is moved aside
/// with its log as it is.
async fn set_aside(url: &str, target: &Path) -> anyhow::Result<Option<PathBuf>> {
    if !target.exists() {
        // No database, so no orchestrator on it: a log beside it would be replayed onto the
        // restored one.
        remove_sidecars(target)?;
        return Ok(None);
    }
    let now = kici_telemetry::os::now_ms();
    let aside = PathBuf::from(format!("{}.before-restore-{}", target.display(), now / 1000));
    // Read-only first: opening it for writing would put a write-ahead log beside a broken file.
    let readable = kici_store::inspect_sqlite_backup(target).await.is_ok();
    let copied = if readable {
        match Store::connect(url).await {
            Ok(store) => copy_aside(&store, target, &aside, now).await?,
            Err(_) => false,
        }
    } else {
        false
    };
    if !copied {
        let _ = std::fs::remove_file(&aside);
        std::fs::rename(target, &aside).with_context(|| format!("cannot move {} aside", target.display()))?;
        for (from, to) in sidecars(target).iter().zip(sidecars(&aside)) {
            if from.exists() {
                std::fs::rename(from, &to).with_context(|| format!("cannot move {} aside", from.display()))?;
            }
        }
        durable(&aside)?;
        return Ok(Some(aside));
    }
    remove_sidecars(target)?;
    Ok(Some(aside))
}

/// Copies a readable database aside; `false` when it cannot be read (it is then moved aside).
async fn copy_aside(store: &Store, target: &Path, aside: &Path, now: i64) -> anyhow::Result<bool> {
    let Ok(status) = store.schema_status().await else {
        store.close().await;
        return Ok(false);
    };
    // Instances beat from migration 30 on.
    if status.applied >= 30 {
        let running = store
            .list_instances(now - RUNNING_WITHIN_MS)
            .await
            .context("cannot tell whether an orchestrator is running on the database")?;
        if let Some(instance) = running.first() {
            bail!(
                "an orchestrator is running on {} (instance {} beat {} ms ago) (hint: stop it first; a restore under a running orchestrator would lose what it writes)",
                target.display(),
                instance.instance_id,
                (now - instance.last_beat_at).max(0)
            );
        }
    }
    create_private(aside).with_context(|| format!("cannot create {}", aside.display()))?;
    if store.backup_sqlite(aside).await.is_err() {
        store.close().await;
        return Ok(false);
    }
    durable(aside).with_context(|| format!("cannot write {} to disk", aside.display()))?;
    if !store.checkpoint_sqlite().await? {
        bail!(
            "another process has {} open (its write-ahead log could not be emptied) (hint: stop every orchestrator and kici-admin using it first)",
            target.display()
        );
    }
    store.close().await;
    Ok(true)
}

fn remove_sidecars(database: &Path) -> anyhow::Result<()> {
    for file in sidecars(database) {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err).with_context(|| format!("cannot remove {}", file.display())),
        }
    }
    Ok(())
}

/// Copies `backup` over `target` through a file beside it, so `target` is either the old
/// database or the whole backup, never part of one; with `owner`'s owner and mode.
fn replace(backup: &Path, target: &Path, owner: Option<&std::fs::Metadata>) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let partial = PathBuf::from(format!("{}.restoring", target.display()));
    let _ = std::fs::remove_file(&partial);
    let mut out = create_private(&partial)?;
    std::io::copy(&mut std::fs::File::open(backup)?, &mut out)?;
    if let Some(owner) = owner {
        std::os::unix::fs::chown(&partial, Some(owner.uid()), Some(owner.gid()))?;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(owner.mode() & 0o600))?;
    }
    out.sync_all()?;
    std::fs::rename(&partial, target)?;
    std::fs::File::open(dir_of(target))?.sync_all()
}
