//! The storage conformance suite: every backend must pass these through the
//! `Store` traits alone. Each test is written once, as an `async fn` taking
//! a `Backend`, and `on_every_backend!` runs it against SQLite and
//! PostgreSQL (`<test>::sqlite`, `<test>::postgres`).
//!
//! PostgreSQL tests create a database of their own on the server at
//! `HARK_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/postgres`)
//! and drop it afterwards; an unreachable server fails them, never skips.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod audit;
mod conformance;
mod encrypted;
mod group_commit;
mod jobs;
mod lines;
mod migrate;
mod same_answers;
mod scale_out;
mod search;
mod tls;

use hark_store::postgres::PostgresStore;
use hark_store::{CommitListener, Delivery, Store};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Runs each named `async fn(Backend)` once per backend, as the tests
/// `<name>::sqlite` and `<name>::postgres`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::sqlite()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::postgres().await).await;
            }
        }
    )*};
}

/// Records every delivery, in the order the store reported commits.
#[derive(Default)]
pub struct Recorder {
    pub deliveries: Mutex<Vec<Delivery>>,
}

impl CommitListener for Recorder {
    fn committed(&self, deliveries: Vec<Delivery>) {
        self.deliveries.lock().unwrap().extend(deliveries);
    }
}

/// A fresh, empty store of one backend, with the recorder it reports to.
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub recorder: Arc<Recorder>,
    /// The database's URL, for PostgreSQL (another node can open it).
    pub url: Option<String>,
    _dir: Option<tempfile::TempDir>,
    _database: Option<TestDatabase>,
}

impl Backend {
    /// The SQLite database file, for a SQLite backend.
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        self._dir.as_ref().map(|d| d.path().join("hark.db"))
    }
}

pub fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let store =
        hark_store::sqlite::SqliteStore::open(&dir.path().join("hark.db"), recorder.clone())
            .unwrap();
    Backend {
        store: Arc::new(store),
        recorder,
        url: None,
        _dir: Some(dir),
        _database: None,
    }
}

fn server_url() -> String {
    std::env::var("HARK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of this test's own, dropped when the test ends.
struct TestDatabase {
    name: String,
}

impl TestDatabase {
    async fn create() -> (Self, String) {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "hark_test_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let url = match hark_store::postgres::create_database(&server_url(), &name).await {
            Ok(url) => url,
            Err(e) => panic!(
                "PostgreSQL is not reachable at {} ({e}). These tests need it: start it with \
                 `pg_ctlcluster --skip-systemctl-redirect 15 main start`, or point \
                 HARK_TEST_POSTGRES at another server.",
                server_url()
            ),
        };
        (TestDatabase { name }, url)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside any runtime's async context: a thread of its
        // own with a runtime of its own.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let _ = hark_store::postgres::drop_database(&server_url(), &name).await;
            });
        })
        .join();
    }
}

/// A fresh PostgreSQL store on a database of its own.
pub async fn postgres() -> Backend {
    let (database, url) = TestDatabase::create().await;
    let recorder = Arc::new(Recorder::default());
    let store = PostgresStore::connect(&url, recorder.clone())
        .await
        .unwrap();
    Backend {
        store: Arc::new(store),
        recorder,
        url: Some(url),
        _dir: None,
        _database: Some(database),
    }
}

/// Another node's store on the database of `backend`, with its own recorder.
pub async fn another_node(backend: &Backend) -> (Arc<dyn Store>, Arc<Recorder>) {
    let url = backend.url.as_deref().expect("a PostgreSQL backend");
    let recorder = Arc::new(Recorder::default());
    let store = PostgresStore::connect(url, recorder.clone()).await.unwrap();
    (Arc::new(store), recorder)
}
