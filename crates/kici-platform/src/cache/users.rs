//! Dashboard users: a name, a role and the SHA-256 of their token (shown once at creation).
//! The bootstrap owner is `KICI_PLATFORM_ADMIN_TOKEN` and is not stored here.

use sqlx::any::AnyRow;

use super::{Cache, Result, get, q};

/// What a user may do: owners read and act (cancel, approve); members only read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Owner,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Member => "member",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "owner" => Some(Role::Owner),
            "member" => Some(Role::Member),
            _ => None,
        }
    }

    /// May act: cancel and re-run runs (`runs:write`), approve held jobs
    /// (`environments:write`).
    pub fn can_write(self) -> bool {
        self == Role::Owner
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub created_at: i64,
}

fn row_to_user(row: &AnyRow) -> Result<User> {
    let role: String = get(row, "role")?;
    Ok(User {
        name: get(row, "name")?,
        // Only `Role::as_str` values are written.
        role: Role::parse(&role).unwrap_or(Role::Member),
        created_at: get(row, "created_at")?,
    })
}

impl Cache {
    /// Stores a user; `false` when the name is taken.
    pub async fn insert_user(&self, user: &User, token_hash: &str) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO users (name, role, token_hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&user.name)
        .bind(user.role.as_str())
        .bind(token_hash)
        .bind(user.created_at)
        .execute(&self.pool)
        .await
        .map_err(q("insert user"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes the user `name` (and so their token); `false` when there is none.
    pub async fn delete_user(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(q("delete user"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Every stored user, by name.
    pub async fn users(&self) -> Result<Vec<User>> {
        sqlx::query("SELECT name, role, created_at FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(q("list users"))?
            .iter()
            .map(row_to_user)
            .collect()
    }

    /// The user named `name`.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT name, role, created_at FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("find user by name"))?;
        row.as_ref().map(row_to_user).transpose()
    }

    /// The user whose token hashes to `token_hash`.
    pub async fn user_by_token(&self, token_hash: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT name, role, created_at FROM users WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("find user"))?;
        row.as_ref().map(row_to_user).transpose()
    }
}
