//! The bare-metal scaler: agents as local processes of the orchestrator's user. [`config`]
//! holds its settings and their checks; `instance` starts, watches and stops the process.

pub(crate) mod config;
mod instance;

pub(crate) use instance::{AgentProcess, check_binary, check_executable, start};
