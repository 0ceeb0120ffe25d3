//! The `KICI_*` typo catcher: a service refuses to start when the environment holds a `KICI_*`
//! variable it does not know, naming the closest known one. A typo must not fail open.

use kici_engine::suggest::closest;

/// Variables every service accepts (logging, development switches).
pub const COMMON: &[&str] = &[
    "KICI_DEV",
    "KICI_LOG_DIR",
    "KICI_LOG_FORMAT",
    "KICI_LOG_LEVEL",
    "KICI_LOG_MAX_SIZE",
    "KICI_LOG_RETENTION_DAYS",
    "KICI_CACHE",
    "KICI_NODE",
];

/// Variables the CLIs read or the spec documents for them (`kici`, `kici-admin`; spec
/// `authoring.md` §4). A shell that exports them for the CLIs starts services too, so services
/// accept them and ignore them.
pub const CLIENT: &[&str] = &[
    "KICI_ADMIN_URL",
    "KICI_ADMIN_TOKEN",
    "KICI_URL",
    "KICI_TOKEN",
    "KICI_CONFIG_DIR",
    "KICI_DEBUG",
    "KICI_RUN_DIR",
    "KICI_AUTH_URL",
    "KICI_BROWSER_CMD",
    "KICI_CALLBACK_PORT",
    "KICI_OIDC_CLIENT_ID",
    "KICI_OIDC_ISSUER",
    "KICI_LOCAL_LOCK_KILL_GRACE_MS",
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
pub fn check<'a>(vars: impl IntoIterator<Item = &'a str>, known: &[&str]) -> Result<(), UnknownEnv> {
    let all_known = || known.iter().chain(COMMON).chain(CLIENT).copied();
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

/// Whether `KICI_DEV=true` turns the refusal into a warning.
pub fn dev_mode(value: Option<&str>) -> bool {
    matches!(value, Some("true" | "1"))
}

/// The data directory when `KICI_DATA_DIR` is unset: `/var/lib/kici` when it can be created
/// and written, else `${XDG_STATE_HOME:-~/.local/state}/kici` (`/tmp/kici` without a home).
pub fn default_data_dir(env: &std::collections::BTreeMap<String, String>) -> std::path::PathBuf {
    use std::path::{Path, PathBuf};
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

fn writable(dir: &std::path::Path) -> bool {
    let probe = dir.join(".write-probe");
    let writable = std::fs::write(&probe, b"").is_ok();
    // Best effort: the probe is an empty file.
    let _ = std::fs::remove_file(probe);
    writable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_refused_with_a_suggestion() {
        let err = check(
            ["KICI_PROT", "KICI_PORT", "PATH", "KICI_E2E_X", "KICI_WHATEVER_ELSE"],
            &["KICI_PORT"],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unknown KICI_* env var(s) detected — refusing to start.\n  - KICI_PROT    (did you mean KICI_PORT?)\n  - KICI_WHATEVER_ELSE    (no close match in the schema)\nSet KICI_DEV=true to downgrade this check to a warning."
        );
        assert_eq!(check(["KICI_PORT", "KICI_LOG_DIR"], &["KICI_PORT"]), Ok(()));
    }

    #[test]
    fn the_clis_variables_are_accepted_by_every_service() {
        let shell = ["KICI_ADMIN_URL", "KICI_ADMIN_TOKEN", "KICI_URL", "KICI_TOKEN"];
        assert_eq!(check(shell, &["KICI_PORT"]), Ok(()));
        let err = check(["KICI_ADMIN_TOKN"], &["KICI_AGENT_TOKEN"]).unwrap_err();
        assert_eq!(
            err.unknown,
            [("KICI_ADMIN_TOKN".to_string(), Some("KICI_ADMIN_TOKEN".to_string()))]
        );
    }
}
