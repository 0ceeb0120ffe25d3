//! `GET /metrics` behind a bearer token: [`MetricsAccess`] says which token is accepted (and how
//! an operator configures one), [`metrics_response`] answers a request, [`router`] is a
//! ready-made axum route. A service without a configured token answers 401 to everyone: the
//! metrics are never open.
//!
//! Errors use the API's shape, `{"error":{"code":"unauthorized","message":".."}}`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The token `/metrics` accepts. Its `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsToken(String);

impl MetricsToken {
    /// `None` for a blank value (no token configured).
    pub fn new(token: &str) -> Option<MetricsToken> {
        let token = token.trim();
        (!token.is_empty()).then(|| MetricsToken(token.to_string()))
    }

    /// Compares in time independent of where the first difference is.
    fn matches(&self, presented: &str) -> bool {
        let (expected, presented) = (self.0.as_bytes(), presented.as_bytes());
        if expected.len() != presented.len() {
            return false;
        }
        expected.iter().zip(presented).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Who may read `/metrics`.
#[derive(Debug, Clone)]
pub struct MetricsAccess {
    token: Option<MetricsToken>,
    /// How an operator configures the token, for the 401 hint (e.g. `set KICI_METRICS_TOKEN on
    /// the agent`).
    how_to_configure: &'static str,
}

impl MetricsAccess {
    /// `token` = `None` refuses every request with a hint built from `how_to_configure`.
    pub fn new(token: Option<MetricsToken>, how_to_configure: &'static str) -> MetricsAccess {
        MetricsAccess {
            token,
            how_to_configure,
        }
    }
}

/// Why a `/metrics` request was refused (always 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsAuthError {
    #[error("metrics need a token (hint: {how_to_configure} and send it as a bearer token)")]
    NotConfigured { how_to_configure: &'static str },
    #[error("missing bearer token (hint: send the metrics token as `Authorization: Bearer <token>`)")]
    MissingBearer,
    #[error("invalid metrics token (hint: send the configured metrics token as `Authorization: Bearer <token>`)")]
    WrongToken,
}

impl IntoResponse for MetricsAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": "unauthorized", "message": self.to_string()}});
        let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    }
}

/// Checks the request's `Authorization: Bearer <token>` against `access`.
pub fn authorize(access: &MetricsAccess, headers: &HeaderMap) -> Result<(), MetricsAuthError> {
    let Some(token) = &access.token else {
        return Err(MetricsAuthError::NotConfigured {
            how_to_configure: access.how_to_configure,
        });
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, rest) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|presented| !presented.is_empty())
        .ok_or(MetricsAuthError::MissingBearer)?;
    if token.matches(presented) {
        Ok(())
    } else {
        Err(MetricsAuthError::WrongToken)
    }
}

/// The answer to `GET /metrics`: the rendered registry, or 401.
pub fn metrics_response(access: &MetricsAccess, headers: &HeaderMap) -> Response {
    match authorize(access, headers) {
        Ok(()) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], super::render()).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn handler(State(access): State<MetricsAccess>, headers: HeaderMap) -> Response {
    metrics_response(&access, &headers)
}

/// `GET /metrics`, to merge into a service's router.
pub fn router(access: MetricsAccess) -> Router {
    Router::new().route("/metrics", get(handler)).with_state(access)
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;

    const HINT: &str = "set KICI_METRICS_TOKEN on the agent";

    fn headers(authorization: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn bearer_tokens() {
        let access = MetricsAccess::new(MetricsToken::new("s3cret"), HINT);
        let check = |authorization: Option<&str>, want: Result<(), MetricsAuthError>| {
            assert_eq!(authorize(&access, &headers(authorization)), want, "{authorization:?}");
        };
        check(Some("Bearer s3cret"), Ok(()));
        check(Some("bearer  s3cret "), Ok(()));
        check(Some("Bearer s3cre"), Err(MetricsAuthError::WrongToken));
        check(Some("Bearer s3cretx"), Err(MetricsAuthError::WrongToken));
        check(Some("Basic czNjcmV0"), Err(MetricsAuthError::MissingBearer));
        check(Some("Bearer "), Err(MetricsAuthError::MissingBearer));
        check(Some("s3cret"), Err(MetricsAuthError::MissingBearer));
        check(None, Err(MetricsAuthError::MissingBearer));
        let closed = MetricsAccess::new(MetricsToken::new("  "), HINT);
        assert_eq!(
            authorize(&closed, &headers(Some("Bearer "))),
            Err(MetricsAuthError::NotConfigured { how_to_configure: HINT })
        );
        assert_eq!(format!("{:?}", MetricsToken::new("s3cret").unwrap()), "***");
    }

    #[tokio::test]
    async fn responses() {
        let closed = MetricsAccess::new(None, HINT);
        let response = metrics_response(&closed, &headers(Some("Bearer x")));
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"error":{"code":"unauthorized","message":"metrics need a token (hint: set KICI_METRICS_TOKEN on the agent and send it as a bearer token)"}}"#
        );

        super::super::install(super::super::MetricSet::Agent);
        let open = MetricsAccess::new(MetricsToken::new("t"), HINT);
        let response = metrics_response(&open, &headers(Some("Bearer t")));
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.contains("# TYPE kici_agent_connection_status gauge"), "{text}");
    }
}
