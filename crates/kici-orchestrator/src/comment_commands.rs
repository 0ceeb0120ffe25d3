//! `/kici approve` and `/kici reject [reason]` comments on a pull request (spec `execution.md`
//! §2.2 step 6): a GitHub `issue_comment` webhook whose author can push to the repository
//! decides the `trust` holds of the pull request's runs from that source that existed when the
//! comment was written, as `kici approve|reject` would, the commenter's login recorded as the
//! approver. Who can push is asked of GitHub (`GET /repos/{repo}/collaborators/{login}/
//! permission`: `admin` or `write`, which `maintain` reads as), with the App's installation
//! token or the source's token; `author_association` only screens (an organization `MEMBER`
//! may have no access to the repository). A comment GitHub cannot vouch for decides nothing
//! (logged), and neither does one older than the run it would approve.

use kici_engine::excerpt::excerpt;
use kici_engine::protection::Approver;
use kici_engine::trust::{CommentCommand, is_writer};
use kici_store::{Source, SourceKind, StoreError};
use serde_json::{Value, json};

use crate::clock::now_ms;
use crate::holds::{self, Decider, Verdict};
use crate::state::Shared;

/// Handles an `issue_comment` webhook; the answer's fields besides `accepted`/`deliveryId`.
pub async fn handle(state: &Shared, source: &Source, payload: &Value) -> Result<Value, StoreError> {
    let text = |pointer: &str| payload.pointer(pointer).and_then(Value::as_str);
    let ignored = |reason: &str| Ok(json!({ "runIds": [], "ignored": reason }));
    if text("/action") != Some("created") || payload.pointer("/issue/pull_request").is_none() {
        return ignored("only new comments on pull requests are read");
    }
    let Some(command) = text("/comment/body").and_then(CommentCommand::parse) else {
        return ignored("the comment is not a /kici command");
    };
    // Quoted in logs and audit entries: bounded.
    let who = excerpt(text("/comment/user/login").unwrap_or_default()).into_owned();
    let who = who.as_str();
    let association = excerpt(text("/comment/author_association").unwrap_or("NONE")).into_owned();
    let association = association.as_str();
    let number = payload.pointer("/issue/number").and_then(Value::as_u64);
    let repo = text("/repository/full_name").map(|r| excerpt(r).into_owned());
    let repo = repo.as_deref();
    if !is_writer(association) {
        tracing::warn!(source = %source.name, commenter = %who, association, "a /kici command from someone who cannot push to the repository decides nothing");
        return ignored("the commenter cannot push to the repository");
    }
    let (Some(number), Some(repo)) = (number, repo) else {
        return ignored("the payload names no pull request");
    };
    let Some(written) = text("/comment/created_at")
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .map(|at| at.timestamp_millis())
    else {
        return ignored("the comment has no creation time");
    };
    match can_push(state, source, payload, repo, who).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(source = %source.name, commenter = %who, repo, "a /kici command from someone GitHub says cannot push decides nothing");
            return ignored("the commenter cannot push to the repository");
        }
        Err(why) => {
            tracing::warn!(source = %source.name, commenter = %who, repo, error = %why, "cannot ask GitHub whether the commenter can push; the /kici command decides nothing");
            return ignored("GitHub could not say whether the commenter can push to the repository");
        }
    }
    let (verdict, reason) = match command {
        CommentCommand::Approve => (Verdict::Approve, None),
        CommentCommand::Reject(reason) => (Verdict::Reject, reason),
    };
    let decider = Decider {
        approver: Approver {
            name: who.to_string(),
            teams: Vec::new(),
        },
        role: format!("forge {association}"),
    };
    let pending = state
        .store
        .holds(None, Some(kici_engine::api::secrets::HoldStatus::Pending))
        .await?;
    let mut decided = Vec::new();
    // A run created after the comment was written was not what the commenter saw.
    for hold in pending
        .iter()
        .filter(|h| h.scope == "trust" && h.repo == repo && h.created_at <= written)
    {
        let Some(run) = state.store.get_run(&hold.run_id).await? else {
            continue;
        };
        let same_pull_request = run.source_id == source.source_id
            && state.store.run_context(&hold.run_id).await?.is_some_and(|inputs| {
                inputs
                    .event
                    .payload
                    .as_ref()
                    .and_then(|p| p.pointer("/pull_request/number"))
                    .and_then(Value::as_u64)
                    == Some(number)
            });
        if !same_pull_request {
            continue;
        }
        let job = hold.job_id.to_string();
        match holds::decide(state, &hold.run_id, Some(&job), verdict, &decider, reason.as_deref()).await? {
            Ok(_) => decided.push(hold.run_id.clone()),
            Err(refused) => {
                tracing::warn!(runId = %hold.run_id, commenter = %who, reason = %refused.into_message(), "a /kici command was refused")
            }
        }
    }
    decided.dedup();
    tracing::info!(source = %source.name, repo, number, commenter = %who, runs = decided.len(), verdict = ?verdict, "pull request comment decided its held runs");
    Ok(json!({ "runIds": decided }))
}

/// Whether `login` may push to `repo` (`owner/name`), as GitHub says; `Err` when it cannot be
/// asked (no token, an unreachable or refusing API, names GitHub would not have).
async fn can_push(state: &Shared, source: &Source, payload: &Value, repo: &str, login: &str) -> Result<bool, String> {
    let plain = |text: &str| {
        !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    let named = repo
        .split_once('/')
        .is_some_and(|(owner, name)| plain(owner) && plain(name));
    if !named || !plain(login) {
        return Err(format!(
            "`{}` or `{}` is not a GitHub name",
            excerpt(repo),
            excerpt(login)
        ));
    }
    let (base, token) = match source.kind {
        SourceKind::GitHubApp => {
            let installation = payload
                .pointer("/installation/id")
                .and_then(Value::as_u64)
                .ok_or("the webhook names no installation")?;
            let scope = (installation, crate::github_app::TokenScope::Installation);
            let token = state
                .github
                .installation_token(&state.config.secret_keys, source, scope, now_ms())
                .await
                .map_err(|err| err.to_string())?;
            (crate::github_app::api_base(source), token)
        }
        _ => {
            let (_, base) = crate::forge_status::target_api(source).ok_or(
                "the source has no API token (hint: --git-password-file with a token that can read the repository)",
            )?;
            let credentials = crate::source_secrets::credentials(&state.config.secret_keys, source)
                .map_err(|err| err.to_string())?
                .ok_or("the source has no API token")?;
            (base.trim_end_matches('/').to_string(), credentials.password)
        }
    };
    let url = format!("{base}/repos/{repo}/collaborators/{login}/permission");
    let response = state
        .github
        .client()
        .get(url)
        .bearer_auth(token)
        .header("Accept", "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28")
        .send()
        .await
        .map_err(|err| format!("cannot reach GitHub: {err}"))?;
    if !response.status().is_success() {
        return Err(format!("GitHub answered {}", response.status()));
    }
    let answer: Value = response.json().await.map_err(|err| err.to_string())?;
    Ok(matches!(
        answer.get("permission").and_then(Value::as_str),
        Some("admin" | "write")
    ))
}
