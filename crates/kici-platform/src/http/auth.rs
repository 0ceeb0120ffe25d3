//! Token authentication for `/api/v1/*`: `Authorization: Bearer <KICI_PLATFORM_ADMIN_TOKEN>`,
//! compared by SHA-256 hash. The live streams (paths ending in `/live`) also accept
//! `?token=`, because a browser's `EventSource` cannot set headers.
//!
//! Not here: users, sessions and roles (the admin token is the bootstrap owner, the only
//! principal so far).

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;
use crate::state::Shared;

/// Who a proxied request is made for (the orchestrator records it, e.g. `Cancelled by admin`).
pub const ADMIN_ACTOR: &str = "admin";

pub async fn require_token(State(state): State<Shared>, request: Request, next: Next) -> Result<Response, ApiError> {
    let from_header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let token = from_header.or_else(|| {
        if request.uri().path().ends_with("/live") {
            query_token(request.uri())
        } else {
            None
        }
    });
    match token {
        Some(token) if state.config.admin_token.matches(&token) => Ok(next.run(request).await),
        _ => Err(ApiError::unauthorized()),
    }
}

/// The `token` query parameter, percent-decoded.
fn query_token(uri: &axum::http::Uri) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct TokenQuery {
        token: Option<String>,
    }
    axum::extract::Query::<TokenQuery>::try_from_uri(uri)
        .ok()
        .and_then(|q| q.0.token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_read_from_the_query() {
        let check = |uri: &str, expected: Option<&str>| {
            assert_eq!(query_token(&uri.parse().unwrap()).as_deref(), expected, "{uri}");
        };
        check("/live?afterLineCount=3&token=a%2Bb", Some("a+b"));
        check("/live?afterLineCount=3", None);
        check("/live", None);
    }
}
