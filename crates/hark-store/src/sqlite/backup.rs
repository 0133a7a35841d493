//! `hark backup` and `hark restore` for the embedded store: a consistent
//! copy of the database made while the server runs, with SQLite's online
//! backup API, and its way back into an empty data directory.
//!
//! The copy is taken in one step, inside one read transaction: in WAL mode
//! the server's writer goes on committing beside it, and the copy is the
//! database as it stood when the step began. (Copying in several steps
//! would let the writer's commits restart it, possibly forever under load.)

use super::schema;
use rusqlite::backup::Backup;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a backup or restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Refused before anything was written (the reason says why).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

type Result<T> = std::result::Result<T, BackupError>;

/// What a backup or restore copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub bytes: u64,
    pub schema_version: usize,
    pub users: u64,
    pub chats: u64,
    pub messages: u64,
}

/// Copies the database at `db` (which a server may be using) to the new
/// file `to`, checks the copy, and only then gives it its name.
pub fn backup(db: &Path, to: &Path) -> Result<Copied> {
    if !db.exists() {
        return Err(BackupError::Refused(format!(
            "no database at {} (is the data directory right?)",
            db.display()
        )));
    }
    refuse_existing(to)?;
    let source = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    source.busy_timeout(Duration::from_secs(30))?;
    copy_checked(&source, to)
}

/// Copies the backup `from` into `db`, which must not exist yet: the data
/// directory of a server that is not running. The backup is checked first;
/// one made by a newer Hark is refused.
pub fn restore(from: &Path, db: &Path) -> Result<Copied> {
    refuse_existing(db)?;
    let source = Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    check(&source, from)?;
    copy_checked(&source, db)
}

fn refuse_existing(path: &Path) -> Result<()> {
    if path.exists() {
        return Err(BackupError::Refused(format!(
            "{} already exists: nothing was overwritten",
            path.display()
        )));
    }
    Ok(())
}

/// Copies `source` to a temporary file beside `to`, checks it, makes it
/// durable and renames it to `to`.
fn copy_checked(source: &Connection, to: &Path) -> Result<Copied> {
    let partial = partial_path(to);
    let _ = std::fs::remove_file(&partial);
    let result = (|| {
        let mut target = Connection::open(&partial)?;
        // Every page in one step (more pages than any database has), so
        // one read transaction: a busy or locked source (a checkpoint) is
        // waited out 50 ms at a time.
        Backup::new(source, &mut target)?.run_to_completion(
            i32::MAX,
            Duration::from_millis(50),
            None,
        )?;
        // The server answers a commit once the sync thread has fsynced the
        // WAL (`syncer`); the copy may hold one it has not answered yet.
        // Synced here, it cannot be lost after the copy has it.
        if let Some(source_path) = source.path() {
            super::syncer::wal_sync(Path::new(source_path))()?;
        }
        // A single file, whatever the source's journal mode.
        target.pragma_update(None, "journal_mode", "DELETE")?;
        let copied = check(&target, &partial)?;
        drop(target);
        std::fs::File::open(&partial)?.sync_all()?;
        Ok::<_, BackupError>(copied)
    })();
    match result {
        Ok(mut copied) => {
            std::fs::rename(&partial, to)?;
            if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir)?.sync_all()?;
            }
            copied.bytes = std::fs::metadata(to)?.len();
            Ok(copied)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn partial_path(to: &Path) -> PathBuf {
    let mut name = to.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Checks that `conn` holds an intact Hark database this build can open,
/// and counts what is in it.
fn check(conn: &Connection, path: &Path) -> Result<Copied> {
    let not_hark = |why: &str| {
        BackupError::Refused(format!("{} is not a Hark database: {why}", path.display()))
    };
    let version: usize = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|_| not_hark("not an SQLite database"))?;
    if version == 0 {
        return Err(not_hark("it has no Hark schema"));
    }
    if version > schema::latest() {
        return Err(BackupError::Refused(format!(
            "{} was made by a newer Hark (schema {version}; this one knows up to {})",
            path.display(),
            schema::latest()
        )));
    }
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if integrity != "ok" {
        return Err(not_hark(&format!("integrity check: {integrity}")));
    }
    let count = |sql: &str| -> Result<u64> {
        let n: i64 = conn
            .query_row(sql, [], |r| r.get(0))
            .map_err(|_| not_hark("tables are missing"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    Ok(Copied {
        bytes: 0,
        schema_version: version,
        users: count("SELECT COUNT(*) FROM users")?,
        chats: count("SELECT COUNT(*) FROM chats")?,
        messages: count("SELECT COALESCE(SUM(last_seq), 0) FROM chats")?,
    })
}
