//! Compiler diagnostics: `file:line:col error [Exxx]: message` followed by a suggestion, the
//! format `kici compile` prints (spec `authoring.md` §3.9).

use std::fmt;

/// The documented error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// `.kici/workflows/` missing, unreadable, or without `*.ts` files.
    E001,
    /// A module failed to load (syntax error, or it threw while importing).
    E003,
    /// A file exports no workflow.
    E004,
    /// A job needs a job that does not exist.
    E101,
    /// Circular dependency.
    E102,
    /// A job depends on itself.
    E103,
    /// A static matrix with more than 256 combinations.
    E104,
    /// Duplicate job name in a workflow.
    E106,
    /// Duplicate workflow name.
    E107,
    /// An option KiCI does not have (usually a typo).
    E108,
    /// A KiCI option this build does not implement yet.
    E109,
    /// An invalid pattern: a trigger's branch, tag or path pattern, a `hashFiles` entry or a
    /// `runsOn` label (a glob that does not parse, a RegExp with look-around).
    E110,
    /// `runsOn` labels and `exclude` overlap: no agent could take the job.
    E111,
    /// A `needs` condition that is not a known one.
    E112,
    /// A static matrix that does not expand (bad values, include/exclude leaving nothing).
    E113,
    /// An invalid `cache` spec.
    E114,
    /// Invalid `registries` or `installEnv`.
    E115,
    /// The `.kici/` dependency lock file cannot be read.
    E116,
    /// The embedded SDK described something this compiler cannot read (a broken install).
    E117,
}

impl Code {
    /// Every code, in order (the documentation lists each).
    pub const ALL: [Code; 19] = [
        Code::E001,
        Code::E003,
        Code::E004,
        Code::E101,
        Code::E102,
        Code::E103,
        Code::E104,
        Code::E106,
        Code::E107,
        Code::E108,
        Code::E109,
        Code::E110,
        Code::E111,
        Code::E112,
        Code::E113,
        Code::E114,
        Code::E115,
        Code::E116,
        Code::E117,
    ];
}

impl Code {
    /// The code an SDK error names, if it is one the compiler knows.
    pub fn parse(text: &str) -> Option<Code> {
        Some(match text {
            "E108" => Code::E108,
            "E109" => Code::E109,
            _ => return None,
        })
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One problem, located in a repository-relative file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub file: String,
    /// 1-based line and column; `None` when the problem is the file or directory itself.
    pub position: Option<(u32, u32)>,
    pub message: String,
    pub suggestion: String,
}

impl Diagnostic {
    pub fn new(
        code: Code,
        file: &str,
        position: Option<(u32, u32)>,
        message: impl Into<String>,
        suggestion: impl Into<String>,
    ) -> Self {
        Diagnostic {
            code,
            file: file.to_string(),
            position,
            message: message.into(),
            suggestion: suggestion.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => write!(f, "{}:{line}:{column} error", self.file)?,
            None => write!(f, "{}: error", self.file)?,
        }
        write!(f, " [{}]: {}", self.code, self.message)?;
        write!(f, "\n  Suggestion: {}", self.suggestion)
    }
}

/// 1-based line and column (in characters) of a byte offset in `source`.
pub fn line_column(source: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(source.len());
    let before = &source[..source.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line as u32, column as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_gnu_style_with_a_suggestion() {
        let d = Diagnostic::new(
            Code::E101,
            ".kici/workflows/ci.ts",
            Some((7, 3)),
            "Job \"deploy\" needs \"tset\"",
            "did you mean \"test\"?",
        );
        assert_eq!(
            d.to_string(),
            ".kici/workflows/ci.ts:7:3 error [E101]: Job \"deploy\" needs \"tset\"\n  Suggestion: did you mean \"test\"?"
        );
        let d = Diagnostic::new(Code::E001, ".kici/workflows", None, "missing", "run kici init");
        assert_eq!(
            d.to_string(),
            ".kici/workflows: error [E001]: missing\n  Suggestion: run kici init"
        );
    }

    #[test]
    fn positions_count_lines_and_characters() {
        let source = "ab\ncé;d\n";
        assert_eq!(line_column(source, 0), (1, 1));
        assert_eq!(line_column(source, 3), (2, 1));
        assert_eq!(line_column(source, 6), (2, 3));
    }

    /// docs/sdk.md's "Error codes" table lists every code, and only those.
    #[test]
    fn the_sdk_guide_lists_every_error_code() {
        let guide = include_str!("../../../docs/sdk.md");
        let listed: Vec<&str> = guide
            .lines()
            .filter_map(|line| line.strip_prefix("| E"))
            .map(|rest| &rest[..3])
            .collect();
        let codes: Vec<String> = Code::ALL.iter().map(|code| code.to_string()[1..].to_string()).collect();
        assert_eq!(listed, codes, "docs/sdk.md error codes");
    }
}
