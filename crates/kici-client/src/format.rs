//! Small formatting helpers shared by both CLIs' views: optional times and durations, short
//! shas, comma lists. A missing value prints as `-`.

use kici_engine::api::{format_duration, format_timestamp};

pub const NONE: &str = "-";

pub fn timestamp(epoch_ms: Option<i64>) -> String {
    epoch_ms.map_or_else(|| NONE.to_string(), format_timestamp)
}

pub fn duration(ms: Option<i64>) -> String {
    ms.map_or_else(|| NONE.to_string(), format_duration)
}

/// The first `length` characters of `text`, or `-` when it is empty.
pub fn prefix(text: &str, length: usize) -> String {
    if text.is_empty() {
        NONE.to_string()
    } else {
        text.chars().take(length).collect()
    }
}

pub fn or_none(text: Option<&str>) -> String {
    match text {
        Some(text) if !text.is_empty() => text.to_string(),
        _ => NONE.to_string(),
    }
}

/// `a,b` as `a, b`; `-` when empty.
pub fn list(items: &[String]) -> String {
    if items.is_empty() {
        NONE.to_string()
    } else {
        items.join(", ")
    }
}
