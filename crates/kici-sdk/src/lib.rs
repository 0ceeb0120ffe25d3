//! The JavaScript packages KiCI ships inside its binaries: `@kici-dev/sdk` (the author API),
//! `@kici-dev/shared` (`$`, logger, IPC client) and `@kici-dev/engine` (the Node runner), with
//! the version and sha256 of each, computed at build time from `sdk/`. These are the six
//! build-info fields every service reports. Nothing else lives here.

use kici_engine::build_info::BuildInfo;

/// One embedded package.
#[derive(Debug)]
pub struct Bundle {
    /// npm name, e.g. `@kici-dev/sdk`.
    pub package: &'static str,
    /// Directory under `sdk/` and under `node_modules/@kici-dev/`.
    pub dir: &'static str,
    /// `version` of its `package.json`, or `unknown`.
    pub version: &'static str,
    /// sha256 over its files, or `unknown`.
    pub hash: &'static str,
    /// Relative path and content of every file.
    pub files: &'static [(&'static str, &'static [u8])],
}

include!(concat!(env!("OUT_DIR"), "/bundles.rs"));

/// `@kici-dev/sdk`.
pub fn sdk() -> &'static Bundle {
    &BUNDLES[0]
}

/// `@kici-dev/shared`.
pub fn shared() -> &'static Bundle {
    &BUNDLES[1]
}

/// `@kici-dev/engine`.
pub fn engine() -> &'static Bundle {
    &BUNDLES[2]
}

/// The six build-info fields of this build.
pub fn build_info() -> BuildInfo {
    BuildInfo {
        sdk_version: sdk().version.to_string(),
        sdk_bundle_hash: sdk().hash.to_string(),
        shared_version: shared().version.to_string(),
        shared_bundle_hash: shared().hash.to_string(),
        engine_version: engine().version.to_string(),
        engine_bundle_hash: engine().hash.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundle_is_embedded_with_its_version_and_hash() {
        for bundle in &BUNDLES {
            assert_ne!(bundle.version, "unknown", "{}", bundle.package);
            assert_eq!(bundle.hash.len(), 64, "{}", bundle.package);
            assert!(
                bundle.files.iter().any(|(path, _)| *path == "package.json"),
                "{}",
                bundle.package
            );
            let manifest = bundle.files.iter().find(|(p, _)| *p == "package.json").unwrap().1;
            let manifest: serde_json::Value = serde_json::from_slice(manifest).unwrap();
            assert_eq!(manifest["name"], bundle.package);
        }
        assert!(engine().files.iter().any(|(path, _)| *path == "runner.js"));
    }
}
