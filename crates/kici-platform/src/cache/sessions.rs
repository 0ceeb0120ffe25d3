//! Browser sessions, kept across Platform restarts: the SHA-256 of the session id (the cookie's
//! value never reaches the database), who signed in, the session's CSRF token and its expiry.

use sqlx::any::AnyRow;

use super::{Cache, Result, get, q};

/// A stored session: who, and the CSRF token its state-changing requests must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub principal_name: String,
    /// `owner` or `member`.
    pub role: String,
    /// `bootstrap_owner` or `user`.
    pub kind: String,
    pub csrf_token: String,
    /// The bootstrap owner's: a fingerprint of the admin token signed in with, so a changed
    /// token ends the session; empty for a user (whose row must still exist).
    pub credential: String,
    pub expires_at: i64,
}

fn row_to_session(row: &AnyRow) -> Result<StoredSession> {
    Ok(StoredSession {
        principal_name: get(row, "principal_name")?,
        role: get(row, "role")?,
        kind: get(row, "kind")?,
        csrf_token: get(row, "csrf_token")?,
        credential: get(row, "credential")?,
        expires_at: get(row, "expires_at")?,
    })
}

impl Cache {
    /// Stores a session under the hash of its id, and forgets the expired ones.
    pub async fn insert_session(&self, id_hash: &str, session: &StoredSession, now: i64) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(q("prune sessions"))?;
        sqlx::query(
            "INSERT INTO sessions (id_hash, principal_name, role, kind, csrf_token, credential, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id_hash)
        .bind(&session.principal_name)
        .bind(&session.role)
        .bind(&session.kind)
        .bind(&session.csrf_token)
        .bind(&session.credential)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await
        .map_err(q("insert session"))?;
        Ok(())
    }

    /// The unexpired session whose id hashes to `id_hash`.
    pub async fn session(&self, id_hash: &str, now: i64) -> Result<Option<StoredSession>> {
        let row = sqlx::query(
            "SELECT principal_name, role, kind, csrf_token, credential, expires_at FROM sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("find session"))?;
        row.as_ref().map(row_to_session).transpose()
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(q("delete session"))?;
        Ok(())
    }

    /// Ends every session of the stored user `name`; how many.
    pub async fn delete_user_sessions(&self, name: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE principal_name = $1 AND kind = 'user'")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(q("delete user sessions"))?;
        Ok(done.rows_affected())
    }
}
