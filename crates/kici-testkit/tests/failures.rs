//! Every failure the system produces so far, seen the way an operator sees it: the exact texts
//! in `kici-admin runs show`, `kici-admin runs jobs`, `kici runs show` and the JSON API.

use kici_engine::api::RunDetail;
use kici_engine::failure::InitFailureCategory;
use kici_engine::status::{JobStatus, RunStatus};
use kici_testkit::{Repo, Stack};

const FIXTURE: &str = "tests/e2e-repo";

/// The three CLI views of a run.
struct Views {
    kici_show: String,
    admin_show: String,
    admin_jobs: String,
}

fn views(stack: &Stack, run_id: &str) -> Views {
    let cwd = stack.dir.path();
    let run = |binary: &str, args: &[&str]| {
        let output = stack.cli(binary, args, cwd);
        output.expect_code(0);
        output.stdout
    };
    Views {
        kici_show: run("kici", &["runs", "show", run_id]),
        admin_show: run("kici-admin", &["runs", "show", run_id]),
        admin_jobs: run("kici-admin", &["runs", "jobs", run_id]),
    }
}

/// Asserts a run failed with `reason` (and the init-failure `category` when given) in every view.
fn check_run(detail: &RunDetail, views: &Views, reason: &str, category: Option<InitFailureCategory>) {
    assert_eq!(detail.run.status, RunStatus::Failed, "{detail:#?}");
    assert_eq!(detail.run.failure_reason.as_deref(), Some(reason));
    assert!(
        views.admin_show.contains(&format!("Failure:     {reason}\n")),
        "{}",
        views.admin_show
    );
    assert!(
        views.kici_show.contains(&format!("failure: {reason}\n")),
        "{}",
        views.kici_show
    );
    if let Some(category) = category {
        let run_category = detail.run.init_failure.as_ref().map(|i| i.category).or_else(|| {
            detail
                .jobs
                .iter()
                .find_map(|j| j.init_failure.as_ref().map(|i| i.category))
        });
        assert_eq!(run_category, Some(category), "{detail:#?}");
    }
}

/// Asserts job `name` failed with `status` and `error` in every view.
fn check_job(detail: &RunDetail, views: &Views, name: &str, status: JobStatus, error: &str) {
    let job = detail
        .jobs
        .iter()
        .find(|j| j.job_name == name)
        .unwrap_or_else(|| panic!("no job {name}: {detail:#?}"));
    assert_eq!((job.status, job.error_message.as_deref()), (status, Some(error)));
    assert!(
        views
            .admin_jobs
            .lines()
            .any(|l| l.contains(name) && l.contains(status.as_str()) && l.ends_with(error)),
        "{}",
        views.admin_jobs
    );
    assert!(views.admin_show.contains(error), "{}", views.admin_show);
    assert!(
        views.kici_show.contains(&format!("  error: {error}\n")),
        "{}",
        views.kici_show
    );
}

async fn setup(env: &[(&str, &str)]) -> (Stack, Repo) {
    let mut stack = Stack::start_with(env).await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    (stack, repo)
}

#[tokio::test]
async fn lock_resolution_is_a_run_level_init_failure() {
    let (stack, repo) = setup(&[]).await;
    repo.write(
        ".kici/kici.lock.json",
        &repo
            .read(".kici/kici.lock.json")
            .replacen("\"schemaVersion\": 30", "\"schemaVersion\": 7", 1),
    );
    repo.commit_and_push("old lock");
    let detail = stack.push_and_wait("app", &repo, "hello").await;
    let reason = "Lock file schemaVersion 7 is incompatible with this orchestrator (engine SCHEMA_VERSION 30). Recompile the lock with `kici compile` and push again.";
    let views = views(&stack, &detail.run.run_id);
    check_run(&detail, &views, reason, Some(InitFailureCategory::LockResolution));
    assert!(
        views
            .admin_show
            .contains("Failure category: lock_resolution (Lock-file / dependency resolution failed)"),
        "{}",
        views.admin_show
    );
    assert!(
        views
            .kici_show
            .contains("category: lock_resolution — Lock-file / dependency resolution failed"),
        "{}",
        views.kici_show
    );
    assert!(
        views.admin_show.contains("No jobs for this run."),
        "{}",
        views.admin_show
    );
}

#[tokio::test]
async fn no_agent_expires_the_job_with_the_generic_text() {
    let (stack, repo) = setup(&[("KICI_QUEUE_TIMEOUT_MS", "1000")]).await;
    let detail = stack.push_and_wait("app", &repo, "no-agent").await;
    let views = views(&stack, &detail.run.run_id);
    check_run(
        &detail,
        &views,
        "No agents available to dispatch jobs",
        Some(InitFailureCategory::NoAgent),
    );
    assert!(
        views
            .admin_show
            .contains("Failure category: no_agent (No agent available to run this job)"),
        "{}",
        views.admin_show
    );
    check_job(
        &detail,
        &views,
        "gpu-job",
        JobStatus::TimedOutStale,
        "Queue timeout expired (job was never dispatched to an agent)",
    );
}

#[tokio::test]
async fn a_static_matrix_over_256_fails_matrix_expansion() {
    let (stack, repo) = setup(&[]).await;
    let values: Vec<String> = (0..17).map(|i| format!("\"{i}\"")).collect();
    let lock = repo.read(".kici/kici.lock.json");
    let big = format!("\"values\": {{ \"a\": [{0}], \"b\": [{0}] }}", values.join(", "));
    let start = lock.find("\"values\": {").expect("the static matrix in the lock");
    let end = start + lock[start..].find("}\n").expect("end of the values") + 1;
    repo.write(
        ".kici/kici.lock.json",
        &format!("{}{}{}", &lock[..start], big, &lock[end..]),
    );
    repo.commit_and_push("huge matrix");
    let detail = stack.push_and_wait("app", &repo, "big-matrix").await;
    let message = "Matrix expansion failed for job 'm': matrix for job 'm' resolved to 289 combinations (max 256)";
    let views = views(&stack, &detail.run.run_id);
    check_run(&detail, &views, message, Some(InitFailureCategory::MatrixExpansion));
    check_job(&detail, &views, "m", JobStatus::Failed, message);
    assert!(
        views
            .admin_show
            .contains("Failure category: matrix_expansion (Matrix expansion failed)"),
        "{}",
        views.admin_show
    );
    assert!(
        views
            .kici_show
            .contains("category: matrix_expansion — Matrix expansion failed"),
        "{}",
        views.kici_show
    );
}

#[tokio::test]
async fn a_throwing_dynamic_matrix_fails_matrix_expansion() {
    let (stack, repo) = setup(&[]).await;
    let detail = stack.push_and_wait("app", &repo, "dynamic-throws").await;
    let message = "Matrix expansion failed for job 'test': no packages found";
    let views = views(&stack, &detail.run.run_id);
    check_run(&detail, &views, message, Some(InitFailureCategory::MatrixExpansion));
    check_job(&detail, &views, "Evaluate matrix: test", JobStatus::Failed, message);
}

#[tokio::test]
async fn a_dynamic_matrix_that_times_out_fails_matrix_expansion() {
    let mut stack = Stack::start().await;
    stack
        .start_agent_with("agent-1", &["linux"], &[("KICI_MATRIX_EVAL_TIMEOUT_MS", "500")])
        .await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    let detail = stack.push_and_wait("app", &repo, "dynamic-slow").await;
    let message = "Matrix expansion failed for job 'test': dynamic matrix evaluation timed out after 500ms";
    let views = views(&stack, &detail.run.run_id);
    check_run(&detail, &views, message, Some(InitFailureCategory::MatrixExpansion));
    check_job(&detail, &views, "Evaluate matrix: test", JobStatus::Failed, message);
}

#[tokio::test]
async fn a_dynamic_job_generator_adds_jobs_or_fails_dynamic_eval() {
    let (stack, repo) = setup(&[]).await;
    let detail = stack.push_and_wait("app", &repo, "dynamic-jobs").await;
    assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
    let jobs: Vec<(&str, JobStatus)> = detail.jobs.iter().map(|j| (j.job_name.as_str(), j.status)).collect();
    assert_eq!(
        jobs,
        [
            ("Evaluate: packages", JobStatus::Success),
            ("check-alpha", JobStatus::Success),
            ("check-beta", JobStatus::Success)
        ]
    );
    let logs = stack.logs(&detail.run.run_id, Some("check-beta")).await;
    assert!(
        logs.steps
            .iter()
            .any(|s| s.lines.iter().any(|l| l.line == "checked beta")),
        "{logs:#?}"
    );

    let detail = stack.push_and_wait("app", &repo, "dynamic-jobs-throw").await;
    let message = "Dynamic job evaluation failed for 'packages': cannot list packages";
    let views = views(&stack, &detail.run.run_id);
    check_run(&detail, &views, message, Some(InitFailureCategory::DynamicEval));
    check_job(&detail, &views, "Evaluate: packages", JobStatus::Failed, message);
    assert!(
        views
            .admin_show
            .contains("Failure category: dynamic_eval (Dynamic / deferred-init evaluation failed)"),
        "{}",
        views.admin_show
    );
}

#[tokio::test]
async fn a_full_queue_fails_new_jobs_at_once() {
    let (stack, repo) = setup(&[("KICI_QUEUE_MAX_DEPTH", "1")]).await;
    let waiting = stack.push("app", &repo, "no-agent").await;
    let detail = stack.push_and_wait("app", &repo, "no-agent").await;
    let message = "Dispatch queue full: 1 jobs are already waiting for an agent (KICI_QUEUE_MAX_DEPTH=1); add agents or raise the limit";
    let views = views(&stack, &detail.run.run_id);
    check_run(&detail, &views, message, Some(InitFailureCategory::NoAgent));
    check_job(&detail, &views, "gpu-job", JobStatus::Failed, message);
    assert_eq!(stack.detail(&waiting[0]).await.jobs[0].status, JobStatus::Queued);
}

#[tokio::test]
async fn a_local_source_the_orchestrator_can_no_longer_read_fails_the_job_and_the_run_with_its_path_and_a_hint() {
    let mut stack = Stack::start().await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    let runs = stack.push("app", &repo, "scaled").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    // The orchestrator read the lock file at the push; the repository is gone when the agent
    // fetches the job's commit from it.
    let origin = repo.origin();
    std::fs::rename(&origin, origin.with_extension("moved")).unwrap();
    stack.start_agent("agent-1", &["scaled"]).await;
    let detail = stack.wait_run(&runs[0]).await;
    let error = detail.jobs[0].error_message.clone().unwrap_or_default();
    assert!(
        error.starts_with(&format!("git fetch of source `app` from {}/git/", stack.url())),
        "{detail:#?}"
    );
    let why = format!(
        "failed on this agent: remote: the orchestrator cannot read source `app`'s repository at {}: No such file or directory (os error 2) (hint: the source's path must stay readable by the orchestrator's user; see kici-admin source list)",
        origin.display()
    );
    assert!(error.contains(&why), "{error}");
    let views = views(&stack, &runs[0]);
    check_run(&detail, &views, &error, Some(InitFailureCategory::Checkout));
    assert!(views.admin_show.contains(&why), "{}", views.admin_show);
    let explained = stack.cli("kici-admin", &["explain", &runs[0]], stack.dir.path());
    assert!(explained.stdout.contains(&why), "{}", explained.stdout);
    assert!(
        explained
            .stdout
            .contains("Failure category: checkout (Source checkout failed)"),
        "{}",
        explained.stdout
    );
    // The error is in the job's prepare log, which is marked failed: no step ran.
    let logs = stack.cli("kici", &["runs", "logs", &runs[0]], stack.dir.path());
    logs.expect_code(0);
    let section = logs
        .stdout
        .lines()
        .position(|line| line.ends_with(" › prepare failed ==="))
        .unwrap_or_else(|| panic!("no failed prepare section in {}", logs.stdout));
    assert!(
        logs.stdout.lines().nth(section + 1).unwrap_or_default().contains(&why),
        "{}",
        logs.stdout
    );
}
