//! Trigger matching (spec `authoring.md` §2.3): which trigger of a workflow, if any, an event
//! fires. Triggers are tried in order and the first match wins; every check is recorded so a
//! caller can explain the decision (`kici preview`, the run's trigger decision).

use serde::{Deserialize, Serialize};

use crate::event::{EventEnvelope, EventType};
use crate::inputs::{InputSchema, SchemaError};
use crate::pattern::{BranchPattern, PatternError, matches_paths, matches_patterns};
use crate::schedule::{Schedule, ScheduleError};

/// Default `pr()` events.
pub const DEFAULT_PR_EVENTS: [&str; 4] = ["opened", "synchronize", "reopened", "closed"];

/// A trigger as the lock file stores it (`_type` tagged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "_type", rename_all = "camelCase")]
pub enum Trigger {
    #[serde(rename = "push", rename_all = "camelCase")]
    Push {
        #[serde(default)]
        branches: Vec<BranchPattern>,
        #[serde(default)]
        paths: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repos: Option<Vec<BranchPattern>>,
    },
    #[serde(rename = "pr", rename_all = "camelCase")]
    Pr {
        #[serde(default)]
        events: Vec<String>,
        #[serde(default)]
        target_branches: Vec<BranchPattern>,
        #[serde(default)]
        source_branches: Vec<BranchPattern>,
        #[serde(default)]
        paths: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repos: Option<Vec<BranchPattern>>,
    },
    #[serde(rename = "tag", rename_all = "camelCase")]
    Tag {
        #[serde(default)]
        patterns: Vec<BranchPattern>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repos: Option<Vec<BranchPattern>>,
    },
    #[serde(rename = "dispatch", rename_all = "camelCase")]
    Dispatch {
        #[serde(default)]
        types: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<InputSchema>,
    },
    #[serde(rename = "schedule", rename_all = "camelCase")]
    Schedule {
        cron_expression: String,
        #[serde(default = "utc")]
        timezone: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<InputSchema>,
    },
    #[serde(rename = "kici_event", rename_all = "camelCase")]
    KiciEvent {
        event_name: String,
        #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
        match_paths: Option<serde_json::Map<String, serde_json::Value>>,
        #[serde(default, rename = "not", skip_serializing_if = "Option::is_none")]
        not_paths: Option<serde_json::Map<String, serde_json::Value>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
    #[serde(rename = "workflow_complete", rename_all = "camelCase")]
    WorkflowComplete {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workflows: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        statuses: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
    #[serde(rename = "job_complete", rename_all = "camelCase")]
    JobComplete {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workflows: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jobs: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        statuses: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
    #[serde(rename = "generic_webhook", rename_all = "camelCase")]
    GenericWebhook {
        source: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        events: Option<Vec<String>>,
        #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
        match_paths: Option<serde_json::Map<String, serde_json::Value>>,
        #[serde(default, rename = "not", skip_serializing_if = "Option::is_none")]
        not_paths: Option<serde_json::Map<String, serde_json::Value>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
}

/// A text field of the event's payload.
fn payload_text<'a>(event: &'a EventEnvelope, key: &str) -> Option<&'a str> {
    event.payload.as_ref()?.get(key)?.as_str()
}

/// The body a generic webhook or custom event carries (`payload.payload`), which `match` and
/// `not` filter.
fn event_body(event: &EventEnvelope) -> &serde_json::Value {
    event
        .payload
        .as_ref()
        .and_then(|p| p.get("payload"))
        .unwrap_or(&serde_json::Value::Null)
}

/// The statuses a `workflowComplete()` trigger may name; a `jobComplete()` one also `skipped`.
pub const WORKFLOW_COMPLETE_STATUSES: [&str; 3] = ["success", "failed", "cancelled"];
pub const JOB_COMPLETE_STATUSES: [&str; 4] = ["success", "failed", "cancelled", "skipped"];

fn utc() -> String {
    "UTC".to_string()
}

/// Why a lock file's trigger is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    #[error("invalid pattern: {0}")]
    Pattern(#[from] PatternError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("inputs: {0}")]
    Inputs(#[from] SchemaError),
    #[error(
        "schedule input `{0}` is required, but a schedule has nobody to give it (hint: add `.default(...)` or `.optional()`)"
    )]
    RequiredScheduleInput(String),
    #[error("status `{status}` is not one of {allowed}")]
    Status { status: String, allowed: String },
    #[error(transparent)]
    JsonPath(#[from] crate::jsonpath::JsonPathError),
    #[error(
        "genericWebhook({{ {0} }}) is not implemented by this build: the source verifies its webhooks (hint: remove `{0}` and add the source with `kici-admin source add generic --preset custom --secret …`)"
    )]
    NotImplemented(&'static str),
}

impl Trigger {
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Push { .. } => "push",
            Trigger::Pr { .. } => "pr",
            Trigger::Tag { .. } => "tag",
            Trigger::Dispatch { .. } => "dispatch",
            Trigger::Schedule { .. } => "schedule",
            Trigger::KiciEvent { .. } => "kici_event",
            Trigger::WorkflowComplete { .. } => "workflow_complete",
            Trigger::JobComplete { .. } => "job_complete",
            Trigger::GenericWebhook { .. } => "generic_webhook",
        }
    }

    /// How many patterns the trigger holds (each is compiled when it is checked).
    pub fn pattern_count(&self) -> usize {
        match self {
            Trigger::Push { branches, paths, repos } => {
                branches.len() + paths.len() + repos.as_ref().map_or(0, Vec::len)
            }
            Trigger::Pr {
                target_branches,
                source_branches,
                paths,
                repos,
                ..
            } => target_branches.len() + source_branches.len() + paths.len() + repos.as_ref().map_or(0, Vec::len),
            Trigger::Tag { patterns, repos } => patterns.len() + repos.as_ref().map_or(0, Vec::len),
            _ => 0,
        }
    }

    /// The inputs a dispatch or schedule trigger declares.
    pub fn inputs(&self) -> Option<&InputSchema> {
        match self {
            Trigger::Dispatch { inputs, .. } | Trigger::Schedule { inputs, .. } => inputs.as_ref(),
            _ => None,
        }
    }

    /// Compiles every pattern, cron expression and input schema once, so a lock file with a bad
    /// one is rejected at load.
    pub fn validate(&self) -> Result<(), TriggerError> {
        if let Some(inputs) = self.inputs() {
            crate::inputs::validate_schema(inputs)?;
        }
        if let Trigger::Schedule {
            cron_expression,
            timezone,
            inputs,
            ..
        } = self
        {
            Schedule::parse(cron_expression, timezone)?;
            if let Some((name, _)) = inputs.iter().flatten().find(|(_, spec)| spec.required()) {
                return Err(TriggerError::RequiredScheduleInput(name.clone()));
            }
        }
        let allowed: &[&str] = match self {
            Trigger::WorkflowComplete { .. } => &WORKFLOW_COMPLETE_STATUSES,
            Trigger::JobComplete { .. } => &JOB_COMPLETE_STATUSES,
            _ => &[],
        };
        if let Trigger::WorkflowComplete { statuses, .. } | Trigger::JobComplete { statuses, .. } = self
            && let Some(status) = statuses.iter().flatten().find(|s| !allowed.contains(&s.as_str()))
        {
            return Err(TriggerError::Status {
                status: crate::excerpt::excerpt(status).into_owned(),
                allowed: allowed.join(", "),
            });
        }
        if let Trigger::GenericWebhook {
            match_paths,
            not_paths,
            auth,
            path,
            ..
        } = self
        {
            for filters in [match_paths, not_paths].into_iter().flatten() {
                crate::jsonpath::validate(filters)?;
            }
            if auth.is_some() {
                return Err(TriggerError::NotImplemented("auth"));
            }
            if path.is_some() {
                return Err(TriggerError::NotImplemented("path"));
            }
        }
        let lists: Vec<&[BranchPattern]> = match self {
            Trigger::Push { branches, repos, .. } => vec![branches, repos.as_deref().unwrap_or(&[])],
            Trigger::Pr {
                target_branches,
                source_branches,
                repos,
                ..
            } => vec![target_branches, source_branches, repos.as_deref().unwrap_or(&[])],
            Trigger::Tag { patterns, repos } => vec![patterns, repos.as_deref().unwrap_or(&[])],
            _ => vec![],
        };
        for pattern in lists.into_iter().flatten() {
            pattern.validate()?;
        }
        let paths: &[String] = match self {
            Trigger::Push { paths, .. } | Trigger::Pr { paths, .. } => paths,
            _ => &[],
        };
        matches_paths(paths, &["".to_string()])?;
        Ok(())
    }
}

impl Trigger {
    /// One line for people: `push (branches: main, release/*; paths: src/**)`, the bare kind without filters.
    pub fn summary(&self) -> String {
        let trigger = self;
        let mut filters: Vec<String> = Vec::new();
        let mut add = |label: &str, values: Vec<String>| {
            if !values.is_empty() {
                filters.push(format!("{label}: {}", values.join(", ")));
            }
        };
        match trigger {
            Trigger::Push { branches, paths, repos } => {
                add("branches", pattern_texts(branches));
                add("paths", paths.clone());
                add("repos", pattern_texts(repos.as_deref().unwrap_or_default()));
            }
            Trigger::Pr {
                events,
                target_branches,
                source_branches,
                paths,
                repos,
            } => {
                if events.iter().map(String::as_str).ne(DEFAULT_PR_EVENTS) {
                    add("events", events.clone());
                }
                add("target", pattern_texts(target_branches));
                add("source", pattern_texts(source_branches));
                add("paths", paths.clone());
                add("repos", pattern_texts(repos.as_deref().unwrap_or_default()));
            }
            Trigger::Tag { patterns: tags, repos } => {
                add("tags", pattern_texts(tags));
                add("repos", pattern_texts(repos.as_deref().unwrap_or_default()));
            }
            Trigger::Dispatch { types, inputs } => {
                add("types", types.clone());
                add(
                    "inputs",
                    inputs.iter().flatten().map(|(name, _)| name.clone()).collect(),
                );
            }
            Trigger::Schedule {
                cron_expression,
                timezone,
                inputs,
                ..
            } => {
                add("cron", vec![format!("{cron_expression} {timezone}")]);
                add(
                    "inputs",
                    inputs.iter().flatten().map(|(name, _)| name.clone()).collect(),
                );
            }
            Trigger::KiciEvent { event_name, source, .. } => {
                add("name", vec![event_name.clone()]);
                add("source", source.iter().cloned().collect());
            }
            Trigger::WorkflowComplete {
                workflows,
                statuses,
                source,
            } => {
                add("workflows", workflows.clone().unwrap_or_default());
                add("statuses", statuses.clone().unwrap_or_default());
                add("source", source.iter().cloned().collect());
            }
            Trigger::JobComplete {
                workflows,
                jobs,
                statuses,
                source,
            } => {
                add("workflows", workflows.clone().unwrap_or_default());
                add("jobs", jobs.clone().unwrap_or_default());
                add("statuses", statuses.clone().unwrap_or_default());
                add("source", source.iter().cloned().collect());
            }
            Trigger::GenericWebhook { source, events, .. } => {
                add("source", vec![source.clone()]);
                add("events", events.clone().unwrap_or_default());
            }
        }
        if filters.is_empty() {
            trigger.kind().to_string()
        } else {
            format!("{} ({})", trigger.kind(), filters.join("; "))
        }
    }
}

/// Patterns as an author wrote them: globs as they are, regexes as `/source/flags`.
fn pattern_texts(patterns: &[BranchPattern]) -> Vec<String> {
    patterns
        .iter()
        .map(|p| match p.kind {
            crate::pattern::BranchPatternKind::Glob => p.pattern.clone(),
            crate::pattern::BranchPatternKind::Regex => {
                format!("/{}/{}", p.pattern, p.flags.as_deref().unwrap_or_default())
            }
        })
        .collect()
}

/// One check the matcher made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub trigger_index: usize,
    pub field: &'static str,
    pub expected: String,
    pub actual: String,
    pub pass: bool,
}

/// The decision for one workflow: the first matching trigger and the checks that led there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchOutcome {
    pub trigger_index: Option<usize>,
    pub checks: Vec<Check>,
}

/// Tries `triggers` in order against `event`.
pub fn match_triggers(triggers: &[Trigger], event: &EventEnvelope) -> Result<MatchOutcome, PatternError> {
    let mut checks = Vec::new();
    for (index, trigger) in triggers.iter().enumerate() {
        let mut recorder = Recorder {
            index,
            checks: &mut checks,
        };
        if recorder.trigger(trigger, event)? {
            return Ok(MatchOutcome {
                trigger_index: Some(index),
                checks,
            });
        }
    }
    Ok(MatchOutcome {
        trigger_index: None,
        checks,
    })
}

struct Recorder<'a> {
    index: usize,
    checks: &'a mut Vec<Check>,
}

impl Recorder<'_> {
    fn record(&mut self, field: &'static str, expected: String, actual: String, pass: bool) -> bool {
        self.checks.push(Check {
            trigger_index: self.index,
            field,
            expected,
            actual,
            pass,
        });
        pass
    }

    fn event_type(&mut self, want: EventType, event: &EventEnvelope) -> bool {
        self.record(
            "type",
            want.as_str().to_string(),
            event.event_type.as_str().to_string(),
            event.event_type == want,
        )
    }

    fn patterns(
        &mut self,
        field: &'static str,
        patterns: &[BranchPattern],
        value: Option<&str>,
    ) -> Result<bool, PatternError> {
        if patterns.is_empty() {
            return Ok(true);
        }
        let pass = match value {
            Some(value) => matches_patterns(patterns, value)?,
            None => false,
        };
        let expected = patterns
            .iter()
            .map(|p| p.pattern.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        Ok(self.record(field, expected, value.unwrap_or("(none)").to_string(), pass))
    }

    fn paths(&mut self, filter: &[String], event: &EventEnvelope) -> Result<bool, PatternError> {
        if filter.is_empty() {
            return Ok(true);
        }
        let files = event.changed_files.as_deref().unwrap_or(&[]);
        let pass = matches_paths(filter, files)?;
        Ok(self.record("paths", filter.join(", "), files.join(", "), pass))
    }

    fn repos(&mut self, repos: &Option<Vec<BranchPattern>>, event: &EventEnvelope) -> Result<bool, PatternError> {
        match repos {
            Some(repos) if !repos.is_empty() => self.patterns("repos", repos, event.source_repo.as_deref()),
            _ => Ok(true),
        }
    }

    fn trigger(&mut self, trigger: &Trigger, event: &EventEnvelope) -> Result<bool, PatternError> {
        Ok(match trigger {
            Trigger::Push { branches, paths, repos } => {
                self.event_type(EventType::Push, event)
                    && self.patterns("branches", branches, event.target_branch.as_deref())?
                    && self.paths(paths, event)?
                    && self.repos(repos, event)?
            }
            Trigger::Pr {
                events,
                target_branches,
                source_branches,
                paths,
                repos,
            } => {
                self.event_type(EventType::PullRequest, event)
                    && self.action(events, event)
                    && self.patterns("targetBranches", target_branches, event.target_branch.as_deref())?
                    && self.patterns("sourceBranches", source_branches, event.source_branch.as_deref())?
                    && self.paths(paths, event)?
                    && self.repos(repos, event)?
            }
            Trigger::Tag { patterns, repos } => {
                self.event_type(EventType::Tag, event)
                    && self.patterns("patterns", patterns, event.target_branch.as_deref())?
                    && self.repos(repos, event)?
            }
            Trigger::Dispatch { types, .. } => self.event_type(EventType::Dispatch, event) && self.action(types, event),
            Trigger::Schedule {
                cron_expression,
                timezone,
                ..
            } => {
                let actual = payload_text(event, "cronExpression");
                let zone = payload_text(event, "timezone");
                self.event_type(EventType::Schedule, event)
                    && self.record(
                        "cronExpression",
                        cron_expression.clone(),
                        actual.unwrap_or("(none)").to_string(),
                        actual == Some(cron_expression.as_str()),
                    )
                    && (zone.is_none()
                        || self.record(
                            "timezone",
                            timezone.clone(),
                            zone.unwrap_or_default().to_string(),
                            zone == Some(timezone.as_str()),
                        ))
            }
            Trigger::WorkflowComplete {
                workflows,
                statuses,
                source,
            } => self.completion(EventType::WorkflowComplete, [workflows, &None, statuses], source, event),
            Trigger::JobComplete {
                workflows,
                jobs,
                statuses,
                source,
            } => self.completion(EventType::JobComplete, [workflows, jobs, statuses], source, event),
            Trigger::GenericWebhook {
                source,
                events,
                match_paths,
                not_paths,
                ..
            } => {
                let kind = payload_text(event, "eventType").or(event.action.as_deref());
                self.event_type(EventType::GenericWebhook, event)
                    && self.one_of(
                        "source",
                        Some(std::slice::from_ref(source)),
                        payload_text(event, "source"),
                    )
                    && self.one_of("events", events.as_deref(), kind)
                    && self.json_paths(match_paths.as_ref(), not_paths.as_ref(), event_body(event))
            }
            Trigger::KiciEvent {
                event_name,
                match_paths,
                not_paths,
                source,
            } => {
                self.event_type(EventType::KiciEvent, event)
                    && self.one_of(
                        "name",
                        Some(std::slice::from_ref(event_name)),
                        payload_text(event, "eventName"),
                    )
                    && self.one_of(
                        "source",
                        source.as_ref().map(std::slice::from_ref),
                        payload_text(event, "sourceRepo"),
                    )
                    && self.json_paths(match_paths.as_ref(), not_paths.as_ref(), event_body(event))
            }
        })
    }

    /// A finished run or job: its type, then the workflow, job and status lists, then the source.
    fn completion(
        &mut self,
        want: EventType,
        [workflows, jobs, statuses]: [&Option<Vec<String>>; 3],
        source: &Option<String>,
        event: &EventEnvelope,
    ) -> bool {
        self.event_type(want, event)
            && self.one_of("workflows", workflows.as_deref(), payload_text(event, "workflowName"))
            && self.one_of("jobs", jobs.as_deref(), payload_text(event, "jobName"))
            && self.one_of("statuses", statuses.as_deref(), payload_text(event, "status"))
            && self.one_of(
                "source",
                source.as_ref().map(std::slice::from_ref),
                payload_text(event, "sourceRepo"),
            )
    }

    /// The JSONPath filters (checked when the lock file loaded, so they compile).
    fn json_paths(
        &mut self,
        matching: Option<&serde_json::Map<String, serde_json::Value>>,
        excluding: Option<&serde_json::Map<String, serde_json::Value>>,
        body: &serde_json::Value,
    ) -> bool {
        if let Some(filters) = matching.filter(|f| !f.is_empty()) {
            let pass = crate::jsonpath::all_match(filters, body).unwrap_or(false);
            let expected = filters.keys().cloned().collect::<Vec<_>>().join(", ");
            if !self.record("match", expected, "(payload)".to_string(), pass) {
                return false;
            }
        }
        if let Some(filters) = excluding.filter(|f| !f.is_empty()) {
            let excluded = crate::jsonpath::any_excluded(filters, body).unwrap_or(true);
            let expected = filters.keys().cloned().collect::<Vec<_>>().join(", ");
            return self.record("not", expected, "(payload)".to_string(), !excluded);
        }
        true
    }

    /// `actual` is one of `allowed` (no list: anything is).
    fn one_of(&mut self, field: &'static str, allowed: Option<&[String]>, actual: Option<&str>) -> bool {
        let Some(allowed) = allowed.filter(|a| !a.is_empty()) else {
            return true;
        };
        let pass = actual.is_some_and(|actual| allowed.iter().any(|a| a == actual));
        self.record(field, allowed.join(", "), actual.unwrap_or("(none)").to_string(), pass)
    }

    fn action(&mut self, allowed: &[String], event: &EventEnvelope) -> bool {
        if allowed.is_empty() {
            return true;
        }
        let action = event.action.as_deref().unwrap_or("");
        let pass = allowed.iter().any(|a| a == action);
        self.record("action", allowed.join(", "), action.to_string(), pass)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(branch: &str, files: &[&str]) -> EventEnvelope {
        let mut event = EventEnvelope::new(EventType::Push);
        event.target_branch = Some(branch.to_string());
        event.changed_files = Some(files.iter().map(|f| f.to_string()).collect());
        event
    }

    fn pr(action: &str, target: &str, source: Option<&str>) -> EventEnvelope {
        let mut event = EventEnvelope::new(EventType::PullRequest);
        event.action = Some(action.to_string());
        event.target_branch = Some(target.to_string());
        event.source_branch = source.map(str::to_string);
        event
    }

    fn check(triggers: &[Trigger], event: &EventEnvelope, want: Option<usize>) {
        let outcome = match_triggers(triggers, event).unwrap();
        assert_eq!(
            outcome.trigger_index, want,
            "{triggers:?} vs {event:?}: {:?}",
            outcome.checks
        );
    }

    fn push_trigger(branches: &[&str], paths: &[&str]) -> Trigger {
        Trigger::Push {
            branches: branches.iter().map(|b| BranchPattern::glob(b)).collect(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            repos: None,
        }
    }

    #[test]
    fn push_triggers() {
        check(&[push_trigger(&[], &[])], &push("any", &[]), Some(0));
        check(&[push_trigger(&["main"], &[])], &push("dev", &[]), None);
        check(
            &[push_trigger(&["release/**"], &[])],
            &push("release/1/2", &[]),
            Some(0),
        );
        check(&[push_trigger(&["release/*"], &[])], &push("release/1/2", &[]), None);
        check(&[push_trigger(&["**", "!wip/**"], &[])], &push("wip/x", &[]), None);
        check(&[push_trigger(&[], &["src/**"])], &push("main", &["src/a.ts"]), Some(0));
        check(&[push_trigger(&[], &["src/**"])], &push("main", &["README.md"]), None);
        check(&[push_trigger(&[], &["src/**"])], &push("main", &[]), None);
        check(&[push_trigger(&[], &["!docs/**"])], &push("main", &["docs/a.md"]), None);
        let regex = Trigger::Push {
            branches: vec![BranchPattern::regex("^hotfix-\\d+$", None)],
            paths: vec![],
            repos: None,
        };
        check(std::slice::from_ref(&regex), &push("hotfix-12", &[]), Some(0));
        check(&[regex], &push("hotfix-x", &[]), None);
    }

    #[test]
    fn a_tag_never_matches_push_and_first_trigger_wins() {
        let mut tag = EventEnvelope::new(EventType::Tag);
        tag.target_branch = Some("v1.2.0".to_string());
        let triggers = [
            push_trigger(&[], &[]),
            Trigger::Tag {
                patterns: vec![BranchPattern::glob("v*")],
                repos: None,
            },
        ];
        check(&triggers, &tag, Some(1));
        check(&triggers, &push("main", &[]), Some(0));
        check(&[triggers[0].clone(), triggers[0].clone()], &push("main", &[]), Some(0));
    }

    #[test]
    fn pr_triggers() {
        let trigger = Trigger::Pr {
            events: DEFAULT_PR_EVENTS.iter().map(|e| e.to_string()).collect(),
            target_branches: vec![BranchPattern::glob("main")],
            source_branches: vec![],
            paths: vec![],
            repos: None,
        };
        check(
            std::slice::from_ref(&trigger),
            &pr("opened", "main", Some("f")),
            Some(0),
        );
        check(std::slice::from_ref(&trigger), &pr("labeled", "main", Some("f")), None);
        check(std::slice::from_ref(&trigger), &pr("opened", "dev", Some("f")), None);
        check(std::slice::from_ref(&trigger), &push("main", &[]), None);
        let with_source = Trigger::Pr {
            events: vec![],
            target_branches: vec![],
            source_branches: vec![BranchPattern::glob("feature/*")],
            paths: vec![],
            repos: None,
        };
        check(
            std::slice::from_ref(&with_source),
            &pr("opened", "main", Some("feature/x")),
            Some(0),
        );
        check(std::slice::from_ref(&with_source), &pr("opened", "main", None), None);
    }

    #[test]
    fn completion_triggers_filter_on_the_workflow_job_status_and_source() {
        let trigger: Trigger = serde_json::from_value(serde_json::json!({
            "_type": "job_complete", "workflows": ["ci"], "jobs": ["test"], "statuses": ["failed"], "source": "acme/app"
        }))
        .unwrap();
        trigger.validate().unwrap();
        let event = |job: &str, status: &str| {
            let mut event = EventEnvelope::new(EventType::JobComplete);
            event.payload = Some(
                serde_json::json!({"workflowName": "ci", "jobName": job, "status": status, "sourceRepo": "acme/app"}),
            );
            event
        };
        let outcome = match_triggers(std::slice::from_ref(&trigger), &event("test", "failed")).unwrap();
        assert_eq!(outcome.trigger_index, Some(0));
        let outcome = match_triggers(std::slice::from_ref(&trigger), &event("test", "success")).unwrap();
        assert_eq!(outcome.trigger_index, None);
        let failed = outcome.checks.iter().find(|c| !c.pass).unwrap();
        assert_eq!(
            (failed.field, failed.expected.as_str(), failed.actual.as_str()),
            ("statuses", "failed", "success")
        );
        let workflow: Trigger = serde_json::from_value(serde_json::json!({"_type": "workflow_complete"})).unwrap();
        assert_eq!(
            match_triggers(&[workflow], &event("build", "success"))
                .unwrap()
                .trigger_index,
            None,
            "a job's event is not a workflow's"
        );
        let bad: Trigger =
            serde_json::from_value(serde_json::json!({"_type": "workflow_complete", "statuses": ["skipped"]})).unwrap();
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "status `skipped` is not one of success, failed, cancelled"
        );
    }

    #[test]
    fn triggers_show_their_filters_and_nothing_else() {
        let check = |trigger: Trigger, expected: &str| assert_eq!(trigger.summary(), expected);
        check(
            Trigger::Push {
                branches: vec![],
                paths: vec![],
                repos: None,
            },
            "push",
        );
        check(
            Trigger::Push {
                branches: vec![BranchPattern::glob("main"), BranchPattern::regex("^rel", Some("i"))],
                paths: vec!["src/**".into()],
                repos: None,
            },
            "push (branches: main, /^rel/i; paths: src/**)",
        );
        check(
            Trigger::Pr {
                events: DEFAULT_PR_EVENTS.iter().map(|e| e.to_string()).collect(),
                target_branches: vec![BranchPattern::glob("main")],
                source_branches: vec![],
                paths: vec![],
                repos: None,
            },
            "pr (target: main)",
        );
        check(
            Trigger::Pr {
                events: vec!["opened".into()],
                target_branches: vec![],
                source_branches: vec![],
                paths: vec![],
                repos: None,
            },
            "pr (events: opened)",
        );
        check(
            Trigger::Tag {
                patterns: vec![BranchPattern::glob("v*")],
                repos: None,
            },
            "tag (tags: v*)",
        );
        check(
            Trigger::Dispatch {
                types: vec!["deploy".into()],
                inputs: None,
            },
            "dispatch (types: deploy)",
        );
    }

    #[test]
    fn dispatch_types_match_the_action() {
        let mut event = EventEnvelope::new(EventType::Dispatch);
        let typed = Trigger::Dispatch {
            types: vec!["deploy".to_string()],
            inputs: None,
        };
        check(std::slice::from_ref(&typed), &event, None);
        event.action = Some("deploy".to_string());
        check(std::slice::from_ref(&typed), &event, Some(0));
        let any = Trigger::Dispatch {
            types: vec![],
            inputs: None,
        };
        check(&[any], &EventEnvelope::new(EventType::Dispatch), Some(0));
    }

    #[test]
    fn checks_explain_the_decision() {
        let outcome = match_triggers(&[push_trigger(&["main"], &[])], &push("dev", &[])).unwrap();
        let last = outcome.checks.last().unwrap();
        assert_eq!(
            (last.field, last.expected.as_str(), last.actual.as_str(), last.pass),
            ("branches", "main", "dev", false)
        );
    }
}
