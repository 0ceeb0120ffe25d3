//! Agent connections on `/ws`: authentication (`auth.request` with a `kat_` token),
//! registration (labels checked against the token), the message loop, and what happens when
//! the connection drops (jobs not started go back to the queue; running ones wait for the
//! agent in `recovering` until the recovery window ends).

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use kici_engine::excerpt;
use kici_engine::ids::AgentId;
use kici_engine::labels::RESERVED_PREFIX;
use kici_engine::protocol::{AgentMessage, OrchestratorMessage, PROTOCOL_VERSION, Registration, close_code};
use kici_engine::status::{JobChange, JobEvent, JobStatus};
use kici_store::AgentRecord;
use tokio::sync::mpsc;

use crate::clock::now_ms;
use crate::config::AgentAuth;
use crate::hub::{AGENT_OUTBOX, ConnectedAgent, LastSeen, Outbound};
use crate::ids::{new_id, token_hash};
use crate::progress;
use crate::state::Shared;

/// `auth.request` must arrive this soon after the connection opens.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// `agent.register` must follow within this.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// Writing one frame to an agent. A socket stuck longer is given up, so that senders (the
/// dispatcher, cancellation) see a closed channel instead of waiting on a full one.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Labels an agent reports about itself; a token cannot restrict them.
const SELF_REPORTED: [&str; 3] = ["kici:os:", "kici:arch:", "kici:host:"];
/// How long a connection that a newcomer would share an identity with has to answer a ping
/// before it counts as dead and is replaced.
const LIVENESS_PROBE: Duration = Duration::from_secs(5);
/// The largest message accepted before the connection is authenticated and registered
/// (`auth.request` and `agent.register` are a few kilobytes).
pub const MAX_UNAUTHENTICATED_MESSAGE: usize = 64 * 1024;
/// Connections not yet registered, at most: each may hold a message buffer until it is.
const MAX_UNAUTHENTICATED: usize = 64;
static UNAUTHENTICATED: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_UNAUTHENTICATED);

pub async fn handle(socket: WebSocket, state: Shared) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Outbound>(AGENT_OUTBOX);
    let writer = tokio::spawn(async move {
        while let Some(outbound) = rx.recv().await {
            let frame = match outbound {
                Outbound::Message(message) => {
                    Message::Text(serde_json::to_string(&message).expect("messages serialize").into())
                }
                Outbound::Ping => Message::Ping(Vec::new().into()),
                Outbound::Close(code, reason) => {
                    // The peer may already be gone; the connection ends either way.
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame {
                            code,
                            reason: reason.into(),
                        })))
                        .await;
                    break;
                }
            };
            match tokio::time::timeout(SEND_TIMEOUT, sink.send(frame)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break,
                Err(_) => {
                    tracing::warn!(
                        timeoutMs = SEND_TIMEOUT.as_millis() as u64,
                        "agent socket not writable; giving up on it"
                    );
                    break;
                }
            }
        }
    });
    let connection_id = new_id();
    let last_seen = LastSeen::default();
    match session(&state, &mut stream, &tx, &connection_id, &last_seen).await {
        Ok(agent_id) => {
            agent_lost(&state, &agent_id, &connection_id).await;
        }
        Err((code, reason)) => {
            tracing::warn!(connectionId = %connection_id, code, reason = %reason, "agent connection refused");
            // The writer may have stopped already; the socket closes when both halves drop.
            let _ = tx.send(Outbound::Close(code, reason)).await;
        }
    }
    drop(tx);
    // The writer ends when its channel closes or the peer goes away.
    let _ = writer.await;
}

type Refusal = (u16, String);

/// The next message before registration, refused when over [`MAX_UNAUTHENTICATED_MESSAGE`].
async fn next_message(
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
) -> Option<Result<AgentMessage, String>> {
    while let Some(frame) = stream.next().await {
        match frame {
            Ok(Message::Text(text)) if text.len() > MAX_UNAUTHENTICATED_MESSAGE => {
                return Some(Err(format!(
                    "a {}-byte message before registration (at most {MAX_UNAUTHENTICATED_MESSAGE})",
                    text.len()
                )));
            }
            Ok(Message::Text(text)) => {
                return Some(
                    serde_json::from_str(&text)
                        .map_err(|err| format!("invalid message: {}", excerpt::json_error(&err))),
                );
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
    None
}

/// Like [`next_message`], but any other frame (a ping) also counts as a sign of life:
/// `Some(None)`.
async fn next_message_or_ping(
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
) -> Option<Option<Result<AgentMessage, String>>> {
    match stream.next().await? {
        Ok(Message::Text(text)) => {
            Some(Some(serde_json::from_str(&text).map_err(|err| {
                format!("invalid message: {}", excerpt::json_error(&err))
            })))
        }
        Ok(Message::Close(_)) | Err(_) => None,
        Ok(_) => Some(None),
    }
}

async fn send(tx: &mpsc::Sender<Outbound>, message: OrchestratorMessage) {
    // A closed channel means the connection is ending; the reader notices on its own.
    let _ = tx.send(Outbound::Message(message)).await;
}

/// Authenticates and registers the agent, then runs its message loop. Returns the agent id
/// when a registered connection ends.
async fn session(
    state: &Shared,
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
    tx: &mpsc::Sender<Outbound>,
    connection_id: &str,
    last_seen: &LastSeen,
) -> Result<AgentId, Refusal> {
    let mut token = None;
    // Held until registered: unauthenticated connections are few, whoever opens them.
    let Ok(unauthenticated) = UNAUTHENTICATED.try_acquire() else {
        return Err((1013, "too many connections authenticating; try again later".to_string()));
    };
    let first = tokio::time::timeout(AUTH_TIMEOUT, next_message(stream))
        .await
        .map_err(|_| (close_code::AUTH_TIMEOUT, "Auth timeout".to_string()))?
        .ok_or((1000, "closed before authenticating".to_string()))?
        .map_err(|e| (close_code::INVALID_MESSAGE, e))?;
    let registration = match (first, state.config.agent_auth) {
        (
            AgentMessage::AuthRequest {
                token: presented,
                protocol_version,
            },
            _,
        ) => {
            if protocol_version < PROTOCOL_VERSION {
                send(
                    tx,
                    OrchestratorMessage::AuthFailure {
                        reason: format!(
                            "protocol version {protocol_version} is not supported: this orchestrator speaks {PROTOCOL_VERSION} (hint: upgrade the agent to the orchestrator's build)"
                        ),
                    },
                )
                .await;
                return Err((close_code::PROTOCOL_ERROR, "unsupported protocol version".to_string()));
            }
            let found = state
                .store
                .use_agent_token(&token_hash(&presented), now_ms())
                .await
                .map_err(|e| (1011, format!("store error: {e}")))?;
            match (found, state.config.agent_auth) {
                (Some(found), _) => token = Some(found),
                (None, AgentAuth::None) => {}
                (None, AgentAuth::Token) => {
                    let reason =
                        "invalid, expired or revoked agent token (hint: create one with `kici-admin agent register`)"
                            .to_string();
                    send(tx, OrchestratorMessage::AuthFailure { reason: reason.clone() }).await;
                    return Err((close_code::AUTH_FAILED, reason));
                }
            }
            send(
                tx,
                OrchestratorMessage::AuthSuccess {
                    connection_id: connection_id.to_string(),
                },
            )
            .await;
            let next = tokio::time::timeout(REGISTER_TIMEOUT, next_message(stream))
                .await
                .map_err(|_| (close_code::AUTH_TIMEOUT, "Registration timeout".to_string()))?
                .ok_or((1000, "closed before registering".to_string()))?
                .map_err(|e| (close_code::INVALID_MESSAGE, e))?;
            match next {
                AgentMessage::Register(registration) => registration,
                _ => return Err((close_code::INVALID_MESSAGE, "expected agent.register".to_string())),
            }
        }
        (AgentMessage::Register(registration), AgentAuth::None) => registration,
        (_, _) => return Err((close_code::INVALID_MESSAGE, "expected auth.request".to_string())),
    };
    let mut registration = registration;
    // An agent without KICI_AGENT_ID is named after its (static) token's label, so
    // `kici-admin agent register --label builder-1` names the agent `builder-1`.
    if registration.id_generated
        && let Some(token) = token
            .as_ref()
            .filter(|t| t.agent_type != crate::scaler::EPHEMERAL_TOKEN_TYPE)
        && !token.label.is_empty()
        && token
            .label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        registration.agent_id = AgentId::from(token.label.clone());
    }
    check_labels(&registration, token.as_ref())?;
    check_binding(&registration, token.as_ref())?;
    let agent_id = registration.agent_id.clone();
    // Only the token the orchestrator issued to a spawned agent (or no authentication at all)
    // makes a connection that agent: another token cannot take over its labels and job.
    let may_be_spawned = match &token {
        Some(token) => token.agent_type == crate::scaler::EPHEMERAL_TOKEN_TYPE,
        None => true,
    };
    let token_id = token.as_ref().map(|t| t.token_id.clone());
    if let Some(token) = token
        .as_ref()
        .filter(|t| t.agent_type == crate::scaler::EPHEMERAL_TOKEN_TYPE)
        && !state
            .store
            .claim_single_use(&token.token_id, now_ms())
            .await
            .map_err(|e| (1011, format!("store error: {e}")))?
    {
        return Err((
            close_code::AUTH_FAILED,
            format!(
                "agent token `{}` was used already: a spawned agent's token serves one connection",
                token.label
            ),
        ));
    }
    // A static token serves the host it first registered from (another host needs its own
    // token), so a copied token cannot bring jobs pinned to that host elsewhere.
    if let Some(token) = token
        .as_ref()
        .filter(|t| t.agent_type != crate::scaler::EPHEMERAL_TOKEN_TYPE)
    {
        let hosts = state
            .store
            .hosts_of_token(&token.token_id)
            .await
            .map_err(|e| (1011, format!("store error: {e}")))?;
        if !hosts.is_empty() && !hosts.contains(&registration.hostname) {
            return Err((
                close_code::AUTH_FAILED,
                format!(
                    "agent token `{}` belongs to host {}; register another token for host `{}` (kici-admin agent register)",
                    token.label,
                    hosts.join(", "),
                    kici_engine::excerpt::excerpt(&registration.hostname)
                ),
            ));
        }
    }
    claim_identity(
        state,
        &agent_id,
        token_id.as_deref(),
        token.as_ref().map(|t| t.label.as_str()),
    )
    .await?;
    register(
        state,
        &registration,
        token_id,
        may_be_spawned,
        tx,
        connection_id,
        last_seen,
    )
    .await?;
    drop(unauthenticated);
    let silence = state.config.agent_silence_timeout();
    loop {
        let frame = tokio::time::timeout(silence, next_message_or_ping(stream)).await;
        if matches!(frame, Ok(Some(_))) {
            last_seen.touch(now_ms());
        }
        let message = match frame {
            Err(_) => {
                tracing::warn!(agentId = %agent_id, silentForMs = silence.as_millis() as u64, "agent silent for too long; closing its connection");
                let _ = tx
                    .send(Outbound::Close(
                        close_code::HEARTBEAT_TIMEOUT,
                        "heartbeat timeout".into(),
                    ))
                    .await;
                return Ok(agent_id);
            }
            Ok(None) => return Ok(agent_id),
            Ok(Some(None)) => continue,
            Ok(Some(Some(message))) => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                send(
                    tx,
                    OrchestratorMessage::Error {
                        code: "INVALID_MESSAGE".into(),
                        message: error.clone(),
                    },
                )
                .await;
                // Registered agents are cleaned up like any disconnect.
                let _ = tx.send(Outbound::Close(close_code::INVALID_MESSAGE, error)).await;
                return Ok(agent_id);
            }
        };
        match progress::apply(state, &agent_id, message).await {
            Ok(Some(ack)) => send(tx, ack).await,
            Ok(None) => {}
            Err(err) => {
                // Later messages must not be acknowledged past this one: reconnecting makes the
                // agent replay everything unacknowledged, in order.
                tracing::error!(agentId = %agent_id, error = %err, detail = ?err, "cannot apply an agent message; closing the connection so the agent replays it");
                let _ = tx
                    .send(Outbound::Close(
                        close_code::INTERNAL_ERROR,
                        "message not recorded; replay".into(),
                    ))
                    .await;
                return Ok(agent_id);
            }
        }
    }
}

fn check_labels(registration: &Registration, token: Option<&kici_store::AgentToken>) -> Result<(), Refusal> {
    // The automatic labels describe the agent's own platform, architecture and host, and only
    // those: an agent cannot claim `kici:host:` of another machine to take its pinned jobs.
    let own = kici_engine::labels::system_labels(&registration.platform, &registration.arch, &registration.hostname);
    for label in &registration.labels {
        // A builder offers to install dependencies: a role, not a claim about the machine.
        if label == kici_engine::labels::BUILDER_LABEL {
            continue;
        }
        if SELF_REPORTED.iter().any(|p| label.starts_with(p)) {
            if !own.contains(label) {
                return Err((
                    close_code::INVALID_MESSAGE,
                    format!(
                        "label `{}` does not describe this agent (its own are {})",
                        kici_engine::excerpt::excerpt(label),
                        own.join(", ")
                    ),
                ));
            }
            continue;
        }
        if label.starts_with(RESERVED_PREFIX) {
            return Err((
                close_code::INVALID_MESSAGE,
                format!("label `{label}` uses the reserved `kici:` prefix"),
            ));
        }
        if let Some(token) = token
            && !token.labels.is_empty()
            && !token.labels.contains(label)
        {
            return Err((
                close_code::INVALID_MESSAGE,
                format!(
                    "label `{label}` is not allowed by agent token `{}` (allowed: {})",
                    token.label,
                    token.labels.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// A token issued to a spawned agent serves that agent only.
fn check_binding(registration: &Registration, token: Option<&kici_store::AgentToken>) -> Result<(), Refusal> {
    match token {
        Some(token)
            if token.agent_type == crate::scaler::EPHEMERAL_TOKEN_TYPE
                && token.label != crate::scaler::ephemeral_token_label(&registration.agent_id) =>
        {
            Err((
                close_code::AUTH_FAILED,
                format!(
                    "agent token `{}` was issued to another spawned agent and cannot register `{}`",
                    token.label, registration.agent_id
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// A token and an agent id serve one live connection at a time. A connection the newcomer
/// would share either with is probed: if it answers, the newcomer is refused (a second agent
/// with a copied token, or an impostor, cannot push the first one out); if it does not, it was
/// a dead connection not yet noticed (a network drop) and is replaced.
async fn claim_identity(
    state: &Shared,
    agent_id: &AgentId,
    token_id: Option<&str>,
    token_label: Option<&str>,
) -> Result<(), Refusal> {
    for existing in state.hub.conflicts(agent_id, token_id) {
        if alive(&existing).await {
            let reason = match token_label {
                Some(label) if existing.agent_id != agent_id => format!(
                    "agent token `{label}` is in use by connected agent `{}` (hint: give each agent its own token with `kici-admin agent register`)",
                    existing.agent_id
                ),
                _ => format!(
                    "agent `{agent_id}` is already connected (hint: give each agent its own KICI_AGENT_ID, or stop the other one)"
                ),
            };
            tracing::warn!(agentId = %agent_id, connectedAgentId = %existing.agent_id, "agent refused: its identity is in use by a live connection");
            return Err((close_code::AUTH_FAILED, reason));
        }
        tracing::warn!(agentId = %existing.agent_id, "replacing a connection that no longer answers");
        let _ = existing
            .tx
            .send(Outbound::Close(1000, "replaced by a new connection".into()))
            .await;
        agent_lost(state, &existing.agent_id, &existing.connection_id).await;
    }
    Ok(())
}

/// Whether the connection answers a ping (or sends anything) within [`LIVENESS_PROBE`].
async fn alive(agent: &ConnectedAgent) -> bool {
    let asked = now_ms();
    if agent.tx.send(Outbound::Ping).await.is_err() {
        return false;
    }
    let deadline = tokio::time::Instant::now() + LIVENESS_PROBE;
    while tokio::time::Instant::now() < deadline {
        if agent.last_seen.get() >= asked {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn register(
    state: &Shared,
    registration: &Registration,
    token_id: Option<String>,
    may_be_spawned: bool,
    tx: &mpsc::Sender<Outbound>,
    connection_id: &str,
    last_seen: &LastSeen,
) -> Result<(), Refusal> {
    let now = now_ms();
    let store_error = |e: kici_store::StoreError| (1011, format!("store error: {e}"));
    // A spawned agent gets its scaler's automatic labels here: it may not claim `kici:`
    // labels itself, and the orchestrator knows which scaler started it.
    let spawned = may_be_spawned
        .then(|| state.scaler.registered(&registration.agent_id))
        .flatten();
    let mut labels = registration.labels.clone();
    if let Some(spawned) = &spawned {
        for label in &spawned.auto_labels {
            if !labels.contains(label) {
                labels.push(label.clone());
            }
        }
    }
    state
        .store
        .upsert_agent(&AgentRecord {
            agent_id: registration.agent_id.clone(),
            token_id: token_id.clone(),
            labels: labels.clone(),
            hostname: registration.hostname.clone(),
            platform: registration.platform.clone(),
            arch: registration.arch.clone(),
            version: registration.version.clone(),
            build_info: Some(registration.build_info.clone()),
            connected: true,
            first_seen_at: now,
            last_seen_at: now,
        })
        .await
        .map_err(store_error)?;
    last_seen.touch(now);
    state.hub.register(ConnectedAgent {
        jobs_sent: 0,
        agent_id: registration.agent_id.clone(),
        connection_id: connection_id.to_string(),
        token_id,
        labels: labels.clone(),
        busy_job: None,
        draining: false,
        bound_job: spawned.as_ref().and_then(|s| s.bound_job.clone()),
        single_use: spawned.is_some(),
        tx: tx.clone(),
        last_seen: last_seen.clone(),
    });
    kici_telemetry::metrics::orchestrator::set_agents_active(state.hub.all().len());
    send(
        tx,
        OrchestratorMessage::RegisterAck {
            agent_id: registration.agent_id.clone(),
            labels: labels.clone(),
        },
    )
    .await;
    tracing::info!(agentId = %registration.agent_id, labels = %labels.join(","), sdkBundleHash = %registration.build_info.sdk_bundle_hash, "agent registered");
    reclaim(state, registration).await.map_err(store_error)?;
    state.wake_dispatcher();
    Ok(())
}

/// After a reconnect: jobs the agent still runs are its again; jobs it lost (it restarted)
/// fail.
async fn reclaim(state: &Shared, registration: &Registration) -> Result<(), kici_store::StoreError> {
    let now = now_ms();
    let agent_id = &registration.agent_id;
    let entries = state.store.entries_of_agent(agent_id).await?;
    // A job it still runs that is no longer its own would run twice: it is told to stop.
    if let Some(agent) = state.hub.get(agent_id) {
        for gone in registration
            .in_flight_jobs
            .iter()
            .filter(|j| !entries.iter().any(|e| e.job_id == j.job_id))
        {
            tracing::warn!(agentId = %agent_id, jobId = %excerpt::excerpt(&gone.job_id), "agent came back with a job it no longer holds; told to stop it");
            let cancel = OrchestratorMessage::JobCancel {
                run_id: gone.run_id.clone(),
                job_id: gone.job_id.clone(),
                reason: kici_engine::failure::JOB_NO_LONGER_YOURS.to_string(),
                force: true,
            };
            // The agent may be gone again; it then names the job at its next registration.
            let _ = agent.tx.send(Outbound::Message(cancel)).await;
        }
    }
    for entry in entries {
        let running = registration.in_flight_jobs.iter().any(|j| j.job_id == entry.job_id);
        if running {
            state.store.reclaim_entry(&entry.job_id, agent_id).await?;
            // A job dispatched but not started yet starts here; the run starts with it.
            if state
                .store
                .transition_job(&entry.job_id, &JobChange::on(JobEvent::Start), now)
                .await?
            {
                state.store.mark_run_running(&entry.run_id, now).await?;
            }
            state.hub.set_busy(agent_id, Some(&entry.job_id));
            tracing::info!(agentId = %agent_id, jobId = %entry.job_id, "agent reconnected; job reclaimed");
        } else {
            // The job may have finished while the agent was away: its outbox replays the final
            // status right after registering. Only a job still unfinished after that gets failed.
            let timer_state = state.clone();
            let agent_id = agent_id.clone();
            state.background.spawn_after(state.config.dispatch_ack_timeout, async move {
                if let Err(err) = fail_if_unfinished(&timer_state, &agent_id, &entry).await {
                    tracing::error!(agentId = %agent_id, jobId = %entry.job_id, error = %err, "cannot fail a job its agent lost");
                }
            });
        }
    }
    Ok(())
}

async fn fail_if_unfinished(
    state: &Shared,
    agent_id: &AgentId,
    entry: &kici_store::QueueEntry,
) -> Result<(), kici_store::StoreError> {
    let error = kici_engine::failure::agent_restarted_without_job(agent_id);
    progress::settle_unclaimed(state, entry, &error).await
}

/// The connection ended: the agent's jobs wait for it to come back, running or not: one it
/// was sent may have reached it even though its acknowledgement did not reach us, and sending
/// it to another agent could run it twice.
async fn agent_lost(state: &Shared, agent_id: &AgentId, connection_id: &str) {
    if state.hub.unregister(agent_id, connection_id).is_none() {
        return;
    }
    let now = now_ms();
    kici_telemetry::metrics::orchestrator::set_agents_active(state.hub.all().len());
    tracing::warn!(agentId = %agent_id, "agent disconnected");
    let result: Result<(), kici_store::StoreError> = async {
        state.store.set_agent_connected(agent_id, false, now).await?;
        let deadline = now + state.config.recovery_window().as_millis() as i64;
        for job_id in state.store.recover_agent_entries(agent_id, deadline).await? {
            let Some(job) = state.store.get_job(&job_id).await? else { continue };
            // A job not started yet stays `queued`; its queue entry waits.
            if job.job.status != JobStatus::Queued {
                state.store.transition_job(&job_id, &JobChange::on(JobEvent::Recover), now).await?;
            }
            tracing::warn!(agentId = %agent_id, jobId = %job_id, runId = %job.job.run_id, "job recovering: waiting for the agent to reconnect");
        }
        Ok(())
    }
    .await;
    if let Err(err) = result {
        tracing::error!(agentId = %agent_id, error = %err, "cannot record the agent's disconnect");
    }
    state.wake_dispatcher();
}
