//! Resumable uploads (`/v1/media/uploads`): a file sent in pieces, for
//! large files on connections that break.
//!
//! - Starting one checks what `POST /v1/media` checks (size, rate, quota;
//!   the quota counts the whole declared size from then on) and records it.
//! - Each piece (`PATCH` with `Upload-Offset`) is streamed into its own
//!   object, `incoming/<upload>/<part>`, then recorded in the upload's row
//!   only if the upload still stood at that offset. A piece cut off
//!   mid-way keeps what arrived: the upload goes on from there. A piece
//!   the server died writing was never recorded, and its unfinished object
//!   is removed with the upload.
//! - Completing it streams the pieces, in order, through the path every
//!   upload takes (`upload::store`: sniffed, hashed, paced, thumbnail,
//!   duration, row), then removes them. Completing it again answers the
//!   same file. Bytes that are not what the upload said they are (a
//!   refusal, not a failure) are removed with the upload.
//!
//! The row is the truth: a piece is there once recorded, never before. So
//! any node may take the next piece or complete it, and a crash at any
//! point leaves an upload that either has a piece or can be sent it again.
//! The sweep removes expired uploads with their pieces, and pieces without
//! an upload (see `sweep`).

use super::upload::{admit, store};
use super::new_id;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Body;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use hark_proto::{ErrorCode, MediaRef, NewUpload, UploadStatus};
use hark_store::{AuthedDevice, UploadRecord};
use object_store::path::Path;
use object_store::{ObjectStore, WriteMultipart};
use std::sync::Arc;

/// Where the pieces of upload `id` are kept.
pub(crate) fn folder(id: &str) -> Path {
    Path::from(format!("incoming/{id}"))
}

/// Starts an upload of `who`'s.
pub(crate) async fn start(
    state: &AppState,
    who: &AuthedDevice,
    new: NewUpload,
) -> ApiResult<UploadStatus> {
    admit(state, who, new.kind, new.size).await?;
    let now = crate::now_ms();
    let expiry = i64::try_from(state.config.media.upload_expiry_ms).unwrap_or(i64::MAX);
    let record = UploadRecord {
        id: new_id().0,
        uploader: who.user.id,
        kind: new.kind,
        name: new.name,
        size: new.size,
        received: 0,
        parts: Vec::new(),
        media_id: None,
        direct: false,
        created_at: now,
        expires_at: now.saturating_add(expiry),
    };
    state.store.create_upload(&record).await?;
    Ok(status_of(&record, None))
}

/// Upload `id` as it stands.
pub(crate) async fn status(state: &AppState, who: &AuthedDevice, id: &str) -> ApiResult<UploadStatus> {
    let record = mine(state, who, id).await?;
    let media = match &record.media_id {
        Some(media) => state.store.media(media).await?.map(|m| m.reference),
        None => None,
    };
    Ok(status_of(&record, media))
}

/// Stores `body`, `declared` bytes starting at byte `offset` of upload `id`.
pub(crate) async fn append(
    state: &AppState,
    who: &AuthedDevice,
    id: &str,
    offset: u64,
    declared: u64,
    body: Body,
) -> ApiResult<UploadStatus> {
    let record = mine(state, who, id).await?;
    if record.media_id.is_some() {
        return Err(ApiError::new(
            ErrorCode::OffsetMismatch,
            "the upload is complete already",
        ));
    }
    if offset != record.received {
        return Err(mismatch(record.received));
    }
    let room = record.size - record.received;
    if declared > room {
        return Err(ApiError::invalid(format!(
            "the piece has {declared} bytes but only {room} are left of the file"
        )));
    }
    if declared == 0 {
        return Ok(status_of(&record, None));
    }
    let part = format!("{offset:016x}-{:08x}", rand::random::<u32>());
    let path = folder(id).child(part.as_str());
    let writing = state
        .media
        .store
        .put_multipart(&path)
        .await
        .map_err(ApiError::internal)?;
    let mut writer = WriteMultipart::new_with_chunk_size(writing, state.media.part_bytes());
    let (got, cut_off) = receive_piece(state, &mut writer, body, declared).await;
    let too_many = got > declared;
    if got == 0 || too_many {
        if let Err(e) = writer.abort().await {
            tracing::warn!(error = %e, "removing an unfinished piece");
        }
        return Err(if too_many {
            ApiError::invalid(format!(
                "the body has more than the {declared} bytes of its Content-Length"
            ))
        } else {
            cut_off.unwrap_or_else(|| ApiError::invalid("the piece is empty"))
        });
    }
    // What arrived is kept even when the rest was cut off: the client goes
    // on from there.
    writer.finish().await.map_err(ApiError::internal)?;
    let to = offset + got;
    if !state.store.advance_upload(id, offset, to, &part).await? {
        // Another piece got there first: this one is not part of the file.
        remove_object(state, &path).await;
        let now = mine(state, who, id).await?;
        return Err(mismatch(now.received));
    }
    if let Some(e) = cut_off {
        return Err(e);
    }
    let mut record = record;
    record.received = to;
    Ok(status_of(&record, None))
}

/// Writes a piece's body to `writer`: how many bytes arrived (more than
/// `declared` means it lied) and, if the body broke off, why.
async fn receive_piece(
    state: &AppState,
    writer: &mut WriteMultipart,
    body: Body,
    declared: u64,
) -> (u64, Option<ApiError>) {
    let mut stream = body.into_data_stream();
    let mut got: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(_) => return (got, Some(ApiError::invalid("the piece was cut off"))),
        };
        got += chunk.len() as u64;
        if got > declared {
            return (got, None);
        }
        state.media.pace.wait(chunk.len()).await;
        if let Err(e) = writer.wait_for_capacity(1).await {
            return (0, Some(ApiError::internal(e)));
        }
        writer.write(&chunk);
    }
    if got < declared {
        return (
            got,
            Some(ApiError::invalid(format!(
                "the piece ended after {got} of its {declared} bytes"
            ))),
        );
    }
    (got, None)
}

/// Turns upload `id`, all its bytes received, into a file.
pub(crate) async fn complete(state: &AppState, who: &AuthedDevice, id: &str) -> ApiResult<MediaRef> {
    let record = mine(state, who, id).await?;
    if let Some(media) = &record.media_id {
        return completed(state, media).await;
    }
    if record.received != record.size {
        return Err(ApiError::invalid(format!(
            "the upload has {} of its {} bytes; send the rest first",
            record.received, record.size
        )));
    }
    let folder = folder(id);
    let paths = record
        .parts
        .iter()
        .map(|part| folder.child(part.as_str()))
        .collect();
    let bytes = pieces(state.media.store.clone(), paths);
    let stored = store(
        state,
        who,
        record.kind,
        record.name.as_deref(),
        record.size,
        bytes,
    )
    .await;
    let reference = match stored {
        Ok(reference) => reference,
        Err(e) if e.code.http_status() < 500 => {
            // The bytes are not a file of its kind (or too large an
            // image): sending them again cannot help, so they go.
            remove_pieces(state, id).await;
            state.store.remove_upload(id).await?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    if !state.store.complete_upload(id, &reference.id).await? {
        // Completed at the same time elsewhere: that file is the answer
        // (this one, never sent, goes with the sweep).
        let now = mine(state, who, id).await?;
        if let Some(media) = &now.media_id {
            return completed(state, media).await;
        }
    }
    remove_pieces(state, id).await;
    Ok(reference)
}

/// The bytes of the objects at `paths`, one after the other.
fn pieces(
    objects: Arc<dyn ObjectStore>,
    paths: Vec<Path>,
) -> BoxStream<'static, ApiResult<Bytes>> {
    futures_util::stream::iter(paths)
        .then(move |path| {
            let objects = objects.clone();
            async move { objects.get(&path).await.map(|got| got.into_stream()) }
        })
        .try_flatten()
        .map(|chunk| chunk.map_err(ApiError::internal))
        .boxed()
}

/// Gives up upload `id`: it and its pieces are removed.
pub(crate) async fn cancel(state: &AppState, who: &AuthedDevice, id: &str) -> ApiResult<()> {
    mine(state, who, id).await?;
    remove_pieces(state, id).await;
    state.store.remove_upload(id).await?;
    Ok(())
}

/// Removes the pieces of upload `id` (recorded or not, finished or not).
pub(crate) async fn remove_pieces(state: &AppState, id: &str) {
    if let Err(e) = try_remove_pieces(state, id).await {
        tracing::warn!(error = %e, "removing an upload's pieces");
    }
}

async fn try_remove_pieces(state: &AppState, id: &str) -> anyhow::Result<()> {
    if state.media.local {
        // A directory also holds the unfinished pieces the store does not list.
        let dir = state.config.media_dir().join("incoming").join(id);
        return match tokio::fs::remove_dir_all(&dir).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        };
    }
    let listed: Vec<_> = state
        .media
        .store
        .list(Some(&folder(id)))
        .try_collect()
        .await?;
    for meta in listed {
        remove_object(state, &meta.location).await;
    }
    Ok(())
}

async fn remove_object(state: &AppState, path: &Path) {
    match state.media.store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => tracing::warn!(error = %e, "removing an upload's piece"),
    }
}

/// Upload `id` if it is `who`'s and not expired; any other is one that
/// does not exist.
async fn mine(state: &AppState, who: &AuthedDevice, id: &str) -> ApiResult<UploadRecord> {
    let not_found = || ApiError::new(ErrorCode::NotFound, "no such upload");
    if !hark_proto::MediaId(id.to_owned()).is_valid() {
        return Err(not_found());
    }
    match state.store.upload(id).await? {
        Some(r) if r.uploader == who.user.id && r.expires_at > crate::now_ms() => Ok(r),
        _ => Err(not_found()),
    }
}

async fn completed(state: &AppState, media: &hark_proto::MediaId) -> ApiResult<MediaRef> {
    match state.store.media(media).await? {
        Some(record) => Ok(record.reference),
        // Swept already: the upload's file was never sent in time.
        None => Err(ApiError::new(ErrorCode::NotFound, "no such upload")),
    }
}

fn mismatch(received: u64) -> ApiError {
    ApiError::new(
        ErrorCode::OffsetMismatch,
        format!("the upload has {received} bytes; send the piece starting there"),
    )
}

fn status_of(record: &UploadRecord, media: Option<MediaRef>) -> UploadStatus {
    UploadStatus {
        id: record.id.clone(),
        kind: record.kind,
        size: record.size,
        received: record.received,
        expires_at: record.expires_at,
        direct: record.direct,
        put_url: None,
        put_headers: Vec::new(),
        media,
    }
}
