//! Provisioning milestones (operator spec §2.2): what a backend reports while it starts an
//! agent. A milestone of a spawn bound to a job becomes a run timeline event, a line of the
//! job's `provisioning.jsonl`, and — for `scaler.failed` — the queue entry's
//! `last_provisioning_error`, which the job and run inherit if the job expires in the queue.
//! Every failure, bound or not, is also logged (`Scaler spawn failed`), counted and kept for
//! `kici-admin diagnose`.

use std::sync::Arc;

use kici_engine::api::{ProvisioningLine, RunEventType};
use kici_engine::ids::{AgentId, JobId, RunId};
use kici_store::NewRunEvent;
use serde_json::json;

use super::config::ScalerType;
use super::health::FailureRecord;
use super::manager::Core;
use crate::clock::now_ms;
use crate::ids::new_id;

/// The job a spawn is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub job_id: JobId,
    pub run_id: RunId,
}

/// The milestone types (`ScalerEventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Milestone {
    Provisioning,
    Network,
    Ready,
    Failed,
    Connecting,
}

impl Milestone {
    pub fn event_type(self) -> RunEventType {
        match self {
            Milestone::Provisioning => RunEventType::ScalerProvisioning,
            Milestone::Network => RunEventType::ScalerNetwork,
            Milestone::Ready => RunEventType::ScalerReady,
            Milestone::Failed => RunEventType::ScalerFailed,
            Milestone::Connecting => RunEventType::AgentConnecting,
        }
    }
}

/// Reports the milestones of one spawn.
#[derive(Clone)]
pub struct Reporter {
    pub(crate) core: Arc<Core>,
    pub agent_id: AgentId,
    pub scaler_name: String,
    pub backend: ScalerType,
}

impl Reporter {
    /// The job the agent is spawned for; read each time, as a job may claim a warm agent
    /// while it starts (its earlier milestones stay unattributed).
    pub fn binding(&self) -> Option<Binding> {
        self.core.binding_of(&self.agent_id)
    }

    pub async fn milestone(&self, milestone: Milestone, detail: &str) {
        let now = now_ms();
        let binding = self.binding();
        if milestone == Milestone::Failed {
            self.record_failure(binding.as_ref(), detail, now);
        } else {
            tracing::info!(agentId = %self.agent_id, scaler = %self.scaler_name, backend = %self.backend, eventType = %milestone.event_type(), "{detail}");
        }
        let Some(binding) = &binding else { return };
        if let Err(err) = self.record_bound(binding, milestone, detail, now).await {
            tracing::error!(agentId = %self.agent_id, runId = %binding.run_id, jobId = %binding.job_id, error = %err, "cannot record a provisioning milestone");
        }
    }

    pub async fn failed(&self, detail: &str) {
        self.milestone(Milestone::Failed, detail).await;
    }

    fn record_failure(&self, binding: Option<&Binding>, detail: &str, now: i64) {
        let bound = binding.is_some();
        let (run_id, job_id) = binding.map_or(("", ""), |b| (b.run_id.as_str(), b.job_id.as_str()));
        tracing::warn!(agentId = %self.agent_id, scaler = %self.scaler_name, backend = %self.backend, runId = %run_id, jobId = %job_id, detail = %detail, "Scaler spawn failed");
        kici_telemetry::metrics::orchestrator::scaler_spawn_failed(self.backend.as_str(), bound);
        self.core.record_failure(FailureRecord {
            scaler_name: self.scaler_name.clone(),
            backend: self.backend,
            bound,
            detail: detail.to_string(),
            timestamp_ms: now,
        });
    }

    async fn record_bound(
        &self,
        binding: &Binding,
        milestone: Milestone,
        detail: &str,
        now: i64,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let ctx = self.core.context();
        // First: it is what the job and run inherit if the job expires in the queue.
        if milestone == Milestone::Failed {
            ctx.store.set_provisioning_error(&binding.job_id, detail).await?;
        }
        ctx.timeline
            .record(NewRunEvent {
                event_id: new_id(),
                run_id: binding.run_id.clone(),
                job_id: Some(binding.job_id.clone()),
                event_type: milestone.event_type(),
                source_service: "orchestrator".to_string(),
                timestamp_ms: now,
                metadata: json!({ "agentId": self.agent_id, "detail": detail, "category": "scaler" }),
            })
            .await?;
        ctx.logs
            .append_provisioning(
                &binding.run_id,
                &binding.job_id,
                &ProvisioningLine {
                    ts: now,
                    phase: "provisioning".to_string(),
                    event_type: milestone.event_type().to_string(),
                    message: detail.to_string(),
                    agent_id: self.agent_id.clone(),
                },
            )
            .await?;
        Ok(())
    }
}
