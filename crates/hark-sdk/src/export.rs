//! Exporting everything the server keeps about the caller (docs/protocol.md
//! "Exporting your data"): asked for, prepared by the server's job queue,
//! then downloaded as a zip archive, streamed (never held in memory whole).

use crate::api::Api;
use crate::{Error, Result};
use futures_util::StreamExt;
use hark_proto::DataExport;
use reqwest::Method;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncWrite, AsyncWriteExt};

impl Api {
    /// `POST /v1/me/export`: asks for an export of the caller's data. The
    /// answer is `pending`; while one is, asking again answers that one.
    /// Poll [`Api::export_status`] until it is `ready` (or `failed`).
    pub async fn request_export(&self) -> Result<DataExport> {
        self.call(Method::POST, "/v1/me/export", None::<&()>, true)
            .await
    }

    /// `GET /v1/me/export`: the caller's latest export, `None` when they
    /// never asked for one (or it was removed).
    pub async fn export_status(&self) -> Result<Option<DataExport>> {
        let resp = self.request(Method::GET, "/v1/me/export")?.send().await?;
        match resp.status() {
            reqwest::StatusCode::NO_CONTENT => Ok(None),
            s if s.is_success() => Ok(Some(resp.json().await?)),
            _ => Err(crate::api::error_from(resp).await),
        }
    }

    /// `GET /v1/me/export/{id}/archive` into `out`, streamed: returns the
    /// archive's size. `progress` hears (bytes written, total).
    pub async fn download_export_to<W: AsyncWrite + Unpin>(
        &self,
        id: &str,
        out: &mut W,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<u64> {
        let path = format!("/v1/me/export/{}/archive", crate::url::segment(id));
        let resp = self.request(Method::GET, &path)?.send().await?;
        if !resp.status().is_success() {
            return Err(crate::api::error_from(resp).await);
        }
        let total = resp.content_length().unwrap_or(0);
        let mut stream = resp.bytes_stream();
        let mut got = 0u64;
        progress(got, total);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            out.write_all(&chunk).await?;
            got += chunk.len() as u64;
            progress(got, total);
        }
        out.flush().await?;
        if total != 0 && got != total {
            return Err(Error::Protocol(format!(
                "the download ended after {got} of {total} bytes; download it again"
            )));
        }
        Ok(got)
    }

    /// Downloads export `id`'s archive into the file at `dest`: into
    /// `<dest>.part` first, renamed to `dest` once complete and on disk,
    /// so a cut download leaves no half archive under that name (the part
    /// file is removed). Returns the archive's size.
    pub async fn download_export(
        &self,
        id: &str,
        dest: &Path,
        progress: impl FnMut(u64, u64),
    ) -> Result<u64> {
        let mut partial = dest.as_os_str().to_owned();
        partial.push(".part");
        let partial = PathBuf::from(partial);
        let mut file = tokio::fs::File::create(&partial).await?;
        let written = match self.download_export_to(id, &mut file, progress).await {
            Ok(size) => file.sync_all().await.map(|()| size).map_err(Error::from),
            Err(e) => Err(e),
        };
        drop(file);
        match written {
            Ok(size) => {
                tokio::fs::rename(&partial, dest).await?;
                Ok(size)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                Err(e)
            }
        }
    }
}
