//! Turning the runner's `step.start` / `step.complete` / `log.line` messages and its raw
//! output into `step.status` and `log.chunk` messages, and working out the job's error text
//! (`Step '<name>' failed (exit code <n>)`, or why the runner stopped early).

use std::collections::{BTreeMap, VecDeque};

use kici_compiler::runner::RunnerEvent;
use kici_engine::failure::step_failed;
use kici_engine::runner_protocol::{JobComplete, PREPARE_STEP_INDEX, RunnerMessage, StepComplete, StepStart};
use kici_engine::status::StepStatus;
use tracing::warn;

use super::reporter::{Reporter, StepUpdate};

/// Lines of the runner's stderr quoted when it exits before completing the job.
const TAIL_LINES: usize = 20;

/// What the runner said about the steps so far.
#[derive(Default)]
pub(super) struct StepTracker {
    /// Step name and type by index, from `step.start`.
    names: BTreeMap<i64, (String, String)>,
    /// Started (running or pending) and not completed, by index.
    open: BTreeMap<i64, (String, String)>,
    /// Running steps in start order: raw runner output goes to the last one.
    running: Vec<i64>,
    /// The first `step`-type row that failed (by completion time), with its exit code.
    pub(super) first_failed: Option<(String, Option<i32>)>,
    pub(super) completed: Option<JobComplete>,
    pub(super) completed_before_cancel: bool,
    pub(super) stderr_tail: VecDeque<String>,
}

impl StepTracker {
    fn current_step(&self) -> i64 {
        self.running.last().copied().unwrap_or(PREPARE_STEP_INDEX)
    }

    pub(super) async fn handle(&mut self, event: RunnerEvent, reporter: &mut Reporter) {
        match event {
            RunnerEvent::Message(RunnerMessage::StepStart(start)) => self.start(start, reporter).await,
            RunnerEvent::Message(RunnerMessage::StepComplete(complete)) => self.complete(complete, reporter).await,
            RunnerEvent::Message(RunnerMessage::LogLine(line)) => reporter.log(line.step_index, line.line).await,
            RunnerEvent::Message(RunnerMessage::JobComplete(done)) => {
                self.completed_before_cancel = true;
                self.completed = Some(done);
            }
            RunnerEvent::Message(_) => {}
            RunnerEvent::BadMessage { line, error } => {
                warn!(jobId = %reporter.job_id, error = %error, line = %line, "unreadable runner message");
            }
            RunnerEvent::Stdout(line) => reporter.log(self.current_step(), line).await,
            RunnerEvent::Stderr(line) => {
                self.stderr_tail.push_back(line.clone());
                if self.stderr_tail.len() > TAIL_LINES {
                    self.stderr_tail.pop_front();
                }
                reporter.log(self.current_step(), line).await;
            }
            RunnerEvent::Exited(_) => {}
        }
    }

    async fn start(&mut self, start: StepStart, reporter: &mut Reporter) {
        let entry = (start.step_name.clone(), start.step_type.clone());
        self.names.insert(start.step_index, entry.clone());
        self.open.insert(start.step_index, entry);
        if start.state == StepStatus::Running && !self.running.contains(&start.step_index) {
            self.running.push(start.step_index);
        }
        reporter
            .step_status(StepUpdate {
                index: start.step_index,
                name: start.step_name,
                step_type: start.step_type,
                state: start.state,
                exit_code: None,
                duration_ms: None,
                error: None,
                secrets_accessed: Vec::new(),
            })
            .await;
    }

    async fn complete(&mut self, complete: StepComplete, reporter: &mut Reporter) {
        let index = complete.step_index;
        let (known_name, step_type) = self
            .names
            .get(&index)
            .cloned()
            .unwrap_or_else(|| (format!("step-{index}"), "step".to_string()));
        let name = complete.step_name.unwrap_or(known_name);
        self.open.remove(&index);
        self.running.retain(|i| *i != index);
        let exit_code = match (&complete.error, complete.status) {
            (Some(error), _) => error.exit_code,
            (None, StepStatus::Success) => Some(0),
            (None, _) => None,
        };
        if complete.status == StepStatus::Failed && step_type == "step" && self.first_failed.is_none() {
            self.first_failed = Some((name.clone(), exit_code));
        }
        reporter.flush_step(index).await;
        reporter
            .step_status(StepUpdate {
                index,
                name,
                step_type,
                state: complete.status,
                exit_code,
                duration_ms: complete.duration_ms,
                error: complete.error.map(|e| e.message),
                secrets_accessed: complete.secrets_accessed,
            })
            .await;
    }

    /// Steps the runner started but never completed (it died, or was killed) end here.
    pub(super) async fn close_open_steps(&mut self, reporter: &mut Reporter, cancelled: bool) {
        for (index, (name, step_type)) in std::mem::take(&mut self.open) {
            reporter.flush_step(index).await;
            let (state, error) = if cancelled {
                (StepStatus::Cancelled, None)
            } else {
                (
                    StepStatus::Failed,
                    Some("the workflow runner exited before the step completed".to_string()),
                )
            };
            reporter
                .step_status(StepUpdate {
                    index,
                    name,
                    step_type,
                    state,
                    exit_code: None,
                    duration_ms: None,
                    error,
                    secrets_accessed: Vec::new(),
                })
                .await;
        }
        self.running.clear();
    }
}

/// The job error of a failed job: `Step '<name>' failed (exit code <n>)` plus the runner's
/// `; <hook> hook failed: ...` fragments when a step failed it, else the runner's own error.
pub(super) fn job_error(runner_error: Option<&str>, first_failed: Option<&(String, Option<i32>)>) -> Option<String> {
    let runner_error = runner_error.unwrap_or("");
    if let Some((name, exit_code)) = first_failed {
        let prefix = format!("Step '{name}' failed");
        match runner_error.strip_prefix(&prefix) {
            Some(rest) if rest.is_empty() || rest.starts_with("; ") => {
                return Some(format!("{}{rest}", step_failed(name, *exit_code)));
            }
            _ if runner_error.is_empty() => return Some(step_failed(name, *exit_code)),
            _ => {}
        }
    }
    (!runner_error.is_empty()).then(|| runner_error.to_string())
}

/// `the workflow runner exited (<status>) before the job completed`, with its last stderr lines.
pub(super) fn runner_exited_early(status: &str, stderr_tail: &VecDeque<String>) -> String {
    let mut message = format!("the workflow runner exited ({status}) before the job completed");
    if !stderr_tail.is_empty() {
        message.push_str("; last output:\n");
        message.push_str(&stderr_tail.iter().cloned().collect::<Vec<_>>().join("\n"));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_error_names_the_failed_step_with_its_exit_code() {
        let check = |runner: Option<&str>, failed: Option<(&str, Option<i32>)>, want: Option<&str>| {
            let failed = failed.map(|(n, c)| (n.to_string(), c));
            assert_eq!(
                job_error(runner, failed.as_ref()).as_deref(),
                want,
                "{runner:?} {failed:?}"
            );
        };
        check(
            Some("Step 'compile' failed"),
            Some(("compile", Some(3))),
            Some("Step 'compile' failed (exit code 3)"),
        );
        check(
            Some("Step 'compile' failed; cleanup hook failed: boom"),
            Some(("compile", Some(3))),
            Some("Step 'compile' failed (exit code 3); cleanup hook failed: boom"),
        );
        check(Some("Step 'x' failed"), Some(("x", None)), Some("Step 'x' failed"));
        check(
            Some("job_timeout: job exceeded its timeout of 5ms"),
            Some(("x", None)),
            Some("job_timeout: job exceeded its timeout of 5ms"),
        );
        check(
            Some("onSuccess hook failed: nope"),
            None,
            Some("onSuccess hook failed: nope"),
        );
        check(None, Some(("x", Some(1))), Some("Step 'x' failed (exit code 1)"));
        check(None, None, None);
    }

    #[test]
    fn early_exit_quotes_stderr() {
        let tail: VecDeque<String> = ["a".to_string(), "b".to_string()].into();
        assert_eq!(
            runner_exited_early("exit status: 1", &tail),
            "the workflow runner exited (exit status: 1) before the job completed; last output:\na\nb"
        );
        assert_eq!(
            runner_exited_early("signal: 9 (SIGKILL)", &VecDeque::new()),
            "the workflow runner exited (signal: 9 (SIGKILL)) before the job completed"
        );
    }
}
