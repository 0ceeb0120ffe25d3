//! Several orchestrators on one database: which one leads (runs the singleton duties) and
//! which are alive. On PostgreSQL the leader holds a session advisory lock on a connection of
//! its own; the server releases it when that connection ends, a killed process's included, so
//! another instance's next try takes over. SQLite has one orchestrator: it always leads.

use sqlx::AnyConnection;

use crate::{Backend, Result, Store, get, q};

/// The advisory lock's name (`hashtext` of it is the key).
const LEADER_LOCK: &str = "kici_orchestrator_leader";

/// This instance leads while it holds this: on PostgreSQL, the connection holding the lock.
#[derive(Debug)]
pub struct Leadership {
    conn: Option<AnyConnection>,
}

impl Leadership {
    /// Whether the lock is still held: its connection answers (a connection the server closed
    /// has lost it).
    pub async fn still_held(&mut self) -> bool {
        match &mut self.conn {
            Some(conn) => sqlx::query("SELECT 1").execute(&mut *conn).await.is_ok(),
            None => true,
        }
    }
}

/// An orchestrator sharing the database, as it last said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRecord {
    pub instance_id: String,
    pub started_at: i64,
    pub last_beat_at: i64,
    /// Since when it holds the leader lock, as it last said.
    pub leading_since: Option<i64>,
}

impl Store {
    /// Takes the leadership when no other instance holds it; `None` when one does.
    pub async fn try_lead(&self) -> Result<Option<Leadership>> {
        if self.backend == Backend::Sqlite {
            return Ok(Some(Leadership { conn: None }));
        }
        // Its own connection, out of the pool: the lock lives exactly as long as it.
        let mut conn = self.pool.acquire().await.map_err(q("connect to lead"))?.detach();
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(LEADER_LOCK)
            .fetch_one(&mut conn)
            .await
            .map_err(q("try the leader lock"))?;
        Ok(taken.then_some(Leadership { conn: Some(conn) }))
    }

    /// Records that `instance_id` (up since `started_at`) is alive at `now`, leading since
    /// `leading_since` or not leading.
    pub async fn beat_instance(
        &self,
        instance_id: &str,
        started_at: i64,
        now: i64,
        leading_since: Option<i64>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO orchestrator_instances (instance_id, started_at, last_beat_at, leading_since) VALUES ($1, $2, $3, $4)
             ON CONFLICT (instance_id) DO UPDATE SET started_at = $2, last_beat_at = $3, leading_since = $4",
        )
        .bind(instance_id)
        .bind(started_at)
        .bind(now)
        .bind(leading_since.unwrap_or(0))
        .execute(&self.pool)
        .await
        .map_err(q("beat instance"))?;
        Ok(())
    }

    /// Every instance that beat since `since`, the latest to take the lead first, then by id.
    pub async fn list_instances(&self, since: i64) -> Result<Vec<InstanceRecord>> {
        let rows = sqlx::query(
            "SELECT instance_id, started_at, last_beat_at, leading_since FROM orchestrator_instances
             WHERE last_beat_at >= $1 ORDER BY leading_since DESC, instance_id",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(q("list instances"))?;
        rows.iter()
            .map(|row| {
                Ok(InstanceRecord {
                    instance_id: get(row, "instance_id")?,
                    started_at: get(row, "started_at")?,
                    last_beat_at: get(row, "last_beat_at")?,
                    leading_since: Some(get::<i64>(row, "leading_since")?).filter(|since| *since > 0),
                })
            })
            .collect()
    }

    /// Forgets instances silent since before `before`.
    pub async fn forget_instances(&self, before: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM orchestrator_instances WHERE last_beat_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(q("forget instances"))?;
        Ok(done.rows_affected())
    }
}
