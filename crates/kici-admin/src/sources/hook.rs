//! The `post-receive` hook `source install-hook` writes: for every `<old> <new> <ref>` line git
//! passes on stdin (deletions skipped), it runs `kici-admin … source trigger-local`. The hook
//! holds the admin token it was installed with, so it is written with mode 0700.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::git::ZERO_SHA;

/// What the hook script names.
pub struct HookParams<'a> {
    /// This `kici-admin` binary, absolute.
    pub binary: &'a Path,
    pub url: &'a str,
    pub token: &'a str,
    pub source_id: &'a str,
    pub source_name: &'a str,
    /// Passed on as `--repo-path` when the hook was installed somewhere else than the source's path.
    pub repo_path: Option<&'a Path>,
}

pub fn script(params: &HookParams<'_>) -> String {
    let mut command = format!(
        "{} --url {} --token {} source trigger-local {}",
        quote(&params.binary.display().to_string()),
        quote(params.url),
        quote(params.token),
        quote(params.source_id)
    );
    if let Some(repo_path) = params.repo_path {
        command.push_str(&format!(" --repo-path {}", quote(&repo_path.display().to_string())));
    }
    format!(
        r#"#!/bin/sh
# KiCI post-receive hook for source {name} ({id}), written by `kici-admin source install-hook`.
# For every pushed ref (deletions skipped) it sends the push to the orchestrator at {url}.
# It contains an admin token: keep it private (mode 0700).
zero={ZERO_SHA}
while read -r old new ref; do
  if [ "$new" = "$zero" ]; then
    continue
  fi
  if [ "$old" = "$zero" ]; then
    {command} --ref "$ref" --sha "$new"
  else
    {command} --ref "$ref" --sha "$new" --before "$old"
  fi
done
exit 0
"#,
        name = one_line(params.source_name),
        id = one_line(params.source_id),
        url = one_line(params.url),
    )
}

/// Writes `script` as `<hooks_dir>/post-receive` (mode 0700), keeping an existing hook unless
/// `force`. Returns the hook's path.
pub async fn write(hooks_dir: &Path, script: &str, force: bool) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;

    let path = hooks_dir.join("post-receive");
    if !force && tokio::fs::symlink_metadata(&path).await.is_ok() {
        bail!(
            "a post-receive hook already exists at `{}` (hint: pass --force to replace it)",
            path.display()
        );
    }
    tokio::fs::create_dir_all(hooks_dir)
        .await
        .with_context(|| format!("cannot create the hooks directory `{}`", hooks_dir.display()))?;
    // Written beside the hook, then renamed over it, so a push never runs half a script.
    let temporary = hooks_dir.join(".post-receive.kici-admin.tmp");
    let written = async {
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true).mode(0o700);
        let mut file = options.open(&temporary).await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, script.as_bytes()).await?;
        file.sync_all().await?;
        // `mode` applies only to a new file, and the umask may have narrowed it.
        tokio::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o700)).await?;
        tokio::fs::rename(&temporary, &path).await
    }
    .await;
    if let Err(err) = written {
        // Best effort: the error that matters is the write's.
        let _ = tokio::fs::remove_file(&temporary).await;
        return Err(err).with_context(|| format!("cannot write the hook `{}`", path.display()));
    }
    Ok(path)
}

pub fn render_installed(path: &Path, binary: &Path, url: &str, source_id: &str) -> String {
    format!(
        "Installed post-receive hook: {}\n\
         For every pushed ref (deletions skipped) it runs:\n  \
         {} --url {url} --token *** source trigger-local {source_id} --ref <ref> --sha <new> [--before <old>]\n\
         The hook contains the admin token given to this command (--token or KICI_ADMIN_TOKEN); it is written with mode 0700.\n",
        path.display(),
        binary.display(),
    )
}

/// `text` in single quotes for sh.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `text` safe for a comment line.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
