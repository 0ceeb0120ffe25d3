//! Runs, their jobs and the jobs' steps. Status changes are guarded (`WHERE status IN …`), so
//! a late or replayed message never moves a finished job or run.

use kici_engine::api::{self, JobNeed};
use kici_engine::dag::Need;
use kici_engine::event::EventEnvelope;
use kici_engine::failure::InitFailure;
use kici_engine::ids::{JobId, RunId, SourceId};
use kici_engine::labels::LabelMatcher;
use kici_engine::lockfile::LockWorkflow;
use kici_engine::protocol::JobKind;
use kici_engine::status::{JobChange, JobEvent, JobStatus, RunStatus, RunStatusEvent, StepStatus, run_sources};
use serde_json::{Map, Value};
use sqlx::any::AnyRow;

use crate::queue::{NewQueueEntry, QueueStatus};
use crate::{Arg, Result, Store, dynamic, get, get_enum, get_id, get_json, get_opt_id, q, to_json};

/// A run as created by the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub run_id: RunId,
    pub source_id: SourceId,
    pub repo: String,
    pub workflow_name: String,
    pub git_ref: String,
    pub sha: String,
    pub trigger_type: String,
    pub provider: String,
    pub delivery_id: String,
    pub status: RunStatus,
    pub failure_reason: Option<String>,
    pub init_failure: Option<InitFailure>,
    pub event: EventEnvelope,
    pub repo_url: String,
    pub lock_workflow: Option<LockWorkflow>,
    pub created_at: i64,
    pub completed_at: Option<i64>,
    /// A re-run: the run it starts again.
    pub rerun_of: Option<RunId>,
    /// The lock file's `lockfileHash` at the run's commit.
    pub lockfile_hash: Option<String>,
    /// A pull request's run: whose workflows it runs.
    pub trust: Option<kici_engine::trust::RunTrust>,
    /// Who caused it when not who the event names (who re-ran it).
    pub actor: Option<String>,
}

impl NewRun {
    /// When the run must be over: its creation plus the workflow's `timeout`.
    fn deadline_at(&self) -> Option<i64> {
        let timeout = self.lock_workflow.as_ref()?.timeout?;
        Some(
            self.created_at
                .saturating_add(i64::try_from(timeout).unwrap_or(i64::MAX)),
        )
    }
}

/// What jobs of a run are made from: its event, clone URL, workflow and dependency cache key.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInputs {
    pub event: EventEnvelope,
    pub repo_url: String,
    pub workflow: Option<LockWorkflow>,
    pub lockfile_hash: Option<String>,
}

/// A job as created by the pipeline (or by a matrix expansion).
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub job_id: JobId,
    pub run_id: RunId,
    pub job_name: String,
    pub base_job_name: String,
    /// `execute` or `matrix_eval`.
    pub kind: JobKind,
    pub matrix: Option<Map<String, Value>>,
    pub status: JobStatus,
    pub runs_on: Vec<LabelMatcher>,
    pub exclude_labels: Vec<LabelMatcher>,
    pub needs: Vec<Need>,
    pub error_message: Option<String>,
    pub init_failure: Option<InitFailure>,
    /// Display order within the run.
    pub position: i64,
    pub created_at: i64,
    /// Generated jobs: the generator's index in the workflow's jobs.
    pub dynamic_index: Option<i64>,
    /// Generated jobs: their definition (a lock-file static job, JSON).
    pub definition: Option<String>,
    /// A re-run's job that takes an earlier run's success instead of running (its status is
    /// then `success`).
    pub reused: Option<ReusedJob>,
}

/// What a re-run's job takes from the job whose success it reuses.
#[derive(Debug, Clone, PartialEq)]
pub struct ReusedJob {
    pub from: api::ReusedFrom,
    pub outputs: Option<Value>,
    /// The job stored secret outputs (now erased).
    pub secret_outputs: bool,
}

/// A job with the fields the orchestrator works with beyond the API view.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub job: api::Job,
    pub kind: JobKind,
    pub matrix: Option<Map<String, Value>>,
    pub runs_on: Vec<LabelMatcher>,
    pub exclude_labels: Vec<LabelMatcher>,
    pub needs: Vec<Need>,
    pub last_seq: i64,
    pub last_heartbeat_at: Option<i64>,
    pub dynamic_index: Option<i64>,
    pub definition: Option<String>,
    /// An init job's result (`{environments?, env?}`).
    pub init_result: Option<Value>,
    /// What the job's steps returned.
    pub outputs: Option<Value>,
    /// The job stored secret outputs (erased when its run ended), or may have (a row from
    /// before this was recorded).
    pub secret_outputs: bool,
}

/// A step's new state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpdate {
    pub job_id: JobId,
    pub step_index: i64,
    pub step_name: String,
    pub step_type: String,
    pub status: StepStatus,
    pub exit_code: Option<i32>,
    pub error_message: Option<String>,
    pub duration_ms: Option<i64>,
    /// Names of the secrets the step read (never values).
    pub secrets_accessed: Vec<String>,
    pub now: i64,
}

/// `kici-admin runs list` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub statuses: Vec<RunStatus>,
    pub workflow: Option<String>,
    pub repo: Option<String>,
    pub since: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

/// How a run's `failureReason` is written when it finishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReasonUpdate {
    /// Replace whatever is there (`Failed jobs: …`).
    Overwrite(String),
    /// Only when empty: specific reasons recorded earlier win over this generic one.
    IfEmpty(String),
    /// A successful run has no failure reason.
    Clear,
    Keep,
}

const RUN_COLUMNS: &str = "run_id, source_id, repo, workflow_name, git_ref, sha, trigger_type, provider, delivery_id, status, failure_reason, init_failure, created_at, started_at, completed_at, duration_ms, rerun_of, trust, title, actor";
const JOB_COLUMNS: &str = "job_id, run_id, job_name, base_job_name, kind, matrix, status, agent_id, runs_on, exclude_labels, needs, error_message, init_failure, last_seq, created_at, started_at, completed_at, duration_ms, last_heartbeat_at, dynamic_index, definition, init_result, outputs, reused_from_run, reused_from_job, secret_outputs";

fn status_list<T: Copy>(statuses: &[T], name: impl Fn(T) -> &'static str) -> String {
    statuses
        .iter()
        .map(|s| format!("'{}'", name(*s)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A job change as SQL: the new status (`CASE status WHEN … END`) and the statuses it applies
/// to; `None` when it applies to none.
fn change_sql(change: &JobChange) -> Option<(String, String)> {
    if change.moves().is_empty() {
        return None;
    }
    let arms: String = change
        .moves()
        .iter()
        .map(|(from, to)| format!(" WHEN '{from}' THEN '{to}'"))
        .collect();
    let from: Vec<JobStatus> = change.moves().iter().map(|(from, _)| *from).collect();
    Some((format!("CASE status{arms} END"), status_list(&from, JobStatus::as_str)))
}

/// The step statuses that may still change.
fn open_steps() -> String {
    let open: Vec<StepStatus> = StepStatus::ALL.into_iter().filter(|s| !s.is_terminal()).collect();
    status_list(&open, StepStatus::as_str)
}

/// `status IN (…)` for the runs `event` applies to; `None` when it applies to none.
fn run_condition(event: RunStatusEvent) -> Option<String> {
    let from = run_sources(event);
    (!from.is_empty()).then(|| format!("status IN ({})", status_list(&from, RunStatus::as_str)))
}

fn row_to_run(row: &AnyRow) -> Result<api::Run> {
    Ok(api::Run {
        run_id: get_id(row, "run_id")?,
        workflow_name: get(row, "workflow_name")?,
        status: get_enum(row, "status")?,
        repo: get(row, "repo")?,
        git_ref: get(row, "git_ref")?,
        sha: get(row, "sha")?,
        trigger: get(row, "trigger_type")?,
        provider: get(row, "provider")?,
        source_id: get_id(row, "source_id")?,
        delivery_id: get(row, "delivery_id")?,
        failure_reason: get(row, "failure_reason")?,
        init_failure: get_json(row, "init_failure")?,
        created_at: get(row, "created_at")?,
        started_at: get(row, "started_at")?,
        completed_at: get(row, "completed_at")?,
        duration_ms: get(row, "duration_ms")?,
        rerun_of: get_opt_id(row, "rerun_of")?,
        reruns: Vec::new(),
        trust: get_json(row, "trust")?,
        title: get(row, "title")?,
        actor: get(row, "actor")?,
    })
}

fn row_to_job(row: &AnyRow) -> Result<JobRecord> {
    let needs: Vec<Need> = get_json(row, "needs")?.unwrap_or_default();
    Ok(JobRecord {
        job: api::Job {
            job_id: get_id(row, "job_id")?,
            run_id: get_id(row, "run_id")?,
            job_name: get(row, "job_name")?,
            base_job_name: get(row, "base_job_name")?,
            status: get_enum(row, "status")?,
            agent_id: get_opt_id(row, "agent_id")?,
            error_message: get(row, "error_message")?,
            init_failure: get_json(row, "init_failure")?,
            needs: needs
                .iter()
                .map(|n| JobNeed {
                    upstream_name: n.name().to_string(),
                    run_on: n.run_on(),
                })
                .collect(),
            created_at: get(row, "created_at")?,
            started_at: get(row, "started_at")?,
            completed_at: get(row, "completed_at")?,
            duration_ms: get(row, "duration_ms")?,
            steps: None,
            reused_from: match (get_opt_id(row, "reused_from_run")?, get_opt_id(row, "reused_from_job")?) {
                (Some(run_id), Some(job_id)) => Some(api::ReusedFrom { run_id, job_id }),
                _ => None,
            },
        },
        kind: get_enum(row, "kind")?,
        matrix: get_json(row, "matrix")?,
        runs_on: get_json(row, "runs_on")?.unwrap_or_default(),
        exclude_labels: get_json(row, "exclude_labels")?.unwrap_or_default(),
        needs,
        last_seq: get(row, "last_seq")?,
        last_heartbeat_at: get(row, "last_heartbeat_at")?,
        dynamic_index: get(row, "dynamic_index")?,
        definition: get(row, "definition")?,
        init_result: get_json(row, "init_result")?,
        outputs: get_json(row, "outputs")?,
        // Rows from before the column are unknown: counted as having stored some.
        secret_outputs: get::<Option<i64>>(row, "secret_outputs")? != Some(0),
    })
}

fn row_to_step(row: &AnyRow) -> Result<api::Step> {
    Ok(api::Step {
        step_index: get(row, "step_index")?,
        step_name: get(row, "step_name")?,
        step_type: get(row, "step_type")?,
        status: get_enum(row, "status")?,
        exit_code: get::<Option<i64>>(row, "exit_code")?.map(|c| c as i32),
        error_message: get(row, "error_message")?,
        started_at: get(row, "started_at")?,
        completed_at: get(row, "completed_at")?,
        duration_ms: get(row, "duration_ms")?,
        secrets_accessed: get_json(row, "secrets_accessed")?.unwrap_or_default(),
    })
}

impl Store {
    /// Stores a run with its jobs and their queue entries, atomically.
    pub async fn insert_run(&self, run: &NewRun, jobs: &[NewJob], queue: &[NewQueueEntry]) -> Result<()> {
        let mut tx = self.begin().await.map_err(q("begin insert run"))?;
        sqlx::query(
            "INSERT INTO runs (run_id, source_id, repo, workflow_name, git_ref, sha, trigger_type, provider, delivery_id, status,
                 failure_reason, init_failure, event, repo_url, lock_workflow, created_at, completed_at, duration_ms, rerun_of,
                 lockfile_hash, deadline_at, trust, title, actor)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)",
        )
        .bind(run.run_id.as_str())
        .bind(run.source_id.as_str())
        .bind(&run.repo)
        .bind(&run.workflow_name)
        .bind(&run.git_ref)
        .bind(&run.sha)
        .bind(&run.trigger_type)
        .bind(&run.provider)
        .bind(&run.delivery_id)
        .bind(run.status.as_str())
        .bind(&run.failure_reason)
        .bind(run.init_failure.as_ref().map(to_json))
        .bind(to_json(&run.event))
        .bind(&run.repo_url)
        .bind(run.lock_workflow.as_ref().map(to_json))
        .bind(run.created_at)
        .bind(run.completed_at)
        .bind(run.completed_at.map(|c| c - run.created_at))
        .bind(run.rerun_of.as_deref())
        .bind(&run.lockfile_hash)
        .bind(run.deadline_at())
        .bind(run.trust.as_ref().map(to_json))
        .bind(run.event.title())
        .bind(run.actor.clone().or_else(|| run.event.actor()))
        .execute(&mut *tx)
        .await
        .map_err(q("insert run"))?;
        insert_jobs_in(&mut tx, jobs, queue).await?;
        tx.commit().await.map_err(q("commit insert run"))
    }

    /// The runs that started `run_id` again, oldest first.
    pub async fn reruns_of(&self, run_id: &RunId) -> Result<Vec<RunId>> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT run_id FROM runs WHERE rerun_of = $1 ORDER BY created_at, run_id")
                .bind(run_id.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(q("read re-runs"))?;
        Ok(ids.into_iter().map(RunId::from).collect())
    }

    /// Replaces a run's pull-request trust (a maintainer approved its hold).
    pub async fn set_run_trust(&self, run_id: &RunId, trust: &kici_engine::trust::RunTrust) -> Result<()> {
        sqlx::query("UPDATE runs SET trust = $1 WHERE run_id = $2")
            .bind(to_json(trust))
            .bind(run_id.as_str())
            .execute(&self.pool)
            .await
            .map_err(q("set run trust"))?;
        Ok(())
    }

    pub async fn get_run(&self, run_id: &RunId) -> Result<Option<api::Run>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(run_id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(q("get run"))?;
        row.as_ref().map(row_to_run).transpose()
    }

    /// What a run needs after creation: its event, clone URL and workflow entry.
    pub async fn run_context(&self, run_id: &RunId) -> Result<Option<RunInputs>> {
        let row = sqlx::query("SELECT event, repo_url, lock_workflow, lockfile_hash FROM runs WHERE run_id = $1")
            .bind(run_id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(q("get run context"))?;
        let Some(row) = row else { return Ok(None) };
        let event = get_json(&row, "event")?.ok_or(crate::StoreError::Corrupt {
            column: "event",
            value: "NULL".into(),
        })?;
        Ok(Some(RunInputs {
            event,
            repo_url: get(&row, "repo_url")?,
            workflow: get_json(&row, "lock_workflow")?,
            lockfile_hash: get(&row, "lockfile_hash")?,
        }))
    }

    /// Runs, newest first, with the total count of the filter.
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<(Vec<api::Run>, i64)> {
        let mut conditions = vec!["1 = 1".to_string()];
        let mut args: Vec<Arg<'_>> = Vec::new();
        if !filter.statuses.is_empty() {
            conditions.push(format!(
                "status IN ({})",
                status_list(&filter.statuses, RunStatus::as_str)
            ));
        }
        if let Some(workflow) = &filter.workflow {
            args.push(Arg::Text(workflow));
            conditions.push(format!("workflow_name = ${}", args.len()));
        }
        if let Some(repo) = &filter.repo {
            args.push(Arg::Text(repo));
            conditions.push(format!("repo = ${}", args.len()));
        }
        if let Some(since) = filter.since {
            args.push(Arg::Int(since));
            conditions.push(format!("created_at >= ${}", args.len()));
        }
        let condition = conditions.join(" AND ");
        let total: i64 = dynamic(format!("SELECT COUNT(*) AS n FROM runs WHERE {condition}"), &args)
            .fetch_one(&self.pool)
            .await
            .map_err(q("count runs"))
            .and_then(|row| get(&row, "n"))?;
        let page = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE {condition} ORDER BY created_at DESC, run_id DESC LIMIT ${} OFFSET ${}",
            args.len() + 1,
            args.len() + 2
        );
        args.push(Arg::Int(filter.limit));
        args.push(Arg::Int(filter.offset));
        let rows = dynamic(page, &args)
            .fetch_all(&self.pool)
            .await
            .map_err(q("list runs"))?;
        Ok((rows.iter().map(row_to_run).collect::<Result<_>>()?, total))
    }

    /// Non-terminal runs (at orchestrator start, to finish what was in flight).
    pub async fn active_run_ids(&self) -> Result<Vec<RunId>> {
        let active = [RunStatus::Pending, RunStatus::Running, RunStatus::Cancelling];
        let sql = format!(
            "SELECT run_id FROM runs WHERE status IN ({})",
            status_list(&active, RunStatus::as_str)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(q("active runs"))?;
        rows.iter().map(|r| get_id(r, "run_id")).collect()
    }

    /// Runs still going past their workflow deadline, with the workflow `timeout` (ms) each had.
    pub async fn overdue_runs(&self, now: i64) -> Result<Vec<(RunId, i64)>> {
        let active = [RunStatus::Pending, RunStatus::Running, RunStatus::Cancelling];
        let sql = format!(
            "SELECT run_id, deadline_at - created_at AS timeout_ms FROM runs WHERE deadline_at <= $1 AND status IN ({})",
            status_list(&active, RunStatus::as_str)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(q("overdue runs"))?;
        rows.iter()
            .map(|r| Ok((get_id(r, "run_id")?, get(r, "timeout_ms")?)))
            .collect()
    }

    /// The run's deadline is dealt with (its cancel went out): the sweeper leaves it alone.
    pub async fn clear_run_deadline(&self, run_id: &RunId) -> Result<()> {
        sqlx::query("UPDATE runs SET deadline_at = NULL WHERE run_id = $1")
            .bind(run_id.as_str())
            .execute(&self.pool)
            .await
            .map_err(q("clear run deadline"))?;
        Ok(())
    }

    /// `pending` → `running` at the first job that runs.
    pub async fn mark_run_running(&self, run_id: &RunId, now: i64) -> Result<()> {
        let to = RunStatus::Running;
        let Some(condition) = run_condition(RunStatusEvent::Start) else {
            return Ok(());
        };
        let sql = format!(
            "UPDATE runs SET status = '{to}', started_at = COALESCE(started_at, $2) WHERE run_id = $1 AND {condition}"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(run_id.as_str())
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(q("mark run running"))?;
        Ok(())
    }

    /// Sets the run's failure reason unless one is recorded already (specific beats generic).
    pub async fn set_failure_reason_if_empty(&self, run_id: &RunId, reason: &str) -> Result<()> {
        sqlx::query("UPDATE runs SET failure_reason = $2 WHERE run_id = $1 AND failure_reason IS NULL")
            .bind(run_id.as_str())
            .bind(reason)
            .execute(&self.pool)
            .await
            .map_err(q("set failure reason"))?;
        Ok(())
    }

    /// Records why a job is being stopped (a cancel's reason), unless it has an error already;
    /// the agent's report of the cancelled job keeps it.
    pub async fn set_job_error_if_empty(&self, job_id: &JobId, error: &str) -> Result<()> {
        sqlx::query("UPDATE jobs SET error_message = $2 WHERE job_id = $1 AND error_message IS NULL")
            .bind(job_id.as_str())
            .bind(error)
            .execute(&self.pool)
            .await
            .map_err(q("set job error"))?;
        Ok(())
    }

    /// Records the init failure that decided the run (a job's), unless it has one.
    pub async fn set_init_failure_if_empty(&self, run_id: &RunId, init_failure: &InitFailure) -> Result<()> {
        sqlx::query("UPDATE runs SET init_failure = $2 WHERE run_id = $1 AND init_failure IS NULL")
            .bind(run_id.as_str())
            .bind(to_json(init_failure))
            .execute(&self.pool)
            .await
            .map_err(q("set init failure"))?;
        Ok(())
    }

    /// `pending` (`ENQUEUE`) or `waiting` (`TIMER_DONE`) → `queued` with its queue entry,
    /// atomically; `false` when the event does not apply any more (another caller moved it).
    pub async fn queue_job(&self, job_id: &JobId, event: JobEvent, entry: &NewQueueEntry) -> Result<bool> {
        let mut tx = self.begin().await.map_err(q("begin queue job"))?;
        if !transition_job_in(&mut tx, job_id, &JobChange::on(event), entry.enqueued_at).await? {
            return Ok(false);
        }
        crate::queue::insert_entry(&mut tx, entry).await?;
        tx.commit().await.map_err(q("commit queue job"))?;
        Ok(true)
    }

    /// Finishes a run that is not finished yet; `false` when it already was.
    pub async fn complete_run(
        &self,
        run_id: &RunId,
        status: RunStatus,
        reason: &ReasonUpdate,
        now: i64,
    ) -> Result<bool> {
        let Some(condition) = run_condition(RunStatusEvent::Finish(status)) else {
            return Ok(false);
        };
        let (reason_sql, reason_value) = match reason {
            ReasonUpdate::Overwrite(text) => ("$3", Some(text.clone())),
            ReasonUpdate::IfEmpty(text) => ("COALESCE(failure_reason, $3)", Some(text.clone())),
            ReasonUpdate::Clear => ("NULL", None),
            ReasonUpdate::Keep => ("COALESCE(failure_reason, $3)", None),
        };
        let sql = format!(
            "UPDATE runs SET status = $2, failure_reason = {reason_sql}, completed_at = $4,
                 duration_ms = $4 - COALESCE(started_at, created_at)
             WHERE run_id = $1 AND {condition}"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(run_id.as_str())
            .bind(status.as_str())
            .bind(reason_value)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(q("complete run"))?;
        Ok(done.rows_affected() == 1)
    }

    /// The run's jobs in display order, with their steps when asked.
    pub async fn run_jobs(&self, run_id: &RunId, include_steps: bool) -> Result<Vec<JobRecord>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE run_id = $1 ORDER BY position, job_name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(run_id.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(q("run jobs"))?;
        let mut jobs = rows.iter().map(row_to_job).collect::<Result<Vec<_>>>()?;
        if include_steps {
            for record in &mut jobs {
                record.job.steps = Some(self.job_steps(&record.job.job_id).await?);
            }
        }
        Ok(jobs)
    }

    pub async fn get_job(&self, job_id: &JobId) -> Result<Option<JobRecord>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(job_id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(q("get job"))?;
        row.as_ref().map(row_to_job).transpose()
    }

    /// Whether the run has unfinished jobs and every one is placed ([`JobStatus::is_placed`]):
    /// a job that succeeded then changes nothing else in it.
    pub async fn only_placed_jobs_left(&self, run_id: &RunId) -> Result<bool> {
        let unfinished = status_list(
            &JobStatus::ALL
                .into_iter()
                .filter(|s| !s.is_terminal())
                .collect::<Vec<_>>(),
            JobStatus::as_str,
        );
        let placed = status_list(
            &JobStatus::ALL.into_iter().filter(|s| s.is_placed()).collect::<Vec<_>>(),
            JobStatus::as_str,
        );
        let sql = format!(
            "SELECT COUNT(*) AS unfinished, COALESCE(SUM(CASE WHEN status IN ({placed}) THEN 1 ELSE 0 END), 0) AS placed
             FROM jobs WHERE run_id = $1 AND status IN ({unfinished})"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(run_id.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(q("count a run's placed jobs"))?;
        let unfinished: i64 = get(&row, "unfinished")?;
        let placed: i64 = get(&row, "placed")?;
        Ok(unfinished > 0 && unfinished == placed)
    }

    /// Applies a job change that does not end the job; `false` when the job was in none of the
    /// statuses it applies to.
    pub async fn transition_job(&self, job_id: &JobId, change: &JobChange, now: i64) -> Result<bool> {
        let mut conn = self.pool.acquire().await.map_err(q("acquire connection"))?;
        transition_job_in(&mut conn, job_id, change, now).await
    }

    /// Finishes a job that is not finished yet; `false` when it already was.
    pub async fn finish_job(
        &self,
        job_id: &str,
        change: &JobChange,
        error_message: Option<&str>,
        init_failure: Option<&InitFailure>,
        now: i64,
    ) -> Result<bool> {
        let mut conn = self.pool.acquire().await.map_err(q("acquire connection"))?;
        finish_job_in(&mut conn, job_id, change, error_message, init_failure, now).await
    }

    /// Ends a job with its queue entry, its open steps and the run's failure reason in one
    /// transaction, so a failed write cannot leave a closed entry beside a queued job. With
    /// `JobEnd::only_if_entry_open` nothing changes unless this call closed the entry (queue
    /// expiry: the entry's close is the claim). Returns whether this call finished the job.
    pub async fn end_job(&self, end: &JobEnd<'_>) -> Result<bool> {
        let mut tx = self.begin().await.map_err(q("begin end job"))?;
        if let Some(entry) = end.entry {
            let closed = crate::queue::close_entry_in(&mut tx, end.job_id, entry).await?;
            if end.only_if_entry_open && !closed {
                return Ok(false);
            }
        }
        let finished = finish_job_in(&mut tx, end.job_id, &end.change, end.error, end.init_failure, end.now).await?;
        if let Some(to) = end.open_steps {
            close_open_steps_in(&mut tx, end.job_id, to, end.now).await?;
        }
        if let Some(reason) = end.run_reason {
            sqlx::query("UPDATE runs SET failure_reason = $2 WHERE run_id = $1 AND failure_reason IS NULL")
                .bind(end.run_id.as_str())
                .bind(reason)
                .execute(&mut *tx)
                .await
                .map_err(q("set failure reason"))?;
        }
        tx.commit().await.map_err(q("commit end job"))?;
        Ok(finished)
    }

    /// Ends a matrix evaluation or job generator row and adds the jobs it produced, in one
    /// transaction; `false` (and nothing added) when the row had ended already, so a replayed
    /// report cannot add the jobs twice.
    pub async fn finish_evaluation(
        &self,
        job_id: &str,
        jobs: &[NewJob],
        queue: &[NewQueueEntry],
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin().await.map_err(q("begin finish evaluation"))?;
        // Only an evaluation that succeeds adds its jobs: one being cancelled ends cancelled
        // (by the caller), and a cancelled run gets no new jobs.
        let succeeded = JobChange::on(JobEvent::Succeed).or(JobChange::on(JobEvent::Start).then(JobEvent::Succeed));
        if !finish_job_in(&mut tx, job_id, &succeeded, None, None, now).await? {
            return Ok(false);
        }
        insert_jobs_in(&mut tx, jobs, queue).await?;
        tx.commit().await.map_err(q("commit finish evaluation"))?;
        Ok(true)
    }

    /// Records what a job's steps returned (before the job ends, so a job that needs it sees
    /// its result as soon as it is done).
    pub async fn set_job_outputs(&self, job_id: &JobId, outputs: &Value) -> Result<()> {
        sqlx::query("UPDATE jobs SET outputs = $2 WHERE job_id = $1")
            .bind(job_id.as_str())
            .bind(to_json(outputs))
            .execute(&self.pool)
            .await
            .map_err(q("set job outputs"))?;
        Ok(())
    }

    /// Ends an init job with what its functions returned, in one write; `false` when it had
    /// ended already.
    pub async fn finish_init_evaluation(&self, job_id: &JobId, result: &Value, now: i64) -> Result<bool> {
        let mut tx = self.begin().await.map_err(q("begin finish init evaluation"))?;
        let succeeded = JobChange::on(JobEvent::Succeed).or(JobChange::on(JobEvent::Start).then(JobEvent::Succeed));
        if !finish_job_in(&mut tx, job_id, &succeeded, None, None, now).await? {
            return Ok(false);
        }
        sqlx::query("UPDATE jobs SET init_result = $2 WHERE job_id = $1")
            .bind(job_id.as_str())
            .bind(to_json(result))
            .execute(&mut *tx)
            .await
            .map_err(q("set init result"))?;
        tx.commit().await.map_err(q("commit finish init evaluation"))?;
        Ok(true)
    }

    /// Adds an init job to its run with its queue entry, once: `false` when a job with its id
    /// exists already (another pass added it).
    pub async fn add_init_job(&self, job: &NewJob, entry: &NewQueueEntry) -> Result<bool> {
        let mut tx = self.begin().await.map_err(q("begin add init job"))?;
        let exists = sqlx::query("SELECT 1 FROM jobs WHERE job_id = $1")
            .bind(job.job_id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(q("find init job"))?
            .is_some();
        if exists {
            return Ok(false);
        }
        insert_jobs_in(&mut tx, std::slice::from_ref(job), std::slice::from_ref(entry)).await?;
        tx.commit().await.map_err(q("commit add init job"))?;
        Ok(true)
    }

    /// Records that messages up to `seq` of the job were applied; `false` when `seq` was
    /// already recorded (a replay).
    /// Records that the agent's message `seq` was applied, and, for a running job, that its
    /// agent was heard from at `now` (one write per message).
    pub async fn advance_seq(&self, job_id: &JobId, seq: i64, now: i64) -> Result<bool> {
        let running = JobStatus::Running;
        let sql = format!(
            "UPDATE jobs SET last_seq = $2,
                 last_heartbeat_at = CASE WHEN status = '{running}' THEN $3 ELSE last_heartbeat_at END
             WHERE job_id = $1 AND last_seq < $2"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(job_id.as_str())
            .bind(seq)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(q("advance seq"))?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn job_heartbeat(&self, job_id: &JobId, now: i64) -> Result<()> {
        let running = JobStatus::Running;
        let sql = format!("UPDATE jobs SET last_heartbeat_at = $2 WHERE job_id = $1 AND status = '{running}'");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(job_id.as_str())
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(q("job heartbeat"))?;
        Ok(())
    }

    /// Inserts or updates a step; a finished step keeps its final state.
    pub async fn upsert_step(&self, step: &StepUpdate) -> Result<()> {
        let running = !step.status.is_terminal();
        let open = open_steps();
        let sql = format!(
            "INSERT INTO steps (job_id, step_index, step_name, step_type, status, exit_code, error_message, started_at, completed_at, duration_ms, secrets_accessed)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (job_id, step_index) DO UPDATE SET step_name = $3, step_type = $4, status = $5,
                 exit_code = COALESCE($6, steps.exit_code), error_message = COALESCE($7, steps.error_message),
                 started_at = COALESCE(steps.started_at, $8), completed_at = COALESCE($9, steps.completed_at),
                 duration_ms = COALESCE($10, steps.duration_ms),
                 secrets_accessed = COALESCE($11, steps.secrets_accessed)
             WHERE steps.status IN ({open})"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(step.job_id.as_str())
            .bind(step.step_index)
            .bind(&step.step_name)
            .bind(&step.step_type)
            .bind(step.status.as_str())
            .bind(step.exit_code.map(i64::from))
            .bind(&step.error_message)
            .bind(running.then_some(step.now))
            .bind((!running).then_some(step.now))
            .bind(step.duration_ms)
            .bind((!step.secrets_accessed.is_empty()).then(|| to_json(&step.secrets_accessed)))
            .execute(&self.pool)
            .await
            .map_err(q("upsert step"))?;
        Ok(())
    }

    pub async fn job_steps(&self, job_id: &JobId) -> Result<Vec<api::Step>> {
        let rows = sqlx::query(
            "SELECT step_index, step_name, step_type, status, exit_code, error_message, started_at, completed_at, duration_ms, secrets_accessed
             FROM steps WHERE job_id = $1 ORDER BY step_index",
        )
        .bind(job_id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(q("job steps"))?;
        rows.iter().map(row_to_step).collect()
    }

    /// Running jobs whose last heartbeat is older than `before` (stale detection).
    pub async fn stale_running_jobs(&self, before: i64) -> Result<Vec<JobRecord>> {
        let running = JobStatus::Running;
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE status = '{running}' AND COALESCE(last_heartbeat_at, started_at, created_at) < $1"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(before)
            .fetch_all(&self.pool)
            .await
            .map_err(q("stale jobs"))?;
        rows.iter().map(row_to_job).collect()
    }
}

/// How a job ends; see [`Store::end_job`].
#[derive(Debug, Clone)]
pub struct JobEnd<'a> {
    pub job_id: &'a JobId,
    pub run_id: &'a RunId,
    /// The end, from the engine's table (e.g. `JobChange::reported(status)`).
    pub change: JobChange,
    pub error: Option<&'a str>,
    pub init_failure: Option<&'a InitFailure>,
    /// The queue entry's final state, if it is to be closed.
    pub entry: Option<QueueStatus>,
    pub only_if_entry_open: bool,
    /// What the job's pending and running steps become.
    pub open_steps: Option<StepStatus>,
    /// The run's failure reason, unless it has one.
    pub run_reason: Option<&'a str>,
    pub now: i64,
}

pub(crate) async fn transition_job_in(
    conn: &mut sqlx::AnyConnection,
    job_id: &JobId,
    change: &JobChange,
    now: i64,
) -> Result<bool> {
    let Some((to, from)) = change_sql(change) else {
        return Ok(false);
    };
    let running = JobStatus::Running;
    let sql = format!(
        "UPDATE jobs SET status = {to},
             started_at = CASE WHEN {to} = '{running}' THEN COALESCE(started_at, $2) ELSE started_at END,
             last_heartbeat_at = CASE WHEN {to} = '{running}' THEN $2 ELSE last_heartbeat_at END
         WHERE job_id = $1 AND status IN ({from})"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(job_id.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(q("transition job"))?;
    Ok(done.rows_affected() == 1)
}

/// Ends a job by `change`, whose every move is to a terminal status.
pub(crate) async fn finish_job_in(
    conn: &mut sqlx::AnyConnection,
    job_id: &str,
    change: &JobChange,
    error_message: Option<&str>,
    init_failure: Option<&InitFailure>,
    now: i64,
) -> Result<bool> {
    debug_assert!(
        change.moves().iter().all(|(_, to)| to.is_terminal()),
        "{change:?} must end the job"
    );
    let Some((to, from)) = change_sql(change) else {
        return Ok(false);
    };
    let sql = format!(
        "UPDATE jobs SET status = {to}, error_message = COALESCE($2, error_message), init_failure = COALESCE($3, init_failure),
             completed_at = $4, duration_ms = CASE WHEN started_at IS NULL THEN NULL ELSE $4 - started_at END
         WHERE job_id = $1 AND status IN ({from})"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(job_id)
        .bind(error_message)
        .bind(init_failure.map(to_json))
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(q("finish job"))?;
    Ok(done.rows_affected() == 1)
}

async fn close_open_steps_in(conn: &mut sqlx::AnyConnection, job_id: &JobId, to: StepStatus, now: i64) -> Result<()> {
    let sql = format!(
        "UPDATE steps SET status = $2, completed_at = $3 WHERE job_id = $1 AND status IN ({})",
        open_steps()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(job_id.as_str())
        .bind(to.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(q("close open steps"))?;
    Ok(())
}

async fn insert_jobs_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    jobs: &[NewJob],
    queue: &[NewQueueEntry],
) -> Result<()> {
    for job in jobs {
        sqlx::query(
            "INSERT INTO jobs (job_id, run_id, job_name, base_job_name, kind, matrix, status, runs_on, exclude_labels, needs,
                 error_message, init_failure, position, created_at, completed_at, dynamic_index, definition, outputs,
                 reused_from_run, reused_from_job, secret_outputs)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
        )
        .bind(job.job_id.as_str())
        .bind(job.run_id.as_str())
        .bind(&job.job_name)
        .bind(&job.base_job_name)
        .bind(job.kind.as_str())
        .bind(job.matrix.as_ref().map(to_json))
        .bind(job.status.as_str())
        .bind(to_json(&job.runs_on))
        .bind(to_json(&job.exclude_labels))
        .bind(to_json(&job.needs))
        .bind(&job.error_message)
        .bind(job.init_failure.as_ref().map(to_json))
        .bind(job.position)
        .bind(job.created_at)
        .bind(job.status.is_terminal().then_some(job.created_at))
        .bind(job.dynamic_index)
        .bind(&job.definition)
        .bind(job.reused.as_ref().and_then(|r| r.outputs.as_ref()).map(to_json))
        .bind(job.reused.as_ref().map(|r| r.from.run_id.as_str()))
        .bind(job.reused.as_ref().map(|r| r.from.job_id.as_str()))
        .bind(i64::from(job.reused.as_ref().is_some_and(|r| r.secret_outputs)))
        .execute(&mut **tx)
        .await
        .map_err(q("insert job"))?;
    }
    for entry in queue {
        crate::queue::insert_entry(tx, entry).await?;
    }
    Ok(())
}
