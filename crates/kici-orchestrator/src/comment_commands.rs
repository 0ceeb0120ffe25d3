//! `/kici approve` and `/kici reject [reason]` comments on a pull request (spec `execution.md`
//! §2.2 step 6): a GitHub `issue_comment` webhook whose author can push to the repository
//! (`author_association` `OWNER`, `MEMBER` or `COLLABORATOR`) decides the `trust` holds of the
//! pull request's runs from that source, as `kici approve|reject` would, the commenter's login
//! recorded as the approver. A comment from anyone else, or from a forge whose payload does
//! not say the author's association, decides nothing (logged).

use kici_engine::protection::Approver;
use kici_engine::trust::{CommentCommand, is_writer};
use kici_store::{Source, StoreError};
use serde_json::{Value, json};

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
    let who = text("/comment/user/login").unwrap_or_default();
    let association = text("/comment/author_association").unwrap_or("NONE");
    let number = payload.pointer("/issue/number").and_then(Value::as_u64);
    let repo = text("/repository/full_name");
    if !is_writer(association) {
        tracing::warn!(source = %source.name, commenter = %who, association, "a /kici command from someone who cannot push to the repository decides nothing");
        return ignored("the commenter cannot push to the repository");
    }
    let (Some(number), Some(repo)) = (number, repo) else {
        return ignored("the payload names no pull request");
    };
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
    for hold in pending.iter().filter(|h| h.scope == "trust" && h.repo == repo) {
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
