//! The `needs` graph of a workflow: validation (missing job, self-reference, cycle), an order
//! to run it in, and whether an edge's `when` condition is satisfied by the upstream status.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::status::JobStatus;

/// `when` of a `needs` entry, as authors write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NeedsWhen {
    /// The default: run only after the upstream succeeded.
    OnSuccess,
    /// Run after the upstream reached any terminal status.
    Always,
    /// Run after the upstream succeeded or was skipped.
    OnSkip,
    /// Run only after the upstream failed.
    OnFailure,
    /// An explicit status set.
    Statuses(Vec<JobStatus>),
}

impl NeedsWhen {
    pub fn parse(keyword: &str) -> Option<NeedsWhen> {
        Some(match keyword {
            "on-success" => NeedsWhen::OnSuccess,
            "always" => NeedsWhen::Always,
            "on-skip" => NeedsWhen::OnSkip,
            "on-failure" => NeedsWhen::OnFailure,
            _ => return None,
        })
    }

    /// The upstream statuses that satisfy the edge (the lock file's `runOn`).
    pub fn run_on(&self) -> Vec<JobStatus> {
        use JobStatus::*;
        match self {
            NeedsWhen::OnSuccess => vec![Success],
            NeedsWhen::Always => JobStatus::TERMINAL.to_vec(),
            NeedsWhen::OnSkip => vec![Success, Skipped],
            NeedsWhen::OnFailure => vec![Failed, TimedOutStale],
            NeedsWhen::Statuses(statuses) => statuses.clone(),
        }
    }
}

/// A `needs` entry as the lock file stores it: a bare name means `on-success`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Need {
    Name(String),
    #[serde(rename_all = "camelCase")]
    Conditional {
        name: String,
        run_on: Vec<JobStatus>,
    },
}

impl Need {
    pub fn name(&self) -> &str {
        match self {
            Need::Name(name) | Need::Conditional { name, .. } => name,
        }
    }

    pub fn run_on(&self) -> Vec<JobStatus> {
        match self {
            Need::Name(_) => NeedsWhen::OnSuccess.run_on(),
            Need::Conditional { run_on, .. } => run_on.clone(),
        }
    }

    /// Whether an upstream that ended with `upstream` lets the downstream job run.
    pub fn satisfied_by(&self, upstream: JobStatus) -> bool {
        self.run_on().contains(&upstream)
    }

    /// The lock-file form for `name` with `when`.
    pub fn new(name: &str, when: &NeedsWhen) -> Need {
        match when {
            NeedsWhen::OnSuccess => Need::Name(name.to_string()),
            other => Need::Conditional {
                name: name.to_string(),
                run_on: other.run_on(),
            },
        }
    }
}

/// A graph problem, naming the jobs involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DagError {
    #[error("job \"{job}\" needs \"{need}\", which does not exist")]
    MissingDependency { job: String, need: String },
    #[error("job \"{job}\" depends on itself")]
    SelfReference { job: String },
    #[error("circular dependency: {}", .cycle.join(" -> "))]
    Cycle { cycle: Vec<String> },
}

/// Validates the graph given as `(job, needs)` pairs and returns a topological order (indices
/// into `jobs`; among ready jobs, declaration order). Reports the first problem found, checking
/// missing jobs and self-references before cycles.
pub fn validate(jobs: &[(&str, Vec<&str>)]) -> Result<Vec<usize>, DagError> {
    let index: HashMap<&str, usize> = jobs.iter().enumerate().map(|(i, (n, _))| (*n, i)).collect();
    for (job, needs) in jobs {
        for need in needs {
            if need == job {
                return Err(DagError::SelfReference { job: job.to_string() });
            }
            if !index.contains_key(need) {
                return Err(DagError::MissingDependency {
                    job: job.to_string(),
                    need: need.to_string(),
                });
            }
        }
    }
    let mut remaining: Vec<usize> = jobs.iter().map(|(_, needs)| needs.len()).collect();
    let mut done = vec![false; jobs.len()];
    let mut order = Vec::with_capacity(jobs.len());
    while order.len() < jobs.len() {
        let Some(next) = (0..jobs.len()).find(|&i| !done[i] && remaining[i] == 0) else {
            return Err(DagError::Cycle {
                cycle: find_cycle(jobs, &index, &done),
            });
        };
        done[next] = true;
        order.push(next);
        for (i, (_, needs)) in jobs.iter().enumerate() {
            remaining[i] -= needs.iter().filter(|n| **n == jobs[next].0).count();
        }
    }
    Ok(order)
}

/// Walks `needs` edges from an unfinished job until a job repeats; returns the loop `a -> b -> a`.
fn find_cycle(jobs: &[(&str, Vec<&str>)], index: &HashMap<&str, usize>, done: &[bool]) -> Vec<String> {
    let start = (0..jobs.len())
        .find(|&i| !done[i])
        .expect("a cycle leaves a job unfinished");
    let mut path = vec![start];
    loop {
        let current = *path.last().expect("path starts non-empty");
        let next = jobs[current]
            .1
            .iter()
            .map(|n| index[n])
            .find(|&i| !done[i])
            .expect("an unfinished job has an unfinished dependency");
        if let Some(pos) = path.iter().position(|&p| p == next) {
            // `a -> b` reads "a needs b".
            let mut cycle: Vec<String> = path[pos..].iter().map(|&i| jobs[i].0.to_string()).collect();
            cycle.push(jobs[next].0.to_string());
            return cycle;
        }
        path.push(next);
    }
}

/// The status a group of jobs (a matrix's children) presents to a downstream `needs`: a
/// failure-like status if any, else `cancelled` if any, else `skipped` if all were skipped, else
/// `success`.
pub fn group_status(statuses: &[JobStatus]) -> JobStatus {
    if let Some(failure) = statuses.iter().find(|s| s.is_failure()) {
        return *failure;
    }
    if statuses.contains(&JobStatus::Cancelled) {
        return JobStatus::Cancelled;
    }
    if !statuses.is_empty() && statuses.iter().all(|s| *s == JobStatus::Skipped) {
        return JobStatus::Skipped;
    }
    JobStatus::Success
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(jobs: &[(&str, &[&str])], want: Result<Vec<&str>, &str>) {
        let graph: Vec<(&str, Vec<&str>)> = jobs.iter().map(|(n, d)| (*n, d.to_vec())).collect();
        let got = validate(&graph)
            .map(|order| order.into_iter().map(|i| jobs[i].0).collect::<Vec<_>>())
            .map_err(|e| e.to_string());
        assert_eq!(got, want.map_err(str::to_string), "{jobs:?}");
    }

    #[test]
    fn graphs() {
        check(&[("a", &[]), ("b", &["a"])], Ok(vec!["a", "b"]));
        check(
            &[("deploy", &["test", "build"]), ("build", &[]), ("test", &["build"])],
            Ok(vec!["build", "test", "deploy"]),
        );
        check(&[("a", &["x"])], Err("job \"a\" needs \"x\", which does not exist"));
        check(&[("a", &["a"])], Err("job \"a\" depends on itself"));
        check(&[("a", &["b"]), ("b", &["a"])], Err("circular dependency: a -> b -> a"));
        check(
            &[("root", &[]), ("a", &["c"]), ("b", &["a"]), ("c", &["b"])],
            Err("circular dependency: a -> c -> b -> a"),
        );
    }

    #[test]
    fn when_maps_to_status_sets() {
        use JobStatus::*;
        assert_eq!(NeedsWhen::OnSuccess.run_on(), [Success]);
        assert_eq!(
            NeedsWhen::Always.run_on(),
            [Success, Failed, Cancelled, Skipped, TimedOutStale, DriftDropped]
        );
        assert_eq!(NeedsWhen::OnSkip.run_on(), [Success, Skipped]);
        assert_eq!(NeedsWhen::OnFailure.run_on(), [Failed, TimedOutStale]);
        assert_eq!(NeedsWhen::parse("sometimes"), None);
        let always = Need::new("build", &NeedsWhen::Always);
        assert!(always.satisfied_by(Failed));
        assert!(!Need::new("build", &NeedsWhen::OnSuccess).satisfied_by(Failed));
        assert_eq!(
            serde_json::to_string(&Need::new("b", &NeedsWhen::OnSuccess)).unwrap(),
            "\"b\""
        );
        assert_eq!(
            serde_json::to_string(&Need::new("b", &NeedsWhen::OnFailure)).unwrap(),
            r#"{"name":"b","runOn":["failed","timed_out_stale"]}"#
        );
    }

    #[test]
    fn group_status_rolls_up_children() {
        use JobStatus::*;
        assert_eq!(group_status(&[Success, Failed, Cancelled]), Failed);
        assert_eq!(group_status(&[Success, Cancelled]), Cancelled);
        assert_eq!(group_status(&[Skipped, Skipped]), Skipped);
        assert_eq!(group_status(&[Skipped, Success]), Success);
    }
}
