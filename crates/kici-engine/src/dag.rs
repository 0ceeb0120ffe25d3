//! The `needs` graph of a workflow: validation (missing job, self-reference, cycle), an order
//! to run it in, and whether an edge's `when` condition is satisfied by the upstream status.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use serde::{Deserialize, Serialize};

use crate::excerpt::excerpt;
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

/// How a `needs` entry names a dynamic group (`dynamicGroup('packages')`): `__group:packages`.
/// In the graph it stands for the group's generator; at run time it waits for every job the
/// group's generators produced.
pub const GROUP_NEED_PREFIX: &str = "__group:";

/// The generator (or job) a need points at in the graph.
fn graph_node(need: &str) -> &str {
    need.strip_prefix(GROUP_NEED_PREFIX).unwrap_or(need)
}

/// A graph problem, naming the jobs involved (as excerpts: names come from lock files).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DagError {
    #[error("job \"{job}\" needs \"{need}\", which does not exist")]
    MissingDependency { job: String, need: String },
    #[error("job \"{job}\" depends on itself")]
    SelfReference { job: String },
    #[error("circular dependency: {}", .cycle.join(" -> "))]
    Cycle { cycle: Vec<String> },
    #[error("two jobs are named \"{job}\"")]
    DuplicateJob { job: String },
}

fn quoted(name: &str) -> String {
    excerpt(name).into_owned()
}

/// Validates the graph given as `(job, needs)` pairs and returns a topological order (indices
/// into `jobs`; among ready jobs, declaration order). Reports the first problem found, checking
/// duplicate names, missing jobs and self-references before cycles. Runs in O((jobs + edges) ·
/// log jobs), so a hostile lock file with many jobs cannot stall its caller.
pub fn validate(jobs: &[(&str, Vec<&str>)]) -> Result<Vec<usize>, DagError> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(jobs.len());
    for (i, (name, _)) in jobs.iter().enumerate() {
        if index.insert(name, i).is_some() {
            return Err(DagError::DuplicateJob { job: quoted(name) });
        }
    }
    let mut remaining = vec![0usize; jobs.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); jobs.len()];
    for (i, (job, needs)) in jobs.iter().enumerate() {
        for need in needs {
            if graph_node(need) == *job {
                return Err(DagError::SelfReference { job: quoted(job) });
            }
            let Some(&upstream) = index.get(graph_node(need)) else {
                return Err(DagError::MissingDependency {
                    job: quoted(job),
                    need: quoted(need),
                });
            };
            remaining[i] += 1;
            dependents[upstream].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..jobs.len()).filter(|&i| remaining[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(jobs.len());
    while let Some(Reverse(next)) = ready.pop() {
        order.push(next);
        for &dependent in &dependents[next] {
            remaining[dependent] -= 1;
            if remaining[dependent] == 0 {
                ready.push(Reverse(dependent));
            }
        }
    }
    if order.len() < jobs.len() {
        return Err(DagError::Cycle {
            cycle: find_cycle(jobs, &index, &remaining),
        });
    }
    Ok(order)
}

/// Walks `needs` edges from an unfinished job (one with needs left) until a job repeats;
/// returns the loop `a -> b -> a`. Every unfinished job has an unfinished dependency, so the
/// walk stays among them and must repeat within `jobs.len()` steps.
fn find_cycle(jobs: &[(&str, Vec<&str>)], index: &HashMap<&str, usize>, remaining: &[usize]) -> Vec<String> {
    let unfinished = |i: &usize| remaining[*i] > 0;
    let Some(mut current) = (0..jobs.len()).find(unfinished) else {
        return Vec::new();
    };
    let mut position: HashMap<usize, usize> = HashMap::new();
    let mut path = Vec::new();
    loop {
        if let Some(&at) = position.get(&current) {
            // `a -> b` reads "a needs b".
            let mut cycle: Vec<String> = path[at..].iter().map(|&i: &usize| quoted(jobs[i].0)).collect();
            cycle.push(quoted(jobs[current].0));
            return cycle;
        }
        position.insert(current, path.len());
        path.push(current);
        let Some(next) = jobs[current]
            .1
            .iter()
            .filter_map(|n| index.get(graph_node(n)).copied())
            .find(unfinished)
        else {
            return path.iter().map(|&i| quoted(jobs[i].0)).collect();
        };
        current = next;
    }
}

/// What a job's needs say about it once they are read.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<'a> {
    /// A needed job has not finished.
    Wait,
    /// A needed job finished in a status its `when` does not accept (`upstream_unmet`).
    Skip { need: &'a Need, status: JobStatus },
    /// Every need is met; the upstream results as the job's `ctx.needs` (`{name: {status}}`).
    Run(serde_json::Map<String, serde_json::Value>),
}

/// Decides a job from its needs; `upstream(name)` is the finished status of a needed job
/// (a matrix's as [`group_status`]), `None` while it is unfinished.
pub fn decide<'a>(needs: &'a [Need], upstream: impl Fn(&str) -> Option<JobStatus>) -> Decision<'a> {
    let mut finished = Vec::with_capacity(needs.len());
    for need in needs {
        match upstream(need.name()) {
            Some(status) => finished.push((need, status)),
            None => return Decision::Wait,
        }
    }
    if let Some((need, status)) = finished.iter().find(|(need, status)| !need.satisfied_by(*status)) {
        return Decision::Skip { need, status: *status };
    }
    Decision::Run(
        finished
            .iter()
            .map(|(need, status)| (need.name().to_string(), serde_json::json!({ "status": status })))
            .collect(),
    )
}

/// One row of an upstream job as `ctx.needs` shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpstreamRow<'a> {
    pub name: &'a str,
    pub status: JobStatus,
    pub outputs: Option<&'a serde_json::Value>,
}

/// `ctx.needs` of a job [`decide`] let run: each upstream as `{status, result?}`, or, when it
/// fanned out (`rows` says so), an array of `{name, status, result?}` in the order given. The
/// build job a run may wait for (`__build__…`) is KiCI's, not the author's, and is left out.
pub fn needs_context<'a>(
    decided: serde_json::Map<String, serde_json::Value>,
    rows: impl Fn(&str) -> (bool, Vec<UpstreamRow<'a>>),
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::{Map, Value};
    let entry = |row: &UpstreamRow<'_>, status: Value, name: bool| {
        let mut entry = Map::new();
        if name {
            entry.insert("name".to_string(), Value::String(row.name.to_string()));
        }
        entry.insert("status".to_string(), status);
        if let Some(outputs) = row.outputs {
            entry.insert("result".to_string(), outputs.clone());
        }
        Value::Object(entry)
    };
    decided
        .into_iter()
        .filter(|(name, _)| !name.starts_with(crate::failure::BUILD_JOB_PREFIX))
        .map(|(name, decided)| {
            let (fanned_out, upstream) = rows(&name);
            let value = match upstream.as_slice() {
                [] => decided,
                [one] if !fanned_out => entry(one, decided["status"].clone(), false),
                many => Value::Array(
                    many.iter()
                        .map(|row| entry(row, serde_json::json!(row.status), true))
                        .collect(),
                ),
            };
            (name, value)
        })
        .collect()
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
        // A dynamic group stands for its generator in the graph.
        check(
            &[("publish", &["__group:pkgs"]), ("pkgs", &[])],
            Ok(vec!["pkgs", "publish"]),
        );
        check(
            &[("a", &["__group:none"])],
            Err("job \"a\" needs \"__group:none\", which does not exist"),
        );
        check(&[("a", &["a"])], Err("job \"a\" depends on itself"));
        check(&[("a", &["b"]), ("b", &["a"])], Err("circular dependency: a -> b -> a"));
        check(
            &[("root", &[]), ("a", &["c"]), ("b", &["a"]), ("c", &["b"])],
            Err("circular dependency: a -> c -> b -> a"),
        );
        check(
            &[("b", &[]), ("b", &[]), ("c", &["b"])],
            Err("two jobs are named \"b\""),
        );
        let long = "j".repeat(1_000_000);
        let err = validate(&[(long.as_str(), vec![long.as_str()])])
            .unwrap_err()
            .to_string();
        assert!(
            err.len() < 300 && err.ends_with("(999800 more characters)\" depends on itself"),
            "{err}"
        );
    }

    #[test]
    fn long_chains_validate_in_declaration_order() {
        let names: Vec<String> = (0..20_000).map(|i| format!("j{i}")).collect();
        let graph: Vec<(&str, Vec<&str>)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), if i == 0 { vec![] } else { vec![names[i - 1].as_str()] }))
            .collect();
        assert_eq!(validate(&graph).unwrap(), (0..20_000).collect::<Vec<_>>());
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
    fn a_job_waits_for_its_needs_then_runs_or_is_skipped() {
        let needs = vec![
            Need::new("build", &NeedsWhen::OnSuccess),
            Need::new("lint", &NeedsWhen::Always),
        ];
        assert_eq!(
            decide(&needs, |name| (name == "build").then_some(JobStatus::Success)),
            Decision::Wait
        );
        assert_eq!(
            decide(&needs, |name| Some(if name == "build" {
                JobStatus::Failed
            } else {
                JobStatus::Success
            })),
            Decision::Skip {
                need: &needs[0],
                status: JobStatus::Failed
            }
        );
        let Decision::Run(context) = decide(&needs, |name| {
            Some(if name == "build" {
                JobStatus::Success
            } else {
                JobStatus::Failed
            })
        }) else {
            panic!("both needs are met");
        };
        assert_eq!(
            serde_json::Value::Object(context),
            serde_json::json!({"build": {"status": "success"}, "lint": {"status": "failed"}})
        );
        assert!(matches!(decide(&[], |_| None), Decision::Run(context) if context.is_empty()));
    }

    #[test]
    fn group_status_rolls_up_children() {
        use JobStatus::*;
        assert_eq!(group_status(&[Success, Failed, Cancelled]), Failed);
        assert_eq!(group_status(&[Success, Cancelled]), Cancelled);
        assert_eq!(group_status(&[Skipped, Skipped]), Skipped);
        assert_eq!(group_status(&[Skipped, Success]), Success);
    }

    #[test]
    fn needs_carry_results_one_row_or_an_ordered_array_and_never_the_build_job() {
        let build = serde_json::json!({"version": "1"});
        let shard_a = serde_json::json!({"shard": "a"});
        let decided: serde_json::Map<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
            "build": {"status": "success"},
            "test": {"status": "success"},
            "lint": {"status": "skipped"},
            "__build__ci": {"status": "success"},
        }))
        .unwrap();
        let context = needs_context(decided, |name| match name {
            "build" => (
                false,
                vec![UpstreamRow {
                    name: "build",
                    status: JobStatus::Success,
                    outputs: Some(&build),
                }],
            ),
            "test" => (
                true,
                vec![
                    UpstreamRow {
                        name: "test (a)",
                        status: JobStatus::Success,
                        outputs: Some(&shard_a),
                    },
                    UpstreamRow {
                        name: "test (b)",
                        status: JobStatus::Success,
                        outputs: None,
                    },
                ],
            ),
            _ => (false, Vec::new()),
        });
        assert_eq!(
            serde_json::Value::Object(context),
            serde_json::json!({
                "build": {"status": "success", "result": {"version": "1"}},
                "test": [
                    {"name": "test (a)", "status": "success", "result": {"shard": "a"}},
                    {"name": "test (b)", "status": "success"},
                ],
                "lint": {"status": "skipped"},
            })
        );
    }
}
