//! The KiCI Platform, the dashboard service: orchestrators connect to it and push run
//! metadata, which it caches; browsers and the `kici` CLI read runs from it over REST (the
//! orchestrator's paths and shapes); log content and actions are fetched from the run's
//! orchestrator on demand; live log lines and status changes are streamed to browsers.
//!
//! Map: [`config`] reads `KICI_*`; [`cache`] is the SQLite cache; [`ws`] serves orchestrator
//! sockets, registered in [`connections`]; [`proxy`] asks orchestrators for content;
//! [`live`] fans out log lines and status events; [`http`] is the HTTP surface (API, pages,
//! sessions); [`ui`] renders the pages.
//!
//! Not here yet: webhook relay, stale-run marking (runs are only *reported* stale), `/metrics`.

pub mod cache;
pub mod config;
pub mod connections;
pub mod http;
pub mod live;
pub mod proxy;
pub mod state;
pub mod ui;
pub mod ws;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cache::Cache;
use crate::config::Config;
use crate::connections::Connections;
use crate::live::LiveHub;
use crate::state::{AppState, Shared};

/// How long shutdown waits for in-flight requests, streams and sockets.
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
    Cache(#[from] cache::CacheError),
    #[error("cannot listen on {address} (hint: is another Platform running? set KICI_PORT)")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A running Platform.
pub struct Platform {
    /// Where it listens (the port is the real one when `KICI_PORT=0`).
    pub address: SocketAddr,
    state: Shared,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Platform {
    /// Opens the cache, binds and starts serving.
    pub async fn start(config: Config) -> Result<Platform, StartError> {
        tokio::fs::create_dir_all(&config.data_dir)
            .await
            .map_err(|source| StartError::DataDir {
                path: config.data_dir.display().to_string(),
                source,
            })?;
        let cache = Cache::open(&config.database_path()).await?;
        cache.mark_all_offline().await?;
        let address = SocketAddr::new(config.bind_address, config.port);
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| StartError::Bind { address, source })?;
        let address = listener
            .local_addr()
            .map_err(|source| StartError::Bind { address, source })?;
        let mut config = config;
        config.port = address.port();
        let (shutdown, receiver) = watch::channel(false);
        let (sessions_cache, admin_token) = (cache.clone(), config.admin_token.clone());
        let state: Shared = Arc::new(AppState {
            config,
            cache,
            connections: Connections::default(),
            live: LiveHub::default(),
            started: Instant::now(),
            shutdown: receiver.clone(),
            sessions: Mutex::new(JoinSet::new()),
            browser_sessions: http::Sessions::new(sessions_cache, &admin_token),
            open_streams: Arc::default(),
            rerun_cooldown: state::Cooldown::default(),
        });
        let mut tasks = JoinSet::new();
        let app = http::router(state.clone());
        let mut stop = receiver;
        tasks.spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                // A dropped sender also means stop.
                let _ = stop.wait_for(|stop| *stop).await;
            });
            if let Err(err) = serve.await {
                tracing::error!(error = %err, "HTTP server failed");
            }
        });
        tracing::info!(
            address = %address,
            port = address.port(),
            dataDir = %state.config.data_dir.display(),
            orchestratorKey = state.config.orchestrator_key.is_some(),
            "platform.listening"
        );
        Ok(Platform {
            address,
            state,
            shutdown,
            tasks,
        })
    }

    /// Stops intake, ends streams and orchestrator sockets, waits a bounded time for them,
    /// then closes the cache.
    pub async fn stop(mut self) {
        // Receivers may be gone already.
        let _ = self.shutdown.send(true);
        let mut sessions = self.state.take_sessions();
        let drain = async {
            while self.tasks.join_next().await.is_some() {}
            while sessions.join_next().await.is_some() {}
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            tracing::warn!("shutdown grace elapsed; stopping remaining tasks");
            self.tasks.abort_all();
            sessions.abort_all();
        }
        self.state.cache.close().await;
    }
}

/// What `main` runs (`kici_telemetry::service::run_service`).
impl kici_telemetry::service::Service for Platform {
    const NAME: &'static str = "platform";
    type Config = Config;
    type StartError = StartError;

    fn config(env: &std::collections::BTreeMap<String, String>) -> Result<Config, config::ConfigError> {
        Config::from_env(env)
    }

    async fn start(config: Config) -> Result<Platform, StartError> {
        Platform::start(config).await
    }

    async fn stop(self) {
        Platform::stop(self).await
    }
}
