//! Caches authors keep between runs (`cache` on a job or an init command, `ctx.cache`), stored
//! in object storage so a cache saved on one agent is restored on another.
//!
//! A job reaches the cache API with the grant its dispatch carries (`crate::grants`): a token
//! naming the job, its run and its repository.
//! Caches belong to an organization's repository; the first save of a key wins. A save is two
//! calls: `reserve` checks the key is free and the organization's quota
//! (`KICI_USER_CACHE_QUOTA_BYTES`) has room and signs an upload URL for a fresh object;
//! `commit` checks the object is there and records it. Only recorded entries are restored, so
//! a half-written archive is never served. Entries unused for `KICI_USER_CACHE_TTL_MS` are
//! deleted by the sweeper with their objects.

use std::time::Duration;

use kici_engine::api::RunEventType;
use kici_engine::cache::quota_exceeded;
use kici_engine::hash::sha256_hex;
use kici_engine::protocol::{CacheRestoreAnswer, CacheRestoreRequest, CacheSaveAnswer, CacheSaveRequest};
use kici_store::{StoreError, UserCache};

use crate::clock::now_ms;
use crate::grants::Claims;
use crate::scoped_secrets::DEFAULT_ORG;
use crate::state::Shared;
use crate::storage::Access;

/// How long the URLs a grant yields stay valid.
const URL_TTL: Duration = Duration::from_secs(30 * 60);

/// Why a cache call failed: the caller's mistake (answered as is) or the storage's.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Quota(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

fn check_key(key: &str) -> Result<(), CacheError> {
    kici_engine::cache::validate_key("key", key).map_err(CacheError::Refused)
}

/// Where a repository's archives of `key` are stored: the repository and the key hashed, so
/// any name is a safe object key.
fn key_dir(claims: &Claims, key: &str) -> String {
    format!(
        "cache/{DEFAULT_ORG}/{}/{}",
        &sha256_hex(claims.repo.as_bytes())[..16],
        sha256_hex(key.as_bytes())
    )
}

async fn record(state: &Shared, claims: &Claims, event_type: RunEventType, metadata: serde_json::Value) {
    let event = kici_store::NewRunEvent {
        event_id: crate::ids::new_id(),
        run_id: claims.run.clone(),
        job_id: Some(claims.sub.clone()),
        event_type,
        source_service: "orchestrator".to_string(),
        timestamp_ms: now_ms(),
        metadata,
    };
    if let Err(err) = state.timeline.record(event).await {
        tracing::warn!(jobId = %claims.sub, error = %err, "cannot record a cache event");
    }
}

/// The exact key, else the newest entry per prefix; a hit carries a signed download URL.
pub async fn restore(
    state: &Shared,
    claims: &Claims,
    request: &CacheRestoreRequest,
) -> Result<CacheRestoreAnswer, CacheError> {
    check_key(&request.key)?;
    for prefix in &request.restore_keys {
        check_key(prefix)?;
    }
    let now = now_ms();
    let found = state
        .store
        .find_user_cache(DEFAULT_ORG, &claims.repo, &request.key, &request.restore_keys, now)
        .await?;
    let answer = match found {
        None => CacheRestoreAnswer {
            hit: false,
            matched_key: None,
            download_url: None,
            sha256: None,
            size_bytes: None,
        },
        Some(cache) => CacheRestoreAnswer {
            hit: true,
            download_url: Some(
                state
                    .storage
                    .signed_url(Access::Get, &cache.object_key, URL_TTL, now)
                    .await?,
            ),
            sha256: Some(cache.sha256),
            size_bytes: Some(cache.size_bytes.max(0) as u64),
            matched_key: Some(cache.cache_key),
        },
    };
    let outcome = if answer.hit { "hit" } else { "miss" };
    record(
        state,
        claims,
        RunEventType::CacheRestore,
        serde_json::json!({"key": request.key, "outcome": outcome, "matchedKey": answer.matched_key, "bytes": answer.size_bytes}),
    )
    .await;
    Ok(answer)
}

fn check_quota(state: &Shared, key: &str, size: u64, used: u64) -> Result<(), CacheError> {
    let quota = state.config.user_cache_quota_bytes;
    if used.saturating_add(size) > quota {
        return Err(CacheError::Quota(quota_exceeded(key, size, used, quota)));
    }
    Ok(())
}

/// A save's key and checksum as the API accepts them.
fn check_save(request: &CacheSaveRequest) -> Result<(), CacheError> {
    check_key(&request.key)?;
    let sha256 = &request.sha256;
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CacheError::Refused(
            "sha256 must be 64 hexadecimal characters".to_string(),
        ));
    }
    Ok(())
}

/// The first step of a save: where to upload, unless the key is taken or the quota is full.
pub async fn reserve(
    state: &Shared,
    claims: &Claims,
    request: &CacheSaveRequest,
) -> Result<CacheSaveAnswer, CacheError> {
    check_save(request)?;
    if state
        .store
        .user_cache_exists(DEFAULT_ORG, &claims.repo, &request.key)
        .await?
    {
        return Ok(CacheSaveAnswer::exists());
    }
    let used = state.store.user_cache_usage(DEFAULT_ORG).await?;
    check_quota(state, &request.key, request.size_bytes, used)?;
    // Each save writes its own object: two jobs saving one key never mix their archives.
    let object_key = format!("{}/{}.tar.gz", key_dir(claims, &request.key), crate::ids::new_id());
    let upload_url = state
        .storage
        .signed_url(Access::Put, &object_key, URL_TTL, now_ms())
        .await?;
    Ok(CacheSaveAnswer {
        exists: false,
        saved: false,
        upload_url: Some(upload_url),
        object_key: Some(object_key),
    })
}

/// The second step: the uploaded archive is recorded, unless another save of the key won.
pub async fn commit(
    state: &Shared,
    claims: &Claims,
    request: &CacheSaveRequest,
) -> Result<CacheSaveAnswer, CacheError> {
    check_save(request)?;
    let object_key = request.object_key.clone().unwrap_or_default();
    if !object_key.starts_with(&format!("{}/", key_dir(claims, &request.key))) {
        return Err(CacheError::Refused(
            "objectKey is not one this job was given for this key".to_string(),
        ));
    }
    match state.storage.size(&object_key).await? {
        Some(size) if size == request.size_bytes => {}
        Some(size) => {
            delete_object(state, &object_key).await;
            return Err(CacheError::Refused(format!(
                "the uploaded archive has {size} bytes, not the {} announced",
                request.size_bytes
            )));
        }
        None => {
            return Err(CacheError::Refused(format!(
                "no archive was uploaded for cache '{}'",
                kici_engine::excerpt::excerpt(&request.key)
            )));
        }
    }
    let used = state.store.user_cache_usage(DEFAULT_ORG).await?;
    if let Err(err) = check_quota(state, &request.key, request.size_bytes, used) {
        delete_object(state, &object_key).await;
        return Err(err);
    }
    let now = now_ms();
    let saved = state
        .store
        .insert_user_cache(&UserCache {
            org_id: DEFAULT_ORG.to_string(),
            scope: claims.repo.clone(),
            cache_key: request.key.clone(),
            object_key: object_key.clone(),
            sha256: request.sha256.to_ascii_lowercase(),
            size_bytes: request.size_bytes as i64,
            created_at: now,
            last_used_at: now,
        })
        .await?;
    if !saved {
        delete_object(state, &object_key).await;
    }
    record(
        state,
        claims,
        RunEventType::CacheSave,
        serde_json::json!({"key": request.key, "outcome": if saved { "saved" } else { "exists" }, "bytes": request.size_bytes}),
    )
    .await;
    Ok(CacheSaveAnswer {
        exists: !saved,
        saved,
        ..CacheSaveAnswer::exists()
    })
}

async fn delete_object(state: &Shared, key: &str) {
    if let Err(err) = state.storage.delete(key).await {
        tracing::warn!(key = %key, error = %err, "cannot delete a cache object");
    }
}

/// Deletes the caches unused for `KICI_USER_CACHE_TTL_MS`; how many.
pub async fn expire(state: &Shared) -> Result<usize, StoreError> {
    let before = now_ms() - state.config.user_cache_ttl.as_millis() as i64;
    let unused = state.store.user_caches_unused_since(before, 500).await?;
    for cache in &unused {
        if state
            .store
            .delete_user_cache(&cache.org_id, &cache.scope, &cache.cache_key)
            .await?
        {
            delete_object(state, &cache.object_key).await;
        }
    }
    if !unused.is_empty() {
        tracing::info!(count = unused.len(), "expired unused caches");
    }
    Ok(unused.len())
}
