//! The dispatch queue: one entry per job delivery to an agent. `pending` entries wait for an
//! agent; `dispatched` ones wait for the agent's ack (until `ack_deadline`) and its result;
//! `recovering` ones belong to an agent that disconnected and may come back (until
//! `recovery_deadline`); `expired`, `completed` and `failed` are final.

use kici_engine::ids::{AgentId, JobId, RunId};
use kici_engine::labels::LabelMatcher;
use sqlx::any::AnyRow;

use crate::{Arg, Result, Store, dynamic, get, get_enum, get_id, get_json, get_opt_id, q};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueStatus {
    Pending,
    Dispatched,
    Recovering,
    Completed,
    Failed,
    Expired,
}

/// Statuses bound into the queue's queries, so no status is spelled in SQL.
const PENDING: Arg<'static> = Arg::Text(QueueStatus::Pending.as_str());
const DISPATCHED: Arg<'static> = Arg::Text(QueueStatus::Dispatched.as_str());
const RECOVERING: Arg<'static> = Arg::Text(QueueStatus::Recovering.as_str());

impl QueueStatus {
    pub const ALL: [QueueStatus; 6] = [
        QueueStatus::Pending,
        QueueStatus::Dispatched,
        QueueStatus::Recovering,
        QueueStatus::Completed,
        QueueStatus::Failed,
        QueueStatus::Expired,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            QueueStatus::Pending => "pending",
            QueueStatus::Dispatched => "dispatched",
            QueueStatus::Recovering => "recovering",
            QueueStatus::Completed => "completed",
            QueueStatus::Failed => "failed",
            QueueStatus::Expired => "expired",
        }
    }
}

impl std::str::FromStr for QueueStatus {
    type Err = ();
    fn from_str(text: &str) -> std::result::Result<Self, ()> {
        QueueStatus::ALL.into_iter().find(|s| s.as_str() == text).ok_or(())
    }
}

/// A new `pending` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQueueEntry {
    pub job_id: JobId,
    pub run_id: RunId,
    pub enqueued_at: i64,
    pub expires_at: Option<i64>,
    /// The `job.dispatch` message to send, as JSON.
    pub dispatch: String,
    /// The job's repository and concurrency group ([`concurrency_key`]), if it has one.
    pub concurrency_key: Option<String>,
}

/// The key of a job's concurrency group in a repository: what [`Store::group_taken`] compares.
pub fn concurrency_key(repo: &str, group: &str) -> String {
    format!("{repo}\n{group}")
}

/// The label requirements some waiting entries share ([`Store::waiting_label_sets`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSet {
    /// What [`Store::pending_entries_of_label_set`] reads by.
    pub key: String,
    pub runs_on: Vec<LabelMatcher>,
    pub exclude_labels: Vec<LabelMatcher>,
}

impl LabelSet {
    /// The key is the job's two stored JSON arrays one after the other (the queue's
    /// `label_set`, written in SQL): read back, it is the two lists.
    fn from_key(key: String) -> Result<LabelSet> {
        let mut lists = serde_json::Deserializer::from_str(&key).into_iter::<Vec<LabelMatcher>>();
        let (Some(Ok(runs_on)), Some(Ok(exclude_labels)), None) = (lists.next(), lists.next(), lists.next()) else {
            return Err(crate::StoreError::Corrupt {
                column: "dispatch_queue.label_set",
                value: key,
            });
        };
        Ok(LabelSet {
            key,
            runs_on,
            exclude_labels,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub job_id: JobId,
    pub run_id: RunId,
    pub status: QueueStatus,
    pub agent_id: Option<AgentId>,
    pub attempts: i64,
    pub enqueued_at: i64,
    pub expires_at: Option<i64>,
    pub ack_deadline: Option<i64>,
    pub recovery_deadline: Option<i64>,
    pub last_provisioning_error: Option<String>,
    pub dispatch: String,
    /// The job's label requirements.
    pub runs_on: Vec<LabelMatcher>,
    pub exclude_labels: Vec<LabelMatcher>,
}

const COLUMNS: &str =
    "q.job_id, q.run_id, q.status, q.agent_id, q.attempts, q.enqueued_at, q.expires_at, q.ack_deadline,
    q.recovery_deadline, q.last_provisioning_error, q.dispatch, j.runs_on, j.exclude_labels";

fn row_to_entry(row: &AnyRow) -> Result<QueueEntry> {
    Ok(QueueEntry {
        job_id: get_id(row, "job_id")?,
        run_id: get_id(row, "run_id")?,
        status: get_enum(row, "status")?,
        agent_id: get_opt_id(row, "agent_id")?,
        attempts: get(row, "attempts")?,
        enqueued_at: get(row, "enqueued_at")?,
        expires_at: get(row, "expires_at")?,
        ack_deadline: get(row, "ack_deadline")?,
        recovery_deadline: get(row, "recovery_deadline")?,
        last_provisioning_error: get(row, "last_provisioning_error")?,
        dispatch: get(row, "dispatch")?,
        runs_on: get_json(row, "runs_on")?.unwrap_or_default(),
        exclude_labels: get_json(row, "exclude_labels")?.unwrap_or_default(),
    })
}

pub(crate) async fn insert_entry(tx: &mut sqlx::Transaction<'_, sqlx::Any>, entry: &NewQueueEntry) -> Result<()> {
    sqlx::query(
        "INSERT INTO dispatch_queue (job_id, run_id, status, enqueued_at, expires_at, dispatch, concurrency_key, label_set)
         VALUES ($1, $2, $6, $3, $4, $5, $7, (SELECT j.runs_on || j.exclude_labels FROM jobs j WHERE j.job_id = $1))",
    )
    .bind(entry.job_id.as_str())
    .bind(entry.run_id.as_str())
    .bind(entry.enqueued_at)
    .bind(entry.expires_at)
    .bind(&entry.dispatch)
    .bind(QueueStatus::Pending.as_str())
    .bind(entry.concurrency_key.as_deref())
    .execute(&mut **tx)
    .await
    .map_err(q("insert queue entry"))?;
    Ok(())
}

impl Store {
    async fn entries_where(&self, condition: &str, args: &[Arg<'_>]) -> Result<Vec<QueueEntry>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM dispatch_queue q JOIN jobs j ON j.job_id = q.job_id WHERE {condition} ORDER BY q.enqueued_at, q.job_id"
        );
        let rows = dynamic(sql, args)
            .fetch_all(&self.pool)
            .await
            .map_err(q("read queue"))?;
        rows.iter().map(row_to_entry).collect()
    }

    pub async fn queue_entry(&self, job_id: &JobId) -> Result<Option<QueueEntry>> {
        Ok(self.entries_where("q.job_id = $1", &[Arg::Text(job_id)]).await?.pop())
    }

    /// Entries waiting for an agent, oldest first.
    pub async fn pending_entries(&self) -> Result<Vec<QueueEntry>> {
        self.entries_where("q.status = $1", &[PENDING]).await
    }

    /// Up to `limit` entries waiting for an agent after `after` (`(enqueued_at, job_id)` of the
    /// last one seen), oldest first: the dispatcher reads the queue a page at a time.
    pub async fn pending_entries_after(&self, after: Option<(i64, &JobId)>, limit: i64) -> Result<Vec<QueueEntry>> {
        let (at, job_id) = after.map_or((i64::MIN, ""), |(at, job)| (at, job.as_str()));
        let sql = format!(
            "SELECT {COLUMNS} FROM dispatch_queue q JOIN jobs j ON j.job_id = q.job_id
             WHERE q.status = $1 AND (q.enqueued_at > $2 OR (q.enqueued_at = $2 AND q.job_id > $3))
             ORDER BY q.enqueued_at, q.job_id LIMIT $4"
        );
        let rows = dynamic(sql, &[PENDING, Arg::Int(at), Arg::Text(job_id), Arg::Int(limit.max(1))])
            .fetch_all(&self.pool)
            .await
            .map_err(q("read queue page"))?;
        rows.iter().map(row_to_entry).collect()
    }

    /// The label sets of the entries waiting for an agent, one index seek per set (a loose
    /// index scan: the queue may hold many entries, but few sets).
    ///
    /// A set whose key does not read as two label lists is an error of its own, so the
    /// others are still dispatched.
    pub async fn waiting_label_sets(&self) -> Result<Vec<Result<LabelSet>>> {
        let rows = sqlx::query(
            "WITH RECURSIVE sets (label_set) AS (
                SELECT MIN(label_set) FROM dispatch_queue WHERE status = $1
                UNION ALL
                SELECT (SELECT MIN(q.label_set) FROM dispatch_queue q WHERE q.status = $1 AND q.label_set > sets.label_set)
                FROM sets WHERE sets.label_set IS NOT NULL
            )
            SELECT label_set FROM sets WHERE label_set IS NOT NULL",
        )
        .bind(QueueStatus::Pending.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(q("read the queue's label sets"))?;
        Ok(rows
            .iter()
            .map(|row| LabelSet::from_key(get(row, "label_set")?))
            .collect())
    }

    /// Like [`Store::pending_entries_after`], for the entries of one label set.
    pub async fn pending_entries_of_label_set(
        &self,
        label_set: &str,
        after: Option<(i64, &JobId)>,
        limit: i64,
    ) -> Result<Vec<QueueEntry>> {
        let (at, job_id) = after.map_or((i64::MIN, ""), |(at, job)| (at, job.as_str()));
        let sql = format!(
            "SELECT {COLUMNS} FROM dispatch_queue q JOIN jobs j ON j.job_id = q.job_id
             WHERE q.status = $1 AND q.label_set = $5 AND (q.enqueued_at > $2 OR (q.enqueued_at = $2 AND q.job_id > $3))
             ORDER BY q.enqueued_at, q.job_id LIMIT $4"
        );
        let args = [
            PENDING,
            Arg::Int(at),
            Arg::Text(job_id),
            Arg::Int(limit.max(1)),
            Arg::Text(label_set),
        ];
        let rows = dynamic(sql, &args)
            .fetch_all(&self.pool)
            .await
            .map_err(q("read a label set's queue page"))?;
        rows.iter().map(row_to_entry).collect()
    }

    /// Whether concurrency group `key` is taken for an entry queued at `(enqueued_at, job_id)`:
    /// an entry of the group is on an agent (dispatched or recovering), or an older one waits
    /// for an agent. The oldest of a group goes first; entries of runs waiting for their turn in
    /// their workflow's concurrency group hold nothing (they stay queued until that turn).
    pub async fn group_taken(&self, key: &str, enqueued_at: i64, job_id: &JobId) -> Result<bool> {
        let held: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM dispatch_queue q WHERE q.concurrency_key = $1 AND (
                 q.status IN ($5, $6)
                 OR (q.status = $2 AND (q.enqueued_at < $3 OR (q.enqueued_at = $3 AND q.job_id < $4))
                     AND NOT EXISTS (SELECT 1 FROM concurrency_slots s WHERE s.run_id = q.run_id AND s.state = 'queued'))
             ) LIMIT 1",
        )
        .bind(key)
        .bind(QueueStatus::Pending.as_str())
        .bind(enqueued_at)
        .bind(job_id.as_str())
        .bind(QueueStatus::Dispatched.as_str())
        .bind(QueueStatus::Recovering.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(q("read a concurrency group's queue"))?;
        Ok(held.is_some())
    }

    /// Gives waiting and held entries that lack them their label set and concurrency key:
    /// entries queued before the label sets existed, or by an older build during a rolling
    /// upgrade. `key_of` reads an entry's concurrency key from its dispatch. How many it
    /// indexed.
    pub async fn index_waiting_entries(&self, key_of: impl Fn(&QueueEntry) -> Option<String>) -> Result<usize> {
        let unindexed = self
            .entries_where(
                "q.status IN ($1, $2, $3) AND q.label_set IS NULL",
                &[PENDING, DISPATCHED, RECOVERING],
            )
            .await?;
        for entry in &unindexed {
            sqlx::query(
                "UPDATE dispatch_queue SET concurrency_key = $2,
                 label_set = (SELECT j.runs_on || j.exclude_labels FROM jobs j WHERE j.job_id = $1)
                 WHERE job_id = $1 AND label_set IS NULL",
            )
            .bind(entry.job_id.as_str())
            .bind(key_of(entry))
            .execute(&self.pool)
            .await
            .map_err(q("index a queue entry"))?;
        }
        Ok(unindexed.len())
    }

    /// Waiting entries of a concurrency group whose queue expiry comes before `before`.
    pub async fn group_entries_expiring_before(&self, before: i64) -> Result<Vec<QueueEntry>> {
        self.entries_where(
            "q.concurrency_key IS NOT NULL AND q.status = $1 AND q.expires_at IS NOT NULL AND q.expires_at < $2",
            &[PENDING, Arg::Int(before)],
        )
        .await
    }

    /// The ids of every entry waiting for an agent.
    pub async fn pending_job_ids(&self) -> Result<Vec<JobId>> {
        let rows = sqlx::query("SELECT job_id FROM dispatch_queue WHERE status = $1")
            .bind(QueueStatus::Pending.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(q("read pending job ids"))?;
        rows.iter().map(|r| get_id(r, "job_id")).collect()
    }

    /// Entries held by an agent (dispatched or recovering).
    pub async fn entries_of_agent(&self, agent_id: &AgentId) -> Result<Vec<QueueEntry>> {
        self.entries_where(
            "q.status IN ($1, $2) AND q.agent_id = $3",
            &[DISPATCHED, RECOVERING, Arg::Text(agent_id)],
        )
        .await
    }

    /// Every dispatched or recovering entry (at orchestrator start).
    pub async fn in_flight_entries(&self) -> Result<Vec<QueueEntry>> {
        self.entries_where("q.status IN ($1, $2)", &[DISPATCHED, RECOVERING])
            .await
    }

    /// Pending entries whose `expires_at` has passed.
    pub async fn expired_entries(&self, now: i64) -> Result<Vec<QueueEntry>> {
        self.entries_where(
            "q.status = $1 AND q.expires_at IS NOT NULL AND q.expires_at <= $2",
            &[PENDING, Arg::Int(now)],
        )
        .await
    }

    /// Dispatched entries whose ack did not arrive by `now`.
    pub async fn overdue_acks(&self, now: i64) -> Result<Vec<QueueEntry>> {
        self.entries_where(
            "q.status = $1 AND q.ack_deadline IS NOT NULL AND q.ack_deadline <= $2",
            &[DISPATCHED, Arg::Int(now)],
        )
        .await
    }

    /// Recovering entries whose agent did not come back by `now`.
    pub async fn overdue_recoveries(&self, now: i64) -> Result<Vec<QueueEntry>> {
        self.entries_where(
            "q.status = $1 AND q.recovery_deadline IS NOT NULL AND q.recovery_deadline <= $2",
            &[RECOVERING, Arg::Int(now)],
        )
        .await
    }

    /// `pending` → `dispatched` to `agent_id`, and the job names the agent, in one
    /// transaction; `false` when another dispatcher got there first.
    pub async fn claim_entry(&self, job_id: &JobId, agent_id: &AgentId, ack_deadline: i64) -> Result<bool> {
        let mut tx = self.begin().await.map_err(q("begin claim queue entry"))?;
        let done = sqlx::query(
            "UPDATE dispatch_queue SET status = $4, agent_id = $2, attempts = attempts + 1, ack_deadline = $3,
                 last_provisioning_error = NULL
             WHERE job_id = $1 AND status = $5",
        )
        .bind(job_id.as_str())
        .bind(agent_id.as_str())
        .bind(ack_deadline)
        .bind(QueueStatus::Dispatched.as_str())
        .bind(QueueStatus::Pending.as_str())
        .execute(&mut *tx)
        .await
        .map_err(q("claim queue entry"))?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        set_job_agent_in(&mut tx, job_id, Some(agent_id)).await?;
        tx.commit().await.map_err(q("commit claim queue entry"))?;
        Ok(true)
    }

    /// The agent acknowledged: no ack deadline any more.
    pub async fn entry_acknowledged(&self, job_id: &JobId) -> Result<()> {
        sqlx::query("UPDATE dispatch_queue SET ack_deadline = NULL WHERE job_id = $1 AND status = $2")
            .bind(job_id.as_str())
            .bind(QueueStatus::Dispatched.as_str())
            .execute(&self.pool)
            .await
            .map_err(q("acknowledge queue entry"))?;
        Ok(())
    }

    /// A pending entry's queue timeout starts again at `expires_at` (it waits for its
    /// concurrency group, not for an agent).
    pub async fn postpone_expiry(&self, job_id: &JobId, expires_at: i64) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE dispatch_queue SET expires_at = $2 WHERE job_id = $1 AND status = '{}' AND expires_at IS NOT NULL",
            QueueStatus::Pending.as_str()
        )))
        .bind(job_id.as_str())
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(q("postpone queue expiry"))?;
        Ok(())
    }

    /// Back to `pending` and the job without an agent, in one transaction (the agent refused,
    /// did not ack, or vanished before starting); `false` when the entry was not out.
    pub async fn requeue_entry(&self, job_id: &JobId) -> Result<bool> {
        self.requeue(job_id, None).await
    }

    /// [`Store::requeue_entry`] only while `agent_id` holds the entry: a decision about a lost
    /// agent never takes the job from the agent it went to since.
    pub async fn requeue_entry_held_by(&self, job_id: &JobId, agent_id: &AgentId) -> Result<bool> {
        self.requeue(job_id, Some(agent_id)).await
    }

    async fn requeue(&self, job_id: &JobId, held_by: Option<&AgentId>) -> Result<bool> {
        let mut tx = self.begin().await.map_err(q("begin requeue queue entry"))?;
        let sql = format!(
            "UPDATE dispatch_queue SET status = $2, agent_id = NULL, ack_deadline = NULL, recovery_deadline = NULL
             WHERE job_id = $1 AND status IN ($3, $4){}",
            if held_by.is_some() { " AND agent_id = $5" } else { "" }
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(job_id.as_str())
            .bind(QueueStatus::Pending.as_str())
            .bind(QueueStatus::Dispatched.as_str())
            .bind(QueueStatus::Recovering.as_str());
        if let Some(agent_id) = held_by {
            query = query.bind(agent_id.as_str());
        }
        let done = query.execute(&mut *tx).await.map_err(q("requeue queue entry"))?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        set_job_agent_in(&mut tx, job_id, None).await?;
        tx.commit().await.map_err(q("commit requeue queue entry"))?;
        Ok(true)
    }

    /// `dispatched` → `recovering` until `deadline` for the agent's entries; returns them.
    pub async fn recover_agent_entries(&self, agent_id: &AgentId, deadline: i64) -> Result<Vec<JobId>> {
        let rows = sqlx::query(
            "UPDATE dispatch_queue SET status = $3, recovery_deadline = $2
             WHERE agent_id = $1 AND status = $4 RETURNING job_id",
        )
        .bind(agent_id.as_str())
        .bind(deadline)
        .bind(QueueStatus::Recovering.as_str())
        .bind(QueueStatus::Dispatched.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(q("recover agent entries"))?;
        rows.iter().map(|r| get_id(r, "job_id")).collect()
    }

    /// Every `dispatched` entry becomes `recovering` until `deadline` (orchestrator start).
    pub async fn recover_all_dispatched(&self, deadline: i64) -> Result<()> {
        sqlx::query("UPDATE dispatch_queue SET status = $2, recovery_deadline = $1 WHERE status = $3")
            .bind(deadline)
            .bind(QueueStatus::Recovering.as_str())
            .bind(QueueStatus::Dispatched.as_str())
            .execute(&self.pool)
            .await
            .map_err(q("recover dispatched entries"))?;
        Ok(())
    }

    /// A reconnected agent claims its job back: `recovering` → `dispatched`.
    pub async fn reclaim_entry(&self, job_id: &JobId, agent_id: &AgentId) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE dispatch_queue SET status = $3, recovery_deadline = NULL, ack_deadline = NULL
             WHERE job_id = $1 AND agent_id = $2 AND status = $4",
        )
        .bind(job_id.as_str())
        .bind(agent_id.as_str())
        .bind(QueueStatus::Dispatched.as_str())
        .bind(QueueStatus::Recovering.as_str())
        .execute(&self.pool)
        .await
        .map_err(q("reclaim queue entry"))?;
        Ok(done.rows_affected() == 1)
    }

    /// How many entries are in `status` (the queue-depth gauge).
    pub async fn count_queue_entries(&self, status: QueueStatus) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM dispatch_queue WHERE status = $1")
            .bind(status.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(q("count queue entries"))?;
        Ok(get::<i64>(&row, "n")?.max(0) as u64)
    }

    /// Records why provisioning an agent for the entry failed (shown when the entry expires).
    pub async fn set_provisioning_error(&self, job_id: &JobId, error: &str) -> Result<()> {
        sqlx::query("UPDATE dispatch_queue SET last_provisioning_error = $2 WHERE job_id = $1")
            .bind(job_id.as_str())
            .bind(error)
            .execute(&self.pool)
            .await
            .map_err(q("set provisioning error"))?;
        Ok(())
    }
}

/// Final state of an entry (`completed`, `failed`, `expired`); `false` if already final.
pub(crate) async fn close_entry_in(
    conn: &mut sqlx::AnyConnection,
    job_id: &JobId,
    status: QueueStatus,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE dispatch_queue SET status = $2, ack_deadline = NULL, recovery_deadline = NULL
         WHERE job_id = $1 AND status IN ($3, $4, $5)",
    )
    .bind(job_id.as_str())
    .bind(status.as_str())
    .bind(QueueStatus::Pending.as_str())
    .bind(QueueStatus::Dispatched.as_str())
    .bind(QueueStatus::Recovering.as_str())
    .execute(&mut *conn)
    .await
    .map_err(q("close queue entry"))?;
    Ok(done.rows_affected() == 1)
}

async fn set_job_agent_in(conn: &mut sqlx::AnyConnection, job_id: &JobId, agent_id: Option<&str>) -> Result<()> {
    sqlx::query("UPDATE jobs SET agent_id = $2 WHERE job_id = $1")
        .bind(job_id.as_str())
        .bind(agent_id)
        .execute(&mut *conn)
        .await
        .map_err(q("set job agent"))?;
    Ok(())
}
