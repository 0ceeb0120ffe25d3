//! Reading a repository with the `git` CLI: the lock file at a commit, and a local mirror of a
//! forge repository for generic sources. Every call has a timeout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kici_engine::lockfile::{LOCK_FILE_NAME, MAX_LOCK_FILE_BYTES};

/// How long one git command may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("failed to run git: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("git {args} timed out after {}s", GIT_TIMEOUT.as_secs())]
    Timeout { args: String },
    #[error("commit {sha} is not in {repo}")]
    UnknownCommit { repo: String, sha: String },
    #[error("git {args} failed: {stderr}")]
    Failed { args: String, stderr: String },
}

/// The lock file at a commit, or the fact that there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockFetch {
    Found(String),
    /// Larger than [`MAX_LOCK_FILE_BYTES`]: not read.
    TooLarge(usize),
    Missing,
}

async fn git(repo: &Path, args: &[&str]) -> Result<String, GitError> {
    let joined = args.join(" ");
    let output = tokio::time::timeout(
        GIT_TIMEOUT,
        tokio::process::Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| GitError::Timeout { args: joined.clone() })?
    .map_err(GitError::Spawn)?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(GitError::Failed {
            args: joined,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

/// `.kici/kici.lock.json` at `sha` in the repository at `repo`. Two git processes when the
/// file is there (its size first, so an oversized one is never read); two more to tell a
/// missing file from an unknown commit when it is not.
pub async fn read_lock(repo: &Path, sha: &str) -> Result<LockFetch, GitError> {
    let blob = format!("{sha}:.kici/{LOCK_FILE_NAME}");
    match git(repo, &["cat-file", "-s", &blob]).await {
        Ok(size) => {
            let size: usize = size.trim().parse().unwrap_or(usize::MAX);
            if size > MAX_LOCK_FILE_BYTES {
                return Ok(LockFetch::TooLarge(size));
            }
            return git(repo, &["cat-file", "blob", &blob]).await.map(LockFetch::Found);
        }
        Err(GitError::Failed { .. }) => {}
        Err(other) => return Err(other),
    }
    let commit = format!("{sha}^{{commit}}");
    if git(repo, &["rev-parse", "--verify", "-q", &commit]).await.is_err() {
        return Err(GitError::UnknownCommit {
            repo: repo.display().to_string(),
            sha: sha.to_string(),
        });
    }
    let path = format!(".kici/{LOCK_FILE_NAME}");
    let listed = git(repo, &["ls-tree", "--name-only", sha, "--", &path]).await?;
    if listed.trim().is_empty() {
        Ok(LockFetch::Missing)
    } else {
        // The file is there but could not be read a moment ago: report git's own error.
        git(repo, &["cat-file", "blob", &blob]).await.map(LockFetch::Found)
    }
}

/// Whether commit `sha` is `git_ref`'s tip or one of its ancestors in `repo`. Both are checked
/// for shape first, so neither can be read by git as an option.
pub async fn ref_contains(repo: &Path, git_ref: &str, sha: &str) -> Result<bool, GitError> {
    let hex = !sha.is_empty() && sha.len() <= 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
    let named = git_ref.starts_with("refs/") && git_ref.len() <= 1024;
    if !hex || !named {
        return Ok(false);
    }
    match git(repo, &["merge-base", "--is-ancestor", sha, git_ref]).await {
        Ok(_) => Ok(true),
        Err(GitError::Failed { .. }) => Ok(false),
        Err(other) => Err(other),
    }
}

/// A bare mirror of `url` under `cache_dir`, fetched so that `sha` is present.
pub async fn mirror(cache_dir: &Path, url: &str, sha: &str) -> Result<PathBuf, GitError> {
    let dir = cache_dir.join(format!("{}.git", &kici_engine::hash::sha256_hex(url.as_bytes())[..16]));
    if !dir.join("HEAD").exists() {
        tokio::fs::create_dir_all(cache_dir).await.map_err(GitError::Spawn)?;
        let target = dir.display().to_string();
        git(cache_dir, &["clone", "--quiet", "--mirror", url, &target]).await?;
    } else if git(&dir, &["cat-file", "-e", &format!("{sha}^{{commit}}")])
        .await
        .is_err()
    {
        git(&dir, &["fetch", "--quiet", "--prune", "origin", "+refs/*:refs/*"]).await?;
    }
    Ok(dir)
}
