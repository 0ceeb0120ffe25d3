//! `kici-admin orchestrator|agent install|uninstall|start|stop|restart|status|logs|upgrade`:
//! the services under systemd, system-wide (`--system`, the default for root) or as the user's
//! own (`--user-level`). No orchestrator or token is needed: these drive `systemctl` and
//! `journalctl` on this host.
//!
//! An installed binary is copied into a directory of its version; `current` links to the one
//! the unit runs and `previous` to the one before the last upgrade, so `upgrade --rollback`
//! goes back without the old file. The unit runs hardened ([`unit::Layout::unit_text`]); the
//! operator's settings are its environment file (mode 0600).

mod report;
pub mod unit;

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use unit::{Kind, Layout, Scope};

#[derive(Debug, clap::Subcommand)]
pub enum ServiceCommand {
    /// Install the service: copy its binary, write its unit and environment file, enable it
    Install(InstallArgs),
    /// Stop and disable it and remove its unit (--purge: its binaries and settings too; never its data)
    Uninstall {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        purge: bool,
    },
    /// Start it and wait until it runs
    Start(Target),
    /// Stop it
    Stop(Target),
    /// Restart it and wait until it runs
    Restart(Target),
    /// Its state, version and files, and what a running orchestrator says of itself (exit 3 when it is not running)
    Status {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        json: bool,
    },
    /// Its log from the journal
    Logs(LogsArgs),
    /// Run another build: keep the installed one as `previous`, restart, and go back if the new one does not run (--rollback: back to `previous`)
    Upgrade(UpgradeArgs),
}

/// Which installed service.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The service's name (default: kici-orchestrator or kici-agent)
    #[arg(long)]
    name: Option<String>,
    /// The user's own service (systemctl --user), not a system one
    #[arg(long, conflicts_with = "system")]
    user_level: bool,
    /// A system service (the default when run as root)
    #[arg(long)]
    system: bool,
}

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    #[command(flatten)]
    target: Target,
    /// The binary to install (default: the one beside kici-admin, else on PATH)
    #[arg(long)]
    binary: Option<PathBuf>,
    /// The service's settings (KICI_* lines), copied to its environment file (mode 0600)
    #[arg(long)]
    env_file: Option<PathBuf>,
    /// Replace an installed unit of that name
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    target: Target,
    /// From this time (journalctl's --since: `1 hour ago`, `2026-12-06 10:00`)
    #[arg(long)]
    since: Option<String>,
    /// Only lines of this level and above (error, warn, info, debug)
    #[arg(long)]
    level: Option<String>,
    /// Print what is there and stop, instead of following
    #[arg(long)]
    no_follow: bool,
}

#[derive(Debug, clap::Args)]
pub struct UpgradeArgs {
    #[command(flatten)]
    target: Target,
    /// The new build's binary
    #[arg(long, required_unless_present = "rollback")]
    binary: Option<PathBuf>,
    /// Go back to the build before the last upgrade
    #[arg(long, conflicts_with = "binary")]
    rollback: bool,
}

/// `status`: the service is not running (systemctl's own code for it).
const EXIT_NOT_RUNNING: u8 = 3;

/// How long a started service must run without restarting to count as started: long enough
/// for a start that fails on its database or storage (they are checked at start).
const SETTLE: Duration = Duration::from_secs(3);

/// How long a started service may take to be running.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// `token`: `--token`/`KICI_ADMIN_TOKEN`, which `status` asks a running orchestrator with.
pub async fn run(kind: Kind, command: ServiceCommand, token: Option<String>) -> anyhow::Result<u8> {
    match command {
        ServiceCommand::Install(args) => install(&layout(kind, &args.target)?, &args),
        ServiceCommand::Uninstall { target, purge } => uninstall(&layout(kind, &target)?, purge),
        ServiceCommand::Start(target) => start(&layout(kind, &target)?, "start"),
        ServiceCommand::Restart(target) => start(&layout(kind, &target)?, "restart"),
        ServiceCommand::Stop(target) => {
            let layout = layout(kind, &target)?;
            systemctl(&layout, &["stop", &layout.name])?;
            println!("Stopped {}.", layout.name);
            Ok(crate::EXIT_OK)
        }
        ServiceCommand::Status { target, json } => status(&layout(kind, &target)?, json, token).await,
        ServiceCommand::Logs(args) => logs(&layout(kind, &args.target)?, &args),
        ServiceCommand::Upgrade(args) => upgrade(&layout(kind, &args.target)?, &args),
    }
}

fn layout(kind: Kind, target: &Target) -> anyhow::Result<Layout> {
    // `/proc/self` is owned by the effective user.
    let root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self")?) == 0;
    let scope = if target.user_level || (!target.system && !root) {
        Scope::User
    } else {
        Scope::System
    };
    if scope == Scope::System && !root {
        bail!("a system service needs root (hint: run it with sudo, or pass --user-level for a service of your own)");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    // Unit files split values on spaces and expand `%`: a home with either cannot be written.
    let home_text = home.to_string_lossy();
    if scope == Scope::User && (!home.is_absolute() || home_text.contains(|c: char| c.is_whitespace() || c == '%')) {
        bail!("HOME `{home_text}` is not an absolute path without spaces or `%`, which a user service needs");
    }
    let name = target.name.clone().unwrap_or_else(|| kind.binary().to_string());
    let valid = name.len() <= 28
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !valid {
        bail!(
            "`{name}` is not a service name (hint: up to 28 letters, digits, `-`, `_` and `.`, starting with a letter or digit)"
        );
    }
    // Files are laid out by name: a name the other service has by default would share its
    // settings, data and user.
    let other = match kind {
        Kind::Orchestrator => Kind::Agent,
        Kind::Agent => Kind::Orchestrator,
    };
    if name == other.binary() {
        bail!("`{name}` is the {}'s name (hint: pass another --name)", verb(other));
    }
    let layout = Layout::new(kind, scope, &name, &home);
    // A service its Debian package installed, unless kici-admin installed one of the same name.
    let packaged = Layout::packaged(kind);
    if scope == Scope::System && name == kind.binary() && !layout.unit.exists() && packaged.unit.exists() {
        return Ok(packaged);
    }
    Ok(layout)
}

/// Refuses what only a service kici-admin installed can do, for one its package installed.
fn not_packaged(layout: &Layout, hint: &str) -> anyhow::Result<()> {
    if layout.packaged {
        bail!(
            "{} is installed by its Debian package ({}) (hint: {hint})",
            layout.name,
            layout.unit.display()
        );
    }
    Ok(())
}

/// The installed build: the package's version, or the version directory `current` links to.
fn version(layout: &Layout) -> Option<String> {
    if !layout.packaged {
        return version_of(&layout.current());
    }
    let output = Command::new("dpkg-query")
        .args(["--show", "--showformat=${Version}", &layout.name])
        .output()
        .ok()?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (output.status.success() && !version.is_empty()).then(|| format!("{version} (package)"))
}

/// Runs `systemctl` for the layout's scope; its error output is the error.
fn systemctl(layout: &Layout, args: &[&str]) -> anyhow::Result<String> {
    let mut command = Command::new("systemctl");
    if layout.scope == Scope::User {
        command.arg("--user");
    }
    let output = command
        .args(args)
        .output()
        .context("cannot run systemctl (hint: these commands need systemd)")?;
    if !output.status.success() {
        bail!(
            "systemctl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The binary to install: the one given, else the one beside kici-admin, else on PATH.
fn binary_of(kind: Kind, given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(given) = given {
        return Ok(given.to_path_buf());
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(kind.binary())))
        .filter(|path| path.is_file());
    let on_path = || {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(kind.binary()))
                .find(|path| path.is_file())
        })
    };
    beside.or_else(on_path).with_context(|| {
        format!(
            "no {} beside kici-admin or on PATH (hint: pass --binary)",
            kind.binary()
        )
    })
}

/// Copies `binary` into a directory named after its version and content, once; the directory.
fn store_version(layout: &Layout, binary: &Path) -> anyhow::Result<PathBuf> {
    // The file read is the file run (a bare name would be looked up on PATH).
    let binary = &std::fs::canonicalize(binary).with_context(|| format!("cannot find {}", binary.display()))?;
    let bytes = std::fs::read(binary).with_context(|| format!("cannot read {}", binary.display()))?;
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {} --version", binary.display()))?;
    let version = String::from_utf8_lossy(&output.stdout);
    let version = version
        .strip_prefix(&format!("{} ", layout.kind.binary()))
        .map(str::trim)
        .filter(|v| {
            output.status.success()
                && !v.is_empty()
                && !v.starts_with('.')
                && v.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        })
        .with_context(|| {
            format!(
                "{} is not a {} (its --version says `{}`)",
                binary.display(),
                layout.kind.binary(),
                version.trim()
            )
        })?;
    let hash = kici_engine::hash::sha256_hex(&bytes);
    let dir = layout.versions.join(format!("{version}-{}", &hash[..12]));
    let installed = dir.join(layout.kind.binary());
    if !installed.is_file() {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // Whatever the umask, the service's user must reach its binary.
        set_mode(&layout.versions, 0o755)?;
        set_mode(&dir, 0o755)?;
        let partial = dir.join(format!(".{}.partial", layout.kind.binary()));
        std::fs::write(&partial, &bytes).with_context(|| format!("cannot write {}", partial.display()))?;
        set_mode(&partial, 0o755)?;
        std::fs::rename(&partial, &installed)?;
    }
    Ok(dir)
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))
}

/// Points `link` at `dir`, replacing what it pointed at in one step.
fn link(link: &Path, dir: &Path) -> anyhow::Result<()> {
    let partial = link.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    std::os::unix::fs::symlink(dir, &partial)?;
    std::fs::rename(&partial, link).with_context(|| format!("cannot update {}", link.display()))
}

/// The version directory `link` points at.
fn version_of(link: &Path) -> Option<String> {
    let target = std::fs::read_link(link).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

fn install(layout: &Layout, args: &InstallArgs) -> anyhow::Result<u8> {
    not_packaged(
        layout,
        &format!(
            "its settings are {}; `kici-admin {} start` starts it, and --name installs another one beside it",
            layout.env_file.display(),
            verb(layout.kind)
        ),
    )?;
    if layout.unit.exists() && !args.force {
        bail!(
            "{} is installed already ({}) (hint: `upgrade --binary` runs another build; --force writes it again)",
            layout.name,
            layout.unit.display()
        );
    }
    // Every input is read before anything changes.
    let settings = match &args.env_file {
        Some(given) => {
            Some(std::fs::read_to_string(given).with_context(|| format!("cannot read {}", given.display()))?)
        }
        None => None,
    };
    let binary = binary_of(layout.kind, args.binary.as_deref())?;
    let dir = store_version(layout, &binary)?;
    let env_dir = layout.env_file.parent().expect("the env file is in a directory");
    std::fs::create_dir_all(env_dir).with_context(|| format!("cannot create {}", env_dir.display()))?;
    set_mode(env_dir, 0o700)?;
    match settings {
        Some(settings) => std::fs::write(&layout.env_file, settings)?,
        None if !layout.env_file.exists() => std::fs::write(
            &layout.env_file,
            "# KICI_* settings of this service, one NAME=value a line (docs/configuration.md).\n",
        )?,
        None => {}
    }
    set_mode(&layout.env_file, 0o600)?;
    if layout.scope == Scope::System {
        system_user(layout)?;
    }
    let unit_dir = layout.unit.parent().expect("the unit is in a directory");
    std::fs::create_dir_all(unit_dir)?;
    std::fs::write(&layout.unit, layout.unit_text())
        .with_context(|| format!("cannot write {}", layout.unit.display()))?;
    if let Ok(installed) = std::fs::read_link(layout.current())
        && installed != dir
    {
        link(&layout.previous(), &installed)?;
    }
    link(&layout.current(), &dir)?;
    systemctl(layout, &["daemon-reload"])?;
    systemctl(layout, &["enable", &layout.name])?;
    let verb = verb(layout.kind);
    println!(
        "Installed {} ({}): unit {}, settings {}, data {}.",
        layout.name,
        version_of(&layout.current()).unwrap_or_default(),
        layout.unit.display(),
        layout.env_file.display(),
        layout.state.display()
    );
    println!(
        "Start it with `kici-admin {verb} start{flags}` (`restart{flags}` when it runs already).",
        flags = target_flags(layout)
    );
    Ok(crate::EXIT_OK)
}

/// Creates the system user the service runs as, with systemd's own tool, unless it exists.
fn system_user(layout: &Layout) -> anyhow::Result<()> {
    let conf = PathBuf::from(format!("/etc/sysusers.d/{}.conf", layout.user()));
    std::fs::create_dir_all("/etc/sysusers.d")?;
    std::fs::write(&conf, layout.sysusers()).with_context(|| format!("cannot write {}", conf.display()))?;
    let output = Command::new("systemd-sysusers")
        .arg(&conf)
        .output()
        .context("cannot run systemd-sysusers (hint: these commands need systemd)")?;
    if !output.status.success() {
        bail!(
            "systemd-sysusers could not create the user `{}`: {}",
            layout.user(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn verb(kind: Kind) -> &'static str {
    match kind {
        Kind::Orchestrator => "orchestrator",
        Kind::Agent => "agent",
    }
}

/// The flags that name this service again in a printed command.
fn target_flags(layout: &Layout) -> String {
    let mut flags = String::new();
    if layout.name != layout.kind.binary() {
        flags.push_str(&format!(" --name {}", layout.name));
    }
    if layout.scope == Scope::User {
        flags.push_str(" --user-level");
    }
    flags
}

fn installed(layout: &Layout) -> anyhow::Result<()> {
    if !layout.unit.exists() {
        bail!(
            "{} is not installed ({} does not exist) (hint: `kici-admin {} install{}`)",
            layout.name,
            layout.unit.display(),
            verb(layout.kind),
            target_flags(layout)
        );
    }
    Ok(())
}

fn uninstall(layout: &Layout, purge: bool) -> anyhow::Result<u8> {
    installed(layout)?;
    not_packaged(layout, &format!("`apt remove {}` removes it", layout.name))?;
    systemctl(layout, &["disable", "--now", &layout.name])?;
    if purge {
        let settings = layout.env_file.parent().expect("the env file is in a directory");
        for dir in [layout.versions.as_path(), settings] {
            match std::fs::remove_dir_all(dir) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err).with_context(|| format!("cannot remove {}", dir.display())),
            }
        }
    }
    std::fs::remove_file(&layout.unit)?;
    systemctl(layout, &["daemon-reload"])?;
    println!(
        "Uninstalled {}.{} Its data stays in {}.",
        layout.name,
        if purge {
            " Its binaries and settings are removed."
        } else {
            ""
        },
        layout.state.display()
    );
    Ok(crate::EXIT_OK)
}

/// Systemd's view of the service.
struct State {
    active: String,
    sub: String,
    pid: String,
    since: String,
    restarts: String,
}

fn state(layout: &Layout) -> anyhow::Result<State> {
    let shown = systemctl(
        layout,
        &[
            "show",
            &layout.name,
            "-p",
            "ActiveState,SubState,MainPID,ActiveEnterTimestamp,NRestarts",
        ],
    )?;
    let value = |key: &str| {
        shown
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|l| l.strip_prefix('=')))
            .unwrap_or("")
            .to_string()
    };
    Ok(State {
        active: value("ActiveState"),
        sub: value("SubState"),
        pid: value("MainPID"),
        since: value("ActiveEnterTimestamp"),
        restarts: value("NRestarts"),
    })
}

/// Starts (or restarts) the service and waits until it runs, or says why it did not.
fn start(layout: &Layout, how: &str) -> anyhow::Result<u8> {
    installed(layout)?;
    systemctl(layout, &[how, &layout.name])?;
    wait_running(layout)?;
    if layout.packaged {
        // A package may leave its unit disabled until it is configured (the agent's does); once
        // it runs, it starts at boot too.
        systemctl(layout, &["enable", &layout.name])?;
    }
    println!("{} is running ({}).", layout.name, version(layout).unwrap_or_default());
    Ok(crate::EXIT_OK)
}

fn wait_running(layout: &Layout) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + START_TIMEOUT;
    // Whether systemd resets the count on an explicit start or not, a restart adds one.
    let restarts = |state: &State| state.restarts.parse::<u64>().unwrap_or(0);
    let baseline = restarts(&state(layout)?);
    loop {
        let state = state(layout)?;
        // Running a moment without restarting: a service that fails at start restarts.
        if state.active == "active" && state.sub == "running" {
            std::thread::sleep(SETTLE);
            let again = self::state(layout)?;
            if again.active == "active" && again.restarts == state.restarts {
                return Ok(());
            }
        }
        // Systemd restarts a service that exits at start: the first restart says it.
        let restarted = restarts(&state) > baseline;
        if std::time::Instant::now() > deadline || state.active == "failed" || restarted {
            bail!(
                "{} did not start: {} ({}) (hint: `kici-admin {} logs --no-follow{}` says why)",
                layout.name,
                state.active,
                state.sub,
                verb(layout.kind),
                target_flags(layout)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

async fn status(layout: &Layout, json: bool, token: Option<String>) -> anyhow::Result<u8> {
    installed(layout)?;
    let state = state(layout)?;
    let report = match (layout.kind, state.active.as_str()) {
        (Kind::Orchestrator, "active") => Some(report::fetch(layout, token).await),
        _ => None,
    };
    let current = version(layout);
    let previous = version_of(&layout.previous()).filter(|_| !layout.packaged);
    let code = if state.active == "active" {
        crate::EXIT_OK
    } else {
        EXIT_NOT_RUNNING
    };
    if json {
        let answer = serde_json::json!({
            "name": layout.name,
            "scope": match layout.scope { Scope::System => "system", Scope::User => "user" },
            "active": state.active,
            "sub": state.sub,
            "pid": state.pid.parse::<u64>().ok().filter(|pid| *pid > 0),
            "since": Some(state.since.as_str()).filter(|s| !s.is_empty()),
            "restarts": state.restarts.parse::<u64>().ok(),
            "version": current,
            "previous": previous,
            "unit": layout.unit,
            "envFile": layout.env_file,
            "data": layout.state,
            "orchestrator": match &report {
                None => serde_json::Value::Null,
                Some(Ok(report)) => serde_json::to_value(report)?,
                Some(Err(why)) => serde_json::json!({ "error": why }),
            },
        });
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(code);
    }
    let running = match state.pid.as_str() {
        "" | "0" => String::new(),
        pid => format!(", PID {pid}"),
    };
    println!(
        "Service:  {} ({})",
        layout.name,
        match layout.scope {
            Scope::System => "system",
            Scope::User => "user",
        }
    );
    println!("State:    {} ({}){running}", state.active, state.sub);
    if !state.since.is_empty() {
        println!("Since:    {}", state.since);
    }
    println!(
        "Version:  {}{}",
        current.as_deref().unwrap_or("-"),
        previous.map(|p| format!(" (previous: {p})")).unwrap_or_default()
    );
    println!("Unit:     {}", layout.unit.display());
    println!("Settings: {}", layout.env_file.display());
    println!("Data:     {}", layout.state.display());
    match report {
        None => {}
        Some(Ok(report)) => println!("{}", report::lines(&report).join("\n")),
        Some(Err(why)) => println!("--- KiCI orchestrator ---\nUnavailable: {why}"),
    }
    Ok(code)
}

/// Its journal, as JSON lines (each service logs JSON to stdout), filtered by level.
fn logs(layout: &Layout, args: &LogsArgs) -> anyhow::Result<u8> {
    installed(layout)?;
    let floor = match args.level.as_deref() {
        None => None,
        Some(level) => {
            Some(rank(level).with_context(|| format!("`{level}` is not a level (hint: error, warn, info or debug)"))?)
        }
    };
    let mut command = Command::new("journalctl");
    if layout.scope == Scope::User {
        command.arg("--user");
    }
    command.args(["--unit", &layout.name, "--output", "cat", "--no-pager"]);
    if let Some(since) = &args.since {
        command.args(["--since", since]);
    }
    if !args.no_follow {
        command.arg("--follow");
    }
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run journalctl (hint: these commands need systemd)")?;
    let stdout = child.stdout.take().expect("journalctl's stdout is piped");
    let mut out = std::io::stdout().lock();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line?;
        let level = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v["level"].as_str().and_then(rank));
        // A line that is not the service's JSON (systemd's own) is always shown.
        if floor.is_none_or(|floor| level.is_none_or(|level| level <= floor)) {
            match writeln!(out, "{line}") {
                Ok(()) => {}
                // The reader stopped (`| head`): so do we, and journalctl with us.
                Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Ok(crate::EXIT_OK);
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("journalctl failed ({status})");
    }
    Ok(crate::EXIT_OK)
}

/// Lower is more severe.
fn rank(level: &str) -> Option<u8> {
    ["error", "warn", "info", "debug", "trace"]
        .iter()
        .position(|l| *l == level)
        .map(|i| i as u8)
}

fn upgrade(layout: &Layout, args: &UpgradeArgs) -> anyhow::Result<u8> {
    installed(layout)?;
    not_packaged(
        layout,
        &format!(
            "upgrade it with its package, `apt install ./{name}_<version>_<arch>.deb`, and go back with the earlier .deb and --allow-downgrades",
            name = layout.name
        ),
    )?;
    let current = std::fs::read_link(layout.current()).context("no current build installed")?;
    let next = if args.rollback {
        std::fs::read_link(layout.previous())
            .with_context(|| format!("{} has no build to go back to (no upgrade was made)", layout.name))?
    } else {
        let binary = args
            .binary
            .as_deref()
            .expect("clap requires --binary without --rollback");
        store_version(layout, binary)?
    };
    if next == current {
        println!(
            "{} runs {} already.",
            layout.name,
            version_of(&layout.current()).unwrap_or_default()
        );
        return Ok(crate::EXIT_OK);
    }
    let previous = std::fs::read_link(layout.previous()).ok();
    link(&layout.previous(), &current)?;
    link(&layout.current(), &next)?;
    let started = systemctl(layout, &["restart", &layout.name]).and_then(|_| wait_running(layout));
    if let Err(err) = started {
        // The new build does not run: the old one goes back in, as it was.
        link(&layout.current(), &current)?;
        match &previous {
            Some(previous) => link(&layout.previous(), previous)?,
            None => std::fs::remove_file(layout.previous())?,
        }
        let back = systemctl(layout, &["restart", &layout.name]).and_then(|_| wait_running(layout));
        let version = version_of(&layout.current()).unwrap_or_default();
        return Err(match back {
            Ok(()) => err.context(format!("{} went back to {version}", layout.name)),
            Err(again) => err.context(format!(
                "{} went back to {version}, which does not start either: {again:#} (hint: a database the new build migrated needs its backup, `kici-admin db restore`)",
                layout.name
            )),
        });
    }
    println!(
        "{} runs {} (previous: {}).",
        layout.name,
        version_of(&layout.current()).unwrap_or_default(),
        version_of(&layout.previous()).unwrap_or_default()
    );
    Ok(crate::EXIT_OK)
}
