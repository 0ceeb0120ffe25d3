//! Dynamic matrix evaluation: a runner imports the workflow module in the checkout and calls
//! the job's matrix function, under a deadline. Used by `kici run local` and by agents' matrix
//! evaluation jobs; failures come back as the text that follows
//! `Matrix expansion failed for job '<job>': `.

use std::time::Duration;

use kici_engine::runner_protocol::{EvaluateRequest, HostMessage, LogLine, RunnerMessage};
use serde_json::Value;

use crate::runner::{OutputTail, RunnerEvent, RunnerProcess};

/// How long a dynamic matrix function may run.
pub const MATRIX_TIMEOUT: Duration = Duration::from_secs(60);

/// The matrix function's value, or why there is none, from a freshly started `runner`.
/// `on_log` receives the function's log lines (step index -1).
pub async fn evaluate_matrix(
    runner: RunnerProcess,
    request: EvaluateRequest,
    timeout: Duration,
    on_log: impl FnMut(LogLine),
) -> Result<Value, String> {
    evaluate(runner, request, timeout, "matrix", on_log).await
}

/// How long a dynamic job generator may run.
pub const JOBS_TIMEOUT: Duration = Duration::from_secs(120);

/// The jobs a dynamic job generator described (an array of job descriptions), or why there are
/// none; like [`evaluate_matrix`].
pub async fn evaluate_jobs(
    runner: RunnerProcess,
    request: EvaluateRequest,
    timeout: Duration,
    on_log: impl FnMut(LogLine),
) -> Result<Value, String> {
    evaluate(runner, request, timeout, "job", on_log).await
}

/// How long an init job's functions may run together (each has 60 s in the runner).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(180);

/// What a job's `environment`/`env` functions returned (`{environments?, env?}`), or why
/// there is nothing; like [`evaluate_matrix`].
pub async fn evaluate_init(
    runner: RunnerProcess,
    request: EvaluateRequest,
    timeout: Duration,
    on_log: impl FnMut(LogLine),
) -> Result<Value, String> {
    evaluate(runner, request, timeout, "environment and env", on_log).await
}

/// Sends an `evaluate` request and waits for its value; `subject` names what is evaluated in
/// the error texts (`matrix`, `job`).
async fn evaluate(
    mut runner: RunnerProcess,
    request: EvaluateRequest,
    timeout: Duration,
    subject: &str,
    mut on_log: impl FnMut(LogLine),
) -> Result<Value, String> {
    runner
        .send(&HostMessage::Evaluate(Box::new(request)))
        .await
        .map_err(|err| err.full_message())?;
    let mut output = OutputTail::default();
    let outcome = tokio::time::timeout(timeout, async {
        while let Some(event) = runner.next().await {
            match event {
                RunnerEvent::Message(RunnerMessage::EvaluateResult { value, error }) => {
                    return match (value, error) {
                        (_, Some(error)) => Err(error.message),
                        (Some(value), None) => Ok(value),
                        (None, None) => Err(format!("the {subject} function returned nothing").to_string()),
                    };
                }
                RunnerEvent::Message(RunnerMessage::LogLine(line)) => on_log(line),
                RunnerEvent::Stdout(line) | RunnerEvent::Stderr(line) => output.push(line),
                RunnerEvent::Exited(status) => {
                    return Err(format!(
                        "the workflow runner exited ({status}) before returning the {subject}{}",
                        output.suffix()
                    ));
                }
                _ => {}
            }
        }
        Err(format!("the workflow runner stopped before returning the {subject}"))
    })
    .await;
    match outcome {
        Ok(result) => result,
        Err(_) => {
            runner.terminate().await;
            Err(format!(
                "dynamic matrix evaluation timed out after {}ms",
                timeout.as_millis()
            ))
        }
    }
}
