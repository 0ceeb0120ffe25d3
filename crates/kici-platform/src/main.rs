//! `kici-platform`: reads `KICI_*`, logs `platform.build.info` first, starts serving, and stops
//! gracefully on SIGTERM or SIGINT (`kici_telemetry::service::run_service`).
//!
//! Exit codes: 0 stopped cleanly, 1 failed at start, 2 invalid configuration.

use std::process::ExitCode;

fn main() -> ExitCode {
    kici_telemetry::service::run_service::<kici_platform::Platform>()
}
