//! A test double of the `firecracker` binary, for testing the orchestrator's Firecracker
//! auto-scaler on machines without hardware virtualization.
//!
//! It serves the documented Firecracker API (a subset of v1.7) on the `--api-sock` unix
//! socket with the same validation, status codes and `fault_message` bodies, and writes a
//! VMM log in Firecracker's format. The microVM is mapped onto a process:
//!
//! - the serial console is this process's stdout;
//! - `InstanceStart` prints kernel-like boot lines, then runs the root drive's
//!   `path_on_host` as the guest's init (directly when executable, else with `/bin/sh`) in its
//!   own process group, with `PATH`, `HOME` and the MMDS object `latest.meta-data.kici-env` as
//!   its environment (standing in for the guest bootstrap that reads MMDS), its output on
//!   the console;
//! - when init exits the guest powers off and the double exits 0; `SendCtrlAltDel`, SIGTERM
//!   and SIGINT stop the guest by SIGTERM to its process group;
//! - a kernel image containing a line `KICI_DOUBLE_PANIC=<text>` makes the kernel panic
//!   (with `panic=<non-zero>` in the boot args the VMM then exits 1, else the guest hangs);
//!   one containing `KICI_DOUBLE_EXIT=<code>` makes the VMM exit with `<code>` right away.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{FromRequest, Path as UrlPath, Request, State};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::UnixListener;
use tokio::process::Command;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

const VERSION: &str = "1.7.0";
/// Firecracker's kernel command line when `boot_args` is not given.
const DEFAULT_BOOT_ARGS: &str =
    "reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd";
const NOT_AFTER_START: &str = "The requested operation is not supported after starting the microVM.";
const NOT_BEFORE_START: &str = "The requested operation is not supported before starting the microVM.";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(std::env::args().skip(1)).await {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: impl Iterator<Item = String>) -> Result<u8, String> {
    let args = Args::parse(args).map_err(|e| format!("Arguments parsing error: {e}"))?;
    let mut logger = Logger {
        level: args.level,
        ..Logger::default()
    };
    if let Some(path) = &args.log_path {
        logger.file = Some(open_log(path)?);
    }
    let (exit_tx, mut exit_rx) = mpsc::unbounded_channel();
    let vmm = Arc::new(Mutex::new(Vmm::new(args.id, logger, exit_tx)));
    lock(&vmm).log(
        Level::Info,
        "main",
        &format!("Running Firecracker v{VERSION} (test double)"),
    );

    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let listener = UnixListener::bind(&args.api_sock).map_err(|e| {
        let message = format!("Failed to open the API socket at {}: {e}", args.api_sock.display());
        lock(&vmm).log(Level::Error, "main", &message);
        message
    })?;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = axum::serve(listener, router(vmm.clone())).with_graceful_shutdown(async {
        let _ = stop_rx.await;
    });
    let server = tokio::spawn(server.into_future());
    let code = tokio::select! {
        Some(code) = exit_rx.recv() => code,
        _ = sigterm.recv() => stop_guest(&vmm, &mut exit_rx).await,
        _ = sigint.recv() => stop_guest(&vmm, &mut exit_rx).await,
    };
    // Lets a response in flight (e.g. to `InstanceStart`) go out before the socket goes away.
    let _ = stop_tx.send(());
    let _ = timeout(Duration::from_secs(1), server).await;
    let _ = std::fs::remove_file(&args.api_sock);
    lock(&vmm).log(Level::Info, "main", &format!("Firecracker exiting with status {code}"));
    Ok(code)
}

struct Args {
    api_sock: PathBuf,
    id: String,
    log_path: Option<PathBuf>,
    level: Level,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut parsed = Args {
            api_sock: PathBuf::from("/run/firecracker.socket"),
            id: "anonymous-instance".to_string(),
            log_path: None,
            level: Level::Info,
        };
        while let Some(flag) = args.next() {
            match (flag.as_str(), args.next()) {
                ("--api-sock", Some(value)) => parsed.api_sock = value.into(),
                ("--id", Some(value)) => parsed.id = value,
                ("--log-path", Some(value)) => parsed.log_path = Some(value.into()),
                ("--level", Some(value)) => parsed.level = value.parse()?,
                ("--api-sock" | "--id" | "--log-path" | "--level", None) => {
                    return Err(format!(
                        "The argument '{flag}' requires a value, but none was supplied."
                    ));
                }
                _ => {
                    return Err(format!(
                        "Found argument '{flag}' which wasn't expected, or isn't valid in this context."
                    ));
                }
            }
        }
        let valid_id =
            (1..=64).contains(&parsed.id.len()) && parsed.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid_id {
            return Err(format!("Invalid instance ID: {:?}", parsed.id));
        }
        Ok(parsed)
    }
}

// ---- VMM log ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
enum Level {
    Off,
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl FromStr for Level {
    type Err = String;

    fn from_str(text: &str) -> Result<Level, String> {
        Ok(match text.to_ascii_lowercase().as_str() {
            "off" => Level::Off,
            "error" => Level::Error,
            "warn" | "warning" => Level::Warn,
            "info" => Level::Info,
            "debug" => Level::Debug,
            "trace" => Level::Trace,
            _ => return Err(format!("Invalid log level: {text}")),
        })
    }
}

/// Firecracker's logger: to stdout until a log file is configured.
#[derive(Default)]
struct Logger {
    file: Option<File>,
    level: Level,
    show_level: bool,
    show_origin: bool,
}

impl Logger {
    fn write(&mut self, id: &str, thread: &str, level: Level, message: &str) {
        if level > self.level {
            return;
        }
        let mut tag = format!("{id}:{thread}");
        if self.show_level {
            tag += &format!(":{}", format!("{level:?}").to_uppercase());
        }
        if self.show_origin {
            tag += concat!(":", file!());
        }
        let line = format!("{} [{tag}] {message}", timestamp());
        match &mut self.file {
            // Like Firecracker's non-blocking log pipe, a line that cannot be written is dropped.
            Some(file) => {
                let _ = writeln!(file, "{line}");
            }
            None => console(line),
        }
    }
}

/// Opens an existing log file or FIFO the way Firecracker does: it is not created.
fn open_log(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("Failed to open log file {}: {e}", path.display()))
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnn` in UTC.
fn timestamp() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let (days, secs) = (now.as_secs() / 86_400, now.as_secs() % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let (hour, minute, second) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{:09}",
        now.subsec_nanos()
    )
}

/// One line on the serial console.
fn console(line: impl AsRef<[u8]>) {
    let mut out = std::io::stdout().lock();
    let _ = out
        .write_all(line.as_ref())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
}

// ---- VMM state and API -----------------------------------------------------------------

#[derive(Clone, Deserialize)]
struct BootSource {
    kernel_image_path: PathBuf,
    boot_args: Option<String>,
    initrd_path: Option<PathBuf>,
}

#[derive(Clone, Deserialize)]
struct Drive {
    drive_id: String,
    path_on_host: PathBuf,
    is_root_device: bool,
    #[serde(default)]
    is_read_only: bool,
}

#[derive(Deserialize)]
struct MachineConfig {
    vcpu_count: u8,
    mem_size_mib: usize,
    #[serde(default)]
    smt: bool,
}

#[derive(Deserialize)]
struct NetworkInterface {
    iface_id: String,
    host_dev_name: String,
}

#[derive(Debug, Deserialize)]
enum MmdsVersion {
    V1,
    V2,
}

#[derive(Deserialize)]
struct MmdsConfig {
    #[serde(default = "mmds_v1")]
    version: MmdsVersion,
    network_interfaces: Vec<String>,
    ipv4_address: Option<Ipv4Addr>,
}

fn mmds_v1() -> MmdsVersion {
    MmdsVersion::V1
}

#[derive(Deserialize)]
struct LoggerConfig {
    log_path: Option<PathBuf>,
    level: Option<String>,
    show_level: Option<bool>,
    show_log_origin: Option<bool>,
}

#[derive(Deserialize)]
struct Action {
    action_type: ActionType,
}

#[derive(Deserialize)]
enum ActionType {
    InstanceStart,
    SendCtrlAltDel,
    FlushMetrics,
}

struct Vmm {
    id: String,
    logger: Logger,
    boot_source: Option<BootSource>,
    drives: BTreeMap<String, Drive>,
    /// `(vcpu_count, mem_size_mib)`; Firecracker's default is 1 vCPU, 128 MiB.
    machine: (u8, usize),
    interfaces: BTreeSet<String>,
    /// Whether MMDS is reachable from the guest (`PUT /mmds/config` was accepted).
    mmds_configured: bool,
    /// `None` until the first `PUT /mmds`.
    mmds: Option<Value>,
    started: bool,
    /// The guest init's process group while it runs.
    guest: Option<u32>,
    /// Where the VMM's exit status goes; `main` exits with it.
    exit: mpsc::UnboundedSender<u8>,
}

type Shared = Arc<Mutex<Vmm>>;

fn lock(vmm: &Shared) -> MutexGuard<'_, Vmm> {
    vmm.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Vmm {
    fn new(id: String, logger: Logger, exit: mpsc::UnboundedSender<u8>) -> Vmm {
        Vmm {
            id,
            logger,
            boot_source: None,
            drives: BTreeMap::new(),
            machine: (1, 128),
            interfaces: BTreeSet::new(),
            mmds_configured: false,
            mmds: None,
            started: false,
            guest: None,
            exit,
        }
    }

    fn log(&mut self, level: Level, thread: &str, message: &str) {
        self.logger.write(&self.id, thread, level, message);
    }

    fn ensure_not_started(&self) -> Result<(), Fault> {
        if self.started {
            Err(fault(NOT_AFTER_START))
        } else {
            Ok(())
        }
    }
}

/// A 400 answer: `{"fault_message": ...}`.
#[derive(Clone)]
struct Fault(String);

fn fault(message: impl Into<String>) -> Fault {
    Fault(message.into())
}

impl IntoResponse for Fault {
    fn into_response(self) -> Response {
        let mut response = (StatusCode::BAD_REQUEST, Json(json!({ "fault_message": self.0 }))).into_response();
        // For the request log.
        response.extensions_mut().insert(self);
        response
    }
}

type ApiResult = Result<StatusCode, Fault>;

/// A JSON request body; malformed ones are answered like Firecracker does.
struct Body<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Fault;

    async fn from_request(request: Request, state: &S) -> Result<Self, Fault> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|e| fault(e.body_text()))?;
        serde_json::from_slice(&bytes).map(Body).map_err(|e| {
            fault(format!(
                "An error occurred when deserializing the json body of a request: {e}."
            ))
        })
    }
}

fn router(vmm: Shared) -> Router {
    Router::new()
        .route("/", get(describe))
        .route("/boot-source", put(put_boot_source))
        .route("/drives/{drive_id}", put(put_drive))
        .route("/machine-config", put(put_machine_config))
        .route("/network-interfaces/{iface_id}", put(put_network_interface))
        .route("/mmds/config", put(put_mmds_config))
        .route("/mmds", put(put_mmds).patch(patch_mmds).get(get_mmds))
        .route("/logger", put(put_logger))
        .route("/actions", put(put_action))
        .fallback(invalid_request)
        .method_not_allowed_fallback(invalid_request)
        .layer(middleware::from_fn_with_state(vmm.clone(), log_request))
        .with_state(vmm)
}

async fn log_request(State(vmm): State<Shared>, request: Request, next: Next) -> Response {
    let method = request.method().as_str();
    let method = format!("{}{}", &method[..1], method[1..].to_lowercase());
    let message = format!(
        "The API server received a {method} request on \"{}\".",
        request.uri().path()
    );
    lock(&vmm).log(Level::Info, "fc_api", &message);
    let response = next.run(request).await;
    if let Some(Fault(message)) = response.extensions().get::<Fault>() {
        let message = format!("Received Error. Status code: 400 Bad Request. Message: {message}");
        lock(&vmm).log(Level::Error, "fc_api", &message);
    }
    response
}

async fn invalid_request(method: Method, uri: Uri) -> Fault {
    fault(format!("Invalid request method and/or path: {method} {}.", uri.path()))
}

async fn describe(State(vmm): State<Shared>) -> Json<Value> {
    let vmm = lock(&vmm);
    Json(json!({
        "id": vmm.id,
        "state": if vmm.started { "Running" } else { "Not started" },
        "vmm_version": VERSION,
        "app_name": "Firecracker",
    }))
}

async fn put_boot_source(State(vmm): State<Shared>, Body(config): Body<BootSource>) -> ApiResult {
    let mut vmm = lock(&vmm);
    vmm.ensure_not_started()?;
    File::open(&config.kernel_image_path).map_err(|e| fault(format!("Cannot open kernel image: {e}")))?;
    if let Some(initrd) = &config.initrd_path {
        File::open(initrd).map_err(|e| fault(format!("Cannot open initrd image: {e}")))?;
    }
    vmm.boot_source = Some(config);
    Ok(StatusCode::NO_CONTENT)
}

async fn put_drive(State(vmm): State<Shared>, UrlPath(id): UrlPath<String>, Body(drive): Body<Drive>) -> ApiResult {
    let mut vmm = lock(&vmm);
    vmm.ensure_not_started()?;
    if drive.drive_id != id {
        return Err(fault("The id from the path does not match the id from the body!"));
    }
    File::open(&drive.path_on_host).map_err(|e| {
        fault(format!(
            "Unable to open the block device backing file {}: {e}",
            drive.path_on_host.display()
        ))
    })?;
    if drive.is_root_device && vmm.drives.values().any(|d| d.is_root_device && d.drive_id != id) {
        return Err(fault("A root block device already exists!"));
    }
    vmm.drives.insert(id, drive);
    Ok(StatusCode::NO_CONTENT)
}

async fn put_machine_config(State(vmm): State<Shared>, Body(config): Body<MachineConfig>) -> ApiResult {
    let mut vmm = lock(&vmm);
    vmm.ensure_not_started()?;
    let vcpus = config.vcpu_count;
    if vcpus == 0 || vcpus > 32 || (config.smt && vcpus > 1 && vcpus % 2 == 1) {
        return Err(fault(
            "The vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled.",
        ));
    }
    if config.mem_size_mib == 0 {
        return Err(fault("The memory size (MiB) is invalid."));
    }
    vmm.machine = (vcpus, config.mem_size_mib);
    Ok(StatusCode::NO_CONTENT)
}

async fn put_network_interface(
    State(vmm): State<Shared>,
    UrlPath(id): UrlPath<String>,
    Body(iface): Body<NetworkInterface>,
) -> ApiResult {
    let mut vmm = lock(&vmm);
    vmm.ensure_not_started()?;
    if iface.iface_id != id {
        return Err(fault("The id from the path does not match the id from the body!"));
    }
    // Real Firecracker opens the TAP device here.
    std::fs::metadata(Path::new("/sys/class/net").join(&iface.host_dev_name))
        .map_err(|e| fault(format!("Open tap device failed: {}: {e}", iface.host_dev_name)))?;
    vmm.interfaces.insert(id);
    Ok(StatusCode::NO_CONTENT)
}

async fn put_mmds_config(State(vmm): State<Shared>, Body(config): Body<MmdsConfig>) -> ApiResult {
    let mut vmm = lock(&vmm);
    vmm.ensure_not_started()?;
    if config.network_interfaces.is_empty() {
        return Err(fault(
            "The list of network interface IDs that allow forwarding MMDS requests is empty.",
        ));
    }
    if !config.network_interfaces.iter().all(|id| vmm.interfaces.contains(id)) {
        return Err(fault(
            "The list of network interface IDs provided contains at least one ID that does not correspond to any existing network interface.",
        ));
    }
    if config.ipv4_address.is_some_and(|ip| !ip.is_link_local()) {
        return Err(fault("The MMDS IPv4 address is not link local."));
    }
    vmm.mmds_configured = true;
    let message = format!("MMDS {:?} on {}", config.version, config.network_interfaces.join(", "));
    vmm.log(Level::Debug, "fc_api", &message);
    Ok(StatusCode::NO_CONTENT)
}

async fn put_mmds(State(vmm): State<Shared>, Body(data): Body<Value>) -> ApiResult {
    lock(&vmm).mmds = Some(data);
    Ok(StatusCode::NO_CONTENT)
}

async fn patch_mmds(State(vmm): State<Shared>, Body(patch): Body<Value>) -> ApiResult {
    let mut vmm = lock(&vmm);
    let store = vmm
        .mmds
        .as_mut()
        .ok_or_else(|| fault("The MMDS data store is not initialized."))?;
    merge_patch(store, patch);
    Ok(StatusCode::NO_CONTENT)
}

async fn get_mmds(State(vmm): State<Shared>) -> Json<Value> {
    Json(lock(&vmm).mmds.clone().unwrap_or_else(|| json!({})))
}

/// JSON merge patch, RFC 7396.
fn merge_patch(target: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(&key);
            } else {
                merge_patch(target.entry(key).or_insert(Value::Null), value);
            }
        }
    }
}

async fn put_logger(State(vmm): State<Shared>, Body(config): Body<LoggerConfig>) -> ApiResult {
    let mut vmm = lock(&vmm);
    vmm.ensure_not_started()?;
    let level = config.level.as_deref().map(str::parse).transpose().map_err(fault)?;
    if let Some(path) = &config.log_path {
        vmm.logger.file = Some(open_log(path).map_err(fault)?);
    }
    let logger = &mut vmm.logger;
    logger.level = level.unwrap_or(logger.level);
    logger.show_level = config.show_level.unwrap_or(logger.show_level);
    logger.show_origin = config.show_log_origin.unwrap_or(logger.show_origin);
    Ok(StatusCode::NO_CONTENT)
}

async fn put_action(State(shared): State<Shared>, Body(action): Body<Action>) -> ApiResult {
    let mut vmm = lock(&shared);
    match action.action_type {
        ActionType::InstanceStart => {
            vmm.ensure_not_started()?;
            let boot = vmm
                .boot_source
                .clone()
                .ok_or_else(|| fault("Cannot start microvm without kernel configuration."))?;
            let root = vmm.drives.values().find(|d| d.is_root_device).cloned();
            let root = root.ok_or_else(|| fault("Cannot start microvm without a root block device."))?;
            let env = guest_env(&vmm);
            vmm.started = true;
            vmm.log(Level::Info, "main", "Successfully started microvm");
            let (machine, exit) = (vmm.machine, vmm.exit.clone());
            let shared = shared.clone();
            tokio::spawn(async move {
                let code = run_guest(&shared, boot, machine, root, env).await;
                let _ = exit.send(code);
            });
        }
        ActionType::SendCtrlAltDel => {
            if !vmm.started {
                return Err(fault(NOT_BEFORE_START));
            }
            if let Some(pgid) = vmm.guest {
                signal_group(pgid, libc::SIGTERM);
            }
        }
        ActionType::FlushMetrics => {}
    }
    Ok(StatusCode::NO_CONTENT)
}

// ---- The guest -------------------------------------------------------------------------

/// What the guest bootstrap reads from MMDS: `latest.meta-data.kici-env`, or the console
/// message of a guest that cannot get it.
fn guest_env(vmm: &Vmm) -> Result<Vec<(String, String)>, &'static str> {
    if !vmm.mmds_configured {
        return Err("kici-init: MMDS is not reachable (no /mmds/config)");
    }
    let env = vmm
        .mmds
        .as_ref()
        .and_then(|mmds| mmds.pointer("/latest/meta-data/kici-env")?.as_object().cloned());
    let env = env.ok_or("kici-init: no kici-env in MMDS")?;
    Ok(env
        .into_iter()
        .filter_map(|(key, value)| Some((key, value.as_str()?.to_string())))
        .collect())
}

/// Boots the guest; the VMM's exit status once it is gone.
async fn run_guest(
    vmm: &Shared,
    boot: BootSource,
    (vcpus, mem_mib): (u8, usize),
    root: Drive,
    env: Result<Vec<(String, String)>, &'static str>,
) -> u8 {
    let boot_args = boot.boot_args.unwrap_or_else(|| DEFAULT_BOOT_ARGS.to_string());
    let mode = if root.is_read_only { "ro" } else { "rw" };
    console("[    0.000000] Linux version 6.1.102 (firecracker-double) (gcc (GCC) 13.2.0) #1 SMP");
    console(format!("[    0.000000] Command line: {boot_args} root=/dev/vda {mode}"));
    console(format!(
        "[    0.000000] Memory: {}K available, {vcpus} CPUs",
        mem_mib * 1024
    ));

    let kernel = tokio::fs::read(&boot.kernel_image_path).await.unwrap_or_default();
    if let Some(reason) = marker(&kernel, "KICI_DOUBLE_PANIC=") {
        return kernel_panic(vmm, &boot_args, &reason).await;
    }
    if let Some(code) = marker(&kernel, "KICI_DOUBLE_EXIT=") {
        let code = code.trim().parse().unwrap_or(1);
        console(format!(
            "[    0.500000] firecracker-double: VMM exits with status {code} (KICI_DOUBLE_EXIT)"
        ));
        lock(vmm).log(
            Level::Error,
            "main",
            &format!("Abnormal VMM exit, status {code} (KICI_DOUBLE_EXIT)"),
        );
        return code;
    }
    let env = match env {
        Ok(env) => env,
        Err(message) => {
            console(message);
            return 1;
        }
    };
    match run_init(vmm, &root.path_on_host, env).await {
        Ok(()) => {
            console("[   13.000000] reboot: Power down");
            lock(vmm).log(Level::Info, "main", "Guest powered off");
            0
        }
        Err(e) => {
            let reason = format!("Requested init {} failed ({e}).", root.path_on_host.display());
            kernel_panic(vmm, &boot_args, &reason).await
        }
    }
}

/// The text after `prefix` on the first line of `kernel` starting with it.
fn marker(kernel: &[u8], prefix: &str) -> Option<String> {
    kernel.split(|&b| b == b'\n').find_map(|line| {
        let text = line.strip_prefix(prefix.as_bytes())?;
        Some(String::from_utf8_lossy(text).trim_end_matches('\r').to_string())
    })
}

/// A kernel panic: with `panic=<non-zero>` the guest reboots, which makes the VMM exit 1;
/// without, the kernel halts and the VMM runs on until it is stopped.
async fn kernel_panic(vmm: &Shared, boot_args: &str, reason: &str) -> u8 {
    console(format!("[    0.712345] Kernel panic - not syncing: {reason}"));
    console(format!(
        "[    0.712400] ---[ end Kernel panic - not syncing: {reason} ]---"
    ));
    let panic_timeout = boot_args
        .split_whitespace()
        .rev()
        .find_map(|arg| arg.strip_prefix("panic="));
    if panic_timeout.and_then(|t| t.parse::<i64>().ok()).unwrap_or(0) == 0 {
        lock(vmm).log(
            Level::Warn,
            "main",
            "Guest kernel panicked and halted (no panic= boot argument)",
        );
        std::future::pending::<()>().await;
    }
    lock(vmm).log(
        Level::Error,
        "main",
        &format!("Guest kernel panicked ({reason}); the VMM exits"),
    );
    1
}

/// Runs init with its output on the console until it exits; the VM is gone after.
async fn run_init(vmm: &Shared, init: &Path, env: Vec<(String, String)>) -> std::io::Result<()> {
    let executable = std::fs::metadata(init)?.permissions().mode() & 0o111 != 0;
    let mut command = Command::new(if executable { init } else { Path::new("/bin/sh") });
    command.args((!executable).then_some(init));
    let inherited = ["PATH", "HOME"]
        .into_iter()
        .filter_map(|key| Some((key.to_string(), std::env::var(key).ok()?)));
    let mut child = command
        .env_clear()
        .envs(inherited.chain(env))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let pid = child.id().ok_or_else(|| std::io::Error::other("init exited at once"))?;
    lock(vmm).guest = Some(pid);
    console(format!("[   12.000000] kici-init: started (pid {pid})"));
    let stdout = tokio::spawn(forward(child.stdout.take()));
    let stderr = tokio::spawn(forward(child.stderr.take()));
    let status = child.wait().await;
    // Nothing in the VM survives its init.
    signal_group(pid, libc::SIGKILL);
    lock(vmm).guest = None;
    let _ = tokio::join!(stdout, stderr);
    lock(vmm).log(Level::Info, "main", &format!("Guest init exited: {}", status?));
    Ok(())
}

/// Copies a stream to the console line by line.
async fn forward(stream: Option<impl AsyncRead + Unpin>) {
    let Some(stream) = stream else { return };
    let mut lines = BufReader::new(stream).split(b'\n');
    while let Ok(Some(line)) = lines.next_segment().await {
        console(line);
    }
}

/// SIGTERM to the guest, SIGKILL if it is still there after 5 s; the VMM's exit status.
async fn stop_guest(vmm: &Shared, exits: &mut mpsc::UnboundedReceiver<u8>) -> u8 {
    let guest = lock(vmm).guest;
    if let Some(pgid) = guest {
        signal_group(pgid, libc::SIGTERM);
        if timeout(Duration::from_secs(5), exits.recv()).await.is_err() {
            signal_group(pgid, libc::SIGKILL);
        }
    }
    0
}

fn signal_group(pgid: u32, signal: libc::c_int) {
    // Never 0: that would be the double's own process group.
    if let Ok(pgid @ 1..) = libc::pid_t::try_from(pgid) {
        // SAFETY: killpg takes no pointers; the group is the guest's, started by us.
        #[allow(unsafe_code)]
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
}
