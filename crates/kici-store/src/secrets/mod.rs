//! Scoped secrets (stored encrypted: callers seal and open), plain variables, environments and
//! `secret_audit_log`. Every change is written in one transaction with its audit entry, so
//! there is no change without its entry and no entry without its change.

use kici_engine::api::secrets::{AuditEntry, SecretMeta, Variable};
use kici_engine::protection::Environment;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use crate::{Result, Store, StoreError, get, get_json, q, to_json};

/// An audit entry to write with a change; `entry_id` is the caller's unique id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    pub entry_id: String,
    pub org_id: String,
    pub entry: AuditEntry,
}

/// A secret as stored: its value is sealed (`enc:v1:…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub org_id: String,
    pub scope: String,
    pub key: String,
    pub value: String,
}

/// A job's secret output as stored: its value is sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedOutput {
    pub run_id: kici_engine::ids::RunId,
    pub job_id: kici_engine::ids::JobId,
    pub base_job_name: String,
    pub key: String,
    pub value: String,
}

/// What a set did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Created,
    Updated,
}

async fn write_audit(tx: &mut Transaction<'_, Any>, audit: &NewAudit) -> Result<()> {
    let entry = &audit.entry;
    sqlx::query(
        "INSERT INTO secret_audit_log (entry_id, org_id, timestamp, action, context_name, secret_keys, outcome, run_id, job_id, actor, role, metadata)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&audit.entry_id)
    .bind(&audit.org_id)
    .bind(entry.timestamp)
    .bind(&entry.action)
    .bind(&entry.context_name)
    .bind(to_json(&entry.secret_keys))
    .bind(&entry.outcome)
    .bind(entry.run_id.as_deref())
    .bind(entry.job_id.as_deref())
    .bind(&entry.actor)
    .bind(&entry.role)
    .bind(entry.metadata.as_ref().map(to_json))
    .execute(&mut **tx)
    .await
    .map_err(q("write audit entry"))?;
    Ok(())
}

fn row_to_audit(row: &AnyRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        timestamp: get(row, "timestamp")?,
        action: get(row, "action")?,
        context_name: get(row, "context_name")?,
        secret_keys: get_json(row, "secret_keys")?.unwrap_or_default(),
        outcome: get(row, "outcome")?,
        run_id: crate::get_opt_id(row, "run_id")?,
        job_id: crate::get_opt_id(row, "job_id")?,
        actor: get(row, "actor")?,
        role: get(row, "role")?,
        metadata: get_json(row, "metadata")?,
    })
}

/// Which of the two plain key-value tables a call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Secrets,
    Variables,
}

impl Table {
    fn upsert_sql(self) -> &'static str {
        match self {
            Table::Secrets => {
                "INSERT INTO scoped_secrets (org_id, scope, secret_key, value, created_at, updated_at, updated_by)
                 VALUES ($1, $2, $3, $4, $5, $5, $6)
                 ON CONFLICT (org_id, scope, secret_key) DO UPDATE SET value = $4, updated_at = $5, updated_by = $6"
            }
            Table::Variables => {
                "INSERT INTO variables (org_id, scope, name, value, created_at, updated_at, updated_by)
                 VALUES ($1, $2, $3, $4, $5, $5, $6)
                 ON CONFLICT (org_id, scope, name) DO UPDATE SET value = $4, updated_at = $5, updated_by = $6"
            }
        }
    }

    fn exists_sql(self) -> &'static str {
        match self {
            Table::Secrets => "SELECT 1 FROM scoped_secrets WHERE org_id = $1 AND scope = $2 AND secret_key = $3",
            Table::Variables => "SELECT 1 FROM variables WHERE org_id = $1 AND scope = $2 AND name = $3",
        }
    }

    fn delete_sql(self) -> &'static str {
        match self {
            Table::Secrets => "DELETE FROM scoped_secrets WHERE org_id = $1 AND scope = $2 AND secret_key = $3",
            Table::Variables => "DELETE FROM variables WHERE org_id = $1 AND scope = $2 AND name = $3",
        }
    }
}

impl Store {
    async fn upsert(
        &self,
        table: Table,
        (org_id, scope, key): (&str, &str, &str),
        value: &str,
        audit: &NewAudit,
    ) -> Result<Upsert> {
        let mut tx = self.begin().await.map_err(q("begin set value"))?;
        let existed = sqlx::query(table.exists_sql())
            .bind(org_id)
            .bind(scope)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(q("find value"))?
            .is_some();
        sqlx::query(table.upsert_sql())
            .bind(org_id)
            .bind(scope)
            .bind(key)
            .bind(value)
            .bind(audit.entry.timestamp)
            .bind(&audit.entry.actor)
            .execute(&mut *tx)
            .await
            .map_err(q("set value"))?;
        write_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(q("commit set value"))?;
        Ok(if existed { Upsert::Updated } else { Upsert::Created })
    }

    async fn delete_value(
        &self,
        table: Table,
        (org_id, scope, key): (&str, &str, &str),
        audit: &NewAudit,
    ) -> Result<bool> {
        let mut tx = self.begin().await.map_err(q("begin delete value"))?;
        let deleted = sqlx::query(table.delete_sql())
            .bind(org_id)
            .bind(scope)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(q("delete value"))?
            .rows_affected()
            == 1;
        // Deleting nothing changes nothing: no entry either.
        if deleted {
            write_audit(&mut tx, audit).await?;
        }
        tx.commit().await.map_err(q("commit delete value"))?;
        Ok(deleted)
    }

    /// Sets a secret to a sealed value, with its audit entry.
    pub async fn put_secret(&self, secret: &SealedSecret, audit: &NewAudit) -> Result<Upsert> {
        self.upsert(
            Table::Secrets,
            (&secret.org_id, &secret.scope, &secret.key),
            &secret.value,
            audit,
        )
        .await
    }

    /// Deletes a secret, with its audit entry; `false` when there was none.
    pub async fn delete_secret(&self, org_id: &str, scope: &str, key: &str, audit: &NewAudit) -> Result<bool> {
        self.delete_value(Table::Secrets, (org_id, scope, key), audit).await
    }

    /// A secret's sealed value, recording the read (`secret.reveal`) in the same transaction.
    pub async fn reveal_secret(
        &self,
        org_id: &str,
        scope: &str,
        key: &str,
        audit: &NewAudit,
    ) -> Result<Option<String>> {
        let mut tx = self.begin().await.map_err(q("begin reveal secret"))?;
        let value: Option<String> =
            sqlx::query("SELECT value FROM scoped_secrets WHERE org_id = $1 AND scope = $2 AND secret_key = $3")
                .bind(org_id)
                .bind(scope)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(q("reveal secret"))?
                .map(|row| get(&row, "value"))
                .transpose()?;
        if value.is_some() {
            write_audit(&mut tx, audit).await?;
        }
        tx.commit().await.map_err(q("commit reveal secret"))?;
        Ok(value)
    }

    /// The org's secrets without values, by scope and key; only `scope`'s when given.
    pub async fn list_secrets(&self, org_id: &str, scope: Option<&str>) -> Result<Vec<SecretMeta>> {
        let rows = sqlx::query(
            "SELECT scope, secret_key, created_at, updated_at, updated_by FROM scoped_secrets
             WHERE org_id = $1 AND ($2 = '' OR scope = $2) ORDER BY scope, secret_key",
        )
        .bind(org_id)
        .bind(scope.unwrap_or(""))
        .fetch_all(&self.pool)
        .await
        .map_err(q("list secrets"))?;
        rows.iter()
            .map(|row| {
                Ok(SecretMeta {
                    scope: get(row, "scope")?,
                    key: get(row, "secret_key")?,
                    created_at: get(row, "created_at")?,
                    updated_at: get(row, "updated_at")?,
                    updated_by: get(row, "updated_by")?,
                })
            })
            .collect()
    }

    /// Every sealed secret of the org (`None`: of every org), for resolution and key rotation.
    pub async fn sealed_secrets(&self, org_id: Option<&str>) -> Result<Vec<SealedSecret>> {
        let rows = sqlx::query(
            "SELECT org_id, scope, secret_key, value FROM scoped_secrets
             WHERE ($1 = '' OR org_id = $1) ORDER BY org_id, scope, secret_key",
        )
        .bind(org_id.unwrap_or(""))
        .fetch_all(&self.pool)
        .await
        .map_err(q("read sealed secrets"))?;
        rows.iter()
            .map(|row| {
                Ok(SealedSecret {
                    org_id: get(row, "org_id")?,
                    scope: get(row, "scope")?,
                    key: get(row, "secret_key")?,
                    value: get(row, "value")?,
                })
            })
            .collect()
    }

    /// Replaces a sealed secret if it is still `current` (re-encryption under a new key);
    /// `false` when it changed meanwhile.
    pub async fn replace_sealed_secret(&self, secret: &SealedSecret, current: &str) -> Result<bool> {
        let updated = sqlx::query(
            "UPDATE scoped_secrets SET value = $1 WHERE org_id = $2 AND scope = $3 AND secret_key = $4 AND value = $5",
        )
        .bind(&secret.value)
        .bind(&secret.org_id)
        .bind(&secret.scope)
        .bind(&secret.key)
        .bind(current)
        .execute(&self.pool)
        .await
        .map_err(q("replace sealed secret"))?;
        Ok(updated.rows_affected() == 1)
    }

    /// Writes an audit entry on its own (a key rotation's summary, a denied attempt).
    pub async fn insert_audit(&self, audit: &NewAudit) -> Result<()> {
        let mut tx = self.begin().await.map_err(q("begin audit"))?;
        write_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(q("commit audit"))
    }

    /// Stores a job's secret outputs (a replayed report stores nothing new).
    pub async fn put_secret_outputs(&self, outputs: &[SealedOutput], now: i64) -> Result<()> {
        let mut tx = self.begin().await.map_err(q("begin put secret outputs"))?;
        for output in outputs {
            sqlx::query(
                "INSERT INTO run_secret_outputs (run_id, job_id, base_job_name, output_key, value, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (job_id, output_key) DO NOTHING",
            )
            .bind(output.run_id.as_str())
            .bind(output.job_id.as_str())
            .bind(&output.base_job_name)
            .bind(&output.key)
            .bind(&output.value)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(q("put secret output"))?;
            sqlx::query("UPDATE jobs SET secret_outputs = 1 WHERE job_id = $1")
                .bind(output.job_id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(q("mark secret outputs"))?;
        }
        tx.commit().await.map_err(q("commit put secret outputs"))
    }

    /// The secret outputs of the run's jobs named `bases`, oldest first.
    pub async fn secret_outputs(&self, run_id: &kici_engine::ids::RunId, bases: &[&str]) -> Result<Vec<SealedOutput>> {
        let rows = sqlx::query(
            "SELECT run_id, job_id, base_job_name, output_key, value FROM run_secret_outputs
             WHERE run_id = $1 ORDER BY created_at, job_id, output_key",
        )
        .bind(run_id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(q("read secret outputs"))?;
        let mut outputs = Vec::new();
        for row in &rows {
            let base: String = get(row, "base_job_name")?;
            if !bases.contains(&base.as_str()) {
                continue;
            }
            outputs.push(SealedOutput {
                run_id: crate::get_id(row, "run_id")?,
                job_id: crate::get_id(row, "job_id")?,
                base_job_name: base,
                key: get(row, "output_key")?,
                value: get(row, "value")?,
            });
        }
        Ok(outputs)
    }

    /// Deletes a finished run's secret outputs.
    pub async fn delete_secret_outputs(&self, run_id: &kici_engine::ids::RunId) -> Result<()> {
        sqlx::query("DELETE FROM run_secret_outputs WHERE run_id = $1")
            .bind(run_id.as_str())
            .execute(&self.pool)
            .await
            .map_err(q("delete secret outputs"))?;
        Ok(())
    }

    /// Sets a variable, with its audit entry.
    pub async fn put_variable(
        &self,
        org_id: &str,
        scope: &str,
        name: &str,
        value: &str,
        audit: &NewAudit,
    ) -> Result<Upsert> {
        self.upsert(Table::Variables, (org_id, scope, name), value, audit).await
    }

    /// Deletes a variable, with its audit entry; `false` when there was none.
    pub async fn delete_variable(&self, org_id: &str, scope: &str, name: &str, audit: &NewAudit) -> Result<bool> {
        self.delete_value(Table::Variables, (org_id, scope, name), audit).await
    }

    /// The org's variables by scope and name; only `scope`'s when given.
    pub async fn list_variables(&self, org_id: &str, scope: Option<&str>) -> Result<Vec<Variable>> {
        let rows = sqlx::query(
            "SELECT scope, name, value, updated_at, updated_by FROM variables
             WHERE org_id = $1 AND ($2 = '' OR scope = $2) ORDER BY scope, name",
        )
        .bind(org_id)
        .bind(scope.unwrap_or(""))
        .fetch_all(&self.pool)
        .await
        .map_err(q("list variables"))?;
        rows.iter()
            .map(|row| {
                Ok(Variable {
                    scope: get(row, "scope")?,
                    name: get(row, "name")?,
                    value: get(row, "value")?,
                    updated_at: get(row, "updated_at")?,
                    updated_by: get(row, "updated_by")?,
                })
            })
            .collect()
    }

    /// Creates (`create`) or replaces an environment, with its audit entry. `false` when
    /// creating one that exists, or replacing one that does not.
    pub async fn put_environment(
        &self,
        org_id: &str,
        environment: &Environment,
        create: bool,
        audit: &NewAudit,
    ) -> Result<bool> {
        let mut tx = self.begin().await.map_err(q("begin put environment"))?;
        let now = audit.entry.timestamp;
        let sql = if create {
            "INSERT INTO environments (org_id, name, definition, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (org_id, name) DO NOTHING"
        } else {
            "UPDATE environments SET definition = $3, updated_at = $4 WHERE org_id = $1 AND name = $2"
        };
        let written = sqlx::query(sql)
            .bind(org_id)
            .bind(&environment.name)
            .bind(to_json(environment))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(q("put environment"))?
            .rows_affected()
            == 1;
        if written {
            write_audit(&mut tx, audit).await?;
        }
        tx.commit().await.map_err(q("commit put environment"))?;
        Ok(written)
    }

    /// Deletes an environment, with its audit entry; `false` when there was none.
    pub async fn delete_environment(&self, org_id: &str, name: &str, audit: &NewAudit) -> Result<bool> {
        let mut tx = self.begin().await.map_err(q("begin delete environment"))?;
        let deleted = sqlx::query("DELETE FROM environments WHERE org_id = $1 AND name = $2")
            .bind(org_id)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(q("delete environment"))?
            .rows_affected()
            == 1;
        if deleted {
            write_audit(&mut tx, audit).await?;
        }
        tx.commit().await.map_err(q("commit delete environment"))?;
        Ok(deleted)
    }

    /// The org's environments by name.
    pub async fn list_environments(&self, org_id: &str) -> Result<Vec<Environment>> {
        let rows = sqlx::query("SELECT definition FROM environments WHERE org_id = $1 ORDER BY name")
            .bind(org_id)
            .fetch_all(&self.pool)
            .await
            .map_err(q("list environments"))?;
        rows.iter().map(row_to_environment).collect()
    }

    /// One environment of the org.
    pub async fn get_environment(&self, org_id: &str, name: &str) -> Result<Option<Environment>> {
        let row = sqlx::query("SELECT definition FROM environments WHERE org_id = $1 AND name = $2")
            .bind(org_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("get environment"))?;
        row.as_ref().map(row_to_environment).transpose()
    }

    /// The newest audit entries first, at most `limit`; only `action`'s when given.
    pub async fn list_audit(&self, org_id: &str, action: Option<&str>, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT timestamp, action, context_name, secret_keys, outcome, run_id, job_id, actor, role, metadata
             FROM secret_audit_log WHERE org_id = $1 AND ($2 = '' OR action = $2)
             ORDER BY timestamp DESC, entry_id DESC LIMIT $3",
        )
        .bind(org_id)
        .bind(action.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(q("list audit entries"))?;
        rows.iter().map(row_to_audit).collect()
    }
}

fn row_to_environment(row: &AnyRow) -> Result<Environment> {
    get_json(row, "definition")?.ok_or(StoreError::Corrupt {
        column: "environments.definition",
        value: "null".to_string(),
    })
}

#[cfg(test)]
mod tests;
