//! `hark migrate`: copies an embedded (SQLite) deployment into PostgreSQL,
//! resumably, and verifies the copy.
//!
//! - The SQLite file is opened read-only and immutable, and only while no
//!   server holds it (no `-wal` or `-shm` file beside it).
//! - The target gets the store's own PostgreSQL migrations, then each table
//!   of [`tables::TABLES`] is copied in primary-key order, in batches; each
//!   batch commits together with its row in `migrate_progress` (the table,
//!   the last key copied, which source), so a run killed at any point
//!   resumes after the last batch that committed. A target holding rows of
//!   another source, or rows `hark migrate` did not write, is refused
//!   before anything in it changes.
//! - Identity and other sequences are advanced past the copied ids.
//! - Verification compares every copied row with its source row, then
//!   reads both stores through their own read paths: every user's account,
//!   devices, privacy, chat list (with settings) and whole event stream,
//!   and every chat's members and history.

mod plan;
mod source;
mod tables;
mod target;
mod values;
mod verify;

use crate::postgres::PostgresStore;
use crate::{CommitListener, Delivery, Lifecycle, StoreError, StoreResult};
use plan::Plan;
use source::Source;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use target::{ProgressRow, Target};

/// How a run goes.
#[derive(Debug, Clone)]
pub struct Options {
    /// Rows per batch (one transaction each).
    pub batch_rows: usize,
    /// Stop (as if killed) once this many rows were copied in this run:
    /// for testing resumption.
    pub stop_after_rows: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_rows: 2_000,
            stop_after_rows: None,
        }
    }
}

/// One table in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: String,
    pub sqlite_rows: i64,
    pub postgres_rows: i64,
    /// Rows this run copied (earlier runs copied the rest).
    pub copied_now: u64,
}

/// A difference between source and target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The table, or the read that differed (`sync`, `history`…).
    pub what: String,
    /// Which row or user or chat.
    pub key: String,
    pub detail: String,
    pub chat: Option<i64>,
    pub user: Option<i64>,
}

/// What a run did and found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Which SQLite deployment was copied.
    pub source_id: String,
    pub tables: Vec<TableCount>,
    /// Set when the run stopped early as asked (`stop_after_rows`): the
    /// copy is incomplete and was not verified.
    pub stopped_after: Option<u64>,
    pub chats: u64,
    pub chats_with_mismatches: u64,
    pub users: u64,
    pub users_with_mismatches: u64,
    /// Every mismatch found (empty: the copy is faithful).
    pub mismatches: Vec<Mismatch>,
}

impl Report {
    /// Whether the copy is complete and verified with no mismatch.
    pub fn is_clean(&self) -> bool {
        self.stopped_after.is_none() && self.mismatches.is_empty()
    }
}

/// How many mismatches the report prints (all are counted).
const SHOWN_MISMATCHES: usize = 50;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "source {}", self.source_id)?;
        writeln!(
            f,
            "{:<18} {:>12} {:>12} {:>12}",
            "table", "sqlite", "postgres", "copied now"
        )?;
        for t in &self.tables {
            writeln!(
                f,
                "{:<18} {:>12} {:>12} {:>12}",
                t.table, t.sqlite_rows, t.postgres_rows, t.copied_now
            )?;
        }
        if let Some(rows) = self.stopped_after {
            return writeln!(
                f,
                "stopped after {rows} rows as asked; not verified. Run again to resume."
            );
        }
        writeln!(
            f,
            "chats verified: {} ({} with mismatches)",
            self.chats, self.chats_with_mismatches
        )?;
        writeln!(
            f,
            "users verified: {} ({} with mismatches)",
            self.users, self.users_with_mismatches
        )?;
        writeln!(f, "mismatches: {}", self.mismatches.len())?;
        for m in self.mismatches.iter().take(SHOWN_MISMATCHES) {
            writeln!(f, "  {} [{}]: {}", m.what, m.key, m.detail)?;
        }
        if self.mismatches.len() > SHOWN_MISMATCHES {
            writeln!(
                f,
                "  … and {} more",
                self.mismatches.len() - SHOWN_MISMATCHES
            )?;
        }
        Ok(())
    }
}

/// What a run is doing, for progress output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// A batch of `table` committed: `copied` of its `total` rows are in.
    Batch {
        table: &'a str,
        copied: i64,
        total: i64,
    },
    /// Every row of `table` is in.
    TableDone { table: &'a str, rows: i64 },
    /// The copy is complete; verification begins.
    Verifying,
}

impl fmt::Display for Progress<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Batch {
                table,
                copied,
                total,
            } => write!(f, "{table}: {copied} of {total} rows"),
            Progress::TableDone { table, rows } => write!(f, "{table}: done, {rows} rows"),
            Progress::Verifying => write!(f, "verifying every row, stream and chat"),
        }
    }
}

/// Copies the rest of one table, batch by batch, each batch committed with
/// its progress `row`; marks the table done unless the run's `budget` of
/// rows (for `stop_after_rows`) ran out first. Returns the rows copied.
#[allow(clippy::too_many_arguments)]
async fn copy_table(
    source: &Source,
    target: &mut Target,
    plan: &Plan,
    mut row: ProgressRow,
    total: i64,
    batch_rows: usize,
    budget: Option<u64>,
    say: &mut (dyn FnMut(Progress<'_>) + Send),
) -> StoreResult<u64> {
    let table = plan.table.name;
    let mut after = row
        .last_key
        .as_deref()
        .map(|k| plan.key_from_json(k))
        .transpose()?;
    let mut copied = 0u64;
    loop {
        if budget.is_some_and(|b| copied >= b) {
            return Ok(copied);
        }
        let rows = source
            .rows(&plan.select, after.as_deref(), batch_rows)?
            .into_iter()
            .map(|r| plan.convert(r))
            .collect::<StoreResult<Vec<_>>>()?;
        let Some(last) = rows.last() else {
            break;
        };
        row.last_key = Some(plan.key_json(last));
        row.rows_copied += rows.len() as i64;
        target.insert_batch(plan, &rows, &row).await?;
        after = Some(plan.key_params(last));
        copied += rows.len() as u64;
        say(Progress::Batch {
            table,
            copied: row.rows_copied,
            total,
        });
    }
    row.done = true;
    target.finish_table(&row).await?;
    say(Progress::TableDone {
        table,
        rows: row.rows_copied,
    });
    Ok(copied)
}

/// The migration's store takes no part in live delivery.
struct NoListener;

impl CommitListener for NoListener {
    fn committed(&self, _: Vec<Delivery>) {}
}

/// Copies the SQLite database at `source` (a data directory or the file)
/// into the PostgreSQL database at `target_url`, resuming an interrupted
/// run, then verifies the copy. `say` is told of progress.
pub async fn run(
    source: &Path,
    target_url: &str,
    options: &Options,
    say: &mut (dyn FnMut(Progress<'_>) + Send),
) -> StoreResult<Report> {
    let mut source = Source::open(source)?;
    let mut target = Target::connect(target_url).await?;
    target.lock().await?;
    let result = copy_and_verify(&mut source, &mut target, target_url, options, say).await;
    // Released at once, not when the server notices the closed connection:
    // a run started right after this one must not find it held.
    target.unlock().await?;
    result
}

async fn copy_and_verify(
    source: &mut Source,
    target: &mut Target,
    target_url: &str,
    options: &Options,
    say: &mut (dyn FnMut(Progress<'_>) + Send),
) -> StoreResult<Report> {
    let source_id = source.identity()?;
    let source_state = source.state()?;
    let progress = target.progress().await?;
    if progress.is_empty() {
        let busy = target.tables_with_rows().await?;
        if !busy.is_empty() {
            return Err(StoreError::Migrate(format!(
                "the target database already holds data that hark migrate did not write \
                 (tables {}); migrate into an empty database",
                busy.join(", ")
            )));
        }
    }
    for row in &progress {
        if row.source_id != source_id {
            return Err(StoreError::Migrate(format!(
                "the target database holds data migrated from another source ({}, this one is \
                 {source_id}); migrate into an empty database",
                row.source_id
            )));
        }
        if row.source_state != source_state {
            return Err(StoreError::Migrate(
                "the source changed since the first run into this target began (was a server \
                 started on it?); drop the target database and migrate again"
                    .into(),
            ));
        }
    }
    // The store's own migrations give the target this build's schema.
    let store = PostgresStore::connect(target_url, Arc::new(NoListener)).await?;
    target.create_progress().await?;
    let mut plans = Vec::new();
    for table in tables::TABLES {
        plans.push(Plan::new(table, source, target).await?);
    }
    let mut report = Report {
        source_id: source_id.clone(),
        ..Report::default()
    };
    let mut copied_total = 0u64;
    for plan in &plans {
        let name = plan.table.name;
        let row = progress
            .iter()
            .find(|p| p.table_name == name)
            .cloned()
            .unwrap_or(ProgressRow {
                table_name: name.to_owned(),
                source_id: source_id.clone(),
                source_state: source_state.clone(),
                last_key: None,
                rows_copied: 0,
                done: false,
            });
        let total = source.count(plan.table)?;
        let copied_now = if row.done {
            0
        } else {
            let budget = options
                .stop_after_rows
                .map(|n| n.saturating_sub(copied_total));
            copy_table(
                source,
                target,
                plan,
                row,
                total,
                options.batch_rows,
                budget,
                say,
            )
            .await?
        };
        copied_total += copied_now;
        report.tables.push(TableCount {
            table: name.to_owned(),
            sqlite_rows: total,
            postgres_rows: target.count(name).await?,
            copied_now,
        });
        if options.stop_after_rows.is_some_and(|n| copied_total >= n) {
            report.stopped_after = Some(copied_total);
            store.close();
            return Ok(report);
        }
    }
    for plan in &plans {
        target.advance_sequences(plan).await?;
    }
    // A server started on the source during the run would make the copy
    // (and the immutable reads) stale.
    Source::check_quiet(&source.path)?;
    say(Progress::Verifying);
    verify::verify(source, target, &store, &plans, &mut report).await?;
    store.close();
    Ok(report)
}
