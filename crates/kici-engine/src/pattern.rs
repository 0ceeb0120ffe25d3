//! Glob and regex patterns: branch/tag patterns, path filters and label globs.
//!
//! Globs follow picomatch semantics as authors know them from the reference SDK: `*` and `?` do
//! not cross `/`, `**` does (`a/**/b` also matches `a/b`), `[...]` classes and `{a,b}`
//! alternatives. A glob is translated once into an anchored regular expression, which is also
//! what the lock file stores for label globs. Regexes come from JavaScript `RegExp`s and are
//! matched unanchored, like `RegExp.prototype.test`. Rust's `regex` runs in linear time, so a
//! lock file cannot smuggle in a catastrophic-backtracking pattern.

use regex::Regex;
use serde::{Deserialize, Serialize};

/// A pattern that could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("invalid glob `{pattern}`: {reason}")]
    Glob { pattern: String, reason: String },
    #[error("invalid regex /{regex}/: {reason}")]
    Regex { regex: String, reason: String },
    #[error("unsupported regex flag `{flag}` in /{regex}/{flags}")]
    Flag { regex: String, flags: String, flag: char },
}

/// Translates a glob into an anchored regex source (`^(?:...)$`).
pub fn glob_to_regex(glob: &str) -> Result<String, PatternError> {
    let body = translate(glob, glob)?;
    Ok(format!("^(?:{body})$"))
}

fn translate(glob: &str, whole: &str) -> Result<String, PatternError> {
    let chars: Vec<char> = glob.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                let at_segment_start = i == 0 || chars[i - 1] == '/';
                let next = chars.get(i + 2);
                if at_segment_start && next == Some(&'/') {
                    out.push_str("(?:.*/)?");
                    i += 3;
                } else if at_segment_start && next.is_none() && out.ends_with('/') {
                    // `a/**`: the slash before is optional so `a/**` also matches `a`.
                    out.pop();
                    out.push_str("(?:/.*)?");
                    i += 2;
                } else {
                    out.push_str(".*");
                    i += 2;
                }
            }
            '*' => {
                out.push_str("[^/]*");
                i += 1;
            }
            '?' => {
                out.push_str("[^/]");
                i += 1;
            }
            '[' => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|&c| c == ']')
                    .map(|p| p + i + 1)
                    .ok_or_else(|| PatternError::Glob {
                        pattern: whole.to_string(),
                        reason: "unclosed `[`".to_string(),
                    })?;
                let mut class: String = chars[i + 1..close].iter().collect();
                if let Some(rest) = class.strip_prefix('!') {
                    class = format!("^{rest}");
                }
                out.push('[');
                out.push_str(&class.replace('\\', "\\\\"));
                out.push(']');
                i = close + 1;
            }
            '{' => {
                let close = matching_brace(&chars, i).ok_or_else(|| PatternError::Glob {
                    pattern: whole.to_string(),
                    reason: "unclosed `{`".to_string(),
                })?;
                let inner: String = chars[i + 1..close].iter().collect();
                let alternatives = split_top_level(&inner)
                    .into_iter()
                    .map(|alt| translate(&alt, whole))
                    .collect::<Result<Vec<_>, _>>()?;
                out.push_str("(?:");
                out.push_str(&alternatives.join("|"));
                out.push(')');
                i = close + 1;
            }
            '\\' if i + 1 < chars.len() => {
                out.push_str(&regex::escape(&chars[i + 1].to_string()));
                i += 2;
            }
            _ => {
                out.push_str(&regex::escape(&c.to_string()));
                i += 1;
            }
        }
    }
    Ok(out)
}

fn matching_brace(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (offset, &c) in chars[open..].iter().enumerate() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + offset);
                }
            }
            _ => {}
        }
    }
    None
}

fn split_top_level(inner: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut depth = 0;
    for c in inner.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(String::new());
                continue;
            }
            _ => {}
        }
        parts.last_mut().expect("parts starts non-empty").push(c);
    }
    parts
}

/// Compiles a JavaScript regex (`source` + `flags`) for unanchored matching.
pub fn compile_js_regex(source: &str, flags: &str) -> Result<Regex, PatternError> {
    let mut inline = String::new();
    for flag in flags.chars() {
        match flag {
            'i' | 'm' | 's' => inline.push(flag),
            // Global, sticky, unicode and indices flags do not change whether `test` matches.
            'g' | 'y' | 'u' | 'd' | 'v' => {}
            _ => {
                return Err(PatternError::Flag {
                    regex: source.to_string(),
                    flags: flags.to_string(),
                    flag,
                });
            }
        }
    }
    let full = if inline.is_empty() {
        source.to_string()
    } else {
        format!("(?{inline}){source}")
    };
    Regex::new(&full).map_err(|err| PatternError::Regex {
        regex: source.to_string(),
        reason: err.to_string(),
    })
}

/// Compiles a glob into a matcher for whole strings.
pub fn compile_glob(glob: &str) -> Result<Regex, PatternError> {
    let source = glob_to_regex(glob)?;
    Regex::new(&source).map_err(|err| PatternError::Glob {
        pattern: glob.to_string(),
        reason: err.to_string(),
    })
}

/// A branch, tag or repository pattern as the lock file stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BranchPattern {
    #[serde(rename = "type")]
    pub kind: BranchPatternKind,
    pub pattern: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BranchPatternKind {
    Glob,
    Regex,
}

impl BranchPattern {
    pub fn glob(pattern: &str) -> Self {
        BranchPattern {
            kind: BranchPatternKind::Glob,
            pattern: pattern.to_string(),
            flags: None,
        }
    }

    pub fn regex(pattern: &str, flags: Option<&str>) -> Self {
        BranchPattern {
            kind: BranchPatternKind::Regex,
            pattern: pattern.to_string(),
            flags: flags.map(str::to_string),
        }
    }

    /// A glob written `!pattern` excludes what it matches.
    fn is_exclusion(&self) -> bool {
        self.kind == BranchPatternKind::Glob && self.pattern.starts_with('!')
    }

    /// Whether the pattern (ignoring a leading `!`) matches `value`.
    fn matches(&self, value: &str) -> Result<bool, PatternError> {
        match self.kind {
            BranchPatternKind::Glob => {
                let glob = self.pattern.strip_prefix('!').unwrap_or(&self.pattern);
                Ok(compile_glob(glob)?.is_match(value))
            }
            BranchPatternKind::Regex => {
                Ok(compile_js_regex(&self.pattern, self.flags.as_deref().unwrap_or(""))?.is_match(value))
            }
        }
    }

    pub fn validate(&self) -> Result<(), PatternError> {
        self.matches("").map(|_| ())
    }
}

/// Matches `value` against a pattern list: an empty list matches everything; a value matched by
/// an exclusion never matches; a list of only exclusions matches everything else; otherwise some
/// inclusion must match.
pub fn matches_patterns(patterns: &[BranchPattern], value: &str) -> Result<bool, PatternError> {
    if patterns.is_empty() {
        return Ok(true);
    }
    let mut has_inclusion = false;
    let mut included = false;
    for pattern in patterns {
        let hit = pattern.matches(value)?;
        if pattern.is_exclusion() {
            if hit {
                return Ok(false);
            }
        } else {
            has_inclusion = true;
            included |= hit;
        }
    }
    Ok(included || !has_inclusion)
}

/// Path filter (`paths` of push and pr triggers). A non-empty filter with no changed files does
/// not match. Files matched by a `!` pattern are removed; if none is left it does not match; a
/// filter of only exclusions then matches; otherwise a remaining file must match an inclusion.
pub fn matches_paths(filter: &[String], changed_files: &[String]) -> Result<bool, PatternError> {
    if filter.is_empty() {
        return Ok(true);
    }
    let mut includes = Vec::new();
    let mut excludes = Vec::new();
    for pattern in filter {
        match pattern.strip_prefix('!') {
            Some(excluded) => excludes.push(compile_glob(excluded)?),
            None => includes.push(compile_glob(pattern)?),
        }
    }
    let remaining: Vec<&String> = changed_files
        .iter()
        .filter(|file| !excludes.iter().any(|re| re.is_match(file)))
        .collect();
    if remaining.is_empty() {
        return Ok(false);
    }
    if includes.is_empty() {
        return Ok(true);
    }
    Ok(remaining.iter().any(|file| includes.iter().any(|re| re.is_match(file))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_glob(glob: &str, value: &str, want: bool) {
        assert_eq!(
            compile_glob(glob).unwrap().is_match(value),
            want,
            "glob `{glob}` vs `{value}` (regex {})",
            glob_to_regex(glob).unwrap()
        );
    }

    #[test]
    fn glob_semantics() {
        check_glob("main", "main", true);
        check_glob("main", "main2", false);
        check_glob("release/*", "release/1.2", true);
        check_glob("release/*", "release/1.2/hotfix", false);
        check_glob("feature/**", "feature/a/b/c", true);
        check_glob("feature/**", "feature", true);
        check_glob("**", "any/thing", true);
        check_glob("src/**/*.rs", "src/c.rs", true);
        check_glob("src/**/*.rs", "src/a/b/c.rs", true);
        check_glob("src/**/*.rs", "lib/c.rs", false);
        check_glob("v?.0", "v1.0", true);
        check_glob("v[0-9].x", "v7.x", true);
        check_glob("v[!0-9].x", "v7.x", false);
        check_glob("{main,develop}", "develop", true);
        check_glob("{main,release/*}", "release/2", true);
        check_glob("gpu-*", "gpu-a100", true);
        check_glob("a.b", "axb", false);
    }

    #[test]
    fn bad_globs_and_regexes_are_errors() {
        assert!(matches!(compile_glob("a[b"), Err(PatternError::Glob { .. })));
        assert!(matches!(compile_glob("a{b"), Err(PatternError::Glob { .. })));
        assert!(matches!(compile_js_regex("(", ""), Err(PatternError::Regex { .. })));
        assert!(matches!(
            compile_js_regex("a", "x"),
            Err(PatternError::Flag { flag: 'x', .. })
        ));
    }

    fn check_branches(patterns: &[BranchPattern], value: &str, want: bool) {
        assert_eq!(
            matches_patterns(patterns, value).unwrap(),
            want,
            "{patterns:?} vs {value}"
        );
    }

    #[test]
    fn branch_pattern_lists() {
        let glob = BranchPattern::glob;
        check_branches(&[], "anything", true);
        check_branches(&[glob("main")], "main", true);
        check_branches(&[glob("main")], "dev", false);
        check_branches(&[glob("feature/**"), glob("!feature/wip/**")], "feature/x", true);
        check_branches(&[glob("feature/**"), glob("!feature/wip/**")], "feature/wip/y", false);
        check_branches(&[glob("!main")], "dev", true);
        check_branches(&[glob("!main")], "main", false);
        let regex = BranchPattern::regex("^release-\\d+$", None);
        check_branches(std::slice::from_ref(&regex), "release-12", true);
        check_branches(std::slice::from_ref(&regex), "release-x", false);
        check_branches(&[BranchPattern::regex("MAIN", Some("i"))], "main", true);
        check_branches(&[BranchPattern::regex("ai", None)], "main", true);
    }

    fn check_paths(filter: &[&str], files: &[&str], want: bool) {
        let filter: Vec<String> = filter.iter().map(|s| s.to_string()).collect();
        let files: Vec<String> = files.iter().map(|s| s.to_string()).collect();
        assert_eq!(matches_paths(&filter, &files).unwrap(), want, "{filter:?} vs {files:?}");
    }

    #[test]
    fn path_filters() {
        check_paths(&[], &[], true);
        check_paths(&["src/**"], &[], false);
        check_paths(&["src/**"], &["src/a.rs"], true);
        check_paths(&["src/**"], &["docs/a.md"], false);
        check_paths(&["src/**", "!src/gen/**"], &["src/gen/x.rs"], false);
        check_paths(&["src/**", "!src/gen/**"], &["src/gen/x.rs", "src/y.rs"], true);
        check_paths(&["!docs/**"], &["docs/a.md"], false);
        check_paths(&["!docs/**"], &["docs/a.md", "src/b.rs"], true);
        check_paths(&["!docs/**"], &["src/b.rs"], true);
    }
}
