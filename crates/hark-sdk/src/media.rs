//! Uploading and downloading media files, streamed both ways: a file is
//! never held in memory whole.

use crate::api::Api;
use crate::{Error, Result};
use futures_util::StreamExt;
use hark_proto::{MediaId, MediaKind, MediaRef};
use reqwest::Method;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes read from the file per chunk of the upload body.
const CHUNK: usize = 64 * 1024;

impl Api {
    /// `POST /v1/media`: uploads the file at `path` as `kind`, named by its
    /// file name. `progress` hears (bytes sent, total) as the body goes out.
    pub async fn upload_file(
        &self,
        path: &Path,
        kind: MediaKind,
        mut progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<MediaRef> {
        let file = tokio::fs::File::open(path).await?;
        let total = file.metadata().await?.len();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut sent = 0u64;
        let body = futures_util::stream::unfold(file, move |mut file| async move {
            let mut buf = vec![0u8; CHUNK];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok::<_, std::io::Error>(buf), file))
                }
                Err(e) => Some((Err(e), file)),
            }
        })
        .map(move |chunk| {
            if let Ok(c) = &chunk {
                sent += c.len() as u64;
                progress(sent, total);
            }
            chunk
        });
        let req = self
            .request(Method::POST, "/v1/media")?
            .query(&[("kind", kind.as_str()), ("name", name.as_str())])
            .header(reqwest::header::CONTENT_LENGTH, total)
            .body(reqwest::Body::wrap_stream(body));
        crate::api::decode(req.send().await?).await
    }

    /// `GET /v1/media/{id}` into the file at `dest` (written beside it
    /// first, then renamed, so a cut download leaves no half file under
    /// that name). `progress` hears (bytes received, total). Returns the
    /// bytes written.
    pub async fn download_file(
        &self,
        id: &MediaId,
        dest: &Path,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<u64> {
        let resp = self
            .request(Method::GET, &format!("/v1/media/{}", id.0))?
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(crate::api::error_from(resp).await);
        }
        let total = resp.content_length().unwrap_or(0);
        let partial = dest.with_extension(match dest.extension() {
            Some(ext) => format!("{}.part", ext.to_string_lossy()),
            None => "part".to_owned(),
        });
        let mut file = tokio::fs::File::create(&partial).await?;
        let mut stream = resp.bytes_stream();
        let mut got = 0u64;
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
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(Error::Protocol(format!(
                "the download ended after {got} of {total} bytes"
            )));
        }
        tokio::fs::rename(&partial, dest).await?;
        Ok(got)
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
