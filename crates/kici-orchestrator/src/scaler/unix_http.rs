//! HTTP/1.1 over a unix socket, for the engines the backends drive: the Docker Engine API
//! (Docker or Podman) and the Firecracker API. One connection per request keeps it simple;
//! these calls happen a few times per spawn.

use std::path::Path;

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

/// Sends one request and reads the whole answer.
pub async fn call(
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
