//! The dashboard's pages: server-rendered HTML over the cache, with a little hand-written
//! JavaScript (`assets/app.js`) for live status, logs and tabs. Everything is embedded in the
//! binary; no front-end build step. Rendering is pure: handlers pass what a page shows.

mod fleet;
mod run;
mod runs;

pub use fleet::{agents_page, diagnostics_page, scalers_page};
pub use run::{RunPage, run_page};
pub use runs::{RunsFilter, runs_page, runs_rows};

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

/// A whole page: `title`, the signed-in user (for the header), the body.
pub fn layout(title: &str, user: Option<&str>, body: &str) -> String {
    let account = match user {
        Some(user) => format!(
            r#"<span class="user">{}</span><form method="post" action="/logout"><button class="link">Sign out</button></form>"#,
            escape(user)
        ),
        None => String::new(),
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · KiCI</title>
<link rel="stylesheet" href="/assets/app.css">
<script src="/assets/app.js" defer></script>
</head>
<body>
<header class="top"><a class="brand" href="/runs">KiCI</a><nav><a href="/runs">Runs</a> <a href="/agents">Agents</a> <a href="/scalers">Scalers</a> <a href="/diagnostics">Diagnostics</a></nav><div class="account">{account}</div></header>
<main>
{body}
</main>
<footer><span id="live-dot" class="dot" title="Live updates"></span></footer>
</body>
</html>
"#,
        title = escape(title),
    )
}

/// The sign-in page; `error` is shown above the form.
pub fn login_page(error: Option<&str>, next: &str) -> String {
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
<label>Token <input type="password" name="token" autocomplete="current-password" autofocus required></label>
<button type="submit">Sign in</button>
</form>
<p class="hint">Use the Platform's admin token (<code>KICI_PLATFORM_ADMIN_TOKEN</code>) or a token created with <code>kici-admin</code>.</p>
</section>"#,
            next = escape(next)
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
    fn text_is_escaped_for_html() {
        assert_eq!(
            escape(r#"<b a="1">'&'</b>"#),
            "&lt;b a=&quot;1&quot;&gt;&#39;&amp;&#39;&lt;/b&gt;"
        );
    }
}
