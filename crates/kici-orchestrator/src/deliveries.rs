//! Accepting a verified webhook delivery: claim it (its id, and its body so a replay under a
//! new id is a duplicate) and record it durably in one transaction, process it in a task of its
//! own (a forge that hangs up cannot cancel it), answer within a budget, and after a restart
//! process again what a crash interrupted.

use kici_engine::ids::SourceId;
use std::time::Duration;

use kici_store::{EventLogEntry, NewDelivery, StoreError};

use crate::clock::now_ms;
use crate::ids::new_id;
use crate::pipeline::{self, Delivery, Outcome, PipelineError};
use crate::providers::Normalized;
use crate::state::Shared;

/// How long a delivery id and a body are remembered.
const DEDUP_TTL: Duration = Duration::from_secs(24 * 3600);

/// What the webhook answers.
#[derive(Debug)]
pub enum Answer {
    /// The id, or the same body, was accepted within [`DEDUP_TTL`].
    Duplicate,
    /// Processing ended within the answer budget.
    Done(Result<Outcome, PipelineError>),
    /// Processing goes on; `GET /api/v1/admin/deliveries/:id` tells how it ends.
    Processing,
}

/// The claim key of a body: the same signed body to the same source is one delivery.
pub fn body_key(source_id: &SourceId, body: &[u8]) -> String {
    format!("body:{source_id}:{}", kici_engine::hash::sha256_hex(body))
}

pub async fn accept(state: &Shared, delivery: Delivery) -> Result<Answer, StoreError> {
    let now = now_ms();
    let record = NewDelivery {
        delivery_id: delivery.delivery_id.clone(),
        source_id: delivery.source.source_id.clone(),
        event_type: delivery.normalized.event.event_type.as_str().to_string(),
        body_key: delivery.body_key.clone(),
        normalized: serde_json::to_string(&delivery.normalized).expect("a normalized event serializes"),
        created_at: now,
    };
    if !state
        .store
        .claim_new_delivery(&record, now + DEDUP_TTL.as_millis() as i64)
        .await?
    {
        state
            .store
            .insert_event_log(&EventLogEntry {
                id: new_id(),
                delivery_id: record.delivery_id.clone(),
                source_id: record.source_id,
                event_type: record.event_type,
                status: "duplicate".to_string(),
                run_ids: Vec::new(),
                error_message: None,
                created_at: now,
            })
            .await?;
        kici_telemetry::metrics::orchestrator::dedup_hit();
        tracing::info!(deliveryId = %record.delivery_id, "Duplicate webhook");
        return Ok(Answer::Duplicate);
    }
    let (done, finished) = tokio::sync::oneshot::channel();
    let task_state = state.clone();
    state.background.spawn(async move {
        // The webhook may have answered already; then nobody is waiting.
        let _ = done.send(process(&task_state, delivery).await);
    });
    Ok(
        match tokio::time::timeout(state.config.webhook_answer_budget, finished).await {
            Ok(Ok(result)) => Answer::Done(result),
            // The task ended without a result (a panic): the record still says processing.
            Ok(Err(_)) | Err(_) => Answer::Processing,
        },
    )
}

/// Runs the pipeline and records how the delivery ended.
async fn process(state: &Shared, delivery: Delivery) -> Result<Outcome, PipelineError> {
    let delivery_id = delivery.delivery_id.clone();
    let result = pipeline::process(state, delivery).await;
    let (status, run_ids, detail) = match &result {
        Ok(Outcome::Started(run_ids)) => ("processed", run_ids.clone(), None),
        Ok(Outcome::Ignored(reason)) => ("ignored", Vec::new(), Some(reason.clone())),
        Err(err) => ("failed", Vec::new(), Some(err.to_string())),
    };
    if let Err(err) = state
        .store
        .finish_delivery(&delivery_id, status, &run_ids, detail.as_deref(), now_ms())
        .await
    {
        tracing::error!(deliveryId = %delivery_id, error = %err, "cannot record how the delivery ended");
    }
    result
}

/// Processes again the deliveries a crash left `processing`. One that created runs already is
/// finished with them (processing it again would start them twice).
pub async fn resume(state: &Shared) -> Result<(), StoreError> {
    let store = &state.store;
    for record in store.unfinished_deliveries().await? {
        let id = record.delivery_id.clone();
        let runs = store.runs_of_delivery(&id).await?;
        if !runs.is_empty() {
            store
                .finish_delivery(&id, "processed", &runs, Some("finished after a restart"), now_ms())
                .await?;
            continue;
        }
        let source = store.get_source(&record.source_id).await?;
        let normalized = serde_json::from_str::<Normalized>(&record.normalized);
        let (Some(source), Ok(normalized)) = (source, normalized) else {
            store.release_delivery(&id, &record.body_key).await?;
            store
                .finish_delivery(
                    &id,
                    "failed",
                    &[],
                    Some("cannot be processed after a restart: its source was removed or its record is unreadable"),
                    now_ms(),
                )
                .await?;
            continue;
        };
        tracing::info!(deliveryId = %id, "processing a delivery a restart interrupted");
        let delivery = Delivery {
            source,
            delivery_id: id,
            body_key: record.body_key,
            normalized,
        };
        let task_state = state.clone();
        state.background.spawn(async move {
            // Its outcome is in the delivery's record.
            let _ = process(&task_state, delivery).await;
        });
    }
    Ok(())
}
