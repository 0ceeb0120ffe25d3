//! Caches an author keeps between runs: an init command's `cache`, the job's `cache` option
//! and `ctx.cache`, stored in object storage by one agent and restored by another, with the
//! log lines, timeline events and failures a user sees. The filesystem backend and
//! S3-compatible storage (moto from `scripts/s3.sh`). On SQLite, or PostgreSQL with
//! `KICI_TEST_E2E_DATABASE=postgres`.

// The harness helpers fail the test the way its assertions do.
#![allow(clippy::unwrap_used)]

use kici_engine::status::{RunStatus, StepStatus};
use kici_testkit::{Repo, Stack};

const FIXTURE: &str = "tests/e2e-repo";

const WORKFLOW: &str = r##"import { workflow, job, step, push } from '@kici-dev/sdk';

export default workflow('cached', {
  on: push({ branches: 'cached' }),
  jobs: [job('build', {
    runsOn: 'linux',
    init: {
      run: 'if [ -x tools/mytool ]; then echo "tool restored"; else mkdir -p tools && printf "#!/bin/sh\\necho tool-ok\\n" > tools/mytool && chmod +x tools/mytool && echo "tool built"; fi; echo "TOOL_DIR=$PWD/tools" >> "$KICI_ENV"; echo "$PWD/tools" >> "$KICI_PATH"',
      cache: { key: 'tools-v1', paths: ['tools'] },
    },
    cache: { key: 'out-v1', paths: ['out'] },
    steps: [
      step('use', async (ctx) => {
        await ctx.$`mytool`;
        await ctx.$`test -f out/result.txt && echo "previous: $(cat out/result.txt)" || echo "no previous result"`;
        await ctx.$`mkdir -p out && echo "from ${process.env.KICI_RUN_ID}" > out/result.txt`;
        const found = await ctx.cache.restore({ key: 'notes-' + process.env.KICI_RUN_ID, paths: ['notes'], restoreKeys: ['notes-'] });
        console.log(`ctx.cache hit=${found.hit} matched=${found.matchedKey ?? '-'}`);
        await ctx.$`mkdir -p notes && echo note > notes/n.txt`;
        await ctx.cache.save({ key: 'notes-' + process.env.KICI_RUN_ID, paths: ['notes'] });
      }),
    ],
  })],
});
"##;

fn write_project(stack: &Stack) -> Repo {
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(".kici/workflows/cached.ts", WORKFLOW);
    repo.compile();
    repo.commit_and_push("a job with caches");
    repo
}

/// Two runs on two agents: the first misses and saves every cache, the second restores them.
/// The first run's id, to check the second saw its files.
async fn first_saves_second_restores(stack: &mut Stack, repo: &Repo) {
    stack.start_agent("agent-1", &["linux"]).await;
    stack.add_local_source("app", repo).await;
    let first = stack.push_and_wait("app", repo, "cached").await;
    assert_eq!(first.run.status, RunStatus::Success, "{:?}", first.jobs);
    let logs = stack.log_text(first.run.run_id.as_str()).await;
    for line in [
        "Cache not found for key tools-v1",
        "tool built",
        "Cache not found for key out-v1",
        "no previous result",
        "ctx.cache hit=false matched=-",
        "tool-ok",
    ] {
        assert!(logs.contains(line), "{line}: {logs}");
    }
    for key in ["tools-v1", "out-v1", &format!("notes-{}", first.run.run_id)] {
        assert!(logs.contains(&format!("Cache saved with key {key} (")), "{key}: {logs}");
    }
    let steps = first.jobs[0].steps.clone().unwrap();
    let rows: Vec<(&str, &str, StepStatus)> = steps
        .iter()
        .map(|s| (s.step_name.as_str(), s.step_type.as_str(), s.status))
        .filter(|(name, _, _)| name.starts_with("cache:") || name.starts_with("init:"))
        .collect();
    assert_eq!(
        rows,
        [
            ("init:1", "init", StepStatus::Success),
            ("cache:restore", "cache", StepStatus::Success),
            ("cache:save", "cache", StepStatus::Success),
        ]
    );

    stack.kill_agent(0, "agent-1").await;
    stack.start_agent("agent-2", &["linux"]).await;
    repo.write("README.md", "again\n");
    repo.commit_and_push("a second run");
    let second = stack.push_and_wait("app", repo, "cached").await;
    assert_eq!(second.run.status, RunStatus::Success, "{:?}", second.jobs);
    assert_eq!(second.jobs[0].agent_id.as_deref(), Some("agent-2"));
    let logs = stack.log_text(second.run.run_id.as_str()).await;
    for line in [
        "Cache restored from key tools-v1 (",
        "tool restored",
        "Cache for key tools-v1 was restored exactly; not saved",
        "Cache restored from key out-v1 (",
        &format!("previous: from {}", first.run.run_id),
        &format!("ctx.cache hit=true matched=notes-{}", first.run.run_id),
    ] {
        assert!(logs.contains(line), "{line}: {logs}");
    }
    assert!(!logs.contains("tool built"), "{logs}");
    let events = stack.get(&format!("/api/v1/runs/{}/events", second.run.run_id)).await;
    let restores: Vec<(String, String)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["eventType"] == "orchestrator.cache.restore")
        .map(|e| {
            (
                e["metadata"]["key"].as_str().unwrap().to_string(),
                e["metadata"]["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        restores.contains(&("tools-v1".to_string(), "hit".to_string())),
        "{restores:?}"
    );
    assert!(
        restores.contains(&("out-v1".to_string(), "hit".to_string())),
        "{restores:?}"
    );
}

#[tokio::test]
async fn caches_saved_by_one_agent_are_restored_by_another() {
    let mut stack = Stack::start().await;
    let repo = write_project(&stack);
    first_saves_second_restores(&mut stack, &repo).await;

    // An archive that is not the one its checksum names is never unpacked: the restore counts
    // as a miss with a warning, and the init command builds the tool again.
    let cache_dir = stack.data_dir().join("storage/cache");
    let archives: Vec<std::path::PathBuf> = kici_testkit::files_with_extension(&cache_dir, "gz");
    assert!(!archives.is_empty());
    for archive in &archives {
        std::fs::write(archive, b"tampered").unwrap();
    }
    repo.write("README.md", "tampered\n");
    repo.commit_and_push("a third run");
    let tampered = stack.push_and_wait("app", &repo, "cached").await;
    assert_eq!(tampered.run.status, RunStatus::Success, "{:?}", tampered.jobs);
    let logs = stack.log_text(tampered.run.run_id.as_str()).await;
    assert!(
        logs.contains("[kici] cache restore failed for key tools-v1: Cache archive hash mismatch: expected "),
        "{logs}"
    );
    assert!(
        logs.contains("tool built") && logs.contains("no previous result"),
        "{logs}"
    );
}

/// A save beyond `KICI_USER_CACHE_QUOTA_BYTES` is refused with the quota in the message; the
/// job still succeeds, and nothing is stored.
#[tokio::test]
async fn a_full_cache_quota_refuses_the_save_and_says_why() {
    let mut stack = Stack::start_with(&[("KICI_USER_CACHE_QUOTA_BYTES", "64")]).await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = write_project(&stack);
    stack.add_local_source("app", &repo).await;
    let run = stack.push_and_wait("app", &repo, "cached").await;
    // `ctx.cache.save` rejects, so the step (and the job) fail: the author sees the refusal.
    assert_eq!(run.run.status, RunStatus::Failed, "{:?}", run.jobs);
    let logs = stack.log_text(run.run.run_id.as_str()).await;
    assert!(
        logs.contains("[kici] cache save failed for key tools-v1: Cache quota exceeded: saving 'tools-v1' ("),
        "{logs}"
    );
    assert!(logs.contains("of 64 bytes (KICI_USER_CACHE_QUOTA_BYTES)"), "{logs}");
    assert_eq!(run.jobs[0].error_message.as_deref(), Some("Step 'use' failed"));
    let steps = run.jobs[0].steps.clone().unwrap();
    let step = steps.iter().find(|s| s.step_name == "use").unwrap();
    let error = step.error_message.clone().unwrap();
    assert!(
        error.starts_with(&format!(
            "cache save failed for key notes-{}: Cache quota exceeded",
            run.run.run_id
        )),
        "{error}"
    );
    assert!(kici_testkit::files_with_extension(&stack.data_dir().join("storage/cache"), "gz").is_empty());
}

/// The same two runs with the caches on S3-compatible storage.
#[tokio::test]
async fn caches_work_on_s3_compatible_storage() {
    let Some((mut stack, endpoint, bucket)) = Stack::start_on_s3(None, &[]).await else {
        return;
    };
    let repo = write_project(&stack);
    first_saves_second_restores(&mut stack, &repo).await;
    let listing = reqwest::Client::new()
        .get(format!("{endpoint}/{bucket}?list-type=2&prefix=cache/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(listing.contains(".tar.gz</Key>"), "{listing}");
}

const MISE_WORKFLOW: &str = r#"import { workflow, job, step, push } from '@kici-dev/sdk';

export default workflow('tools', {
  on: push({ branches: 'tools' }),
  jobs: [job('moo', {
    runsOn: 'linux',
    init: 'mise',
    steps: [step('moo', async ({ $ }) => { await $`cowsay moo`; })],
  })],
});
"#;

/// `init: 'mise'` with a real mise (`scripts/mise.sh`; its npm backend, so nothing comes from
/// GitHub): the tools of `mise.toml` reach the steps, and mise's data directory is a cache that
/// an agent with another home directory restores.
#[tokio::test]
async fn the_mise_preset_installs_the_tools_of_mise_toml_and_caches_them() {
    let Some(mise) = kici_testkit::test_service("KICI_TEST_MISE", "KICI_TEST_REQUIRE_MISE") else {
        return;
    };
    let mut stack = Stack::start().await;
    let path = format!("{mise}:{}", std::env::var("PATH").unwrap_or_default());
    let home = |name: &str| {
        let dir = stack.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir.to_string_lossy().to_string()
    };
    let (first_home, second_home) = (home("home-1"), home("home-2"));
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    repo.write(
        "mise.toml",
        "[tools]\n\"npm:cowsay\" = \"1.6.0\"\n\n[settings]\nnpm.package_manager = \"npm\"\n",
    );
    repo.write(".kici/workflows/tools.ts", MISE_WORKFLOW);
    repo.compile();
    repo.commit_and_push("tools from mise.toml");
    stack
        .start_agent_with("agent-1", &["linux"], &[("PATH", &path), ("HOME", &first_home)])
        .await;
    stack.add_local_source("app", &repo).await;

    let first = stack.push_and_wait("app", &repo, "tools").await;
    assert_eq!(first.run.status, RunStatus::Success, "{:?}", first.jobs);
    let logs = stack.log_text(first.run.run_id.as_str()).await;
    assert!(logs.contains("Cache not found for key mise-"), "{logs}");
    assert!(logs.contains("Cache saved with key mise-"), "{logs}");
    assert!(logs.contains("< moo >"), "{logs}");

    stack.kill_agent(0, "agent-1").await;
    stack
        .start_agent_with("agent-2", &["linux"], &[("PATH", &path), ("HOME", &second_home)])
        .await;
    repo.write("README.md", "again\n");
    repo.commit_and_push("a second run");
    let second = stack.push_and_wait("app", &repo, "tools").await;
    assert_eq!(second.run.status, RunStatus::Success, "{:?}", second.jobs);
    let logs = stack.log_text(second.run.run_id.as_str()).await;
    assert!(logs.contains("Cache restored from key mise-"), "{logs}");
    assert!(logs.contains("< moo >"), "{logs}");
    assert!(
        std::path::Path::new(&second_home)
            .join(".local/share/mise/installs/npm-cowsay/1.6.0")
            .exists()
    );
}

/// Caches unused for `KICI_USER_CACHE_TTL_MS` are deleted with their archives by the hourly
/// upkeep (here: at the restart); the next run misses and saves them again.
#[tokio::test]
async fn caches_unused_past_their_ttl_are_deleted() {
    let mut stack = Stack::start_with(&[("KICI_USER_CACHE_TTL_MS", "1")]).await;
    stack.start_agent("agent-1", &["linux"]).await;
    let repo = write_project(&stack);
    stack.add_local_source("app", &repo).await;
    let first = stack.push_and_wait("app", &repo, "cached").await;
    assert_eq!(first.run.status, RunStatus::Success, "{:?}", first.jobs);
    let archives = stack.data_dir().join("storage/cache");
    assert!(!kici_testkit::files_with_extension(&archives, "gz").is_empty());

    stack.restart_orchestrator();
    stack
        .wait_for("the unused caches to go", || async {
            kici_testkit::files_with_extension(&archives, "gz")
                .is_empty()
                .then_some(())
        })
        .await;
    stack.wait_agent_connected("agent-1").await;
    repo.write("README.md", "after expiry\n");
    repo.commit_and_push("after expiry");
    let again = stack.push_and_wait("app", &repo, "cached").await;
    assert_eq!(again.run.status, RunStatus::Success, "{:?}", again.jobs);
    let logs = stack.log_text(again.run.run_id.as_str()).await;
    assert!(logs.contains("Cache not found for key tools-v1"), "{logs}");
    assert!(logs.contains("tool built"), "{logs}");
}
