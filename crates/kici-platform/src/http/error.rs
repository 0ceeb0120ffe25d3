//! API errors: every failure becomes `{"error": {"code", "message"}}` with its status code, as
//! on the orchestrator (the shared [`ApiError`]). Cache errors are internal: logged in full
//! and answered with a generic message; an orchestrator's own error codes are passed through.
//! The texts the Platform's answers share live here.

use axum::http::StatusCode;
use kici_engine::internal_error::InternalError;

pub use kici_telemetry::http_error::{ApiError, ApiResult};

pub use kici_engine::failure::{ACTION_OFFLINE, LOGS_OFFLINE};

/// 401 for a request without a valid token or session.
pub fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or invalid token (hint: send `Authorization: Bearer <KICI_PLATFORM_ADMIN_TOKEN>`)",
    )
}

impl InternalError for crate::cache::CacheError {
    const LOG_MESSAGE: &'static str = "cache error";
    const ANSWER: &'static str = "internal error (details are in the Platform log)";
}
