//! `kici approve <runId>` and `kici reject <runId> --reason …`: decide the run's jobs that wait
//! for approval (`POST /api/v1/runs/:runId/approve|reject`). The token's label is the
//! approver that reviewer clauses name.

use std::process::ExitCode;

use clap::Args;
use kici_engine::api::secrets::{HoldDecision, HoldStatus, HoldsDecided};

use crate::runs::{ApiArgs, client};

#[derive(Debug, Args)]
pub struct ApproveArgs {
    #[command(flatten)]
    api: ApiArgs,
    run_id: String,
    /// Only this job (id or name); default: every job of the run waiting for approval
    #[arg(long)]
    job: Option<String>,
}

#[derive(Debug, Args)]
pub struct RejectArgs {
    #[command(flatten)]
    api: ApiArgs,
    run_id: String,
    /// Why (shown in the run's failure and timeline)
    #[arg(long)]
    reason: Option<String>,
    /// Only this job (id or name)
    #[arg(long)]
    job: Option<String>,
}

pub async fn approve(args: ApproveArgs) -> anyhow::Result<ExitCode> {
    let body = HoldDecision {
        job: args.job,
        reason: None,
    };
    let decided: HoldsDecided = client(args.api)?
        .post(&["api", "v1", "runs", &args.run_id, "approve"], &body)
        .await?;
    print!("{}", render(&decided));
    Ok(ExitCode::SUCCESS)
}

pub async fn reject(args: RejectArgs) -> anyhow::Result<ExitCode> {
    let body = HoldDecision {
        job: args.job,
        reason: args.reason,
    };
    let decided: HoldsDecided = client(args.api)?
        .post(&["api", "v1", "runs", &args.run_id, "reject"], &body)
        .await?;
    print!("{}", render(&decided));
    Ok(ExitCode::SUCCESS)
}

fn render(decided: &HoldsDecided) -> String {
    let mut out = String::new();
    for hold in &decided.holds {
        let line = match hold.status {
            HoldStatus::Approved => format!("Job {} approved: it is queued.", hold.job_name),
            HoldStatus::Rejected => format!("Job {} rejected: it failed before it started.", hold.job_name),
            HoldStatus::Expired => format!("Job {}: its approval expired.", hold.job_name),
            HoldStatus::Pending => {
                let approvers: Vec<&str> = hold.approvals.iter().map(|a| a.name.as_str()).collect();
                format!(
                    "Job {} approved by {}; it still waits for the other reviewers ({}).",
                    hold.job_name,
                    approvers.join(", "),
                    hold.clauses
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}
