//! Who is calling: the bootstrap owner (`KICI_PLATFORM_ADMIN_TOKEN`), a user created with
//! `POST /api/v1/users` (their `kici_pat_…` token), or a browser session made by signing in
//! with either token (cookie `kici_session`, HttpOnly, SameSite=Strict, 8 hours). API calls
//! present the token as `Authorization: Bearer …` or the session cookie; the live streams
//! also accept `?token=`, because a browser's `EventSource` cannot set headers. Pages without
//! a session redirect to the sign-in page.
//!
//! Roles: an owner reads and acts (cancel); a member only reads — acting answers 403
//! `Insufficient permission: runs.write needed`.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::error::ApiError;
use crate::cache::Role;
use crate::state::{Shared, now_ms};

/// The name proxied requests carry for the bootstrap owner (`Cancelled by admin`).
pub const ADMIN_ACTOR: &str = "admin";
pub const SESSION_COOKIE: &str = "kici_session";
const SESSION_TTL_MS: i64 = 8 * 60 * 60 * 1000;

/// The authenticated caller, added to every authenticated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// `runs:write`, or 403.
    pub fn require_write(&self) -> Result<(), ApiError> {
        if self.role.can_write() {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Insufficient permission: runs.write needed",
            ))
        }
    }
}

/// Signed-in browsers: session id → who and until when. In memory: a Platform restart signs
/// everyone out.
#[derive(Debug, Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, (Principal, i64)>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Principal, i64)>> {
        self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new session for `principal`; returns its id.
    pub fn create(&self, principal: Principal) -> String {
        let id = random_hex(32);
        let now = now_ms();
        let mut sessions = self.lock();
        sessions.retain(|_, (_, expires)| *expires > now);
        sessions.insert(id.clone(), (principal, now + SESSION_TTL_MS));
        id
    }

    pub fn get(&self, id: &str) -> Option<Principal> {
        let sessions = self.lock();
        sessions
            .get(id)
            .filter(|(_, expires)| *expires > now_ms())
            .map(|(principal, _)| principal.clone())
    }

    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// `n` random lowercase hex characters.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n.div_ceil(2)];
    // Without an entropy source the process cannot make secrets at all.
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()[..n].to_string()
}

/// The principal a token belongs to.
pub async fn principal_for_token(state: &Shared, token: &str) -> Result<Option<Principal>, ApiError> {
    if state.config.admin_token.matches(token) {
        return Ok(Some(Principal {
            name: ADMIN_ACTOR.to_string(),
            role: Role::Owner,
        }));
    }
    // Stored like the admin token: SHA-256 of the token.
    let hash = kici_engine::hash::sha256_hex(token.as_bytes());
    Ok(state.cache.user_by_token(&hash).await?.map(|user| Principal {
        name: user.name,
        role: user.role,
    }))
}

/// The session id in the request's cookies.
pub fn session_id(request: &Request) -> Option<String> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

/// What a request presents: a token (header, or query on live streams), else a session id.
fn credentials(request: &Request) -> (Option<String>, Option<String>) {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let token = bearer.or_else(|| {
        if request.uri().path().ends_with("/live") {
            query_token(request.uri())
        } else {
            None
        }
    });
    (token, session_id(request))
}

async fn principal(
    state: &Shared,
    token: Option<String>,
    session: Option<String>,
) -> Result<Option<Principal>, ApiError> {
    if let Some(token) = token {
        return principal_for_token(state, &token).await;
    }
    Ok(session.and_then(|id| state.browser_sessions.get(&id)))
}

/// API: a principal or 401.
pub async fn require_token(
    State(state): State<Shared>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (token, session) = credentials(&request);
    match principal(&state, token, session).await? {
        Some(principal) => {
            request.extensions_mut().insert(principal);
            Ok(next.run(request).await)
        }
        None => Err(ApiError::unauthorized()),
    }
}

/// Pages: a session, else the sign-in page (coming back here afterwards).
pub async fn require_session(State(state): State<Shared>, mut request: Request, next: Next) -> Response {
    match session_id(&request).and_then(|id| state.browser_sessions.get(&id)) {
        Some(principal) => {
            request.extensions_mut().insert(principal);
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

    #[test]
    fn sessions_expire_and_can_be_removed() {
        let sessions = Sessions::default();
        let owner = Principal {
            name: "admin".into(),
            role: Role::Owner,
        };
        let id = sessions.create(owner.clone());
        assert_eq!(id.len(), 32);
        assert_eq!(sessions.get(&id), Some(owner));
        sessions.remove(&id);
        assert_eq!(sessions.get(&id), None);
        assert_eq!(sessions.get("unknown"), None);
    }
}
