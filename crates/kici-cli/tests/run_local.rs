//! `kici run local` on the test repository (`tests/repo`): real git, real Node, the embedded
//! runner. Each test runs one workflow and asserts what an author sees: log lines, statuses,
//! exit codes and the JSON report.

mod support;

use serde_json::Value;
use support::Project;

/// The job of the JSON report named `name`.
fn job<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["workflows"][0]["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("no job {name} in {report:#}"))
}

fn step<'a>(job: &'a Value, name: &str) -> &'a Value {
    job["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {job:#}"))
}

#[test]
fn hello_world_succeeds_and_prints_its_greeting() {
    let repo = Project::test_repo();
    let run = repo.kici(&["run", "local", "push", "--workflow", "hello-world"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("[greet › say-hello] Hello, World!\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("✓ hello-world  success"), "{}", run.stdout);
    assert!(run.stdout.contains("  ✓ greet  success"), "{}", run.stdout);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("      ✓ say-hello  success") && l.ends_with("exit=0")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.starts_with("running in "), "{}", run.stdout);
}

#[test]
fn a_failing_step_shows_its_exit_code_and_fails_the_run() {
    let repo = Project::test_repo();
    let run = repo.kici(&["run", "local", "--workflow", "failing-step"]);
    run.expect_code(1);
    assert!(run.stdout.contains("[build › compile] compiling"), "{}", run.stdout);
    assert!(run.stdout.contains("  Failed jobs: build"), "{}", run.stdout);
    assert!(run.stdout.contains("      Step 'compile' failed"), "{}", run.stdout);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("      ✗ compile  failed") && l.ends_with("exit=3")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("      ○ never  skipped"), "{}", run.stdout);
    assert!(!run.stdout.contains("unreachable"), "{}", run.stdout);

    let report = repo
        .kici(&["run", "local", "--workflow", "failing-step", "--json"])
        .expect_code(1)
        .json();
    assert_eq!(report["status"], "failed");
    assert_eq!(report["workflows"][0]["failureReason"], "Failed jobs: build");
    let build = job(&report, "build");
    assert_eq!(build["status"], "failed");
    assert_eq!(build["errorMessage"], "Step 'compile' failed");
    assert_eq!(step(build, "prepare")["status"], "success");
    assert_eq!(step(build, "compile")["exitCode"], 3);
    assert_eq!(
        step(build, "compile")["errorMessage"],
        "Command failed with exit code 3: echo compiling; exit 3"
    );
    assert_eq!(step(build, "never")["status"], "skipped");
}

#[test]
fn a_fast_parallel_failure_cancels_the_slow_sibling() {
    let repo = Project::test_repo();
    let run = repo.kici(&["run", "local", "--workflow", "parallel-fail-fast", "--json"]);
    run.expect_code(1);
    let report = run.json();
    let checks = job(&report, "checks");
    assert_eq!(checks["status"], "failed");
    assert_eq!(step(checks, "fast-fail")["status"], "failed");
    assert_eq!(step(checks, "slow")["status"], "cancelled");
    assert!(run.stderr.contains("[checks › slow] slow started"), "{}", run.stderr);
    assert!(!run.stderr.contains("slow finished"), "{}", run.stderr);
    // The slow sibling sleeps 30 s; the job ends with the fast failure (0.2 s), not with it.
    let job_ms = checks["durationMs"].as_u64().expect("duration");
    assert!(job_ms < 5_000, "job took {job_ms} ms");
}

#[test]
fn a_static_matrix_runs_every_combination_with_ctx_matrix() {
    let repo = Project::test_repo();
    let run = repo.kici(&["run", "local", "--workflow", "static-matrix"]);
    run.expect_code(0);
    for (os, node) in [("linux", "18"), ("linux", "20"), ("mac", "18"), ("mac", "20")] {
        assert!(
            run.stdout
                .contains(&format!("[test ({os}, {node}) › show] os={os} node={node}\n")),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout.contains(&format!("  ✓ test ({os}, {node})  success")),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn a_dynamic_matrix_reads_the_checkout() {
    let repo = Project::test_repo();
    repo.write("packages/gamma/package.json", "{\"name\":\"gamma\"}\n");
    let report = repo
        .kici(&["run", "local", "--workflow", "dynamic-matrix", "--json"])
        .expect_code(0)
        .json();
    let names: Vec<&str> = report["workflows"][0]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["test (alpha)", "test (beta)", "test (gamma)"]);
    assert_eq!(
        job(&report, "test (gamma)")["matrix"],
        serde_json::json!({"value": "gamma"})
    );
}

#[test]
fn needs_always_runs_after_a_failure_and_on_success_is_skipped() {
    let repo = Project::test_repo();
    let run = repo.kici(&["run", "local", "--workflow", "needs-when", "--json"]);
    run.expect_code(1);
    let report = run.json();
    assert_eq!(job(&report, "build")["status"], "failed");
    assert_eq!(job(&report, "report")["status"], "success");
    assert_eq!(job(&report, "deploy")["status"], "skipped");
    assert!(
        run.stderr.contains("[report › summary] build finished: failed"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("shipping"), "{}", run.stderr);
    assert_eq!(report["workflows"][0]["failureReason"], "Failed jobs: build");
}

#[test]
fn a_rule_skips_a_job_unless_it_holds() {
    let repo = Project::test_repo();
    let run = repo.kici(&["run", "local", "--workflow", "rule-skip", "--json", "--branch", "main"]);
    run.expect_code(0);
    let report = run.json();
    assert_eq!(job(&report, "always-runs")["status"], "success");
    assert_eq!(job(&report, "release-only")["status"], "skipped");
    assert!(
        run.stderr
            .contains("[release-only] Job skipped by rule 'only on release branches'"),
        "{}",
        run.stderr
    );

    let run = repo.kici(&[
        "run",
        "local",
        "--workflow",
        "rule-skip",
        "--json",
        "--branch",
        "release/1.0",
    ]);
    run.expect_code(0);
    assert_eq!(job(&run.json(), "release-only")["status"], "success");
    assert!(
        run.stderr.contains("[release-only › publish] publishing"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_step_that_exceeds_its_timeout_fails_with_the_timeout_message() {
    let repo = Project::test_repo();
    let run = repo.kici(&["run", "local", "--workflow", "step-timeout"]);
    run.expect_code(1);
    assert!(run.stdout.contains("[slow › too-slow] waiting"), "{}", run.stdout);
    assert!(
        run.stdout.contains("        Step 'too-slow' timed out after 300ms"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.lines().any(|l| l.starts_with("      ✗ too-slow  failed")),
        "{}",
        run.stdout
    );
}

#[test]
fn typescript_features_and_relative_imports_compile_and_run() {
    let repo = Project::test_repo();
    let run = repo.kici(&["run", "local", "--workflow", "typescript-features"]);
    run.expect_code(0);
    assert!(run.stdout.contains("[typed › render] HELLO, KICI!\n"), "{}", run.stdout);
    assert!(
        run.stdout.contains("[typed › render] stage Deploy to staging x2\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn running_every_matched_workflow_reports_each_of_them() {
    let repo = Project::test_repo();
    let report = repo.kici(&["run", "local", "push", "--json"]).expect_code(1).json();
    let mut names: Vec<&str> = report["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "dynamic-matrix",
            "failing-step",
            "hello-world",
            "needs-when",
            "parallel-fail-fast",
            "rule-skip",
            "sdk-features",
            "static-matrix",
            "step-timeout",
            "typescript-features"
        ]
    );
}

#[test]
fn job_selects_the_job_and_what_it_needs() {
    let repo = Project::test_repo();
    let report = repo
        .kici(&["run", "local", "--workflow", "needs-when", "--job", "report", "--json"])
        .expect_code(1)
        .json();
    let names: Vec<&str> = report["workflows"][0]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["build", "report"]);
}

#[test]
fn events_that_match_nothing_and_unknown_events() {
    let repo = Project::test_repo();
    let run = repo.kici(&["run", "local", "tag:v1.0.0"]);
    run.expect_code(0);
    assert_eq!(run.stdout, "No workflow matched the tag event on v1.0.0.\n");
    let run = repo.kici(&["run", "local", "deploy"]);
    run.expect_code(1);
    assert!(
        run.stderr
            .starts_with("error: Unknown event name: deploy\n  hint: known events: push, pr"),
        "{}",
        run.stderr
    );
    let run = repo.kici(&["run", "local", "pr", "--workflow", "hello-world"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains(
            "workflow 'hello-world' does not match this pull_request event (type: expected push, got pull_request)"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn the_checkout_is_kept_only_when_something_failed() {
    let repo = Project::test_repo();
    let report = repo
        .kici(&["run", "local", "--workflow", "hello-world", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(report["checkout"], Value::Null);
    let report = repo
        .kici(&["run", "local", "--workflow", "failing-step", "--json"])
        .expect_code(1)
        .json();
    let kept = report["checkout"].as_str().expect("kept checkout");
    assert!(
        std::path::Path::new(kept)
            .join(".kici/workflows/failing-step.ts")
            .is_file()
    );
    std::fs::remove_dir_all(kept).unwrap();
}

#[test]
fn sdk_features_env_quoting_retry_continue_on_error_hooks_and_skip() {
    let repo = Project::test_repo();
    let run = repo.kici(&[
        "run",
        "local",
        "--workflow",
        "sdk-features",
        "--env",
        "FROM_CLI=yes",
        "--keep-going",
        "--json",
    ]);
    run.expect_code(1);
    let logs = &run.stderr;
    let report = run.json();
    for line in [
        "[basics › step-1] env: hi there, cli: yes",
        "[basics › quoting] quoted: it's a \"test\" $HOME|a b|c|",
        "[basics › nothrow] exit code 7",
        "[basics › quiet] captured <captured>",
        "[basics › flaky] [kici] Attempt 1/3 failed: flaky failure; retrying in 10ms",
        "[basics › flaky] attempt 2",
        "[basics › context] sdk-features/basics",
        "[basics › onFailure] onFailure after allowed-to-fail",
        "[basics › cleanup] cleanup ran",
        "[shorthand › step-1] run shorthand",
        "[shorthand › onSuccess] onSuccess ran",
        "[not-on-main] Job skipped by rule 'skipped on main'",
    ] {
        assert!(logs.lines().any(|l| l == line), "missing `{line}` in\n{logs}");
    }
    assert!(
        !logs.contains("hidden-output"),
        "a quiet command's output reached the log:\n{logs}"
    );
    assert!(
        !logs.contains("node_modules/@kici-dev"),
        "runtime frames in a step's stack trace:\n{logs}"
    );
    let basics = job(&report, "basics");
    assert_eq!(basics["status"], "failed");
    assert_eq!(basics["errorMessage"], "Step 'allowed-to-fail' failed");
    assert_eq!(step(basics, "flaky")["attempts"], 2);
    assert_eq!(step(basics, "flaky")["status"], "success");
    assert_eq!(step(basics, "allowed-to-fail")["exitCode"], 4);
    assert_eq!(step(basics, "context")["status"], "success");
    assert_eq!(step(basics, "onFailure")["stepType"], "hook:onFailure");
    assert_eq!(job(&report, "shorthand")["status"], "success");
    assert_eq!(job(&report, "not-on-main")["status"], "skipped");

    let run = repo.kici(&[
        "run",
        "local",
        "--workflow",
        "sdk-features",
        "--branch",
        "release/2",
        "--keep-going",
        "--json",
    ]);
    assert_eq!(job(&run.json(), "not-on-main")["status"], "success");
}

const DEPLOY: &str = r#"import { workflow, job, step, push } from '@kici-dev/sdk';

export default workflow('deploy', {
  on: push(),
  jobs: [
    job('deploy', {
      runsOn: 'linux',
      environment: (event) => (event.targetBranch === 'main' ? 'production' : 'staging'),
      env: (event) => ({ DEPLOY_TARGET: event.targetBranch === 'main' ? 'prod' : 'stg' }),
      run: async ({ $, secrets, environment }) => {
        await $`echo "Deploying to $DEPLOY_TARGET (${environment})"`;
        const key = await secrets.get('DEPLOY_KEY');
        await $`echo key=${key}`;
        console.log(Buffer.from(key).toString('base64'));
      },
    }),
  ],
});
"#;

#[test]
fn dynamic_environment_and_env_follow_the_branch_and_local_secrets_are_masked() {
    let project = Project::with_workflow("deploy.ts", DEPLOY);
    project.write(".kici/.secrets", "# local only\nDEPLOY_KEY=local-canary-5e6f7a8b\n");
    project.commit();
    let main = project.kici(&["run", "local", "push", "--branch", "main"]);
    main.expect_code(0);
    assert!(
        main.stdout.contains("Deploying to prod (production)"),
        "{}",
        main.stdout
    );
    assert!(main.stdout.contains("key=***"), "{}", main.stdout);
    assert!(!main.stdout.contains("local-canary-5e6f7a8b"), "{}", main.stdout);
    assert!(
        !main.stdout.contains("bG9jYWwtY2FuYXJ5"),
        "base64 leaked: {}",
        main.stdout
    );
    let branch = project.kici(&["run", "local", "push", "--branch", "feature-x"]);
    branch.expect_code(0);
    assert!(
        branch.stdout.contains("Deploying to stg (staging)"),
        "{}",
        branch.stdout
    );

    project.write(".kici/.secrets", "NOT A PAIR\n");
    let broken = project.kici(&["run", "local", "push", "--branch", "main"]);
    broken.expect_code(1);
    assert!(
        broken.stderr.contains(".kici/.secrets is not `KEY=value` lines"),
        "{}",
        broken.stderr
    );
    assert!(broken.stderr.contains("line 1: no `=`"), "{}", broken.stderr);
}

#[test]
fn what_a_job_returns_reaches_the_jobs_that_need_it_locally() {
    let repo = Project::test_repo();
    repo.write(
        ".kici/workflows/outputs.ts",
        "import { workflow, job, step, push } from '@kici-dev/sdk';\n\nconst build = job('build', { runsOn: 'linux', steps: [step('make', async () => ({ version: '2.0.1' }))] });\nconst test = job('test', { runsOn: 'linux', matrix: { shard: ['a', 'b'] }, run: async (ctx) => ({ shard: ctx.matrix.shard }) });\n\nexport default workflow('outputs', {\n  on: push(),\n  jobs: [build, test, job('ship', { runsOn: 'linux', needs: [build, test], run: async (ctx) => {\n    console.log(`version ${build.result.make.version} shards ${ctx.needs.test.map((t) => t.result.shard).join(',')}`);\n  } })],\n});\n",
    );
    let run = repo.kici(&["run", "local", "--workflow", "outputs"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("[ship › step-1] version 2.0.1 shards a,b\n"),
        "{}",
        run.stdout
    );
}

/// Generators run on agents only: a job that needs one, or its group, is skipped, not lost.
#[test]
fn jobs_that_need_a_generator_or_its_group_are_skipped_locally() {
    let repo = Project::test_repo();
    repo.write(
        ".kici/workflows/grouped.ts",
        "import { workflow, job, push, dynamicJob, dynamicGroup } from '@kici-dev/sdk';\n\nexport default workflow('grouped', {\n  on: push(),\n  jobs: [\n    dynamicJob('packages', async () => []),\n    job('publish', { runsOn: 'linux', needs: [dynamicGroup('packages')], run: async () => {} }),\n    job('after', { runsOn: 'linux', needs: ['packages'], run: async () => {} }),\n  ],\n});\n",
    );
    let report = repo
        .kici(&["run", "local", "--workflow", "grouped", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(job(&report, "publish")["status"], "skipped");
    assert_eq!(job(&report, "after")["status"], "skipped");
    assert_eq!(job(&report, "packages")["status"], "skipped");
}

/// A one-workflow project whose `ci` workflow runs on `trigger` with `jobs` (source text).
fn project_with(trigger: &str, jobs: &str) -> Project {
    let project = Project::with_workflow(
        "ci.ts",
        &format!(
            "import {{ workflow, job, step, push, dispatch, kiciEvent, z }} from '@kici-dev/sdk';\n\nexport default workflow('ci', {{\n  on: {trigger},\n  jobs: [\n{jobs}\n  ],\n}});\n"
        ),
    );
    project.commit();
    project
}

#[test]
fn pick_names_a_workflow_or_a_job_and_a_bare_pick_needs_a_terminal() {
    let repo = Project::test_repo();
    let report = repo
        .kici(&["run", "local", "--pick", "needs-when/report", "--json"])
        .expect_code(1)
        .json();
    let jobs: Vec<&str> = report["workflows"][0]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["build", "report"]);
    let run = repo.kici(&["run", "local", "-p", "hello-world"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("[greet › say-hello] Hello, World!"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("failing-step"), "{}", run.stdout);

    let bare = repo.kici(&["run", "local", "--pick"]);
    bare.expect_code(1);
    assert_eq!(
        bare.stderr,
        "error: --pick without a value asks which workflow to run, but stdin is not a terminal\n  hint: name it: --pick <workflow> or --pick <workflow>/<job>\n"
    );
    let conflict = repo.kici(&["run", "local", "--pick", "hello-world", "--workflow", "needs-when"]);
    conflict.expect_code(2);
    assert!(
        conflict
            .stderr
            .starts_with("error: the argument '--pick [<WORKFLOW[/JOB]>]' cannot be used with '--workflow <WORKFLOW>'"),
        "{}",
        conflict.stderr
    );
}

#[test]
fn payload_is_ctx_event_payload_from_json_or_a_file() {
    let project = project_with(
        "push()",
        "    job('show', { runsOn: 'linux', run: async ({ event }) => console.log(`payload ${JSON.stringify(event.payload)}`) }),",
    );
    let run = project.kici(&["run", "local", "--payload", r#"{"pusher": {"name": "ada"}}"#]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains(r#"[show › step-1] payload {"pusher":{"name":"ada"}}"#),
        "{}",
        run.stdout
    );
    project.write("event.json", r#"{"from": "file"}"#);
    let run = project.kici(&["run", "local", "--payload", "@event.json"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains(r#"[show › step-1] payload {"from":"file"}"#),
        "{}",
        run.stdout
    );
    let run = project.kici(&["run", "local", "--payload", "{not json"]);
    run.expect_code(1);
    assert!(
        run.stderr
            .starts_with("error: --payload is not JSON: key must be a string at line 1 column 2\n  hint: "),
        "{}",
        run.stderr
    );
}

#[test]
fn dispatch_inputs_are_validated_coerced_and_defaulted_as_the_orchestrator_does() {
    let project = project_with(
        "dispatch({ inputs: { version: z.string(), dry: z.boolean().default(false) } })",
        "    job('release', { runsOn: 'linux', run: async ({ dispatchInputs: i }) => console.log(`version ${i.version} dry ${i.dry} ${typeof i.dry}`) }),",
    );
    let run = project.kici(&[
        "run",
        "local",
        "dispatch",
        "--input",
        "version=1.2.3",
        "--input",
        "dry=true",
    ]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("[release › step-1] version 1.2.3 dry true boolean\n"),
        "{}",
        run.stdout
    );
    let run = project.kici(&["run", "local", "dispatch", "--input", "version=2"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("[release › step-1] version 2 dry false boolean\n"),
        "{}",
        run.stdout
    );
    let run = project.kici(&[
        "run",
        "local",
        "dispatch",
        "--input",
        "dry=maybe",
        "--input",
        "versoin=1",
    ]);
    run.expect_code(1);
    assert_eq!(
        run.stderr,
        "error: workflow 'ci': invalid inputs: versoin: unknown input (did you mean `version`?); dry: expected boolean (true/false, 1/0, yes/no), got \"maybe\"; version: required: string\n"
    );
    let run = project.kici(&["run", "local", "push", "--input", "version=1.2.3"]);
    run.expect_code(1);
    assert_eq!(
        run.stderr,
        "error: --input sets dispatch inputs, but the event is push\n  hint: kici run local dispatch --input KEY=VALUE\n"
    );
}

#[test]
fn a_kici_event_carries_the_payload_as_a_step_emitted_it() {
    let project = project_with(
        "kiciEvent({ name: 'deployed', match: { '$.env': 'prod' } })",
        "    job('smoke', { runsOn: 'linux', run: async ({ event }) => console.log(`${event.action} ${event.payload.payload.env}`) }),",
    );
    let run = project.kici(&["run", "local", "kici_event:deployed", "--payload", r#"{"env":"prod"}"#]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("[smoke › step-1] deployed prod\n"),
        "{}",
        run.stdout
    );
    let run = project.kici(&["run", "local", "kici_event:deployed", "--payload", r#"{"env":"dev"}"#]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("No workflow matched the kici_event event"),
        "{}",
        run.stdout
    );
}

const FAIL_THEN_OTHERS: &str = "    job('fails', { runsOn: 'linux', run: async ({ $ }) => { await $`exit 1`; } }),\n    job('independent', { runsOn: 'linux', run: async () => console.log('independent ran') }),\n    job('report', { runsOn: 'linux', needs: [{ name: 'fails', when: 'always' }], run: async () => console.log('report ran') }),";

#[test]
fn after_a_failure_only_failure_handlers_start_unless_keep_going() {
    let project = project_with("push()", FAIL_THEN_OTHERS);
    let run = project.kici(&["run", "local", "--concurrency", "1", "--json"]);
    run.expect_code(1);
    let report = run.json();
    assert_eq!(job(&report, "fails")["status"], "failed");
    assert_eq!(job(&report, "independent")["status"], "cancelled");
    assert_eq!(
        job(&report, "independent")["errorMessage"],
        "not started: job 'fails' failed (hint: --keep-going starts the jobs that do not need it)"
    );
    assert_eq!(job(&report, "report")["status"], "success");
    assert!(!run.stderr.contains("independent ran"), "{}", run.stderr);

    let run = project.kici(&["run", "local", "--concurrency", "1", "--keep-going", "--json"]);
    run.expect_code(1);
    assert_eq!(job(&run.json(), "independent")["status"], "success");
    assert!(
        run.stderr.contains("[independent › step-1] independent ran"),
        "{}",
        run.stderr
    );
}

#[test]
fn junit_writes_a_suite_per_job_and_a_case_per_step() {
    let repo = Project::test_repo();
    repo.kici(&["run", "local", "--workflow", "failing-step", "--junit", "out/junit.xml"])
        .expect_code(1);
    let xml = repo.read("out/junit.xml");
    let lines: Vec<&str> = xml.lines().collect();
    assert_eq!(lines[0], r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    assert!(
        lines[1]
            .starts_with(r#"<testsuites name="kici run local" tests="3" failures="1" errors="0" skipped="1" time=""#),
        "{xml}"
    );
    assert!(
        lines[2].starts_with(
            r#"  <testsuite name="failing-step › build" tests="3" failures="1" errors="0" skipped="1" time=""#
        ),
        "{xml}"
    );
    assert!(
        lines[3].starts_with(r#"    <testcase name="prepare" classname="failing-step.build" time=""#)
            && lines[3].ends_with("/>"),
        "{xml}"
    );
    assert!(
        lines[4].starts_with(r#"    <testcase name="compile" classname="failing-step.build" time=""#),
        "{xml}"
    );
    assert_eq!(
        lines[5],
        r#"      <failure message="Command failed with exit code 3: echo compiling; exit 3">Command failed with exit code 3: echo compiling; exit 3</failure>"#
    );
    assert_eq!(lines[8], r#"      <skipped message="skipped"/>"#, "{xml}");
    assert_eq!(lines.last(), Some(&"</testsuites>"));
}

#[test]
fn quiet_shows_only_the_summary() {
    let repo = Project::test_repo();
    let run = repo.kici(&["run", "local", "--workflow", "hello-world", "--quiet"]);
    run.expect_code(0);
    assert!(!run.stdout.contains("Hello, World!"), "{}", run.stdout);
    assert!(!run.stdout.contains("running in"), "{}", run.stdout);
    assert!(run.stdout.starts_with("\n✓ hello-world  success"), "{}", run.stdout);
}

#[test]
fn debug_shows_debug_lines_the_event_and_the_trigger_decisions() {
    let project = project_with(
        "push({ branches: ['main'] })",
        "    job('show', { runsOn: 'linux', run: async ({ log, $ }) => { log.debug('a debug detail'); await $`echo KICI_DEBUG=\\${KICI_DEBUG:-}`; } }),",
    );
    let run = project.kici(&["run", "local"]);
    run.expect_code(0);
    assert!(!run.stdout.contains("a debug detail"), "{}", run.stdout);
    assert!(run.stdout.contains("[show › step-1] KICI_DEBUG=\n"), "{}", run.stdout);
    assert!(!run.stdout.contains("debug:"), "{}", run.stdout);

    let run = project.kici(&["run", "local", "--debug"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("[show › step-1] a debug detail\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("[show › step-1] KICI_DEBUG=true\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.starts_with("debug: event {\"type\":\"push\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("debug: workflow 'ci' runs: trigger 1 (push (branches: main)) matched\n"),
        "{}",
        run.stdout
    );
    let run = project.kici(&["run", "local", "--debug", "--branch", "dev"]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("debug: workflow 'ci' does not run (branches: expected main, got dev)\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn in_place_runs_in_the_working_tree() {
    let project = project_with(
        "push()",
        "    job('make', { runsOn: 'linux', run: async ({ $ }) => { await $`echo made > made.txt`; } }),",
    );
    project.kici(&["run", "local"]).expect_code(0);
    assert!(
        !project.exists("made.txt"),
        "a temporary checkout wrote into the working tree"
    );
    let run = project.kici(&["run", "local", "--in-place"]);
    run.expect_code(0);
    assert_eq!(project.read("made.txt"), "made\n");
    let root = std::fs::canonicalize(project.path()).unwrap();
    assert!(
        run.stdout
            .starts_with(&format!("running in {}\n", project.path().display()))
            || run.stdout.starts_with(&format!("running in {}\n", root.display())),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("checkout kept"), "{}", run.stdout);
}

#[test]
fn env_local_variables_reach_the_steps_and_env_flags_win() {
    let project = project_with(
        "push()",
        "    job('show', { runsOn: 'linux', run: async ({ $ }) => { await $`echo \"$GREETING / $TARGET\"`; } }),",
    );
    project.write(
        ".kici/.env.local",
        "# mine\nGREETING=\"hello from .env.local\"\nTARGET=file\n",
    );
    let run = project.kici(&["run", "local", "--env", "TARGET=cli"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("[show › step-1] hello from .env.local / cli\n"),
        "{}",
        run.stdout
    );
    project.write(".kici/.env.local", "oops\n");
    let run = project.kici(&["run", "local"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains(".kici/.env.local is not `KEY=value` lines"),
        "{}",
        run.stderr
    );
}
