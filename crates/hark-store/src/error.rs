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
    #[error("invalid: {0}")]
    Invalid(&'static str),
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The database cannot be reached (no connection from the pool): worth
    /// retrying once it is back.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the commit failed")]
    CommitFailed,
    #[error("the store is shut down")]
    Closed,
}
