//! How git is handed clone credentials, by the orchestrator (its mirrors) and by agents (their
//! checkouts): a user and password (a token) through a credential helper given in the
//! environment of that one git process (`GIT_CONFIG_COUNT`, `KICI_GIT_USERNAME`,
//! `KICI_GIT_PASSWORD`), or as a header of every request to a server known to want it; an SSH
//! key through `GIT_SSH_COMMAND` naming a 0600 file that lives as
//! long as the git process, with strict host-key checking against known hosts. Never in the
//! URL, the command line, a repository's `config`, or an error text.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A user name and password (or token), or an SSH private key with the known hosts to trust.
/// `Debug` hides the password and the key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitCredentials {
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// An SSH private key (OpenSSH or PEM); the clone URL is then an SSH one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<String>,
    /// `known_hosts` lines the server's key must be in (`pinned`); without them the first key
    /// seen is kept and trusted from then on (`accept-new`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<String>,
}

impl fmt::Debug for GitCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitCredentials")
            .field("username", &self.username)
            .field("password", &"***")
            .field("ssh_key", &self.ssh_key.as_ref().map(|_| "***"))
            .field("known_hosts", &self.known_hosts)
            .finish()
    }
}

impl GitCredentials {
    /// A user name and password or token.
    pub fn password(username: impl Into<String>, password: impl Into<String>) -> GitCredentials {
        GitCredentials {
            username: username.into(),
            password: password.into(),
            ssh_key: None,
            known_hosts: None,
        }
    }
}

/// `GIT_SSH_COMMAND` for a key in `key_file` checked against `known_hosts_file`: only that key,
/// never a prompt, and a server whose key is not known is refused (`pinned`) or, the first time,
/// added (`accept-new`), after which a changed key is refused.
pub fn ssh_command(key_file: &str, known_hosts_file: &str, pinned: bool) -> String {
    let quote = |path: &str| format!("'{}'", path.replace('\'', "'\\''"));
    format!(
        "ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking={} -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null",
        quote(key_file),
        if pinned { "yes" } else { "accept-new" },
        quote(known_hosts_file)
    )
}

/// The credential helper git runs (through `sh`) when a server asks who we are. It answers
/// `get` from the environment of the git process and ignores `store`/`erase`. It is the only
/// helper: the empty value before it drops any helper of the user's or the system's config,
/// so nothing saves the credentials.
const CREDENTIAL_HELPER: &str = r#"!f() { test "$1" = get || exit 0; printf 'username=%s\npassword=%s\n' "$KICI_GIT_USERNAME" "$KICI_GIT_PASSWORD"; }; f"#;

/// The environment that hands `credentials` to one git process.
pub fn credential_env(credentials: &GitCredentials) -> [(&'static str, &str); 7] {
    [
        ("GIT_CONFIG_COUNT", "2"),
        ("GIT_CONFIG_KEY_0", "credential.helper"),
        ("GIT_CONFIG_VALUE_0", ""),
        ("GIT_CONFIG_KEY_1", "credential.helper"),
        ("GIT_CONFIG_VALUE_1", CREDENTIAL_HELPER),
        ("KICI_GIT_USERNAME", &credentials.username),
        ("KICI_GIT_PASSWORD", &credentials.password),
    ]
}

/// The environment that sends `credentials` with every HTTP request of one git process as
/// Basic auth (`http.extraHeader`), for a server known to want them (the orchestrator's own):
/// no 401 round trip first, and no helper to start. The header goes to that server only: no
/// proxy (not even one of a git config), no redirect, and no credential helper of the user's
/// is asked or told anything.
pub fn header_env(credentials: &GitCredentials) -> [(&'static str, String); 9] {
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", credentials.username, credentials.password));
    [
        ("GIT_CONFIG_COUNT", "4".to_string()),
        ("GIT_CONFIG_KEY_0", "http.extraHeader".to_string()),
        ("GIT_CONFIG_VALUE_0", format!("Authorization: Basic {basic}")),
        ("GIT_CONFIG_KEY_1", "http.proxy".to_string()),
        ("GIT_CONFIG_VALUE_1", String::new()),
        ("GIT_CONFIG_KEY_2", "http.followRedirects".to_string()),
        ("GIT_CONFIG_VALUE_2", "false".to_string()),
        ("GIT_CONFIG_KEY_3", "credential.helper".to_string()),
        ("GIT_CONFIG_VALUE_3", String::new()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ssh_command_trusts_only_known_hosts() {
        assert_eq!(
            ssh_command("/tmp/k y", "/tmp/it's", true),
            "ssh -i '/tmp/k y' -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile='/tmp/it'\\''s' -o GlobalKnownHostsFile=/dev/null"
        );
        let credentials = GitCredentials {
            ssh_key: Some("-----BEGIN OPENSSH PRIVATE KEY-----".into()),
            ..GitCredentials::password("git", "")
        };
        assert!(!format!("{credentials:?}").contains("BEGIN"));
    }
}
