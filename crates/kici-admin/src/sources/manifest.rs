//! `kici-admin source add github --manifest`: a GitHub App created from a manifest (GitHub's
//! "register an App from a manifest" flow) instead of by hand. The CLI writes an HTML page whose
//! form posts the manifest to GitHub (the flow needs a browser: GitHub asks the signed-in user
//! to confirm). GitHub then sends the browser to the orchestrator's `/github-app/created`,
//! which shows the `--manifest-code` command; the orchestrator exchanges that code for the
//! App's id, key and webhook secret, so they never pass through this machine.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// The App's settings: what KiCI reads and writes, and the events it starts runs on.
pub fn manifest(app_name: &str, public_url: &str) -> Value {
    let base = public_url.trim_end_matches('/');
    json!({
        "name": app_name,
        "url": base,
        "hook_attributes": {"url": format!("{base}/webhook/default/github"), "active": true},
        "redirect_url": format!("{base}/github-app/created"),
        "public": false,
        "default_permissions": {
            "checks": "write",
            "contents": "read",
            "metadata": "read",
            "pull_requests": "read",
            "issues": "read",
        },
        "default_events": ["push", "pull_request", "issue_comment"],
    })
}

/// Where the form posts: the user's apps, or an organization's (`state` comes back with the code).
pub fn form_action(github_url: &str, org: Option<&str>, source_name: &str) -> String {
    let base = github_url.trim_end_matches('/');
    match org {
        Some(org) => format!("{base}/organizations/{org}/settings/apps/new?state={source_name}"),
        None => format!("{base}/settings/apps/new?state={source_name}"),
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The page whose button posts `manifest` to `action`.
pub fn page(action: &str, manifest: &Value) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Create the KiCI GitHub App</title></head>\n<body>\n<h1>Create the KiCI GitHub App</h1>\n<p>GitHub asks you to confirm, then sends you back to the orchestrator with the command that finishes.</p>\n<form action=\"{}\" method=\"post\">\n<input type=\"hidden\" name=\"manifest\" value=\"{}\">\n<button type=\"submit\">Create the GitHub App on GitHub</button>\n</form>\n<pre>{}</pre>\n</body></html>\n",
        html_escape(action),
        html_escape(&manifest.to_string()),
        html_escape(&serde_json::to_string_pretty(manifest).unwrap_or_default()),
    )
}

/// Checks the names that end up in GitHub's URLs.
fn check_name(what: &str, text: &str) -> anyhow::Result<()> {
    let ok = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        bail!("{what} `{text}` may hold only letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

/// Writes the page to `out` and says what to do next.
pub fn write(
    out: &Path,
    (source_name, app_name): (&str, &str),
    public_url: &str,
    github_url: &str,
    org: Option<&str>,
) -> anyhow::Result<String> {
    check_name("the source name", source_name)?;
    if let Some(org) = org {
        check_name("--github-org", org)?;
    }
    if !(public_url.starts_with("https://") || public_url.starts_with("http://")) {
        bail!("--public-url `{public_url}` must be the orchestrator's http(s) address as GitHub reaches it");
    }
    let manifest = manifest(app_name, public_url);
    let action = form_action(github_url, org, source_name);
    std::fs::write(out, page(&action, &manifest)).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(format!(
        "Wrote {out}: open it in a browser signed in to GitHub and press the button.\n\
         GitHub creates the App `{app_name}` (webhooks to {hook}), then sends you to\n\
         {base}/github-app/created, which shows the command that finishes:\n  \
         kici-admin source add github --name {source_name} --manifest-code <code>\n",
        out = out.display(),
        hook = manifest["hook_attributes"]["url"].as_str().unwrap_or_default(),
        base = public_url.trim_end_matches('/'),
    ))
}
