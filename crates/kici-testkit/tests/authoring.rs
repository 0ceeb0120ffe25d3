//! The authoring surface through the orchestrator and agents: step hooks in the spec's order,
//! `waitForStep` whose value is the step's outputs and reaches a job on another agent, and
//! `retryIf`. On SQLite, or PostgreSQL with `KICI_TEST_E2E_DATABASE=postgres`.

// The harness helpers fail the test the way its assertions do.
#![allow(clippy::unwrap_used)]

use kici_engine::status::RunStatus;
use kici_testkit::{Repo, Stack};

const FIXTURE: &str = "tests/e2e-repo";

const WORKFLOW: &str = r#"import { workflow, job, step, push, beforeStep, afterStep, onSuccess, cleanup, waitForStep } from '@kici-dev/sdk';
import fs from 'node:fs';

const produce = job('produce', {
  runsOn: 'producer',
  beforeStep: beforeStep(async ({ outcome }) => { console.log(`hook before ${outcome.step}`); }),
  afterStep: afterStep(async ({ outcome }) => { console.log(`hook after ${outcome.step} ${outcome.status}`); }),
  onSuccess: onSuccess(async () => { console.log('hook onSuccess'); }),
  cleanup: cleanup(async () => { console.log('hook cleanup'); }),
  steps: [
    step('start', async () => {
      setTimeout(() => fs.writeFileSync('marker.json', JSON.stringify({ size: 42 })), 300);
      console.log('step start');
    }),
    waitForStep('wait-for-marker', {
      intervalMs: 100,
      timeoutMs: 10000,
      check: () => fs.existsSync('marker.json') && JSON.parse(fs.readFileSync('marker.json', 'utf8')),
    }),
    step('flaky', {
      retry: 3,
      retryIf: (error) => /transient/.test(error.message),
      run: async () => {
        const tries = Number(process.env.TRIES ?? '0') + 1;
        process.env.TRIES = String(tries);
        if (tries < 2) throw new Error('transient failure');
        console.log(`flaky passed on try ${tries}`);
      },
    }),
  ],
});

const consume = job('consume', {
  runsOn: 'consumer',
  needs: [produce],
  run: async (ctx) => { console.log(`marker size ${ctx.needs.produce.result['wait-for-marker'].size}`); },
});

export default workflow('authoring', { on: push({ branches: 'authoring' }), jobs: [produce, consume] });
"#;

#[tokio::test]
async fn step_hooks_wait_for_step_and_retry_if_run_through_the_orchestrator() {
    let mut stack = Stack::start().await;
    stack.start_agent("producer-1", &["producer"]).await;
    stack.start_agent("consumer-1", &["consumer"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(".kici/workflows/authoring.ts", WORKFLOW);
    repo.compile();
    let lock: serde_json::Value = serde_json::from_str(&repo.read(".kici/kici.lock.json")).unwrap();
    let produce = &lock["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "authoring")
        .unwrap()["jobs"][0];
    assert_eq!(
        (produce["hasBeforeStep"].as_bool(), produce["hasAfterStep"].as_bool()),
        (Some(true), Some(true))
    );
    repo.commit_and_push("hooks and waitForStep");
    stack.add_local_source("app", &repo).await;

    let run = stack.push_and_wait("app", &repo, "authoring").await;
    assert_eq!(run.run.status, RunStatus::Success, "{:?}", run.jobs);
    // Hook rows take the next index as they run: their order is the order they ran in.
    let produce = run.jobs.iter().find(|j| j.job_name == "produce").unwrap();
    let steps = produce.steps.clone().unwrap();
    let hooks: Vec<(&str, &str)> = steps
        .iter()
        .filter(|s| s.step_type.starts_with("hook:"))
        .map(|s| (s.step_name.as_str(), s.step_type.as_str()))
        .collect();
    assert_eq!(
        hooks,
        [
            ("beforeStep:start", "hook:beforeStep"),
            ("afterStep:start", "hook:afterStep"),
            ("beforeStep:wait-for-marker", "hook:beforeStep"),
            ("afterStep:wait-for-marker", "hook:afterStep"),
            ("beforeStep:flaky", "hook:beforeStep"),
            ("afterStep:flaky", "hook:afterStep"),
            ("onSuccess", "hook:onSuccess"),
            ("cleanup", "hook:cleanup"),
        ]
    );
    // Each step ran between its two hooks.
    let started = |name: &str| steps.iter().find(|s| s.step_name == name).unwrap().started_at.unwrap();
    for step in ["start", "wait-for-marker", "flaky"] {
        assert!(started(&format!("beforeStep:{step}")) <= started(step), "{step}");
        assert!(started(step) <= started(&format!("afterStep:{step}")), "{step}");
    }
    let flaky = steps.iter().find(|s| s.step_name == "flaky").unwrap();
    assert_eq!(flaky.status, kici_engine::status::StepStatus::Success);
    let logs = stack.log_text(run.run.run_id.as_str()).await;
    assert!(logs.contains("marker size 42"), "{logs}");
    assert!(
        logs.contains("hook after flaky success") && logs.contains("flaky passed on try 2"),
        "{logs}"
    );
}

const PICK: &str = r#"import { workflow, job, push } from '@kici-dev/sdk';

const any = { labels: ['spread'], pick: 'any' };
const first = job('first', { runsOn: any, run: async () => {} });
const second = job('second', { runsOn: any, needs: [first], run: async () => {} });
const third = job('third', { runsOn: 'spread', needs: [second], run: async () => {} });

export default workflow('pick', { on: push({ branches: 'pick' }), jobs: [first, second, third] });
"#;

/// `pick: 'any'` spreads jobs over the fitting agents (the least used first); the default
/// keeps to the lowest agent id.
#[tokio::test]
async fn pick_any_spreads_jobs_over_the_fitting_agents() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["spread"]).await;
    stack.start_agent("agent-2", &["spread"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(".kici/workflows/pick.ts", PICK);
    repo.compile();
    repo.commit_and_push("pick any");
    stack.add_local_source("app", &repo).await;
    let run = stack.push_and_wait("app", &repo, "pick").await;
    assert_eq!(run.run.status, RunStatus::Success, "{:?}", run.jobs);
    let agent = |name: &str| {
        run.jobs
            .iter()
            .find(|j| j.job_name == name)
            .and_then(|j| j.agent_id.clone())
            .unwrap()
    };
    assert_eq!(
        (
            agent("first").as_str(),
            agent("second").as_str(),
            agent("third").as_str()
        ),
        ("agent-1", "agent-2", "agent-1")
    );
}

const TIMEOUT: &str = r#"import { workflow, job, push, onCancel } from '@kici-dev/sdk';

export default workflow('deadline', {
  on: push({ branches: 'deadline' }),
  timeout: 2000,
  jobs: [
    job('hang', {
      runsOn: 'linux',
      onCancel: onCancel(async () => { console.log('hook onCancel after the deadline'); }),
      run: async ({ $ }) => { console.log('hanging'); await $`sleep 120`; },
    }),
  ],
});
"#;

/// A run that outlives its workflow `timeout` is cancelled by the orchestrator: the running
/// job's `onCancel` hook runs and the reason says which timeout it was.
#[tokio::test]
async fn a_workflow_timeout_cancels_the_run_and_its_hooks_run() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(".kici/workflows/deadline.ts", TIMEOUT);
    repo.compile();
    repo.commit_and_push("workflow timeout");
    stack.add_local_source("app", &repo).await;
    let run = stack.push_and_wait("app", &repo, "deadline").await;
    assert_eq!(run.run.status, RunStatus::Cancelled, "{:?}", run.jobs);
    let reason = "workflow_timeout: workflow exceeded its timeout of 2000ms";
    assert_eq!(run.run.failure_reason.as_deref(), Some(reason));
    assert_eq!(run.jobs[0].status, kici_engine::status::JobStatus::Cancelled);
    let logs = stack.log_text(run.run.run_id.as_str()).await;
    assert!(
        logs.contains("hanging") && logs.contains("hook onCancel after the deadline"),
        "{logs}"
    );
}

const FAN_OUT: &str = r#"import { workflow, job, push } from '@kici-dev/sdk';

const window = job('window', {
  runsOn: 'linux',
  matrix: { n: ['1', '2', '3'] },
  maxParallel: 1,
  run: async ({ matrix }) => { console.log(`window ${matrix.n}`); },
});

const fast = job('fast', {
  runsOn: 'linux',
  needs: [window],
  matrix: { n: ['bad', 'slow-1', 'slow-2'] },
  failFast: true,
  run: async ({ $, matrix }) => {
    if (matrix.n === 'bad') throw new Error('bad matrix job');
    console.log(`started ${matrix.n}`);
    await $`sleep 120`;
  },
});

export default workflow('fan-out', { on: push({ branches: 'fan-out' }), jobs: [window, fast] });
"#;

/// `maxParallel: 1` runs a matrix one job at a time although two agents fit; `failFast`
/// cancels the other jobs of a matrix when one fails, saying which.
#[tokio::test]
async fn max_parallel_and_fail_fast_shape_a_matrix() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    stack.start_agent("agent-2", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(".kici/workflows/fan-out.ts", FAN_OUT);
    repo.compile();
    repo.commit_and_push("fan out");
    stack.add_local_source("app", &repo).await;
    let run = stack.push_and_wait("app", &repo, "fan-out").await;
    assert_eq!(run.run.status, RunStatus::Failed, "{:?}", run.jobs);

    let mut window: Vec<_> = run
        .jobs
        .iter()
        .filter(|j| j.base_job_name == "window" && j.job_name != "window")
        .collect();
    window.sort_by_key(|j| j.started_at);
    assert_eq!(window.len(), 3, "{:?}", run.jobs);
    for pair in window.windows(2) {
        assert_eq!(pair[0].status, kici_engine::status::JobStatus::Success);
        assert!(
            pair[0].completed_at.unwrap() <= pair[1].started_at.unwrap(),
            "{} and {} overlapped",
            pair[0].job_name,
            pair[1].job_name
        );
    }

    let fast: Vec<_> = run
        .jobs
        .iter()
        .filter(|j| j.base_job_name == "fast" && j.job_name != "fast")
        .collect();
    let status = |name: &str| fast.iter().find(|j| j.job_name == name).unwrap();
    assert_eq!(status("fast (bad)").status, kici_engine::status::JobStatus::Failed);
    for name in ["fast (slow-1)", "fast (slow-2)"] {
        let job = status(name);
        assert_eq!(job.status, kici_engine::status::JobStatus::Cancelled, "{job:?}");
        assert_eq!(
            job.error_message.as_deref(),
            Some("Cancelled because matrix job 'fast (bad)' failed (failFast)"),
            "{job:?}"
        );
    }
}

/// A deploy workflow whose concurrency group is the branch. The first run of the test
/// creates `first`, logs and waits for `release`; later runs log and finish.
fn concurrency_workflow(dir: &std::path::Path, cancel_in_progress: bool) -> String {
    let first = dir.join("first").display().to_string();
    let release = dir.join("release").display().to_string();
    format!(
        r#"import {{ workflow, job, push }} from '@kici-dev/sdk';
import fs from 'node:fs';

export default workflow('deploy', {{
  on: push({{ branches: 'deploy-*' }}),
  concurrency: {{ group: ({{ branch }}) => `deploy-${{branch}}`, cancelInProgress: {cancel_in_progress} }},
  jobs: [
    job('ship', {{
      runsOn: 'linux',
      run: async ({{ $ }}) => {{
        if (fs.existsSync('{first}')) {{ console.log('later run shipped'); return; }}
        fs.writeFileSync('{first}', '');
        console.log('first run shipping');
        while (!fs.existsSync('{release}')) await $`sleep 0.1`;
        console.log('first run released');
      }},
    }}),
  ],
}});
"#
    )
}

/// Two agents, the deploy workflow and a run on `deploy-main` shipping, then a second push to
/// that branch: the stack and the two runs' ids.
async fn first_run_shipping(cancel_in_progress: bool) -> (Stack, String, String) {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    stack.start_agent("agent-2", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    let workflow = concurrency_workflow(stack.dir.path(), cancel_in_progress);
    repo.write(".kici/workflows/deploy.ts", &workflow);
    repo.compile();
    repo.commit_and_push("concurrency");
    stack.add_local_source("app", &repo).await;
    let first = stack.push("app", &repo, "deploy-main").await.remove(0);
    stack
        .wait_for("the first run to ship", || async {
            stack
                .log_text(&first)
                .await
                .contains("first run shipping")
                .then_some(())
        })
        .await;
    let second = stack.push("app", &repo, "deploy-main").await.remove(0);
    (stack, first, second)
}

/// `cancelInProgress` (the default): a newer run of the group cancels the one in progress,
/// whose reason names the group, and goes on.
#[tokio::test]
async fn a_newer_run_supersedes_the_one_in_progress_in_its_concurrency_group() {
    let (stack, first, second) = first_run_shipping(true).await;

    let second = stack.wait_run(&second).await;
    assert_eq!(second.run.status, RunStatus::Success, "{:?}", second.jobs);
    let first = stack.wait_run(&first).await;
    assert_eq!(first.run.status, RunStatus::Cancelled, "{:?}", first.jobs);
    let reason = "Superseded by run in concurrency group 'deploy-deploy-main'";
    assert_eq!(first.run.failure_reason.as_deref(), Some(reason));
    assert_eq!(first.jobs[0].error_message.as_deref(), Some(reason));
    assert!(
        stack
            .log_text(second.run.run_id.as_str())
            .await
            .contains("later run shipped")
    );
}

/// `cancelInProgress: false`: the newer run waits for its turn (its log says so) and goes on
/// when the run ahead of it completes.
#[tokio::test]
async fn a_run_queued_in_its_concurrency_group_goes_on_when_the_one_ahead_completes() {
    let (stack, first, second) = first_run_shipping(false).await;
    stack
        .wait_for("the second run to wait for its turn", || async {
            let logs = stack.log_text(&second).await;
            logs.contains("Queued in concurrency group 'deploy-deploy-main'")
                .then_some(())
        })
        .await;
    assert!(!stack.log_text(&second).await.contains("later run shipped"));
    std::fs::write(stack.dir.path().join("release"), "").unwrap();

    let first = stack.wait_run(&first).await;
    assert_eq!(first.run.status, RunStatus::Success, "{:?}", first.jobs);
    let second = stack.wait_run(&second).await;
    assert_eq!(second.run.status, RunStatus::Success, "{:?}", second.jobs);
    assert!(
        stack
            .log_text(second.run.run_id.as_str())
            .await
            .contains("later run shipped")
    );
}

const GRACE: &str = r#"import { workflow, job, push, onCancel } from '@kici-dev/sdk';

export default workflow('grace', {
  on: push({ branches: 'grace' }),
  jobs: [
    job('trap', {
      runsOn: 'linux',
      gracePeriod: 2,
      onCancel: onCancel(async () => { console.log('hook onCancel after the trap'); }),
      run: async ({ $ }) => {
        await $`bash -c 'trap "echo got TERM; sleep 0.5; echo cleaned up; exit 143" TERM; echo trapping; sleep 120 & wait'`;
      },
    }),
  ],
});
"#;

/// A cancel gives the step's commands the job's `gracePeriod`: a step that traps SIGTERM
/// cleans up, then the job's `onCancel` hook runs and the job ends cancelled.
#[tokio::test]
async fn a_cancelled_step_traps_sigterm_within_its_grace_period() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(".kici/workflows/grace.ts", GRACE);
    repo.compile();
    repo.commit_and_push("grace period");
    stack.add_local_source("app", &repo).await;
    let run_id = stack.push("app", &repo, "grace").await.remove(0);
    stack
        .wait_for("the step to set its trap", || async {
            stack.log_text(&run_id).await.contains("trapping").then_some(())
        })
        .await;
    stack
        .cli("kici-admin", &["runs", "cancel", &run_id], stack.dir.path())
        .expect_code(0);
    let run = stack.wait_run(&run_id).await;
    assert_eq!(run.run.status, RunStatus::Cancelled, "{:?}", run.jobs);
    let logs = stack.log_text(&run_id).await;
    let at = |text: &str| logs.find(text).unwrap_or_else(|| panic!("no {text:?} in {logs}"));
    assert!(at("got TERM") < at("cleaned up") && at("cleaned up") < at("hook onCancel after the trap"));
}

const RULES_AND_HOOKS: &str = r#"import { workflow, job, push, rule, onSuccess, cleanup } from '@kici-dev/sdk';

export default workflow('guarded', {
  on: push({ branches: ['guarded', 'unguarded'] }),
  rules: [rule('only the guarded branch', ({ event }) => event.targetBranch === 'guarded')],
  onSuccess: onSuccess(async () => { console.log('workflow onSuccess'); }),
  cleanup: cleanup(async () => { console.log('workflow cleanup'); }),
  jobs: [
    job('build', {
      runsOn: 'linux',
      onSuccess: onSuccess(async () => { console.log('job onSuccess'); }),
      cleanup: cleanup(async () => { console.log('job cleanup'); }),
      run: async () => { console.log('built'); },
    }),
  ],
});
"#;

/// Workflow rules skip every job of a run, and the run says which rule; where they pass, the
/// workflow's hooks run after the job's own.
#[tokio::test]
async fn workflow_rules_skip_the_run_and_workflow_hooks_follow_the_jobs_hooks() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(".kici/workflows/guarded.ts", RULES_AND_HOOKS);
    repo.compile();
    repo.commit_and_push("workflow rules and hooks");
    stack.add_local_source("app", &repo).await;

    let skipped = stack.push_and_wait("app", &repo, "unguarded").await;
    assert_eq!(
        skipped.jobs[0].status,
        kici_engine::status::JobStatus::Skipped,
        "{:?}",
        skipped.jobs
    );
    let reason = "Workflow skipped by rule 'only the guarded branch'";
    assert_eq!(skipped.run.failure_reason.as_deref(), Some(reason));
    assert_eq!(skipped.jobs[0].error_message.as_deref(), Some(reason));
    assert!(!stack.log_text(skipped.run.run_id.as_str()).await.contains("built"));

    let ran = stack.push_and_wait("app", &repo, "guarded").await;
    assert_eq!(ran.run.status, RunStatus::Success, "{:?}", ran.jobs);
    let hooks: Vec<(String, String)> = ran.jobs[0]
        .steps
        .clone()
        .unwrap()
        .into_iter()
        .filter(|s| s.step_type.starts_with("hook:"))
        .map(|s| (s.step_name, s.step_type))
        .collect();
    let expected = [
        ("onSuccess", "hook:onSuccess"),
        ("cleanup", "hook:cleanup"),
        ("workflow:onSuccess", "hook:onSuccess"),
        ("workflow:cleanup", "hook:cleanup"),
    ]
    .map(|(name, kind)| (name.to_string(), kind.to_string()));
    assert_eq!(hooks, expected);
}

const DYNAMIC_GROUP: &str = r#"import { workflow, job, push, dynamicJob, dynamicGroup } from '@kici-dev/sdk';

const pkg = (name) => job(`pkg-${name}`, { runsOn: 'linux', run: async () => { console.log(`built ${name}`); } });

export default workflow('grouped-packages', {
  on: push({ branches: 'grouped' }),
  jobs: [
    dynamicJob('packages', async () => [pkg('a'), pkg('b')]),
    dynamicJob('nothing', async () => []),
    job('publish', {
      runsOn: 'linux',
      needs: [dynamicGroup('packages'), dynamicGroup('nothing')],
      run: async () => { console.log('published'); },
    }),
  ],
});
"#;

/// `dynamicGroup()` waits for every job a group's generator produced (and a group that
/// produced none does not hold anything up).
#[tokio::test]
async fn a_job_that_needs_a_dynamic_group_runs_after_all_its_jobs() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    stack.start_agent("agent-2", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(".kici/workflows/grouped.ts", DYNAMIC_GROUP);
    repo.compile();
    repo.commit_and_push("dynamic group");
    stack.add_local_source("app", &repo).await;
    let run = stack.push_and_wait("app", &repo, "grouped").await;
    assert_eq!(run.run.status, RunStatus::Success, "{:?}", run.jobs);
    let job = |name: &str| run.jobs.iter().find(|j| j.job_name == name).unwrap();
    let publish = job("publish");
    for built in ["pkg-a", "pkg-b"] {
        assert!(
            job(built).completed_at.unwrap() <= publish.started_at.unwrap(),
            "{built} finished after publish started"
        );
    }
    assert!(stack.log_text(run.run.run_id.as_str()).await.contains("published"));
}

/// A job of group `deploy` that, in the test's first run, creates `first` and waits for
/// `release`; later runs finish at once.
fn job_group_workflow(dir: &std::path::Path) -> String {
    let first = dir.join("first").display().to_string();
    let release = dir.join("release").display().to_string();
    format!(
        r#"import {{ workflow, job, push }} from '@kici-dev/sdk';
import fs from 'node:fs';

export default workflow('serial', {{
  on: push({{ branches: 'serial' }}),
  jobs: [
    job('deploy', {{
      runsOn: 'linux',
      concurrencyGroup: 'deploy',
      run: async ({{ $ }}) => {{
        if (fs.existsSync('{first}')) {{ console.log('later deploy'); return; }}
        fs.writeFileSync('{first}', '');
        console.log('first deploy started');
        while (!fs.existsSync('{release}')) await $`sleep 0.1`;
      }},
    }}),
  ],
}});
"#
    )
}

/// Jobs of one `concurrencyGroup` run one at a time across runs: the newer one stays queued
/// although an agent is free, and starts once the older one finished.
#[tokio::test]
async fn jobs_of_one_concurrency_group_run_one_at_a_time_across_runs() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    stack.start_agent("agent-2", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(".kici/workflows/serial.ts", &job_group_workflow(stack.dir.path()));
    repo.compile();
    repo.commit_and_push("job concurrency group");
    stack.add_local_source("app", &repo).await;
    let first = stack.push("app", &repo, "serial").await.remove(0);
    stack
        .wait_for("the first deploy to start", || async {
            stack
                .log_text(&first)
                .await
                .contains("first deploy started")
                .then_some(())
        })
        .await;
    let second = stack.push("app", &repo, "serial").await.remove(0);
    // Queued with a free agent: it waits for its group, not for an agent.
    stack
        .wait_for("the dispatcher to hold the second deploy back", || async {
            let log = stack.orchestrator.log_text();
            log.lines()
                .any(|line| line.contains("job waits for a job of its concurrency group") && line.contains(&second))
                .then_some(())
        })
        .await;
    assert_eq!(
        stack.detail(&second).await.jobs[0].status,
        kici_engine::status::JobStatus::Queued
    );
    std::fs::write(stack.dir.path().join("release"), "").unwrap();

    let first = stack.wait_run(&first).await;
    let second = stack.wait_run(&second).await;
    assert_eq!(
        (first.run.status, second.run.status),
        (RunStatus::Success, RunStatus::Success)
    );
    assert!(first.jobs[0].completed_at.unwrap() <= second.jobs[0].started_at.unwrap());
    assert!(
        stack
            .log_text(second.run.run_id.as_str())
            .await
            .contains("later deploy")
    );
}

/// A queue-mode deploy workflow whose run has a second root job (`note`) and a job after the
/// deploy (`verify`); the test's first run waits in `ship` until `release` exists.
fn queued_run_workflow(dir: &std::path::Path) -> String {
    let first = dir.join("first").display().to_string();
    let release = dir.join("release").display().to_string();
    format!(
        r#"import {{ workflow, job, push }} from '@kici-dev/sdk';
import fs from 'node:fs';

const ship = job('ship', {{
  runsOn: 'linux',
  run: async ({{ $ }}) => {{
    if (fs.existsSync('{first}')) return;
    fs.writeFileSync('{first}', '');
    console.log('first run shipping');
    while (!fs.existsSync('{release}')) await $`sleep 0.1`;
  }},
}});

export default workflow('queued', {{
  on: push({{ branches: 'queued' }}),
  concurrency: {{ group: () => 'queued', cancelInProgress: false }},
  jobs: [
    ship,
    job('note', {{ runsOn: 'linux', run: async () => {{ console.log('noted'); }} }}),
    job('verify', {{ runsOn: 'linux', needs: [ship], run: async () => {{ console.log('verified'); }} }}),
  ],
}});
"#
    )
}

/// A run waiting for its turn gets no further agents: with two agents, the waiting run's second
/// job stays queued, so the run ahead of it gets the agent its last job needs (else both runs
/// would wait for the concurrency wait timeout).
#[tokio::test]
async fn a_run_waiting_in_its_concurrency_group_leaves_free_agents_to_the_run_ahead() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    stack.start_agent("agent-2", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(".kici/workflows/queued.ts", &queued_run_workflow(stack.dir.path()));
    repo.compile();
    repo.commit_and_push("queued run");
    stack.add_local_source("app", &repo).await;
    let first = stack.push("app", &repo, "queued").await.remove(0);
    stack
        .wait_for("the first run to ship and note", || async {
            let detail = stack.detail(&first).await;
            let note = detail.jobs.iter().find(|j| j.job_name == "note")?;
            (note.status == kici_engine::status::JobStatus::Success).then_some(())
        })
        .await;
    let second = stack.push("app", &repo, "queued").await.remove(0);
    stack
        .wait_for("the second run to wait for its turn", || async {
            let logs = stack.log_text(&second).await;
            logs.contains("Queued in concurrency group 'queued'").then_some(())
        })
        .await;
    std::fs::write(stack.dir.path().join("release"), "").unwrap();

    let first = stack.wait_run(&first).await;
    assert_eq!(first.run.status, RunStatus::Success, "{:?}", first.jobs);
    let second = stack.wait_run(&second).await;
    assert_eq!(second.run.status, RunStatus::Success, "{:?}", second.jobs);
}

const LONG_GROUP: &str = r#"import { workflow, job, push } from '@kici-dev/sdk';

export default workflow('long-group', {
  on: push({ branches: 'long-group' }),
  jobs: [job('long', { runsOn: 'linux', concurrencyGroup: 'g'.repeat(201), run: async () => {} })],
});
"#;

/// A concurrency group key is stored with every dispatch and logged while a job waits, so a
/// key longer than 200 characters fails the job, saying why.
#[tokio::test]
async fn a_concurrency_group_key_longer_than_200_characters_fails_the_job() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(".kici/workflows/long-group.ts", LONG_GROUP);
    repo.compile();
    repo.commit_and_push("long group");
    stack.add_local_source("app", &repo).await;
    let run = stack.push_and_wait("app", &repo, "long-group").await;
    assert_eq!(run.run.status, RunStatus::Failed, "{:?}", run.jobs);
    assert_eq!(
        run.jobs[0].error_message.as_deref(),
        Some(
            "concurrencyGroup of job 'long': the concurrency group key is 201 characters; at most 200 are allowed (return a shorter key)"
        )
    );
}
