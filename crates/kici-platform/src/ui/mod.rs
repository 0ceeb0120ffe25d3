//! The dashboard's pages: server-rendered HTML over the cache, with a little hand-written
//! JavaScript (`assets/app.js`) for live status, logs and tabs. Everything is embedded in the
//! binary; no front-end build step. Rendering is pure: handlers pass what a page shows.

mod approvals;
mod fleet;
mod run;
mod runs;
mod workflows;

pub use approvals::{ApprovalsFilter, ApprovalsPage, approvals_page};
pub use fleet::{agents_page, diagnostics_page, scalers_page};
pub use run::{RunPage, run_page};
pub use runs::{RunsFilter, runs_page, runs_rows};
pub use workflows::workflows_page;

/// The stylesheet and script, served at `/assets/app.css` and `/assets/app.js`.
pub const CSS: &str = include_str!("../../assets/app.css");
pub const JS: &str = include_str!("../../assets/app.js");

/// Text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Who a page is rendered for: the name in the header, and the session's CSRF token, which
/// the page carries as `<meta name="csrf-token">` (read by `app.js` for `X-CSRF-Token`) and in
/// its forms' `csrf` field; and how many jobs wait for approval (the nav's badge).
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub name: &'a str,
    pub csrf_token: &'a str,
    pub pending_approvals: usize,
}

/// The nav's links; Approvals carries the number of held jobs when there are any.
fn nav(viewer: Option<&Viewer>) -> String {
    let badge = match viewer {
        Some(viewer) if viewer.pending_approvals > 0 => format!(
            r#" <span class="count-badge" id="approvals-count" title="Jobs waiting for approval">{}</span>"#,
            viewer.pending_approvals
        ),
        _ => String::new(),
    };
    format!(
        r#"<nav><a href="/runs">Runs</a> <a href="/workflows">Workflows</a> <a href="/approvals">Approvals{badge}</a> <a href="/agents">Agents</a> <a href="/scalers">Scalers</a> <a href="/diagnostics">Diagnostics</a></nav>"#
    )
}

/// A whole page: `title`, the signed-in viewer (for the header and the CSRF token), the body.
pub fn layout(title: &str, viewer: Option<&Viewer>, body: &str) -> String {
    let (csrf_meta, account) = match viewer {
        Some(viewer) => (
            format!(
                r#"<meta name="csrf-token" content="{}">
"#,
                escape(viewer.csrf_token)
            ),
            format!(
                r#"<span class="user">{}</span><form method="post" action="/logout"><input type="hidden" name="csrf" value="{}"><button class="link">Sign out</button></form>"#,
                escape(viewer.name),
                escape(viewer.csrf_token)
            ),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{csrf_meta}<title>{title} · KiCI</title>
<link rel="stylesheet" href="/assets/app.css">
<script src="/assets/app.js" defer></script>
</head>
<body>
<header class="top"><a class="brand" href="/runs">KiCI</a>{nav}<div class="account">{account}</div></header>
<main>
{body}
</main>
<footer><span id="live-dot" class="dot" title="Live updates"></span></footer>
</body>
</html>
"#,
        title = escape(title),
        nav = nav(viewer),
    )
}

/// The sign-in page; `error` is shown above the form, `csrf_token` is the value of the
/// sign-in double-submit cookie (`http::pages::login`).
pub fn login_page(error: Option<&str>, next: &str, csrf_token: &str) -> String {
    let error = error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, escape(e)))
        .unwrap_or_default();
    layout(
        "Sign in",
        None,
        &format!(
            r#"<section class="login">
<h1>Sign in</h1>
{error}
<form method="post" action="/login">
<input type="hidden" name="next" value="{next}">
<input type="hidden" name="csrf" value="{csrf}">
<label>Token <input type="password" name="token" autocomplete="current-password" autofocus required></label>
<button type="submit">Sign in</button>
</form>
<p class="hint">Use the Platform's admin token (<code>KICI_PLATFORM_ADMIN_TOKEN</code>) or a token created with <code>kici-admin</code>.</p>
</section>"#,
            next = escape(next),
            csrf = escape(csrf_token)
        ),
    )
}

/// CSS class of a status badge: `status-failed`, ….
pub fn status_class(status: &str) -> String {
    format!("status status-{}", escape(status))
}

/// `2m 30s`, `4.1s`, or an empty string.
pub fn duration(ms: Option<i64>) -> String {
    ms.map(kici_engine::api::format_duration).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_in_pages_carry_the_csrf_token_and_the_sign_in_page_its_own() {
        let viewer = Viewer {
            name: "rita",
            csrf_token: "0123abcd",
            pending_approvals: 0,
        };
        let page = layout("Runs", Some(&viewer), "");
        assert!(
            page.contains(r#"<meta name="csrf-token" content="0123abcd">"#),
            "{page}"
        );
        assert!(
            page.contains(r#"<form method="post" action="/logout"><input type="hidden" name="csrf" value="0123abcd">"#),
            "{page}"
        );
        let login = login_page(None, "/runs", "feed1234");
        assert!(
            login.contains(r#"<input type="hidden" name="csrf" value="feed1234">"#),
            "{login}"
        );
        assert!(!login.contains("csrf-token"), "{login}");
        assert!(page.contains(r#"<a href="/approvals">Approvals</a>"#), "{page}");
        let held = layout(
            "Runs",
            Some(&Viewer {
                pending_approvals: 2,
                ..viewer
            }),
            "",
        );
        assert!(
            held.contains(r#"<a href="/approvals">Approvals <span class="count-badge" id="approvals-count" title="Jobs waiting for approval">2</span></a>"#),
            "{held}"
        );
    }

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(
            escape(r#"<b a="1">'&'</b>"#),
            "&lt;b a=&quot;1&quot;&gt;&#39;&amp;&#39;&lt;/b&gt;"
        );
    }
}
