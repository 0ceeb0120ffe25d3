//! The HTTP surface: `/health`, `/ready`, the agent WebSocket `/ws`, webhook ingress, local
//! sources' repositories for their jobs (`/git`, a job's grant), and the REST API under
//! `/api/v1` (admin token required). Routes are built by [`router`] so tests
//! can serve them on any listener.

pub mod admin;
mod auth;
mod cache;
mod error;
mod events;
mod git;
mod github_manifest;
mod holds;
pub mod ops;
pub mod runs;
mod secrets;
mod sources;
mod storage;
mod triggers;
mod webhook;

use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post};
use kici_telemetry::health::Health;

use crate::state::Shared;

pub fn router(state: Shared) -> Router {
    let runs = Router::new()
        .route("/runs", get(runs::list))
        .route("/runs/cancel-by-branch", post(runs::cancel_branch))
        .route("/runs/{run_id}", get(runs::show))
        .route("/runs/{run_id}/detail", get(runs::detail))
        .route("/runs/{run_id}/jobs", get(runs::jobs))
        .route("/runs/{run_id}/logs", get(runs::logs))
        .route("/runs/{run_id}/cancel", post(runs::cancel))
        .route("/runs/{run_id}/rerun", post(runs::rerun))
        .route("/runs/{run_id}/approve", post(holds::approve))
        .route("/runs/{run_id}/reject", post(holds::reject))
        .route("/holds", get(holds::list))
        .route("/workflows", get(triggers::workflows))
        .route("/workflows/{workflow}/dispatch", post(triggers::dispatch))
        .route("/schedules", get(triggers::schedules))
        .route("/schedules/{id}/run", post(triggers::run_now))
        .route("/schedules/{id}/enable", post(triggers::enable))
        .route("/schedules/{id}/disable", post(triggers::disable))
        .route("/runs/{run_id}/events", get(runs::events))
        .route("/runs/{run_id}/jobs/{job_id}/provisioning", get(runs::provisioning))
        .route(
            "/runs/{run_id}/jobs/{job_id}/steps/{step_index}/logs",
            get(runs::step_logs),
        );
    let admin = Router::new()
        .merge(runs.clone())
        .route("/tokens", post(admin::create_token).get(admin::list_tokens))
        .route("/tokens/{token_id}", delete(admin::revoke_token))
        .route("/agents", post(admin::register_agent).get(admin::list_agents))
        .route("/agents/{id}", delete(admin::revoke_agent))
        .route("/queue/waiting", get(admin::waiting_jobs))
        .route("/sources", post(admin::add_source).get(admin::list_sources))
        .route("/sources/{id}", patch(sources::update).delete(sources::remove))
        .route("/sources/{id}/enable", post(sources::enable))
        .route("/sources/{id}/disable", post(sources::disable))
        .route("/sources/{id}/webhook-secret", post(sources::reveal_webhook_secret))
        .route("/sources/{id}/trigger-token", post(admin::rotate_trigger_token))
        .route("/deliveries/{id}", get(admin::get_delivery))
        .route("/events", get(events::list).post(events::emit))
        .route("/events/{id}", delete(events::discard))
        .route("/events/{id}/retry", post(events::retry))
        .route("/secrets/rotate-key", post(admin::rotate_key))
        .route(
            "/secrets",
            get(secrets::list_secrets)
                .put(secrets::set_secret)
                .delete(secrets::delete_secret),
        )
        .route("/secrets/reveal", post(secrets::reveal_secret))
        .route(
            "/variables",
            get(secrets::list_variables)
                .put(secrets::set_variable)
                .delete(secrets::delete_variable),
        )
        .route(
            "/environments",
            get(secrets::list_environments).post(secrets::create_environment),
        )
        .route(
            "/environments/{name}",
            get(secrets::show_environment)
                .patch(secrets::update_environment)
                .delete(secrets::delete_environment),
        )
        .route("/audit", get(secrets::list_audit))
        .route("/diagnose", get(ops::diagnose))
        .route("/system-info", get(ops::system_info))
        .route("/config", get(ops::config))
        .route("/config/reload", post(ops::reload_config))
        .route("/cluster/health", get(ops::cluster_health))
        .route("/scalers", get(ops::scalers));
    let api = Router::new()
        .merge(runs)
        .nest("/admin", admin)
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_admin));
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/ws", get(agent_socket))
        .route("/webhook/{org_id}/generic/{source_id}", post(webhook::receive))
        .route("/webhook/{org_id}/github", post(webhook::receive_github))
        .route("/github-app/created", get(github_manifest::created))
        .route(
            "/storage/{*key}",
            get(storage::get).put(storage::put).layer(storage::body_limit()),
        )
        .route("/git/{source}/info/refs", get(git::info_refs))
        .route(
            "/git/{source}/git-upload-pack",
            post(git::upload_pack).layer(axum::extract::DefaultBodyLimit::max(
                crate::repo_server::MAX_REQUEST_BYTES,
            )),
        )
        .route("/git/{source}/git-receive-pack", post(git::receive_pack))
        .route("/api/v1/cache/restore", post(cache::restore))
        .route("/api/v1/cache/save", post(cache::save))
        .route("/api/v1/cache/commit", post(cache::commit))
        .nest("/api/v1", api)
        .with_state(state)
}

/// `/metrics`: an admin token, or `KICI_METRICS_TOKEN` when set.
async fn metrics(State(state): State<Shared>, headers: axum::http::HeaderMap) -> axum::response::Response {
    use kici_telemetry::metrics::http::{CONTENT_TYPE, MetricsAccess, MetricsToken, authorize};
    let access = MetricsAccess::new(
        state.config.metrics_token.as_deref().and_then(MetricsToken::new),
        "use an admin token, or set KICI_METRICS_TOKEN on the orchestrator",
    );
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let admin = match presented {
        Some(token) => matches!(
            state
                .store
                .use_admin_token(&crate::ids::token_hash(token.trim()), crate::clock::now_ms())
                .await,
            Ok(Some(_))
        ),
        None => false,
    };
    if admin || authorize(&access, &headers).is_ok() {
        (
            [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
            kici_telemetry::metrics::render(),
        )
            .into_response()
    } else {
        error::ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "metrics need a token (hint: send an admin token, or KICI_METRICS_TOKEN, as a bearer token)",
        )
        .into_response()
    }
}

async fn health(State(state): State<Shared>) -> impl IntoResponse {
    axum::Json(Health::ok("orchestrator", state.started.elapsed().as_millis() as u64))
}

async fn ready(State(state): State<Shared>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}

/// Read and write buffer of one agent's WebSocket.
const AGENT_SOCKET_BUFFER: usize = 8 * 1024;

async fn agent_socket(State(state): State<Shared>, upgrade: WebSocketUpgrade) -> impl IntoResponse {
    // Small buffers (the default is 128 KiB each way, per agent, idle or not); a larger
    // message still arrives whole, read in more pieces.
    upgrade
        .read_buffer_size(AGENT_SOCKET_BUFFER)
        .write_buffer_size(AGENT_SOCKET_BUFFER)
        .max_message_size(kici_engine::protocol::MAX_MESSAGE_BYTES)
        .max_frame_size(kici_engine::protocol::MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| crate::agents::handle(socket, state))
}
