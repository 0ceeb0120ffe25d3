//! The approval queue: `GET /api/v1/holds[?status=&runId=]`, and `POST
//! /api/v1/runs/:runId/approve|reject` (`{job?, reason?}`) for owner and admin tokens; the
//! token's label is the approver a reviewer clause `user:<label>` names.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kici_engine::api::secrets::{HeldJobList, HoldDecision, HoldStatus, HoldsDecided};
use kici_engine::ids::RunId;
use kici_engine::protection::Approver;
use serde::Deserialize;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use crate::holds::{self, Decider, Refused, Verdict};
use crate::state::Shared;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldFilter {
    status: Option<String>,
    run_id: Option<RunId>,
}

pub async fn list(State(state): State<Shared>, Query(filter): Query<HoldFilter>) -> ApiResult<Json<HeldJobList>> {
    let status = match filter.status.as_deref() {
        None | Some("all") => None,
        Some(text) => Some(text.parse::<HoldStatus>().map_err(|err| {
            ApiError::bad_request(
                "invalid_status",
                format!("{err} (use pending, approved, rejected, expired or all)"),
            )
        })?),
    };
    let holds = state.store.holds(filter.run_id.as_ref(), status).await?;
    Ok(Json(HeldJobList { holds }))
}

async fn decide(
    state: Shared,
    caller: Caller,
    run_id: RunId,
    body: HoldDecision,
    verdict: Verdict,
) -> ApiResult<Json<HoldsDecided>> {
    let decider = Decider {
        approver: Approver {
            name: caller.0.label.clone(),
            teams: caller.0.teams.clone(),
        },
        role: caller.0.role.clone(),
    };
    match holds::decide(
        &state,
        &run_id,
        body.job.as_deref(),
        verdict,
        &decider,
        body.reason.as_deref(),
    )
    .await?
    {
        Ok(decided) => Ok(Json(decided)),
        Err(refused) => {
            let status = match refused {
                Refused::NoPendingHold(_) => StatusCode::CONFLICT,
                Refused::NotAnApprover(_) => StatusCode::FORBIDDEN,
            };
            Err(ApiError::new(status, refused.code(), refused.into_message()))
        }
    }
}

pub async fn approve(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(run_id): Path<RunId>,
    body: Option<Json<HoldDecision>>,
) -> ApiResult<Json<HoldsDecided>> {
    decide(
        state,
        caller,
        run_id,
        body.map(|b| b.0).unwrap_or_default(),
        Verdict::Approve,
    )
    .await
}

pub async fn reject(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(run_id): Path<RunId>,
    body: Option<Json<HoldDecision>>,
) -> ApiResult<Json<HoldsDecided>> {
    decide(
        state,
        caller,
        run_id,
        body.map(|b| b.0).unwrap_or_default(),
        Verdict::Reject,
    )
    .await
}
