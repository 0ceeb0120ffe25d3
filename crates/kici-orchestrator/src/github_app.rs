//! GitHub App sources: the App's JWT (RS256, `iss` the App id, nine minutes), installation
//! tokens (`POST /app/installations/{id}/access_tokens`, cached until five minutes before they
//! expire) for clones and the Checks API, and the compare API for a push whose commit list
//! GitHub cut short. The private key and the tokens never reach a log (errors quote GitHub's
//! answer, which holds neither).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kici_engine::event::EventEnvelope;
use kici_engine::ids::SourceId;
use kici_store::Source;
use serde::{Deserialize, Serialize};

use crate::secret_key::Keyring;

/// GitHub's API, unless the source names another (GitHub Enterprise, a test double).
pub const DEFAULT_API: &str = "https://api.github.com";
/// A token is renewed when less than this is left of it.
const RENEW_BEFORE_MS: i64 = 5 * 60 * 1000;
/// How long one request to GitHub may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// GitHub lists at most this many files of a push, and compares up to 300.
pub const TRUNCATED_COMMITS: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum GitHubAppError {
    #[error(
        "the GitHub App private key is not an RSA key in PEM form ({0}) (hint: pass the .pem file GitHub generated, e.g. --private-key @app.private-key.pem)"
    )]
    Key(String),
    #[error("cannot decrypt the GitHub App key of source `{source_name}`: {reason}")]
    Decrypt { source_name: String, reason: String },
    #[error("the webhook names no installation (hint: only events of an installed App carry one)")]
    NoInstallation,
    #[error("GitHub refused {what}: {status} {body}")]
    Refused { what: String, status: u16, body: String },
    #[error("cannot reach GitHub for {what}: {reason}")]
    Unreachable { what: String, reason: String },
}

/// An App's identity: its id and signing key.
pub struct AppAuth {
    app_id: String,
    key: EncodingKey,
}

#[derive(Serialize)]
struct AppClaims<'a> {
    iat: i64,
    exp: i64,
    iss: &'a str,
}

impl AppAuth {
    pub fn new(app_id: &str, private_key_pem: &str) -> Result<AppAuth, GitHubAppError> {
        let key = EncodingKey::from_rsa_pem(private_key_pem.as_bytes())
            .map_err(|err| GitHubAppError::Key(err.to_string()))?;
        Ok(AppAuth {
            app_id: app_id.to_string(),
            key,
        })
    }

    /// The App's JWT at `now_ms`: issued a minute back (clock drift), valid nine minutes.
    pub fn jwt(&self, now_ms: i64) -> Result<String, GitHubAppError> {
        let now = now_ms / 1000;
        let claims = AppClaims {
            iat: now - 60,
            exp: now + 9 * 60,
            iss: &self.app_id,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|err| GitHubAppError::Key(err.to_string()))
    }
}

/// The installation a webhook came through (`installation.id`).
pub fn installation_id(event: &EventEnvelope) -> Option<u64> {
    event.payload.as_ref()?.pointer("/installation/id")?.as_u64()
}

/// The API a GitHub App source talks to.
pub fn api_base(source: &Source) -> String {
    source
        .api_url
        .clone()
        .unwrap_or_else(|| DEFAULT_API.to_string())
        .trim_end_matches('/')
        .to_string()
}

#[derive(Deserialize)]
struct AccessToken {
    token: String,
    expires_at: String,
}

/// What an installation token may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScope<'a> {
    /// Every repository of the installation, with the App's permissions (the orchestrator's
    /// own clone, check runs, the compare API).
    Installation,
    /// One repository (`owner/name`), contents read only: what a job's clone gets, so the token
    /// it holds can fetch nothing else and write nothing.
    ReadOnly(&'a str),
}

/// What GitHub answers when it converts a manifest code: the new App.
#[derive(Deserialize)]
pub struct CreatedApp {
    pub id: u64,
    pub slug: String,
    pub pem: String,
    pub webhook_secret: String,
}

/// A cached token's source, installation and narrowing (the one repository, or none).
type TokenKey = (SourceId, u64, Option<String>);

/// The HTTP client and the installation tokens of every GitHub App source.
pub struct GitHubApps {
    client: reqwest::Client,
    /// Each token with its expiry (epoch ms).
    tokens: Mutex<HashMap<TokenKey, (String, i64)>>,
}

impl Default for GitHubApps {
    fn default() -> GitHubApps {
        GitHubApps {
            client: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .user_agent("kici-orchestrator")
                .build()
                .unwrap_or_default(),
            tokens: Mutex::new(HashMap::new()),
        }
    }
}

fn github_headers(builder: reqwest::RequestBuilder, bearer: &str) -> reqwest::RequestBuilder {
    builder
        .bearer_auth(bearer)
        .header("Accept", "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28")
}

async fn answer(
    what: &str,
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<reqwest::Response, GitHubAppError> {
    let response = sent.map_err(|err| GitHubAppError::Unreachable {
        what: what.to_string(),
        reason: err.to_string(),
    })?;
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    Err(GitHubAppError::Refused {
        what: what.to_string(),
        status,
        body: kici_engine::excerpt::excerpt(&body).into_owned(),
    })
}

impl GitHubApps {
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    fn cached(&self, key: &TokenKey, now_ms: i64) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tokens
            .get(key)
            .filter(|(_, expires)| expires - now_ms > RENEW_BEFORE_MS)
            .map(|(token, _)| token.clone())
    }

    /// An installation token of `source`'s App for `installation`, reaching `scope`, cached
    /// until five minutes before it expires.
    pub async fn installation_token(
        &self,
        keys: &Keyring,
        source: &Source,
        (installation, scope): (u64, TokenScope<'_>),
        now_ms: i64,
    ) -> Result<String, GitHubAppError> {
        let narrowed = match scope {
            TokenScope::Installation => None,
            // The API names repositories without their owner (the installation's account).
            TokenScope::ReadOnly(repo) => Some(repo.rsplit('/').next().unwrap_or(repo).to_string()),
        };
        let key = (source.source_id.clone(), installation, narrowed.clone());
        if let Some(token) = self.cached(&key, now_ms) {
            return Ok(token);
        }
        let credentials = crate::source_secrets::credentials(keys, source)
            .map_err(|err| GitHubAppError::Decrypt {
                source_name: source.name.clone(),
                reason: err.to_string(),
            })?
            .ok_or_else(|| GitHubAppError::Key("the source holds no key".to_string()))?;
        let jwt = AppAuth::new(&credentials.username, &credentials.password)?.jwt(now_ms)?;
        let what = format!("an installation token for installation {installation}");
        let url = format!("{}/app/installations/{installation}/access_tokens", api_base(source));
        let mut request = github_headers(self.client.post(url), &jwt);
        if let Some(repository) = &narrowed {
            request = request.json(&serde_json::json!({
                "repositories": [repository],
                "permissions": {"contents": "read"},
            }));
        }
        let response = answer(&what, request.send().await).await?;
        let token: AccessToken = response.json().await.map_err(|err| GitHubAppError::Unreachable {
            what,
            reason: err.to_string(),
        })?;
        let expires = chrono::DateTime::parse_from_rfc3339(&token.expires_at)
            .map(|t| t.timestamp_millis())
            .unwrap_or(now_ms + 55 * 60 * 1000);
        self.tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key, (token.token.clone(), expires));
        Ok(token.token)
    }

    /// Exchanges the code GitHub's redirect carried after an App was created from a manifest
    /// (`POST /app-manifests/{code}/conversions`, no authentication, valid for an hour, once)
    /// for the App's id, key and webhook secret. `code` is letters and digits (checked by the
    /// caller).
    pub async fn convert_manifest(&self, api: &str, code: &str) -> Result<CreatedApp, GitHubAppError> {
        let what = "the GitHub App created from the manifest".to_string();
        let url = format!("{}/app-manifests/{code}/conversions", api.trim_end_matches('/'));
        let request = self
            .client
            .post(url)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        let response = answer(&what, request.send().await).await?;
        response.json().await.map_err(|err| GitHubAppError::Unreachable {
            what,
            reason: err.to_string(),
        })
    }

    /// The files a push changed between `before` and `after`, from the compare API (GitHub
    /// lists at most 300).
    pub async fn compare_files(
        &self,
        source: &Source,
        token: &str,
        repo: &str,
        before: &str,
        after: &str,
    ) -> Result<Vec<String>, GitHubAppError> {
        #[derive(Deserialize)]
        struct Compare {
            #[serde(default)]
            files: Vec<File>,
        }
        #[derive(Deserialize)]
        struct File {
            filename: String,
        }
        let what = format!("the comparison {before}...{after} of {repo}");
        let url = format!("{}/repos/{repo}/compare/{before}...{after}", api_base(source));
        let response = answer(&what, github_headers(self.client.get(url), token).send().await).await?;
        let compare: Compare = response.json().await.map_err(|err| GitHubAppError::Unreachable {
            what,
            reason: err.to_string(),
        })?;
        let mut files: Vec<String> = compare.files.into_iter().map(|f| f.filename).collect();
        files.sort();
        files.dedup();
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_is_not_rsa_pem_is_explained() {
        let err = AppAuth::new("1", "not a key").err().unwrap().to_string();
        assert!(
            err.starts_with("the GitHub App private key is not an RSA key in PEM form"),
            "{err}"
        );
        assert!(err.ends_with("(hint: pass the .pem file GitHub generated, e.g. --private-key @app.private-key.pem)"));
    }
}
