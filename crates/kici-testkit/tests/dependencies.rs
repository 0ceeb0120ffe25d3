//! A workflow that imports an npm package: the compiler writes `lockfileHash`, the agent
//! installs `.kici/` dependencies with the lock file's package manager before the runner
//! imports the workflow, and a failing install fails the job with the package manager's output.
//! Real npm, with a package inside the repository (`file:`), so no registry is needed.
//! On SQLite, or PostgreSQL with `KICI_TEST_E2E_DATABASE=postgres`.

// The harness helpers fail the test the way its assertions do.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use kici_engine::status::RunStatus;
use kici_testkit::{Repo, Stack};

const FIXTURE: &str = "tests/e2e-repo";

const WORKFLOW: &str = r#"import { workflow, job, push } from '@kici-dev/sdk';
import { greet } from 'greeter';

export default workflow('deps', {
  on: push({ branches: 'deps' }),
  jobs: [job('greet', { runsOn: 'linux', run: async () => { console.log(greet('CI')); } })],
});
"#;

fn npm(repo: &Repo, args: &[&str]) {
    let output = Command::new("npm")
        .args(args)
        .current_dir(repo.work().join(".kici"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "npm {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A `.kici/` project importing the package `greeter` (a `file:` dependency inside the
/// repository), installed locally, compiled and pushed without `node_modules`.
fn write_greeter_project(repo: &Repo) {
    repo.write(
        "vendor/greeter/package.json",
        r#"{"name": "greeter", "version": "1.0.0", "type": "module", "main": "index.js"}"#,
    );
    repo.write(
        "vendor/greeter/index.js",
        "export const greet = (name) => `Hello from greeter, ${name}`;\n",
    );
    repo.write(
        ".kici/package.json",
        r#"{"name": "workflows", "private": true, "type": "module", "dependencies": {"greeter": "file:../vendor/greeter"}}"#,
    );
    repo.write(".kici/.gitignore", "node_modules\n");
    repo.write(".kici/workflows/deps.ts", WORKFLOW);
    npm(repo, &["install", "--no-audit", "--no-fund"]);
    repo.compile();
    repo.commit_and_push("a workflow with an npm dependency");
}

fn log_text(logs: &kici_engine::api::RunLogs) -> String {
    logs.steps
        .iter()
        .flat_map(|s| s.lines.iter().map(|l| l.line.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn an_imported_npm_package_is_installed_by_the_agent_before_the_workflow_loads() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    write_greeter_project(&repo);
    let lock: serde_json::Value = serde_json::from_str(&repo.read(".kici/kici.lock.json")).unwrap();
    let expected = kici_engine::hash::sha256_hex(format!("npm\n{}", repo.read(".kici/package-lock.json")).as_bytes());
    assert_eq!(lock["lockfileHash"], serde_json::json!(expected));
    stack.add_local_source("app", &repo).await;

    let detail = stack.push_and_wait("app", &repo, "deps").await;
    assert_eq!(detail.run.status, RunStatus::Success, "{:?}", detail.jobs);
    let logs = log_text(&stack.logs(detail.run.run_id.as_str(), None).await);
    assert!(logs.contains("Installed the .kici dependencies with npm in "), "{logs}");
    assert!(
        logs.contains("Saved the .kici dependencies to the cache (deps/linux-"),
        "{logs}"
    );
    assert!(logs.contains("Hello from greeter, CI"), "{logs}");
    let steps = detail.jobs[0].steps.clone().unwrap();
    let row = steps.iter().find(|s| s.step_name == "dependencies").unwrap();
    assert_eq!(
        (row.step_index, row.step_type.as_str(), row.status),
        (-2, "deps", kici_engine::status::StepStatus::Success)
    );

    // Another agent restores the stored tarball and installs nothing.
    stack.agents[0].kill();
    stack.start_agent("agent-2", &["linux"]).await;
    repo.write("README.md", "again\n");
    repo.commit_and_push("a second run");
    let again = stack.push_and_wait("app", &repo, "deps").await;
    assert_eq!(again.run.status, RunStatus::Success, "{:?}", again.jobs);
    assert_eq!(again.jobs[0].agent_id.as_deref(), Some("agent-2"));
    let logs = log_text(&stack.logs(again.run.run_id.as_str(), None).await);
    assert!(
        logs.contains("Restored the .kici dependencies from the cache (deps/linux-"),
        "{logs}"
    );
    assert!(!logs.contains("Installed the .kici dependencies"), "{logs}");
    let events = stack.get(&format!("/api/v1/runs/{}/events", again.run.run_id)).await;
    let cache = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["eventType"] == "orchestrator.deps.cache")
        .unwrap();
    assert_eq!(
        (cache["title"].as_str(), cache["metadata"]["outcome"].as_str()),
        (Some("Dependency cache"), Some("hit"))
    );
    assert!(logs.contains("Hello from greeter, CI"), "{logs}");
    let metrics = stack
        .client()
        .get(format!("{}/metrics", stack.url()))
        .bearer_auth(kici_testkit::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("kici_orch_dep_cache_hits_total 1"), "{metrics}");
    assert!(metrics.contains("kici_orch_dep_cache_misses_total 1"), "{metrics}");

    // A stored tarball that is not the one its checksum names is never unpacked.
    let platform_dir = std::fs::read_dir(stack.data_dir().join("storage/deps"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let pointer = std::fs::read_dir(&platform_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let pointer: serde_json::Value = serde_json::from_slice(&std::fs::read(pointer).unwrap()).unwrap();
    let tarball = stack.data_dir().join("storage").join(pointer["key"].as_str().unwrap());
    std::fs::write(&tarball, b"tampered").unwrap();
    repo.write("README.md", "tampered\n");
    repo.commit_and_push("a third run");
    let tampered = stack.push_and_wait("app", &repo, "deps").await;
    assert_eq!(tampered.run.status, RunStatus::Failed);
    let error = tampered.jobs[0].error_message.clone().unwrap();
    assert!(error.starts_with("Dep tarball hash mismatch: expected "), "{error}");
    assert!(
        error.contains(&format!(", got {}", kici_engine::hash::sha256_hex(b"tampered"))),
        "{error}"
    );

    // A broken lock file is a new cache key: nothing to restore, and `npm ci` says why it fails.
    repo.write(".kici/package-lock.json", "{ this is not json");
    repo.compile();
    repo.commit_and_push("a broken lock file");
    let broken = stack.push_and_wait("app", &repo, "deps").await;
    assert_eq!(broken.run.status, RunStatus::Failed);
    let error = broken.jobs[0].error_message.clone().unwrap();
    assert!(
        error.starts_with("Installing the .kici dependencies failed: `npm ci --no-audit --no-fund --loglevel=error` exited with exit status: 1:"),
        "{error}"
    );
}

const INIT_WORKFLOW: &str = r##"import { workflow, job, push } from '@kici-dev/sdk';

export default workflow('with-init', {
  on: push({ branches: 'with-init' }),
  jobs: [job('build', {
    runsOn: 'linux',
    init: {
      run: 'mkdir -p tools && printf "#!/bin/sh\\necho tool-ok\\n" > tools/mytool && chmod +x tools/mytool && echo "GREETING=from-init" >> "$KICI_ENV" && echo "$PWD/tools" >> "$KICI_PATH"',
    },
    run: async ({ $ }) => {
      await $`echo "greeting $GREETING"`;
      await $`mytool`;
    },
  })],
});
"##;

#[tokio::test]
async fn an_init_command_prepares_the_environment_and_path_of_the_steps() {
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(".kici/workflows/with-init.ts", INIT_WORKFLOW);
    repo.compile();
    let lock: serde_json::Value = serde_json::from_str(&repo.read(".kici/kici.lock.json")).unwrap();
    let build = &lock["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "with-init")
        .unwrap()["jobs"][0];
    assert_eq!(build["init"][0]["shell"], serde_json::json!("bash"));
    repo.commit_and_push("a job with init");
    stack.add_local_source("app", &repo).await;

    let detail = stack.push_and_wait("app", &repo, "with-init").await;
    assert_eq!(detail.run.status, RunStatus::Success, "{:?}", detail.jobs);
    let steps = detail.jobs[0].steps.clone().unwrap();
    let init = steps.iter().find(|s| s.step_name == "init:1").unwrap();
    assert_eq!(
        (init.step_type.as_str(), init.status),
        ("init", kici_engine::status::StepStatus::Success)
    );
    let logs = log_text(&stack.logs(detail.run.run_id.as_str(), None).await);
    assert!(logs.contains("greeting from-init"), "{logs}");
    assert!(logs.contains("tool-ok"), "{logs}");
}

/// The same dependency cache on S3-compatible storage (moto from `scripts/s3.sh`): the agents
/// download and upload through presigned URLs, and hold no storage credentials.
#[tokio::test]
async fn the_dependency_cache_works_on_s3_compatible_storage() {
    let Ok(endpoint) = std::env::var("KICI_TEST_S3_ENDPOINT") else {
        assert!(
            std::env::var("KICI_TEST_REQUIRE_S3").is_err(),
            "KICI_TEST_REQUIRE_S3 is set but KICI_TEST_S3_ENDPOINT is not"
        );
        return;
    };
    let bucket = format!("kici-e2e-{}", kici_testkit::random_id().replace(['-', '_'], ""));
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    let mut stack = Stack::start_with(&[
        ("KICI_STORAGE_TYPE", "s3"),
        ("KICI_STORAGE_BUCKET", &bucket),
        ("KICI_STORAGE_ENDPOINT", &endpoint),
        ("KICI_STORAGE_PREFIX", "ci"),
        ("AWS_ACCESS_KEY_ID", "kici-test"),
        ("AWS_SECRET_ACCESS_KEY", "kici-test-secret"),
    ])
    .await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    write_greeter_project(&repo);
    stack.add_local_source("app", &repo).await;

    let first = stack.push_and_wait("app", &repo, "deps").await;
    assert_eq!(first.run.status, RunStatus::Success, "{:?}", first.jobs);
    let logs = log_text(&stack.logs(first.run.run_id.as_str(), None).await);
    assert!(
        logs.contains("Saved the .kici dependencies to the cache (deps/linux-"),
        "{logs}"
    );
    let listing = reqwest::Client::new()
        .get(format!("{endpoint}/{bucket}?list-type=2&prefix=ci/deps/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        listing.contains(".json</Key>") && listing.contains(".tar.gz</Key>"),
        "{listing}"
    );

    stack.agents[0].kill();
    stack.start_agent("agent-2", &["linux"]).await;
    repo.write("README.md", "again\n");
    repo.commit_and_push("a second run");
    let again = stack.push_and_wait("app", &repo, "deps").await;
    assert_eq!(again.run.status, RunStatus::Success, "{:?}", again.jobs);
    let logs = log_text(&stack.logs(again.run.run_id.as_str(), None).await);
    assert!(
        logs.contains("Restored the .kici dependencies from the cache (deps/linux-"),
        "{logs}"
    );
    assert!(logs.contains("Hello from greeter, CI"), "{logs}");
}
