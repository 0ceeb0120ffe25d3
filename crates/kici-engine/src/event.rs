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
    /// Every type a run can be started by (all but `Unknown`).
    pub const ALL: [EventType; 9] = [
        EventType::Push,
        EventType::PullRequest,
        EventType::Tag,
        EventType::Dispatch,
        EventType::Schedule,
        EventType::KiciEvent,
        EventType::WorkflowComplete,
        EventType::JobComplete,
        EventType::GenericWebhook,
    ];

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

/// The most characters of a commit title a run keeps.
pub const MAX_TITLE_CHARS: usize = 200;

impl EventEnvelope {
    /// What the run is about, in a line: the pushed commit's title (its message's first line),
    /// or a pull request's title. `None` for an event that names no commit (a dispatch, a
    /// schedule).
    pub fn title(&self) -> Option<String> {
        let payload = self.payload.as_ref()?;
        let text = |pointer: &str| payload.pointer(pointer).and_then(serde_json::Value::as_str);
        let message = text("/head_commit/message")
            .or_else(|| text("/pull_request/title"))
            .or_else(|| text("/object_attributes/title"))
            .or_else(|| {
                // GitLab lists the pushed commits, the newest last, without a head commit.
                payload.get("commits")?.as_array()?.last()?.get("message")?.as_str()
            })?;
        let line = message.lines().map(str::trim).find(|l| !l.is_empty())?;
        // Control characters (a NUL a database refuses, escapes) are dropped.
        Some(line.chars().filter(|c| !c.is_control()).take(MAX_TITLE_CHARS).collect())
    }

    /// Who caused it: the forge user who sent the event (pusher, pull request author, the
    /// token that dispatched), else the pushed commit's author.
    pub fn actor(&self) -> Option<String> {
        let payload = self.payload.as_ref();
        let text = |pointer: &str| payload?.pointer(pointer).and_then(serde_json::Value::as_str);
        self.sender_username
            .clone()
            .or_else(|| text("/pusher/name").map(str::to_string))
            .or_else(|| text("/head_commit/author/username").map(str::to_string))
            .or_else(|| text("/head_commit/author/name").map(str::to_string))
            .map(|name| name.chars().filter(|c| !c.is_control()).take(100).collect::<String>())
            .filter(|name| !name.is_empty())
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with(payload: serde_json::Value) -> EventEnvelope {
        let mut event = EventEnvelope::new(EventType::Push);
        event.payload = Some(payload);
        event
    }

    #[test]
    fn a_runs_title_and_actor_come_from_the_event() {
        let push = with(
            json!({"head_commit": {"message": "\nFix the cache key\n\nLonger body", "author": {"name": "Rita Lin"}}}),
        );
        assert_eq!(push.title().as_deref(), Some("Fix the cache key"));
        assert_eq!(push.actor().as_deref(), Some("Rita Lin"));
        let mut pr = with(json!({"pull_request": {"title": "Add arm64 runners"}}));
        pr.sender_username = Some("mallory".into());
        assert_eq!(
            (pr.title().as_deref(), pr.actor().as_deref()),
            (Some("Add arm64 runners"), Some("mallory"))
        );
        let gitlab =
            with(json!({"commits": [{"message": "old"}, {"message": "newest\nbody"}], "pusher": {"name": "gl"}}));
        assert_eq!(
            (gitlab.title().as_deref(), gitlab.actor().as_deref()),
            (Some("newest"), Some("gl"))
        );
        let hostile = with(json!({"head_commit": {"message": "a\u{0}b\u{1b}[31mc"}}));
        assert_eq!(hostile.title().as_deref(), Some("ab[31mc"));
        let long = with(json!({"head_commit": {"message": "x".repeat(500)}}));
        assert_eq!(long.title().map(|t| t.chars().count()), Some(MAX_TITLE_CHARS));
        assert_eq!(EventEnvelope::new(EventType::Dispatch).title(), None);
    }
}
