//! The link to the Platform (`kici-platform`, the dashboard), when `KICI_PLATFORM_URL` is set.
//!
//! The orchestrator connects out to the Platform's `/ws/orchestrator`, authenticates with
//! `KICI_PLATFORM_TOKEN`, registers, and replays the snapshots and timeline events of active
//! runs and of runs finished in the last 24 hours. From then on, every change to a run marks it dirty and the
//! link sends a fresh whole-run snapshot (coalesced: a burst of changes sends one); timeline
//! events and live log lines are forwarded as they are stored. The Platform asks for content
//! (step logs, provisioning logs, the approval queue) and for actions (cancel, re-run, approve
//! or reject a hold) with requests the link answers through the services. Nothing here can
//! slow the core down: marking is a set insert, live frames that find the buffer full are
//! dropped (the logs stay readable through the request path), and a lost connection is
//! retried with backoff (1 s × 1.5, up to 60 s, with jitter).

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kici_engine::api::secrets::HeldJobList;
use kici_engine::ids::{JobId, RunId};
use kici_engine::platform_protocol::{
    OrchLogsData, OrchestratorFrame, PLATFORM_PROTOCOL_VERSION, PlatformFrame, PlatformRequest, ResponseError,
    RunSnapshot, SUPPORTED_REQUESTS, StepLogsData,
};
use kici_engine::protection::Approver;
use kici_store::RunFilter;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::catalog;
use crate::clock::now_ms;
use crate::holds::{self, Decider, Verdict};
use crate::state::Shared;
use crate::{diagnose, fleet, runs};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const HEARTBEAT: Duration = Duration::from_secs(30);
/// Finished runs replayed after a (re)connect: those of the last day, at most this many.
const REPLAY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;
const REPLAY_MAX_RUNS: i64 = 500;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

enum SessionEnd {
    Shutdown,
    /// The Platform refused the key: retrying with it cannot work.
    Refused(String),
    Lost(String),
}

/// Keeps the connection up until shutdown.
pub async fn run(state: Shared, mut shutdown: watch::Receiver<bool>) {
    let (Some(url), Some(token)) = (state.config.platform_url.clone(), state.config.platform_token.clone()) else {
        return;
    };
    let Some(mut live) = state.platform.take_live() else {
        return;
    };
    let mut attempt: u32 = 0;
    loop {
        match session(&state, &url, &token, &mut live, &mut shutdown).await {
            SessionEnd::Shutdown => return,
            SessionEnd::Refused(reason) => {
                tracing::error!(url = %url, reason = %reason, "the Platform refused this orchestrator's key; not reconnecting (hint: create an orchestrator key on the Platform and set KICI_PLATFORM_TOKEN)");
                return;
            }
            SessionEnd::Lost(reason) => {
                attempt = attempt.saturating_add(1);
                let delay = backoff(attempt, jitter());
                tracing::warn!(url = %url, reason = %reason, retryInMs = delay.as_millis() as u64, "Platform connection lost");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}

/// 1 s × 1.5^(attempt-1), plus `jitter` (0–0.5) of it, at most 60 s.
fn backoff(attempt: u32, jitter: f64) -> Duration {
    let base = 1.5f64.powi(attempt.saturating_sub(1).min(20) as i32);
    Duration::from_secs_f64((base * (1.0 + jitter)).min(MAX_BACKOFF.as_secs_f64()))
}

fn jitter() -> f64 {
    let mut byte = [0u8; 1];
    // Without randomness every orchestrator retries in step, which is only a little worse.
    let _ = getrandom::fill(&mut byte);
    f64::from(byte[0]) / 255.0 * 0.5
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(socket: &mut Socket, frame: &OrchestratorFrame) -> Result<(), String> {
    let text = serde_json::to_string(frame).map_err(|err| format!("cannot encode a frame: {err}"))?;
    socket
        .send(Message::Text(text.into()))
        .await
        .map_err(|err| format!("send failed: {err}"))
}

async fn session(
    state: &Shared,
    url: &str,
    token: &str,
    live: &mut mpsc::Receiver<OrchestratorFrame>,
    shutdown: &mut watch::Receiver<bool>,
) -> SessionEnd {
    let mut socket = match tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(url)).await {
        Ok(Ok((socket, _))) => socket,
        Ok(Err(err)) => return SessionEnd::Lost(format!("cannot connect: {err}")),
        Err(_) => return SessionEnd::Lost(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs())),
    };
    let auth = OrchestratorFrame::AuthRequest {
        token: token.to_string(),
        protocol_version: PLATFORM_PROTOCOL_VERSION,
        supported_dashboard_requests: SUPPORTED_REQUESTS.iter().map(|r| r.to_string()).collect(),
    };
    if let Err(err) = send(&mut socket, &auth).await {
        return SessionEnd::Lost(err);
    }
    match tokio::time::timeout(CONNECT_TIMEOUT, next_frame(&mut socket)).await {
        Ok(Some(Ok(PlatformFrame::AuthSuccess { connection_id }))) => {
            tracing::info!(url = %url, connectionId = %connection_id, "connected to the Platform");
        }
        Ok(Some(Ok(PlatformFrame::AuthFailure { reason }))) => return SessionEnd::Refused(reason),
        Ok(Some(Ok(_))) => return SessionEnd::Lost("expected auth.success".into()),
        Ok(Some(Err(err))) => return SessionEnd::Lost(err),
        Ok(None) => return SessionEnd::Lost("closed before authenticating".into()),
        Err(_) => return SessionEnd::Lost("no auth answer in time".into()),
    }
    let register = OrchestratorFrame::Register {
        instance_id: state.instance_id.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        url: format!("http://{}:{}", state.config.bind_address, state.config.port),
    };
    if let Err(err) = send(&mut socket, &register).await {
        return SessionEnd::Lost(err);
    }
    // Live frames queued while disconnected are stale; the replay covers their runs.
    while live.try_recv().is_ok() {}
    match mark_replay(state).await {
        Ok(ids) => {
            // Timeline events too: one dropped while the link was down or its buffer full is
            // sent again (the Platform ignores event ids it has).
            for run_id in ids {
                let events = match state.store.run_events(&run_id).await {
                    Ok(events) => events,
                    Err(err) => {
                        tracing::error!(runId = %run_id, error = %err, "cannot read a run's events to replay to the Platform");
                        continue;
                    }
                };
                for event in events {
                    if let Err(err) = send(&mut socket, &OrchestratorFrame::RunEvent(Box::new(event))).await {
                        return SessionEnd::Lost(err);
                    }
                }
            }
        }
        Err(err) => tracing::error!(error = %err, "cannot list the runs to replay to the Platform"),
    }
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    loop {
        let pending: BTreeSet<RunId> = state.platform.take_dirty();
        for run_id in pending {
            match snapshot(state, &run_id).await {
                Ok(Some(snapshot)) => {
                    let status = snapshot.run.status;
                    if let Err(err) = send(&mut socket, &OrchestratorFrame::ExecutionStatus(Box::new(snapshot))).await {
                        state.platform.run_changed(&run_id);
                        return SessionEnd::Lost(err);
                    }
                    tracing::debug!(runId = %run_id, status = %status, "run snapshot sent to the Platform");
                }
                Ok(None) => {}
                Err(err) => tracing::error!(runId = %run_id, error = %err, "cannot read a run to send to the Platform"),
            }
        }
        tokio::select! {
            _ = state.platform.changed() => {}
            frame = live.recv() => {
                let Some(frame) = frame else { return SessionEnd::Shutdown };
                if let Err(err) = send(&mut socket, &frame).await {
                    return SessionEnd::Lost(err);
                }
            }
            _ = heartbeat.tick() => {
                if let Err(err) = send(&mut socket, &OrchestratorFrame::Heartbeat { timestamp: now_ms() }).await {
                    return SessionEnd::Lost(err);
                }
            }
            incoming = next_frame(&mut socket) => match incoming {
                None => return SessionEnd::Lost("the Platform closed the connection".into()),
                Some(Err(err)) => tracing::warn!(error = %err, "unreadable frame from the Platform ignored"),
                Some(Ok(PlatformFrame::Request { request_id, actor, request })) => {
                    let response = answer(state, request_id, &actor, request).await;
                    if let Err(err) = send(&mut socket, &response).await {
                        return SessionEnd::Lost(err);
                    }
                }
                Some(Ok(_)) => {}
            },
            _ = shutdown.changed() => {
                // Best effort: the Platform notices the close either way.
                let _ = socket.close(None).await;
                return SessionEnd::Shutdown;
            }
        }
    }
}

/// The next frame, `None` when the connection ended.
async fn next_frame(socket: &mut Socket) -> Option<Result<PlatformFrame, String>> {
    while let Some(frame) = socket.next().await {
        match frame {
            Ok(Message::Text(text)) => {
                return Some(serde_json::from_str(&text).map_err(|err| format!("invalid frame: {err}")));
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
    None
}

/// Marks active runs and runs of the last day for sending; returns their ids.
async fn mark_replay(state: &Shared) -> Result<BTreeSet<RunId>, kici_store::StoreError> {
    let mut ids: BTreeSet<RunId> = state.store.active_run_ids().await?.into_iter().collect();
    let (recent, _) = state
        .store
        .list_runs(&RunFilter {
            statuses: Vec::new(),
            workflow: None,
            repo: None,
            since: Some(now_ms() - REPLAY_WINDOW_MS),
            limit: REPLAY_MAX_RUNS,
            offset: 0,
        })
        .await?;
    ids.extend(recent.into_iter().map(|run| run.run_id));
    state.platform.mark_dirty(ids.iter().cloned());
    Ok(ids)
}

async fn snapshot(state: &Shared, run_id: &RunId) -> Result<Option<RunSnapshot>, kici_store::StoreError> {
    let Some(mut run) = state.store.get_run(run_id).await? else {
        return Ok(None);
    };
    run.reruns = state.store.reruns_of(run_id).await?;
    let jobs = state
        .store
        .run_jobs(run_id, true)
        .await?
        .into_iter()
        .map(|record| record.job)
        .collect();
    Ok(Some(RunSnapshot { run, jobs }))
}

/// Whether `job_id` is a job of `run_id`: a job id names a directory under the run's logs.
async fn job_of_run(state: &Shared, run_id: &RunId, job_id: &JobId) -> Result<(), ResponseError> {
    match state.store.get_job(job_id).await {
        Ok(Some(job)) if job.job.run_id == run_id => Ok(()),
        Ok(_) => Err(ResponseError {
            code: "not_found".into(),
            message: format!(
                "job {} not found in run {run_id}",
                kici_engine::excerpt::excerpt(job_id)
            ),
        }),
        Err(err) => Err(ResponseError {
            code: "internal".into(),
            message: format!("cannot read the job: {err}"),
        }),
    }
}

/// Answers one Platform request from the store.
async fn answer(state: &Shared, request_id: String, actor: &str, request: PlatformRequest) -> OrchestratorFrame {
    let result: Result<serde_json::Value, ResponseError> = match request {
        PlatformRequest::StepLogs {
            run_id,
            job_id,
            step_index,
        } => match job_of_run(state, &run_id, &job_id).await {
            Ok(()) => state
                .logs
                .read(&run_id, &job_id, step_index)
                .await
                .map(|lines| {
                    serde_json::json!(StepLogsData {
                        total_lines: lines.len(),
                        lines,
                    })
                })
                .map_err(internal),
            Err(err) => Err(err),
        },
        PlatformRequest::OrchLogs { run_id, job_id } => match job_of_run(state, &run_id, &job_id).await {
            Ok(()) => state
                .logs
                .read_provisioning(&run_id, &job_id)
                .await
                .map(|lines| {
                    serde_json::json!(OrchLogsData {
                        total_lines: lines.len(),
                        lines,
                    })
                })
                .map_err(internal),
            Err(err) => Err(err),
        },
        PlatformRequest::Cancel { run_id, force } => runs::cancel(state, &run_id, actor, force)
            .await
            .map(|answer| serde_json::json!(answer))
            .map_err(refused),
        PlatformRequest::Rerun { run_id, failed_only } => runs::rerun(state, &run_id, actor, failed_only)
            .await
            .map(|answer| serde_json::json!(answer))
            .map_err(refused),
        PlatformRequest::Fleet => match fleet::fleet(state).await {
            Ok(fleet) => Ok(serde_json::json!(fleet)),
            Err(err) => Err(ResponseError {
                code: "internal".into(),
                message: format!("cannot list agents: {err}"),
            }),
        },
        PlatformRequest::Diagnostics => Ok(serde_json::json!(diagnose::report(state).await)),
        PlatformRequest::HeldRuns { status, run_id } => match state.store.holds(run_id.as_ref(), status).await {
            Ok(holds) => Ok(serde_json::json!(HeldJobList { holds })),
            Err(err) => Err(store_failed("list the holds", err)),
        },
        PlatformRequest::ApproveHeld { run_id, job } => {
            decide(state, &run_id, job.as_deref(), Verdict::Approve, actor, None).await
        }
        PlatformRequest::Workflows => catalog::workflows(state)
            .await
            .map(|list| serde_json::json!(list))
            .map_err(|err| store_failed("list the workflows", err)),
        PlatformRequest::Dispatch {
            source,
            repo,
            workflow,
            dispatch_type,
            inputs,
        } => dispatch_for(state, actor, &source, (repo, workflow, dispatch_type), inputs).await,
        PlatformRequest::RunSchedule { schedule_id } => run_schedule(state, actor, &schedule_id).await,
        PlatformRequest::RejectHeld { run_id, job, reason } => {
            decide(
                state,
                &run_id,
                job.as_deref(),
                Verdict::Reject,
                actor,
                reason.as_deref(),
            )
            .await
        }
    };
    match result {
        Ok(data) => OrchestratorFrame::Response {
            request_id,
            data: Some(data),
            error: None,
        },
        Err(error) => OrchestratorFrame::Response {
            request_id,
            data: None,
            error: Some(error),
        },
    }
}

/// A refusal of a start, with the code the API answers.
fn start_refused(err: crate::starts::StartError) -> ResponseError {
    let api = kici_telemetry::http_error::ApiError::from(err);
    ResponseError {
        code: api.code.into_owned(),
        message: api.message,
    }
}

/// A dashboard user's "Run now" of a workflow's `dispatch()` trigger.
async fn dispatch_for(
    state: &Shared,
    actor: &str,
    source: &str,
    (repo, workflow, dispatch_type): (String, String, Option<String>),
    inputs: serde_json::Map<String, serde_json::Value>,
) -> Result<serde_json::Value, ResponseError> {
    let sources = state
        .store
        .list_sources()
        .await
        .map_err(|err| store_failed("list the sources", err))?;
    let Some(source) = sources
        .into_iter()
        .find(|s| s.name == source || s.source_id.as_str() == source)
    else {
        return Err(ResponseError {
            code: "not_found".into(),
            message: format!("no source `{}`", kici_engine::excerpt::excerpt(source)),
        });
    };
    let request = catalog::Dispatch {
        source,
        repo: Some(repo),
        git_ref: None,
        dispatch_type,
        workflow,
        inputs,
    };
    catalog::dispatch(state, actor, request)
        .await
        .map(|dispatched| serde_json::json!(dispatched))
        .map_err(start_refused)
}

/// A dashboard user's "Run now" of a schedule.
async fn run_schedule(state: &Shared, actor: &str, schedule_id: &str) -> Result<serde_json::Value, ResponseError> {
    let registration = state
        .store
        .registration(schedule_id)
        .await
        .map_err(|err| store_failed("read the schedule", err))?
        .filter(|r| r.kind == "schedule")
        .ok_or_else(|| ResponseError {
            code: "not_found".into(),
            message: format!("no schedule `{}`", kici_engine::excerpt::excerpt(schedule_id)),
        })?;
    let started = crate::scheduler::start_now(state, &registration, crate::clock::now_ms(), Some(actor))
        .await
        .map_err(start_refused)?;
    Ok(serde_json::json!(kici_engine::api::triggers::Dispatched {
        run_id: started.run_id,
        workflow: registration.workflow_name,
        git_ref: started.git_ref,
        sha: started.sha,
    }))
}

/// A dashboard user's approval or rejection. The Platform sends only its owners' (members
/// are refused there), so the actor decides as an owner; reviewer clauses name them as
/// `user:<their dashboard name>`.
async fn decide(
    state: &Shared,
    run_id: &RunId,
    job: Option<&str>,
    verdict: Verdict,
    actor: &str,
    reason: Option<&str>,
) -> Result<serde_json::Value, ResponseError> {
    let decider = Decider {
        approver: Approver {
            name: actor.to_string(),
            teams: Vec::new(),
        },
        role: "owner".to_string(),
    };
    match holds::decide(state, run_id, job, verdict, &decider, reason).await {
        Ok(Ok(decided)) => Ok(serde_json::json!(decided)),
        Ok(Err(refused)) => Err(ResponseError {
            code: refused.code().to_string(),
            message: refused.into_message(),
        }),
        Err(err) => Err(store_failed("decide the hold", err)),
    }
}

fn store_failed(what: &str, err: kici_store::StoreError) -> ResponseError {
    tracing::error!(error = %err, "cannot {what} for the Platform");
    ResponseError {
        code: "internal".into(),
        message: format!("cannot {what} (details are in the orchestrator log)"),
    }
}

/// A refused cancel or re-run, with the code and message the REST API gives.
fn refused(err: runs::RunActionError) -> ResponseError {
    ResponseError {
        code: err.code().to_string(),
        message: err.to_string(),
    }
}

fn internal(err: std::io::Error) -> ResponseError {
    tracing::error!(error = %err, "cannot read a log for the Platform");
    ResponseError {
        code: "internal".into(),
        message: "cannot read the log (details are in the orchestrator log)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_by_half_and_caps_at_a_minute() {
        assert_eq!(backoff(1, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(2, 0.0), Duration::from_millis(1500));
        assert_eq!(backoff(3, 0.5), Duration::from_secs_f64(2.25 * 1.5));
        assert_eq!(backoff(30, 0.5), MAX_BACKOFF);
    }
}
