//! Install secrets: the private npm registries (`registries`) and the secret environment
//! variables (`installEnv`) a workflow's `.kici/` dependency install needs. The lock file holds
//! references (`'<environment>:<NAME>'`), never token bytes; the orchestrator resolves them
//! through the environment's secrets when it dispatches a job, and the agent hands the tokens
//! to the package manager through a transient npm user config that names environment
//! variables, so the file itself never holds a token either.

use serde::{Deserialize, Serialize};

use crate::excerpt::excerpt;

/// A private npm registry (`registries` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockRegistry {
    pub url: String,
    /// `@scope` the registry serves; without it, the registry serves every package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `'<environment>:<NAME>'`.
    pub token_secret: String,
    #[serde(default = "always")]
    pub always_auth: bool,
}

fn always() -> bool {
    true
}

/// A `'<environment>:<NAME>'` reference to a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef<'a> {
    pub environment: &'a str,
    pub name: &'a str,
}

impl<'a> SecretRef<'a> {
    pub fn parse(text: &'a str) -> Result<SecretRef<'a>, String> {
        match text.split_once(':') {
            Some((environment, name))
                if crate::protection::valid_name(environment)
                    && crate::protection::valid_key(name)
                    && !name.contains(':') =>
            {
                Ok(SecretRef { environment, name })
            }
            _ => Err(format!(
                "'{}' is not a secret reference of the form '<environment>:<NAME>' (e.g. 'production:NPM_TOKEN')",
                excerpt(text)
            )),
        }
    }
}

/// A resolved registry as a job receives it. `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NpmRegistry {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub always_auth: bool,
    pub token: String,
}

impl std::fmt::Debug for NpmRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NpmRegistry")
            .field("url", &self.url)
            .field("scope", &self.scope)
            .field("token", &"***")
            .finish()
    }
}

/// The one text of an install-secrets failure (`install_secrets`).
pub fn rejected(reason: &str) -> String {
    format!("Workflow install-secrets resolution rejected dispatch: {reason}")
}

/// `registries` and `installEnv` as the SDK checks them: parseable http(s) URLs, valid
/// references, `@scope` names, at most one registry per scope and one without.
pub fn validate(registries: &[LockRegistry], install_env: &[String]) -> Result<(), String> {
    let mut scopes = Vec::new();
    for registry in registries {
        let url = url::Url::parse(&registry.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| format!("registry URL '{}' is not an http(s) URL", excerpt(&registry.url)))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "registry URL '{}' holds credentials; use tokenSecret",
                url.host_str().unwrap_or_default()
            ));
        }
        SecretRef::parse(&registry.token_secret)?;
        if let Some(scope) = &registry.scope
            && !valid_scope(scope)
        {
            return Err(format!(
                "registry scope '{}' is not an npm scope such as '@acme'",
                excerpt(scope)
            ));
        }
        if scopes.contains(&registry.scope) {
            return Err(match &registry.scope {
                Some(scope) => format!("two registries serve scope '{scope}'"),
                None => "two registries have no scope; at most one serves unscoped packages".to_string(),
            });
        }
        scopes.push(registry.scope.clone());
    }
    for reference in install_env {
        SecretRef::parse(reference)?;
    }
    Ok(())
}

fn valid_scope(scope: &str) -> bool {
    scope.strip_prefix('@').is_some_and(|name| {
        name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
    })
}

/// The environment variable that carries registry `index`'s token to the package manager:
/// `KICI_NPM_TOKEN_<first 8 characters of the job id>_<index>`.
pub fn token_variable(job_id: &str, index: usize) -> String {
    let short: String = job_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_ascii_uppercase();
    format!("KICI_NPM_TOKEN_{short}_{index}")
}

/// The transient npm user config for `registries`: each registry's `@scope:registry=` (or
/// `registry=`) line and its auth line naming `${<token_variable>}` instead of the token.
pub fn npmrc(registries: &[NpmRegistry], job_id: &str) -> String {
    let mut text = String::new();
    for (index, registry) in registries.iter().enumerate() {
        let url = if registry.url.ends_with('/') {
            registry.url.clone()
        } else {
            format!("{}/", registry.url)
        };
        match &registry.scope {
            Some(scope) => text.push_str(&format!("{scope}:registry={url}\n")),
            None => text.push_str(&format!("registry={url}\n")),
        }
        // npm keys credentials by the URL without its scheme.
        let nerfed = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
        text.push_str(&format!(
            "//{nerfed}:_authToken=${{{}}}\n",
            token_variable(job_id, index)
        ));
        if registry.always_auth {
            text.push_str(&format!("//{nerfed}:always-auth=true\n"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(url: &str, scope: Option<&str>, token: &str) -> LockRegistry {
        LockRegistry {
            url: url.to_string(),
            scope: scope.map(str::to_string),
            token_secret: token.to_string(),
            always_auth: true,
        }
    }

    #[test]
    fn references_name_an_environment_and_a_key() {
        assert_eq!(
            SecretRef::parse("production:NPM_TOKEN").unwrap(),
            SecretRef {
                environment: "production",
                name: "NPM_TOKEN"
            }
        );
        for bad in [
            "NPM_TOKEN",
            ":NPM_TOKEN",
            "production:",
            "production:A:B",
            "prod uction:X",
        ] {
            let err = SecretRef::parse(bad).unwrap_err();
            assert!(err.contains("'<environment>:<NAME>'"), "{bad}: {err}");
        }
    }

    #[test]
    fn registries_are_checked_like_the_sdk_checks_them() {
        let ok = [
            registry("https://npm.acme.dev", Some("@acme"), "production:NPM_TOKEN"),
            registry("http://127.0.0.1:4873/", None, "ci:TOKEN"),
        ];
        validate(&ok, &["ci:SENTRY_AUTH".to_string()]).unwrap();
        let cases = [
            (vec![registry("ftp://x", None, "a:B")], "is not an http(s) URL"),
            (vec![registry("https://u:p@x.dev", None, "a:B")], "holds credentials"),
            (
                vec![registry("https://x.dev", Some("acme"), "a:B")],
                "is not an npm scope",
            ),
            (
                vec![
                    registry("https://x.dev", None, "a:B"),
                    registry("https://y.dev", None, "a:C"),
                ],
                "two registries have no scope",
            ),
            (
                vec![
                    registry("https://x.dev", Some("@a"), "a:B"),
                    registry("https://y.dev", Some("@a"), "a:C"),
                ],
                "two registries serve scope '@a'",
            ),
            (vec![registry("https://x.dev", None, "B")], "'<environment>:<NAME>'"),
        ];
        for (registries, expected) in cases {
            let err = validate(&registries, &[]).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
        assert!(validate(&[], &["oops".to_string()]).is_err());
    }

    #[test]
    fn the_npmrc_names_variables_never_tokens() {
        let registries = [
            NpmRegistry {
                url: "http://127.0.0.1:4873".to_string(),
                scope: Some("@acme".to_string()),
                always_auth: true,
                token: "s3cr3t".to_string(),
            },
            NpmRegistry {
                url: "https://registry.example/npm/".to_string(),
                scope: None,
                always_auth: false,
                token: "other".to_string(),
            },
        ];
        let text = npmrc(&registries, "7f3a-19bc-4d2e");
        assert_eq!(
            text,
            "@acme:registry=http://127.0.0.1:4873/\n\
             //127.0.0.1:4873/:_authToken=${KICI_NPM_TOKEN_7F3A19BC_0}\n\
             //127.0.0.1:4873/:always-auth=true\n\
             registry=https://registry.example/npm/\n\
             //registry.example/npm/:_authToken=${KICI_NPM_TOKEN_7F3A19BC_1}\n"
        );
        assert!(!text.contains("s3cr3t"));
        assert!(!format!("{:?}", registries[0]).contains("s3cr3t"));
    }
}
