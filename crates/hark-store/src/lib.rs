//! Hark's storage: repository traits the services use, the rules every
//! backend applies, and their SQLite and PostgreSQL implementations.
//!
//! Every write goes through one implementation-defined commit path that
//! reports, after the commit is durable, which events landed in which user's
//! stream ([`Delivery`]) to a [`CommitListener`]; the server hands those to
//! the bus. The traits know nothing of either database; who may do what is
//! decided in [`rules`], which both backends call inside their own
//! transactions.

pub mod admin;
mod admission;
mod approval;
pub mod audit;
pub mod bots;
mod columns;
pub mod contacts;
pub mod deletion;
pub mod e2e;
mod error;
mod expiry;
pub mod exports;
pub mod jobs;
mod lines;
pub mod migrate;
mod pages;
pub mod postgres;
pub mod profile;
pub mod push;
mod repo;
pub mod rules;
pub mod sqlite;
pub mod sso;
pub mod two_factor;
pub mod webhooks;

pub use admission::WriteQueue;
pub use error::{StoreError, StoreResult};
pub use repo::{
    AccountStore, AdminStore, AuditStore, AuthedDevice, BotStore, ChatStore, CommitListener,
    ContactStore, Credentials, Delivery, ExportStore, HistoryQuery, JobStore, KeyStore, Lifecycle,
    MediaRecord, MediaStore, MessageStore, NewMessage, PresenceRecord, PresenceStore, ProfileStore,
    PushStore, Refused, SsoStore, Store, SyncPage, TwoFactorStore, UploadRecord,
};
pub use rules::Windows;

/// Now, in ms since the epoch: the time every write of a transaction records.
pub(crate) fn clock_ms() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
