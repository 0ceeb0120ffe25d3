//! What every KiCI service shares: logging to stdout and to rotated files ([`logging`]),
//! Prometheus metrics and the `/metrics` route ([`metrics`]), the `/health` body and the
//! `<service>.build.info` line ([`health`]), the refusal of unknown `KICI_*` variables
//! ([`env`](mod@env)) with the reader of every service's configuration, the wall clock and
//! randomness ([`os`]), the shell of a service's `main` ([`service`]) and the REST API's
//! errors ([`http_error`]).

pub mod env;
pub mod health;
pub mod http_error;
pub mod logging;
pub mod metrics;
pub mod os;
pub mod service;
