//! Secrets, variables, environments and approvals end to end, through `kici-admin`, `kici` and
//! real jobs. On SQLite, or PostgreSQL with `KICI_TEST_E2E_DATABASE=postgres`.

// The harness helpers fail the test the way its assertions do.
#![allow(clippy::unwrap_used)]

use kici_testkit::{CliOutput, Stack};
use serde_json::{Value, json};

const CANARY: &str = "canary-9f8e7d6c5b4a";

fn admin(stack: &Stack, args: &[&str]) -> CliOutput {
    stack.cli("kici-admin", args, &stack.data_dir())
}

fn orchestrator_log(stack: &Stack) -> String {
    std::fs::read_to_string(stack.data_dir().parent().unwrap().join("orchestrator.log")).unwrap()
}

#[tokio::test]
async fn secrets_variables_and_environments_are_managed_with_kici_admin_and_audited() {
    let stack = Stack::start().await;
    let cwd = stack.data_dir();

    let set = stack.cli_with_input(
        "kici-admin",
        &["secret", "set", "production", "DEPLOY_KEY"],
        &cwd,
        &format!("{CANARY}\n"),
    );
    set.expect_code(0);
    assert_eq!(set.stdout, "Secret DEPLOY_KEY in scope production created.\n");
    let again = stack.cli_with_input(
        "kici-admin",
        &["secret", "set", "production", "DEPLOY_KEY"],
        &cwd,
        CANARY,
    );
    assert_eq!(
        again.expect_code(0).stdout,
        "Secret DEPLOY_KEY in scope production updated.\n"
    );
    let empty = stack.cli_with_input("kici-admin", &["secret", "set", "production", "EMPTY"], &cwd, "");
    assert!(
        empty.expect_code(1).stderr.contains("the value of EMPTY is empty"),
        "{}",
        empty.stderr
    );
    let refused = admin(&stack, &["secret", "set", "production", "DEPLOY_KEY", CANARY]);
    refused.expect_code(1);
    assert!(
        refused.stderr.starts_with("Error: unexpected argument"),
        "{}",
        refused.stderr
    );

    let list = admin(&stack, &["secret", "list"]);
    assert!(
        list.expect_code(0).stdout.contains("production  DEPLOY_KEY"),
        "{}",
        list.stdout
    );
    assert!(!list.stdout.contains(CANARY));
    let hidden = admin(&stack, &["secret", "get", "production", "DEPLOY_KEY"]);
    assert!(
        hidden.expect_code(0).stdout.contains("Value:   (hidden; add --reveal"),
        "{}",
        hidden.stdout
    );
    assert!(!hidden.stdout.contains(CANARY));
    let revealed = admin(&stack, &["secret", "get", "production", "DEPLOY_KEY", "--reveal"]);
    assert_eq!(revealed.expect_code(0).stdout, format!("{CANARY}\n"));
    let missing = admin(&stack, &["secret", "get", "production", "NOPE", "--reveal"]);
    assert!(
        missing
            .expect_code(1)
            .stderr
            .contains("no secret `NOPE` in scope `production`"),
        "{}",
        missing.stderr
    );

    // A read-only token lists but cannot reveal.
    let auditor = admin(
        &stack,
        &["token", "create", "--label", "auditor-1", "--role", "auditor"],
    );
    let token = auditor
        .expect_code(0)
        .stdout
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("Token created: ")
        .to_string();
    let denied = stack.cli(
        "kici-admin",
        &["-t", &token, "secret", "get", "production", "DEPLOY_KEY", "--reveal"],
        &cwd,
    );
    assert!(
        denied
            .expect_code(1)
            .stderr
            .contains("role auditor, which may only read"),
        "{}",
        denied.stderr
    );
    stack
        .cli("kici-admin", &["-t", &token, "secret", "list"], &cwd)
        .expect_code(0);

    admin(&stack, &["variable", "set", "production", "REGION", "eu-west"]).expect_code(0);
    assert_eq!(
        admin(&stack, &["variable", "get", "production", "REGION"])
            .expect_code(0)
            .stdout,
        "eu-west\n"
    );
    let bad = admin(&stack, &["variable", "set", "production", "1REGION", "x"]);
    assert!(
        bad.expect_code(1)
            .stderr
            .contains("must be an environment variable name"),
        "{}",
        bad.stderr
    );

    let created = admin(
        &stack,
        &[
            "environment",
            "create",
            "production",
            "--branch",
            "main",
            "--reviewer",
            "user:alice",
            "--wait-timer",
            "2",
        ],
    );
    assert!(
        created
            .expect_code(0)
            .stdout
            .starts_with("Environment production created.\nName:         production\n"),
        "{}",
        created.stdout
    );
    assert!(
        created.stdout.contains("Reviewers:    user:alice\n"),
        "{}",
        created.stdout
    );
    let duplicate = admin(&stack, &["environment", "create", "production"]);
    assert!(
        duplicate
            .expect_code(1)
            .stderr
            .contains("environment `production` exists already"),
        "{}",
        duplicate.stderr
    );
    let bad_reviewer = admin(&stack, &["environment", "create", "staging", "--reviewer", "alice"]);
    assert!(
        bad_reviewer
            .expect_code(1)
            .stderr
            .contains("is not user:<name> or team:<name>"),
        "{}",
        bad_reviewer.stderr
    );
    let updated = admin(
        &stack,
        &["environment", "update", "production", "--disable", "--clear-reviewers"],
    );
    assert!(
        updated.expect_code(0).stdout.contains("Status:       disabled\n"),
        "{}",
        updated.stdout
    );
    assert!(updated.stdout.contains("Reviewers:    (none)\n"), "{}", updated.stdout);
    let shown = admin(&stack, &["environment", "show", "production", "--json"]);
    let shown: Value = serde_json::from_str(&shown.expect_code(0).stdout).unwrap();
    assert_eq!(shown["branches"], json!(["main"]));
    assert_eq!(shown["scopes"], json!(["production"]));
    assert_eq!(shown["waitTimerSeconds"], json!(2));
    admin(&stack, &["environment", "delete", "production"]).expect_code(0);
    let gone = admin(&stack, &["environment", "show", "production"]);
    assert!(
        gone.expect_code(1).stderr.contains("no environment `production`"),
        "{}",
        gone.stderr
    );

    admin(&stack, &["secret", "delete", "production", "DEPLOY_KEY"]).expect_code(0);
    let audit = admin(&stack, &["audit", "--json"]);
    let audit: Value = serde_json::from_str(&audit.expect_code(0).stdout).unwrap();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "secret.delete",
            "environment.delete",
            "environment.update",
            "environment.create",
            "variable.set",
            "secret.reveal",
            "secret.set",
            "secret.set"
        ]
    );
    let table = admin(&stack, &["audit", "--action", "secret.reveal"]);
    assert!(
        table
            .expect_code(0)
            .stdout
            .contains("secret.reveal  production  DEPLOY_KEY  success"),
        "{}",
        table.stdout
    );

    assert!(
        !orchestrator_log(&stack).contains(CANARY),
        "the secret reached the orchestrator's log"
    );
}

const DEPLOY_WORKFLOW: &str = r#"import { workflow, job, step, push } from '@kici-dev/sdk';

export default workflow('deploy', {
  on: push({ branches: ['main', 'feature-*'] }),
  jobs: [
    job('deploy', {
      runsOn: 'linux',
      environment: (event) => (event.targetBranch === 'main' ? 'production' : 'staging'),
      env: (event) => ({ DEPLOY_TARGET: event.targetBranch === 'main' ? 'prod' : 'stg' }),
      secrets: ['DEPLOY_KEY'],
      steps: [
        step('deploy', async ({ $, secrets, environment }) => {
          await $`echo "Deploying to $DEPLOY_TARGET"`;
          console.log(`environment ${environment} region ${process.env.REGION}`);
          const key = await secrets.get('DEPLOY_KEY');
          await $`echo ${key}`;
          console.log(JSON.stringify({ key }));
          console.log(Buffer.from(key).toString('base64'));
          console.log(key.slice(0, 9));
          console.log(key.slice(9));
          console.log(encodeURIComponent(`k=${key}`));
        }),
      ],
    }),
  ],
});
"#;

fn deploy_repo(stack: &Stack) -> kici_testkit::Repo {
    let repo = kici_testkit::Repo::from_fixture(stack.data_dir().parent().unwrap(), "tests/e2e-repo");
    repo.write(".kici/workflows/deploy.ts", DEPLOY_WORKFLOW);
    repo.compile();
    repo.commit_and_push("deploy workflow");
    repo
}

/// Waits until the run's first job is in `status`; the run's detail then.
async fn wait_job_status(
    stack: &Stack,
    run_id: &str,
    status: kici_engine::status::JobStatus,
) -> kici_engine::api::RunDetail {
    stack
        .wait_for(&format!("the job to be {status}"), || async {
            let detail = stack.detail(run_id).await;
            (detail.jobs.first().map(|j| j.status) == Some(status)).then_some(detail)
        })
        .await
}

fn step_lines(logs: &kici_engine::api::RunLogs) -> String {
    serde_json::to_string(logs).unwrap()
}

#[tokio::test]
async fn a_deploy_job_gets_its_environment_env_and_secrets_and_production_waits_for_approval() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    let cwd = stack.data_dir();
    for (scope, value) in [("production", CANARY), ("staging", "staging-canary-0a1b2c3d")] {
        stack
            .cli_with_input("kici-admin", &["secret", "set", scope, "DEPLOY_KEY"], &cwd, value)
            .expect_code(0);
    }
    admin(&stack, &["variable", "set", "staging", "REGION", "eu-west"]).expect_code(0);
    admin(&stack, &["environment", "create", "staging"]).expect_code(0);
    admin(
        &stack,
        &[
            "environment",
            "create",
            "production",
            "--branch",
            "main",
            "--reviewer",
            "user:admin",
            "--reviewer",
            "team:release",
        ],
    )
    .expect_code(0);
    let token_of = |created: &CliOutput| {
        let first = created.stdout.lines().next().unwrap();
        first.trim_start_matches("Token created: ").to_string()
    };
    let release = admin(&stack, &["token", "create", "--label", "rel-bot", "--team", "release"]);
    let release_token = token_of(release.expect_code(0));
    let outsider = admin(&stack, &["token", "create", "--label", "outsider"]);
    let outsider_token = token_of(outsider.expect_code(0));
    let repo = deploy_repo(&stack);
    stack.add_local_source("app", &repo).await;

    // A branch push: staging, no hold; the env function and the environment's variable reach
    // the step, the secret does not reach the log in any form.
    let staging = stack.push_and_wait("app", &repo, "feature-x").await;
    assert_eq!(
        staging.run.status,
        kici_engine::status::RunStatus::Success,
        "{:?}",
        staging.run.failure_reason
    );
    let logs = step_lines(&stack.logs(staging.run.run_id.as_str(), None).await);
    assert!(logs.contains("Deploying to stg"), "{logs}");
    assert!(logs.contains("environment staging region eu-west"), "{logs}");
    assert!(!logs.contains("staging-canary-0a1b2c3d"), "{logs}");
    assert!(logs.contains("***"), "{logs}");
    let steps = staging.jobs[0].steps.clone().unwrap_or_default();
    let deploy = steps.iter().find(|s| s.step_name == "deploy").unwrap();
    assert_eq!(deploy.secrets_accessed, ["DEPLOY_KEY"]);
    let shown = admin(&stack, &["runs", "show", staging.run.run_id.as_str()]);
    assert!(
        shown
            .expect_code(0)
            .stdout
            .contains("Secrets read by deploy: DEPLOY_KEY"),
        "{}",
        shown.stdout
    );

    // A main push: production holds the job until `kici approve`.
    let runs = stack.push("app", &repo, "main").await;
    let run_id = runs[0].clone();
    let approved_run = run_id.clone();
    let held = wait_job_status(&stack, &run_id, kici_engine::status::JobStatus::Held).await;
    assert_eq!(held.run.status, kici_engine::status::RunStatus::Pending);
    let queue = stack.get("/api/v1/holds?status=pending").await;
    assert_eq!(queue["holds"][0]["scope"], json!("production"));
    assert_eq!(
        queue["holds"][0]["clauses"],
        json!([{"user": "admin"}, {"team": "release"}])
    );
    // Both clauses must be met: the admin's approval alone leaves the job held.
    let approved = stack.cli("kici", &["approve", &run_id], &cwd);
    assert_eq!(
        approved.expect_code(0).stdout,
        "Job deploy approved by admin; it still waits for the other reviewers (user:admin, team:release).\n"
    );
    let refused = stack.cli("kici", &["approve", &run_id, "--token", &outsider_token], &cwd);
    assert!(
        refused
            .expect_code(1)
            .stderr
            .contains("`outsider` is not among the reviewers of job `deploy` (production): user:admin, team:release"),
        "{}",
        refused.stderr
    );
    let approved = stack.cli("kici", &["approve", &run_id, "--token", &release_token], &cwd);
    assert_eq!(approved.expect_code(0).stdout, "Job deploy approved: it is queued.\n");
    let done = stack.wait_run(&run_id).await;
    assert_eq!(
        done.run.status,
        kici_engine::status::RunStatus::Success,
        "{:?}",
        done.run.failure_reason
    );
    let logs = step_lines(&stack.logs(&run_id, None).await);
    assert!(logs.contains("Deploying to prod"), "{logs}");
    assert!(!logs.contains(CANARY), "{logs}");
    let events = stack.get(&format!("/api/v1/runs/{run_id}/events")).await.to_string();
    assert!(
        events.contains("orchestrator.job.held") && events.contains("orchestrator.hold.approved"),
        "{events}"
    );
    assert!(events.contains("\"by\":\"admin\""), "{events}");

    // Rejected: the job fails before it starts, with the category and who rejected it.
    let runs = stack.push("app", &repo, "main").await;
    let run_id = runs[0].clone();
    wait_job_status(&stack, &run_id, kici_engine::status::JobStatus::Held).await;
    stack
        .cli("kici", &["reject", &run_id, "--reason", "freeze week"], &cwd)
        .expect_code(0);
    let rejected = stack.wait_run(&run_id).await;
    assert_eq!(rejected.run.status, kici_engine::status::RunStatus::Failed);
    let init = rejected.run.init_failure.clone().unwrap();
    assert_eq!(
        init.category,
        kici_engine::failure::InitFailureCategory::EnvironmentRules
    );
    assert_eq!(
        init.message,
        "Approval rejected for production hold by admin: freeze week"
    );
    assert_eq!(rejected.run.failure_reason.as_deref(), Some(init.message.as_str()));
    let explained = admin(&stack, &["explain", &run_id]);
    assert!(
        explained
            .expect_code(0)
            .stdout
            .contains("Rejected by environment protection rules"),
        "{}",
        explained.stdout
    );
    assert!(
        explained.stdout.contains("kici-admin audit --action hold.reject"),
        "{}",
        explained.stdout
    );
    let shown = stack.cli("kici", &["runs", "show", &run_id], &cwd);
    assert!(
        shown
            .expect_code(0)
            .stdout
            .contains("Approval rejected for production hold by admin: freeze week"),
        "{}",
        shown.stdout
    );

    // A disabled environment rejects at once.
    admin(&stack, &["environment", "update", "production", "--disable"]).expect_code(0);
    let disabled = stack.push_and_wait("app", &repo, "main").await;
    let init = disabled.run.init_failure.clone().unwrap();
    assert_eq!(
        (init.category, init.message.as_str()),
        (
            kici_engine::failure::InitFailureCategory::EnvironmentRules,
            "Environment 'production' is disabled"
        )
    );

    // A 2 s wait timer outlives an orchestrator restart.
    admin(&stack, &["environment", "update", "staging", "--wait-timer", "2"]).expect_code(0);
    let runs = stack.push("app", &repo, "feature-y").await;
    let run_id = runs[0].clone();
    wait_job_status(&stack, &run_id, kici_engine::status::JobStatus::Waiting).await;
    stack.restart_orchestrator();
    let waited = stack.wait_run(&run_id).await;
    assert_eq!(
        waited.run.status,
        kici_engine::status::RunStatus::Success,
        "{:?}",
        waited.run.failure_reason
    );

    assert!(
        !orchestrator_log(&stack).contains(CANARY),
        "the secret reached the orchestrator's log"
    );
    let staging_run = staging.run.run_id.to_string();
    assert_nowhere(&stack, &[&staging_run, &approved_run, &run_id]).await;
}

/// The canary is in no API answer about the runs, no timeline, audit or hold, and no part of a
/// debug bundle.
async fn assert_nowhere(stack: &Stack, run_ids: &[&str]) {
    let mut answers = Vec::new();
    for run_id in run_ids {
        for path in ["", "/detail", "/logs", "/events", "/jobs?includeSteps=true"] {
            answers.push(stack.get(&format!("/api/v1/runs/{run_id}{path}")).await.to_string());
        }
    }
    for path in [
        "/api/v1/runs",
        "/api/v1/holds",
        "/api/v1/admin/audit",
        "/api/v1/admin/secrets",
    ] {
        answers.push(stack.get(path).await.to_string());
    }
    for answer in &answers {
        assert!(!answer.contains(CANARY), "an API answer holds the secret: {answer}");
    }
    let dir = stack.data_dir().parent().unwrap().to_path_buf();
    let bundle = dir.join("bundle.zip");
    let made = admin(
        stack,
        &[
            "debug-bundle",
            "-o",
            bundle.to_str().unwrap(),
            "--log-dir",
            dir.to_str().unwrap(),
        ],
    );
    made.expect_code(0);
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&bundle).unwrap()).unwrap();
    for index in 0..zip.len() {
        let mut entry = zip.by_index(index).unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(CANARY),
            "{} in the debug bundle holds the secret",
            entry.name().unwrap()
        );
    }
}

const INIT_AND_OUTPUTS: &str = r#"import { workflow, job, step, push } from '@kici-dev/sdk';

const make = job('make', {
  runsOn: 'linux',
  run: async ({ setSecretOutput, log }) => {
    setSecretOutput('SESSION_TOKEN', 'output-canary-4d3c2b1a');
    log.info('made output-canary-4d3c2b1a');
  },
});

export default workflow('impure', {
  on: push({ branches: ['impure-*'] }),
  jobs: [
    make,
    job('deploy', {
      runsOn: 'linux',
      needs: [make],
      environment: async (event) => (event.targetBranch === 'impure-main' ? 'production' : 'staging'),
      env: (event) => ({ DEPLOY_TARGET: event.targetBranch.slice(7), YEAR: String(new Date(0).getUTCFullYear()) }),
      steps: [
        step('deploy', async ({ $, secrets, environment }) => {
          await $`echo "Deploying to $DEPLOY_TARGET in ${environment} since $YEAR"`;
          const token = await secrets.get('SESSION_TOKEN');
          console.log(`token ${token} from ${secrets.getMeta('SESSION_TOKEN').scope}`);
        }),
      ],
    }),
  ],
});
"#;

#[tokio::test]
async fn impure_functions_run_in_an_init_job_and_secret_outputs_reach_the_jobs_that_need_them() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    admin(&stack, &["environment", "create", "staging"]).expect_code(0);
    let repo = kici_testkit::Repo::from_fixture(stack.data_dir().parent().unwrap(), "tests/e2e-repo");
    repo.write(".kici/workflows/impure.ts", INIT_AND_OUTPUTS);
    let compiled = stack.cli("kici", &["compile"], &repo.work());
    compiled.expect_code(0);
    assert!(
        compiled.stderr.contains(
            "[kici] Job \"deploy\": environment function is not pure (it is async). An init job will be required, adding ~5-10s delay."
        ),
        "{}",
        compiled.stderr
    );
    assert!(
        compiled
            .stderr
            .contains("[kici] Job \"deploy\": env function is not pure (it uses the global 'Date')"),
        "{}",
        compiled.stderr
    );
    repo.commit_and_push("impure workflow");
    stack.add_local_source("app", &repo).await;

    let detail = stack.push_and_wait("app", &repo, "impure-stg").await;
    assert_eq!(
        detail.run.status,
        kici_engine::status::RunStatus::Success,
        "{:?}",
        detail.run.failure_reason
    );
    let names: Vec<&str> = detail.jobs.iter().map(|j| j.job_name.as_str()).collect();
    assert!(names.contains(&"Init: deploy"), "{names:?}");
    let logs = step_lines(&stack.logs(detail.run.run_id.as_str(), None).await);
    assert!(logs.contains("Deploying to stg in staging since 1970"), "{logs}");
    assert!(logs.contains("token *** from output:make"), "{logs}");
    assert!(logs.contains("made ***"), "{logs}");
    assert!(!logs.contains("output-canary-4d3c2b1a"), "{logs}");

    // An environment the init job names that does not exist fails the job, with the category.
    let failed = stack.push_and_wait("app", &repo, "impure-main").await;
    let deploy = failed.jobs.iter().find(|j| j.job_name == "deploy").unwrap();
    let init = deploy.init_failure.clone().unwrap();
    assert_eq!(
        (init.category, init.message.as_str()),
        (
            kici_engine::failure::InitFailureCategory::EnvironmentRules,
            "Environment 'production' does not exist (hint: `kici-admin environment create production`)"
        )
    );
}
