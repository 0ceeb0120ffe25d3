//! Run, job and step statuses and the job state machine.
//!
//! Two vocabularies exist on purpose (spec `execution.md` §1.5): the engine state machine
//! ([`JobState`], driven by [`JobEvent`] through [`transition`]) and the persisted/wire enums
//! ([`RunStatus`], [`JobStatus`], [`StepStatus`]) that stores, protocols and CLIs use. The run
//! status rollup ([`roll_up`]) lives here too so every process computes it the same way.

use std::fmt;

use serde::{Deserialize, Serialize};

/// States of the engine state machine (11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    Pending,
    Held,
    Waiting,
    Queued,
    Running,
    Recovering,
    Cancelling,
    Success,
    Failed,
    Cancelled,
    Skipped,
}

impl JobState {
    pub const ALL: [JobState; 11] = [
        JobState::Pending,
        JobState::Held,
        JobState::Waiting,
        JobState::Queued,
        JobState::Running,
        JobState::Recovering,
        JobState::Cancelling,
        JobState::Success,
        JobState::Failed,
        JobState::Cancelled,
        JobState::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Held => "held",
            JobState::Waiting => "waiting",
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Recovering => "recovering",
            JobState::Cancelling => "cancelling",
            JobState::Success => "success",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Skipped => "skipped",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Success | JobState::Failed | JobState::Cancelled | JobState::Skipped
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Events of the engine state machine (16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobEvent {
    Enqueue,
    Start,
    Succeed,
    Fail,
    Cancel,
    CancelGraceful,
    CancelForce,
    Complete,
    Skip,
    Recover,
    Hold,
    Approve,
    Reject,
    Expire,
    Wait,
    TimerDone,
}

impl JobEvent {
    pub const ALL: [JobEvent; 16] = [
        JobEvent::Enqueue,
        JobEvent::Start,
        JobEvent::Succeed,
        JobEvent::Fail,
        JobEvent::Cancel,
        JobEvent::CancelGraceful,
        JobEvent::CancelForce,
        JobEvent::Complete,
        JobEvent::Skip,
        JobEvent::Recover,
        JobEvent::Hold,
        JobEvent::Approve,
        JobEvent::Reject,
        JobEvent::Expire,
        JobEvent::Wait,
        JobEvent::TimerDone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobEvent::Enqueue => "ENQUEUE",
            JobEvent::Start => "START",
            JobEvent::Succeed => "SUCCEED",
            JobEvent::Fail => "FAIL",
            JobEvent::Cancel => "CANCEL",
            JobEvent::CancelGraceful => "CANCEL_GRACEFUL",
            JobEvent::CancelForce => "CANCEL_FORCE",
            JobEvent::Complete => "COMPLETE",
            JobEvent::Skip => "SKIP",
            JobEvent::Recover => "RECOVER",
            JobEvent::Hold => "HOLD",
            JobEvent::Approve => "APPROVE",
            JobEvent::Reject => "REJECT",
            JobEvent::Expire => "EXPIRE",
            JobEvent::Wait => "WAIT",
            JobEvent::TimerDone => "TIMER_DONE",
        }
    }
}

impl fmt::Display for JobEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event that is not legal in the current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid transition: cannot apply event '{event}' in state '{state}'")]
pub struct InvalidTransition {
    pub state: JobState,
    pub event: JobEvent,
}

/// Applies `event` to `state`. The 25 legal transitions are the whole table; anything else,
/// including every event on a terminal state, is an [`InvalidTransition`].
pub fn transition(state: JobState, event: JobEvent) -> Result<JobState, InvalidTransition> {
    use JobEvent as E;
    use JobState as S;
    let next = match (state, event) {
        (S::Pending, E::Enqueue) => S::Queued,
        (S::Pending, E::Cancel) => S::Cancelled,
        (S::Pending, E::Skip) => S::Skipped,
        (S::Pending, E::Hold) => S::Held,
        (S::Pending, E::Wait) => S::Waiting,
        (S::Held, E::Approve) => S::Queued,
        // The reference cancels a rejected or expired hold; we fail it, so the run fails with
        // the `environment_rules` banner its own dashboard and failure texts describe.
        (S::Held, E::Reject | E::Expire) => S::Failed,
        (S::Held, E::Cancel) => S::Cancelled,
        (S::Waiting, E::TimerDone) => S::Queued,
        (S::Waiting, E::Cancel) => S::Cancelled,
        (S::Queued, E::Start) => S::Running,
        (S::Queued, E::Fail) => S::Failed,
        (S::Queued, E::Cancel) => S::Cancelled,
        (S::Running, E::Succeed) => S::Success,
        // Its workflow's or its own rules did not pass: nothing ran.
        (S::Running, E::Skip) => S::Skipped,
        (S::Running, E::Fail) => S::Failed,
        (S::Running, E::Cancel) => S::Cancelled,
        (S::Running, E::CancelGraceful) => S::Cancelling,
        (S::Running, E::Recover) => S::Recovering,
        (S::Recovering, E::Start) => S::Running,
        (S::Recovering, E::Fail) => S::Failed,
        (S::Recovering, E::Cancel) => S::Cancelled,
        (S::Cancelling, E::CancelForce | E::Complete) => S::Cancelled,
        (S::Cancelling, E::Fail) => S::Failed,
        _ => return Err(InvalidTransition { state, event }),
    };
    Ok(next)
}

/// Persisted/wire status of a run (`ExecutionRunStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Pending,
    Running,
    Cancelling,
    Held,
    Success,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Cancelling => "cancelling",
            RunStatus::Held => "held",
            RunStatus::Success => "success",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, RunStatus::Success | RunStatus::Failed | RunStatus::Cancelled)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RunStatus {
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Pending,
        RunStatus::Running,
        RunStatus::Cancelling,
        RunStatus::Held,
        RunStatus::Success,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];
}

/// Parses a wire name (`timed_out_stale`); the error is the unknown text.
macro_rules! from_wire_name {
    ($($ty:ty),*) => {$(
        impl std::str::FromStr for $ty {
            type Err = UnknownStatus;
            fn from_str(text: &str) -> Result<Self, UnknownStatus> {
                <$ty>::ALL.into_iter().find(|s| s.as_str() == text).ok_or_else(|| UnknownStatus(text.to_string()))
            }
        }
    )*};
}

/// A status name this build does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status `{0}`")]
pub struct UnknownStatus(pub String);

from_wire_name!(RunStatus, JobStatus, StepStatus);

/// Persisted/wire status of a job (`ExecutionJobStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Pending,
    /// Waiting for approvals (a `held_runs` row says what for).
    Held,
    /// Waiting for its environment's wait timer (`jobs.ready_at`).
    Waiting,
    Queued,
    Running,
    Recovering,
    Cancelling,
    Success,
    Failed,
    Cancelled,
    Skipped,
    TimedOutStale,
    DriftDropped,
}

impl JobStatus {
    pub const ALL: [JobStatus; 13] = [
        JobStatus::Pending,
        JobStatus::Held,
        JobStatus::Waiting,
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Recovering,
        JobStatus::Cancelling,
        JobStatus::Success,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::Skipped,
        JobStatus::TimedOutStale,
        JobStatus::DriftDropped,
    ];

    /// The terminal statuses, in the order `when: 'always'` lists them.
    pub const TERMINAL: [JobStatus; 6] = [
        JobStatus::Success,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::Skipped,
        JobStatus::TimedOutStale,
        JobStatus::DriftDropped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Held => "held",
            JobStatus::Waiting => "waiting",
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Recovering => "recovering",
            JobStatus::Cancelling => "cancelling",
            JobStatus::Success => "success",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Skipped => "skipped",
            JobStatus::TimedOutStale => "timed_out_stale",
            JobStatus::DriftDropped => "drift_dropped",
        }
    }

    pub fn is_terminal(self) -> bool {
        JobStatus::TERMINAL.contains(&self)
    }

    /// Queued for an agent or on one: a run whose unfinished jobs all are waits on no decision
    /// (no need to resolve, hold or timer to pass) until one of them ends otherwise than well.
    pub fn is_placed(self) -> bool {
        matches!(self, JobStatus::Queued | JobStatus::Running | JobStatus::Recovering)
    }

    /// Statuses that make the run fail.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            JobStatus::Failed | JobStatus::TimedOutStale | JobStatus::DriftDropped
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Persisted/wire status of a step (`ExecutionStepStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// A parallel child waiting for a slot.
    Pending,
    Running,
    Success,
    Failed,
    Skipped,
    /// A fail-fast sibling or an aborted job; not a failure.
    Cancelled,
}

impl StepStatus {
    pub const ALL: [StepStatus; 6] = [
        StepStatus::Pending,
        StepStatus::Running,
        StepStatus::Success,
        StepStatus::Failed,
        StepStatus::Skipped,
        StepStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Success => "success",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, StepStatus::Pending | StepStatus::Running)
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl JobStatus {
    /// The engine state a persisted status is in: `timed_out_stale` and `drift_dropped` are
    /// kinds of `failed`.
    pub fn state(self) -> JobState {
        match self {
            JobStatus::Pending => JobState::Pending,
            JobStatus::Held => JobState::Held,
            JobStatus::Waiting => JobState::Waiting,
            JobStatus::Queued => JobState::Queued,
            JobStatus::Running => JobState::Running,
            JobStatus::Recovering => JobState::Recovering,
            JobStatus::Cancelling => JobState::Cancelling,
            JobStatus::Success => JobState::Success,
            JobStatus::Failed | JobStatus::TimedOutStale | JobStatus::DriftDropped => JobState::Failed,
            JobStatus::Cancelled => JobState::Cancelled,
            JobStatus::Skipped => JobState::Skipped,
        }
    }

    /// The persisted status of an engine state.
    pub fn of(state: JobState) -> Option<JobStatus> {
        JobStatus::ALL
            .into_iter()
            .find(|s| s.state() == state && s.as_str() == state.as_str())
    }
}

/// A change of persisted job statuses, built only from the engine's table ([`transition`]):
/// for each status a job may be in, the status it ends in. The store applies one as a single
/// guarded write, so no status write exists that the table does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobChange {
    moves: Vec<(JobStatus, JobStatus)>,
}

impl JobChange {
    /// `event` from every persisted status where the table allows it.
    pub fn on(event: JobEvent) -> JobChange {
        let moves = JobStatus::ALL
            .into_iter()
            .filter_map(|from| Some((from, JobStatus::of(transition(from.state(), event).ok()?)?)))
            .collect();
        JobChange { moves }
    }

    /// This change only where the job is now in `from` (a decision made on a snapshot that saw
    /// it there must not move it from anywhere else).
    pub fn only_from(mut self, from: JobStatus) -> JobChange {
        self.moves.retain(|(f, _)| *f == from);
        self
    }

    /// This change followed by `event`, as one write (a pending job the queue has no room for
    /// is enqueued and failed: `ENQUEUE` then `FAIL`).
    pub fn then(self, event: JobEvent) -> JobChange {
        let moves = self
            .moves
            .into_iter()
            .filter_map(|(from, to)| Some((from, JobStatus::of(transition(to.state(), event).ok()?)?)))
            .collect();
        JobChange { moves }
    }

    /// Adds `other`'s moves from the statuses this change does not start from.
    pub fn or(mut self, other: JobChange) -> JobChange {
        for (from, to) in other.moves {
            if self.apply(from).is_none() {
                self.moves.push((from, to));
            }
        }
        self
    }

    /// Ends in `flavour` (`timed_out_stale`, `drift_dropped`) where this change ends in `failed`.
    pub fn failing_as(mut self, flavour: JobStatus) -> JobChange {
        if flavour.state() == JobState::Failed {
            for (_, to) in &mut self.moves {
                if *to == JobStatus::Failed {
                    *to = flavour;
                }
            }
        }
        self
    }

    /// The job result an agent reported. A result implies the job started (the report of its
    /// start may be the one that was lost); a job being cancelled ends `cancelled` whatever it
    /// reports but a failure (`COMPLETE`); an agent's status that is not a result is a failure.
    pub fn reported(status: JobStatus) -> JobChange {
        match status {
            JobStatus::Success => JobChange::on(JobEvent::Succeed)
                .or(JobChange::on(JobEvent::Start).then(JobEvent::Succeed))
                .or(JobChange::on(JobEvent::Complete)),
            JobStatus::Cancelled => JobChange::on(JobEvent::Cancel).or(JobChange::on(JobEvent::Complete)),
            JobStatus::Skipped => JobChange::on(JobEvent::Skip)
                .or(JobChange::on(JobEvent::Start).then(JobEvent::Skip))
                .or(JobChange::on(JobEvent::Complete)),
            other => JobChange::on(JobEvent::Fail).failing_as(other),
        }
    }

    /// The status a job in `from` ends in; `None` when this change does not apply to it.
    pub fn apply(&self, from: JobStatus) -> Option<JobStatus> {
        self.moves.iter().find(|(f, _)| *f == from).map(|(_, to)| *to)
    }

    /// Every `(from, to)` pair, in the order of [`JobStatus::ALL`] for each part.
    pub fn moves(&self) -> &[(JobStatus, JobStatus)] {
        &self.moves
    }
}

/// What changes a run's status. A run's status is written only by these; which statuses each
/// may start from is [`run_transition`]'s table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatusEvent {
    /// The first job runs: `pending` → `running`.
    Start,
    /// The run ends in a terminal status, from any status that is not.
    Finish(RunStatus),
}

/// A run status change that the table does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid run transition: cannot apply {event:?} in state '{state}'")]
pub struct InvalidRunTransition {
    pub state: RunStatus,
    pub event: RunStatusEvent,
}

/// Applies `event` to a run in `state`.
pub fn run_transition(state: RunStatus, event: RunStatusEvent) -> Result<RunStatus, InvalidRunTransition> {
    match (state, event) {
        (RunStatus::Pending, RunStatusEvent::Start) => Ok(RunStatus::Running),
        (from, RunStatusEvent::Finish(to)) if !from.is_terminal() && to.is_terminal() => Ok(to),
        _ => Err(InvalidRunTransition { state, event }),
    }
}

/// The statuses a run may be in for `event` to apply, from [`run_transition`]'s table.
pub fn run_sources(event: RunStatusEvent) -> Vec<RunStatus> {
    RunStatus::ALL
        .into_iter()
        .filter(|from| run_transition(*from, event).is_ok())
        .collect()
}

/// The status of a finished set of jobs (`computeRunStatus`): any failure-like job fails it,
/// else any cancelled job cancels it, else it succeeded (skipped jobs count as success).
/// Returns `None` while a job is not terminal.
pub fn roll_up(job_statuses: impl IntoIterator<Item = JobStatus>) -> Option<RunStatus> {
    let mut any_failed = false;
    let mut any_cancelled = false;
    for status in job_statuses {
        if !status.is_terminal() {
            return None;
        }
        any_failed |= status.is_failure();
        any_cancelled |= status == JobStatus::Cancelled;
    }
    Some(if any_failed {
        RunStatus::Failed
    } else if any_cancelled {
        RunStatus::Cancelled
    } else {
        RunStatus::Success
    })
}

/// The run's `failureReason` after normal completion: `Failed jobs: a, b` naming the jobs whose
/// status fails the run, in the given order; `None` when no job failed.
pub fn failed_jobs_reason<'a>(jobs: impl IntoIterator<Item = (&'a str, JobStatus)>) -> Option<String> {
    let failed: Vec<&str> = jobs
        .into_iter()
        .filter(|(_, status)| status.is_failure())
        .map(|(name, _)| name)
        .collect();
    (!failed.is_empty()).then(|| format!("Failed jobs: {}", failed.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobEvent as E;
    use JobState as S;

    const LEGAL: [(JobState, JobEvent, JobState); 26] = [
        (S::Pending, E::Enqueue, S::Queued),
        (S::Pending, E::Cancel, S::Cancelled),
        (S::Pending, E::Skip, S::Skipped),
        (S::Pending, E::Hold, S::Held),
        (S::Pending, E::Wait, S::Waiting),
        (S::Held, E::Approve, S::Queued),
        (S::Held, E::Reject, S::Failed),
        (S::Held, E::Expire, S::Failed),
        (S::Held, E::Cancel, S::Cancelled),
        (S::Waiting, E::TimerDone, S::Queued),
        (S::Waiting, E::Cancel, S::Cancelled),
        (S::Queued, E::Start, S::Running),
        (S::Queued, E::Fail, S::Failed),
        (S::Queued, E::Cancel, S::Cancelled),
        (S::Running, E::Succeed, S::Success),
        (S::Running, E::Skip, S::Skipped),
        (S::Running, E::Fail, S::Failed),
        (S::Running, E::Cancel, S::Cancelled),
        (S::Running, E::CancelGraceful, S::Cancelling),
        (S::Running, E::Recover, S::Recovering),
        (S::Recovering, E::Start, S::Running),
        (S::Recovering, E::Fail, S::Failed),
        (S::Recovering, E::Cancel, S::Cancelled),
        (S::Cancelling, E::CancelForce, S::Cancelled),
        (S::Cancelling, E::Complete, S::Cancelled),
        (S::Cancelling, E::Fail, S::Failed),
    ];

    #[test]
    fn every_state_event_pair_follows_the_table() {
        let mut legal_seen = 0;
        for state in JobState::ALL {
            for event in JobEvent::ALL {
                let expected = LEGAL
                    .iter()
                    .find(|(from, on, _)| *from == state && *on == event)
                    .map(|(_, _, to)| *to);
                match (transition(state, event), expected) {
                    (Ok(next), Some(to)) => {
                        assert_eq!(next, to, "{state} --{event}-->");
                        legal_seen += 1;
                    }
                    (Err(err), None) => assert_eq!(
                        err.to_string(),
                        format!("Invalid transition: cannot apply event '{event}' in state '{state}'")
                    ),
                    (got, want) => panic!("{state} --{event}--> got {got:?}, want {want:?}"),
                }
            }
        }
        assert_eq!(legal_seen, 26);
    }

    #[test]
    fn a_job_change_moves_only_along_the_table() {
        for event in JobEvent::ALL {
            let change = JobChange::on(event);
            for from in JobStatus::ALL {
                let want = transition(from.state(), event).ok().and_then(JobStatus::of);
                assert_eq!(change.apply(from), want, "{from} --{event}-->");
            }
        }
        let unqueued = JobChange::on(E::Enqueue).then(E::Fail);
        assert_eq!(unqueued.moves(), &[(JobStatus::Pending, JobStatus::Failed)]);
        let stale = JobChange::on(E::Fail).failing_as(JobStatus::TimedOutStale);
        assert_eq!(stale.apply(JobStatus::Running), Some(JobStatus::TimedOutStale));
        assert_eq!(stale.apply(JobStatus::Pending), None);
    }

    #[test]
    fn a_reported_result_implies_the_start_and_respects_a_cancel() {
        let success = JobChange::reported(JobStatus::Success);
        assert_eq!(
            success.moves(),
            &[
                (JobStatus::Running, JobStatus::Success),
                (JobStatus::Queued, JobStatus::Success),
                (JobStatus::Recovering, JobStatus::Success),
                (JobStatus::Cancelling, JobStatus::Cancelled),
            ]
        );
        let cancelled = JobChange::reported(JobStatus::Cancelled);
        assert_eq!(cancelled.apply(JobStatus::Cancelling), Some(JobStatus::Cancelled));
        assert_eq!(cancelled.apply(JobStatus::Pending), Some(JobStatus::Cancelled));
        // Rules skipped the job on its agent: a result like any other.
        let skipped = JobChange::reported(JobStatus::Skipped);
        assert_eq!(skipped.apply(JobStatus::Running), Some(JobStatus::Skipped));
        assert_eq!(skipped.apply(JobStatus::Queued), Some(JobStatus::Skipped));
        assert_eq!(
            JobChange::reported(JobStatus::Pending).apply(JobStatus::Running),
            Some(JobStatus::Failed)
        );
        for status in JobStatus::TERMINAL {
            assert_eq!(
                JobChange::reported(JobStatus::Success).apply(status),
                None,
                "{status} is final"
            );
        }
    }

    #[test]
    fn a_run_starts_once_and_finishes_once() {
        assert_eq!(run_sources(RunStatusEvent::Start), vec![RunStatus::Pending]);
        assert_eq!(
            run_sources(RunStatusEvent::Finish(RunStatus::Failed)),
            vec![
                RunStatus::Pending,
                RunStatus::Running,
                RunStatus::Cancelling,
                RunStatus::Held
            ]
        );
        assert!(run_sources(RunStatusEvent::Finish(RunStatus::Running)).is_empty());
    }

    #[test]
    fn terminal_states_accept_no_event() {
        for state in JobState::ALL.into_iter().filter(|s| s.is_terminal()) {
            for event in JobEvent::ALL {
                assert!(transition(state, event).is_err(), "{state} accepted {event}");
            }
        }
    }

    #[test]
    fn rollup_prefers_failure_then_cancellation() {
        use JobStatus::*;
        let check =
            |jobs: &[JobStatus], want: Option<RunStatus>| assert_eq!(roll_up(jobs.iter().copied()), want, "{jobs:?}");
        check(&[Success, Skipped], Some(RunStatus::Success));
        check(&[Success, Cancelled], Some(RunStatus::Cancelled));
        check(&[Cancelled, Failed], Some(RunStatus::Failed));
        check(&[Success, TimedOutStale], Some(RunStatus::Failed));
        check(&[DriftDropped], Some(RunStatus::Failed));
        check(&[Success, Running], None);
        check(&[], Some(RunStatus::Success));
    }

    #[test]
    fn failed_jobs_reason_names_failed_jobs_in_order() {
        use JobStatus::*;
        let jobs = [("lint", Failed), ("build", Success), ("test (a)", TimedOutStale)];
        assert_eq!(failed_jobs_reason(jobs).as_deref(), Some("Failed jobs: lint, test (a)"));
        assert_eq!(failed_jobs_reason([("build", Success)]), None);
    }

    #[test]
    fn wire_names_round_trip() {
        for status in JobStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(status.as_str().parse::<JobStatus>(), Ok(status));
        }
    }
}
