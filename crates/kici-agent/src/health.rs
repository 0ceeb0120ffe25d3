//! The agent's HTTP surface on 127.0.0.1:`KICI_PORT`: `GET /health` (the shared
//! [`Health`] body with the six build-info fields), `GET /ready` (200 once registered with
//! an orchestrator, else 503) and `GET /metrics` (Prometheus text, behind
//! `Authorization: Bearer <KICI_METRICS_TOKEN>`; 401 for everyone when no token is set).
//! Nothing else: no job control over HTTP.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use kici_telemetry::health::Health;
use kici_telemetry::metrics::http::{MetricsAccess, MetricsToken};
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Debug, Clone)]
struct HealthState {
    started: Instant,
    registered: watch::Receiver<bool>,
}

/// How the 401 of `/metrics` tells an operator to configure the token.
const METRICS_TOKEN_HINT: &str = "set KICI_METRICS_TOKEN on the agent";

/// The router; `registered` is true while the agent is registered; `/metrics` accepts
/// `metrics_token` as a bearer token.
pub fn app(started: Instant, registered: watch::Receiver<bool>, metrics_token: Option<MetricsToken>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(HealthState { started, registered })
        .merge(kici_telemetry::metrics::http::router(MetricsAccess::new(
            metrics_token,
            METRICS_TOKEN_HINT,
        )))
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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

    /// Serves `app` on a free port for the test's duration; returns the port.
    async fn start(metrics_token: Option<&str>) -> (u16, tokio::sync::oneshot::Sender<()>) {
        kici_telemetry::metrics::install(kici_telemetry::metrics::MetricSet::Agent);
        let (listener, address) = bind(0).await.expect("bind");
        let (_registered_tx, registered) = watch::channel(false);
        let router = app(Instant::now(), registered, metrics_token.and_then(MetricsToken::new));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, router, async move {
            // A stop request or the test ending (sender dropped): both stop the server.
            let _ = stop_rx.await;
        }));
        (address.port(), stop_tx)
    }

    /// `GET /metrics` with an optional bearer token: status code and body.
    async fn get_metrics(port: u16, token: Option<&str>) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let authorization = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let request = format!("GET /metrics HTTP/1.1\r\nHost: localhost\r\n{authorization}Connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = String::new();
        tokio::time::timeout(WAIT, stream.read_to_string(&mut response))
            .await
            .expect("response in time")
            .expect("read");
        let code = response
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status line");
        let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body).to_string();
        (code, body)
    }

    #[tokio::test]
    async fn metrics_without_a_configured_token_are_refused_with_a_hint() {
        let (port, _stop) = start(None).await;
        let (code, body) = get_metrics(port, Some("anything")).await;
        assert_eq!(code, 401);
        assert_eq!(
            body,
            r#"{"error":{"code":"unauthorized","message":"metrics need a token (hint: set KICI_METRICS_TOKEN on the agent and send it as a bearer token)"}}"#
        );
    }

    #[tokio::test]
    async fn metrics_need_the_configured_bearer_token_and_pass_promtool() {
        let (port, _stop) = start(Some("scrape-token")).await;
        assert_eq!(get_metrics(port, None).await.0, 401);
        let (code, body) = get_metrics(port, Some("wrong")).await;
        assert_eq!(code, 401);
        assert!(body.contains("invalid metrics token"), "{body}");
        let (code, body) = get_metrics(port, Some("scrape-token")).await;
        assert_eq!(code, 200, "{body}");
        for name in [
            "kici_agent_jobs_total",
            "kici_agent_jobs_active",
            "kici_agent_steps_total",
            "kici_agent_step_duration_seconds",
            "kici_agent_clone_duration_seconds",
            "kici_agent_log_bytes_total",
            "kici_agent_connection_status",
            "kici_agent_log_lines_dropped_total",
        ] {
            assert!(body.contains(&format!("# HELP {name} ")), "{name}\n{body}");
            assert!(body.contains(&format!("# TYPE {name} ")), "{name}\n{body}");
        }
        assert!(body.contains("kici_agent_jobs_total{status=\"failed\"} "), "{body}");
        match kici_telemetry::metrics::promtool::check(&body) {
            Ok(kici_telemetry::metrics::promtool::Checked::Passed) => {}
            Ok(kici_telemetry::metrics::promtool::Checked::Skipped(note)) => eprintln!("{note}"),
            Err(problem) => panic!("{problem}\n{body}"),
        }
    }
}
