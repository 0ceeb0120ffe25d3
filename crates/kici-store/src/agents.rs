//! Agents that have registered: their labels, host facts and build info, and whether they are
//! connected now. The live connections themselves are the orchestrator's; this is the record.

use kici_engine::build_info::BuildInfo;
use kici_engine::ids::AgentId;
use sqlx::any::AnyRow;

use crate::{Result, Store, get, get_json, q, to_json};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    pub agent_id: AgentId,
    pub token_id: Option<String>,
    pub labels: Vec<String>,
    pub hostname: String,
    pub platform: String,
    pub arch: String,
    pub version: String,
    pub build_info: Option<BuildInfo>,
    pub connected: bool,
    pub first_seen_at: i64,
    pub last_seen_at: i64,
}

fn row_to_agent(row: &AnyRow) -> Result<AgentRecord> {
    Ok(AgentRecord {
        agent_id: crate::get_id(row, "agent_id")?,
        token_id: get(row, "token_id")?,
        labels: get_json(row, "labels")?.unwrap_or_default(),
        hostname: get(row, "hostname")?,
        platform: get(row, "platform")?,
        arch: get(row, "arch")?,
        version: get(row, "version")?,
        build_info: get_json(row, "build_info")?,
        connected: get::<i64>(row, "connected")? != 0,
        first_seen_at: get(row, "first_seen_at")?,
        last_seen_at: get(row, "last_seen_at")?,
    })
}

impl Store {
    /// Records a registration (insert or refresh), marking the agent connected.
    pub async fn upsert_agent(&self, agent: &AgentRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO agents (agent_id, token_id, labels, hostname, platform, arch, version, build_info, connected, first_seen_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (agent_id) DO UPDATE SET token_id = $2, labels = $3, hostname = $4, platform = $5, arch = $6,
                 version = $7, build_info = $8, connected = $9, last_seen_at = $11",
        )
        .bind(agent.agent_id.as_str())
        .bind(&agent.token_id)
        .bind(to_json(&agent.labels))
        .bind(&agent.hostname)
        .bind(&agent.platform)
        .bind(&agent.arch)
        .bind(&agent.version)
        .bind(to_json(&agent.build_info))
        .bind(i64::from(agent.connected))
        .bind(agent.first_seen_at)
        .bind(agent.last_seen_at)
        .execute(&self.pool)
        .await
        .map_err(q("upsert agent"))?;
        Ok(())
    }

    pub async fn set_agent_connected(&self, agent_id: &AgentId, connected: bool, now: i64) -> Result<()> {
        sqlx::query("UPDATE agents SET connected = $1, last_seen_at = $2 WHERE agent_id = $3")
            .bind(i64::from(connected))
            .bind(now)
            .bind(agent_id.as_str())
            .execute(&self.pool)
            .await
            .map_err(q("set agent connected"))?;
        Ok(())
    }

    /// Marks every agent disconnected (at orchestrator start: no connection survives a restart).
    pub async fn disconnect_all_agents(&self) -> Result<()> {
        sqlx::query("UPDATE agents SET connected = 0")
            .execute(&self.pool)
            .await
            .map_err(q("disconnect agents"))?;
        Ok(())
    }

    /// The hosts agents registered from with an agent token.
    pub async fn hosts_of_token(&self, token_id: &str) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT DISTINCT hostname FROM agents WHERE token_id = $1 ORDER BY hostname")
            .bind(token_id)
            .fetch_all(&self.pool)
            .await
            .map_err(q("read the hosts of an agent token"))
    }

    pub async fn list_agents(&self) -> Result<Vec<AgentRecord>> {
        let rows = sqlx::query(
            "SELECT agent_id, token_id, labels, hostname, platform, arch, version, build_info, connected, first_seen_at, last_seen_at
             FROM agents ORDER BY agent_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(q("list agents"))?;
        rows.iter().map(row_to_agent).collect()
    }
}
