//! Environments and their protection rules: which gate a job meets before it is queued
//! (`execution.md` §2.5), how several environments on one job merge, which approvals satisfy a
//! hold, and which secret scopes an environment binds. The texts operators and authors see for
//! each outcome are here too.
//!
//! Gate order, first non-pass wins: disabled ⇒ reject; branch restriction ⇒ reject; required
//! reviewers (or the job's own `approval`) ⇒ hold; wait timer ⇒ wait. Several environments:
//! every hard gate must pass; holds take the union of reviewers, the longest wait timer and the
//! shortest hold expiry. Trust tiers and concurrency limits are not gates of this build.

use serde::{Deserialize, Serialize};

use crate::pattern::{BranchPattern, PatternError, compile_glob, matches_patterns};

/// How long a hold waits for a decision unless its environment says otherwise.
pub const DEFAULT_HOLD_EXPIRY_SECONDS: u64 = 3600;

/// One clause of a reviewer requirement; every clause must be met by some approval.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApproverClause {
    User(String),
    Team(String),
}

impl ApproverClause {
    /// `user:alice` or `team:ops`, as the CLI takes and prints them.
    pub fn parse(text: &str) -> Result<ApproverClause, String> {
        let hint = "write reviewers as user:<name> or team:<name>, e.g. --reviewer user:alice";
        match text.split_once(':') {
            Some(("user", name)) if !name.trim().is_empty() => Ok(ApproverClause::User(name.trim().to_string())),
            Some(("team", name)) if !name.trim().is_empty() => Ok(ApproverClause::Team(name.trim().to_string())),
            _ => Err(format!("reviewer `{text}` is not user:<name> or team:<name> ({hint})")),
        }
    }
}

impl std::fmt::Display for ApproverClause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApproverClause::User(name) => write!(f, "user:{name}"),
            ApproverClause::Team(name) => write!(f, "team:{name}"),
        }
    }
}

/// When a job-level approval applies. Only `always` is honoured by this build (`drift` needs
/// check steps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalWhen {
    #[default]
    Always,
}

/// A job's `approval` option as the lock file holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockApproval {
    #[serde(default)]
    pub clauses: Vec<ApproverClause>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub when: ApprovalWhen,
}

/// An environment: the secret and variable scopes it binds and its protection rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    /// Scope globs whose secrets and variables jobs in this environment receive.
    pub scopes: Vec<String>,
    /// Branch globs a job's branch must match (`!` excludes); empty allows every branch.
    #[serde(default)]
    pub branches: Vec<String>,
    #[serde(default)]
    pub reviewers: Vec<ApproverClause>,
    #[serde(default)]
    pub wait_timer_seconds: u64,
    pub hold_expiry_seconds: u64,
}

impl Environment {
    /// Checks what an operator wrote, with the fix in each message.
    pub fn validate(&self) -> Result<(), String> {
        if !valid_name(&self.name) {
            return Err(format!(
                "environment name `{}` must be 1–64 letters, digits, `-`, `_` or `.` (e.g. production)",
                self.name
            ));
        }
        for scope in &self.scopes {
            compile_glob(scope).map_err(|err| format!("scope glob `{scope}`: {err}"))?;
        }
        for branch in &self.branches {
            BranchPattern::glob(branch)
                .validate()
                .map_err(|err| format!("branch glob `{branch}`: {err}"))?;
        }
        if self.hold_expiry_seconds == 0 {
            return Err("hold expiry must be at least 1 second (the default is 3600)".to_string());
        }
        Ok(())
    }

    fn allows_branch(&self, branch: Option<&str>) -> Result<bool, PatternError> {
        if self.branches.is_empty() {
            return Ok(true);
        }
        let patterns: Vec<BranchPattern> = self.branches.iter().map(|b| BranchPattern::glob(b)).collect();
        match branch {
            Some(branch) => matches_patterns(&patterns, branch),
            None => Ok(false),
        }
    }
}

/// Names of environments, scopes, variables and secret keys: what can be typed on a command
/// line and shown without quoting.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A scope: names separated by `/` (`production`, `production/db`).
pub fn valid_scope(scope: &str) -> bool {
    scope.len() <= 200 && !scope.is_empty() && scope.split('/').all(valid_name)
}

/// A secret key or variable name: an environment variable name (`DEPLOY_KEY`).
pub fn valid_key(key: &str) -> bool {
    key.len() <= 128
        && key.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Why a job does not pass its gates, or how it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Pass,
    /// The job fails before it starts (`environment_rules`).
    Reject(String),
    /// The job waits for approvals.
    Hold(Hold),
    /// The job waits this many seconds, then is queued.
    Wait {
        seconds: u64,
    },
}

/// What a held job waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// What holds it: the environment names (`production`), or `job` for the job's own
    /// `approval`; also in `Approval expired for <scope> hold`.
    pub scope: String,
    /// Every clause must be met; none means any owner or admin may decide.
    pub clauses: Vec<ApproverClause>,
    pub reason: Option<String>,
    pub expires_in_seconds: u64,
}

/// The gates of a job in `environments` (each found; in the job's order) with its own
/// `approval`, on `branch` (the event's target branch).
pub fn evaluate(environments: &[&Environment], approval: Option<&LockApproval>, branch: Option<&str>) -> Gate {
    for environment in environments {
        if environment.disabled {
            return Gate::Reject(environment_disabled(&environment.name));
        }
    }
    for environment in environments {
        // Branch globs were validated when the environment was saved.
        if !environment.allows_branch(branch).unwrap_or(false) {
            return Gate::Reject(branch_not_allowed(environment, branch));
        }
    }
    let reviewing: Vec<&&Environment> = environments.iter().filter(|e| !e.reviewers.is_empty()).collect();
    if !reviewing.is_empty() || approval.is_some() {
        let mut clauses: Vec<ApproverClause> = reviewing.iter().flat_map(|e| e.reviewers.clone()).collect();
        let mut scopes: Vec<&str> = reviewing.iter().map(|e| e.name.as_str()).collect();
        let mut expiry = reviewing.iter().map(|e| e.hold_expiry_seconds).min();
        if let Some(approval) = approval {
            clauses.extend(approval.clauses.iter().cloned());
            scopes.push("job");
            expiry = Some(
                expiry.map_or(approval.timeout_seconds.unwrap_or(DEFAULT_HOLD_EXPIRY_SECONDS), |e| {
                    approval.timeout_seconds.map_or(e, |t| t.min(e))
                }),
            );
        }
        clauses.sort();
        clauses.dedup();
        return Gate::Hold(Hold {
            scope: scopes.join(", "),
            clauses,
            reason: approval.and_then(|a| a.reason.clone()),
            expires_in_seconds: expiry.unwrap_or(DEFAULT_HOLD_EXPIRY_SECONDS),
        });
    }
    match environments.iter().map(|e| e.wait_timer_seconds).max() {
        Some(seconds) if seconds > 0 => Gate::Wait { seconds },
        _ => Gate::Pass,
    }
}

/// The gate of a job whose run waits for a maintainer (`reason`, an untrusted pull request):
/// one hold, scoped `trust` plus the environments' and the job's own, whose approvers are those
/// of the protection hold (any owner or admin when it has none). A rejection stays one; a wait
/// timer is replaced by the hold.
pub fn with_trust_hold(gate: Gate, reason: &str) -> Gate {
    match gate {
        Gate::Reject(message) => Gate::Reject(message),
        Gate::Pass | Gate::Wait { .. } => Gate::Hold(trust_hold(reason)),
        Gate::Hold(hold) => Gate::Hold(Hold {
            scope: format!("trust, {}", hold.scope),
            clauses: hold.clauses,
            reason: Some(reason.to_string()),
            expires_in_seconds: hold.expires_in_seconds.min(crate::trust::TRUST_HOLD_SECONDS),
        }),
    }
}

/// The hold of a job with no gate of its own in an untrusted pull request's run: any owner or
/// admin approves it within [`crate::trust::TRUST_HOLD_SECONDS`].
pub fn trust_hold(reason: &str) -> Hold {
    Hold {
        scope: "trust".to_string(),
        clauses: Vec::new(),
        reason: Some(reason.to_string()),
        expires_in_seconds: crate::trust::TRUST_HOLD_SECONDS,
    }
}

/// Who approved: a token's label or a dashboard user, and the teams they belong to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approver {
    pub name: String,
    #[serde(default)]
    pub teams: Vec<String>,
}

impl Approver {
    fn meets(&self, clause: &ApproverClause) -> bool {
        match clause {
            ApproverClause::User(user) => *user == self.name,
            ApproverClause::Team(team) => self.teams.contains(team),
        }
    }
}

/// Whether a clause `approver` could help satisfy; an approval that meets none is refused.
pub fn may_approve(clauses: &[ApproverClause], approver: &Approver) -> bool {
    clauses.is_empty() || clauses.iter().any(|c| approver.meets(c))
}

/// The clauses no approval has met yet.
pub fn unmet<'a>(clauses: &'a [ApproverClause], approvals: &[Approver]) -> Vec<&'a ApproverClause> {
    clauses
        .iter()
        .filter(|clause| !approvals.iter().any(|a| a.meets(clause)))
        .collect()
}

/// `Environment '<name>' is disabled`.
pub fn environment_disabled(name: &str) -> String {
    format!("Environment '{name}' is disabled")
}

fn branch_not_allowed(environment: &Environment, branch: Option<&str>) -> String {
    format!(
        "Environment '{}' does not allow {} (allowed branches: {})",
        environment.name,
        branch.map_or("events without a branch".to_string(), |b| format!("branch '{b}'")),
        environment.branches.join(", ")
    )
}

/// `Environment '<name>' does not exist`, with how to create it.
pub fn environment_missing(name: &str) -> String {
    format!("Environment '{name}' does not exist (hint: `kici-admin environment create {name}`)")
}

/// `Approval expired for <scope> hold`.
pub fn approval_expired(scope: &str) -> String {
    format!("Approval expired for {scope} hold")
}

/// A rejected hold's job error.
pub fn approval_rejected(scope: &str, by: &str, reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("Approval rejected for {scope} hold by {by}: {reason}"),
        None => format!("Approval rejected for {scope} hold by {by}"),
    }
}

/// One stored value (a secret or a variable) a scope holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scoped<'a, T> {
    pub scope: &'a str,
    pub key: &'a str,
    pub value: T,
}

/// The values a job in `environments` receives: for each environment, every key from the
/// longest scope its globs match; a later environment's key replaces an earlier one's.
/// Returns key → (scope, value), in key order.
pub fn bound_values<'a, T: Clone>(
    environments: &[&Environment],
    values: &[Scoped<'a, T>],
) -> std::collections::BTreeMap<String, (String, T)> {
    let mut bound = std::collections::BTreeMap::new();
    for environment in environments {
        let globs: Vec<_> = environment.scopes.iter().filter_map(|g| compile_glob(g).ok()).collect();
        let mut chosen: std::collections::BTreeMap<&str, &Scoped<'a, T>> = std::collections::BTreeMap::new();
        for value in values.iter().filter(|v| globs.iter().any(|g| g.is_match(v.scope))) {
            let longer = chosen.get(value.key).is_none_or(|c| value.scope.len() > c.scope.len());
            if longer {
                chosen.insert(value.key, value);
            }
        }
        for (key, value) in chosen {
            bound.insert(key.to_string(), (value.scope.to_string(), value.value.clone()));
        }
    }
    bound
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Environment {
        Environment {
            name: name.to_string(),
            description: None,
            disabled: false,
            scopes: vec![name.to_string()],
            branches: vec![],
            reviewers: vec![],
            wait_timer_seconds: 0,
            hold_expiry_seconds: DEFAULT_HOLD_EXPIRY_SECONDS,
        }
    }

    #[test]
    fn gates_apply_in_order_and_the_first_non_pass_wins() {
        let mut prod = env("production");
        prod.branches = vec!["main".into(), "release/*".into()];
        prod.reviewers = vec![ApproverClause::User("alice".into())];
        prod.wait_timer_seconds = 30;
        assert!(matches!(evaluate(&[&prod], None, Some("main")), Gate::Hold(_)));
        assert_eq!(
            evaluate(&[&prod], None, Some("feature/x")),
            Gate::Reject(
                "Environment 'production' does not allow branch 'feature/x' (allowed branches: main, release/*)".into()
            )
        );
        assert!(matches!(evaluate(&[&prod], None, Some("release/1.2")), Gate::Hold(_)));
        prod.disabled = true;
        assert_eq!(
            evaluate(&[&prod], None, Some("main")),
            Gate::Reject("Environment 'production' is disabled".into())
        );
        let mut staging = env("staging");
        assert_eq!(evaluate(&[&staging], None, Some("x")), Gate::Pass);
        staging.wait_timer_seconds = 2;
        assert_eq!(evaluate(&[&staging], None, Some("x")), Gate::Wait { seconds: 2 });
    }

    #[test]
    fn several_environments_merge_their_holds() {
        let mut a = env("a");
        a.reviewers = vec![ApproverClause::User("alice".into())];
        a.hold_expiry_seconds = 600;
        a.wait_timer_seconds = 5;
        let mut b = env("b");
        b.reviewers = vec![ApproverClause::Team("ops".into()), ApproverClause::User("alice".into())];
        b.hold_expiry_seconds = 900;
        let approval = LockApproval {
            clauses: vec![],
            reason: Some("deploy".into()),
            timeout_seconds: Some(7200),
            when: ApprovalWhen::Always,
        };
        let Gate::Hold(hold) = evaluate(&[&a, &b], Some(&approval), Some("main")) else {
            panic!("expected a hold")
        };
        assert_eq!(hold.scope, "a, b, job");
        assert_eq!(
            hold.clauses,
            vec![ApproverClause::User("alice".into()), ApproverClause::Team("ops".into())]
        );
        assert_eq!(hold.expires_in_seconds, 600);
        assert_eq!(hold.reason.as_deref(), Some("deploy"));
        let mut disabled = env("c");
        disabled.disabled = true;
        assert!(matches!(
            evaluate(&[&a, &disabled], None, Some("main")),
            Gate::Reject(_)
        ));
    }

    #[test]
    fn a_trust_hold_joins_the_protection_gate() {
        let reason = "an unknown contributor's pull request";
        let trust = |gate| with_trust_hold(gate, reason);
        assert_eq!(
            trust(Gate::Pass),
            Gate::Hold(Hold {
                scope: "trust".into(),
                clauses: vec![],
                reason: Some(reason.into()),
                expires_in_seconds: crate::trust::TRUST_HOLD_SECONDS,
            })
        );
        assert!(matches!(trust(Gate::Wait { seconds: 5 }), Gate::Hold(h) if h.scope == "trust"));
        assert_eq!(trust(Gate::Reject("no".into())), Gate::Reject("no".into()));
        let protected = Gate::Hold(Hold {
            scope: "production".into(),
            clauses: vec![ApproverClause::User("alice".into())],
            reason: Some("deploy".into()),
            expires_in_seconds: 600,
        });
        assert_eq!(
            trust(protected),
            Gate::Hold(Hold {
                scope: "trust, production".into(),
                clauses: vec![ApproverClause::User("alice".into())],
                reason: Some(reason.into()),
                expires_in_seconds: 600,
            })
        );
    }

    #[test]
    fn clauses_are_anded_and_each_needs_an_approver() {
        let clauses = vec![ApproverClause::User("alice".into()), ApproverClause::Team("ops".into())];
        let alice = Approver {
            name: "alice".into(),
            teams: vec![],
        };
        let bob = Approver {
            name: "bob".into(),
            teams: vec!["ops".into()],
        };
        let carol = Approver {
            name: "carol".into(),
            teams: vec![],
        };
        assert!(may_approve(&clauses, &alice));
        assert!(!may_approve(&clauses, &carol));
        assert!(may_approve(&[], &carol));
        assert_eq!(unmet(&clauses, std::slice::from_ref(&alice)), vec![&clauses[1]]);
        assert!(unmet(&clauses, &[alice, bob]).is_empty());
    }

    #[test]
    fn secrets_come_from_the_longest_scope_and_later_environments_win() {
        let mut prod = env("production");
        prod.scopes = vec!["production/**".into(), "shared".into()];
        let mut db = env("db");
        db.scopes = vec!["db".into()];
        let values = [
            Scoped {
                scope: "shared",
                key: "TOKEN",
                value: "s",
            },
            Scoped {
                scope: "production/api",
                key: "TOKEN",
                value: "pa",
            },
            Scoped {
                scope: "production/api/eu",
                key: "TOKEN",
                value: "pae",
            },
            Scoped {
                scope: "staging",
                key: "OTHER",
                value: "x",
            },
            Scoped {
                scope: "db",
                key: "TOKEN",
                value: "d",
            },
        ];
        let bound = bound_values(&[&prod], &values);
        assert_eq!(bound["TOKEN"], ("production/api/eu".to_string(), "pae"));
        assert_eq!(bound.len(), 1);
        let bound = bound_values(&[&prod, &db], &values);
        assert_eq!(bound["TOKEN"], ("db".to_string(), "d"));
    }

    #[test]
    fn names_and_clauses_are_checked() {
        assert!(valid_key("DEPLOY_KEY") && !valid_key("1X") && !valid_key("A-B"));
        assert!(valid_scope("production/db") && !valid_scope("a//b") && !valid_scope(""));
        assert_eq!(
            ApproverClause::parse("team:ops"),
            Ok(ApproverClause::Team("ops".into()))
        );
        assert!(ApproverClause::parse("alice").unwrap_err().contains("user:<name>"));
        let mut bad = env("production");
        bad.name = "prod env".into();
        assert!(bad.validate().unwrap_err().contains("environment name"));
    }
}
