//! Failures whose details stay in a service's log: the REST API answers them with 500
//! `internal` and a fixed text that names the log to look in (`kici_telemetry::http_error`
//! does the answering). A library marks its error type so, and handlers use `?` on it.
//!
//! Not here: failures a caller can act on (they get their own code and message).

/// An error answered as 500 `internal` with [`InternalError::ANSWER`], after being logged in
/// full with [`InternalError::LOG_MESSAGE`].
pub trait InternalError: std::error::Error {
    /// The log line's message, e.g. `store error`.
    const LOG_MESSAGE: &'static str;
    /// What the client is told, e.g. `internal error (details are in the orchestrator log)`.
    const ANSWER: &'static str;
}
