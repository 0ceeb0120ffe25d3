//! One job instance of a local run: a runner executes it in the checkout while this module
//! streams its log lines with `[job › step]` prefixes and collects statuses, exit codes and
//! timings into a [`JobReport`].

use std::time::Instant;

use kici_compiler::runner::{OutputTail, RunnerError, RunnerEvent, RunnerProcess};
use kici_engine::lockfile::StaticJob;
use kici_engine::runner_protocol::{
    CacheResponse, ConcurrencyAck, ConcurrencyAction, ExecuteRequest, HostMessage, LogLine, PREPARE_STEP_INDEX,
    RunnerMessage,
};
use kici_engine::status::{JobStatus, StepStatus};
use tokio::sync::watch;

use super::report::{JobReport, StepReport};

/// Where a local run's lines go, and which of them.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub stream: Stream,
    pub verbosity: Verbosity,
}

/// The stream the lines go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    /// Under `--json`: stdout is the document.
    Stderr,
}

/// How much of a run is shown while it runs (the summary is always printed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `--quiet`: no job output, only notices such as an interruption.
    Quiet,
    /// Job output except `ctx.log.debug` lines.
    Normal,
    /// `--debug`: everything, with the event and each workflow's trigger decision.
    Debug,
}

impl Printer {
    /// A notice the user must see (an interruption, say), even under `--quiet`.
    pub fn line(&self, text: &str) {
        use std::io::Write;
        // A closed pipe (`kici run local | head`) must not stop the run: the lines are dropped.
        let _ = match self.stream {
            Stream::Stderr => writeln!(std::io::stderr().lock(), "{text}"),
            Stream::Stdout => writeln!(std::io::stdout().lock(), "{text}"),
        };
    }

    /// Progress and job output: hidden under `--quiet`.
    pub fn progress(&self, text: &str) {
        if self.verbosity >= Verbosity::Normal {
            self.line(text);
        }
    }

    /// Details shown only under `--debug`.
    pub fn debug(&self, text: &str) {
        if self.verbosity >= Verbosity::Debug {
            self.line(text);
        }
    }
}

/// How hard the user asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Abort {
    No,
    /// First Ctrl-C: cancel, running cancel hooks.
    Graceful,
    /// Second Ctrl-C: stop at once.
    Force,
}

/// Runs `request` on `runner` (a runner that has received no request yet) and reports on it.
/// `abort` asks the runner to cancel the job; [`Abort::Force`] stops it at once.
pub async fn execute(
    runner: Result<RunnerProcess, RunnerError>,
    request: ExecuteRequest,
    lock_job: &StaticJob,
    prefix: String,
    printer: Printer,
    mut abort: watch::Receiver<Abort>,
) -> JobReport {
    let started = Instant::now();
    let mut report = JobReport {
        name: request.job_name.clone(),
        base_name: request.job.clone(),
        matrix: request.matrix.clone(),
        status: JobStatus::Running,
        duration_ms: None,
        error_message: None,
        outputs: None,
        steps: lock_job
            .flat_steps()
            .iter()
            .enumerate()
            .map(|(i, s)| StepReport {
                index: i as i64,
                name: s.name.clone(),
                step_type: "step".to_string(),
                status: StepStatus::Pending,
                duration_ms: None,
                exit_code: None,
                error_message: None,
                attempts: None,
            })
            .collect(),
    };
    let fail = |report: &mut JobReport, message: String| {
        report.status = JobStatus::Failed;
        report.error_message = Some(message);
    };
    let mut runner = match runner {
        Ok(runner) => runner,
        Err(err) => {
            fail(
                &mut report,
                format!("could not start the workflow runner: {}", err.full_message()),
            );
            return finish(report, started);
        }
    };
    if let Err(err) = runner.send(&HostMessage::Execute(Box::new(request))).await {
        fail(&mut report, format!("{err}"));
        return finish(report, started);
    }
    let mut current_step: i64 = PREPARE_STEP_INDEX;
    let mut completed = false;
    let mut output_tail = OutputTail::default();
    let mut aborted = Abort::No;
    loop {
        let event = tokio::select! {
            event = runner.next() => event,
            changed = abort.changed(), if aborted < Abort::Force => {
                let level = *abort.borrow();
                if changed.is_err() || level <= aborted {
                    continue;
                }
                aborted = level;
                // The runner is going away anyway if this fails; its exit is reported below.
                let _ = runner.send(&HostMessage::Abort { force: level == Abort::Force }).await;
                if level == Abort::Force {
                    for event in runner.terminate().await {
                        if let RunnerEvent::Message(RunnerMessage::JobComplete(done)) = event {
                            completed = true;
                            report.status = done.status;
                            report.error_message = done.error;
                            report.outputs = done.outputs;
                        }
                    }
                    if !completed {
                        report.status = JobStatus::Cancelled;
                    }
                    break;
                }
                continue;
            }
        };
        let Some(event) = event else { break };
        match event {
            RunnerEvent::Message(RunnerMessage::StepStart(start)) => {
                let step = step_entry(&mut report, start.step_index, &start.step_name);
                step.step_type = start.step_type;
                step.status = start.state;
                if start.state == StepStatus::Running {
                    current_step = start.step_index;
                }
            }
            RunnerEvent::Message(RunnerMessage::LogLine(LogLine {
                step_index,
                line,
                level,
                ..
            })) => {
                let text = format!("[{}] {line}", label(&prefix, &report, step_index));
                if level.as_deref() == Some("debug") {
                    printer.debug(&text);
                } else {
                    printer.progress(&text);
                }
            }
            RunnerEvent::Message(RunnerMessage::StepComplete(complete)) => {
                let name = complete.step_name.clone().unwrap_or_default();
                let step = step_entry(&mut report, complete.step_index, &name);
                step.status = complete.status;
                step.duration_ms = complete.duration_ms;
                step.attempts = complete.attempts;
                if complete.status == StepStatus::Success {
                    step.exit_code = Some(0);
                }
                if let Some(error) = complete.error {
                    step.exit_code = error.exit_code.or(step.exit_code);
                    step.error_message = Some(error.message);
                }
                if complete.status == StepStatus::Failed {
                    let message = step.error_message.clone().unwrap_or_default();
                    printer.progress(&format!(
                        "[{}] ✗ {message}",
                        label(&prefix, &report, complete.step_index)
                    ));
                }
            }
            RunnerEvent::Message(RunnerMessage::JobComplete(done)) => {
                completed = true;
                report.status = done.status;
                report.error_message = done.error.or(done.skipped.map(|s| s.reason));
                report.outputs = done.outputs;
            }
            RunnerEvent::Message(RunnerMessage::CacheRequest(request)) => {
                let answer = CacheResponse::error(
                    &request.request_id,
                    "caches live in an orchestrator's storage; `kici run local` neither restores nor saves them"
                        .to_string(),
                );
                // A runner that is gone reports its exit below.
                let _ = runner.send(&HostMessage::CacheResponse(answer)).await;
            }
            RunnerEvent::Message(RunnerMessage::EmitRequest(request)) => {
                let error = kici_engine::protocol::check_emitted(&request.name, &request.payload).err();
                if error.is_none() {
                    printer.line(&format!(
                        "[{prefix}] event '{}' emitted: a local run delivers it to no workflow",
                        request.name
                    ));
                }
                let answer = HostMessage::EmitResponse {
                    request_id: request.request_id,
                    error,
                };
                let _ = runner.send(&answer).await;
            }
            RunnerEvent::Message(RunnerMessage::ConcurrencyReport { group }) => {
                // One local run at a time per invocation: the group never makes it wait.
                printer.line(&format!(
                    "[{prefix}] concurrency group '{group}': a local run does not wait for other runs"
                ));
                let ack = ConcurrencyAck {
                    action: ConcurrencyAction::Proceed,
                    reason: None,
                };
                let _ = runner.send(&HostMessage::ConcurrencyAck(ack)).await;
            }
            RunnerEvent::Message(_) => {}
            RunnerEvent::BadMessage { line, error } => {
                printer.progress(&format!("[{prefix}] unreadable runner message ({error}): {line}"));
            }
            RunnerEvent::Stdout(line) | RunnerEvent::Stderr(line) => {
                printer.progress(&format!("[{}] {line}", label(&prefix, &report, current_step)));
                output_tail.push(line);
            }
            RunnerEvent::Exited(status) => {
                if !completed {
                    let tail = output_tail.suffix();
                    if aborted > Abort::No {
                        report.status = JobStatus::Cancelled;
                    } else {
                        fail(
                            &mut report,
                            format!("the workflow runner exited ({status}) before the job completed{tail}"),
                        );
                    }
                }
            }
        }
    }
    finish(report, started)
}

fn finish(mut report: JobReport, started: Instant) -> JobReport {
    report.duration_ms = Some(started.elapsed().as_millis() as u64);
    for step in &mut report.steps {
        // Steps the runner never reached did not run.
        if !step.status.is_terminal() {
            step.status = if report.status == JobStatus::Cancelled {
                StepStatus::Cancelled
            } else {
                StepStatus::Skipped
            };
        }
    }
    report
}

fn step_entry<'a>(report: &'a mut JobReport, index: i64, name: &str) -> &'a mut StepReport {
    let position = match report.steps.iter().position(|s| s.index == index) {
        Some(position) => position,
        None => {
            report.steps.push(StepReport {
                index,
                name: name.to_string(),
                step_type: "step".to_string(),
                status: StepStatus::Pending,
                duration_ms: None,
                exit_code: None,
                error_message: None,
                attempts: None,
            });
            report.steps.len() - 1
        }
    };
    &mut report.steps[position]
}

/// `job › step`, or just `job` for the prepare log.
fn label(prefix: &str, report: &JobReport, step_index: i64) -> String {
    match report.steps.iter().find(|s| s.index == step_index) {
        Some(step) if step_index != PREPARE_STEP_INDEX => format!("{prefix} › {}", step.name),
        _ => prefix.to_string(),
    }
}
