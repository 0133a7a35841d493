//! The SQLite side of a migration: the database opened read-only (and
//! refused while a server may be writing it), its identity, and its rows in
//! key order.

use super::tables::{Table, NOT_COPIED, TABLES};
use crate::{StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The embedded database, opened read-only.
pub(crate) struct Source {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
}

/// The WAL and shared-memory files beside a database: a server holding the
/// database open keeps both; a clean shutdown checkpoints and removes them.
fn live_files(path: &Path) -> Vec<PathBuf> {
    ["-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .filter(|p| p.exists())
        .collect()
}

impl Source {
    /// Opens `path`: a data directory (holding `hark.db`) or the database
    /// file itself. Refuses while the database's WAL or shared-memory file
    /// exists: a server is running on it, or one stopped without the
    /// shutdown that moves the WAL into the database file.
    pub(crate) fn open(path: &Path) -> StoreResult<Source> {
        let path = if path.is_dir() {
            path.join("hark.db")
        } else {
            path.to_owned()
        };
        if !path.is_file() {
            return Err(StoreError::Migrate(format!(
                "no SQLite database at {}",
                path.display()
            )));
        }
        Source::check_quiet(&path)?;
        // immutable: no locks and no -wal or -shm files of our own. Sound
        // because no WAL exists and no server may write during the run.
        let uri = format!("file:{}?immutable=1", uri_path(&path));
        let conn = Connection::open_with_flags(
            uri,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let source = Source { conn, path };
        source.check_version()?;
        source.check_tables()?;
        source.check_streams_moved()?;
        Ok(source)
    }

    /// Refuses while a server may hold the database (see [`Source::open`]).
    pub(crate) fn check_quiet(path: &Path) -> StoreResult<()> {
        let live = live_files(path);
        if live.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = live.iter().map(|p| p.display().to_string()).collect();
        Err(StoreError::Migrate(format!(
            "{} exist{}: a server is running on this database, or it stopped without a clean \
             shutdown. Stop the server (or start it and stop it once, with Ctrl-C or SIGTERM, \
             so it checkpoints), then run hark migrate again",
            names.join(" and "),
            if names.len() == 1 { "s" } else { "" }
        )))
    }

    /// The database must have this build's SQLite schema, the one the
    /// table list and the comparison are written for.
    fn check_version(&self) -> StoreResult<()> {
        let version: usize = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        let latest = crate::sqlite::schema::latest();
        if version == latest {
            return Ok(());
        }
        Err(StoreError::Migrate(if version < latest {
            format!(
                "the SQLite database has schema version {version}, this hark expects {latest}: \
                 start this version's hark serve on it once (and stop it) to upgrade it, then \
                 run hark migrate again"
            )
        } else {
            format!(
                "the SQLite database has schema version {version}, newer than this hark's \
                 {latest}: migrate with the hark that last ran on it"
            )
        }))
    }

    /// Every table of the database must be copied or knowingly left out.
    fn check_tables(&self) -> StoreResult<()> {
        let mut stmt = self.conn.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )?;
        let names: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for name in names {
            let copied = TABLES.iter().any(|t| t.name == name);
            let left = NOT_COPIED.iter().any(|(n, _)| *n == name);
            if !copied && !left {
                return Err(StoreError::Migrate(format!(
                    "the SQLite table {name} is neither copied nor listed as left behind; \
                     add it to hark_store::migrate::tables"
                )));
            }
        }
        Ok(())
    }

    /// Every stream row is in `stream_events`, the table copied: a clean
    /// shutdown moves the ones waiting in `stream_recent` (see
    /// `crate::sqlite::stream`).
    fn check_streams_moved(&self) -> StoreResult<()> {
        let waiting: i64 = self
            .conn
            .query_row("SELECT count(*) FROM stream_recent", [], |r| r.get(0))?;
        if waiting == 0 {
            return Ok(());
        }
        Err(StoreError::Migrate(format!(
            "{waiting} stream rows of the SQLite database still wait to be moved (the server \
             did not stop cleanly): start this version's hark serve on it once and stop it \
             with Ctrl-C or SIGTERM, then run hark migrate again"
        )))
    }

    /// The columns a table's rows have in SQLite.
    pub(crate) fn columns(&self, table: &Table) -> StoreResult<Vec<String>> {
        let sql = format!("SELECT * FROM {} LIMIT 0", from_clause(table));
        let stmt = self.conn.prepare(&sql).map_err(|e| {
            StoreError::Migrate(format!("reading table {} from SQLite: {e}", table.name))
        })?;
        Ok(stmt.column_names().into_iter().map(String::from).collect())
    }

    /// Who this deployment is: a hash of its first account (its password
    /// hash carries a random salt), the same however much the database
    /// grows, different for any other deployment.
    pub(crate) fn identity(&self) -> StoreResult<String> {
        use rusqlite::OptionalExtension;
        let first: Option<(i64, String, i64, String)> = self
            .conn
            .query_row(
                "SELECT id, username, created_at, password_hash FROM users ORDER BY id LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((id, username, created_at, hash)) = first else {
            return Ok("sqlite:empty".into());
        };
        let digest = Sha256::digest(format!("{id}\n{username}\n{created_at}\n{hash}"));
        Ok(format!("sqlite:{}", hex(&digest[..12])))
    }

    /// What the database holds now, in brief: each table's row count and
    /// last key. A resumed run refuses a source that changed since the
    /// first run began.
    pub(crate) fn state(&self) -> StoreResult<String> {
        let mut hasher = Sha256::new();
        for table in TABLES {
            let keys = quoted_list(table.key);
            let desc: Vec<String> = table.key.iter().map(|k| format!("\"{k}\" DESC")).collect();
            let from = from_clause(table);
            let count: i64 =
                self.conn
                    .query_row(&format!("SELECT COUNT(*) FROM {from}"), [], |r| r.get(0))?;
            let last: Vec<Value> = self
                .conn
                .query_row(
                    &format!(
                        "SELECT {keys} FROM {from} ORDER BY {} LIMIT 1",
                        desc.join(", ")
                    ),
                    [],
                    |r| (0..table.key.len()).map(|i| r.get(i)).collect(),
                )
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(Vec::new()),
                    e => Err(e),
                })?;
            hasher.update(format!("{} {count} {last:?}\n", table.name));
        }
        Ok(hex(&hasher.finalize()[..12]))
    }

    /// Row count of a table.
    pub(crate) fn count(&self, table: &Table) -> StoreResult<i64> {
        Ok(self.conn.query_row(
            &format!("SELECT COUNT(*) FROM {}", from_clause(table)),
            [],
            |r| r.get(0),
        )?)
    }

    /// Up to `limit` rows of `select` (see [`select_sql`]) after `after`.
    pub(crate) fn rows(
        &self,
        select: &Select,
        after: Option<&[Value]>,
        limit: usize,
    ) -> StoreResult<Vec<Vec<Value>>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (sql, mut params) = match after {
            Some(key) => (&select.after, key.to_vec()),
            None => (&select.first, Vec::new()),
        };
        params.push(Value::Integer(limit));
        let mut stmt = self.conn.prepare_cached(sql)?;
        let width = stmt.column_count();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                (0..width).map(|i| r.get::<_, Value>(i)).collect()
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}

/// The SQL reading a table's rows in key order, from the start or after a
/// key.
pub(crate) struct Select {
    first: String,
    after: String,
}

/// Reads `exprs` of `table`'s rows in key order.
pub(crate) fn select_sql(table: &Table, exprs: &[String]) -> Select {
    let from = from_clause(table);
    let keys = quoted_list(table.key);
    let marks = vec!["?"; table.key.len()].join(", ");
    let exprs = exprs.join(", ");
    Select {
        first: format!("SELECT {exprs} FROM {from} ORDER BY {keys} LIMIT ?"),
        after: format!(
            "SELECT {exprs} FROM {from} WHERE ({keys}) > ({marks}) ORDER BY {keys} LIMIT ?"
        ),
    }
}

fn from_clause(table: &Table) -> String {
    match table.source {
        Some(sql) => format!("({sql}) AS s"),
        None => format!("\"{}\"", table.name),
    }
}

pub(crate) fn quoted_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A file path as the path of a `file:` URI.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '?' | '#' | '%' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
