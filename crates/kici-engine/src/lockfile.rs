//! The lock file `.kici/kici.lock.json`: its types, its serialisation and its validation at
//! load.
//!
//! Field names and key order follow the reference (`spec/authoring.md` §3) so authors and
//! tools recognise it. Our numbers: [`SCHEMA_VERSION`] 30 is the reference's v29 shape plus the
//! top-level `sdk` stamp (the SDK the lock was compiled against); the per-workflow
//! `compileSchemaVersion` is [`COMPILE_SCHEMA_VERSION`] (6: contentHash binds the SDK bundle
//! hash). Loading requires the exact schema version, like the reference.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::dag::{self, Need};
pub use crate::hash::COMPILE_SCHEMA_VERSION;
use crate::hash::sha256_hex;
use crate::labels::LabelMatcher;
use crate::matrix::{Combination, MatrixValues};
use crate::trigger::Trigger;

/// The lock schema this build reads and writes.
pub const SCHEMA_VERSION: u64 = 30;

/// The lock file's name inside `.kici/`.
pub const LOCK_FILE_NAME: &str = "kici.lock.json";

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub hooks: HookFlags,
    /// Seconds between SIGTERM and SIGKILL on cancel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
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
}

impl LockFile {
    /// Parses and validates a lock file. `location` names it in errors (`<repo> ref=<ref>`).
    pub fn parse(text: &str, location: &str) -> Result<LockFile, LockFileError> {
        let value: Value = serde_json::from_str(text).map_err(|err| LockFileError::NotJson {
            location: location.to_string(),
            reason: err.to_string(),
        })?;
        let version =
            value
                .get("schemaVersion")
                .and_then(Value::as_u64)
                .ok_or_else(|| LockFileError::MissingSchemaVersion {
                    location: location.to_string(),
                })?;
        if version != SCHEMA_VERSION {
            return Err(LockFileError::IncompatibleSchema { found: version });
        }
        let lock: LockFile = serde_json::from_value(value).map_err(|err| LockFileError::Invalid {
            location: location.to_string(),
            reason: err.to_string(),
        })?;
        lock.validate().map_err(|reason| LockFileError::Stale {
            location: location.to_string(),
            reason,
        })?;
        Ok(lock)
    }

    /// Patterns compile, label matchers are valid, each workflow's needs graph is sound.
    fn validate(&self) -> Result<(), String> {
        for workflow in &self.workflows {
            let wf = &workflow.name;
            for trigger in &workflow.triggers {
                trigger
                    .validate()
                    .map_err(|err| format!("workflow '{wf}' has an invalid {} trigger: {err}", trigger.kind()))?;
            }
            let mut graph = Vec::new();
            for job in &workflow.jobs {
                let LockJob::Static(job) = job else { continue };
                for matcher in job.runs_on.iter().chain(&job.exclude_labels) {
                    matcher.validate().map_err(|err| {
                        format!("workflow '{wf}' job '{}' has an invalid label matcher: {err}", job.name)
                    })?;
                }
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
