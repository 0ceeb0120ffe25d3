//! `kici-platform`: reads `KICI_*`, logs `platform.build.info` first, starts serving, and stops
//! gracefully on SIGTERM or SIGINT.
//!
//! Exit codes: 0 stopped cleanly, 1 failed at start, 2 invalid configuration.

use std::collections::BTreeMap;
use std::process::ExitCode;

use kici_platform::Platform;
use kici_platform::config::Config;
use tokio::signal::unix::{SignalKind, signal};

fn main() -> ExitCode {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let log_config = match kici_telemetry::logging::LogConfig::from_env(&env) {
        Ok(log_config) => log_config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    // Held to the end of `main`: dropping it flushes the log file.
    let _log_guard = match kici_telemetry::logging::init("platform", None, &log_config) {
        Ok(guard) => guard,
        Err(err) => {
            let cause = std::error::Error::source(&err)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            eprintln!("error: {err}{cause}");
            return ExitCode::from(2);
        }
    };
    kici_telemetry::health::log_build_info("platform");
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
        let platform = match Platform::start(config).await {
            Ok(platform) => platform,
            Err(err) => {
                let cause = std::error::Error::source(&err)
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default();
                eprintln!("error: {err}{cause}");
                tracing::error!(error = %err, cause = %cause, "platform failed to start");
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
        platform.stop().await;
        ExitCode::SUCCESS
    })
}
