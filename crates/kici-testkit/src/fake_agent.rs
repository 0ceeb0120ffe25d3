//! A scripted agent for orchestrator-only scenarios: it speaks the real protocol (auth,
//! register) with whatever build info the test gives it, then holds the connection open,
//! answers nothing, keeps the jobs it is sent for the test to look at, and sends only what the
//! test tells it to. It never replaces the real agent
//! in acceptance tests of job execution.

use futures_util::{SinkExt, StreamExt};
use kici_engine::build_info::BuildInfo;
use kici_engine::ids::AgentId;
use kici_engine::protocol::{AgentMessage, JobDispatch, OrchestratorMessage, PROTOCOL_VERSION, Registration};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// A connected scripted agent; disconnects when dropped.
pub struct FakeAgent {
    task: JoinHandle<()>,
    outbox: tokio::sync::mpsc::UnboundedSender<AgentMessage>,
    dispatches: tokio::sync::mpsc::UnboundedReceiver<JobDispatch>,
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeAgent {
    /// Connects to `ws_url` with `token` and registers `agent_id` with `labels` and `build_info`.
    pub async fn connect(
        ws_url: &str,
        token: &str,
        agent_id: &str,
        labels: &[&str],
        build_info: BuildInfo,
    ) -> FakeAgent {
        FakeAgent::connect_on_host(ws_url, token, agent_id, "scripted", labels, build_info).await
    }

    /// [`FakeAgent::connect`] as an agent on `hostname`.
    pub async fn connect_on_host(
        ws_url: &str,
        token: &str,
        agent_id: &str,
        hostname: &str,
        labels: &[&str],
        build_info: BuildInfo,
    ) -> FakeAgent {
        let (mut socket, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .expect("the scripted agent connects");
        let send = |message: AgentMessage| Message::Text(serde_json::to_string(&message).expect("serializes").into());
        socket
            .send(send(AgentMessage::AuthRequest {
                token: token.to_string(),
                protocol_version: PROTOCOL_VERSION,
            }))
            .await
            .expect("auth.request");
        let registration = Registration {
            agent_id: AgentId::from(agent_id.to_string()),
            // Like a real agent: operator labels plus the automatic ones.
            labels: labels
                .iter()
                .map(|l| l.to_string())
                .chain(kici_engine::labels::system_labels("linux", "x86_64", hostname))
                .collect(),
            platform: "linux".into(),
            arch: "x86_64".into(),
            hostname: hostname.into(),
            version: "0.0.0".into(),
            build_info,
            in_flight_jobs: vec![],
            id_generated: false,
        };
        socket
            .send(send(AgentMessage::Register(Box::new(registration))))
            .await
            .expect("agent.register");
        let (outbox, mut outgoing) = tokio::sync::mpsc::unbounded_channel::<AgentMessage>();
        let (dispatched, dispatches) = tokio::sync::mpsc::unbounded_channel::<JobDispatch>();
        let task = tokio::spawn(async move {
            // Reading keeps the connection alive (pings are answered) until the test drops it.
            loop {
                tokio::select! {
                    frame = socket.next() => match frame {
                        Some(Ok(Message::Text(text))) => {
                            if let Ok(OrchestratorMessage::JobDispatch(dispatch)) = serde_json::from_str(&text) {
                                let _ = dispatched.send(*dispatch);
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    Some(message) = outgoing.recv() => {
                        if socket.send(send(message)).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        FakeAgent {
            task,
            outbox,
            dispatches,
        }
    }

    /// The next job the orchestrator sends this agent, as sent; panics after `within`.
    pub async fn dispatch(&mut self, within: std::time::Duration) -> JobDispatch {
        tokio::time::timeout(within, self.dispatches.recv())
            .await
            .expect("a job is dispatched to the scripted agent in time")
            .expect("the scripted agent's connection is open")
    }

    /// Sends `message` as this agent.
    pub fn send(&self, message: AgentMessage) {
        // The connection may be closed already; the test then sees nothing happen.
        let _ = self.outbox.send(message);
    }
}
