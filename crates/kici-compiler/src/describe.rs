//! The workflow descriptions the runner's `describe` request returns (`sdk/PROTOCOL.md`), and
//! the call that obtains them. The lock generator turns them into lock-file entries.

use std::time::Duration;

pub use kici_engine::description::{
    DynamicJobDescription, EnvironmentDescription, JobDescription, JobEntry, MatrixDescription, NeedDescription,
    RuleDescription, WhenDescription, WorkflowDescription,
};
use kici_engine::runner_protocol::{DescribedFile, HostMessage, RunnerMessage};

use crate::runner::{OutputTail, RunnerError, RunnerEvent, RunnerProcess, RunnerSpec};
use crate::stage::StagedTree;

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
