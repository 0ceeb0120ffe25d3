//! Browser sessions and their cookies: the session store (in the cache database, so a Platform
//! restart signs no one out; 8 hours), the per-session CSRF token, the sign-in form's
//! double-submit cookie, and whether a cookie gets `Secure`.
//!
//! CSRF: a request that authenticates with the session cookie and changes something (any method
//! but `GET`, `HEAD`, `OPTIONS`) must carry the session's CSRF token, in the [`CSRF_HEADER`]
//! header (the page script reads it from `<meta name="csrf-token">`) or the `csrf` form field
//! (the sign-out form). A token is random per session, kept server-side with it, and only ever
//! written into the session's own pages, which another site cannot read. Bearer tokens need
//! none: a browser never attaches them on its own. SameSite=Strict stays as a second line.
//!
//! Not here: who a token belongs to, and the middleware that checks them (`auth`).

use axum::http::{HeaderMap, Method, header};

use super::auth::{Principal, PrincipalKind};
use crate::cache::{Cache, CacheError, Role, StoredSession};
use crate::config::{ProxyTrust, TokenHash};
use kici_telemetry::os::{now_ms, random_hex};

pub const SESSION_COOKIE: &str = "kici_session";
/// The sign-in form's double-submit cookie (see `pages::login`).
pub const LOGIN_CSRF_COOKIE: &str = "kici_login_csrf";
/// The header carrying the session's CSRF token on API calls.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Session ids and CSRF tokens: 32 hex characters, 128 bits.
const SECRET_HEX_LEN: usize = 32;
const SESSION_TTL_MS: i64 = 8 * 60 * 60 * 1000;

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub principal: Principal,
    /// What every state-changing request made with this session must send back.
    pub csrf_token: String,
    expires_at: i64,
}

/// Signed-in browsers, stored in the cache under the SHA-256 of their id.
#[derive(Debug, Clone)]
pub struct Sessions {
    cache: Cache,
    /// The current admin token's fingerprint: a bootstrap owner's session made with another
    /// (the token was changed) is over.
    admin: String,
}

fn id_hash(id: &str) -> String {
    kici_engine::hash::sha256_hex(id.as_bytes())
}

impl Sessions {
    pub fn new(cache: Cache, admin_token: &TokenHash) -> Sessions {
        Sessions {
            cache,
            admin: admin_token.fingerprint(),
        }
    }

    /// A new session for `principal`, with a fresh CSRF token; returns its id.
    pub async fn create(&self, principal: &Principal) -> Result<String, CacheError> {
        let id = random_hex(SECRET_HEX_LEN);
        let now = now_ms();
        let stored = StoredSession {
            principal_name: principal.name.clone(),
            role: principal.role.as_str().to_string(),
            kind: principal.kind.as_str().to_string(),
            csrf_token: random_hex(SECRET_HEX_LEN),
            credential: match principal.kind {
                PrincipalKind::BootstrapOwner => self.admin.clone(),
                PrincipalKind::User => String::new(),
            },
            expires_at: now + SESSION_TTL_MS,
        };
        self.cache.insert_session(&id_hash(&id), &stored, now).await?;
        Ok(id)
    }

    /// The live session `id`, if any (a stored one this build cannot read is none).
    pub async fn get(&self, id: &str) -> Result<Option<Session>, CacheError> {
        if !looks_issued(id) {
            return Ok(None);
        }
        let Some(stored) = self.cache.session(&id_hash(id), now_ms()).await? else {
            return Ok(None);
        };
        let role = match PrincipalKind::parse(&stored.kind) {
            Some(PrincipalKind::BootstrapOwner) if stored.credential == self.admin => Role::parse(&stored.role),
            // A user's session lasts while they do, with the role they have now.
            Some(PrincipalKind::User) => self
                .cache
                .user_by_name(&stored.principal_name)
                .await?
                .map(|user| user.role),
            _ => None,
        };
        let (Some(role), Some(kind)) = (role, PrincipalKind::parse(&stored.kind)) else {
            return Ok(None);
        };
        Ok(Some(Session {
            principal: Principal {
                name: stored.principal_name,
                role,
                kind,
            },
            csrf_token: stored.csrf_token,
            expires_at: stored.expires_at,
        }))
    }

    pub async fn remove(&self, id: &str) -> Result<(), CacheError> {
        self.cache.delete_session(&id_hash(id)).await
    }

    /// Ends every session of the stored user `name` (not the bootstrap owner's); returns how
    /// many.
    pub async fn end_user(&self, name: &str) -> Result<u64, CacheError> {
        self.cache.delete_user_sessions(name).await
    }
}

/// Whether `presented` is the expected CSRF token (compared in constant time).
pub fn csrf_matches(expected: &str, presented: Option<&str>) -> bool {
    presented.is_some_and(|presented| TokenHash::of(expected).matches(presented.trim()))
}

/// Methods that never change anything, and so need no CSRF token.
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie_name, _)| *cookie_name == name)
        .map(|(_, value)| value.to_string())
}

/// A value this Platform could have issued as a session id or CSRF token (a tossed or stale
/// cookie of another shape is replaced, not reused).
pub fn looks_issued(value: &str) -> bool {
    value.len() == SECRET_HEX_LEN && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A new random CSRF token for the sign-in form.
pub fn new_login_token() -> String {
    random_hex(SECRET_HEX_LEN)
}

/// How the browser reached the Platform, as far as the Platform can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// `https` when a trusted proxy says so (`KICI_PLATFORM_TRUST_PROXY=1` and the first
    /// `X-Forwarded-Proto` value is `https`); else `http`, which is what the Platform serves.
    pub fn of(headers: &HeaderMap, proxy_trust: ProxyTrust) -> Scheme {
        let forwarded_https = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
        match proxy_trust {
            ProxyTrust::ForwardedProto if forwarded_https => Scheme::Https,
            _ => Scheme::Http,
        }
    }
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, `Secure` over HTTPS; `max_age_seconds`
/// `None` lasts until the browser closes, `Some(0)` deletes.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age_seconds: Option<i64>, scheme: Scheme) -> String {
    let mut cookie = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if let Some(max_age) = max_age_seconds {
        cookie.push_str(&format!("; Max-Age={max_age}"));
    }
    if scheme == Scheme::Https {
        cookie.push_str("; Secure");
    }
    cookie
}

/// The session cookie's lifetime, in seconds (the session's own).
pub const SESSION_COOKIE_MAX_AGE: i64 = SESSION_TTL_MS / 1000;

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(name: &str, kind: PrincipalKind) -> Principal {
        let role = match kind {
            PrincipalKind::BootstrapOwner => Role::Owner,
            PrincipalKind::User => Role::Member,
        };
        Principal {
            name: name.into(),
            role,
            kind,
        }
    }

    const ADMIN: &str = "the-admin-token";

    async fn sessions() -> (Sessions, Cache, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&dir.path().join("platform.db")).await.unwrap();
        for name in ["rita", "sam"] {
            let user = crate::cache::User {
                name: name.into(),
                role: Role::Member,
                created_at: 0,
            };
            cache.insert_user(&user, &format!("hash-{name}")).await.unwrap();
        }
        (Sessions::new(cache.clone(), &TokenHash::of(ADMIN)), cache, dir)
    }

    #[tokio::test]
    async fn sessions_are_stored_by_the_hash_of_their_id_and_can_be_removed() {
        let (sessions, cache, dir) = sessions().await;
        let owner = principal("admin", PrincipalKind::BootstrapOwner);
        let id = sessions.create(&owner).await.unwrap();
        assert!(looks_issued(&id));
        let session = sessions.get(&id).await.unwrap().unwrap();
        assert_eq!(session.principal, owner);
        assert!(looks_issued(&session.csrf_token));
        assert_ne!(session.csrf_token, id);
        // The database and its write-ahead log hold the hash of the id, never the id.
        cache.close().await;
        for file in ["platform.db", "platform.db-wal"] {
            let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
            assert!(!bytes.windows(id.len()).any(|w| w == id.as_bytes()), "{file}");
        }
        // A Platform that starts again on the same database knows the session.
        let again = Sessions::new(
            Cache::open(&dir.path().join("platform.db")).await.unwrap(),
            &TokenHash::of(ADMIN),
        );
        assert_eq!(again.get(&id).await.unwrap(), Some(session));
        again.remove(&id).await.unwrap();
        assert_eq!(again.get(&id).await.unwrap(), None);
        assert_eq!(again.get("unknown").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_changed_admin_token_or_a_deleted_user_ends_their_sessions() {
        let (sessions, cache, _dir) = sessions().await;
        let admin = sessions
            .create(&principal("admin", PrincipalKind::BootstrapOwner))
            .await
            .unwrap();
        let rita = sessions.create(&principal("rita", PrincipalKind::User)).await.unwrap();
        let rotated = Sessions::new(cache.clone(), &TokenHash::of("a-new-admin-token"));
        assert_eq!(rotated.get(&admin).await.unwrap(), None, "the admin token changed");
        // A user's role is the one they have now (stored users are members here).
        let role = rotated.get(&rita).await.unwrap().map(|s| s.principal.role);
        assert_eq!(role, Some(Role::Member));
        assert!(cache.delete_user("rita").await.unwrap());
        assert_eq!(sessions.get(&rita).await.unwrap(), None, "rita was deleted");
    }

    #[tokio::test]
    async fn ending_a_user_ends_only_their_sessions() {
        let (sessions, _cache, _dir) = sessions().await;
        let rita = principal("rita", PrincipalKind::User);
        let rita = [
            sessions.create(&rita).await.unwrap(),
            sessions.create(&rita).await.unwrap(),
        ];
        let sam = sessions.create(&principal("sam", PrincipalKind::User)).await.unwrap();
        // The bootstrap owner is not a stored user, whatever a user is called.
        let admin = sessions
            .create(&principal("admin", PrincipalKind::BootstrapOwner))
            .await
            .unwrap();
        assert_eq!(sessions.end_user("rita").await.unwrap(), 2);
        for id in &rita {
            assert!(sessions.get(id).await.unwrap().is_none());
        }
        assert!(sessions.get(&sam).await.unwrap().is_some());
        assert_eq!(sessions.end_user("admin").await.unwrap(), 0);
        assert!(sessions.get(&admin).await.unwrap().is_some());
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        let check = |presented: Option<&str>, expected: bool| {
            assert_eq!(
                csrf_matches("0123456789abcdef0123456789abcdef", presented),
                expected,
                "{presented:?}"
            );
        };
        check(Some("0123456789abcdef0123456789abcdef"), true);
        check(Some("0123456789abcdef0123456789abcdee"), false);
        check(Some(""), false);
        check(None, false);
    }

    #[test]
    fn cookies_are_secure_only_over_https_from_a_trusted_proxy() {
        let check = |forwarded: Option<&str>, trust: ProxyTrust, expected: Scheme| {
            let mut headers = HeaderMap::new();
            if let Some(proto) = forwarded {
                headers.insert("x-forwarded-proto", proto.parse().unwrap());
            }
            assert_eq!(Scheme::of(&headers, trust), expected, "{forwarded:?} {trust:?}");
        };
        check(None, ProxyTrust::Ignore, Scheme::Http);
        check(Some("https"), ProxyTrust::Ignore, Scheme::Http);
        check(None, ProxyTrust::ForwardedProto, Scheme::Http);
        check(Some("http"), ProxyTrust::ForwardedProto, Scheme::Http);
        check(Some("https"), ProxyTrust::ForwardedProto, Scheme::Https);
        check(Some("HTTPS, http"), ProxyTrust::ForwardedProto, Scheme::Https);
        assert_eq!(
            set_cookie("a", "b", "/", Some(60), Scheme::Https),
            "a=b; Path=/; HttpOnly; SameSite=Strict; Max-Age=60; Secure"
        );
        assert_eq!(
            set_cookie("a", "b", "/login", None, Scheme::Http),
            "a=b; Path=/login; HttpOnly; SameSite=Strict"
        );
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; kici_session=abc".parse().unwrap());
        headers.append(header::COOKIE, "kici_login_csrf=def".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, LOGIN_CSRF_COOKIE).as_deref(), Some("def"));
        assert_eq!(cookie(&headers, "missing"), None);
    }
}
