//! `kici compile` as a library call: locate the workflow files, stage the `.kici/` tree, ask
//! the runner to describe the workflows, and generate the lock file.

use std::path::PathBuf;

use kici_engine::lockfile::{LockFile, SdkStamp};

use crate::describe::{DescribeError, describe};
use crate::diagnostic::Diagnostic;
use crate::lockgen;
use crate::project::Project;
use crate::runner::RunnerSpec;
use crate::stage::{StageError, StagedTree, stage};

/// A successful compilation: the lock file and the staged tree it was described from (which
/// `kici run local` goes on to execute).
#[derive(Debug)]
pub struct Compiled {
    pub lock: LockFile,
    pub staged: StagedTree,
}

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// Problems in the workflows, reported together.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Diagnostics(Vec<Diagnostic>),
    #[error(transparent)]
    Stage(StageError),
    #[error(transparent)]
    Describe(#[from] DescribeError),
}

/// The SDK stamp of the embedded `@kici-dev/sdk`.
pub fn embedded_sdk() -> SdkStamp {
    SdkStamp {
        version: kici_sdk::sdk().version.to_string(),
        bundle_hash: kici_sdk::sdk().hash.to_string(),
    }
}

/// Compiles `project` with the Node at `node`.
pub async fn compile(project: &Project, node: PathBuf) -> Result<Compiled, CompileError> {
    let files = project
        .workflow_files()
        .map_err(|d| CompileError::Diagnostics(vec![d]))?;
    let staged = match stage(project, &files) {
        Ok(staged) => staged,
        Err(StageError::Syntax(diagnostics)) => return Err(CompileError::Diagnostics(diagnostics)),
        Err(err) => return Err(CompileError::Stage(err)),
    };
    let spec = RunnerSpec {
        node,
        runner: staged.runner_path(),
        cwd: project.root.clone(),
        env: RunnerSpec::inherited_env(),
    };
    let root = project.root.to_string_lossy().to_string();
    let described = describe(&staged, &spec, &root).await?;
    let lock = lockgen::generate(&project.root, &described, &embedded_sdk()).map_err(CompileError::Diagnostics)?;
    Ok(Compiled { lock, staged })
}
