//! API errors: every failure becomes `{"error": {"code", "message"}}` with its status code, as
//! on the orchestrator. Internal errors are logged in full and answered with a generic
//! message; an orchestrator's own error codes are passed through.

use std::borrow::Cow;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kici_engine::api::{ErrorBody, ErrorDetail};

/// Log reads while the run's orchestrator is offline (exact text: `spec/dashboard.md` §3.6).
pub const LOGS_OFFLINE: &str = "Log content is served by the orchestrator, which is currently offline";
/// Actions while the run's orchestrator is offline.
pub const ACTION_OFFLINE: &str = "The orchestrator is offline; try again when it is connected";

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid token (hint: send `Authorization: Bearer <KICI_PLATFORM_ADMIN_TOKEN>`)",
        )
    }
}

impl From<crate::cache::CacheError> for ApiError {
    fn from(err: crate::cache::CacheError) -> ApiError {
        tracing::error!(error = %err, source = ?std::error::Error::source(&err), "cache error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error (details are in the Platform log)",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into_owned(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
