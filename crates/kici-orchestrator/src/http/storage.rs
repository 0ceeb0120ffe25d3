//! `GET|PUT /storage/<key>?expires=&signature=`: the filesystem storage backend's signed URLs
//! (`crate::storage`). The signature is the authorization: it names the method, the key and
//! the expiry. A `PUT` writes a temporary file and renames it into place, so a `GET` never
//! serves a partial object.

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::ApiError;
use crate::clock::now_ms;
use crate::state::Shared;
use crate::storage::Access;

/// Largest object a signed `PUT` may write (a dependency tarball).
pub const MAX_OBJECT_BYTES: usize = 1024 * 1024 * 1024;

#[derive(Debug, Deserialize)]
pub struct Signed {
    expires: i64,
    signature: String,
}

fn refused(reason: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "bad_signature",
        format!("this storage URL is not valid: {reason} (hint: ask the orchestrator for a new one)"),
    )
}

pub async fn get(
    State(state): State<Shared>,
    Path(key): Path<String>,
    Query(signed): Query<Signed>,
) -> Result<Response, ApiError> {
    let path = state
        .storage
        .check_signature(Access::Get, &key, signed.expires, &signed.signature, now_ms())
        .map_err(refused)?;
    match tokio::fs::read(&path).await {
        Ok(bytes) => Ok((StatusCode::OK, Body::from(bytes)).into_response()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            Err(ApiError::not_found(format!("no object `{key}`")))
        }
        Err(err) => {
            tracing::error!(key = %key, error = %err, "cannot read a stored object");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error (details are in the orchestrator log)",
            ))
        }
    }
}

pub async fn put(
    State(state): State<Shared>,
    Path(key): Path<String>,
    Query(signed): Query<Signed>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let path = state
        .storage
        .check_signature(Access::Put, &key, signed.expires, &signed.signature, now_ms())
        .map_err(refused)?;
    let written = async {
        let dir = path.parent().expect("a key has a parent under the root");
        tokio::fs::create_dir_all(dir).await?;
        let temporary = dir.join(format!(".{}.partial", crate::ids::new_id()));
        tokio::fs::write(&temporary, &body).await?;
        tokio::fs::rename(&temporary, &path).await
    }
    .await;
    written.map_err(|err| {
        tracing::error!(key = %key, error = %err, "cannot write a stored object");
        ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "storage_failed",
            format!("the object could not be stored: {err}"),
        )
    })?;
    Ok(StatusCode::OK)
}

/// The body limit of the storage routes.
pub fn body_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(MAX_OBJECT_BYTES)
}
