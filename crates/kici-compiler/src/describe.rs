//! The workflow descriptions the runner's `describe` request returns (`sdk/PROTOCOL.md`), and
//! the call that obtains them. The lock generator turns them into lock-file entries.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use kici_engine::labels::LabelSelector;
use kici_engine::lockfile::{LockStep, RunsOnPick, SourceLocation};
use kici_engine::matrix::{Combination, MatrixValues};
use kici_engine::runner_protocol::{DescribedFile, HostMessage, RunnerMessage};
use kici_engine::status::JobStatus;
use kici_engine::trigger::Trigger;

use crate::runner::{OutputTail, RunnerError, RunnerEvent, RunnerProcess, RunnerSpec};
use crate::stage::StagedTree;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowDescription {
    pub name: String,
    pub export: String,
    #[serde(default)]
    pub location: Option<SourceLocation>,
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    pub jobs: Vec<JobDescription>,
    #[serde(default)]
    pub rules: Vec<RuleDescription>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub hash_files: Vec<String>,
    #[serde(default)]
    pub has_on_cancel: bool,
    #[serde(default)]
    pub has_cleanup: bool,
    #[serde(default)]
    pub has_on_success: bool,
    #[serde(default)]
    pub has_on_failure: bool,
    #[serde(default)]
    pub timeout: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDescription {
    pub name: String,
    #[serde(default)]
    pub location: Option<SourceLocation>,
    #[serde(default)]
    pub runs_on: Vec<LabelSelector>,
    #[serde(default)]
    pub exclude_labels: Vec<LabelSelector>,
    #[serde(default)]
    pub runs_on_pick: Option<RunsOnPick>,
    #[serde(default)]
    pub needs: Vec<NeedDescription>,
    pub steps: Vec<LockStep>,
    #[serde(default)]
    pub matrix: Option<MatrixDescription>,
    #[serde(default)]
    pub include: Vec<Combination>,
    #[serde(default)]
    pub exclude: Vec<Combination>,
    #[serde(default)]
    pub rules: Vec<RuleDescription>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub checkout: Option<bool>,
    #[serde(default)]
    pub env: Option<Map<String, Value>>,
    #[serde(default)]
    pub has_on_cancel: bool,
    #[serde(default)]
    pub has_cleanup: bool,
    #[serde(default)]
    pub has_on_success: bool,
    #[serde(default)]
    pub has_on_failure: bool,
    #[serde(default)]
    pub grace_period: Option<u64>,
    #[serde(default)]
    pub timeout: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum NeedDescription {
    Name(String),
    Conditional { name: String, when: WhenDescription },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum WhenDescription {
    Keyword(String),
    Statuses(Vec<JobStatus>),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "_type", rename_all = "lowercase")]
pub enum MatrixDescription {
    Static { values: MatrixValues },
    Dynamic,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RuleDescription {
    pub label: String,
}

/// Why describing failed as a whole (individual module errors are part of the result).
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    #[error(transparent)]
    Runner(#[from] RunnerError),
    #[error("the workflow runner exited ({status}) without describing the workflows{output}")]
    NoResult { status: String, output: String },
    #[error("describing the workflows took longer than {}s (hint: a workflow module never finishes loading; look for a loop or an await at its top level)", DESCRIBE_TIMEOUT.as_secs())]
    Timeout,
}

/// How long importing and describing every workflow module may take.
pub const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(120);

/// Asks a runner to import every staged workflow module and describe what it exports.
pub async fn describe(staged: &StagedTree, spec: &RunnerSpec, root: &str) -> Result<Vec<DescribedFile>, DescribeError> {
    let mut runner = RunnerProcess::spawn(spec)?;
    runner
        .send(&HostMessage::Describe {
            root: root.to_string(),
            files: staged.modules.clone(),
        })
        .await?;
    match tokio::time::timeout(DESCRIBE_TIMEOUT, collect(&mut runner)).await {
        Ok(result) => result,
        Err(_) => {
            runner.terminate().await;
            Err(DescribeError::Timeout)
        }
    }
}

async fn collect(runner: &mut RunnerProcess) -> Result<Vec<DescribedFile>, DescribeError> {
    let mut output = OutputTail::default();
    let mut result = None;
    while let Some(event) = runner.next().await {
        match event {
            // The runner exits right after answering; reaping it keeps no orphan behind.
            RunnerEvent::Message(RunnerMessage::DescribeResult { files }) => result = Some(files),
            RunnerEvent::Stdout(line) | RunnerEvent::Stderr(line) => output.push(line),
            RunnerEvent::BadMessage { line, error } => {
                output.push(format!("unreadable runner message ({error}): {line}"))
            }
            RunnerEvent::Exited(status) => {
                if let Some(files) = result {
                    return Ok(files);
                }
                return Err(DescribeError::NoResult {
                    status: status.to_string(),
                    output: output.suffix(),
                });
            }
            RunnerEvent::Message(_) => {}
        }
    }
    Err(DescribeError::NoResult {
        status: "unknown".to_string(),
        output: output.suffix(),
    })
}
