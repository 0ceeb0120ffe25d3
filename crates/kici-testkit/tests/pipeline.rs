//! End to end: pushes to a local source become runs that real agents execute with real git
//! and Node, on SQLite (or PostgreSQL with `KICI_TEST_E2E_DATABASE=postgres`). The workflows are
//! in `tests/e2e-repo`; each runs on pushes to its own branch.

#![allow(clippy::unwrap_used)]

use kici_engine::failure::InitFailureCategory;
use kici_engine::hash::{content_hash, drift_message};
use kici_engine::status::{JobStatus, RunStatus, StepStatus};
use kici_testkit::{Repo, Stack};

const FIXTURE: &str = "tests/e2e-repo";

async fn stack_with_agent(env: &[(&str, &str)]) -> (Stack, Repo) {
    let mut stack = Stack::start_with(env).await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    (stack, repo)
}

#[tokio::test]
async fn a_push_runs_hello_world_to_success() {
    let (stack, repo) = stack_with_agent(&[]).await;
    let detail = stack.push_and_wait("app", &repo, "hello").await;
    assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
    assert_eq!(
        (detail.run.workflow_name.as_str(), detail.run.failure_reason.as_deref()),
        ("hello-world", None)
    );
    let greet = &detail.jobs[0];
    assert_eq!(
        (greet.job_name.as_str(), greet.status, greet.agent_id.as_deref()),
        ("greet", JobStatus::Success, Some("agent-1"))
    );
    let steps = greet.steps.as_ref().unwrap();
    assert_eq!(
        (steps[0].step_name.as_str(), steps[0].status, steps[0].exit_code),
        ("say-hello", StepStatus::Success, Some(0))
    );
    let logs = stack.logs(&detail.run.run_id, Some("greet")).await;
    let say_hello = logs
        .steps
        .iter()
        .find(|s| s.step_name == "say-hello")
        .expect("say-hello log");
    assert_eq!(
        say_hello.lines.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(),
        ["Hello, World!"]
    );
}

/// A local source's checkout is the job's commit with its whole history: unlike a forge's
/// shallow clone, it has no remote to fetch more from.
#[tokio::test]
async fn a_local_sources_checkout_is_its_commit_with_its_whole_history() {
    let (stack, repo) = stack_with_agent(&[]).await;
    repo.write(
        ".kici/workflows/where.ts",
        "import { workflow, job, step, push } from '@kici-dev/sdk';\nexport default workflow('where', { on: push({ branches: 'where' }), jobs: [job('look', { runsOn: 'linux', steps: [step('checkout', async ({ $ }) => { await $`echo \"checked out $(git rev-parse HEAD) with $(git rev-list --count HEAD) commits\"`; })] })] });\n",
    );
    repo.compile();
    let sha = repo.commit_and_push("where");
    let detail = stack.push_and_wait("app", &repo, "where").await;
    assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
    let log = stack.log_text(&detail.run.run_id).await;
    // The fixture's commit and this one.
    assert!(log.contains(&format!("checked out {sha} with 2 commits")), "{log}");
}

#[tokio::test]
async fn a_failing_step_fails_the_run_with_its_exit_code() {
    let (stack, repo) = stack_with_agent(&[]).await;
    let detail = stack.push_and_wait("app", &repo, "failing").await;
    assert_eq!(detail.run.status, RunStatus::Failed);
    assert_eq!(detail.run.failure_reason.as_deref(), Some("Failed jobs: build"));
    let build = &detail.jobs[0];
    assert_eq!(
        build.error_message.as_deref(),
        Some("Step 'compile' failed (exit code 3)")
    );
    let steps = build.steps.as_ref().unwrap();
    assert_eq!(
        steps
            .iter()
            .map(|s| (s.step_name.as_str(), s.status, s.exit_code))
            .collect::<Vec<_>>(),
        [
            ("prepare", StepStatus::Success, Some(0)),
            ("compile", StepStatus::Failed, Some(3))
        ]
    );
}

#[tokio::test]
async fn lock_file_problems() {
    let (stack, repo) = stack_with_agent(&[]).await;
    // Corrupt: a failed run with the loader's text, before any job.
    repo.write(".kici/kici.lock.json", "{ not json");
    repo.commit_and_push("corrupt lock");
    let detail = stack.push_and_wait("app", &repo, "hello").await;
    assert_eq!(
        (detail.run.status, detail.run.workflow_name.as_str()),
        (RunStatus::Failed, "(unresolved workflow)")
    );
    let reason = detail.run.failure_reason.clone().unwrap();
    assert!(
        reason.starts_with("Lock file at app ref=refs/heads/hello is not valid JSON: "),
        "{reason}"
    );
    let init = detail.run.init_failure.clone().unwrap();
    assert_eq!(
        (init.category, init.message.as_str()),
        (InitFailureCategory::LockResolution, reason.as_str())
    );
    assert!(detail.jobs.is_empty());

    // Incompatible schema: the exact incompatibility text.
    repo.compile();
    let lock = repo
        .read(".kici/kici.lock.json")
        .replacen("\"schemaVersion\": 30", "\"schemaVersion\": 29", 1);
    repo.write(".kici/kici.lock.json", &lock);
    repo.commit_and_push("old lock");
    let detail = stack.push_and_wait("app", &repo, "hello").await;
    assert_eq!(
        detail.run.failure_reason.as_deref(),
        Some(
            "Lock file schemaVersion 29 is incompatible with this orchestrator (engine SCHEMA_VERSION 30). Recompile the lock with `kici compile` and push again."
        )
    );

    // Missing: no run, and nothing logged as an error.
    repo.remove(".kici/kici.lock.json");
    repo.commit_and_push("no lock");
    let runs = stack.push("app", &repo, "hello").await;
    assert!(runs.is_empty(), "{runs:?}");
    // The log writer is asynchronous: the line may land just after the webhook's answer.
    stack
        .wait_for("the missing lock file to be logged", || async {
            stack
                .orchestrator
                .log_text()
                .contains("no lock file at the commit; no run")
                .then_some(())
        })
        .await;
    let log = stack.orchestrator.log_text();
    assert!(!log.contains("\"level\":\"error\""), "{log}");
}

/// What a pusher controls (the lock file) cannot crash, stall or flood the orchestrator: each
/// hostile lock file is one failed `lock_resolution` run with a short reason, and the next good
/// push runs.
#[tokio::test]
async fn hostile_lock_files_fail_their_run_and_the_next_push_runs() {
    let (stack, repo) = stack_with_agent(&[]).await;
    repo.compile();
    let good = repo.read(".kici/kici.lock.json");
    let glob = |pattern: &str| good.replacen("\"pattern\": \"hello\"", &format!("\"pattern\": \"{pattern}\""), 1);
    let deep = format!("{}a{}", "{".repeat(5000), "}".repeat(5000));
    let long = "x".repeat(1_000_000);
    let cases = [
        ("deep brace glob", glob(&deep), "patterns are limited to 1024"),
        ("megabyte pattern", glob(&long), "patterns are limited to 1024"),
        (
            "deep JSON",
            format!("{}{}", "[".repeat(50_000), "]".repeat(50_000)),
            "recursion limit exceeded",
        ),
        (
            "oversized",
            format!("{good}{}", " ".repeat(3 * 1024 * 1024)),
            "lock files are limited to 2097152 bytes",
        ),
        (
            "concurrency group",
            good.replacen(
                "\"needs\": []",
                "\"needs\": [], \"resources\": {\"limits\": {\"cpus\": 1}}",
                1,
            ),
            "has `resources`, which this build of KiCI does not honour",
        ),
    ];
    assert!(
        cases.iter().all(|(_, lock, _)| lock != &good),
        "every case changes the lock"
    );
    for (what, lock, expected) in cases {
        repo.write(".kici/kici.lock.json", &lock);
        repo.commit_and_push(what);
        let detail = stack.push_and_wait("app", &repo, "hello").await;
        assert_eq!(detail.run.status, RunStatus::Failed, "{what}");
        let init = detail.run.init_failure.clone().unwrap();
        assert_eq!(init.category, InitFailureCategory::LockResolution, "{what}");
        assert!(init.message.contains(expected), "{what}: {}", init.message);
        assert!(
            init.message.len() < 1000,
            "{what}: a {}-byte reason",
            init.message.len()
        );
    }
    let longest = stack.orchestrator.log_text().lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 4000, "a {longest}-byte log line");

    repo.write(".kici/kici.lock.json", &good);
    repo.commit_and_push("good lock again");
    let detail = stack.push_and_wait("app", &repo, "hello").await;
    assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
}

#[tokio::test]
async fn an_edited_workflow_or_another_sdk_is_refused_as_drift() {
    let (stack, repo) = stack_with_agent(&[]).await;
    let sdk = kici_sdk::sdk();
    let source = repo.read(".kici/workflows/hello.ts");
    let compiled = content_hash(sdk.hash, source.as_bytes(), None);
    let edited_source = format!("{source}// edited after compiling\n");
    repo.write(".kici/workflows/hello.ts", &edited_source);
    repo.commit_and_push("edit without compiling");
    let detail = stack.push_and_wait("app", &repo, "hello").await;
    let edited = content_hash(sdk.hash, edited_source.as_bytes(), None);
    let expected = drift_message(&compiled, &edited, sdk.version, sdk.hash);
    assert_eq!(detail.run.status, RunStatus::Failed);
    assert_eq!(detail.jobs[0].error_message.as_deref(), Some(expected.as_str()));
    let logs = stack.logs(&detail.run.run_id, Some("greet")).await;
    assert!(
        logs.steps
            .iter()
            .any(|s| s.step_index == -1 && s.lines.iter().any(|l| l.line == expected)),
        "{logs:#?}"
    );

    // A lock compiled against another SDK bundle: its contentHash binds that bundle's hash.
    repo.write(".kici/workflows/hello.ts", &source);
    repo.compile();
    let other_sdk = "1111111111111111111111111111111111111111111111111111111111111111";
    let foreign = content_hash(other_sdk, source.as_bytes(), None);
    repo.write(
        ".kici/kici.lock.json",
        &repo
            .read(".kici/kici.lock.json")
            .replace(&compiled, &foreign)
            .replace(sdk.hash, other_sdk),
    );
    repo.commit_and_push("lock from another sdk");
    let detail = stack.push_and_wait("app", &repo, "hello").await;
    assert_eq!(
        detail.jobs[0].error_message.as_deref(),
        Some(drift_message(&foreign, &compiled, sdk.version, sdk.hash).as_str())
    );
}

#[tokio::test]
async fn needs_run_across_agents_with_different_labels() {
    let mut stack = Stack::start().await;
    stack.start_agent("builder-1", &["builder"]).await;
    stack.start_agent("tester-1", &["tester"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    let detail = stack.push_and_wait("app", &repo, "labels").await;
    assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
    let placed: Vec<(&str, Option<&str>, JobStatus)> = detail
        .jobs
        .iter()
        .map(|j| (j.job_name.as_str(), j.agent_id.as_deref(), j.status))
        .collect();
    assert_eq!(
        placed,
        [
            ("build", Some("builder-1"), JobStatus::Success),
            ("test", Some("tester-1"), JobStatus::Success)
        ]
    );
    assert!(
        detail.jobs[1].started_at >= detail.jobs[0].completed_at,
        "test started before build finished: {detail:#?}"
    );
    let logs = stack.logs(&detail.run.run_id, Some("test")).await;
    assert!(
        logs.steps
            .iter()
            .any(|s| s.lines.iter().any(|l| l.line == "build was success")),
        "{logs:#?}"
    );
}

#[tokio::test]
async fn a_matrix_fans_out_over_two_agents_in_parallel() {
    let mut stack = Stack::start().await;
    stack.start_agent("pool-1", &["pool"]).await;
    stack.start_agent("pool-2", &["pool"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    let detail = stack.push_and_wait("app", &repo, "matrix").await;
    // Each child waits for the other's marker: success means they ran at the same time.
    assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
    let mut agents: Vec<&str> = detail.jobs.iter().filter_map(|j| j.agent_id.as_deref()).collect();
    agents.sort();
    assert_eq!(agents, ["pool-1", "pool-2"]);
    assert_eq!(
        detail.jobs.iter().map(|j| j.job_name.as_str()).collect::<Vec<_>>(),
        ["fan (a)", "fan (b)"]
    );
}

#[tokio::test]
async fn dynamic_matrices_expand_or_fail_with_matrix_expansion() {
    let (stack, repo) = stack_with_agent(&[]).await;
    let detail = stack.push_and_wait("app", &repo, "dynamic").await;
    assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
    let names: Vec<(&str, JobStatus)> = detail.jobs.iter().map(|j| (j.job_name.as_str(), j.status)).collect();
    assert_eq!(
        names,
        [
            ("Evaluate matrix: test", JobStatus::Success),
            ("test (x)", JobStatus::Success),
            ("test (y)", JobStatus::Success),
            ("after", JobStatus::Success)
        ]
    );

    let detail = stack.push_and_wait("app", &repo, "dynamic-throws").await;
    let message = "Matrix expansion failed for job 'test': no packages found";
    assert_eq!(detail.run.status, RunStatus::Failed);
    assert_eq!(detail.run.failure_reason.as_deref(), Some(message));
    let eval = &detail.jobs[0];
    assert_eq!(
        (eval.status, eval.error_message.as_deref()),
        (JobStatus::Failed, Some(message))
    );
    let init = eval.init_failure.clone().unwrap();
    assert_eq!(
        (init.category, init.job_name.as_deref()),
        (InitFailureCategory::MatrixExpansion, Some("test"))
    );
}

#[tokio::test]
async fn a_job_no_agent_can_run_times_out_in_the_queue() {
    let (stack, repo) = stack_with_agent(&[("KICI_QUEUE_TIMEOUT_MS", "1500")]).await;
    let runs = stack.push("app", &repo, "no-agent").await;
    let queued = stack.detail(&runs[0]).await;
    assert_eq!(queued.jobs[0].status, JobStatus::Queued, "{queued:#?}");
    let detail = stack.wait_run(&runs[0]).await;
    assert_eq!(detail.run.status, RunStatus::Failed);
    assert_eq!(
        detail.run.failure_reason.as_deref(),
        Some("No agents available to dispatch jobs")
    );
    let job = &detail.jobs[0];
    assert_eq!(
        (job.status, job.error_message.as_deref()),
        (
            JobStatus::TimedOutStale,
            Some("Queue timeout expired (job was never dispatched to an agent)")
        )
    );
    assert_eq!(
        job.init_failure.as_ref().map(|i| i.category),
        Some(InitFailureCategory::NoAgent)
    );
}

#[tokio::test]
async fn a_delivery_is_processed_once() {
    let (stack, repo) = stack_with_agent(&[]).await;
    repo.push_to("hello");
    let body = repo.push_payload("app", "hello");
    let send = || async {
        let response = stack
            .client()
            .post(format!("{}/webhook/default/generic/app", stack.url()))
            .bearer_auth(kici_testkit::ADMIN_TOKEN)
            .header("x-event-type", "push")
            .header("x-delivery-id", "delivery-1")
            .json(&body)
            .send()
            .await
            .expect("webhook");
        (
            response.status().as_u16(),
            response.json::<serde_json::Value>().await.expect("JSON"),
        )
    };
    let (status, first) = send().await;
    assert_eq!(status, 202, "{first}");
    let (status, second) = send().await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        (second["accepted"].as_bool(), second["duplicate"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(second["deliveryId"], first["deliveryId"]);
    assert_eq!(stack.get("/api/v1/runs").await["total"], 1);
}

/// A job id in a log path names a directory: only a job of that run may be read.
#[tokio::test]
async fn log_reads_take_only_a_job_of_the_run() {
    let (stack, repo) = stack_with_agent(&[]).await;
    let first = stack.push_and_wait("app", &repo, "hello").await;
    repo.commit_and_push("again");
    let second = stack.push_and_wait("app", &repo, "hello").await;
    let job = &first.jobs[0].job_id;
    let stack = &stack;
    let get = |path: String| async move {
        stack
            .client()
            .get(format!("{}{path}", stack.url()))
            .bearer_auth(kici_testkit::ADMIN_TOKEN)
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
    };
    let run = &first.run.run_id;
    assert_eq!(get(format!("/api/v1/runs/{run}/jobs/{job}/steps/0/logs")).await, 200);
    let other = &second.run.run_id;
    assert_eq!(get(format!("/api/v1/runs/{other}/jobs/{job}/steps/0/logs")).await, 404);
    for hostile in ["..%2F..%2F..", "%2Fetc", "x"] {
        assert_eq!(
            get(format!("/api/v1/runs/{run}/jobs/{hostile}/steps/0/logs")).await,
            404,
            "{hostile}"
        );
        assert_eq!(
            get(format!("/api/v1/runs/{run}/jobs/{hostile}/provisioning")).await,
            404,
            "{hostile}"
        );
    }
}

/// Real git against the orchestrator's git server, as the job's credential (`token`) or none.
fn git_as(dir: &std::path::Path, token: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new("git");
    command.arg("-C").arg(dir).args(args).env("GIT_TERMINAL_PROMPT", "0");
    if let Some(token) = token {
        let credentials = kici_engine::git_auth::GitCredentials::password("kici", token);
        command.envs(kici_engine::git_auth::credential_env(&credentials));
    }
    command.output().unwrap()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A local source's repository is served to the job that uses it, and to nothing else: the
/// job's credential fetches its commit (no ref is shown), not another commit, not another
/// source's repository, pushes nothing, and dies with the job.
#[tokio::test]
async fn a_jobs_git_credential_fetches_its_own_commit_of_its_own_source_while_the_job_runs() {
    let stack = Stack::start().await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack.add_local_source("app", &repo).await;
    std::fs::create_dir_all(stack.dir.path().join("other")).unwrap();
    let other = Repo::from_fixture(&stack.dir.path().join("other"), FIXTURE);
    let other_source = stack.add_local_source("other", &other).await;
    let token = stack.agent_token("scripted", &["scaled"]).await;
    let ws = format!("ws://127.0.0.1:{}/ws", stack.orchestrator.port);
    let mut agent =
        kici_testkit::FakeAgent::connect(&ws, &token, "scripted", &["scaled"], kici_sdk::build_info()).await;
    stack.wait_agent_connected("scripted").await;
    let runs = stack.push("app", &repo, "scaled").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let dispatch = agent.dispatch(std::time::Duration::from_secs(30)).await;
    let served = dispatch
        .served_repository
        .clone()
        .expect("a local source's job is served its repository");
    assert_eq!(served.source, "app");
    assert!(served.url.starts_with("/git/"), "{served:?}");
    let url = format!("{}{}", stack.url(), served.url);
    let grant = Some(served.token.as_str());
    let later = repo.commit_and_push("a commit the job did not run");

    let clone = tempfile::tempdir().unwrap();
    let dir = clone.path();
    assert!(git_as(dir, None, &["init", "-q"]).status.success());
    // Its commit, with the history behind it, and no ref: no branch, tag or other commit shows.
    let fetched = git_as(dir, grant, &["fetch", "-q", "--no-tags", &url, &dispatch.sha]);
    assert!(fetched.status.success(), "{}", stderr(&fetched));
    // Each of these fetches into a repository of its own, which has nothing yet.
    let empty = || {
        let dir = tempfile::tempdir().unwrap();
        assert!(git_as(dir.path(), None, &["init", "-q"]).status.success());
        dir
    };
    // Protocol v0 lists refs first, and there are none to list: refused, saying so.
    let v0 = git_as(
        empty().path(),
        grant,
        &[
            "-c",
            "protocol.version=0",
            "fetch",
            "-q",
            "--no-tags",
            &url,
            &dispatch.sha,
        ],
    );
    assert!(
        stderr(&v0).contains("remote: local sources are served over git's protocol version 2 only (git 2.18 or newer, with protocol.version=2, which the agent sets)"),
        "{}",
        stderr(&v0)
    );
    // Tags, refs named to deepen from, and `have` lines would reach refs or probe objects.
    let pkt = |line: &str| format!("{:04x}{line}", line.len() + 4);
    for (line, refusal) in [
        (
            format!("have {later}\n"),
            "ERR a job fetches into an empty repository: `have` is not served",
        ),
        (
            "deepen-not refs/heads/main\n".to_string(),
            "ERR a job fetches its commit by id: refs are not served",
        ),
        (
            "include-tag\n".to_string(),
            "ERR tags are not served to jobs: fetch with --no-tags",
        ),
    ] {
        let body = format!(
            "{}0001{}{}{}0000",
            pkt("command=fetch\n"),
            pkt(&format!("want {}\n", dispatch.sha)),
            pkt(&line),
            pkt("done\n")
        );
        let answer = stack
            .client()
            .post(format!("{url}/git-upload-pack"))
            .basic_auth("kici", grant)
            .header("Git-Protocol", "version=2")
            .body(body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(answer.contains(refusal), "{line}: {answer}");
    }
    assert!(
        git_as(dir, None, &["cat-file", "-e", &format!("{}^{{commit}}", dispatch.sha)])
            .status
            .success()
    );
    let listed = git_as(dir, grant, &["ls-remote", &url]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert_eq!(String::from_utf8_lossy(&listed.stdout), "");
    let another = git_as(empty().path(), grant, &["fetch", "-q", "--no-tags", &url, &later]);
    assert!(
        stderr(&another).contains(&format!(
            "fatal: remote error: this job may fetch commit {} and its history, not {later}",
            dispatch.sha
        )),
        "{}",
        stderr(&another)
    );
    // Not another source's repository.
    let other_url = format!(
        "{}/git/{}",
        stack.url(),
        other_source["sourceId"].as_str().expect("the source's id")
    );
    let elsewhere = git_as(
        empty().path(),
        grant,
        &["fetch", "-q", "--no-tags", &other_url, &dispatch.sha],
    );
    assert!(
        stderr(&elsewhere)
            .contains("remote: this job's git credential reads its own source's repository, not this one"),
        "{}",
        stderr(&elsewhere)
    );
    // Nothing is pushed through it.
    let pushed = git_as(&repo.work(), grant, &["push", "-q", &url, "HEAD:refs/heads/injected"]);
    assert!(
        stderr(&pushed).contains("remote: this server only serves fetches (git-upload-pack)"),
        "{}",
        stderr(&pushed)
    );
    // Without the credential, or with a forged one, git is asked for one and refused.
    let info_refs = format!("{url}/info/refs?service=git-upload-pack");
    let anonymous = stack
        .client()
        .get(&info_refs)
        .header("Git-Protocol", "version=2")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Basic realm=\"KiCI\"");
    assert!(
        anonymous
            .text()
            .await
            .unwrap()
            .starts_with("the repositories of local sources are served to the jobs that use them")
    );
    let forged = git_as(
        empty().path(),
        Some("forged"),
        &["fetch", "-q", "--no-tags", &url, &dispatch.sha],
    );
    assert!(
        stderr(&forged).contains("remote: the job's git credential is not valid"),
        "{}",
        stderr(&forged)
    );

    // The job ends: its credential with it.
    for (seq, state) in [(1, JobStatus::Running), (2, JobStatus::Success)] {
        agent.send(kici_engine::protocol::AgentMessage::JobStatus(Box::new(
            kici_engine::protocol::JobStatusUpdate::new(
                dispatch.run_id.clone(),
                dispatch.job_id.clone(),
                seq,
                state,
                0,
            ),
        )));
    }
    let detail = stack.wait_run(&runs[0]).await;
    assert_eq!(detail.run.status, RunStatus::Success, "{detail:#?}");
    let after = git_as(
        empty().path(),
        grant,
        &["fetch", "-q", "--no-tags", &url, &dispatch.sha],
    );
    assert!(
        stderr(&after).contains(&format!(
            "remote: job {} has ended (success): a job's git credential lives as long as the job",
            dispatch.job_id
        )),
        "{}",
        stderr(&after)
    );
}
