//! Which workflows of a lock file an event runs, and why the others do not: the decision
//! `kici run local` acts on and `kici preview` shows. The matching itself is
//! `kici_engine::trigger::match_triggers`; this module only words its checks.

use anyhow::Context as _;
use kici_engine::event::EventEnvelope;
use kici_engine::lockfile::{LockFile, LockWorkflow};
use kici_engine::trigger::{MatchOutcome, match_triggers};

/// One workflow's answer to an event.
pub struct Decision<'a> {
    pub workflow: &'a LockWorkflow,
    pub verdict: Verdict,
}

pub enum Verdict {
    /// The trigger at this index (the first that matched) fires.
    Runs { trigger_index: usize },
    /// No trigger matched; `why` lists the failed checks.
    DoesNotRun { why: String },
}

/// Decides every workflow of `lock` (only the one named `only`, when given) for `event`.
pub fn decide<'a>(lock: &'a LockFile, event: &EventEnvelope, only: Option<&str>) -> anyhow::Result<Vec<Decision<'a>>> {
    if let Some(name) = only
        && lock.workflow(name).is_none()
    {
        let names: Vec<&str> = lock.workflows.iter().map(|w| w.name.as_str()).collect();
        anyhow::bail!("no workflow named '{name}'\n  hint: workflows: {}", names.join(", "));
    }
    lock.workflows
        .iter()
        .filter(|w| only.is_none_or(|name| w.name == name))
        .map(|workflow| {
            let outcome = match_triggers(&workflow.triggers, event)
                .with_context(|| format!("workflow '{}' has an invalid trigger pattern", workflow.name))?;
            let verdict = match outcome.trigger_index {
                Some(trigger_index) => Verdict::Runs { trigger_index },
                None => Verdict::DoesNotRun {
                    why: why(workflow, &outcome),
                },
            };
            Ok(Decision { workflow, verdict })
        })
        .collect()
}

/// `type: expected push, got pull_request`; with several triggers, each one's failed checks.
fn why(workflow: &LockWorkflow, outcome: &MatchOutcome) -> String {
    if workflow.triggers.is_empty() {
        return "it has no triggers".to_string();
    }
    let failed = |index: usize| -> Vec<String> {
        outcome
            .checks
            .iter()
            .filter(|c| c.trigger_index == index && !c.pass)
            .map(|c| format!("{}: expected {}, got {}", c.field, c.expected, c.actual))
            .collect()
    };
    if workflow.triggers.len() == 1 {
        return failed(0).join("; ");
    }
    let per_trigger: Vec<String> = (0..workflow.triggers.len())
        .map(|index| format!("{}: {}", workflow.triggers[index].summary(), failed(index).join(", ")))
        .collect();
    per_trigger.join("; ")
}
