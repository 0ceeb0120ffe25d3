//! Internal events and their delivery state: stored once under an id that names what happened,
//! claimed by a router under a lease (one router at a time per event, also across
//! orchestrators), then delivered, retried later, or dead (the dead-letter list).

use std::str::FromStr;

use kici_engine::ids::RunId;
use sqlx::any::AnyRow;

use crate::{Arg, Result, Store, dynamic, get, get_enum, get_json, q, to_json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    /// Waiting for its (next) delivery attempt.
    Pending,
    Delivered,
    /// Every attempt failed: in the dead-letter list.
    Dead,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Pending => "pending",
            EventStatus::Delivered => "delivered",
            EventStatus::Dead => "dead",
        }
    }
}

impl FromStr for EventStatus {
    type Err = ();
    fn from_str(text: &str) -> std::result::Result<EventStatus, ()> {
        match text {
            "pending" => Ok(EventStatus::Pending),
            "delivered" => Ok(EventStatus::Delivered),
            "dead" => Ok(EventStatus::Dead),
            _ => Err(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct KiciEvent {
    pub event_id: String,
    pub event_type: String,
    /// The event as workflows see it (`ctx.event`).
    pub envelope: serde_json::Value,
    pub status: EventStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    pub last_error: Option<String>,
    pub run_ids: Vec<RunId>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "event_id, event_type, envelope, status, attempts, next_attempt_at, lease_until, last_error, run_ids, created_at, updated_at";

fn row_to_event(row: &AnyRow) -> Result<KiciEvent> {
    Ok(KiciEvent {
        event_id: get(row, "event_id")?,
        event_type: get(row, "event_type")?,
        envelope: get_json(row, "envelope")?.unwrap_or(serde_json::Value::Null),
        status: get_enum(row, "status")?,
        attempts: get(row, "attempts")?,
        next_attempt_at: get(row, "next_attempt_at")?,
        lease_until: get(row, "lease_until")?,
        last_error: get(row, "last_error")?,
        run_ids: get_json(row, "run_ids")?.unwrap_or_default(),
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

impl Store {
    /// Stores a new event, due at once; false when an event of that id exists already (the
    /// same thing happened and was announced before).
    pub async fn enqueue_event(
        &self,
        event_id: &str,
        event_type: &str,
        envelope: &serde_json::Value,
        now: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO kici_events (event_id, event_type, envelope, status, next_attempt_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5, $5) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(event_id)
        .bind(event_type)
        .bind(to_json(envelope))
        .bind(EventStatus::Pending.as_str())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(q("enqueue event"))?;
        Ok(done.rows_affected() == 1)
    }

    /// The ids of up to `limit` events due at `now` whose lease is free, oldest due first; each
    /// is claimed ([`Store::claim_kici_event`]) just before its attempt.
    pub async fn due_event_ids(&self, now: i64, limit: i64) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT event_id FROM kici_events WHERE status = $1 AND next_attempt_at <= $2 \
             AND (lease_until IS NULL OR lease_until <= $2) ORDER BY next_attempt_at, event_id LIMIT $3",
        )
        .bind(EventStatus::Pending.as_str())
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(q("due events"))
    }

    /// Claims a pending event whose lease is free for `lease_ms`, counting one more attempt:
    /// `None` when it is not pending or another caller holds it (the claim is a compare-and-set
    /// on the attempts it read, so one caller wins, also across orchestrators).
    pub async fn claim_kici_event(&self, event_id: &str, now: i64, lease_ms: i64) -> Result<Option<KiciEvent>> {
        let Some(mut event) = self.get_kici_event(event_id).await? else {
            return Ok(None);
        };
        if event.status != EventStatus::Pending || event.lease_until.is_some_and(|until| until > now) {
            return Ok(None);
        }
        let lease = now + lease_ms;
        let done = sqlx::query(
            "UPDATE kici_events SET lease_until = $1, attempts = attempts + 1, updated_at = $2 \
             WHERE event_id = $3 AND status = $4 AND attempts = $5",
        )
        .bind(lease)
        .bind(now)
        .bind(event_id)
        .bind(EventStatus::Pending.as_str())
        .bind(event.attempts)
        .execute(&self.pool)
        .await
        .map_err(q("claim event"))?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        event.attempts += 1;
        event.lease_until = Some(lease);
        Ok(Some(event))
    }

    /// Updates the event with `set` (its `$n` bound to `args`, in order) while it is still
    /// attempt `attempts`'s; false when it is not (another took it over, or it was decided).
    async fn update_attempt(&self, (event_id, attempts): (&str, i64), set: &str, args: &[Arg<'_>]) -> Result<bool> {
        let n = args.len();
        let sql = format!(
            "UPDATE kici_events SET {set} WHERE event_id = ${} AND status = ${} AND attempts = ${}",
            n + 1,
            n + 2,
            n + 3
        );
        let mut all = args.to_vec();
        all.extend([
            Arg::Text(event_id),
            Arg::Text(EventStatus::Pending.as_str()),
            Arg::Int(attempts),
        ]);
        let done = dynamic(sql, &all)
            .execute(&self.pool)
            .await
            .map_err(q("update event attempt"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Extends the lease of attempt `attempts` to `now + lease_ms`; false when the event is no
    /// longer that attempt's.
    pub async fn renew_event_lease(&self, event_id: &str, attempts: i64, now: i64, lease_ms: i64) -> Result<bool> {
        let args = [Arg::Int(now + lease_ms), Arg::Int(now)];
        self.update_attempt((event_id, attempts), "lease_until = $1, updated_at = $2", &args)
            .await
    }

    /// Attempt `attempts` delivered the event; `run_ids` are the runs it started. False when
    /// the event is no longer that attempt's.
    pub async fn event_delivered(&self, event_id: &str, attempts: i64, run_ids: &[RunId], now: i64) -> Result<bool> {
        let runs = to_json(&run_ids);
        let args = [
            Arg::Text(EventStatus::Delivered.as_str()),
            Arg::Text(&runs),
            Arg::Int(now),
        ];
        let set = "status = $1, lease_until = NULL, last_error = NULL, run_ids = $2, updated_at = $3";
        self.update_attempt((event_id, attempts), set, &args).await
    }

    /// Attempt `attempts` failed: the event is due again at `retry_at`, or dead when `None`.
    /// The runs it started so far are kept (a retry starts only what is missing). False when
    /// the event is no longer that attempt's.
    pub async fn event_failed(
        &self,
        attempt: (&str, i64),
        error: &str,
        run_ids: &[RunId],
        retry_at: Option<i64>,
        now: i64,
    ) -> Result<bool> {
        let status = if retry_at.is_some() {
            EventStatus::Pending
        } else {
            EventStatus::Dead
        };
        let runs = to_json(&run_ids);
        let args = [
            Arg::Text(status.as_str()),
            Arg::Int(retry_at.unwrap_or(now)),
            Arg::Text(error),
            Arg::Text(&runs),
            Arg::Int(now),
        ];
        let set =
            "status = $1, next_attempt_at = $2, lease_until = NULL, last_error = $3, run_ids = $4, updated_at = $5";
        self.update_attempt(attempt, set, &args).await
    }

    pub async fn get_kici_event(&self, event_id: &str) -> Result<Option<KiciEvent>> {
        let sql = format!("SELECT {COLUMNS} FROM kici_events WHERE event_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("event"))?;
        row.as_ref().map(row_to_event).transpose()
    }

    /// Events newest first, of one status or all.
    pub async fn list_kici_events(&self, status: Option<EventStatus>, limit: i64) -> Result<Vec<KiciEvent>> {
        let filter = if status.is_some() { "WHERE status = $2" } else { "" };
        let sql = format!("SELECT {COLUMNS} FROM kici_events {filter} ORDER BY created_at DESC, event_id LIMIT $1");
        let mut args = vec![Arg::Int(limit)];
        if let Some(status) = status {
            args.push(Arg::Text(status.as_str()));
        }
        dynamic(sql, &args)
            .fetch_all(&self.pool)
            .await
            .map_err(q("events"))?
            .iter()
            .map(row_to_event)
            .collect()
    }

    /// How many events have `status` (all events when `None`).
    pub async fn count_kici_events(&self, status: Option<EventStatus>) -> Result<i64> {
        let (sql, args) = match status {
            Some(status) => (
                "SELECT COUNT(*) FROM kici_events WHERE status = $1",
                vec![Arg::Text(status.as_str())],
            ),
            None => ("SELECT COUNT(*) FROM kici_events", vec![]),
        };
        let row = dynamic(sql.to_string(), &args)
            .fetch_one(&self.pool)
            .await
            .map_err(q("count events"))?;
        sqlx::Row::try_get::<i64, _>(&row, 0).map_err(q("count events"))
    }

    /// A dead event back to pending with its attempts started over, claimed for its first
    /// attempt by the caller (as [`Store::claim_kici_event`] would) in the same statement, so
    /// the router's loop cannot take it first; `None` when it is not dead.
    pub async fn retry_dead_event(&self, event_id: &str, now: i64, lease_ms: i64) -> Result<Option<KiciEvent>> {
        let done = sqlx::query(
            "UPDATE kici_events SET status = $1, attempts = 1, next_attempt_at = $2, lease_until = $3, updated_at = $2 \
             WHERE event_id = $4 AND status = $5",
        )
        .bind(EventStatus::Pending.as_str())
        .bind(now)
        .bind(now + lease_ms)
        .bind(event_id)
        .bind(EventStatus::Dead.as_str())
        .execute(&self.pool)
        .await
        .map_err(q("retry event"))?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        self.get_kici_event(event_id).await
    }

    /// Removes a dead event; false when it is not dead.
    pub async fn discard_dead_event(&self, event_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM kici_events WHERE event_id = $1 AND status = $2")
            .bind(event_id)
            .bind(EventStatus::Dead.as_str())
            .execute(&self.pool)
            .await
            .map_err(q("discard event"))?;
        Ok(done.rows_affected() == 1)
    }
}
