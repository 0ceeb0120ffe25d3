//! `kici-orchestrator`: reads `KICI_*`, logs `orchestrator.build.info` first, starts serving,
//! and stops gracefully on SIGTERM or SIGINT (`kici_telemetry::service::run_service`).
//!
//! Exit codes: 0 stopped cleanly, 1 failed at start, 2 invalid configuration (the environment
//! or the scaler files).

use std::process::ExitCode;

fn main() -> ExitCode {
    kici_telemetry::service::run_service::<kici_orchestrator::Orchestrator>()
}
