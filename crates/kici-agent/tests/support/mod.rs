//! Test support for the agent: a committed copy of `tests/repo` with its lock file compiled
//! in-process, a scripted orchestrator (a WebSocket server the test drives message by
//! message), and an agent running in-process against it.
//!
//! Every wait has a deadline ([`WAIT`]); nothing synchronises by sleeping.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kici_engine::event::{EventEnvelope, EventType};
use kici_engine::lockfile::LockFile;
use kici_engine::protocol::{AgentMessage, JobConfig, JobDispatch, JobKind, OrchestratorMessage};
use kici_engine::status::JobStatus;
use serde_json::{Map, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Upper bound on any single wait (git, Node and a busy two-core machine included).
pub const WAIT: Duration = Duration::from_secs(90);

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A git repository holding a copy of `tests/repo` plus extra test workflows.
pub struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    /// `tests/repo` plus `extra` files, committed on `main`.
    pub fn new(extra: &[(&str, &str)]) -> Repo {
        let dir = tempfile::Builder::new()
            .prefix("kici-agent-test-")
            .tempdir()
            .expect("temp dir");
        copy_dir(&repo_root().join("tests/repo"), dir.path());
        let repo = Repo { dir };
        for (path, content) in extra {
            repo.write(path, content);
        }
        repo.git(&["init", "-q", "-b", "main"]);
        repo.commit();
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, relative: &str, content: &str) {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("create dirs");
        std::fs::write(path, content).expect("write file");
    }

    pub fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .args([
                "-c",
                "user.name=KiCI Test",
                "-c",
                "user.email=test@kici.local",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(self.path())
            .output()
            .expect("git runs");
        assert!(
            output.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Commits everything; returns the new HEAD.
    pub fn commit(&self) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", "test"]);
        self.head()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    /// The lock file of the working tree, compiled in-process.
    pub async fn compile(&self) -> LockFile {
        let project = kici_compiler::project::Project {
            root: self.path().to_path_buf(),
            kici_dir: self.path().join(".kici"),
        };
        let node = kici_compiler::runner::find_node(None).expect("node on PATH");
        kici_compiler::compile::compile(&project, node)
            .await
            .unwrap_or_else(|err| panic!("test repo compiles: {err}"))
            .lock
    }

    /// A dispatch of `workflow`/`job` at `sha`, with the lock's contentHash.
    pub fn dispatch(&self, lock: &LockFile, workflow: &str, job: &str, sha: &str, kind: JobKind) -> JobDispatch {
        let locked = lock
            .workflow(workflow)
            .unwrap_or_else(|| panic!("workflow {workflow} in lock"));
        let mut env = Map::new();
        env.insert("KICI_RUN_ID".into(), Value::String("run-1".into()));
        let mut event = EventEnvelope::new(EventType::Push);
        event.target_branch = Some("main".into());
        event.sha = Some(sha.to_string());
        JobDispatch {
            run_id: "run-1".into(),
            job_id: format!("job-{workflow}-{job}").into(),
            repo_url: format!("file://{}", self.path().display()),
            git_ref: "refs/heads/main".into(),
            sha: sha.to_string(),
            job_config: JobConfig {
                kind,
                repo: "app".into(),
                workflow_name: workflow.to_string(),
                workflow_file: locked.source.file.clone(),
                content_hash: locked.content_hash.clone(),
                resolved_hash_files: locked.resolved_hash_files.clone(),
                job_name: job.to_string(),
                display_name: job.to_string(),
                matrix: None,
                timeout_ms: None,
                dynamic_index: None,
                env,
                job_env: None,
                environments: Vec::new(),
                lockfile_hash: None,
                checkout: true,
                base_workflows: false,
                pick_any: false,
                concurrency_group: None,
                grace_period_secs: None,
                concurrency_wait_timeout_ms: None,
                registries: Vec::new(),
                install_env: Vec::new(),
            },
            event,
            needs: Map::new(),
            timestamp: 0,
            secrets: Default::default(),
            deps: None,
            npm_registries: Vec::new(),
            install_env_secrets: Default::default(),
            source_tar_url: None,
            clone_credentials: None,
            served_repository: None,
            orchestrator_url: None,
            cache: None,
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("fixture entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            std::fs::create_dir_all(&target).expect("create dir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// The orchestrator side: a listener the agent dials.
pub struct Orchestrator {
    listener: TcpListener,
}

impl Orchestrator {
    pub async fn bind() -> Orchestrator {
        Orchestrator {
            listener: TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.listener.local_addr().expect("address"))
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().expect("address").port()
    }

    /// The next agent connection, WebSocket handshake done.
    pub async fn accept(&self) -> Peer {
        let (stream, _) = tokio::time::timeout(WAIT, self.listener.accept())
            .await
            .expect("the agent connects in time")
            .expect("accept");
        let ws = tokio_tungstenite::accept_async(stream)
            .await
            .expect("websocket handshake");
        Peer { ws }
    }

    /// Accepts, authenticates and registers an agent; returns the registration.
    pub async fn accept_registered(&self) -> (Peer, AgentMessage) {
        let mut peer = self.accept().await;
        let registration = peer.handshake().await;
        (peer, registration)
    }
}

/// One agent connection.
pub struct Peer {
    ws: WebSocketStream<TcpStream>,
}

/// What a peer read.
#[derive(Debug)]
pub enum Read {
    Message(AgentMessage),
    Closed(Option<u16>),
}

impl Peer {
    pub async fn send(&mut self, message: &OrchestratorMessage) {
        let text = serde_json::to_string(message).expect("serialize");
        self.ws.send(Message::text(text)).await.expect("send to agent");
    }

    /// The next message or close (pings skipped).
    pub async fn read(&mut self) -> Read {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("the agent says something in time");
            match frame {
                None | Some(Err(_)) => return Read::Closed(None),
                Some(Ok(Message::Close(frame))) => return Read::Closed(frame.map(|f| u16::from(f.code))),
                Some(Ok(Message::Text(text))) => {
                    let message = serde_json::from_str(text.as_str())
                        .unwrap_or_else(|err| panic!("agent sent an invalid message ({err}): {text}"));
                    return Read::Message(message);
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next message (the connection must stay open).
    pub async fn recv(&mut self) -> AgentMessage {
        match self.read().await {
            Read::Message(message) => message,
            Read::Closed(code) => panic!("the agent closed the connection ({code:?})"),
        }
    }

    /// The next message that is not a (job) heartbeat.
    pub async fn recv_significant(&mut self) -> AgentMessage {
        loop {
            match self.recv().await {
                AgentMessage::Heartbeat { .. } | AgentMessage::JobHeartbeat { .. } => {}
                message => return message,
            }
        }
    }

    /// `auth.request` → `auth.success`, `agent.register` → `register.ack`.
    pub async fn handshake(&mut self) -> AgentMessage {
        match self.recv().await {
            AgentMessage::AuthRequest { protocol_version, .. } => {
                assert_eq!(protocol_version, kici_engine::protocol::PROTOCOL_VERSION)
            }
            other => panic!("expected auth.request, got {other:?}"),
        }
        self.send(&OrchestratorMessage::AuthSuccess {
            connection_id: "c1".into(),
        })
        .await;
        let registration = self.recv().await;
        let AgentMessage::Register(register) = &registration else {
            panic!("expected agent.register, got {registration:?}");
        };
        self.send(&OrchestratorMessage::RegisterAck {
            agent_id: register.agent_id.clone(),
            labels: register.labels.clone(),
        })
        .await;
        registration
    }

    pub async fn ack(&mut self, message: &AgentMessage) {
        if let Some((job_id, seq)) = message.sequenced() {
            self.send(&OrchestratorMessage::Ack {
                job_id: job_id.clone(),
                seq,
            })
            .await;
        }
    }

    /// Job messages until the job's terminal `job.status`, each acknowledged when `ack` is set.
    pub async fn until_done(&mut self, ack: bool) -> Vec<AgentMessage> {
        let mut messages = Vec::new();
        loop {
            let message = self.recv_significant().await;
            if ack {
                self.ack(&message).await;
            }
            let done = matches!(&message, AgentMessage::JobStatus(s) if s.state.is_terminal());
            messages.push(message);
            if done {
                return messages;
            }
        }
    }

    /// Drops the TCP connection without a close frame, as a crash or a network cut would.
    pub fn cut(self) {
        drop(self.ws);
    }
}

/// The final `job.status` of `messages`.
pub fn final_status(messages: &[AgentMessage]) -> &kici_engine::protocol::JobStatusUpdate {
    messages
        .iter()
        .rev()
        .find_map(|m| match m {
            AgentMessage::JobStatus(s) if s.state.is_terminal() => Some(s.as_ref()),
            _ => None,
        })
        .expect("a final job.status")
}

/// Every log line of `messages` for `step_index` (any step when `None`).
pub fn log_lines(messages: &[AgentMessage], step_index: Option<i64>) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| match m {
            AgentMessage::LogChunk(chunk) if step_index.is_none_or(|i| i == chunk.step_index) => Some(chunk),
            _ => None,
        })
        .flat_map(|chunk| chunk.lines.iter().map(|l| l.line.clone()))
        .collect()
}

/// The terminal `step.status` of the step named `name`.
pub fn step_result<'a>(messages: &'a [AgentMessage], name: &str) -> &'a kici_engine::protocol::StepStatusUpdate {
    messages
        .iter()
        .find_map(|m| match m {
            AgentMessage::StepStatus(s) if s.step_name == name && s.state.is_terminal() => Some(s.as_ref()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("a terminal step.status for {name}"))
}

/// Sequence numbers of `messages` (unsequenced ones skipped).
pub fn seqs(messages: &[AgentMessage]) -> Vec<u64> {
    messages.iter().filter_map(|m| m.sequenced().map(|(_, s)| s)).collect()
}

/// An agent running in-process.
pub struct Agent {
    pub shutdown: mpsc::Sender<kici_agent::ShutdownSignal>,
    pub task: JoinHandle<Result<(), kici_agent::AgentError>>,
    work_dir: tempfile::TempDir,
}

impl Agent {
    pub fn start(orchestrator: &Orchestrator, extra: &[(&str, &str)]) -> Agent {
        let work_dir = tempfile::Builder::new()
            .prefix("kici-agent-work-")
            .tempdir()
            .expect("work dir");
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        vars.insert("KICI_ORCHESTRATOR_URL".into(), orchestrator.url());
        vars.insert("KICI_AGENT_TOKEN".into(), "kat_test".into());
        vars.insert("KICI_AGENT_ID".into(), "test-agent".into());
        vars.insert("KICI_PORT".into(), "0".into());
        vars.insert("KICI_WORK_DIR".into(), work_dir.path().display().to_string());
        for (name, value) in extra {
            vars.insert(name.to_string(), value.to_string());
        }
        let config = kici_agent::Config::from_env(&vars, "test-host").expect("valid config");
        let (shutdown, shutdown_rx) = mpsc::channel(4);
        let task = tokio::spawn(kici_agent::run(config, shutdown_rx));
        Agent {
            shutdown,
            task,
            work_dir,
        }
    }

    /// Stops the agent, then lists the `kici-job-*` directories left in its work dir.
    pub async fn leftover_job_dirs_after_stop(self, peer: &mut Peer) -> Vec<PathBuf> {
        let work_dir = self.stop(Some(peer)).await;
        std::fs::read_dir(work_dir.path())
            .expect("work dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("kici-job-"))
            })
            .collect()
    }

    /// SIGTERM equivalent; the agent must close the connection and stop cleanly. Returns the
    /// agent's work directory.
    pub async fn stop(self, peer: Option<&mut Peer>) -> tempfile::TempDir {
        self.shutdown
            .send(kici_agent::ShutdownSignal::Terminate)
            .await
            .expect("agent running");
        if let Some(peer) = peer {
            loop {
                match peer.read().await {
                    Read::Closed(code) => {
                        assert_eq!(code, Some(1000), "normal close");
                        break;
                    }
                    Read::Message(_) => {}
                }
            }
        }
        let result = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("agent stops in time")
            .expect("agent task");
        assert!(result.is_ok(), "agent stopped with {result:?}");
        self.work_dir
    }
}

/// Asserts `messages` is `job.ack`, `running`, ... with seq 1, 2, 3, ... and returns them.
pub fn assert_sequenced_from_start(messages: &[AgentMessage]) {
    let seqs = seqs(messages);
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "seq from 1 without gaps: {messages:#?}");
    assert!(matches!(messages[0], AgentMessage::JobAck { .. }), "{:?}", messages[0]);
    assert!(
        matches!(&messages[1], AgentMessage::JobStatus(s) if s.state == JobStatus::Running),
        "{:?}",
        messages[1]
    );
}
