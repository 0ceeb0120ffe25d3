//! The `/health` body every service serves and the `<service>.build.info` startup line: the
//! six build-info fields of the embedded JavaScript bundles.

use kici_engine::build_info::BuildInfo;
use serde::{Deserialize, Serialize};

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub status: String,
    pub service: String,
    pub version: String,
    #[serde(flatten)]
    pub build_info: BuildInfo,
    pub uptime_ms: u64,
}

impl Health {
    pub fn ok(service: &str, uptime_ms: u64) -> Health {
        Health {
            status: "ok".to_string(),
            service: service.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            build_info: kici_sdk::build_info(),
            uptime_ms,
        }
    }
}

/// Logs `<service>.build.info` with the six fields; services call it first thing after
/// `logging::init`. Its target ([`crate::logging::BUILD_INFO_TARGET`]) makes the logger write
/// it at any `KICI_LOG_LEVEL` and start every log file with it.
pub fn log_build_info(service: &str) {
    let info = kici_sdk::build_info();
    tracing::info!(
        target: crate::logging::BUILD_INFO_TARGET,
        sdkVersion = %info.sdk_version,
        sdkBundleHash = %info.sdk_bundle_hash,
        sharedVersion = %info.shared_version,
        sharedBundleHash = %info.shared_bundle_hash,
        engineVersion = %info.engine_version,
        engineBundleHash = %info.engine_bundle_hash,
        version = env!("CARGO_PKG_VERSION"),
        "{service}.build.info"
    );
}
