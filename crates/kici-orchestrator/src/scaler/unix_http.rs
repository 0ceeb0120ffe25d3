//! HTTP/1.1 over a unix socket, for the engines the backends drive: the Docker Engine API
//! (Docker or Podman) and the Firecracker API. One connection per request keeps it simple;
//! these calls happen a few times per spawn. [`call`] gives up after [`CALL_TIMEOUT`], so a
//! stuck engine fails the spawn instead of holding its slot forever.

use std::path::Path;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

/// Sends one request; the response body is left to the caller (it may be a stream).
pub async fn send(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<Response<Incoming>, String> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|err| format!("cannot connect to {}: {err}", socket.display()))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| format!("HTTP handshake on {} failed: {err}", socket.display()))?;
    // The connection task ends with the response (or the peer going away).
    tokio::spawn(connection);
    let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let mut request = Request::builder()
        .method(method.clone())
        .uri(path)
        .header("host", "localhost");
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request
        .body(Full::new(bytes))
        .map_err(|err| format!("invalid request {method} {path}: {err}"))?;
    sender
        .send_request(request)
        .await
        .map_err(|err| format!("{method} {path} on {} failed: {err}", socket.display()))
}

/// How long one ordinary call may take, answer included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends one request and reads the whole answer within [`CALL_TIMEOUT`].
pub async fn call(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<(StatusCode, String), String> {
    call_within(socket, method.clone(), path, body, CALL_TIMEOUT).await
}

/// [`call`] with another limit (an image pull may take long).
pub async fn call_within(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
    limit: Duration,
) -> Result<(StatusCode, String), String> {
    tokio::time::timeout(limit, call_unbounded(socket, method.clone(), path, body))
        .await
        .map_err(|_| {
            format!(
                "{method} {path} on {} got no answer within {}s",
                socket.display(),
                limit.as_secs()
            )
        })?
}

/// Sends one request and reads the whole answer, however long it takes (`/containers/…/wait`).
pub async fn call_unbounded(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<(StatusCode, String), String> {
    let response = send(socket, method.clone(), path, body).await?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|err| format!("reading the answer to {method} {path} failed: {err}"))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
