//! Hark's storage: repository traits the services use, and their SQLite
//! implementation.
//!
//! Every write goes through one implementation-defined commit path that
//! reports, after the commit is durable, which events landed in which user's
//! stream ([`Delivery`]) to a [`CommitListener`]; the server hands those to
//! the bus. The traits know nothing of SQLite so a PostgreSQL implementation
//! can sit behind them without touching the services.

mod error;
mod repo;
pub mod sqlite;

pub use error::{StoreError, StoreResult};
pub use repo::{
    AccountStore, AuthedDevice, ChatStore, CommitListener, Credentials, Delivery, HistoryQuery,
    MessageStore, NewMessage, PresenceRecord, Store, SyncPage, Windows,
};
