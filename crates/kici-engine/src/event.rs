//! The normalized event envelope: what triggers are matched against and what steps see as
//! `ctx.event`. Providers' webhook payloads are mapped into it by the ingress; `kici run local`
//! builds one from the command line.

use serde::{Deserialize, Serialize};

/// Event types the matcher knows. Others deserialize as [`EventType::Unknown`] and match no
/// trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Push,
    PullRequest,
    Tag,
    Dispatch,
    Schedule,
    KiciEvent,
    WorkflowComplete,
    JobComplete,
    GenericWebhook,
    #[serde(other)]
    Unknown,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Push => "push",
            EventType::PullRequest => "pull_request",
            EventType::Tag => "tag",
            EventType::Dispatch => "dispatch",
            EventType::Schedule => "schedule",
            EventType::KiciEvent => "kici_event",
            EventType::WorkflowComplete => "workflow_complete",
            EventType::JobComplete => "job_complete",
            EventType::GenericWebhook => "generic_webhook",
            EventType::Unknown => "unknown",
        }
    }
}

/// Runs started by runs started by runs… (a finished run or job, an emitted event): an event
/// deeper than this in such a chain is dropped.
pub const MAX_CHAIN_DEPTH: u64 = 10;

/// How many events led to the run that carries `event`: 0 for a git event, dispatch or schedule.
pub fn chain_depth(event: &EventEnvelope) -> u64 {
    match event.event_type {
        EventType::WorkflowComplete | EventType::JobComplete | EventType::KiciEvent => event
            .payload
            .as_ref()
            .and_then(|p| p.get("chainDepth"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
        _ => 0,
    }
}

/// `ctx.event` and the matcher's input (spec `authoring.md` §2.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    #[serde(rename = "type")]
    pub event_type: EventType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Push branch, PR base branch, tag name, or the default branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_branch: Option<String>,
    /// PR head branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// `owner/repo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_repo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_files: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    /// A pull request's base branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_branch: Option<String>,
    /// A pull request whose head is in another repository than its base.
    #[serde(default, rename = "isForkPR", skip_serializing_if = "Option::is_none")]
    pub is_fork_pr: Option<bool>,
    /// Who caused the event: the forge user, or the token that dispatched it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_user_id: Option<String>,
    /// A dispatch's or schedule's inputs, validated against the trigger's schema
    /// (`ctx.dispatchInputs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch_inputs: Option<serde_json::Map<String, serde_json::Value>>,
}

impl EventEnvelope {
    pub fn new(event_type: EventType) -> Self {
        EventEnvelope {
            event_type,
            action: None,
            target_branch: None,
            source_branch: None,
            sha: None,
            provider: None,
            source_repo: None,
            changed_files: None,
            payload: None,
            base_branch: None,
            is_fork_pr: None,
            sender_username: None,
            sender_user_id: None,
            dispatch_inputs: None,
        }
    }
}
