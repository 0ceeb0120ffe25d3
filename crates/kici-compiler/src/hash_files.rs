//! Resolving a workflow's `hashFiles` globs against the repository and reading the files into
//! the asset digest that `contentHash` binds.
//!
//! Like the reference (fast-glob from the repository root): files only, no dot-entries, no
//! symlinks followed, deduplicated and sorted. `node_modules` directories are not searched
//! unless a pattern names them.

use std::path::Path;

use kici_engine::hash::asset_digest;
use kici_engine::pattern::{PatternError, compile_glob};

/// The repository-relative files `patterns` select under `root`.
pub fn resolve(root: &Path, patterns: &[String]) -> Result<Vec<String>, PatternError> {
    if patterns.is_empty() {
        return Ok(Vec::new());
    }
    let globs = patterns
        .iter()
        .map(|p| compile_glob(p))
        .collect::<Result<Vec<_>, _>>()?;
    // Dependency trees are huge and rarely hashed: skip them unless a pattern names them.
    let prune = if patterns.iter().any(|p| p.contains("node_modules")) {
        ""
    } else {
        "node_modules"
    };
    let mut files = Vec::new();
    walk(root, "", prune, &mut |relative| {
        if globs.iter().any(|g| g.is_match(relative)) {
            files.push(relative.to_string());
        }
    });
    files.sort();
    files.dedup();
    Ok(files)
}

fn walk(dir: &Path, prefix: &str, prune: &str, visit: &mut dyn FnMut(&str)) {
    // An unreadable directory contributes nothing, as with fast-glob.
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || name == prune {
            continue;
        }
        let relative = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&entry.path(), &relative, prune, visit),
            Ok(t) if t.is_file() => visit(&relative),
            _ => {}
        }
    }
}

/// The asset digest of `files` (repository-relative) read from `root`; `None` when empty.
pub fn digest(root: &Path, files: &[String]) -> Option<Vec<u8>> {
    if files.is_empty() {
        return None;
    }
    let contents: Vec<(String, Option<Vec<u8>>)> = files
        .iter()
        .map(|f| (f.clone(), std::fs::read(root.join(f)).ok()))
        .collect();
    Some(asset_digest(&contents))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_sorted_files_without_dot_entries() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/a")).unwrap();
        std::fs::create_dir_all(root.join(".hidden")).unwrap();
        for file in ["src/a/x.ts", "src/b.ts", "src/c.md", ".hidden/y.ts", "package.json"] {
            std::fs::write(root.join(file), file).unwrap();
        }
        let patterns = vec![
            "src/**/*.ts".to_string(),
            "package.json".to_string(),
            "src/b.ts".to_string(),
        ];
        assert_eq!(
            resolve(root, &patterns).unwrap(),
            ["package.json", "src/a/x.ts", "src/b.ts"]
        );
        assert_eq!(
            digest(root, &["package.json".to_string()]).unwrap(),
            b"package.json\npackage.json"
        );
        assert_eq!(digest(root, &[]), None);
    }
}
