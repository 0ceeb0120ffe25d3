//! `kici-admin orchestrator|agent install|start|status|logs|upgrade|stop|uninstall` against a
//! real systemd: a Podman container whose first process is systemd (Debian's, on the KiCI base
//! image), with this build's binaries mounted read-only at `/kici`. The services run as
//! systemd runs them on a server: hardened units, a user of their own, the journal.
//! Needs Podman and the base image (`scripts/base-image.sh`).

// Helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use kici_testkit::podman::ready;
use kici_testkit::systemd::Host;

const TOKEN: &str = "services-test-admin-token-0123456789";

/// `kici-admin args` in the container, which must exit `code`; its output.
fn admin(host: &Host, code: i32, args: &[&str]) -> String {
    let mut all = vec!["/kici/kici-admin"];
    all.extend_from_slice(args);
    let (exit, output) = host.run(&all);
    assert_eq!(exit, code, "kici-admin {args:?}:\n{output}");
    output
}

/// `kici-admin` against the orchestrator in the container.
fn api(host: &Host, args: &[&str]) -> String {
    let mut all = vec!["-u", "http://127.0.0.1:4000", "-t", TOKEN];
    all.extend_from_slice(args);
    admin(host, 0, &all)
}

/// The version directory a message names after `what` (`… runs 0.1.0-abc (previous: …)`).
fn version_after<'a>(text: &'a str, what: &str) -> &'a str {
    let rest = &text[text.find(what).unwrap_or_else(|| panic!("no `{what}` in {text}")) + what.len()..];
    rest.split([' ', ')', ',']).next().unwrap().trim_end_matches('.')
}

#[tokio::test]
async fn the_services_install_start_upgrade_roll_back_and_uninstall_under_systemd() {
    if !ready("the systemd service test") {
        return;
    }
    let binaries = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("debug");
    let host = Host::start(&[(&binaries, "/kici")]);

    // Install and start the orchestrator.
    host.write(
        "/root/orchestrator.env",
        &format!("KICI_BOOTSTRAP_ADMIN_TOKEN={TOKEN}\n"),
    );
    let installed = admin(
        &host,
        0,
        &[
            "orchestrator",
            "install",
            "--binary",
            "/kici/kici-orchestrator",
            "--env-file",
            "/root/orchestrator.env",
        ],
    );
    assert!(
        installed.starts_with("Installed kici-orchestrator (0.1.0-"),
        "{installed}"
    );
    let first = version_after(&installed, "Installed kici-orchestrator (").to_string();
    let taken = admin(
        &host,
        1,
        &[
            "agent",
            "install",
            "--name",
            "kici-orchestrator",
            "--binary",
            "/kici/kici-agent",
        ],
    );
    assert!(
        taken.contains("`kici-orchestrator` is the orchestrator's name (hint: pass another --name)"),
        "{taken}"
    );
    let again = admin(
        &host,
        1,
        &["orchestrator", "install", "--binary", "/kici/kici-orchestrator"],
    );
    assert!(again.contains("kici-orchestrator is installed already"), "{again}");
    let (_, mode) = host.run(&["stat", "-c", "%a", "/etc/kici/kici-orchestrator/kici-orchestrator.env"]);
    assert_eq!(mode.trim(), "600");
    let started = admin(&host, 0, &["orchestrator", "start"]);
    assert_eq!(started, format!("kici-orchestrator is running ({first}).\n"));
    let status = admin(&host, 0, &["orchestrator", "status"]);
    assert!(status.contains("State:    active (running), PID "), "{status}");
    assert!(status.contains(&format!("Version:  {first}\n")), "{status}");
    // What it says of itself, asked with the token of its settings.
    let section = &status[status.find("--- KiCI orchestrator ---\n").expect(&status)..];
    let lines: Vec<&str> = section.lines().collect();
    assert_eq!(
        lines,
        [
            "--- KiCI orchestrator ---",
            "Mode:     independent, leader of 1 instance",
            "Port:     4000 on 127.0.0.1",
            "Database: sqlite:///var/lib/kici/kici-orchestrator/kici.db?mode=rwc",
            "Agents:   none connected",
            "Scaler:   none (agents are started by hand)",
            "Jobs:     0 waiting for an agent (0 runs in progress)",
        ],
        "{status}"
    );
    // It runs as a system user of its own, not root.
    let main_pid = "stat -c %U /proc/$(systemctl show -p MainPID --value kici-orchestrator)";
    assert_eq!(host.run(&["sh", "-c", main_pid]).1.trim(), "kici-orchestrator");
    api(&host, &["token", "create", "--label", "made-before-the-upgrade"]);
    let logs = admin(&host, 0, &["orchestrator", "logs", "--no-follow"]);
    assert!(logs.contains("\"message\":\"orchestrator.listening\""), "{logs}");
    let errors = admin(&host, 0, &["orchestrator", "logs", "--no-follow", "--level", "error"]);
    assert!(!errors.contains("orchestrator.listening"), "{errors}");

    // An agent, registered with it.
    let registered = api(&host, &["agent", "register", "--label", "builder", "--labels", "linux"]);
    let agent_token = registered
        .lines()
        .find_map(|l| l.strip_prefix("Token:"))
        .unwrap()
        .trim();
    host.write(
        "/root/agent.env",
        &format!("KICI_ORCHESTRATOR_URL=ws://127.0.0.1:4000/ws\nKICI_AGENT_TOKEN={agent_token}\nKICI_LABELS=linux\n"),
    );
    admin(
        &host,
        0,
        &[
            "agent",
            "install",
            "--binary",
            "/kici/kici-agent",
            "--env-file",
            "/root/agent.env",
        ],
    );
    admin(&host, 0, &["agent", "start"]);
    let mut healthy = false;
    for _ in 0..100 {
        let (code, _) = host.run(&[
            "/kici/kici-admin",
            "-u",
            "http://127.0.0.1:4000",
            "-t",
            TOKEN,
            "diagnose",
        ]);
        if code == 0 {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(healthy, "{}", api(&host, &["agent", "list"]));
    let status = admin(&host, 0, &["orchestrator", "status"]);
    assert!(status.contains("\nAgents:   1 connected ("), "{status}");
    let json = admin(&host, 0, &["orchestrator", "status", "--json"]);
    assert!(!json.contains(TOKEN), "{json}");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let report = &json["orchestrator"];
    assert_eq!(
        (
            &report["port"],
            &report["role"],
            &report["scalers"],
            &report["waitingJobs"]
        ),
        (
            &serde_json::json!(4000),
            &serde_json::json!("leader"),
            &serde_json::json!([]),
            &serde_json::json!(0)
        ),
        "{json}"
    );
    assert_eq!(report["agents"].as_array().map(Vec::len), Some(1), "{json}");

    // A push to a local repository runs its workflow on the agent service. The repository is
    // root's, so the services' users are told to trust it (git refuses a repository another
    // user owns: "dubious ownership"), as docs/services.md says.
    let (code, output) = host.run(&[
        "sh",
        "-ec",
        &format!(
            "git init -q --bare /srv/app.git && git config --system --add safe.directory /srv/app.git \
             && git clone -q /srv/app.git /srv/app && cd /srv/app \
             && mkdir -p .kici/workflows && printf '%s\\n' \
                \"import {{ workflow, job, step, push }} from '@kici-dev/sdk';\" \
                \"export default workflow('hello-world', {{ on: push(), jobs: [job('greet', {{ runsOn: 'linux', steps: [step('say', async ({{ $ }}) => {{ await $\\`echo hello from the service\\`; }})] }})] }});\" \
                > .kici/workflows/hello.ts \
             && /kici/kici compile >/dev/null && git add -A \
             && git -c user.name=ops -c user.email=ops@example.com commit -qm hello \
             && /kici/kici-admin -u http://127.0.0.1:4000 -t {TOKEN} source add local --name app --path /srv/app.git >/dev/null \
             && /kici/kici-admin -u http://127.0.0.1:4000 -t {TOKEN} source install-hook app >/dev/null \
             && git push -q origin HEAD:main"
        ),
    ]);
    assert_eq!(code, 0, "{output}");
    let token_env = format!("KICI_TOKEN={TOKEN}");
    let kici = [
        "env",
        "KICI_URL=http://127.0.0.1:4000",
        token_env.as_str(),
        "/kici/kici",
    ];
    let mut runs = String::new();
    for _ in 0..150 {
        runs = host.run(&[&kici[..], &["runs", "list"]].concat()).1;
        if runs.contains("success") || runs.contains("failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let id = runs
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("");
    let log = host.run(&[&kici[..], &["runs", "logs", id]].concat()).1;
    assert!(
        runs.contains("success") && log.contains("hello from the service"),
        "{runs}\n{log}"
    );

    // A newer build: the data stays, the old build is kept.
    host.run(&[
        "sh",
        "-c",
        "cp /kici/kici-orchestrator /root/next && printf x >> /root/next",
    ]);
    let upgraded = admin(&host, 0, &["orchestrator", "upgrade", "--binary", "/root/next"]);
    let next = version_after(&upgraded, "kici-orchestrator runs ").to_string();
    assert_ne!(next, first);
    assert!(upgraded.contains(&format!("(previous: {first})")), "{upgraded}");
    assert!(api(&host, &["token", "list"]).contains("made-before-the-upgrade"));
    // A build that does not run is taken out again.
    host.write(
        "/root/broken",
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'kici-orchestrator 9.9.9'; else exit 1; fi\n",
    );
    host.run(&["chmod", "755", "/root/broken"]);
    let refused = admin(&host, 1, &["orchestrator", "upgrade", "--binary", "/root/broken"]);
    assert!(
        refused.contains(&format!("kici-orchestrator went back to {next}")),
        "{refused}"
    );
    assert!(admin(&host, 0, &["orchestrator", "status"]).contains(&format!("Version:  {next} (previous: {first})")));
    let back = admin(&host, 0, &["orchestrator", "upgrade", "--rollback"]);
    assert_eq!(back, format!("kici-orchestrator runs {first} (previous: {next}).\n"));
    assert!(api(&host, &["token", "list"]).contains("made-before-the-upgrade"));

    // Stopped, then gone.
    admin(&host, 0, &["orchestrator", "stop"]);
    let stopped_json: serde_json::Value =
        serde_json::from_str(&admin(&host, 3, &["orchestrator", "status", "--json"])).unwrap();
    assert_eq!(stopped_json["orchestrator"], serde_json::Value::Null, "{stopped_json}");
    let stopped = admin(&host, 3, &["orchestrator", "status"]);
    assert!(stopped.contains("State:    inactive (dead)"), "{stopped}");
    assert!(!stopped.contains("--- KiCI orchestrator ---"), "{stopped}");
    admin(&host, 0, &["agent", "uninstall"]);
    let gone = admin(&host, 0, &["orchestrator", "uninstall"]);
    assert!(
        gone.contains("Its data stays in /var/lib/kici/kici-orchestrator."),
        "{gone}"
    );
    let missing = admin(&host, 1, &["orchestrator", "status"]);
    assert!(missing.contains("kici-orchestrator is not installed"), "{missing}");

    // A user's own service, under the user's manager (lingering, so it runs logged out).
    host.sh("useradd -m ci && loginctl enable-linger ci");
    let as_ci = |args: &str| {
        host.run(&[
            "sh",
            "-c",
            &format!(
                "for _ in $(seq 50); do [ -d /run/user/$(id -u ci) ] && break; sleep 0.1; done; \
                 runuser -u ci -- env XDG_RUNTIME_DIR=/run/user/$(id -u ci) HOME=/home/ci /kici/kici-admin {args}"
            ),
        ])
    };
    let (code, installed) = as_ci("orchestrator install --binary /kici/kici-orchestrator");
    assert_eq!(code, 0, "{installed}");
    assert!(
        installed.contains("unit /home/ci/.config/systemd/user/kici-orchestrator.service, settings /home/ci/.config/kici/kici-orchestrator/kici-orchestrator.env, data /home/ci/.local/state/kici/kici-orchestrator."),
        "{installed}"
    );
    assert!(
        installed.contains("`kici-admin orchestrator start --user-level`"),
        "{installed}"
    );
    let (code, started) = as_ci("orchestrator start");
    assert_eq!(code, 0, "{started}");
    let (code, status) = as_ci("orchestrator status");
    assert_eq!(code, 0, "{status}");
    assert!(status.contains("Service:  kici-orchestrator (user)"), "{status}");
    assert!(status.contains("State:    active (running), PID "), "{status}");
    // Asked with the token it wrote to its data directory, which the user reads.
    assert!(status.contains("\nAgents:   none connected\n"), "{status}");
    let (_, owner) = host.run(&[
        "sh",
        "-c",
        "stat -c %U /home/ci/.local/state/kici/kici-orchestrator/kici.db",
    ]);
    assert_eq!(owner.trim(), "ci");
    let (code, logs) = as_ci("orchestrator logs --no-follow --level info");
    assert_eq!(code, 0, "{logs}");
    assert!(logs.contains("\"message\":\"orchestrator.listening\""), "{logs}");
    // A reader that is gone (`| head` that has read its lines) ends the command quietly.
    let (code, head) = host.run(&[
        "bash",
        "-c",
        "set -o pipefail; (sleep 0.5; runuser -u ci -- env XDG_RUNTIME_DIR=/run/user/$(id -u ci) HOME=/home/ci \
         /kici/kici-admin orchestrator logs --no-follow) | true",
    ]);
    assert_eq!(code, 0, "{head}");
    assert!(!head.contains("panicked"), "{head}");
    let (code, gone) = as_ci("orchestrator uninstall --purge");
    assert_eq!(code, 0, "{gone}");
    assert!(
        gone.contains("Its data stays in /home/ci/.local/state/kici/kici-orchestrator."),
        "{gone}"
    );
}
