//! Test support for `kici` end-to-end tests: a copy of a fixture project in a fresh git
//! repository, and a way to run the built `kici` binary in it.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for something a running `kici` should do: generous, since it is only
/// reached when the test fails.
pub const WAIT: Duration = Duration::from_secs(60);

/// A project in a temporary git repository.
pub struct Project {
    dir: tempfile::TempDir,
}

/// What a `kici` invocation produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts the exit code, showing both streams when it differs.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Project {
    /// A copy of `tests/repo`, committed.
    pub fn test_repo() -> Project {
        let project = Project::empty();
        copy_dir(&repo_root().join("tests/repo"), project.path());
        project.commit();
        project
    }

    /// An empty git repository.
    pub fn empty() -> Project {
        let dir = tempfile::Builder::new()
            .prefix("kici-test-")
            .tempdir()
            .expect("temp dir");
        let project = Project { dir };
        project.git(&["init", "-q", "-b", "main"]);
        project
    }

    /// An empty repository with one workflow file `.kici/workflows/<name>` holding `source`.
    pub fn with_workflow(name: &str, source: &str) -> Project {
        let project = Project::empty();
        project.write(&format!(".kici/workflows/{name}"), source);
        project
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, relative: &str, content: &str) {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("create dirs");
        std::fs::write(path, content).expect("write file");
    }

    pub fn exists(&self, relative: &str) -> bool {
        self.path().join(relative).exists()
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path().join(relative)).expect("read file")
    }

    pub fn git(&self, args: &[&str]) {
        let status = Command::new("git")
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
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?} failed");
    }

    pub fn commit(&self) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", "test"]);
    }

    /// Runs `kici <args>` in the project.
    pub fn kici(&self, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_kici"))
            .args(args)
            .current_dir(self.path())
            .output()
            .expect("kici runs");
        Run::from(output)
    }

    /// Starts `kici <args>` in the project and returns while it runs.
    pub fn kici_background(&self, args: &[&str]) -> Background {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kici"))
            .args(args)
            .current_dir(self.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kici starts");
        let stdout = collect(child.stdout.take().expect("piped stdout"));
        let stderr = collect(child.stderr.take().expect("piped stderr"));
        Background { child, stdout, stderr }
    }
}

/// A `kici` process that keeps running (`compile --watch`), its output collected as it comes.
pub struct Background {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Background {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().expect("output lock")).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("output lock")).into_owned()
    }

    /// Waits until `done` holds, polling; panics with `what` and the output after [`WAIT`].
    pub fn wait_for(&mut self, what: &str, mut done: impl FnMut(&Background) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(self) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "kici exited ({status}) while waiting for {what}\n--- stdout\n{}\n--- stderr\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n--- stdout\n{}\n--- stderr\n{}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGINT (Ctrl+C) and returns the exit code.
    pub fn interrupt(mut self) -> i32 {
        // SAFETY: a plain syscall on our own child.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "kici did not exit after SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Already exited is fine.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Appends everything `stream` yields to `sink`, on a thread that ends with the stream.
fn collect(mut stream: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let sink = Arc::new(Mutex::new(Vec::new()));
    let writer = Arc::clone(&sink);
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(read) = stream.read(&mut buffer) {
            if read == 0 {
                break;
            }
            writer.lock().expect("output lock").extend_from_slice(&buffer[..read]);
        }
    });
    sink
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
