//! `GET /github-app/created?code=&state=`: where GitHub sends the browser after it created an
//! App from the manifest `kici-admin source add github --manifest` wrote. The page only shows
//! the command that finishes (the code is exchanged by the orchestrator, with an admin token):
//! nothing is created here, so it needs no token. Only letters, digits, `.`, `_` and `-` are
//! echoed; anything else is refused.

use axum::extract::Query;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Created {
    code: Option<String>,
    /// The source name the manifest form passed along.
    state: Option<String>,
}

fn plain(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 128
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub async fn created(Query(query): Query<Created>) -> Response {
    let (Some(code), Some(name)) = (query.code.filter(|c| plain(c)), query.state.filter(|s| plain(s))) else {
        return (
            StatusCode::BAD_REQUEST,
            "GitHub's redirect should carry ?code=<letters and digits>&state=<source name>; start again with `kici-admin source add github --manifest`\n",
        )
            .into_response();
    };
    let command = format!("kici-admin source add github --name {name} --manifest-code {code}");
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>GitHub App created</title></head>\
         <body><h1>GitHub App created</h1><p>Finish within the hour (the code works once):</p>\
         <pre>{command}</pre><p>Then install the App on the repositories to build (the App's page on GitHub, Install App).</p></body></html>\n"
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}
