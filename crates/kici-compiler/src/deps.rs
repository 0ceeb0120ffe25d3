//! The `.kici/` project's npm dependencies: which package manager its lock file belongs to,
//! the lock file's hash (`lockfileHash`, the dependency cache key: sha256 of
//! `<pm>\n<lock file bytes>`), and how to install them (`authoring.md` §1.8).
//!
//! npm's lock file is `.kici/package-lock.json`; pnpm's and yarn's are at the repository root,
//! else in `.kici/`. yarn classic and yarn berry are told apart by the file's first lines.

use std::path::{Path, PathBuf};

pub use kici_engine::hash::PackageManager;

/// The command that installs exactly what the lock file says (run in `.kici/`). pnpm and yarn
/// come through Node's `corepack` when they are not on `PATH`.
pub fn install_command(manager: PackageManager) -> (&'static str, &'static [&'static str]) {
    match manager {
        PackageManager::Npm => ("npm", &["ci", "--no-audit", "--no-fund", "--loglevel=error"]),
        PackageManager::Pnpm => ("corepack", &["pnpm", "install", "--frozen-lockfile"]),
        PackageManager::YarnClassic => ("corepack", &["yarn", "install", "--frozen-lockfile"]),
        PackageManager::YarnBerry => ("corepack", &["yarn", "install", "--immutable"]),
    }
}

/// A project's lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockfile {
    pub manager: PackageManager,
    pub path: PathBuf,
}

/// The lock file of the `.kici/` project in `kici_dir` (repository root `root`), if any.
pub fn find_lockfile(root: &Path, kici_dir: &Path) -> Option<Lockfile> {
    let npm = kici_dir.join("package-lock.json");
    if npm.is_file() {
        return Some(Lockfile {
            manager: PackageManager::Npm,
            path: npm,
        });
    }
    for dir in [root, kici_dir] {
        let pnpm = dir.join("pnpm-lock.yaml");
        if pnpm.is_file() {
            return Some(Lockfile {
                manager: PackageManager::Pnpm,
                path: pnpm,
            });
        }
        let yarn = dir.join("yarn.lock");
        if yarn.is_file() {
            let head = std::fs::read_to_string(&yarn).unwrap_or_default();
            let manager = if head.contains("__metadata:") {
                PackageManager::YarnBerry
            } else {
                PackageManager::YarnClassic
            };
            return Some(Lockfile { manager, path: yarn });
        }
    }
    None
}

/// `lockfileHash` of the lock file (`kici_engine::hash::lockfile_hash`).
pub fn lockfile_hash(lockfile: &Lockfile) -> std::io::Result<String> {
    Ok(kici_engine::hash::lockfile_hash(
        lockfile.manager,
        &std::fs::read(&lockfile.path)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_file_names_its_manager_and_its_hash_binds_both() {
        let dir = tempfile::tempdir().unwrap();
        let (root, kici) = (dir.path(), dir.path().join(".kici"));
        std::fs::create_dir_all(&kici).unwrap();
        assert_eq!(find_lockfile(root, &kici), None);

        std::fs::write(root.join("yarn.lock"), "# yarn lockfile v1\n").unwrap();
        let classic = find_lockfile(root, &kici).unwrap();
        assert_eq!(classic.manager, PackageManager::YarnClassic);
        std::fs::write(root.join("yarn.lock"), "__metadata:\n  version: 8\n").unwrap();
        assert_eq!(find_lockfile(root, &kici).unwrap().manager, PackageManager::YarnBerry);

        std::fs::write(kici.join("package-lock.json"), "{}").unwrap();
        let npm = find_lockfile(root, &kici).unwrap();
        assert_eq!(npm.manager, PackageManager::Npm);
        assert_eq!(lockfile_hash(&npm).unwrap(), kici_engine::hash::sha256_hex(b"npm\n{}"));
    }
}
