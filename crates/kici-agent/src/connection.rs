//! The WebSocket client task: it owns the socket and the [`Outbox`]. It dials the orchestrator,
//! authenticates (`auth.request` → `auth.success`), registers (`agent.register` →
//! `register.ack`), replays unacknowledged messages, sends connection heartbeats, and
//! reconnects forever with jittered exponential backoff (to the next orchestrator URL when it
//! was given several), except after an authentication
//! failure (`auth.failure` or close code 4010), which ends the task with an error.
//!
//! Other tasks talk to it only through messages: [`Command`]s in, orchestrator messages out.
//! It does not interpret jobs: `job.dispatch` and `job.cancel` are forwarded to the agent core;
//! only `ack` is handled here (it prunes the outbox).

use std::future::Future;
use std::time::Duration;

use futures_util::SinkExt;
use futures_util::StreamExt;
use kici_engine::ids::AgentId;
use kici_engine::protocol::{
    AgentMessage, InFlightJob, MAX_MESSAGE_BYTES, OrchestratorMessage, PROTOCOL_VERSION, Registration, close_code,
};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::{debug, info, warn};

use crate::outbox::Outbox;
use crate::timestamp_ms;

/// Dialing (TCP + WebSocket handshake) must finish within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// `auth.success` must arrive this long after `auth.request`.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// `register.ack` must arrive this long after `agent.register`.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// Writing one frame (or a replay batch) to the socket.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Sending the close frame on shutdown.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// With no frame at all from the orchestrator for this many heartbeat intervals (each tick
/// also sends a WebSocket ping), the connection is considered dead.
const LIVENESS_INTERVALS: u32 = 3;
/// Reconnect backoff ceiling.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the rest of the agent asks of the connection.
#[derive(Debug)]
pub enum Command {
    /// A message for the orchestrator. Sequenced messages go through the outbox (kept until
    /// acknowledged, replayed after a reconnect); the others are sent only when registered
    /// and dropped otherwise.
    Send(AgentMessage),
    /// Wait up to `flush` for the outbox to be acknowledged, close with code 1000, and stop.
    Close { flush: Duration },
}

/// Why the connection task stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("the orchestrator rejected the agent's credentials: {reason} (hint: check KICI_AGENT_TOKEN)")]
    AuthFailed { reason: String },
}

/// What the connection needs to know about the agent.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// Tried in turn: a lost connection is tried again on the next (several orchestrators
    /// sharing a database, or one behind a load balancer: a single URL).
    pub urls: Vec<String>,
    pub token: String,
    pub agent_id: AgentId,
    pub agent_id_generated: bool,
    pub labels: Vec<String>,
    pub hostname: String,
    pub heartbeat_interval: Duration,
}

/// The connection task's state; run it with [`Connection::run`].
#[derive(Debug)]
pub struct Connection {
    pub settings: ConnectionSettings,
    pub commands: mpsc::Receiver<Command>,
    /// Orchestrator messages for the agent core (everything except `ack`).
    pub incoming: mpsc::Sender<OrchestratorMessage>,
    /// True while registered; read by `/ready`.
    pub registered: watch::Sender<bool>,
    /// The job running right now, reported in `agent.register`.
    pub in_flight: watch::Receiver<Option<InFlightJob>>,
    pub outbox: Outbox,
    /// Which of `settings.urls` the next session dials (counted on; taken modulo their number).
    pub next_url: usize,
}

/// A close was requested (or every sender is gone) while not registered.
struct Closing;

/// What became of a message handed to [`Connection::queue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queued {
    /// In the outbox until acknowledged.
    Stored,
    /// A log chunk the full outbox had no room for.
    Refused,
    /// Not sequenced: sent now or never.
    Unsequenced,
}

enum SessionEnd {
    /// Stop: a close was requested.
    Closed,
    /// Reconnect.
    Lost(String),
    /// Stop for good.
    AuthFailed(String),
}

enum Frame {
    Message(OrchestratorMessage),
    Closed { code: Option<u16>, reason: String },
    Error(String),
}

/// `min(1000 × 1.5^attempt × (1 + jitter × 0.5), 60000)` ms, `jitter` in `[0, 1]`.
pub fn backoff_delay(attempt: u32, jitter: f64) -> Duration {
    let factor = 1.5f64.powi(attempt.min(64) as i32);
    let millis = 1000.0 * factor * (1.0 + jitter.clamp(0.0, 1.0) * 0.5);
    Duration::from_millis(millis.min(MAX_BACKOFF.as_millis() as f64) as u64)
}

fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    // Without OS randomness the backoff loses its jitter, nothing else.
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

impl Connection {
    /// Connects, and reconnects, until a [`Command::Close`] (Ok) or an authentication failure.
    pub async fn run(mut self) -> Result<(), ConnectionError> {
        let mut attempt: u32 = 0;
        loop {
            let end = self.session(&mut attempt).await;
            self.set_registered(false);
            match end {
                SessionEnd::Closed => return Ok(()),
                SessionEnd::AuthFailed(reason) => return Err(ConnectionError::AuthFailed { reason }),
                SessionEnd::Lost(reason) => {
                    self.next_url = self.next_url.wrapping_add(1);
                    let delay = backoff_delay(attempt, random_unit());
                    warn!(
                        agentId = %self.settings.agent_id,
                        error = %reason,
                        attempt,
                        delayMs = delay.as_millis() as u64,
                        unacked = self.outbox.len(),
                        "agent.reconnecting"
                    );
                    attempt = attempt.saturating_add(1);
                    if self.pump(tokio::time::sleep(delay)).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Publishes whether the agent is registered: to `/ready` and to
    /// `kici_agent_connection_status`.
    fn set_registered(&self, registered: bool) {
        self.registered.send_replace(registered);
        kici_telemetry::metrics::agent::set_connected(registered);
    }

    /// Awaits `future` while still taking commands: sequenced messages are queued in the
    /// outbox, the rest dropped. Err when a close was requested.
    async fn pump<F: Future>(&mut self, future: F) -> Result<F::Output, Closing> {
        tokio::pin!(future);
        loop {
            tokio::select! {
                output = &mut future => return Ok(output),
                command = self.commands.recv() => match command {
                    Some(Command::Send(message)) => {
                        self.queue(message);
                    }
                    Some(Command::Close { .. }) | None => return Err(Closing),
                },
            }
        }
    }

    /// Puts a sequenced message in the outbox.
    fn queue(&mut self, message: AgentMessage) -> Queued {
        let kind = message_type(&message);
        match self.outbox.push(message) {
            Some(pushed) => {
                if pushed.dropped_log_chunks > 0 {
                    kici_telemetry::metrics::agent::log_lines_dropped(pushed.dropped_log_lines as u64);
                    warn!(
                        agentId = %self.settings.agent_id,
                        dropped = pushed.dropped_log_chunks,
                        droppedLines = pushed.dropped_log_lines,
                        "agent.outbox.overflow: dropped the oldest log chunks"
                    );
                }
                if pushed.stored { Queued::Stored } else { Queued::Refused }
            }
            None => {
                if !*self.registered.borrow() {
                    debug!(messageType = kind, "not connected; message dropped");
                }
                Queued::Unsequenced
            }
        }
    }

    async fn session(&mut self, attempt: &mut u32) -> SessionEnd {
        let url = self.settings.urls[self.next_url % self.settings.urls.len()].clone();
        let mut ws = match self
            .pump(tokio::time::timeout(
                CONNECT_TIMEOUT,
                tokio_tungstenite::connect_async_with_config(
                    url,
                    Some(
                        WebSocketConfig::default()
                            .max_message_size(Some(MAX_MESSAGE_BYTES))
                            .max_frame_size(Some(MAX_MESSAGE_BYTES)),
                    ),
                    false,
                ),
            ))
            .await
        {
            Err(Closing) => return SessionEnd::Closed,
            Ok(Err(_)) => {
                return SessionEnd::Lost(format!("connecting timed out after {}s", CONNECT_TIMEOUT.as_secs()));
            }
            Ok(Ok(Err(err))) => return SessionEnd::Lost(format!("connecting failed: {err}")),
            Ok(Ok(Ok((ws, _response)))) => ws,
        };
        let auth = AgentMessage::AuthRequest {
            token: self.settings.token.clone(),
            protocol_version: PROTOCOL_VERSION,
        };
        if let Err(err) = send(&mut ws, &auth).await {
            return SessionEnd::Lost(err);
        }
        match self.pump(tokio::time::timeout(AUTH_TIMEOUT, next_frame(&mut ws))).await {
            Err(Closing) => return close(ws).await,
            Ok(Err(_)) => return SessionEnd::Lost(format!("no auth.success within {}s", AUTH_TIMEOUT.as_secs())),
            Ok(Ok(Frame::Message(OrchestratorMessage::AuthSuccess { connection_id }))) => {
                debug!(connectionId = %connection_id, "authenticated");
            }
            Ok(Ok(Frame::Message(OrchestratorMessage::AuthFailure { reason }))) => {
                return SessionEnd::AuthFailed(reason);
            }
            Ok(Ok(Frame::Closed { code, reason })) if code == Some(close_code::AUTH_FAILED) => {
                return SessionEnd::AuthFailed(reason);
            }
            Ok(Ok(Frame::Closed { code, reason })) => {
                return SessionEnd::Lost(format!("closed during authentication ({code:?}): {reason}"));
            }
            Ok(Ok(Frame::Error(err))) => return SessionEnd::Lost(err),
            Ok(Ok(Frame::Message(other))) => {
                return SessionEnd::Lost(format!("expected auth.success, got {}", type_name(&other)));
            }
        }
        let registration = Registration {
            agent_id: self.settings.agent_id.clone(),
            labels: self.settings.labels.clone(),
            platform: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
            hostname: self.settings.hostname.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            build_info: kici_sdk::build_info(),
            in_flight_jobs: self.in_flight.borrow().iter().cloned().collect(),
            id_generated: self.settings.agent_id_generated,
        };
        if let Err(err) = send(&mut ws, &AgentMessage::Register(Box::new(registration))).await {
            return SessionEnd::Lost(err);
        }
        let deadline = Instant::now() + REGISTER_TIMEOUT;
        loop {
            match self.pump(tokio::time::timeout_at(deadline, next_frame(&mut ws))).await {
                Err(Closing) => return close(ws).await,
                Ok(Err(_)) => {
                    return SessionEnd::Lost(format!("no register.ack within {}s", REGISTER_TIMEOUT.as_secs()));
                }
                Ok(Ok(Frame::Message(OrchestratorMessage::RegisterAck { agent_id, .. }))) => {
                    // `/ready` turns 200 before the line is logged, so log readers can rely on it.
                    self.set_registered(true);
                    info!(agentId = %agent_id, "agent.registered");
                    break;
                }
                Ok(Ok(Frame::Message(message))) => {
                    if let Err(end) = self.handle(message).await {
                        return end;
                    }
                }
                Ok(Ok(Frame::Closed { code, reason })) if code == Some(close_code::AUTH_FAILED) => {
                    return SessionEnd::AuthFailed(reason);
                }
                Ok(Ok(Frame::Closed { code, reason })) => {
                    return SessionEnd::Lost(format!("closed during registration ({code:?}): {reason}"));
                }
                Ok(Ok(Frame::Error(err))) => return SessionEnd::Lost(err),
            }
        }
        *attempt = 0;
        if let Err(err) = self.replay(&mut ws).await {
            return SessionEnd::Lost(err);
        }
        self.registered_loop(ws).await
    }

    /// Sends every unacknowledged message, oldest first.
    async fn replay(&mut self, ws: &mut Socket) -> Result<(), String> {
        if self.outbox.is_empty() {
            return Ok(());
        }
        info!(agentId = %self.settings.agent_id, count = self.outbox.len(), "agent.outbox.replay");
        let frames: Vec<String> = self.outbox.pending().map(encode).collect();
        let write = async {
            for frame in frames {
                ws.feed(Message::text(frame)).await?;
            }
            ws.flush().await
        };
        match tokio::time::timeout(SEND_TIMEOUT, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(format!("replaying the outbox failed: {err}")),
            Err(_) => Err(format!(
                "replaying the outbox timed out after {}s",
                SEND_TIMEOUT.as_secs()
            )),
        }
    }

    async fn registered_loop(&mut self, mut ws: Socket) -> SessionEnd {
        let period = self.settings.heartbeat_interval;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let liveness = period * LIVENESS_INTERVALS;
        let mut last_seen = Instant::now();
        let mut closing: Option<Instant> = None;
        loop {
            let close_at = closing.unwrap_or_else(|| Instant::now() + liveness);
            tokio::select! {
                frame = next_frame(&mut ws) => {
                    last_seen = Instant::now();
                    match frame {
                        Frame::Message(message) => {
                            if let Err(end) = self.handle(message).await {
                                return end;
                            }
                            if closing.is_some() && self.outbox.is_empty() {
                                return close(ws).await;
                            }
                        }
                        Frame::Closed { code, reason } if code == Some(close_code::AUTH_FAILED) => {
                            return SessionEnd::AuthFailed(reason);
                        }
                        Frame::Closed { code, reason } => {
                            return SessionEnd::Lost(format!("closed by the orchestrator ({code:?}): {reason}"));
                        }
                        Frame::Error(err) => return SessionEnd::Lost(err),
                    }
                }
                command = self.commands.recv(), if closing.is_none() => match command {
                    Some(Command::Send(message)) => {
                        let frame = encode(&message);
                        if self.queue(message) != Queued::Refused
                            && let Err(err) = send_frame(&mut ws, Message::text(frame)).await
                        {
                            return SessionEnd::Lost(err);
                        }
                    }
                    Some(Command::Close { flush }) if !self.outbox.is_empty() => {
                        closing = Some(Instant::now() + flush);
                    }
                    Some(Command::Close { .. }) | None => return close(ws).await,
                },
                _ = heartbeat.tick(), if closing.is_none() => {
                    let beat = AgentMessage::Heartbeat { timestamp: timestamp_ms() };
                    if let Err(err) = send(&mut ws, &beat).await {
                        return SessionEnd::Lost(err);
                    }
                    if let Err(err) = send_frame(&mut ws, Message::Ping(Vec::new().into())).await {
                        return SessionEnd::Lost(err);
                    }
                    if last_seen.elapsed() > liveness {
                        return SessionEnd::Lost(format!(
                            "nothing received from the orchestrator for {}s",
                            last_seen.elapsed().as_secs()
                        ));
                    }
                }
                _ = tokio::time::sleep_until(close_at), if closing.is_some() => {
                    warn!(
                        agentId = %self.settings.agent_id,
                        unacked = self.outbox.len(),
                        "closing with unacknowledged messages"
                    );
                    return close(ws).await;
                }
            }
        }
    }

    /// Handles one orchestrator message other than the handshake replies.
    async fn handle(&mut self, message: OrchestratorMessage) -> Result<(), SessionEnd> {
        match message {
            OrchestratorMessage::Ack { job_id, seq } => {
                let removed = self.outbox.ack(&job_id, seq);
                debug!(jobId = %job_id, seq, removed, "ack");
                Ok(())
            }
            OrchestratorMessage::Error { code, message } => {
                warn!(agentId = %self.settings.agent_id, code = %code, error = %message, "orchestrator reported an error");
                Ok(())
            }
            OrchestratorMessage::AuthFailure { reason } => Err(SessionEnd::AuthFailed(reason)),
            OrchestratorMessage::AuthSuccess { .. } | OrchestratorMessage::RegisterAck { .. } => {
                debug!(
                    messageType = type_name(&message),
                    "ignored a repeated handshake message"
                );
                Ok(())
            }
            OrchestratorMessage::JobDispatch(mut dispatch) => {
                // The orchestrator's own URLs in it are reached the way this session is.
                let url = &self.settings.urls[self.next_url % self.settings.urls.len()];
                dispatch.resolve_orchestrator_urls(url);
                let message = OrchestratorMessage::JobDispatch(dispatch);
                self.incoming.send(message).await.map_err(|_| SessionEnd::Closed)
            }
            OrchestratorMessage::JobCancel { .. } | OrchestratorMessage::JobConcurrencyAck { .. } => {
                // The core only goes away on shutdown, which closes this task too.
                self.incoming.send(message).await.map_err(|_| SessionEnd::Closed)
            }
        }
    }
}

async fn close(mut ws: Socket) -> SessionEnd {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "agent shutting down".into(),
    };
    // The socket is being dropped either way; a failed close only means the peer is gone.
    if let Ok(Err(err)) = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(Some(frame))).await {
        debug!(error = %err, "close frame not delivered");
    }
    SessionEnd::Closed
}

/// The next orchestrator message (pings, pongs and unreadable frames are skipped).
/// Cancel-safe: a frame is either fully handled or not read.
async fn next_frame(ws: &mut Socket) -> Frame {
    loop {
        match ws.next().await {
            None => {
                return Frame::Closed {
                    code: None,
                    reason: "connection ended".to_string(),
                };
            }
            Some(Err(err)) => return Frame::Error(format!("connection error: {err}")),
            Some(Ok(Message::Text(text))) => match serde_json::from_str::<OrchestratorMessage>(text.as_str()) {
                Ok(message) => return Frame::Message(message),
                Err(err) => {
                    // Unknown types from a newer orchestrator are not fatal.
                    warn!(error = %err, frame = %truncate(text.as_str(), 200), "unreadable orchestrator message");
                }
            },
            Some(Ok(Message::Close(frame))) => {
                return Frame::Closed {
                    code: frame.as_ref().map(|f| u16::from(f.code)),
                    reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                };
            }
            Some(Ok(_)) => {}
        }
    }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((index, _)) => &text[..index],
        None => text,
    }
}

fn encode(message: &AgentMessage) -> String {
    serde_json::to_string(message).expect("agent messages serialize")
}

async fn send(ws: &mut Socket, message: &AgentMessage) -> Result<(), String> {
    send_frame(ws, Message::text(encode(message))).await
}

async fn send_frame(ws: &mut Socket, frame: Message) -> Result<(), String> {
    match tokio::time::timeout(SEND_TIMEOUT, ws.send(frame)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(format!("sending failed: {err}")),
        Err(_) => Err(format!("sending timed out after {}s", SEND_TIMEOUT.as_secs())),
    }
}

fn message_type(message: &AgentMessage) -> &'static str {
    match message {
        AgentMessage::AuthRequest { .. } => "auth.request",
        AgentMessage::Register(_) => "agent.register",
        AgentMessage::Heartbeat { .. } => "heartbeat",
        AgentMessage::JobHeartbeat { .. } => "job.heartbeat",
        AgentMessage::Status { .. } => "agent.status",
        AgentMessage::JobAck { .. } => "job.ack",
        AgentMessage::JobReject { .. } => "job.reject",
        AgentMessage::JobStatus(_) => "job.status",
        AgentMessage::StepStatus(_) => "step.status",
        AgentMessage::LogChunk(_) => "log.chunk",
        AgentMessage::EventEmit(_) => "event.emit",
        AgentMessage::JobConcurrencyReport { .. } => "job.concurrency.report",
    }
}

fn type_name(message: &OrchestratorMessage) -> &'static str {
    match message {
        OrchestratorMessage::AuthSuccess { .. } => "auth.success",
        OrchestratorMessage::AuthFailure { .. } => "auth.failure",
        OrchestratorMessage::RegisterAck { .. } => "register.ack",
        OrchestratorMessage::JobDispatch(_) => "job.dispatch",
        OrchestratorMessage::JobCancel { .. } => "job.cancel",
        OrchestratorMessage::JobConcurrencyAck { .. } => "job.concurrency.ack",
        OrchestratorMessage::Ack { .. } => "ack",
        OrchestratorMessage::Error { .. } => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_by_half_with_jitter_and_caps_at_a_minute() {
        let ms = |attempt, jitter| backoff_delay(attempt, jitter).as_millis();
        assert_eq!(ms(0, 0.0), 1000);
        assert_eq!(ms(0, 1.0), 1500);
        assert_eq!(ms(1, 0.0), 1500);
        assert_eq!(ms(2, 0.0), 2250);
        assert_eq!(ms(3, 0.5), 4218);
        assert_eq!(ms(20, 0.0), 60_000);
        assert_eq!(ms(u32::MAX, 1.0), 60_000);
        let unit = random_unit();
        assert!((0.0..1.0).contains(&unit));
    }
}
