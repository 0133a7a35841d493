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
//! - `resumable`: `/v1/media/uploads`, a file sent in pieces that survive
//!   a broken connection or a crash (`appended`: into one file in a media
//!   directory).
//! - `presign`: URLs for clients that use a bucket directly.
//! - `thumbnail`: an image's small copy, drawn when its upload is stored.
//! - `photo`: profile photos, cut square from an uploaded image.
//! - `duration`: how long audio and video play, from the container.
//! - `sweep`: removes uploads no message carries and bytes without a row.
//!
//! `sniff` and `duration` read bytes with `hark-media-sniff`'s functions
//! (pure parsing, fuzzed by `fuzz/`); here are their API errors and the store.

mod appended;
mod download;
mod duration;
pub(crate) mod photo;
mod presign;
pub(crate) mod resumable;
mod sniff;
mod sweep;
mod thumbnail;
mod upload;

pub(crate) use download::{common_headers, download, thumbnail, unchanged, url};
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
    /// Whether `store` is the media directory (else a bucket).
    pub(crate) local: bool,
    /// The node's upload bandwidth, shared by all its uploads.
    pub(crate) pace: Pace,
    /// Images being decoded at once: at most one per core.
    pub(crate) decoders: tokio::sync::Semaphore,
    /// Signs the bucket's URLs when clients use it directly.
    pub(crate) presigner: Option<presign::Presigner>,
}

/// Paces the bytes all uploads of this node write to `bytes_per_second`
/// (0: unpaced): uploads flat out on the database's disk fill the page
/// cache faster than it drains, and every commit's fsync then waits behind
/// that writeback (docs/benchmarks.md, "Uploads beside messages").
pub(crate) struct Pace {
    bytes_per_second: u64,
    /// When the bytes reserved so far will have gone out.
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Pace {
    fn new(bytes_per_second: u64) -> Self {
        Pace {
            bytes_per_second,
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Waits for `bytes`'s turn in the node's upload bandwidth.
    pub(crate) async fn wait(&self, bytes: usize) {
        if self.bytes_per_second == 0 {
            return;
        }
        let cost = std::time::Duration::from_secs_f64(bytes as f64 / self.bytes_per_second as f64);
        let at = {
            let mut next = self.next.lock().await;
            let now = tokio::time::Instant::now();
            // An idle node does not bank bandwidth for a later burst.
            let start = (*next).max(now);
            *next = start + cost;
            start
        };
        tokio::time::sleep_until(at).await;
    }
}

impl MediaFiles {
    /// The bucket or the directory named by the configuration (the
    /// directory made if missing).
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        let presigner = match &config.media.s3 {
            Some(s3) => presign::Presigner::new(s3)?,
            None => None,
        };
        let (store, local): (Arc<dyn ObjectStore>, bool) = match &config.media.s3 {
            Some(s3) => (bucket(s3)?, false),
            None => {
                let dir = config.media_dir();
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating the media directory {}", dir.display()))?;
                let store = LocalFileSystem::new_with_prefix(&dir)
                    .with_context(|| format!("opening the media directory {}", dir.display()))?;
                (Arc::new(store), true)
            }
        };
        Ok(MediaFiles {
            store,
            local,
            pace: Pace::new(config.media.upload_bytes_per_second),
            decoders: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
            presigner,
        })
    }

    /// The object store itself (for tests and tools: the files' keys are
    /// `files/<id>` and `thumbs/<id>`).
    pub fn objects(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// A file's key: its id, which only the server chooses.
    pub(crate) fn path(id: &MediaId) -> Path {
        Path::from(format!("files/{}", id.0))
    }

    /// An image's thumbnail's key.
    pub(crate) fn thumbnail_path(id: &MediaId) -> Path {
        Path::from(format!("thumbs/{}", id.0))
    }

    /// The parts uploads are written in: what an upload holds in memory
    /// (one part filling, one being written).
    pub(crate) fn part_bytes(&self) -> usize {
        if self.local {
            DIR_PART_BYTES
        } else {
            S3_PART_BYTES
        }
    }

    /// Removes the bytes of file `id` and its thumbnail, whichever exist.
    pub(crate) async fn remove(&self, id: &MediaId) -> object_store::Result<()> {
        for path in [Self::path(id), Self::thumbnail_path(id)] {
            self.delete(&path).await?;
        }
        Ok(())
    }

    /// Removes one object, if it is there.
    pub(crate) async fn delete(&self, path: &Path) -> object_store::Result<()> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The folders of the store, as [`MediaFiles::path`] and
/// [`MediaFiles::thumbnail_path`] name them.
pub(crate) const FOLDERS: [&str; 2] = ["files", "thumbs"];

/// A directory takes parts of any size; these keep an upload's memory small
/// (docs/benchmarks.md, "Media, first slice").
const DIR_PART_BYTES: usize = 1024 * 1024;
/// S3's smallest part (but the last).
const S3_PART_BYTES: usize = 5 * 1024 * 1024;

/// The configured bucket, its keys under the configured prefix.
fn bucket(s3: &crate::config::S3) -> anyhow::Result<Arc<dyn ObjectStore>> {
    use object_store::aws::AmazonS3Builder;
    use secrecy::ExposeSecret;
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(&s3.bucket)
        .with_region(&s3.region)
        .with_virtual_hosted_style_request(!s3.path_style);
    if let Some(endpoint) = &s3.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    if let Some(key) = &s3.access_key_id {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = &s3.secret_access_key {
        builder = builder.with_secret_access_key(secret.expose_secret());
    }
    let store = builder
        .build()
        .with_context(|| format!("configuring the S3 bucket {}", s3.bucket))?;
    let prefix = s3.prefix.trim_matches('/');
    Ok(if prefix.is_empty() {
        Arc::new(store)
    } else {
        Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
    })
}

/// A new id: 128 random bits, hex.
pub(crate) fn new_id() -> MediaId {
    MediaId(format!("{:032x}", rand::random::<u128>()))
}

#[cfg(test)]
mod tests {
    use super::Pace;
    use std::time::Duration;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn uploads_share_the_nodes_bandwidth() {
        let pace = std::sync::Arc::new(Pace::new(1024 * 1024));
        let start = Instant::now();
        // Four uploads each writing 1 MiB in 256 KiB chunks at once: 4 MiB
        // at 1 MiB/s take about four seconds together, not one.
        let uploads: Vec<_> = (0..4)
            .map(|_| {
                let pace = pace.clone();
                tokio::spawn(async move {
                    for _ in 0..4 {
                        pace.wait(256 * 1024).await;
                    }
                })
            })
            .collect();
        for upload in uploads {
            upload.await.unwrap();
        }
        let took = start.elapsed();
        // The first chunk goes at once, the other 15 wait their turn.
        assert!(took >= Duration::from_millis(3750), "{took:?}");
        assert!(took < Duration::from_millis(3800), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_node_does_not_bank_bandwidth() {
        let pace = Pace::new(1024 * 1024);
        pace.wait(1024 * 1024).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let start = Instant::now();
        pace.wait(1024 * 1024).await; // its turn is now
        pace.wait(1024 * 1024).await; // a second later, not at once
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_means_unpaced() {
        let pace = Pace::new(0);
        let start = Instant::now();
        pace.wait(usize::MAX).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
