//! The shell a service's `main` is ([`run_service`]): install the logger and log
//! `<service>.build.info` first, read the configuration, start, wait for SIGTERM or SIGINT,
//! stop gracefully. Failures are printed with their whole chain of causes ([`error_chain`]).
//!
//! Exit codes: 0 stopped cleanly, [`EXIT_FAILURE`] failed at start, [`EXIT_CONFIG`] invalid
//! configuration.
//!
//! Not here: what a service starts (its `start`), the agent's shell (it also drains on
//! SIGUSR1 and checks the machine; see `kici-agent/src/main.rs`).

use std::collections::BTreeMap;
use std::future::Future;
use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};

use crate::env::ConfigError;
use crate::logging::{LogConfig, LogGuard};

/// The service failed to start.
pub const EXIT_FAILURE: u8 = 1;
/// The configuration (environment, logging settings, or files it names) is invalid.
pub const EXIT_CONFIG: u8 = 2;

/// Worker threads of a service's runtime: its work is I/O, not computation.
const WORKER_THREADS: usize = 2;

/// A long-running service that `main` starts, and stops on a signal.
pub trait Service: Sized {
    /// Its name in logs: `<NAME>.build.info`, `<NAME> failed to start`.
    const NAME: &'static str;
    type Config;
    type StartError: std::error::Error;

    /// Reads and validates the configuration from `env` (the process environment).
    fn config(env: &BTreeMap<String, String>) -> Result<Self::Config, ConfigError>;

    /// Starts serving.
    fn start(config: Self::Config) -> impl Future<Output = Result<Self, Self::StartError>>;

    /// Stops gracefully.
    fn stop(self) -> impl Future<Output = ()>;

    /// For a start error that is really the operator's configuration (such as files the
    /// environment names), the log message; it then exits [`EXIT_CONFIG`] printed as is, like a
    /// configuration error. `None` (the default) for every other failure.
    fn configuration_problem(_err: &Self::StartError) -> Option<&'static str> {
        None
    }
}

/// Runs `S` from the process environment to its stop; returns the exit code.
pub fn run_service<S: Service>() -> ExitCode {
    if let Some(code) = command_line(S::NAME, std::env::args().skip(1)) {
        return code;
    }
    let env: BTreeMap<String, String> = std::env::vars().collect();
    // Held to the end: dropping it flushes the log file.
    let _log_guard = match start_logging(S::NAME, &env) {
        Ok(guard) => guard,
        Err(line) => {
            eprintln!("{line}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let config = match S::config(&env) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            tracing::error!(error = %err, "invalid configuration");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    runtime.block_on(serve::<S>(config))
}

/// A service takes no arguments but `--version` and `--help`: anything else is refused rather
/// than ignored (a service started with a flag it does not know would run unconfigured). `None`:
/// start the service.
pub fn command_line(service: &str, args: impl Iterator<Item = String>) -> Option<ExitCode> {
    let args: Vec<String> = args.collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => None,
        ["--version" | "-V"] => {
            println!("kici-{service} {}", env!("CARGO_PKG_VERSION"));
            Some(ExitCode::SUCCESS)
        }
        ["--help" | "-h"] => {
            println!(
                "kici-{service} {}: configured by KICI_* environment variables (docs/configuration.md); takes no arguments but --version and --help.",
                env!("CARGO_PKG_VERSION")
            );
            Some(ExitCode::SUCCESS)
        }
        _ => {
            eprintln!(
                "error: kici-{service} takes no arguments, got `{}` (hint: it is configured with KICI_* environment variables, docs/configuration.md; --version prints its version)",
                args.join(" ")
            );
            Some(ExitCode::from(EXIT_CONFIG))
        }
    }
}

/// Reads the `KICI_*` logging settings, installs the logger and logs `<service>.build.info`
/// first. The error is the line to print before exiting with [`EXIT_CONFIG`].
fn start_logging(service: &'static str, env: &BTreeMap<String, String>) -> Result<LogGuard, String> {
    let config = LogConfig::from_env(env).map_err(|err| format!("error: {}", error_chain(&err)))?;
    let guard = crate::logging::init(service, None, &config).map_err(|err| format!("error: {}", error_chain(&err)))?;
    crate::health::log_build_info(service);
    Ok(guard)
}

async fn serve<S: Service>(config: S::Config) -> ExitCode {
    let service = match S::start(config).await {
        Ok(service) => service,
        Err(err) => {
            if let Some(message) = S::configuration_problem(&err) {
                eprintln!("{err}");
                tracing::error!(error = %err, "{message}");
                return ExitCode::from(EXIT_CONFIG);
            }
            let chain = error_chain(&err);
            eprintln!("error: {chain}");
            tracing::error!(error = %chain, "{} failed to start", S::NAME);
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let (Ok(mut terminate), Ok(mut interrupt)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        eprintln!("error: cannot install signal handlers");
        return ExitCode::from(EXIT_FAILURE);
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    tracing::info!("shutting down");
    service.stop().await;
    ExitCode::SUCCESS
}

/// An error and its causes on one line: `outer: cause: root cause`.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_service_refuses_arguments_but_version_and_help() {
        let args = |list: &[&str]| list.iter().map(|a| a.to_string()).collect::<Vec<_>>().into_iter();
        assert!(command_line("orchestrator", args(&[])).is_none());
        assert_eq!(
            command_line("orchestrator", args(&["--version"])),
            Some(ExitCode::SUCCESS)
        );
        assert_eq!(
            command_line("orchestrator", args(&["--port", "4000"])),
            Some(ExitCode::from(EXIT_CONFIG))
        );
    }

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        source: Option<Box<Layer>>,
    }

    #[test]
    fn the_whole_chain_is_on_one_line() {
        let root = Layer {
            text: "permission denied",
            source: None,
        };
        let middle = Layer {
            text: "cannot open `x`",
            source: Some(Box::new(root)),
        };
        let top = Layer {
            text: "failed to start",
            source: Some(Box::new(middle)),
        };
        assert_eq!(error_chain(&top), "failed to start: cannot open `x`: permission denied");
    }
}
