//! The built `kici-agent` binary: refusing bad configuration (exit 2, message on stderr), the
//! first log line (on stdout and in the `KICI_LOG_DIR` file), `/health`, `/ready` and
//! `/metrics`, SIGTERM (close 1000, exit 0) and an authentication failure (exit 1, no
//! reconnect).

mod support;

use std::process::Stdio;

use kici_engine::protocol::{AgentMessage, OrchestratorMessage};
use serde_json::Value;
use support::{Orchestrator, Read, WAIT};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Runs `kici-agent` with exactly `vars` (plus `PATH` and `HOME` unless given).
fn agent(vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kici-agent"));
    command.env_clear();
    for name in ["PATH", "HOME"] {
        if let Ok(value) = std::env::var(name) {
            command.env(name, value);
        }
    }
    command.envs(vars.iter().copied());
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn refused(vars: &[(&str, &str)]) -> String {
    let output = tokio::time::timeout(WAIT, agent(vars).output())
        .await
        .expect("exits in time")
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    stderr
}

#[tokio::test]
async fn bad_configuration_is_refused_with_exit_code_2() {
    let base = [
        ("KICI_ORCHESTRATOR_URL", "ws://127.0.0.1:1/ws"),
        ("KICI_AGENT_TOKEN", ""),
    ];
    let with = |extra: (&'static str, &'static str)| {
        let mut vars = base.to_vec();
        vars.push(extra);
        vars
    };

    let stderr = refused(&with(("KICI_PROT", "9000"))).await;
    assert!(
        stderr.contains("Unknown KICI_* env var(s) detected — refusing to start."),
        "{stderr}"
    );
    assert!(stderr.contains("KICI_PROT    (did you mean KICI_PORT?)"), "{stderr}");

    let stderr = refused(&with(("KICI_LABELS", "gpu,kici:os:linux"))).await;
    assert!(stderr.contains("`kici:os:linux`"), "{stderr}");

    let stderr = refused(&with(("KICI_LOG_RETENTION_DAYS", "forever"))).await;
    assert!(
        stderr.contains("invalid KICI_LOG_RETENTION_DAYS `forever` (hint: use a whole number of days, 1 or more)"),
        "{stderr}"
    );
    let not_a_dir = tempfile::NamedTempFile::new().unwrap();
    let under_a_file = not_a_dir.path().join("logs").display().to_string();
    let mut vars: Vec<(&str, &str)> = base.to_vec();
    vars.push(("KICI_LOG_DIR", &under_a_file));
    let stderr = refused(&vars).await;
    assert!(stderr.contains("cannot write logs to KICI_LOG_DIR"), "{stderr}");

    let stderr = refused(&[("KICI_AGENT_TOKEN", "")]).await;
    assert!(stderr.contains("KICI_ORCHESTRATOR_URL is not set"), "{stderr}");

    let stderr = refused(&with(("KICI_AGENT_TOKEN_FILE", "/nonexistent/token"))).await;
    assert!(
        stderr.contains("KICI_AGENT_TOKEN and KICI_AGENT_TOKEN_FILE are both set"),
        "{stderr}"
    );
    let stderr = refused(&[
        ("KICI_ORCHESTRATOR_URL", "ws://127.0.0.1:1/ws"),
        ("KICI_AGENT_TOKEN_FILE", "/nonexistent/token"),
    ])
    .await;
    assert!(
        stderr.contains("cannot read KICI_AGENT_TOKEN_FILE `/nonexistent/token`: "),
        "{stderr}"
    );

    let empty_path = tempfile::tempdir().unwrap();
    let mut vars = base.to_vec();
    let path = empty_path.path().display().to_string();
    vars.push(("PATH", &path));
    let stderr = refused(&vars).await;
    assert!(
        stderr.contains("Agent required-tools validation failed: git not found on PATH"),
        "{stderr}"
    );
}

/// The agent's JSON log lines.
struct Logs {
    lines: Lines<BufReader<ChildStdout>>,
}

impl Logs {
    fn of(child: &mut Child) -> Logs {
        Logs {
            lines: BufReader::new(child.stdout.take().expect("stdout piped")).lines(),
        }
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .expect("a log line in time")
            .expect("read stdout")
            .expect("the agent is still logging");
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("log line is not JSON ({err}): {line}"))
    }

    /// Log lines up to and including the one whose message is `message`.
    async fn until(&mut self, message: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let line = self.next().await;
            let found = line["message"] == message;
            seen.push(line);
            if found {
                return seen;
            }
        }
    }
}

/// `GET <path>` on the health port: status code and body.
async fn get(port: u16, path: &str) -> (u16, String) {
    get_with(port, path, "").await
}

/// `GET <path>` with `headers` (each ending in `\r\n`): status code and body.
async fn get_with(port: u16, path: &str, headers: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut response))
        .await
        .expect("response in time")
        .expect("read");
    let code = response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("status line in {response}"));
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (code, body)
}

#[tokio::test]
async fn health_ready_and_sigterm() {
    let orchestrator = Orchestrator::bind().await;
    let url = format!("http://127.0.0.1:{}", orchestrator.port());
    let work_dir = tempfile::tempdir().unwrap();
    let work = work_dir.path().display().to_string();
    let log_dir = tempfile::tempdir().unwrap();
    let logs_path = log_dir.path().display().to_string();
    let mut child = agent(&[
        ("KICI_ORCHESTRATOR_URL", &url),
        ("KICI_AGENT_TOKEN", "kat_e2e"),
        ("KICI_AGENT_ID", "bin-agent"),
        ("KICI_LABELS", "e2e"),
        ("KICI_PORT", "0"),
        ("KICI_WORK_DIR", &work),
        ("KICI_HEARTBEAT_INTERVAL_MS", "60000"),
        ("KICI_LOG_DIR", &logs_path),
        ("KICI_METRICS_TOKEN", "scrape"),
    ])
    .spawn()
    .expect("spawn kici-agent");
    let mut logs = Logs::of(&mut child);

    let first = logs.next().await;
    assert_eq!(first["message"], "agent.build.info", "{first}");
    assert_eq!(first["sdkBundleHash"], kici_sdk::sdk().hash);
    let listening = logs.until("agent.listening").await.pop().unwrap();
    let port = listening["port"].as_u64().expect("port field") as u16;

    let (code, body) = get(port, "/health").await;
    assert_eq!(code, 200);
    let health: Value = serde_json::from_str(&body).expect("health JSON");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["service"], "agent");
    assert_eq!(health["sdkVersion"], kici_sdk::sdk().version);
    assert_eq!(health["engineBundleHash"], kici_sdk::engine().hash);

    // Connected but not yet registered: not ready.
    let mut peer = orchestrator.accept().await;
    let auth = peer.recv().await;
    assert!(
        matches!(&auth, AgentMessage::AuthRequest { token, protocol_version: kici_engine::protocol::PROTOCOL_VERSION } if token == "kat_e2e"),
        "{auth:?}"
    );
    assert_eq!(get(port, "/ready").await.0, 503);
    peer.send(&OrchestratorMessage::AuthSuccess {
        connection_id: "c".into(),
    })
    .await;
    let AgentMessage::Register(registration) = peer.recv().await else {
        panic!("expected agent.register");
    };
    assert_eq!(registration.agent_id, "bin-agent");
    assert!(registration.labels.iter().any(|l| l == "e2e"));
    peer.send(&OrchestratorMessage::RegisterAck {
        agent_id: "bin-agent".into(),
        labels: registration.labels.clone(),
    })
    .await;
    let registered = logs.until("agent.registered").await.pop().unwrap();
    assert_eq!(registered["agentId"], "bin-agent");
    assert_eq!(get(port, "/ready").await.0, 200);

    assert_eq!(get(port, "/metrics").await.0, 401);
    let (code, metrics) = get_with(port, "/metrics", "Authorization: Bearer scrape\r\n").await;
    assert_eq!(code, 200, "{metrics}");
    assert!(metrics.contains("\nkici_agent_connection_status 1\n"), "{metrics}");
    assert!(metrics.contains("\nkici_agent_jobs_active 0\n"), "{metrics}");
    match kici_telemetry::metrics::promtool::check(&metrics) {
        Ok(kici_telemetry::metrics::promtool::Checked::Passed) => {}
        Ok(kici_telemetry::metrics::promtool::Checked::Skipped(note)) => eprintln!("{note}"),
        Err(problem) => panic!("{problem}\n{metrics}"),
    }

    let pid = child.id().expect("running").to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill runs");
    assert!(status.success());
    loop {
        match peer.read().await {
            Read::Closed(code) => {
                assert_eq!(code, Some(1000));
                break;
            }
            Read::Message(AgentMessage::Status { draining: true, .. }) => {}
            Read::Message(other) => panic!("unexpected {other:?}"),
        }
    }
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("exits in time")
        .expect("wait");
    assert_eq!(status.code(), Some(0));

    // The same lines went to `<dir>/agent-<agentId>-<date>.log`, build info first.
    let files: Vec<String> = std::fs::read_dir(log_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].starts_with("agent-bin-agent-") && files[0].ends_with(".log"),
        "{files:?}"
    );
    let text = std::fs::read_to_string(log_dir.path().join(&files[0])).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines[0]["message"], "agent.build.info", "{text}");
    assert!(lines.iter().any(|l| l["message"] == "agent.registered"), "{text}");
    assert!(lines.iter().any(|l| l["message"] == "agent.stopped"), "{text}");
}

#[tokio::test]
async fn an_auth_failure_exits_with_code_1() {
    let orchestrator = Orchestrator::bind().await;
    let url = orchestrator.url();
    let mut child = agent(&[
        ("KICI_ORCHESTRATOR_URL", &url),
        ("KICI_AGENT_TOKEN", "kat_wrong"),
        ("KICI_PORT", "0"),
    ])
    .spawn()
    .expect("spawn kici-agent");
    let mut logs = Logs::of(&mut child);
    let mut peer = orchestrator.accept().await;
    assert!(matches!(peer.recv().await, AgentMessage::AuthRequest { .. }));
    peer.send(&OrchestratorMessage::AuthFailure {
        reason: "token revoked".into(),
    })
    .await;
    let failed = logs.until("agent.auth_failed").await;
    assert_eq!(failed.last().unwrap()["reason"], "token revoked");
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("exits in time")
        .expect("wait");
    assert_eq!(status.code(), Some(1));
}

/// A job runs as the agent's user; it must not read the agent's token from
/// `/proc/<agent>/environ`. As root the test runs both sides as `nobody` (root reads anything).
#[tokio::test]
async fn a_process_of_the_agents_user_cannot_read_its_token() {
    let as_user = |program: &str| -> Command {
        let root = running_as_root();
        let mut command = if root {
            let mut command = Command::new("setpriv");
            command.args(["--reuid=65534", "--regid=65534", "--clear-groups", program]);
            command
        } else {
            Command::new(program)
        };
        command.kill_on_drop(true);
        command
    };
    // The same user can read an ordinary process's environment: the check below means something.
    let mut sleeper = as_user("sleep");
    sleeper.arg("30").env("PROBE_SECRET", "visible");
    let sleeper = sleeper.spawn().expect("sleep runs");
    let environ = |pid: u32| {
        let mut cat = as_user("cat");
        cat.arg(format!("/proc/{pid}/environ"));
        cat
    };
    // Polled: until setpriv has switched user and exec'd, the process is root's.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let output = environ(sleeper.id().unwrap()).output().await.unwrap();
        if String::from_utf8_lossy(&output.stdout).contains("PROBE_SECRET=visible") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "control: {output:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let work = tempfile::tempdir().unwrap();
    std::fs::set_permissions(work.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let mut agent = as_user(env!("CARGO_BIN_EXE_kici-agent"));
    agent
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", work.path())
        .env("KICI_ORCHESTRATOR_URL", "ws://127.0.0.1:1/ws")
        .env("KICI_AGENT_TOKEN", "kat_probe_secret")
        .env("KICI_WORK_DIR", work.path())
        .env("KICI_PORT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = agent.spawn().expect("the agent starts");
    let mut logs = Logs::of(&mut child);
    let first = logs.next().await;
    assert_eq!(first["message"], "agent.build.info", "{first}");
    let output = environ(child.id().unwrap()).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("kat_probe_secret"), "the token was readable: {stdout}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("Permission denied"),
        "{output:?}"
    );
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"))
}
