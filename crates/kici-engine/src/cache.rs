//! Caches an author keeps between runs (`cache` on a job or an init command, `ctx.cache`): the
//! spec, where its paths live in a cache archive, and the texts of a refused save. A cache
//! belongs to one repository of an organization; the first save of a key wins, a restore tries
//! the exact key and then the newest entry starting with each `restoreKeys` prefix.

use serde::{Deserialize, Serialize};

use crate::excerpt::excerpt;

/// One cache: a key and the paths it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheSpec {
    pub key: String,
    pub paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restore_keys: Vec<String>,
}

/// Longest cache key (and restore-key prefix).
pub const MAX_KEY_BYTES: usize = 512;
/// Most paths one cache holds.
pub const MAX_PATHS: usize = 64;

/// Where a cached path lives: in the job's checkout or under the home directory (`~/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheRoot {
    Workspace,
    Home,
}

impl CacheRoot {
    /// The top directory of the root's entries in a cache archive.
    pub fn archive_dir(self) -> &'static str {
        match self {
            CacheRoot::Workspace => "workspace",
            CacheRoot::Home => "home",
        }
    }
}

/// A cached path: its root and its relative path below it (`/`-separated, no `..`).
pub fn parse_path(path: &str) -> Result<(CacheRoot, &str), String> {
    let (root, relative) = match path.strip_prefix("~/") {
        Some(rest) => (CacheRoot::Home, rest),
        None => (CacheRoot::Workspace, path),
    };
    let relative = relative.trim_end_matches('/');
    let bad = relative.is_empty()
        || relative.starts_with('/')
        || relative.contains('\\')
        || relative
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(format!(
            "cache path '{}' must be relative to the repository (e.g. 'node_modules') or to the home directory (e.g. '~/.cache/pip'), without '..'",
            excerpt(path)
        ));
    }
    Ok((root, relative))
}

/// A cache key (or, with `what` = `restore key`, a prefix) as the API accepts it.
pub fn validate_key(what: &str, key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES || key.chars().any(char::is_control) {
        return Err(format!(
            "cache {what} '{}' must be 1 to {MAX_KEY_BYTES} bytes without control characters",
            excerpt(key)
        ));
    }
    Ok(())
}

impl CacheSpec {
    pub fn validate(&self) -> Result<(), String> {
        validate_key("key", &self.key)?;
        for prefix in &self.restore_keys {
            validate_key("restore key", prefix)?;
        }
        if self.paths.is_empty() || self.paths.len() > MAX_PATHS {
            return Err(format!(
                "cache '{}' must name 1 to {MAX_PATHS} paths",
                excerpt(&self.key)
            ));
        }
        self.paths.iter().try_for_each(|path| parse_path(path).map(|_| ()))
    }
}

/// The refusal of a save that would take the organization's caches over its quota.
pub fn quota_exceeded(key: &str, size: u64, used: u64, quota: u64) -> String {
    format!(
        "Cache quota exceeded: saving '{}' ({size} bytes) would bring this organization's caches to {} of {quota} bytes (KICI_USER_CACHE_QUOTA_BYTES); caches unused for KICI_USER_CACHE_TTL_MS are deleted, or raise the quota",
        excerpt(key),
        used + size
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_live_in_the_checkout_or_the_home_directory() {
        assert_eq!(
            parse_path("node_modules").unwrap(),
            (CacheRoot::Workspace, "node_modules")
        );
        assert_eq!(parse_path("a/b/").unwrap(), (CacheRoot::Workspace, "a/b"));
        assert_eq!(parse_path("~/.cache/mise").unwrap(), (CacheRoot::Home, ".cache/mise"));
        for bad in ["/etc", "../x", "a/../../b", "~/", "~/../x", "", "a//b", "./a", "a\\b"] {
            let err = parse_path(bad).unwrap_err();
            assert!(err.contains("must be relative"), "{bad}: {err}");
        }
    }

    #[test]
    fn specs_are_checked() {
        let spec = |key: &str, paths: &[&str]| CacheSpec {
            key: key.to_string(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            restore_keys: vec![],
        };
        spec("deps-1", &["node_modules"]).validate().unwrap();
        assert!(
            spec("", &["a"])
                .validate()
                .unwrap_err()
                .contains("must be 1 to 512 bytes")
        );
        assert!(spec("k\n", &["a"]).validate().is_err());
        assert!(spec("k", &[]).validate().unwrap_err().contains("1 to 64 paths"));
        assert!(spec("k", &["/abs"]).validate().is_err());
        let text = quota_exceeded("deps", 10, 95, 100);
        assert!(
            text.starts_with("Cache quota exceeded: saving 'deps' (10 bytes) would bring"),
            "{text}"
        );
        assert!(text.contains("105 of 100 bytes"));
    }
}
