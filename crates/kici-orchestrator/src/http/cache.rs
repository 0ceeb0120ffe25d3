//! `POST /api/v1/cache/{restore,save,commit}`: the cache API jobs reach with the grant their
//! dispatch carries (`Authorization: Bearer <grant>`); the grant names the job and its
//! repository, so a job only ever sees its own repository's caches. What the calls do is
//! `crate::user_cache`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use kici_engine::protocol::{CacheRestoreAnswer, CacheRestoreRequest, CacheSaveAnswer, CacheSaveRequest};

use super::error::ApiError;
use crate::grants::Claims;
use crate::state::Shared;
use crate::user_cache::{self, CacheError};

fn claims(state: &Shared, headers: &HeaderMap) -> Result<Claims, ApiError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the cache API needs the grant a job's dispatch carries, as a bearer token",
            )
        })?;
    crate::grants::verify(&state.grant_keys, token.trim())
        .map_err(|reason| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", reason))
}

fn answer(err: CacheError) -> ApiError {
    match err {
        CacheError::Refused(message) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message),
        CacheError::Quota(message) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded", message),
        CacheError::Store(err) => ApiError::from(err),
        CacheError::Storage(err) => {
            tracing::error!(error = %err, "cache storage failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "object storage failed (details are in the orchestrator log)",
            )
        }
    }
}

pub async fn restore(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(request): Json<CacheRestoreRequest>,
) -> Result<Json<CacheRestoreAnswer>, ApiError> {
    let claims = claims(&state, &headers)?;
    user_cache::restore(&state, &claims, &request)
        .await
        .map(Json)
        .map_err(answer)
}

pub async fn save(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(request): Json<CacheSaveRequest>,
) -> Result<Json<CacheSaveAnswer>, ApiError> {
    let claims = claims(&state, &headers)?;
    user_cache::reserve(&state, &claims, &request)
        .await
        .map(Json)
        .map_err(answer)
}

pub async fn commit(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(request): Json<CacheSaveRequest>,
) -> Result<Json<CacheSaveAnswer>, ApiError> {
    let claims = claims(&state, &headers)?;
    user_cache::commit(&state, &claims, &request)
        .await
        .map(Json)
        .map_err(answer)
}
