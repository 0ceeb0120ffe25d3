//! Pull-request trust (spec `execution.md` §2.2 step 7, `operator.md` trust defaults): whose
//! workflow code a pull request runs. Only a trusted contributor's pull request runs the lock
//! file and `.kici/` of its head; any other runs the base branch's, against the head's code,
//! so a fork cannot change what runs with the repository's secrets. Pushes always run their
//! own commit (a pusher has write access).
//!
//! Trusted: a pull request from a branch of the repository itself (opening one needs write
//! access), or whose author GitHub calls `OWNER`, `MEMBER` or `COLLABORATOR`. Known: a
//! `CONTRIBUTOR` (merged before) from a fork. Unknown: anyone else, and a pull request whose
//! origin the payload does not say (fail closed).

use serde::{Deserialize, Serialize};

use crate::event::{EventEnvelope, EventType};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustTier {
    Trusted,
    Known,
    Unknown,
}

impl TrustTier {
    pub fn as_str(self) -> &'static str {
        match self {
            TrustTier::Trusted => "trusted",
            TrustTier::Known => "known",
            TrustTier::Unknown => "unknown",
        }
    }
}

/// Which commit's lock file and `.kici/` a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockSource {
    /// The event's own commit.
    Head,
    /// The pull request's base commit.
    Base,
}

/// What a pull request's run is trusted with, and why (shown on the run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTrust {
    pub tier: TrustTier,
    pub lock_file_source: LockSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contributor: Option<String>,
    pub reason: String,
    /// Why the run's jobs wait for a maintainer's approval (see [`RunTrust::hold_for`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
}

/// GitHub's `author_association` values of people with write access.
const WRITERS: [&str; 3] = ["OWNER", "MEMBER", "COLLABORATOR"];

/// Whether GitHub's `author_association` says the person can push to the repository.
pub fn is_writer(association: &str) -> bool {
    WRITERS.contains(&association)
}

/// The most characters of a `/kici reject` reason kept (it becomes the held jobs' error).
pub const MAX_REJECT_REASON_CHARS: usize = 500;

/// A maintainer's command in a pull request comment: `/kici approve`, or `/kici reject` with
/// an optional reason, alone on the comment's first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentCommand {
    Approve,
    Reject(Option<String>),
}

impl CommentCommand {
    pub fn parse(comment: &str) -> Option<CommentCommand> {
        let line = comment.lines().next()?.trim();
        let rest = line
            .strip_prefix("/kici")
            .filter(|r| r.starts_with(char::is_whitespace))?;
        let mut words = rest.trim_start().splitn(2, char::is_whitespace);
        match (words.next()?, words.next().map(str::trim).filter(|r| !r.is_empty())) {
            ("approve", None) => Some(CommentCommand::Approve),
            ("reject", reason) => Some(CommentCommand::Reject(
                reason.map(|r| r.chars().take(MAX_REJECT_REASON_CHARS).collect()),
            )),
            _ => None,
        }
    }
}

/// The trust of a pull-request event; `None` for every other event (they run their own commit).
pub fn assess(event: &EventEnvelope) -> Option<RunTrust> {
    if event.event_type != EventType::PullRequest {
        return None;
    }
    let association = event
        .payload
        .as_ref()
        .and_then(|p| p.pointer("/pull_request/author_association"))
        .and_then(serde_json::Value::as_str);
    let who = event.sender_username.clone();
    let by = who.as_deref().map(|w| format!(" by {w}")).unwrap_or_default();
    let (tier, reason) = match (event.is_fork_pr, association) {
        (Some(false), _) => (
            TrustTier::Trusted,
            "a branch of the repository itself (its author can push to it)".to_string(),
        ),
        (_, Some(role)) if is_writer(role) => (
            TrustTier::Trusted,
            format!("a pull request{by}, author association {role}"),
        ),
        (Some(true), Some("CONTRIBUTOR")) => (
            TrustTier::Known,
            format!("a pull request from a fork{by}, author association CONTRIBUTOR"),
        ),
        (Some(true), Some(role)) => (
            TrustTier::Unknown,
            format!("a pull request from a fork{by}, author association {role}"),
        ),
        (Some(true), None) => (TrustTier::Unknown, format!("a pull request from a fork{by}")),
        (None, _) => (
            TrustTier::Unknown,
            format!("a pull request{by} whose origin the webhook does not say"),
        ),
    };
    let lock_file_source = if tier == TrustTier::Trusted {
        LockSource::Head
    } else {
        LockSource::Base
    };
    Some(RunTrust {
        tier,
        lock_file_source,
        contributor: who,
        reason,
        hold: None,
    })
}

/// How long a pull request's run waits for a maintainer before its jobs are cancelled.
pub const TRUST_HOLD_SECONDS: u64 = 72 * 3600;

/// Why an untrusted pull request's job did not start: it needs secrets.
pub fn secrets_withheld(why: &str) -> String {
    format!(
        "Secrets are withheld from this pull request ({why}): its job needs secrets or registry tokens, which only trusted code gets (hint: a maintainer pushes the branch to the repository itself, or the job drops its environment)"
    )
}

impl RunTrust {
    /// The trust defaults fail closed (spec `operator.md` §5): the jobs of a pull request from
    /// an unknown contributor, and of an untrusted one that changes `.kici/`, are held until a
    /// maintainer approves (`kici approve <runId>`). `edits_workflows` is `None` when the
    /// change could not be read, which counts as an edit.
    pub fn hold_for(mut self, edits_workflows: Option<bool>) -> RunTrust {
        self.hold = match self.tier {
            TrustTier::Trusted => None,
            TrustTier::Unknown => Some(format!(
                "an unknown contributor's pull request ({}): a maintainer approves it before it runs",
                self.reason
            )),
            TrustTier::Known if edits_workflows != Some(false) => Some(format!(
                "the pull request changes .kici/ and its author is not trusted ({}): a maintainer approves it before it runs",
                self.reason
            )),
            TrustTier::Known => None,
        };
        self
    }

    /// One line for `runs show` and logs: `unknown (base branch's workflows): a pull request
    /// from a fork by mallory`.
    pub fn summary(&self) -> String {
        let source = match self.lock_file_source {
            LockSource::Head => "its own workflows",
            LockSource::Base => "the base branch's workflows",
        };
        format!("{} ({source}): {}", self.tier.as_str(), self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pr(fork: Option<bool>, association: Option<&str>) -> EventEnvelope {
        let mut event = EventEnvelope::new(EventType::PullRequest);
        event.is_fork_pr = fork;
        event.sender_username = Some("mallory".into());
        event.payload = Some(json!({"pull_request": {"author_association": association}}));
        event
    }

    #[test]
    fn comment_commands() {
        assert_eq!(CommentCommand::parse("/kici approve"), Some(CommentCommand::Approve));
        assert_eq!(
            CommentCommand::parse("  /kici approve \nlooks fine"),
            Some(CommentCommand::Approve)
        );
        assert_eq!(
            CommentCommand::parse("/kici reject mines bitcoin"),
            Some(CommentCommand::Reject(Some("mines bitcoin".into())))
        );
        assert_eq!(
            CommentCommand::parse("/kici reject"),
            Some(CommentCommand::Reject(None))
        );
        let long = format!("/kici reject {}", "x".repeat(2000));
        assert_eq!(
            CommentCommand::parse(&long),
            Some(CommentCommand::Reject(Some("x".repeat(MAX_REJECT_REASON_CHARS))))
        );
        for other in [
            "/kici approve now",
            "/kici",
            "please /kici approve",
            "/kiciapprove",
            "",
            "/kici run",
        ] {
            assert_eq!(CommentCommand::parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn unknown_contributors_and_untrusted_workflow_edits_are_held() {
        let held = |fork, association, edits| assess(&pr(fork, association)).unwrap().hold_for(edits).hold;
        assert_eq!(
            held(Some(true), Some("NONE"), Some(false)).as_deref(),
            Some(
                "an unknown contributor's pull request (a pull request from a fork by mallory, author association NONE): a maintainer approves it before it runs"
            )
        );
        assert_eq!(
            held(Some(true), Some("CONTRIBUTOR"), Some(true)).as_deref(),
            Some(
                "the pull request changes .kici/ and its author is not trusted (a pull request from a fork by mallory, author association CONTRIBUTOR): a maintainer approves it before it runs"
            )
        );
        assert!(
            held(Some(true), Some("CONTRIBUTOR"), None).is_some(),
            "an unreadable change counts as an edit"
        );
        assert_eq!(held(Some(true), Some("CONTRIBUTOR"), Some(false)), None);
        assert_eq!(held(Some(true), Some("MEMBER"), Some(true)), None, "trusted");
        assert_eq!(
            held(Some(false), Some("NONE"), Some(true)),
            None,
            "a branch of the repository"
        );
    }

    #[test]
    fn only_trusted_pull_requests_run_their_own_workflows() {
        let verdict = |fork, association| {
            let trust = assess(&pr(fork, association)).unwrap();
            (trust.tier, trust.lock_file_source)
        };
        assert_eq!(verdict(Some(false), None), (TrustTier::Trusted, LockSource::Head));
        assert_eq!(
            verdict(Some(true), Some("MEMBER")),
            (TrustTier::Trusted, LockSource::Head)
        );
        assert_eq!(
            verdict(Some(true), Some("CONTRIBUTOR")),
            (TrustTier::Known, LockSource::Base)
        );
        assert_eq!(
            verdict(Some(true), Some("NONE")),
            (TrustTier::Unknown, LockSource::Base)
        );
        assert_eq!(verdict(Some(true), None), (TrustTier::Unknown, LockSource::Base));
        assert_eq!(verdict(None, None), (TrustTier::Unknown, LockSource::Base));
        assert_eq!(assess(&EventEnvelope::new(EventType::Push)), None);
        assert_eq!(
            assess(&pr(Some(true), Some("FIRST_TIME_CONTRIBUTOR")))
                .unwrap()
                .summary(),
            "unknown (the base branch's workflows): a pull request from a fork by mallory, author association FIRST_TIME_CONTRIBUTOR"
        );
    }
}
