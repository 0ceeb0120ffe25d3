//! `kici compile` as a library call: locate the workflow files, stage the `.kici/` tree, ask
//! the runner to describe the workflows, and generate the lock file.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kici_engine::lockfile::{LockFile, SdkStamp};

use crate::deps;
use crate::describe::{DescribeError, describe};
use crate::diagnostic::{Code, Diagnostic};
use crate::lockgen::{self, Generated};
use crate::project::Project;
use crate::runner::RunnerSpec;
use crate::stage::{Runtime, StageError, StagedTree, stage, stage_within};

/// A successful compilation: the lock file and the staged tree it was described from (which
/// `kici run local` goes on to execute).
#[derive(Debug)]
pub struct Compiled {
    pub lock: LockFile,
    pub staged: StagedTree,
    /// Notes for the author (`[kici] …`), printed on stderr.
    pub notes: Vec<String>,
    /// How long each phase took (`kici compile --verbose`).
    pub timings: PhaseTimings,
}

/// The compiler's phases, in order, and how long each took.
#[derive(Debug, Clone, Copy, Default)]
pub struct PhaseTimings {
    /// Finding the workflow files and transpiling the `.kici/` tree into the staged directory.
    pub stage: Duration,
    /// Node importing the workflow modules and describing what they export.
    pub describe: Duration,
    /// Validating the descriptions, hashing sources and `hashFiles`, building the lock file.
    pub generate: Duration,
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
    let started = Instant::now();
    let staged = prepare(project)?;
    let mut timings = PhaseTimings {
        stage: started.elapsed(),
        ..PhaseTimings::default()
    };
    let Generated { lock, notes } = describe_and_generate(project, &staged, node, &mut timings).await?;
    Ok(Compiled {
        lock,
        staged,
        notes,
        timings,
    })
}

/// Finds the workflow files and stages the `.kici/` tree.
pub fn prepare(project: &Project) -> Result<StagedTree, CompileError> {
    let files = project
        .workflow_files()
        .map_err(|d| CompileError::Diagnostics(vec![d]))?;
    staged(stage(project, &files))
}

/// Like [`prepare`], inside `runtime` (see [`stage_within`]).
pub fn prepare_within(project: &Project, runtime: &Runtime) -> Result<StagedTree, CompileError> {
    let files = project
        .workflow_files()
        .map_err(|d| CompileError::Diagnostics(vec![d]))?;
    staged(stage_within(project, &files, runtime))
}

fn staged(result: Result<StagedTree, StageError>) -> Result<StagedTree, CompileError> {
    match result {
        Ok(staged) => Ok(staged),
        Err(StageError::Syntax(diagnostics)) => Err(CompileError::Diagnostics(diagnostics)),
        Err(err) => Err(CompileError::Stage(err)),
    }
}

/// Describes the staged workflows through a runner and generates the lock file.
pub async fn describe_staged(project: &Project, staged: &StagedTree, node: PathBuf) -> Result<Generated, CompileError> {
    describe_and_generate(project, staged, node, &mut PhaseTimings::default()).await
}

/// [`describe_staged`], recording the `describe` and `generate` phases in `timings`.
async fn describe_and_generate(
    project: &Project,
    staged: &StagedTree,
    node: PathBuf,
    timings: &mut PhaseTimings,
) -> Result<Generated, CompileError> {
    let started = Instant::now();
    let spec = RunnerSpec {
        node,
        runner: staged.runner_path(),
        cwd: project.root.clone(),
        env: RunnerSpec::inherited_env(),
    };
    let root = project.root.to_string_lossy().to_string();
    let described = describe(staged, &spec, &root).await?;
    timings.describe = started.elapsed();
    let started = Instant::now();
    let repo_root = project.root.clone();
    let kici_dir = project.kici_dir.clone();
    // Hashing reads every workflow source and `hashFiles` match: file-system work.
    let generated = tokio::task::spawn_blocking(move || {
        let mut generated = lockgen::generate(&repo_root, &described, &embedded_sdk())?;
        if let Some(lockfile) = deps::find_lockfile(&repo_root, &kici_dir) {
            let hash = deps::lockfile_hash(&lockfile).map_err(|err| {
                let file = lockfile.path.strip_prefix(&repo_root).unwrap_or(&lockfile.path);
                vec![Diagnostic::new(
                    Code::E116,
                    &file.to_string_lossy(),
                    None,
                    format!("cannot read the dependency lock file: {err}"),
                    "make it readable, or delete it and install again",
                )]
            })?;
            generated.lock.lockfile_hash = Some(hash);
        }
        Ok(generated)
    })
    .await
    .expect("lock generation does not panic")
    .map_err(CompileError::Diagnostics);
    timings.generate = started.elapsed();
    generated
}
