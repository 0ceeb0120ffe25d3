//! Internal events for operators: `GET /api/v1/admin/events?status=dead` (the dead-letter list
//! and the others), `POST /api/v1/admin/events` (emit a custom event, `kici-admin event emit`),
//! `POST /api/v1/admin/events/:id/retry` and `DELETE /api/v1/admin/events/:id` (a dead event
//! retried from its first attempt, or discarded).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kici_engine::api::triggers::{EmitRequest, Emitted, EventEntry, EventList};
use kici_engine::event::{EventEnvelope, EventType};
use kici_engine::excerpt::excerpt;
use kici_store::{EventStatus, KiciEvent};
use serde::Deserialize;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use crate::clock::now_ms;
use crate::event_router;
use crate::ids::new_id;
use crate::state::Shared;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<i64>,
}

fn entry(event: KiciEvent) -> EventEntry {
    EventEntry {
        event_id: event.event_id,
        event_type: event.event_type,
        status: event.status.as_str().to_string(),
        attempts: event.attempts,
        next_attempt_at: event.next_attempt_at,
        last_error: event.last_error,
        run_ids: event.run_ids,
        event: event.envelope,
        created_at: event.created_at,
        updated_at: event.updated_at,
    }
}

pub async fn list(State(state): State<Shared>, Query(query): Query<ListQuery>) -> ApiResult<Json<EventList>> {
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(text.parse::<EventStatus>().map_err(|()| {
            ApiError::bad_request(
                "invalid_status",
                format!("status `{}` is not pending, delivered or dead", excerpt(text)),
            )
        })?),
    };
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let events = state.store.list_kici_events(status, limit).await?;
    let total = state.store.count_kici_events(status).await?;
    Ok(Json(EventList {
        events: events.into_iter().map(entry).collect(),
        total,
    }))
}

pub async fn emit(
    State(state): State<Shared>,
    Extension(Caller(caller)): Extension<Caller>,
    Json(request): Json<EmitRequest>,
) -> ApiResult<(StatusCode, Json<Emitted>)> {
    let payload = serde_json::Value::Object(request.payload);
    kici_engine::protocol::check_emitted(&request.name, &payload)
        .map_err(|why| ApiError::bad_request("invalid_event", why))?;
    let mut event = EventEnvelope::new(EventType::KiciEvent);
    event.provider = Some("kici".to_string());
    event.action = Some(request.name.clone());
    event.source_repo = request.source_repo.clone();
    event.sender_username = Some(caller.label.clone());
    event.payload = Some(serde_json::json!({
        "eventName": request.name, "payload": payload, "sourceRepo": request.source_repo, "chainDepth": 0,
    }));
    let event_id = format!("kici_event:admin:{}", new_id());
    let run_ids = event_router::publish(&state, &event_id, &event)
        .await?
        .unwrap_or_default();
    tracing::info!(eventId = %event_id, event = %request.name, by = %caller.label, runs = run_ids.len(), "event emitted by an operator");
    Ok((StatusCode::ACCEPTED, Json(Emitted { event_id, run_ids })))
}

fn not_dead(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no dead event `{}` (hint: `kici-admin event-dlq list`)",
        excerpt(id)
    ))
}

pub async fn retry(
    State(state): State<Shared>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<EventEntry>> {
    let lease = state.config.event_router.lease.as_millis() as i64;
    let Some(claimed) = state.store.retry_dead_event(&id, now_ms(), lease).await? else {
        return Err(not_dead(&id));
    };
    tracing::info!(eventId = %id, by = %caller.label, "dead event retried");
    event_router::attempt(&state, claimed).await?;
    let event = state.store.get_kici_event(&id).await?.ok_or_else(|| not_dead(&id))?;
    Ok(Json(entry(event)))
}

pub async fn discard(
    State(state): State<Shared>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if !state.store.discard_dead_event(&id).await? {
        return Err(not_dead(&id));
    }
    tracing::info!(eventId = %id, by = %caller.label, "dead event discarded");
    Ok(StatusCode::NO_CONTENT)
}
