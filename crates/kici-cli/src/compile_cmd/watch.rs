//! `kici compile --watch`: compile, then wait for a change to the sources and compile again,
//! until Ctrl+C (exit 0). A failed compilation prints its diagnostics and waits like a
//! successful one.
//!
//! What is watched: `.kici/` (workflows, helper modules, `package.json`, the package manager's
//! lock file) but not `.kici/node_modules`, `.kici/types`, dotfiles or the lock file the compiler
//! writes; `pnpm-lock.yaml` and `yarn.lock` at the repository root; and the directories of the
//! files the last lock file's `hashFiles` matched (a changed or new file there that a pattern
//! matches). Changes are debounced, so an editor's save or a `git checkout` is one compilation;
//! a change made during a compilation starts another one after it.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use kici_engine::lockfile::{LOCK_FILE_NAME, LockFile};
use notify_debouncer_full::notify::event::{MetadataKind, ModifyKind};
use notify_debouncer_full::notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, new_debouncer};

use super::Compiler;

/// How long the sources must stay quiet before a compilation starts.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Batches of changes waiting for the compile loop. When it is full the watcher's thread waits:
/// one batch is enough to start the next compilation, which reads every file anyway.
const CHANGE_BATCHES: usize = 16;

/// Lock files of package managers that live at the repository root.
const ROOT_LOCK_FILES: [&str; 2] = ["pnpm-lock.yaml", "yarn.lock"];

/// Clears the terminal and its scrollback, and moves the cursor home.
const CLEAR_SCREEN: &str = "\x1b[2J\x1b[3J\x1b[H";

pub(super) async fn run(compiler: &Compiler) -> anyhow::Result<ExitCode> {
    let (changes_tx, mut changes_rx) = tokio::sync::mpsc::channel::<DebounceEventResult>(CHANGE_BATCHES);
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |batch: DebounceEventResult| {
        // Fails only once the loop below has returned: nobody waits for changes any more.
        let _ = changes_tx.blocking_send(batch);
    })
    .context("cannot start the file watcher")?;
    let mut interest = Interest::new(&compiler.project.root, &compiler.project.kici_dir);
    let mut watched: BTreeMap<PathBuf, Depth> = BTreeMap::new();
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let terminal = std::io::stdout().is_terminal();
    let header = format!(
        "Watching {}/ for changes (Ctrl+C to stop)",
        compiler.project.relative(&compiler.project.kici_dir)
    );
    if !terminal {
        println!("{header}");
    }
    loop {
        if terminal {
            print!("{CLEAR_SCREEN}");
            println!("{header}");
        }
        // Watched before compiling, so a save during the compilation starts the next one.
        update_watches(&mut debouncer, &mut watched, interest.plan());
        let outcome = tokio::select! {
            outcome = compiler.compile_once() => outcome,
            _ = &mut interrupted => return Ok(ExitCode::SUCCESS),
        };
        match outcome {
            Ok(Some(lock)) => interest.follow_hash_files(&lock),
            // The diagnostics are printed; the last good lock file's inputs stay watched.
            Ok(None) => {}
            Err(err) => eprintln!("error: {err:#}"),
        }
        // Best effort: the result lines are already out.
        let _ = std::io::stdout().flush();
        // The new lock file may name other `hashFiles` inputs.
        update_watches(&mut debouncer, &mut watched, interest.plan());
        loop {
            let batch = tokio::select! {
                batch = changes_rx.recv() => batch,
                _ = &mut interrupted => return Ok(ExitCode::SUCCESS),
            };
            match batch {
                Some(Ok(events)) => {
                    let changes = events.iter().filter(|e| changes_content(&e.kind));
                    if changes.flat_map(|e| e.paths.iter()).any(|p| interest.concerns(p)) {
                        break;
                    }
                }
                Some(Err(errors)) => {
                    for error in errors {
                        eprintln!("warning: the file watcher reported an error: {error}");
                    }
                }
                None => anyhow::bail!("the file watcher stopped"),
            }
        }
    }
}

/// Whether an event can be a change: reading a file (the compiler reads every source) cannot.
fn changes_content(kind: &EventKind) -> bool {
    !matches!(
        kind,
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime))
    )
}

/// How much of a directory a watch covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Depth {
    /// The directory's own entries.
    Entries,
    /// Everything below it.
    Tree,
}

/// Watches every directory of `plan` (again, so a directory deleted and made anew is watched
/// anew) and stops watching those no longer in it.
fn update_watches(
    debouncer: &mut notify_debouncer_full::Debouncer<
        notify_debouncer_full::notify::RecommendedWatcher,
        notify_debouncer_full::RecommendedCache,
    >,
    watched: &mut BTreeMap<PathBuf, Depth>,
    plan: BTreeMap<PathBuf, Depth>,
) {
    for gone in watched.keys().filter(|path| !plan.contains_key(*path)) {
        // Fails when the directory is gone, and its watch with it: nothing left to stop.
        let _ = debouncer.unwatch(gone);
    }
    watched.clear();
    for (path, depth) in plan {
        let mode = match depth {
            Depth::Entries => RecursiveMode::NonRecursive,
            Depth::Tree => RecursiveMode::Recursive,
        };
        match debouncer.watch(&path, mode) {
            Ok(()) => {
                watched.insert(path, depth);
            }
            Err(err) => eprintln!("warning: cannot watch `{}` for changes: {err}", path.display()),
        }
    }
}

/// Which paths are sources of the lock file.
struct Interest {
    root: PathBuf,
    kici_dir: PathBuf,
    /// The `hashFiles` patterns of the last lock file that compiled.
    hash_patterns: Vec<regex::Regex>,
    /// The directories of the files those patterns matched.
    hash_dirs: Vec<PathBuf>,
}

impl Interest {
    fn new(root: &Path, kici_dir: &Path) -> Interest {
        Interest {
            root: root.to_path_buf(),
            kici_dir: kici_dir.to_path_buf(),
            hash_patterns: Vec::new(),
            hash_dirs: Vec::new(),
        }
    }

    fn follow_hash_files(&mut self, lock: &LockFile) {
        // The compiler resolved these very patterns, so they compile.
        self.hash_patterns = lock
            .workflows
            .iter()
            .flat_map(|w| w.hash_files.iter())
            .filter_map(|pattern| kici_engine::pattern::compile_glob(pattern).ok())
            .collect();
        let mut dirs: Vec<PathBuf> = lock
            .workflows
            .iter()
            .flat_map(|w| w.resolved_hash_files.iter())
            .filter_map(|file| self.root.join(file).parent().map(Path::to_path_buf))
            .collect();
        dirs.sort();
        dirs.dedup();
        self.hash_dirs = dirs;
    }

    /// The directories to watch.
    fn plan(&self) -> BTreeMap<PathBuf, Depth> {
        let mut plan = BTreeMap::new();
        plan.insert(self.root.clone(), Depth::Entries);
        for dir in &self.hash_dirs {
            // Directories under `.kici/` are watched whole below.
            if !dir.starts_with(&self.kici_dir) && dir.is_dir() {
                plan.insert(dir.clone(), Depth::Entries);
            }
        }
        plan.insert(self.kici_dir.clone(), Depth::Entries);
        // An unreadable `.kici/` is reported by the next compilation.
        for entry in std::fs::read_dir(&self.kici_dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let inside = path.strip_prefix(&self.kici_dir).unwrap_or(&path);
            if entry.file_type().is_ok_and(|t| t.is_dir()) && concerns_kici_path(inside) {
                plan.insert(path, Depth::Tree);
            }
        }
        plan
    }

    /// Whether a change to `path` can change the lock file.
    fn concerns(&self, path: &Path) -> bool {
        if let Ok(inside) = path.strip_prefix(&self.kici_dir) {
            return concerns_kici_path(inside);
        }
        let Ok(relative) = path.strip_prefix(&self.root) else {
            return false;
        };
        let relative: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let relative = relative.join("/");
        ROOT_LOCK_FILES.contains(&relative.as_str()) || self.hash_patterns.iter().any(|p| p.is_match(&relative))
    }
}

/// Whether a path under `.kici/` (relative to it) is a source: not installed packages, the
/// scaffolded types, dotfiles (local secrets, editors' swap files), backups or the lock file.
fn concerns_kici_path(inside: &Path) -> bool {
    let mut components = inside.components().map(|c| c.as_os_str().to_string_lossy());
    if components
        .clone()
        .next()
        .is_some_and(|first| first == "node_modules" || first == "types")
    {
        return false;
    }
    !components.any(|name| name.starts_with('.') || name.ends_with('~') || name.starts_with(LOCK_FILE_NAME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_under_kici_are_watched_and_what_the_compiler_writes_is_not() {
        for (path, expected) in [
            ("workflows/ci.ts", true),
            ("workflows/lib/helpers.ts", true),
            ("package.json", true),
            ("package-lock.json", true),
            ("", true),
            ("kici.lock.json", false),
            ("kici.lock.json.partial", false),
            ("node_modules/zod/index.js", false),
            ("types/@kici-dev/sdk/index.d.ts", false),
            (".secrets", false),
            ("workflows/.ci.ts.swp", false),
            ("workflows/ci.ts~", false),
        ] {
            assert_eq!(concerns_kici_path(Path::new(path)), expected, "{path}");
        }
    }
}
