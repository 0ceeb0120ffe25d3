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
//! A step stream is only opened for a step the cache has for that run (a listed step, or a
//! job's prepare log, step -1), else 404: each opened step holds one of the hub's
//! `MAX_LIVE_STEPS` places, and invented keys would push real steps out. One caller (a
//! session or a token) holds at most [`MAX_STREAMS_PER_CALLER`] streams of both kinds at once;
//! more are 429 `too_many_live_streams`.
//!
//! Streams end when the Platform stops. Not here: the ring and the fan-out (`live`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use kici_engine::api::Job;
use kici_engine::runner_protocol::PREPARE_STEP_INDEX;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{broadcast, watch};

use super::auth::Credential;
use super::error::{ApiError, ApiResult};
use super::runs::find_run;
use crate::live::{LiveItem, LogSubscription, StatusEvent, StepKey};
use crate::state::Shared;

/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Live streams (step and status) one session or token may hold open at once. A dashboard tab
/// holds two; a browser opens at most six connections to one HTTP/1.1 server anyway.
pub const MAX_STREAMS_PER_CALLER: usize = 32;

/// How many live streams each caller holds open (keyed by [`Credential::key`]; an entry
/// exists only while its count is above zero, so the map is bounded by the callers streaming).
#[derive(Debug, Default)]
pub struct OpenStreams {
    counts: Mutex<HashMap<String, usize>>,
}

/// One open stream, counted until dropped (the stream ends or the client goes away).
#[derive(Debug)]
pub struct StreamSlot {
    streams: Arc<OpenStreams>,
    caller: String,
}

impl OpenStreams {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot for one more stream of `caller`, or `None` at [`MAX_STREAMS_PER_CALLER`].
    pub fn open(self: &Arc<Self>, caller: String) -> Option<StreamSlot> {
        let mut counts = self.lock();
        let count = counts.entry(caller.clone()).or_default();
        if *count >= MAX_STREAMS_PER_CALLER {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            streams: Arc::clone(self),
            caller,
        })
    }

    /// Streams `caller` holds open.
    pub fn count(&self, caller: &str) -> usize {
        self.lock().get(caller).copied().unwrap_or(0)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut counts = self.streams.lock();
        if let Some(count) = counts.get_mut(&self.caller) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.caller);
            }
        }
    }
}

/// A slot for the caller's next stream, or 429.
fn open_slot(state: &Shared, credential: &Credential) -> ApiResult<StreamSlot> {
    state.open_streams.open(credential.key()).ok_or_else(|| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_live_streams",
            format!(
                "this session or token already has {MAX_STREAMS_PER_CALLER} live streams open (hint: close other dashboard tabs or streams and try again)"
            ),
        )
    })
}

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
    slot: StreamSlot,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(
        (subscription, shutdown, slot),
        |(mut subscription, mut shutdown, slot)| async move {
            let item = tokio::select! {
                biased;
                _ = stopped(&mut shutdown) => None,
                item = subscription.next() => item,
            }?;
            Some((Ok(item_event(item)), (subscription, shutdown, slot)))
        },
    )
}

/// Whether the cached run has this step: one of a job's listed steps, or its prepare log.
fn has_step(jobs: &[Job], job_id: &str, step_index: i64) -> bool {
    jobs.iter().filter(|job| job.job_id == job_id).any(|job| {
        step_index == PREPARE_STEP_INDEX || job.steps.iter().flatten().any(|step| step.step_index == step_index)
    })
}

pub async fn step(
    State(state): State<Shared>,
    Path((run_id, job_id, step_index)): Path<(String, String, i64)>,
    Query(query): Query<LiveQuery>,
    axum::Extension(credential): axum::Extension<Credential>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let after = start_line(query.after_line_count, &headers)?;
    find_run(&state, &run_id).await?;
    if !has_step(&state.cache.run_jobs(&run_id).await?, &job_id, step_index) {
        return Err(ApiError::not_found(format!(
            "step {step_index} of job {job_id} not found in run {run_id}"
        )));
    }
    let slot = open_slot(&state, &credential)?;
    let key = StepKey {
        run_id,
        job_id,
        step_index,
    };
    let subscription = state.live.subscribe(&key, after);
    Ok(Sse::new(step_stream(subscription, state.shutdown.clone(), slot))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
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

pub async fn events(
    State(state): State<Shared>,
    axum::Extension(credential): axum::Extension<Credential>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let slot = open_slot(&state, &credential)?;
    let receiver = state.live.subscribe_status();
    let stream = futures_util::stream::unfold(
        (receiver, state.shutdown.clone(), slot),
        |(mut receiver, mut shutdown, slot)| async move {
            let event = tokio::select! {
                biased;
                _ = stopped(&mut shutdown) => None,
                received = receiver.recv() => status_event(received),
            }?;
            Some((Ok(event), (receiver, shutdown, slot)))
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
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

    #[test]
    fn each_caller_holds_a_bounded_number_of_streams() {
        let streams = Arc::new(OpenStreams::default());
        let mut held: Vec<StreamSlot> = (0..MAX_STREAMS_PER_CALLER)
            .map(|_| streams.open("session:a".into()).expect("under the cap"))
            .collect();
        assert!(streams.open("session:a".into()).is_none(), "at the cap");
        // Another caller has its own count.
        let other = streams.open("token:b".into()).expect("another caller");
        held.pop();
        assert_eq!(streams.count("session:a"), MAX_STREAMS_PER_CALLER - 1);
        held.push(
            streams
                .open("session:a".into())
                .expect("a closed stream frees its place"),
        );
        drop((held, other));
        assert_eq!(streams.count("session:a"), 0);
        assert!(
            streams.lock().is_empty(),
            "no entry is kept for callers without streams"
        );
    }
}
