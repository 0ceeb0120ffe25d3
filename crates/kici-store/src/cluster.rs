//! Several orchestrators on one database: which one leads (runs the singleton duties), which
//! are alive, and wake-ups between them (PostgreSQL `LISTEN`/`NOTIFY`: a job one queued may be
//! for another's agents). On PostgreSQL the leader holds a session advisory lock on a connection of
//! its own; the server releases it when that connection ends: at once for a killed process,
//! within about 11 s (TCP keepalives set on that connection) for a host or network that went
//! away. The leader gives up its duties when a check of that connection does not answer within
//! [`HOLD_CHECK_TIMEOUT`], before the server could give the lock to another. SQLite has one
//! orchestrator: it always leads.

use std::time::Duration;

use sqlx::AnyConnection;

use crate::{Backend, Result, Store, get, q};

/// The advisory lock's name (`hashtext` of it is the second key).
const LEADER_LOCK: &str = "kici_orchestrator_leader";

/// KiCI's advisory locks' first key ("kici" in ASCII), so other applications' locks on the
/// database do not collide with them.
pub(crate) const LOCK_SPACE: i32 = 0x6b69_6369;

/// How long a check of the leader's connection may take before the leader steps down.
pub const HOLD_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The channel a queued job is announced on.
const DISPATCH_CHANNEL: &str = "kici_dispatch";

/// Hears the other orchestrators' wake-ups (PostgreSQL only).
pub struct DispatchListener(sqlx::postgres::PgListener);

impl DispatchListener {
    /// The next wake-up; an error when the connection dropped (the next call reconnects).
    pub async fn next(&mut self) -> Result<()> {
        self.0.recv().await.map_err(q("hear a dispatch wake-up"))?;
        Ok(())
    }
}

/// This instance leads while it holds this: on PostgreSQL, the connection holding the lock.
#[derive(Debug)]
pub struct Leadership {
    conn: Option<AnyConnection>,
}

impl Leadership {
    /// Whether the lock is still held: its connection answers within [`HOLD_CHECK_TIMEOUT`] (a
    /// connection the server closed has lost it; one that hangs may have).
    pub async fn still_held(&mut self) -> bool {
        match &mut self.conn {
            Some(conn) => {
                let check = sqlx::query("SELECT 1").execute(&mut *conn);
                matches!(tokio::time::timeout(HOLD_CHECK_TIMEOUT, check).await, Ok(Ok(_)))
            }
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
        let mut pooled = self.pool.acquire().await.map_err(q("connect to lead"))?;
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(LOCK_SPACE)
            .bind(LEADER_LOCK)
            .fetch_one(&mut *pooled)
            .await
            .map_err(q("try the leader lock"))?;
        if !taken {
            // It holds nothing: back to the pool, so a follower opens no connection per try.
            return Ok(None);
        }
        // Taken: the connection leaves the pool, and the lock lives exactly as long as it.
        // Keepalives let the server notice a vanished host in seconds, not two hours.
        let mut conn = pooled.detach();
        sqlx::raw_sql("SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3")
            .execute(&mut conn)
            .await
            .map_err(q("set the leader connection's keepalives"))?;
        Ok(Some(Leadership { conn: Some(conn) }))
    }

    /// Tells the other orchestrators a job was queued (PostgreSQL; nothing on SQLite).
    pub async fn announce_dispatch(&self) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(DISPATCH_CHANNEL)
                .execute(&self.pool)
                .await
                .map_err(q("announce a dispatch"))?;
        }
        Ok(())
    }

    /// Listens for [`Store::announce_dispatch`] on a connection of its own; `None` on SQLite.
    pub async fn listen_for_dispatch(&self) -> Result<Option<DispatchListener>> {
        if self.backend == Backend::Sqlite {
            return Ok(None);
        }
        let mut listener = sqlx::postgres::PgListener::connect(&self.url.0)
            .await
            .map_err(q("connect the dispatch listener"))?;
        listener
            .listen(DISPATCH_CHANNEL)
            .await
            .map_err(q("listen for dispatch wake-ups"))?;
        Ok(Some(DispatchListener(listener)))
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

    /// Forgets one instance: it stopped.
    pub async fn leave_cluster(&self, instance_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM orchestrator_instances WHERE instance_id = $1")
            .bind(instance_id)
            .execute(&self.pool)
            .await
            .map_err(q("remove the instance"))?;
        Ok(())
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
