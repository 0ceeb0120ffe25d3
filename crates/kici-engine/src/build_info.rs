//! The six build-info fields every service reports on `/health` and in its `*.build.info` log
//! line: versions and sha256 of the embedded JavaScript bundles.

use serde::{Deserialize, Serialize};

/// Stands in for a version or hash that was not available at build time.
pub const UNKNOWN: &str = "unknown";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    pub sdk_version: String,
    pub sdk_bundle_hash: String,
    pub shared_version: String,
    pub shared_bundle_hash: String,
    pub engine_version: String,
    pub engine_bundle_hash: String,
}
