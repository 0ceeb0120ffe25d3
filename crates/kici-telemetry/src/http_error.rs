//! API errors for every service's REST API: each failure becomes
//! `{"error": {"code", "message"}}` with its status code (`kici_engine::api::ErrorBody`).
//! Internal errors ([`InternalError`]) are logged in full and answered with a generic message.
//!
//! Not here: a service's own texts and codes (its `http::error` module and handlers).

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kici_engine::api::{ErrorBody, ErrorDetail};
use kici_engine::internal_error::InternalError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Ours are static; the Platform passes an orchestrator's own codes through.
    pub code: Cow<'static, str>,
    pub message: String,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
    /// The refused fields, for an error about a request's fields.
    pub fields: Vec<kici_engine::inputs::FieldError>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            retry_after: None,
            fields: Vec::new(),
        }
    }

    /// 429 `rate_limited` with `Retry-After: <seconds>`.
    pub fn rate_limited(message: impl Into<String>, seconds: u64) -> ApiError {
        ApiError {
            retry_after: Some(seconds),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl<E: InternalError> From<E> for ApiError {
    fn from(err: E) -> ApiError {
        tracing::error!(error = %err, source = ?err.source(), "{}", E::LOG_MESSAGE);
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", E::ANSWER)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into_owned(),
                message: self.message,
                fields: self.fields,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
