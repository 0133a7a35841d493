//! The PostgreSQL side of a migration: the checks that the target may be
//! written, the `migrate_progress` table that makes a run resumable, the
//! batch inserts, sequences advanced past the copied ids, and the rows read
//! back for verification.

use super::plan::Plan;
use super::tables::TARGET_BOOKKEEPING;
use super::values::{Column, Val};
use crate::{StoreError, StoreResult};
use std::collections::HashMap;
use tokio_postgres::Client;

/// One arbitrary key for the advisory lock held by a run, so two runs
/// against one target cannot interleave their batches.
const RUN_LOCK: i64 = 0x0068_6172_6b63_7079; // "harkcpy"

/// What a run committed of one table.
#[derive(Debug, Clone)]
pub(crate) struct ProgressRow {
    pub(crate) table_name: String,
    pub(crate) source_id: String,
    pub(crate) source_state: String,
    /// JSON array of the last key copied; `None` before the first batch.
    pub(crate) last_key: Option<String>,
    pub(crate) rows_copied: i64,
    pub(crate) done: bool,
}

/// A PostgreSQL column as the catalog describes it.
#[derive(Debug, Clone)]
pub(crate) struct PgColumn {
    pub(crate) name: String,
    /// As `format_type` spells it (`bigint`, `boolean`, `text`…).
    pub(crate) pg_type: String,
    pub(crate) has_default: bool,
    pub(crate) generated: bool,
    /// The sequence behind an identity or serial column.
    pub(crate) sequence: Option<String>,
}

/// A connection to the target database.
pub(crate) struct Target {
    client: Client,
}

impl Target {
    pub(crate) async fn connect(url: &str) -> StoreResult<Target> {
        // TLS as the URL's `sslmode` and `sslrootcert` say, as a node's
        // pool connects: the copy carries every account and message.
        let (config, tls) = crate::postgres::tls::connection(url)?;
        let (client, connection) = config.connect(tls).await.map_err(|e| {
            // The server's own words ("database \"hark\" does not
            // exist"), not just "db error"; a TLS failure with its reason.
            let why = e.as_db_error().map_or_else(
                || crate::postgres::tls::causes(&e),
                |db| db.message().to_owned(),
            );
            StoreError::Migrate(format!("cannot connect to the target database: {why}"))
        })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "migration target connection ended");
            }
        });
        let target = Target { client };
        target.check_name().await?;
        Ok(target)
    }

    /// Refuses the server's maintenance and template databases: a URL
    /// naming the server (`…/postgres`) rather than the cluster's database
    /// would otherwise fill the database every tool connects to first.
    async fn check_name(&self) -> StoreResult<()> {
        let name: String = self
            .client
            .query_one("SELECT current_database()::text", &[])
            .await?
            .try_get(0)?;
        if ["postgres", "template0", "template1"].contains(&name.as_str()) {
            return Err(StoreError::Migrate(format!(
                "the target is the server's {name} database; create a database for Hark \
                 (createdb hark) and name it in the URL"
            )));
        }
        Ok(())
    }

    /// Takes the run's lock for this session, or refuses: another
    /// `hark migrate` is writing this target.
    pub(crate) async fn lock(&self) -> StoreResult<()> {
        let row = self
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&RUN_LOCK])
            .await?;
        if row.try_get::<_, bool>(0)? {
            Ok(())
        } else {
            Err(StoreError::Migrate(
                "another hark migrate is running against this database".into(),
            ))
        }
    }

    pub(crate) async fn unlock(&self) -> StoreResult<()> {
        self.client
            .execute("SELECT pg_advisory_unlock($1)", &[&RUN_LOCK])
            .await?;
        Ok(())
    }

    /// The progress rows of earlier runs (none if no run started here).
    pub(crate) async fn progress(&self) -> StoreResult<Vec<ProgressRow>> {
        let exists: bool = self
            .client
            .query_one("SELECT to_regclass('migrate_progress') IS NOT NULL", &[])
            .await?
            .try_get(0)?;
        if !exists {
            return Ok(Vec::new());
        }
        let rows = self
            .client
            .query(
                "SELECT table_name, source_id, source_state, last_key, rows_copied, done
                 FROM migrate_progress ORDER BY table_name",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ProgressRow {
                    table_name: r.try_get(0)?,
                    source_id: r.try_get(1)?,
                    source_state: r.try_get(2)?,
                    last_key: r.try_get(3)?,
                    rows_copied: r.try_get(4)?,
                    done: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Tables of the target's schema that hold rows, besides bookkeeping.
    pub(crate) async fn tables_with_rows(&self) -> StoreResult<Vec<String>> {
        let names: Vec<String> = self
            .client
            .query(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()
                 ORDER BY tablename",
                &[],
            )
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let mut busy = Vec::new();
        for name in names {
            if TARGET_BOOKKEEPING.contains(&name.as_str()) {
                continue;
            }
            let sql = format!(
                "SELECT EXISTS (SELECT 1 FROM \"{}\")",
                name.replace('"', "\"\"")
            );
            if self
                .client
                .query_one(&sql, &[])
                .await?
                .try_get::<_, bool>(0)?
            {
                busy.push(name);
            }
        }
        Ok(busy)
    }

    pub(crate) async fn create_progress(&self) -> StoreResult<()> {
        self.client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS migrate_progress (
                     table_name   TEXT PRIMARY KEY,
                     -- Which SQLite deployment the rows came from, and what it
                     -- held when the first run began.
                     source_id    TEXT NOT NULL,
                     source_state TEXT NOT NULL,
                     -- JSON array of the last key copied, in key order.
                     last_key     TEXT,
                     rows_copied  BIGINT NOT NULL DEFAULT 0,
                     done         BOOLEAN NOT NULL DEFAULT false,
                     updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
                 )",
            )
            .await?;
        Ok(())
    }

    /// The columns of `table` (empty if the table does not exist).
    pub(crate) async fn columns(&self, table: &str) -> StoreResult<Vec<PgColumn>> {
        let rows = self
            .client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod),
                        a.atthasdef OR a.attidentity <> '', a.attgenerated <> '',
                        pg_get_serial_sequence(quote_ident(c.relname), a.attname::text)
                 FROM pg_attribute a
                 JOIN pg_class c ON c.oid = a.attrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = current_schema() AND c.relname = $1
                   AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum",
                &[&table],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(PgColumn {
                    name: r.try_get(0)?,
                    pg_type: r.try_get(1)?,
                    has_default: r.try_get(2)?,
                    generated: r.try_get(3)?,
                    sequence: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Inserts one batch and records it as copied, in one transaction: a
    /// run killed at any point leaves whole batches and a progress row that
    /// names the last of them.
    pub(crate) async fn insert_batch(
        &mut self,
        plan: &Plan,
        rows: &[Vec<Val>],
        progress: &ProgressRow,
    ) -> StoreResult<()> {
        let mut columns: Vec<Column> = plan
            .columns
            .iter()
            .map(|c| Column::new(c.carrier))
            .collect();
        for row in rows {
            for (column, value) in columns.iter_mut().zip(row) {
                column.push(value);
            }
        }
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            columns.iter().map(Column::param).collect();
        let tx = self.client.transaction().await?;
        tx.execute(plan.insert.as_str(), &params).await?;
        tx.execute(
            "INSERT INTO migrate_progress
                 (table_name, source_id, source_state, last_key, rows_copied, done)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (table_name) DO UPDATE SET
                 source_id = EXCLUDED.source_id, source_state = EXCLUDED.source_state,
                 last_key = EXCLUDED.last_key, rows_copied = EXCLUDED.rows_copied,
                 done = EXCLUDED.done, updated_at = now()",
            &[
                &progress.table_name,
                &progress.source_id,
                &progress.source_state,
                &progress.last_key,
                &progress.rows_copied,
                &progress.done,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a table as copied to the end.
    pub(crate) async fn finish_table(&self, progress: &ProgressRow) -> StoreResult<()> {
        self.client
            .execute(
                "INSERT INTO migrate_progress
                     (table_name, source_id, source_state, last_key, rows_copied, done)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (table_name) DO UPDATE SET
                     done = EXCLUDED.done, updated_at = now()",
                &[
                    &progress.table_name,
                    &progress.source_id,
                    &progress.source_state,
                    &progress.last_key,
                    &progress.rows_copied,
                    &progress.done,
                ],
            )
            .await?;
        Ok(())
    }

    /// Moves every sequence of the table past the highest value copied, so
    /// the next user, device or chat created on PostgreSQL gets a fresh id.
    pub(crate) async fn advance_sequences(&self, plan: &Plan) -> StoreResult<()> {
        for (sequence, column) in &plan.sequences {
            let sql = format!(
                "SELECT setval($1::text::regclass, COALESCE((SELECT MAX(\"{column}\") FROM \"{}\"), 0) + 1, false)",
                plan.table.name
            );
            self.client.execute(sql.as_str(), &[sequence]).await?;
        }
        Ok(())
    }

    pub(crate) async fn count(&self, table: &str) -> StoreResult<i64> {
        Ok(self
            .client
            .query_one(&format!("SELECT COUNT(*) FROM \"{table}\""), &[])
            .await?
            .try_get(0)?)
    }

    /// The copied columns of the rows with these keys, by key.
    pub(crate) async fn rows_by_keys(
        &self,
        plan: &Plan,
        keys: &[Vec<Val>],
    ) -> StoreResult<HashMap<String, Vec<Val>>> {
        let mut columns: Vec<Column> = plan
            .key_at
            .iter()
            .map(|&i| Column::new(plan.columns[i].carrier))
            .collect();
        for key in keys {
            for (column, value) in columns.iter_mut().zip(key) {
                column.push(value);
            }
        }
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            columns.iter().map(Column::param).collect();
        let rows = self.client.query(plan.read_back.as_str(), &params).await?;
        let mut found = HashMap::new();
        for row in &rows {
            let values = plan
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| Val::from_pg(row, i, c.carrier))
                .collect::<StoreResult<Vec<_>>>()?;
            found.insert(plan.key_string(&values), values);
        }
        Ok(found)
    }
}
