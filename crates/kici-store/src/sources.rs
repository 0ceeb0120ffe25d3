//! Event sources: where webhooks come from and how their repositories are reached.

use kici_engine::ids::SourceId;
use sqlx::any::AnyRow;

use crate::{Result, Store, get, get_enum, q};

/// How events reach the orchestrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A repository on this machine; `kici-admin source trigger-local` or a `post-receive` hook.
    Local,
    /// A forge (Forgejo, Gitea, GitLab, GitHub) sending signed webhooks.
    Generic,
    /// A GitHub App: its webhooks, installation tokens for clones, check runs.
    GitHubApp,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Local => "local",
            SourceKind::Generic => "generic",
            SourceKind::GitHubApp => "github",
        }
    }
}

impl std::str::FromStr for SourceKind {
    type Err = ();
    fn from_str(text: &str) -> std::result::Result<Self, ()> {
        match text {
            "local" => Ok(SourceKind::Local),
            "generic" => Ok(SourceKind::Generic),
            "github" => Ok(SourceKind::GitHubApp),
            _ => Err(()),
        }
    }
}

/// How a source's webhooks are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Local sources from before trigger tokens: only an admin token is accepted.
    None,
    HmacSha256,
    /// Local sources: `Authorization: Bearer` with the source's trigger token (its SHA-256 in
    /// `secret`) or an admin token.
    TriggerToken,
    /// `Authorization: Bearer <secret>` (a service that cannot sign its webhooks).
    BearerToken,
    /// The sender's address is in `allowed_ips`.
    IpAllowlist,
}

impl Verification {
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::None => "none",
            Verification::HmacSha256 => "hmac_sha256",
            Verification::TriggerToken => "trigger_token",
            Verification::BearerToken => "bearer_token",
            Verification::IpAllowlist => "ip_allowlist",
        }
    }
}

impl std::str::FromStr for Verification {
    type Err = ();
    fn from_str(text: &str) -> std::result::Result<Self, ()> {
        match text {
            "none" => Ok(Verification::None),
            "hmac_sha256" => Ok(Verification::HmacSha256),
            "trigger_token" => Ok(Verification::TriggerToken),
            "bearer_token" => Ok(Verification::BearerToken),
            "ip_allowlist" => Ok(Verification::IpAllowlist),
            _ => Err(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub source_id: SourceId,
    pub org_id: String,
    pub name: String,
    pub kind: SourceKind,
    /// Local sources: the repository's absolute path.
    pub path: Option<String>,
    /// Generic sources: the clone URL template (`{owner}`, `{name}`) or URL.
    pub git_url: Option<String>,
    pub preset: Option<String>,
    pub verification: Verification,
    /// Generic sources: the webhook secret (HMAC key) as the orchestrator encrypted it
    /// (`enc:v1:…`; plaintext in databases from before encryption). Local sources: the SHA-256
    /// of the trigger token.
    pub secret: Option<String>,
    /// Generic sources: the clone credentials as the orchestrator encrypted them, if any.
    pub credentials: Option<String>,
    pub max_payload_bytes: i64,
    /// Verified deliveries per minute; more are refused (429).
    pub rate_limit_rpm: i64,
    pub created_at: i64,
    /// Generic sources: the forge API's base URL for commit statuses, when not the one the
    /// clone URL implies. GitHub App sources: the API (default `https://api.github.com`).
    pub api_url: Option<String>,
    /// GitHub App sources: the App id.
    pub app_id: Option<String>,
    /// A disabled source's webhooks are refused.
    pub enabled: bool,
    /// The webhook secret a rotation replaced (encrypted), still accepted until
    /// `previous_secret_until`.
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<i64>,
    /// GitHub App sources: the repository owners (logins, comma-separated) whose installations
    /// may send webhooks; `None`: any.
    pub allowed_owners: Option<String>,
    /// `ip_allowlist` sources: the address ranges webhooks may come from, comma-separated.
    pub allowed_ips: Option<String>,
}

/// What `source add` stores.
pub type NewSource = Source;

/// A column whose value the orchestrator encrypts, for [`Store::replace_sealed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedColumn {
    Secret,
    Credentials,
    /// The webhook secret a rotation replaced, kept for its window.
    PreviousSecret,
}

const COLUMNS: &str = "source_id, org_id, name, kind, path, git_url, preset, verification, secret, credentials, max_payload_bytes, rate_limit_rpm, created_at, api_url, app_id, enabled, previous_secret, previous_secret_until, allowed_owners, allowed_ips";

fn row_to_source(row: &AnyRow) -> Result<Source> {
    Ok(Source {
        source_id: crate::get_id(row, "source_id")?,
        org_id: get(row, "org_id")?,
        name: get(row, "name")?,
        kind: get_enum(row, "kind")?,
        path: get(row, "path")?,
        git_url: get(row, "git_url")?,
        preset: get(row, "preset")?,
        verification: get_enum(row, "verification")?,
        secret: get(row, "secret")?,
        credentials: get(row, "credentials")?,
        max_payload_bytes: get(row, "max_payload_bytes")?,
        rate_limit_rpm: get(row, "rate_limit_rpm")?,
        created_at: get(row, "created_at")?,
        api_url: get(row, "api_url")?,
        app_id: get(row, "app_id")?,
        enabled: get::<i64>(row, "enabled")? != 0,
        previous_secret: get(row, "previous_secret")?,
        previous_secret_until: get(row, "previous_secret_until")?,
        allowed_owners: get(row, "allowed_owners")?,
        allowed_ips: get(row, "allowed_ips")?,
    })
}

impl Store {
    /// Stores a source; `false` when the org already has a source with that name.
    pub async fn insert_source(&self, source: &NewSource) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO sources (source_id, org_id, name, kind, path, git_url, preset, verification, secret, credentials, max_payload_bytes, rate_limit_rpm, created_at, api_url, app_id, allowed_owners, allowed_ips)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT (org_id, name) DO NOTHING",
        )
        .bind(source.source_id.as_str())
        .bind(&source.org_id)
        .bind(&source.name)
        .bind(source.kind.as_str())
        .bind(&source.path)
        .bind(&source.git_url)
        .bind(&source.preset)
        .bind(source.verification.as_str())
        .bind(&source.secret)
        .bind(&source.credentials)
        .bind(source.max_payload_bytes)
        .bind(source.rate_limit_rpm)
        .bind(source.created_at)
        .bind(&source.api_url)
        .bind(&source.app_id)
        .bind(&source.allowed_owners)
        .bind(&source.allowed_ips)
        .execute(&self.pool)
        .await
        .map_err(q("insert source"))?;
        Ok(inserted.rows_affected() == 1)
    }

    /// The source of `org_id` whose id or name is `id_or_name`.
    pub async fn find_source(&self, org_id: &str, id_or_name: &str) -> Result<Option<Source>> {
        let sql = format!("SELECT {COLUMNS} FROM sources WHERE org_id = $1 AND (source_id = $2 OR name = $2)");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(org_id)
            .bind(id_or_name)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("find source"))?;
        row.as_ref().map(row_to_source).transpose()
    }

    /// Replaces how a source is verified and its secret (a new trigger token's hash).
    pub async fn set_source_secret(
        &self,
        source_id: &SourceId,
        verification: Verification,
        secret: &str,
    ) -> Result<bool> {
        let updated = sqlx::query("UPDATE sources SET verification = $1, secret = $2 WHERE source_id = $3")
            .bind(verification.as_str())
            .bind(secret)
            .bind(source_id.as_str())
            .execute(&self.pool)
            .await
            .map_err(q("set source secret"))?;
        Ok(updated.rows_affected() == 1)
    }

    /// Replaces an encrypted value if it is still `current` (re-encryption under a new key,
    /// or encryption of a plaintext from an older database); `false` when it changed meanwhile.
    pub async fn replace_sealed(
        &self,
        source_id: &SourceId,
        column: SealedColumn,
        current: &str,
        replacement: &str,
    ) -> Result<bool> {
        let sql = match column {
            SealedColumn::Secret => "UPDATE sources SET secret = $1 WHERE source_id = $2 AND secret = $3",
            SealedColumn::Credentials => {
                "UPDATE sources SET credentials = $1 WHERE source_id = $2 AND credentials = $3"
            }
            SealedColumn::PreviousSecret => {
                "UPDATE sources SET previous_secret = $1 WHERE source_id = $2 AND previous_secret = $3"
            }
        };
        let updated = sqlx::query(sql)
            .bind(replacement)
            .bind(source_id.as_str())
            .bind(current)
            .execute(&self.pool)
            .await
            .map_err(q("replace sealed source value"))?;
        Ok(updated.rows_affected() == 1)
    }

    /// Moves credentials out of a source's git URL: the URL without them, and the credentials
    /// encrypted, if the URL is still `current_git_url` and the source has no credentials yet.
    pub async fn move_git_url_credentials(
        &self,
        source_id: &SourceId,
        current_git_url: &str,
        git_url: &str,
        sealed_credentials: &str,
    ) -> Result<bool> {
        let updated = sqlx::query(
            "UPDATE sources SET git_url = $1, credentials = $2 WHERE source_id = $3 AND git_url = $4 AND credentials IS NULL",
        )
        .bind(git_url)
        .bind(sealed_credentials)
        .bind(source_id.as_str())
        .bind(current_git_url)
        .execute(&self.pool)
        .await
        .map_err(q("move git URL credentials"))?;
        Ok(updated.rows_affected() == 1)
    }

    /// Writes what an operator may change of a source (`source update|enable|disable`): its
    /// git and API URLs, credentials, secret with the one it replaced, rate limit and whether it
    /// is enabled. False when there is no such source.
    pub async fn update_source(&self, source: &Source) -> Result<bool> {
        let updated = sqlx::query(
            "UPDATE sources SET git_url = $1, api_url = $2, credentials = $3, secret = $4, previous_secret = $5, \
             previous_secret_until = $6, rate_limit_rpm = $7, enabled = $8 WHERE source_id = $9",
        )
        .bind(&source.git_url)
        .bind(&source.api_url)
        .bind(&source.credentials)
        .bind(&source.secret)
        .bind(&source.previous_secret)
        .bind(source.previous_secret_until)
        .bind(source.rate_limit_rpm)
        .bind(i64::from(source.enabled))
        .bind(source.source_id.as_str())
        .execute(&self.pool)
        .await
        .map_err(q("update source"))?;
        Ok(updated.rows_affected() == 1)
    }

    /// Deletes a source and its registrations (its runs stay, naming it); false when there is
    /// no such source.
    pub async fn delete_source(&self, source_id: &SourceId) -> Result<bool> {
        let mut tx = self.begin().await.map_err(q("begin delete source"))?;
        sqlx::query("DELETE FROM workflow_registrations WHERE source_id = $1")
            .bind(source_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(q("delete source registrations"))?;
        let deleted = sqlx::query("DELETE FROM sources WHERE source_id = $1")
            .bind(source_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(q("delete source"))?;
        tx.commit().await.map_err(q("commit delete source"))?;
        Ok(deleted.rows_affected() == 1)
    }

    /// The source `source_id`, if it still exists.
    pub async fn get_source(&self, source_id: &SourceId) -> Result<Option<Source>> {
        let sql = format!("SELECT {COLUMNS} FROM sources WHERE source_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(source_id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(q("get source"))?;
        row.as_ref().map(row_to_source).transpose()
    }

    pub async fn list_sources(&self) -> Result<Vec<Source>> {
        let sql = format!("SELECT {COLUMNS} FROM sources ORDER BY created_at, name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(q("list sources"))?;
        rows.iter().map(row_to_source).collect()
    }
}
