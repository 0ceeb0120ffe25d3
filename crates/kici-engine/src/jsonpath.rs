//! JSONPath filters of event triggers (spec `authoring.md` §2.3): `match` and `not` map a
//! JSONPath (RFC 9535, through `serde_json_path`) to what the value there must be: a string,
//! number, boolean or null (strict equality), an array of those (any of them), or a string
//! `"/source/flags"` (a regular expression). A path that finds nothing fails a `match` and is
//! ignored by a `not`; a path that finds several values passes when any of them does.

use serde_json::{Map, Value};
use serde_json_path::JsonPath;

use crate::excerpt::excerpt;

/// The longest JSONPath accepted.
const MAX_PATH_CHARS: usize = 1_024;
/// The most filters one trigger holds.
const MAX_FILTERS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonPathError {
    #[error("`{path}` is not a JSONPath: {reason}")]
    Path { path: String, reason: String },
    #[error("`{path}`: {reason}")]
    Expected { path: String, reason: String },
    #[error("{0} filters (at most {MAX_FILTERS})")]
    TooMany(usize),
}

fn compile(path: &str) -> Result<JsonPath, JsonPathError> {
    let invalid = |reason: String| JsonPathError::Path {
        path: excerpt(path).into_owned(),
        reason,
    };
    if path.chars().count() > MAX_PATH_CHARS {
        return Err(invalid(format!("longer than {MAX_PATH_CHARS} characters")));
    }
    JsonPath::parse(path).map_err(|err| invalid(err.to_string()))
}

/// `"/source/flags"` as a regular expression, when the text is one.
fn as_regex(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix('/')?;
    let end = rest.rfind('/')?;
    let flags = &rest[end + 1..];
    flags
        .chars()
        .all(|c| "gimsuy".contains(c))
        .then_some((&rest[..end], flags))
}

/// Whether `actual` is what `expected` asks for.
fn satisfies(expected: &Value, actual: &Value, path: &str) -> Result<bool, JsonPathError> {
    match expected {
        Value::Array(options) => {
            for option in options {
                if satisfies(option, actual, path)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Value::String(text) if let Some((source, flags)) = as_regex(text) => {
            let regex = crate::pattern::compile_js_regex(source, &flags.replace(['g', 'y'], "")).map_err(|err| {
                JsonPathError::Expected {
                    path: excerpt(path).into_owned(),
                    reason: err.to_string(),
                }
            })?;
            Ok(actual.as_str().is_some_and(|value| regex.is_match(value)))
        }
        Value::Object(_) => Err(JsonPathError::Expected {
            path: excerpt(path).into_owned(),
            reason: "an expected value is a string, number, boolean, null or a list of them".to_string(),
        }),
        scalar => Ok(scalar == actual),
    }
}

/// Checks every filter once (paths parse, regexes compile), as a lock file loads.
pub fn validate(filters: &Map<String, Value>) -> Result<(), JsonPathError> {
    if filters.len() > MAX_FILTERS {
        return Err(JsonPathError::TooMany(filters.len()));
    }
    for (path, expected) in filters {
        compile(path)?;
        satisfies(expected, &Value::Null, path)?;
    }
    Ok(())
}

/// Whether every `match` filter finds a value it accepts in `document`.
pub fn all_match(filters: &Map<String, Value>, document: &Value) -> Result<bool, JsonPathError> {
    for (path, expected) in filters {
        let found = compile(path)?.query(document).all();
        let mut pass = false;
        for value in found {
            if satisfies(expected, value, path)? {
                pass = true;
                break;
            }
        }
        if !pass {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether any `not` filter finds a value it names in `document` (a path that finds nothing
/// excludes nothing).
pub fn any_excluded(filters: &Map<String, Value>, document: &Value) -> Result<bool, JsonPathError> {
    for (path, expected) in filters {
        for value in compile(path)?.query(document).all() {
            if satisfies(expected, value, path)? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filters(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn match_and_not_follow_the_spec() {
        let alert =
            json!({"alert": {"severity": "critical", "service": "api-gateway", "labels": ["prod", "eu"]}, "count": 3});
        let matching =
            filters(json!({"$.alert.severity": ["critical", "high"], "$.alert.service": "/^api-/", "$.count": 3}));
        assert!(all_match(&matching, &alert).unwrap());
        assert!(
            all_match(&filters(json!({"$.alert.labels[*]": "eu"})), &alert).unwrap(),
            "any of several values"
        );
        assert!(
            !all_match(&filters(json!({"$.alert.owner": "ops"})), &alert).unwrap(),
            "a missing path fails a match"
        );
        assert!(
            !all_match(&filters(json!({"$.count": "3"})), &alert).unwrap(),
            "equality is strict"
        );
        assert!(
            !any_excluded(&filters(json!({"$.alert.owner": "ops"})), &alert).unwrap(),
            "a missing path excludes nothing"
        );
        assert!(any_excluded(&filters(json!({"$.alert.service": "/GATEWAY/i"})), &alert).unwrap());
    }

    #[test]
    fn bad_filters_are_refused_at_load() {
        assert!(
            validate(&filters(json!({"$.a[": 1})))
                .unwrap_err()
                .to_string()
                .starts_with("`$.a[` is not a JSONPath: ")
        );
        assert_eq!(
            validate(&filters(json!({"$.a": {"b": 1}}))).unwrap_err().to_string(),
            "`$.a`: an expected value is a string, number, boolean, null or a list of them"
        );
        assert!(validate(&filters(json!({"$.a": "/(?<=x)y/"}))).is_err());
    }
}
