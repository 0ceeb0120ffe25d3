//! The Platform's configuration, read once from `KICI_*` environment variables and validated
//! before anything starts. Unknown `KICI_*` names are refused (typo catcher), as in every
//! service. Tokens are kept only as SHA-256 hashes, so neither `Debug` nor a log line can leak
//! them.
//!
//! Not here: logging variables (`KICI_LOG_*`, read by `kici_telemetry::logging`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use kici_telemetry::env::{Reader, Var, var};

/// Every variable the Platform reads (plus the logging ones every service accepts): its
/// schema, which the typo catcher knows and `docs/configuration.md` is generated from.
pub const VARS: &[Var] = &[
    var(
        "KICI_PORT",
        "4100",
        "The dashboard's HTTP port (pages, its API, and the orchestrators' WebSocket `/ws/orchestrator`).",
    ),
    var(
        "KICI_BIND_ADDRESS",
        "127.0.0.1",
        "The address it listens on; put a TLS proxy in front of it for anything else.",
    ),
    var(
        "KICI_DATA_DIR",
        "",
        "Its cache of what orchestrators push, its users and sessions. Unset: as the orchestrator's.",
    ),
    var(
        "KICI_PLATFORM_ADMIN_TOKEN",
        "",
        "Required: the owner's API token (16 characters or more).",
    ),
    var(
        "KICI_PLATFORM_ORCHESTRATOR_KEY",
        "",
        "The key an orchestrator connects with (`kici_ok_…`, the orchestrator's `KICI_PLATFORM_TOKEN`).",
    ),
    var(
        "KICI_PLATFORM_STALE_AFTER_MS",
        "300000",
        "An orchestrator silent this long is shown offline, and its runs' data as cached.",
    ),
    var(
        "KICI_PLATFORM_TRUST_PROXY",
        "false",
        "`true` (or `1`) only when a TLS proxy in front of it sets `X-Forwarded-Proto`: session cookies are then `Secure`.",
    ),
];

/// The prefix every orchestrator key carries.
pub const ORCHESTRATOR_KEY_PREFIX: &str = "kici_ok_";

/// The SHA-256 (hex) of a secret; the secret itself is never kept.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn of(secret: &str) -> TokenHash {
        TokenHash(kici_engine::hash::sha256_hex(secret.as_bytes()))
    }

    /// What a session signed in with this secret keeps, to be ended when the secret changes: a
    /// hash of the hash (the database then holds nothing a token check would accept).
    pub fn fingerprint(&self) -> String {
        kici_engine::hash::sha256_hex(self.0.as_bytes())
    }

    /// Whether `presented` hashes to this value. Both sides are hashes of equal length, so the
    /// comparison touches every byte whatever the input.
    pub fn matches(&self, presented: &str) -> bool {
        let presented = TokenHash::of(presented);
        let (left, right) = (self.0.as_bytes(), presented.0.as_bytes());
        left.len() == right.len() && left.iter().zip(right).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Whether the Platform believes a proxy in front of it about the scheme the browser used
/// (`KICI_PLATFORM_TRUST_PROXY`). The Platform itself serves plain HTTP; in production a TLS
/// proxy sits in front and says `X-Forwarded-Proto: https`. Anyone can send that header, so it
/// is read only when the operator says a proxy sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyTrust {
    /// The default (`0`, `false` or unset): `X-Forwarded-Proto` is ignored.
    Ignore,
    /// `1` or `true`: `X-Forwarded-Proto: https` marks the request as HTTPS, so the cookies the
    /// Platform sets carry `Secure`.
    ForwardedProto,
}

/// Protocol timers. Not configurable through the environment (the reference fixes them);
/// tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `auth.request` (and then `source.register`) must arrive this soon, else close 4002.
    pub auth: Duration,
    /// An orchestrator silent this long is closed with 4004.
    pub silence: Duration,
    /// A request proxied to an orchestrator fails with 504 after this.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            auth: Duration::from_secs(10),
            silence: Duration::from_secs(180),
            request: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub bind_address: IpAddr,
    /// `0` picks a free port (tests).
    pub port: u16,
    /// Holds `platform.db`.
    pub data_dir: PathBuf,
    /// `KICI_PLATFORM_ADMIN_TOKEN`: the bootstrap owner's API token.
    pub admin_token: TokenHash,
    /// `KICI_PLATFORM_ORCHESTRATOR_KEY`; `None` refuses every orchestrator.
    pub orchestrator_key: Option<TokenHash>,
    /// A non-terminal run whose orchestrator has been offline this long is reported stale.
    pub stale_after: Duration,
    /// `KICI_PLATFORM_TRUST_PROXY`.
    pub proxy_trust: ProxyTrust,
    pub timeouts: Timeouts,
}

pub use kici_telemetry::env::ConfigError;

impl Config {
    /// Reads the configuration from `env` (the process environment in `main`).
    pub fn from_env(env: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let mut reader = Reader::new(env, VARS)?;
        let port = reader.parse("KICI_PORT", 4100u16, "a port number (0-65535)");
        let bind_address = reader.parse(
            "KICI_BIND_ADDRESS",
            IpAddr::from([127, 0, 0, 1]),
            "an IP address such as 127.0.0.1",
        );
        let stale_after_ms = reader.number("KICI_PLATFORM_STALE_AFTER_MS", 300_000u64);
        kici_telemetry::env::note_default("KICI_PLATFORM_TRUST_PROXY", &"false");
        let proxy_trust = match env.get("KICI_PLATFORM_TRUST_PROXY").map(|v| v.trim()) {
            None | Some("" | "0" | "false") => ProxyTrust::Ignore,
            Some("1" | "true") => ProxyTrust::ForwardedProto,
            Some(other) => {
                reader.problem(format!(
                    "KICI_PLATFORM_TRUST_PROXY: `{other}` is not `1`, `true`, `0` or `false` (hint: set 1 only when a TLS proxy in front of the Platform sets X-Forwarded-Proto)"
                ));
                ProxyTrust::Ignore
            }
        };
        let data_dir = reader.data_dir();
        let admin_token = match env.get("KICI_PLATFORM_ADMIN_TOKEN").map(|t| t.trim()) {
            None | Some("") => {
                reader.problem(
                    "KICI_PLATFORM_ADMIN_TOKEN: required; it is the owner's API token (hint: `openssl rand -hex 32`)",
                );
                None
            }
            Some(token) if token.len() < 16 => {
                reader.problem(
                    "KICI_PLATFORM_ADMIN_TOKEN: must be at least 16 characters (hint: `openssl rand -hex 32`)",
                );
                None
            }
            Some(token) => Some(TokenHash::of(token)),
        };
        let orchestrator_key = match env.get("KICI_PLATFORM_ORCHESTRATOR_KEY").map(|k| k.trim()) {
            None | Some("") => None,
            Some(key) if !key.starts_with(ORCHESTRATOR_KEY_PREFIX) || key.len() == ORCHESTRATOR_KEY_PREFIX.len() => {
                reader.problem(format!(
                    "KICI_PLATFORM_ORCHESTRATOR_KEY: must start with `{ORCHESTRATOR_KEY_PREFIX}` followed by the key (hint: `kici_ok_$(openssl rand -hex 32)`, and the same value as the orchestrator's KICI_PLATFORM_TOKEN)"
                ));
                None
            }
            Some(key) => Some(TokenHash::of(key)),
        };
        let admin_token = reader.finish(admin_token)?;
        Ok(Config {
            bind_address,
            port,
            data_dir,
            admin_token,
            orchestrator_key,
            stale_after: Duration::from_millis(stale_after_ms),
            proxy_trust,
            timeouts: Timeouts::default(),
        })
    }

    /// The cache database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("platform.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const TOKEN: &str = "0123456789abcdef0123";

    #[test]
    fn defaults_bind_localhost_on_4100() {
        let config = Config::from_env(&env(&[
            ("KICI_DATA_DIR", "/tmp/kici-platform-config"),
            ("KICI_PLATFORM_ADMIN_TOKEN", TOKEN),
        ]))
        .unwrap();
        assert_eq!(
            (config.bind_address.to_string(), config.port),
            ("127.0.0.1".to_string(), 4100)
        );
        assert_eq!(
            config.database_path(),
            PathBuf::from("/tmp/kici-platform-config/platform.db")
        );
        assert_eq!(config.stale_after, Duration::from_secs(300));
        assert!(config.admin_token.matches(TOKEN));
        assert!(!config.admin_token.matches("0123456789abcdef0124"));
        assert!(config.orchestrator_key.is_none());
        assert_eq!(format!("{:?}", config.admin_token), "***");
        assert_eq!(config.proxy_trust, ProxyTrust::Ignore);
    }

    #[test]
    fn unknown_variables_and_bad_values_are_refused() {
        let err = Config::from_env(&env(&[("KICI_PLATFORM_ADMIN_TOKNE", TOKEN)])).unwrap_err();
        assert!(
            err.to_string()
                .contains("  - KICI_PLATFORM_ADMIN_TOKNE    (did you mean KICI_PLATFORM_ADMIN_TOKEN?)"),
            "{err}"
        );
        let err = Config::from_env(&env(&[
            ("KICI_PORT", "70000"),
            ("KICI_DATA_DIR", "rel"),
            ("KICI_PLATFORM_ADMIN_TOKEN", "short"),
            ("KICI_PLATFORM_ORCHESTRATOR_KEY", "secret"),
            ("KICI_PLATFORM_TRUST_PROXY", "yes"),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Configuration validation failed:\n  - KICI_PORT: `70000` is not a port number (0-65535)\n  - KICI_PLATFORM_TRUST_PROXY: `yes` is not `1`, `true`, `0` or `false` (hint: set 1 only when a TLS proxy in front of the Platform sets X-Forwarded-Proto)\n  - KICI_DATA_DIR: `rel` must be an absolute path\n  - KICI_PLATFORM_ADMIN_TOKEN: must be at least 16 characters (hint: `openssl rand -hex 32`)\n  - KICI_PLATFORM_ORCHESTRATOR_KEY: must start with `kici_ok_` followed by the key (hint: `kici_ok_$(openssl rand -hex 32)`, and the same value as the orchestrator's KICI_PLATFORM_TOKEN)"
        );
        let err = Config::from_env(&env(&[("KICI_DATA_DIR", "/tmp/x")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Configuration validation failed:\n  - KICI_PLATFORM_ADMIN_TOKEN: required; it is the owner's API token (hint: `openssl rand -hex 32`)"
        );
    }

    #[test]
    fn the_orchestrator_key_is_kept_as_a_hash() {
        let config = Config::from_env(&env(&[
            ("KICI_DATA_DIR", "/tmp/x"),
            ("KICI_PLATFORM_ADMIN_TOKEN", TOKEN),
            ("KICI_PLATFORM_ORCHESTRATOR_KEY", "kici_ok_abc"),
            ("KICI_PLATFORM_STALE_AFTER_MS", "1000"),
            ("KICI_PLATFORM_TRUST_PROXY", "1"),
        ]))
        .unwrap();
        assert_eq!(config.proxy_trust, ProxyTrust::ForwardedProto);
        assert!(!format!("{config:?}").contains("kici_ok_abc"));
        let key = config.orchestrator_key.expect("a key");
        assert!(key.matches("kici_ok_abc"));
        assert!(!key.matches("kici_ok_abd"));
        assert_eq!(config.stale_after, Duration::from_secs(1));
    }
}
