//! Outputs across jobs: what a job's steps return reaches the jobs that need it, on other
//! agents, as `ctx.needs.<job>.result` (an ordered array for a matrix), `ctx.jobOutputs` and
//! `jobRef.result`. On SQLite, or PostgreSQL with `KICI_TEST_E2E_DATABASE=postgres`.

// The harness helpers fail the test the way its assertions do.
#![allow(clippy::unwrap_used)]

use kici_engine::status::RunStatus;
use kici_testkit::{Repo, Stack};

const FIXTURE: &str = "tests/e2e-repo";

const WORKFLOW: &str = r#"import { workflow, job, step, push } from '@kici-dev/sdk';

const build = job('build', {
  runsOn: 'producer',
  steps: [
    step('make', async () => ({ version: '1.2.3', files: 3 })),
    step('sign', async () => ({ signed: true })),
  ],
});

const lint = job('lint', { runsOn: 'producer', run: async () => ({ warnings: 2 }) });

const test = job('test', {
  runsOn: 'producer',
  matrix: { shard: ['a', 'b'] },
  run: async (ctx) => ({ shard: ctx.matrix.shard }),
});

const deploy = job('deploy', {
  runsOn: 'consumer',
  needs: [build, lint, test],
  run: async (ctx) => {
    console.log(`needs.build: ${ctx.needs.build.status} ${ctx.needs.build.result.make.version}`);
    console.log(`jobRef: ${build.result.make.version} signed=${build.result.sign.signed}`);
    console.log(`lint: ${ctx.jobOutputs('lint').warnings}`);
    console.log(`test: ${JSON.stringify(ctx.needs.test.map((t) => [t.name, t.status, t.result.shard]))}`);
  },
});

export default workflow('outputs', { on: push({ branches: 'outputs' }), jobs: [build, lint, test, deploy] });
"#;

#[tokio::test]
async fn what_a_job_returns_reaches_the_jobs_that_need_it_on_other_agents() {
    let mut stack = Stack::start().await;
    stack.start_agent("producer-1", &["producer"]).await;
    stack.start_agent("consumer-1", &["consumer"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(".kici/workflows/outputs.ts", WORKFLOW);
    repo.compile();
    repo.commit_and_push("outputs across jobs");
    stack.add_local_source("app", &repo).await;

    let run = stack.push_and_wait("app", &repo, "outputs").await;
    assert_eq!(run.run.status, RunStatus::Success, "{:?}", run.jobs);
    let deploy = run.jobs.iter().find(|j| j.job_name == "deploy").unwrap();
    assert_eq!(deploy.agent_id.as_deref(), Some("consumer-1"));
    let logs = stack.log_text(run.run.run_id.as_str()).await;
    for line in [
        "needs.build: success 1.2.3",
        "jobRef: 1.2.3 signed=true",
        "lint: 2",
        r#"test: [["test (a)","success","a"],["test (b)","success","b"]]"#,
    ] {
        assert!(logs.contains(line), "{line}: {logs}");
    }
}

const TOO_BIG: &str = r#"import { workflow, job, push } from '@kici-dev/sdk';

export default workflow('too-big', {
  on: push({ branches: 'too-big' }),
  jobs: [job('big', { runsOn: 'producer', run: async () => ({ blob: 'x'.repeat(2 * 1024 * 1024) }) })],
});
"#;

/// Outputs beyond the 1 MiB limit fail the step that returned them, with the limit in the text.
#[tokio::test]
async fn outputs_beyond_the_limit_fail_the_step() {
    let mut stack = Stack::start().await;
    stack.start_agent("producer-1", &["producer"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(".kici/workflows/too-big.ts", TOO_BIG);
    repo.compile();
    repo.commit_and_push("too big");
    stack.add_local_source("app", &repo).await;
    let run = stack.push_and_wait("app", &repo, "too-big").await;
    assert_eq!(run.run.status, RunStatus::Failed);
    let steps = run.jobs[0].steps.clone().unwrap();
    let error = steps.iter().find_map(|s| s.error_message.clone()).unwrap();
    assert!(error.contains("the limit is 1048576"), "{error}");
}

const LEAK: &str = r#"import { workflow, job, push } from '@kici-dev/sdk';

export default workflow('leak', {
  on: push({ branches: 'leak' }),
  jobs: [job('leak', {
    runsOn: 'producer',
    environment: 'staging',
    run: async ({ secrets }) => ({ token: await secrets.get('API_TOKEN') }),
  })],
});
"#;

/// Outputs are stored in the clear: a job returning a secret's value fails, and the value is
/// stored nowhere.
#[tokio::test]
async fn outputs_holding_a_secret_fail_the_job() {
    let mut stack = Stack::start().await;
    stack.start_agent("producer-1", &["producer"]).await;
    stack
        .cli("kici-admin", &["environment", "create", "staging"], &stack.data_dir())
        .expect_code(0);
    stack
        .cli_with_input(
            "kici-admin",
            &["secret", "set", "staging", "API_TOKEN"],
            &stack.data_dir(),
            "tok-7c1d9e2f",
        )
        .expect_code(0);
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(".kici/workflows/leak.ts", LEAK);
    repo.compile();
    repo.commit_and_push("a secret returned");
    stack.add_local_source("app", &repo).await;
    let run = stack.push_and_wait("app", &repo, "leak").await;
    assert_eq!(run.run.status, RunStatus::Failed);
    assert_eq!(
        run.jobs[0].error_message.as_deref(),
        Some(
            "Job outputs hold the value of secret 'API_TOKEN'; outputs are stored and passed on in the clear, so return a secret with ctx.setSecretOutput instead"
        )
    );
    // SQLite keeps recent writes in its write-ahead log.
    for file in ["kici.db", "kici.db-wal"] {
        let bytes = std::fs::read(stack.data_dir().join(file)).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&bytes).contains("tok-7c1d9e2f"), "{file}");
    }
}

/// `deploy` fails until `{marker}` exists; `build` returns a value no other run has.
const FLAKY_DEPLOY: &str = r#"import { workflow, job, push } from '@kici-dev/sdk';
import { existsSync } from 'node:fs';

const build = job('build', { runsOn: 'producer', run: async () => ({ stamp: `${process.pid}-${Date.now()}` }) });
const token = job('token', { runsOn: 'producer', run: async ({ setSecretOutput }) => setSecretOutput('DEPLOY_TOKEN', 'rerun-canary-5e6f') });
const lint = job('lint', { runsOn: 'producer', run: async () => ({ warnings: 0 }) });

const deploy = job('deploy', {
  runsOn: 'producer',
  needs: [build, token],
  run: async ({ needs, secrets }) => {
    console.log(`deploying ${needs.build.result.stamp} with ${await secrets.get('DEPLOY_TOKEN')}`);
    if (!existsSync('{marker}')) throw new Error('the target is down');
  },
});

export default workflow('flaky', { on: push({ branches: 'flaky' }), jobs: [build, token, lint, deploy] });
"#;

/// "Re-run failed jobs": the failed job runs again with the outputs of the jobs it needs from
/// the first run; a job whose secret outputs it needs runs again (they were erased with the
/// run); the others are reused, naming where they ran. A run with nothing failed is refused.
#[tokio::test]
async fn re_running_the_failed_jobs_reuses_the_successful_ones_and_their_outputs() {
    let mut stack = Stack::start().await;
    stack.start_agent("producer-1", &["producer"]).await;
    let marker = stack.dir.path().join("target-is-up");
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(
        ".kici/workflows/flaky.ts",
        &FLAKY_DEPLOY.replace("{marker}", marker.to_str().unwrap()),
    );
    repo.compile();
    repo.commit_and_push("a flaky deploy");
    stack.add_local_source("app", &repo).await;
    let first = stack.push_and_wait("app", &repo, "flaky").await;
    assert_eq!(first.run.status, RunStatus::Failed);
    let first_logs = stack.log_text(first.run.run_id.as_str()).await;
    let stamp = first_logs
        .lines()
        .find_map(|l| l.split("deploying ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("{first_logs}"))
        .to_string();

    std::fs::write(&marker, "up").unwrap();
    let rerun = stack.cli(
        "kici",
        &["runs", "rerun", "--failed", first.run.run_id.as_str()],
        stack.dir.path(),
    );
    let stdout = rerun.expect_code(0).stdout.clone();
    let new_run = stdout
        .strip_prefix(&format!("Failed jobs of run {} started again as ", first.run.run_id))
        .unwrap_or_else(|| panic!("{stdout}"))
        .trim()
        .to_string();
    let again = stack.wait_run(&new_run).await;
    assert_eq!(again.run.status, RunStatus::Success, "{:?}", again.jobs);
    assert_eq!(again.run.rerun_of.as_ref(), Some(&first.run.run_id));
    let reused: Vec<(&str, Option<&str>)> = again
        .jobs
        .iter()
        .map(|j| (j.job_name.as_str(), j.reused_from.as_ref().map(|r| r.job_id.as_str())))
        .collect();
    let original = |name: &str| first.jobs.iter().find(|j| j.job_name == name).unwrap().job_id.as_str();
    assert_eq!(
        reused,
        [
            ("build", Some(original("build"))),
            ("token", None),
            ("lint", Some(original("lint"))),
            ("deploy", None),
        ]
    );
    let build = &again.jobs[0];
    assert_eq!(
        (build.status, build.agent_id.as_ref()),
        (kici_engine::status::JobStatus::Success, None)
    );
    let logs = stack.log_text(&new_run).await;
    assert!(logs.contains(&format!("deploying {stamp} with ***")), "{logs}");
    assert!(!logs.contains("rerun-canary-5e6f"), "{logs}");

    // `kici runs show` says where a reused job ran.
    let show = stack.cli("kici", &["runs", "show", &new_run], stack.dir.path());
    let shown = show.expect_code(0).stdout.clone();
    assert!(
        shown.contains(&format!("reused from run {}", first.run.run_id)),
        "{shown}"
    );

    // Nothing failed: nothing to run again.
    let refused = stack.cli("kici", &["runs", "rerun", "--failed", &new_run], stack.dir.path());
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains(&format!(
            "no job of run {new_run} failed; there is nothing to re-run on its own (re-run the whole run instead)"
        )),
        "{}",
        refused.stderr
    );
}
