//! The HTTP surface: `/health` and `/ready` (public), the orchestrator WebSocket
//! `/ws/orchestrator` (authenticated by its first frame), and the REST API under `/api/v1`
//! behind the admin token: run reads from the cache ([`runs`]), content and actions proxied to
//! orchestrators ([`proxy`]), live streams ([`live`]). Routes are built by [`router`] so tests
//! can serve them on any listener.
//!
//! The pages a browser sees (`/runs`, `/runs/:id`, `/approvals`, the fleet pages, sign-in) are
//! in [`pages`]; they need a session, the API a token or a session (plus the session's CSRF
//! token when it changes something, see [`session`]).

mod auth;
mod error;
mod fleet;
mod live;
mod pages;
mod proxy;
mod runs;
mod session;
mod users;

pub use error::{ACTION_OFFLINE, LOGS_OFFLINE};
pub use fleet::OrchestratorReport;
pub use live::OpenStreams;
pub use session::Sessions;

use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use kici_telemetry::health::Health;

use crate::state::Shared;

/// Largest orchestrator frame accepted (`spec/dashboard.md` §3.2: frames ≤ 25 MiB).
const MAX_FRAME_BYTES: usize = 25 * 1024 * 1024;

pub fn router(state: Shared) -> Router {
    let api = Router::new()
        .route("/runs", get(runs::list))
        .route("/runs/{run_id}", get(runs::show))
        .route("/runs/{run_id}/detail", get(runs::detail))
        .route("/runs/{run_id}/jobs", get(runs::jobs))
        .route("/runs/{run_id}/events", get(runs::events))
        .route("/runs/{run_id}/logs", get(proxy::logs))
        .route("/runs/{run_id}/cancel", post(proxy::cancel))
        .route("/runs/{run_id}/rerun", post(proxy::rerun))
        .route("/runs/{run_id}/approve", post(proxy::approve))
        .route("/runs/{run_id}/reject", post(proxy::reject))
        .route("/runs/{run_id}/jobs/{job_id}/provisioning", get(proxy::provisioning))
        .route(
            "/runs/{run_id}/jobs/{job_id}/steps/{step_index}/logs",
            get(proxy::step_logs),
        )
        .route("/runs/{run_id}/jobs/{job_id}/steps/{step_index}/live", get(live::step))
        .route("/events/live", get(live::events))
        .route("/users", post(users::create).get(users::list))
        .route("/users/{name}", delete(users::delete))
        .route("/fleet", get(fleet::fleet))
        .route("/diagnostics", get(fleet::diagnostics))
        .route("/workflows", get(fleet::workflows))
        .route("/workflows/dispatch", post(proxy::dispatch))
        .route("/schedules/{schedule_id}/run", post(proxy::run_schedule))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token));
    let pages = Router::new()
        .route("/", get(|| async { axum::response::Redirect::to("/runs") }))
        .route("/runs", get(pages::runs))
        .route("/runs/rows", get(pages::runs_rows))
        .route("/runs/{run_id}", get(pages::run))
        .route("/agents", get(pages::agents))
        .route("/scalers", get(pages::scalers))
        .route("/workflows", get(pages::workflows))
        .route("/diagnostics", get(pages::diagnostics))
        .route("/approvals", get(pages::approvals))
        .route("/users", get(pages::users))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_session,
        ));
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/ws/orchestrator", get(orchestrator_socket))
        .nest("/api/v1", api)
        .merge(pages)
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/assets/{name}", get(pages::asset))
        .with_state(state)
}

async fn health(State(state): State<Shared>) -> impl IntoResponse {
    axum::Json(Health::ok("platform", state.started.elapsed().as_millis() as u64))
}

async fn ready(State(state): State<Shared>) -> impl IntoResponse {
    match state.cache.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "cache database unavailable"),
    }
}

async fn orchestrator_socket(State(state): State<Shared>, upgrade: WebSocketUpgrade) -> impl IntoResponse {
    upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            let session_state = state.clone();
            state.spawn_session(crate::ws::handle(socket, session_state));
        })
}
