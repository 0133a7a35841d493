//! Resumable uploads (`/v1/media/uploads`): a file sent in pieces that
//! survive a broken connection or a restarted server, or put straight
//! into the server's bucket when it offers that. See docs/protocol.md,
//! "Resumable upload".

use crate::api::Api;
use crate::backoff::Backoff;
use crate::media::{file_range, progressing, Progress};
use crate::{Error, Result};
use hark_proto::{ErrorCode, MediaKind, MediaRef, NewUpload, UploadStatus};
use reqwest::Method;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncReadExt;

/// How a resumable upload goes.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// Bytes per piece: what one broken connection can cost again.
    pub piece_bytes: u64,
    /// Ask to put the file straight into the server's bucket (the server
    /// decides; the file is hashed first, so the bucket checks its bytes).
    pub direct: bool,
    /// Failed attempts in a row (network errors, the server busy or
    /// restarting) before giving up; the upload can still be resumed later
    /// with [`Api::resume_upload`].
    pub attempts: u32,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            piece_bytes: 8 * 1024 * 1024,
            direct: true,
            attempts: 6,
        }
    }
}

impl Api {
    /// Uploads the file at `path` as `kind` in pieces, resuming after
    /// errors, and completes it. `progress` hears (bytes the server holds,
    /// total). Gives up after `options.attempts` failures in a row; the
    /// error then says the upload's id, which [`Api::resume_upload`] takes.
    pub async fn upload_resumable(
        &self,
        path: &Path,
        kind: MediaKind,
        options: &UploadOptions,
        progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<MediaRef> {
        let status = self.start_upload(path, kind, options.direct).await?;
        self.resume_upload(&status.id, path, options, progress)
            .await
    }

    /// `POST /v1/media/uploads` for the file at `path`, named by its file
    /// name (and, asking for `direct`, with its SHA-256, read from it).
    pub async fn start_upload(
        &self,
        path: &Path,
        kind: MediaKind,
        direct: bool,
    ) -> Result<UploadStatus> {
        let size = tokio::fs::metadata(path).await?.len();
        let sha256 = if direct {
            Some(sha256_of(path).await?)
        } else {
            None
        };
        let new = NewUpload {
            kind,
            size,
            name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
            direct,
            sha256,
        };
        self.call(Method::POST, "/v1/media/uploads", Some(&new), true)
            .await
    }

    /// `GET /v1/media/uploads/{id}`: how far upload `id` got.
    pub async fn upload_status(&self, id: &str) -> Result<UploadStatus> {
        self.call::<(), _>(Method::GET, &format!("/v1/media/uploads/{id}"), None, true)
            .await
    }

    /// `DELETE /v1/media/uploads/{id}`: gives it up; its pieces go.
    pub async fn cancel_upload(&self, id: &str) -> Result<()> {
        self.call_empty::<()>(Method::DELETE, &format!("/v1/media/uploads/{id}"), None)
            .await
    }

    /// Sends what upload `id` still lacks from the file at `path` (the
    /// same file it was started with), then completes it.
    pub async fn resume_upload(
        &self,
        id: &str,
        path: &Path,
        options: &UploadOptions,
        progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<MediaRef> {
        let progress: Progress = Arc::new(Mutex::new(progress));
        let tell = |sent: u64, total: u64| {
            if let Ok(mut p) = progress.lock() {
                p(sent, total);
            }
        };
        let mut failures = 0u32;
        let mut backoff = Backoff::default();
        let mut status: Option<UploadStatus> = None;
        loop {
            let step = match status.take() {
                None => self.upload_status(id).await.map(Step::Status),
                Some(UploadStatus {
                    media: Some(media), ..
                }) => return Ok(media),
                Some(s) if s.received == s.size || (s.direct && s.put_url.is_none()) => {
                    self.complete(id).await.map(Step::Done)
                }
                Some(s) if s.direct => {
                    self.put_direct(&s, path, progress.clone()).await.map(|()| {
                        Step::Status(UploadStatus {
                            received: s.size,
                            put_url: None,
                            ..s
                        })
                    })
                }
                Some(s) => self
                    .send_piece(&s, path, options.piece_bytes, progress.clone())
                    .await
                    .map(Step::Status),
            };
            match step {
                Ok(Step::Done(media)) => return Ok(media),
                Ok(Step::Status(s)) => {
                    failures = 0;
                    backoff.reset();
                    tell(s.received, s.size);
                    status = Some(s);
                }
                Err(e) if retryable(&e) && failures + 1 < options.attempts => {
                    failures += 1;
                    tracing::debug!(upload = id, error = %e, "upload interrupted; resuming");
                    tokio::time::sleep(backoff.next_delay()).await;
                    // `status` is None: ask the server where it stands.
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `PATCH` one piece of upload `status` from the file at `path`.
    async fn send_piece(
        &self,
        status: &UploadStatus,
        path: &Path,
        piece_bytes: u64,
        progress: Progress,
    ) -> Result<UploadStatus> {
        let len = piece_bytes.max(1).min(status.size - status.received);
        let body = file_range(path, status.received, len).await?;
        let (start, total) = (status.received, status.size);
        let body = progressing(body, start, total, progress);
        let req = self
            .request(Method::PATCH, &format!("/v1/media/uploads/{}", status.id))?
            .header("Upload-Offset", status.received)
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(body);
        crate::api::decode(req.send().await?).await
    }

    /// `PUT`s the whole file to a direct upload's URL (no token: the URL
    /// is signed).
    async fn put_direct(
        &self,
        status: &UploadStatus,
        path: &Path,
        progress: Progress,
    ) -> Result<()> {
        let Some(url) = &status.put_url else {
            return Err(Error::Protocol("a direct upload without a put_url".into()));
        };
        let body = file_range(path, 0, status.size).await?;
        let body = progressing(body, 0, status.size, progress);
        let mut req = self.http.put(url.as_str()).body(body);
        for (name, value) in &status.put_headers {
            req = req.header(name.as_str(), value.as_str());
        }
        let resp = req.send().await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(crate::api::error_from(resp).await)
    }

    async fn complete(&self, id: &str) -> Result<MediaRef> {
        self.call::<(), _>(
            Method::POST,
            &format!("/v1/media/uploads/{id}/complete"),
            None,
            true,
        )
        .await
    }
}

enum Step {
    Status(UploadStatus),
    Done(MediaRef),
}

/// Whether trying again (after asking where the upload stands) may help:
/// the connection broke, the server is restarting or busy, or a piece
/// raced another.
fn retryable(e: &Error) -> bool {
    match e {
        Error::Http(_) => true,
        Error::Server { status, code, .. } => {
            *status >= 500 || matches!(code, ErrorCode::OffsetMismatch | ErrorCode::RateLimited)
        }
        // A bucket's own refusal (an expired URL): sign it anew.
        Error::Status { status, .. } => *status == 403 || *status >= 500,
        _ => false,
    }
}

/// The SHA-256 of the file at `path`, lowercase hex.
async fn sha256_of(path: &Path) -> Result<String> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(format!("{:x}", hasher.finalize()))
}
