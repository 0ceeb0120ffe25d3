//! Commit statuses on forges (spec `execution.md` §2.3 phase A, `authoring.md` §5): what KiCI
//! reports for a run (`kici/<workflow>`) and each of its jobs (`kici/<workflow>/job/<job>`),
//! in each forge's own vocabulary, and the documented request that carries it:
//!
//! - Gitea and Forgejo: `POST {api}/repos/{owner}/{repo}/statuses/{sha}`,
//!   `Authorization: token <PAT>`, `{state, target_url, description, context}` with `state` one
//!   of `pending success error failure warning`.
//! - GitLab: `POST {api}/projects/{url-encoded path}/statuses/{sha}`, `PRIVATE-TOKEN: <PAT>`,
//!   `{state, name, target_url, description}` with `state` one of `pending running success
//!   failed canceled`.
//! - GitHub (a repository token): `POST {api}/repos/{owner}/{repo}/statuses/{sha}`,
//!   `Authorization: Bearer <PAT>`, `{state, target_url, description, context}` with `state` one
//!   of `error failure pending success`.
//!
//! Gogs has no commit-status API, so a `gogs` source reports nothing (and refuses an API URL).

use serde_json::{Value, json};

use crate::status::{JobStatus, RunStatus};

/// The forges whose commit-status API KiCI speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForgeApi {
    Gitea,
    GitLab,
    GitHub,
}

impl ForgeApi {
    /// The API of a source preset; `None` for presets without a commit-status API.
    pub fn of_preset(preset: &str) -> Option<ForgeApi> {
        PRESETS.iter().find(|p| p.name == preset).and_then(|p| p.statuses)
    }

    /// The API's base URL on the host of an `https://host/{owner}/{name}.git` clone URL.
    pub fn default_base_url(self, git_url: &str) -> Option<String> {
        let url = url::Url::parse(git_url).ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        let host = url.host_str()?;
        let origin = match url.port() {
            Some(port) => format!("{}://{host}:{port}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        };
        Some(match self {
            ForgeApi::Gitea => format!("{origin}/api/v1"),
            ForgeApi::GitLab => format!("{origin}/api/v4"),
            ForgeApi::GitHub if host == "github.com" => "https://api.github.com".to_string(),
            ForgeApi::GitHub => format!("{origin}/api/v3"),
        })
    }
}

/// A webhook preset of a generic source: how its forge names, identifies and signs events, and
/// whether it has a commit-status API (`kici-admin source list-presets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub name: &'static str,
    pub forge: &'static str,
    pub event_header: &'static str,
    pub delivery_header: &'static str,
    pub signature: &'static str,
    pub statuses: Option<ForgeApi>,
}

pub const PRESETS: [Preset; 6] = [
    Preset {
        name: "forgejo",
        forge: "Forgejo",
        event_header: "X-Forgejo-Event",
        delivery_header: "X-Forgejo-Delivery",
        signature: "X-Forgejo-Signature (HMAC-SHA256 hex)",
        statuses: Some(ForgeApi::Gitea),
    },
    Preset {
        name: "gitea",
        forge: "Gitea",
        event_header: "X-Gitea-Event",
        delivery_header: "X-Gitea-Delivery",
        signature: "X-Gitea-Signature (HMAC-SHA256 hex)",
        statuses: Some(ForgeApi::Gitea),
    },
    Preset {
        name: "gogs",
        forge: "Gogs",
        event_header: "X-Gogs-Event",
        delivery_header: "X-Gogs-Delivery",
        signature: "X-Hub-Signature-256 (HMAC-SHA256)",
        statuses: None,
    },
    Preset {
        name: "gitlab-repo",
        forge: "GitLab project webhook",
        event_header: "X-Gitlab-Event",
        delivery_header: "X-Gitlab-Event-UUID",
        signature: "X-Gitlab-Token (the secret itself)",
        statuses: Some(ForgeApi::GitLab),
    },
    Preset {
        name: "github-repo",
        forge: "GitHub repository webhook",
        event_header: "X-GitHub-Event",
        delivery_header: "X-GitHub-Delivery",
        signature: "X-Hub-Signature-256 (HMAC-SHA256)",
        statuses: Some(ForgeApi::GitHub),
    },
    Preset {
        name: "custom",
        forge: "any service, no git (genericWebhook() triggers)",
        event_header: "X-Event-Type (optional)",
        delivery_header: "X-Delivery-Id",
        signature: "X-Hub-Signature-256 (HMAC-SHA256), or Authorization: Bearer (--verification bearer_token)",
        statuses: None,
    },
];

/// A status in KiCI's words, before a forge's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommitState {
    Pending,
    Running,
    Success,
    Failure,
    Cancelled,
}

impl CommitState {
    pub fn of_run(status: RunStatus) -> CommitState {
        match status {
            RunStatus::Pending | RunStatus::Held => CommitState::Pending,
            RunStatus::Running | RunStatus::Cancelling => CommitState::Running,
            RunStatus::Success => CommitState::Success,
            RunStatus::Failed => CommitState::Failure,
            RunStatus::Cancelled => CommitState::Cancelled,
        }
    }

    pub fn of_job(status: JobStatus) -> CommitState {
        match status {
            JobStatus::Pending | JobStatus::Queued | JobStatus::Held | JobStatus::Waiting => CommitState::Pending,
            JobStatus::Running | JobStatus::Recovering | JobStatus::Cancelling => CommitState::Running,
            // A skipped job does not block a merge.
            JobStatus::Success | JobStatus::Skipped => CommitState::Success,
            JobStatus::Failed | JobStatus::TimedOutStale | JobStatus::DriftDropped => CommitState::Failure,
            JobStatus::Cancelled => CommitState::Cancelled,
        }
    }

    /// The forge's word for it.
    pub fn on(self, api: ForgeApi) -> &'static str {
        match (api, self) {
            (ForgeApi::GitLab, CommitState::Pending) => "pending",
            (ForgeApi::GitLab, CommitState::Running) => "running",
            (ForgeApi::GitLab, CommitState::Success) => "success",
            (ForgeApi::GitLab, CommitState::Failure) => "failed",
            (ForgeApi::GitLab, CommitState::Cancelled) => "canceled",
            (_, CommitState::Pending | CommitState::Running) => "pending",
            (_, CommitState::Success) => "success",
            (_, CommitState::Failure) => "failure",
            (_, CommitState::Cancelled) => "error",
        }
    }
}

/// The longest description forges keep (GitHub's limit).
const MAX_DESCRIPTION_CHARS: usize = 140;

/// The status line under a context: `Queued`, `Running`, `Succeeded`, `Failed: <reason>`…
pub fn description(state: CommitState, status: &str, reason: Option<&str>) -> String {
    let text = match (state, reason) {
        (CommitState::Pending, _) => format!("Waiting ({status})"),
        (CommitState::Running, _) => "Running".to_string(),
        (CommitState::Success, _) if status == "skipped" => "Skipped".to_string(),
        (CommitState::Success, _) => "Succeeded".to_string(),
        (CommitState::Failure, Some(reason)) => format!("Failed: {reason}"),
        (CommitState::Failure, None) => "Failed".to_string(),
        (CommitState::Cancelled, Some(reason)) => format!("Cancelled: {reason}"),
        (CommitState::Cancelled, None) => "Cancelled".to_string(),
    };
    let one_line = text.lines().next().unwrap_or_default();
    if one_line.chars().count() <= MAX_DESCRIPTION_CHARS {
        one_line.to_string()
    } else {
        let cut: String = one_line.chars().take(MAX_DESCRIPTION_CHARS - 1).collect();
        format!("{cut}…")
    }
}

/// `kici/<workflow>`.
pub fn run_context(workflow: &str) -> String {
    format!("kici/{workflow}")
}

/// `kici/<workflow>/job/<job>`.
pub fn job_context(workflow: &str, job: &str) -> String {
    format!("kici/{workflow}/job/{job}")
}

/// One status to set on a commit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CommitStatus {
    pub context: String,
    pub state: CommitState,
    pub description: String,
    pub target_url: Option<String>,
}

/// An HTTP request to make, fully described (no I/O here).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    /// `POST` or `PATCH`.
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

/// The request that sets `status` on commit `sha` of `repo` (`owner/name`).
pub fn status_request(
    api: ForgeApi,
    base_url: &str,
    repo: &str,
    sha: &str,
    token: &str,
    status: &CommitStatus,
) -> ApiRequest {
    let base = base_url.trim_end_matches('/');
    let state = status.state.on(api);
    let mut body = match api {
        ForgeApi::GitLab => json!({"state": state, "name": status.context, "description": status.description}),
        _ => json!({"state": state, "context": status.context, "description": status.description}),
    };
    if let Some(url) = &status.target_url {
        body["target_url"] = Value::String(url.clone());
    }
    match api {
        ForgeApi::GitLab => ApiRequest {
            method: "POST",
            url: format!("{base}/projects/{}/statuses/{sha}", repo.replace('/', "%2F")),
            headers: vec![("PRIVATE-TOKEN", token.to_string())],
            body,
        },
        ForgeApi::Gitea => ApiRequest {
            method: "POST",
            url: format!("{base}/repos/{repo}/statuses/{sha}"),
            headers: vec![("Authorization", format!("token {token}"))],
            body,
        },
        ForgeApi::GitHub => ApiRequest {
            method: "POST",
            url: format!("{base}/repos/{repo}/statuses/{sha}"),
            headers: github_headers(token),
            body,
        },
    }
}

fn github_headers(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Authorization", format!("Bearer {token}")),
        ("Accept", "application/vnd.github+json".to_string()),
        ("X-GitHub-Api-Version", "2022-11-28".to_string()),
    ]
}

/// A GitHub check run's conclusion for a status KiCI reports as finished.
fn conclusion(state: CommitState, status: &str) -> &'static str {
    match (state, status) {
        (_, "skipped") => "skipped",
        (_, "timed_out_stale") => "timed_out",
        (CommitState::Success, _) => "success",
        (CommitState::Cancelled, _) => "cancelled",
        _ => "failure",
    }
}

/// One GitHub check run (`kici/<workflow>`, `…/job/<job>`, `…/setup`) as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckRun {
    pub name: String,
    pub state: CommitState,
    /// KiCI's status word (`queued`, `skipped`, `timed_out_stale`…), for the conclusion.
    pub status: String,
    pub title: String,
    pub summary: String,
    pub details_url: Option<String>,
    /// Our id for it (`<runId>/<name>`), so a check run can be found again.
    pub external_id: String,
}

/// The request that creates a check run on `sha` (`POST /repos/{repo}/check-runs`), or, with
/// `id`, updates it (`PATCH /repos/{repo}/check-runs/{id}`).
pub fn check_run_request(
    base_url: &str,
    repo: &str,
    sha: &str,
    token: &str,
    id: Option<u64>,
    check: &CheckRun,
) -> ApiRequest {
    let base = base_url.trim_end_matches('/');
    let status = match check.state {
        CommitState::Pending => "queued",
        CommitState::Running => "in_progress",
        _ => "completed",
    };
    let mut body = json!({
        "name": check.name,
        "status": status,
        "external_id": check.external_id,
        "output": {"title": check.title, "summary": check.summary},
    });
    if status == "completed" {
        body["conclusion"] = json!(conclusion(check.state, &check.status));
    }
    if let Some(url) = &check.details_url {
        body["details_url"] = json!(url);
    }
    match id {
        None => {
            body["head_sha"] = json!(sha);
            ApiRequest {
                method: "POST",
                url: format!("{base}/repos/{repo}/check-runs"),
                headers: github_headers(token),
                body,
            }
        }
        Some(id) => ApiRequest {
            method: "PATCH",
            url: format!("{base}/repos/{repo}/check-runs/{id}"),
            headers: github_headers(token),
            body,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: CommitState) -> CommitStatus {
        CommitStatus {
            context: "kici/ci/job/test (linux)".into(),
            state,
            description: "Running".into(),
            target_url: Some("https://ci.example/runs/r1".into()),
        }
    }

    #[test]
    fn each_forge_gets_its_documented_request() {
        let gitea = status_request(
            ForgeApi::Gitea,
            "https://git.example/api/v1/",
            "acme/app",
            "abc",
            "t0k",
            &status(CommitState::Running),
        );
        assert_eq!(gitea.url, "https://git.example/api/v1/repos/acme/app/statuses/abc");
        assert_eq!(gitea.headers, [("Authorization", "token t0k".to_string())]);
        assert_eq!(
            gitea.body,
            json!({"state": "pending", "context": "kici/ci/job/test (linux)", "description": "Running", "target_url": "https://ci.example/runs/r1"})
        );
        let gitlab = status_request(
            ForgeApi::GitLab,
            "https://gl.example/api/v4",
            "group/sub/app",
            "abc",
            "t0k",
            &status(CommitState::Cancelled),
        );
        assert_eq!(
            gitlab.url,
            "https://gl.example/api/v4/projects/group%2Fsub%2Fapp/statuses/abc"
        );
        assert_eq!(gitlab.body["state"], "canceled");
        assert_eq!(gitlab.body["name"], "kici/ci/job/test (linux)");
        let github = status_request(
            ForgeApi::GitHub,
            "https://api.github.com",
            "acme/app",
            "abc",
            "t0k",
            &status(CommitState::Failure),
        );
        assert_eq!(github.body["state"], "failure");
        assert_eq!(github.headers[0], ("Authorization", "Bearer t0k".to_string()));
    }

    #[test]
    fn check_runs_are_created_then_updated() {
        let check = CheckRun {
            name: "kici/ci/job/test".into(),
            state: CommitState::Failure,
            status: "timed_out_stale".into(),
            title: "Failed".into(),
            summary: "No heartbeat received for 120s".into(),
            details_url: Some("https://ci.example/runs/r1".into()),
            external_id: "r1/kici/ci/job/test".into(),
        };
        let create = check_run_request("https://api.github.com", "acme/app", "abc", "ghs_1", None, &check);
        assert_eq!(
            (create.method, create.url.as_str()),
            ("POST", "https://api.github.com/repos/acme/app/check-runs")
        );
        assert_eq!(create.body["head_sha"], "abc");
        assert_eq!(
            (create.body["status"].as_str(), create.body["conclusion"].as_str()),
            (Some("completed"), Some("timed_out"))
        );
        let update = check_run_request(
            "https://api.github.com",
            "acme/app",
            "abc",
            "ghs_1",
            Some(7),
            &CheckRun {
                state: CommitState::Running,
                ..check
            },
        );
        assert_eq!(
            (update.method, update.url.as_str()),
            ("PATCH", "https://api.github.com/repos/acme/app/check-runs/7")
        );
        assert_eq!(update.body.get("conclusion"), None);
        assert_eq!(update.body.get("head_sha"), None);
    }

    #[test]
    fn api_urls_follow_the_clone_url() {
        assert_eq!(
            ForgeApi::Gitea
                .default_base_url("https://git.example:3000/{owner}/{name}.git")
                .as_deref(),
            Some("https://git.example:3000/api/v1")
        );
        assert_eq!(
            ForgeApi::GitHub
                .default_base_url("https://github.com/{owner}/{name}.git")
                .as_deref(),
            Some("https://api.github.com")
        );
        assert_eq!(ForgeApi::GitLab.default_base_url("git@gl.example:a/b.git"), None);
        assert_eq!(ForgeApi::of_preset("gogs"), None);
    }

    #[test]
    fn descriptions_are_one_short_line() {
        assert_eq!(description(CommitState::Pending, "queued", None), "Waiting (queued)");
        assert_eq!(description(CommitState::Success, "skipped", None), "Skipped");
        let long = description(
            CommitState::Failure,
            "failed",
            Some(&format!("{}\nsecond line", "x".repeat(300))),
        );
        assert_eq!(long.chars().count(), 140);
        assert!(long.starts_with("Failed: xxx") && long.ends_with('…'));
    }
}
