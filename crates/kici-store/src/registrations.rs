//! Workflow registrations (`workflow_registrations`): the triggers that fire without a git event,
//! as the lock file of a repository's default branch declared them. A default-branch push
//! replaces a repository's rows in one transaction; a schedule tick is claimed by one guarded
//! update, so it fires once however many orchestrators look.

use std::collections::HashMap;

use kici_engine::ids::SourceId;

use crate::{Result, Store, get, get_id, q};

/// A registration to store: one trigger of one workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRegistration {
    pub workflow_name: String,
    pub trigger_index: i64,
    /// The lock-file trigger type (`schedule`).
    pub kind: String,
    /// The trigger as the lock file holds it.
    pub trigger_json: String,
}

/// A stored registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub registration_id: String,
    pub source_id: SourceId,
    pub repo: String,
    pub workflow_name: String,
    pub trigger_index: i64,
    pub kind: String,
    pub trigger_json: String,
    /// The default branch (`refs/heads/main`) and the commit whose lock file registered it.
    pub git_ref: String,
    pub sha: String,
    pub enabled: bool,
    /// The last tick fired, or when it was registered.
    pub last_fired_at: i64,
    pub registered_at: i64,
    /// The clone URL the registering push's payload named, and its GitHub App installation.
    pub clone_url: Option<String>,
    pub installation_id: Option<i64>,
}

const COLUMNS: &str = "registration_id, source_id, repo, workflow_name, trigger_index, kind, trigger_json, \
                       git_ref, sha, enabled, last_fired_at, registered_at, clone_url, installation_id";

fn row_to_registration(row: &sqlx::any::AnyRow) -> Result<Registration> {
    Ok(Registration {
        registration_id: get(row, "registration_id")?,
        source_id: get_id(row, "source_id")?,
        repo: get(row, "repo")?,
        workflow_name: get(row, "workflow_name")?,
        trigger_index: get(row, "trigger_index")?,
        kind: get(row, "kind")?,
        trigger_json: get(row, "trigger_json")?,
        git_ref: get(row, "git_ref")?,
        sha: get(row, "sha")?,
        enabled: get::<i64>(row, "enabled")? != 0,
        last_fired_at: get(row, "last_fired_at")?,
        registered_at: get(row, "registered_at")?,
        clone_url: get(row, "clone_url")?,
        installation_id: get(row, "installation_id")?,
    })
}

/// Where a repository's registrations came from.
#[derive(Debug, Clone, Copy)]
pub struct RegisteredAt<'a> {
    pub source_id: &'a SourceId,
    pub repo: &'a str,
    pub git_ref: &'a str,
    pub sha: &'a str,
    pub now: i64,
    pub clone_url: Option<&'a str>,
    pub installation_id: Option<i64>,
}

impl Store {
    /// Replaces a repository's registrations with `registrations`. One whose workflow and
    /// trigger were registered before is updated in place (same id, same last tick, enabled or
    /// not), so a push that does not change a schedule neither fires it again nor re-enables it,
    /// and a tick claimed meanwhile stays claimed.
    pub async fn replace_registrations(
        &self,
        at: RegisteredAt<'_>,
        registrations: &[NewRegistration],
        mut new_id: impl FnMut() -> String,
    ) -> Result<()> {
        let mut tx = self.begin().await.map_err(q("begin replace registrations"))?;
        let rows = sqlx::query(
            "SELECT registration_id, workflow_name, trigger_json FROM workflow_registrations WHERE source_id = $1 AND repo = $2",
        )
        .bind(at.source_id.as_str())
        .bind(at.repo)
        .fetch_all(&mut *tx)
        .await
        .map_err(q("registrations of a repository"))?;
        let mut previous: HashMap<(String, String), String> = HashMap::new();
        for row in &rows {
            let key = (
                get::<String>(row, "workflow_name")?,
                get::<String>(row, "trigger_json")?,
            );
            previous.insert(key, get(row, "registration_id")?);
        }
        for registration in registrations {
            let key = (registration.workflow_name.clone(), registration.trigger_json.clone());
            match previous.remove(&key) {
                Some(id) => {
                    sqlx::query(
                        "UPDATE workflow_registrations SET trigger_index = $1, kind = $2, git_ref = $3, sha = $4, \
                         clone_url = $5, installation_id = $6 WHERE registration_id = $7",
                    )
                    .bind(registration.trigger_index)
                    .bind(&registration.kind)
                    .bind(at.git_ref)
                    .bind(at.sha)
                    .bind(at.clone_url)
                    .bind(at.installation_id)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("update registration"))?;
                }
                None => {
                    sqlx::query(
                        "INSERT INTO workflow_registrations (registration_id, source_id, repo, workflow_name, trigger_index, \
                         kind, trigger_json, git_ref, sha, enabled, last_fired_at, registered_at, clone_url, installation_id) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10, $11, $12)",
                    )
                    .bind(new_id())
                    .bind(at.source_id.as_str())
                    .bind(at.repo)
                    .bind(&registration.workflow_name)
                    .bind(registration.trigger_index)
                    .bind(&registration.kind)
                    .bind(&registration.trigger_json)
                    .bind(at.git_ref)
                    .bind(at.sha)
                    .bind(at.now)
                    .bind(at.clone_url)
                    .bind(at.installation_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("insert registration"))?;
                }
            }
        }
        for gone in previous.values() {
            sqlx::query("DELETE FROM workflow_registrations WHERE registration_id = $1")
                .bind(gone)
                .execute(&mut *tx)
                .await
                .map_err(q("delete registration"))?;
        }
        tx.commit().await.map_err(q("commit replace registrations"))?;
        Ok(())
    }

    /// Every registration, or those of one kind, by repository, workflow and trigger.
    pub async fn registrations(&self, kind: Option<&str>) -> Result<Vec<Registration>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM workflow_registrations WHERE ($1 = '' OR kind = $1) \
             ORDER BY repo, workflow_name, trigger_index"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(kind.unwrap_or(""))
            .fetch_all(&self.pool)
            .await
            .map_err(q("registrations"))?;
        rows.iter().map(row_to_registration).collect()
    }

    pub async fn registration(&self, registration_id: &str) -> Result<Option<Registration>> {
        let sql = format!("SELECT {COLUMNS} FROM workflow_registrations WHERE registration_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(registration_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("registration"))?;
        row.as_ref().map(row_to_registration).transpose()
    }

    /// Claims schedule tick `tick` of a registration: true for the one caller that moves its
    /// last tick forward to it.
    pub async fn claim_schedule_tick(&self, registration_id: &str, tick: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE workflow_registrations SET last_fired_at = $2 \
             WHERE registration_id = $1 AND last_fired_at < $2 AND enabled = 1",
        )
        .bind(registration_id)
        .bind(tick)
        .execute(&self.pool)
        .await
        .map_err(q("claim schedule tick"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims an internal event (`job_complete:<jobId>`…): true for the one caller that
    /// records it first, which then announces it.
    pub async fn claim_event(&self, key: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO event_claims (claim_key, created_at) VALUES ($1, $2) ON CONFLICT (claim_key) DO NOTHING",
        )
        .bind(key)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(q("claim event"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a claim back (what it guarded failed, so the sender's retry may claim it again).
    pub async fn release_event_claim(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM event_claims WHERE claim_key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(q("release event claim"))?;
        Ok(())
    }

    /// The GitHub check runs created for a run, by name.
    pub async fn check_run_ids(&self, run_id: &kici_engine::ids::RunId) -> Result<HashMap<String, i64>> {
        let rows = sqlx::query("SELECT name, check_run_id FROM check_runs WHERE run_id = $1")
            .bind(run_id.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(q("check runs"))?;
        rows.iter()
            .map(|row| Ok((get::<String>(row, "name")?, get::<i64>(row, "check_run_id")?)))
            .collect()
    }

    /// Records a check run created for a run (the first record wins).
    pub async fn save_check_run_id(&self, run_id: &kici_engine::ids::RunId, name: &str, id: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO check_runs (run_id, name, check_run_id) VALUES ($1, $2, $3) ON CONFLICT (run_id, name) DO NOTHING",
        )
        .bind(run_id.as_str())
        .bind(name)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(q("save check run"))?;
        Ok(())
    }

    /// Forgets the claims of keys starting with `prefix` made before `before` (the delivery
    /// ids of generic webhooks, kept a day against replays).
    pub async fn forget_event_claims(&self, prefix: &str, before: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM event_claims WHERE claim_key LIKE $1 AND created_at < $2")
            .bind(format!("{prefix}%"))
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(q("forget event claims"))?;
        Ok(done.rows_affected())
    }

    /// Turns a registration on or off; false when there is none with that id. Turned on again,
    /// it counts from `now`: the ticks it missed while off are not fired.
    pub async fn set_registration_enabled(&self, registration_id: &str, enabled: bool, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE workflow_registrations SET enabled = $2, \
             last_fired_at = CASE WHEN $2 = 1 AND last_fired_at < $3 THEN $3 ELSE last_fired_at END \
             WHERE registration_id = $1",
        )
        .bind(registration_id)
        .bind(i64::from(enabled))
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(q("enable registration"))?;
        Ok(done.rows_affected() == 1)
    }
}
