//! Real git repositories for end-to-end tests: a bare `origin.git` (what a local source
//! points at) and a working clone `work/` to edit, compile, commit and push from.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::process::binary;

pub struct Repo {
    root: PathBuf,
}

fn run(cwd: &Path, program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env("GIT_AUTHOR_NAME", "KiCI Test")
        .env("GIT_AUTHOR_EMAIL", "test@kici.local")
        .env("GIT_COMMITTER_NAME", "KiCI Test")
        .env("GIT_COMMITTER_EMAIL", "test@kici.local")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

impl Repo {
    /// A repository under `dir` holding a copy of `fixture` (a directory of the workspace,
    /// e.g. `tests/repo`), compiled with `kici compile`, committed and pushed to `main`.
    pub fn from_fixture(dir: &Path, fixture: &str) -> Repo {
        let root = dir.join(format!("repo-{}", crate::random_id()));
        std::fs::create_dir_all(&root).expect("repo dir");
        let repo = Repo { root };
        run(&repo.root, "git", &["init", "-q", "--bare", "-b", "main", "origin.git"]);
        run(&repo.root, "git", &["clone", "-q", "origin.git", "work"]);
        run(&repo.work(), "git", &["checkout", "-q", "-b", "main"]);
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(fixture);
        copy_dir(&source, &repo.work());
        repo.compile();
        repo.commit_and_push("initial");
        repo
    }

    pub fn origin(&self) -> PathBuf {
        self.root.join("origin.git")
    }

    pub fn work(&self) -> PathBuf {
        self.root.join("work")
    }

    pub fn write(&self, relative: &str, content: &str) {
        let path = self.work().join(relative);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("dirs");
        std::fs::write(path, content).expect("write");
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.work().join(relative)).expect("read")
    }

    pub fn remove(&self, relative: &str) {
        run(&self.work(), "git", &["rm", "-q", relative]);
    }

    /// `kici compile` in the working clone.
    pub fn compile(&self) {
        let output = Command::new(binary("kici"))
            .arg("compile")
            .current_dir(self.work())
            .output()
            .expect("kici compile runs");
        assert!(
            output.status.success(),
            "kici compile failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `npm <args>` in `.kici/`; fails the test with npm's output when it fails.
    pub fn npm(&self, args: &[&str]) {
        let output = Command::new("npm")
            .args(args)
            .current_dir(self.work().join(".kici"))
            .output()
            .expect("npm runs");
        assert!(
            output.status.success(),
            "npm {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A `.kici/` project importing the package `greeter` (a `file:` dependency in `vendor/`,
    /// so no registry is needed) with `workflow` as `.kici/workflows/deps.ts`, installed and
    /// compiled; `node_modules` stays out of git.
    pub fn write_greeter_project(&self, workflow: &str) {
        self.write(
            "vendor/greeter/package.json",
            r#"{"name": "greeter", "version": "1.0.0", "type": "module", "main": "index.js"}"#,
        );
        self.write(
            "vendor/greeter/index.js",
            "export const greet = (name) => `Hello from greeter, ${name}`;\n",
        );
        self.write(
            ".kici/package.json",
            r#"{"name": "workflows", "private": true, "type": "module", "dependencies": {"greeter": "file:../vendor/greeter"}}"#,
        );
        self.write(".kici/.gitignore", "node_modules\n");
        self.write(".kici/workflows/deps.ts", workflow);
        self.npm(&["install", "--no-audit", "--no-fund", "--loglevel=error"]);
        self.compile();
    }

    pub fn commit_and_push(&self, message: &str) -> String {
        run(&self.work(), "git", &["add", "-A"]);
        run(&self.work(), "git", &["commit", "-q", "--allow-empty", "-m", message]);
        run(&self.work(), "git", &["push", "-q", "origin", "HEAD:main"]);
        self.head()
    }

    /// Commits everything and pushes it to `git_ref` of the origin (a branch, or a ref such as
    /// `refs/pull/7/head`), leaving `main` alone.
    pub fn commit_and_push_to(&self, message: &str, git_ref: &str) -> String {
        run(&self.work(), "git", &["add", "-A"]);
        run(&self.work(), "git", &["commit", "-q", "-m", message]);
        self.push_to(git_ref)
    }

    /// Pushes the working clone's HEAD to `branch` of the origin.
    pub fn push_to(&self, branch: &str) -> String {
        run(
            &self.work(),
            "git",
            &["push", "-q", "-f", "origin", &format!("HEAD:{branch}")],
        );
        self.head()
    }

    pub fn head(&self) -> String {
        run(&self.work(), "git", &["rev-parse", "HEAD"])
    }

    /// A GitHub-shaped push body for the origin's `branch`, as `kici-admin source
    /// trigger-local` sends it.
    pub fn push_payload(&self, source: &str, branch: &str) -> Value {
        let sha = run(&self.origin(), "git", &["rev-parse", &format!("refs/heads/{branch}")]);
        let files = run(
            &self.origin(),
            "git",
            &["diff-tree", "--no-commit-id", "--name-only", "-r", "--root", &sha],
        );
        let message = run(&self.origin(), "git", &["show", "-s", "--format=%B", &sha]);
        let author = run(&self.origin(), "git", &["show", "-s", "--format=%an", &sha]);
        json!({
            "ref": format!("refs/heads/{branch}"),
            "before": "0000000000000000000000000000000000000000",
            "after": sha,
            "repository": {"full_name": source, "name": source, "clone_url": format!("file://{}", self.origin().display()), "default_branch": "main"},
            "head_commit": {"id": sha, "message": message, "author": {"name": author}},
            "commits": [{"id": sha, "added": [], "modified": files.lines().collect::<Vec<_>>(), "removed": []}],
        })
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
