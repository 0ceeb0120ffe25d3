//! Push bodies built from a real repository, the hook script, and the texts of `source …`.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use super::git::{PushRequest, ZERO_SHA, inspect_push, is_bare};
use super::hook::{HookParams, script};
use super::*;

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// A repository on `main` with two commits; returns (dir, first sha, second sha).
fn two_commit_repo() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "--quiet", "--initial-branch=main"]);
    std::fs::write(repo.join("a.txt"), "a\n").unwrap();
    std::fs::write(repo.join("b.txt"), "b\n").unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "--quiet", "-m", "first"]);
    let first = git(repo, &["rev-parse", "HEAD"]);
    std::fs::write(repo.join("a.txt"), "a2\n").unwrap();
    std::fs::remove_file(repo.join("b.txt")).unwrap();
    std::fs::create_dir(repo.join("src dir")).unwrap();
    std::fs::write(repo.join("src dir/c.txt"), "c\n").unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "--quiet", "-m", "second: change files\n\nbody line"]);
    let second = git(repo, &["rev-parse", "HEAD"]);
    (dir, first, second)
}

#[tokio::test]
async fn push_body_of_the_head_commit() {
    let (dir, _first, second) = two_commit_repo();
    let repo = dir.path().canonicalize().unwrap();
    let push = inspect_push(&repo, &PushRequest::default()).await.unwrap();
    assert_eq!(
        push_body("acme/app", &repo, &push),
        json!({
            "ref": "refs/heads/main",
            "before": ZERO_SHA,
            "after": second,
            "repository": {
                "full_name": "acme/app",
                "name": "app",
                "clone_url": format!("file://{}", repo.display()),
                "default_branch": "main",
            },
            "head_commit": {"id": second, "message": "second: change files\n\nbody line", "author": {"name": "Test"}},
            "commits": [{
                "id": second,
                "added": ["src dir/c.txt"],
                "modified": ["a.txt"],
                "removed": ["b.txt"],
            }],
        })
    );
}

#[tokio::test]
async fn push_ranges_root_commits_and_branch_names() {
    let (dir, first, second) = two_commit_repo();
    let repo = dir.path();
    git(repo, &["branch", "feature", &first]);

    // A known before: the changes of the whole range.
    let request = PushRequest {
        git_ref: Some("refs/heads/main"),
        sha: Some(&second[..10]),
        before: Some(&first),
    };
    let push = inspect_push(repo, &request).await.unwrap();
    assert_eq!(
        (push.before.as_str(), push.after.as_str()),
        (first.as_str(), second.as_str())
    );
    assert_eq!(
        (push.added, push.modified, push.removed),
        (
            vec!["src dir/c.txt".to_string()],
            vec!["a.txt".to_string()],
            vec!["b.txt".to_string()]
        )
    );

    // A short branch name, at the root commit: every file is added; the default branch stays HEAD's.
    let request = PushRequest {
        git_ref: Some("feature"),
        sha: None,
        before: Some(ZERO_SHA),
    };
    let push = inspect_push(repo, &request).await.unwrap();
    assert_eq!(push.git_ref, "refs/heads/feature");
    assert_eq!(push.after, first);
    assert_eq!(push.before, ZERO_SHA);
    assert_eq!(push.message, "first");
    assert_eq!(push.default_branch, "main");
    assert_eq!(push.added, ["a.txt", "b.txt"]);
    assert!(push.modified.is_empty() && push.removed.is_empty());

    let request = PushRequest {
        git_ref: Some("nope"),
        ..PushRequest::default()
    };
    let err = inspect_push(repo, &request).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "`refs/heads/nope` is not a commit in `{}` (hint: check --ref, --sha or --before)",
            repo.display()
        )
    );

    git(repo, &["checkout", "--quiet", "--detach", &first]);
    let err = inspect_push(repo, &PushRequest::default()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "HEAD of `{}` is detached, so there is no branch to trigger (hint: pass --ref refs/heads/<branch>)",
            repo.display()
        )
    );
}

#[tokio::test]
async fn bare_repositories_and_non_repositories() {
    let (dir, _first, second) = two_commit_repo();
    let bare = tempfile::tempdir().unwrap();
    let bare_path = bare.path().join("app.git");
    git(
        dir.path(),
        &["clone", "--quiet", "--bare", ".", bare_path.to_str().unwrap()],
    );
    assert!(is_bare(&bare_path).await.unwrap());
    assert!(!is_bare(dir.path()).await.unwrap());
    let push = inspect_push(&bare_path, &PushRequest::default()).await.unwrap();
    assert_eq!(push.after, second);
    assert_eq!(push.default_branch, "main");

    let empty = tempfile::tempdir().unwrap();
    let err = inspect_push(empty.path(), &PushRequest::default()).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("`{}` is not a git repository: ", empty.path().display())),
        "{err}"
    );
}

#[test]
fn hook_script() {
    let params = HookParams {
        binary: Path::new("/usr/local/bin/kici-admin"),
        url: "http://127.0.0.1:4000",
        token_file: Path::new("/srv/git/app's.git/hooks/kici-trigger-token"),
        source_id: "src-1",
        source_name: "app",
        repo_path: Path::new("/srv/git/app's.git"),
    };
    assert_eq!(
        script(&params),
        r#"#!/bin/sh
# KiCI post-receive hook for source app (src-1), written by `kici-admin source install-hook`.
# For every pushed ref (deletions skipped) it sends the push to the orchestrator at http://127.0.0.1:4000,
# authenticated with the source's trigger token in kici-trigger-token (mode 0600).
zero=0000000000000000000000000000000000000000
while read -r old new ref; do
  if [ "$new" = "$zero" ]; then
    continue
  fi
  if [ "$old" = "$zero" ]; then
    '/usr/local/bin/kici-admin' --url 'http://127.0.0.1:4000' source trigger-local 'src-1' --token-file '/srv/git/app'\''s.git/hooks/kici-trigger-token' --repo-path '/srv/git/app'\''s.git' --ref "$ref" --sha "$new"
  else
    '/usr/local/bin/kici-admin' --url 'http://127.0.0.1:4000' source trigger-local 'src-1' --token-file '/srv/git/app'\''s.git/hooks/kici-trigger-token' --repo-path '/srv/git/app'\''s.git' --ref "$ref" --sha "$new" --before "$old"
  fi
done
exit 0
"#
    );
}

/// The hook, run by sh with a fake `kici-admin` that prints its arguments; the token file is
/// private.
#[tokio::test]
async fn hook_runs_trigger_local_per_ref_and_skips_deletions() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake-admin");
    std::fs::write(&fake, "#!/bin/sh\necho \"$@\"\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let hooks = dir.path().join("hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    let token_file = hook::write_token(&hooks, "ktt_secret").await.unwrap();
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(crate::sources::read_token_file(&token_file).unwrap(), "ktt_secret");
    let text = script(&HookParams {
        binary: &fake,
        url: "http://h:1",
        token_file: &token_file,
        source_id: "s",
        source_name: "app",
        repo_path: Path::new("/r"),
    });
    assert!(!text.contains("ktt_secret"));
    let path = hook::write(&hooks, &text).await.unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o700);

    let (a, b) = ("a".repeat(40), "b".repeat(40));
    let stdin = format!("{ZERO_SHA} {a} refs/heads/new\n{a} {b} refs/heads/main\n{b} {ZERO_SHA} refs/heads/gone\n");
    let mut child = Command::new(&path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let file = token_file.display();
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!(
            "--url http://h:1 source trigger-local s --token-file {file} --repo-path /r --ref refs/heads/new --sha {a}\n\
             --url http://h:1 source trigger-local s --token-file {file} --repo-path /r --ref refs/heads/main --sha {b} --before {a}\n"
        )
    );
}

#[test]
fn delivery_answers() {
    assert_eq!(
        render_delivery(
            "d-1",
            &json!({"accepted": true, "deliveryId": "d-1", "runIds": ["r-1", "r-2"]})
        ),
        "Delivery d-1: 2 run(s) started: r-1, r-2"
    );
    assert_eq!(
        render_delivery(
            "d-1",
            &json!({"accepted": true, "deliveryId": "d-1", "runIds": [], "ignored": "no lock file at the commit"})
        ),
        "Delivery d-1: ignored: no lock file at the commit"
    );
    assert_eq!(
        render_delivery(
            "d-1",
            &json!({"accepted": false, "duplicate": true, "deliveryId": "local:d-1"})
        ),
        "Delivery local:d-1: duplicate of an earlier delivery, nothing started"
    );
    assert_eq!(
        render_delivery("d-1", &json!({"accepted": true, "runIds": []})),
        "Delivery d-1: 0 run(s) started"
    );
}

fn source(kind: &str) -> SourceView {
    serde_json::from_value(json!({
        "sourceId": "src-1", "orgId": "default", "name": "app", "kind": kind,
        "path": if kind == "local" { json!("/srv/git/app.git") } else { json!(null) },
        "gitUrl": if kind == "local" { json!(null) } else { json!("https://forge/{owner}/{name}.git") },
        "preset": if kind == "local" { json!(null) } else { json!("forgejo") },
        "verification": if kind == "local" { "none" } else { "hmac_sha256" },
        "webhookUrl": "/webhook/default/generic/src-1", "createdAt": 0
    }))
    .unwrap()
}

#[test]
fn added_sources() {
    assert_eq!(
        render_added("http://127.0.0.1:4000", &source("local")),
        "\
Source created: app
Source ID:    src-1
Kind:         local
Path:         /srv/git/app.git
Verification: none
Webhook URL:  http://127.0.0.1:4000/webhook/default/generic/src-1

Report pushes with `kici-admin source install-hook app` (every push) or `kici-admin source trigger-local app` (once).
"
    );
    assert_eq!(
        render_added("http://ci:4000", &source("generic")),
        "\
Source created: app
Source ID:    src-1
Kind:         generic
Preset:       forgejo
Git URL:      https://forge/{owner}/{name}.git
Verification: hmac_sha256
Webhook URL:  http://ci:4000/webhook/default/generic/src-1

Point the forge's push and pull-request webhooks at the webhook URL, with the same secret.
"
    );
}

#[test]
fn source_table_and_checks() {
    let list = SourceList {
        sources: vec![
            source("local"),
            SourceView {
                source_id: "src-2".into(),
                name: "forge".into(),
                ..source("generic")
            },
        ],
    };
    assert_eq!(
        render_list("http://h:4000", &list),
        "\
SOURCE ID  NAME   KIND     PRESET   LOCATION                          WEBHOOK URL
src-1      app    local    -        /srv/git/app.git                  http://h:4000/webhook/default/generic/src-1
src-2      forge  generic  forgejo  https://forge/{owner}/{name}.git  http://h:4000/webhook/default/generic/src-2
"
    );
    assert_eq!(
        render_list("http://h:4000", &SourceList { sources: vec![] }),
        "No sources (add one with `kici-admin source add local|generic`).\n"
    );
    let err = local_repo(&source("generic"), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "source `app` is a generic source, and only local sources accept unsigned pushes (hint: use a source added with `kici-admin source add local`)"
    );
    assert_eq!(
        local_repo(&source("local"), None).unwrap(),
        Path::new("/srv/git/app.git")
    );
}
