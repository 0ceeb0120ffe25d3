//! The `scaler:<name>` rows of `kici-admin diagnose` (operator spec §2.5): spawn failures of
//! the last five minutes, per configured scaler. Pure: the manager keeps the records and
//! passes the clock.

use std::collections::VecDeque;

use serde_json::{Value, json};

use super::config::{ScalerConfig, ScalerType};

/// The window the rows look at.
pub(crate) const WINDOW_MS: i64 = 5 * 60 * 1000;
/// Failures kept in memory, oldest evicted first.
pub(crate) const MAX_RECORDS: usize = 256;
/// `lastError` is cut to this many characters in the message (the details keep it whole).
const LAST_ERROR_CHARS: usize = 120;

/// One `scaler.failed`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FailureRecord {
    pub(crate) scaler_name: String,
    pub(crate) backend: ScalerType,
    /// Bound to a job (warm-pool spawns are not).
    pub(crate) bound: bool,
    pub(crate) detail: String,
    pub(crate) timestamp_ms: i64,
}

/// Keeps the last [`MAX_RECORDS`] failures.
pub(crate) fn remember(records: &mut VecDeque<FailureRecord>, record: FailureRecord) {
    if records.len() == MAX_RECORDS {
        records.pop_front();
    }
    records.push_back(record);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowStatus {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScalerRow {
    pub(crate) name: String,
    pub(crate) status: RowStatus,
    pub(crate) message: String,
    pub(crate) details: Option<Value>,
}

/// One row per configured scaler; a single `scaler` pass row when there are none.
pub(crate) fn rows(config: &ScalerConfig, records: &VecDeque<FailureRecord>, now_ms: i64) -> Vec<ScalerRow> {
    if config.scalers.is_empty() {
        return vec![ScalerRow {
            name: "scaler".to_string(),
            status: RowStatus::Pass,
            message: "No scaler backends configured".to_string(),
            details: None,
        }];
    }
    config
        .scalers
        .iter()
        .map(|scaler| {
            let recent: Vec<&FailureRecord> = records
                .iter()
                .filter(|r| r.scaler_name == scaler.name && now_ms - r.timestamp_ms <= WINDOW_MS)
                .collect();
            let bound = recent.iter().filter(|r| r.bound).count();
            let unbound = recent.len() - bound;
            let name = format!("scaler:{}", scaler.name);
            let Some(last) = recent.iter().max_by_key(|r| r.timestamp_ms) else {
                return ScalerRow {
                    name,
                    status: RowStatus::Pass,
                    message: "0 spawn failures in last 5m".to_string(),
                    details: Some(json!({ "windowMs": WINDOW_MS, "backendType": scaler.scaler_type().as_str() })),
                };
            };
            let short: String = last.detail.chars().take(LAST_ERROR_CHARS).collect();
            ScalerRow {
                name,
                status: if bound > 0 { RowStatus::Fail } else { RowStatus::Warn },
                message: format!(
                    "{} spawn failures in last 5m ({bound} bound, {unbound} warm-pool; last: {short})",
                    recent.len()
                ),
                details: Some(json!({
                    "windowMs": WINDOW_MS,
                    "backendType": scaler.scaler_type().as_str(),
                    "boundCount": bound,
                    "unboundCount": unbound,
                    "lastError": last.detail,
                    "lastAtMs": last.timestamp_ms,
                })),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scaler::config::from_yaml_str;

    fn config() -> ScalerConfig {
        from_yaml_str(
            r#"
version: 1
scalers:
  - name: metal
    type: bare-metal
    maxAgents: 2
    labelSets: [{labels: [linux], binaryPath: /usr/bin/kici-agent}]
  - name: pods
    type: container
    maxAgents: 2
    labelSets: [{labels: [docker], image: kici-agent}]
"#,
            "scalers.yaml",
        )
        .unwrap()
    }

    fn failure(scaler: &str, bound: bool, detail: &str, at: i64) -> FailureRecord {
        FailureRecord {
            scaler_name: scaler.to_string(),
            backend: ScalerType::BareMetal,
            bound,
            detail: detail.to_string(),
            timestamp_ms: at,
        }
    }

    fn summary(rows: &[ScalerRow]) -> Vec<(&str, RowStatus, &str)> {
        rows.iter()
            .map(|r| (r.name.as_str(), r.status, r.message.as_str()))
            .collect()
    }

    #[test]
    fn no_scalers_is_one_passing_row() {
        let rows = rows(&ScalerConfig::default(), &VecDeque::new(), 0);
        assert_eq!(
            summary(&rows),
            [("scaler", RowStatus::Pass, "No scaler backends configured")]
        );
    }

    #[test]
    fn each_scaler_passes_warns_on_warm_pool_failures_and_fails_on_bound_ones() {
        let now = 10 * 60 * 1000;
        let mut records = VecDeque::new();
        assert_eq!(
            summary(&rows(&config(), &records, now)),
            [
                ("scaler:metal", RowStatus::Pass, "0 spawn failures in last 5m"),
                ("scaler:pods", RowStatus::Pass, "0 spawn failures in last 5m"),
            ]
        );
        // Out of the window: ignored.
        remember(&mut records, failure("metal", true, "old", now - WINDOW_MS - 1));
        remember(&mut records, failure("pods", false, "warm spawn failed", now - 1000));
        let long = format!("agent process error: {}", "x".repeat(200));
        remember(&mut records, failure("metal", false, "first", now - 2000));
        remember(&mut records, failure("metal", true, &long, now - 1000));
        let rows = rows(&config(), &records, now);
        let expected_metal = format!(
            "2 spawn failures in last 5m (1 bound, 1 warm-pool; last: {})",
            &long[..120]
        );
        assert_eq!(
            summary(&rows),
            [
                ("scaler:metal", RowStatus::Fail, expected_metal.as_str()),
                (
                    "scaler:pods",
                    RowStatus::Warn,
                    "1 spawn failures in last 5m (0 bound, 1 warm-pool; last: warm spawn failed)"
                ),
            ]
        );
        let details = rows[0].details.as_ref().unwrap();
        assert_eq!(details["lastError"], long.as_str());
        assert_eq!(details["boundCount"], 1);
    }

    #[test]
    fn the_oldest_record_is_evicted() {
        let mut records = VecDeque::new();
        for i in 0..=MAX_RECORDS as i64 {
            remember(&mut records, failure("metal", true, &i.to_string(), i));
        }
        assert_eq!(records.len(), MAX_RECORDS);
        assert_eq!(records.front().map(|r| r.detail.as_str()), Some("1"));
    }
}
