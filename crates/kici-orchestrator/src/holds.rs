//! Deciding holds: approvals (every clause of a hold must be met by someone; an approver must
//! meet one), rejections, and expiry (`Approval expired for <scope> hold`). Each decision is
//! one transaction with the job's move, is written to the audit log, and is a timeline event
//! naming who decided and when.

use kici_engine::api::RunEventType;
use kici_engine::api::secrets::{AuditEntry, HeldJob, HoldStatus, HoldsDecided};
use kici_engine::failure::{InitFailure, InitFailureCategory, InitFailureScope};
use kici_engine::ids::RunId;
use kici_engine::protection::{self, Approver};
use kici_engine::status::JobEvent;
use kici_store::{HoldDecisionRecord, HoldOutcome, NewAudit, NewRunEvent, StoreError};
use serde_json::json;

use crate::clock::now_ms;
use crate::ids::new_id;
use crate::progress;
use crate::scoped_secrets::DEFAULT_ORG;
use crate::state::Shared;

/// Who decides, as the audit log names them.
#[derive(Debug, Clone)]
pub struct Decider {
    pub approver: Approver,
    pub role: String,
}

/// Why a decision was refused, for a 4xx answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    NoPendingHold(String),
    NotAnApprover(String),
}

impl Refused {
    /// The `error.code` of the REST API and of the Platform's answers.
    pub fn code(&self) -> &'static str {
        match self {
            Refused::NoPendingHold(_) => "no_pending_hold",
            Refused::NotAnApprover(_) => "not_a_reviewer",
        }
    }

    pub fn into_message(self) -> String {
        match self {
            Refused::NoPendingHold(message) | Refused::NotAnApprover(message) => message,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject,
}

fn environment_rules(hold: &HeldJob, message: String) -> InitFailure {
    InitFailure {
        scope: InitFailureScope::Job,
        category: InitFailureCategory::EnvironmentRules,
        message,
        job_name: Some(hold.job_name.clone()),
    }
}

async fn record(state: &Shared, hold: &HeldJob, event_type: RunEventType, metadata: serde_json::Value) {
    let event = NewRunEvent {
        event_id: new_id(),
        run_id: hold.run_id.clone(),
        job_id: Some(hold.job_id.clone()),
        event_type,
        source_service: "orchestrator".to_string(),
        timestamp_ms: now_ms(),
        metadata,
    };
    if let Err(err) = state.timeline.record(event).await {
        tracing::warn!(error = %err, runId = %hold.run_id, "cannot record a hold event");
    }
}

async fn audit(
    state: &Shared,
    hold: &HeldJob,
    action: &str,
    decider: &Decider,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    state
        .store
        .insert_audit(&NewAudit {
            entry_id: new_id(),
            org_id: DEFAULT_ORG.to_string(),
            entry: AuditEntry {
                timestamp: now_ms(),
                action: action.to_string(),
                context_name: Some(hold.scope.clone()),
                secret_keys: Vec::new(),
                outcome: "success".to_string(),
                run_id: Some(hold.run_id.clone()),
                job_id: Some(hold.job_id.clone()),
                actor: decider.approver.name.clone(),
                role: Some(decider.role.clone()),
                metadata: reason.map(|r| json!({ "reason": r })),
            },
        })
        .await
}

/// Approves or rejects the pending holds of `run_id` (only `job`'s, by id or name, when given).
pub async fn decide(
    state: &Shared,
    run_id: &RunId,
    job: Option<&str>,
    verdict: Verdict,
    decider: &Decider,
    reason: Option<&str>,
) -> Result<Result<HoldsDecided, Refused>, StoreError> {
    let pending: Vec<HeldJob> = state
        .store
        .holds(Some(run_id), Some(HoldStatus::Pending))
        .await?
        .into_iter()
        .filter(|h| job.is_none_or(|j| h.job_id.as_str() == j || h.job_name == j))
        .collect();
    if pending.is_empty() {
        return Ok(Err(Refused::NoPendingHold(format!(
            "run {run_id} has no job waiting for approval{}",
            job.map(|j| format!(" named `{j}`")).unwrap_or_default()
        ))));
    }
    if let Some(hold) = pending
        .iter()
        .find(|h| !protection::may_approve(&h.clauses, &decider.approver))
    {
        let clauses: Vec<String> = hold.clauses.iter().map(ToString::to_string).collect();
        return Ok(Err(Refused::NotAnApprover(format!(
            "`{}` is not among the reviewers of job `{}` ({}): {}",
            decider.approver.name,
            hold.job_name,
            hold.scope,
            clauses.join(", ")
        ))));
    }
    let mut decided = Vec::new();
    for hold in pending {
        match verdict {
            Verdict::Approve => approve(state, &hold, decider).await?,
            Verdict::Reject => reject(state, &hold, decider, reason).await?,
        }
        decided.push(hold.hold_id);
    }
    progress::advance_run(state, run_id).await?;
    let holds = state
        .store
        .holds(Some(run_id), None)
        .await?
        .into_iter()
        .filter(|h| decided.contains(&h.hold_id))
        .collect();
    Ok(Ok(HoldsDecided {
        run_id: run_id.clone(),
        holds,
    }))
}

async fn approve(state: &Shared, hold: &HeldJob, decider: &Decider) -> Result<(), StoreError> {
    let mut approvals = hold.approvals.clone();
    if !approvals.iter().any(|a| a.name == decider.approver.name) {
        approvals.push(decider.approver.clone());
    }
    let remaining = protection::unmet(&hold.clauses, &approvals);
    audit(state, hold, "hold.approve", decider, None).await?;
    if !remaining.is_empty() {
        if state
            .store
            .add_approval(&hold.hold_id, &hold.approvals, &approvals)
            .await?
        {
            let remaining: Vec<String> = remaining.iter().map(ToString::to_string).collect();
            let metadata = json!({"by": decider.approver.name, "remaining": remaining, "job": hold.job_name});
            record(state, hold, RunEventType::HoldApproved, metadata).await;
        }
        return Ok(());
    }
    let now = now_ms();
    let decision = HoldDecisionRecord {
        status: HoldStatus::Approved,
        decided_by: decider.approver.name.clone(),
        reason: None,
        at: now,
    };
    let done = match progress::release_entry(state, &hold.run_id, &hold.job_id).await? {
        Some(Ok(entry)) => {
            state
                .store
                .decide_hold(hold, &decision, HoldOutcome::Queue(&entry))
                .await?
        }
        Some(Err(init)) => {
            let outcome = HoldOutcome::Fail {
                event: JobEvent::Reject,
                error: &init.message,
                init_failure: &init,
            };
            state.store.decide_hold(hold, &decision, outcome).await?
        }
        None => false,
    };
    if done && hold.scope.split(", ").any(|scope| scope == "trust") {
        trusted(state, &hold.run_id, &decider.approver.name).await?;
    }
    if done {
        tracing::info!(runId = %hold.run_id, jobId = %hold.job_id, by = %decider.approver.name, "hold approved");
        record(
            state,
            hold,
            RunEventType::HoldApproved,
            json!({"by": decider.approver.name, "job": hold.job_name}),
        )
        .await;
        state.wake_dispatcher();
    }
    Ok(())
}

/// A maintainer approved an untrusted pull request's run: its later jobs are not held again.
async fn trusted(state: &Shared, run_id: &RunId, by: &str) -> Result<(), StoreError> {
    let Some(mut trust) = state.store.get_run(run_id).await?.and_then(|run| run.trust) else {
        return Ok(());
    };
    if trust.hold.take().is_some() {
        state.store.set_run_trust(run_id, &trust).await?;
        tracing::info!(runId = %run_id, by, "untrusted pull request approved to run");
    }
    Ok(())
}

async fn reject(state: &Shared, hold: &HeldJob, decider: &Decider, reason: Option<&str>) -> Result<(), StoreError> {
    let message = protection::approval_rejected(&hold.scope, &decider.approver.name, reason);
    let init = environment_rules(hold, message.clone());
    let decision = HoldDecisionRecord {
        status: HoldStatus::Rejected,
        decided_by: decider.approver.name.clone(),
        reason: reason.map(str::to_string),
        at: now_ms(),
    };
    let outcome = HoldOutcome::Fail {
        event: JobEvent::Reject,
        error: &message,
        init_failure: &init,
    };
    if state.store.decide_hold(hold, &decision, outcome).await? {
        audit(state, hold, "hold.reject", decider, reason).await?;
        tracing::info!(runId = %hold.run_id, jobId = %hold.job_id, by = %decider.approver.name, "hold rejected");
        let metadata = json!({"by": decider.approver.name, "reason": reason, "job": hold.job_name});
        record(state, hold, RunEventType::HoldRejected, metadata).await;
    }
    Ok(())
}

/// Fails the jobs whose holds expired (the sweeper calls it; an expiry during a restart is
/// found at the next pass).
pub(crate) async fn expire(state: &Shared) -> Result<(), StoreError> {
    for hold in state.store.expired_holds(now_ms()).await? {
        let message = protection::approval_expired(&hold.scope);
        let init = environment_rules(&hold, message.clone());
        let decision = HoldDecisionRecord {
            status: HoldStatus::Expired,
            decided_by: "system".to_string(),
            reason: None,
            at: now_ms(),
        };
        let outcome = HoldOutcome::Fail {
            event: JobEvent::Expire,
            error: &message,
            init_failure: &init,
        };
        if state.store.decide_hold(&hold, &decision, outcome).await? {
            tracing::info!(runId = %hold.run_id, jobId = %hold.job_id, scope = %hold.scope, "hold expired");
            record(state, &hold, RunEventType::HoldExpired, json!({"job": hold.job_name})).await;
            progress::advance_run(state, &hold.run_id).await?;
        }
    }
    Ok(())
}
