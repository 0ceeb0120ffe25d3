//! Getting the job's source: `git clone` + detached checkout of the dispatched commit (each
//! bounded by [`GIT_TIMEOUT`]), and the drift check that recomputes the workflow's
//! `contentHash` from the checkout and compares it with the lock file's.

use std::ffi::OsStr;
use std::path::{Component, Path};
use std::time::Duration;

use kici_compiler::hash_files;
use kici_compiler::runner::RunnerSpec;
use kici_engine::git_auth::{GitCredentials, credential_env, header_env};
use kici_engine::hash::{content_hash, drift_message};
use kici_engine::protocol::{JobConfig, ServedRepository};
use tokio::process::Command;

use super::transfer::Transfer;

/// Each git command (clone, checkout) must finish within this.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(120);
/// Lines of git's stderr quoted in `git clone failed: ...`.
const GIT_TAIL_LINES: usize = 5;

/// Commits of history a job fetches when its branch no longer points at its commit.
const FALLBACK_DEPTH: &str = "50";
/// git's spelling of a whole history for `--depth` (what `--unshallow` means, and unlike it
/// valid on a repository that is complete already).
const WHOLE_HISTORY: &str = "2147483647";

/// Clones `repo_url` into the empty directory `dir` and checks out `sha` (detached), one commit
/// deep as the reference does: the tip of the branch or tag `git_ref` names, which is `sha`
/// unless the branch moved on since the event; else see [`fetch_commit`]. A branch deleted
/// since the event is replaced by the default branch. A success is timed in
/// `kici_agent_clone_duration_seconds`.
pub(super) async fn clone_at(
    repo_url: &str,
    dir: &Path,
    sha: &str,
    git_ref: &str,
    credentials: Option<&GitCredentials>,
    agent: &str,
) -> Result<(), String> {
    let started = std::time::Instant::now();
    let fail = |error: String| clone_error(repo_url, agent, &error);
    check_object_id(sha).map_err(fail)?;
    let dir = dir.as_os_str();
    let branch = git_ref
        .strip_prefix("refs/heads/")
        .or_else(|| git_ref.strip_prefix("refs/tags/"))
        .filter(|name| !name.is_empty());
    let mut gone = None;
    match clone_tip(repo_url, dir, branch, credentials).await {
        Err(error) if branch.is_some() && error.contains("not found in upstream") => {
            gone = branch;
            clone_tip(repo_url, dir, None, credentials).await
        }
        cloned => cloned,
    }
    .map_err(fail)?;
    if !has_commit(dir, sha).await
        && let Err(why) = fetch_commit(dir, sha, git_ref, credentials).await
    {
        let head = git(&["-C".as_ref(), dir, "rev-parse".as_ref(), "HEAD".as_ref()], None)
            .await
            .map(|out| String::from_utf8_lossy(&out).trim().to_string())
            .unwrap_or_default();
        let gone = gone
            .map(|branch| format!(" (branch {branch} no longer exists: the default branch was cloned)"))
            .unwrap_or_default();
        return Err(fail(format!("SHA mismatch: expected {sha}, got {head}{gone}: {why}")));
    }
    checkout_detached(dir, sha).await?;
    kici_telemetry::metrics::agent::clone_finished(started.elapsed());
    Ok(())
}

/// Fetches `sha` into the shallow clone at `dir`: by id with [`FALLBACK_DEPTH`] commits behind
/// it, as the reference does. A forge that serves only what its refs advertise (protocol v0)
/// refuses that, and a fork's pull request may have moved further on: then through `git_ref`,
/// [`FALLBACK_DEPTH`] commits deep and then whole. Err says why the commit is not there.
async fn fetch_commit(
    dir: &OsStr,
    sha: &str,
    git_ref: &str,
    credentials: Option<&GitCredentials>,
) -> Result<(), String> {
    let by_id = fetch_from_origin(dir, FALLBACK_DEPTH, sha, credentials).await;
    if has_commit(dir, sha).await {
        return Ok(());
    }
    if !git_ref.starts_with("refs/") {
        return Err(by_id.map_or_else(|error| one_line(&error), |_| "the fetch did not bring it".to_string()));
    }
    for depth in [FALLBACK_DEPTH, WHOLE_HISTORY] {
        fetch_from_origin(dir, depth, git_ref, credentials)
            .await
            .map_err(|error| one_line(&error))?;
        if has_commit(dir, sha).await {
            return Ok(());
        }
    }
    Err(format!("it is not in the history of {git_ref}"))
}

/// `git fetch --depth <depth> origin <wanted>`, tags left out.
async fn fetch_from_origin(
    dir: &OsStr,
    depth: &str,
    wanted: &str,
    credentials: Option<&GitCredentials>,
) -> Result<Vec<u8>, String> {
    let args = [
        "fetch",
        "--quiet",
        "--no-tags",
        "--depth",
        depth,
        "--",
        "origin",
        wanted,
    ]
    .map(OsStr::new);
    git(&[&[OsStr::new("-C"), dir][..], &args[..]].concat(), credentials).await
}

/// A commit id the way git writes one: anything else could reach git as an option.
fn check_object_id(sha: &str) -> Result<(), String> {
    match matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        true => Ok(()),
        false => Err(format!(
            "the job's commit `{}` is not a commit id (40 or 64 hex digits)",
            kici_engine::excerpt::excerpt(sha)
        )),
    }
}

/// Clones the tip of `branch` (a branch or tag; the default branch if none), one commit deep.
async fn clone_tip(
    repo_url: &str,
    dir: &OsStr,
    branch: Option<&str>,
    credentials: Option<&GitCredentials>,
) -> Result<Vec<u8>, String> {
    let mut args = ["clone", "--quiet", "--depth", "1"].map(OsStr::new).to_vec();
    if let Some(branch) = branch {
        args.extend(["--branch", branch].map(OsStr::new));
    }
    args.extend([OsStr::new(repo_url), dir]);
    git(&args, credentials).await
}

/// Whether the repository at `dir` holds the commit `sha`.
async fn has_commit(dir: &std::ffi::OsStr, sha: &str) -> bool {
    let commit = format!("{sha}^{{commit}}");
    git(
        &["-C".as_ref(), dir, "cat-file".as_ref(), "-e".as_ref(), commit.as_ref()],
        None,
    )
    .await
    .is_ok()
}

/// Fetches `sha` and the history behind it from the repository the orchestrator serves into
/// the empty directory `dir`, and checks it out (detached). Unlike a forge's shallow clone, the
/// checkout cannot fetch more later: it has no remote, and the grant fetches nothing into a
/// repository that has objects. The job's grant is the
/// password; the orchestrator serves no other commit, no ref and no tag. `agent` says what kind
/// of agent this is, for the error.
pub(super) async fn fetch_served(served: &ServedRepository, dir: &Path, sha: &str, agent: &str) -> Result<(), String> {
    let started = std::time::Instant::now();
    let credentials = GitCredentials::password("kici", served.token.as_str());
    let dir = dir.as_os_str();
    let fail = |error: String| fetch_error(served, sha, agent, &error);
    check_object_id(sha).map_err(fail)?;
    git(&["init".as_ref(), "--quiet".as_ref(), dir], None)
        .await
        .map_err(fail)?;
    git_direct(
        &[
            "-C".as_ref(),
            dir,
            "-c".as_ref(),
            "protocol.version=2".as_ref(),
            "fetch".as_ref(),
            "--quiet".as_ref(),
            "--no-tags".as_ref(),
            "--".as_ref(),
            served.url.as_ref(),
            sha.as_ref(),
        ],
        &credentials,
    )
    .await
    .map_err(fail)?;
    checkout_detached(dir, sha).await?;
    kici_telemetry::metrics::agent::clone_finished(started.elapsed());
    Ok(())
}

async fn checkout_detached(dir: &std::ffi::OsStr, sha: &str) -> Result<(), String> {
    git(
        &[
            "-C".as_ref(),
            dir,
            "checkout".as_ref(),
            "--quiet".as_ref(),
            "--detach".as_ref(),
            sha.as_ref(),
        ],
        None,
    )
    .await
    .map(drop)
}

/// A failed fetch from the orchestrator: the source, the URL, what kind of agent tried, git's
/// words (the orchestrator's own reason among them, as `remote:` lines) and a hint at the likely
/// cause.
fn fetch_error(served: &ServedRepository, sha: &str, agent: &str, error: &str) -> String {
    let detail = one_line(error);
    let hint = match Cause::of(&detail) {
        Cause::Unreachable => format!(
            " (hint: this {agent} reached the orchestrator's WebSocket, but not {}: a proxy or firewall between them must let /git/ through as it does /ws)",
            served.url
        ),
        // The orchestrator's own 404 says why.
        Cause::NotFound if detail.contains("no local source has this repository") => String::new(),
        Cause::NotFound => format!(
            " (hint: nothing answers /git/ at {}: a reverse proxy in front of the orchestrator must pass /git/ as it does /ws, or the orchestrator is older than this agent)",
            served.url
        ),
        Cause::Slow => " (hint: the orchestrator packs four fetches at a time, each of a commit's whole history: a large repository, many jobs starting at once or a slow link between the agent and the orchestrator)".to_string(),
        Cause::Refused if !detail.contains("reads its own source's repository") => " (hint: the orchestrator refused the job's credential: it is valid while the job runs, on orchestrators that share the secret key of the one that sent it)".to_string(),
        Cause::MissingCommit => format!(
            " (hint: the repository of source `{}` no longer holds commit {sha}: was it rewritten and pruned since the push?)",
            served.source
        ),
        Cause::Refused | Cause::Unadvertised | Cause::Unknown => String::new(),
    };
    format!(
        "git fetch of source `{}` from {} failed on this {agent}: {detail}{hint}",
        served.source, served.url
    )
}

/// git's error as one line: it is the run's failure reason too.
fn one_line(error: &str) -> String {
    error
        .strip_prefix("git clone failed: ")
        .unwrap_or(error)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The likely cause of a failed fetch or clone, from git's (2.39 to 2.47) words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// No connection: a name that does not resolve, a port nothing listens on, a firewall.
    Unreachable,
    /// A server that has no such repository (or path).
    NotFound,
    /// Past [`GIT_TIMEOUT`].
    Slow,
    /// The server wants credentials or refused them.
    Refused,
    /// The repository does not hold the commit.
    MissingCommit,
    /// The server serves only what its refs point at (git protocol v0), by id nothing else.
    Unadvertised,
    Unknown,
}

impl Cause {
    fn of(detail: &str) -> Cause {
        let has = |texts: &[&str]| texts.iter().any(|text| detail.contains(text));
        if has(&[
            "Could not resolve host",
            "Failed to connect",
            "Couldn't connect",
            "Connection refused",
            "Connection timed out",
            "Could not resolve hostname",
            "No route to host",
        ]) {
            Cause::Unreachable
        } else if has(&["did not finish within"]) {
            Cause::Slow
        } else if has(&[
            "Authentication failed",
            "could not read Username",
            "credential is not valid",
            "credential has expired",
            "has ended",
            "is no longer on agent",
            "reads its own source's repository",
            "error: 401",
            "error: 403",
            "Permission denied (publickey",
            "Host key verification failed",
        ]) {
            Cause::Refused
        } else if has(&[
            "not our ref",
            "not a valid object",
            "couldn't find remote ref",
            "is not in the history of",
        ]) {
            Cause::MissingCommit
        } else if has(&["unadvertised object"]) {
            Cause::Unadvertised
        } else if has(&["not found", "error: 404"]) {
            Cause::NotFound
        } else {
            Cause::Unknown
        }
    }
}

/// `checkout: false`: the workflow's source tarball (`.kici/` and its `hashFiles`) unpacked
/// into the empty working directory instead of a clone.
pub(super) async fn unpack_source(url: Option<&str>, dir: &Path, transfer: &Transfer) -> Result<(), String> {
    let url = url.ok_or_else(|| {
        "checkout: false needs the workflow's source tarball, and the orchestrator sent none (hint: its object storage failed; see the orchestrator log)".to_string()
    })?;
    let bytes = transfer
        .download(url)
        .await
        .map_err(|err| format!("cannot fetch the workflow's source tarball: {err}"))?;
    super::transfer::unpack(bytes, dir)
        .await
        .map_err(|err| format!("cannot unpack the workflow's source tarball: {err}"))
}

/// An untrusted pull request's checkout runs the base branch's workflows: its own `.kici/` is
/// removed and the workflow's source tarball (`.kici/` and the hashFiles at the base) unpacked
/// in its place, so nothing the pull request changed there runs.
pub(super) async fn base_workflows(url: Option<&str>, dir: &Path, transfer: &Transfer) -> Result<(), String> {
    let url = url.ok_or_else(|| {
        "this pull request runs the base branch's workflows, and the orchestrator sent no source tarball (hint: its object storage failed; see the orchestrator log)".to_string()
    })?;
    match tokio::fs::remove_dir_all(dir.join(".kici")).await {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(format!("cannot remove the pull request's .kici/: {err}")),
    }
    unpack_source(Some(url), dir, transfer).await
}

/// Checks that the dispatch's paths stay inside the checkout.
pub(super) fn check_paths(config: &JobConfig) -> Result<(), String> {
    if !is_safe_relative(&config.workflow_file) {
        return Err(format!(
            "invalid workflow file `{}` in the dispatch (expected a repository-relative path)",
            config.workflow_file
        ));
    }
    if let Some(bad) = config.resolved_hash_files.iter().find(|f| !is_safe_relative(f)) {
        return Err(format!(
            "invalid hashFiles entry `{bad}` in the dispatch (expected a repository-relative path)"
        ));
    }
    Ok(())
}

/// Recomputes the workflow's contentHash from the checkout and compares it with the lock's.
pub(super) async fn check_drift(dir: &Path, config: &JobConfig) -> Result<(), String> {
    let root = dir.to_path_buf();
    let file = config.workflow_file.clone();
    let hash_files = config.resolved_hash_files.clone();
    let computed = tokio::task::spawn_blocking(move || -> Result<String, String> {
        let source = std::fs::read(root.join(&file))
            .map_err(|err| format!("failed to read workflow file `{file}` from the checkout: {err}"))?;
        let digest = hash_files::digest(&root, &hash_files);
        Ok(content_hash(kici_sdk::sdk().hash, &source, digest.as_deref()))
    })
    .await
    .map_err(|err| format!("computing the contentHash failed: {err}"))??;
    if computed == config.content_hash {
        return Ok(());
    }
    let sdk = kici_sdk::sdk();
    Err(drift_message(&config.content_hash, &computed, sdk.version, sdk.hash))
}

/// The SSH key and the known hosts (those the orchestrator trusts; none: every server is
/// refused) in 0600 files removed when the returned directory is dropped, and the
/// `GIT_SSH_COMMAND` using them.
fn ssh_files(key: &str, known_hosts: Option<&str>) -> std::io::Result<(String, tempfile::TempDir)> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = tempfile::tempdir()?;
    let write = |name: &str, text: &str| -> std::io::Result<std::path::PathBuf> {
        use std::io::Write as _;
        let path = dir.path().join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(format!("{}\n", text.trim_end()).as_bytes())?;
        Ok(path)
    };
    let key_file = write("key", key)?;
    let known_hosts_file = write("known_hosts", known_hosts.unwrap_or_default())?;
    let command = kici_engine::git_auth::ssh_command(
        &key_file.display().to_string(),
        &known_hosts_file.display().to_string(),
        true,
    );
    Ok((command, dir))
}

/// Runs one git command with [`GIT_TIMEOUT`] and the agent's inherited environment only; Ok is
/// its standard output, Err is `git clone failed: <last stderr lines>`. `credentials` reach it through the credential
/// helper of `kici_engine::git_auth`, never its arguments.
async fn git(args: &[&std::ffi::OsStr], credentials: Option<&GitCredentials>) -> Result<Vec<u8>, String> {
    git_with(args, credentials, false).await
}

/// [`git`] for the orchestrator's own git server, reached directly as the agent's WebSocket is:
/// no HTTP proxy of the environment, which would see the job's credential (in clear over
/// `http://`) or not reach the orchestrator at all.
async fn git_direct(args: &[&std::ffi::OsStr], credentials: &GitCredentials) -> Result<Vec<u8>, String> {
    git_with(args, Some(credentials), true).await
}

/// `direct`: the orchestrator's own server, which wants the credentials, reached without a
/// proxy.
async fn git_with(
    args: &[&std::ffi::OsStr],
    credentials: Option<&GitCredentials>,
    direct: bool,
) -> Result<Vec<u8>, String> {
    let mut command = Command::new("git");
    command
        .args(args)
        .env_clear()
        .envs(
            RunnerSpec::inherited_env()
                .into_iter()
                .filter(|(name, _)| !(direct && name.to_ascii_lowercase().ends_with("_proxy"))),
        )
        .env("GIT_TERMINAL_PROMPT", "0")
        // git's words are read for the cause of a failure (`Cause::of`): in English whatever the
        // host's language.
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    // The SSH key's file lives until git is done.
    let mut _key_file = None;
    match credentials {
        Some(credentials) if let Some(key) = &credentials.ssh_key => {
            let (ssh, files) = ssh_files(key, credentials.known_hosts.as_deref())
                .map_err(|err| format!("git clone failed: cannot write the SSH key for git: {err}"))?;
            command.env("GIT_SSH_COMMAND", ssh);
            _key_file = Some(files);
        }
        Some(credentials) if direct => {
            command.envs(header_env(credentials));
        }
        Some(credentials) => {
            command.envs(credential_env(credentials));
        }
        None => {}
    }
    let verb = args
        .iter()
        .map(|a| a.to_string_lossy())
        .find(|a| ["clone", "checkout", "init", "fetch"].contains(&a.as_ref()))
        .unwrap_or_default()
        .to_string();
    let output = match tokio::time::timeout(GIT_TIMEOUT, command.output()).await {
        Err(_) => {
            return Err(format!(
                "git clone failed: `git {verb}` did not finish within {}s",
                GIT_TIMEOUT.as_secs()
            ));
        }
        Ok(Err(err)) => return Err(format!("git clone failed: could not run git: {err}")),
        Ok(Ok(output)) => output,
    };
    if output.status.success() {
        return Ok(output.stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(GIT_TAIL_LINES)..].join("\n");
    if tail.is_empty() {
        Err(format!("git clone failed: `git {verb}` exited with {}", output.status))
    } else {
        Err(format!("git clone failed: {tail}"))
    }
}

/// A failed clone's error: the repository URL tried (without credentials), what kind of agent
/// tried, git's words and a hint at the likely cause.
fn clone_error(repo_url: &str, agent: &str, error: &str) -> String {
    // A `file://` URL is the source's path as the orchestrator wrote it, not percent-encoded.
    let (shown, host) = match url::Url::parse(repo_url) {
        _ if repo_url.starts_with("file://") => (repo_url["file://".len()..].to_string(), None),
        Ok(mut url) if url.has_authority() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            let host = url.host_str().map(str::to_string);
            (url.to_string(), host)
        }
        _ => (repo_url.to_string(), None),
    };
    let detail = one_line(error);
    let local = repo_url.starts_with('/') || repo_url.starts_with("file://");
    let unseen = [
        "does not appear to be a git repository",
        "does not exist",
        "No such file or directory",
    ]
    .iter()
    .any(|text| detail.contains(text));
    let forge = host.as_deref().unwrap_or("the forge");
    let hint = match Cause::of(&detail) {
        _ if local && unseen => " (hint: this agent was given a local source's path, which it does not have: an orchestrator of this build serves the job's commit instead, so upgrade the orchestrator; an older one needs the path mounted in the agent)".to_string(),
        Cause::Unreachable => format!(
            " (hint: this {agent} cannot reach {forge}: the forge must be reachable from where the agent runs, through its DNS, proxy and firewall; a container with its own network or a microVM has its own)"
        ),
        Cause::Refused | Cause::NotFound => format!(
            " (hint: {forge} refused the clone, or hides a private repository: give the source credentials that may read it, kici-admin source update <source> --git-username <user> --git-password-file <file>, or for a GitHub App, include the repository in its installation)"
        ),
        Cause::Slow => format!(" (hint: a large repository needs a faster link between the agent and {forge})"),
        Cause::MissingCommit => " (hint: the repository no longer holds the job's commit: was it rewritten and pruned since the push?)".to_string(),
        Cause::Unadvertised => format!(
            " (hint: {forge} serves a commit only through a branch or tag that points at it (git protocol v0), and the job's event named none that does)"
        ),
        Cause::Unknown => String::new(),
    };
    format!("git clone of {shown} failed on this {agent}: {detail}{hint}")
}

/// A repository-relative path that stays inside the checkout.
fn is_safe_relative(path: &str) -> bool {
    let path = Path::new(path);
    !path.as_os_str().is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_clone_names_the_url_without_credentials_the_agent_and_a_hint() {
        assert_eq!(
            clone_error(
                "/srv/git/app.git",
                "agent",
                "git clone failed: fatal: '/srv/git/app.git' does not appear to be a git repository"
            ),
            "git clone of /srv/git/app.git failed on this agent: fatal: '/srv/git/app.git' does not appear to be a git repository (hint: this agent was given a local source's path, which it does not have: an orchestrator of this build serves the job's commit instead, so upgrade the orchestrator; an older one needs the path mounted in the agent)"
        );
        assert!(
            clone_error(
                "file:///srv/git/my app.git",
                "agent",
                "git clone failed: fatal: '/srv/git/my app.git' does not appear to be a git repository"
            )
            .starts_with("git clone of /srv/git/my app.git failed on this agent: fatal: ")
        );
        assert!(
            clone_error(
                "/srv/git/app.git",
                "agent",
                "git clone failed: fatal: repository '/srv/git/app.git' does not exist"
            )
            .ends_with("needs the path mounted in the agent)")
        );
        assert_eq!(
            clone_error(
                "https://x-access-token:secret@forge.example/a/b.git",
                "container agent",
                "git clone failed: remote: Invalid username or password.\nfatal: Authentication failed for 'https://forge.example/a/b.git/'"
            ),
            "git clone of https://forge.example/a/b.git failed on this container agent: remote: Invalid username or password.; fatal: Authentication failed for 'https://forge.example/a/b.git/' (hint: forge.example refused the clone, or hides a private repository: give the source credentials that may read it, kici-admin source update <source> --git-username <user> --git-password-file <file>, or for a GitHub App, include the repository in its installation)"
        );
        assert!(
            clone_error(
                "https://forge.example/a/b.git",
                "firecracker agent",
                "git clone failed: fatal: unable to access 'https://forge.example/a/b.git/': Could not resolve host: forge.example"
            )
            .ends_with("(hint: this firecracker agent cannot reach forge.example: the forge must be reachable from where the agent runs, through its DNS, proxy and firewall; a container with its own network or a microVM has its own)")
        );
    }

    #[test]
    fn a_failed_fetch_from_the_orchestrator_names_the_source_the_url_the_agent_and_a_hint() {
        let served = ServedRepository {
            source: "app".into(),
            url: "http://10.0.0.1:4000/git/s1".into(),
            token: "secret".into(),
        };
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let error = |git: &str| fetch_error(&served, sha, "container agent", git);
        assert_eq!(
            error(
                "git clone failed: fatal: unable to access 'http://10.0.0.1:4000/git/s1/': Failed to connect to 10.0.0.1 port 4000 after 0 ms: Couldn't connect to server"
            ),
            "git fetch of source `app` from http://10.0.0.1:4000/git/s1 failed on this container agent: fatal: unable to access 'http://10.0.0.1:4000/git/s1/': Failed to connect to 10.0.0.1 port 4000 after 0 ms: Couldn't connect to server (hint: this container agent reached the orchestrator's WebSocket, but not http://10.0.0.1:4000/git/s1: a proxy or firewall between them must let /git/ through as it does /ws)"
        );
        assert!(
            error("git clone failed: remote: job j1 has ended (success): a job's git credential lives as long as the job\nfatal: unable to access 'http://10.0.0.1:4000/git/s1/': The requested URL returned error: 403")
                .ends_with("error: 403 (hint: the orchestrator refused the job's credential: it is valid while the job runs, on orchestrators that share the secret key of the one that sent it)")
        );
        assert!(
            error(&format!("git clone failed: fatal: remote error: upload-pack: not our ref {sha}")).ends_with(&format!(
                "(hint: the repository of source `app` no longer holds commit {sha}: was it rewritten and pruned since the push?)"
            ))
        );
        assert!(
            error("git clone failed: fatal: repository 'http://10.0.0.1:4000/git/s1/' not found")
                .ends_with("(hint: nothing answers /git/ at http://10.0.0.1:4000/git/s1: a reverse proxy in front of the orchestrator must pass /git/ as it does /ws, or the orchestrator is older than this agent)")
        );
        // A refusal that explains itself gets no hint.
        assert!(
            error(
                "git clone failed: remote: this job's git credential reads its own source's repository, not this one"
            )
            .ends_with("not this one")
        );
        // git's lines become one, so the run's failure reason is one line.
        assert_eq!(
            error("git clone failed: remote: first\n\nfatal: second"),
            "git fetch of source `app` from http://10.0.0.1:4000/git/s1 failed on this container agent: remote: first; fatal: second"
        );
    }

    fn git_in(dir: &Path, args: &[&str]) -> String {
        let output = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .expect("git runs");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// A repository at `root/work` with `commits` empty commits on main; their ids, oldest first.
    fn repository(root: &Path, commits: usize) -> (std::path::PathBuf, Vec<String>) {
        let work = root.join("work");
        std::fs::create_dir(&work).expect("work dir");
        git_in(&work, &["init", "-q", "-b", "main"]);
        let ids = (0..commits)
            .map(|n| {
                git_in(&work, &["commit", "-q", "--allow-empty", "-m", &n.to_string()]);
                git_in(&work, &["rev-parse", "HEAD"])
            })
            .collect();
        (work, ids)
    }

    #[tokio::test]
    async fn a_commit_the_branch_does_not_hold_is_a_sha_mismatch() {
        let root = tempfile::tempdir().expect("temp dir");
        let (work, ids) = repository(root.path(), 1);
        let url = format!("file://{}", work.display());
        let checkout = root.path().join("checkout");
        std::fs::create_dir(&checkout).expect("checkout dir");
        let gone = "0123456789abcdef0123456789abcdef01234567";
        let error = clone_at(&url, &checkout, gone, "refs/heads/main", None, "agent")
            .await
            .expect_err("no such commit");
        assert_eq!(
            error,
            format!(
                "git clone of {} failed on this agent: SHA mismatch: expected {gone}, got {}: it is not in the history of refs/heads/main (hint: the repository no longer holds the job's commit: was it rewritten and pruned since the push?)",
                work.display(),
                ids[0]
            )
        );
        // A deleted branch: the default branch is cloned, and the error says so.
        let checkout = root.path().join("checkout-2");
        std::fs::create_dir(&checkout).expect("checkout dir");
        let error = clone_at(&url, &checkout, gone, "refs/heads/feature", None, "agent")
            .await
            .expect_err("no such commit");
        assert!(
            error.contains(&format!(
                "SHA mismatch: expected {gone}, got {} (branch feature no longer exists: the default branch was cloned): ",
                ids[0]
            )),
            "{error}"
        );
        // Nothing but a commit id reaches git.
        let error = clone_at(
            &url,
            &checkout,
            "--upload-pack=touch /tmp/x",
            "refs/heads/main",
            None,
            "agent",
        )
        .await
        .expect_err("not a commit id");
        assert_eq!(
            error,
            format!(
                "git clone of {} failed on this agent: the job's commit `--upload-pack=touch /tmp/x` is not a commit id (40 or 64 hex digits)",
                work.display()
            )
        );
    }

    /// A forge of protocol v0 serves no commit by id: the job's commit, 59 commits below its
    /// branch's tip, comes through the branch, whole since 50 commits do not reach it.
    #[tokio::test]
    async fn a_commit_a_forge_will_not_serve_by_id_comes_through_its_ref() {
        let root = tempfile::tempdir().expect("temp dir");
        let (work, ids) = repository(root.path(), 60);
        let checkout = root.path().join("checkout");
        let url = format!("file://{}", work.display());
        git_in(root.path(), &["clone", "-q", "--depth", "1", &url, "checkout"]);
        git_in(&checkout, &["config", "protocol.version", "0"]);
        let dir = checkout.as_os_str();
        let refused = fetch_from_origin(dir, FALLBACK_DEPTH, &ids[0], None)
            .await
            .expect_err("v0 serves no unadvertised commit");
        assert!(refused.contains("unadvertised object"), "{refused}");
        assert_eq!(fetch_commit(dir, &ids[0], "refs/heads/main", None).await, Ok(()));
        assert!(has_commit(dir, &ids[0]).await);
        // Without a ref to go through, git's refusal is the reason.
        let other = tempfile::tempdir().expect("temp dir");
        git_in(other.path(), &["clone", "-q", "--depth", "1", &url, "c"]);
        git_in(&other.path().join("c"), &["config", "protocol.version", "0"]);
        let why = fetch_commit(other.path().join("c").as_os_str(), &ids[0], "", None)
            .await
            .expect_err("no ref");
        assert!(why.contains("unadvertised object"), "{why}");
        assert!(
            clone_error(&url, "agent", &why).ends_with(
                "(hint: the forge serves a commit only through a branch or tag that points at it (git protocol v0), and the job's event named none that does)"
            ),
            "{why}"
        );
    }

    #[test]
    fn only_repository_relative_paths_are_accepted() {
        assert!(is_safe_relative(".kici/workflows/a.ts"));
        assert!(!is_safe_relative("../a.ts"));
        assert!(!is_safe_relative("/etc/passwd"));
        assert!(!is_safe_relative("a/../../b"));
        assert!(!is_safe_relative(""));
    }
}
