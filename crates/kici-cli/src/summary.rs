//! One-line summaries of what a lock file holds — a trigger with its filters, a job with its
//! steps, needs, matrix and labels — for `kici compile --verbose` and `kici preview`. Pure
//! formatting: no matching, no I/O.

use kici_engine::dag::{Need, NeedsWhen};
use kici_engine::labels::LabelMatcher;
use kici_engine::lockfile::{LockMatrix, StaticJob};
use kici_engine::pattern::{BranchPattern, BranchPatternKind};
use kici_engine::trigger::{DEFAULT_PR_EVENTS, Trigger};

/// `push (branches: main, release/*; paths: src/**)`; the bare kind without filters.
pub fn trigger(trigger: &Trigger) -> String {
    trigger.summary()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_show_their_filters_and_nothing_else() {
        let check = |trigger: Trigger, expected: &str| assert_eq!(super::trigger(&trigger), expected);
        check(
            Trigger::Push {
                branches: vec![],
                paths: vec![],
                repos: None,
            },
            "push",
        );
        check(
            Trigger::Push {
                branches: vec![BranchPattern::glob("main"), BranchPattern::regex("^rel", Some("i"))],
                paths: vec!["src/**".into()],
                repos: None,
            },
            "push (branches: main, /^rel/i; paths: src/**)",
        );
        check(
            Trigger::Pr {
                events: DEFAULT_PR_EVENTS.iter().map(|e| e.to_string()).collect(),
                target_branches: vec![BranchPattern::glob("main")],
                source_branches: vec![],
                paths: vec![],
                repos: None,
            },
            "pr (target: main)",
        );
        check(
            Trigger::Pr {
                events: vec!["opened".into()],
                target_branches: vec![],
                source_branches: vec![],
                paths: vec![],
                repos: None,
            },
            "pr (events: opened)",
        );
        check(
            Trigger::Tag {
                patterns: vec![BranchPattern::glob("v*")],
                repos: None,
            },
            "tag (tags: v*)",
        );
        check(
            Trigger::Dispatch {
                types: vec!["deploy".into()],
                inputs: None,
            },
            "dispatch (types: deploy)",
        );
    }
}
