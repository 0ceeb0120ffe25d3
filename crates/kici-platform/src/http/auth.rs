//! Who is calling: the bootstrap owner (`KICI_PLATFORM_ADMIN_TOKEN`), a user created with
//! `POST /api/v1/users` (their `kici_pat_…` token), or a browser session made by signing in
//! with either token (cookie `kici_session`, HttpOnly, SameSite=Strict, 8 hours; see
//! [`super::session`]). API calls present the token as `Authorization: Bearer …` or the
//! session cookie; the live streams also accept `?token=`, because a browser's `EventSource`
//! cannot set headers. A state-changing API call made with the session cookie must also carry
//! the session's CSRF token (`X-CSRF-Token`), else 403 `invalid_csrf_token`. Pages without a
//! session redirect to the sign-in page.
//!
//! Roles: an owner reads and acts (cancel, re-run, approve); a member only reads — acting
//! answers 403 `Insufficient permission: runs.write needed` (`environments.write` for
//! approvals).

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::error::{ApiError, unauthorized};
use super::session::{self, CSRF_HEADER, SESSION_COOKIE, Session};
use crate::cache::Role;
use crate::state::Shared;

/// The name proxied requests carry for the bootstrap owner (`Cancelled by admin`).
pub const ADMIN_ACTOR: &str = "admin";

/// Where a principal comes from: deleting a user ends the sessions of that user only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// `KICI_PLATFORM_ADMIN_TOKEN`; not stored, cannot be deleted.
    BootstrapOwner,
    /// A row of the `users` table.
    User,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::BootstrapOwner => "bootstrap_owner",
            PrincipalKind::User => "user",
        }
    }

    pub fn parse(text: &str) -> Option<PrincipalKind> {
        match text {
            "bootstrap_owner" => Some(PrincipalKind::BootstrapOwner),
            "user" => Some(PrincipalKind::User),
            _ => None,
        }
    }
}

/// The authenticated caller, added to every authenticated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    pub kind: PrincipalKind,
}

/// What an action needs, as a refusal names it. Owners have every permission, members none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Cancel and re-run.
    RunsWrite,
    /// Approve and reject held jobs.
    EnvironmentsWrite,
}

impl Permission {
    fn as_str(self) -> &'static str {
        match self {
            Permission::RunsWrite => "runs.write",
            Permission::EnvironmentsWrite => "environments.write",
        }
    }
}

impl Principal {
    /// `permission`, or 403 `Insufficient permission: <permission> needed`.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.role.can_write() {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                kici_engine::failure::insufficient_permission(permission.as_str()),
            ))
        }
    }
}

/// How an API request authenticated, added beside its [`Principal`]: the live streams count
/// open streams per credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A token (`Authorization: Bearer`, or `?token=` on live streams), by its SHA-256.
    Token { token_hash: String },
    /// The session cookie.
    Session { session_id: String },
}

impl Credential {
    /// One key per token or session, never the secret itself.
    pub fn key(&self) -> String {
        match self {
            Credential::Token { token_hash } => format!("token:{token_hash}"),
            Credential::Session { session_id } => {
                format!("session:{}", kici_engine::hash::sha256_hex(session_id.as_bytes()))
            }
        }
    }
}

/// The principal a token belongs to.
pub async fn principal_for_token(state: &Shared, token: &str) -> Result<Option<Principal>, ApiError> {
    if state.config.admin_token.matches(token) {
        return Ok(Some(Principal {
            name: ADMIN_ACTOR.to_string(),
            role: Role::Owner,
            kind: PrincipalKind::BootstrapOwner,
        }));
    }
    // Stored like the admin token: SHA-256 of the token.
    let hash = kici_engine::hash::sha256_hex(token.as_bytes());
    Ok(state.cache.user_by_token(&hash).await?.map(|user| Principal {
        name: user.name,
        role: user.role,
        kind: PrincipalKind::User,
    }))
}

/// The session id in the request's cookies.
pub fn session_id(request: &Request) -> Option<String> {
    session::cookie(request.headers(), SESSION_COOKIE)
}

/// The token a request presents: the `Authorization: Bearer` header, or `?token=` on live
/// streams.
fn presented_token(request: &Request) -> Option<String> {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    bearer.or_else(|| {
        if request.uri().path().ends_with("/live") {
            query_token(request.uri())
        } else {
            None
        }
    })
}

/// 403 for a session request without the session's CSRF token.
pub fn csrf_refused() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "invalid_csrf_token",
        "missing or wrong CSRF token: a request signed in with the session cookie must send the page's token in the X-CSRF-Token header (hint: reload the page, or use `Authorization: Bearer <token>`)",
    )
}

/// API: a principal or 401; with the session cookie, a state-changing request also needs the
/// session's CSRF token, or 403. A token wins over a cookie when both are sent.
pub async fn require_token(
    State(state): State<Shared>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (principal, credential) = if let Some(token) = presented_token(&request) {
        let principal = principal_for_token(&state, &token).await?.ok_or_else(unauthorized)?;
        let token_hash = kici_engine::hash::sha256_hex(token.as_bytes());
        (principal, Credential::Token { token_hash })
    } else {
        let session_id = session_id(&request).ok_or_else(unauthorized)?;
        let session = state
            .browser_sessions
            .get(&session_id)
            .await?
            .ok_or_else(unauthorized)?;
        if !session::is_safe(request.method()) {
            let presented = request.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if !session::csrf_matches(&session.csrf_token, presented) {
                tracing::warn!(user = %session.principal.name, method = %request.method(), path = %request.uri().path(), "request refused: missing or wrong CSRF token");
                return Err(csrf_refused());
            }
        }
        (session.principal, Credential::Session { session_id })
    };
    request.extensions_mut().insert(principal);
    request.extensions_mut().insert(credential);
    Ok(next.run(request).await)
}

/// Pages: a session (added as [`Session`]), else the sign-in page (coming back here
/// afterwards).
pub async fn require_session(State(state): State<Shared>, mut request: Request, next: Next) -> Response {
    let found = match session_id(&request) {
        Some(id) => state.browser_sessions.get(&id).await,
        None => Ok(None),
    };
    let found = match found {
        Ok(found) => found,
        Err(err) => return ApiError::from(err).into_response(),
    };
    match found {
        Some(session) => {
            request.extensions_mut().insert::<Session>(session);
            next.run(request).await
        }
        None => {
            let next_path = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/runs".into());
            let encoded: String = next_path
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect();
            Redirect::to(&format!("/login?next={encoded}")).into_response()
        }
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
