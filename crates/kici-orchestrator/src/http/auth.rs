//! Admin-token authentication for `/api/v1/*`: `Authorization: Bearer <token>`, checked
//! against the SHA-256 hashes in the store.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;
use crate::clock::now_ms;
use crate::ids::token_hash;
use crate::state::Shared;

/// The admin token a request was authenticated with, for handlers that record who acted.
#[derive(Debug, Clone)]
pub struct Caller(pub kici_store::AdminToken);

pub async fn require_admin(
    State(state): State<Shared>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let unauthorized = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid admin token (hint: pass --token or set KICI_ADMIN_TOKEN)",
        )
    };
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(unauthorized)?;
    let caller = state
        .store
        .use_admin_token(&token_hash(token.trim()), now_ms())
        .await?
        .ok_or_else(unauthorized)?;
    authorize(&caller, request.method(), request.uri().path())?;
    request.extensions_mut().insert(Caller(caller));
    Ok(next.run(request).await)
}

/// Token roles: `owner` may do everything, `admin` everything but managing tokens, `auditor`
/// only read.
fn authorize(caller: &kici_store::AdminToken, method: &Method, path: &str) -> Result<(), ApiError> {
    let forbidden = |message: String| ApiError::new(StatusCode::FORBIDDEN, "forbidden", message);
    let label = &caller.label;
    match caller.role.as_str() {
        "owner" => Ok(()),
        "auditor" if method != Method::GET && method != Method::HEAD => Err(forbidden(format!(
            "token `{label}` has role auditor, which may only read (hint: use an admin or owner token)"
        ))),
        "auditor" => Ok(()),
        _ if path.trim_start_matches("/api/v1").starts_with("/admin/tokens") => Err(forbidden(format!(
            "token `{label}` has role {}; managing admin tokens needs an owner token",
            caller.role
        ))),
        _ => Ok(()),
    }
}
