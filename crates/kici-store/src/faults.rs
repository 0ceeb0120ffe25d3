//! Test-only fault injection (feature `test-faults`): the database itself refuses chosen
//! writes, through a trigger, so tests can show that every multi-row state change is one
//! transaction and that a failed one leaves nothing half done. Never compiled into the services.

use crate::{Backend, Result, Store, q};

/// The message every injected failure carries.
pub const INJECTED: &str = "injected fault";

impl Store {
    /// From now on, `UPDATE`s (or `INSERT`s, with `on_insert`) of `table` whose new row
    /// satisfies `condition` (SQL over `NEW`, e.g. `NEW.status = 'cancelled'`) fail.
    pub async fn inject_fault(&self, table: &str, on_insert: bool, condition: &str) -> Result<()> {
        let operation = if on_insert { "INSERT" } else { "UPDATE" };
        let name = format!("kici_fault_{table}_{}", operation.to_ascii_lowercase());
        let statements = match self.backend {
            Backend::Sqlite => vec![format!(
                "CREATE TRIGGER {name} BEFORE {operation} ON {table} FOR EACH ROW WHEN {condition}
                 BEGIN SELECT RAISE(ABORT, '{INJECTED}'); END"
            )],
            Backend::Postgres => vec![
                format!(
                    "CREATE OR REPLACE FUNCTION kici_fault() RETURNS trigger LANGUAGE plpgsql AS
                     $$ BEGIN RAISE EXCEPTION '{INJECTED}'; END $$"
                ),
                format!(
                    "CREATE TRIGGER {name} BEFORE {operation} ON {table} FOR EACH ROW WHEN ({condition})
                     EXECUTE FUNCTION kici_fault()"
                ),
            ],
        };
        for statement in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&self.pool)
                .await
                .map_err(q("inject fault"))?;
        }
        Ok(())
    }

    /// Removes the faults injected on `table`: the database accepts writes again.
    pub async fn clear_faults(&self, table: &str) -> Result<()> {
        for operation in ["insert", "update"] {
            let name = format!("kici_fault_{table}_{operation}");
            let statement = match self.backend {
                Backend::Sqlite => format!("DROP TRIGGER IF EXISTS {name}"),
                Backend::Postgres => format!("DROP TRIGGER IF EXISTS {name} ON {table}"),
            };
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&self.pool)
                .await
                .map_err(q("clear fault"))?;
        }
        Ok(())
    }
}
