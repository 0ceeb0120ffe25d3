//! Helpers the configuration's tests share: a config from YAML, one scaler in flow style.

use super::{ResourceAmounts, ScalerConfig, from_yaml_str};

pub(super) const FILE: &str = "scalers.yaml";

pub(super) fn valid(yaml: &str) -> ScalerConfig {
    from_yaml_str(yaml, FILE).unwrap_or_else(|err| panic!("expected a valid config, got: {err}"))
}

/// `version: 1` and one scaler written in flow style.
pub(super) fn one(scaler: &str) -> String {
    format!("version: 1\nscalers:\n  - {scaler}\n")
}

pub(super) fn bare_metal(name: &str, label: &str) -> String {
    format!("{{name: {name}, type: bare-metal, maxAgents: 1, labelSets: [{{labels: [{label}], binaryPath: /a}}]}}")
}

pub(super) fn amounts(memory: Option<u64>, cpus: Option<f64>) -> ResourceAmounts {
    ResourceAmounts {
        memory_bytes: memory,
        cpus,
    }
}
