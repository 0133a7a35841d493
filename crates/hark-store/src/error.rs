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
                e.is_closed() || e.as_db_error().is_none_or(is_shutting_down)
            }
            _ => false,
        }
    }
}

/// The server refused because it is stopping or starting (SQLSTATE class 57
/// "operator intervention": admin shutdown, crash shutdown, cannot connect now).
fn is_shutting_down(e: &tokio_postgres::error::DbError) -> bool {
    e.code().code().starts_with("57")
}
