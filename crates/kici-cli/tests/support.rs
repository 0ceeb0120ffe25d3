//! Test support for `kici` end-to-end tests: a copy of a fixture project in a fresh git
//! repository, and a way to run the built `kici` binary in it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
