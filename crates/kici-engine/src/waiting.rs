//! Why a queued job has not started yet, in one sentence: "no idle agent with labels linux,
//! gpu; 2 busy; scaler \"pods\" is starting one". The orchestrator decides the facts, the
//! dashboard's agents page and `GET /api/v1/admin/queue/waiting` show this text.

use serde::{Deserialize, Serialize};

use crate::ids::{JobId, RunId};

/// What holds a queued job back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum WaitReason {
    /// Another job of its concurrency group runs.
    ConcurrencyGroup { group: String },
    /// Its run waits for its turn in its workflow's concurrency group.
    RunConcurrency,
    /// Another run of the same lock file installs the dependencies it will restore.
    Build,
    /// No agent has taken it.
    #[serde(rename_all = "camelCase")]
    Agents {
        /// The job's `runsOn` (and `!excluded`) labels as written.
        labels: Vec<String>,
        /// Connected agents that fit, idle: the next dispatch pass takes one.
        idle: Vec<String>,
        /// Connected agents that fit and run a job.
        busy: usize,
        /// Connected agents that fit and are draining.
        draining: usize,
        scaler: ScalerWait,
        /// The last failed attempt to start an agent for it.
        provisioning_error: Option<String>,
    },
}

/// What the auto-scalers do about a job no agent took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ScalerWait {
    /// No scaler is configured.
    NoScalers,
    /// No scaler's label sets fit the job.
    NoBackend,
    /// `scaler` starts (or will start) an agent for it.
    Starting { scaler: String },
    /// The scaler that fits is at a cap; the text says which.
    AtCapacity { reason: String },
}

impl std::fmt::Display for WaitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitReason::ConcurrencyGroup { group } => {
                write!(
                    f,
                    "waits for the running job of concurrency group \"{group}\" to finish"
                )
            }
            WaitReason::RunConcurrency => {
                write!(f, "its run waits for its turn in the workflow's concurrency group")
            }
            WaitReason::Build => write!(
                f,
                "waits for another run of the same lock file to finish installing the .kici/ dependencies"
            ),
            WaitReason::Agents {
                labels,
                idle,
                busy,
                draining,
                scaler,
                provisioning_error,
            } => {
                let with = if labels.is_empty() {
                    String::new()
                } else {
                    format!(" with labels {}", labels.join(", "))
                };
                if let Some(first) = idle.first() {
                    return write!(f, "idle agent {first} fits; the job is being dispatched to it");
                }
                if busy + draining == 0 {
                    write!(f, "no agent{with} is connected")?;
                } else {
                    write!(f, "no idle agent{with}; {busy} busy")?;
                    if *draining > 0 {
                        write!(f, ", {draining} draining")?;
                    }
                }
                match scaler {
                    ScalerWait::NoScalers if busy + draining == 0 => write!(
                        f,
                        " and no auto-scaler is configured (hint: start an agent with these labels, or configure a scaler)"
                    )?,
                    ScalerWait::NoScalers => {}
                    ScalerWait::NoBackend => write!(
                        f,
                        "; no scaler's label sets fit (hint: add a label set with these labels to a scaler, or start an agent with them)"
                    )?,
                    ScalerWait::Starting { scaler } => write!(f, "; scaler \"{scaler}\" is starting one")?,
                    ScalerWait::AtCapacity { reason } => write!(f, "; {reason}")?,
                }
                if let Some(error) = provisioning_error {
                    write!(f, "; the last start failed: {error}")?;
                }
                Ok(())
            }
        }
    }
}

/// A queued job and why it waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitingJob {
    pub run_id: RunId,
    pub job_id: JobId,
    pub job_name: String,
    pub workflow_name: String,
    pub enqueued_at: i64,
    pub reason: WaitReason,
    /// `reason` as the sentence people read.
    pub explanation: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents(idle: &[&str], busy: usize, draining: usize, scaler: ScalerWait) -> String {
        WaitReason::Agents {
            labels: vec!["linux".into(), "gpu".into()],
            idle: idle.iter().map(|s| s.to_string()).collect(),
            busy,
            draining,
            scaler,
            provisioning_error: None,
        }
        .to_string()
    }

    #[test]
    fn each_reason_reads_as_one_sentence() {
        assert_eq!(
            agents(&[], 2, 0, ScalerWait::NoScalers),
            "no idle agent with labels linux, gpu; 2 busy"
        );
        assert_eq!(
            agents(&[], 1, 1, ScalerWait::Starting { scaler: "pods".into() }),
            "no idle agent with labels linux, gpu; 1 busy, 1 draining; scaler \"pods\" is starting one"
        );
        assert_eq!(
            agents(&[], 0, 0, ScalerWait::NoScalers),
            "no agent with labels linux, gpu is connected and no auto-scaler is configured (hint: start an agent with these labels, or configure a scaler)"
        );
        assert_eq!(
            agents(&[], 0, 0, ScalerWait::NoBackend),
            "no agent with labels linux, gpu is connected; no scaler's label sets fit (hint: add a label set with these labels to a scaler, or start an agent with them)"
        );
        assert_eq!(
            agents(&["a-1"], 0, 0, ScalerWait::NoScalers),
            "idle agent a-1 fits; the job is being dispatched to it"
        );
        let failed = WaitReason::Agents {
            labels: Vec::new(),
            idle: Vec::new(),
            busy: 0,
            draining: 0,
            scaler: ScalerWait::AtCapacity {
                reason: "scaler \"pods\" reached maxAgents: 2 of 2 agents are live or spawning".into(),
            },
            provisioning_error: Some("image not found".into()),
        };
        assert_eq!(
            failed.to_string(),
            "no agent is connected; scaler \"pods\" reached maxAgents: 2 of 2 agents are live or spawning; the last start failed: image not found"
        );
        assert_eq!(
            WaitReason::ConcurrencyGroup { group: "deploy".into() }.to_string(),
            "waits for the running job of concurrency group \"deploy\" to finish"
        );
    }
}
