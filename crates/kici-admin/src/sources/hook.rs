//! The `post-receive` hook `source install-hook` writes: for every `<old> <new> <ref>` line git
//! passes on stdin (deletions skipped), it runs `kici-admin … source trigger-local`. The hook
//! names the source's trigger token file beside it (mode 0600), so no token is in the script or
//! on any command line.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::git::ZERO_SHA;

/// The trigger token's file name in the hooks directory.
pub const TOKEN_FILE: &str = "kici-trigger-token";

/// What the hook script names.
pub struct HookParams<'a> {
    /// This `kici-admin` binary, absolute.
    pub binary: &'a Path,
    pub url: &'a str,
    /// The file holding the source's trigger token.
    pub token_file: &'a Path,
    pub source_id: &'a str,
    pub source_name: &'a str,
    /// The repository the hook reports pushes of.
    pub repo_path: &'a Path,
}

pub fn script(params: &HookParams<'_>) -> String {
    let command = format!(
        "{} --url {} source trigger-local {} --token-file {} --repo-path {}",
        quote(&params.binary.display().to_string()),
        quote(params.url),
        quote(params.source_id),
        quote(&params.token_file.display().to_string()),
        quote(&params.repo_path.display().to_string()),
    );
    format!(
        r#"#!/bin/sh
# KiCI post-receive hook for source {name} ({id}), written by `kici-admin source install-hook`.
# For every pushed ref (deletions skipped) it sends the push to the orchestrator at {url},
# authenticated with the source's trigger token in {token_file} (mode 0600).
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
        token_file = one_line(TOKEN_FILE),
    )
}

/// Writes `script` as `<hooks_dir>/post-receive` (mode 0700), replacing any hook there.
/// Returns the hook's path.
pub async fn write(hooks_dir: &Path, script: &str) -> anyhow::Result<PathBuf> {
    let path = hooks_dir.join("post-receive");
    replace_file(&path, script.as_bytes(), 0o700)
        .await
        .with_context(|| format!("cannot write the hook `{}`", path.display()))?;
    Ok(path)
}

/// Writes the trigger token to `<hooks_dir>/kici-trigger-token` (mode 0600); returns its path.
pub async fn write_token(hooks_dir: &Path, token: &str) -> anyhow::Result<PathBuf> {
    let path = hooks_dir.join(TOKEN_FILE);
    replace_file(&path, format!("{token}\n").as_bytes(), 0o600)
        .await
        .with_context(|| format!("cannot write the trigger token file `{}`", path.display()))?;
    Ok(path)
}

/// Writes `bytes` beside `path` with `mode`, then renames it over `path`, so a push never reads
/// half a file.
async fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;

    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.kici-admin.tmp"));
    let written = async {
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true).mode(mode);
        let mut file = options.open(&temporary).await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await?;
        file.sync_all().await?;
        // `mode` applies only to a new file, and the umask may have narrowed it.
        tokio::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode)).await?;
        tokio::fs::rename(&temporary, path).await
    }
    .await;
    if written.is_err() {
        // Best effort: the error that matters is the write's.
        let _ = tokio::fs::remove_file(&temporary).await;
    }
    written
}

pub fn render_installed(path: &Path, binary: &Path, url: &str, source_id: &str, token_file: &Path) -> String {
    format!(
        "Installed post-receive hook: {}\n\
         For every pushed ref (deletions skipped) it runs:\n  \
         {} --url {url} source trigger-local {source_id} --token-file {} --repo-path <repo> --ref <ref> --sha <new> [--before <old>]\n\
         The source's new trigger token is in {} (mode 0600); the one issued before no longer works.\n",
        path.display(),
        binary.display(),
        token_file.display(),
        token_file.display(),
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
