//! Orchestrator connections on `/ws/orchestrator` (`kici_engine::platform_protocol`):
//! `auth.request` with the orchestrator key within the auth timeout (else close 4002; a bad key
//! gets `auth.failure {reason}` and close 4001), then `source.register`, then the message loop:
//! `execution.status` snapshots are upserted into the cache, `run.event`s stored, `log.chunk`
//! lines relayed to live subscribers, `heartbeat`s answered, `response`s handed to the
//! request waiting for them. Silence longer than the silence timeout closes the socket (4004).
//!
//! A frame the Platform cannot store closes the socket (1011): the orchestrator reconnects and
//! replays its active runs, so nothing is lost by refusing it.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use kici_engine::platform_protocol::{
    OrchestratorFrame, PLATFORM_PROTOCOL_VERSION, PlatformFrame, RunSnapshot, close_code,
};
use tokio::sync::mpsc;

use crate::cache::{OrchestratorRecord, SnapshotOutcome};
use crate::connections::{Link, OUTBOX, Outbound};
use crate::live::{StatusEvent, StepKey};
use crate::state::Shared;
use kici_telemetry::os::now_ms;

/// Writing one frame to an orchestrator. A socket stuck longer is given up.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Ids (instance, run, job) longer than this are refused (`spec/dashboard.md` §3.2 bounds).
const MAX_ID_LENGTH: usize = 128;
/// Close codes from RFC 6455 used besides the protocol's own.
const GOING_AWAY: u16 = 1001;
const INTERNAL_ERROR: u16 = 1011;

type Refusal = (u16, String);

/// Serves one orchestrator socket until it closes.
pub async fn handle(socket: WebSocket, state: Shared) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Outbound>(OUTBOX);
    let writer = tokio::spawn(async move {
        while let Some(outbound) = rx.recv().await {
            let (frame, last) = match outbound {
                Outbound::Frame(frame) => (
                    Message::Text(serde_json::to_string(&frame).expect("frames serialize").into()),
                    false,
                ),
                Outbound::Close(code, reason) => (
                    Message::Close(Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    })),
                    true,
                ),
            };
            match tokio::time::timeout(SEND_TIMEOUT, sink.send(frame)).await {
                Ok(Ok(())) if !last => {}
                Ok(Ok(())) | Ok(Err(_)) => break,
                Err(_) => {
                    tracing::warn!(
                        timeoutMs = SEND_TIMEOUT.as_millis() as u64,
                        "orchestrator socket not writable; giving up on it"
                    );
                    break;
                }
            }
        }
    });
    let connection_id = uuid::Uuid::now_v7().to_string();
    let instance = match authenticate(&state, &mut stream, &tx, &connection_id).await {
        Ok(instance) => Some(instance),
        Err((code, reason)) => {
            tracing::warn!(connectionId = %connection_id, code, reason = %reason, "orchestrator connection refused");
            close(&tx, code, reason).await;
            None
        }
    };
    if let Some(instance_id) = instance {
        let ended = serve(&state, &mut stream, &tx, &instance_id, &connection_id).await;
        if let Err((code, reason)) = ended {
            tracing::warn!(orchestratorId = %instance_id, connectionId = %connection_id, code, reason = %reason, "closing orchestrator connection");
            close(&tx, code, reason).await;
        }
        disconnected(&state, &instance_id, &connection_id).await;
    }
    drop(tx);
    // The writer ends when its channel closes or the peer goes away; a panic in it is
    // reported by the runtime and leaves nothing to clean up.
    let _ = writer.await;
}

async fn close(tx: &mpsc::Sender<Outbound>, code: u16, reason: String) {
    // The writer may have stopped already (peer gone); the socket closes either way.
    let _ = tx.send(Outbound::Close(code, reason)).await;
}

async fn send(tx: &mpsc::Sender<Outbound>, frame: PlatformFrame) {
    // A closed channel means the connection is ending; the reader notices on its own.
    let _ = tx.send(Outbound::Frame(frame)).await;
}

/// The next frame: `None` when the socket closed, `Some(None)` for a control frame (a sign of
/// life without content).
async fn next_frame(stream: &mut SplitStream<WebSocket>) -> Option<Option<Result<OrchestratorFrame, String>>> {
    match stream.next().await? {
        Ok(Message::Text(text)) => Some(Some(
            serde_json::from_str(&text).map_err(|err| format!("invalid message: {err}")),
        )),
        Ok(Message::Close(_)) | Err(_) => None,
        Ok(_) => Some(None),
    }
}

/// The next content frame within `timeout`, skipping control frames; the Platform stopping
/// ends the wait.
async fn expect_frame(
    state: &Shared,
    stream: &mut SplitStream<WebSocket>,
    timeout: std::time::Duration,
    what: &str,
) -> Result<OrchestratorFrame, Refusal> {
    let mut shutdown = state.shutdown.clone();
    let wait = async {
        loop {
            match next_frame(stream).await {
                None => return Err((1000, format!("closed before {what}"))),
                Some(None) => continue,
                Some(Some(frame)) => return frame.map_err(|err| (close_code::INVALID_MESSAGE, err)),
            }
        }
    };
    tokio::select! {
        biased;
        _ = shutdown.wait_for(|stop| *stop) => Err((GOING_AWAY, "the Platform is shutting down".to_string())),
        frame = tokio::time::timeout(timeout, wait) => frame
            .map_err(|_| (close_code::AUTH_TIMEOUT, format!("no {what} within {}ms", timeout.as_millis())))?,
    }
}

/// `auth.request` then `source.register`; returns the instance id, now online.
async fn authenticate(
    state: &Shared,
    stream: &mut SplitStream<WebSocket>,
    tx: &mpsc::Sender<Outbound>,
    connection_id: &str,
) -> Result<String, Refusal> {
    let timeout = state.config.timeouts.auth;
    let refuse = |reason: String| async move {
        send(tx, PlatformFrame::AuthFailure { reason: reason.clone() }).await;
        Err((close_code::UNAUTHORIZED, reason))
    };
    let (token, protocol_version, supported_requests) =
        match expect_frame(state, stream, timeout, "auth.request").await? {
            OrchestratorFrame::AuthRequest {
                token,
                protocol_version,
                supported_dashboard_requests,
            } => (token, protocol_version, supported_dashboard_requests),
            _ => return refuse("the first frame must be auth.request".to_string()).await,
        };
    let Some(key) = &state.config.orchestrator_key else {
        return refuse(
            "this Platform accepts no orchestrator: KICI_PLATFORM_ORCHESTRATOR_KEY is not set on it".to_string(),
        )
        .await;
    };
    if !key.matches(token.trim()) {
        return refuse(
            "invalid orchestrator key (hint: KICI_PLATFORM_TOKEN must equal the Platform's KICI_PLATFORM_ORCHESTRATOR_KEY)"
                .to_string(),
        )
        .await;
    }
    if protocol_version != PLATFORM_PROTOCOL_VERSION {
        return refuse(format!(
            "protocol version {protocol_version} is not supported (this Platform speaks {PLATFORM_PROTOCOL_VERSION})"
        ))
        .await;
    }
    send(
        tx,
        PlatformFrame::AuthSuccess {
            connection_id: connection_id.to_string(),
        },
    )
    .await;
    let (instance_id, version, url) = match expect_frame(state, stream, timeout, "source.register").await? {
        OrchestratorFrame::Register {
            instance_id,
            version,
            url,
        } => (instance_id, version, url),
        _ => {
            return Err((
                close_code::INVALID_MESSAGE,
                "source.register must follow auth.success".to_string(),
            ));
        }
    };
    if instance_id.is_empty() || instance_id.len() > MAX_ID_LENGTH {
        return Err((
            close_code::INVALID_MESSAGE,
            format!("instanceId must be 1 to {MAX_ID_LENGTH} characters"),
        ));
    }
    let now = now_ms();
    let link = Link::new(
        connection_id.to_string(),
        version.clone(),
        tx.clone(),
        supported_requests,
    );
    if let Some(replaced) = state.connections.connect(&instance_id, &url, link, now) {
        tracing::info!(orchestratorId = %instance_id, connectionId = %replaced.connection_id, "older connection of the orchestrator replaced");
        // The old session may be gone already.
        let _ = replaced
            .outbox
            .try_send(Outbound::Close(1000, "replaced by a newer connection".to_string()));
    }
    let record = OrchestratorRecord {
        instance_id: instance_id.clone(),
        version: version.clone(),
        url: url.clone(),
        connected: true,
        last_seen_at: now,
    };
    if let Err(err) = state.cache.upsert_orchestrator(&record).await {
        tracing::error!(orchestratorId = %instance_id, error = %err, "cannot record the orchestrator");
        state.connections.disconnect(&instance_id, connection_id, now);
        return Err((
            INTERNAL_ERROR,
            "the Platform cannot record this orchestrator".to_string(),
        ));
    }
    tracing::info!(orchestratorId = %instance_id, connectionId = %connection_id, version = %version, url = %url, "orchestrator.connected");
    state.live.publish(StatusEvent::OrchestratorOnline {
        instance_id: instance_id.clone(),
    });
    Ok(instance_id)
}

/// The message loop of a registered orchestrator. `Ok` when the peer closed.
async fn serve(
    state: &Shared,
    stream: &mut SplitStream<WebSocket>,
    tx: &mpsc::Sender<Outbound>,
    instance_id: &str,
    connection_id: &str,
) -> Result<(), Refusal> {
    let silence = state.config.timeouts.silence;
    let mut shutdown = state.shutdown.clone();
    loop {
        let next = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => {
                return Err((GOING_AWAY, "the Platform is shutting down".to_string()));
            }
            next = tokio::time::timeout(silence, next_frame(stream)) => next,
        };
        let frame = match next {
            Err(_) => {
                return Err((
                    close_code::HEARTBEAT_TIMEOUT,
                    format!("nothing received for {}s", silence.as_secs()),
                ));
            }
            Ok(None) => return Ok(()),
            Ok(Some(None)) => {
                state.connections.seen(instance_id, connection_id, now_ms());
                continue;
            }
            Ok(Some(Some(frame))) => frame.map_err(|err| (close_code::INVALID_MESSAGE, err))?,
        };
        let now = now_ms();
        state.connections.seen(instance_id, connection_id, now);
        match frame {
            OrchestratorFrame::ExecutionStatus(snapshot) => store_snapshot(state, &snapshot, instance_id, now).await?,
            OrchestratorFrame::RunEvent(event) => {
                if event.event_id.is_empty() || event.event_id.len() > MAX_ID_LENGTH {
                    return Err((
                        close_code::INVALID_MESSAGE,
                        format!("run.event eventId must be 1 to {MAX_ID_LENGTH} characters"),
                    ));
                }
                state.cache.insert_event(&event).await.map_err(|err| {
                    tracing::error!(orchestratorId = %instance_id, runId = %event.run_id, error = %err, "cannot store a run event");
                    (INTERNAL_ERROR, "the Platform cannot store the run event".to_string())
                })?;
            }
            OrchestratorFrame::LogChunk {
                run_id,
                job_id,
                step_index,
                lines,
            } => {
                let key = StepKey {
                    run_id: run_id.to_string(),
                    job_id: job_id.to_string(),
                    step_index,
                };
                state.live.relay(&key, lines);
            }
            OrchestratorFrame::Heartbeat { .. } => {
                send(tx, PlatformFrame::Heartbeat { timestamp: now }).await;
                if let Err(err) = state.cache.orchestrator_seen(instance_id, true, now).await {
                    // Only the persisted last-seen time lags; the connection is fine.
                    tracing::warn!(orchestratorId = %instance_id, error = %err, "cannot record the heartbeat");
                }
            }
            OrchestratorFrame::Response {
                request_id,
                data,
                error,
            } => {
                let reply = match error {
                    Some(error) => Err(error),
                    None => Ok(data),
                };
                let delivered = state
                    .connections
                    .current_link(instance_id, connection_id)
                    .is_some_and(|link| link.answer(&request_id, reply));
                if !delivered {
                    tracing::debug!(orchestratorId = %instance_id, requestId = %request_id, "answer nobody waits for (too late?)");
                }
            }
            OrchestratorFrame::AuthRequest { .. } | OrchestratorFrame::Register { .. } => {
                return Err((close_code::INVALID_MESSAGE, "already authenticated".to_string()));
            }
        }
    }
}

/// Upserts a snapshot and tells status subscribers when the run's status changed.
async fn store_snapshot(state: &Shared, snapshot: &RunSnapshot, instance_id: &str, now: i64) -> Result<(), Refusal> {
    let run = &snapshot.run;
    if run.run_id.is_empty() || run.run_id.len() > MAX_ID_LENGTH {
        return Err((
            close_code::INVALID_MESSAGE,
            format!("execution.status runId must be 1 to {MAX_ID_LENGTH} characters"),
        ));
    }
    let outcome = state
        .cache
        .upsert_snapshot(snapshot, instance_id, now)
        .await
        .map_err(|err| {
            tracing::error!(orchestratorId = %instance_id, runId = %run.run_id, error = %err, "cannot store a run snapshot");
            (INTERNAL_ERROR, "the Platform cannot store the run snapshot".to_string())
        })?;
    match outcome {
        SnapshotOutcome::Stored { previous } if previous != Some(run.status) => {
            state.live.publish(StatusEvent::RunStatus {
                run_id: run.run_id.to_string(),
                status: run.status,
            });
        }
        SnapshotOutcome::Stored { .. } => {}
        SnapshotOutcome::Ignored { stored } => {
            tracing::debug!(orchestratorId = %instance_id, runId = %run.run_id, stored = %stored, incoming = %run.status, "older snapshot ignored");
        }
    }
    Ok(())
}

/// The connection ended: the instance goes offline unless a newer connection replaced it.
async fn disconnected(state: &Shared, instance_id: &str, connection_id: &str) {
    let now = now_ms();
    if !state.connections.disconnect(instance_id, connection_id, now) {
        return;
    }
    tracing::info!(orchestratorId = %instance_id, connectionId = %connection_id, "orchestrator.disconnected");
    if let Err(err) = state.cache.orchestrator_seen(instance_id, false, now).await {
        tracing::warn!(orchestratorId = %instance_id, error = %err, "cannot record the disconnection");
    }
    state.live.publish(StatusEvent::OrchestratorOffline {
        instance_id: instance_id.to_string(),
    });
}
