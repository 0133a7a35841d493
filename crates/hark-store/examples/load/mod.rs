//! What the load examples (`send_load`, `sync_load`) share: a SQLite store
//! in a temporary directory, on a runtime of two workers like this
//! machine's cores, and their size from the environment.

use hark_store::sqlite::SqliteStore;
use hark_store::{CommitListener, Delivery, Store};
use std::future::Future;
use std::sync::Arc;

pub(crate) type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Deliveries are not a load's subject.
struct Ignore;

impl CommitListener for Ignore {
    fn committed(&self, _: Vec<Delivery>) {}
}

/// The number in environment variable `name`, or `default`.
pub(crate) fn count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Runs `load` on a new store, which is removed after.
pub(crate) fn run<F, Fut>(load: F) -> Result<(), Failure>
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    rt.block_on(async {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(
            &dir.path().join("hark.db"),
            Arc::new(Ignore),
        )?);
        load(store).await
    })
}
