//! How git is handed clone credentials, by the orchestrator (its mirrors) and by agents (their
//! checkouts): through a credential helper given in the environment of that one git process
//! (`GIT_CONFIG_COUNT`, `KICI_GIT_USERNAME`, `KICI_GIT_PASSWORD`), never in the URL, the
//! command line, a repository's `config`, or an error text.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A user name and password (or token). `Debug` hides the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitCredentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for GitCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitCredentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
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
