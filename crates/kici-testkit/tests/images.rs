//! The repository's `Containerfile` builds the orchestrator's and the dashboard's images (the
//! agent's is built by `scripts/agent-image.sh` and run by the container scaler tests), and they
//! run: the orchestrator, as its own unprivileged user, keeps its database in its volume across
//! a new container and takes an agent from the host; the dashboard answers. Needs Podman and the
//! base image (`scripts/base-image.sh`); skipped without them unless `KICI_TEST_REQUIRE_PODMAN=1`.

// Helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use kici_testkit::podman::{Removed, build_stage, podman, ready};
use kici_testkit::{Service, binary, free_port, run_to_end};

const ADMIN_TOKEN: &str = "images-test-admin-token-0123456789";

async fn wait_ready(url: &str) {
    for _ in 0..300 {
        if reqwest::get(format!("{url}/ready"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never became ready");
}

fn admin(url: &str, args: &[&str]) -> (i32, String) {
    run_to_end(
        Command::new(binary("kici-admin"))
            .args(["--url", url, "--token", ADMIN_TOKEN])
            .args(args),
    )
}

async fn wait_healthy(url: &str) {
    let mut last = String::new();
    for _ in 0..300 {
        let (code, text) = admin(url, &["diagnose"]);
        if code == 0 {
            return;
        }
        last = text;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("kici-admin diagnose never passed:\n{last}");
}

#[tokio::test]
async fn the_containerfile_builds_orchestrator_and_platform_images_that_run() {
    if !ready("the image test") {
        return;
    }
    let tag = |stage: &str| format!("localhost/kici-{stage}:test");
    for stage in ["orchestrator", "platform"] {
        build_stage(stage, &tag(stage));
    }

    let volume = format!("kici-images-test-{}", std::process::id());
    podman(&["volume", "create", &volume]);
    let _volume = Removed::volume(volume.clone());
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let start_orchestrator = || {
        podman(&[
            "run",
            "-d",
            "-p",
            &format!("127.0.0.1:{port}:4000"),
            "-v",
            &format!("{volume}:/var/lib/kici"),
            "-e",
            &format!("KICI_BOOTSTRAP_ADMIN_TOKEN={ADMIN_TOKEN}"),
            &tag("orchestrator"),
        ])
    };
    let first = Removed::container(start_orchestrator());
    wait_ready(&url).await;
    assert_eq!(podman(&["exec", &first.id, "id", "-un"]), "kici", "not root");

    // An agent on the host, with a token the orchestrator in the container issued.
    let (code, registered) = admin(
        &url,
        &["agent", "register", "--label", "host-agent", "--labels", "linux"],
    );
    assert_eq!(code, 0, "{registered}");
    let token = registered
        .lines()
        .find_map(|l| l.strip_prefix("Token:"))
        .unwrap()
        .trim()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let vars: BTreeMap<String, String> = [
        ("KICI_ORCHESTRATOR_URL", format!("ws://127.0.0.1:{port}/ws")),
        ("KICI_AGENT_TOKEN", token),
        ("KICI_LABELS", "linux".to_string()),
        ("KICI_PORT", "0".to_string()),
        ("KICI_WORK_DIR", dir.path().display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let _agent = Service::start("kici-agent", &vars, &dir.path().join("agent.log"), "agent.listening");
    wait_healthy(&url).await;

    // A new container on the same volume: the database, with the agent's token, is still there,
    // and the agent reconnects to it.
    drop(first);
    let _second = Removed::container(start_orchestrator());
    wait_ready(&url).await;
    wait_healthy(&url).await;
    let (code, agents) = admin(&url, &["agent", "list"]);
    assert_eq!(code, 0, "{agents}");
    assert!(agents.contains("host-agent"), "{agents}");

    let platform_port = free_port();
    let _platform = Removed::container(podman(&[
        "run",
        "-d",
        "-p",
        &format!("127.0.0.1:{platform_port}:4100"),
        "-e",
        &format!("KICI_PLATFORM_ADMIN_TOKEN={ADMIN_TOKEN}"),
        &tag("platform"),
    ]));
    let platform = format!("http://127.0.0.1:{platform_port}");
    wait_ready(&platform).await;
    let health: serde_json::Value = reqwest::get(format!("{platform}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["service"], "platform", "{health}");
}
