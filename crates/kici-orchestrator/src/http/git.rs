//! `/git/<source id>/…`: git's smart HTTP protocol for local sources' repositories, fetch only
//! (`info/refs?service=git-upload-pack` and `git-upload-pack`); what is served to whom is
//! `crate::repo_server`. The job's grant arrives as HTTP Basic auth's password, which the agent
//! sends with each request; a request without one is asked for it.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures_util::StreamExt as _;
use serde::Deserialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::repo_server::{self, Refusal};
use crate::state::Shared;

#[derive(Deserialize)]
pub struct Service {
    service: Option<String>,
}

/// `GET /git/<source>/info/refs?service=git-upload-pack`: the (empty) ref advertisement.
pub async fn info_refs(
    State(state): State<Shared>,
    Path(source): Path<String>,
    Query(query): Query<Service>,
    headers: HeaderMap,
) -> Response {
    if query.service.as_deref() != Some("git-upload-pack") {
        return refusal(Refusal::Forbidden(
            "this server only serves fetches (git-upload-pack) of local sources' repositories to their jobs"
                .to_string(),
        ));
    }
    if !speaks_v2(&headers) {
        return refusal(Refusal::Forbidden(repo_server::V2_ONLY.to_string()));
    }
    let access = match repo_server::authorize(&state, &source, password(&headers).as_deref()).await {
        Ok(access) => access,
        Err(refused) => return refusal(refused),
    };
    let advertisement = match repo_server::advertisement(&access.repository).await {
        Ok(advertisement) => advertisement,
        Err(err) => return failed(&source, &err),
    };
    (
        [
            (header::CONTENT_TYPE, "application/x-git-upload-pack-advertisement"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        advertisement,
    )
        .into_response()
}

/// `POST /git/<source>/git-upload-pack`: the pack of the job's commit and its history.
pub async fn upload_pack(
    State(state): State<Shared>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !speaks_v2(&headers) {
        return error_packet(repo_server::V2_ONLY);
    }
    let access = match repo_server::authorize(&state, &source, password(&headers).as_deref()).await {
        Ok(access) => access,
        Err(refused @ Refusal::Unauthorized(_)) => return refusal(refused),
        // Past the advertisement git shows a refusal only as an `ERR` packet.
        Err(refused) => return error_packet(&refused.to_string()),
    };
    let gzipped = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|encoding| encoding.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let request = match repo_server::request_body(&body, gzipped)
        .and_then(|request| repo_server::check_request(&request, &access.sha).map(|()| request))
    {
        Ok(request) => request,
        Err(refused) => return error_packet(&refused.to_string()),
    };
    let turn = repo_server::upload_pack_turn().await;
    let mut child = match repo_server::upload_pack(&access.repository, false).spawn() {
        Ok(child) => child,
        Err(err) => return failed(&source, &err.to_string()),
    };
    let (Some(mut stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return failed(&source, "git upload-pack started without its pipes");
    };
    // Written beside the answer, which upload-pack may start before it has read everything;
    // closed once written, so it sees the end. A write upload-pack cut short shows in its exit.
    tokio::spawn(async move {
        let _ = stdin.write_all(&request).await;
    });
    // A client that stops reading would keep upload-pack (and its turn) forever: past the
    // deadline it is killed, and the answer ends there.
    tokio::spawn(async move {
        let _turn = turn;
        let mut text = String::new();
        let finished = tokio::time::timeout(repo_server::UPLOAD_PACK_DEADLINE, async {
            let _ = stderr.read_to_string(&mut text).await;
            child.wait().await
        })
        .await;
        match finished {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => {
                tracing::warn!(source = %source, status = %status, stderr = %text.trim(), "git upload-pack failed")
            }
            Ok(Err(err)) => tracing::warn!(source = %source, error = %err, "git upload-pack could not be waited for"),
            Err(_) => {
                let _ = child.kill().await;
                tracing::warn!(source = %source, deadline_s = repo_server::UPLOAD_PACK_DEADLINE.as_secs(), "git upload-pack killed at its deadline");
            }
        }
    });
    let stream = futures_util::stream::unfold(stdout, |mut stdout| async move {
        let mut chunk = vec![0u8; 64 * 1024];
        match stdout.read(&mut chunk).await {
            Ok(0) => None,
            Ok(n) => {
                chunk.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), stdout))
            }
            Err(err) => Some((Err(err), stdout)),
        }
    });
    (
        [
            (header::CONTENT_TYPE, "application/x-git-upload-pack-result"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream.boxed()),
    )
        .into_response()
}

/// `POST /git/<source>/git-receive-pack`: refused; nothing is pushed through the orchestrator.
pub async fn receive_pack() -> Response {
    refusal(Refusal::Forbidden(
        "local sources' repositories are served read-only: push to the repository itself".to_string(),
    ))
}

/// The password of HTTP Basic auth: the job's grant (git's user name is ignored).
fn password(headers: &HeaderMap) -> Option<String> {
    let encoded = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (_, password) = decoded.split_once(':')?;
    Some(password.to_string()).filter(|p| !p.is_empty())
}

/// The client asked for protocol v2 (`Git-Protocol: version=2`, maybe among other keys).
fn speaks_v2(headers: &HeaderMap) -> bool {
    headers
        .get("git-protocol")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(':').any(|key| key == "version=2"))
}

/// A refusal as plain text, which git prints as `remote: <text>` before its own error.
fn refusal(refused: Refusal) -> Response {
    let status = match refused {
        Refusal::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
        Refusal::NotFound(_) => StatusCode::NOT_FOUND,
        Refusal::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{refused}\n"),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"KiCI\""),
        );
    }
    response
}

/// A refusal in the upload-pack result, which git prints as `fatal: remote error: <text>`.
fn error_packet(text: &str) -> Response {
    let line = format!("ERR {text}\n");
    (
        [(header::CONTENT_TYPE, "application/x-git-upload-pack-result")],
        format!("{:04x}{line}", line.len() + 4),
    )
        .into_response()
}

/// upload-pack itself failed: logged in full, answered without the orchestrator's details.
fn failed(source: &str, detail: &str) -> Response {
    tracing::error!(source = %source, error = %detail.trim(), "git upload-pack failed");
    refusal(Refusal::Unavailable(
        "the orchestrator could not read the repository (details are in its log)".to_string(),
    ))
}
