//! What each orchestrator reports about its own fleet, asked live (never cached): its agents
//! and auto-scalers (`GET /api/v1/fleet`), and its diagnose checks (`GET /api/v1/diagnostics`).
//! Every orchestrator the Platform knows is listed; one that is offline or does not answer
//! carries the reason instead of data.

use axum::Json;
use axum::extract::State;
use kici_engine::platform_protocol::PlatformRequest;
use serde::Serialize;
use serde_json::Value;

use super::auth::Principal;
use crate::proxy;
use crate::state::Shared;

pub use kici_engine::failure::FLEET_OFFLINE;

/// One orchestrator's answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrchestratorReport {
    pub instance_id: String,
    pub online: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Why there is no data (offline, timed out, refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Asks every known orchestrator, one after the other (the approval queue too).
pub async fn ask_all(state: &Shared, actor: &str, request: impl Fn() -> PlatformRequest) -> Vec<OrchestratorReport> {
    let mut reports = Vec::new();
    let mut orchestrators = state.connections.all();
    orchestrators.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    for orchestrator in orchestrators {
        let (data, error) = if orchestrator.online {
            match proxy::request(state, &orchestrator.instance_id, actor, request()).await {
                Ok(data) => (Some(data), None),
                Err(err) => (None, Some(err.to_string())),
            }
        } else {
            (None, Some(FLEET_OFFLINE.to_string()))
        };
        reports.push(OrchestratorReport {
            instance_id: orchestrator.instance_id,
            online: orchestrator.online,
            data,
            error,
        });
    }
    reports
}

pub async fn fleet(State(state): State<Shared>, axum::Extension(principal): axum::Extension<Principal>) -> Json<Value> {
    let reports = ask_all(&state, &principal.name, || PlatformRequest::Fleet).await;
    Json(serde_json::json!({ "orchestrators": reports }))
}

pub async fn diagnostics(
    State(state): State<Shared>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Json<Value> {
    let reports = ask_all(&state, &principal.name, || PlatformRequest::Diagnostics).await;
    Json(serde_json::json!({ "orchestrators": reports }))
}

/// The workflows of each orchestrator's default branches (`GET /api/v1/workflows`).
pub async fn workflows(
    State(state): State<Shared>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Json<Value> {
    let reports = ask_all(&state, &principal.name, || PlatformRequest::Workflows).await;
    Json(serde_json::json!({ "orchestrators": reports }))
}
