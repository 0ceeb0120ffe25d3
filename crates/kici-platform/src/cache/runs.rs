//! Cached runs and jobs: the `execution.status` upsert (a run row and all its jobs replaced in
//! one transaction, unless the snapshot is older than what is stored), the filtered run list,
//! reads by id, and the held jobs.

use kici_engine::api::{Job, Run};
use kici_engine::platform_protocol::RunSnapshot;
use kici_engine::status::{JobStatus, RunStatus};
use sqlx::any::AnyRow;

use super::{Arg, Cache, Result, dynamic, get, get_json, q, to_json};

/// A cached run and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedRun {
    pub run: Run,
    /// The instance id of the orchestrator that pushed it (and serves its logs).
    pub orchestrator_id: String,
    /// When the Platform last stored a snapshot of it.
    pub updated_at: i64,
}

/// What [`Cache::upsert_snapshot`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotOutcome {
    /// The snapshot is now the cached state; `previous` is the status before (`None`: new run).
    Stored { previous: Option<RunStatus> },
    /// The stored state is newer; nothing changed.
    Ignored { stored: RunStatus },
}

/// `GET /api/v1/runs` filters. Empty `statuses` means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub statuses: Vec<RunStatus>,
    pub workflow: Option<String>,
    pub repo: Option<String>,
    /// Matches `gitRef` `refs/heads/<branch>` or exactly `<branch>`.
    pub branch: Option<String>,
    /// Runs created at or after this (epoch ms).
    pub since: Option<i64>,
    /// What started them (`push`, `pull_request`, `schedule`, …).
    pub trigger: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// Whether `incoming` may replace `stored`. Snapshots carry no sequence number, so age is read
/// from the run itself: a finished run never goes back to unfinished, a finished run is only
/// replaced by a snapshot that completed at the same time or later (the same end, maybe with
/// more detail, or a correction), and a started run does not go back to not started.
pub fn supersedes(stored: &Run, incoming: &Run) -> bool {
    match (stored.status.is_terminal(), incoming.status.is_terminal()) {
        (true, false) => false,
        // `None < Some`: a terminal snapshot without a completion time is the older one.
        (true, true) => incoming.completed_at >= stored.completed_at,
        (false, true) => true,
        (false, false) => !(stored.started_at.is_some() && incoming.started_at.is_none()),
    }
}

/// Binds `arg` as the next parameter; returns its placeholder (`$3`).
fn placeholder(args: &mut Vec<Arg>, arg: Arg) -> String {
    args.push(arg);
    format!("${}", args.len())
}

const RUN_COLUMNS: &str = "run_json, orchestrator_id, updated_at";

fn row_to_run(row: &AnyRow) -> Result<CachedRun> {
    Ok(CachedRun {
        run: get_json(row, "run_json")?,
        orchestrator_id: get(row, "orchestrator_id")?,
        updated_at: get(row, "updated_at")?,
    })
}

impl Cache {
    /// Stores `snapshot` from orchestrator `orchestrator_id`: the run row and its jobs, in one
    /// transaction, unless the cached run is newer ([`supersedes`]).
    pub async fn upsert_snapshot(
        &self,
        snapshot: &RunSnapshot,
        orchestrator_id: &str,
        now: i64,
    ) -> Result<SnapshotOutcome> {
        let _writer = self.write.lock().await;
        let run = &snapshot.run;
        let mut tx = self.pool.begin().await.map_err(q("begin snapshot upsert"))?;
        let stored = sqlx::query("SELECT run_json, orchestrator_id, updated_at FROM runs WHERE run_id = $1")
            .bind(run.run_id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(q("read cached run"))?
            .map(|row| row_to_run(&row))
            .transpose()?;
        if let Some(stored) = &stored
            && !supersedes(&stored.run, run)
        {
            return Ok(SnapshotOutcome::Ignored {
                stored: stored.run.status,
            });
        }
        sqlx::query(
            "INSERT INTO runs (run_id, run_json, status, workflow_name, repo, git_ref, created_at, orchestrator_id, updated_at, trigger_type)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (run_id) DO UPDATE SET run_json = excluded.run_json, status = excluded.status,
               workflow_name = excluded.workflow_name, repo = excluded.repo, git_ref = excluded.git_ref,
               created_at = excluded.created_at, orchestrator_id = excluded.orchestrator_id,
               updated_at = excluded.updated_at, trigger_type = excluded.trigger_type",
        )
        .bind(run.run_id.as_str())
        .bind(to_json(run))
        .bind(run.status.as_str())
        .bind(&run.workflow_name)
        .bind(&run.repo)
        .bind(&run.git_ref)
        .bind(run.created_at)
        .bind(orchestrator_id)
        .bind(now)
        .bind(&run.trigger)
        .execute(&mut *tx)
        .await
        .map_err(q("upsert run"))?;
        sqlx::query("DELETE FROM jobs WHERE run_id = $1")
            .bind(run.run_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(q("delete run jobs"))?;
        for (position, job) in snapshot.jobs.iter().enumerate() {
            sqlx::query(
                "INSERT INTO jobs (job_id, run_id, position, job_json, status) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (job_id) DO UPDATE SET run_id = excluded.run_id, position = excluded.position,
                   job_json = excluded.job_json, status = excluded.status",
            )
            .bind(job.job_id.as_str())
            .bind(run.run_id.as_str())
            .bind(position as i64)
            .bind(to_json(job))
            .bind(job.status.as_str())
            .execute(&mut *tx)
            .await
            .map_err(q("insert job"))?;
        }
        tx.commit().await.map_err(q("commit snapshot upsert"))?;
        Ok(SnapshotOutcome::Stored {
            previous: stored.map(|s| s.run.status),
        })
    }

    pub async fn get_run(&self, run_id: &str) -> Result<Option<CachedRun>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read run"))?
            .map(|row| row_to_run(&row))
            .transpose()
    }

    /// A page of runs matching `filter`, newest first, with the number of all matches.
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<(Vec<Run>, i64)> {
        let mut conditions = vec!["1 = 1".to_string()];
        let mut args: Vec<Arg> = Vec::new();
        if !filter.statuses.is_empty() {
            let names: Vec<String> = filter
                .statuses
                .iter()
                .map(|status| placeholder(&mut args, Arg::Text(status.as_str().to_string())))
                .collect();
            conditions.push(format!("status IN ({})", names.join(", ")));
        }
        if let Some(workflow) = &filter.workflow {
            conditions.push(format!(
                "workflow_name = {}",
                placeholder(&mut args, Arg::Text(workflow.clone()))
            ));
        }
        if let Some(repo) = &filter.repo {
            conditions.push(format!("repo = {}", placeholder(&mut args, Arg::Text(repo.clone()))));
        }
        if let Some(branch) = &filter.branch {
            let full = placeholder(&mut args, Arg::Text(format!("refs/heads/{branch}")));
            let bare = placeholder(&mut args, Arg::Text(branch.clone()));
            conditions.push(format!("(git_ref = {full} OR git_ref = {bare})"));
        }
        if let Some(trigger) = &filter.trigger {
            conditions.push(format!(
                "trigger_type = {}",
                placeholder(&mut args, Arg::Text(trigger.clone()))
            ));
        }
        if let Some(since) = filter.since {
            conditions.push(format!("created_at >= {}", placeholder(&mut args, Arg::Int(since))));
        }
        let condition = conditions.join(" AND ");
        let count_sql = format!("SELECT COUNT(*) AS total FROM runs WHERE {condition}");
        let total: i64 = get(
            &dynamic(count_sql, &args)
                .fetch_one(&self.pool)
                .await
                .map_err(q("count runs"))?,
            "total",
        )?;
        let filter_args = args.len();
        let mut page_args = args;
        page_args.push(Arg::Int(filter.limit));
        page_args.push(Arg::Int(filter.offset));
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE {condition} ORDER BY created_at DESC, run_id DESC LIMIT ${} OFFSET ${}",
            filter_args + 1,
            filter_args + 2
        );
        let rows = dynamic(sql, &page_args)
            .fetch_all(&self.pool)
            .await
            .map_err(q("list runs"))?;
        let runs = rows
            .iter()
            .map(|row| row_to_run(row).map(|cached| cached.run))
            .collect::<Result<Vec<Run>>>()?;
        Ok((runs, total))
    }

    /// The run id of every cached `held` job (a job has one pending hold at most): the
    /// approvals badge counts them, the runs list marks their runs.
    pub async fn held_jobs(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT run_id FROM jobs WHERE status = $1")
            .bind(JobStatus::Held.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(q("list held jobs"))?;
        rows.iter().map(|row| get(row, "run_id")).collect()
    }

    /// The run's jobs (with their steps) in the orchestrator's display order.
    pub async fn run_jobs(&self, run_id: &str) -> Result<Vec<Job>> {
        let rows = sqlx::query("SELECT job_json FROM jobs WHERE run_id = $1 ORDER BY position")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await
            .map_err(q("list jobs"))?;
        rows.iter().map(|row| get_json(row, "job_json")).collect()
    }
}
