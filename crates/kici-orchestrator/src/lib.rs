//! The KiCI orchestrator: webhooks in, runs and jobs out to agents, results stored and served.
//!
//! Map: [`config`] reads `KICI_*`; [`http`] serves `/health`, `/ready`, `/ws`, webhooks and the
//! REST API; [`providers`] normalizes webhook bodies and [`pipeline`] turns them into runs
//! (reading the lock file with [`git`]); [`agents`] runs agent connections registered in the
//! [`hub`]; [`dispatcher`] places queued jobs on agents; [`progress`] applies what agents
//! report and moves runs forward ([`fan_out`]: a matrix's `maxParallel` and `failFast`); [`runs`] cancels and re-runs on request; [`diagnose`] and
//! [`fleet`] are the self-checks and the agents operators see; `cluster` picks which of several
//! orchestrators on one database leads; [`sweeper`] handles timeouts; [`scheduler`] fires schedules
//! that [`registrations`] keeps from default-branch pushes, through [`starts`], which also starts
//! dispatches;
//! [`logs`] keeps step logs; [`secret_key`] encrypts secrets at rest and [`source_secrets`]
//! keeps sources' secrets so, [`scoped_secrets`] the secrets jobs receive; [`ids`] makes row ids and tokens.

pub(crate) mod agents;
pub(crate) mod build;
pub(crate) mod build_slots;
pub(crate) mod catalog;
pub mod clock;
pub(crate) mod cluster;
pub(crate) mod comment_commands;
pub(crate) mod completions;
pub(crate) mod concurrency;
pub mod config;
pub(crate) mod deliveries;
pub(crate) mod diagnose;
pub mod dispatcher;
pub(crate) mod emits;
pub(crate) mod event_router;
pub(crate) mod events;
pub(crate) mod fan_out;
pub(crate) mod fleet;
pub(crate) mod forge_status;
pub(crate) mod gates;
pub(crate) mod git;
pub(crate) mod github_app;
pub(crate) mod grants;
pub(crate) mod holds;
pub mod http;
pub mod hub;
pub mod ids;
pub(crate) mod inline_eval;
pub(crate) mod install_secrets;
pub(crate) mod jobs;
pub mod logs;
pub mod pipeline;
pub(crate) mod platform;
pub(crate) mod platform_link;
pub mod progress;
pub mod providers;
pub(crate) mod rate_limit;
pub(crate) mod registrations;
pub(crate) mod reload;
pub(crate) mod repo_server;
pub(crate) mod reuse;
pub(crate) mod rows;
pub(crate) mod run_watch;
pub(crate) mod runs;
pub mod scaler;
pub mod scheduler;
pub(crate) mod scoped_secrets;
pub mod secret_key;
pub(crate) mod source_secrets;
pub mod starts;
pub mod state;
pub mod storage;
pub mod sweeper;
pub(crate) mod tasks;
pub(crate) mod user_cache;
pub(crate) mod wake;

use std::net::SocketAddr;
use std::time::Duration;

use kici_store::{AdminToken, Store};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::clock::now_ms;
use crate::config::Config;
use crate::ids::{new_admin_token, new_id, token_hash};
use crate::state::AppState;

/// How long shutdown waits for in-flight requests and tasks.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create the data directory `{path}`")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] kici_store::StoreError),
    #[error("cannot listen on {address} (hint: is another orchestrator running? set KICI_PORT)")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Scaler(#[from] scaler::ScalerConfigError),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error("cannot write the generated admin token to `{path}`")]
    AdminToken {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write or protect the secret key in `{path}` (hint: set KICI_SECRET_KEY or KICI_SECRET_KEY_FILE)")]
    SecretKey {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make the database file private (mode 0600)")]
    DatabaseFile(#[source] std::io::Error),
}

/// A running orchestrator.
pub struct Orchestrator {
    pub address: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    state: state::Shared,
}

impl Orchestrator {
    /// Opens the store, recovers what a previous process left, binds and starts serving.
    pub async fn start(mut config: Config) -> Result<Orchestrator, StartError> {
        private_data_dir(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        secret_key_file(&mut config.secret_keys, &config.data_dir)?;
        kici_telemetry::metrics::install(kici_telemetry::metrics::MetricSet::Orchestrator);
        let scalers = scaler::load(
            config.scaler_config_path.as_deref(),
            config.scaler_config_dir.as_deref(),
        )?;
        if let kici_store::DatabaseFile::Tightened { path, previous_mode } =
            kici_store::secure_database_file(&config.database_url).map_err(StartError::DatabaseFile)?
        {
            tracing::warn!(path = %path.display(), previousMode = %format!("{previous_mode:o}"), "database file was readable by other users: now 0600");
        }
        let store = Store::open(&config.database_url).await?;
        seal_source_secrets(&store, &config.secret_keys).await?;
        bootstrap_admin_token(&store, &config).await?;
        let address = SocketAddr::new(config.bind_address, config.port);
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| StartError::Bind { address, source })?;
        let address = listener
            .local_addr()
            .map_err(|source| StartError::Bind { address, source })?;
        config.port = address.port();
        let storage = storage::Storage::open(&config.storage, &config.secret_keys)?;
        let (state, scaler_task) = AppState::new(config, store, storage, scalers);
        let leadership = cluster::join(&state).await;
        // Recovery at start takes over every job in flight and every delivery left processing:
        // only for an orchestrator alone on its database (another may be processing them).
        // Beside others, the leader's stale scan settles the jobs of agents that were connected
        // here.
        if state.leads() && !cluster::others_alive(&state).await? {
            sweeper::recover_after_restart(&state).await?;
            deliveries::resume(&state).await?;
        } else {
            tracing::info!(instanceId = %state.instance_id, "other orchestrators share the database; this one joins without recovering jobs or deliveries at start");
        }
        let (shutdown, receiver) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let app = http::router(state.clone());
        let mut stop = receiver.clone();
        tasks.spawn(async move {
            // Webhook sources verified by address need the peer of each connection.
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                // A dropped sender also means stop.
                let _ = stop.changed().await;
            });
            if let Err(err) = serve.await {
                tracing::error!(error = %err, "HTTP server failed");
            }
        });
        tasks.spawn(scaler_task.run(receiver.clone()));
        tasks.spawn(cluster::run(state.clone(), leadership, receiver.clone()));
        tasks.spawn(cluster::hear_dispatches(state.clone(), receiver.clone()));
        tasks.spawn(dispatcher::run(state.clone(), receiver.clone()));
        tasks.spawn(sweeper::run(state.clone(), receiver.clone()));
        tasks.spawn(scheduler::run(state.clone(), receiver.clone()));
        tasks.spawn(forge_status::run(state.clone(), receiver.clone()));
        tasks.spawn(completions::run(state.clone(), receiver.clone()));
        tasks.spawn(event_router::run(state.clone(), receiver.clone()));
        tasks.spawn(platform::run(state.clone(), receiver.clone()));
        tasks.spawn(reload::on_sighup(state.clone(), receiver));
        let scalers = state.scaler.config();
        let engine_sockets: Vec<std::path::PathBuf> = scalers
            .scalers
            .iter()
            .filter_map(|scaler| match &scaler.backend {
                scaler::config::Backend::Container(backend) => scaler::container::socket(backend).ok(),
                _ => None,
            })
            .collect();
        if !engine_sockets.is_empty() {
            tasks.spawn(scaler::container::remove_orphans(
                engine_sockets,
                scaler::container::instance_label(&state.config.data_dir),
            ));
        }
        for scaler in &scalers.scalers {
            warn_unenforced(scaler);
            if scaler.scaler_type() == scaler::config::ScalerType::BareMetal {
                tracing::warn!(scaler = %scaler.name, "Bare-metal scaler \"{}\" configured. Its agents run jobs as the orchestrator's user, without isolation: use it for trusted code only.", scaler.name);
            }
        }
        tracing::info!(address = %address, port = address.port(), dataDir = %state.config.data_dir.display(), database = %kici_store::redact_url(&state.config.database_url), "orchestrator.listening");
        Ok(Orchestrator {
            address,
            shutdown,
            tasks,
            state,
        })
    }

    /// Stops intake, lets in-flight work finish for a bounded time, then ends every task.
    pub async fn stop(mut self) {
        // Receivers may be gone already.
        let _ = self.shutdown.send(true);
        let background = self.state.background.shutdown(SHUTDOWN_GRACE);
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, async { tokio::join!(background, drain) })
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace elapsed; stopping remaining tasks");
            self.tasks.abort_all();
        }
        // Gone from the cluster at once, not after its beats stop counting: `kici-admin db
        // restore` and the cluster's health go by them.
        if let Err(err) = self.state.store.leave_cluster(&self.state.instance_id).await {
            tracing::warn!(error = %err, "removing this orchestrator from the instances failed; it ages out");
        }
    }
}

/// What `main` runs (`kici_telemetry::service::run_service`).
impl kici_telemetry::service::Service for Orchestrator {
    const NAME: &'static str = "orchestrator";
    type Config = Config;
    type StartError = StartError;

    fn config(env: &std::collections::BTreeMap<String, String>) -> Result<Config, config::ConfigError> {
        Config::from_env(env)
    }

    async fn start(config: Config) -> Result<Orchestrator, StartError> {
        Orchestrator::start(config).await
    }

    async fn stop(self) {
        Orchestrator::stop(self).await
    }

    /// Invalid scaler files are the operator's configuration, like the environment.
    fn configuration_problem(err: &StartError) -> Option<&'static str> {
        matches!(err, StartError::Scaler(_)).then_some("invalid scaler configuration")
    }
}

/// Settings this orchestrator reads but does not enforce yet, said once at start so nobody
/// relies on them unknowingly.
fn warn_unenforced(entry: &scaler::config::ScalerEntry) {
    if let scaler::config::Backend::Container(backend) = &entry.backend
        && backend.network_isolation
    {
        tracing::warn!(scaler = %entry.name, "Container scaler \"{}\": networkIsolation is not enforced yet; containers use the engine's default bridge network without RFC 1918 blocking. Set networkIsolation: false to use the host network, or isolate the network outside KiCI.", entry.name);
    }
    for (index, set) in entry.label_sets.iter().enumerate() {
        let policy = match &set.target {
            scaler::config::SpawnTarget::Container(target) => &target.network_policy,
            scaler::config::SpawnTarget::Firecracker(target) => &target.network_policy,
            scaler::config::SpawnTarget::BareMetal(_) => continue,
        };
        if policy.deny_all || !policy.allowlist.is_empty() {
            tracing::warn!(scaler = %entry.name, labelSet = index, "Scaler \"{}\" label set [{index}]: networkPolicy is not enforced yet; the agent's network is not restricted.", entry.name);
        }
    }
}

/// Creates the data directory readable by this user only (0700), or makes an existing one so.
fn private_data_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};

    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        tracing::warn!(path = %dir.display(), previousMode = %format!("{mode:o}"), "data directory was open to other users: now 0700");
    }
    Ok(())
}

/// Writes a generated secret key to the data directory (or keeps its file private), and says
/// which key is in use. The key itself is never logged.
fn secret_key_file(keys: &mut secret_key::Keyring, data_dir: &std::path::Path) -> Result<(), StartError> {
    let written = keys.persist_generated().map_err(|source| StartError::SecretKey {
        path: data_dir.join(secret_key::GENERATED_KEY_FILE).display().to_string(),
        source,
    })?;
    match written {
        secret_key::KeyFile::Generated(path) => tracing::warn!(
            path = %path.display(),
            keyId = %keys.current_id(),
            "No KICI_SECRET_KEY or KICI_SECRET_KEY_FILE: generated a secret key in {}. Back it up: without it the stored webhook secrets and clone credentials cannot be decrypted. Set KICI_SECRET_KEY_FILE to it (the same key on every orchestrator sharing this database).",
            path.display()
        ),
        secret_key::KeyFile::Tightened { path, previous_mode } => tracing::warn!(
            path = %path.display(),
            previousMode = %format!("{previous_mode:o}"),
            "secret key file was readable by other users: now 0600"
        ),
        secret_key::KeyFile::Unchanged => {}
    }
    let origin = match keys.origin() {
        secret_key::KeyOrigin::Env => "KICI_SECRET_KEY".to_string(),
        secret_key::KeyOrigin::File(path)
        | secret_key::KeyOrigin::DataDir(path)
        | secret_key::KeyOrigin::Generated(path) => path.display().to_string(),
    };
    tracing::info!(keyId = %keys.current_id(), from = %origin, "secret key loaded");
    if let Some(old) = keys.old_id() {
        tracing::info!(keyId = %keys.current_id(), oldKeyId = %old, "Old master key configured — dual-key decrypt and true rotation enabled");
    }
    Ok(())
}

/// Encrypts what an older database keeps in plaintext, and says which stored secrets no
/// configured key opens.
async fn seal_source_secrets(store: &Store, keys: &secret_key::Keyring) -> Result<(), StartError> {
    let (moved, resealed) = source_secrets::seal_at_start(store, keys).await?;
    if moved > 0 {
        tracing::warn!(
            sources = moved,
            "moved clone credentials out of generic sources' gitUrl into their encrypted credentials field"
        );
    }
    if resealed.re_encrypted > 0 {
        tracing::info!(
            values = resealed.re_encrypted,
            "encrypted plaintext source secrets at rest"
        );
    }
    for failure in &resealed.failures {
        tracing::error!(error = %failure, "stored secret cannot be decrypted with the configured keys");
    }
    Ok(())
}

/// Stores `KICI_BOOTSTRAP_ADMIN_TOKEN`, or, when there is no admin token at all, generates
/// one, logs it once and writes it to `<data dir>/admin-token` (0600).
async fn bootstrap_admin_token(store: &Store, config: &Config) -> Result<(), StartError> {
    let record = |label: &str| AdminToken {
        token_id: new_id(),
        label: label.to_string(),
        role: "owner".to_string(),
        teams: Vec::new(),
        created_at: now_ms(),
        last_used_at: None,
        revoked_at: None,
    };
    if let Some(token) = &config.bootstrap_admin_token {
        store.insert_admin_token(&record("admin"), &token_hash(token)).await?;
        return Ok(());
    }
    if !store.list_admin_tokens().await?.is_empty() {
        return Ok(());
    }
    let token = new_admin_token();
    store.insert_admin_token(&record("admin"), &token_hash(&token)).await?;
    let path = config.data_dir.join("admin-token");
    write_private(&path, &token).map_err(|source| StartError::AdminToken {
        path: path.display().to_string(),
        source,
    })?;
    // The token goes to a terminal only: never into the log files a debug bundle collects, nor
    // into the journal or a container's log when a service manager runs the orchestrator.
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!("KICI Admin Token: {token}");
    }
    tracing::info!(path = %path.display(), "admin token generated");
    Ok(())
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}
