//! What `source trigger-local` learns from a repository on disk: the pushed ref and commit, the
//! commit message, the default branch and the files the push changed. Every call runs `git -C
//! <repo>` with a timeout and without the `GIT_DIR`-style variables a `post-receive` hook
//! inherits, so the repository is the one named, not the hook's.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// How long one git command may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(60);

/// The "no commit" sha of git's hook protocol (a created or deleted ref).
pub const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// Variables git sets for hooks that would redirect `git -C <repo>` to another repository.
const HOOK_VARIABLES: [&str; 9] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_QUARANTINE_PATH",
];

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run git: {0} (hint: install git and put it on PATH)")]
    Spawn(std::io::Error),
    #[error("`git {args}` in `{repo}` did not finish within {}s", GIT_TIMEOUT.as_secs())]
    Timeout { args: String, repo: PathBuf },
    #[error("`git {args}` failed in `{repo}`: {stderr}")]
    Failed {
        args: String,
        repo: PathBuf,
        stderr: String,
    },
    #[error("`{repo}` is not a git repository: {stderr} (hint: check the source's path or pass --repo-path)")]
    NotARepository { repo: PathBuf, stderr: String },
    #[error("HEAD of `{0}` is detached, so there is no branch to trigger (hint: pass --ref refs/heads/<branch>)")]
    DetachedHead(PathBuf),
    #[error("`{what}` is not a commit in `{repo}` (hint: check --ref, --sha or --before)")]
    NotACommit { what: String, repo: PathBuf },
}

/// A push as GitHub would describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub git_ref: String,
    /// [`ZERO_SHA`] when the previous commit is unknown.
    pub before: String,
    pub after: String,
    pub message: String,
    /// The commit's author (`git show --format=%an`).
    pub author: String,
    pub default_branch: String,
    pub added: Vec<String>,
    pub modified: Vec<String>,
    pub removed: Vec<String>,
}

/// What to look up; `None` means "work it out from the repository".
#[derive(Debug, Clone, Default)]
pub struct PushRequest<'a> {
    pub git_ref: Option<&'a str>,
    pub sha: Option<&'a str>,
    pub before: Option<&'a str>,
}

/// `main` as `refs/heads/main`; full refs stay as they are.
pub fn full_ref(git_ref: &str) -> String {
    if git_ref.starts_with("refs/") {
        git_ref.to_string()
    } else {
        format!("refs/heads/{git_ref}")
    }
}

/// Reads the push `request` describes from the repository at `repo`.
pub async fn inspect_push(repo: &Path, request: &PushRequest<'_>) -> Result<Push, GitError> {
    ensure_repository(repo).await?;
    let git_ref = match request.git_ref.filter(|git_ref| *git_ref != "HEAD") {
        Some(git_ref) => full_ref(git_ref),
        None => head_ref(repo)
            .await?
            .ok_or_else(|| GitError::DetachedHead(repo.to_path_buf()))?,
    };
    let after = resolve_commit(repo, request.sha.unwrap_or(&git_ref)).await?;
    let before = match request.before.filter(|before| *before != ZERO_SHA) {
        Some(before) => Some(resolve_commit(repo, before).await?),
        None => None,
    };
    let message = git(repo, &["show", "-s", "--format=%B", &after])
        .await?
        .trim_end()
        .to_string();
    let author = git(repo, &["show", "-s", "--format=%an", &after])
        .await?
        .trim()
        .to_string();
    let default_branch = match head_ref(repo).await? {
        Some(head) => head.trim_start_matches("refs/heads/").to_string(),
        None => git_ref.trim_start_matches("refs/heads/").to_string(),
    };
    let changes = match &before {
        Some(before) => {
            git(
                repo,
                &[
                    "diff-tree",
                    "-r",
                    "-z",
                    "--no-commit-id",
                    "--name-status",
                    "--no-renames",
                    before,
                    &after,
                ],
            )
            .await?
        }
        None => {
            let parents = git(repo, &["rev-list", "--parents", "-n", "1", &after]).await?;
            match parents.split_whitespace().nth(1) {
                Some(parent) => {
                    git(
                        repo,
                        &[
                            "diff-tree",
                            "-r",
                            "-z",
                            "--no-commit-id",
                            "--name-status",
                            "--no-renames",
                            parent,
                            &after,
                        ],
                    )
                    .await?
                }
                None => {
                    git(
                        repo,
                        &[
                            "diff-tree",
                            "-r",
                            "-z",
                            "--root",
                            "--no-commit-id",
                            "--name-status",
                            "--no-renames",
                            &after,
                        ],
                    )
                    .await?
                }
            }
        }
    };
    let (added, modified, removed) = classify_changes(&changes);
    Ok(Push {
        git_ref,
        before: before.unwrap_or_else(|| ZERO_SHA.to_string()),
        after,
        message,
        author,
        default_branch,
        added,
        modified,
        removed,
    })
}

/// Whether `repo` is a bare repository.
pub async fn is_bare(repo: &Path) -> Result<bool, GitError> {
    ensure_repository(repo).await?;
    Ok(git(repo, &["rev-parse", "--is-bare-repository"]).await?.trim() == "true")
}

/// Checks that `repo` is a git repository (bare or not).
pub async fn ensure_repository(repo: &Path) -> Result<(), GitError> {
    match git(repo, &["rev-parse", "--git-dir"]).await {
        Ok(_) => Ok(()),
        Err(GitError::Failed { stderr, .. }) => Err(GitError::NotARepository {
            repo: repo.to_path_buf(),
            stderr,
        }),
        Err(err) => Err(err),
    }
}

/// `refs/heads/<branch>` that HEAD points to, `None` when HEAD is detached.
async fn head_ref(repo: &Path) -> Result<Option<String>, GitError> {
    match git(repo, &["symbolic-ref", "--quiet", "HEAD"]).await {
        Ok(head) => Ok(Some(head.trim().to_string())),
        Err(GitError::Failed { .. }) => Ok(None),
        Err(err) => Err(err),
    }
}

async fn resolve_commit(repo: &Path, what: &str) -> Result<String, GitError> {
    let spec = format!("{what}^{{commit}}");
    match git(repo, &["rev-parse", "--verify", "--quiet", &spec]).await {
        Ok(sha) => Ok(sha.trim().to_string()),
        Err(GitError::Failed { .. }) => Err(GitError::NotACommit {
            what: what.to_string(),
            repo: repo.to_path_buf(),
        }),
        Err(err) => Err(err),
    }
}

/// Splits `git diff-tree -z --name-status` output into added, modified and removed paths.
fn classify_changes(output: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut added, mut modified, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    let mut fields = output.split('\0').filter(|field| !field.is_empty());
    while let (Some(status), Some(path)) = (fields.next(), fields.next()) {
        let target = match status.chars().next() {
            Some('A') => &mut added,
            Some('D') => &mut removed,
            _ => &mut modified,
        };
        target.push(path.to_string());
    }
    (added, modified, removed)
}

async fn git(repo: &Path, args: &[&str]) -> Result<String, GitError> {
    let mut command = tokio::process::Command::new("git");
    command
        .arg("-C")
        .arg(repo)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for variable in HOOK_VARIABLES {
        command.env_remove(variable);
    }
    let output = tokio::time::timeout(GIT_TIMEOUT, command.output())
        .await
        .map_err(|_| GitError::Timeout {
            args: args.join(" "),
            repo: repo.to_path_buf(),
        })?
        .map_err(GitError::Spawn)?;
    if !output.status.success() {
        return Err(GitError::Failed {
            args: args.join(" "),
            repo: repo.to_path_buf(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_and_change_lists() {
        assert_eq!(full_ref("main"), "refs/heads/main");
        assert_eq!(full_ref("refs/tags/v1"), "refs/tags/v1");
        let (added, modified, removed) = classify_changes("A\0new file.txt\0M\0src/a.rs\0T\0link\0D\0old.txt\0");
        assert_eq!(added, ["new file.txt"]);
        assert_eq!(modified, ["src/a.rs", "link"]);
        assert_eq!(removed, ["old.txt"]);
    }
}
