//! Turning webhook bodies into events: the GitHub-shaped payloads of local sources, GitHub,
//! Gitea and Forgejo, and GitLab's. Pushes (branches and tags), pull requests and dispatches
//! (`repository_dispatch`, `workflow_dispatch`) start runs; everything else is answered and
//! ignored.

use kici_engine::event::{EventEnvelope, EventType};
use serde_json::Value;

/// A webhook that names a commit to run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Normalized {
    pub event: EventEnvelope,
    pub git_ref: String,
    /// The commit; empty for a dispatch, whose ref the pipeline resolves.
    pub sha: String,
    /// `owner/repo`, or the source name for local sources.
    pub repo: Option<String>,
    pub clone_url: Option<String>,
    /// The repository's default branch, when the payload names it.
    #[serde(default)]
    pub default_branch: Option<String>,
    /// A pull request's base commit: where an untrusted pull request's lock file is read.
    #[serde(default)]
    pub base_sha: Option<String>,
}

/// Why a webhook starts nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// A well-formed event we do not run (issues, stars, a deleted branch…).
    Ignored(String),
    /// The body lacks what the event type needs.
    Invalid(String),
}

const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

fn text<'a>(body: &'a Value, pointer: &str) -> Option<&'a str> {
    body.pointer(pointer).and_then(Value::as_str)
}

fn required<'a>(body: &'a Value, pointer: &str) -> Result<&'a str, Skip> {
    text(body, pointer).ok_or_else(|| {
        Skip::Invalid(format!(
            "missing `{}` in the payload",
            pointer.trim_start_matches('/').replace('/', ".")
        ))
    })
}

/// Files added, modified or removed by the pushed commits.
fn changed_files(body: &Value) -> Vec<String> {
    let mut files: Vec<String> = body
        .get("commits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|commit| {
            ["added", "modified", "removed"]
                .map(|k| commit.get(k).and_then(Value::as_array).cloned().unwrap_or_default())
        })
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect();
    files.sort();
    files.dedup();
    files
}

/// A push in GitHub's shape (GitHub, Gitea, Forgejo, local sources).
fn github_push(body: &Value, provider: &str) -> Result<Normalized, Skip> {
    let git_ref = required(body, "/ref")?;
    let sha = required(body, "/after")?;
    if sha == ZERO_SHA || body.get("deleted").and_then(Value::as_bool) == Some(true) {
        return Err(Skip::Ignored(format!("{git_ref} was deleted")));
    }
    let (event_type, name) = if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        (EventType::Tag, tag)
    } else if let Some(branch) = git_ref.strip_prefix("refs/heads/") {
        (EventType::Push, branch)
    } else {
        return Err(Skip::Ignored(format!("{git_ref} is neither a branch nor a tag")));
    };
    let mut event = EventEnvelope::new(event_type);
    event.target_branch = Some(name.to_string());
    event.sha = Some(sha.to_string());
    event.provider = Some(provider.to_string());
    event.source_repo = text(body, "/repository/full_name").map(str::to_string);
    event.changed_files = Some(changed_files(body));
    sender(&mut event, body);
    event.payload = Some(body.clone());
    Ok(Normalized {
        event,
        git_ref: git_ref.to_string(),
        sha: sha.to_string(),
        repo: text(body, "/repository/full_name").map(str::to_string),
        clone_url: text(body, "/repository/clone_url").map(str::to_string),
        default_branch: text(body, "/repository/default_branch").map(str::to_string),
        base_sha: None,
    })
}

/// `repository_dispatch` (the action is its `event_type`, the inputs its `client_payload.inputs`)
/// and `workflow_dispatch` (`ref` and `inputs`); both run the head of a branch.
fn github_dispatch(body: &Value, provider: &str, workflow_dispatch: bool) -> Result<Normalized, Skip> {
    let default_branch = text(body, "/repository/default_branch").map(str::to_string);
    let branch = if workflow_dispatch {
        let given = required(body, "/ref")?;
        given.strip_prefix("refs/heads/").unwrap_or(given).to_string()
    } else {
        text(body, "/branch")
            .map(str::to_string)
            .or_else(|| default_branch.clone())
            .unwrap_or_else(|| "main".to_string())
    };
    let mut event = EventEnvelope::new(EventType::Dispatch);
    if !workflow_dispatch {
        event.action = Some(required(body, "/action")?.to_string());
    }
    event.target_branch = Some(branch.clone());
    event.provider = Some(provider.to_string());
    event.source_repo = text(body, "/repository/full_name").map(str::to_string);
    let inputs = if workflow_dispatch {
        "/inputs"
    } else {
        "/client_payload/inputs"
    };
    event.dispatch_inputs = body.pointer(inputs).and_then(Value::as_object).cloned();
    event.payload = Some(body.clone());
    Ok(Normalized {
        event,
        // A full ref (`refs/tags/v1`) stays as given; a branch name is a branch.
        git_ref: if branch.starts_with("refs/") {
            branch.clone()
        } else {
            format!("refs/heads/{branch}")
        },
        sha: String::new(),
        repo: text(body, "/repository/full_name").map(str::to_string),
        clone_url: text(body, "/repository/clone_url").map(str::to_string),
        default_branch,
        base_sha: None,
    })
}

/// Who sent the event: GitHub's and Gitea's `sender`, GitLab's `user`.
fn sender(event: &mut EventEnvelope, body: &Value) {
    event.sender_username = text(body, "/sender/login")
        .or_else(|| text(body, "/user/username"))
        .map(str::to_string);
    event.sender_user_id = body
        .pointer("/sender/id")
        .or_else(|| body.pointer("/user/id"))
        .map(|id| id.as_str().map_or_else(|| id.to_string(), str::to_string));
}

fn github_pull_request(body: &Value, provider: &str) -> Result<Normalized, Skip> {
    let action = required(body, "/action")?;
    let sha = required(body, "/pull_request/head/sha")?;
    let head = required(body, "/pull_request/head/ref")?;
    let base = required(body, "/pull_request/base/ref")?;
    let mut event = EventEnvelope::new(EventType::PullRequest);
    event.action = Some(action.to_string());
    event.target_branch = Some(base.to_string());
    event.base_branch = Some(base.to_string());
    event.source_branch = Some(head.to_string());
    // A fork: the head's repository is not the base's. Unsaid when the payload lacks either.
    let repo_of = |side: &str| {
        text(body, &format!("/pull_request/{side}/repo/full_name"))
            .map(str::to_string)
            .or_else(|| {
                body.pointer(&format!("/pull_request/{side}/repo/id"))
                    .filter(|id| !id.is_null())
                    .map(Value::to_string)
            })
    };
    event.is_fork_pr = match (repo_of("head"), repo_of("base")) {
        (Some(head), Some(base)) => Some(head != base),
        _ => None,
    };
    sender(&mut event, body);
    event.sha = Some(sha.to_string());
    event.provider = Some(provider.to_string());
    event.source_repo = text(body, "/repository/full_name").map(str::to_string);
    event.payload = Some(body.clone());
    // A fork's branch is not in the base repository; the forge keeps its head there as
    // `refs/pull/<n>/head` (GitHub, Gitea, Forgejo), which agents fetch.
    let number = body
        .pointer("/pull_request/number")
        .or_else(|| body.get("number"))
        .and_then(Value::as_u64);
    let git_ref = match (event.is_fork_pr, number) {
        (Some(true), Some(number)) => format!("refs/pull/{number}/head"),
        _ => format!("refs/heads/{head}"),
    };
    Ok(Normalized {
        event,
        git_ref,
        sha: sha.to_string(),
        repo: text(body, "/repository/full_name").map(str::to_string),
        clone_url: text(body, "/repository/clone_url").map(str::to_string),
        default_branch: text(body, "/repository/default_branch").map(str::to_string),
        base_sha: text(body, "/pull_request/base/sha").map(str::to_string),
    })
}

fn gitlab_push(body: &Value) -> Result<Normalized, Skip> {
    let mut shaped = body.clone();
    if let Some(project) = body.get("project") {
        shaped["repository"] = serde_json::json!({
            "full_name": project.get("path_with_namespace"),
            "clone_url": project.get("git_http_url"),
            "default_branch": project.get("default_branch"),
        });
    }
    github_push(&shaped, "gitlab")
}

fn gitlab_merge_request(body: &Value) -> Result<Normalized, Skip> {
    let attributes = body
        .get("object_attributes")
        .ok_or_else(|| Skip::Invalid("missing `object_attributes` in the payload".into()))?;
    let action = match text(attributes, "/action").unwrap_or("open") {
        "open" => "opened",
        "update" => "synchronize",
        "reopen" => "reopened",
        "close" | "merge" => "closed",
        other => return Err(Skip::Ignored(format!("merge request action `{other}`"))),
    };
    let shaped = serde_json::json!({
        "action": action,
        "pull_request": {
            "head": {"ref": attributes.get("source_branch"), "sha": attributes.pointer("/last_commit/id"),
                     "repo": {"id": attributes.get("source_project_id")}},
            "base": {"ref": attributes.get("target_branch"), "sha": attributes.pointer("/diff_refs/base_sha"),
                     "repo": {"id": attributes.get("target_project_id")}},
        },
        "user": body.get("user"),
        "repository": {
            "full_name": body.pointer("/project/path_with_namespace"),
            "clone_url": body.pointer("/project/git_http_url"),
            "default_branch": body.pointer("/project/default_branch"),
        },
    });
    let mut normalized = github_pull_request(&shaped, "gitlab")?;
    normalized.event.payload = Some(body.clone());
    Ok(normalized)
}

/// Normalizes a webhook whose event type (from the preset's header) is `event_name`.
pub fn normalize(event_name: &str, body: &Value, provider: &str) -> Result<Normalized, Skip> {
    match event_name {
        "push" => github_push(body, provider),
        "pull_request" => github_pull_request(body, provider),
        "repository_dispatch" => github_dispatch(body, provider, false),
        "workflow_dispatch" => github_dispatch(body, provider, true),
        "Push Hook" | "Tag Push Hook" => gitlab_push(body),
        "Merge Request Hook" => gitlab_merge_request(body),
        other => Err(Skip::Ignored(format!("`{other}` events do not start runs"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn push_body(git_ref: &str, after: &str) -> Value {
        json!({
            "ref": git_ref, "before": ZERO_SHA, "after": after,
            "repository": {"full_name": "acme/app", "clone_url": "file:///srv/app.git"},
            "commits": [{"added": ["b.ts"], "modified": ["a.ts"], "removed": []}, {"added": [], "modified": ["a.ts"], "removed": ["c.ts"]}]
        })
    }

    #[test]
    fn pushes_tags_and_deletions() {
        let push = normalize("push", &push_body("refs/heads/main", "abc"), "local").unwrap();
        assert_eq!(push.event.event_type, EventType::Push);
        assert_eq!(push.event.target_branch.as_deref(), Some("main"));
        assert_eq!(
            push.event.changed_files.as_deref(),
            Some(&["a.ts".to_string(), "b.ts".into(), "c.ts".into()][..])
        );
        assert_eq!(
            (push.sha.as_str(), push.repo.as_deref(), push.clone_url.as_deref()),
            ("abc", Some("acme/app"), Some("file:///srv/app.git"))
        );
        let tag = normalize("push", &push_body("refs/tags/v1.0", "abc"), "local").unwrap();
        assert_eq!(
            (tag.event.event_type, tag.event.target_branch.as_deref()),
            (EventType::Tag, Some("v1.0"))
        );
        assert_eq!(
            normalize("push", &push_body("refs/heads/x", ZERO_SHA), "local"),
            Err(Skip::Ignored("refs/heads/x was deleted".into()))
        );
        assert_eq!(
            normalize("push", &json!({"after": "x"}), "local"),
            Err(Skip::Invalid("missing `ref` in the payload".into()))
        );
        assert!(matches!(
            normalize("issues", &json!({}), "github"),
            Err(Skip::Ignored(_))
        ));
    }

    #[test]
    fn pull_requests_from_github_and_gitlab() {
        let body = json!({"action": "opened", "pull_request": {"head": {"ref": "feature", "sha": "def"}, "base": {"ref": "main"}}, "repository": {"full_name": "acme/app"}});
        let pr = normalize("pull_request", &body, "github").unwrap();
        assert_eq!(
            (
                pr.event.target_branch.as_deref(),
                pr.event.source_branch.as_deref(),
                pr.sha.as_str()
            ),
            (Some("main"), Some("feature"), "def")
        );
        let gitlab = json!({"object_attributes": {"action": "update", "source_branch": "f", "target_branch": "main", "last_commit": {"id": "123"}}, "project": {"path_with_namespace": "g/p", "git_http_url": "https://gl/g/p.git"}});
        let mr = normalize("Merge Request Hook", &gitlab, "gitlab").unwrap();
        assert_eq!(
            (mr.event.action.as_deref(), mr.repo.as_deref(), mr.sha.as_str()),
            (Some("synchronize"), Some("g/p"), "123")
        );
        let gitlab_push = json!({"ref": "refs/heads/main", "after": "9", "project": {"path_with_namespace": "g/p", "git_http_url": "https://gl/g/p.git"}, "commits": []});
        assert_eq!(
            normalize("Push Hook", &gitlab_push, "gitlab")
                .unwrap()
                .clone_url
                .as_deref(),
            Some("https://gl/g/p.git")
        );
    }

    #[test]
    fn dispatches_run_the_head_of_a_branch_with_their_inputs() {
        let body = json!({"action": "deploy", "client_payload": {"inputs": {"env": "staging"}}, "repository": {"full_name": "acme/app", "default_branch": "trunk"}});
        let dispatch = normalize("repository_dispatch", &body, "github").unwrap();
        assert_eq!(
            (
                dispatch.event.event_type,
                dispatch.event.action.as_deref(),
                dispatch.git_ref.as_str(),
                dispatch.sha.as_str()
            ),
            (EventType::Dispatch, Some("deploy"), "refs/heads/trunk", "")
        );
        assert_eq!(
            Value::from(dispatch.event.dispatch_inputs.unwrap()),
            json!({"env": "staging"})
        );
        let body = json!({"ref": "refs/heads/release", "inputs": {"n": "3"}, "repository": {"full_name": "acme/app"}});
        let dispatch = normalize("workflow_dispatch", &body, "github").unwrap();
        assert_eq!(
            (dispatch.event.action.as_deref(), dispatch.git_ref.as_str()),
            (None, "refs/heads/release")
        );
        assert_eq!(
            normalize("repository_dispatch", &json!({}), "github"),
            Err(Skip::Invalid("missing `action` in the payload".into()))
        );
    }
}
