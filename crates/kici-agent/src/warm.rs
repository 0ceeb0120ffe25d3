//! A spare Node runner, started while the agent is idle so a job does not wait for Node to
//! boot. The spare is started from a [`Runtime`] (the embedded packages on disk) under the work
//! directory; jobs stage their `.kici/` tree inside that runtime so the spare loads the same
//! `@kici-dev/*` modules. Without a runtime (it could not be written) or a live spare, jobs
//! start their own runner as before.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kici_compiler::runner::{RunnerProcess, RunnerSpec, find_node};
use kici_compiler::stage::Runtime;
use tracing::warn;

#[derive(Debug)]
pub struct WarmRunners {
    runtime: Option<Runtime>,
    node: Option<PathBuf>,
    work_dir: PathBuf,
    /// At most one idle runner.
    spare: Mutex<Option<RunnerProcess>>,
}

impl WarmRunners {
    pub fn new(work_dir: &Path, node: Option<PathBuf>) -> WarmRunners {
        let runtime = match Runtime::create(work_dir) {
            Ok(runtime) => Some(runtime),
            Err(err) => {
                warn!(error = %err, "cannot write the runner packages; jobs will start their own runner");
                None
            }
        };
        WarmRunners {
            runtime,
            node,
            work_dir: work_dir.to_path_buf(),
            spare: Mutex::new(None),
        }
    }

    pub fn runtime(&self) -> Option<&Runtime> {
        self.runtime.as_ref()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<RunnerProcess>> {
        // The guarded value is replaced whole, so a poisoned lock still holds a consistent one.
        self.spare.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The spare runner, if one is alive.
    pub fn take(&self) -> Option<RunnerProcess> {
        let mut spare = self.lock().take()?;
        spare.is_alive().then_some(spare)
    }

    /// Starts a spare runner unless there is one. Needs a tokio runtime.
    pub fn refill(&self) {
        let Some(runtime) = &self.runtime else { return };
        let mut spare = self.lock();
        if spare.as_mut().is_some_and(RunnerProcess::is_alive) {
            return;
        }
        let Ok(node) = find_node(self.node.as_deref()) else {
            return;
        };
        let mut env = RunnerSpec::inherited_env();
        env.insert("CI".to_string(), "true".to_string());
        let spec = RunnerSpec {
            node,
            runner: runtime.runner_path(),
            cwd: self.work_dir.clone(),
            env,
        };
        match RunnerProcess::spawn(&spec) {
            Ok(runner) => *spare = Some(runner),
            Err(err) => warn!(error = %err.full_message(), "cannot start a spare runner"),
        }
    }
}
