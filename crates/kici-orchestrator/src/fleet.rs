//! The fleet as operators see it: every agent the orchestrator has seen (with the job it runs
//! now), the agent tokens, the queued jobs with why each waits, and for the Platform's
//! `dashboard.fleet` the scalers' overview.
//! `http::admin` and `platform` are the adapters over it.

use std::collections::HashSet;

use kici_engine::api::admin::{AgentTokenView, AgentView};
use kici_engine::api::ops::Fleet;
use kici_engine::ids::{JobId, RunId};
use kici_engine::labels::{LabelMatcher, labels_fit};
use kici_engine::protocol::{JobDispatch, JobKind};
use kici_engine::waiting::{WaitReason, WaitingJob};
use kici_store::StoreError;

use crate::clock::now_ms;
use crate::state::Shared;

/// Every agent the orchestrator has seen, with the job it runs now.
pub async fn agents(state: &Shared) -> Result<Vec<AgentView>, StoreError> {
    Ok(state
        .store
        .list_agents()
        .await?
        .into_iter()
        .map(|agent| {
            let busy_job_id = state
                .hub
                .get(&agent.agent_id)
                .and_then(|connection| connection.busy_job);
            AgentView {
                agent_id: agent.agent_id,
                labels: agent.labels,
                hostname: Some(agent.hostname),
                platform: Some(agent.platform),
                arch: Some(agent.arch),
                version: Some(agent.version),
                build_info: agent.build_info.map(Into::into),
                connected: agent.connected,
                busy_job_id,
                first_seen_at: Some(agent.first_seen_at),
                last_seen_at: Some(agent.last_seen_at),
            }
        })
        .collect())
}

/// Every agent token, never its value.
pub async fn agent_tokens(state: &Shared) -> Result<Vec<AgentTokenView>, StoreError> {
    Ok(state
        .store
        .list_agent_tokens()
        .await?
        .into_iter()
        .map(|token| AgentTokenView {
            token_id: token.token_id,
            label: token.label,
            token_prefix: Some(token.token_prefix),
            labels: token.labels,
            agent_type: Some(token.agent_type),
            created_at: token.created_at,
            expires_at: token.expires_at,
            revoked_at: token.revoked_at,
            last_seen_at: token.last_seen_at,
        })
        .collect())
}

/// The agents, the scalers' overview and the queued jobs with why each waits, for the
/// dashboard's agents and scalers pages.
pub async fn fleet(state: &Shared) -> Result<Fleet, StoreError> {
    Ok(Fleet {
        agents: agents(state).await?,
        scalers: state.scaler.overview(now_ms()),
        waiting: waiting(state).await?,
    })
}

/// Every job in the queue no agent has taken, oldest first, with what holds it back: the
/// facts the dispatcher goes by in a pass (`dispatcher::dispatch_pending`).
pub async fn waiting(state: &Shared) -> Result<Vec<WaitingJob>, StoreError> {
    let pending = state.store.pending_entries().await?;
    let queued_runs: HashSet<RunId> = state.store.queued_concurrency_runs().await?.into_iter().collect();
    let groups_in_flight = crate::dispatcher::groups_of(&state.store.in_flight_entries().await?);
    let waiting_jobs: HashSet<JobId> = pending.iter().map(|e| e.job_id.clone()).collect();
    let agents = state.hub.all();
    let mut waiting: Vec<WaitingJob> = pending
        .into_iter()
        .map(|entry| {
            let config = serde_json::from_str::<JobDispatch>(&entry.dispatch)
                .ok()
                .map(|d| d.job_config);
            let building_elsewhere = config.as_ref().is_some_and(|c| {
                c.kind == JobKind::Build
                    && c.lockfile_hash
                        .as_deref()
                        .is_some_and(|hash| state.builds.held_by_other(hash, &entry.job_id))
            });
            let group = config
                .as_ref()
                .and_then(|c| c.concurrency_group.clone().map(|g| (c.repo.clone(), g)));
            let reason = if queued_runs.contains(&entry.run_id) {
                WaitReason::RunConcurrency
            } else if let Some((_, group)) = group.filter(|g| groups_in_flight.contains(g)) {
                WaitReason::ConcurrencyGroup { group }
            } else if building_elsewhere {
                WaitReason::Build
            } else {
                // As the dispatcher: an agent a scaler started for another waiting job is not
                // this one's.
                let fitting: Vec<_> = agents
                    .iter()
                    .filter(|a| labels_fit(&entry.runs_on, &entry.exclude_labels, &a.labels).unwrap_or(false))
                    .filter(|a| {
                        a.bound_job
                            .as_ref()
                            .is_none_or(|job| *job == entry.job_id || !waiting_jobs.contains(job))
                    })
                    .collect();
                let mut labels: Vec<String> = entry.runs_on.iter().map(LabelMatcher::display).collect();
                labels.extend(entry.exclude_labels.iter().map(|m| format!("!{}", m.display())));
                WaitReason::Agents {
                    labels,
                    idle: fitting
                        .iter()
                        .filter(|a| a.busy_job.is_none() && !a.draining)
                        .map(|a| a.agent_id.to_string())
                        .collect(),
                    busy: fitting.iter().filter(|a| a.busy_job.is_some()).count(),
                    draining: fitting.iter().filter(|a| a.busy_job.is_none() && a.draining).count(),
                    scaler: state.scaler.wait_verdict(&entry),
                    provisioning_error: entry.last_provisioning_error.clone(),
                }
            };
            WaitingJob {
                explanation: reason.to_string(),
                run_id: entry.run_id,
                job_id: entry.job_id,
                job_name: config.as_ref().map(|c| c.display_name.clone()).unwrap_or_default(),
                workflow_name: config.map(|c| c.workflow_name).unwrap_or_default(),
                enqueued_at: entry.enqueued_at,
                reason,
            }
        })
        .collect();
    waiting.sort_by_key(|w| w.enqueued_at);
    Ok(waiting)
}
