//! `kici`, the workflow author's CLI: scaffold a project (`init`), compile workflows into the
//! lock file (`compile`), see what an event would run (`preview`), run them on this machine
//! (`run local`), and look at the runs of an orchestrator (`runs list|show|logs`).
//!
//! Exit codes: 0 success, 1 failure (a job failed, a compile error, bad input, an API error).

mod approvals;
mod compile_cmd;
mod dispatch;
mod init;
mod matching;
mod preview;
mod run_local;
mod runs;
mod summary;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kici_compiler::project::Project;
use kici_compiler::runner::find_node;

#[derive(Debug, Parser)]
#[command(name = "kici", version, about = "KiCI workflow author CLI", propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scaffold .kici/ with an example workflow, tsconfig.json and the SDK types
    Init(init::InitArgs),
    /// Compile .kici/workflows/*.ts into .kici/kici.lock.json
    Compile(compile_cmd::CompileArgs),
    /// Dry run: which workflows an event runs (and why not) and the jobs they would start
    Preview(preview::PreviewArgs),
    /// Run workflows
    Run {
        #[command(subcommand)]
        mode: RunMode,
    },
    /// Look at the runs of an orchestrator: list, show, logs
    Runs(runs::RunsArgs),
    /// Start a local orchestrator and agent, push a demo repository and show its run
    Up(up::UpArgs),
    /// Approve a run's jobs that wait for approval
    Approve(approvals::ApproveArgs),
    /// Reject a run's jobs that wait for approval: they fail before they start
    Reject(approvals::RejectArgs),
    /// Start a workflow through its dispatch() trigger, with inputs
    Dispatch(dispatch::DispatchArgs),
}

#[derive(Debug, Subcommand)]
enum RunMode {
    /// Run the workflows an event matches on this machine, in a temporary checkout
    Local(Box<run_local::RunLocalArgs>),
}

/// Options shared by commands that read a project.
#[derive(Debug, Clone, clap::Args)]
pub struct ProjectArgs {
    /// The .kici directory (or a directory containing it); default: search from the current directory
    #[arg(long, value_name = "PATH")]
    pub kici_dir: Option<PathBuf>,
    /// The Node.js executable (default: `node` on PATH)
    #[arg(long, env = "KICI_NODE", value_name = "PATH")]
    pub node: Option<PathBuf>,
}

impl ProjectArgs {
    /// The project (from `cwd` or `--kici-dir`) and the Node executable; `None`, with the
    /// diagnostic printed, when there is no project.
    pub fn open(&self, cwd: &std::path::Path) -> anyhow::Result<Option<(Project, PathBuf)>> {
        let project = match Project::locate(self.kici_dir.as_deref(), cwd) {
            Ok(project) => project,
            Err(diagnostic) => {
                eprintln!("{diagnostic}");
                return Ok(None);
            }
        };
        let node = find_node(self.node.as_deref()).map_err(anyhow::Error::msg)?;
        Ok(Some((project, node)))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Init(args) => init::run(args),
            Command::Compile(args) => compile_cmd::run(args).await,
            Command::Preview(args) => preview::run(args).await,
            Command::Run {
                mode: RunMode::Local(args),
            } => run_local::run(*args).await,
            Command::Runs(args) => runs::run(args).await,
            Command::Up(args) => up::run(args).await,
            Command::Approve(args) => approvals::approve(args).await,
            Command::Dispatch(args) => dispatch::run(args).await,
            Command::Reject(args) => approvals::reject(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
