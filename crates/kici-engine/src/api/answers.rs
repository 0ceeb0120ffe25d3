//! The one-field envelopes some run endpoints answer with (`GET /api/v1/runs/:runId`,
//! `…/jobs`, `…/steps/:stepIndex/logs`), served by the orchestrator and the Platform alike.

use serde::{Deserialize, Serialize};

use super::{Job, LogLine, Run};

/// `GET /api/v1/runs/:runId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunAnswer {
    pub run: Run,
}

/// `GET /api/v1/runs/:runId/jobs`, in display order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobsAnswer {
    pub jobs: Vec<Job>,
}

/// `GET /api/v1/runs/:runId/jobs/:jobId/steps/:stepIndex/logs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLinesAnswer {
    pub lines: Vec<LogLine>,
}
