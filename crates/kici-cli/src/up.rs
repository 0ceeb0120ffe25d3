//! `kici up`: a whole KiCI on this machine for trying it out. It starts the dashboard
//! (`kici-platform`), `kici-orchestrator` (embedded SQLite under the state directory, connected
//! to the dashboard) and one `kici-agent`, makes a demo repository
//! (`kici init`'s hello world, compiled and committed) registered as a local source with its
//! `post-receive` hook, pushes it, and prints the run the push started. The binaries are the
//! ones next to `kici`. With `--once` it stops everything afterwards; otherwise it stays up
//! until Ctrl-C so more pushes can be made.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kici_client::client::ApiClient;
use kici_client::runs::author;
use kici_engine::api::admin::{AgentList, NewAgent, RegisteredAgent, SourceList};
use kici_engine::api::answers::RunAnswer;
use kici_engine::api::{RunDetail, RunList, RunLogs};
use kici_engine::status::RunStatus;
use serde_json::Value;
use tokio::process::{Child, Command};

/// How long the stack may take to come up and the demo run to finish.
const STARTUP: Duration = Duration::from_secs(30);
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Where the orchestrator, agent and demo repository keep their files (default: a new
    /// temporary directory)
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The orchestrator's port on 127.0.0.1
    #[arg(long, default_value_t = 4000)]
    port: u16,
    /// The dashboard's port on 127.0.0.1
    #[arg(long, default_value_t = 4100)]
    dashboard_port: u16,
    /// Stop everything once the demo run has finished (exit 1 if it failed)
    #[arg(long)]
    once: bool,
}

/// A service child process, stopped with SIGTERM when dropped.
struct Service {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Service {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: plain syscall on our own child.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(12), self.child.wait())
            .await
            .is_err()
        {
            // Still running after its own shutdown grace: force it.
            let _ = self.child.kill().await;
        }
    }
}

fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the kici executable")?;
    let path = exe
        .parent()
        .map(|dir| dir.join(name))
        .unwrap_or_else(|| PathBuf::from(name));
    if !path.is_file() {
        bail!(
            "`{}` not found next to kici\n  hint: build every binary with `cargo build --workspace`",
            path.display()
        );
    }
    Ok(path)
}

fn spawn(name: &'static str, env: &BTreeMap<&str, String>, log: PathBuf) -> anyhow::Result<Service> {
    let file = std::fs::File::create(&log).with_context(|| format!("cannot create `{}`", log.display()))?;
    let mut command = Command::new(binary(name)?);
    command.env_clear();
    for inherited in ["PATH", "HOME", "LANG", "TMPDIR"] {
        if let Ok(value) = std::env::var(inherited) {
            command.env(inherited, value);
        }
    }
    let child = command
        .envs(env)
        .stdin(Stdio::null())
        .stdout(file.try_clone().context("cannot share the log file")?)
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {name}"))?;
    Ok(Service { name, child, log })
}

fn random_hex() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

async fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=KiCI demo",
            "-c",
            "user.email=demo@kici.local",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .await
        .context("cannot run git")?;
    if !output.status.success() {
        // git says some things ("nothing to commit") on stdout.
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let said = if stderr.trim().is_empty() { stdout } else { stderr };
        bail!("git {} failed: {}", args.join(" "), said.trim());
    }
    Ok(())
}

/// Polls `check` every 100 ms until it gives a value; fails with `what` after `timeout`.
async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, services: &[&Service], mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() > deadline {
            let tails: Vec<String> = services
                .iter()
                .map(|s| format!("--- {} ({})\n{}", s.name, s.log.display(), s.log_tail()))
                .collect();
            bail!("timed out waiting for {what}\n{}", tails.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let state = match &args.state_dir {
        Some(dir) => dir.clone(),
        None => tempfile::Builder::new()
            .prefix("kici-up-")
            .tempdir()
            .context("cannot create a state directory")?
            .keep(),
    };
    std::fs::create_dir_all(&state).with_context(|| format!("cannot create `{}`", state.display()))?;
    let state = state.canonicalize().context("cannot resolve the state directory")?;
    let token = random_hex()?;
    let base = format!("http://127.0.0.1:{}", args.port);
    let dashboard = format!("http://127.0.0.1:{}", args.dashboard_port);
    let orchestrator_key = format!("kici_ok_{}", random_hex()?);
    println!("==> starting kici-platform (the dashboard) on {dashboard}");
    let platform = spawn(
        "kici-platform",
        &BTreeMap::from([
            ("KICI_DATA_DIR", state.join("platform").display().to_string()),
            ("KICI_PORT", args.dashboard_port.to_string()),
            ("KICI_PLATFORM_ADMIN_TOKEN", token.clone()),
            ("KICI_PLATFORM_ORCHESTRATOR_KEY", orchestrator_key.clone()),
        ]),
        state.join("platform.log"),
    )?;
    let dashboard_api = ApiClient::new(&dashboard, Some(token.clone()), "KICI_URL")?;
    wait_for("the dashboard to answer /health", STARTUP, &[&platform], || async {
        dashboard_api.get::<Value>(&["health"], &[]).await.ok()
    })
    .await?;
    println!(
        "==> starting kici-orchestrator on {base} (state in {})",
        state.display()
    );
    let orchestrator = spawn(
        "kici-orchestrator",
        &BTreeMap::from([
            ("KICI_DATA_DIR", state.join("orchestrator").display().to_string()),
            ("KICI_PORT", args.port.to_string()),
            ("KICI_BOOTSTRAP_ADMIN_TOKEN", token.clone()),
            (
                "KICI_PLATFORM_URL",
                format!("ws://127.0.0.1:{}/ws/orchestrator", args.dashboard_port),
            ),
            ("KICI_PLATFORM_TOKEN", orchestrator_key),
        ]),
        state.join("orchestrator.log"),
    )?;
    let api = ApiClient::new(&base, Some(token.clone()), "KICI_URL")?;
    wait_for(
        "the orchestrator to answer /health",
        STARTUP,
        &[&orchestrator],
        || async { api.get::<Value>(&["health"], &[]).await.ok() },
    )
    .await?;

    let registered: RegisteredAgent = api
        .post(
            &["api", "v1", "admin", "agents"],
            &NewAgent {
                label: "local-agent".to_string(),
                labels: vec!["linux".to_string()],
            },
        )
        .await?;
    let agent_token = registered.token;
    println!("==> starting kici-agent `local-agent` (labels: linux)");
    let agent = spawn(
        "kici-agent",
        &BTreeMap::from([
            ("KICI_ORCHESTRATOR_URL", format!("ws://127.0.0.1:{}/ws", args.port)),
            ("KICI_AGENT_TOKEN", agent_token),
            ("KICI_AGENT_ID", "local-agent".to_string()),
            ("KICI_LABELS", "linux".to_string()),
            ("KICI_PORT", "0".to_string()),
            ("KICI_WORK_DIR", state.join("agent").display().to_string()),
        ]),
        state.join("agent.log"),
    )?;
    std::fs::create_dir_all(state.join("agent")).context("cannot create the agent's work directory")?;
    wait_for("the agent to connect", STARTUP, &[&orchestrator, &agent], || async {
        let list: AgentList = api.get(&["api", "v1", "admin", "agents"], &[]).await.ok()?;
        list.agents
            .iter()
            .any(|agent| agent.agent_id == "local-agent" && agent.connected)
            .then_some(())
    })
    .await?;

    let repo = state.join("demo");
    let origin = repo.join("origin.git");
    let work = repo.join("work");
    println!(
        "==> creating the demo repository {} (kici init + kici compile)",
        work.display()
    );
    // Every step is re-runnable on the same state directory: a second `kici up` pushes a new
    // commit of the same repository to the same source.
    let again = work.join(".kici").exists();
    std::fs::create_dir_all(&work).context("cannot create the demo repository")?;
    git(&repo, &["init", "-q", "--bare", "origin.git"]).await?;
    git(&work, &["init", "-q"]).await?;
    if !again {
        crate::init::scaffold(&work, true, crate::init::AgentsMd::Skip)?;
    }
    let project = kici_compiler::project::Project::locate(None, &work).map_err(|d| anyhow::anyhow!("{d}"))?;
    let node = kici_compiler::runner::find_node(None).map_err(anyhow::Error::msg)?;
    let compiled = kici_compiler::compile::compile(&project, node).await?;
    std::fs::write(work.join(".kici/kici.lock.json"), compiled.lock.to_json()).context("cannot write the lock file")?;
    git(&work, &["add", "-A"]).await?;
    let message = if again { "kici up again" } else { "hello KiCI" };
    git(&work, &["commit", "-q", "--allow-empty", "-m", message]).await?;
    git(&work, &["config", "remote.origin.url", &origin.display().to_string()]).await?;

    let admin = |args: &[&str]| {
        let mut command = std::process::Command::new(binary("kici-admin")?);
        let output = command
            .args(["--url", &base, "--token", &token])
            .args(args)
            .output()
            .context("cannot run kici-admin")?;
        if !output.status.success() {
            bail!(
                "kici-admin {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    };
    let sources: SourceList = api.get(&["api", "v1", "admin", "sources"], &[]).await?;
    let known = sources.sources.iter().any(|source| source.name == "demo");
    if !known {
        admin(&[
            "source",
            "add",
            "local",
            "--name",
            "demo",
            "--path",
            &origin.display().to_string(),
        ])?;
    }
    admin(&["source", "install-hook", "demo", "--force"])?;
    let before: RunList = api.get(&["api", "v1", "runs"], &[]).await?;
    let previous = before.runs.first().map(|r| r.run_id.clone());
    println!("==> git push (the post-receive hook reports it to the orchestrator)");
    git(&work, &["push", "-q", "origin", "HEAD:main"]).await?;
    let run_id = wait_for("the push to start a run", STARTUP, &[&orchestrator, &agent], || async {
        let list: RunList = api.get(&["api", "v1", "runs"], &[]).await.ok()?;
        list.runs
            .first()
            .map(|r| r.run_id.clone())
            .filter(|id| Some(id) != previous.as_ref())
    })
    .await?;
    let detail: RunDetail = wait_for("the run to finish", RUN_TIMEOUT, &[&orchestrator, &agent], || async {
        let detail: RunDetail = api.get(&["api", "v1", "runs", &run_id, "detail"], &[]).await.ok()?;
        detail.run.status.is_terminal().then_some(detail)
    })
    .await?;
    wait_for(
        "the dashboard to show the finished run",
        STARTUP,
        &[&platform, &orchestrator],
        || async {
            let answer: RunAnswer = dashboard_api.get(&["api", "v1", "runs", &run_id], &[]).await.ok()?;
            (answer.run.status == detail.run.status).then_some(())
        },
    )
    .await?;
    let logs: RunLogs = api.get(&["api", "v1", "runs", &run_id, "logs"], &[]).await?;
    println!();
    print!("{}", author::run_tree(&detail));
    println!();
    print!("{}", author::LogPrinter::default().next_chunk(&logs));
    let succeeded = detail.run.status == RunStatus::Success;
    println!();
    println!(
        "Logs          {}, {} and {}",
        platform.log.display(),
        orchestrator.log.display(),
        agent.log.display()
    );
    if args.once {
        println!(
            "The stack has stopped (--once). Keep it running with: {} up --state-dir {}",
            binary("kici")?.display(),
            state.display()
        );
    } else {
        let bin = binary("kici")?;
        let bin_dir = bin.parent().unwrap_or(Path::new("."));
        println!("Dashboard     {dashboard}/runs/{run_id}  (sign in with the admin token)");
        println!("Orchestrator  {base}  (admin token: {token})");
        println!("Try, in another terminal:");
        println!(
            "  export PATH={}:$PATH KICI_URL={base} KICI_TOKEN={token}",
            bin_dir.display()
        );
        println!("  kici runs show {run_id}");
        println!(
            "  cd {} && echo '// changed' >> .kici/workflows/hello-world.ts && kici compile && git commit -qam change && git push -q origin HEAD:main && kici runs list",
            work.display()
        );
        println!("Press Ctrl-C to stop.");
        tokio::signal::ctrl_c().await.context("cannot wait for Ctrl-C")?;
    }
    agent.stop().await;
    orchestrator.stop().await;
    platform.stop().await;
    Ok(if succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
