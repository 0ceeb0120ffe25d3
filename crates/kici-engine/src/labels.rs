//! Label matching: which agent may run a job (`runsOn`, `excludeLabels`).
//!
//! A job lists label matchers; an agent fits when every required matcher matches one of its
//! labels and no exclude matcher matches any. Labels under `kici:` are reserved: agents get
//! `kici:os:*`, `kici:arch:*` and `kici:host:*` automatically, jobs may target them, but an
//! operator may not set them by hand. Exact labels compare without regard to case (scaler
//! label sets are lower-cased, so `runsOn: ['Linux']` must still fit a `linux` agent).

use serde::{Deserialize, Serialize};

use crate::pattern::{PatternError, compile_js_regex, glob_to_regex};

/// The reserved label namespace.
pub const RESERVED_PREFIX: &str = "kici:";

/// A label matcher as the lock file stores it (globs are already regexes there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LabelMatcher {
    Exact { value: String },
    Regex { source: String, flags: String },
}

/// A label selector as the SDK describes it: globs not yet converted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LabelSelector {
    Exact {
        value: String,
    },
    Glob {
        pattern: String,
    },
    Regex {
        source: String,
        #[serde(default)]
        flags: String,
    },
}

impl LabelSelector {
    /// The lock-file matcher for this selector; a glob becomes an anchored regex.
    pub fn to_matcher(&self) -> Result<LabelMatcher, PatternError> {
        let matcher = match self {
            LabelSelector::Exact { value } => LabelMatcher::Exact { value: value.clone() },
            LabelSelector::Glob { pattern } => LabelMatcher::Regex {
                source: glob_to_regex(pattern)?,
                flags: String::new(),
            },
            LabelSelector::Regex { source, flags } => LabelMatcher::Regex {
                source: source.clone(),
                flags: flags.clone(),
            },
        };
        matcher.validate()?;
        Ok(matcher)
    }
}

impl LabelMatcher {
    pub fn exact(value: &str) -> Self {
        LabelMatcher::Exact {
            value: value.to_string(),
        }
    }

    pub fn validate(&self) -> Result<(), PatternError> {
        match self {
            LabelMatcher::Exact { .. } => Ok(()),
            LabelMatcher::Regex { source, flags } => compile_js_regex(source, flags).map(|_| ()),
        }
    }

    fn matches_any(&self, labels: &[String]) -> Result<bool, PatternError> {
        Ok(match self {
            LabelMatcher::Exact { value } => labels.iter().any(|l| l.eq_ignore_ascii_case(value.trim())),
            LabelMatcher::Regex { source, flags } => {
                let re = compile_js_regex(source, flags)?;
                labels.iter().any(|l| re.is_match(l))
            }
        })
    }

    /// How the matcher reads in messages: `linux`, `/^gpu-.*$/`.
    pub fn display(&self) -> String {
        match self {
            LabelMatcher::Exact { value } => value.clone(),
            LabelMatcher::Regex { source, flags } => format!("/{source}/{flags}"),
        }
    }
}

/// Whether an agent with `agent_labels` fits `required` and `excluded`.
pub fn labels_fit(
    required: &[LabelMatcher],
    excluded: &[LabelMatcher],
    agent_labels: &[String],
) -> Result<bool, PatternError> {
    for matcher in required {
        if !matcher.matches_any(agent_labels)? {
            return Ok(false);
        }
    }
    for matcher in excluded {
        if matcher.matches_any(agent_labels)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A label an operator tried to set that is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("label `{0}` uses the reserved `kici:` prefix (hint: `kici:` labels are added automatically; remove it)")]
    Reserved(String),
    #[error("label `{0}` is empty or contains whitespace or a comma")]
    Malformed(String),
}

/// Checks an operator-supplied agent label.
pub fn validate_agent_label(label: &str) -> Result<(), LabelError> {
    if label.is_empty() || label.contains(|c: char| c.is_whitespace() || c == ',') {
        return Err(LabelError::Malformed(label.to_string()));
    }
    if label.starts_with(RESERVED_PREFIX) {
        return Err(LabelError::Reserved(label.to_string()));
    }
    Ok(())
}

/// The labels every agent reports about itself.
/// The label of agents that run `__build__<workflow>` jobs (`KICI_ROLES` includes `builder`,
/// the default).
pub const BUILDER_LABEL: &str = "kici:role:builder";

pub fn system_labels(os: &str, arch: &str, host: &str) -> Vec<String> {
    vec![
        format!("{RESERVED_PREFIX}os:{os}"),
        format!("{RESERVED_PREFIX}arch:{arch}"),
        format!("{RESERVED_PREFIX}host:{host}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn glob(pattern: &str) -> LabelMatcher {
        LabelSelector::Glob {
            pattern: pattern.to_string(),
        }
        .to_matcher()
        .unwrap()
    }

    fn regex(source: &str, flags: &str) -> LabelMatcher {
        LabelMatcher::Regex {
            source: source.to_string(),
            flags: flags.to_string(),
        }
    }

    fn check(required: &[LabelMatcher], excluded: &[LabelMatcher], agent: &[&str], want: bool) {
        assert_eq!(
            labels_fit(required, excluded, &labels(agent)).unwrap(),
            want,
            "{required:?} !{excluded:?} vs {agent:?}"
        );
    }

    #[test]
    fn matching() {
        let linux = || LabelMatcher::exact("linux");
        check(&[linux()], &[], &["linux", "x64"], true);
        check(&[linux()], &[], &["linux-arm"], false);
        check(&[LabelMatcher::exact("Linux")], &[], &["linux"], true);
        check(&[linux()], &[LabelMatcher::exact("SLOW")], &["linux", "slow"], false);
        check(&[linux(), LabelMatcher::exact("gpu")], &[], &["linux"], false);
        check(&[glob("gpu-*")], &[], &["gpu-a100"], true);
        check(&[glob("gpu-*")], &[], &["cpu-a100"], false);
        check(&[regex("^node-(18|20)$", "")], &[], &["node-20"], true);
        check(&[regex("^NODE", "i")], &[], &["node-20"], true);
        check(&[linux()], &[LabelMatcher::exact("slow")], &["linux", "slow"], false);
        check(&[linux()], &[glob("slow*")], &["linux", "fast"], true);
        check(
            &[LabelMatcher::exact("kici:os:linux")],
            &[],
            &system_labels("linux", "x64", "h")
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            true,
        );
        check(&[], &[], &[], true);
    }

    #[test]
    fn globs_become_anchored_regexes() {
        assert_eq!(
            glob("gpu-*"),
            LabelMatcher::Regex {
                source: "^(?:gpu\\-[^/]*)$".to_string(),
                flags: String::new()
            }
        );
    }

    #[test]
    fn reserved_and_malformed_labels_are_refused() {
        assert_eq!(validate_agent_label("linux"), Ok(()));
        assert_eq!(
            validate_agent_label("kici:os:linux").unwrap_err().to_string(),
            "label `kici:os:linux` uses the reserved `kici:` prefix (hint: `kici:` labels are added automatically; remove it)"
        );
        assert!(matches!(validate_agent_label("a b"), Err(LabelError::Malformed(_))));
        assert!(matches!(validate_agent_label(""), Err(LabelError::Malformed(_))));
    }

    #[test]
    fn a_bad_regex_is_an_error() {
        assert!(regex("(", "").validate().is_err());
    }
}
