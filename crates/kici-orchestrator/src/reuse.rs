//! "Re-run failed jobs": which of a re-run's jobs keep the original run's success instead of
//! running again. As GitHub does it: the jobs that did not succeed run again, and so does
//! every job that needs one of them; the others are reused with their outputs. Two more rules
//! keep a reused result honest:
//! - a job whose rows the original did not simply run (a dynamic matrix, a `dynamicJob()`
//!   generator and what it made) runs again: its rows are decided anew;
//! - a job that stored secret outputs runs again when a job that needs it does: secret
//!   outputs are erased when their run ends, so only a fresh run can pass them on.

use std::collections::{BTreeMap, BTreeSet};

use kici_engine::api::ReusedFrom;
use kici_engine::dag::Need;
use kici_engine::protocol::JobKind;
use kici_engine::status::JobStatus;
use kici_store::{JobRecord, NewJob, ReusedJob};

/// Whether `original` has a job to run again: one that neither succeeded nor was skipped (a
/// job skipped because a job it needs failed comes with that failure). A failed `Init:` job
/// counts: its job runs again.
pub fn anything_failed(original: &[JobRecord]) -> bool {
    original
        .iter()
        .any(|r| !matches!(r.job.status, JobStatus::Success | JobStatus::Skipped))
}

/// Marks the rows of `jobs` (a re-run's, as created) that reuse the success of `original`'s
/// rows of the same name.
pub fn apply(jobs: &mut [NewJob], original: &[JobRecord]) {
    let mut by_base: BTreeMap<&str, Vec<&JobRecord>> = BTreeMap::new();
    for row in original.iter().filter(|r| r.kind != JobKind::InitEval) {
        by_base.entry(row.job.base_job_name.as_str()).or_default().push(row);
    }
    let new_bases: BTreeSet<&str> = jobs.iter().map(|j| j.base_job_name.as_str()).collect();
    // The bases whose rows are the original's, by name, all simply run and successful.
    let mut reusable: BTreeSet<String> = new_bases
        .iter()
        .filter(|base| {
            let Some(rows) = by_base.get(*base) else { return false };
            let ran: BTreeSet<&str> = rows.iter().map(|r| r.job.job_name.as_str()).collect();
            let again: BTreeSet<&str> = jobs
                .iter()
                .filter(|j| j.base_job_name == **base)
                .map(|j| j.job_name.as_str())
                .collect();
            ran == again
                && rows.iter().all(|r| {
                    r.kind == JobKind::Execute && r.dynamic_index.is_none() && r.job.status == JobStatus::Success
                })
        })
        .map(|base| base.to_string())
        .collect();
    let needs_of = |base: &str| -> BTreeSet<String> {
        jobs.iter()
            .filter(|j| j.base_job_name == base)
            .flat_map(|j| j.needs.iter().map(Need::name))
            .map(str::to_string)
            .collect()
    };
    let secret = |base: &str| {
        by_base
            .get(base)
            .is_some_and(|rows| rows.iter().any(|r| r.secret_outputs))
    };
    // What generated jobs need: their generator runs again and makes them again.
    let needed_by_generated: BTreeSet<&str> = original
        .iter()
        .filter(|r| r.dynamic_index.is_some())
        .flat_map(|r| r.needs.iter().map(Need::name))
        .collect();
    loop {
        let again = |base: &str, reusable: &BTreeSet<String>| !reusable.contains(base);
        let demoted: Vec<String> = reusable
            .iter()
            .filter(|base| {
                // It needs a job that runs again (or one this run does not have: a group of
                // generated jobs).
                let downstream = needs_of(base).iter().any(|need| again(need, &reusable));
                // A job that runs again needs its secret outputs.
                let passes_secrets = secret(base)
                    && (needed_by_generated.contains(base.as_str())
                        || new_bases
                            .iter()
                            .any(|other| again(other, &reusable) && needs_of(other).contains(base.as_str())));
                downstream || passes_secrets
            })
            .cloned()
            .collect();
        if demoted.is_empty() {
            break;
        }
        for base in demoted {
            reusable.remove(&base);
        }
    }
    for job in jobs.iter_mut() {
        let reused = reusable.contains(&job.base_job_name).then(|| {
            by_base[job.base_job_name.as_str()]
                .iter()
                .find(|r| r.job.job_name == job.job_name)
        });
        if let Some(row) = reused.flatten() {
            job.status = JobStatus::Success;
            job.reused = Some(ReusedJob {
                // Where it actually ran, however many re-runs ago.
                from: row.job.reused_from.clone().unwrap_or_else(|| ReusedFrom {
                    run_id: row.job.run_id.clone(),
                    job_id: row.job.job_id.clone(),
                }),
                outputs: row.outputs.clone(),
                secret_outputs: row.secret_outputs,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kici_engine::ids::{JobId, RunId};

    fn new_job(name: &str, base: &str, needs: &[&str]) -> NewJob {
        NewJob {
            job_id: JobId::from(format!("new-{name}")),
            run_id: RunId::from("new"),
            job_name: name.into(),
            base_job_name: base.into(),
            kind: JobKind::Execute,
            matrix: None,
            status: if needs.is_empty() {
                JobStatus::Queued
            } else {
                JobStatus::Pending
            },
            runs_on: Vec::new(),
            exclude_labels: Vec::new(),
            needs: needs.iter().map(|n| Need::Name(n.to_string())).collect(),
            error_message: None,
            init_failure: None,
            position: 0,
            created_at: 0,
            dynamic_index: None,
            definition: None,
            reused: None,
        }
    }

    fn ran(name: &str, base: &str, status: JobStatus) -> JobRecord {
        JobRecord {
            job: kici_engine::api::Job {
                job_id: JobId::from(format!("old-{name}")),
                run_id: RunId::from("old"),
                job_name: name.into(),
                base_job_name: base.into(),
                status,
                agent_id: None,
                error_message: None,
                init_failure: None,
                needs: Vec::new(),
                created_at: 0,
                started_at: None,
                completed_at: None,
                duration_ms: None,
                steps: None,
                reused_from: None,
            },
            kind: JobKind::Execute,
            matrix: None,
            runs_on: Vec::new(),
            exclude_labels: Vec::new(),
            needs: Vec::new(),
            last_seq: 0,
            last_heartbeat_at: None,
            dynamic_index: None,
            definition: None,
            init_result: None,
            outputs: Some(serde_json::json!({"version": name})),
            secret_outputs: false,
        }
    }

    /// Which rows run again, by name.
    fn again(jobs: &[NewJob]) -> Vec<&str> {
        jobs.iter()
            .filter(|j| j.reused.is_none())
            .map(|j| j.job_name.as_str())
            .collect()
    }

    #[test]
    fn failed_jobs_and_what_needs_them_run_again_and_the_rest_keep_their_outputs() {
        let mut jobs = vec![
            new_job("lint", "lint", &[]),
            new_job("build", "build", &[]),
            new_job("test", "test", &["build"]),
            new_job("deploy", "deploy", &["test", "lint"]),
            new_job("docs", "docs", &["lint"]),
        ];
        let original = [
            ran("lint", "lint", JobStatus::Success),
            ran("build", "build", JobStatus::Success),
            ran("test", "test", JobStatus::Failed),
            ran("deploy", "deploy", JobStatus::Skipped),
            ran("docs", "docs", JobStatus::Success),
        ];
        assert!(anything_failed(&original));
        apply(&mut jobs, &original);
        assert_eq!(again(&jobs), ["test", "deploy"]);
        let lint = &jobs[0];
        assert_eq!(lint.status, JobStatus::Success);
        let reused = lint.reused.as_ref().unwrap();
        assert_eq!(
            (reused.from.run_id.as_str(), reused.from.job_id.as_str()),
            ("old", "old-lint")
        );
        assert_eq!(reused.outputs, Some(serde_json::json!({"version": "lint"})));
        assert_eq!(jobs[2].status, JobStatus::Pending, "a job run again keeps its status");
    }

    #[test]
    fn a_matrix_is_reused_only_when_every_child_succeeded() {
        let mut jobs = vec![
            new_job("test (18)", "test", &[]),
            new_job("test (20)", "test", &[]),
            new_job("pack", "pack", &[]),
        ];
        let original = [
            ran("test (18)", "test", JobStatus::Success),
            ran("test (20)", "test", JobStatus::Failed),
            ran("pack", "pack", JobStatus::Success),
        ];
        apply(&mut jobs, &original);
        assert_eq!(again(&jobs), ["test (18)", "test (20)"]);
    }

    #[test]
    fn a_job_with_secret_outputs_runs_again_when_a_job_needing_it_does() {
        let mut jobs = vec![
            new_job("token", "token", &[]),
            new_job("deploy", "deploy", &["token"]),
            new_job("vault", "vault", &[]),
            new_job("report", "report", &["vault"]),
        ];
        let mut token = ran("token", "token", JobStatus::Success);
        token.secret_outputs = true;
        let mut vault = ran("vault", "vault", JobStatus::Success);
        vault.secret_outputs = true;
        let original = [
            token,
            ran("deploy", "deploy", JobStatus::Failed),
            vault,
            ran("report", "report", JobStatus::Success),
        ];
        apply(&mut jobs, &original);
        assert_eq!(
            again(&jobs),
            ["token", "deploy"],
            "vault's needer succeeded: vault is reused"
        );
    }

    #[test]
    fn generated_and_dynamically_expanded_jobs_run_again_and_a_re_run_of_a_re_run_points_at_the_first() {
        let mut jobs = vec![
            new_job("Evaluate: gen", "gen", &[]),
            new_job("after", "after", &["gen"]),
            new_job("base", "base", &[]),
        ];
        let mut generator = ran("Evaluate: gen", "gen", JobStatus::Success);
        generator.kind = JobKind::DynamicEval;
        let mut base = ran("base", "base", JobStatus::Success);
        base.job.reused_from = Some(ReusedFrom {
            run_id: RunId::from("first"),
            job_id: JobId::from("first-base"),
        });
        let original = [generator, ran("after", "after", JobStatus::Success), base];
        apply(&mut jobs, &original);
        assert_eq!(again(&jobs), ["Evaluate: gen", "after"]);
        let from = &jobs[2].reused.as_ref().unwrap().from;
        assert_eq!((from.run_id.as_str(), from.job_id.as_str()), ("first", "first-base"));
    }

    #[test]
    fn a_job_with_secret_outputs_that_a_generated_job_needs_runs_again() {
        let mut jobs = vec![new_job("token", "token", &[]), new_job("Evaluate: gen", "gen", &[])];
        let mut token = ran("token", "token", JobStatus::Success);
        token.secret_outputs = true;
        let mut generator = ran("Evaluate: gen", "gen", JobStatus::Success);
        generator.kind = JobKind::DynamicEval;
        let mut generated = ran("deploy", "deploy", JobStatus::Failed);
        generated.dynamic_index = Some(1);
        generated.needs = vec![Need::Name("token".into())];
        apply(&mut jobs, &[token, generator, generated]);
        assert_eq!(again(&jobs), ["token", "Evaluate: gen"]);
    }

    #[test]
    fn a_run_that_all_succeeded_has_nothing_to_run_again() {
        let skipped_by_rule = ran("b", "b", JobStatus::Skipped);
        assert!(!anything_failed(&[ran("a", "a", JobStatus::Success), skipped_by_rule]));
        let mut init = ran("Init: a", "a", JobStatus::Failed);
        init.kind = JobKind::InitEval;
        assert!(anything_failed(&[ran("a", "a", JobStatus::Success), init]));
    }
}
