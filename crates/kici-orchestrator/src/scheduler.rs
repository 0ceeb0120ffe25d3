//! Schedules: every `KICI_SCHEDULE_INTERVAL_MS` (10 s) each enabled schedule registration whose
//! latest tick is due is claimed in the store (so a tick fires once, across restarts and
//! orchestrators) and its workflow started at the head of the default branch, with its inputs'
//! defaults. A tick missed while the orchestrator was down fires once when it is back: the
//! latest one, however many were missed.

use kici_engine::event::{EventEnvelope, EventType};
use kici_engine::schedule::Schedule;
use kici_engine::trigger::Trigger;
use kici_store::Registration;
use serde_json::json;
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::pipeline::PipelineError;
use crate::starts::{self, StartError, StartRequest, Started};
use crate::state::Shared;

pub async fn run(state: Shared, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(state.config.schedule_interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        // One orchestrator of several sharing the database fires schedules (`cluster`); each
        // tick is claimed in the store too.
        if !state.leads() {
            continue;
        }
        if let Err(err) = fire_due(&state, now_ms()).await {
            tracing::error!(error = %err, "reading the schedules failed; retried at the next tick");
        }
    }
}

/// A registration's schedule, or `None` (logged) when it is not one this build reads.
pub fn schedule_of(registration: &Registration) -> Option<(Trigger, Schedule)> {
    let trigger: Trigger = serde_json::from_str(&registration.trigger_json).ok()?;
    let Trigger::Schedule {
        cron_expression,
        timezone,
        ..
    } = &trigger
    else {
        return None;
    };
    let schedule = Schedule::parse(cron_expression, timezone).ok()?;
    Some((trigger, schedule))
}

/// Fires every schedule whose tick is due at `now`; returns the runs started.
pub async fn fire_due(state: &Shared, now: i64) -> Result<Vec<Started>, kici_store::StoreError> {
    let mut started = Vec::new();
    for registration in state.store.registrations(Some("schedule")).await? {
        if !registration.enabled {
            continue;
        }
        let Some((_, schedule)) = schedule_of(&registration) else {
            tracing::warn!(registrationId = %registration.registration_id, workflow = %registration.workflow_name, "schedule registration does not parse; skipped");
            continue;
        };
        let Some(tick) = schedule.due(registration.last_fired_at, now) else {
            continue;
        };
        if !state
            .store
            .claim_schedule_tick(&registration.registration_id, tick)
            .await?
        {
            continue;
        }
        if let Some(run) = fire(state, &registration, tick).await? {
            started.push(run);
        }
    }
    Ok(started)
}

/// Starts a registration's workflow for `tick` (epoch ms). A failure to start is logged: the
/// tick is spent, as it would be for a run that failed.
pub async fn fire(
    state: &Shared,
    registration: &Registration,
    tick: i64,
) -> Result<Option<Started>, kici_store::StoreError> {
    match start_now(state, registration, tick, None).await {
        Ok(started) => {
            tracing::info!(runId = %started.run_id, workflow = %registration.workflow_name, registrationId = %registration.registration_id, tick, "schedule fired");
            Ok(Some(started))
        }
        Err(StartError::Pipeline(PipelineError::Store(err))) => Err(err),
        Err(err) => {
            tracing::error!(workflow = %registration.workflow_name, registrationId = %registration.registration_id, tick, error = %err, "schedule fired but no run started");
            Ok(None)
        }
    }
}

/// Starts a registration's workflow at the head of its branch, as the tick `tick` of its
/// schedule; `actor` is who asked for it when it is run by hand.
pub async fn start_now(
    state: &Shared,
    registration: &Registration,
    tick: i64,
    actor: Option<&str>,
) -> Result<Started, StartError> {
    let Some(source) = state.store.get_source(&registration.source_id).await? else {
        return Err(StartError::Lock(format!(
            "the source of schedule {} no longer exists",
            registration.registration_id
        )));
    };
    let Some((
        Trigger::Schedule {
            cron_expression,
            timezone,
            ..
        },
        _,
    )) = schedule_of(registration)
    else {
        return Err(StartError::Lock(format!(
            "schedule {} does not parse",
            registration.registration_id
        )));
    };
    let mut event = EventEnvelope::new(EventType::Schedule);
    event.provider = Some("schedule".to_string());
    event.sender_username = actor.map(str::to_string);
    event.payload = Some(json!({
        "cronExpression": cron_expression,
        "timezone": timezone,
        "scheduledAt": tick,
        "registrationId": registration.registration_id,
        "manual": actor.is_some(),
    }));
    let delivery_id = match actor {
        None => format!("schedule:{}:{tick}", registration.registration_id),
        Some(_) => format!("schedule-now:{}:{}", registration.registration_id, crate::ids::new_id()),
    };
    starts::start(
        state,
        StartRequest {
            source,
            repo: Some(registration.repo.clone()),
            git_ref: Some(registration.git_ref.clone()),
            workflow: registration.workflow_name.clone(),
            event,
            delivery_id,
            origin: starts::Origin::of(registration),
        },
    )
    .await
}
