//! Reloading the scaler configuration without a restart: on SIGHUP (debounced) and through
//! `POST /api/v1/admin/config/reload`. The files are read again and applied only when valid;
//! an invalid set is logged with [`RELOAD_FAILED_MESSAGE`] and the running configuration stays.
//! One reload runs at a time; another one asked for meanwhile is refused. The environment is
//! not read again.

use std::time::Duration;

use tokio::sync::watch;

use crate::scaler::config::RELOAD_FAILED_MESSAGE;
use crate::scaler::{ReloadDiff, ScalerConfigError};
use crate::state::Shared;

/// Waits between a SIGHUP and the reload, so a burst of signals reloads once.
const DEBOUNCE: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("a configuration reload is already running; try again when it has finished")]
    Busy,
    #[error("{RELOAD_FAILED_MESSAGE}: {0}")]
    Invalid(#[from] ScalerConfigError),
}

/// Reloads the scaler configuration; `source` (`sighup`, `api`) is logged.
pub async fn reload(state: &Shared, source: &'static str) -> Result<ReloadDiff, ReloadError> {
    use kici_telemetry::metrics::orchestrator::scaler_config_reload;
    scaler_config_reload("attempted");
    let config = &state.config;
    let result = state
        .scaler
        .reload(
            config.scaler_config_path.as_deref(),
            config.scaler_config_dir.as_deref(),
        )
        .await;
    match result {
        Ok(Some(diff)) => {
            scaler_config_reload("success");
            if !diff.type_changed.is_empty() {
                let fields: Vec<String> = diff
                    .type_changed
                    .iter()
                    .map(|name| format!("scalers[{name}].type"))
                    .collect();
                tracing::warn!(source, "Config fields changed but require restart to apply: {fields:?}");
            }
            tracing::info!(source, globalMaxAgents = state.scaler.config().global_max_agents, added = ?diff.added, removed = ?diff.removed, changed = ?diff.changed, typeChanged = ?diff.type_changed, "scaler config reloaded");
            state.wake_dispatcher();
            Ok(diff)
        }
        Ok(None) => {
            scaler_config_reload("failed");
            tracing::warn!(source, "scaler config reload refused: another reload is running");
            Err(ReloadError::Busy)
        }
        Err(err) => {
            scaler_config_reload("failed");
            tracing::error!(source, error = %err, "{RELOAD_FAILED_MESSAGE}");
            Err(ReloadError::Invalid(err))
        }
    }
}

/// Reloads on every SIGHUP until shutdown.
pub async fn on_sighup(state: Shared, mut shutdown: watch::Receiver<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; the scaler configuration cannot be reloaded");
        return;
    };
    loop {
        tokio::select! {
            received = hangup.recv() => if received.is_none() { return },
            _ = shutdown.changed() => return,
        }
        tokio::time::sleep(DEBOUNCE).await;
        // The outcome is logged; nobody else waits for it.
        let _ = reload(&state, "sighup").await;
    }
}
