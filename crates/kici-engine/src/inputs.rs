//! Dispatch and schedule inputs (spec `authoring.md` §2.1, §3.6): the schema a lock file
//! declares for a `dispatch()` or `schedule()` trigger, checked when the lock loads, and the
//! values a caller gives, validated, coerced and defaulted into what steps read as
//! `ctx.dispatchInputs`. Callers that only have text (`kici dispatch --input k=v`, the
//! dashboard's form) send strings; a string is coerced to the declared type.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The most inputs one trigger may declare.
pub const MAX_INPUTS: usize = 64;
/// The longest string an input takes.
pub const MAX_INPUT_CHARS: usize = 8_192;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    String,
    Number,
    Integer,
    Boolean,
    Enum,
    Literal,
}

/// One input as the lock file declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InputSpec {
    #[serde(rename = "type")]
    pub input_type: InputType,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub nullable: bool,
    /// `Some(Value::Null)` for `.nullable().default(null)`: present, and null.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literal: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<serde_json::Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<serde_json::Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

pub type InputSchema = BTreeMap<String, InputSpec>;

/// A field that is there, even when it is `null` (serde reads a `null` `Option` as `None`).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl InputSpec {
    /// Whether a caller may leave the input out.
    pub fn required(&self) -> bool {
        !self.optional && self.default.is_none()
    }

    /// What the input takes, for forms and error messages: `string`, `integer ≥ 1`,
    /// `one of staging, production`…
    pub fn describe(&self) -> String {
        let base = match self.input_type {
            InputType::Enum => format!("one of {}", self.values.as_deref().unwrap_or_default().join(", ")),
            InputType::Literal => format!("exactly {}", self.literal.clone().unwrap_or(Value::Null)),
            other => serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        };
        let unit = if self.input_type == InputType::String {
            " characters"
        } else {
            ""
        };
        let mut text = base;
        match (&self.min, &self.max) {
            (Some(min), Some(max)) => text.push_str(&format!(" ({min}–{max}{unit})")),
            (Some(min), None) => text.push_str(&format!(" (at least {min}{unit})")),
            (None, Some(max)) => text.push_str(&format!(" (at most {max}{unit})")),
            (None, None) => {}
        }
        if let Some(pattern) = &self.pattern {
            text.push_str(&format!(" matching /{pattern}/"));
        }
        if self.nullable {
            text.push_str(" or null");
        }
        text
    }
}

/// Why a lock file's input schema is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("declares {0} inputs (at most {MAX_INPUTS})")]
    TooMany(usize),
    #[error("input name `{0}` is not a name (letters, digits, `_` and `-`, at most 64 characters)")]
    BadName(String),
    #[error("input `{name}`: {message}")]
    Input { name: String, message: String },
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Checks a schema when the lock file loads: names, enum values, patterns and defaults that
/// satisfy their own input.
pub fn validate_schema(schema: &InputSchema) -> Result<(), SchemaError> {
    if schema.len() > MAX_INPUTS {
        return Err(SchemaError::TooMany(schema.len()));
    }
    for (name, spec) in schema {
        if !valid_name(name) {
            return Err(SchemaError::BadName(crate::excerpt::excerpt(name).into_owned()));
        }
        let fail = |message: String| SchemaError::Input {
            name: name.clone(),
            message,
        };
        match spec.input_type {
            InputType::Enum if spec.values.as_ref().is_none_or(Vec::is_empty) => {
                return Err(fail("an enum needs `values`".to_string()));
            }
            InputType::Literal
                if !matches!(spec.literal, Some(Value::String(_) | Value::Number(_) | Value::Bool(_))) =>
            {
                return Err(fail(
                    "a literal needs a string, number or boolean `literal`".to_string(),
                ));
            }
            _ => {}
        }
        if let Some(pattern) = &spec.pattern {
            crate::pattern::compile_js_regex(pattern, "").map_err(|err| fail(format!("pattern: {err}")))?;
        }
        if let Some(default) = &spec.default {
            check_value(spec, default.clone()).map_err(|err| fail(format!("default: {err}")))?;
        }
    }
    Ok(())
}

/// One refused input value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every refused input of one call, so a caller fixes them all at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid inputs: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct InputErrors(pub Vec<FieldError>);

/// Validates `given` against `schema`: unknown names are refused, strings are coerced to the
/// declared type, absent inputs take their default (or are left out when optional).
pub fn validate(schema: &InputSchema, given: &Map<String, Value>) -> Result<Map<String, Value>, InputErrors> {
    let mut errors = Vec::new();
    for name in given.keys().filter(|name| !schema.contains_key(*name)) {
        let known = schema.keys().map(String::as_str).collect::<Vec<_>>();
        let hint = match crate::suggest::closest(name, known.iter().copied()) {
            Some(close) => format!("unknown input (did you mean `{close}`?)"),
            None if known.is_empty() => "unknown input (this trigger declares no inputs)".to_string(),
            None => format!("unknown input (declared: {})", known.join(", ")),
        };
        errors.push(FieldError {
            field: crate::excerpt::excerpt(name).into_owned(),
            message: hint,
        });
    }
    let mut values = Map::new();
    for (name, spec) in schema {
        match given.get(name) {
            Some(value) => match check_value(spec, value.clone()) {
                Ok(value) => {
                    values.insert(name.clone(), value);
                }
                Err(message) => errors.push(FieldError {
                    field: name.clone(),
                    message,
                }),
            },
            None => match &spec.default {
                Some(default) => {
                    values.insert(name.clone(), default.clone());
                }
                None if spec.optional => {}
                None => errors.push(FieldError {
                    field: name.clone(),
                    message: format!("required: {}", spec.describe()),
                }),
            },
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(InputErrors(errors))
    }
}

/// The value, coerced from a string when the input is not a string, or why it is refused.
fn check_value(spec: &InputSpec, value: Value) -> Result<Value, String> {
    let expected = || format!("expected {}", spec.describe());
    let shown = |value: &Value| crate::excerpt::excerpt(&value.to_string()).into_owned();
    if value.is_null() {
        return if spec.nullable {
            Ok(Value::Null)
        } else {
            Err(format!("{}, got null", expected()))
        };
    }
    let value = match (&value, spec.input_type) {
        (Value::String(text), InputType::Number | InputType::Integer) => match text.trim().parse::<f64>() {
            Ok(number) if number.is_finite() => serde_json::Number::from_f64(number).map_or(value, |n| {
                // Whole numbers stay integers in JSON (`3`, not `3.0`).
                if number.fract() == 0.0 && number.abs() < 9.0e15 {
                    Value::from(number as i64)
                } else {
                    Value::Number(n)
                }
            }),
            _ => return Err(format!("{}, got {}", expected(), shown(&value))),
        },
        (Value::String(text), InputType::Boolean) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Value::Bool(true),
            "false" | "0" | "no" => Value::Bool(false),
            _ => {
                return Err(format!(
                    "{} (true/false, 1/0, yes/no), got {}",
                    expected(),
                    shown(&value)
                ));
            }
        },
        (Value::String(text), InputType::Literal) if !matches!(spec.literal, Some(Value::String(_))) => {
            match serde_json::from_str::<Value>(text.trim()) {
                Ok(parsed) => parsed,
                Err(_) => value,
            }
        }
        _ => value,
    };
    match spec.input_type {
        InputType::String => {
            let Value::String(text) = &value else {
                return Err(format!("{}, got {}", expected(), shown(&value)));
            };
            let chars = text.chars().count();
            if chars > MAX_INPUT_CHARS {
                return Err(format!("longer than {MAX_INPUT_CHARS} characters"));
            }
            in_bounds(spec, chars as f64, "characters")?;
            if let Some(pattern) = &spec.pattern {
                let regex = crate::pattern::compile_js_regex(pattern, "").map_err(|err| err.to_string())?;
                if !regex.is_match(text) {
                    return Err(format!("{}, got {}", expected(), shown(&value)));
                }
            }
        }
        InputType::Number | InputType::Integer => {
            let Some(number) = value.as_f64() else {
                return Err(format!("{}, got {}", expected(), shown(&value)));
            };
            if spec.input_type == InputType::Integer && number.fract() != 0.0 {
                return Err(format!("{}, got {}", expected(), shown(&value)));
            }
            in_bounds(spec, number, "")?;
        }
        InputType::Boolean => {
            if !value.is_boolean() {
                return Err(format!("{}, got {}", expected(), shown(&value)));
            }
        }
        InputType::Enum => {
            let allowed = spec.values.as_deref().unwrap_or_default();
            if !value.as_str().is_some_and(|v| allowed.iter().any(|a| a == v)) {
                return Err(format!("{}, got {}", expected(), shown(&value)));
            }
        }
        InputType::Literal => {
            if spec.literal.as_ref() != Some(&value) {
                return Err(format!("{}, got {}", expected(), shown(&value)));
            }
        }
    }
    Ok(value)
}

fn in_bounds(spec: &InputSpec, measure: f64, unit: &str) -> Result<(), String> {
    let unit = if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    };
    if let Some(min) = &spec.min
        && measure < min.as_f64().unwrap_or(f64::MIN)
    {
        return Err(format!("must be at least {min}{unit}, got {measure}"));
    }
    if let Some(max) = &spec.max
        && measure > max.as_f64().unwrap_or(f64::MAX)
    {
        return Err(format!("must be at most {max}{unit}, got {measure}"));
    }
    Ok(())
}

/// Parses `k=v` pairs (the CLI's `--input`) into string values; the schema coerces them.
pub fn parse_pairs<'a>(pairs: impl IntoIterator<Item = &'a str>) -> Result<Map<String, Value>, String> {
    let mut values = Map::new();
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(format!("--input {pair}: expected name=value"));
        };
        values.insert(name.trim().to_string(), Value::String(value.to_string()));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(value: Value) -> InputSchema {
        let schema: InputSchema = serde_json::from_value(value).unwrap();
        validate_schema(&schema).unwrap();
        schema
    }

    fn given(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn deploy() -> InputSchema {
        schema(json!({
            "environment": {"type": "enum", "optional": false, "nullable": false, "values": ["staging", "production"]},
            "replicas": {"type": "integer", "optional": false, "nullable": false, "default": 2, "min": 1, "max": 10},
            "dryRun": {"type": "boolean", "optional": false, "nullable": false, "default": false},
            "note": {"type": "string", "optional": true, "nullable": true, "max": 20},
            "version": {"type": "string", "optional": true, "nullable": false, "pattern": "^v[0-9]+$"},
            "ratio": {"type": "number", "optional": true, "nullable": false}
        }))
    }

    #[test]
    fn valid_inputs_are_coerced_and_defaulted() {
        let values = validate(
            &deploy(),
            &given(json!({"environment": "staging", "replicas": "3", "dryRun": "yes", "ratio": "0.5"})),
        )
        .unwrap();
        assert_eq!(
            Value::Object(values),
            json!({"dryRun": true, "environment": "staging", "ratio": 0.5, "replicas": 3})
        );
        let values = validate(&deploy(), &given(json!({"environment": "production", "note": null}))).unwrap();
        assert_eq!(
            Value::Object(values),
            json!({"dryRun": false, "environment": "production", "note": null, "replicas": 2})
        );
    }

    #[test]
    fn every_refused_field_is_named() {
        let err = validate(
            &deploy(),
            &given(json!({"replicas": "2.5", "dryRun": "maybe", "version": "1.0", "note": "x".repeat(21), "enviroment": "x"})),
        )
        .unwrap_err();
        let fields: Vec<String> = err.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            fields,
            [
                "enviroment: unknown input (did you mean `environment`?)",
                "dryRun: expected boolean (true/false, 1/0, yes/no), got \"maybe\"",
                "environment: required: one of staging, production",
                "note: must be at most 20 characters, got 21",
                "replicas: expected integer (1–10), got 2.5",
                "version: expected string matching /^v[0-9]+$/, got \"1.0\"",
            ]
        );
        let err = validate(&deploy(), &given(json!({"environment": "qa", "replicas": 11}))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid inputs: environment: expected one of staging, production, got \"qa\"; replicas: must be at most 10, got 11"
        );
    }

    #[test]
    fn null_only_where_nullable_and_literals_compare_typed() {
        let schema = schema(json!({
            "a": {"type": "string", "optional": false, "nullable": false},
            "b": {"type": "literal", "optional": false, "nullable": false, "literal": 3}
        }));
        let err = validate(&schema, &given(json!({"a": null, "b": "4"}))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid inputs: a: expected string, got null; b: expected exactly 3, got 4"
        );
        assert!(validate(&schema, &given(json!({"a": "", "b": "3"}))).is_ok());
    }

    #[test]
    fn a_schema_is_checked_at_load() {
        let bad = |value: Value| {
            validate_schema(&serde_json::from_value(value).unwrap())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            bad(json!({"x": {"type": "enum", "optional": false, "nullable": false, "values": []}})),
            "input `x`: an enum needs `values`"
        );
        assert_eq!(
            bad(json!({"x": {"type": "integer", "optional": false, "nullable": false, "default": "two"}})),
            "input `x`: default: expected integer, got \"two\""
        );
        assert_eq!(
            bad(json!({"1x": {"type": "string", "optional": false, "nullable": false}})),
            "input name `1x` is not a name (letters, digits, `_` and `-`, at most 64 characters)"
        );
        assert!(
            serde_json::from_value::<InputSchema>(json!({"x": {"type": "date", "optional": false, "nullable": false}}))
                .is_err()
        );
    }

    #[test]
    fn a_null_default_is_a_default() {
        let schema = schema(json!({"note": {"type": "string", "optional": false, "nullable": true, "default": null}}));
        assert!(!schema["note"].required());
        assert_eq!(
            Value::Object(validate(&schema, &Map::new()).unwrap()),
            json!({"note": null})
        );
        assert_eq!(serde_json::to_value(&schema["note"]).unwrap()["default"], Value::Null);
    }

    #[test]
    fn pairs_split_on_the_first_equals_sign() {
        assert_eq!(
            Value::Object(parse_pairs(["a=1", "b=x=y", "c="]).unwrap()),
            json!({"a": "1", "b": "x=y", "c": ""})
        );
        assert_eq!(parse_pairs(["oops"]).unwrap_err(), "--input oops: expected name=value");
    }
}
