//! Secrets at rest, end to end: the data directory, database and secret key are private; a
//! generic source's webhook secret and clone credentials are stored encrypted (`enc:v1:…`) and
//! the credentials reach a real `git http-backend` behind basic auth without showing in the
//! sources view, the orchestrator's log, the mirror's config or a clone error; plaintext
//! secrets of an older database are encrypted at start; `kici-admin rotate-key` moves every
//! value to a new key so the previous one can go. On SQLite, or PostgreSQL with
//! `KICI_TEST_E2E_DATABASE=postgres`.

// The harness helpers fail the test the way its assertions do.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use kici_testkit::{Repo, Stack};
use serde_json::{Value, json};

const FIXTURE: &str = "tests/e2e-repo";
const HOOK_SECRET: &str = "hook-secret-5e2a";
const USERNAME: &str = "ci-bot";
const PASSWORD: &str = "clone-pass-7c1d";
/// `Basic` + base64 of `ci-bot:clone-pass-7c1d`.
const BASIC_AUTH: &str = "Basic Y2ktYm90OmNsb25lLXBhc3MtN2MxZA==";
const WRONG_PASSWORD: &str = "wrong-pass-93b0";

const KEY_A: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const KEY_B: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
const KEY_C: &str = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// HMAC-SHA256 of `body` under `key`, in hex, as a forge signs it.
fn sign(key: &str, body: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", key])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    text.trim().rsplit("= ").next().unwrap().to_string()
}

/// The fixture's branch whose pushes start the `hello-world` workflow.
const BRANCH: &str = "hello";

/// Sends a GitHub-shaped push of [`BRANCH`] to the generic source `source`, signed with
/// `secret`. `delivery` names the delivery and makes the body unique.
async fn push(stack: &Stack, repo: &Repo, source: &str, secret: &str, delivery: &str) -> (u16, Value) {
    repo.push_to(BRANCH);
    let mut payload = repo.push_payload(source, BRANCH);
    payload["kiciTestDelivery"] = json!(delivery);
    let body = serde_json::to_vec(&payload).unwrap();
    let response = stack
        .client()
        .post(format!("{}/webhook/default/generic/{source}", stack.url()))
        .header("x-github-event", "push")
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", format!("sha256={}", sign(secret, &body)))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The orchestrator's database, read (and written) beside it with the database's own CLI.
enum Db {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Db {
    async fn of(stack: &Stack) -> Db {
        let url = stack.get("/api/v1/admin/config").await["database"]["url"]
            .as_str()
            .unwrap()
            .to_string();
        if url.starts_with("postgres") {
            Db::Postgres(url)
        } else {
            Db::Sqlite(stack.data_dir().join("kici.db"))
        }
    }

    fn run(&self, sql: &str) -> String {
        let output = match self {
            Db::Sqlite(path) => Command::new("sqlite3").arg(path).arg(sql).output(),
            Db::Postgres(url) => Command::new("psql").args([url, "-At", "-F", "|", "-c", sql]).output(),
        }
        .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    /// `(secret, credentials)` of the source named `name`, as stored.
    fn sealed(&self, name: &str) -> (String, String) {
        let row = self.run(&format!(
            "SELECT COALESCE(secret, ''), COALESCE(credentials, '') FROM sources WHERE name = '{name}'"
        ));
        let (secret, credentials) = row.trim().split_once('|').unwrap();
        (secret.to_string(), credentials.to_string())
    }

    /// Every byte of the database's files, for SQLite (nothing for PostgreSQL).
    fn file_bytes(&self) -> Vec<u8> {
        let Db::Sqlite(path) = self else { return Vec::new() };
        let mut bytes = Vec::new();
        for suffix in ["", "-wal"] {
            if let Ok(content) = std::fs::read(format!("{}{suffix}", path.display())) {
                bytes.extend(content);
            }
        }
        bytes
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

/// A git smart-HTTP server (`git http-backend` as CGI) for the repositories under a
/// directory, behind basic auth with [`BASIC_AUTH`]. It counts requests refused and served.
struct GitServer {
    url: String,
    counts: Arc<Mutex<(usize, usize)>>,
    _task: tokio::task::JoinHandle<()>,
}

impl GitServer {
    async fn start(root: PathBuf) -> GitServer {
        let counts = Arc::new(Mutex::new((0, 0)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = counts.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let root = root.clone();
            let seen = seen.clone();
            async move {
                let authorized = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(BASIC_AUTH);
                {
                    let mut counts = seen.lock().unwrap();
                    if authorized {
                        counts.1 += 1;
                    } else {
                        counts.0 += 1;
                    }
                }
                if !authorized {
                    return (
                        StatusCode::UNAUTHORIZED,
                        [("www-authenticate", "Basic realm=\"git\"")],
                        "authentication required",
                    )
                        .into_response();
                }
                git_cgi(&root, &method, &uri, &headers, body).await
            }
        });
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        GitServer {
            url,
            counts,
            _task: task,
        }
    }

    fn counts(&self) -> (usize, usize) {
        *self.counts.lock().unwrap()
    }
}

async fn git_cgi(root: &Path, method: &Method, uri: &Uri, headers: &HeaderMap, body: Bytes) -> Response {
    use tokio::io::AsyncWriteExt as _;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut child = tokio::process::Command::new("git")
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", method.as_str())
        .env("PATH_INFO", uri.path())
        .env("QUERY_STRING", uri.query().unwrap_or_default())
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("HTTP_GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_USER", USERNAME)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&body).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    let raw = output.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| (at, 4))
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|at| (at, 2)))
        .unwrap();
    let head = String::from_utf8_lossy(&raw[..split.0]).to_string();
    let mut response = Response::builder();
    let mut status = 200;
    for line in head.lines() {
        let (name, value) = line.split_once(':').unwrap();
        if name.eq_ignore_ascii_case("status") {
            status = value.trim()[..3].parse().unwrap();
        } else {
            response = response.header(name.trim(), value.trim());
        }
    }
    response
        .status(status)
        .body(axum::body::Body::from(raw[split.0 + split.1..].to_vec()))
        .unwrap()
}

#[tokio::test]
async fn clone_credentials_reach_git_and_nothing_else() {
    let stack = Stack::start().await;
    let db = Db::of(&stack).await;
    let data = stack.data_dir();
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("secret-key")), 0o600);
    if let Db::Sqlite(path) = &db {
        assert_eq!(mode(path), 0o600);
    }
    assert!(
        stack.orchestrator.log_text().contains("generated a secret key in"),
        "{}",
        stack.orchestrator.log_tail(20)
    );

    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    let server = GitServer::start(repo.origin().parent().unwrap().to_path_buf()).await;
    let git_url = format!("{}/origin.git", server.url);

    // Credentials inside the URL are refused, without repeating them.
    let response = stack
        .client()
        .post(format!("{}/api/v1/admin/sources", stack.url()))
        .bearer_auth(kici_testkit::ADMIN_TOKEN)
        .json(
            &json!({"kind": "generic", "name": "inline", "preset": "github-repo", "secret": HOOK_SECRET,
            "gitUrl": git_url.replace("http://", &format!("http://{USERNAME}:{PASSWORD}@"))}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let refused = response.text().await.unwrap();
    assert!(refused.contains("contains credentials"), "{refused}");
    assert!(refused.contains("http://***@127.0.0.1:"), "{refused}");
    assert!(!refused.contains(PASSWORD), "{refused}");

    // The password comes from a file, through the CLI.
    let password_file = stack.dir.path().join("git-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let wrong_file = stack.dir.path().join("wrong-password");
    std::fs::write(&wrong_file, WRONG_PASSWORD).unwrap();
    for (name, file) in [("forge", &password_file), ("forge-bad", &wrong_file)] {
        let added = stack.cli(
            "kici-admin",
            &[
                "source",
                "add",
                "generic",
                "--name",
                name,
                "--preset",
                "github-repo",
                "--secret",
                HOOK_SECRET,
                "--git-url",
                &git_url,
                "--git-username",
                USERNAME,
                "--git-password-file",
                file.to_str().unwrap(),
            ],
            stack.dir.path(),
        );
        added.expect_code(0);
        assert!(!added.stdout.contains(PASSWORD), "{}", added.stdout);
    }

    // Stored encrypted: no plaintext in the columns or the database files.
    let key_id = stack.get("/api/v1/admin/config").await["secretKey"]["keyId"]
        .as_str()
        .unwrap()
        .to_string();
    let (secret, credentials) = db.sealed("forge");
    let prefix = format!("enc:v1:{key_id}:");
    assert!(secret.starts_with(&prefix), "{secret}");
    assert!(credentials.starts_with(&prefix), "{credentials}");
    let bytes = db.file_bytes();
    for plaintext in [HOOK_SECRET, PASSWORD, WRONG_PASSWORD] {
        assert!(!secret.contains(plaintext) && !credentials.contains(plaintext));
        assert!(!contains(&bytes, plaintext), "{plaintext} is in the database file");
    }

    // The orchestrator clones with them: the lock file is read and a run starts.
    let (status, answer) = push(&stack, &repo, "forge", HOOK_SECRET, "good-1").await;
    assert_eq!(status, 202, "{answer}\n{}", stack.orchestrator.log_tail(20));
    assert_eq!(answer["runIds"].as_array().map(Vec::len), Some(1), "{answer}");
    let (refused, served) = server.counts();
    assert!(refused >= 1 && served >= 1, "refused {refused}, served {served}");

    // A wrong password: the clone fails, and its error does not carry the password.
    let (status, answer) = push(&stack, &repo, "forge-bad", HOOK_SECRET, "bad-1").await;
    assert!(status == 502 || status == 202, "{status} {answer}");
    let bad = stack.get("/api/v1/admin/sources").await["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "forge-bad")
        .unwrap()["sourceId"]
        .as_str()
        .unwrap()
        .to_string();
    let delivery = stack
        .wait_for("the bad clone to fail", || async {
            let record = stack.get(&format!("/api/v1/admin/deliveries/{bad}:bad-1")).await;
            (record["status"] == "failed").then_some(record)
        })
        .await;
    let detail = delivery["detail"].as_str().unwrap();
    assert!(detail.contains("Authentication failed"), "{detail}");
    for text in [detail.to_string(), answer.to_string()] {
        assert!(!text.contains(WRONG_PASSWORD) && !text.contains(PASSWORD), "{text}");
    }

    // Not in the sources view, the log, or the mirror's config.
    let sources = stack.get("/api/v1/admin/sources").await;
    let forge = sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "forge")
        .unwrap();
    assert_eq!(
        (forge["hasCredentials"].as_bool(), forge["gitUrl"].as_str()),
        (Some(true), Some(git_url.as_str()))
    );
    let text = sources.to_string();
    let log = stack.orchestrator.log_text();
    let mut mirror_configs = Vec::new();
    for source in std::fs::read_dir(data.join("repos")).unwrap() {
        for mirror in std::fs::read_dir(source.unwrap().path()).unwrap() {
            mirror_configs.push(std::fs::read_to_string(mirror.unwrap().path().join("config")).unwrap());
        }
    }
    assert!(!mirror_configs.is_empty());
    for plaintext in [HOOK_SECRET, PASSWORD, WRONG_PASSWORD] {
        assert!(!text.contains(plaintext), "{text}");
        assert!(!log.contains(plaintext), "{plaintext} in the orchestrator log");
        for config in &mirror_configs {
            assert!(!config.contains(plaintext), "{config}");
        }
    }
    let key = std::fs::read_to_string(data.join("secret-key")).unwrap();
    assert!(!log.contains(key.trim()), "the key is in the log");
    assert!(!stack.get("/api/v1/admin/config").await.to_string().contains(key.trim()));
}

#[tokio::test]
async fn plaintext_secrets_of_an_older_database_are_encrypted_at_start() {
    let mut stack = Stack::start().await;
    let db = Db::of(&stack).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    let file_url = format!("file://{}", repo.origin().display());
    stack
        .post(
            "/api/v1/admin/sources",
            &json!({"kind": "generic", "name": "forge", "preset": "github-repo", "secret": HOOK_SECRET, "gitUrl": file_url}),
        )
        .await;

    // What an older version left: a plaintext secret, a password inside the URL, and files
    // open to everyone.
    stack.orchestrator.kill();
    let legacy_url = file_url.replace("file://", &format!("file://{USERNAME}:{PASSWORD}@"));
    db.run(&format!(
        "UPDATE sources SET secret = '{HOOK_SECRET}', git_url = '{legacy_url}', credentials = NULL"
    ));
    let data = stack.data_dir();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    if let Db::Sqlite(path) = &db {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    stack.start_orchestrator_again();

    let (secret, credentials) = db.sealed("forge");
    assert!(secret.starts_with("enc:v1:"), "{secret}");
    assert!(credentials.starts_with("enc:v1:"), "{credentials}");
    let forge = stack.get("/api/v1/admin/sources").await["sources"][0].clone();
    assert_eq!(
        (forge["gitUrl"].as_str(), forge["hasCredentials"].as_bool()),
        (Some(file_url.as_str()), Some(true))
    );
    assert_eq!(mode(&data), 0o700);
    let log = stack.orchestrator.log_text();
    assert!(
        log.contains("data directory was open to other users: now 0700"),
        "{log}"
    );
    if let Db::Sqlite(path) = &db {
        assert_eq!(mode(path), 0o600);
        assert!(
            log.contains("database file was readable by other users: now 0600"),
            "{log}"
        );
    }
    assert!(log.contains("encrypted plaintext source secrets at rest"), "{log}");
    assert!(!log.contains(HOOK_SECRET) && !log.contains(PASSWORD), "{log}");

    let (status, answer) = push(&stack, &repo, "forge", HOOK_SECRET, "after-upgrade").await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["runIds"].as_array().map(Vec::len), Some(1), "{answer}");
    let (status, answer) = push(&stack, &repo, "forge", "not-the-secret", "forged").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("invalid_signature"))
    );
}

/// The id of the orchestrator's current key, and its whole configuration view.
async fn key_id(stack: &Stack) -> (String, String) {
    let config = stack.get("/api/v1/admin/config").await;
    (
        config["secretKey"]["keyId"].as_str().unwrap().to_string(),
        config.to_string(),
    )
}

#[tokio::test]
async fn rotate_key_moves_every_secret_to_the_new_key() {
    let keys = tempfile::tempdir().unwrap();
    let current = keys.path().join("current");
    let old = keys.path().join("old");
    std::fs::write(&current, KEY_A).unwrap();
    std::fs::write(&old, KEY_C).unwrap();
    let mut stack = Stack::start_with(&[
        ("KICI_SECRET_KEY_FILE", current.to_str().unwrap()),
        ("KICI_SECRET_KEY_FILE_OLD", old.to_str().unwrap()),
    ])
    .await;
    assert!(!stack.data_dir().join("secret-key").exists());
    let db = Db::of(&stack).await;
    let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
    stack
        .post(
            "/api/v1/admin/sources",
            &json!({"kind": "generic", "name": "forge", "preset": "github-repo", "secret": HOOK_SECRET,
                "gitUrl": format!("file://{}", repo.origin().display()),
                "credentials": {"username": USERNAME, "password": PASSWORD}}),
        )
        .await;
    let scoped = stack
        .client()
        .put(format!("{}/api/v1/admin/secrets", stack.url()))
        .bearer_auth(kici_testkit::ADMIN_TOKEN)
        .json(&json!({"scope": "production", "key": "DEPLOY_KEY", "value": "scoped-value-6a7b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(scoped.status().as_u16(), 200);
    let (id_a, _) = key_id(&stack).await;
    assert!(db.sealed("forge").0.starts_with(&format!("enc:v1:{id_a}:")));
    let mut logs = stack.orchestrator.log_text();

    // The new key, with the previous one beside it: both read.
    stack.orchestrator.kill();
    std::fs::write(&current, KEY_B).unwrap();
    std::fs::write(&old, KEY_A).unwrap();
    stack.start_orchestrator_again();
    let (id_b, config) = key_id(&stack).await;
    assert_ne!(id_a, id_b);
    let log = stack.orchestrator.log_text();
    assert!(
        log.contains("Old master key configured — dual-key decrypt and true rotation enabled"),
        "{log}"
    );
    logs.push_str(&log);
    let (status, answer) = push(&stack, &repo, "forge", HOOK_SECRET, "during-rotation").await;
    assert_eq!(status, 202, "{answer}");

    // Owners only.
    let admin = stack
        .post("/api/v1/admin/tokens", &json!({"label": "ops", "role": "admin"}))
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let refused = stack
        .client()
        .post(format!("{}/api/v1/admin/secrets/rotate-key", stack.url()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);

    let rotated = stack.cli("kici-admin", &["rotate-key"], stack.dir.path());
    rotated.expect_code(0);
    assert_eq!(
        rotated.stdout,
        format!("Re-encrypted 3 secrets, 0 already current (key {id_b}).\n")
    );
    let (secret, credentials) = db.sealed("forge");
    for value in [&secret, &credentials] {
        assert!(value.starts_with(&format!("enc:v1:{id_b}:")), "{value}");
    }

    // The previous key is gone: everything still reads.
    logs.push_str(&stack.orchestrator.log_text());
    stack.orchestrator.kill();
    std::fs::write(&old, KEY_C).unwrap();
    stack.start_orchestrator_again();
    let (status, answer) = push(&stack, &repo, "forge", HOOK_SECRET, "after-rotation").await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["runIds"].as_array().map(Vec::len), Some(1), "{answer}");
    let again = stack.cli("kici-admin", &["rotate-key"], stack.dir.path());
    again.expect_code(0);
    assert_eq!(
        again.stdout,
        format!("Re-encrypted 0 secrets, 3 already current (key {id_b}).\n")
    );
    let revealed = stack.cli(
        "kici-admin",
        &["secret", "get", "production", "DEPLOY_KEY", "--reveal"],
        stack.dir.path(),
    );
    assert_eq!(revealed.expect_code(0).stdout, "scoped-value-6a7b\n");
    let audit = stack.cli(
        "kici-admin",
        &["audit", "--action", "key.rotate", "--json"],
        stack.dir.path(),
    );
    let audit: Value = serde_json::from_str(&audit.expect_code(0).stdout).unwrap();
    assert_eq!(audit["entries"][1]["metadata"]["reEncrypted"], json!(3), "{audit}");
    logs.push_str(&stack.orchestrator.log_text());
    for key in [KEY_A, KEY_B, KEY_C] {
        assert!(!logs.contains(key), "a key is in the orchestrator log");
        assert!(!config.contains(key), "a key is in the config view");
    }
    assert!(!logs.contains(PASSWORD) && !logs.contains(HOOK_SECRET));
}
