//! `kici-admin user …` against a fake Platform API: the request each subcommand sends (path,
//! method, token) and what it prints, errors included.

// Helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use kici_testkit::fake_api::{FakeApi, not_found};

/// Runs `kici-admin user <args>` against `api`: (exit code, stdout, stderr).
fn user(api: &FakeApi, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kici-admin"))
        .args(["--url", &api.url, "--token", "platform-admin-token", "user"])
        .args(args)
        .env_remove("KICI_ADMIN_TOKEN")
        .env_remove("KICI_ADMIN_URL")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn user_delete_deletes_by_name_and_names_a_missing_user() {
    let api = FakeApi::start(|request| match request.target.as_str() {
        "/api/v1/users/rita" => (204, String::new()),
        _ => not_found("user nobody not found (hint: user names are case-sensitive)"),
    });
    assert_eq!(
        user(&api, &["delete", "rita"]),
        (
            Some(0),
            "Deleted user rita; their sessions and token no longer work.\n".to_string(),
            String::new()
        )
    );
    assert_eq!(
        user(&api, &["delete", "nobody"]),
        (
            Some(1),
            String::new(),
            "Error: user nobody not found (hint: user names are case-sensitive)\n".to_string()
        )
    );
    let requests = api.requests();
    let sent: Vec<(&str, &str, &str)> = requests
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.target.as_str(),
                r.headers["authorization"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        sent,
        [
            ("DELETE", "/api/v1/users/rita", "Bearer platform-admin-token"),
            ("DELETE", "/api/v1/users/nobody", "Bearer platform-admin-token"),
        ]
    );
}
