//! `kici-orchestrator`: reads `KICI_*`, logs `orchestrator.build.info` first, starts serving,
//! and stops gracefully on SIGTERM or SIGINT.
//!
//! Exit codes: 0 stopped cleanly, 1 failed at start, 2 invalid configuration.

use std::collections::BTreeMap;
use std::process::ExitCode;

use kici_orchestrator::Orchestrator;
use kici_orchestrator::config::Config;
use tokio::signal::unix::{SignalKind, signal};

fn main() -> ExitCode {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    // Held to the end of `main`: dropping it flushes the log file.
    let _log_guard = match kici_telemetry::logging::start_service("orchestrator", &env) {
        Ok(guard) => guard,
        Err(line) => {
            eprintln!("{line}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::from_env(&env) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            tracing::error!(error = %err, "invalid configuration");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    runtime.block_on(async move {
        let orchestrator = match Orchestrator::start(config).await {
            Ok(orchestrator) => orchestrator,
            Err(err @ kici_orchestrator::StartError::Scaler(_)) => {
                eprintln!("{err}");
                tracing::error!(error = %err, "invalid scaler configuration");
                return ExitCode::from(2);
            }
            Err(err) => {
                let cause = std::error::Error::source(&err)
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default();
                eprintln!("error: {err}{cause}");
                tracing::error!(error = %err, cause = %cause, "orchestrator failed to start");
                return ExitCode::FAILURE;
            }
        };
        let (Ok(mut terminate), Ok(mut interrupt)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            eprintln!("error: cannot install signal handlers");
            return ExitCode::FAILURE;
        };
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("shutting down");
        orchestrator.stop().await;
        ExitCode::SUCCESS
    })
}
