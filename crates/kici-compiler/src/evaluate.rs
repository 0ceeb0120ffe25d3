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
    mut runner: RunnerProcess,
    request: EvaluateRequest,
    timeout: Duration,
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
                        (None, None) => Err("the matrix function returned nothing".to_string()),
                    };
                }
                RunnerEvent::Message(RunnerMessage::LogLine(line)) => on_log(line),
                RunnerEvent::Stdout(line) | RunnerEvent::Stderr(line) => output.push(line),
                RunnerEvent::Exited(status) => {
                    return Err(format!(
                        "the workflow runner exited ({status}) before returning the matrix{}",
                        output.suffix()
                    ));
                }
                _ => {}
            }
        }
        Err("the workflow runner stopped before returning the matrix".to_string())
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
