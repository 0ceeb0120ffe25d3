//! Workflow concurrency groups (`concurrency_slots`, `concurrency_waiters`): which runs hold a
//! place in a group, in order, and which jobs wait on their agents for their run's turn. The
//! decisions are the orchestrator's; this keeps them across restarts.

use kici_engine::ids::{AgentId, JobId, RunId};

use crate::{Result, Store, get, get_id, q};

/// A run's place in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    Active,
    Queued,
}

impl SlotState {
    fn as_str(self) -> &'static str {
        match self {
            SlotState::Active => "active",
            SlotState::Queued => "queued",
        }
    }
}

/// One run in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub run_id: RunId,
    pub repo: String,
    pub group_key: String,
    pub state: SlotState,
    pub created_at: i64,
}

fn row_to_slot(row: &sqlx::any::AnyRow) -> Result<Slot> {
    let state: String = get(row, "state")?;
    Ok(Slot {
        run_id: get_id(row, "run_id")?,
        repo: get(row, "repo")?,
        group_key: get(row, "group_key")?,
        state: if state == "active" {
            SlotState::Active
        } else {
            SlotState::Queued
        },
        created_at: get(row, "created_at")?,
    })
}

const COLUMNS: &str = "run_id, repo, group_key, state, created_at";

impl Store {
    /// The run's place in a group, if it has one.
    pub async fn concurrency_slot(&self, run_id: &RunId) -> Result<Option<Slot>> {
        let sql = format!("SELECT {COLUMNS} FROM concurrency_slots WHERE run_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(run_id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(q("concurrency slot"))?;
        row.as_ref().map(row_to_slot).transpose()
    }

    /// The runs of a group, oldest first.
    pub async fn concurrency_group(&self, repo: &str, group_key: &str) -> Result<Vec<Slot>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM concurrency_slots WHERE repo = $1 AND group_key = $2 ORDER BY created_at, run_id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(repo)
            .bind(group_key)
            .fetch_all(&self.pool)
            .await
            .map_err(q("concurrency group"))?;
        rows.iter().map(row_to_slot).collect()
    }

    /// The runs waiting for their turn in a group.
    pub async fn queued_concurrency_runs(&self) -> Result<Vec<RunId>> {
        let rows = sqlx::query("SELECT run_id FROM concurrency_slots WHERE state = 'queued'")
            .fetch_all(&self.pool)
            .await
            .map_err(q("queued concurrency runs"))?;
        rows.iter().map(|row| get_id(row, "run_id")).collect()
    }

    /// Gives the run a place in a group; false when it has one already.
    pub async fn add_concurrency_slot(&self, slot: &Slot) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO concurrency_slots (run_id, repo, group_key, state, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (run_id) DO NOTHING",
        )
        .bind(slot.run_id.as_str())
        .bind(&slot.repo)
        .bind(&slot.group_key)
        .bind(slot.state.as_str())
        .bind(slot.created_at)
        .execute(&self.pool)
        .await
        .map_err(q("add concurrency slot"))?;
        Ok(done.rows_affected() == 1)
    }

    /// A queued run's turn came.
    pub async fn activate_concurrency_slot(&self, run_id: &RunId) -> Result<()> {
        sqlx::query("UPDATE concurrency_slots SET state = 'active' WHERE run_id = $1")
            .bind(run_id.as_str())
            .execute(&self.pool)
            .await
            .map_err(q("activate concurrency slot"))?;
        Ok(())
    }

    /// The run leaves its group (it completed or was superseded), with its waiting jobs.
    pub async fn remove_concurrency_slot(&self, run_id: &RunId) -> Result<()> {
        let mut tx = self.begin().await.map_err(q("begin remove concurrency slot"))?;
        for table in ["concurrency_slots", "concurrency_waiters"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE run_id = $1")))
                .bind(run_id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(q("remove concurrency slot"))?;
        }
        tx.commit().await.map_err(q("commit remove concurrency slot"))
    }

    /// A job of a queued run waits for its turn on `agent_id`.
    pub async fn add_concurrency_waiter(&self, job_id: &JobId, run_id: &RunId, agent_id: &AgentId) -> Result<()> {
        sqlx::query(
            "INSERT INTO concurrency_waiters (job_id, run_id, agent_id) VALUES ($1, $2, $3)
             ON CONFLICT (job_id) DO UPDATE SET agent_id = excluded.agent_id",
        )
        .bind(job_id.as_str())
        .bind(run_id.as_str())
        .bind(agent_id.as_str())
        .execute(&self.pool)
        .await
        .map_err(q("add concurrency waiter"))?;
        Ok(())
    }

    /// The jobs of a run waiting for its turn, and the agents they wait on; they are forgotten.
    pub async fn take_concurrency_waiters(&self, run_id: &RunId) -> Result<Vec<(JobId, AgentId)>> {
        let rows = sqlx::query("DELETE FROM concurrency_waiters WHERE run_id = $1 RETURNING job_id, agent_id")
            .bind(run_id.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(q("take concurrency waiters"))?;
        rows.iter()
            .map(|row| Ok((get_id(row, "job_id")?, get_id(row, "agent_id")?)))
            .collect()
    }
}
