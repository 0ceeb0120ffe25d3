//! Glob and regex patterns: branch/tag patterns, path filters and label globs.
//!
//! Globs follow picomatch semantics as authors know them from the reference SDK: `*` and `?` do
//! not cross `/`, `**` does (`a/**/b` also matches `a/b`), `[...]` classes and `{a,b}`
//! alternatives. A glob is translated once into an anchored regular expression, which is also
//! what the lock file stores for label globs. Regexes come from JavaScript `RegExp`s and are
//! matched unanchored, like `RegExp.prototype.test`. Rust's `regex` runs in linear time, so a
//! lock file cannot smuggle in a catastrophic-backtracking pattern; the limits below bound the
//! work and memory of translating and compiling one, since lock files come from any pusher.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::excerpt::excerpt;

/// The longest glob accepted, in characters.
pub const MAX_PATTERN_CHARS: usize = 1024;

/// The longest regex accepted, in characters: room for the translation of the longest glob,
/// which label globs are stored as.
pub const MAX_REGEX_CHARS: usize = 8 * MAX_PATTERN_CHARS;

/// The deepest `{…}` nesting a glob may have.
pub const MAX_BRACE_DEPTH: usize = 16;

/// The most memory one compiled pattern may take.
const COMPILED_SIZE_LIMIT: usize = 1 << 20;

/// A pattern that could not be compiled. The pattern is quoted as an excerpt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("invalid glob `{pattern}`: {reason}")]
    Glob { pattern: String, reason: String },
    #[error("invalid regex /{regex}/: {reason}")]
    Regex { regex: String, reason: String },
    #[error("unsupported regex flag `{flag}` in /{regex}/{flags}")]
    Flag { regex: String, flags: String, flag: char },
}

fn glob_error(glob: &str, reason: impl Into<String>) -> PatternError {
    PatternError::Glob {
        pattern: excerpt(glob).into_owned(),
        reason: reason.into(),
    }
}

fn regex_error(source: &str, reason: impl Into<String>) -> PatternError {
    PatternError::Regex {
        regex: excerpt(source).into_owned(),
        reason: reason.into(),
    }
}

fn too_long(chars: usize, limit: usize) -> String {
    format!("it is {chars} characters long; patterns are limited to {limit}")
}

/// Translates a glob into an anchored regex source (`^(?:...)$`).
pub fn glob_to_regex(glob: &str) -> Result<String, PatternError> {
    let chars: Vec<char> = glob.chars().collect();
    if chars.len() > MAX_PATTERN_CHARS {
        return Err(glob_error(glob, too_long(chars.len(), MAX_PATTERN_CHARS)));
    }
    let mut depth = 0usize;
    for &c in &chars {
        match c {
            '{' => {
                depth += 1;
                if depth > MAX_BRACE_DEPTH {
                    return Err(glob_error(
                        glob,
                        format!("`{{…}}` alternatives are nested more than {MAX_BRACE_DEPTH} deep"),
                    ));
                }
            }
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    // The depth check above bounds the recursion in `translate`.
    let body = translate(&chars, glob)?;
    Ok(format!("^(?:{body})$"))
}

fn translate(chars: &[char], whole: &str) -> Result<String, PatternError> {
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
                    .ok_or_else(|| glob_error(whole, "unclosed `[`"))?;
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
                let close = matching_brace(chars, i).ok_or_else(|| glob_error(whole, "unclosed `{`"))?;
                let alternatives = split_top_level(&chars[i + 1..close])
                    .into_iter()
                    .map(|alt| translate(alt, whole))
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

fn split_top_level(inner: &[char]) -> Vec<&[char]> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, &c) in inner.iter().enumerate() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
}

/// Compiles a JavaScript regex (`source` + `flags`) for unanchored matching.
pub fn compile_js_regex(source: &str, flags: &str) -> Result<Regex, PatternError> {
    let chars = source.chars().count();
    if chars > MAX_REGEX_CHARS {
        return Err(regex_error(source, too_long(chars, MAX_REGEX_CHARS)));
    }
    let mut inline = String::new();
    for flag in flags.chars() {
        match flag {
            'i' | 'm' | 's' => inline.push(flag),
            // Global, sticky, unicode and indices flags do not change whether `test` matches.
            'g' | 'y' | 'u' | 'd' | 'v' => {}
            _ => {
                return Err(PatternError::Flag {
                    regex: excerpt(source).into_owned(),
                    flags: excerpt(flags).into_owned(),
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
    build(&full).map_err(|err| regex_error(source, reason(&err)))
}

/// The reason of a `regex` error without the pattern it quotes whole.
fn reason(err: &regex::Error) -> String {
    let text = err.to_string();
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix("error: "))
        .unwrap_or(&text);
    excerpt(line).into_owned()
}

fn build(source: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(source)
        .size_limit(COMPILED_SIZE_LIMIT)
        .dfa_size_limit(COMPILED_SIZE_LIMIT)
        .nest_limit(MAX_BRACE_DEPTH as u32 * 4)
        .build()
}

/// Compiles a glob into a matcher for whole strings.
pub fn compile_glob(glob: &str) -> Result<Regex, PatternError> {
    let source = glob_to_regex(glob)?;
    build(&source).map_err(|err| glob_error(glob, reason(&err)))
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

    #[test]
    fn hostile_patterns_are_errors_with_short_messages() {
        let deep = format!("{}a{}", "{".repeat(5000), "}".repeat(5000));
        let err = compile_glob(&deep).unwrap_err().to_string();
        assert!(err.contains("patterns are limited to 1024"), "{err}");
        assert!(err.len() < 400, "{err}");
        let nested = format!("{}a{}", "{x,".repeat(17), "}".repeat(17));
        assert_eq!(
            compile_glob(&nested).unwrap_err().to_string(),
            format!("invalid glob `{nested}`: `{{…}}` alternatives are nested more than 16 deep")
        );
        let ok = format!("{}a{}", "{x,".repeat(16), "}".repeat(16));
        assert!(compile_glob(&ok).unwrap().is_match("x"));
        let huge = "a".repeat(2_000_000);
        let err = compile_js_regex(&huge, "").unwrap_err().to_string();
        assert!(
            err.ends_with("it is 2000000 characters long; patterns are limited to 8192"),
            "{err}"
        );
        assert!(err.len() < 400, "{err}");
        let err = compile_js_regex(&format!("{}(", "b".repeat(300)), "")
            .unwrap_err()
            .to_string();
        assert!(err.ends_with(": unclosed group"), "{err}");
        assert!(err.len() < 300, "{err}");
        let big = compile_js_regex("(\\w{100}){100}", "").unwrap_err().to_string();
        assert!(big.contains("exceeds size limit"), "{big}");
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
