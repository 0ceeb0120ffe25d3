//! The lock file `.kici/kici.lock.json`: its types, its serialisation and its validation at
//! load.
//!
//! Field names and key order follow the reference (`spec/authoring.md` §3) so authors and
//! tools recognise it. Our numbers: [`SCHEMA_VERSION`] 30 is the reference's v29 shape plus the
//! top-level `sdk` stamp (the SDK the lock was compiled against); the per-workflow
//! `compileSchemaVersion` is [`COMPILE_SCHEMA_VERSION`] (6: contentHash binds the SDK bundle
//! hash). Loading requires the exact schema version, like the reference.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cache::CacheSpec;
use crate::dag::{self, Need};
use crate::excerpt::{excerpt, json_error};
pub use crate::hash::COMPILE_SCHEMA_VERSION;
use crate::hash::sha256_hex;
use crate::install::LockRegistry;
use crate::labels::LabelMatcher;
use crate::matrix::{Combination, MatrixValues};
use crate::options::{LockObject, lock_key_honoured, trigger_honoured};
use crate::protection::LockApproval;
use crate::trigger::Trigger;

/// The lock schema this build reads and writes.
pub const SCHEMA_VERSION: u64 = 30;

/// The lock file's name inside `.kici/`.
pub const LOCK_FILE_NAME: &str = "kici.lock.json";

/// The largest lock file loaded. Real ones are tens of kilobytes; the cap bounds what one push
/// can make the orchestrator parse and compile.
pub const MAX_LOCK_FILE_BYTES: usize = 2 * 1024 * 1024;

/// The most trigger patterns and label matchers one lock file may hold: each is compiled at
/// load and again for every delivery it is matched against.
pub const MAX_LOCK_PATTERNS: usize = 4096;

fn is_false(value: &bool) -> bool {
    !*value
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockFile {
    pub schema_version: u64,
    pub source: SourceRef,
    pub content_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lockfile_hash: Option<String>,
    /// The `@kici-dev/sdk` the workflows were compiled against.
    pub sdk: SdkStamp,
    pub workflows: Vec<LockWorkflow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SdkStamp {
    pub version: String,
    pub bundle_hash: String,
}

/// Where a workflow is defined: a repository-relative file and its export (`#default`,
/// `#default[1]`, `#name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    pub file: String,
    pub export: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockWorkflow {
    pub name: String,
    pub source: SourceRef,
    pub content_hash: String,
    pub compile_schema_version: u32,
    pub triggers: Vec<Trigger>,
    pub jobs: Vec<LockJob>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<LockRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hash_files: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_hash_files: Vec<String>,
    #[serde(flatten)]
    pub hooks: HookFlags,
    /// Runs whose group function returns the same key are limited together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<LockConcurrency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Private npm registries the `.kici/` install authenticates to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registries: Vec<LockRegistry>,
    /// `'<environment>:<NAME>'` secrets the install sees as environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub install_env: Vec<String>,
}

/// A workflow's `concurrency`: the group function runs on the agent before the job's rules and
/// reports its key; the orchestrator cancels the group's older runs (`cancelInProgress`) or
/// queues the new one until fewer than `max` run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockConcurrency {
    pub has_group: bool,
    #[serde(default = "yes")]
    pub cancel_in_progress: bool,
    #[serde(default = "one")]
    pub max: u32,
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

/// `has*` hook flags; only `true` is written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookFlags {
    #[serde(default, skip_serializing_if = "is_false")]
    pub has_on_cancel: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub has_cleanup: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub has_on_success: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub has_on_failure: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "_type")]
// Lock files hold tens of jobs: boxing the big variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum LockJob {
    #[serde(rename = "static")]
    Static(StaticJob),
    /// A `dynamicJob()` generator: its jobs exist only once it has run.
    #[serde(rename = "dynamic")]
    Dynamic(DynamicJob),
}

impl LockJob {
    pub fn name(&self) -> String {
        match self {
            LockJob::Static(job) => job.name.clone(),
            LockJob::Dynamic(job) => job.name(),
        }
    }

    pub fn as_static(&self) -> Option<&StaticJob> {
        match self {
            LockJob::Static(job) => Some(job),
            LockJob::Dynamic(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DynamicJob {
    pub source: RuleSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<Need>,
}

impl DynamicJob {
    /// The generator's name in runs: its group, or `dynamic-<index>`.
    pub fn name(&self) -> String {
        self.group
            .clone()
            .unwrap_or_else(|| format!("dynamic-{}", self.source.index))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaticJob {
    pub name: String,
    #[serde(default)]
    pub runs_on: Vec<LabelMatcher>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_labels: Vec<LabelMatcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs_on_pick: Option<RunsOnPick>,
    #[serde(default)]
    pub needs: Vec<Need>,
    pub steps: Vec<LockStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<LockMatrix>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<Combination>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<Combination>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<LockRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout: Option<bool>,
    /// Caches restored before the steps and saved after them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache: Vec<CacheSpec>,
    /// Commands run after checkout and before the steps (`[{run, shell, timeout, env?}]`); the
    /// runner reads them from the module, the lock file records them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<Value>,
    /// Environments, in order: names, or pure functions of the event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<LockEnvironment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<LockEnv>,
    /// `env` is an impure function: an init job on an agent evaluates it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dynamic_env: bool,
    /// The job's own approval requirement (it is held until approved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<LockApproval>,
    /// Secret keys the job needs: a key its environments do not bind fails it before it starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    #[serde(flatten)]
    pub hooks: HookFlags,
    #[serde(default, skip_serializing_if = "is_false")]
    pub has_before_step: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub has_after_step: bool,
    /// Jobs of the repository with the same group run one at a time (default: the job's first
    /// environment); a pure function of the event is evaluated by the orchestrator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_group: Option<LockName>,
    /// Seconds between SIGTERM and SIGKILL on cancel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<u64>,
    /// Of a matrix job: most children queued or running at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u32>,
    /// Of a matrix job: a failed child cancels its unfinished siblings.
    #[serde(default, skip_serializing_if = "is_false")]
    pub fail_fast: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

/// Longest inline function source a lock file may carry.
pub const MAX_INLINE_EXPRESSION_BYTES: usize = 16 * 1024;

impl StaticJob {
    /// Whether the job passes the orchestrator's gates before it is queued: it has
    /// environments, its own approval, required secrets, an `env` function to evaluate, or a
    /// concurrency group.
    pub fn is_gated(&self) -> bool {
        !self.environments.is_empty()
            || self.concurrency_group.is_some()
            || self.approval.is_some()
            || !self.secrets.is_empty()
            || self.dynamic_env
            || matches!(self.env, Some(LockEnv::Inline(_)))
    }

    /// Whether an init job must evaluate some of its environments or its `env` first.
    pub fn needs_init(&self) -> bool {
        self.dynamic_env || self.environments.iter().any(|e| e.dynamic)
    }

    /// Environments, `env`, `approval` and `secrets` are what this build can act on.
    fn validate_protection(&self) -> Result<(), String> {
        let inline = |value: &InlineValue, what: &str| {
            if value.expression.len() > MAX_INLINE_EXPRESSION_BYTES {
                return Err(format!(
                    "has an inline {what} function of {} bytes (at most {MAX_INLINE_EXPRESSION_BYTES})",
                    value.expression.len()
                ));
            }
            Ok(())
        };
        for spec in &self.cache {
            spec.validate()?;
        }
        if self.dynamic_env && self.env.is_some() {
            return Err("has both `env` and `dynamicEnv` (recompile with `kici compile`)".to_string());
        }
        for environment in self.environments.iter().filter(|e| !e.dynamic) {
            match &environment.value {
                LockName::Name(name) if !crate::protection::valid_name(name) => {
                    return Err(format!(
                        "names environment '{}', which is not a valid name",
                        excerpt(name)
                    ));
                }
                LockName::Name(_) => {}
                LockName::Inline(value) => inline(value, "environment")?,
            }
        }
        if let Some(LockEnv::Inline(value)) = &self.env {
            inline(value, "env")?;
        }
        if let Some(key) = self.secrets.iter().find(|k| !crate::protection::valid_key(k)) {
            return Err(format!("needs secret '{}', which is not a valid key", excerpt(key)));
        }
        Ok(())
    }
}

/// A pure function the compiler inlined (`{"_type": "inline", "expression": "(event) => …"}`):
/// the orchestrator evaluates it with the run's event when the job is ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InlineValue {
    #[serde(rename = "_type")]
    pub kind: InlineKind,
    pub expression: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InlineKind {
    Inline,
}

impl InlineValue {
    pub fn new(expression: &str) -> InlineValue {
        InlineValue {
            kind: InlineKind::Inline,
            expression: expression.to_string(),
        }
    }
}

/// A job's `env`: an object, or a pure function of the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LockEnv {
    Inline(InlineValue),
    Static(Map<String, Value>),
}

/// One of a job's environments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockEnvironment {
    pub value: LockName,
    /// An impure function: an init job on an agent evaluates it (the value is then empty).
    #[serde(default)]
    pub dynamic: bool,
}

/// A name, or a pure function of the event that returns one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LockName {
    Name(String),
    Inline(InlineValue),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunsOnPick {
    Deterministic,
    Any,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "_type", rename_all = "lowercase")]
pub enum LockMatrix {
    Static { values: MatrixValues },
    Dynamic { source: MatrixSource },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatrixSource {
    pub file: String,
    pub job_name: String,
}

/// A rule reference; the check itself runs in the runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRule {
    #[serde(rename = "_type")]
    pub kind: DynamicKind,
    pub label: String,
    pub source: RuleSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DynamicKind {
    Dynamic,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSource {
    pub file: String,
    pub index: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LockStep {
    Parallel(ParallelGroup),
    Sequential(SequentialStep),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParallelGroup {
    pub kind: ParallelKind,
    pub name: String,
    pub fail_fast: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u32>,
    pub children: Vec<SequentialStep>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParallelKind {
    Parallel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SequentialStep {
    pub name: String,
    #[serde(default)]
    pub has_outputs: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_on_error: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Restored before the step runs, saved after it succeeds (in the step's own log).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache: Vec<CacheSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_location: Option<SourceLocation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_rules: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_on_cancel: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_cleanup: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub delay_ms: u64,
    pub backoff: Backoff,
    pub max_delay_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    Exponential,
    Fixed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceLocation {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl StaticJob {
    /// Steps in flat order (parallel children inline): the indices the runner reports.
    pub fn flat_steps(&self) -> Vec<&SequentialStep> {
        self.steps
            .iter()
            .flat_map(|step| match step {
                LockStep::Sequential(step) => std::slice::from_ref(step).iter(),
                LockStep::Parallel(group) => group.children.iter(),
            })
            .collect()
    }
}

/// Why a lock file could not be loaded. Each variant's text is what the failed run's
/// `failureReason` says (category `lock_resolution`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockFileError {
    #[error("Lock file at {location} is not valid JSON: {reason}")]
    NotJson { location: String, reason: String },
    #[error("Invalid lock file at {location}: missing or invalid schemaVersion")]
    MissingSchemaVersion { location: String },
    #[error(
        "Lock file schemaVersion {found} is incompatible with this orchestrator (engine SCHEMA_VERSION {SCHEMA_VERSION}). Recompile the lock with `kici compile` and push again."
    )]
    IncompatibleSchema { found: u64 },
    #[error("Invalid lock file at {location}: {reason}")]
    Invalid { location: String, reason: String },
    #[error(
        "Invalid lock file at {location}: {reason}. The lock file is likely stale or compiled by an older engine — recompile with `kici compile`."
    )]
    Stale { location: String, reason: String },
    #[error(
        "Lock file at {location} is {bytes} bytes; lock files are limited to {MAX_LOCK_FILE_BYTES} bytes. Split the workflows or shorten their patterns, then compile and push again."
    )]
    TooLarge { location: String, bytes: usize },
    #[error(
        "Invalid lock file at {location}: {place} has `{key}`, which this build of KiCI does not honour. Remove that option from the workflow and run `kici compile` (it names the option and the fix), then push again."
    )]
    NotHonoured {
        location: String,
        place: String,
        key: String,
    },
}

/// The first key of the lock file this build does not act on, with where it is
/// (`workflow 'deploy' job 'ship'`). Shapes serde will reject anyway are skipped here.
fn first_key_not_honoured(value: &Value) -> Option<(String, String)> {
    fn unknown(object: &Value, kind: LockObject, place: impl Fn() -> String) -> Option<(String, String)> {
        let key = object.as_object()?.keys().find(|key| !lock_key_honoured(kind, key))?;
        Some((place(), excerpt(key).into_owned()))
    }
    fn name(object: &Value) -> String {
        excerpt(object.get("name").and_then(Value::as_str).unwrap_or("?")).into_owned()
    }
    let list = |value: &Value, key: &str| value.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    if let Some(found) = unknown(value, LockObject::Top, || "the top level".to_string()) {
        return Some(found);
    }
    for workflow in list(value, "workflows") {
        let wf = name(&workflow);
        if let Some(found) = unknown(&workflow, LockObject::Workflow, || format!("workflow '{wf}'")) {
            return Some(found);
        }
        for (index, trigger) in list(&workflow, "triggers").iter().enumerate() {
            if let Some(kind) = trigger.get("_type").and_then(Value::as_str)
                && !trigger_honoured(kind)
            {
                return Some((format!("workflow '{wf}' trigger {index}"), excerpt(kind).into_owned()));
            }
        }
        for job in list(&workflow, "jobs") {
            let job_place = || format!("workflow '{wf}' job '{}'", name(&job));
            if job.get("_type").and_then(Value::as_str) == Some("dynamic") {
                if let Some(found) = unknown(&job, LockObject::DynamicJob, job_place) {
                    return Some(found);
                }
                continue;
            }
            if let Some(found) = unknown(&job, LockObject::StaticJob, job_place) {
                return Some(found);
            }
            for step in list(&job, "steps") {
                let step_place = |step: &Value| format!("{} step '{}'", job_place(), name(step));
                if step.get("kind").is_some() {
                    if let Some(found) = unknown(&step, LockObject::ParallelGroup, || step_place(&step)) {
                        return Some(found);
                    }
                    for child in list(&step, "children") {
                        if let Some(found) = unknown(&child, LockObject::Step, || step_place(&child)) {
                            return Some(found);
                        }
                    }
                } else if let Some(found) = unknown(&step, LockObject::Step, || step_place(&step)) {
                    return Some(found);
                }
            }
        }
    }
    None
}

impl LockFile {
    /// Parses and validates a lock file. `location` names it in errors (`<repo> ref=<ref>`).
    /// Every error quotes the file's content as excerpts, so a hostile lock file cannot flood
    /// the failure reason or the log.
    pub fn parse(text: &str, location: &str) -> Result<LockFile, LockFileError> {
        let location = excerpt(location).into_owned();
        if text.len() > MAX_LOCK_FILE_BYTES {
            return Err(LockFileError::TooLarge {
                location,
                bytes: text.len(),
            });
        }
        // serde_json refuses nesting deeper than 128, so parsing cannot exhaust the stack.
        let value: Value = serde_json::from_str(text).map_err(|err| LockFileError::NotJson {
            location: location.clone(),
            reason: json_error(&err),
        })?;
        let version =
            value
                .get("schemaVersion")
                .and_then(Value::as_u64)
                .ok_or_else(|| LockFileError::MissingSchemaVersion {
                    location: location.clone(),
                })?;
        if version != SCHEMA_VERSION {
            return Err(LockFileError::IncompatibleSchema { found: version });
        }
        if let Some((place, key)) = first_key_not_honoured(&value) {
            return Err(LockFileError::NotHonoured { location, place, key });
        }
        let lock: LockFile = serde_json::from_value(value).map_err(|err| LockFileError::Invalid {
            location: location.clone(),
            reason: json_error(&err),
        })?;
        lock.validate()
            .map_err(|reason| LockFileError::Stale { location, reason })?;
        Ok(lock)
    }

    /// Workflow names are unique, patterns compile, label matchers are valid, each workflow's
    /// needs graph is sound.
    fn validate(&self) -> Result<(), String> {
        let patterns: usize = self
            .workflows
            .iter()
            .map(|workflow| {
                let triggers: usize = workflow.triggers.iter().map(Trigger::pattern_count).sum();
                let labels: usize = workflow
                    .jobs
                    .iter()
                    .filter_map(LockJob::as_static)
                    .map(|job| job.runs_on.len() + job.exclude_labels.len())
                    .sum();
                triggers + labels
            })
            .sum();
        if patterns > MAX_LOCK_PATTERNS {
            return Err(format!(
                "it holds {patterns} trigger patterns and label matchers; at most {MAX_LOCK_PATTERNS} are loaded"
            ));
        }
        let mut names = HashSet::new();
        for workflow in &self.workflows {
            let wf = excerpt(&workflow.name);
            if !names.insert(workflow.name.as_str()) {
                return Err(format!("two workflows are named '{wf}'"));
            }
            for trigger in &workflow.triggers {
                trigger
                    .validate()
                    .map_err(|err| format!("workflow '{wf}' has an invalid {} trigger: {err}", trigger.kind()))?;
            }
            crate::install::validate(&workflow.registries, &workflow.install_env)
                .map_err(|err| format!("workflow '{wf}' {err}"))?;
            // Generators are nodes too: jobs may need them, or their group (`__group:<name>`).
            let generator_names: Vec<String> = workflow
                .jobs
                .iter()
                .filter_map(|job| match job {
                    LockJob::Dynamic(generator) => Some(generator.name()),
                    LockJob::Static(_) => None,
                })
                .collect();
            let mut graph = Vec::new();
            let generators = workflow.jobs.iter().filter_map(|job| match job {
                LockJob::Dynamic(generator) => Some(generator),
                LockJob::Static(_) => None,
            });
            for (generator, name) in generators.zip(&generator_names) {
                graph.push((name.as_str(), generator.needs.iter().map(Need::name).collect()));
            }
            for job in &workflow.jobs {
                let LockJob::Static(job) = job else { continue };
                for matcher in job.runs_on.iter().chain(&job.exclude_labels) {
                    matcher.validate().map_err(|err| {
                        format!(
                            "workflow '{wf}' job '{}' has an invalid label matcher: {err}",
                            excerpt(&job.name)
                        )
                    })?;
                }
                job.validate_protection()
                    .map_err(|err| format!("workflow '{wf}' job '{}' {err}", excerpt(&job.name)))?;
                graph.push((job.name.as_str(), job.needs.iter().map(Need::name).collect()));
            }
            dag::validate(&graph).map_err(|err| format!("workflow '{wf}': {err}"))?;
        }
        Ok(())
    }

    /// The top-level `contentHash`: sha256 of compact `{schemaVersion, source, workflows}`.
    pub fn compute_content_hash(schema_version: u64, source: &SourceRef, workflows: &[LockWorkflow]) -> String {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Hashed<'a> {
            schema_version: u64,
            source: &'a SourceRef,
            workflows: &'a [LockWorkflow],
        }
        let json = serde_json::to_string(&Hashed {
            schema_version,
            source,
            workflows,
        })
        .expect("lock types serialize");
        sha256_hex(json.as_bytes())
    }

    /// The file's text: 2-space indented JSON and a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("lock types serialize");
        text.push('\n');
        text
    }

    pub fn workflow(&self, name: &str) -> Option<&LockWorkflow> {
        self.workflows.iter().find(|w| w.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LOCATION: &str = "acme/app ref=main";

    fn hello() -> Value {
        json!({
            "schemaVersion": SCHEMA_VERSION,
            "source": {"file": ".kici/workflows/hello-world.ts", "export": "#default"},
            "contentHash": "00",
            "sdk": {"version": "0.1.0", "bundleHash": "ab"},
            "workflows": [{
                "name": "hello-world",
                "source": {"file": ".kici/workflows/hello-world.ts", "export": "#default"},
                "contentHash": "11",
                "compileSchemaVersion": COMPILE_SCHEMA_VERSION,
                "triggers": [{"_type": "push", "branches": [], "paths": []}],
                "jobs": [{
                    "_type": "static", "name": "greet",
                    "runsOn": [{"kind": "exact", "value": "kici:os:linux"}],
                    "runsOnPick": "deterministic", "needs": [],
                    "steps": [
                        {"name": "say-hello", "hasOutputs": false,
                         "sourceLocation": {"file": ".kici/workflows/hello-world.ts", "line": 14, "column": 9}},
                        {"kind": "parallel", "name": "checks", "failFast": true,
                         "children": [{"name": "lint", "hasOutputs": false}, {"name": "test", "hasOutputs": false}]}
                    ]
                }]
            }]
        })
    }

    fn parse(value: &Value) -> Result<LockFile, String> {
        LockFile::parse(&value.to_string(), LOCATION).map_err(|e| e.to_string())
    }

    #[test]
    fn round_trips_in_key_order() {
        let value = hello();
        let lock = parse(&value).unwrap();
        assert_eq!(serde_json::to_value(&lock).unwrap(), value);
        assert_eq!(
            lock.to_json(),
            format!("{}\n", serde_json::to_string_pretty(&value).unwrap())
        );
        let LockJob::Static(job) = &lock.workflows[0].jobs[0] else {
            panic!("a static job")
        };
        let names: Vec<&str> = job.flat_steps().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["say-hello", "lint", "test"]);
    }

    #[test]
    fn load_errors_have_the_documented_texts() {
        assert_eq!(
            LockFile::parse("{not json", LOCATION).unwrap_err().to_string(),
            "Lock file at acme/app ref=main is not valid JSON: key must be a string at line 1 column 2"
        );
        let mut v = hello();
        v["schemaVersion"] = json!("29");
        assert_eq!(
            parse(&v).unwrap_err(),
            "Invalid lock file at acme/app ref=main: missing or invalid schemaVersion"
        );
        v["schemaVersion"] = json!(29);
        assert_eq!(
            parse(&v).unwrap_err(),
            "Lock file schemaVersion 29 is incompatible with this orchestrator (engine SCHEMA_VERSION 30). Recompile the lock with `kici compile` and push again."
        );
        let mut v = hello();
        v["workflows"][0]["jobs"][0]["runsOn"] = json!([{"kind": "glob", "pattern": "x*"}]);
        assert!(
            parse(&v)
                .unwrap_err()
                .starts_with("Invalid lock file at acme/app ref=main: ")
        );
        let mut v = hello();
        v["workflows"][0]["jobs"][0]["runsOn"] = json!([{"kind": "regex", "source": "(", "flags": ""}]);
        let err = parse(&v).unwrap_err();
        assert!(err.contains("job 'greet' has an invalid label matcher"), "{err}");
        assert!(err.ends_with("recompile with `kici compile`."), "{err}");
        let mut v = hello();
        v["workflows"][0]["jobs"][0]["needs"] = json!(["greet"]);
        assert!(parse(&v).unwrap_err().contains("job \"greet\" depends on itself"));
    }

    #[test]
    fn hostile_lock_files_are_errors_with_short_messages() {
        let huge = format!(
            "{{\"schemaVersion\": 30, \"pad\": \"{}\"}}",
            "x".repeat(MAX_LOCK_FILE_BYTES)
        );
        assert_eq!(
            LockFile::parse(&huge, LOCATION).unwrap_err().to_string(),
            format!(
                "Lock file at acme/app ref=main is {} bytes; lock files are limited to 2097152 bytes. Split the workflows or shorten their patterns, then compile and push again.",
                huge.len()
            )
        );
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = LockFile::parse(&deep, LOCATION).unwrap_err().to_string();
        assert_eq!(
            err,
            "Lock file at acme/app ref=main is not valid JSON: recursion limit exceeded at line 1 column 128"
        );
        let mut v = hello();
        v["workflows"][0]["triggers"][0]["branches"] =
            json!([{"type": "glob", "pattern": format!("{}a{}", "{".repeat(5000), "}".repeat(5000))}]);
        let err = parse(&v).unwrap_err();
        assert!(err.contains("patterns are limited to 1024"), "{err}");
        assert!(err.len() < 700, "{err}");
        let mut v = hello();
        v["workflows"][0]["name"] = json!("w".repeat(1_000_000));
        v["workflows"][0]["jobs"][0]["name"] = json!(5);
        let err = parse(&v).unwrap_err();
        assert!(err.len() < 700, "{err}");
        let mut v = hello();
        let job = v["workflows"][0]["jobs"][0].clone();
        v["workflows"][0]["jobs"] = json!([job, job]);
        assert!(
            parse(&v)
                .unwrap_err()
                .contains("workflow 'hello-world': two jobs are named \"greet\"")
        );
        let mut v = hello();
        let workflow = v["workflows"][0].clone();
        v["workflows"] = json!([workflow, workflow]);
        assert!(parse(&v).unwrap_err().contains("two workflows are named 'hello-world'"));
        let mut v = hello();
        v["workflows"][0]["triggers"][0]["paths"] = json!(vec!["s*"; MAX_LOCK_PATTERNS]);
        assert!(
            parse(&v)
                .unwrap_err()
                .contains("it holds 4097 trigger patterns and label matchers; at most 4096 are loaded")
        );
    }

    #[test]
    fn keys_this_build_does_not_honour_are_refused() {
        let mut v = hello();
        v["workflows"][0]["jobs"][0]["resources"] = json!({"limits": {"cpus": 1}});
        assert_eq!(
            parse(&v).unwrap_err(),
            "Invalid lock file at acme/app ref=main: workflow 'hello-world' job 'greet' has `resources`, which this build of KiCI does not honour. Remove that option from the workflow and run `kici compile` (it names the option and the fix), then push again."
        );
        let mut v = hello();
        v["workflows"][0]["approval"] = json!({"clauses": [{"team": "ops"}]});
        assert!(parse(&v).unwrap_err().contains("workflow 'hello-world' has `approval`"));
        let mut v = hello();
        v["workflows"][0]["jobs"][0]["steps"][1]["children"][0]["timeoutt"] = json!(5);
        assert!(
            parse(&v)
                .unwrap_err()
                .contains("workflow 'hello-world' job 'greet' step 'lint' has `timeoutt`")
        );
    }

    #[test]
    fn environments_env_and_approval_load_and_say_what_the_orchestrator_must_do() {
        let mut v = hello();
        let job = &mut v["workflows"][0]["jobs"][0];
        job["environments"] = json!([
            {"value": "production"},
            {"value": {"_type": "inline", "expression": "(e) => 'staging'"}, "dynamic": false},
            {"value": "", "dynamic": true}
        ]);
        job["dynamicEnv"] = json!(true);
        job["approval"] = json!({"clauses": [{"team": "ops"}], "timeoutSeconds": 60, "when": "always"});
        job["secrets"] = json!(["DEPLOY_KEY"]);
        let lock = parse(&v).unwrap();
        let job = lock.workflows[0].jobs[0].as_static().unwrap();
        assert!(job.is_gated() && job.needs_init());
        assert_eq!(
            job.environments[1].value,
            LockName::Inline(InlineValue::new("(e) => 'staging'"))
        );

        let mut both = v.clone();
        both["workflows"][0]["jobs"][0]["env"] = json!({"A": "b"});
        assert!(parse(&both).unwrap_err().contains("has both `env` and `dynamicEnv`"));
        let mut bad = v.clone();
        bad["workflows"][0]["jobs"][0]["environments"][0]["value"] = json!("prod env");
        assert!(
            parse(&bad)
                .unwrap_err()
                .contains("names environment 'prod env', which is not a valid name")
        );
        let mut key = v.clone();
        key["workflows"][0]["jobs"][0]["secrets"] = json!(["1X"]);
        assert!(
            parse(&key)
                .unwrap_err()
                .contains("needs secret '1X', which is not a valid key")
        );
        let mut huge = v;
        huge["workflows"][0]["jobs"][0]["environments"][1]["value"]["expression"] = json!("x".repeat(20_000));
        assert!(
            parse(&huge)
                .unwrap_err()
                .contains("inline environment function of 20000 bytes")
        );
    }

    #[test]
    fn top_level_hash_ignores_the_sdk_stamp_but_not_workflows() {
        let lock = parse(&hello()).unwrap();
        let a = LockFile::compute_content_hash(lock.schema_version, &lock.source, &lock.workflows);
        let mut changed = lock.workflows.clone();
        changed[0].name = "other".into();
        assert_ne!(
            a,
            LockFile::compute_content_hash(lock.schema_version, &lock.source, &changed)
        );
        assert_eq!(a.len(), 64);
    }
}
