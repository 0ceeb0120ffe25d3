//! The temporary checkout a local run works in: the working tree as git sees it (tracked and
//! untracked files, minus ignored ones, uncommitted edits included) copied to
//! `$TMPDIR/kici-run-*`, so steps cannot touch the author's files. Outside a git repository the
//! directory is copied whole, without `.git` and `node_modules`.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::event::git;

/// A new, empty `kici-run-*` directory. The caller decides whether to keep it.
pub fn create_dir() -> anyhow::Result<PathBuf> {
    Ok(tempfile::Builder::new()
        .prefix("kici-run-")
        .tempdir()
        .context("failed to create a temporary checkout directory")?
        .keep())
}

/// Copies the working tree of `root` into `dir`.
pub async fn populate(root: &Path, dir: &Path) -> anyhow::Result<()> {
    let listed = git(root, &["ls-files", "-z", "--cached", "--others", "--exclude-standard"]).await;
    let root = root.to_path_buf();
    let target = dir.to_path_buf();
    tokio::task::spawn_blocking(move || match listed {
        Some(list) => copy_listed(&root, &target, list.split('\0').filter(|f| !f.is_empty())),
        None => copy_tree(&root, &target),
    })
    .await
    .context("the checkout copy task panicked")?
}

fn copy_listed<'a>(root: &Path, target: &Path, files: impl Iterator<Item = &'a str>) -> anyhow::Result<()> {
    for file in files {
        let source = root.join(file);
        // A tracked file deleted in the working tree is absent from the checkout too.
        let Ok(metadata) = std::fs::symlink_metadata(&source) else {
            continue;
        };
        copy_entry(&source, &target.join(file), &metadata)?;
    }
    Ok(())
}

fn copy_tree(source_dir: &Path, target_dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(source_dir).with_context(|| format!("failed to read `{}`", source_dir.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".git" || name == "node_modules" {
            continue;
        }
        let metadata = entry.metadata()?;
        let target = target_dir.join(&name);
        if metadata.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else {
            copy_entry(&entry.path(), &target, &metadata)?;
        }
    }
    Ok(())
}

fn copy_entry(source: &Path, target: &Path, metadata: &std::fs::Metadata) -> anyhow::Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("failed to create `{}`", parent.display()))?;
    }
    if metadata.file_type().is_symlink() {
        let link = std::fs::read_link(source)?;
        std::os::unix::fs::symlink(link, target).with_context(|| format!("failed to link `{}`", target.display()))?;
    } else if metadata.is_file() {
        std::fs::copy(source, target).with_context(|| format!("failed to copy `{}`", source.display()))?;
    }
    Ok(())
}
