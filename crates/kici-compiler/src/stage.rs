//! Staging: the whole `.kici/` tree transpiled into a temporary directory Node can load.
//!
//! Layout (see `sdk/PROTOCOL.md`): `<out>/<repo-relative path>.js` for every TypeScript file
//! under `.kici/` (JavaScript and JSON files are copied as they are), `<out>/package.json` making
//! it ESM, and the embedded packages under `<out>/node_modules/@kici-dev/`, so `@kici-dev/sdk`
//! resolves to exactly the bundle this binary carries. The repository's own
//! `.kici/node_modules` (third-party imports) is linked in when it exists.

use std::path::{Path, PathBuf};

use kici_engine::runner_protocol::ModuleRef;
use tempfile::TempDir;

use crate::diagnostic::{Code, Diagnostic, line_column};
use crate::project::{Project, is_typescript};
use crate::transpile::transpile;

/// A staged tree; removed when dropped.
#[derive(Debug)]
pub struct StagedTree {
    dir: TempDir,
    /// The workflow entry modules, in the order of the workflow files.
    pub modules: Vec<ModuleRef>,
    runner: PathBuf,
}

impl StagedTree {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The runner script that loads this tree's packages.
    pub fn runner_path(&self) -> PathBuf {
        self.runner.clone()
    }

    /// The staged module of a repository-relative workflow file.
    pub fn module_for(&self, file: &str) -> Option<&ModuleRef> {
        self.modules.iter().find(|m| m.file == file)
    }
}

/// Why staging failed: syntax errors (reported per file) or the file system.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Syntax(Vec<Diagnostic>),
    #[error("failed to stage the workflow tree in `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StageError + '_ {
    move |source| StageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The embedded packages on disk (`node_modules/@kici-dev/*` and an ESM `package.json`),
/// without any workflow: a runner can be started from it before its job is known, and trees
/// staged [`within`](stage_within) it resolve `@kici-dev/*` to the same files. Removed when
/// dropped.
#[derive(Debug)]
pub struct Runtime {
    dir: TempDir,
}

impl Runtime {
    /// Writes the packages into a new `kici-runtime-*` directory under `parent`.
    pub fn create(parent: &Path) -> Result<Runtime, StageError> {
        let dir = tempfile::Builder::new()
            .prefix("kici-runtime-")
            .tempdir_in(parent)
            .map_err(io(parent))?;
        write_packages(dir.path())?;
        Ok(Runtime { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn runner_path(&self) -> PathBuf {
        self.dir.path().join(RUNNER)
    }
}

/// Where the runner script sits in a tree with the packages.
const RUNNER: &str = "node_modules/@kici-dev/engine/runner.js";

fn write_packages(out: &Path) -> Result<(), StageError> {
    std::fs::write(out.join("package.json"), "{\"type\":\"module\"}\n").map_err(io(out))?;
    for bundle in &kici_sdk::BUNDLES {
        let package_dir = out.join("node_modules/@kici-dev").join(bundle.dir);
        for (relative, content) in bundle.files {
            let target = package_dir.join(relative);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::write(&target, content).map_err(io(&target))?;
        }
    }
    Ok(())
}

/// Transpiles `.kici/` of `project` and writes the embedded packages; `workflow_files` are the
/// entry files (absolute paths under `.kici/workflows/`).
pub fn stage(project: &Project, workflow_files: &[PathBuf]) -> Result<StagedTree, StageError> {
    let dir = tempfile::Builder::new()
        .prefix("kici-js-")
        .tempdir()
        .map_err(io(Path::new("$TMPDIR")))?;
    write_packages(dir.path())?;
    let runner = dir.path().join(RUNNER);
    stage_into(project, workflow_files, dir, runner)
}

/// Like [`stage`], inside `runtime`: the packages are the runtime's, so a runner started from
/// the runtime loads the very same `@kici-dev/*` modules as the workflows.
pub fn stage_within(
    project: &Project,
    workflow_files: &[PathBuf],
    runtime: &Runtime,
) -> Result<StagedTree, StageError> {
    let dir = tempfile::Builder::new()
        .prefix("kici-js-")
        .tempdir_in(runtime.path())
        .map_err(io(runtime.path()))?;
    std::fs::write(dir.path().join("package.json"), "{\"type\":\"module\"}\n").map_err(io(dir.path()))?;
    stage_into(project, workflow_files, dir, runtime.runner_path())
}

fn stage_into(
    project: &Project,
    workflow_files: &[PathBuf],
    dir: TempDir,
    runner: PathBuf,
) -> Result<StagedTree, StageError> {
    let out = dir.path().to_path_buf();
    let mut syntax_errors = Vec::new();
    let mut sources = Vec::new();
    collect_sources(&project.kici_dir, &mut sources).map_err(io(&project.kici_dir))?;
    for source_path in sources {
        let relative = project.relative(&source_path);
        let target = out.join(output_name(&relative));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        if !is_typescript(&source_path) {
            std::fs::copy(&source_path, &target).map_err(io(&source_path))?;
            continue;
        }
        let text = std::fs::read_to_string(&source_path).map_err(io(&source_path))?;
        match transpile(&source_path, &text) {
            Ok(code) => std::fs::write(&target, code).map_err(io(&target))?,
            Err(errors) => syntax_errors.extend(errors.into_iter().map(|e| {
                Diagnostic::new(
                    Code::E003,
                    &relative,
                    Some(line_column(&text, e.offset)),
                    e.message,
                    "fix the syntax error; workflow files must be valid TypeScript",
                )
            })),
        }
    }
    if !syntax_errors.is_empty() {
        return Err(StageError::Syntax(syntax_errors));
    }
    let repo_modules = project.kici_dir.join("node_modules");
    if repo_modules.is_dir() {
        let link = out.join(".kici/node_modules");
        std::os::unix::fs::symlink(&repo_modules, &link).map_err(io(&link))?;
    }
    let modules = workflow_files
        .iter()
        .map(|file| {
            let relative = project.relative(file);
            ModuleRef {
                module: out.join(output_name(&relative)).to_string_lossy().to_string(),
                file: relative,
            }
        })
        .collect();
    Ok(StagedTree { dir, modules, runner })
}

/// `.kici/workflows/a.ts` → `.kici/workflows/a.js` (`.mts` → `.mjs`); other files keep their name.
fn output_name(relative: &str) -> String {
    if let Some(stem) = relative.strip_suffix(".mts") {
        format!("{stem}.mjs")
    } else if let Some(stem) = relative.strip_suffix(".ts") {
        format!("{stem}.js")
    } else {
        relative.to_string()
    }
}

/// Manifests are not copied: a `.kici/package.json` without `"type": "module"` would turn the
/// staged modules into CommonJS.
fn is_manifest(name: &str) -> bool {
    matches!(name, "package.json" | "package-lock.json" | "kici.lock.json") || name.starts_with("tsconfig")
}

/// TypeScript, JavaScript and JSON files under `.kici/`, skipping `node_modules`, dot-entries,
/// declaration files and manifests.
fn collect_sources(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "node_modules" {
            continue;
        }
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            collect_sources(&path, out)?;
        } else if file_type.is_file()
            && (is_typescript(&path) || name.ends_with(".js") || name.ends_with(".mjs") || name.ends_with(".json"))
            && !is_manifest(&name)
        {
            out.push(path);
        }
    }
    Ok(())
}
