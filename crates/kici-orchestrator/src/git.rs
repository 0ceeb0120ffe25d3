//! Reading a repository with the `git` CLI: the lock file at a commit, and a local mirror of a
//! forge repository for generic sources. Every call has a timeout.
//!
//! A source's clone credentials reach git as `kici_engine::git_auth` says: never in the URL,
//! the command line, the mirror's `config`, or an error text. Error texts show URLs without
//! their userinfo.

use std::borrow::Cow;
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
    /// Git reads no repository another user owns.
    #[error(
        "git will not read {repo}: it belongs to another user (\"dubious ownership\") (hint: trust it with `git config --system --add safe.directory {repo}`, or let the orchestrator's user own it)"
    )]
    NotTrusted { repo: String },
}

/// The lock file at a commit, or the fact that there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockFetch {
    Found(String),
    /// Larger than [`MAX_LOCK_FILE_BYTES`]: not read.
    TooLarge(usize),
    Missing,
}

/// What a source authenticates its clones with. `Debug` hides the password.
pub use kici_engine::git_auth::GitCredentials as Credentials;
use kici_engine::git_auth::credential_env;

/// Secrets of the orchestrator's own environment that git and what it runs (hooks of a local
/// repository, `core.fsmonitor`, helpers) never need.
const WITHHELD_ENV: [&str; 6] = [
    "KICI_SECRET_KEY",
    "KICI_SECRET_KEY_OLD",
    "KICI_BOOTSTRAP_ADMIN_TOKEN",
    "KICI_PLATFORM_TOKEN",
    "KICI_METRICS_TOKEN",
    "KICI_DATABASE_URL",
];

async fn git(repo: &Path, args: &[&str]) -> Result<String, GitError> {
    git_as(repo, args, None).await
}

/// Clone credentials and, for an SSH key, the `known_hosts` file the server's key is checked
/// against.
type Auth<'a> = Option<(&'a Credentials, &'a Path)>;

async fn git_as(repo: &Path, args: &[&str], auth: Auth<'_>) -> Result<String, GitError> {
    git_bytes(repo, args, auth)
        .await
        .map(|stdout| String::from_utf8_lossy(&stdout).into_owned())
}

/// `GIT_SSH_COMMAND` for an SSH key: the key in a 0600 file removed when the returned path is
/// dropped, and the known hosts written when pinned (else kept in the file from the first
/// clone on: `accept-new`).
fn ssh_setup(
    key: &str,
    credentials: &Credentials,
    known_hosts: &Path,
) -> std::io::Result<(String, tempfile::TempPath)> {
    use std::io::Write as _;
    let mut file = tempfile::NamedTempFile::new()?;
    file.write_all(key.trim_end().as_bytes())?;
    file.write_all(b"\n")?;
    let key_file = file.into_temp_path();
    if let Some(pinned) = &credentials.known_hosts {
        std::fs::write(known_hosts, format!("{}\n", pinned.trim_end()))?;
    }
    let command = kici_engine::git_auth::ssh_command(
        &key_file.display().to_string(),
        &known_hosts.display().to_string(),
        credentials.known_hosts.is_some(),
    );
    Ok((command, key_file))
}

/// `git` without the orchestrator's secrets in its environment, never prompting, killed when
/// dropped.
pub(crate) fn command() -> tokio::process::Command {
    let mut command = tokio::process::Command::new("git");
    command.env("GIT_TERMINAL_PROMPT", "0").kill_on_drop(true);
    for name in WITHHELD_ENV {
        command.env_remove(name);
    }
    command
}

async fn git_bytes(repo: &Path, args: &[&str], auth: Auth<'_>) -> Result<Vec<u8>, GitError> {
    let credentials = auth.map(|(credentials, _)| credentials);
    let joined = redact_userinfo(&args.join(" ")).into_owned();
    let mut command = command();
    command
        .arg("-C")
        .arg(repo)
        .args(args)
        .stdin(std::process::Stdio::null());
    let mut _key_file = None;
    match auth {
        Some((credentials, known_hosts)) if let Some(key) = &credentials.ssh_key => {
            let (ssh, key_file) = ssh_setup(key, credentials, known_hosts).map_err(GitError::Spawn)?;
            command.env("GIT_SSH_COMMAND", ssh);
            _key_file = Some(key_file);
        }
        Some((credentials, _)) => {
            command.envs(credential_env(credentials));
        }
        None => {}
    }
    let output = tokio::time::timeout(GIT_TIMEOUT, command.output())
        .await
        .map_err(|_| GitError::Timeout { args: joined.clone() })?
        .map_err(GitError::Spawn)?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let mut stderr = redact_userinfo(stderr.trim()).into_owned();
        if let Some(credentials) = credentials.filter(|c| !c.password.is_empty()) {
            stderr = stderr.replace(&credentials.password, "***");
        }
        Err(GitError::Failed { args: joined, stderr })
    }
}

/// The userinfo of a URL (`user:pass` in `https://user:pass@host/…`), if it has one.
pub fn url_userinfo(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (userinfo, _) = rest[..authority_end].rsplit_once('@')?;
    Some(userinfo)
}

/// `text` with the userinfo of every URL in it replaced by `***`
/// (`https://user:pass@host/x` → `https://***@host/x`).
pub fn redact_userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace() || matches!(c, '\'' | '"' | '`'))
            .unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(userinfo_end) => {
                out.push_str("***");
                rest = &tail[userinfo_end..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// `paths` at commit `sha` of the repository at `repo`, as a gzipped tar (`git archive`).
pub async fn archive(repo: &Path, sha: &str, paths: &[String]) -> Result<Vec<u8>, GitError> {
    // Checked for shape, so git never reads it as an option.
    if !(sha.len() >= 7 && sha.len() <= 64 && sha.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(GitError::UnknownCommit {
            repo: repo.display().to_string(),
            sha: kici_engine::excerpt::excerpt(sha).into_owned(),
        });
    }
    let mut args = vec!["archive", "--format=tar.gz", sha, "--"];
    args.extend(paths.iter().map(String::as_str));
    git_bytes(repo, &args, None).await
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
        // Git reads no repository another user owns: that is no answer about the commit.
        Err(GitError::Failed { stderr, .. }) if stderr.contains("dubious ownership") => Err(GitError::NotTrusted {
            repo: repo.display().to_string(),
        }),
        Err(GitError::Failed { .. }) => Ok(false),
        Err(other) => Err(other),
    }
}

/// Whether `head` changes anything under `dir` since it forked from `base` (`git diff
/// base...head -- dir`). Both commits are checked for shape first.
pub async fn changes_under(repo: &Path, base: &str, head: &str, dir: &str) -> Result<bool, GitError> {
    let hex = |sha: &str| !sha.is_empty() && sha.len() <= 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(base) || !hex(head) {
        return Err(GitError::Failed {
            args: "diff".to_string(),
            stderr: format!("`{base}` or `{head}` is not a commit id"),
        });
    }
    let range = format!("{base}...{head}");
    let changed = git(repo, &["diff", "--name-only", &range, "--", dir]).await?;
    Ok(!changed.trim().is_empty())
}

/// The commit a branch, tag or full ref names in `repo` (`main`, `refs/heads/main`, a sha),
/// or `None` when it names none. Checked for shape first, so git never reads it as an option.
pub async fn resolve_ref(repo: &Path, name: &str) -> Result<Option<String>, GitError> {
    if name.is_empty() || name.starts_with('-') || name.len() > 1024 || name.contains("..") {
        return Ok(None);
    }
    let commit = format!("{name}^{{commit}}");
    match git(repo, &["rev-parse", "--verify", "-q", &commit]).await {
        Ok(sha) => Ok(Some(sha.trim().to_string())),
        Err(GitError::Failed { .. }) => Ok(None),
        Err(other) => Err(other),
    }
}

/// The branch `HEAD` points at in `repo` (a bare repository's or a mirror's default branch).
pub async fn head_branch(repo: &Path) -> Result<Option<String>, GitError> {
    match git(repo, &["symbolic-ref", "-q", "--short", "HEAD"]).await {
        Ok(branch) => Ok(Some(branch.trim().to_string()).filter(|b| !b.is_empty())),
        Err(GitError::Failed { .. }) => Ok(None),
        Err(other) => Err(other),
    }
}

/// The file under a source's mirror directory holding the SSH host keys it trusts.
pub const KNOWN_HOSTS: &str = "known_hosts";

/// A bare mirror of `url` under `cache_dir`, fetched so that `sha` is present (`None`: fetched
/// now, to read the current branches), with `credentials` when the server asks for them.
pub async fn mirror(
    cache_dir: &Path,
    url: &str,
    sha: Option<&str>,
    credentials: Option<&Credentials>,
) -> Result<PathBuf, GitError> {
    let dir = cache_dir.join(format!("{}.git", &kici_engine::hash::sha256_hex(url.as_bytes())[..16]));
    let known_hosts = cache_dir.join(KNOWN_HOSTS);
    let auth = credentials.map(|c| (c, known_hosts.as_path()));
    let present = |sha: &str| {
        let object = format!("{sha}^{{commit}}");
        let dir = dir.clone();
        async move { git(&dir, &["cat-file", "-e", &object]).await.is_ok() }
    };
    if !dir.join("HEAD").exists() {
        tokio::fs::create_dir_all(cache_dir).await.map_err(GitError::Spawn)?;
        let target = dir.display().to_string();
        git_as(cache_dir, &["clone", "--quiet", "--mirror", url, &target], auth).await?;
    } else if match sha {
        Some(sha) => !present(sha).await,
        None => true,
    } {
        git_as(&dir, &["fetch", "--quiet", "--prune", "origin", "+refs/*:refs/*"], auth).await?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_found_and_redacted() {
        assert_eq!(url_userinfo("https://u:p@forge.example/a/b.git"), Some("u:p"));
        assert_eq!(url_userinfo("https://tok@forge.example/a.git"), Some("tok"));
        assert_eq!(url_userinfo("https://forge.example/a@b.git"), None);
        assert_eq!(url_userinfo("git@forge.example:a/b.git"), None);
        assert_eq!(url_userinfo("file:///srv/repo.git"), None);
        let check = |text: &str, expected: &str| assert_eq!(redact_userinfo(text), expected, "{text}");
        check("https://forge.example/a.git", "https://forge.example/a.git");
        check(
            "git clone --mirror https://u:p%40ss@forge.example/a.git /tmp/x",
            "git clone --mirror https://***@forge.example/a.git /tmp/x",
        );
        check(
            "fatal: could not read from 'https://tok@h/a' and 'http://x:y@h2'",
            "fatal: could not read from 'https://***@h/a' and 'http://***@h2'",
        );
        check("mail me@host, see https://h/a@b", "mail me@host, see https://h/a@b");
    }

    /// The credential helper gives git the credentials from its environment only, for a
    /// clone whose URL, arguments and resulting config hold none of them.
    #[tokio::test]
    async fn the_credential_helper_answers_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = Credentials::password("ci-bot", "pa ss'w\"ord");
        let mut child = tokio::process::Command::new("git")
            .args(["credential", "fill"])
            .envs(credential_env(&credentials))
            .env("GIT_TERMINAL_PROMPT", "0")
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        {
            use tokio::io::AsyncWriteExt as _;
            let mut stdin = child.stdin.take().unwrap();
            stdin
                .write_all(b"protocol=https\nhost=forge.example\n\n")
                .await
                .unwrap();
        }
        let output = child.wait_with_output().await.unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("username=ci-bot\n"), "{text}");
        assert!(text.contains("password=pa ss'w\"ord\n"), "{text}");

        // A failed clone's error names neither the password nor a userinfo.
        let err = mirror(
            dir.path(),
            "http://127.0.0.1:9/none.git",
            Some("abc"),
            Some(&credentials),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(!err.contains("pa ss"), "{err}");
    }
}
