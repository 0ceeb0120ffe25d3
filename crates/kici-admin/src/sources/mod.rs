//! `kici-admin source add|list|trigger-local|install-hook`: webhook sources
//! (`/api/v1/admin/sources`) and the two ways a local repository reports pushes: a one-off
//! `trigger-local`, and a `post-receive` hook that runs it for every pushed ref.
//!
//! A local source's webhook takes a GitHub-shaped push body with `x-event-type` and
//! `x-delivery-id` headers (`docs/api.md`, "Webhooks"); [`push_body`] builds it from what
//! [`git::inspect_push`] read.

pub mod git;
mod hook;
mod manage;
mod manifest;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use kici_client::client::ApiClient;
use kici_client::format;
use kici_client::table;
use kici_engine::api::admin::{DeliveryView, SourceList, SourceView, TriggerToken};
use kici_engine::ids::SourceId;
use serde::Serialize;
use serde_json::{Value, json};

use git::{Push, PushRequest};

/// The only organisation.
const ORG_ID: &str = "default";

#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// Register a webhook source
    Add {
        #[command(subcommand)]
        kind: AddKind,
    },
    /// List webhook sources
    List(ListArgs),
    /// Send a push of a local source's repository to the orchestrator, as its webhook would
    TriggerLocal(TriggerArgs),
    /// Install a post-receive hook that triggers the source on every push to its repository
    InstallHook(InstallHookArgs),
    /// Show an accepted webhook delivery: still processing, or how it ended and its runs
    Delivery(DeliveryArgs),
    /// Change a source: webhook secret (with a rotation window), clone URL and credentials, API URL, rate limit
    Update(manage::UpdateArgs),
    /// Remove a source (its runs stay; its schedules go)
    Remove(manage::SourceArg),
    /// Accept the source's webhooks again
    Enable(manage::SourceArg),
    /// Refuse the source's webhooks (403 source_disabled) until it is enabled
    Disable(manage::SourceArg),
    /// Print a forge source's webhook secret (owner and admin tokens; logged)
    GetWebhookSecret(manage::SourceArg),
    /// What each generic preset expects from its forge: headers, signature, commit statuses
    ListPresets,
}

#[derive(Debug, Args)]
pub struct DeliveryArgs {
    /// The delivery id a webhook answer gave (`<sourceId>:<id>`)
    delivery_id: String,
    /// Print the API's JSON
    #[arg(long)]
    json: bool,
}

pub fn render_delivery_view(view: &DeliveryView) -> String {
    let runs = if view.run_ids.is_empty() {
        format::NONE.to_string()
    } else {
        view.run_ids.join(", ")
    };
    let mut out = format!(
        "Delivery: {}\nSource:   {}\nEvent:    {}\nStatus:   {}\nRuns:     {runs}\n",
        view.delivery_id, view.source_id, view.event_type, view.status
    );
    if let Some(detail) = &view.detail {
        out.push_str(&format!("Detail:   {detail}\n"));
    }
    out
}

#[derive(Debug, Subcommand)]
pub enum AddKind {
    /// A repository on this machine (pushes arrive via trigger-local or the post-receive hook)
    Local(AddLocalArgs),
    /// A forge that signs its webhooks (Forgejo, Gitea, GitLab, GitHub repository webhooks)
    Generic(AddGenericArgs),
    /// A GitHub App: webhooks at /webhook/<org>/github, installation tokens, check runs
    Github(AddGithubArgs),
}

#[derive(Debug, Args)]
pub struct AddGithubArgs {
    #[arg(long)]
    name: String,
    /// The App's id (its settings page shows it)
    #[arg(long, required_unless_present_any = ["manifest", "manifest_code"])]
    app_id: Option<String>,
    /// The App's private key: `@file.pem` (or `-` for stdin); stored encrypted
    #[arg(long, value_name = "@FILE", required_unless_present_any = ["manifest", "manifest_code"])]
    private_key: Option<String>,
    /// The App's webhook secret
    #[arg(long, required_unless_present_any = ["manifest", "manifest_code"])]
    webhook_secret: Option<String>,
    /// Create the App on GitHub from a manifest instead: writes a page (--manifest-out) whose
    /// button does it; then finish with --manifest-code
    #[arg(long, conflicts_with_all = ["app_id", "private_key", "webhook_secret", "manifest_code"])]
    manifest: bool,
    /// With --manifest: the orchestrator's address as GitHub reaches it (default: the URL this
    /// command talks to)
    #[arg(long, value_name = "URL", requires = "manifest")]
    public_url: Option<String>,
    /// With --manifest: the App's name on GitHub (unique there; default kici-<name>)
    #[arg(long, requires = "manifest")]
    app_name: Option<String>,
    /// With --manifest: create the App in this organization (default: your account)
    #[arg(long, value_name = "LOGIN", requires = "manifest")]
    github_org: Option<String>,
    /// With --manifest: GitHub's web address (GitHub Enterprise: https://host)
    #[arg(
        long,
        value_name = "URL",
        default_value = "https://github.com",
        requires = "manifest"
    )]
    github_url: String,
    /// With --manifest: where the page is written
    #[arg(
        long,
        value_name = "FILE",
        default_value = "kici-github-app.html",
        requires = "manifest"
    )]
    manifest_out: std::path::PathBuf,
    /// The code GitHub's redirect carried after --manifest: the orchestrator exchanges it for
    /// the App's id, key and webhook secret (within the hour, once)
    #[arg(long, conflicts_with_all = ["app_id", "private_key", "webhook_secret"])]
    manifest_code: Option<String>,
    /// The GitHub API (default https://api.github.com; GitHub Enterprise: https://host/api/v3)
    #[arg(long, value_name = "URL")]
    api_url: Option<String>,
    /// Only installations on this account (user or organization login) may send webhooks;
    /// repeat for several (default: any account that installs the App)
    #[arg(long = "allow-owner", value_name = "LOGIN")]
    allow_owners: Vec<String>,
    /// Verified deliveries accepted per minute; more are refused with 429 (default 600)
    #[arg(long, value_name = "PER_MINUTE")]
    rate_limit: Option<i64>,
}

#[derive(Debug, Args)]
pub struct AddLocalArgs {
    /// The source's name; runs show it as their repository
    #[arg(long)]
    name: String,
    /// The repository (bare or not); made absolute, must exist
    #[arg(long)]
    path: PathBuf,
    /// Pushes accepted per minute; more are refused with 429 (default 600)
    #[arg(long, value_name = "PER_MINUTE")]
    rate_limit: Option<i64>,
}

#[derive(Debug, Args)]
pub struct AddGenericArgs {
    #[arg(long)]
    name: String,
    /// How the forge signs and names its events
    #[arg(long, value_enum)]
    preset: Preset,
    /// The webhook secret configured on the forge (not with `--verification ip_allowlist`)
    #[arg(long, required_unless_present = "allow_ips")]
    secret: Option<String>,
    /// How deliveries prove they come from the sender: `hmac_sha256` (X-Hub-Signature-256 or the
    /// preset's header), `ip_allowlist` (the sender's address, with --allow-ip) or, for `--preset
    /// custom`, `bearer_token` (Authorization: Bearer <secret>)
    #[arg(long, value_name = "HOW", value_parser = ["hmac_sha256", "bearer_token", "ip_allowlist"])]
    verification: Option<String>,
    /// An address or range webhooks may come from (`192.0.2.0/24`), for `--verification
    /// ip_allowlist`; repeat for several. The TCP peer is checked: behind a proxy, the proxy's
    #[arg(long = "allow-ip", value_name = "CIDR")]
    allow_ips: Vec<String>,
    /// Clone URL template, e.g. `https://forge.example/{owner}/{name}.git` (without credentials);
    /// required but for `--preset custom`
    #[arg(
        long,
        value_name = "TEMPLATE",
        required_if_eq_any = [("preset", "forgejo"), ("preset", "gitea"), ("preset", "gogs"), ("preset", "gitlab-repo"), ("preset", "github-repo")]
    )]
    git_url: Option<String>,
    /// User name for cloning a private repository (with --git-password-file; for an SSH key, the
    /// SSH user, default `git`)
    #[arg(long, value_name = "NAME")]
    git_username: Option<String>,
    /// File holding the password or access token for cloning (`-` reads it from stdin); the
    /// orchestrator stores it encrypted and never puts it in the URL
    #[arg(
        long,
        value_name = "FILE",
        requires = "git_username",
        conflicts_with = "ssh_key_file"
    )]
    git_password_file: Option<PathBuf>,
    /// File holding an SSH deploy key for an SSH clone URL (`ssh://git@host/{owner}/{name}.git`);
    /// stored encrypted, given to git in a 0600 file only while it runs
    #[arg(long, value_name = "FILE")]
    ssh_key_file: Option<PathBuf>,
    /// Which server keys an SSH clone trusts: `accept-new` (the first one seen, then only it) or
    /// `pinned` (those of --ssh-known-hosts-file)
    #[arg(long, value_name = "POLICY", value_parser = ["accept-new", "pinned"], default_value = "accept-new", requires = "ssh_key_file")]
    ssh_host_key_policy: String,
    /// known_hosts lines for `--ssh-host-key-policy pinned` (`ssh-keyscan -p <port> <host>` prints them)
    #[arg(long, value_name = "FILE")]
    ssh_known_hosts_file: Option<PathBuf>,
    /// Which clone credentials the source has, as the reference CLI names them: `pat` (with
    /// --git-username and --git-password-file) or `ssh` (with --ssh-key-file); checked against
    /// the files given
    #[arg(long, value_name = "TYPE", value_parser = ["pat", "ssh"])]
    credential_type: Option<String>,
    /// Verified deliveries accepted per minute; more are refused with 429 (default 600)
    #[arg(long, value_name = "PER_MINUTE")]
    rate_limit: Option<i64>,
    /// The forge's API for commit statuses (default: the one the clone URL's host implies,
    /// e.g. https://forge.example/api/v1); statuses are set with the --git-password-file token
    #[arg(long, value_name = "URL")]
    api_url: Option<String>,
}

/// The first line of `path` (stdin for `-`), without its line break; never from the command
/// line, where other users could read it.
pub(super) fn read_password_file(path: &Path) -> anyhow::Result<String> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("cannot read the git password from stdin")?
    } else {
        std::fs::read_to_string(path)
            .map_err(|err| anyhow!("cannot read the git password file `{}`: {err}", path.display()))?
    };
    match text.lines().next() {
        Some(password) if !password.is_empty() => Ok(password.to_string()),
        _ => bail!(
            "the git password file `{}` is empty (hint: put the password or access token on its first line)",
            path.display()
        ),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    Forgejo,
    Gitea,
    Gogs,
    GitlabRepo,
    GithubRepo,
    /// Any service without git: its JSON events reach `genericWebhook()` triggers
    Custom,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print the API's JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// The source's id or name
    source: String,
    /// The event to send
    #[arg(long, default_value = "push", value_parser = ["push"])]
    event: String,
    /// The pushed ref (`main` means `refs/heads/main`); default: the branch HEAD points to
    #[arg(long = "ref", value_name = "REF")]
    git_ref: Option<String>,
    /// The pushed commit; default: the commit the ref points to
    #[arg(long)]
    sha: Option<String>,
    /// The commit the ref pointed to before the push, to list every changed file of a multi-commit push
    #[arg(long, value_name = "SHA")]
    before: Option<String>,
    /// The repository to read; default: the source's path
    #[arg(long, value_name = "PATH")]
    repo_path: Option<PathBuf>,
    /// Authenticate with the source's trigger token read from this file (the post-receive hook
    /// does); SOURCE is then the source's id and --repo-path is required. Without it, the admin
    /// token is sent.
    #[arg(long, value_name = "FILE", requires = "repo_path")]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InstallHookArgs {
    /// The source's id or name
    source: String,
    /// The repository to install into; default: the source's path
    #[arg(long, value_name = "PATH")]
    repo_path: Option<PathBuf>,
    /// Replace an existing post-receive hook
    #[arg(long)]
    force: bool,
}

/// What `kici-admin` needs beyond the client: the global options, for the hook it writes.
pub struct Globals<'a> {
    pub url: &'a str,
}

/// A local source known only by its id (what a trigger token may not look up).
fn local_source(source_id: &str) -> SourceView {
    SourceView {
        source_id: SourceId::from(source_id.to_string()),
        org_id: None,
        name: source_id.to_string(),
        kind: "local".to_string(),
        path: None,
        git_url: None,
        preset: None,
        verification: None,
        has_credentials: None,
        rate_limit_rpm: None,
        webhook_url: None,
        created_at: None,
        trigger_token: None,
        status_api_url: None,
        enabled: None,
        previous_secret_until: None,
        allowed_owners: Vec::new(),
    }
}

fn is_local(source: &SourceView) -> bool {
    source.kind == "local"
}

pub async fn run(client: &ApiClient, globals: &Globals<'_>, command: SourceCommand) -> anyhow::Result<()> {
    match command {
        SourceCommand::Add { kind } => add(client, kind).await,
        SourceCommand::List(args) => {
            let list = list_sources(client).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", render_list(client.base_url(), &list));
            }
            Ok(())
        }
        SourceCommand::TriggerLocal(args) => trigger_local(client, args).await,
        SourceCommand::Update(args) => manage::update(client, args).await,
        SourceCommand::Remove(args) => manage::remove(client, args).await,
        SourceCommand::Enable(args) => manage::set_enabled(client, args, true).await,
        SourceCommand::Disable(args) => manage::set_enabled(client, args, false).await,
        SourceCommand::GetWebhookSecret(args) => manage::get_webhook_secret(client, args).await,
        SourceCommand::ListPresets => {
            print!("{}", manage::list_presets());
            Ok(())
        }
        SourceCommand::InstallHook(args) => install_hook(client, globals, args).await,
        SourceCommand::Delivery(args) => {
            let view: Value = client
                .get(&["api", "v1", "admin", "deliveries", &args.delivery_id], &[])
                .await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                let view: DeliveryView = serde_json::from_value(view)?;
                print!("{}", render_delivery_view(&view));
            }
            Ok(())
        }
    }
}

async fn add(client: &ApiClient, kind: AddKind) -> anyhow::Result<()> {
    let body = match kind {
        AddKind::Local(args) => {
            let path = absolute_repo_path(&args.path)?;
            git::ensure_repository(&path).await?;
            json!({"kind": "local", "name": args.name, "path": path.display().to_string(), "rateLimitRpm": args.rate_limit})
        }
        AddKind::Github(args) if args.manifest => {
            let public_url = args.public_url.clone().unwrap_or_else(|| client.base_url().to_string());
            let app_name = args.app_name.clone().unwrap_or_else(|| format!("kici-{}", args.name));
            print!(
                "{}",
                manifest::write(
                    &args.manifest_out,
                    (&args.name, &app_name),
                    &public_url,
                    &args.github_url,
                    args.github_org.as_deref()
                )?
            );
            return Ok(());
        }
        AddKind::Github(args) if args.manifest_code.is_some() => json!({
            "kind": "github", "name": args.name, "manifestCode": args.manifest_code, "apiUrl": args.api_url,
            "rateLimitRpm": args.rate_limit, "allowedOwners": args.allow_owners,
        }),
        AddKind::Github(args) => {
            let private_key = args.private_key.unwrap_or_default();
            let path = private_key.strip_prefix('@').ok_or_else(|| {
                anyhow!("--private-key takes the key file as @path (e.g. @app.private-key.pem), so the key never sits on the command line")
            })?;
            let key = if path == "-" {
                std::io::read_to_string(std::io::stdin()).context("cannot read the private key from stdin")?
            } else {
                std::fs::read_to_string(path)
                    .map_err(|err| anyhow!("cannot read the private key file `{path}`: {err}"))?
            };
            json!({
                "kind": "github", "name": args.name, "appId": args.app_id, "privateKey": key,
                "secret": args.webhook_secret, "apiUrl": args.api_url, "rateLimitRpm": args.rate_limit,
                "allowedOwners": args.allow_owners,
            })
        }
        AddKind::Generic(args) => {
            let mut body = json!({
                "kind": "generic",
                "name": args.name,
                "preset": args.preset,
                "secret": args.secret,
                "gitUrl": args.git_url,
                "rateLimitRpm": args.rate_limit,
                "apiUrl": args.api_url,
                "verification": args.verification,
                "allowedIps": args.allow_ips,
            });
            match (
                args.credential_type.as_deref(),
                &args.git_password_file,
                &args.ssh_key_file,
            ) {
                (Some("pat"), None, _) => {
                    bail!(
                        "--credential-type pat needs --git-username <name> and --git-password-file <file holding the token>"
                    )
                }
                (Some("ssh"), _, None) => {
                    bail!("--credential-type ssh needs --ssh-key-file <file holding the deploy key>")
                }
                _ => {}
            }
            if let (Some(username), Some(path)) = (&args.git_username, &args.git_password_file) {
                let password = read_password_file(path)?;
                body["credentials"] = json!({"username": username, "password": password});
            }
            if let Some(path) = &args.ssh_key_file {
                let key = std::fs::read_to_string(path)
                    .map_err(|err| anyhow!("cannot read the SSH key file `{}`: {err}", path.display()))?;
                let known_hosts = match (args.ssh_host_key_policy.as_str(), &args.ssh_known_hosts_file) {
                    ("pinned", Some(file)) => Some(
                        std::fs::read_to_string(file)
                            .map_err(|err| anyhow!("cannot read the known hosts file `{}`: {err}", file.display()))?,
                    ),
                    ("pinned", None) => bail!(
                        "--ssh-host-key-policy pinned needs --ssh-known-hosts-file (hint: `ssh-keyscan -p <port> <host> > known_hosts`)"
                    ),
                    (_, Some(_)) => bail!("--ssh-known-hosts-file is for --ssh-host-key-policy pinned"),
                    _ => None,
                };
                body["credentials"] = json!({
                    "username": args.git_username.clone().unwrap_or_else(|| "git".to_string()),
                    "sshKey": key,
                    "knownHosts": known_hosts,
                });
            }
            body
        }
    };
    let source: SourceView = client.post(&["api", "v1", "admin", "sources"], &body).await?;
    print!("{}", render_added(client.base_url(), &source));
    Ok(())
}

/// `path` made absolute (symlinks resolved); it must exist.
fn absolute_repo_path(path: &Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(path).map_err(|err| {
        anyhow!(
            "repository path `{}` cannot be used: {err} (hint: give the path of an existing repository)",
            path.display()
        )
    })
}

async fn list_sources(client: &ApiClient) -> anyhow::Result<SourceList> {
    Ok(client.get(&["api", "v1", "admin", "sources"], &[]).await?)
}

/// The source whose id, else whose name, is `id_or_name`.
async fn find_source(client: &ApiClient, id_or_name: &str) -> anyhow::Result<SourceView> {
    let list = list_sources(client).await?;
    let found = list
        .sources
        .iter()
        .find(|source| source.source_id == id_or_name)
        .or_else(|| list.sources.iter().find(|source| source.name == id_or_name));
    match found {
        Some(source) => Ok(source.clone()),
        None => bail!("unknown source `{id_or_name}` (hint: `kici-admin source list` shows the sources)"),
    }
}

/// Checks that `source` takes unsigned pushes and picks the repository to read.
fn local_repo(source: &SourceView, repo_path: Option<&Path>) -> anyhow::Result<PathBuf> {
    if !is_local(source) {
        bail!(
            "source `{}` is a {} source, and only local sources accept unsigned pushes (hint: use a source added with `kici-admin source add local`)",
            source.name,
            source.kind
        );
    }
    match (repo_path, &source.path) {
        (Some(path), _) => absolute_repo_path(path),
        (None, Some(path)) if !path.is_empty() => Ok(PathBuf::from(path)),
        (None, _) => bail!(
            "source `{}` has no repository path (hint: pass --repo-path)",
            source.name
        ),
    }
}

/// Reads a token file: its first line, which must not be empty.
pub fn read_token_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        anyhow!(
            "cannot read the token file `{}`: {err} (hint: `kici-admin source install-hook` writes it beside the hook)",
            path.display()
        )
    })?;
    match text.lines().next().map(str::trim) {
        Some(token) if !token.is_empty() => Ok(token.to_string()),
        _ => bail!("the token file `{}` is empty", path.display()),
    }
}

async fn trigger_local(client: &ApiClient, args: TriggerArgs) -> anyhow::Result<()> {
    let (source, repo) = match (&args.token_file, &args.repo_path) {
        // A trigger token cannot list sources: the hook names the source by id and its repository.
        (Some(_), Some(repo_path)) => {
            let source = local_source(&args.source);
            (source, absolute_repo_path(repo_path)?)
        }
        _ => {
            let source = find_source(client, &args.source).await?;
            let repo = local_repo(&source, args.repo_path.as_deref())?;
            (source, repo)
        }
    };
    let request = PushRequest {
        git_ref: args.git_ref.as_deref(),
        sha: args.sha.as_deref(),
        before: args.before.as_deref(),
    };
    let push = git::inspect_push(&repo, &request).await?;
    let body = push_body(&source.name, &repo, &push);
    let delivery_id = uuid::Uuid::new_v4().to_string();
    let headers = [
        ("x-event-type", args.event.clone()),
        ("x-delivery-id", delivery_id.clone()),
    ];
    let answer = client
        .post_webhook(&["webhook", ORG_ID, "generic", &source.source_id], &headers, &body)
        .await?;
    println!("{}", render_delivery(&delivery_id, &answer));
    Ok(())
}

/// The GitHub-shaped push body a local source's webhook takes.
pub fn push_body(source_name: &str, repo: &Path, push: &Push) -> Value {
    let short_name = source_name.rsplit('/').next().unwrap_or(source_name);
    json!({
        "ref": push.git_ref,
        "before": push.before,
        "after": push.after,
        "repository": {
            "full_name": source_name,
            "name": short_name,
            "clone_url": format!("file://{}", repo.display()),
            "default_branch": push.default_branch,
        },
        "head_commit": {
            "id": push.after,
            "message": push.message,
            "author": {"name": push.author},
        },
        "commits": [{
            "id": push.after,
            "added": push.added,
            "modified": push.modified,
            "removed": push.removed,
        }],
    })
}

/// `Delivery <id>: <n> run(s) started: <ids>`, or why nothing started.
pub fn render_delivery(sent_id: &str, answer: &Value) -> String {
    let delivery_id = answer.get("deliveryId").and_then(Value::as_str).unwrap_or(sent_id);
    if answer.get("duplicate").and_then(Value::as_bool) == Some(true) {
        return format!("Delivery {delivery_id}: duplicate of an earlier delivery, nothing started");
    }
    let run_ids: Vec<&str> = answer
        .get("runIds")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !run_ids.is_empty() {
        return format!(
            "Delivery {delivery_id}: {} run(s) started: {}",
            run_ids.len(),
            run_ids.join(", ")
        );
    }
    match answer.get("ignored").and_then(Value::as_str) {
        Some(reason) => format!("Delivery {delivery_id}: ignored: {reason}"),
        None => format!("Delivery {delivery_id}: 0 run(s) started"),
    }
}

async fn install_hook(client: &ApiClient, globals: &Globals<'_>, args: InstallHookArgs) -> anyhow::Result<()> {
    let source = find_source(client, &args.source).await?;
    let repo = local_repo(&source, args.repo_path.as_deref())?;
    let hooks_dir = if git::is_bare(&repo).await? {
        repo.join("hooks")
    } else {
        repo.join(".git").join("hooks")
    };
    if !args.force
        && tokio::fs::symlink_metadata(hooks_dir.join("post-receive"))
            .await
            .is_ok()
    {
        bail!(
            "a post-receive hook already exists at `{}` (hint: pass --force to replace it)",
            hooks_dir.join("post-receive").display()
        );
    }
    let issued: TriggerToken = client
        .post(
            &["api", "v1", "admin", "sources", &source.source_id, "trigger-token"],
            &json!({}),
        )
        .await?;
    tokio::fs::create_dir_all(&hooks_dir)
        .await
        .with_context(|| format!("cannot create the hooks directory `{}`", hooks_dir.display()))?;
    let token_file = hook::write_token(&hooks_dir, &issued.trigger_token).await?;
    let binary = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .context("cannot find the path of this kici-admin binary for the hook")?;
    let script = hook::script(&hook::HookParams {
        binary: &binary,
        url: globals.url,
        token_file: &token_file,
        source_id: &source.source_id,
        source_name: &source.name,
        repo_path: &repo,
    });
    let path = hook::write(&hooks_dir, &script).await?;
    print!(
        "{}",
        hook::render_installed(&path, &binary, globals.url, &source.source_id, &token_file)
    );
    Ok(())
}

pub fn render_added(base_url: &str, source: &SourceView) -> String {
    let mut lines = vec![
        format!("Source created: {}", source.name),
        format!("Source ID:    {}", source.source_id),
        format!("Kind:         {}", source.kind),
    ];
    if let Some(path) = &source.path {
        lines.push(format!("Path:         {path}"));
    }
    if let Some(preset) = &source.preset {
        lines.push(format!("Preset:       {preset}"));
    }
    if let Some(git_url) = &source.git_url {
        lines.push(format!("Git URL:      {git_url}"));
    }
    lines.push(format!(
        "Verification: {}",
        source.verification.as_deref().unwrap_or(format::NONE)
    ));
    lines.push(format!("Webhook URL:  {}", webhook_url(base_url, source)));
    if let Some(api) = &source.status_api_url {
        lines.push(format!(
            "Statuses:     {api} (kici/<workflow> and kici/<workflow>/job/<job> on each commit)"
        ));
    }
    if is_local(source) {
        lines.push(String::new());
        lines.push(format!(
            "Report pushes with `kici-admin source install-hook {0}` (every push) or `kici-admin source trigger-local {0}` (once).",
            source.name
        ));
    } else if source.kind == "github" {
        lines.push(String::new());
        lines.push(
            "Set the App's webhook URL to the webhook URL, with the same secret; give it contents:read, metadata:read, pull_requests:read and checks:write, and the push and pull_request events.".to_string(),
        );
    } else {
        lines.push(String::new());
        lines.push(
            "Point the forge's push and pull-request webhooks at the webhook URL, with the same secret.".to_string(),
        );
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

pub fn render_list(base_url: &str, list: &SourceList) -> String {
    if list.sources.is_empty() {
        return "No sources (add one with `kici-admin source add local|generic`).\n".to_string();
    }
    let rows: Vec<Vec<String>> = list
        .sources
        .iter()
        .map(|source| {
            vec![
                source.source_id.to_string(),
                source.name.clone(),
                source.kind.clone(),
                format::or_none(source.preset.as_deref()),
                format::or_none(source.path.as_deref().or(source.git_url.as_deref())),
                webhook_url(base_url, source),
            ]
        })
        .collect();
    table::render(
        "",
        &["SOURCE ID", "NAME", "KIND", "PRESET", "LOCATION", "WEBHOOK URL"],
        &rows,
    )
}

fn webhook_url(base_url: &str, source: &SourceView) -> String {
    let org_id = source.org_id.as_deref().filter(|org| !org.is_empty()).unwrap_or(ORG_ID);
    if source.kind == "github" {
        return format!("{base_url}/webhook/{org_id}/github");
    }
    format!("{base_url}/webhook/{org_id}/generic/{}", source.source_id)
}

#[cfg(test)]
mod tests;
