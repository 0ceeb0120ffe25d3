//! Reading the files: `scalers.yaml` and the `scalers.d/` drop-ins in order, the YAML parsed
//! into the raw shapes, and the errors of that stage ([`ScalerConfigError`], [`ParseError`]) with
//! their position, key path and hint. What the files mean is checked by `validate`.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::ScalerConfig;
use super::raw::{RawConfig, RawDropIn};
use super::validate::{ConfigProblem, assemble};

const HINT_PATH: &str = "check KICI_SCALER_CONFIG_PATH, or unset it to run without auto-scalers";
const HINT_DIR: &str = "check KICI_SCALER_CONFIG_DIR: it must be a readable directory of *.yaml files, or unset";
const HINT_SYNTAX: &str = "fix the file at that position; an invalid scaler config is never partly applied";
const HINT_UNKNOWN_KEY: &str = "keys are case-sensitive camelCase; rename or remove the key";
const HINT_DROP_IN_KEY: &str =
    "a scalers.d file holds only `scalers:` and optionally `version: 1`; other settings belong in scalers.yaml";

#[derive(Debug, thiserror::Error)]
pub enum ScalerConfigError {
    #[error("cannot read scaler config `{}` (hint: {hint})", path.display())]
    Read {
        path: PathBuf,
        hint: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read scaler config directory `{}` (hint: {HINT_DIR})", path.display())]
    ReadDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The YAML itself: syntax, an unknown key, a value of the wrong type (first one only).
    #[error(transparent)]
    Parse(Box<ParseError>),
    /// Every problem found in an otherwise well-formed configuration.
    #[error(
        "invalid scaler config:\n{}\n(hint: fix every problem listed; an invalid scaler config is never partly applied)",
        problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
    )]
    Invalid { problems: Vec<ConfigProblem> },
}

/// A YAML error, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot parse scaler config `{file}`{}: {message}{} (hint: {hint})",
    position(*line, *column),
    key_path.as_ref().map(|p| format!(" (at `{p}`)")).unwrap_or_default()
)]
pub struct ParseError {
    pub file: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
    /// Where in the document, e.g. `scalers[0].labelSets[1].imag`.
    pub key_path: Option<String>,
    /// The parser's text, e.g. "unknown field `imag`, expected one of labels, image, ...".
    pub message: String,
    pub hint: String,
}

fn position(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(" at line {line}, column {column}"),
        (Some(line), None) => format!(" at line {line}"),
        _ => String::new(),
    }
}

/// Reads `scalers.yaml` (`path`) and appends the scalers of every `*.yaml`/`*.yml` file of
/// `dir` in alphabetical order (dot-files skipped), then validates the whole. A configured file
/// or directory that cannot be read is an error; neither configured = no scalers.
pub fn load(path: Option<&Path>, dir: Option<&Path>) -> Result<ScalerConfig, ScalerConfigError> {
    let main = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ScalerConfigError::Read {
                path: path.to_path_buf(),
                hint: HINT_PATH,
                source,
            })?;
            let file = path.display().to_string();
            let raw: Option<RawConfig> = parse_yaml(&text, &file, false)?;
            Some((file, raw.unwrap_or_default()))
        }
        None => None,
    };
    let mut drop_ins = Vec::new();
    if let Some(dir) = dir {
        for path in drop_in_files(dir)? {
            let text = std::fs::read_to_string(&path).map_err(|source| ScalerConfigError::Read {
                path: path.clone(),
                hint: HINT_DIR,
                source,
            })?;
            let file = path.display().to_string();
            let raw: Option<RawDropIn> = parse_yaml(&text, &file, true)?;
            drop_ins.push((file, raw.unwrap_or_default()));
        }
    }
    assemble(main, drop_ins)
}

/// Parses and validates one `scalers.yaml` text; `file` names it in errors.
pub fn from_yaml_str(text: &str, file: &str) -> Result<ScalerConfig, ScalerConfigError> {
    let raw: Option<RawConfig> = parse_yaml(text, file, false)?;
    assemble(Some((file.to_string(), raw.unwrap_or_default())), Vec::new())
}

/// The `*.yaml` / `*.yml` files of a `scalers.d/` directory, in alphabetical order.
fn drop_in_files(dir: &Path) -> Result<Vec<PathBuf>, ScalerConfigError> {
    let read_dir_error = |source| ScalerConfigError::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_dir_error)? {
        let entry = entry.map_err(read_dir_error)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        let path = entry.path();
        if yaml && !name.starts_with('.') && path.is_file() {
            files.push((name, path));
        }
    }
    files.sort();
    Ok(files.into_iter().map(|(_, path)| path).collect())
}

fn parse_yaml<T: DeserializeOwned>(text: &str, file: &str, drop_in: bool) -> Result<Option<T>, ScalerConfigError> {
    let mut key_path = None;
    let result = serde_saphyr::with_deserializer_from_str(text, |deserializer| {
        serde_path_to_error::deserialize::<_, Option<T>>(deserializer).map_err(|err| {
            key_path = Some(err.path().to_string());
            err.into_inner()
        })
    });
    result.map_err(|err| {
        let location = err.location();
        let (line, column) = (location.map(|l| l.line()), location.map(|l| l.column()));
        let mut message = err.without_snippet().to_string();
        if let (Some(line), Some(column)) = (line, column) {
            let suffix = format!(" at line {line}, column {column}");
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
        let key_path = key_path.filter(|p| p != "." && p != "?");
        let hint = parse_hint(&message, key_path.as_deref(), drop_in);
        ScalerConfigError::Parse(Box::new(ParseError {
            file: file.to_string(),
            line,
            column,
            key_path,
            message,
            hint,
        }))
    })
}

/// The hint of a parse error; an unknown key gets "did you mean" when a known key is close.
fn parse_hint(message: &str, key_path: Option<&str>, drop_in: bool) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return HINT_SYNTAX.to_string();
    };
    let top_level = key_path.is_some_and(|p| !p.contains(['.', '[']));
    if drop_in && top_level {
        return HINT_DROP_IN_KEY.to_string();
    }
    let Some((key, expected)) = rest.split_once("`, expected one of ") else {
        return HINT_UNKNOWN_KEY.to_string();
    };
    let candidates = expected.split(", ").map(|c| c.trim_matches('`'));
    match kici_engine::suggest::closest(key, candidates) {
        Some(close) => format!("did you mean `{close}`? {HINT_UNKNOWN_KEY}"),
        None => HINT_UNKNOWN_KEY.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{FILE, bare_metal};
    use super::*;
    use crate::scaler::config::DEFAULT_GLOBAL_MAX_AGENTS;

    fn parse_error(yaml: &str) -> ParseError {
        match from_yaml_str(yaml, FILE) {
            Err(ScalerConfigError::Parse(err)) => *err,
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_keys_name_the_key_its_path_and_position() {
        let err = parse_error(
            "version: 1\nscalers:\n  - name: c\n    type: container\n    maxAgents: 1\n    labelSets:\n      - labels: [a]\n        imag: alpine\n",
        );
        let ParseError {
            file,
            line,
            column,
            key_path,
            message,
            hint,
        } = &err;
        assert_eq!(file, FILE);
        assert_eq!((*line, *column), (Some(8), Some(9)));
        assert_eq!(key_path.as_deref(), Some("scalers[0].labelSets[0].imag"));
        assert!(
            message.starts_with("unknown field `imag`, expected one of "),
            "{message}"
        );
        assert_eq!(
            hint,
            "did you mean `image`? keys are case-sensitive camelCase; rename or remove the key"
        );
        assert!(
            err.to_string().starts_with(
                "cannot parse scaler config `scalers.yaml` at line 8, column 9: unknown field `imag`, expected one of labels, image,"
            ),
            "{err}"
        );
        assert!(
            err.to_string().ends_with(
                " (at `scalers[0].labelSets[0].imag`) (hint: did you mean `image`? keys are case-sensitive camelCase; rename or remove the key)"
            ),
            "{err}"
        );

        let cases: &[(&str, &str)] = &[
            ("version: 1\nglobalmaxagents: 3\n", "globalmaxagents"),
            (
                "version: 1\ndefaults: {resources: {memory: 1g}, image: x}\n",
                "defaults.image",
            ),
            (
                "version: 1\nscalers: [{name: a, type: container, maxagents: 1}]\n",
                "scalers[0].maxagents",
            ),
            (
                "version: 1\nscalers: [{name: a, warmPool: {size: 1, idle: 3}}]\n",
                "scalers[0].warmPool.idle",
            ),
            (
                "version: 1\ndefaults: {resources: {requests: {cpu: 1}}}\n",
                "defaults.resources.requests.cpu",
            ),
            ("version: 1\nfirecracker: {bridge: br0}\n", "firecracker.bridge"),
            (
                "version: 1\nmachinePools: [{name: a, size: 3}]\n",
                "machinePools[0].size",
            ),
        ];
        for (yaml, path) in cases {
            let ParseError { key_path, message, .. } = parse_error(yaml);
            assert_eq!(key_path.as_deref(), Some(*path), "{yaml}");
            assert!(message.starts_with("unknown field"), "{message}");
        }
    }

    #[test]
    fn wrong_types_and_syntax_are_parse_errors() {
        let ParseError {
            line, key_path, hint, ..
        } = parse_error("version: 1\nscalers:\n  - name: a\n    maxAgents: many\n");
        assert_eq!(line, Some(4));
        assert_eq!(key_path.as_deref(), Some("scalers[0].maxAgents"));
        assert_eq!(hint, HINT_SYNTAX);
        assert!(parse_error("version: 1\nscalers: [\n").line.is_some());
        let message = parse_error("version: 1\nversion: 1\n").message;
        assert!(message.contains("duplicate"), "{message}");
    }

    #[test]
    fn invalid_display_lists_every_problem_with_its_file_and_a_hint() {
        let err = from_yaml_str("version: 1\nglobalMaxAgents: 0\nscalers:\n  - {name: bm, type: docker, maxAgents: 1, labelSets: [{labels: [a]}]}\n", "/etc/kici/scalers.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid scaler config:\n  - /etc/kici/scalers.yaml: globalMaxAgents must be at least 1 (got 0)\n  - /etc/kici/scalers.yaml: Scaler \"bm\" has type \"docker\", which is not supported: use type \"container\" (it drives Docker or Podman)\n(hint: fix every problem listed; an invalid scaler config is never partly applied)"
        );
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn names(config: &ScalerConfig) -> Vec<&str> {
        config.scalers.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn load_merges_scalers_d_in_alphabetical_order() {
        let root = tempfile::tempdir().unwrap();
        let main = write(
            root.path(),
            "scalers.yaml",
            &format!(
                "version: 1\nglobalMaxAgents: 9\nscalers:\n  - {}\n",
                bare_metal("main", "m")
            ),
        );
        let dir = root.path().join("scalers.d");
        std::fs::create_dir(&dir).unwrap();
        write(
            &dir,
            "20-c.yml",
            &format!(
                "scalers:\n  - {}\n  - {}\n",
                bare_metal("c1", "c1"),
                bare_metal("c2", "c2")
            ),
        );
        write(
            &dir,
            "10-b.yaml",
            &format!("version: 1\nscalers:\n  - {}\n", bare_metal("b", "b")),
        );
        write(&dir, "05-empty.yaml", "# nothing yet\n");
        write(
            &dir,
            ".hidden.yaml",
            &format!("scalers:\n  - {}\n", bare_metal("hidden", "h")),
        );
        write(&dir, "notes.txt", "not yaml: [");
        write(&dir, "30-d.yaml.bak", "not yaml: [");
        std::fs::create_dir(dir.join("40-sub.yaml")).unwrap();

        let config = load(Some(&main), Some(&dir)).unwrap();
        assert_eq!(names(&config), ["main", "b", "c1", "c2"]);
        assert_eq!(config.global_max_agents, 9);
        assert_eq!(config.scalers[1].source, dir.join("10-b.yaml").display().to_string());

        let only_dir = load(None, Some(&dir)).unwrap();
        assert_eq!(names(&only_dir), ["b", "c1", "c2"]);
        assert_eq!(only_dir.global_max_agents, DEFAULT_GLOBAL_MAX_AGENTS);

        assert_eq!(load(None, None).unwrap(), ScalerConfig::default());
        assert_eq!(names(&load(Some(&main), None).unwrap()), ["main"]);
    }

    #[test]
    fn load_reports_problems_with_the_file_they_are_in() {
        let root = tempfile::tempdir().unwrap();
        let main = write(
            root.path(),
            "scalers.yaml",
            &format!("version: 1\nscalers:\n  - {}\n", bare_metal("a", "linux")),
        );
        let dir = root.path().join("scalers.d");
        std::fs::create_dir(&dir).unwrap();
        let gpu = write(
            &dir,
            "gpu.yaml",
            &format!(
                "version: 2\nscalers:\n  - {}\n  - {}\n",
                bare_metal("a", "gpu"),
                bare_metal("b", "linux")
            ),
        );
        let Err(ScalerConfigError::Invalid { problems }) = load(Some(&main), Some(&dir)) else {
            panic!("expected problems")
        };
        let gpu = gpu.display().to_string();
        let main = main.display().to_string();
        assert_eq!(
            problems,
            [
                ConfigProblem {
                    file: Some(gpu.clone()),
                    message: "version must be 1 (got 2)".into()
                },
                ConfigProblem {
                    file: Some(gpu.clone()),
                    message: format!(
                        "Scaler name \"a\" is used more than once (scalers[0] of {main} and scalers[0] of {gpu}); scaler names must be unique"
                    ),
                },
                ConfigProblem {
                    file: Some(gpu.clone()),
                    message: "Label set [linux] overlaps between scalers \"a\" and \"b\"".into()
                },
            ]
        );
    }

    #[test]
    fn load_errors_name_the_file_and_hint() {
        let root = tempfile::tempdir().unwrap();
        let missing = root.path().join("nope.yaml");
        let err = load(Some(&missing), None).unwrap_err();
        assert!(matches!(err, ScalerConfigError::Read { .. }));
        assert_eq!(
            err.to_string(),
            format!("cannot read scaler config `{}` (hint: {HINT_PATH})", missing.display())
        );
        let err = load(None, Some(&root.path().join("scalers.d"))).unwrap_err();
        assert!(matches!(err, ScalerConfigError::ReadDir { .. }), "{err}");
        assert!(err.to_string().ends_with(&format!("(hint: {HINT_DIR})")), "{err}");

        let dir = root.path().join("d");
        std::fs::create_dir(&dir).unwrap();
        let extra = write(&dir, "extra.yaml", "globalMaxAgents: 3\n");
        let ScalerConfigError::Parse(err) = load(None, Some(&dir)).unwrap_err() else {
            panic!("expected a parse error")
        };
        let ParseError {
            file, key_path, hint, ..
        } = *err;
        assert_eq!(file, extra.display().to_string());
        assert_eq!(key_path.as_deref(), Some("globalMaxAgents"));
        assert_eq!(hint, HINT_DROP_IN_KEY);
        write(&dir, "extra.yaml", "scalers:\n  - {name: a, labelSet: []}\n");
        let ScalerConfigError::Parse(err) = load(None, Some(&dir)).unwrap_err() else {
            panic!("expected a parse error")
        };
        let ParseError { key_path, hint, .. } = *err;
        assert_eq!(key_path.as_deref(), Some("scalers[0].labelSet"));
        assert_eq!(
            hint,
            "did you mean `labelSets`? keys are case-sensitive camelCase; rename or remove the key"
        );
    }
}
