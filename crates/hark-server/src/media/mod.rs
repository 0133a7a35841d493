//! Media: files uploaded over HTTP, kept in an object store (a directory
//! under the data directory by default), and downloaded by those allowed
//! to see a message that carries them. Their rows are the store's
//! ([`hark_store::MediaStore`]); their bytes are here.
//!
//! - `upload`: `POST /v1/media`, streamed into the store while it is
//!   hashed and counted; nothing is held in memory but the first bytes,
//!   which say what the file is ([`sniff`]).
//! - `download`: `GET /v1/media/{id}`, with `Range`, and headers that keep
//!   a browser from running anything uploaded.
//! - `sweep`: removes uploads no message carries and bytes without a row.

mod download;
mod sniff;
mod sweep;
mod upload;

pub(crate) use download::download;
pub(crate) use sweep::sweep_forever;
pub use sweep::{sweep, Swept};
pub(crate) use upload::{upload, Upload};

use crate::config::Config;
use anyhow::Context;
use hark_proto::MediaId;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::ObjectStore;
use std::sync::Arc;

/// Where uploaded files' bytes are kept.
pub struct MediaFiles {
    pub(crate) store: Arc<dyn ObjectStore>,
}

impl MediaFiles {
    /// The directory named by the configuration, made if missing.
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        let dir = config.media_dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the media directory {}", dir.display()))?;
        let store = LocalFileSystem::new_with_prefix(&dir)
            .with_context(|| format!("opening the media directory {}", dir.display()))?;
        Ok(MediaFiles {
            store: Arc::new(store),
        })
    }

    /// A file's key: its id, which only the server chooses.
    pub(crate) fn path(id: &MediaId) -> Path {
        Path::from(format!("files/{}", id.0))
    }
}

/// A new id: 128 random bits, hex.
pub(crate) fn new_id() -> MediaId {
    MediaId(format!("{:032x}", rand::random::<u128>()))
}
