//! `kici init`: scaffold `.kici/` with two example workflows (`hello-world` on push and pull
//! requests, `pr-checks` with two jobs in `needs` order), a `package.json` (ESM, for the npm
//! packages workflows import), a `tsconfig.json`, the SDK's type declarations (so editors
//! type-check workflows without an npm install), an `AGENTS.md` for coding agents (unless
//! `--no-agents-md`) and a `.gitignore` for local secrets and installed packages.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

const HELLO_WORLD: &str = include_str!("../templates/hello-world.ts");
const PR_CHECKS: &str = include_str!("../templates/pr-checks.ts");
const PACKAGE_JSON: &str = include_str!("../templates/package.json");
const TSCONFIG: &str = include_str!("../templates/tsconfig.json");
const AGENTS_MD: &str = include_str!("../templates/AGENTS.md");

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Directory to scaffold in (default: the current directory)
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Overwrite files that already exist
    #[arg(long)]
    force: bool,
    /// Do not write .kici/AGENTS.md (notes for coding agents on editing the workflows)
    #[arg(long)]
    no_agents_md: bool,
}

/// Whether `.kici/AGENTS.md` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentsMd {
    Write,
    Skip,
}

pub fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let root = args.dir.map_or(cwd.clone(), |d| cwd.join(d));
    let agents_md = if args.no_agents_md {
        AgentsMd::Skip
    } else {
        AgentsMd::Write
    };
    let written = scaffold(&root, args.force, agents_md)?;
    let names: Vec<String> = written.iter().map(|p| display(p, &root)).collect();
    println!("✓ Created {} and .kici/types/", names.join(", "));
    println!("Next: `kici compile` to write .kici/kici.lock.json, then `kici run local push` to run it here.");
    Ok(ExitCode::SUCCESS)
}

/// Writes the example workflows, `package.json`, `tsconfig.json`, `AGENTS.md`, the SDK types
/// and a `.gitignore` under `root/.kici`; returns the files written, types aside.
pub fn scaffold(root: &Path, force: bool, agents_md: AgentsMd) -> anyhow::Result<Vec<PathBuf>> {
    let kici_dir = root.join(".kici");
    let mut files: Vec<(PathBuf, Vec<u8>)> = vec![
        (
            kici_dir.join("workflows/hello-world.ts"),
            HELLO_WORLD.as_bytes().to_vec(),
        ),
        (kici_dir.join("workflows/pr-checks.ts"), PR_CHECKS.as_bytes().to_vec()),
        (kici_dir.join("package.json"), PACKAGE_JSON.as_bytes().to_vec()),
        (kici_dir.join("tsconfig.json"), TSCONFIG.as_bytes().to_vec()),
    ];
    if agents_md == AgentsMd::Write {
        files.push((kici_dir.join("AGENTS.md"), AGENTS_MD.as_bytes().to_vec()));
    }
    let scaffolded: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    for bundle in &kici_sdk::BUNDLES {
        for (relative, content) in bundle.files.iter().filter(|(p, _)| p.ends_with(".d.ts")) {
            files.push((
                kici_dir.join("types/@kici-dev").join(bundle.dir).join(relative),
                content.to_vec(),
            ));
        }
    }
    // Type declarations are always refreshed; the author's own files only with `--force`.
    if !force && let Some(existing) = scaffolded.iter().find(|p| p.exists()) {
        bail!(
            "{} already exists\n  hint: pass --force to overwrite the scaffolded files",
            display(existing, root)
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
    Ok(scaffolded)
}

const GITIGNORE: &str = "# Local secrets and variables for `kici run local` (KEY=value lines): never commit them.
.secrets
.env.local
# Packages the workflows import, installed from package.json.
node_modules/
";

fn display(path: &Path, root: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}
