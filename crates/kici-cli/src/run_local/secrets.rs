//! Local files for `kici run local`, one `KEY=value` per line (`#` comments and blank lines
//! skipped, `export ` allowed, one pair of surrounding quotes removed):
//! - `.kici/.secrets`: secrets, read by steps through `ctx.secrets` like an agent's and masked in
//!   the output;
//! - `.kici/.env.local`: variables added to every job's environment (`--env` wins over them).
//!
//! Keep both out of git (`kici init` ignores them).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, bail};
use kici_engine::protocol::SecretValue;

/// The secrets file's name inside `.kici/`.
pub const SECRETS_FILE: &str = ".secrets";

/// The local environment file's name inside `.kici/`.
pub const ENV_LOCAL_FILE: &str = ".env.local";

/// The secrets of `kici_dir`'s file; none when it does not exist.
pub fn load(kici_dir: &Path) -> anyhow::Result<BTreeMap<String, SecretValue>> {
    let pairs = load_pairs(&kici_dir.join(SECRETS_FILE))?;
    Ok(pairs
        .into_iter()
        .map(|(key, value)| {
            let secret = SecretValue {
                value,
                scope: Some("local".to_string()),
            };
            (key, secret)
        })
        .collect())
}

/// The variables of `kici_dir`'s `.env.local`; none when it does not exist.
pub fn load_env_local(kici_dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    load_pairs(&kici_dir.join(ENV_LOCAL_FILE))
}

fn load_pairs(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    parse(&text).with_context(|| format!("{} is not `KEY=value` lines", path.display()))
}

fn parse(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut pairs = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            bail!("line {}: no `=` (write KEY=value)", number + 1);
        };
        let key = key.trim().trim_start_matches("export ").trim();
        if !kici_engine::protection::valid_key(key) {
            bail!(
                "line {}: `{key}` is not a valid name (letters, digits and `_`)",
                number + 1
            );
        }
        let value = value.trim();
        let unquoted = [('"', '"'), ('\'', '\'')]
            .iter()
            .find_map(|(open, close)| value.strip_prefix(*open)?.strip_suffix(*close))
            .unwrap_or(value);
        pairs.insert(key.to_string(), unquoted.to_string());
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_lines_become_secrets() {
        let secrets = parse("# deploy\nDEPLOY_KEY=abc=def\n\nexport TOKEN=\"quoted value\"\n").unwrap();
        assert_eq!(secrets["DEPLOY_KEY"], "abc=def");
        assert_eq!(secrets["TOKEN"], "quoted value");
        assert!(parse("NOVALUE").unwrap_err().to_string().contains("line 1: no `=`"));
        assert!(parse("1X=2").unwrap_err().to_string().contains("not a valid name"));
    }
}
