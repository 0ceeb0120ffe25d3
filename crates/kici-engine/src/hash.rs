//! Hashes that bind what agents run to what was compiled.
//!
//! Per workflow, `contentHash = sha256(compileSchemaVersion ":" sdkBundleHash ":" lf(source)
//! [ "\0" lf(assetDigest) ])` (DESIGN §4.4): the same `.ts` compiled against two SDK builds gives
//! two hashes, so an agent whose baked SDK differs from the compiler's refuses the job with
//! [`drift_message`]. Line endings are normalised so a CRLF checkout hashes like an LF one.

use sha2::{Digest, Sha256};

/// Our compile schema: 5 in the reference (CRLF normalisation); 6 adds the SDK bundle hash.
pub const COMPILE_SCHEMA_VERSION: u32 = 6;

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

/// Replaces `\r\n` and lone `\r` with `\n`.
pub fn normalize_newlines(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' {
            out.push(b'\n');
            if bytes.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
        } else {
            out.push(bytes[i]);
        }
        i += 1;
    }
    out
}

/// The `hashFiles` digest: for each resolved path in order, `path "\n" content` (an unreadable
/// file contributes `path "\n"`), concatenated. Callers pass paths sorted and deduplicated.
pub fn asset_digest(files: &[(String, Option<Vec<u8>>)]) -> Vec<u8> {
    let mut digest = Vec::new();
    for (path, content) in files {
        digest.extend_from_slice(path.as_bytes());
        digest.push(b'\n');
        if let Some(content) = content {
            digest.extend_from_slice(content);
        }
    }
    digest
}

/// A workflow's `contentHash`. `asset_digest` is `None` when `hashFiles` resolved to no file.
pub fn content_hash(sdk_bundle_hash: &str, source: &[u8], asset_digest: Option<&[u8]>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("{COMPILE_SCHEMA_VERSION}:{sdk_bundle_hash}:").as_bytes());
    hasher.update(normalize_newlines(source));
    if let Some(digest) = asset_digest {
        hasher.update(b"\0");
        hasher.update(normalize_newlines(digest));
    }
    hex(&hasher.finalize())
}

/// Package managers whose lock files key the dependency cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageManager {
    Npm,
    Pnpm,
    YarnClassic,
    YarnBerry,
}

impl PackageManager {
    pub fn as_str(self) -> &'static str {
        match self {
            PackageManager::Npm => "npm",
            PackageManager::Pnpm => "pnpm",
            PackageManager::YarnClassic => "yarn-classic",
            PackageManager::YarnBerry => "yarn-berry",
        }
    }
}

/// The lock file's `lockfileHash`: `sha256(pm "\n" lockfile bytes)`.
pub fn lockfile_hash(manager: PackageManager, lockfile: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(manager.as_str().as_bytes());
    hasher.update(b"\n");
    hasher.update(lockfile);
    hex(&hasher.finalize())
}

/// How [`drift_message`] starts, for whoever recognizes a drift failure by its text.
pub const DRIFT_PREFIX: &str = "Lock file is out of date:";

/// The exact text an agent fails a job with when the source no longer matches the lock file
/// (`unknown` stands in for a version or hash that was not baked in).
pub fn drift_message(expected: &str, got: &str, sdk_version: &str, sdk_bundle_hash: &str) -> String {
    format!(
        "{DRIFT_PREFIX} workflow source changed without regenerating kici.lock.json \
         (expected contentHash {expected}, got {got}, agent baked @kici-dev/sdk@{sdk_version} \
         bundleHash={sdk_bundle_hash}). Run 'kici compile' and commit the updated lock file."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDK_A: &str = "aaaa";
    const SDK_B: &str = "bbbb";

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn crlf_and_cr_hash_like_lf() {
        let lf = content_hash(SDK_A, b"a\nb\n", None);
        assert_eq!(content_hash(SDK_A, b"a\r\nb\r\n", None), lf);
        assert_eq!(content_hash(SDK_A, b"a\rb\r", None), lf);
        assert_eq!(lf.len(), 64);
        assert!(lf.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn the_sdk_bundle_hash_is_bound() {
        assert_ne!(content_hash(SDK_A, b"x", None), content_hash(SDK_B, b"x", None));
    }

    #[test]
    fn the_formula_is_stable() {
        let input = format!("{COMPILE_SCHEMA_VERSION}:{SDK_A}:src\0p\nc");
        assert_eq!(content_hash(SDK_A, b"src", Some(b"p\nc")), sha256_hex(input.as_bytes()));
    }

    #[test]
    fn hash_files_content_changes_the_hash() {
        let one = asset_digest(&[("a.txt".into(), Some(b"1".to_vec()))]);
        let two = asset_digest(&[("a.txt".into(), Some(b"2".to_vec()))]);
        let missing = asset_digest(&[("a.txt".into(), None)]);
        assert_eq!(missing, b"a.txt\n");
        let base = content_hash(SDK_A, b"src", None);
        let with_one = content_hash(SDK_A, b"src", Some(&one));
        assert_ne!(base, with_one);
        assert_ne!(with_one, content_hash(SDK_A, b"src", Some(&two)));
        let crlf = asset_digest(&[("a.txt".into(), Some(b"x\r\ny".to_vec()))]);
        let lf = asset_digest(&[("a.txt".into(), Some(b"x\ny".to_vec()))]);
        assert_eq!(
            content_hash(SDK_A, b"s", Some(&crlf)),
            content_hash(SDK_A, b"s", Some(&lf))
        );
    }

    #[test]
    fn lockfile_hash_depends_on_the_manager() {
        assert_ne!(
            lockfile_hash(PackageManager::YarnClassic, b"x"),
            lockfile_hash(PackageManager::YarnBerry, b"x")
        );
        assert_eq!(lockfile_hash(PackageManager::Npm, b"x"), sha256_hex(b"npm\nx"));
    }

    #[test]
    fn drift_text() {
        assert_eq!(
            drift_message("aa", "bb", "0.1.0", "cc"),
            "Lock file is out of date: workflow source changed without regenerating kici.lock.json (expected contentHash aa, got bb, agent baked @kici-dev/sdk@0.1.0 bundleHash=cc). Run 'kici compile' and commit the updated lock file."
        );
    }
}
