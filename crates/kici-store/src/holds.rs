//! Jobs held by protection rules (`held_runs`) and jobs waiting for a wait timer
//! (`jobs.ready_at`). A job's move into `held` or `waiting` is written with its hold or its
//! ready time in one transaction; a decision is taken once (`WHERE status = 'pending'`).

use kici_engine::api::secrets::{HeldJob, HoldStatus};
use kici_engine::ids::{JobId, RunId};
use kici_engine::protection::{Approver, ApproverClause};
use kici_engine::status::{JobChange, JobEvent};
use sqlx::any::AnyRow;

use crate::{Result, Store, get, get_enum, get_id, get_json, q, to_json};

/// A hold to create with a job's move to `held`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHold {
    pub hold_id: String,
    pub run_id: RunId,
    pub job_id: JobId,
    pub scope: String,
    pub clauses: Vec<ApproverClause>,
    pub reason: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// What was decided about a hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldDecisionRecord {
    pub status: HoldStatus,
    pub decided_by: String,
    pub reason: Option<String>,
    pub at: i64,
}

const HOLD_COLUMNS: &str =
    "h.hold_id, h.run_id, h.job_id, j.job_name, r.workflow_name, r.repo, r.git_ref, h.scope, h.clauses,
     h.approvals, h.reason, h.status, h.created_at, h.expires_at, h.decided_at, h.decided_by, h.decision_reason";
const HOLD_FROM: &str = "held_runs h JOIN jobs j ON j.job_id = h.job_id JOIN runs r ON r.run_id = h.run_id";

fn row_to_hold(row: &AnyRow) -> Result<HeldJob> {
    Ok(HeldJob {
        hold_id: get(row, "hold_id")?,
        run_id: get_id(row, "run_id")?,
        job_id: get_id(row, "job_id")?,
        job_name: get(row, "job_name")?,
        workflow_name: get(row, "workflow_name")?,
        repo: get(row, "repo")?,
        git_ref: get(row, "git_ref")?,
        scope: get(row, "scope")?,
        clauses: get_json(row, "clauses")?.unwrap_or_default(),
        approvals: get_json(row, "approvals")?.unwrap_or_default(),
        reason: get(row, "reason")?,
        status: get_enum::<HoldStatusText>(row, "status")?.0,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
        decided_at: get(row, "decided_at")?,
        decided_by: get(row, "decided_by")?,
        decision_reason: get(row, "decision_reason")?,
    })
}

/// [`HoldStatus`] read from its column.
struct HoldStatusText(HoldStatus);

impl std::str::FromStr for HoldStatusText {
    type Err = String;
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        text.parse().map(HoldStatusText)
    }
}

impl Store {
    /// Moves a pending job to `held` and records its hold; `false` when the job was not
    /// pending any more (nothing is written then).
    pub async fn hold_job(&self, hold: &NewHold) -> Result<bool> {
        let mut tx = self.begin().await.map_err(q("begin hold job"))?;
        if !crate::runs::transition_job_in(&mut tx, &hold.job_id, &JobChange::on(JobEvent::Hold), hold.created_at)
            .await?
        {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO held_runs (hold_id, run_id, job_id, scope, clauses, approvals, reason, status, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, '[]', $6, $7, $8, $9)",
        )
        .bind(&hold.hold_id)
        .bind(hold.run_id.as_str())
        .bind(hold.job_id.as_str())
        .bind(&hold.scope)
        .bind(to_json(&hold.clauses))
        .bind(&hold.reason)
        .bind(HoldStatus::Pending.as_str())
        .bind(hold.created_at)
        .bind(hold.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(q("insert hold"))?;
        tx.commit().await.map_err(q("commit hold job"))?;
        Ok(true)
    }

    /// Moves a pending job to `waiting` until `ready_at`; `false` when it was not pending.
    pub async fn wait_job(&self, job_id: &JobId, ready_at: i64, now: i64) -> Result<bool> {
        let mut tx = self.begin().await.map_err(q("begin wait job"))?;
        if !crate::runs::transition_job_in(&mut tx, job_id, &JobChange::on(JobEvent::Wait), now).await? {
            return Ok(false);
        }
        sqlx::query("UPDATE jobs SET ready_at = $2 WHERE job_id = $1")
            .bind(job_id.as_str())
            .bind(ready_at)
            .execute(&mut *tx)
            .await
            .map_err(q("set ready_at"))?;
        tx.commit().await.map_err(q("commit wait job"))?;
        Ok(true)
    }

    /// Waiting jobs whose timer is up, as `(run, job)`, oldest first.
    pub async fn waiting_jobs_due(&self, now: i64) -> Result<Vec<(RunId, JobId)>> {
        let rows =
            sqlx::query("SELECT run_id, job_id FROM jobs WHERE status = $1 AND ready_at <= $2 ORDER BY ready_at")
                .bind(kici_engine::status::JobStatus::Waiting.as_str())
                .bind(now)
                .fetch_all(&self.pool)
                .await
                .map_err(q("waiting jobs due"))?;
        rows.iter()
            .map(|row| Ok((get_id(row, "run_id")?, get_id(row, "job_id")?)))
            .collect()
    }

    /// Holds, newest first: of one run, or every one with `status`.
    pub async fn holds(&self, run_id: Option<&RunId>, status: Option<HoldStatus>) -> Result<Vec<HeldJob>> {
        let sql = format!(
            "SELECT {HOLD_COLUMNS} FROM {HOLD_FROM}
             WHERE ($1 = '' OR h.run_id = $1) AND ($2 = '' OR h.status = $2) ORDER BY h.created_at DESC, h.hold_id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(run_id.map_or("", |r| r.as_str()))
            .bind(status.map_or("", HoldStatus::as_str))
            .fetch_all(&self.pool)
            .await
            .map_err(q("list holds"))?;
        rows.iter().map(row_to_hold).collect()
    }

    /// Pending holds past their expiry.
    pub async fn expired_holds(&self, now: i64) -> Result<Vec<HeldJob>> {
        let sql = format!("SELECT {HOLD_COLUMNS} FROM {HOLD_FROM} WHERE h.status = $1 AND h.expires_at <= $2");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(HoldStatus::Pending.as_str())
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(q("expired holds"))?;
        rows.iter().map(row_to_hold).collect()
    }

    /// Records one more approval of a pending hold whose approvals are still `current`;
    /// `false` when it changed meanwhile (decided, or approved by someone else).
    pub async fn add_approval(&self, hold_id: &str, current: &[Approver], approvals: &[Approver]) -> Result<bool> {
        let updated =
            sqlx::query("UPDATE held_runs SET approvals = $2 WHERE hold_id = $1 AND status = $3 AND approvals = $4")
                .bind(hold_id)
                .bind(to_json(&approvals))
                .bind(HoldStatus::Pending.as_str())
                .bind(to_json(&current))
                .execute(&self.pool)
                .await
                .map_err(q("add approval"))?;
        Ok(updated.rows_affected() == 1)
    }

    /// Decides a pending hold and moves its job in the same transaction: approved, to
    /// `queued` with its queue entry; rejected or expired, to `failed`. `false` when the hold
    /// was decided already (nothing is written then).
    pub async fn decide_hold(
        &self,
        hold: &HeldJob,
        decision: &HoldDecisionRecord,
        outcome: HoldOutcome<'_>,
    ) -> Result<bool> {
        let mut tx = self.begin().await.map_err(q("begin decide hold"))?;
        let decided = sqlx::query(
            "UPDATE held_runs SET status = $2, decided_at = $3, decided_by = $4, decision_reason = $5
             WHERE hold_id = $1 AND status = $6",
        )
        .bind(&hold.hold_id)
        .bind(decision.status.as_str())
        .bind(decision.at)
        .bind(&decision.decided_by)
        .bind(&decision.reason)
        .bind(HoldStatus::Pending.as_str())
        .execute(&mut *tx)
        .await
        .map_err(q("decide hold"))?
        .rows_affected()
            == 1;
        if !decided {
            return Ok(false);
        }
        match outcome {
            HoldOutcome::Queue(entry) => {
                let approve = JobChange::on(JobEvent::Approve);
                if crate::runs::transition_job_in(&mut tx, &hold.job_id, &approve, decision.at).await? {
                    crate::queue::insert_entry(&mut tx, entry).await?;
                }
            }
            HoldOutcome::Fail {
                event,
                error,
                init_failure,
            } => {
                let change = JobChange::on(event);
                crate::runs::finish_job_in(
                    &mut tx,
                    &hold.job_id,
                    &change,
                    Some(error),
                    Some(init_failure),
                    decision.at,
                )
                .await?;
            }
        }
        tx.commit().await.map_err(q("commit decide hold"))?;
        Ok(true)
    }
}

/// What a decided hold does to its job.
#[derive(Debug, Clone, Copy)]
pub enum HoldOutcome<'a> {
    /// Approved: the job is queued with this entry.
    Queue(&'a crate::NewQueueEntry),
    /// Rejected or expired (`event`): the job fails before it starts.
    Fail {
        event: JobEvent,
        error: &'a str,
        init_failure: &'a kici_engine::failure::InitFailure,
    },
}
