//! End-to-end test harness. It starts the built binaries (`kici-orchestrator`, `kici-agent`)
//! as child processes on free ports with their own data directories, makes real git
//! repositories (a bare "origin" and a working clone), pushes, and waits for runs through the
//! REST API. PostgreSQL is used instead of SQLite when `KICI_TEST_E2E_DATABASE=postgres`
//! (with `KICI_TEST_POSTGRES_URL` naming the server; each stack gets a fresh database).
//!
//! The binaries are looked up next to the test executable (`target/<profile>/`); the
//! workspace test command builds them.

pub mod browser;
mod fake_agent;
pub mod fake_api;
pub mod forge_double;
pub mod git_http;
pub mod load;
pub mod podman;
mod process;
mod repo;
pub mod ssh_server;
pub mod systemd;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kici_engine::api::{RunDetail, RunLogs};
use serde_json::{Value, json};

pub use fake_agent::FakeAgent;
pub use process::{Service, binary, run_to_end};
pub use repo::Repo;

/// How long helpers wait for something before failing the test.
pub const WAIT: Duration = Duration::from_secs(60);

/// The admin token every stack's orchestrator is started with.
pub const ADMIN_TOKEN: &str = "kici-test-admin-token-0123456789abcdef";

/// The admin token of every test Platform (dashboard API and login).
pub const PLATFORM_ADMIN_TOKEN: &str = "kici-test-platform-admin-0123456789";
/// The orchestrator key every test Platform accepts.
pub const ORCHESTRATOR_KEY: &str = "kici_ok_0123456789abcdef0123456789abcdef";

/// An orchestrator with its data directory, and the agents started for it.
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub orchestrator: Service,
    pub agents: Vec<Service>,
    /// The dashboard, when started with [`Stack::start_with_platform`].
    pub platform: Option<Service>,
    /// Extra environment the orchestrator was started with (kept for restarts).
    env: BTreeMap<String, String>,
    client: reqwest::Client,
}

/// Every file under `dir` (recursively) whose name ends with `.<extension>`.
pub fn files_with_extension(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for path in entries.map_while(Result::ok).map(|e| e.path()) {
        if path.is_dir() {
            found.extend(files_with_extension(&path, extension));
        } else if path.extension().is_some_and(|e| e == extension) {
            found.push(path);
        }
    }
    found
}

/// The address of a test service a script started (`KICI_TEST_S3_ENDPOINT`,
/// `KICI_TEST_NPM_REGISTRY`, `KICI_TEST_MISE`…): `None` skips the test, unless its `require`
/// variable says the service must be there.
pub fn test_service(name: &str, require: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(value) => Some(value),
        Err(_) => {
            assert!(std::env::var(require).is_err(), "{require} is set but {name} is not");
            None
        }
    }
}

impl Stack {
    /// An orchestrator with default settings.
    pub async fn start() -> Stack {
        Stack::start_with(&[]).await
    }

    /// An orchestrator with extra `KICI_*` settings.
    pub async fn start_with(env: &[(&str, &str)]) -> Stack {
        let dir = tempfile::Builder::new()
            .prefix("kici-e2e-")
            .tempdir()
            .expect("temp dir");
        Stack::start_in(dir, env)
    }

    /// An orchestrator whose object storage is a fresh bucket on the test S3 server
    /// (`scripts/s3.sh`, `KICI_TEST_S3_ENDPOINT`), with its endpoint and bucket; `None` when no
    /// server is configured, which fails the test when `KICI_TEST_REQUIRE_S3` is set. `extra`:
    /// more `KICI_*` settings.
    pub async fn start_on_s3(prefix: Option<&str>, extra: &[(&str, &str)]) -> Option<(Stack, String, String)> {
        let endpoint = test_service("KICI_TEST_S3_ENDPOINT", "KICI_TEST_REQUIRE_S3")?;
        let bucket = format!("kici-e2e-{}", random_id().replace(['-', '_'], ""));
        let created = reqwest::Client::new()
            .put(format!("{endpoint}/{bucket}"))
            .send()
            .await
            .expect("the S3 server answers");
        assert!(
            created.status().is_success(),
            "creating bucket {bucket}: {}",
            created.status()
        );
        let mut env = vec![
            ("KICI_STORAGE_TYPE", "s3"),
            ("KICI_STORAGE_BUCKET", bucket.as_str()),
            ("KICI_STORAGE_ENDPOINT", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "kici-test"),
            ("AWS_SECRET_ACCESS_KEY", "kici-test-secret"),
        ];
        if let Some(prefix) = prefix {
            env.push(("KICI_STORAGE_PREFIX", prefix));
        }
        env.extend_from_slice(extra);
        let stack = Stack::start_with(&env).await;
        Some((stack, endpoint, bucket))
    }

    /// An orchestrator on `dir`, whose `data/` may hold an existing data directory (one an
    /// earlier build left, for an upgrade).
    pub fn start_in(dir: tempfile::TempDir, env: &[(&str, &str)]) -> Stack {
        let mut vars: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if std::env::var("KICI_TEST_E2E_DATABASE").as_deref() == Ok("postgres") {
            let url = std::env::var("KICI_TEST_POSTGRES_URL")
                .expect("KICI_TEST_E2E_DATABASE=postgres needs KICI_TEST_POSTGRES_URL");
            vars.entry("KICI_DATABASE_URL".into())
                .or_insert_with(|| fresh_postgres_database(&url));
        }
        let orchestrator = start_orchestrator(dir.path(), &vars);
        Stack {
            dir,
            orchestrator,
            agents: Vec::new(),
            platform: None,
            env: vars,
            client: reqwest::Client::new(),
        }
    }

    /// A Platform (the dashboard), then an orchestrator connected to it.
    pub async fn start_with_platform(env: &[(&str, &str)]) -> Stack {
        let dir = tempfile::Builder::new()
            .prefix("kici-e2e-")
            .tempdir()
            .expect("temp dir");
        let platform = start_platform(dir.path());
        let url = format!("ws://127.0.0.1:{}/ws/orchestrator", platform.port);
        let mut vars: Vec<(&str, &str)> = vec![("KICI_PLATFORM_URL", &url), ("KICI_PLATFORM_TOKEN", ORCHESTRATOR_KEY)];
        vars.extend_from_slice(env);
        let mut stack = Stack::start_in(dir, &vars);
        stack.platform = Some(platform);
        stack
    }

    /// Stops the Platform (SIGKILL) and starts it again on the same port and data.
    pub fn restart_platform(&mut self) {
        let port = self.platform.as_ref().expect("a stack started with a platform").port;
        if let Some(platform) = self.platform.as_mut() {
            platform.kill();
        }
        self.platform = Some(start_platform_on(self.dir.path(), port));
        self.client = reqwest::Client::new();
    }

    /// The dashboard's base URL.
    pub fn platform_url(&self) -> String {
        let platform = self.platform.as_ref().expect("a stack started with a platform");
        format!("http://127.0.0.1:{}", platform.port)
    }

    /// `GET` on the Platform's API with the admin token: status and JSON body.
    pub async fn platform_get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.platform_url()))
            .bearer_auth(PLATFORM_ADMIN_TOKEN)
            .send()
            .await
            .expect("GET on the Platform");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.orchestrator.port)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The orchestrator's database: `KICI_DATABASE_URL`, or the data directory's SQLite file.
    pub fn database_url(&self) -> String {
        match self.env.get("KICI_DATABASE_URL") {
            Some(url) => url.clone(),
            None => kici_store::default_database_url(&self.data_dir()),
        }
    }

    /// Kills the orchestrator (SIGKILL) and starts it again on the same port and data.
    pub fn restart_orchestrator(&mut self) {
        self.orchestrator.kill();
        self.start_orchestrator_again();
    }

    /// Starts the orchestrator again on its port after the test killed it
    /// (`stack.orchestrator.kill()`).
    pub fn start_orchestrator_again(&mut self) {
        let port = self.orchestrator.port;
        let mut vars = self.env.clone();
        vars.insert("KICI_PORT".into(), port.to_string());
        self.orchestrator = start_orchestrator(self.dir.path(), &vars);
        // Pooled connections went to the killed process.
        self.client = reqwest::Client::new();
    }

    /// Another orchestrator on this stack's PostgreSQL database (its own data directory
    /// `<dir>/<name>` and port, the first one's secret key unless the settings give one), as an
    /// operator runs several.
    pub fn start_peer(&self, name: &str) -> Service {
        let database = self
            .env
            .get("KICI_DATABASE_URL")
            .expect("peers share a PostgreSQL database (KICI_TEST_E2E_DATABASE=postgres)");
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).expect("peer dir");
        let mut vars = self.env.clone();
        vars.insert("KICI_DATABASE_URL".into(), database.clone());
        // The first one's key, unless the settings name one for all.
        if !vars.contains_key("KICI_SECRET_KEY") {
            vars.entry("KICI_SECRET_KEY_FILE".into())
                .or_insert_with(|| self.data_dir().join("secret-key").display().to_string());
        }
        start_orchestrator(&dir, &vars)
    }

    /// Registers a static agent token labelled `label` for `labels`; the token.
    pub async fn agent_token(&self, label: &str, labels: &[&str]) -> String {
        let answer = self
            .post("/api/v1/admin/agents", &json!({ "label": label, "labels": labels }))
            .await;
        answer["token"].as_str().expect("agent token").to_string()
    }

    /// Registers an agent token with `labels` and starts an agent with it.
    pub async fn start_agent(&mut self, name: &str, labels: &[&str]) -> usize {
        self.start_agent_with(name, labels, &[]).await
    }

    pub async fn start_agent_with(&mut self, name: &str, labels: &[&str], env: &[(&str, &str)]) -> usize {
        let token = self.agent_token(name, labels).await;
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        vars.insert(
            "KICI_ORCHESTRATOR_URL".into(),
            format!("ws://127.0.0.1:{}/ws", self.orchestrator.port),
        );
        vars.insert("KICI_AGENT_TOKEN".into(), token);
        vars.insert("KICI_AGENT_ID".into(), name.to_string());
        vars.insert("KICI_LABELS".into(), labels.join(","));
        vars.insert("KICI_PORT".into(), "0".into());
        let work = self.dir.path().join(format!("agent-{name}"));
        std::fs::create_dir_all(&work).expect("agent work dir");
        vars.insert("KICI_WORK_DIR".into(), work.display().to_string());
        for (k, v) in env {
            vars.insert(k.to_string(), v.to_string());
        }
        let agent = Service::start(
            "kici-agent",
            &vars,
            &self.dir.path().join(format!("agent-{name}.log")),
            "agent.listening",
        );
        self.agents.push(agent);
        let index = self.agents.len() - 1;
        self.wait_agent_connected(name).await;
        index
    }

    /// Registers a token for `agent_id` and connects a scripted agent reporting `build_info`.
    pub async fn start_fake_agent(
        &self,
        agent_id: &str,
        labels: &[&str],
        build_info: kici_engine::build_info::BuildInfo,
    ) -> FakeAgent {
        let token = self.agent_token(agent_id, labels).await;
        let url = format!("ws://127.0.0.1:{}/ws", self.orchestrator.port);
        let agent = FakeAgent::connect(&url, &token, agent_id, labels, build_info).await;
        self.wait_agent_connected(agent_id).await;
        agent
    }

    /// Waits until the orchestrator lists `agent_id` as connected.
    pub async fn wait_agent_connected(&self, agent_id: &str) {
        self.wait_agent_connection(agent_id, true).await
    }

    /// Kills the agent started as `agent_id` (at `index` in [`Stack::agents`]) and waits until
    /// the orchestrator has seen it go, so nothing more is dispatched to it.
    pub async fn kill_agent(&mut self, index: usize, agent_id: &str) {
        self.agents[index].kill();
        self.wait_agent_connection(agent_id, false).await
    }

    async fn wait_agent_connection(&self, agent_id: &str, connected: bool) {
        let what = match connected {
            true => format!("agent {agent_id} to connect"),
            false => format!("the orchestrator to see agent {agent_id} go"),
        };
        self.wait_for(&what, || async {
            let agents = self.get("/api/v1/admin/agents").await;
            agents["agents"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["agentId"] == agent_id && a["connected"] == connected)
                .then_some(())
        })
        .await
    }

    /// A local source for `repo`'s origin.
    pub async fn add_local_source(&self, name: &str, repo: &Repo) -> Value {
        self.post(
            "/api/v1/admin/sources",
            &json!({ "kind": "local", "name": name, "path": repo.origin().display().to_string() }),
        )
        .await
    }

    /// Pushes the working clone to `branch` and sends the webhook; the started run ids.
    pub async fn push(&self, source: &str, repo: &Repo, branch: &str) -> Vec<String> {
        repo.push_to(branch);
        Stack::run_ids(&self.push_webhook(source, repo, branch).await)
    }

    /// Pushes and waits for the single run that starts.
    pub async fn push_and_wait(&self, source: &str, repo: &Repo, branch: &str) -> RunDetail {
        let runs = self.push(source, repo, branch).await;
        assert_eq!(runs.len(), 1, "expected one run for a push to {branch}, got {runs:?}");
        self.wait_run(&runs[0]).await
    }

    /// Sends the push webhook for `repo`'s origin HEAD of `branch` to source `name`, with the
    /// admin token (a local source also takes its trigger token); returns the answer.
    pub async fn push_webhook(&self, source: &str, repo: &Repo, branch: &str) -> Value {
        let body = repo.push_payload(source, branch);
        let response = self
            .client
            .post(format!("{}/webhook/default/generic/{source}", self.url()))
            .bearer_auth(ADMIN_TOKEN)
            .header("x-event-type", "push")
            .header("x-delivery-id", random_id())
            .json(&body)
            .send()
            .await
            .expect("webhook request");
        let status = response.status();
        let answer: Value = response.json().await.expect("webhook answer is JSON");
        assert!(status.is_success(), "webhook failed with {status}: {answer}");
        answer
    }

    /// The run ids a webhook answer started.
    pub fn run_ids(answer: &Value) -> Vec<String> {
        answer["runIds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    }

    pub async fn get(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.url()))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("GET");
        let status = response.status();
        let body: Value = response.json().await.expect("JSON answer");
        assert!(status.is_success(), "GET {path} failed with {status}: {body}");
        body
    }

    pub async fn post(&self, path: &str, body: &Value) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.url()))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .expect("POST");
        let status = response.status();
        let answer: Value = response.json().await.expect("JSON answer");
        assert!(status.is_success(), "POST {path} failed with {status}: {answer}");
        answer
    }

    /// A raw request, for tests of bad input.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub async fn detail(&self, run_id: &str) -> RunDetail {
        serde_json::from_value(self.get(&format!("/api/v1/runs/{run_id}/detail")).await).expect("run detail")
    }

    pub async fn logs(&self, run_id: &str, job: Option<&str>) -> RunLogs {
        let query = job
            .map(|j| format!("?job={}", j.replace(' ', "%20")))
            .unwrap_or_default();
        serde_json::from_value(self.get(&format!("/api/v1/runs/{run_id}/logs{query}")).await).expect("run logs")
    }

    /// The orchestrator's `/metrics` page, read with the admin token.
    pub async fn metrics_text(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.url()))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("the orchestrator answers /metrics")
            .text()
            .await
            .expect("a metrics page")
    }

    /// Every log line of the run, every job and step, one per line.
    pub async fn log_text(&self, run_id: &str) -> String {
        let logs = self.logs(run_id, None).await;
        logs.steps
            .iter()
            .flat_map(|s| s.lines.iter().map(|l| l.line.as_str()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until the run is finished and returns it.
    pub async fn wait_run(&self, run_id: &str) -> RunDetail {
        self.wait_for(&format!("run {run_id} to finish"), || async {
            let detail = self.detail(run_id).await;
            detail.run.status.is_terminal().then_some(detail)
        })
        .await
    }

    /// Polls `check` until it yields a value or [`WAIT`] passes (then fails with `what` and
    /// the services' log tails).
    pub async fn wait_for<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(value) = check().await {
                return value;
            }
            if Instant::now() > deadline {
                let platform = self
                    .platform
                    .as_ref()
                    .map(|p| format!("\n--- platform log tail\n{}", p.log_tail(20)))
                    .unwrap_or_default();
                panic!(
                    "timed out waiting for {what}\n--- orchestrator log tail\n{}{platform}",
                    self.orchestrator.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs a CLI binary (`kici`, `kici-admin`) against this stack.
    pub fn cli(&self, binary_name: &str, args: &[&str], cwd: &Path) -> CliOutput {
        self.cli_with_input(binary_name, args, cwd, "")
    }

    /// Runs a CLI binary against this stack with `input` on its stdin.
    pub fn cli_with_input(&self, binary_name: &str, args: &[&str], cwd: &Path, input: &str) -> CliOutput {
        use std::io::Write as _;
        let mut child = std::process::Command::new(binary(binary_name))
            .args(args)
            .current_dir(cwd)
            .env("KICI_URL", self.url())
            .env("KICI_ADMIN_URL", self.url())
            .env("KICI_TOKEN", ADMIN_TOKEN)
            .env("KICI_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("CLI runs");
        // A CLI that does not read its stdin closes it: a broken pipe is no failure.
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input.as_bytes());
        }
        let output = child.wait_with_output().expect("CLI runs");
        CliOutput {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// What a CLI invocation printed.
#[derive(Debug)]
pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn expect_code(&self, code: i32) -> &CliOutput {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

fn start_platform(dir: &Path) -> Service {
    start_platform_on(dir, 0)
}

fn start_platform_on(dir: &Path, port: u16) -> Service {
    let mut vars = BTreeMap::new();
    vars.insert(
        "KICI_DATA_DIR".to_string(),
        dir.join("platform-data").display().to_string(),
    );
    vars.insert("KICI_PORT".to_string(), port.to_string());
    vars.insert(
        "KICI_PLATFORM_ADMIN_TOKEN".to_string(),
        PLATFORM_ADMIN_TOKEN.to_string(),
    );
    vars.insert(
        "KICI_PLATFORM_ORCHESTRATOR_KEY".to_string(),
        ORCHESTRATOR_KEY.to_string(),
    );
    Service::start("kici-platform", &vars, &dir.join("platform.log"), "platform.listening")
}

fn start_orchestrator(dir: &Path, extra: &BTreeMap<String, String>) -> Service {
    let mut vars = BTreeMap::new();
    vars.insert("KICI_DATA_DIR".to_string(), dir.join("data").display().to_string());
    vars.insert("KICI_PORT".to_string(), "0".to_string());
    vars.insert("KICI_BOOTSTRAP_ADMIN_TOKEN".to_string(), ADMIN_TOKEN.to_string());
    vars.extend(extra.clone());
    Service::start(
        "kici-orchestrator",
        &vars,
        &dir.join("orchestrator.log"),
        "orchestrator.listening",
    )
}

/// A new database on the PostgreSQL server of `url`; returns its URL.
pub fn fresh_postgres_database(url: &str) -> String {
    let name = format!("kici_e2e_{}", random_id().replace('-', ""));
    let status = std::process::Command::new("psql")
        .arg(url)
        .args(["-q", "-c", &format!("CREATE DATABASE {name}")])
        .status()
        .expect("psql runs");
    assert!(status.success(), "cannot create database {name} on {url}");
    let (base, _) = url.rsplit_once('/').expect("a database URL has a path");
    format!("{base}/{name}")
}

/// A free port on 127.0.0.1: the OS's pick, released for the caller (or a child) to bind.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

pub fn random_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{nanos:x}-{:x}-{n}", std::process::id())
}

/// HMAC-SHA256 (RFC 2104) over SHA-256 in hex: a forge's webhook signature.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    use kici_engine::hash::sha256_hex;
    let bytes = |hex: String| -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("sha256_hex gives hex"))
            .collect()
    };
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).chain(message.iter().copied()).collect();
    let outer: Vec<u8> = block
        .iter()
        .map(|b| b ^ 0x5c)
        .chain(bytes(sha256_hex(&inner)))
        .collect();
    sha256_hex(&outer)
}
