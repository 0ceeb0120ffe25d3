//! HTTP/1.1 over a unix socket, for the engines the backends drive: the Docker Engine API
//! (Docker or Podman) and the Firecracker API. One connection per request keeps it simple;
//! these calls happen a few times per spawn. [`call`] gives up after [`CALL_TIMEOUT`], so a
//! stuck engine fails the spawn instead of holding its slot forever.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

/// A call that got no usable answer; the engine's own refusals are the caller's to read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("cannot connect to {}: {source}", socket.display())]
    Connect {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP handshake on {} failed: {source}", socket.display())]
    Handshake {
        socket: PathBuf,
        #[source]
        source: hyper::Error,
    },
    #[error("invalid request {method} {path}: {source}")]
    InvalidRequest {
        method: Method,
        path: String,
        #[source]
        source: hyper::http::Error,
    },
    #[error("{method} {path} on {} failed: {source}", socket.display())]
    Send {
        method: Method,
        path: String,
        socket: PathBuf,
        #[source]
        source: hyper::Error,
    },
    #[error("{method} {path} on {} got no answer within {}s", socket.display(), limit.as_secs())]
    NoAnswer {
        method: Method,
        path: String,
        socket: PathBuf,
        limit: Duration,
    },
    #[error("reading the answer to {method} {path} failed: {source}")]
    ReadAnswer {
        method: Method,
        path: String,
        #[source]
        source: hyper::Error,
    },
}

/// Sends one request; the response body is left to the caller (it may be a stream).
pub(crate) async fn send(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<Response<Incoming>, HttpError> {
    let stream = UnixStream::connect(socket).await.map_err(|source| HttpError::Connect {
        socket: socket.to_path_buf(),
        source,
    })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|source| HttpError::Handshake {
            socket: socket.to_path_buf(),
            source,
        })?;
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
        .map_err(|source| HttpError::InvalidRequest {
            method: method.clone(),
            path: path.to_string(),
            source,
        })?;
    sender.send_request(request).await.map_err(|source| HttpError::Send {
        method,
        path: path.to_string(),
        socket: socket.to_path_buf(),
        source,
    })
}

/// How long one ordinary call may take, answer included.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends one request and reads the whole answer within [`CALL_TIMEOUT`].
pub(crate) async fn call(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<(StatusCode, String), HttpError> {
    call_within(socket, method.clone(), path, body, CALL_TIMEOUT).await
}

/// [`call`] with another limit (an image pull may take long).
pub(crate) async fn call_within(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
    limit: Duration,
) -> Result<(StatusCode, String), HttpError> {
    tokio::time::timeout(limit, call_unbounded(socket, method.clone(), path, body))
        .await
        .map_err(|_| HttpError::NoAnswer {
            method,
            path: path.to_string(),
            socket: socket.to_path_buf(),
            limit,
        })?
}

/// Sends one request and reads the whole answer, however long it takes (`/containers/…/wait`).
pub(crate) async fn call_unbounded(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<(StatusCode, String), HttpError> {
    let response = send(socket, method.clone(), path, body).await?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|source| HttpError::ReadAnswer {
            method,
            path: path.to_string(),
            source,
        })?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
