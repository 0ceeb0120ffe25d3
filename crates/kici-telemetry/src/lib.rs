//! What every KiCI service shares: logging to stdout and to rotated files ([`logging`]),
//! Prometheus metrics and the `/metrics` route ([`metrics`]), the `/health` body and the
//! `<service>.build.info` line ([`health`]), the refusal of unknown `KICI_*` variables
//! ([`env`](mod@env)), and the wall clock and randomness ([`os`]).

pub mod env;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod os;
