//! The agent's HTTP surface on 127.0.0.1:`KICI_PORT`: `GET /health` (the shared
//! [`Health`] body with the six build-info fields) and `GET /ready` (200 once registered with
//! an orchestrator, else 503). Nothing else: no job control over HTTP.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use kici_telemetry::health::Health;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Debug, Clone)]
struct HealthState {
    started: Instant,
    registered: watch::Receiver<bool>,
}

/// The router; `registered` is true while the agent is registered.
pub fn app(started: Instant, registered: watch::Receiver<bool>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(HealthState { started, registered })
}

async fn health(State(state): State<HealthState>) -> Json<Health> {
    let uptime_ms = state.started.elapsed().as_millis() as u64;
    Json(Health::ok("agent", uptime_ms))
}

async fn ready(State(state): State<HealthState>) -> (StatusCode, &'static str) {
    if *state.registered.borrow() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not registered with an orchestrator")
    }
}

/// Binds 127.0.0.1:`port` (0 = any free port).
pub async fn bind(port: u16) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let address = listener.local_addr()?;
    Ok((listener, address))
}

/// Serves until `stop` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(stop).await
}
