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
//! - GitHub: `GET /repos/{owner}/{repo}/collaborators/{login}/permission`, `Authorization:
//!   Bearer <token>`: `200 {permission: admin|write|read|none}`.
//!
//! A wrong token is 401, an unknown endpoint 404, a body outside the documented shape 422; each
//! accepted status is kept in order, each refusal with its reason.

use std::collections::HashMap;
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
    refused: Refusals,
    /// `(owner/repo, login)` → GitHub's `permission` (`admin`, `write`, `read`, `none`).
    permissions: Permissions,
}

type Permissions = Arc<Mutex<HashMap<(String, String), String>>>;

fn answer(status: u16, message: &str) -> (u16, String) {
    (status, json!({"message": message}).to_string())
}

/// The requests a double refused, each with its reason.
#[derive(Clone, Default)]
struct Refusals(Arc<Mutex<Vec<String>>>);

impl Refusals {
    fn refuse(&self, request: &Request, status: u16, reason: String) -> (u16, String) {
        self.0
            .lock()
            .expect("refusals")
            .push(format!("{} {}: {reason}", request.method, request.target));
        answer(status, &reason)
    }

    fn list(&self) -> Vec<String> {
        self.0.lock().expect("refusals").clone()
    }
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
        let refused = Refusals::default();
        let permissions = Permissions::default();
        let granted = Arc::clone(&permissions);
        let (kept, refusals, token) = (Arc::clone(&accepted), refused.clone(), token.to_string());
        let api = FakeApi::start(move |request| {
            let refuse = |status: u16, reason: String| refusals.refuse(request, status, reason);
            let path: Vec<&str> = request.target.trim_start_matches('/').split('/').collect();
            if let ["repos", owner, name, "collaborators", login, "permission"] = path.as_slice() {
                if request.method != "GET" || !authorized("github", request, &token) {
                    return refuse(401, "Bad credentials".into());
                }
                let key = (format!("{owner}/{name}"), login.to_string());
                let permission = granted.lock().expect("permissions").get(&key).cloned();
                let permission = permission.unwrap_or_else(|| "none".to_string());
                return (
                    200,
                    json!({"permission": permission, "user": {"login": login}}).to_string(),
                );
            }
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
        ForgeDouble {
            api,
            accepted,
            refused,
            permissions,
        }
    }

    /// GitHub's `GET /repos/{owner}/{repo}/collaborators/{login}/permission` answers
    /// `permission` for `login` on `repo` (`none` for anyone not granted).
    pub fn grant(&self, repo: &str, login: &str, permission: &str) {
        self.permissions
            .lock()
            .expect("permissions")
            .insert((repo.to_string(), login.to_string()), permission.to_string());
    }

    pub fn url(&self) -> &str {
        &self.api.url
    }

    pub fn statuses(&self) -> Vec<ForgeStatus> {
        self.accepted.lock().expect("statuses").clone()
    }

    pub fn refused(&self) -> Vec<String> {
        self.refused.list()
    }

    /// The states a context went through, in order, with the last description.
    pub fn history(&self, context: &str) -> (Vec<String>, String) {
        let statuses: Vec<ForgeStatus> = self.statuses().into_iter().filter(|s| s.context == context).collect();
        let last = statuses.last().map(|s| s.description.clone()).unwrap_or_default();
        (statuses.into_iter().map(|s| s.state).collect(), last)
    }
}

/// One state of a GitHub check run, as the double last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRunState {
    pub id: u64,
    pub name: String,
    pub head_sha: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub title: String,
    pub summary: String,
    pub details_url: Option<String>,
}

/// A double of the GitHub App endpoints KiCI uses, as documented:
///
/// - `POST /app/installations/{id}/access_tokens` with `Authorization: Bearer <App JWT>`
///   (RS256, `iss` the App id, at most ten minutes long), optionally narrowed by a body
///   `{repositories: [name without owner], permissions: {…}}`: `201 {token, expires_at}`.
/// - `POST /repos/{owner}/{repo}/check-runs` (`name`, `head_sha`, `status` queued|in_progress|
///   completed, `conclusion` exactly when completed, `details_url`, `external_id`, `output
///   {title, summary}`) and `PATCH /repos/{owner}/{repo}/check-runs/{id}`, with the
///   installation token: `201`/`200 {id, …}`.
/// - `GET /repos/{owner}/{repo}/compare/{base}...{head}` with the installation token:
///   `200 {files: [{filename}]}`.
/// - `POST /app-manifests/{code}/conversions`, no authentication: `201` with the App created
///   from a manifest (`id, slug, pem, webhook_secret, …`), once per code, else `404`.
pub struct GitHubAppDouble {
    api: FakeApi,
    checks: Arc<Mutex<Vec<CheckRunState>>>,
    refused: Refusals,
    manifests: Arc<Mutex<HashMap<String, Value>>>,
}

#[derive(serde::Deserialize)]
struct AppClaims {
    iss: String,
    iat: i64,
    exp: i64,
}

const CONCLUSIONS: [&str; 8] = [
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "stale",
    "timed_out",
];

fn check_body(body: &Value, create: bool) -> Result<(), String> {
    let object = body.as_object().ok_or("the body is not a JSON object")?;
    let allowed = [
        "name",
        "head_sha",
        "status",
        "conclusion",
        "details_url",
        "external_id",
        "output",
        "started_at",
        "completed_at",
    ];
    if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("unknown field `{unknown}`"));
    }
    let text = |key: &str| object.get(key).and_then(Value::as_str);
    if create && text("name").is_none_or(str::is_empty) {
        return Err("`name` is missing".into());
    }
    if create && !text("head_sha").is_some_and(|sha| sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err("`head_sha` is not a commit sha".into());
    }
    let status = text("status").unwrap_or("queued");
    if !["queued", "in_progress", "completed"].contains(&status) {
        return Err(format!("`status` {status} is not queued, in_progress or completed"));
    }
    match (status, text("conclusion")) {
        ("completed", Some(conclusion)) if CONCLUSIONS.contains(&conclusion) => {}
        ("completed", other) => {
            return Err(format!(
                "a completed check run needs a `conclusion` of {}, got {other:?}",
                CONCLUSIONS.join(", ")
            ));
        }
        (_, Some(_)) => return Err("a `conclusion` makes the check run completed; `status` says otherwise".into()),
        (_, None) => {}
    }
    if let Some(output) = object.get("output") {
        let title = output.get("title").and_then(Value::as_str);
        let summary = output.get("summary").and_then(Value::as_str);
        if title.is_none() || summary.is_none_or(|s| s.chars().count() > 65_535) {
            return Err("`output` needs a `title` and a `summary` of at most 65535 characters".into());
        }
    }
    if text("details_url").is_some_and(|u| !u.starts_with("http")) {
        return Err("`details_url` is not a URL".into());
    }
    Ok(())
}

impl GitHubAppDouble {
    /// Serves App `app_id` (its public key `public_key_pem`), installed as `installation`, whose
    /// tokens are `token`; the compare API answers `compared` files.
    pub fn start(
        app_id: &str,
        public_key_pem: &str,
        installation: u64,
        token: &str,
        compared: Vec<String>,
    ) -> GitHubAppDouble {
        let checks: Arc<Mutex<Vec<CheckRunState>>> = Arc::new(Mutex::new(Vec::new()));
        let manifests: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
        let codes = Arc::clone(&manifests);
        let refused = Refusals::default();
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_key_pem.as_bytes()).expect("an RSA public key");
        let (kept, refusals, app_id, token) = (
            Arc::clone(&checks),
            refused.clone(),
            app_id.to_string(),
            token.to_string(),
        );
        let api = FakeApi::start(move |request| {
            let refuse = |status: u16, reason: String| refusals.refuse(request, status, reason);
            let bearer = request
                .headers
                .get("authorization")
                .and_then(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("token ")));
            let path: Vec<&str> = request.target.trim_start_matches('/').split('/').collect();
            match (request.method.as_str(), path.as_slice()) {
                ("POST", ["app-manifests", code, "conversions"]) => {
                    match codes.lock().expect("manifests").remove(*code) {
                        Some(app) => (201, app.to_string()),
                        None => refuse(404, "Not Found".into()),
                    }
                }
                ("POST", ["app", "installations", id, "access_tokens"]) => {
                    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
                    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
                    validation.set_issuer(&[app_id.as_str()]);
                    let claims = match bearer.map(|jwt| jsonwebtoken::decode::<AppClaims>(jwt, &key, &validation)) {
                        Some(Ok(data)) => data.claims,
                        Some(Err(err)) => return refuse(401, format!("A JSON web token could not be decoded: {err}")),
                        None => return refuse(401, "Requires authentication".into()),
                    };
                    if claims.exp - claims.iat > 600 || claims.iss != app_id {
                        return refuse(401, "'Expiration time' claim ('exp') is too far in the future".into());
                    }
                    if id.parse::<u64>().ok() != Some(installation) {
                        return refuse(404, "Not Found".into());
                    }
                    // Optional narrowing: repository names (no owner) and permissions.
                    if !request.body.trim().is_empty() {
                        let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
                        let names_ok = body.get("repositories").is_none_or(|r| {
                            r.as_array().is_some_and(|names| {
                                names
                                    .iter()
                                    .all(|n| n.as_str().is_some_and(|n| !n.is_empty() && !n.contains('/')))
                            })
                        });
                        let permissions_ok = body.get("permissions").is_none_or(Value::is_object);
                        if !body.is_object() || !names_ok || !permissions_ok {
                            return refuse(422, format!("Invalid request: {}", request.body));
                        }
                    }
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .expect("after 1970")
                        .as_secs() as i64;
                    let expires = chrono::DateTime::from_timestamp(now + 3600, 0).expect("a valid time");
                    (201, json!({"token": token, "expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}).to_string())
                }
                (_, ["repos", ..]) if bearer != Some(token.as_str()) => refuse(401, "Bad credentials".into()),
                ("GET", ["repos", _, _, "compare", range]) if range.contains("...") => {
                    let files: Vec<Value> = compared.iter().map(|f| json!({"filename": f})).collect();
                    (200, json!({"files": files}).to_string())
                }
                (method @ ("POST" | "PATCH"), ["repos", _, _, "check-runs", rest @ ..]) => {
                    let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
                    let create = method == "POST";
                    if create != rest.is_empty() {
                        return refuse(404, "Not Found".into());
                    }
                    if let Err(reason) = check_body(&body, create) {
                        return refuse(422, reason);
                    }
                    let mut checks = kept.lock().expect("checks");
                    let previous = match rest.first().map(|id| id.parse::<u64>()) {
                        Some(Ok(id)) => match checks.iter().rev().find(|c| c.id == id) {
                            Some(previous) => Some(previous.clone()),
                            None => return refuse(404, "Not Found".into()),
                        },
                        Some(Err(_)) => return refuse(404, "Not Found".into()),
                        None => None,
                    };
                    let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_string);
                    let state = CheckRunState {
                        id: previous.as_ref().map_or(checks.len() as u64 + 1, |p| p.id),
                        name: text("name")
                            .or_else(|| previous.as_ref().map(|p| p.name.clone()))
                            .unwrap_or_default(),
                        head_sha: text("head_sha")
                            .or_else(|| previous.as_ref().map(|p| p.head_sha.clone()))
                            .unwrap_or_default(),
                        status: text("status").unwrap_or_else(|| "queued".into()),
                        conclusion: text("conclusion"),
                        title: body
                            .pointer("/output/title")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        summary: body
                            .pointer("/output/summary")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        details_url: text("details_url"),
                    };
                    let answer = json!({"id": state.id, "name": state.name, "status": state.status});
                    checks.push(state);
                    (if create { 201 } else { 200 }, answer.to_string())
                }
                _ => refuse(404, "Not Found".into()),
            }
        });
        GitHubAppDouble {
            api,
            checks,
            refused,
            manifests,
        }
    }

    /// GitHub created `app` (`{id, slug, pem, webhook_secret, …}`) from a manifest: `code`
    /// converts to it once.
    pub fn created_from_manifest(&self, code: &str, app: Value) {
        self.manifests.lock().expect("manifests").insert(code.to_string(), app);
    }

    pub fn url(&self) -> &str {
        &self.api.url
    }

    /// Every state each check run went through, in order.
    pub fn check_runs(&self) -> Vec<CheckRunState> {
        self.checks.lock().expect("checks").clone()
    }

    /// The states of the check run named `name`: `status` or `completed:<conclusion>`.
    pub fn history(&self, name: &str) -> Vec<String> {
        self.check_runs()
            .into_iter()
            .filter(|c| c.name == name)
            .map(|c| match c.conclusion {
                Some(conclusion) => format!("{}:{conclusion}", c.status),
                None => c.status,
            })
            .collect()
    }

    pub fn refused(&self) -> Vec<String> {
        self.refused.list()
    }

    /// Every request the double received.
    pub fn requests(&self) -> Vec<Request> {
        self.api.requests()
    }
}
