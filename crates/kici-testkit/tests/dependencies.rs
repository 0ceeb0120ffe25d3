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

/// The greeter project with the `deps` workflow, pushed.
fn write_greeter_project(repo: &Repo) {
    repo.write_greeter_project(WORKFLOW);
    repo.commit_and_push("a workflow with an npm dependency");
}

#[tokio::test]
async fn an_imported_npm_package_is_installed_by_the_agent_before_the_workflow_loads() {
    let (mut stack, repo) = greeter_stack(&[]).await;
    let lock: serde_json::Value = serde_json::from_str(&repo.read(".kici/kici.lock.json")).unwrap();
    let expected = kici_engine::hash::sha256_hex(format!("npm\n{}", repo.read(".kici/package-lock.json")).as_bytes());
    assert_eq!(lock["lockfileHash"], serde_json::json!(expected));

    // The build job installs once and stores the tarball; the workflow's job restores it.
    let detail = stack.push_and_wait("app", &repo, "deps").await;
    assert_eq!(detail.run.status, RunStatus::Success, "{:?}", detail.jobs);
    let names: Vec<&str> = detail.jobs.iter().map(|j| j.job_name.as_str()).collect();
    assert_eq!(names, ["__build__deps", "greet"]);
    let text = |logs: kici_engine::api::RunLogs| {
        logs.steps
            .iter()
            .flat_map(|s| s.lines.iter().map(|l| l.line.clone()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let build_logs = text(stack.logs(detail.run.run_id.as_str(), Some("__build__deps")).await);
    assert!(
        build_logs.contains("Installed the .kici dependencies with npm in "),
        "{build_logs}"
    );
    assert!(
        build_logs.contains("Saved the .kici dependencies to the cache (deps/linux-"),
        "{build_logs}"
    );
    let job_logs = text(stack.logs(detail.run.run_id.as_str(), Some("greet")).await);
    assert!(
        job_logs.contains("Restored the .kici dependencies from the cache (deps/linux-"),
        "{job_logs}"
    );
    assert!(job_logs.contains("Hello from greeter, CI"), "{job_logs}");
    let steps = detail.jobs[0].steps.clone().unwrap();
    let row = steps.iter().find(|s| s.step_name == "dependencies").unwrap();
    assert_eq!(
        (row.step_index, row.step_type.as_str(), row.status),
        (-2, "deps", kici_engine::status::StepStatus::Success)
    );

    // Another agent restores the stored tarball and installs nothing.
    stack.kill_agent(0, "agent-1").await;
    stack.start_agent("agent-2", &["linux"]).await;
    repo.write("README.md", "again\n");
    repo.commit_and_push("a second run");
    let again = stack.push_and_wait("app", &repo, "deps").await;
    assert_eq!(again.run.status, RunStatus::Success, "{:?}", again.jobs);
    assert_eq!(again.jobs[0].agent_id.as_deref(), Some("agent-2"));
    let logs = stack.log_text(again.run.run_id.as_str()).await;
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
    assert!(cache["metadata"]["bytes"].as_u64().unwrap() > 0, "{cache}");
    assert!(logs.contains("Hello from greeter, CI"), "{logs}");
    let metrics = stack.metrics_text().await;
    assert!(metrics.contains("kici_orch_dep_cache_hits_total 2"), "{metrics}");
    assert!(metrics.contains("kici_orch_dep_cache_misses_total 1"), "{metrics}");
    assert!(metrics.contains("kici_orch_source_cache_misses_total 1"), "{metrics}");
    assert!(metrics.contains("kici_orch_source_cache_hits_total 1"), "{metrics}");
    assert!(
        metrics.contains("kici_orch_build_duration_seconds_count 1"),
        "{metrics}"
    );

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
    // The build fails, and with it the run (`build_coordination`); its job never starts.
    let broken = stack.push_and_wait("app", &repo, "deps").await;
    assert_eq!(broken.run.status, RunStatus::Failed);
    let error = broken.jobs[0].error_message.clone().unwrap();
    assert!(
        error.starts_with("Installing the .kici dependencies failed: `npm ci --no-audit --no-fund --loglevel=error` exited with exit status: 1:"),
        "{error}"
    );
    let init = broken.run.init_failure.clone().unwrap();
    assert_eq!(init.category.as_str(), "build_coordination");
    assert_eq!(init.message, format!("Build failed: {error}"));
    assert_eq!(broken.run.failure_reason.as_deref(), Some(init.message.as_str()));
    assert_eq!(broken.jobs[1].status, kici_engine::status::JobStatus::Skipped);
}

const NO_CHECKOUT_WORKFLOW: &str = r#"import { workflow, job, push } from '@kici-dev/sdk';
import { greet } from 'greeter';

export default workflow('no-checkout', {
  on: push({ branches: 'no-checkout' }),
  jobs: [
    job('first', { runsOn: 'linux', checkout: false, run: async ({ $ }) => {
      console.log(greet('no checkout'));
      await $`ls -A`;
    } }),
    job('second', { runsOn: 'linux', checkout: false, run: async () => { console.log(greet('again')); } }),
  ],
});
"#;

/// `checkout: false`: the jobs unpack the workflow's source tarball (packed once by the
/// orchestrator) instead of cloning, and two runs of one lock file install it once: the second
/// build waits for the first and restores what it stored.
#[tokio::test]
async fn checkout_false_jobs_start_from_the_source_tarball_and_builds_of_one_lock_file_coalesce() {
    let mut stack = Stack::start().await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    write_kici_greeter_project(&repo, "no-checkout", NO_CHECKOUT_WORKFLOW);
    repo.commit_and_push("workflows that need no checkout");
    stack.add_local_source("app", &repo).await;

    // Two runs wait for agents, each with its build job; two agents arrive: one install.
    let first = stack.push("app", &repo, "no-checkout").await;
    repo.write("README.md", "second\n");
    repo.commit_and_push("a second push");
    let second = stack.push("app", &repo, "no-checkout").await;
    assert_eq!((first.len(), second.len()), (1, 1));
    stack.start_agent("agent-1", &["linux"]).await;
    stack.start_agent("agent-2", &["linux"]).await;
    let runs = [stack.wait_run(&first[0]).await, stack.wait_run(&second[0]).await];
    let mut installs = 0;
    for run in &runs {
        assert_eq!(run.run.status, RunStatus::Success, "{:?}", run.jobs);
        assert_eq!(run.jobs[0].job_name, "__build__no-checkout");
        let logs = stack.log_text(run.run.run_id.as_str()).await;
        installs += logs.matches("Installed the .kici dependencies").count();
        assert!(logs.contains("Hello from greeter, no checkout"), "{logs}");
        assert!(logs.contains("Hello from greeter, again"), "{logs}");
        // Only what the tarball holds: no clone, no README.
        assert!(!logs.contains("README.md") && !logs.contains(".git"), "{logs}");
    }
    assert_eq!(installs, 1);
}

/// The greeter project with the package inside `.kici/`: npm links `file:` packages, so the
/// source tarball has it too. `workflow` is `.kici/workflows/<name>.ts`.
fn write_kici_greeter_project(repo: &Repo, name: &str, workflow: &str) {
    repo.write(
        ".kici/vendor/greeter/package.json",
        r#"{"name": "greeter", "version": "1.0.0", "type": "module", "main": "index.js"}"#,
    );
    repo.write(
        ".kici/vendor/greeter/index.js",
        "export const greet = (name) => `Hello from greeter, ${name}`;\n",
    );
    repo.write(
        ".kici/package.json",
        r#"{"name": "workflows", "private": true, "type": "module", "dependencies": {"greeter": "file:./vendor/greeter"}}"#,
    );
    repo.write(".kici/.gitignore", "node_modules\n");
    repo.write(&format!(".kici/workflows/{name}.ts"), workflow);
    repo.npm(&["install", "--no-audit", "--no-fund"]);
    repo.compile();
}

const RELAYED_WORKFLOW: &str = r#"import { workflow, job, push } from '@kici-dev/sdk';
import { greet } from 'greeter';

const checkedOut = job('checked-out', { runsOn: 'linux', cache: { key: 'out-v1', paths: ['out'] }, run: async ({ $ }) => {
  console.log(greet('a checkout'));
  await $`mkdir -p out && cp README.md out/`;
} });

export default workflow('relayed', {
  on: push({ branches: 'relayed' }),
  jobs: [
    checkedOut,
    job('unpacked', { runsOn: 'linux', checkout: false, needs: [checkedOut], cache: { key: 'out-v1', paths: ['out'] }, run: async ({ $ }) => {
      console.log(greet('a source tarball'));
      await $`cat out/README.md`;
    } }),
  ],
});
"#;

/// An agent that reaches the orchestrator at an address of its own (a container's bridge, a
/// microVM's tap, another host) fetches everything there: its checkout, the dependency
/// tarball it stores and restores, the source tarball, and the caches it saves and restores. A relay stands for that
/// address and keeps what the agent sends through it; on the filesystem store, whose URLs the
/// orchestrator used to build from its own address. The agent's environment names an HTTP
/// proxy that is not there: none of this goes through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_fetches_everything_at_the_address_it_reached_the_orchestrator_at() {
    let mut stack = Stack::start().await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    write_kici_greeter_project(&repo, "relayed", RELAYED_WORKFLOW);
    repo.commit_and_push("a workflow for an agent behind a relay");
    stack.add_local_source("app", &repo).await;
    let (relay, sent) = recording_relay(format!("127.0.0.1:{}", stack.orchestrator.port)).await;
    let url = format!("ws://{relay}/ws");
    // Nothing listens at the proxy: the orchestrator is reached directly, as its WebSocket is.
    let proxy = "http://127.0.0.1:9";
    let env = [
        ("KICI_ORCHESTRATOR_URL", url.as_str()),
        ("HTTP_PROXY", proxy),
        ("http_proxy", proxy),
        ("HTTPS_PROXY", proxy),
        ("ALL_PROXY", proxy),
        // The host's own exceptions (often 127.0.0.1) would let the old code pass.
        ("NO_PROXY", ""),
        ("no_proxy", ""),
    ];
    stack.start_agent_with("agent-1", &["linux"], &env).await;

    let run = stack.push_and_wait("app", &repo, "relayed").await;
    assert_eq!(run.run.status, RunStatus::Success, "{:?}", run.jobs);
    let logs = stack.log_text(run.run.run_id.as_str()).await;
    for line in [
        "Saved the .kici dependencies to the cache (deps/linux-",
        "Restored the .kici dependencies from the cache (deps/linux-",
        "Hello from greeter, a checkout",
        "Cache saved with key out-v1 (",
        "Cache restored from key out-v1 (",
        "Hello from greeter, a source tarball",
        // The restored cache holds the first job's copy of the checkout's README.
        "# End-to-end test repository",
    ] {
        assert!(logs.contains(line), "{line}: {logs}");
    }
    // A request may follow the previous one's body on the same connection, with no line break.
    let sent = String::from_utf8_lossy(&sent.lock().unwrap()).into_owned();
    let requests: Vec<&str> = sent
        .split("\r\n")
        .filter_map(|line| line.strip_suffix(" HTTP/1.1"))
        .filter_map(|line| {
            let at = ["GET /", "PUT /", "POST /"]
                .iter()
                .filter_map(|m| line.rfind(m))
                .max()?;
            Some(&line[at..])
        })
        .collect();
    for request in [
        "GET /ws",
        "POST /git/",
        "PUT /storage/deps/linux-",
        "GET /storage/deps/linux-",
        "GET /storage/source/",
        "POST /api/v1/cache/save",
        "PUT /storage/cache/",
        "GET /storage/cache/",
    ] {
        assert!(
            requests.iter().any(|r| r.starts_with(request)),
            "{request}: {requests:#?}"
        );
    }
}

/// A TCP relay to `upstream`: its address, and every byte clients sent through it.
async fn recording_relay(upstream: String) -> (String, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = sent.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                continue;
            };
            let kept = kept.clone();
            tokio::spawn(async move {
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                tokio::spawn(async move { tokio::io::copy(&mut from_server, &mut to_client).await });
                let mut buffer = vec![0u8; 64 * 1024];
                while let Ok(read @ 1..) = from_client.read(&mut buffer).await {
                    kept.lock().unwrap().extend_from_slice(&buffer[..read]);
                    if to_server.write_all(&buffer[..read]).await.is_err() {
                        break;
                    }
                }
                let _ = to_server.shutdown().await;
            });
        }
    });
    (address, sent)
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
    let logs = stack.log_text(detail.run.run_id.as_str()).await;
    assert!(logs.contains("greeting from-init"), "{logs}");
    assert!(logs.contains("tool-ok"), "{logs}");
}

/// The same dependency cache on S3-compatible storage (moto from `scripts/s3.sh`): the agents
/// download and upload through presigned URLs, and hold no storage credentials.
#[tokio::test]
async fn the_dependency_cache_works_on_s3_compatible_storage() {
    let Some((mut stack, endpoint, bucket)) = Stack::start_on_s3(Some("ci"), &[]).await else {
        return;
    };
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    write_greeter_project(&repo);
    stack.add_local_source("app", &repo).await;

    let first = stack.push_and_wait("app", &repo, "deps").await;
    assert_eq!(first.run.status, RunStatus::Success, "{:?}", first.jobs);
    let logs = stack.log_text(first.run.run_id.as_str()).await;
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

    stack.kill_agent(0, "agent-1").await;
    stack.start_agent("agent-2", &["linux"]).await;
    repo.write("README.md", "again\n");
    repo.commit_and_push("a second run");
    let again = stack.push_and_wait("app", &repo, "deps").await;
    assert_eq!(again.run.status, RunStatus::Success, "{:?}", again.jobs);
    let logs = stack.log_text(again.run.run_id.as_str()).await;
    assert!(
        logs.contains("Restored the .kici dependencies from the cache (deps/linux-"),
        "{logs}"
    );
    assert!(logs.contains("Hello from greeter, CI"), "{logs}");
}

/// A small number that differs between test runs in one process.
fn rand_suffix() -> u16 {
    let id = kici_testkit::random_id();
    id.bytes()
        .fold(0u16, |acc, b| acc.wrapping_mul(31).wrapping_add(u16::from(b)))
        % 1000
}

/// A token for the test registry's user (`scripts/npm-registry.sh`).
async fn registry_token(registry: &str) -> String {
    let answer: serde_json::Value = reqwest::Client::new()
        .put(format!("{registry}/-/user/org.couchdb.user:kici-test"))
        .basic_auth("kici-test", Some("kici-test-password"))
        .json(&serde_json::json!({"name": "kici-test", "password": "kici-test-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["token"].as_str().unwrap().to_string()
}

fn registry_workflow(registry: &str) -> String {
    format!(
        r#"import {{ workflow, job, push }} from '@kici-dev/sdk';
import {{ greet }} from '@kici-test/greet';

export default workflow('private-deps', {{
  on: push({{ branches: 'private-deps' }}),
  registries: [{{ url: '{registry}', scope: '@kici-test', tokenSecret: 'npm:NPM_TOKEN' }}],
  installEnv: ['npm:INSTALL_CANARY'],
  jobs: [job('greet', {{ runsOn: 'linux', run: async () => {{ console.log(greet('CI')); }} }})],
}});
"#
    )
}

/// A repository whose `.kici/` depends on a fresh version of `@kici-test/greet`, published to
/// `registry` and installed by the author with their own credentials and npm cache (a tarball in
/// the machine's npm cache would install without asking the registry); compiled, not pushed.
fn private_project(stack: &Stack, registry: &str, token: &str) -> Repo {
    // The author publishes a version of their own and installs with a cache of their own: a
    // tarball in the machine's npm cache would install without asking the registry.
    let userconfig = stack.dir.path().join("author.npmrc");
    let host = registry.trim_start_matches("http://");
    std::fs::write(
        &userconfig,
        format!("@kici-test:registry={registry}/\n//{host}/:_authToken={token}\n"),
    )
    .unwrap();
    let npm_cache = stack.dir.path().join("author-npm-cache");
    let version = format!("1.1.{}", std::process::id() as u64 * 1000 + u64::from(rand_suffix()));
    let package = stack.dir.path().join("greet");
    std::fs::create_dir_all(&package).unwrap();
    std::fs::write(
        package.join("package.json"),
        format!(r#"{{"name": "@kici-test/greet", "version": "{version}", "type": "module", "main": "index.js"}}"#),
    )
    .unwrap();
    std::fs::write(
        package.join("index.js"),
        "export const greet = (name) => `hello, ${name}, from the private registry`;\n",
    )
    .unwrap();
    let published = Command::new("npm")
        .args([
            "publish",
            "--registry",
            registry,
            "--userconfig",
            userconfig.to_str().unwrap(),
            // Versions are not published in order, so none of them is `latest`.
            "--tag",
            "e2e",
        ])
        .arg("--cache")
        .arg(&npm_cache)
        .current_dir(&package)
        .output()
        .unwrap();
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(
        ".kici/package.json",
        // The install fails unless it sees the `installEnv` secret.
        &format!(
            r#"{{"name": "workflows", "private": true, "type": "module", "dependencies": {{"@kici-test/greet": "{version}"}},
            "scripts": {{"postinstall": "node -e \"process.exit(process.env.INSTALL_CANARY ? 0 : 3)\""}}}}"#
        ),
    );
    repo.write(".kici/.gitignore", "node_modules\n");
    repo.write(".kici/workflows/private-deps.ts", &registry_workflow(registry));
    // The author installs with their own credentials, outside the repository.
    repo.npm(&[
        "install",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        "--userconfig",
        userconfig.to_str().unwrap(),
        "--cache",
        npm_cache.to_str().unwrap(),
    ]);
    repo.compile();
    repo
}

/// A package only an authenticated user may read, from a real private registry (verdaccio on
/// 127.0.0.1): the token comes from the secrets store through `registries`, a missing or wrong
/// one fails with a clear error, and no token reaches the lock file, a log or the checkout.
#[tokio::test]
async fn a_private_registry_package_installs_with_a_token_from_the_secrets_store() {
    let Some(registry) = kici_testkit::test_service("KICI_TEST_NPM_REGISTRY", "KICI_TEST_REQUIRE_NPM_REGISTRY") else {
        return;
    };
    let token = registry_token(&registry).await;
    let mut stack = Stack::start().await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = private_project(&stack, &registry, &token);
    let lock = repo.read(".kici/kici.lock.json");
    assert!(lock.contains(r#""tokenSecret": "npm:NPM_TOKEN""#), "{lock}");
    assert!(!lock.contains(&token));
    repo.commit_and_push("a workflow with a private package");
    stack.add_local_source("app", &repo).await;

    // No environment `npm` yet: the run never starts, with the install-secrets category.
    let missing = stack.push_and_wait("app", &repo, "private-deps").await;
    assert_eq!(missing.run.status, RunStatus::Failed);
    let init = missing.run.init_failure.clone().unwrap();
    assert_eq!(init.category.as_str(), "install_secrets");
    assert_eq!(
        init.message,
        format!(
            "Workflow install-secrets resolution rejected dispatch: registry {registry}: Environment 'npm' does not exist (hint: `kici-admin environment create npm`)"
        )
    );

    let admin = |args: &[&str]| stack.cli("kici-admin", args, &stack.data_dir());
    let set_secret = |key: &str, value: &str| {
        stack
            .cli_with_input("kici-admin", &["secret", "set", "npm", key], &stack.data_dir(), value)
            .expect_code(0);
    };
    admin(&["environment", "create", "npm"]).expect_code(0);
    set_secret("INSTALL_CANARY", "install-canary-5e4d");
    let unbound = stack.push_and_wait("app", &repo, "private-deps").await;
    assert_eq!(
        unbound.run.init_failure.unwrap().message,
        format!(
            "Workflow install-secrets resolution rejected dispatch: registry {registry}: secret 'NPM_TOKEN' is not bound by environment 'npm' (hint: `kici-admin secret set npm NPM_TOKEN` in a scope the environment binds)"
        )
    );

    // A wrong token: the registry refuses it, the job says so, the token is not shown.
    let wrong = "d3JvbmctdG9rZW4tZm9yLWtpY2k=";
    set_secret("NPM_TOKEN", wrong);
    let refused = stack.push_and_wait("app", &repo, "private-deps").await;
    assert_eq!(refused.run.status, RunStatus::Failed);
    let error = refused.jobs[0].error_message.clone().unwrap();
    assert!(
        error.starts_with("Installing the .kici dependencies failed: `npm ci --no-audit --no-fund --loglevel=error` exited with exit status: 1:"),
        "{error}"
    );
    assert!(error.contains("hint: a registry refused the credentials"), "{error}");
    let logs = stack.log_text(refused.run.run_id.as_str()).await;
    assert!(!logs.contains(wrong) && !error.contains(wrong), "{logs}");

    set_secret("NPM_TOKEN", &token);
    let run = stack.push_and_wait("app", &repo, "private-deps").await;
    assert_eq!(run.run.status, RunStatus::Success, "{:?}", run.jobs);
    let logs = stack.log_text(run.run.run_id.as_str()).await;
    assert!(logs.contains("hello, CI, from the private registry"), "{logs}");
    assert!(logs.contains("Installed the .kici dependencies with npm in "), "{logs}");
    assert!(!logs.contains(&token), "{logs}");
    let orchestrator_log =
        std::fs::read_to_string(stack.data_dir().parent().unwrap().join("orchestrator.log")).unwrap();
    assert!(!orchestrator_log.contains(&token) && !orchestrator_log.contains("install-canary-5e4d"));

    // Another agent: no build, the tarball is restored, nothing installed, a cache hit.
    stack.kill_agent(0, "agent-1").await;
    stack.start_agent("agent-2", &["linux"]).await;
    repo.write("README.md", "again\n");
    repo.commit_and_push("a second run");
    let again = stack.push_and_wait("app", &repo, "private-deps").await;
    assert_eq!(again.run.status, RunStatus::Success, "{:?}", again.jobs);
    let names: Vec<&str> = again.jobs.iter().map(|j| j.job_name.as_str()).collect();
    assert_eq!(names, ["greet"]);
    assert_eq!(again.jobs[0].agent_id.as_deref(), Some("agent-2"));
    let logs = stack.log_text(again.run.run_id.as_str()).await;
    assert!(
        logs.contains("Restored the .kici dependencies from the cache (deps/linux-"),
        "{logs}"
    );
    assert!(!logs.contains("Installed the .kici dependencies"), "{logs}");
    assert!(logs.contains("hello, CI, from the private registry"), "{logs}");
    let metrics = stack.metrics_text().await;
    // The first run's job restored what its build stored; the second run's job too.
    assert!(metrics.contains("kici_orch_dep_cache_hits_total 2"), "{metrics}");
}

/// A registry the agent cannot reach: the install fails with npm's error and a hint naming
/// the likely cause. The author reached it through a relay that is gone when the job runs.
// The relay runs on another thread while the author's npm blocks this one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_registry_fails_the_build_with_a_hint() {
    let Some(registry) = kici_testkit::test_service("KICI_TEST_NPM_REGISTRY", "KICI_TEST_REQUIRE_NPM_REGISTRY") else {
        return;
    };
    let token = registry_token(&registry).await;
    let upstream = registry.trim_start_matches("http://").to_string();
    let relay = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_url = format!("http://{}", relay.local_addr().unwrap());
    let relaying = tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = relay.accept().await else {
                return;
            };
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    let mut stack = Stack::start().await;
    let repo = tokio::task::block_in_place(|| private_project(&stack, &relay_url, &token));
    // The project's own npm settings apply on the agent: fail at once instead of retrying.
    repo.write(".kici/.npmrc", "fetch-retries=0\n");
    relaying.abort();
    let _ = relaying.await;
    repo.commit_and_push("a private package through a relay");
    stack.add_local_source("app", &repo).await;
    stack
        .cli("kici-admin", &["environment", "create", "npm"], &stack.data_dir())
        .expect_code(0);
    for (key, value) in [("NPM_TOKEN", token.as_str()), ("INSTALL_CANARY", "x")] {
        stack
            .cli_with_input("kici-admin", &["secret", "set", "npm", key], &stack.data_dir(), value)
            .expect_code(0);
    }
    stack.start_agent("agent-1", &["linux"]).await;
    let run = stack.push_and_wait("app", &repo, "private-deps").await;
    assert_eq!(run.run.status, RunStatus::Failed);
    let error = run.jobs[0].error_message.clone().unwrap();
    assert!(
        error.starts_with("Installing the .kici dependencies failed: `npm ci"),
        "{error}"
    );
    assert!(error.contains("ECONNREFUSED"), "{error}");
    assert!(
        error.contains("hint: a registry is unreachable from this agent"),
        "{error}"
    );
    assert_eq!(run.run.init_failure.unwrap().category.as_str(), "build_coordination");
}

/// An orchestrator with `env`, one agent and the greeter project pushed as source `app`.
async fn greeter_stack(env: &[(&str, &str)]) -> (Stack, Repo) {
    let mut stack = Stack::start_with(env).await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    write_greeter_project(&repo);
    stack.add_local_source("app", &repo).await;
    (stack, repo)
}

/// A tarball beyond `KICI_CACHE_MAX_TARBALL_BYTES` is not stored, and the build that exists to
/// store it fails the run.
#[tokio::test]
async fn a_tarball_beyond_the_size_limit_fails_the_build() {
    let (stack, repo) = greeter_stack(&[("KICI_CACHE_MAX_TARBALL_BYTES", "100")]).await;
    let run = stack.push_and_wait("app", &repo, "deps").await;
    assert_eq!(run.run.status, RunStatus::Failed);
    let init = run.run.init_failure.clone().unwrap();
    assert_eq!(init.category.as_str(), "build_coordination");
    assert!(
        init.message.starts_with("Build failed: Dep tarball exceeds max size: ")
            && init
                .message
                .ends_with(" bytes, more than KICI_CACHE_MAX_TARBALL_BYTES (100)"),
        "{}",
        init.message
    );
    assert!(kici_testkit::files_with_extension(&stack.data_dir().join("storage/deps"), "json").is_empty());
}

/// Source and dependency tarballs unused for `KICI_CACHE_TTL_DAYS` are deleted by the hourly
/// upkeep (here: at the restart, with the files aged 40 days), and the next run builds again.
#[tokio::test]
async fn tarballs_past_their_ttl_are_deleted_and_built_again() {
    let (mut stack, repo) = greeter_stack(&[]).await;
    let first = stack.push_and_wait("app", &repo, "deps").await;
    assert_eq!(first.run.status, RunStatus::Success, "{:?}", first.jobs);
    let storage = stack.data_dir().join("storage");
    let aged = std::process::Command::new("find")
        .arg(&storage)
        .args(["-type", "f", "-exec", "touch", "-d", "40 days ago", "{}", "+"])
        .status()
        .unwrap();
    assert!(aged.success());
    stack.restart_orchestrator();
    stack
        .wait_for("the aged tarballs to go", || async {
            (kici_testkit::files_with_extension(&storage.join("deps"), "json").is_empty()
                && std::fs::read_dir(storage.join("source")).unwrap().count() == 0)
                .then_some(())
        })
        .await;
    stack.wait_agent_connected("agent-1").await;
    repo.write("README.md", "again\n");
    repo.commit_and_push("after expiry");
    let again = stack.push_and_wait("app", &repo, "deps").await;
    assert_eq!(again.run.status, RunStatus::Success, "{:?}", again.jobs);
    assert_eq!(again.jobs[0].job_name, "__build__deps");
}
