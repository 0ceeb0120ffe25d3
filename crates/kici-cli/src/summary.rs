//! One-line summaries of what a lock file holds — a job with its steps, needs, matrix and labels
//! (a trigger's is `Trigger::summary`) — for `kici compile --verbose` and `kici preview`. Pure
//! formatting: no matching, no I/O.

use kici_engine::dag::{Need, NeedsWhen};
use kici_engine::labels::LabelMatcher;
use kici_engine::lockfile::{LockMatrix, StaticJob};

/// `2 steps, needs build, matrix of 4, rule 'main only', runs on linux`.
pub fn job(job: &StaticJob) -> String {
    let steps = job.flat_steps().len();
    let mut parts = vec![format!("{steps} step{}", if steps == 1 { "" } else { "s" })];
    if !job.needs.is_empty() {
        let needs: Vec<String> = job.needs.iter().map(need).collect();
        parts.push(format!("needs {}", needs.join(", ")));
    }
    match &job.matrix {
        None => {}
        Some(LockMatrix::Dynamic { .. }) => parts.push("dynamic matrix".to_string()),
        Some(LockMatrix::Static { values }) => {
            match kici_engine::matrix::expand(&job.name, values, &job.include, &job.exclude) {
                Ok(combinations) => parts.push(format!("matrix of {}", combinations.len())),
                Err(err) => parts.push(format!("matrix ({err})")),
            }
        }
    }
    for rule in &job.rules {
        parts.push(format!("rule '{}'", rule.label));
    }
    if !job.runs_on.is_empty() {
        let labels: Vec<String> = job.runs_on.iter().map(label).collect();
        parts.push(format!("runs on {}", labels.join(" + ")));
    }
    parts.join(", ")
}

/// `build`, `build (always)` for an SDK keyword, or `build [failed, cancelled]`.
fn need(need: &Need) -> String {
    match need {
        Need::Name(name) => name.clone(),
        Need::Conditional { name, run_on } => {
            let keyword = [
                ("on-success", NeedsWhen::OnSuccess),
                ("always", NeedsWhen::Always),
                ("on-skip", NeedsWhen::OnSkip),
                ("on-failure", NeedsWhen::OnFailure),
            ]
            .into_iter()
            .find(|(_, when)| when.run_on() == *run_on);
            match keyword {
                Some((keyword, _)) => format!("{name} ({keyword})"),
                None => {
                    let statuses: Vec<String> = run_on.iter().map(ToString::to_string).collect();
                    format!("{name} [{}]", statuses.join(", "))
                }
            }
        }
    }
}

fn label(matcher: &LabelMatcher) -> String {
    match matcher {
        LabelMatcher::Exact { value } => value.clone(),
        LabelMatcher::Regex { source, flags } => format!("/{source}/{flags}"),
    }
}
