//! Reporting back to forges, through the real orchestrator and agent and a double of each
//! forge's documented commit-status API (`kici_testkit::forge_double`): a push through a
//! Gitea, Forgejo, GitLab or GitHub-repository source sets `kici/<workflow>` and
//! `kici/<workflow>/job/<job>` on the commit, moving from pending to their result, each linking
//! to the run on the dashboard, with the failure as the description; the token appears in no
//! log.

// The harness helpers fail the test the way its assertions do.
#![allow(clippy::unwrap_used)]

use kici_engine::status::RunStatus;
use kici_testkit::forge_double::ForgeDouble;
use kici_testkit::{Repo, Stack, hmac_sha256_hex};
use serde_json::{Value, json};

const FIXTURE: &str = "tests/e2e-repo";
const TOKEN: &str = "forge-pat-8c1e0b2f";
const DASHBOARD: &str = "https://ci.example.com";

const WORKFLOW: &str = r#"import { workflow, job, step, push } from '@kici-dev/sdk';

const build = job('build', { runsOn: 'linux', run: async () => { console.log('built'); } });
const test = job('test', {
  runsOn: 'linux',
  needs: [build],
  steps: [step('unit', async () => { throw new Error('2 tests failed'); })],
});

export default workflow('ci', { on: push({ branches: 'main' }), jobs: [build, test] });
"#;

/// The webhook a forge of `preset` sends for the push of `repo`'s main, with its headers.
fn webhook(preset: &str, repo: &Repo, secret: &str) -> (Vec<(&'static str, String)>, Value) {
    let mut body = repo.push_payload("acme/app", "main");
    body["repository"]["full_name"] = json!("acme/app");
    if preset == "gitlab-repo" {
        let repository = body["repository"].take();
        body["project"] = json!({
            "path_with_namespace": "acme/app",
            "git_http_url": repository["clone_url"],
            "default_branch": "main",
        });
        let headers = vec![
            ("x-gitlab-event", "Push Hook".to_string()),
            ("x-gitlab-token", secret.to_string()),
        ];
        return (headers, body);
    }
    let signature = hmac_sha256_hex(secret.as_bytes(), &serde_json::to_vec(&body).unwrap());
    let headers = match preset {
        "gitea" => vec![("x-gitea-event", "push".to_string()), ("x-gitea-signature", signature)],
        "forgejo" => vec![
            ("x-forgejo-event", "push".to_string()),
            ("x-forgejo-signature", signature),
        ],
        _ => vec![
            ("x-github-event", "push".to_string()),
            ("x-hub-signature-256", format!("sha256={signature}")),
        ],
    };
    (headers, body)
}

#[tokio::test]
async fn every_generic_preset_gets_commit_statuses_that_follow_the_run() {
    let mut stack = Stack::start_with(&[("KICI_DASHBOARD_URL", DASHBOARD)]).await;
    stack.start_agent("linux-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(".kici/workflows/ci.ts", WORKFLOW);
    repo.compile();
    let sha = repo.commit_and_push("ci");
    let forge = ForgeDouble::start(TOKEN);

    for (preset, api_path, forge_name) in [
        ("gitea", "/api/v1", "gitea"),
        ("forgejo", "/api/v1", "gitea"),
        ("gitlab-repo", "/api/v4", "gitlab"),
        ("github-repo", "", "github"),
    ] {
        let name = format!("forge-{preset}");
        let secret = format!("s3cret-{preset}");
        let added = stack
            .post(
                "/api/v1/admin/sources",
                &json!({
                    "kind": "generic", "name": name, "preset": preset, "secret": secret,
                    "gitUrl": format!("file://{}", repo.origin().display()),
                    "credentials": {"username": "kici", "password": TOKEN},
                    "apiUrl": format!("{}{api_path}", forge.url()),
                }),
            )
            .await;
        assert_eq!(added["statusApiUrl"], format!("{}{api_path}", forge.url()));
        let (headers, body) = webhook(preset, &repo, &secret);
        let mut request = stack
            .client()
            .post(format!(
                "{}/webhook/default/generic/{}",
                stack.url(),
                added["sourceId"].as_str().unwrap()
            ))
            .json(&body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        let runs = Stack::run_ids(&answer);
        assert_eq!(runs.len(), 1, "{preset}: {answer}");
        let run = stack.wait_run(&runs[0]).await;
        assert_eq!(run.run.status, RunStatus::Failed, "{preset}");

        let link = format!("{DASHBOARD}/runs/{}", runs[0]);
        let ours = |context: &str| {
            forge
                .statuses()
                .into_iter()
                .filter(|s| {
                    s.forge == forge_name && s.context == context && s.target_url.as_deref() == Some(link.as_str())
                })
                .collect::<Vec<_>>()
        };
        let (failure, success) = match forge_name {
            "gitlab" => ("failed", "success"),
            _ => ("failure", "success"),
        };
        stack
            .wait_for(&format!("{preset}: the final statuses"), || async {
                let done = |context: &str, state: &str| ours(context).last().is_some_and(|s| s.state == state);
                (done("kici/ci", failure) && done("kici/ci/job/build", success) && done("kici/ci/job/test", failure))
                    .then_some(())
            })
            .await;
        let run_statuses = ours("kici/ci");
        assert_eq!(run_statuses[0].state, "pending", "{preset}: {run_statuses:?}");
        assert_eq!(
            run_statuses.last().unwrap().description,
            "Failed: Failed jobs: test",
            "{preset}"
        );
        let test = ours("kici/ci/job/test");
        assert_eq!(
            test.last().unwrap().description,
            "Failed: Step 'unit' failed",
            "{preset}"
        );
        assert!(
            test.iter().all(|s| s.repo == "acme/app" && s.sha == sha),
            "{preset}: {test:?}"
        );
        if forge_name == "gitlab" {
            assert!(test.iter().any(|s| s.state == "running"), "{preset}: {test:?}");
        }
    }
    assert_eq!(forge.refused(), Vec::<String>::new());
    assert!(
        !stack.orchestrator.log_tail(100_000).contains(TOKEN),
        "the token reached the log"
    );
}

/// A private repository behind HTTP Basic authentication (git's own `http-backend`): the
/// orchestrator reads its lock file and the agent clones it with the source's token, which
/// reaches git only through its credential helper, never a URL, a log, an API answer or a
/// repository's config; a wrong token fails the delivery with git's error, the token hidden.
#[tokio::test]
async fn a_private_repository_is_cloned_with_the_sources_token() {
    let mut stack = Stack::start().await;
    stack.start_agent("linux-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(
        ".kici/workflows/ci.ts",
        "import { workflow, job, push } from '@kici-dev/sdk';\nexport default workflow('ci', { on: push({ branches: 'main' }), jobs: [job('build', { runsOn: 'linux', run: async () => { console.log('built from a private repository'); } })] });\n",
    );
    repo.compile();
    repo.commit_and_push("ci");
    let served = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(served.path().join("acme")).unwrap();
    std::os::unix::fs::symlink(repo.origin(), served.path().join("acme/app.git")).unwrap();
    let server = kici_testkit::git_http::GitHttpServer::start(served.path(), "kici", TOKEN);

    let mut runs = Vec::new();
    for (name, password) in [("private", TOKEN), ("wrong-token", "not-the-token-5d1")] {
        let secret = format!("s3cret-{name}");
        let added = stack
            .post(
                "/api/v1/admin/sources",
                &json!({
                    "kind": "generic", "name": name, "preset": "gitea", "secret": secret,
                    "gitUrl": format!("{}/{{owner}}/{{name}}.git", server.url),
                    "credentials": {"username": "kici", "password": password},
                }),
            )
            .await;
        assert!(!added.to_string().contains(password), "{added}");
        let (headers, body) = webhook("gitea", &repo, &secret);
        let mut request = stack
            .client()
            .post(format!("{}/webhook/default/generic/{name}", stack.url()))
            .json(&body);
        for (header, value) in headers {
            request = request.header(header, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap();
        runs.push((name, status, answer));
    }

    let (_, status, answer) = &runs[0];
    assert_eq!(*status, 202, "{answer}");
    let run_id = Stack::run_ids(answer)[0].clone();
    let run = stack.wait_run(&run_id).await;
    assert_eq!(run.run.status, RunStatus::Success, "{:?}", run.jobs);
    assert!(
        stack
            .log_text(&run_id)
            .await
            .contains("built from a private repository")
    );
    let requests = server.requests();
    assert!(
        requests.iter().any(|(_, _, authorized)| !authorized),
        "git was challenged first: {requests:?}"
    );
    let fetches = requests
        .iter()
        .filter(|(method, target, authorized)| method == "GET" && target.contains("/info/refs") && *authorized)
        .count();
    assert_eq!(
        fetches, 2,
        "the orchestrator's mirror and the agent's checkout each fetched once: {requests:?}"
    );

    let (_, status, answer) = &runs[1];
    assert_eq!(*status, 502, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default().to_string();
    assert!(
        message.contains("cannot read the lock file") && message.contains("Authentication failed"),
        "{answer}"
    );
    assert!(!message.contains("not-the-token"), "{message}");

    let logs = format!(
        "{}{}",
        stack.orchestrator.log_tail(100_000),
        stack.agents[0].log_tail(100_000)
    );
    assert!(
        !logs.contains(TOKEN) && !logs.contains("not-the-token"),
        "a token reached a log"
    );
    let mirrors = stack.data_dir().join("repos");
    for entry in walk(&mirrors) {
        if entry.ends_with("config") {
            let config = std::fs::read_to_string(&entry).unwrap();
            assert!(!config.contains(TOKEN), "{}: {config}", entry.display());
        }
    }
}

/// Each job says the commit it checked out and how many commits its checkout holds.
const CHECKOUT_WORKFLOW: &str = r#"import { workflow, job, step, push } from '@kici-dev/sdk';
export default workflow('where', { on: push(), jobs: [job('look', { runsOn: 'linux', steps: [
  step('checkout', async ({ $ }) => { await $`echo "checked out $(git rev-parse HEAD) with $(git rev-list --count HEAD) commits"`; }),
] })] });
"#;

/// A forge's repository is cloned one commit deep, as the reference does. A job whose branch
/// moved on since its push, or was deleted, still checks out its own commit: it fetches it with
/// the history behind it.
#[tokio::test]
async fn a_checkout_is_one_commit_deep_and_finds_its_commit_after_its_branch_moved_on_or_went() {
    let mut stack = Stack::start().await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(".kici/workflows/where.ts", CHECKOUT_WORKFLOW);
    repo.compile();
    let secret = "checkout-depth-secret";
    stack
        .post(
            "/api/v1/admin/sources",
            &json!({"kind": "generic", "name": "forge", "preset": "github-repo", "secret": secret,
                    "gitUrl": format!("file://{}", repo.origin().display())}),
        )
        .await;
    // Three pushes while no agent is connected; by the time one is, main has moved on from the
    // first and the feature branch is gone.
    let mut pushes = Vec::new();
    for (message, branch) in [("first", "main"), ("second", "main"), ("feature", "feature")] {
        repo.write("notes.txt", message);
        let sha = repo.commit_and_push_to(message, branch);
        let mut payload = repo.push_payload("forge", branch);
        payload["nonce"] = json!(message);
        let delivery = kici_telemetry::os::random_hex(8);
        let (status, answer) = signed_webhook(
            &stack,
            "generic/forge",
            ("push", &delivery),
            secret.as_bytes(),
            &payload,
            &[],
        )
        .await;
        assert_eq!(status, 202, "{answer}");
        let runs = Stack::run_ids(&answer);
        assert_eq!(runs.len(), 1, "{answer}");
        pushes.push((runs[0].clone(), sha));
    }
    let deleted = std::process::Command::new("git")
        .args(["push", "-q", "origin", "--delete", "feature"])
        .current_dir(repo.work())
        .status()
        .unwrap();
    assert!(deleted.success());
    stack.start_agent("linux-1", &["linux"]).await;

    let mut lines = Vec::new();
    for (run_id, sha) in &pushes {
        let run = stack.wait_run(run_id).await;
        assert_eq!(run.run.status, RunStatus::Success, "{:?}", run.jobs);
        let log = stack.log_text(run_id).await;
        let line = log
            .lines()
            .find(|line| line.contains("checked out "))
            .unwrap_or_else(|| panic!("no checkout line in {log}"))
            .to_string();
        assert!(line.contains(&format!("checked out {sha} with ")), "{line}");
        lines.push(line);
    }
    // main's tip alone; the first commit fetched with its history (the fixture's and its own);
    // the deleted branch's commit from the default branch's clone, with the history behind it.
    assert!(lines[1].ends_with("with 1 commits"), "{lines:?}");
    assert!(lines[0].ends_with("with 2 commits"), "{lines:?}");
    assert!(lines[2].ends_with("with 4 commits"), "{lines:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

const APP_ID: &str = "4242";
const INSTALLATION: u64 = 99;
const INSTALLATION_TOKEN: &str = "ghs_installation7f3a9c";

const APP_WORKFLOWS: &str = r#"import { workflow, job, step, push, dispatch } from '@kici-dev/sdk';

const build = job('build', { runsOn: 'linux', run: async () => { console.log('built'); } });
const test = job('test', {
  runsOn: 'linux',
  needs: [build],
  steps: [step('unit', async () => { throw new Error('2 tests failed'); })],
});
export const ci = workflow('ci', { on: push({ branches: 'main', paths: ['src/**'] }), jobs: [build, test] });
export const docs = workflow('docs', {
  on: push({ branches: 'main', paths: ['docs/**'] }),
  jobs: [job('publish', { runsOn: 'linux', run: async () => { console.log('published'); } })],
});
export const manual = workflow('manual', {
  on: dispatch(),
  jobs: [job('by-hand', { runsOn: 'linux', run: async () => { console.log('dispatched through the app'); } })],
});
"#;

/// A push webhook of the GitHub App installation, signed with the App's webhook secret.
async fn app_push(stack: &Stack, repo: &Repo, clone_url: &str, commits: usize, owner: &str) -> (u16, Value) {
    let mut body = repo.push_payload("acme/app", "main");
    body["repository"]["full_name"] = json!("acme/app");
    body["repository"]["clone_url"] = json!(clone_url);
    body["repository"]["owner"] = json!({"login": owner});
    body["before"] = json!("1111111111111111111111111111111111111111");
    body["installation"] = json!({"id": INSTALLATION});
    body["commits"] = json!(
        (0..commits)
            .map(|i| json!({"id": format!("{i}"), "added": [], "modified": ["src/main.ts"], "removed": []}))
            .collect::<Vec<_>>()
    );
    signed_webhook(
        stack,
        "github",
        ("push", &format!("d-{commits}")),
        b"app-s3cret",
        &body,
        &[("x-github-hook-installation-target-id", APP_ID)],
    )
    .await
}

/// A GitHub App source: its webhooks are verified and routed by App id, the repository is
/// cloned (by the orchestrator and the agent) with an installation token got with the App's
/// JWT, and check runs `kici/<workflow>`, `…/setup` and `…/job/<job>` move from queued to
/// their conclusion with a dashboard link; a push whose commit list GitHub cut at 20 matches
/// path filters on the compare API's files. The key and the token reach no log.
#[tokio::test]
async fn a_github_app_source_clones_with_installation_tokens_and_reports_check_runs() {
    let mut stack = Stack::start_with(&[("KICI_DASHBOARD_URL", DASHBOARD)]).await;
    stack.start_agent("linux-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(".kici/workflows/ci.ts", APP_WORKFLOWS);
    repo.compile();
    repo.commit_and_push("ci and docs");
    let served = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(served.path().join("acme")).unwrap();
    std::os::unix::fs::symlink(repo.origin(), served.path().join("acme/app.git")).unwrap();
    let git = kici_testkit::git_http::GitHttpServer::start(served.path(), "x-access-token", INSTALLATION_TOKEN);
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let public_key = std::fs::read_to_string(fixtures.join("github-app-test-key.pub.pem")).unwrap();
    let github = kici_testkit::forge_double::GitHubAppDouble::start(
        APP_ID,
        &public_key,
        INSTALLATION,
        INSTALLATION_TOKEN,
        vec!["docs/guide.md".into(), "src/main.ts".into()],
    );

    let key_arg = format!("@{}", fixtures.join("github-app-test-key.pem").display());
    let added = stack.cli(
        "kici-admin",
        &[
            "source",
            "add",
            "github",
            "--name",
            "gh",
            "--app-id",
            APP_ID,
            "--private-key",
            &key_arg,
            "--webhook-secret",
            "app-s3cret",
            "--allow-owner",
            "acme",
            "--api-url",
            github.url(),
        ],
        stack.dir.path(),
    );
    assert_eq!(added.code, 0, "{}", added.stderr);
    assert!(added.stdout.contains("/webhook/default/github"), "{}", added.stdout);

    // A push of 3 listed commits touching src/: `ci` runs.
    let clone_url = format!("{}/acme/app.git", git.url);
    let (status, answer) = app_push(&stack, &repo, &clone_url, 3, "acme").await;
    assert_eq!(status, 202, "{answer}");
    let runs = Stack::run_ids(&answer);
    assert_eq!(runs.len(), 1, "{answer}");
    let run = stack.wait_run(&runs[0]).await;
    assert_eq!(
        (run.run.status, run.run.workflow_name.as_str()),
        (RunStatus::Failed, "ci")
    );
    stack
        .wait_for("the check runs' conclusions", || async {
            let done = |name: &str, last: &str| github.history(name).last().map(String::as_str) == Some(last);
            (done("kici/ci", "completed:failure")
                && done("kici/ci/setup", "completed:success")
                && done("kici/ci/job/build", "completed:success")
                && done("kici/ci/job/test", "completed:failure"))
            .then_some(())
        })
        .await;
    let build = github.history("kici/ci/job/build");
    assert!(build[0] == "queued" || build[0] == "in_progress", "{build:?}");
    let checks = github.check_runs();
    let test = checks.iter().rev().find(|c| c.name == "kici/ci/job/test").unwrap();
    assert_eq!(test.summary, "Failed: Step 'unit' failed");
    assert_eq!(
        test.details_url.as_deref(),
        Some(format!("{DASHBOARD}/runs/{}", runs[0]).as_str())
    );
    assert_eq!(test.head_sha, run.run.sha);
    let created: std::collections::HashSet<u64> = checks.iter().map(|c| c.id).collect();
    assert_eq!(created.len(), 4, "one check run each, then updates: {checks:?}");

    // 20 listed commits (GitHub's cut) of src/ only: the compare API says docs/ changed too.
    let (status, answer) = app_push(&stack, &repo, &clone_url, 20, "acme").await;
    assert_eq!(status, 202, "{answer}");
    let runs = Stack::run_ids(&answer);
    assert_eq!(runs.len(), 2, "{answer}");
    let mut workflows = Vec::new();
    for run in &runs {
        workflows.push(stack.wait_run(run).await.run.workflow_name);
    }
    workflows.sort();
    assert_eq!(workflows, ["ci", "docs"]);
    assert!(github.requests().iter().any(|r| {
        r.method == "GET"
            && r.target
                .contains("/compare/1111111111111111111111111111111111111111...")
    }));

    // A dispatch has no webhook: it clones through the installation of the last default-branch push.
    let dispatched = stack.cli(
        "kici",
        &["dispatch", "manual", "--source", "gh", "--repo", "acme/app", "--json"],
        stack.dir.path(),
    );
    assert_eq!(dispatched.code, 0, "{}", dispatched.stderr);
    let answer: Value = serde_json::from_str(&dispatched.stdout).unwrap();
    let run = stack.wait_run(answer["runId"].as_str().unwrap()).await;
    assert_eq!(run.run.status, RunStatus::Success, "{:?}", run.jobs);

    // An installation on an account the source does not allow is refused.
    let (status, answer) = app_push(&stack, &repo, &clone_url, 1, "mallory").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("installation_not_allowed")),
        "{answer}"
    );

    // The agents' clones got a token for this one repository, read only.
    let narrowed: Vec<Value> = github
        .requests()
        .iter()
        .filter(|r| r.target.ends_with("/access_tokens") && !r.body.is_empty())
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert!(!narrowed.is_empty());
    assert!(
        narrowed
            .iter()
            .all(|b| *b == json!({"repositories": ["app"], "permissions": {"contents": "read"}})),
        "{narrowed:?}"
    );
    assert_eq!(github.refused(), Vec::<String>::new());
    let key = std::fs::read_to_string(fixtures.join("github-app-test-key.pem")).unwrap();
    let key_line = key.lines().nth(1).unwrap();
    let logs = format!(
        "{}{}",
        stack.orchestrator.log_tail(100_000),
        stack.agents[0].log_tail(100_000)
    );
    assert!(
        !logs.contains(INSTALLATION_TOKEN) && !logs.contains(key_line),
        "a secret reached a log"
    );
}

/// A signed push of `repo`'s main to generic source `name` (preset github-repo) with `secret`;
/// the HTTP status and the answer.
async fn signed_push(stack: &Stack, repo: &Repo, name: &str, secret: &str) -> (u16, Value) {
    // A body of its own each time: the same signed body again is a replay.
    let mut payload = repo.push_payload(name, "main");
    payload["nonce"] = json!(kici_telemetry::os::random_hex(8));
    let delivery = kici_telemetry::os::random_hex(8);
    let path = format!("generic/{name}");
    signed_webhook(stack, &path, ("push", &delivery), secret.as_bytes(), &payload, &[]).await
}

/// A webhook to `/webhook/default/<path>` with `(event, delivery)` GitHub headers, signed with
/// `secret` (`X-Hub-Signature-256`), and `headers`: the HTTP status and the answer.
async fn signed_webhook(
    stack: &Stack,
    path: &str,
    (event, delivery): (&str, &str),
    secret: &[u8],
    payload: &Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let body = serde_json::to_vec(payload).unwrap();
    let mut request = stack
        .client()
        .post(format!("{}/webhook/default/{path}", stack.url()))
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header(
            "x-hub-signature-256",
            format!("sha256={}", hmac_sha256_hex(secret, &body)),
        )
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.body(body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// The source verbs an operator needs after `add`: a new webhook secret with a window in which
/// the old one still works, disable and enable, reveal the secret, list the presets, remove.
#[tokio::test]
async fn sources_are_updated_rotated_disabled_revealed_and_removed() {
    let stack = Stack::start().await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    let cwd = stack.dir.path();
    stack
        .post(
            "/api/v1/admin/sources",
            &json!({"kind": "generic", "name": "forge", "preset": "github-repo", "secret": "old-secret",
                    "gitUrl": format!("file://{}", repo.origin().display())}),
        )
        .await;
    let admin = |args: &[&str]| stack.cli("kici-admin", args, cwd);

    let updated = admin(&["source", "update", "forge", "--secret", "new-secret"]);
    assert_eq!(updated.code, 0, "{}", updated.stderr);
    assert!(
        updated
            .stdout
            .starts_with("Source forge updated.\nThe previous webhook secret is accepted until "),
        "{}",
        updated.stdout
    );
    assert_eq!(signed_push(&stack, &repo, "forge", "new-secret").await.0, 202);
    assert_eq!(
        signed_push(&stack, &repo, "forge", "old-secret").await.0,
        202,
        "inside the rotation window"
    );
    admin(&[
        "source",
        "update",
        "forge",
        "--secret",
        "newer-secret",
        "--rotation-window",
        "0",
    ])
    .expect_code(0);
    let (status, answer) = signed_push(&stack, &repo, "forge", "new-secret").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("invalid_signature"))
    );

    let revealed = admin(&["source", "get-webhook-secret", "forge"]);
    assert_eq!(revealed.stdout, "newer-secret\n", "{}", revealed.stderr);

    let disabled = admin(&["source", "disable", "forge"]);
    assert_eq!(
        disabled.stdout,
        "Source forge disabled: its webhooks are refused (403 source_disabled).\n"
    );
    let (status, answer) = signed_push(&stack, &repo, "forge", "newer-secret").await;
    assert_eq!(
        (status, answer["error"]["message"].as_str()),
        (
            403,
            Some("Source forge is disabled (hint: `kici-admin source enable forge`)")
        )
    );
    admin(&["source", "enable", "forge"]).expect_code(0);
    assert_eq!(signed_push(&stack, &repo, "forge", "newer-secret").await.0, 202);

    let nothing = admin(&["source", "update", "forge"]);
    assert_eq!(nothing.code, 1);
    assert!(nothing.stderr.contains("nothing to change"), "{}", nothing.stderr);
    let presets = admin(&["source", "list-presets"]);
    assert!(
        presets
            .stdout
            .lines()
            .any(|l| l.starts_with("gogs") && l.trim_end().ends_with("no")),
        "{}",
        presets.stdout
    );

    let removed = admin(&["source", "remove", "forge"]);
    assert_eq!(
        removed.stdout,
        "Source forge removed (its runs stay; its schedules are gone).\n"
    );
    let (status, answer) = signed_push(&stack, &repo, "forge", "newer-secret").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("unknown_source"))
    );
    let log = stack.orchestrator.log_tail(100_000);
    assert!(
        !log.contains("newer-secret") && !log.contains("old-secret"),
        "a secret reached the log"
    );
}

/// A private repository behind a real `sshd` on 127.0.0.1, cloned with an SSH deploy key: the
/// orchestrator's first clone keeps the server's key (`accept-new`) and agents trust only that
/// one; a source pinned to another key is refused with ssh's own words. The key appears in no
/// log and no API answer.
#[tokio::test]
async fn a_private_repository_is_cloned_with_an_ssh_deploy_key() {
    let Some(sshd) = kici_testkit::ssh_server::SshServer::start() else {
        eprintln!("skipped: no sshd (apt-get install openssh-server)");
        return;
    };
    let mut stack = Stack::start().await;
    stack.start_agent("linux-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(
        ".kici/workflows/ci.ts",
        "import { workflow, job, push } from '@kici-dev/sdk';\nexport default workflow('ci', { on: push({ branches: 'main' }), jobs: [job('build', { runsOn: 'linux', run: async () => { console.log('built over ssh'); } })] });\n",
    );
    repo.compile();
    repo.commit_and_push("ci");
    let url = sshd.url(&repo.origin());
    let key = sshd.client_key.display().to_string();
    let other_host = stack.dir.path().join("other_known_hosts");
    std::fs::write(
        &other_host,
        format!(
            "[127.0.0.1]:{} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk9yBCrt2tYG9x9LY0JtA8rRpD5hS3fKqWXSl8lmnop\n",
            sshd.port
        ),
    )
    .unwrap();
    let other_host = other_host.display().to_string();
    let add = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "source",
            "add",
            "generic",
            "--name",
            name,
            "--preset",
            "gitea",
            "--secret",
            "s3cret",
            "--git-url",
            &url,
            "--git-username",
            &sshd.user,
            "--ssh-key-file",
            &key,
        ];
        args.extend_from_slice(extra);
        stack.cli("kici-admin", &args, stack.dir.path())
    };
    add("over-ssh", &[]).expect_code(0);
    add(
        "pinned-elsewhere",
        &["--ssh-host-key-policy", "pinned", "--ssh-known-hosts-file", &other_host],
    )
    .expect_code(0);

    let push = |name: &'static str| {
        let (headers, body) = webhook("gitea", &repo, "s3cret");
        let request = stack
            .client()
            .post(format!("{}/webhook/default/generic/{name}", stack.url()))
            .json(&body);
        headers
            .into_iter()
            .fold(request, |request, (header, value)| request.header(header, value))
    };
    let response = push("over-ssh").send().await.unwrap();
    let answer: Value = response.json().await.unwrap();
    let runs = Stack::run_ids(&answer);
    assert_eq!(runs.len(), 1, "{answer}");
    let run = stack.wait_run(&runs[0]).await;
    assert_eq!(run.run.status, RunStatus::Success, "{:?}", run.jobs);
    assert!(stack.log_text(&runs[0]).await.contains("built over ssh"));

    let response = push("pinned-elsewhere").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 502);
    let answer: Value = response.json().await.unwrap();
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Host key verification failed"),
        "{answer}"
    );

    let private_key = std::fs::read_to_string(&sshd.client_key).unwrap();
    let key_line = private_key.lines().nth(1).unwrap();
    let sources = stack.get("/api/v1/admin/sources").await.to_string();
    let logs = format!(
        "{}{}",
        stack.orchestrator.log_tail(100_000),
        stack.agents[0].log_tail(100_000)
    );
    assert!(
        !sources.contains(key_line) && !logs.contains(key_line),
        "the key leaked"
    );
}

const PR_WORKFLOW: &str = r#"import { workflow, job, pr } from '@kici-dev/sdk';

export default workflow('ci', {
  on: pr(),
  jobs: [
    job('lint', { runsOn: 'linux', run: async () => { console.log('linted'); } }),
    job('test', { runsOn: 'linux', needs: ['lint'], run: async () => { console.log('MESSAGE'); } }),
  ],
});
"#;

const AFTER_CI: &str = r#"import { workflow, job, workflowComplete } from '@kici-dev/sdk';

export default workflow('after-ci', {
  on: workflowComplete({ name: 'ci' }),
  jobs: [job('after', { runsOn: 'linux', run: async () => { console.log('after ci'); } })],
});
"#;

/// A signed webhook of `event` with `payload` to the `forge` source (secret `pr-secret`): the
/// HTTP status and the answer.
async fn github_webhook(stack: &Stack, event: &str, payload: &Value) -> (u16, Value) {
    let delivery = kici_telemetry::os::random_hex(8);
    signed_webhook(stack, "generic/forge", (event, &delivery), b"pr-secret", payload, &[]).await
}

/// A pull request from a fork by an unknown contributor that rewrites the workflow: its jobs
/// wait for a maintainer, with the reason. Its author's `/kici approve` comment decides
/// nothing; a maintainer's approves it once, and it runs to the end (no job is held again)
/// with the base branch's workflow against the fork's commit, never the edited one.
#[tokio::test]
async fn an_unknown_contributors_fork_pull_request_is_held_and_runs_the_base_workflow() {
    let mut stack = Stack::start().await;
    stack.start_agent("linux-1", &["linux"]).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(
        ".kici/workflows/ci.ts",
        &PR_WORKFLOW.replace("MESSAGE", "the base workflow ran"),
    );
    repo.write(".kici/workflows/after.ts", AFTER_CI);
    repo.compile();
    let base = repo.commit_and_push("ci");
    // GitHub's API, asked who may approve (and sent the commit statuses).
    let github = ForgeDouble::start(TOKEN);
    github.grant("acme/app", "alice", "write");
    github.grant("acme/app", "bob", "read");
    stack
        .post(
            "/api/v1/admin/sources",
            &json!({"kind": "generic", "name": "forge", "preset": "github-repo", "secret": "pr-secret",
                    "gitUrl": format!("file://{}", repo.origin().display()), "apiUrl": github.url(),
                    "credentials": {"username": "kici", "password": TOKEN}}),
        )
        .await;
    // The default branch's push registers `after-ci`.
    let (status, _) = github_webhook(&stack, "push", &repo.push_payload("acme/app", "main")).await;
    assert_eq!(status, 202);
    // The fork's branch, as GitHub exposes it in the base repository.
    repo.write(
        ".kici/workflows/ci.ts",
        &PR_WORKFLOW.replace("MESSAGE", "the edited workflow ran"),
    );
    repo.compile();
    repo.commit_and_push_to("rewrite the workflow", "refs/pull/7/head");
    let head = repo.head();

    let payload = json!({
        "action": "opened",
        "number": 7,
        "sender": {"login": "mallory", "id": 99},
        "pull_request": {
            "number": 7,
            "author_association": "NONE",
            "head": {"ref": "feature", "sha": head, "repo": {"full_name": "mallory/app"}},
            "base": {"ref": "main", "sha": base, "repo": {"full_name": "acme/app"}}
        },
        "repository": {"full_name": "acme/app", "name": "app", "default_branch": "main",
                       "clone_url": format!("file://{}", repo.origin().display())}
    });
    let (status, answer) = github_webhook(&stack, "pull_request", &payload).await;
    assert_eq!(status, 202, "{answer}");
    let run_id = Stack::run_ids(&answer)[0].clone();

    let reason = "an unknown contributor's pull request (a pull request from a fork by mallory, author association NONE): a maintainer approves it before it runs";
    let holds = stack
        .wait_for("the job held for a maintainer", || async {
            let holds = stack.get(&format!("/api/v1/holds?runId={run_id}")).await;
            let held = holds["holds"].as_array().cloned().unwrap_or_default();
            (!held.is_empty()).then_some(held)
        })
        .await;
    assert_eq!(
        (
            holds[0]["scope"].as_str(),
            holds[0]["reason"].as_str(),
            holds[0]["jobName"].as_str()
        ),
        (Some("trust"), Some(reason), Some("lint")),
        "{holds:?}: `test` waits for `lint`"
    );
    let shown = stack.cli("kici-admin", &["runs", "show", &run_id], stack.dir.path());
    assert!(
        shown.stdout.contains("Held:") && shown.stdout.contains(reason),
        "{}",
        shown.stdout
    );

    // The fork's author cannot approve it, nor can an organization member GitHub gives read
    // access only, nor a comment written before the run; a maintainer's `/kici approve` does, once.
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let now = chrono::DateTime::from_timestamp(since_epoch.as_secs() as i64 + 1, 0)
        .unwrap()
        .to_rfc3339();
    let comment = |login: &str, association: &str, written: &str| {
        json!({
            "action": "created",
            "issue": {"number": 7, "pull_request": {"url": "https://forge.example/pulls/7"}},
            "comment": {"body": "/kici approve\nLGTM", "author_association": association, "user": {"login": login},
                        "created_at": written},
            "repository": {"full_name": "acme/app"}
        })
    };
    for (login, association) in [("mallory", "NONE"), ("bob", "MEMBER")] {
        let (status, answer) = github_webhook(&stack, "issue_comment", &comment(login, association, &now)).await;
        assert_eq!(
            (status, answer["ignored"].as_str()),
            (202, Some("the commenter cannot push to the repository")),
            "{login}: {answer}"
        );
    }
    let old = comment("alice", "OWNER", "2020-01-01T00:00:00Z");
    let (status, answer) = github_webhook(&stack, "issue_comment", &old).await;
    assert_eq!((status, Stack::run_ids(&answer).len()), (202, 0), "{answer}");
    let still = stack.get(&format!("/api/v1/holds?runId={run_id}&status=pending")).await;
    assert_eq!(still["holds"].as_array().map(Vec::len), Some(1), "{still}");
    let approve = comment("alice", "OWNER", &now);
    let (status, answer) = github_webhook(&stack, "issue_comment", &approve).await;
    assert_eq!(
        (status, Stack::run_ids(&answer)),
        (202, vec![run_id.clone()]),
        "{answer}"
    );
    let (status, answer) = github_webhook(&stack, "issue_comment", &approve).await;
    assert_eq!(
        (status, answer["duplicate"].as_bool()),
        (200, Some(true)),
        "a replayed comment: {answer}"
    );
    let decided = stack.get(&format!("/api/v1/holds?runId={run_id}")).await;
    assert_eq!(
        (
            decided["holds"][0]["status"].as_str(),
            decided["holds"][0]["decidedBy"].as_str()
        ),
        (Some("approved"), Some("alice")),
        "{decided}"
    );
    let run = stack.wait_run(&run_id).await;
    assert_eq!(
        (run.run.status, run.run.sha.as_str(), run.run.git_ref.as_str()),
        (RunStatus::Success, head.as_str(), "refs/pull/7/head"),
        "the fork's commit, fetched by agents from the ref the forge keeps"
    );
    let log = stack.log_text(&run_id).await;
    assert!(log.contains("the base workflow ran"), "{log}");
    assert!(!log.contains("the edited workflow ran"), "{log}");

    // Its end starts nothing: the workflows an event starts run with the repository's secrets.
    stack
        .wait_for("the untrusted run's completion dropped", || async {
            stack
                .orchestrator
                .log_tail(500)
                .contains("an untrusted pull request's run finished; its jobComplete()/workflowComplete() events start nothing")
                .then_some(())
        })
        .await;
    let after = stack.get("/api/v1/runs?workflow=after-ci").await;
    assert_eq!(after["total"], 0, "{after}");
}

/// A GitHub App created from a manifest: `--manifest` writes the page whose form posts it to
/// GitHub, the orchestrator's `/github-app/created` shows the command that finishes, and
/// `--manifest-code` has the orchestrator exchange the code (once) for the App's id, key and
/// webhook secret, which then verifies the App's webhooks.
#[tokio::test]
async fn a_github_app_is_created_from_a_manifest() {
    let stack = Stack::start().await;
    let cwd = stack.dir.path();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let public_key = std::fs::read_to_string(fixtures.join("github-app-test-key.pub.pem")).unwrap();
    let github = kici_testkit::forge_double::GitHubAppDouble::start(APP_ID, &public_key, INSTALLATION, "t", vec![]);
    let pem = std::fs::read_to_string(fixtures.join("github-app-test-key.pem")).unwrap();
    github.created_from_manifest(
        "c0de42",
        json!({"id": APP_ID.parse::<u64>().unwrap(), "slug": "kici-gh", "pem": pem, "webhook_secret": "made-by-github",
               "client_id": "Iv1.x", "client_secret": "s", "html_url": "https://github.com/apps/kici-gh"}),
    );

    let page = cwd.join("app.html");
    let written = stack.cli(
        "kici-admin",
        &[
            "source",
            "add",
            "github",
            "--name",
            "gh",
            "--manifest",
            "--public-url",
            "https://ci.example.com",
            "--github-org",
            "acme",
            "--manifest-out",
            page.to_str().unwrap(),
        ],
        cwd,
    );
    assert_eq!(written.code, 0, "{}", written.stderr);
    assert!(
        written
            .stdout
            .contains("kici-admin source add github --name gh --manifest-code <code>"),
        "{}",
        written.stdout
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains(
            r#"<form action="https://github.com/organizations/acme/settings/apps/new?state=gh" method="post">"#
        ),
        "{html}"
    );
    let value = html
        .split(r#"name="manifest" value=""#)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let manifest: Value = serde_json::from_str(&value.replace("&quot;", "\"").replace("&amp;", "&")).unwrap();
    assert_eq!(
        (
            manifest["name"].as_str(),
            manifest["hook_attributes"]["url"].as_str(),
            manifest["redirect_url"].as_str(),
            manifest["default_permissions"]["checks"].as_str(),
            manifest["public"].as_bool(),
        ),
        (
            Some("kici-gh"),
            Some("https://ci.example.com/webhook/default/github"),
            Some("https://ci.example.com/github-app/created"),
            Some("write"),
            Some(false)
        ),
        "{manifest}"
    );

    // Where GitHub sends the browser back: the finishing command, nothing created.
    let back = stack
        .client()
        .get(format!("{}/github-app/created?code=c0de42&state=gh", stack.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status().as_u16(), 200);
    assert!(
        back.text()
            .await
            .unwrap()
            .contains("<pre>kici-admin source add github --name gh --manifest-code c0de42</pre>")
    );
    let hostile = stack
        .client()
        .get(format!("{}/github-app/created?code=%3Cscript%3E&state=gh", stack.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(hostile.status().as_u16(), 400);

    let finish = |name: &str| {
        let args = [
            "source",
            "add",
            "github",
            "--name",
            name,
            "--manifest-code",
            "c0de42",
            "--api-url",
            github.url(),
        ];
        stack.cli("kici-admin", &args, cwd)
    };
    // A request refused for another reason does not spend the code.
    let refused = finish("g h");
    assert!(
        refused
            .stderr
            .contains("source name `g h` must be non-empty without spaces or slashes"),
        "{}",
        refused.stderr
    );
    let added = finish("gh");
    assert_eq!(added.code, 0, "{}", added.stderr);
    assert!(added.stdout.contains("/webhook/default/github"), "{}", added.stdout);
    let sources = stack.get("/api/v1/admin/sources").await;
    assert_eq!(sources["sources"][0]["kind"].as_str(), Some("github"), "{sources}");
    let taken = finish("gh");
    assert!(
        taken.stderr.contains("a source named `gh` already exists"),
        "{}",
        taken.stderr
    );
    let again = finish("gh2");
    assert_ne!(again.code, 0);
    assert!(
        again
            .stderr
            .contains("GitHub refused the GitHub App created from the manifest: 404"),
        "{}",
        again.stderr
    );

    // The App's id routes its webhooks and the secret GitHub generated verifies them.
    let ping = json!({"zen": "Keep it logically awesome.", "hook_id": 1, "installation": {"id": INSTALLATION},
                      "repository": {"full_name": "acme/app", "owner": {"login": "acme"}}});
    let target = [("x-github-hook-installation-target-id", APP_ID)];
    let (status, answer) = signed_webhook(&stack, "github", ("ping", "p1"), b"made-by-github", &ping, &target).await;
    assert_eq!((status, answer["accepted"].as_bool()), (202, Some(true)), "{answer}");
    let (status, _) = signed_webhook(&stack, "github", ("ping", "p2"), b"wrong", &ping, &target).await;
    assert_eq!(status, 401);
}
