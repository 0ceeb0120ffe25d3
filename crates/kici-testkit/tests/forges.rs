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
