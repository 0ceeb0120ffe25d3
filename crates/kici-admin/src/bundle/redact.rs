//! What keeps secrets out of a debug bundle (`spec/operator.md` §3.3).
//!
//! - [`redact`], the allowlist: in configuration, a string under a key not in [`SAFE_KEYS`]
//!   becomes `"****"`; numbers, booleans and nulls stay; objects and arrays are walked (a string
//!   in an array is judged by the array's key).
//! - [`SecretMask`], applied to every part: agent tokens (`kat_<64 hex>` → `kat_***`) and the
//!   value of every `KICI_*` environment variable whose name says it is a secret (`TOKEN`,
//!   `SECRET`, `KEY`, `PASSWORD`), plus the admin token in use, wherever they appear.
//!
//! Log lines get only the mask, never the allowlist.

use serde_json::{Map, Value};

/// What a redacted or masked value becomes.
pub const MASK: &str = "****";

/// Keys whose string values are kept (operator.md §3.3).
pub const SAFE_KEYS: &[&str] = &[
    "mode",
    "host",
    "port",
    "logLevel",
    "region",
    "environment",
    "name",
    "label",
    "labels",
    "enabled",
    "disabled",
    "timeout",
    "interval",
    "maxRetries",
    "retries",
    "workers",
    "concurrency",
    "maxConcurrency",
    "batchSize",
    "bufferSize",
    "warmPool",
    "cooldown",
    "type",
    "provider",
    "scaler",
    "driver",
    "backend",
    "protocol",
    "scheme",
    "path",
    "basePath",
    "metricsPath",
    "healthPath",
    "logFormat",
    "logFile",
    "logDir",
    "dataDir",
    "version",
    "debug",
    "verbose",
    "quiet",
    "tls",
    "cors",
    "rateLimiting",
    "maxConnections",
    "poolSize",
    "minPool",
    "maxPool",
    "idleTimeout",
    "connectTimeout",
    "requestTimeout",
    "shutdownTimeout",
    "gracefulShutdown",
];

/// Words in a `KICI_*` variable name that make its value a secret.
const SECRET_NAME_PARTS: [&str; 4] = ["TOKEN", "SECRET", "KEY", "PASSWORD"];
/// Shorter values are not masked: replacing every `1` or `on` in a bundle would destroy it and
/// hide nothing a guess would not find.
pub const MIN_SECRET_LENGTH: usize = 4;

/// The allowlist redaction of a configuration document.
pub fn redact(value: &Value) -> Value {
    redact_under(value, None)
}

fn redact_under(value: &Value, key: Option<&str>) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(name, item)| (name.clone(), redact_under(item, Some(name))))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|item| redact_under(item, key)).collect()),
        Value::String(_) if key.is_some_and(|key| SAFE_KEYS.contains(&key)) => value.clone(),
        Value::String(_) => Value::String(MASK.to_string()),
        Value::Null | Value::Bool(_) | Value::Number(_) => value.clone(),
    }
}

/// The secrets to mask in every part, longest first (so a secret containing another is masked
/// whole).
#[derive(Clone)]
pub struct SecretMask {
    secrets: Vec<String>,
}

impl std::fmt::Debug for SecretMask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretMask({} secrets: ***)", self.secrets.len())
    }
}

impl SecretMask {
    /// The secret-named `KICI_*` variables of `vars`, plus `extra` values (the admin token).
    pub fn new(vars: impl IntoIterator<Item = (String, String)>, extra: &[&str]) -> SecretMask {
        let mut secrets: Vec<String> = vars
            .into_iter()
            .filter(|(name, _)| is_secret_name(name))
            .map(|(_, value)| value)
            .chain(extra.iter().map(|value| value.to_string()))
            .filter(|value| value.chars().count() >= MIN_SECRET_LENGTH)
            .collect();
        // The form a secret takes inside a JSON string, when it differs.
        let escaped: Vec<String> = secrets
            .iter()
            .filter_map(|secret| {
                let quoted = Value::String(secret.clone()).to_string();
                let inner = &quoted[1..quoted.len() - 1];
                (inner != secret).then(|| inner.to_string())
            })
            .collect();
        secrets.extend(escaped);
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        SecretMask { secrets }
    }

    /// Masks agent tokens and the secrets in `text`.
    pub fn text(&self, text: &str) -> String {
        let mut out = kici_engine::mask::mask_agent_tokens(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out
    }

    /// Masks every string (and key) of a JSON document.
    pub fn json(&self, value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(name, item)| (self.text(name), self.json(item)))
                    .collect::<Map<String, Value>>(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|item| self.json(item)).collect()),
            Value::String(text) => Value::String(self.text(text)),
            Value::Null | Value::Bool(_) | Value::Number(_) => value.clone(),
        }
    }
}

fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with("KICI_") && SECRET_NAME_PARTS.iter().any(|part| upper.contains(part))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn allowlist_keeps_safe_strings_numbers_and_booleans() {
        let config = json!({
            "mode": "independent", "port": 4000, "bindAddress": "0.0.0.0", "dataDir": "/var/lib/kici",
            "database": {"url": "postgres://kici:hunter2@db/kici", "password": "hunter2", "poolSize": 5},
            "apiToken": "t0k3n", "privateKey": "-----BEGIN", "webhookSecret": "whs", "oidcSecret": "oidc",
            "labels": ["linux", "gpu"], "scalers": [{"name": "bm", "binaryPath": "/usr/bin/kici-agent", "enabled": true}],
            "bootstrapAdminToken": null, "tls": {"enabled": false, "certPath": "/etc/cert.pem"}
        });
        assert_eq!(
            redact(&config),
            json!({
                "mode": "independent", "port": 4000, "bindAddress": "****", "dataDir": "/var/lib/kici",
                "database": {"url": "****", "password": "****", "poolSize": 5},
                "apiToken": "****", "privateKey": "****", "webhookSecret": "****", "oidcSecret": "****",
                "labels": ["linux", "gpu"], "scalers": [{"name": "bm", "binaryPath": "****", "enabled": true}],
                "bootstrapAdminToken": null, "tls": {"enabled": false, "certPath": "****"}
            })
        );
    }

    #[test]
    fn secrets_from_the_environment_are_masked_everywhere() {
        let vars = [
            ("KICI_SECRET_KEY", "s3cr3t-value"),
            ("KICI_DB_PASSWORD", "pa\"ss"),
            ("KICI_PORT", "4000"),
            ("HOME_TOKEN", "not-kici"),
            ("KICI_METRICS_TOKEN", "on"),
        ]
        .map(|(name, value)| (name.to_string(), value.to_string()));
        let mask = SecretMask::new(vars, &["admin-token-abc"]);
        let token = format!("kat_{}", "0f".repeat(32));
        assert_eq!(
            mask.text(&format!(
                "key=s3cr3t-value admin-token-abc {token} port 4000 not-kici on"
            )),
            "key=**** **** kat_*** port 4000 not-kici on"
        );
        let line = json!({"message": "pw pa\"ss", "s3cr3t-value": 1}).to_string();
        assert_eq!(mask.text(&line), r#"{"message":"pw ****","****":1}"#);
        assert_eq!(
            mask.json(&json!({"a": ["x s3cr3t-value y"], "pa\"ss": true})),
            json!({"a": ["x **** y"], "****": true})
        );
        assert_eq!(format!("{mask:?}"), "SecretMask(4 secrets: ***)");
    }
}
