//! The bare-metal scaler's settings: `enforceCgroups` on the scaler and the agent binary
//! (`binaryPath`) of each label set, resolved and checked.

use std::path::PathBuf;

use crate::scaler::config::raw::{RawLabelSet, RawScaler};
use crate::scaler::config::{Problems, present};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BareMetalBackend {
    /// Wrap agents in `systemd-run --user --scope` with CPU and memory limits. Default `false`.
    pub(crate) enforce_cgroups: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BareMetalTarget {
    pub(crate) binary_path: PathBuf,
}

/// A bare-metal scaler's own keys.
pub(crate) fn build_backend(raw: &RawScaler) -> BareMetalBackend {
    BareMetalBackend {
        enforce_cgroups: raw.enforce_cgroups.unwrap_or(false),
    }
}

/// A bare-metal label set's own keys.
pub(crate) fn build_target(
    raw: &RawLabelSet,
    scaler: &str,
    index: usize,
    problems: &mut Problems,
    at: Option<&str>,
) -> BareMetalTarget {
    let binary_path = present(&raw.binary_path).unwrap_or_else(|| {
        problems.add(
            at,
            format!("Bare-metal scaler \"{scaler}\" label set [{index}] requires a 'binaryPath' field"),
        );
        String::new()
    });
    BareMetalTarget {
        binary_path: PathBuf::from(binary_path),
    }
}
