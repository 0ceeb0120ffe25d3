//! `--pick`: choose what a local run runs. `--pick <workflow>` or `--pick <workflow>/<job>` names
//! it; a bare `--pick` lists the workflows the event matches, with their jobs, and reads the
//! choice from the terminal (stdin must be one: there is nobody to ask otherwise).

use std::io::IsTerminal;

use anyhow::bail;
use kici_engine::lockfile::{LockFile, LockWorkflow};

/// What `--pick` chose: a whole workflow, or one job of it (with the jobs it needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub workflow: String,
    pub job: Option<String>,
}

/// The value of a bare `--pick` (clap's `default_missing_value`).
pub const INTERACTIVE: &str = "";

/// Fails unless a bare `--pick` can ask: checked before anything is compiled.
pub fn ensure_terminal() -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "--pick without a value asks which workflow to run, but stdin is not a terminal\n  hint: name it: --pick <workflow> or --pick <workflow>/<job>"
        );
    }
    Ok(())
}

/// `--pick <workflow>` or `--pick <workflow>/<job>` (a workflow whose name has a `/` wins).
pub fn named(lock: &LockFile, value: &str) -> Choice {
    if lock.workflow(value).is_some() {
        return Choice {
            workflow: value.to_string(),
            job: None,
        };
    }
    match value.split_once('/') {
        Some((workflow, job)) if lock.workflow(workflow).is_some() => Choice {
            workflow: workflow.to_string(),
            job: Some(job.to_string()),
        },
        // Reported as an unknown workflow, with the names there are.
        _ => Choice {
            workflow: value.to_string(),
            job: None,
        },
    }
}

/// Lists `matched` workflows and their jobs on stderr and reads a number from the terminal.
pub async fn ask(matched: &[LockWorkflow]) -> anyhow::Result<Choice> {
    let choices = choices(matched);
    eprintln!("What should run?");
    for (number, choice) in choices.iter().enumerate() {
        match &choice.job {
            None => eprintln!("  {}) {}", number + 1, choice.workflow),
            Some(job) => eprintln!("  {}) {}/{job}", number + 1, choice.workflow),
        }
    }
    eprint!("Number [1-{}]: ", choices.len());
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await??;
    let answer = answer.trim();
    match answer.parse::<usize>() {
        Ok(number) if (1..=choices.len()).contains(&number) => Ok(choices[number - 1].clone()),
        _ => bail!(
            "`{answer}` is not one of the numbers 1-{}\n  hint: run again and type a number from the list",
            choices.len()
        ),
    }
}

/// Each workflow, followed by each of its jobs.
fn choices(matched: &[LockWorkflow]) -> Vec<Choice> {
    let mut choices = Vec::new();
    for workflow in matched {
        choices.push(Choice {
            workflow: workflow.name.clone(),
            job: None,
        });
        for job in &workflow.jobs {
            choices.push(Choice {
                workflow: workflow.name.clone(),
                job: Some(job.name()),
            });
        }
    }
    choices
}
