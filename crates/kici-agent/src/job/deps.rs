//! Installing the `.kici/` project's npm dependencies in the checkout before the runner imports
//! anything: when `.kici/package.json` exists and `.kici/node_modules` does not, with the
//! package manager its lock file belongs to (`npm ci`, `pnpm install --frozen-lockfile`, …;
//! `npm install` without a lock file), in the host variables runners inherit.
//!
//! With a dependency cache in the dispatch (`deps/<platform>-<arch>/<lockfileHash>`), a stored
//! tarball is downloaded, checked against its SHA-256 and unpacked instead; when none is stored
//! yet, the one this install makes is uploaded, then the pointer naming it and its SHA-256
//! (whose presence marks the tarball complete). A failed download or unpack falls back to
//! installing; a tarball whose hash does not match fails the job.
//!
//! Private registries (`registries`) reach the package manager through a transient npm user
//! config in a private temporary directory, removed when the install ends: it names
//! `KICI_NPM_TOKEN_<job>_<i>` variables set on the install process only, so no token is
//! written to disk or to the checkout. `installEnv` secrets are variables of that process too,
//! and every install text is masked for all of them.

use std::path::Path;
use std::time::{Duration, Instant};

use kici_compiler::deps::{PackageManager, find_lockfile, install_command};
use kici_compiler::runner::RunnerSpec;
use kici_engine::install::{NpmRegistry, npmrc, token_variable};
use kici_engine::mask::SecretMasker;
use kici_engine::protocol::{DepsCache, DepsPointer, JobDispatch};
use sha2::{Digest, Sha256};
use tokio::process::Command;

use super::transfer::Transfer;

/// An install must finish within this.
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// Lines of the package manager's output quoted when it fails.
const TAIL_LINES: usize = 20;

/// The job's row for installing or restoring its dependencies: before the prepare log (-1)
/// and every runner row, which count from 0.
pub const STEP_INDEX: i64 = -2;
pub const STEP_NAME: &str = "dependencies";
pub const STEP_TYPE: &str = "deps";

/// Whether the checkout in `dir` has `.kici/` dependencies that are not installed. Without a
/// lock file, a `package.json` that declares nothing to install (as `kici init` writes it) needs
/// no package manager; with one, the install (and its dependency cache) goes as the lock says.
pub(super) fn needed(dir: &Path) -> bool {
    let kici_dir = dir.join(".kici");
    let Ok(manifest) = std::fs::read_to_string(kici_dir.join("package.json")) else {
        return false;
    };
    if kici_dir.join("node_modules").exists() {
        return false;
    }
    let nothing_to_install = find_lockfile(dir, &kici_dir).is_none()
        && serde_json::from_str::<serde_json::Value>(&manifest).is_ok_and(|manifest| declares_nothing(&manifest));
    !nothing_to_install
}

/// No dependency of any kind, no workspace and no install script: what a package manager would
/// do nothing for. Anything it cannot read counts as something.
fn declares_nothing(manifest: &serde_json::Value) -> bool {
    let empty = |key: &str| match &manifest[key] {
        serde_json::Value::Null => true,
        serde_json::Value::Object(entries) => entries.is_empty(),
        _ => false,
    };
    let dependencies = [
        "dependencies",
        "devDependencies",
        "optionalDependencies",
        "peerDependencies",
    ];
    let scripts = ["preinstall", "install", "postinstall", "prepare"];
    dependencies.iter().all(|key| empty(key))
        && manifest["workspaces"].is_null()
        && scripts.iter().all(|script| manifest["scripts"][script].is_null())
}

/// What an install authenticates with: the job's resolved `registries` and `installEnv`.
pub(super) struct InstallSecrets<'a> {
    pub job_id: &'a str,
    pub registries: &'a [NpmRegistry],
    pub env: Vec<(&'a str, &'a str)>,
}

impl<'a> InstallSecrets<'a> {
    pub fn of(dispatch: &'a JobDispatch) -> Self {
        InstallSecrets {
            job_id: dispatch.job_id.as_str(),
            registries: &dispatch.npm_registries,
            env: dispatch
                .install_env_secrets
                .iter()
                .map(|(name, value)| (name.as_str(), value.0.as_str()))
                .collect(),
        }
    }

    fn masker(&self) -> SecretMasker {
        SecretMasker::new(
            self.registries
                .iter()
                .map(|r| r.token.as_str())
                .chain(self.env.iter().map(|(_, value)| *value)),
        )
    }
}

/// Installs (or restores) the dependencies; the lines for the job's `dependencies` row. A
/// build (`must_save`) fails when the tarball cannot be stored: storing it is its purpose.
pub(super) async fn install(
    dir: &Path,
    cache: Option<&DepsCache>,
    secrets: &InstallSecrets<'_>,
    must_save: bool,
    transfer: &Transfer,
) -> Result<Vec<String>, String> {
    let masker = secrets.masker();
    let mask = |text: String| if masker.is_empty() { text } else { masker.mask(&text) };
    install_unmasked(dir, cache, secrets, must_save, transfer)
        .await
        .map(|notes| notes.into_iter().map(mask).collect())
        .map_err(mask)
}

async fn install_unmasked(
    dir: &Path,
    cache: Option<&DepsCache>,
    secrets: &InstallSecrets<'_>,
    must_save: bool,
    transfer: &Transfer,
) -> Result<Vec<String>, String> {
    let kici_dir = dir.join(".kici");
    let mut notes = Vec::new();
    if let Some(cache) = cache
        && let (Some(url), Some(expected)) = (&cache.download_url, &cache.sha256)
    {
        match restore(&kici_dir, url, expected, transfer).await {
            Ok(bytes) => {
                notes.push(format!(
                    "Restored the .kici dependencies from the cache ({}, {bytes} bytes): nothing installed",
                    cache.key
                ));
                return Ok(notes);
            }
            Err(Restore::Mismatch(message)) => return Err(message),
            Err(Restore::Failed(message)) => {
                notes.push(format!(
                    "Dependency cache {} not restored ({message}); installing",
                    cache.key
                ));
                // A half-unpacked tree must not be mistaken for an install.
                let _ = tokio::fs::remove_dir_all(kici_dir.join("node_modules")).await;
            }
        }
    }
    notes.push(run_install(dir, &kici_dir, secrets).await?);
    // A package manager with nothing to install makes no `node_modules`: an empty one is the
    // install's result all the same, to store and to mark the checkout installed.
    tokio::fs::create_dir_all(kici_dir.join("node_modules"))
        .await
        .map_err(|err| format!("Installing the .kici dependencies failed: cannot create node_modules: {err}"))?;
    if let Some(cache) = cache
        && let (Some(upload), Some(pointer_upload)) = (&cache.upload_url, &cache.pointer_upload_url)
    {
        match save(
            &kici_dir,
            &cache.key,
            [upload, pointer_upload],
            cache.max_bytes,
            transfer,
        )
        .await
        {
            Ok(bytes) => notes.push(format!(
                "Saved the .kici dependencies to the cache ({}, {bytes} bytes)",
                cache.key
            )),
            Err(message) if must_save => return Err(message),
            Err(message) => notes.push(format!("Dependency cache {} not saved: {message}", cache.key)),
        }
    }
    Ok(notes)
}

enum Restore {
    /// The tarball is not the one its checksum names: never unpacked.
    Mismatch(String),
    Failed(String),
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Downloads, checks and unpacks the tarball into `.kici/`; the tarball's size.
async fn restore(kici_dir: &Path, url: &str, expected: &str, transfer: &Transfer) -> Result<usize, Restore> {
    let bytes = transfer.download(url).await.map_err(Restore::Failed)?;
    let actual = sha256_hex(&bytes);
    if actual != expected {
        return Err(Restore::Mismatch(format!(
            "Dep tarball hash mismatch: expected {expected}, got {actual}"
        )));
    }
    let size = bytes.len();
    super::transfer::unpack(bytes, kici_dir)
        .await
        .map_err(Restore::Failed)?;
    Ok(size)
}

/// Packs `.kici/node_modules` and uploads it, then the pointer naming it (`[upload,
/// pointer_upload]`); the tarball's size.
async fn save(
    kici_dir: &Path,
    key: &str,
    [upload, pointer_upload]: [&str; 2],
    max_bytes: Option<u64>,
    transfer: &Transfer,
) -> Result<usize, String> {
    let source = kici_dir.to_path_buf();
    let tarball = tokio::task::spawn_blocking(move || {
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(encoder);
        builder.follow_symlinks(false);
        builder.append_dir_all("node_modules", source.join("node_modules"))?;
        builder.into_inner()?.finish()
    })
    .await
    .map_err(|err| err.to_string())?
    .map_err(|err| format!("packing failed: {err}"))?;
    if let Some(max) = max_bytes
        && tarball.len() as u64 > max
    {
        return Err(format!(
            "Dep tarball exceeds max size: {} bytes, more than KICI_CACHE_MAX_TARBALL_BYTES ({max})",
            tarball.len()
        ));
    }
    let pointer = DepsPointer {
        key: key.to_string(),
        sha256: sha256_hex(&tarball),
    };
    let pointer = serde_json::to_vec(&pointer).expect("a pointer serializes");
    let size = tarball.len();
    for (url, body) in [(upload, tarball), (pointer_upload, pointer)] {
        transfer.upload(url, body).await?;
    }
    Ok(size)
}

/// The transient user config naming the registries, in a private directory removed on drop.
fn registry_config(secrets: &InstallSecrets<'_>) -> Result<Option<tempfile::TempDir>, String> {
    if secrets.registries.is_empty() {
        return Ok(None);
    }
    let cannot = |err: std::io::Error| {
        format!("Installing the .kici dependencies failed: cannot write the registry configuration: {err}")
    };
    let dir = tempfile::Builder::new()
        .prefix("kici-npmrc-")
        .tempdir()
        .map_err(cannot)?;
    std::fs::write(dir.path().join(".npmrc"), npmrc(secrets.registries, secrets.job_id)).map_err(cannot)?;
    Ok(Some(dir))
}

/// Runs the package manager in `.kici/`; the line for the prepare log.
async fn run_install(dir: &Path, kici_dir: &Path, secrets: &InstallSecrets<'_>) -> Result<String, String> {
    let lockfile = find_lockfile(dir, kici_dir);
    if !secrets.registries.is_empty()
        && lockfile
            .as_ref()
            .is_some_and(|l| l.manager == PackageManager::YarnBerry)
    {
        return Err("Installing the .kici dependencies failed: registries are not supported with yarn berry by this build (it reads .yarnrc.yml, not .npmrc); use npm, pnpm or yarn classic for .kici/".to_string());
    }
    let config = registry_config(secrets)?;
    let (manager, (program, args)) = match &lockfile {
        Some(lockfile) => (lockfile.manager, install_command(lockfile.manager)),
        None => (
            PackageManager::Npm,
            ("npm", &["install", "--no-audit", "--no-fund", "--loglevel=error"][..]),
        ),
    };
    let command_line = format!("{program} {}", args.join(" "));
    let started = Instant::now();
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(kici_dir)
        .env_clear()
        .envs(RunnerSpec::inherited_env())
        .env("CI", "true")
        .envs(secrets.env.iter().copied())
        .kill_on_drop(true);
    if let Some(config) = &config {
        let userconfig = config.path().join(".npmrc");
        command.env("NPM_CONFIG_USERCONFIG", &userconfig);
        for (index, registry) in secrets.registries.iter().enumerate() {
            command.env(token_variable(secrets.job_id, index), &registry.token);
        }
    }
    let output = match tokio::time::timeout(INSTALL_TIMEOUT, command.output()).await {
        Err(_) => {
            return Err(format!(
                "Installing the .kici dependencies failed: `{command_line}` did not finish within {}s",
                INSTALL_TIMEOUT.as_secs()
            ));
        }
        Ok(Err(err)) => {
            return Err(format!(
                "Installing the .kici dependencies failed: cannot run `{program}`: {err} (hint: the agent needs {program} on PATH)"
            ));
        }
        Ok(Ok(output)) => output,
    };
    if !output.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
        let refused = ["E401", "E403", "401 Unauthorized", "403 Forbidden"];
        let unreachable = ["ECONNREFUSED", "ENOTFOUND", "ETIMEDOUT", "EAI_AGAIN", "ECONNRESET"];
        let hint = if !secrets.registries.is_empty() && refused.iter().any(|code| text.contains(code)) {
            "\nhint: a registry refused the credentials: check the secrets the workflow's registries name in tokenSecret (`kici-admin secret set <scope> <NAME>`)"
        } else if unreachable.iter().any(|code| text.contains(code)) {
            "\nhint: a registry is unreachable from this agent: check the registry URLs (registries, .npmrc, the lock file's resolved URLs) and the agent's network and proxy settings (HTTPS_PROXY, NODE_EXTRA_CA_CERTS)"
        } else {
            ""
        };
        return Err(format!(
            "Installing the .kici dependencies failed: `{command_line}` exited with {}{}{hint}",
            output.status,
            if tail.is_empty() {
                String::new()
            } else {
                format!(":\n{tail}")
            }
        ));
    }
    Ok(format!(
        "Installed the .kici dependencies with {} in {:.1}s",
        manager.as_str(),
        started.elapsed().as_secs_f64()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_declared_dependencies_that_are_not_installed_need_an_install() {
        let dir = tempfile::tempdir().unwrap();
        let kici = dir.path().join(".kici");
        std::fs::create_dir(&kici).unwrap();
        assert!(!needed(dir.path()), "no package.json");
        for (manifest, expected) in [
            (r#"{"name":"kici-workflows","private":true}"#, false),
            (
                r#"{"dependencies":{},"devDependencies":{},"scripts":{"test":"node --test"}}"#,
                false,
            ),
            (r#"{"dependencies":{"left-pad":"1.3.0"}}"#, true),
            (r#"{"devDependencies":{"typescript":"5"}}"#, true),
            (r#"{"peerDependencies":{"zod":"3"}}"#, true),
            (r#"{"dependencies":"left-pad"}"#, true),
            (r#"{"workspaces":["tools/*"]}"#, true),
            (r#"{"scripts":{"postinstall":"node setup.js"}}"#, true),
            ("not json", true),
        ] {
            std::fs::write(kici.join("package.json"), manifest).unwrap();
            assert_eq!(needed(dir.path()), expected, "{manifest}");
        }
        // A lock file is installed from, whatever the manifest says.
        std::fs::write(kici.join("package.json"), "{}").unwrap();
        std::fs::write(dir.path().join("pnpm-lock.yaml"), "lockfileVersion: '9.0'\n").unwrap();
        assert!(needed(dir.path()), "a lock file");
        std::fs::create_dir(kici.join("node_modules")).unwrap();
        assert!(!needed(dir.path()), "installed already");
    }
}
