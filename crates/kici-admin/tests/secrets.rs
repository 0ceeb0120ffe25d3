//! Secrets through `kici-admin` against a fake API: a generic source's clone password is read
//! from a file or stdin (never the command line) and sent in the body's `credentials`, never in
//! `gitUrl` or the output; `rotate-key` posts to the owner-only endpoint and prints its counts.

// Helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use kici_testkit::fake_api::FakeApi;
use serde_json::{Value, json};

const PASSWORD: &str = "clone-pass-7c1d";

fn admin(api: &FakeApi, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kici-admin"))
        .args(["-u", &api.url, "-t", "tok"])
        .args(args)
        .env_remove("KICI_ADMIN_TOKEN")
        .env_remove("KICI_ADMIN_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A CLI that refuses its arguments exits without reading stdin: a broken pipe is fine.
    match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => panic!("cannot write stdin: {err}"),
        _ => {}
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn source_api() -> FakeApi {
    FakeApi::start(|request| {
        assert_eq!(
            (request.method.as_str(), request.target.as_str()),
            ("POST", "/api/v1/admin/sources")
        );
        let body: Value = serde_json::from_str(&request.body).unwrap();
        let view = json!({
            "sourceId": "s-1", "orgId": "default", "name": body["name"], "kind": "generic",
            "gitUrl": body["gitUrl"], "preset": body["preset"], "verification": "hmac_sha256",
            "hasCredentials": true, "webhookUrl": "http://127.0.0.1:4000/webhook/default/generic/s-1",
        });
        (201, view.to_string())
    })
}

const ADD: [&str; 11] = [
    "source",
    "add",
    "generic",
    "--name",
    "forge",
    "--preset",
    "gitea",
    "--secret",
    "hook-secret",
    "--git-url",
    "https://forge.example/{owner}/{name}.git",
];

#[test]
fn clone_credentials_come_from_a_file_or_stdin_into_their_own_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let from_file = [
        &ADD[..],
        &[
            "--git-username",
            "ci-bot",
            "--git-password-file",
            file.to_str().unwrap(),
        ],
    ]
    .concat();
    let from_stdin = [&ADD[..], &["--git-username", "ci-bot", "--git-password-file", "-"]].concat();
    for (args, stdin) in [(from_file, ""), (from_stdin, "clone-pass-7c1d\r\n")] {
        let api = source_api();
        let output = admin(&api, &args, stdin);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let stdout = text(&output.stdout);
        assert!(
            stdout.contains("Git URL:      https://forge.example/{owner}/{name}.git\n"),
            "{stdout}"
        );
        assert!(!stdout.contains(PASSWORD), "{stdout}");
        let body: Value = serde_json::from_str(&api.requests()[0].body).unwrap();
        assert_eq!(body["credentials"], json!({"username": "ci-bot", "password": PASSWORD}));
        assert_eq!(body["gitUrl"], "https://forge.example/{owner}/{name}.git");
    }

    // Without credentials the body has none.
    let api = source_api();
    assert!(admin(&api, &ADD, "").status.success());
    let body: Value = serde_json::from_str(&api.requests()[0].body).unwrap();
    assert!(body.get("credentials").is_none(), "{body}");
}

#[test]
fn a_password_needs_a_user_name_and_a_readable_file() {
    let api = source_api();
    let output = admin(&api, &[&ADD[..], &["--git-password-file", "-"]].concat(), PASSWORD);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("the following required arguments were not provided:\n  --git-username <NAME>"),
        "{}",
        text(&output.stderr)
    );
    let output = admin(
        &api,
        &[
            &ADD[..],
            &["--git-username", "u", "--git-password-file", "/nowhere/password"],
        ]
        .concat(),
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).starts_with("Error: cannot read the git password file `/nowhere/password`: "),
        "{}",
        text(&output.stderr)
    );
    let output = admin(
        &api,
        &[&ADD[..], &["--git-username", "u", "--git-password-file", "-"]].concat(),
        "",
    );
    assert_eq!(
        text(&output.stderr),
        "Error: the git password file `-` is empty (hint: put the password or access token on its first line)\n"
    );
    assert!(api.requests().is_empty());
}

#[test]
fn rotate_key_prints_what_was_re_encrypted() {
    let api = FakeApi::start(|request| {
        assert_eq!(
            (request.method.as_str(), request.target.as_str()),
            ("POST", "/api/v1/admin/secrets/rotate-key")
        );
        (
            200,
            json!({"keyId": "1a2b3c4d", "reEncrypted": 3, "alreadyCurrent": 1}).to_string(),
        )
    });
    let output = admin(&api, &["rotate-key"], "");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "Re-encrypted 3 secrets, 1 already current (key 1a2b3c4d).\n"
    );
    assert_eq!(api.requests()[0].headers["authorization"], "Bearer tok");

    let refused = FakeApi::start(|_| {
        (
            403,
            json!({"error": {"code": "forbidden", "message": "token `ops` has role admin; rotating the secret key needs an owner token"}})
                .to_string(),
        )
    });
    let output = admin(&refused, &["rotate-key"], "");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        "Error: token `ops` has role admin; rotating the secret key needs an owner token\n"
    );
}
