//! [`LogConfig`]: the logger's settings, read from the `KICI_LOG_*` variables before the
//! service's own configuration (`spec/operator.md` §1.3). It only parses and validates: no file
//! is opened and no terminal is probed here ([`LogFormat::Auto`] is resolved by `init`).
//!
//! | variable | default | accepted |
//! |---|---|---|
//! | `KICI_LOG_DIR` | unset: stdout only | a directory (created if missing) |
//! | `KICI_LOG_FORMAT` | `auto` | `auto` (JSON unless stdout is a terminal), `plain`, `json`; files are always JSON |
//! | `KICI_LOG_LEVEL` | `info` | `debug`, `info`, `warn`, `error` |
//! | `KICI_LOG_MAX_SIZE` | `500m` | bytes, or a number with `k`, `m`, `g` (powers of 1024; `kb`, `mb`, `gb` too) |
//! | `KICI_LOG_RETENTION_DAYS` | `7` | a whole number of days, at least 1 |
//!
//! A variable set to an empty (or blank) value counts as unset, so `KICI_LOG_LEVEL=` in a
//! compose file means the default. Any other value that does not parse is an error naming the
//! variable and the fix.

use std::collections::BTreeMap;
use std::path::PathBuf;

use tracing_subscriber::filter::LevelFilter;

/// `KICI_LOG_MAX_SIZE` when unset: 500 MiB.
pub const DEFAULT_MAX_SIZE_BYTES: u64 = 500 * 1024 * 1024;
/// `KICI_LOG_RETENTION_DAYS` when unset.
pub const DEFAULT_RETENTION_DAYS: u32 = 7;

/// How lines look on stdout (files are always JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// JSON unless stdout is a terminal, then plain.
    Auto,
    /// `2026-01-02T03:04:05.678Z INFO  message key=value`, for people.
    Plain,
    /// One JSON object per line.
    Json,
}

/// The lowest level written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    pub(crate) fn filter(self) -> LevelFilter {
        match self {
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Error => LevelFilter::ERROR,
        }
    }
}

/// The logger's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `KICI_LOG_DIR`: where files are written besides stdout; `None` = stdout only.
    pub dir: Option<PathBuf>,
    /// `KICI_LOG_FORMAT`, for stdout.
    pub format: LogFormat,
    /// `KICI_LOG_LEVEL`.
    pub level: LogLevel,
    /// `KICI_LOG_MAX_SIZE`: a file that would grow past this is rotated first.
    pub max_size_bytes: u64,
    /// `KICI_LOG_RETENTION_DAYS`: files of days older than this are deleted.
    pub retention_days: u32,
}

impl Default for LogConfig {
    /// Stdout only, `auto`, `info`, 500 MiB, 7 days.
    fn default() -> Self {
        LogConfig {
            dir: None,
            format: LogFormat::Auto,
            level: LogLevel::Info,
            max_size_bytes: DEFAULT_MAX_SIZE_BYTES,
            retention_days: DEFAULT_RETENTION_DAYS,
        }
    }
}

/// A `KICI_LOG_*` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {name} `{value}` (hint: {hint})")]
pub struct LogConfigError {
    /// The variable, e.g. `KICI_LOG_LEVEL`.
    pub name: &'static str,
    pub value: String,
    /// What to set instead.
    pub hint: &'static str,
}

const LEVEL_HINT: &str = "use debug, info, warn or error";
const FORMAT_HINT: &str = "use auto, plain or json";
const SIZE_HINT: &str = "use a size above 0 such as `500m`, `10k`, `1g`, or a number of bytes";
const RETENTION_HINT: &str = "use a whole number of days, 1 or more";

impl LogConfig {
    /// Reads the `KICI_LOG_*` variables from `vars` (the process environment in `main`).
    pub fn from_env(vars: &BTreeMap<String, String>) -> Result<LogConfig, LogConfigError> {
        let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let mut config = LogConfig {
            dir: get("KICI_LOG_DIR").map(PathBuf::from),
            ..LogConfig::default()
        };
        if let Some(value) = get("KICI_LOG_FORMAT") {
            config.format = match value.to_ascii_lowercase().as_str() {
                "auto" => LogFormat::Auto,
                "plain" => LogFormat::Plain,
                "json" => LogFormat::Json,
                _ => return Err(invalid("KICI_LOG_FORMAT", value, FORMAT_HINT)),
            };
        }
        if let Some(value) = get("KICI_LOG_LEVEL") {
            config.level = parse_level(value).ok_or_else(|| invalid("KICI_LOG_LEVEL", value, LEVEL_HINT))?;
        }
        if let Some(value) = get("KICI_LOG_MAX_SIZE") {
            config.max_size_bytes = parse_size(value).ok_or_else(|| invalid("KICI_LOG_MAX_SIZE", value, SIZE_HINT))?;
        }
        if let Some(value) = get("KICI_LOG_RETENTION_DAYS") {
            config.retention_days = value
                .parse::<u32>()
                .ok()
                .filter(|days| *days > 0)
                .ok_or_else(|| invalid("KICI_LOG_RETENTION_DAYS", value, RETENTION_HINT))?;
        }
        Ok(config)
    }
}

fn invalid(name: &'static str, value: &str, hint: &'static str) -> LogConfigError {
    LogConfigError {
        name,
        value: value.to_string(),
        hint,
    }
}

/// `debug`, `info`, `warn`, `error` (any case).
pub fn parse_level(value: &str) -> Option<LogLevel> {
    match value.trim().to_ascii_lowercase().as_str() {
        "debug" => Some(LogLevel::Debug),
        "info" => Some(LogLevel::Info),
        "warn" => Some(LogLevel::Warn),
        "error" => Some(LogLevel::Error),
        _ => None,
    }
}

/// `123`, `10k`, `5m`, `1g` (also `kb`/`mb`/`gb`, any case; powers of 1024). Zero and
/// overflowing sizes are refused.
fn parse_size(value: &str) -> Option<u64> {
    let lower = value.trim().to_ascii_lowercase();
    let digits_end = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let multiplier: u64 = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" => 1024,
        "m" | "mb" => 1024 * 1024,
        "g" | "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .filter(|bytes| *bytes > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<LogConfig, LogConfigError> {
        let vars = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        LogConfig::from_env(&vars)
    }

    #[test]
    fn defaults_when_unset_or_blank() {
        assert_eq!(load(&[]), Ok(LogConfig::default()));
        assert_eq!(
            load(&[("KICI_LOG_DIR", " "), ("KICI_LOG_LEVEL", ""), ("KICI_LOG_MAX_SIZE", "")]),
            Ok(LogConfig::default())
        );
        let config = LogConfig::default();
        assert_eq!(config.max_size_bytes, 524_288_000);
        assert_eq!(config.retention_days, 7);
        assert_eq!(config.level, LogLevel::Info);
        assert_eq!(config.format, LogFormat::Auto);
        assert_eq!(config.dir, None);
    }

    #[test]
    fn values_are_parsed() {
        let config = load(&[
            ("KICI_LOG_DIR", "/var/log/kici"),
            ("KICI_LOG_FORMAT", "JSON"),
            ("KICI_LOG_LEVEL", "debug"),
            ("KICI_LOG_MAX_SIZE", "10k"),
            ("KICI_LOG_RETENTION_DAYS", "30"),
        ])
        .unwrap();
        assert_eq!(
            config,
            LogConfig {
                dir: Some(PathBuf::from("/var/log/kici")),
                format: LogFormat::Json,
                level: LogLevel::Debug,
                max_size_bytes: 10 * 1024,
                retention_days: 30,
            }
        );
        assert_eq!(load(&[("KICI_LOG_FORMAT", "plain")]).unwrap().format, LogFormat::Plain);
        assert_eq!(load(&[("KICI_LOG_FORMAT", "auto")]).unwrap().format, LogFormat::Auto);
        assert_eq!(load(&[("KICI_LOG_LEVEL", " WARN ")]).unwrap().level, LogLevel::Warn);
    }

    #[test]
    fn sizes() {
        let check = |text: &str, want: Option<u64>| assert_eq!(parse_size(text), want, "{text}");
        check("500m", Some(524_288_000));
        check("10k", Some(10_240));
        check("10KB", Some(10_240));
        check("5m", Some(5 * 1024 * 1024));
        check("5 MB", Some(5 * 1024 * 1024));
        check("1g", Some(1 << 30));
        check("1234", Some(1234));
        check("1234b", Some(1234));
        check("0", None);
        check("0k", None);
        check("k", None);
        check("-1", None);
        check("1.5m", None);
        check("10t", None);
        check("99999999999999999999", None);
        check("18446744073709551615g", None);
    }

    #[test]
    fn invalid_values_name_the_variable_and_the_fix() {
        let check = |pairs: &[(&str, &str)], want: &str| {
            assert_eq!(load(pairs).expect_err("refused").to_string(), want);
        };
        check(
            &[("KICI_LOG_LEVEL", "verbose")],
            "invalid KICI_LOG_LEVEL `verbose` (hint: use debug, info, warn or error)",
        );
        check(
            &[("KICI_LOG_FORMAT", "yaml")],
            "invalid KICI_LOG_FORMAT `yaml` (hint: use auto, plain or json)",
        );
        check(
            &[("KICI_LOG_MAX_SIZE", "lots")],
            "invalid KICI_LOG_MAX_SIZE `lots` (hint: use a size above 0 such as `500m`, `10k`, `1g`, or a number of bytes)",
        );
        check(
            &[("KICI_LOG_MAX_SIZE", "0")],
            "invalid KICI_LOG_MAX_SIZE `0` (hint: use a size above 0 such as `500m`, `10k`, `1g`, or a number of bytes)",
        );
        check(
            &[("KICI_LOG_RETENTION_DAYS", "0")],
            "invalid KICI_LOG_RETENTION_DAYS `0` (hint: use a whole number of days, 1 or more)",
        );
        check(
            &[("KICI_LOG_RETENTION_DAYS", "a week")],
            "invalid KICI_LOG_RETENTION_DAYS `a week` (hint: use a whole number of days, 1 or more)",
        );
    }
}
