//! Locating a KiCI project: the repository root, its `.kici/` directory and the workflow files
//! in `.kici/workflows/`.

use std::path::{Path, PathBuf};

use crate::diagnostic::{Code, Diagnostic};

/// The workflows directory, repository-relative.
pub const WORKFLOWS_DIR: &str = ".kici/workflows";

/// A repository with a `.kici/` directory.
#[derive(Debug, Clone)]
pub struct Project {
    /// The directory that contains `.kici/`; repository-relative paths start here.
    pub root: PathBuf,
    /// `<root>/.kici`.
    pub kici_dir: PathBuf,
}

impl Project {
    /// Finds the project from `--kici-dir` (a `.kici` directory, or a directory containing one)
    /// or, without it, from `cwd` and its ancestors (running inside `.kici/` works too).
    pub fn locate(kici_dir: Option<&Path>, cwd: &Path) -> Result<Project, Diagnostic> {
        let start = match kici_dir {
            Some(dir) => cwd.join(dir),
            None => cwd.to_path_buf(),
        };
        let from_dir = |dir: &Path| -> Option<Project> {
            if dir.file_name().is_some_and(|n| n == ".kici") && dir.is_dir() {
                let root = dir.parent()?.to_path_buf();
                return Some(Project {
                    kici_dir: dir.to_path_buf(),
                    root,
                });
            }
            let candidate = dir.join(".kici");
            candidate.is_dir().then(|| Project {
                root: dir.to_path_buf(),
                kici_dir: candidate,
            })
        };
        let found = match kici_dir {
            Some(_) => from_dir(&start),
            None => start.ancestors().find_map(from_dir),
        };
        if let Some(project) = &found
            && project.root.to_str().is_none()
        {
            return Err(Diagnostic::new(
                Code::E001,
                WORKFLOWS_DIR,
                None,
                format!("the project path `{}` is not valid UTF-8", project.root.display()),
                "KiCI hands paths to Node.js, which needs UTF-8; rename or move the directory",
            ));
        }
        found.ok_or_else(|| {
            Diagnostic::new(
                Code::E001,
                WORKFLOWS_DIR,
                None,
                format!(
                    "no .kici/workflows directory found in {} or its parents",
                    start.display()
                ),
                "Run \"kici init\" to scaffold .kici/ with an example workflow, or pass --kici-dir <path>",
            )
        })
    }

    /// Repository-relative, `/`-separated form of `path`.
    pub fn relative(&self, path: &Path) -> String {
        let relative = path.strip_prefix(&self.root).unwrap_or(path);
        relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The `.ts` workflow entry files, sorted by name.
    pub fn workflow_files(&self) -> Result<Vec<PathBuf>, Diagnostic> {
        let dir = self.kici_dir.join("workflows");
        let not_found = |message: String| {
            Diagnostic::new(
                Code::E001,
                WORKFLOWS_DIR,
                None,
                message,
                "Run \"kici init\" to scaffold .kici/ with an example workflow",
            )
        };
        if !dir.is_dir() {
            return Err(not_found(format!(
                "{WORKFLOWS_DIR}/ does not exist or is not a directory"
            )));
        }
        let entries =
            std::fs::read_dir(&dir).map_err(|err| not_found(format!("{WORKFLOWS_DIR}/ cannot be read: {err}")))?;
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && is_typescript(p))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(not_found(format!("{WORKFLOWS_DIR}/ contains no *.ts workflow files")));
        }
        Ok(files)
    }
}

/// `.ts`/`.mts` sources, excluding declaration files.
pub fn is_typescript(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    (name.ends_with(".ts") || name.ends_with(".mts")) && !name.ends_with(".d.ts") && !name.ends_with(".d.mts")
}
