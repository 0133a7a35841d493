//! Uploading and downloading media files, streamed both ways: a file is
//! never held in memory whole.

use crate::api::Api;
use crate::{Error, Result};
use futures_util::StreamExt;
use hark_proto::{MediaId, MediaKind, MediaRef};
use reqwest::Method;
use std::io::SeekFrom;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Bytes read from the file per chunk of the upload body.
const CHUNK: usize = 64 * 1024;

impl Api {
    /// `POST /v1/media`: uploads the file at `path` as `kind`, named by its
    /// file name. `progress` hears (bytes sent, total) as the body goes out.
    pub async fn upload_file(
        &self,
        path: &Path,
        kind: MediaKind,
        progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<MediaRef> {
        let total = tokio::fs::metadata(path).await?.len();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let body = file_range(path, 0, total).await?;
        let body = progressing(body, 0, total, Arc::new(Mutex::new(progress)));
        let req = self
            .request(Method::POST, "/v1/media")?
            .query(&[("kind", kind.as_str()), ("name", name.as_str())])
            .header(reqwest::header::CONTENT_LENGTH, total)
            .body(body);
        crate::api::decode(req.send().await?).await
    }

    /// `POST /v1/media`: uploads `bytes` held in memory, unnamed (an
    /// encrypted chat's file: see [`crate::seal_file`]).
    pub async fn upload_bytes(&self, bytes: Vec<u8>, kind: MediaKind) -> Result<MediaRef> {
        let req = self
            .request(Method::POST, "/v1/media")?
            .query(&[("kind", kind.as_str())])
            .header(reqwest::header::CONTENT_LENGTH, bytes.len())
            .body(bytes);
        crate::api::decode(req.send().await?).await
    }

    /// Downloads file `id` into the file at `dest`: from the server's
    /// bucket when it hands out URLs (`GET /v1/media/{id}/url`), else from
    /// `GET /v1/media/{id}`. The bytes go to `<dest>.<id>.part` first and
    /// are renamed to `dest` when complete, so a cut download leaves no
    /// half file under that name; a later call for the same file and
    /// `dest` goes on from where the part file ends (HTTP `Range`).
    /// `progress` hears (bytes written, total). Returns the file's size.
    pub async fn download_file(
        &self,
        id: &MediaId,
        dest: &Path,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<u64> {
        let mut partial = dest.as_os_str().to_owned();
        partial.push(format!(".{}.part", id.0));
        let partial = std::path::PathBuf::from(partial);
        let have = match tokio::fs::metadata(&partial).await {
            Ok(meta) => meta.len(),
            Err(_) => 0,
        };
        let mut req = match self.media_url(id).await? {
            Some(url) => self.http.get(url.url),
            None => self.request(Method::GET, &format!("/v1/media/{}", id.0))?,
        };
        if have > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        if have > 0 && status == 416 {
            // The part file holds it all already.
            tokio::fs::rename(&partial, dest).await?;
            return Ok(have);
        }
        if !resp.status().is_success() {
            return Err(crate::api::error_from(resp).await);
        }
        let resumed = status == 206;
        let start = if resumed { have } else { 0 };
        let total = start + resp.content_length().unwrap_or(0);
        let mut file = if resumed {
            tokio::fs::OpenOptions::new()
                .append(true)
                .open(&partial)
                .await?
        } else {
            tokio::fs::File::create(&partial).await?
        };
        let mut stream = resp.bytes_stream();
        let mut got = start;
        progress(got, total);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            file.write_all(&chunk).await?;
            got += chunk.len() as u64;
            progress(got, total);
        }
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        if total != 0 && got != total {
            return Err(Error::Protocol(format!(
                "the download ended after {got} of {total} bytes; download it again to go on"
            )));
        }
        tokio::fs::rename(&partial, dest).await?;
        Ok(got)
    }

    /// `GET /v1/media/{id}/url`: a URL to fetch file `id` from without a
    /// token, for a while, when the server's bucket hands them out
    /// (`None` when the server serves its files itself, or the file is
    /// not there for this user: the download proper says which).
    pub async fn media_url(&self, id: &MediaId) -> Result<Option<hark_proto::MediaUrl>> {
        let resp = self
            .request(Method::GET, &format!("/v1/media/{}/url", id.0))?
            .send()
            .await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        crate::api::decode(resp).await.map(Some)
    }

    /// An image's thumbnail (`GET /v1/media/{id}/thumbnail`; its type and
    /// size are the file's [`hark_proto::MediaRef::thumbnail`]): at most 480
    /// pixels on its longer side, so it is returned whole.
    pub async fn thumbnail(&self, id: &MediaId) -> Result<Vec<u8>> {
        let resp = self
            .request(Method::GET, &format!("/v1/media/{}/thumbnail", id.0))?
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(crate::api::error_from(resp).await);
        }
        Ok(resp.bytes().await?.to_vec())
    }
}

/// `len` bytes of the file at `path` from `offset`, streamed.
pub(crate) async fn file_range(
    path: &Path,
    offset: u64,
    len: u64,
) -> Result<impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static> {
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(SeekFrom::Start(offset)).await?;
    let file = file.take(len);
    Ok(futures_util::stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    }))
}

/// The caller's progress callback, shared by the bodies of an upload's
/// requests.
pub(crate) type Progress = Arc<Mutex<dyn FnMut(u64, u64) + Send>>;

/// `body` as a request body that reports (start + bytes sent, total) as
/// its bytes go out.
pub(crate) fn progressing(
    body: impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static,
    start: u64,
    total: u64,
    progress: Progress,
) -> reqwest::Body {
    let mut sent = start;
    reqwest::Body::wrap_stream(body.map(move |chunk| {
        if let Ok(c) = &chunk {
            sent += c.len() as u64;
            if let Ok(mut p) = progress.lock() {
                p(sent, total);
            }
        }
        chunk
    }))
}
