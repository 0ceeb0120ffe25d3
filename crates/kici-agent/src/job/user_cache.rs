//! The runner's cache requests (`cache` options, `ctx.cache`), carried out by the agent with
//! the grant the dispatch holds: the orchestrator's cache API says where an archive is (or
//! goes), the agent moves the bytes through signed URLs and packs or unpacks the paths.
//!
//! An archive holds `workspace/<path>` for paths in the checkout and `home/<path>` for `~/`
//! paths. A restore checks the archive's SHA-256 before unpacking anything, unpacks into a
//! staging directory (the `tar` crate skips entries that would land outside it) and then moves
//! the files into place, so a broken archive leaves the checkout as it was.

use std::path::{Path, PathBuf};

use kici_engine::cache::{CacheRoot, parse_path};
use kici_engine::protocol::{CacheGrant, CacheRestoreAnswer, CacheRestoreRequest, CacheSaveAnswer, CacheSaveRequest};
use kici_engine::runner_protocol::{CacheOp, CacheRequest, CacheResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::transfer::Transfer;

/// What a job's cache requests need.
#[derive(Clone)]
pub(super) struct CacheClient {
    grant: Option<CacheGrant>,
    work_dir: PathBuf,
    home: Option<PathBuf>,
    transfer: Transfer,
}

impl CacheClient {
    pub fn new(grant: Option<CacheGrant>, work_dir: &Path, home: Option<PathBuf>, transfer: Transfer) -> CacheClient {
        CacheClient {
            grant,
            work_dir: work_dir.to_path_buf(),
            home,
            transfer,
        }
    }

    /// Carries out one request; failures are the answer's `error`.
    pub async fn handle(&self, request: CacheRequest) -> CacheResponse {
        let id = request.request_id.clone();
        match request.op {
            CacheOp::Restore => match self.restore(&request).await {
                Ok(matched) => CacheResponse::restored(&id, matched),
                Err(error) => CacheResponse::error(&id, error),
            },
            CacheOp::Save => match self.save(&request).await {
                Ok(outcome) => CacheResponse::saved(&id, outcome),
                Err(error) => CacheResponse::error(&id, error),
            },
        }
    }

    fn grant(&self) -> Result<&CacheGrant, String> {
        self.grant.as_ref().ok_or_else(|| {
            "this job was sent without access to the cache API (its orchestrator keeps no caches)".to_string()
        })
    }

    /// A URL of the cache API's answer: the filesystem store's are paths on the orchestrator.
    fn absolute(&self, url: &str) -> Result<String, String> {
        Ok(kici_engine::protocol::resolve_orchestrator_url(&self.grant()?.url, url))
    }

    fn root(&self, root: CacheRoot) -> Result<&Path, String> {
        match root {
            CacheRoot::Workspace => Ok(&self.work_dir),
            CacheRoot::Home => self
                .home
                .as_deref()
                .ok_or_else(|| "a `~/` cache path needs HOME, which the agent does not have".to_string()),
        }
    }

    async fn call<B: Serialize, A: DeserializeOwned>(&self, path: &str, body: &B) -> Result<A, String> {
        let grant = self.grant()?;
        let url = format!("{}/api/v1/cache/{path}", grant.url.trim_end_matches('/'));
        let response = self
            .transfer
            .client(&url)
            .post(&url)
            .bearer_auth(&grant.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body).map_err(|err| err.to_string())?)
            .send()
            .await
            .map_err(|err| format!("the orchestrator's cache API is unreachable: {}", err.without_url()))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| format!("the orchestrator answered {status}"));
            return Err(message);
        }
        serde_json::from_str(&text).map_err(|err| format!("unreadable answer from the cache API: {err}"))
    }

    /// The matched key and the archive's size on a hit.
    async fn restore(&self, request: &CacheRequest) -> Result<Option<(String, u64)>, String> {
        let answer: CacheRestoreAnswer = self
            .call(
                "restore",
                &CacheRestoreRequest {
                    key: request.key.clone(),
                    restore_keys: request.restore_keys.clone(),
                },
            )
            .await?;
        let (true, Some(matched), Some(url), Some(expected)) =
            (answer.hit, answer.matched_key, answer.download_url, answer.sha256)
        else {
            return Ok(None);
        };
        let bytes = self.transfer.download(&self.absolute(&url)?).await?;
        let actual = sha256_hex(&bytes);
        if actual != expected {
            return Err(format!(
                "Cache archive hash mismatch: expected {expected}, got {actual}; nothing was restored"
            ));
        }
        let size = bytes.len() as u64;
        let roots = [
            (CacheRoot::Workspace, Some(self.work_dir.clone())),
            (CacheRoot::Home, self.home.clone()),
        ];
        let staging_parent = self.work_dir.clone();
        tokio::task::spawn_blocking(move || unpack(&bytes, &staging_parent, &roots))
            .await
            .map_err(|err| err.to_string())??;
        Ok(Some((matched, size)))
    }

    /// The archive's size when stored; else why not (`exists`, or no path exists).
    async fn save(&self, request: &CacheRequest) -> Result<Result<u64, String>, String> {
        let mut sources = Vec::new();
        for path in &request.paths {
            let (root, relative) = parse_path(path)?;
            let source = self.root(root)?.join(relative);
            if std::fs::symlink_metadata(&source).is_ok() {
                sources.push((format!("{}/{relative}", root.archive_dir()), source));
            }
        }
        if sources.is_empty() {
            return Ok(Err(format!("none of its paths exist ({})", request.paths.join(", "))));
        }
        let archive = tokio::task::spawn_blocking(move || pack(&sources))
            .await
            .map_err(|err| err.to_string())?
            .map_err(|err| format!("packing failed: {err}"))?;
        let mut save = CacheSaveRequest {
            key: request.key.clone(),
            size_bytes: archive.len() as u64,
            sha256: sha256_hex(&archive),
            object_key: None,
        };
        let reserved: CacheSaveAnswer = self.call("save", &save).await?;
        let (Some(upload), Some(object_key)) = (reserved.upload_url, reserved.object_key) else {
            return Ok(Err("exists".to_string()));
        };
        let size = save.size_bytes;
        self.transfer.upload(&self.absolute(&upload)?, archive).await?;
        save.object_key = Some(object_key);
        let committed: CacheSaveAnswer = self.call("commit", &save).await?;
        Ok(if committed.saved {
            Ok(size)
        } else {
            Err("exists".to_string())
        })
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A gzipped tar of `(name in the archive, path)` pairs; symbolic links are kept as links.
fn pack(sources: &[(String, PathBuf)]) -> std::io::Result<Vec<u8>> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    builder.follow_symlinks(false);
    for (name, path) in sources {
        if std::fs::symlink_metadata(path)?.is_dir() {
            builder.append_dir_all(name, path)?;
        } else {
            builder.append_path_with_name(path, name)?;
        }
    }
    builder.into_inner()?.finish()
}

/// Unpacks into a staging directory under `staging_parent`, then moves each root's tree into
/// its place, replacing what is there.
fn unpack(bytes: &[u8], staging_parent: &Path, roots: &[(CacheRoot, Option<PathBuf>)]) -> Result<(), String> {
    let staging = tempfile::Builder::new()
        .prefix(".kici-cache-")
        .tempdir_in(staging_parent)
        .map_err(|err| format!("cannot stage the restore: {err}"))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    archive.set_preserve_permissions(true);
    archive
        .unpack(staging.path())
        .map_err(|err| format!("unpacking failed: {err}"))?;
    for (root, target) in roots {
        let staged = staging.path().join(root.archive_dir());
        if !staged.exists() {
            continue;
        }
        let Some(target) = target else {
            return Err("the archive holds `~/` paths and the agent has no HOME".to_string());
        };
        merge(&staged, target).map_err(|err| format!("cannot move the restored files into place: {err}"))?;
    }
    Ok(())
}

/// Moves `from`'s entries into `to`, directory by directory; files and links replace files.
fn merge(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        let existing = std::fs::symlink_metadata(&target).ok();
        if kind.is_dir() {
            if existing.as_ref().is_some_and(|m| !m.is_dir()) {
                std::fs::remove_file(&target)?;
            }
            merge(&source, &target)?;
            continue;
        }
        match existing {
            Some(meta) if meta.is_dir() => std::fs::remove_dir_all(&target)?,
            Some(_) => std::fs::remove_file(&target)?,
            None => {}
        }
        if std::fs::rename(&source, &target).is_err() {
            // Another filesystem (the home directory): copy instead.
            if kind.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(&source)?, &target)?;
            } else {
                std::fs::copy(&source, &target)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_restores_into_the_checkout_and_the_home_directory() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        let home = dir.path().join("home");
        std::fs::create_dir_all(work.join("tools/bin")).unwrap();
        std::fs::write(work.join("tools/bin/jq"), "binary").unwrap();
        std::fs::create_dir_all(home.join(".cache/mise")).unwrap();
        std::fs::write(home.join(".cache/mise/state"), "warm").unwrap();
        let archive = pack(&[
            ("workspace/tools".to_string(), work.join("tools")),
            ("home/.cache/mise".to_string(), home.join(".cache/mise")),
        ])
        .unwrap();

        let other = dir.path().join("other");
        let other_home = dir.path().join("other-home");
        std::fs::create_dir_all(other.join("tools")).unwrap();
        std::fs::write(other.join("tools/stale"), "kept").unwrap();
        let roots = [
            (CacheRoot::Workspace, Some(other.clone())),
            (CacheRoot::Home, Some(other_home.clone())),
        ];
        unpack(&archive, &other, &roots).unwrap();
        assert_eq!(std::fs::read_to_string(other.join("tools/bin/jq")).unwrap(), "binary");
        assert_eq!(std::fs::read_to_string(other.join("tools/stale")).unwrap(), "kept");
        assert_eq!(
            std::fs::read_to_string(other_home.join(".cache/mise/state")).unwrap(),
            "warm"
        );
        // The staging directory is gone.
        let left: Vec<_> = std::fs::read_dir(&other)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(left, ["tools"]);
    }

    #[test]
    fn a_broken_archive_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let roots = [(CacheRoot::Workspace, Some(dir.path().to_path_buf()))];
        let err = unpack(b"not a tarball", dir.path(), &roots).unwrap_err();
        assert!(err.starts_with("unpacking failed: "), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
