//! The dashboard's pages: server-rendered HTML over the cache, with a little hand-written
//! JavaScript (`assets/app.js`) for live status, logs and tabs. Everything is embedded in the
//! binary; no front-end build step. Rendering is pure: handlers pass what a page shows.

mod approvals;
mod fleet;
mod run;
mod runs;
mod users;
mod workflows;

pub use approvals::{ApprovalsFilter, ApprovalsPage, approvals_page};
pub use fleet::{agents_page, diagnostics_page, scalers_page};
pub use run::{RunPage, run_page};
pub use runs::{RunsFilter, runs_page, runs_rows};
pub use users::users_page;
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
    /// An owner: the nav links the Users page.
    pub manages_users: bool,
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
    let users = [("/users", "Users", "")];
    let items: String = links
        .iter()
        .chain(users.iter().filter(|_| viewer.manages_users))
        .map(|(href, label, extra)| {
            let mark = if current == *label {
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

/// A small icon for what started a run (`push`, `pull_request`, `schedule`, …), the trigger's
/// name on hover; decorative, as the name is written beside it.
pub fn trigger_icon(trigger: &str) -> String {
    let path = match trigger {
        "push" => {
            "M8 4.5a3.5 3.5 0 0 1 3.4 2.7H15v1.6h-3.6a3.5 3.5 0 0 1-6.8 0H1V7.2h3.6A3.5 3.5 0 0 1 8 4.5zm0 1.6a1.9 1.9 0 1 0 0 3.8 1.9 1.9 0 0 0 0-3.8z"
        }
        "pull_request" => {
            "M4 1.5a2 2 0 0 1 .8 3.8v5.4a2 2 0 1 1-1.6 0V5.3A2 2 0 0 1 4 1.5zm6.2.4L8.5 3.6l1.7 1.7V4h.8a1.2 1.2 0 0 1 1.2 1.2v5.5a2 2 0 1 0 1.6 0V5.2A2.8 2.8 0 0 0 11 2.4h-.8z"
        }
        "tag" => {
            "M1.5 2.7c0-.7.5-1.2 1.2-1.2h4.4l7.4 7.4a1.2 1.2 0 0 1 0 1.7l-4.4 4.4a1.2 1.2 0 0 1-1.7 0L1.5 7.6zM4.8 3.5a1.3 1.3 0 1 0 0 2.6 1.3 1.3 0 0 0 0-2.6z"
        }
        "dispatch" | "manual_schedule" => "M4 2.5v11l9-5.5z",
        "schedule" => {
            "M8 1a7 7 0 1 1 0 14A7 7 0 0 1 8 1zm0 1.6a5.4 5.4 0 1 0 0 10.8A5.4 5.4 0 0 0 8 2.6zm.8 1.9v3.2l2.4 1.4-.8 1.4-3.2-1.9V4.5z"
        }
        "rerun" => "M8 2a6 6 0 0 1 5.9 5h-1.6A4.4 4.4 0 1 0 11 11.2l-1.4-1.4H14V14l-1.9-1.9A6 6 0 1 1 8 2z",
        "kici_event" | "generic_webhook" => "M9.5 1 3 9h4l-1 6 6.5-8h-4z",
        "workflow_complete" | "job_complete" => {
            "M6.2 9.8a3 3 0 0 1 0-4.2l2-2a3 3 0 0 1 4.2 4.2l-.9.9-1.1-1.1.9-.9a1.4 1.4 0 0 0-2-2l-2 2a1.4 1.4 0 0 0 0 2zm3.6-3.6a3 3 0 0 1 0 4.2l-2 2a3 3 0 1 1-4.2-4.2l.9-.9 1.1 1.1-.9.9a1.4 1.4 0 0 0 2 2l2-2a1.4 1.4 0 0 0 0-2z"
        }
        _ => "M8 3a5 5 0 1 1 0 10A5 5 0 0 1 8 3z",
    };
    format!(
        r#"<span class="trigger" title="{name}" aria-hidden="true"><svg viewBox="0 0 16 16" width="14" height="14"><path fill="currentColor" d="{path}"/></svg></span>"#,
        name = escape(trigger)
    )
}

/// A run's time so far: its duration once it ended, else a clock the page script ticks from
/// `since` (epoch ms).
pub fn elapsed(duration_ms: Option<i64>, since: i64) -> String {
    match duration_ms {
        Some(ms) => format!(r#"<span class="elapsed">{}</span>"#, duration(Some(ms))),
        None => format!(r#"<span class="elapsed" data-since="{since}"></span>"#),
    }
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
            manages_users: false,
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
                manages_users: false,
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
