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

/// What `/assets/<name>` serves: the stylesheet, the page script, the theme script (loaded
/// before the page is painted) and the icon, with their content types.
pub const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/app.js"),
    ),
    (
        "theme.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/theme.js"),
    ),
    ("favicon.svg", "image/svg+xml", include_str!("../../assets/favicon.svg")),
];

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

/// The nav's links, the one for `current` (a page title) marked; Approvals carries the number
/// of held jobs when there are any.
fn nav(viewer: &Viewer, current: &str) -> String {
    let badge = match viewer.pending_approvals {
        0 => String::new(),
        count => format!(
            r#" <span class="count-badge" id="approvals-count" title="Jobs waiting for approval">{count}</span>"#
        ),
    };
    let links = [
        ("/runs", "Runs", ""),
        ("/workflows", "Workflows", ""),
        ("/approvals", "Approvals", badge.as_str()),
        ("/agents", "Agents", ""),
        ("/scalers", "Scalers", ""),
        ("/diagnostics", "Diagnostics", ""),
    ];
    let items: String = links
        .iter()
        .map(|(href, label, extra)| {
            let mark = if current.starts_with(label) {
                r#" aria-current="page""#
            } else {
                ""
            };
            format!(r#"<a href="{href}"{mark}>{label}{extra}</a>"#)
        })
        .collect();
    format!(r#"<nav aria-label="Main">{items}</nav>"#)
}

/// The mark beside the name: a K on the accent colour (also `/assets/favicon.svg`).
const LOGO: &str = r##"<svg viewBox="0 0 32 32" aria-hidden="true"><rect width="32" height="32" rx="7" fill="#0969da"/><path d="M9 7h4v7.2L19.4 7h5l-7.1 7.6L25 25h-5l-5.2-7.4-1.8 1.9V25H9z" fill="#fff"/></svg>"##;

/// A whole page: `title`, the signed-in viewer (for the nav, the header and the CSRF token;
/// none on the sign-in page, which shows no navigation), the body.
pub fn layout(title: &str, viewer: Option<&Viewer>, body: &str) -> String {
    let (csrf_meta, nav, account) = match viewer {
        Some(viewer) => (
            format!(
                r#"<meta name="csrf-token" content="{}">
"#,
                escape(viewer.csrf_token)
            ),
            nav(viewer, title),
            format!(
                r#"<span class="user">{}</span><form method="post" action="/logout"><input type="hidden" name="csrf" value="{}"><button class="link">Sign out</button></form>"#,
                escape(viewer.name),
                escape(viewer.csrf_token)
            ),
        ),
        None => (String::new(), String::new(), String::new()),
    };
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{csrf_meta}<title>{title} · KiCI</title>
<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/app.css">
<script src="/assets/theme.js"></script>
<script src="/assets/app.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><a class="brand" href="/runs">{LOGO}KiCI</a>{nav}<div class="account"><button type="button" class="icon" id="theme-toggle" aria-label="Theme: follows the system (switch to light)" title="Switch theme"><svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true"><circle cx="8" cy="8" r="6.5" fill="none" stroke="currentColor" stroke-width="1.5"/><path d="M8 1.5a6.5 6.5 0 0 1 0 13z" fill="currentColor"/></svg></button>{account}</div></header>
<main id="main">
{body}
</main>
<footer role="status" hidden><span id="live-dot" class="dot" aria-hidden="true"></span><span id="live-label"></span></footer>
</body>
</html>
"##,
        title = escape(title),
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
