//! Local secrets for `kici run local`: `.kici/.secrets`, one `KEY=value` per line (`#` comments
//! and blank lines skipped, one pair of surrounding quotes removed). Steps read them through
//! `ctx.secrets` like an agent's, and the runner masks them in the output. Keep the file out of
//! git.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, bail};
use kici_engine::protocol::SecretValue;

/// The file's name inside `.kici/`.
pub const SECRETS_FILE: &str = ".secrets";

/// The secrets of `kici_dir`'s file; none when it does not exist.
pub fn load(kici_dir: &Path) -> anyhow::Result<BTreeMap<String, SecretValue>> {
    let path = kici_dir.join(SECRETS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    parse(&text).with_context(|| format!("{} is not `KEY=value` lines", path.display()))
}

fn parse(text: &str) -> anyhow::Result<BTreeMap<String, SecretValue>> {
    let mut secrets = BTreeMap::new();
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
                "line {}: `{key}` is not a valid secret name (letters, digits and `_`)",
                number + 1
            );
        }
        let value = value.trim();
        let unquoted = [('"', '"'), ('\'', '\'')]
            .iter()
            .find_map(|(open, close)| value.strip_prefix(*open)?.strip_suffix(*close))
            .unwrap_or(value);
        let secret = SecretValue {
            value: unquoted.to_string(),
            scope: Some("local".to_string()),
        };
        secrets.insert(key.to_string(), secret);
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_lines_become_secrets() {
        let secrets = parse("# deploy\nDEPLOY_KEY=abc=def\n\nexport TOKEN=\"quoted value\"\n").unwrap();
        assert_eq!(secrets["DEPLOY_KEY"].value, "abc=def");
        assert_eq!(secrets["TOKEN"].value, "quoted value");
        assert!(parse("NOVALUE").unwrap_err().to_string().contains("line 1: no `=`"));
        assert!(
            parse("1X=2")
                .unwrap_err()
                .to_string()
                .contains("not a valid secret name")
        );
    }
}
