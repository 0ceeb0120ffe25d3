//! Matrix expansion: a job with a matrix becomes one child job per combination.
//!
//! Exclusions are applied first (an entry removes every combination whose values equal all of
//! its keys; `{}` removes nothing), then inclusions (added when not already present; `{}` is
//! ignored). A one-dimension matrix (`['a', 'b']`) yields combinations `{value: 'a'}`, which is
//! what steps read as `ctx.matrix.value`. More than [`MAX_COMBINATIONS`] or zero combinations is
//! an error.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The fan-out cap (`MAX_FANOUT_JOBS`).
pub const MAX_COMBINATIONS: usize = 256;

/// The key of a one-dimension matrix's combinations.
pub const SINGLE_DIMENSION_KEY: &str = "value";

/// One combination: dimension name to value, in dimension order.
pub type Combination = Map<String, Value>;

/// Matrix values as the lock file and the dynamic evaluator give them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MatrixValues {
    List(Vec<Value>),
    Dimensions(Map<String, Value>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatrixError {
    #[error("matrix for job '{job}' resolved to {count} combinations (max {MAX_COMBINATIONS})")]
    TooMany { job: String, count: usize },
    #[error("matrix for job '{job}' resolved to 0 combinations")]
    Empty { job: String },
    #[error("matrix for job '{job}': {reason}")]
    Invalid { job: String, reason: String },
}

/// Upper bound of the combination count before include/exclude (the product of the dimension
/// sizes, plus the include entries), as the compiler checks a static matrix.
pub fn static_upper_bound(values: &MatrixValues, include: &[Combination]) -> usize {
    let product = match values {
        MatrixValues::List(list) => list.len(),
        MatrixValues::Dimensions(dims) => dims
            .values()
            .map(|v| v.as_array().map_or(1, Vec::len))
            .fold(1usize, usize::saturating_mul),
    };
    product.saturating_add(include.len())
}

/// Expands `values` with `include`/`exclude` into the job's combinations.
pub fn expand(
    job: &str,
    values: &MatrixValues,
    include: &[Combination],
    exclude: &[Combination],
) -> Result<Vec<Combination>, MatrixError> {
    let invalid = |reason: String| MatrixError::Invalid {
        job: job.to_string(),
        reason,
    };
    let mut combinations: Vec<Combination> = match values {
        MatrixValues::List(list) => list
            .iter()
            .map(|v| {
                check_scalar(v).map_err(&invalid)?;
                Ok(Combination::from_iter([(SINGLE_DIMENSION_KEY.to_string(), v.clone())]))
            })
            .collect::<Result<_, MatrixError>>()?,
        MatrixValues::Dimensions(dims) => {
            let mut acc = vec![Combination::new()];
            for (name, dim) in dims {
                let options = dim
                    .as_array()
                    .ok_or_else(|| invalid(format!("dimension '{name}' must be an array")))?;
                let total = acc.len().saturating_mul(options.len());
                if total > MAX_COMBINATIONS {
                    return Err(MatrixError::TooMany {
                        job: job.to_string(),
                        count: dims
                            .values()
                            .map(|v| v.as_array().map_or(1, Vec::len))
                            .fold(1usize, usize::saturating_mul),
                    });
                }
                let mut next = Vec::with_capacity(total);
                for partial in &acc {
                    for option in options {
                        check_scalar(option).map_err(&invalid)?;
                        let mut combination = partial.clone();
                        combination.insert(name.clone(), option.clone());
                        next.push(combination);
                    }
                }
                acc = next;
            }
            if dims.is_empty() { Vec::new() } else { acc }
        }
    };
    combinations.retain(|c| !exclude.iter().any(|e| !e.is_empty() && is_subset(e, c)));
    for entry in include.iter().filter(|e| !e.is_empty()) {
        if !combinations.contains(entry) {
            combinations.push(entry.clone());
        }
    }
    match combinations.len() {
        0 => Err(MatrixError::Empty { job: job.to_string() }),
        n if n > MAX_COMBINATIONS => Err(MatrixError::TooMany {
            job: job.to_string(),
            count: n,
        }),
        _ => Ok(combinations),
    }
}

fn check_scalar(value: &Value) -> Result<(), String> {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(()),
        other => Err(format!("values must be strings, numbers or booleans, got {other}")),
    }
}

fn is_subset(entry: &Combination, combination: &Combination) -> bool {
    entry.iter().all(|(k, v)| combination.get(k) == Some(v))
}

/// The child job's name: `test (linux, 20)`; a one-dimension matrix gives `test (linux)`.
pub fn child_job_name(job: &str, combination: &Combination) -> String {
    format!("{job} ({})", combination_suffix(combination))
}

/// The values of a combination joined by `", "`, in dimension order.
pub fn combination_suffix(combination: &Combination) -> String {
    combination
        .values()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(v: Value) -> MatrixValues {
        serde_json::from_value(v).unwrap()
    }

    fn combos(v: Value) -> Vec<Combination> {
        serde_json::from_value(v).unwrap()
    }

    fn names(job: &str, combinations: &[Combination]) -> Vec<String> {
        combinations.iter().map(|c| child_job_name(job, c)).collect()
    }

    #[test]
    fn two_by_two_in_dimension_order() {
        let got = expand(
            "test",
            &values(json!({"os": ["linux", "mac"], "node": ["18", "20"]})),
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(
            names("test", &got),
            [
                "test (linux, 18)",
                "test (linux, 20)",
                "test (mac, 18)",
                "test (mac, 20)"
            ]
        );
        assert_eq!(got[1], combos(json!([{"os": "linux", "node": "20"}]))[0]);
    }

    #[test]
    fn one_dimension_uses_value() {
        let got = expand("build", &values(json!(["a", "b"])), &[], &[]).unwrap();
        assert_eq!(got, combos(json!([{"value": "a"}, {"value": "b"}])));
        assert_eq!(names("build", &got), ["build (a)", "build (b)"]);
    }

    #[test]
    fn exclude_then_include() {
        let got = expand(
            "t",
            &values(json!({"os": ["linux", "mac"], "node": ["18", "20"]})),
            &combos(json!([{"os": "win", "node": "20"}, {"os": "linux", "node": "18"}, {}])),
            &combos(json!([{"os": "mac"}, {}])),
        )
        .unwrap();
        assert_eq!(names("t", &got), ["t (linux, 18)", "t (linux, 20)", "t (win, 20)"]);
    }

    #[test]
    fn cap_and_empty() {
        let big: Vec<String> = (0..17).map(|i| i.to_string()).collect();
        let err = expand("t", &values(json!({"a": big, "b": big})), &[], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "matrix for job 't' resolved to 289 combinations (max 256)"
        );
        let exactly: Vec<String> = (0..16).map(|i| i.to_string()).collect();
        assert_eq!(
            expand("t", &values(json!({"a": exactly, "b": exactly})), &[], &[])
                .unwrap()
                .len(),
            256
        );
        let list: Vec<String> = (0..257).map(|i| i.to_string()).collect();
        assert!(matches!(
            expand("t", &values(json!(list)), &[], &[]),
            Err(MatrixError::TooMany { count: 257, .. })
        ));
        assert_eq!(
            expand("t", &values(json!([])), &[], &[]).unwrap_err().to_string(),
            "matrix for job 't' resolved to 0 combinations"
        );
        assert!(expand("t", &values(json!(["a"])), &[], &combos(json!([{"value": "a"}]))).is_err());
    }

    #[test]
    fn upper_bound_counts_includes() {
        assert_eq!(
            static_upper_bound(
                &values(json!({"a": [1, 2], "b": [1, 2, 3]})),
                &combos(json!([{"a": 9}]))
            ),
            7
        );
    }

    #[test]
    fn non_scalar_values_are_refused() {
        let err = expand("t", &values(json!({"a": [{"x": 1}]})), &[], &[]).unwrap_err();
        assert!(matches!(err, MatrixError::Invalid { .. }), "{err}");
    }
}
