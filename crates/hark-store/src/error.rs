//! The store's error type: domain refusals the API maps to error codes, and
//! internal failures it logs.

use thiserror::Error;

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("username is taken")]
    UsernameTaken,
    #[error("the group is full ({0} members)")]
    GroupFull(usize),
    #[error("a device may have at most {0} push subscriptions")]
    TooManySubscriptions(u32),
    #[error("invalid: {0}")]
    Invalid(&'static str),
    /// One of the two users blocked the other (`rules::not_blocked`).
    #[error("blocked: {0}")]
    Blocked(&'static str),
    /// A plaintext message for an end-to-end encrypted chat.
    #[error("this chat is end-to-end encrypted: send the message's ciphertext")]
    EncryptionRequired,
    /// A device's keys conflict with what it published before.
    #[error("{0}")]
    KeyConflict(String),
    /// A device's inbox of to-device messages holds as many as it may.
    #[error("a device's inbox holds at most {0} messages")]
    InboxFull(u32),
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The database cannot be reached (no connection from the pool): worth
    /// retrying once it is back.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database URL or its TLS settings are wrong: retrying will not help.
    #[error("database configuration: {0}")]
    Config(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// `hark migrate` refuses its source or target, or cannot copy a row.
    #[error("{0}")]
    Migrate(String),
    #[error("the commit failed")]
    CommitFailed,
    /// The database is behind: its write queue stayed full for the whole
    /// wait (see [`crate::WriteQueue`]). Nothing was queued.
    #[error("the database is busy: its write queue is full")]
    Busy,
    /// The commit failed because the database's disk is full.
    #[error("the commit failed: the disk is full")]
    DiskFull,
    /// A PostgreSQL write waited too long for another write of the same
    /// node to commit (see the sequencer); it rolls back and runs again.
    #[error("a write waited too long for another commit")]
    Contended,
    #[error("the store is shut down")]
    Closed,
}

impl StoreError {
    /// Whether the failure is the database being out of reach (down,
    /// restarting, the connection cut) rather than a refusal or a bug:
    /// nothing was committed, and the same request can be retried. A send
    /// retried with its client id cannot be stored twice.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            // No answer from the server at all: the connection failed or closed.
            StoreError::Postgres(e) => {
                e.is_closed()
                    || e.as_db_error()
                        .is_none_or(|d| is_shutting_down(d) || is_out_of_resources(d))
            }
            StoreError::Database(e) => is_disk_trouble(e),
            _ => false,
        }
    }

    /// Whether the same request may succeed if sent again: the database is
    /// out of reach, or the batch this write was part of did not commit
    /// (its writes are not stored; another job's failure, a full disk).
    pub fn is_retryable(&self) -> bool {
        self.is_unavailable() || self.is_disk_full() || matches!(self, StoreError::CommitFailed)
    }

    /// Whether the database's disk is full (SQLite's `SQLITE_FULL`,
    /// PostgreSQL's `disk_full`): the write is refused until space returns.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::DiskFull => true,
            StoreError::Database(e) => sqlite_disk_full(e),
            StoreError::Postgres(e) => e
                .as_db_error()
                .is_some_and(|d| d.code() == &tokio_postgres::error::SqlState::DISK_FULL),
            _ => false,
        }
    }
}

/// SQLite's `SQLITE_FULL`: the disk has no room for the write.
pub(crate) fn sqlite_disk_full(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

/// SQLite could not write its files: the disk is full, or an I/O error.
/// The transaction rolled back; once the disk has room again, so does the
/// writer.
fn is_disk_trouble(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure)
    )
}

/// SQLSTATE class 53 "insufficient resources": disk full, out of memory,
/// too many connections. Nothing was written; a retry may succeed.
fn is_out_of_resources(e: &tokio_postgres::error::DbError) -> bool {
    e.code().code().starts_with("53")
}

/// The server refused because it is stopping or starting (SQLSTATE class 57
/// "operator intervention": admin shutdown, crash shutdown, cannot connect now).
fn is_shutting_down(e: &tokio_postgres::error::DbError) -> bool {
    e.code().code().starts_with("57")
}
