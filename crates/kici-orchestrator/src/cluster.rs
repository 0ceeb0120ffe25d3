//! Several orchestrators on one PostgreSQL database: each beats in the store every
//! [`BEAT_INTERVAL`], and the one holding the leader lock (`kici_store::Leadership`) runs the
//! singleton duties — the sweeper (timeouts, stale jobs, expiries, pruning) and the scheduler —
//! while the others serve webhooks, the API and their agents. A leader that dies loses the
//! lock with its connection, and another instance takes it at its next beat. With SQLite
//! there is one orchestrator, and it leads from the start.

use std::time::Duration;

use kici_engine::api::ops::InstanceView;
use kici_store::{Leadership, StoreError};
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::state::Shared;

/// How often an instance beats and, when it does not lead, tries to.
pub const BEAT_INTERVAL: Duration = Duration::from_secs(2);

/// An instance silent for this long is shown as not alive.
const ALIVE_WITHIN_MS: i64 = 3 * BEAT_INTERVAL.as_millis() as i64;

/// Instances silent for a day are forgotten.
const FORGET_AFTER_MS: i64 = 24 * 60 * 60 * 1000;

/// Tries to lead once, so a lone orchestrator leads before its duties start, and beats once;
/// a failure of either is logged, and the next beat tries again.
pub async fn join(state: &Shared) -> Option<Leadership> {
    let leadership = match state.store.try_lead().await {
        Ok(leadership) => leadership,
        Err(err) => {
            tracing::warn!(error = %err, "trying the leader lock failed; this orchestrator follows until a later beat takes it");
            None
        }
    };
    set_leading(state, leadership.is_some());
    if let Err(err) = beat(state).await {
        tracing::warn!(error = %err, "recording this orchestrator's first beat failed; tried again at the next beat");
    }
    leadership
}

/// Whether another orchestrator than this one beat lately: its jobs are not this one's to
/// recover at start.
pub async fn others_alive(state: &Shared) -> Result<bool, StoreError> {
    Ok(instances(state)
        .await?
        .iter()
        .any(|i| i.alive && i.instance_id != state.instance_id))
}

/// Beats, keeps or takes the lead, until shutdown.
pub async fn run(state: Shared, mut leadership: Option<Leadership>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(BEAT_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        match leadership.as_mut() {
            Some(held) => {
                if !held.still_held().await {
                    leadership = None;
                    set_leading(&state, false);
                }
            }
            None => match state.store.try_lead().await {
                Ok(taken) => {
                    leadership = taken;
                    set_leading(&state, leadership.is_some());
                }
                Err(err) => tracing::warn!(error = %err, "trying the leader lock failed; tried again at the next beat"),
            },
        }
        if let Err(err) = beat(&state).await {
            tracing::warn!(error = %err, "recording this orchestrator's beat failed; tried again at the next beat");
        }
        // This instance's own housekeeping rides on its beat.
        state.logs.fold_idle().await;
    }
}

/// Wakes this dispatcher when another orchestrator announces a queued job, until shutdown
/// (PostgreSQL; returns at once on SQLite). A dropped connection is reopened.
pub async fn hear_dispatches(state: Shared, mut shutdown: watch::Receiver<bool>) {
    loop {
        let listener = tokio::select! {
            listener = state.store.listen_for_dispatch() => listener,
            _ = shutdown.changed() => return,
        };
        let mut listener = match listener {
            Ok(Some(listener)) => listener,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for the other orchestrators' dispatch wake-ups; trying again");
                tokio::select! {
                    _ = tokio::time::sleep(BEAT_INTERVAL) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        };
        loop {
            tokio::select! {
                heard = listener.next() => match heard {
                    Ok(()) => state.dispatch.wake(),
                    Err(err) => {
                        tracing::warn!(error = %err, "the dispatch wake-up listener dropped; reconnecting");
                        break;
                    }
                },
                _ = shutdown.changed() => return,
            }
        }
    }
}

fn set_leading(state: &Shared, leading: bool) {
    let was = state.leads();
    if leading != was {
        let since = if leading { now_ms() } else { 0 };
        state.leading_since.store(since, std::sync::atomic::Ordering::SeqCst);
    }
    if leading && !was {
        tracing::info!(instanceId = %state.instance_id, "this orchestrator leads: it runs the sweeper and the schedules");
    } else if was && !leading {
        tracing::warn!(instanceId = %state.instance_id, "this orchestrator lost the leader lock (its database connection ended); another one takes over");
    }
}

async fn beat(state: &Shared) -> Result<(), StoreError> {
    let now = now_ms();
    state
        .store
        .beat_instance(
            &state.instance_id,
            state.started_at_ms,
            now,
            Some(state.leading_since.load(std::sync::atomic::Ordering::SeqCst)).filter(|since| *since > 0),
        )
        .await?;
    if state.leads() {
        state.store.forget_instances(now - FORGET_AFTER_MS).await?;
    }
    Ok(())
}

/// The instances that beat in the last day (leader first), each with its role and whether it
/// is alive, for `GET /api/v1/admin/cluster/health`. The leader is the alive instance that
/// took the lead last: a leader that just died still looks alive for a few beats.
pub async fn instances(state: &Shared) -> Result<Vec<InstanceView>, StoreError> {
    let now = now_ms();
    let listed = state.store.list_instances(now - FORGET_AFTER_MS).await?;
    let alive = |last_beat_at: i64| now - last_beat_at <= ALIVE_WITHIN_MS;
    let leader = listed
        .iter()
        .filter(|i| i.leading_since.is_some() && alive(i.last_beat_at))
        .max_by_key(|i| i.leading_since)
        .map(|i| i.instance_id.clone());
    Ok(listed
        .into_iter()
        .map(|instance| {
            let alive = alive(instance.last_beat_at);
            InstanceView {
                role: if leader.as_ref() == Some(&instance.instance_id) {
                    "leader"
                } else {
                    "follower"
                }
                .to_string(),
                alive,
                instance_id: instance.instance_id,
                started_at: instance.started_at,
                last_beat_at: instance.last_beat_at,
            }
        })
        .collect())
}
