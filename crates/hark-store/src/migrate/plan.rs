//! How one table is copied in this run: its columns matched by name
//! between the two schemas (with the table entry's exceptions), the SQLite
//! read, the PostgreSQL insert and the read-back used to verify.

use super::source::{quoted_list, select_sql, Select, Source};
use super::tables::Table;
use super::target::Target;
use super::values::{Carrier, Val};
use crate::{StoreError, StoreResult};
use rusqlite::types::Value;

/// A copied column.
#[derive(Debug, Clone)]
pub(crate) struct PlanColumn {
    /// Its PostgreSQL name.
    pub(crate) name: String,
    pub(crate) carrier: Carrier,
}

/// A table's copy, worked out against both schemas.
pub(crate) struct Plan {
    pub(crate) table: &'static Table,
    pub(crate) columns: Vec<PlanColumn>,
    /// Where the key columns are in `columns`.
    pub(crate) key_at: Vec<usize>,
    /// Where `chat_id` and `user_id` are, to name the chat or user a
    /// mismatched row belongs to.
    pub(crate) chat_at: Option<usize>,
    pub(crate) user_at: Option<usize>,
    pub(crate) select: Select,
    pub(crate) insert: String,
    pub(crate) read_back: String,
    /// (sequence, column) pairs to advance after the copy.
    pub(crate) sequences: Vec<(String, String)>,
}

fn refuse(message: String) -> StoreError {
    StoreError::Migrate(message)
}

impl Plan {
    pub(crate) async fn new(
        table: &'static Table,
        source: &Source,
        target: &Target,
    ) -> StoreResult<Plan> {
        let name = table.name;
        let source_columns = source.columns(table)?;
        let pg_columns = target.columns(name).await?;
        if pg_columns.is_empty() {
            return Err(refuse(format!("PostgreSQL has no table {name}")));
        }
        let mut columns = Vec::new();
        let mut exprs = Vec::new();
        let mut types = Vec::new();
        let mut sequences = Vec::new();
        for pg in &pg_columns {
            if let Some(sequence) = &pg.sequence {
                sequences.push((sequence.clone(), pg.name.clone()));
            }
            if pg.generated || table.derived.iter().any(|(d, _)| *d == pg.name) {
                continue;
            }
            let expr = if let Some((_, expr)) = table.from.iter().find(|(c, _)| *c == pg.name) {
                (*expr).to_owned()
            } else if source_columns.contains(&pg.name) {
                format!("\"{}\"", pg.name)
            } else if pg.has_default {
                continue;
            } else {
                return Err(refuse(format!(
                    "PostgreSQL column {name}.{} has no SQLite column to come from and no \
                     default; say where it comes from in hark_store::migrate::tables",
                    pg.name
                )));
            };
            exprs.push(expr);
            types.push(pg.pg_type.clone());
            columns.push(PlanColumn {
                name: pg.name.clone(),
                carrier: Carrier::of(&pg.pg_type),
            });
        }
        for column in &source_columns {
            let copied = columns.iter().any(|c| &c.name == column);
            if !copied && !table.left_behind.contains(&column.as_str()) {
                return Err(refuse(format!(
                    "SQLite column {name}.{column} has no place in PostgreSQL; copy it or list \
                     it as left behind in hark_store::migrate::tables"
                )));
            }
        }
        for (sequence, column) in table.sequences {
            sequences.push(((*sequence).to_owned(), (*column).to_owned()));
        }
        let position = |wanted: &str| columns.iter().position(|c| c.name == wanted);
        let key_at = table
            .key
            .iter()
            .map(|k| {
                position(k).ok_or_else(|| refuse(format!("key column {name}.{k} is not copied")))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        let quoted = quoted_list(&names);
        let mut targets = quoted.clone();
        let mut values: Vec<String> = names
            .iter()
            .zip(&types)
            .map(|(n, t)| format!("v.\"{n}\"::{t}"))
            .collect();
        for (column, expr) in table.derived {
            targets.push_str(&format!(", \"{column}\""));
            values.push(format!("({expr})"));
        }
        let arrays: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("${}::{}", i + 1, c.carrier.array_type()))
            .collect();
        let insert = format!(
            "INSERT INTO \"{name}\" ({targets}) SELECT {} FROM unnest({}) AS v({quoted})",
            values.join(", "),
            arrays.join(", ")
        );
        let key_names: Vec<&str> = table.key.to_vec();
        let key_arrays: Vec<String> = key_at
            .iter()
            .enumerate()
            .map(|(i, &at)| format!("${}::{}", i + 1, columns[at].carrier.array_type()))
            .collect();
        let read_back = format!(
            "SELECT {} FROM \"{name}\" WHERE ({}) IN (SELECT * FROM unnest({}))",
            columns
                .iter()
                .map(|c| c.carrier.read_back(&format!("\"{}\"", c.name)))
                .collect::<Vec<_>>()
                .join(", "),
            quoted_list(&key_names),
            key_arrays.join(", ")
        );
        Ok(Plan {
            table,
            chat_at: position("chat_id").or_else(|| (name == "chats").then_some(0)),
            user_at: position("user_id").or_else(|| (name == "users").then_some(0)),
            columns,
            key_at,
            select: select_sql(table, &exprs),
            insert,
            read_back,
            sequences,
        })
    }

    /// Converts a SQLite row into the PostgreSQL columns' terms.
    pub(crate) fn convert(&self, row: Vec<Value>) -> StoreResult<Vec<Val>> {
        let converted: Vec<Val> = row
            .into_iter()
            .zip(&self.columns)
            .map(|(value, column)| {
                let shown = format!("{value:?}");
                Val::from_sqlite(value, column.carrier).ok_or_else(|| {
                    refuse(format!(
                        "{}.{}: the SQLite value {shown} does not fit the PostgreSQL column",
                        self.table.name, column.name
                    ))
                })
            })
            .collect::<StoreResult<_>>()?;
        Ok(converted)
    }

    /// The key of a converted row.
    pub(crate) fn key(&self, row: &[Val]) -> Vec<Val> {
        self.key_at.iter().map(|&i| row[i].clone()).collect()
    }

    /// The key of a row as a map key and for messages: `chat_id=3, seq=7`.
    pub(crate) fn key_string(&self, row: &[Val]) -> String {
        self.table
            .key
            .iter()
            .zip(&self.key_at)
            .map(|(k, &i)| format!("{k}={}", row[i].show()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A key as JSON, for the progress row.
    pub(crate) fn key_json(&self, row: &[Val]) -> String {
        serde_json::Value::Array(self.key(row).iter().map(Val::to_json).collect()).to_string()
    }

    /// The SQLite parameters of a key kept as JSON.
    pub(crate) fn key_from_json(&self, json: &str) -> StoreResult<Vec<Value>> {
        let parsed: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| refuse(format!("migrate_progress holds a bad key {json}: {e}")))?;
        let items = parsed
            .as_array()
            .filter(|a| a.len() == self.key_at.len())
            .ok_or_else(|| refuse(format!("migrate_progress holds a bad key {json}")))?;
        items
            .iter()
            .zip(&self.key_at)
            .map(|(v, &i)| Ok(Val::from_json(v, self.columns[i].carrier)?.to_sqlite()))
            .collect()
    }

    /// The SQLite parameters of a converted row's key.
    pub(crate) fn key_params(&self, row: &[Val]) -> Vec<Value> {
        self.key(row).iter().map(Val::to_sqlite).collect()
    }
}
