//! The live streams for browsers, as Server-Sent Events (one-way, so SSE is enough, and
//! `EventSource` reconnects on its own):
//!
//! - `GET /api/v1/runs/:runId/jobs/:jobId/steps/:stepIndex/live[?afterLineCount=N]`: each event
//!   is `data: {"lines": [LogLine], "lineCount": <cumulative count relayed for the step>}` with
//!   `id: <lineCount>`. With `afterLineCount` (or a `Last-Event-ID` header, which is what
//!   `EventSource` sends when it reconnects) lines N.. come first from the ring buffer; without
//!   it, lines from now on. Lines no longer in the ring are announced as
//!   `event: gap` / `data: {"droppedLineCount", "lineCount"}`.
//! - `GET /api/v1/events/live`: `data: {"type": "run.status", "runId", "status"}` and
//!   `{"type": "orchestrator.online" | "orchestrator.offline", "instanceId"}`; a subscriber too
//!   slow to keep up gets `event: lagged` / `data: {"missedEvents": n}` and should refetch.
//!
//! Streams end when the Platform stops. Not here: the ring and the fan-out (`live`).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{broadcast, watch};

use super::error::{ApiError, ApiResult};
use super::runs::find_run;
use crate::live::{LiveItem, LogSubscription, StatusEvent, StepKey};
use crate::state::Shared;

/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize)]
pub struct LiveQuery {
    #[serde(rename = "afterLineCount")]
    after_line_count: Option<u64>,
}

/// Where a step subscriber starts: `afterLineCount`, else `Last-Event-ID`, else now.
fn start_line(query: Option<u64>, headers: &HeaderMap) -> ApiResult<Option<u64>> {
    if query.is_some() {
        return Ok(query);
    }
    match headers.get("last-event-id").map(|v| v.to_str().map(str::trim)) {
        None => Ok(None),
        Some(Ok(id)) => id
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request("invalid_query", format!("Last-Event-ID `{id}` is not a line count"))),
        Some(Err(_)) => Err(ApiError::bad_request(
            "invalid_query",
            "Last-Event-ID is not a line count",
        )),
    }
}

fn item_event(item: LiveItem) -> Event {
    let (event, id) = match item {
        LiveItem::Lines { lines, line_count } => (
            Event::default().data(json!({ "lines": lines, "lineCount": line_count }).to_string()),
            line_count,
        ),
        LiveItem::Gap {
            dropped_line_count,
            line_count,
        } => (
            Event::default()
                .event("gap")
                .data(json!({ "droppedLineCount": dropped_line_count, "lineCount": line_count }).to_string()),
            line_count,
        ),
    };
    event.id(id.to_string())
}

/// Waits for the stop signal (a dropped sender also means stop).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // Err: the sender is gone, which means the Platform is gone too.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn step_stream(
    subscription: LogSubscription,
    shutdown: watch::Receiver<bool>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(
        (subscription, shutdown),
        |(mut subscription, mut shutdown)| async move {
            let item = tokio::select! {
                biased;
                _ = stopped(&mut shutdown) => None,
                item = subscription.next() => item,
            }?;
            Some((Ok(item_event(item)), (subscription, shutdown)))
        },
    )
}

pub async fn step(
    State(state): State<Shared>,
    Path((run_id, job_id, step_index)): Path<(String, String, i64)>,
    Query(query): Query<LiveQuery>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let after = start_line(query.after_line_count, &headers)?;
    find_run(&state, &run_id).await?;
    let key = StepKey {
        run_id,
        job_id,
        step_index,
    };
    let subscription = state.live.subscribe(&key, after);
    Ok(Sse::new(step_stream(subscription, state.shutdown.clone())).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

fn status_event(received: Result<StatusEvent, broadcast::error::RecvError>) -> Option<Event> {
    match received {
        Ok(event) => Some(Event::default().data(serde_json::to_string(&event).expect("status events serialize"))),
        Err(broadcast::error::RecvError::Lagged(missed)) => Some(
            Event::default()
                .event("lagged")
                .data(json!({ "missedEvents": missed }).to_string()),
        ),
        Err(broadcast::error::RecvError::Closed) => None,
    }
}

pub async fn events(State(state): State<Shared>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = state.live.subscribe_status();
    let stream = futures_util::stream::unfold(
        (receiver, state.shutdown.clone()),
        |(mut receiver, mut shutdown)| async move {
            let event = tokio::select! {
                biased;
                _ = stopped(&mut shutdown) => None,
                received = receiver.recv() => status_event(received),
            }?;
            Some((Ok(event), (receiver, shutdown)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_line_comes_from_the_query_or_last_event_id() {
        let mut headers = HeaderMap::new();
        assert_eq!(start_line(None, &headers).unwrap(), None);
        headers.insert("last-event-id", "12".parse().unwrap());
        assert_eq!(start_line(None, &headers).unwrap(), Some(12));
        assert_eq!(start_line(Some(3), &headers).unwrap(), Some(3));
        headers.insert("last-event-id", "x".parse().unwrap());
        assert_eq!(start_line(None, &headers).unwrap_err().code, "invalid_query");
    }
}
