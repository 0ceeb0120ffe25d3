//! A service binary as a child process: started with an exact environment, its output kept
//! in a log file, its port read from its `*.listening` log line, stopped on drop.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a service may take to print its `*.listening` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The built binary `name`: next to the test executable, or under `$CARGO_TARGET_DIR` when that
/// is set (with cargo's `build-dir` apart from the target dir, test executables and the
/// binaries they start live in different trees).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let mut dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf();
    if let (Some(target), Some(profile)) = (std::env::var_os("CARGO_TARGET_DIR"), dir.file_name()) {
        dir = PathBuf::from(target).join(profile);
    }
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built (hint: run the workspace tests with `cargo nextest run --workspace`)",
        path.display()
    );
    path
}

pub struct Service {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Service {
    /// Starts `name` with exactly `env` (plus the host variables KiCI passes on, PATH and HOME
    /// among them) and waits for `ready_message`.
    pub fn start(name: &str, env: &BTreeMap<String, String>, log: &Path, ready_message: &str) -> Service {
        let mut command = Command::new(binary(name));
        command.env_clear();
        for inherited in kici_engine::host_env::INHERITED {
            if let Ok(value) = std::env::var(inherited) {
                command.env(inherited, value);
            }
        }
        command
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (tx, rx) = mpsc::channel::<u16>();
        let log_file = std::fs::File::create(log).expect("service log file");
        for stream in [
            Box::new(child.stdout.take().expect("piped stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("piped stderr")),
        ] {
            let mut file = log_file.try_clone().expect("log file handle");
            let tx = tx.clone();
            let ready = ready_message.to_string();
            // Owned by the child's pipes: each thread ends when the process closes them.
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if line.contains(&format!("\"message\":\"{ready}\"")) {
                        let port = serde_json::from_str::<serde_json::Value>(&line)
                            .ok()
                            .and_then(|v| v["port"].as_u64())
                            .unwrap_or(0);
                        // The test may have stopped waiting.
                        let _ = tx.send(port as u16);
                    }
                    let _ = writeln!(file, "{line}");
                }
            });
        }
        let port = match rx.recv_timeout(START_TIMEOUT) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "{name} did not start:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
        };
        Service {
            child,
            port,
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: plain syscall on our own child.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        // Already exited is fine.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The log lines written so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.signal(libc::SIGTERM);
        if self.wait_exit(Duration::from_secs(5)).is_none() {
            self.kill();
        }
    }
}

/// Runs `command` to its end: its exit code (-1 when a signal ended it) and what it printed,
/// stdout then stderr.
pub fn run_to_end(command: &mut Command) -> (i32, String) {
    let output = command.output().expect("the command runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}
