//! A double of the forges' commit-status APIs, as documented, for what cannot run here:
//!
//! - Gitea / Forgejo: `POST /api/v1/repos/{owner}/{repo}/statuses/{sha}`, `Authorization: token
//!   <token>`, body `{state: pending|success|error|failure|warning, context, description?,
//!   target_url?}`.
//! - GitLab: `POST /api/v4/projects/{url-encoded path}/statuses/{sha}`, `PRIVATE-TOKEN:
//!   <token>`, body `{state: pending|running|success|failed|canceled, name, description?,
//!   target_url?}`.
//! - GitHub: `POST /repos/{owner}/{repo}/statuses/{sha}`, `Authorization: Bearer|token
//!   <token>`, body `{state: error|failure|pending|success, context, description? (≤ 140),
//!   target_url?}`.
//!
//! A wrong token is 401, an unknown endpoint 404, a body outside the documented shape 422; each
//! accepted status is kept in order, each refusal with its reason.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::fake_api::{FakeApi, Request};

/// One status a forge accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgeStatus {
    /// `gitea`, `gitlab` or `github`.
    pub forge: &'static str,
    pub repo: String,
    pub sha: String,
    pub context: String,
    pub state: String,
    pub description: String,
    pub target_url: Option<String>,
}

pub struct ForgeDouble {
    api: FakeApi,
    accepted: Arc<Mutex<Vec<ForgeStatus>>>,
    refused: Arc<Mutex<Vec<String>>>,
}

fn answer(status: u16, message: &str) -> (u16, String) {
    (status, json!({"message": message}).to_string())
}

/// The forge, repository and commit a path names, or `None` for an unknown endpoint.
fn route(target: &str) -> Option<(&'static str, String, String)> {
    let path = target.split('?').next().unwrap_or_default();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["api", "v1", "repos", owner, repo, "statuses", sha] => {
            Some(("gitea", format!("{owner}/{repo}"), sha.to_string()))
        }
        ["api", "v4", "projects", project, "statuses", sha] => {
            Some(("gitlab", project.replace("%2F", "/"), sha.to_string()))
        }
        ["repos", owner, repo, "statuses", sha] => Some(("github", format!("{owner}/{repo}"), sha.to_string())),
        _ => None,
    }
}

fn authorized(forge: &str, request: &Request, token: &str) -> bool {
    let header = |name: &str| request.headers.get(name).map(String::as_str);
    match forge {
        "gitea" => header("authorization") == Some(&format!("token {token}")),
        "gitlab" => header("private-token") == Some(token),
        _ => [format!("Bearer {token}"), format!("token {token}")]
            .iter()
            .any(|expected| header("authorization") == Some(expected)),
    }
}

fn check(forge: &'static str, repo: String, sha: String, body: &Value) -> Result<ForgeStatus, String> {
    let object = body.as_object().ok_or("the body is not a JSON object")?;
    let (states, name_key): (&[&str], &str) = match forge {
        "gitea" => (&["pending", "success", "error", "failure", "warning"], "context"),
        "gitlab" => (&["pending", "running", "success", "failed", "canceled"], "name"),
        _ => (&["error", "failure", "pending", "success"], "context"),
    };
    let allowed = [&["state", "description", "target_url"][..], &[name_key]].concat();
    if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("unknown field `{unknown}`"));
    }
    let state = object
        .get("state")
        .and_then(Value::as_str)
        .ok_or("`state` is missing")?;
    if !states.contains(&state) {
        return Err(format!("`state` {state} is not one of {}", states.join(", ")));
    }
    let context = object
        .get(name_key)
        .and_then(Value::as_str)
        .ok_or(format!("`{name_key}` is missing"))?;
    let description = object.get("description").and_then(Value::as_str).unwrap_or_default();
    if forge == "github" && description.chars().count() > 140 {
        return Err("`description` is longer than 140 characters".into());
    }
    let target_url = object.get("target_url").and_then(Value::as_str).map(str::to_string);
    if target_url.as_deref().is_some_and(|u| !u.starts_with("http")) {
        return Err("`target_url` is not a URL".into());
    }
    if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("`{sha}` is not a commit sha"));
    }
    Ok(ForgeStatus {
        forge,
        repo,
        sha,
        context: context.to_string(),
        state: state.to_string(),
        description: description.to_string(),
        target_url,
    })
}

impl ForgeDouble {
    /// Serves the three APIs, accepting `token` only.
    pub fn start(token: &str) -> ForgeDouble {
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let (kept, refusals, token) = (Arc::clone(&accepted), Arc::clone(&refused), token.to_string());
        let api = FakeApi::start(move |request| {
            let refuse = |status: u16, reason: String| {
                refusals
                    .lock()
                    .expect("refusals")
                    .push(format!("{} {}: {reason}", request.method, request.target));
                answer(status, &reason)
            };
            let Some((forge, repo, sha)) = route(&request.target).filter(|_| request.method == "POST") else {
                return refuse(404, "Not Found".into());
            };
            if !authorized(forge, request, &token) {
                return refuse(401, "Bad credentials".into());
            }
            let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
            match check(forge, repo, sha, &body) {
                Ok(status) => {
                    kept.lock().expect("statuses").push(status);
                    (201, body.to_string())
                }
                Err(reason) => refuse(422, reason),
            }
        });
        ForgeDouble { api, accepted, refused }
    }

    pub fn url(&self) -> &str {
        &self.api.url
    }

    pub fn statuses(&self) -> Vec<ForgeStatus> {
        self.accepted.lock().expect("statuses").clone()
    }

    pub fn refused(&self) -> Vec<String> {
        self.refused.lock().expect("refusals").clone()
    }

    /// The states a context went through, in order, with the last description.
    pub fn history(&self, context: &str) -> (Vec<String>, String) {
        let statuses: Vec<ForgeStatus> = self.statuses().into_iter().filter(|s| s.context == context).collect();
        let last = statuses.last().map(|s| s.description.clone()).unwrap_or_default();
        (statuses.into_iter().map(|s| s.state).collect(), last)
    }
}
