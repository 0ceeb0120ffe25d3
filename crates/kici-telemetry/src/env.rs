//! Reading a service's configuration from the environment: the `KICI_*` typo catcher (a
//! service refuses to start when the environment holds a `KICI_*` variable it does not know,
//! naming the closest known one: a typo must not fail open), and the [`Reader`] that parses
//! values and collects every problem, so an operator fixes them all in one go
//! ([`ConfigError`]).
//!
//! Not here: what each service reads and how it validates it (its `config` module).

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use kici_engine::suggest::closest;

/// One `KICI_*` variable of a service's schema. A service's list of them is what its typo
/// catcher knows and what the configuration reference (`docs/configuration.md`) is generated
/// from, so neither can name a variable the other does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var {
    pub name: &'static str,
    /// The value in effect when it is unset, as it would be written (empty: none, or one the
    /// doc describes). A value [`Reader`] parses has its default checked against the code's.
    pub default: &'static str,
    /// What it does, in a sentence or two of Markdown.
    pub doc: &'static str,
}

pub const fn var(name: &'static str, default: &'static str, doc: &'static str) -> Var {
    Var { name, default, doc }
}

/// Variables every service accepts (logging, development switches).
pub const COMMON: &[Var] = &[
    var(
        "KICI_DEV",
        "false",
        "`true` turns the refusal of unknown `KICI_*` variables into a warning.",
    ),
    var(
        "KICI_LOG_DIR",
        "",
        "A directory for daily JSON log files (`<service>-YYYY-MM-DD.log`) besides stdout; unset, stdout only.",
    ),
    var(
        "KICI_LOG_FORMAT",
        "auto",
        "`auto` (JSON unless stdout is a terminal), `plain` or `json`; files are always JSON.",
    ),
    var("KICI_LOG_LEVEL", "info", "`debug`, `info`, `warn` or `error`."),
    var(
        "KICI_LOG_MAX_SIZE",
        "500m",
        "A log file larger than this is rotated (bytes, or a number with `k`, `m`, `g`).",
    ),
    var(
        "KICI_LOG_RETENTION_DAYS",
        "7",
        "Rotated log files (gzipped) older than this many days are deleted.",
    ),
    var(
        "KICI_CACHE",
        "",
        "Reserved by the original product's schema; accepted, and not read by this build.",
    ),
    var(
        "KICI_NODE",
        "node",
        "The Node.js 20+ binary that runs workflow code (the compiler in `kici`, steps on the agent).",
    ),
];

/// Variables the CLIs read or the spec documents for them (`kici`, `kici-admin`; spec
/// `authoring.md` §4). A shell that exports them for the CLIs starts services too, so services
/// accept them and ignore them.
pub const CLIENT: &[Var] = &[
    var(
        "KICI_ADMIN_URL",
        "http://127.0.0.1:4000",
        "`kici-admin`: the orchestrator's base URL (`--url`).",
    ),
    var("KICI_ADMIN_TOKEN", "", "`kici-admin`: an admin token (`--token`)."),
    var(
        "KICI_URL",
        "http://127.0.0.1:4000",
        "`kici`: the orchestrator's base URL (`--url`).",
    ),
    var("KICI_TOKEN", "", "`kici`: an API token (`--token`)."),
    var(
        "KICI_DEBUG",
        "",
        "Set by `kici run local` for the runner of each job (its `--debug`); a value you set is not read.",
    ),
    var(
        "KICI_RUN_DIR",
        "",
        "Set by `kici run local` for the jobs it runs: their checkout's directory; a value you set is not read.",
    ),
    var(
        "KICI_CONFIG_DIR",
        "",
        "Reserved for the CLIs' configuration directory; not read by this build.",
    ),
    var(
        "KICI_AUTH_URL",
        "",
        "Reserved for the hosted product's sign-in; not read by this build (it uses tokens).",
    ),
    var(
        "KICI_BROWSER_CMD",
        "",
        "Reserved for the hosted product's sign-in; not read by this build.",
    ),
    var(
        "KICI_CALLBACK_PORT",
        "",
        "Reserved for the hosted product's sign-in; not read by this build.",
    ),
    var(
        "KICI_OIDC_CLIENT_ID",
        "",
        "Reserved for the hosted product's sign-in; not read by this build.",
    ),
    var(
        "KICI_OIDC_ISSUER",
        "",
        "Reserved for the hosted product's sign-in; not read by this build.",
    ),
    var(
        "KICI_LOCAL_LOCK_KILL_GRACE_MS",
        "",
        "Reserved for `kici run local`'s cross-run locks; not read by this build.",
    ),
];

/// Prefixes and suffixes that are never checked.
const EXEMPT_PREFIXES: &[&str] = &["KICI_E2E_", "KICI_AGENT_ENV_", "KICI_COLD_STORE_", "KICI_DEPLOY_"];
const EXEMPT_SUFFIX: &str = "_ENV_PROBE";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.unknown))]
pub struct UnknownEnv {
    /// Each unknown name with its suggestion.
    pub unknown: Vec<(String, Option<String>)>,
}

fn render(unknown: &[(String, Option<String>)]) -> String {
    let mut text = String::from("Unknown KICI_* env var(s) detected — refusing to start.\n");
    for (name, suggestion) in unknown {
        match suggestion {
            Some(known) => text.push_str(&format!("  - {name}    (did you mean {known}?)\n")),
            None => text.push_str(&format!("  - {name}    (no close match in the schema)\n")),
        }
    }
    text.push_str("Set KICI_DEV=true to downgrade this check to a warning.");
    text
}

/// Checks the `KICI_*` names in `vars` against `known` (plus [`COMMON`] and [`CLIENT`]).
pub fn check<'a>(vars: impl IntoIterator<Item = &'a str>, known: &[Var]) -> Result<(), UnknownEnv> {
    let all_known = || known.iter().chain(COMMON).chain(CLIENT).map(|var| var.name);
    let mut unknown: Vec<(String, Option<String>)> = vars
        .into_iter()
        .filter(|name| name.starts_with("KICI_"))
        .filter(|name| !EXEMPT_PREFIXES.iter().any(|p| name.starts_with(p)) && !name.ends_with(EXEMPT_SUFFIX))
        .filter(|name| !all_known().any(|k| k == *name))
        .map(|name| (name.to_string(), closest(name, all_known()).map(str::to_string)))
        .collect();
    unknown.sort();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(UnknownEnv { unknown })
    }
}

/// Why a service's environment does not make a valid configuration: unknown names, or every
/// problem with the values, reported together.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    UnknownEnv(#[from] UnknownEnv),
    #[error("Configuration validation failed:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<String>),
}

/// Reads typed values from the environment, recording a problem for each bad one and going on,
/// so [`Reader::finish`] reports them all. A bad value reads as its default meanwhile.
#[derive(Debug)]
pub struct Reader<'a> {
    env: &'a BTreeMap<String, String>,
    problems: Vec<String>,
    tolerated: Option<UnknownEnv>,
}

impl<'a> Reader<'a> {
    /// Starts reading `env`. `KICI_*` names that are not in `known` (nor [`COMMON`], [`CLIENT`])
    /// are refused, or with `KICI_DEV=true` kept for [`Reader::tolerated`].
    pub fn new(env: &'a BTreeMap<String, String>, known: &[Var]) -> Result<Reader<'a>, UnknownEnv> {
        let tolerated = match check(env.keys().map(String::as_str), known) {
            Ok(()) => None,
            Err(unknown) if dev_mode(env.get("KICI_DEV").map(String::as_str)) => Some(unknown),
            Err(unknown) => return Err(unknown),
        };
        Ok(Reader {
            env,
            problems: Vec::new(),
            tolerated,
        })
    }

    /// The unknown names `KICI_DEV=true` let through, for the service to warn about.
    pub fn tolerated(&mut self) -> Option<UnknownEnv> {
        self.tolerated.take()
    }

    /// The value of `name` as set.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.env.get(name).map(String::as_str)
    }

    /// Records a problem; [`Reader::finish`] will report it.
    pub fn problem(&mut self, text: impl Into<String>) {
        self.problems.push(text.into());
    }

    /// The value of `result`, or `fallback` with the error recorded as a problem.
    pub fn or_record<T, E: Display>(&mut self, result: Result<T, E>, fallback: T) -> T {
        result.unwrap_or_else(|err| {
            self.problem(err.to_string());
            fallback
        })
    }

    /// `name` parsed (trimmed), or `default` when unset; a bad value is "`{name}: `…` is not
    /// {expected}`".
    pub fn parse<T: FromStr + Display>(&mut self, name: &str, default: T, expected: &str) -> T {
        note_default(name, &default);
        match self.env.get(name) {
            None => default,
            Some(text) => text.trim().parse().unwrap_or_else(|_| {
                self.problems.push(format!("{name}: `{text}` is not {expected}"));
                default
            }),
        }
    }

    /// A whole number of at least 0.
    pub fn number<T: FromStr + Display>(&mut self, name: &str, default: T) -> T {
        self.parse(name, default, "a non-negative whole number")
    }

    /// A duration in milliseconds; 0 is allowed.
    pub fn millis(&mut self, name: &str, default: u64) -> Duration {
        Duration::from_millis(self.number(name, default))
    }

    /// A period a timer ticks at: zero would spin (or panic in `tokio::time::interval`).
    pub fn interval(&mut self, name: &str, default: u64) -> Duration {
        let period = self.millis(name, default);
        if period.is_zero() {
            self.problems.push(format!("{name}: must be at least 1 (milliseconds)"));
            return Duration::from_millis(default);
        }
        period
    }

    /// `KICI_DATA_DIR`, which must be an absolute path; unset, `/var/lib/kici` when writable,
    /// else under the user's state directory.
    pub fn data_dir(&mut self) -> PathBuf {
        match self.env.get("KICI_DATA_DIR") {
            Some(dir) if Path::new(dir).is_absolute() => PathBuf::from(dir),
            Some(dir) => {
                self.problem(format!("KICI_DATA_DIR: `{dir}` must be an absolute path"));
                PathBuf::from(dir)
            }
            None => default_data_dir(self.env),
        }
    }

    /// `value` when nothing went wrong, else every problem recorded. `value` is `None` only
    /// when reading it recorded a problem.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, ConfigError> {
        match value {
            Some(value) if self.problems.is_empty() => Ok(value),
            _ => Err(ConfigError::Invalid(self.problems)),
        }
    }
}

thread_local! {
    /// The defaults read on this thread, while [`defaults_read_by`] records them.
    static DEFAULTS: std::cell::RefCell<Option<BTreeMap<String, String>>> = const { std::cell::RefCell::new(None) };
}

/// Notes the default the code reads `name` with, for [`defaults_read_by`].
pub fn note_default(name: &str, default: &dyn Display) {
    DEFAULTS.with(|defaults| {
        if let Some(defaults) = defaults.borrow_mut().as_mut() {
            defaults.insert(name.to_string(), default.to_string());
        }
    });
}

/// The defaults `read` (a service's configuration read) parsed its variables with, by name:
/// what a schema's [`Var::default`] is checked against.
pub fn defaults_read_by<R>(read: impl FnOnce() -> R) -> BTreeMap<String, String> {
    DEFAULTS.with(|defaults| *defaults.borrow_mut() = Some(BTreeMap::new()));
    read();
    DEFAULTS.with(|defaults| defaults.borrow_mut().take().unwrap_or_default())
}

/// Whether `KICI_DEV=true` turns the refusal into a warning.
pub fn dev_mode(value: Option<&str>) -> bool {
    matches!(value, Some("true" | "1"))
}

/// The data directory when `KICI_DATA_DIR` is unset: `/var/lib/kici` when it can be created
/// and written, else `${XDG_STATE_HOME:-~/.local/state}/kici` (`/tmp/kici` without a home).
pub fn default_data_dir(env: &BTreeMap<String, String>) -> PathBuf {
    let system = PathBuf::from("/var/lib/kici");
    if std::fs::create_dir_all(&system).is_ok() && writable(&system) {
        return system;
    }
    let state = env
        .get("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| env.get("HOME").map(|home| Path::new(home).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    state.join("kici")
}

fn writable(dir: &Path) -> bool {
    let probe = dir.join(".write-probe");
    let writable = std::fs::write(&probe, b"").is_ok();
    // Best effort: the probe is an empty file.
    let _ = std::fs::remove_file(probe);
    writable
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(names: &[&'static str]) -> Vec<Var> {
        names.iter().map(|name| var(name, "", "")).collect()
    }

    #[test]
    fn unknown_names_are_refused_with_a_suggestion() {
        let err = check(
            ["KICI_PROT", "KICI_PORT", "PATH", "KICI_E2E_X", "KICI_WHATEVER_ELSE"],
            &known(&["KICI_PORT"]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unknown KICI_* env var(s) detected — refusing to start.\n  - KICI_PROT    (did you mean KICI_PORT?)\n  - KICI_WHATEVER_ELSE    (no close match in the schema)\nSet KICI_DEV=true to downgrade this check to a warning."
        );
        assert_eq!(check(["KICI_PORT", "KICI_LOG_DIR"], &known(&["KICI_PORT"])), Ok(()));
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_reader_reports_every_problem_in_order() {
        let vars = env(&[("KICI_PORT", "x"), ("KICI_TICK_MS", "0"), ("KICI_WAIT_MS", "5")]);
        let mut reader = Reader::new(&vars, &known(&["KICI_PORT", "KICI_TICK_MS", "KICI_WAIT_MS"])).unwrap();
        assert_eq!(reader.number("KICI_PORT", 7u16), 7);
        assert_eq!(reader.interval("KICI_TICK_MS", 9), Duration::from_millis(9));
        assert_eq!(reader.millis("KICI_WAIT_MS", 1), Duration::from_millis(5));
        reader.problem("KICI_OTHER: wrong");
        let err = reader.finish(Some(())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Configuration validation failed:\n  - KICI_PORT: `x` is not a non-negative whole number\n  - KICI_TICK_MS: must be at least 1 (milliseconds)\n  - KICI_OTHER: wrong"
        );
        let vars = env(&[("KICI_PROT", "1")]);
        assert!(Reader::new(&vars, &known(&["KICI_PORT"])).is_err());
        let vars = env(&[("KICI_PROT", "1"), ("KICI_DEV", "true")]);
        let mut reader = Reader::new(&vars, &known(&["KICI_PORT"])).unwrap();
        assert!(reader.tolerated().is_some());
        assert_eq!(reader.finish(Some(1)).unwrap(), 1);
    }

    #[test]
    fn the_clis_variables_are_accepted_by_every_service() {
        let shell = ["KICI_ADMIN_URL", "KICI_ADMIN_TOKEN", "KICI_URL", "KICI_TOKEN"];
        assert_eq!(check(shell, &known(&["KICI_PORT"])), Ok(()));
        let err = check(["KICI_ADMIN_TOKN"], &known(&["KICI_AGENT_TOKEN"])).unwrap_err();
        assert_eq!(
            err.unknown,
            [("KICI_ADMIN_TOKN".to_string(), Some("KICI_ADMIN_TOKEN".to_string()))]
        );
    }
}
