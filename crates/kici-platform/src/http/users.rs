//! Dashboard users (owners only):
//!
//! - `GET /api/v1/users` lists them (`{users: [{name, role, createdAt}]}`, never a token).
//! - `POST /api/v1/users {name, role: owner|member}` creates one and answers their token once
//!   (`kici_pat_…`); only its hash is kept.
//! - `DELETE /api/v1/users/:name` → 204 deletes one: their token stops working and every
//!   session they signed in is ended at once (the next page asks to sign in, the next API call
//!   is 401). Live streams they already hold open run on until closed.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kici_engine::api::admin::{CreatedUser, NewUser, UserEntry, UserList};

use super::auth::Principal;
use super::error::{ApiError, ApiResult};
use crate::cache::{Role, User};
use crate::state::Shared;
use kici_telemetry::os::{now_ms, random_hex};

/// `users:admin` (owners), or 403.
pub fn require_users_admin(principal: &Principal) -> ApiResult<()> {
    if principal.role == Role::Owner {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            kici_engine::failure::insufficient_permission("users.admin"),
        ))
    }
}

pub async fn list(
    State(state): State<Shared>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> ApiResult<Json<UserList>> {
    require_users_admin(&principal)?;
    Ok(Json(UserList {
        users: user_entries(&state).await?,
    }))
}

/// The stored users as the API and the Users page show them.
pub async fn user_entries(state: &Shared) -> ApiResult<Vec<UserEntry>> {
    Ok(state
        .cache
        .users()
        .await?
        .into_iter()
        .map(|user| UserEntry {
            name: user.name,
            role: user.role.as_str().to_string(),
            created_at: user.created_at,
        })
        .collect())
}

pub async fn create(
    State(state): State<Shared>,
    axum::Extension(principal): axum::Extension<Principal>,
    Json(body): Json<NewUser>,
) -> ApiResult<(StatusCode, Json<CreatedUser>)> {
    require_users_admin(&principal)?;
    let name = body.name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::bad_request(
            "invalid_user",
            "name must be 1 to 64 characters without spaces",
        ));
    }
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_user",
            format!("unknown role `{}` (hint: owner or member)", body.role),
        )
    })?;
    let token = format!("kici_pat_{}", random_hex(48));
    let user = User {
        name: name.to_string(),
        role,
        created_at: now_ms(),
    };
    if !state
        .cache
        .insert_user(&user, &kici_engine::hash::sha256_hex(token.as_bytes()))
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "user_exists",
            format!("a user named {name} already exists"),
        ));
    }
    tracing::info!(user = %name, role = role.as_str(), createdBy = %principal.name, "user created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            name: name.to_string(),
            role: role.as_str().to_string(),
            token,
        }),
    ))
}

pub async fn delete(
    State(state): State<Shared>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    require_users_admin(&principal)?;
    // The row first: from then on their token finds no one, so no new session can start
    // (sign-in looks again after making one); then the sessions already made.
    if !state.cache.delete_user(&name).await? {
        return Err(ApiError::not_found(format!(
            "user {name} not found (hint: user names are case-sensitive)"
        )));
    }
    let ended_sessions = state.browser_sessions.end_user(&name).await?;
    tracing::info!(user = %name, deletedBy = %principal.name, endedSessions = ended_sessions, "user deleted");
    Ok(StatusCode::NO_CONTENT)
}
