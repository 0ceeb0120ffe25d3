//! `kici init`: scaffold `.kici/` with an example workflow, a `tsconfig.json` and the SDK's
//! type declarations (so editors type-check workflows without an npm install).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

const HELLO_WORLD: &str = include_str!("../templates/hello-world.ts");
const TSCONFIG: &str = include_str!("../templates/tsconfig.json");

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Directory to scaffold in (default: the current directory)
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Overwrite files that already exist
    #[arg(long)]
    force: bool,
}

pub fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let root = args.dir.map_or(cwd.clone(), |d| cwd.join(d));
    scaffold(&root, args.force)?;
    println!("✓ Created .kici/workflows/hello-world.ts, .kici/tsconfig.json and .kici/types/");
    println!("Next: `kici compile` to write .kici/kici.lock.json, then `kici run local push` to run it here.");
    Ok(ExitCode::SUCCESS)
}

/// Writes the example workflow, `tsconfig.json`, the SDK types and a `.gitignore` for local
/// secrets under `root/.kici`.
pub fn scaffold(root: &Path, force: bool) -> anyhow::Result<()> {
    let kici_dir = root.join(".kici");
    let mut files: Vec<(PathBuf, Vec<u8>)> = vec![
        (
            kici_dir.join("workflows/hello-world.ts"),
            HELLO_WORLD.as_bytes().to_vec(),
        ),
        (kici_dir.join("tsconfig.json"), TSCONFIG.as_bytes().to_vec()),
    ];
    for bundle in &kici_sdk::BUNDLES {
        for (relative, content) in bundle.files.iter().filter(|(p, _)| p.ends_with(".d.ts")) {
            files.push((
                kici_dir.join("types/@kici-dev").join(bundle.dir).join(relative),
                content.to_vec(),
            ));
        }
    }
    let existing: Vec<&PathBuf> = files.iter().map(|(p, _)| p).filter(|p| p.exists()).collect();
    if !force
        && existing
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "ts" || e == "json") && !is_types(p, &kici_dir))
    {
        bail!(
            "{} already exists\n  hint: pass --force to overwrite the scaffolded files",
            display(existing[0], root)
        );
    }
    for (path, content) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("failed to create `{}`", parent.display()))?;
        }
        std::fs::write(path, content).with_context(|| format!("failed to write `{}`", path.display()))?;
    }
    // `kici run local` reads secrets from `.kici/.secrets` and variables from `.kici/.env.local`;
    // they must not be committed. An
    // existing ignore file is the author's and stays as it is.
    let ignore = kici_dir.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(&ignore, GITIGNORE).with_context(|| format!("failed to write `{}`", ignore.display()))?;
    }
    Ok(())
}

const GITIGNORE: &str =
    "# Local secrets and variables for `kici run local` (KEY=value lines): never commit them.\n.secrets\n.env.local\n";

/// Type declarations are always refreshed, even without `--force`.
fn is_types(path: &Path, kici_dir: &Path) -> bool {
    path.starts_with(kici_dir.join("types"))
}

fn display(path: &Path, root: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}
