//! Admin tokens (operators, CLIs) and agent tokens (`kat_…`). Only SHA-256 hashes of tokens
//! are stored; callers hash before they look up.

use sqlx::any::AnyRow;

use crate::{Result, Store, get, q};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminToken {
    pub token_id: String,
    pub label: String,
    pub role: String,
    /// Teams its holder belongs to, for reviewer clauses `team:<name>`.
    pub teams: Vec<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentToken {
    pub token_id: String,
    pub label: String,
    /// The first characters of the token, to recognise it in lists.
    pub token_prefix: String,
    pub labels: Vec<String>,
    pub agent_type: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_seen_at: Option<i64>,
}

/// What `agent register` stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgentToken {
    pub token_id: String,
    pub label: String,
    pub token_prefix: String,
    pub token_hash: String,
    pub labels: Vec<String>,
    pub agent_type: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

fn row_to_admin(row: &AnyRow) -> Result<AdminToken> {
    Ok(AdminToken {
        token_id: get(row, "token_id")?,
        label: get(row, "label")?,
        role: get(row, "role")?,
        teams: crate::get_json(row, "teams")?.unwrap_or_default(),
        created_at: get(row, "created_at")?,
        last_used_at: get(row, "last_used_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

fn row_to_agent(row: &AnyRow) -> Result<AgentToken> {
    Ok(AgentToken {
        token_id: get(row, "token_id")?,
        label: get(row, "label")?,
        token_prefix: get(row, "token_prefix")?,
        labels: crate::get_json(row, "labels")?.unwrap_or_default(),
        agent_type: get(row, "agent_type")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
        revoked_at: get(row, "revoked_at")?,
        last_seen_at: get(row, "last_seen_at")?,
    })
}

const ADMIN_COLUMNS: &str = "token_id, label, role, teams, created_at, last_used_at, revoked_at";
const AGENT_COLUMNS: &str =
    "token_id, label, token_prefix, labels, agent_type, created_at, expires_at, revoked_at, last_seen_at";

impl Store {
    /// Stores an admin token; `false` when the hash already exists (the bootstrap token is
    /// stored once, however often the orchestrator starts).
    pub async fn insert_admin_token(&self, token: &AdminToken, token_hash: &str) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO admin_tokens (token_id, label, role, token_hash, created_at, teams) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (token_hash) DO NOTHING",
        )
        .bind(&token.token_id)
        .bind(&token.label)
        .bind(&token.role)
        .bind(token_hash)
        .bind(token.created_at)
        .bind(crate::to_json(&token.teams))
        .execute(&self.pool)
        .await
        .map_err(q("insert admin token"))?;
        Ok(inserted.rows_affected() == 1)
    }

    /// The live (not revoked) admin token with this hash; records its use.
    pub async fn use_admin_token(&self, token_hash: &str, now: i64) -> Result<Option<AdminToken>> {
        let sql = format!("SELECT {ADMIN_COLUMNS} FROM admin_tokens WHERE token_hash = $1 AND revoked_at IS NULL");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("find admin token"))?;
        let Some(token) = row.as_ref().map(row_to_admin).transpose()? else {
            return Ok(None);
        };
        sqlx::query("UPDATE admin_tokens SET last_used_at = $1 WHERE token_id = $2")
            .bind(now)
            .bind(&token.token_id)
            .execute(&self.pool)
            .await
            .map_err(q("touch admin token"))?;
        Ok(Some(token))
    }

    pub async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>> {
        let sql = format!("SELECT {ADMIN_COLUMNS} FROM admin_tokens ORDER BY created_at, token_id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(q("list admin tokens"))?;
        rows.iter().map(row_to_admin).collect()
    }

    /// Revokes an admin token; `false` when there is no such live token.
    pub async fn revoke_admin_token(&self, token_id: &str, now: i64) -> Result<bool> {
        let done = sqlx::query("UPDATE admin_tokens SET revoked_at = $1 WHERE token_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(token_id)
            .execute(&self.pool)
            .await
            .map_err(q("revoke admin token"))?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_agent_token(&self, token: &NewAgentToken) -> Result<()> {
        sqlx::query(
            "INSERT INTO agent_tokens (token_id, label, token_prefix, token_hash, labels, agent_type, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&token.token_id)
        .bind(&token.label)
        .bind(&token.token_prefix)
        .bind(&token.token_hash)
        .bind(crate::to_json(&token.labels))
        .bind(&token.agent_type)
        .bind(token.created_at)
        .bind(token.expires_at)
        .execute(&self.pool)
        .await
        .map_err(q("insert agent token"))?;
        Ok(())
    }

    /// The live agent token with this hash (not revoked, not expired at `now`); records its use.
    pub async fn use_agent_token(&self, token_hash: &str, now: i64) -> Result<Option<AgentToken>> {
        let sql = format!(
            "SELECT {AGENT_COLUMNS} FROM agent_tokens WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("find agent token"))?;
        let Some(token) = row.as_ref().map(row_to_agent).transpose()? else {
            return Ok(None);
        };
        // A single-use token is marked used when its agent registers (`claim_single_use`).
        sqlx::query("UPDATE agent_tokens SET last_seen_at = $1 WHERE token_id = $2 AND agent_type <> 'ephemeral'")
            .bind(now)
            .bind(&token.token_id)
            .execute(&self.pool)
            .await
            .map_err(q("touch agent token"))?;
        Ok(Some(token))
    }

    /// Marks a spawned agent's (`ephemeral`) token used; `false` when it was used already: such
    /// a token serves one connection.
    pub async fn claim_single_use(&self, token_id: &str, now: i64) -> Result<bool> {
        let claimed = sqlx::query(
            "UPDATE agent_tokens SET last_seen_at = $1 WHERE token_id = $2 AND agent_type = 'ephemeral' AND last_seen_at IS NULL",
        )
        .bind(now)
        .bind(token_id)
        .execute(&self.pool)
        .await
        .map_err(q("claim single-use agent token"))?;
        Ok(claimed.rows_affected() == 1)
    }

    pub async fn list_agent_tokens(&self) -> Result<Vec<AgentToken>> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agent_tokens ORDER BY created_at, token_id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(q("list agent tokens"))?;
        rows.iter().map(row_to_agent).collect()
    }

    /// Revokes an agent token by id or label; `false` when there is no such live token.
    pub async fn revoke_agent_token(&self, id_or_label: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE agent_tokens SET revoked_at = $1 WHERE (token_id = $2 OR label = $2) AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id_or_label)
        .execute(&self.pool)
        .await
        .map_err(q("revoke agent token"))?;
        Ok(done.rows_affected() >= 1)
    }
}
