//! The storage conformance suite: every backend must pass these through the
//! `Store` traits alone. Today that is SQLite; PostgreSQL joins by adding a
//! `Backend` that opens it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod conformance;

use hark_store::{CommitListener, Delivery, Store};
use std::sync::{Arc, Mutex};

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
    _dir: tempfile::TempDir,
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
        _dir: dir,
    }
}
