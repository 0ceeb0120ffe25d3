//! Driving the Node runner: spawn `node --enable-source-maps runner.js` in its own process
//! group with fd 3 as the IPC socket, send it one request, and read back its messages and its
//! stdout/stderr lines as one stream of [`RunnerEvent`]s.
//!
//! This module knows the transport, not the requests: describing, evaluating and executing are
//! built on top by their callers.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use kici_engine::runner_protocol::{HostMessage, RunnerMessage};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Events buffered between the readers and the consumer. When full, the readers stop reading,
/// which blocks the runner's writes: backpressure instead of unbounded memory.
const EVENT_BUFFER: usize = 1024;

/// How long a runner gets between SIGTERM and SIGKILL. The runner itself gives its `$`
/// commands 2 s between SIGTERM and SIGKILL, so this leaves it time to clean up.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// Longer lines are split: one line must not hold unbounded memory.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// After the runner exited, how long its output streams may stay silent before they are
/// considered drained.
const DRAIN_IDLE: Duration = Duration::from_millis(500);

/// The file descriptor the runner reads and writes IPC messages on.
const IPC_FD: i32 = 3;

/// Environment variables a runner inherits from the host; everything else is set explicitly.
pub use kici_engine::host_env::INHERITED as INHERITED_ENV;

/// What a runner produced.
#[derive(Debug)]
pub enum RunnerEvent {
    Message(RunnerMessage),
    /// A line on fd 3 that is not a message we understand.
    BadMessage {
        line: String,
        error: String,
    },
    Stdout(String),
    Stderr(String),
    /// The process ended; no event follows.
    Exited(ExitStatus),
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("failed to start Node.js (`{node}`)")]
    Spawn {
        node: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to create the runner's IPC socket")]
    Socket(#[source] std::io::Error),
    #[error("failed to send a request to the runner")]
    Send(#[source] std::io::Error),
}

impl RunnerError {
    /// The error and its causes on one line, for reports that carry a plain string.
    pub fn full_message(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        message
    }
}

/// How to start a runner.
#[derive(Debug, Clone)]
pub struct RunnerSpec {
    /// The `node` executable.
    pub node: PathBuf,
    /// `runner.js` inside a staged tree.
    pub runner: PathBuf,
    /// The runner's working directory.
    pub cwd: PathBuf,
    /// The complete environment of the runner process.
    pub env: BTreeMap<String, String>,
}

impl RunnerSpec {
    /// The host's values of [`INHERITED_ENV`].
    pub fn inherited_env() -> BTreeMap<String, String> {
        INHERITED_ENV
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|v| (name.to_string(), v)))
            .collect()
    }
}

/// The `node` to use: `KICI_NODE` when set by the caller, else `node` on `PATH`.
pub fn find_node(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("node"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            "Node.js was not found on PATH (hint: install Node.js 20 or newer, or set KICI_NODE to its path)"
                .to_string()
        })
}

/// A running runner process.
#[derive(Debug)]
pub struct RunnerProcess {
    /// `None` only while being dropped.
    child: Option<Child>,
    pid: i32,
    ipc: OwnedWriteHalf,
    events: mpsc::Receiver<RunnerEvent>,
    readers: JoinSet<()>,
    status: Option<ExitStatus>,
    exited: bool,
}

impl RunnerProcess {
    pub fn spawn(spec: &RunnerSpec) -> Result<RunnerProcess, RunnerError> {
        let (host_end, child_end) = std::os::unix::net::UnixStream::pair().map_err(RunnerError::Socket)?;
        let child_fd: OwnedFd = child_end.into();
        let raw_child_fd = child_fd.as_raw_fd();
        let mut command = Command::new(&spec.node);
        command
            .arg("--enable-source-maps")
            .arg(&spec.runner)
            .current_dir(&spec.cwd)
            .env_clear()
            .envs(&spec.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(move || {
                if raw_child_fd == IPC_FD {
                    let flags = libc::fcntl(IPC_FD, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(IPC_FD, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(raw_child_fd, IPC_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|source| RunnerError::Spawn {
            node: spec.node.display().to_string(),
            source,
        })?;
        drop(child_fd);
        let pid = child.id().map_or(0, |id| id as i32);
        host_end.set_nonblocking(true).map_err(RunnerError::Socket)?;
        let host_end = UnixStream::from_std(host_end).map_err(RunnerError::Socket)?;
        let (ipc_read, ipc) = host_end.into_split();
        let (tx, events) = mpsc::channel(EVENT_BUFFER);
        let mut readers = JoinSet::new();
        readers.spawn(read_lines(ipc_read, tx.clone(), parse_message));
        if let Some(stdout) = child.stdout.take() {
            readers.spawn(read_lines(stdout, tx.clone(), RunnerEvent::Stdout));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.spawn(read_lines(stderr, tx, RunnerEvent::Stderr));
        }
        Ok(RunnerProcess {
            child: Some(child),
            pid,
            ipc,
            events,
            readers,
            status: None,
            exited: false,
        })
    }

    pub async fn send(&mut self, message: &HostMessage) -> Result<(), RunnerError> {
        let mut line = serde_json::to_vec(message).expect("host messages serialize");
        line.push(b'\n');
        self.ipc.write_all(&line).await.map_err(RunnerError::Send)
    }

    /// The next event; after [`RunnerEvent::Exited`], `None`. Output written before the exit is
    /// delivered first.
    pub async fn next(&mut self) -> Option<RunnerEvent> {
        if self.exited {
            return None;
        }
        loop {
            match self.status {
                None => tokio::select! {
                    event = self.events.recv() => match event {
                        Some(event) => return Some(event),
                        None => self.status = Some(self.wait_child().await),
                    },
                    status = wait(&mut self.child) => self.status = Some(status),
                },
                Some(status) => {
                    // A `$` command that outlived the runner may hold its pipes open; what the
                    // runner wrote is already buffered, so stop once the readers go quiet.
                    match tokio::time::timeout(DRAIN_IDLE, self.events.recv()).await {
                        Ok(Some(event)) => return Some(event),
                        Ok(None) | Err(_) => {
                            self.readers.abort_all();
                            self.exited = true;
                            return Some(RunnerEvent::Exited(status));
                        }
                    }
                }
            }
        }
    }

    async fn wait_child(&mut self) -> ExitStatus {
        wait(&mut self.child).await
    }

    /// Whether the process is still running (a runner started ahead of time may have died).
    pub fn is_alive(&mut self) -> bool {
        self.status.is_none()
            && self
                .child
                .as_mut()
                .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Signals the runner's process group. Its `$` commands run in groups of their own, which
    /// the runner stops when it receives SIGTERM.
    pub fn signal_group(&self, signal: i32) {
        if self.pid > 0 && self.status.is_none() {
            // SAFETY: plain syscall; ESRCH when the group is already gone is fine.
            #[allow(unsafe_code)]
            unsafe {
                libc::killpg(self.pid, signal);
            }
        }
    }

    /// SIGTERM to the runner, SIGKILL after [`KILL_GRACE`], then waits for the exit while
    /// draining events.
    pub async fn terminate(&mut self) -> Vec<RunnerEvent> {
        self.signal_group(libc::SIGTERM);
        let mut drained = Vec::new();
        let deadline = tokio::time::sleep(KILL_GRACE);
        tokio::pin!(deadline);
        let mut killed = false;
        loop {
            tokio::select! {
                event = self.next() => match event {
                    Some(event) => drained.push(event),
                    None => return drained,
                },
                _ = &mut deadline, if !killed => {
                    self.signal_group(libc::SIGKILL);
                    killed = true;
                }
            }
        }
    }
}

impl Drop for RunnerProcess {
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        // `$` commands run in their own process groups, which only the runner knows: ask it to
        // stop them (SIGTERM), and kill it if it has not exited after the grace period.
        self.signal_group(libc::SIGTERM);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(mut child) = self.child.take() else { return };
        // Nothing owns this task: it outlives the dropped process handle by design and ends
        // with the child (or with the runtime, whose drop kills the child).
        runtime.spawn(async move {
            if tokio::time::timeout(KILL_GRACE, child.wait()).await.is_err() {
                // Best effort: the child may have exited in between.
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        });
    }
}

async fn wait(child: &mut Option<Child>) -> ExitStatus {
    let status = match child {
        Some(child) => child.wait().await,
        None => std::future::pending().await,
    };
    // `wait` only fails if the child was already reaped, which this type never does elsewhere.
    status.unwrap_or_else(|_| std::os::unix::process::ExitStatusExt::from_raw(-1))
}

fn parse_message(line: String) -> RunnerEvent {
    match serde_json::from_str(&line) {
        Ok(message) => RunnerEvent::Message(message),
        Err(err) => RunnerEvent::BadMessage {
            error: err.to_string(),
            line,
        },
    }
}

async fn read_lines<R: AsyncRead + Unpin>(
    reader: R,
    tx: mpsc::Sender<RunnerEvent>,
    wrap: impl Fn(String) -> RunnerEvent,
) {
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    // A read error ends the stream like end of file: the process is going away.
    while let Ok(available) = reader.fill_buf().await {
        if available.is_empty() {
            break;
        }
        let room = MAX_LINE_BYTES - line.len();
        let (taken, complete) = match available.iter().take(room).position(|&b| b == b'\n') {
            Some(newline) => (newline + 1, true),
            None => (
                available.len().min(room),
                line.len() + available.len() >= MAX_LINE_BYTES,
            ),
        };
        line.extend_from_slice(&available[..taken]);
        reader.consume(taken);
        if complete {
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            let text = String::from_utf8_lossy(&line).into_owned();
            line.clear();
            if tx.send(wrap(text)).await.is_err() {
                return;
            }
        }
    }
    if !line.is_empty() {
        // The receiver may be gone; the last partial line then has no reader.
        let _ = tx.send(wrap(String::from_utf8_lossy(&line).into_owned())).await;
    }
}

/// The last lines of a runner's raw output, kept for error messages.
#[derive(Debug, Default)]
pub struct OutputTail {
    lines: std::collections::VecDeque<String>,
}

impl OutputTail {
    /// How many lines are kept.
    pub const LINES: usize = 20;

    pub fn push(&mut self, line: String) {
        if self.lines.len() == Self::LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// `; last output:\n<lines>` or nothing.
    pub fn suffix(&self) -> String {
        if self.lines.is_empty() {
            String::new()
        } else {
            format!(
                "; last output:\n{}",
                self.lines.iter().cloned().collect::<Vec<_>>().join("\n")
            )
        }
    }
}
