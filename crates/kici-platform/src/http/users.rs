//! `POST /api/v1/users {name, role: owner|member}` (owners only): creates a dashboard user and
//! answers their token once (`kici_pat_…`); only its hash is kept.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Principal, random_hex};
use super::error::{ApiError, ApiResult};
use crate::cache::{Role, User};
use crate::state::{Shared, now_ms};

#[derive(Debug, Deserialize)]
pub struct NewUser {
    name: String,
    role: String,
}

pub async fn create(
    State(state): State<Shared>,
    axum::Extension(principal): axum::Extension<Principal>,
    Json(body): Json<NewUser>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if principal.role != Role::Owner {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Insufficient permission: users.admin needed",
        ));
    }
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
        Json(json!({ "name": name, "role": role.as_str(), "token": token })),
    ))
}
