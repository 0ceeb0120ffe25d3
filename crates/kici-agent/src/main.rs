//! `kici-agent`: reads the configuration from `KICI_*` variables, checks the machine (git and
//! bash on `PATH`, the work directory), installs the logger (stdout, and files named after the
//! agent id under `KICI_LOG_DIR`), turns signals into shutdown requests and runs the agent
//! (`kici_agent::run`).
//!
//! Exit codes: 0 after a requested shutdown (SIGTERM, SIGINT, SIGUSR1); 1 when the agent
//! stopped on its own (the orchestrator rejected the token, a task failed); 2 when it refused
//! to start (configuration, unknown `KICI_*` variables, missing tools).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use kici_agent::{AgentError, Config, ConnectionError, ShutdownSignal};
use kici_telemetry::service::error_chain;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// The agent stopped by itself.
const EXIT_FAILURE: u8 = 1;
/// The agent refused to start.
const EXIT_CONFIG: u8 = 2;

/// Tools every job needs.
const REQUIRED_TOOLS: [&str; 2] = ["git", "bash"];

/// Signals waiting to be taken by the agent; more than a few pending is pointless.
const SIGNAL_BUFFER: usize = 4;

/// `KICI_AGENT_TOKEN_FILE`: the token is read from the file (its first line) instead of the
/// environment, so it is in no process's environment at all.
fn token_from_file(vars: &mut BTreeMap<String, String>) -> Result<(), String> {
    let Some(path) = vars.get("KICI_AGENT_TOKEN_FILE").cloned() else {
        return Ok(());
    };
    if vars.contains_key("KICI_AGENT_TOKEN") {
        return Err(
            "KICI_AGENT_TOKEN and KICI_AGENT_TOKEN_FILE are both set (hint: keep only KICI_AGENT_TOKEN_FILE)".into(),
        );
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|err| format!("cannot read KICI_AGENT_TOKEN_FILE `{path}`: {err} (hint: the file holds the agent token from `kici-admin agent register`)"))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    vars.insert("KICI_AGENT_TOKEN".into(), token);
    Ok(())
}

fn main() -> ExitCode {
    if let Some(code) = kici_telemetry::service::command_line("agent", std::env::args().skip(1)) {
        return code;
    }
    // Jobs run as the agent's user: without this, one could read the agent's token from
    // /proc/<agent>/environ or its memory. A process that is not dumpable has those owned by
    // root. Children (the runner, the job) are dumpable again after exec and hold no token.
    if let Err(err) = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable) {
        eprintln!(
            "warning: cannot make the agent non-dumpable ({err}); a job running as this user could read its token"
        );
    }
    let mut vars: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect();
    if let Err(err) = token_from_file(&mut vars) {
        eprintln!("error: {err}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let config = match Config::from_env(&vars, &hostname()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // Held to the end of `main`: dropping it flushes the log file.
    let _log_guard = match kici_telemetry::logging::init("agent", Some(&config.agent_id), &config.log) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("error: {}", error_chain(&err));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    kici_telemetry::health::log_build_info("agent");
    if let Some(unknown) = &config.unknown_env_warning {
        warn!(error = %unknown, "unknown KICI_* variables ignored because KICI_DEV=true");
    }
    if let Err(message) = check_machine(&config, vars.get("PATH").map(String::as_str)) {
        error!(error = %message, "agent.startup_failed");
        eprintln!("error: {message}");
        return ExitCode::from(EXIT_CONFIG);
    }
    match start(config) {
        Ok(code) => code,
        Err(err) => {
            error!(error = %format!("{err:#}"), "agent.failed");
            eprintln!("error: {err:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn start(config: Config) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    Ok(runtime.block_on(serve(config)))
}

async fn serve(config: Config) -> ExitCode {
    let (signals_tx, signals_rx) = mpsc::channel(SIGNAL_BUFFER);
    let signals = tokio::spawn(forward_signals(signals_tx));
    let result = kici_agent::run(config, signals_rx).await;
    signals.abort();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(AgentError::Connection(ConnectionError::AuthFailed { reason })) => {
            error!(
                reason = %reason,
                hint = "the orchestrator rejected KICI_AGENT_TOKEN; fix the token and restart (the agent does not reconnect)",
                "agent.auth_failed"
            );
            ExitCode::from(EXIT_FAILURE)
        }
        Err(err) => {
            error!(error = %error_chain(&err), "agent.failed");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// SIGTERM and SIGINT stop the agent; SIGUSR1 drains it. Never returns while the agent runs:
/// a closed channel would read as a stop request.
async fn forward_signals(tx: mpsc::Sender<ShutdownSignal>) {
    let streams = (|| {
        Ok::<_, std::io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
            signal(SignalKind::user_defined1())?,
        ))
    })();
    let (mut terminate, mut interrupt, mut drain) = match streams {
        Ok(streams) => streams,
        Err(err) => {
            error!(error = %err, "cannot listen for signals; stop the agent with SIGKILL");
            std::future::pending::<()>().await;
            return;
        }
    };
    loop {
        let request = tokio::select! {
            _ = terminate.recv() => ShutdownSignal::Terminate,
            _ = interrupt.recv() => ShutdownSignal::Terminate,
            _ = drain.recv() => ShutdownSignal::Drain,
        };
        info!(signal = ?request, "signal received");
        if tx.send(request).await.is_err() {
            return;
        }
    }
}

/// Required tools on `PATH`, the work directory, and (a warning only) Node.js.
fn check_machine(config: &Config, path: Option<&str>) -> Result<(), String> {
    for tool in REQUIRED_TOOLS {
        if find_on_path(tool, path).is_none() {
            return Err(format!(
                "Agent required-tools validation failed: {tool} not found on PATH"
            ));
        }
    }
    std::fs::create_dir_all(&config.work_dir).map_err(|err| {
        format!(
            "cannot create KICI_WORK_DIR `{}`: {err} (hint: point KICI_WORK_DIR at a writable directory)",
            config.work_dir.display()
        )
    })?;
    if let Err(message) = kici_compiler::runner::find_node(config.node.as_deref()) {
        warn!(error = %message, "jobs will fail until Node.js is available");
    }
    Ok(())
}

fn find_on_path(tool: &str, path: Option<&str>) -> Option<std::path::PathBuf> {
    std::env::split_paths(path.unwrap_or(""))
        .map(|dir| dir.join(tool))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// This machine's host name (`localhost` when it cannot be read).
fn hostname() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length; gethostname writes at most that many bytes.
    #[allow(unsafe_code)]
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return "localhost".to_string();
    }
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    match String::from_utf8_lossy(&buffer[..end]).trim() {
        "" => "localhost".to_string(),
        name => name.to_string(),
    }
}
