//! The fleet as operators see it: every agent the orchestrator has seen (with the job it runs
//! now), the agent tokens, and for the Platform's `dashboard.fleet` the scalers' overview.
//! `http::admin` and `platform` are the adapters over it.

use kici_engine::api::admin::{AgentTokenView, AgentView};
use kici_engine::api::ops::Fleet;
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

/// The agents and the scalers' overview, for the dashboard's agents and scalers pages.
pub async fn fleet(state: &Shared) -> Result<Fleet, StoreError> {
    Ok(Fleet {
        agents: agents(state).await?,
        scalers: state.scaler.overview(now_ms()),
    })
}
