//! Resumable uploads (`/v1/media/uploads`): a file sent in pieces, for
//! large files on connections that break.
//!
//! - Starting one checks what `POST /v1/media` checks (size, rate, quota;
//!   the quota counts the whole declared size from then on) and records it.
//! - Each piece (`PATCH` with `Upload-Offset`) is stored as it arrives,
//!   then recorded in the upload's row only if the upload still stood at
//!   that offset. A piece cut off mid-way keeps what arrived: the upload
//!   goes on from there. A piece the server died writing was never
//!   recorded. In a media directory the pieces are appended to one file
//!   (`appended`); in a bucket each is its own object,
//!   `incoming/<upload>/<part>`.
//! - Completing it checks the one file where it is (`complete_in_place`),
//!   or streams a bucket's pieces, in order, through the path every
//!   upload takes (`upload::store`: sniffed, hashed, paced, thumbnail,
//!   duration, row); then the pieces go. Completing it again answers the
//!   same file. Bytes that are not what the upload said they are (a
//!   refusal, not a failure) are removed with the upload.
//!
//! - With a bucket set to `direct`, a client that asks for it puts the
//!   whole file into the bucket itself, at [`whole_file`], with
//!   a presigned URL that takes exactly the declared length (and the
//!   declared SHA-256, when given); completing it copies the object within
//!   the bucket and checks it as any upload (size, first bytes, image
//!   limits, thumbnail, duration) reading only what those need.
//!
//! The row is the truth: a piece is there once recorded, never before. So
//! any node may take the next piece or complete it, and a crash at any
//! point leaves an upload that either has a piece or can be sent it again.
//! The sweep removes expired uploads with their pieces, and pieces without
//! an upload (see `sweep`).

use super::sniff::{self, HEAD_BYTES};
use super::upload::{self, admit, store};
use super::{appended, new_id, MediaFiles};
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
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Where the pieces of upload `id` are kept.
pub(crate) fn folder(id: &str) -> Path {
    Path::from(format!("incoming/{id}"))
}

/// The one object holding all of upload `id`: where a direct upload's
/// client puts it, and where a media directory appends the pieces.
pub(super) fn whole_file(id: &str) -> Path {
    folder(id).child("file")
}

/// Starts an upload of `who`'s.
pub(crate) async fn start(
    state: &AppState,
    who: &AuthedDevice,
    new: NewUpload,
) -> ApiResult<UploadStatus> {
    let sha256 = new.sha256.as_deref().map(str::to_ascii_lowercase);
    if sha256.as_deref().is_some_and(|hex| checksum(hex).is_none()) {
        return Err(ApiError::invalid(
            "sha256: the file's SHA-256, 64 hexadecimal digits",
        ));
    }
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
        direct: new.direct && state.media.presigner.is_some(),
        sha256,
        created_at: now,
        expires_at: now.saturating_add(expiry),
    };
    state.store.create_upload(&record).await?;
    status_of(state, &record, None)
}

/// Upload `id` as it stands.
pub(crate) async fn status(
    state: &AppState,
    who: &AuthedDevice,
    id: &str,
) -> ApiResult<UploadStatus> {
    let record = mine(state, who, id).await?;
    let media = match &record.media_id {
        Some(media) => state.store.media(media).await?.map(|m| m.reference),
        None => None,
    };
    status_of(state, &record, media)
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
    if record.direct {
        return Err(ApiError::invalid(
            "this upload goes straight to the bucket: PUT it to its put_url",
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
        return status_of(state, &record, None);
    }
    if state.media.local {
        let (got, cut_off) = match appended::append(state, id, offset, declared, body).await? {
            Ok(done) => done,
            Err(received) => return Err(mismatch(received)),
        };
        if let Some(e) = cut_off {
            return Err(e);
        }
        let mut record = record;
        record.received = offset + got;
        return status_of(state, &record, None);
    }
    let part = format!("{offset:016x}-{:08x}", rand::random::<u32>());
    let path = folder(id).child(part.as_str());
    let writing = state
        .media
        .store
        .put_multipart(&path)
        .await
        .map_err(ApiError::storage)?;
    let mut writer = WriteMultipart::new_with_chunk_size(writing, state.media.part_bytes());
    let (got, cut_off) = match receive_piece(state, Sink::Parts(&mut writer), body, declared).await
    {
        Ok(received) => received,
        Err(e) => {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(error = %abort, "removing an unfinished piece");
            }
            return Err(e);
        }
    };
    // What arrived is kept even when the rest was cut off: the client goes
    // on from there.
    writer.finish().await.map_err(ApiError::storage)?;
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
    status_of(state, &record, None)
}

/// Where a piece's bytes go as they arrive.
pub(super) enum Sink<'a> {
    /// A bucket's object of its own.
    Parts(&'a mut WriteMultipart),
    /// The upload's one file in a media directory.
    File(&'a mut tokio::io::BufWriter<tokio::fs::File>),
}

/// Writes a piece's body, `declared` bytes, to `sink` at the node's pace:
/// how many bytes arrived (at least one) and, if the body stopped short,
/// why. A body longer than `declared` is refused.
pub(super) async fn receive_piece(
    state: &AppState,
    mut sink: Sink<'_>,
    body: Body,
    declared: u64,
) -> ApiResult<(u64, Option<ApiError>)> {
    let mut stream = body.into_data_stream();
    let mut got: u64 = 0;
    let mut stopped = None;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            stopped = Some(ApiError::invalid("the piece was cut off"));
            break;
        };
        if got + chunk.len() as u64 > declared {
            return Err(ApiError::invalid(format!(
                "the body has more than the {declared} bytes of its Content-Length"
            )));
        }
        state.media.pace.wait(chunk.len()).await;
        match &mut sink {
            Sink::Parts(writer) => {
                writer
                    .wait_for_capacity(1)
                    .await
                    .map_err(ApiError::storage)?;
                writer.write(&chunk);
            }
            Sink::File(file) => tokio::io::AsyncWriteExt::write_all(*file, &chunk)
                .await
                .map_err(ApiError::storage)?,
        }
        got += chunk.len() as u64;
    }
    if got < declared && stopped.is_none() {
        stopped = Some(ApiError::invalid(format!(
            "the piece ended after {got} of its {declared} bytes"
        )));
    }
    if got == 0 {
        return Err(stopped.unwrap_or_else(|| ApiError::invalid("the piece is empty")));
    }
    Ok((got, stopped))
}

/// Turns upload `id`, all its bytes received, into a file.
pub(crate) async fn complete(
    state: &AppState,
    who: &AuthedDevice,
    id: &str,
) -> ApiResult<MediaRef> {
    let record = mine(state, who, id).await?;
    if let Some(media) = &record.media_id {
        return completed(state, media).await;
    }
    if !record.direct && record.received != record.size {
        return Err(ApiError::invalid(format!(
            "the upload has {} of its {} bytes; send the rest first",
            record.received, record.size
        )));
    }
    if record.direct || state.media.local {
        // One object holds the whole file: checked where it is.
        return complete_in_place(state, who, &record).await;
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
        Err(e) => return Err(refused(state, id, e).await),
    };
    finished(state, who, id, reference).await
}

/// Records that upload `id` became file `reference`, and removes its pieces.
async fn finished(
    state: &AppState,
    who: &AuthedDevice,
    id: &str,
    reference: MediaRef,
) -> ApiResult<MediaRef> {
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

/// Turns upload `record`, whose whole file is one object (put into the
/// bucket by the client, or appended in a media directory), into a file:
/// the object's size and first bytes are checked as an upload's body
/// would be, and it is copied into place within the store (a hard link in
/// a directory), so its bytes are not written again. An image is read
/// back to decode it for its thumbnail, and a file whose SHA-256 the
/// client did not declare to hash it.
async fn complete_in_place(
    state: &AppState,
    who: &AuthedDevice,
    record: &UploadRecord,
) -> ApiResult<MediaRef> {
    let put = whole_file(&record.id);
    let stored = match state.media.store.head(&put).await {
        Ok(meta) => meta.size,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(ApiError::invalid(
                "nothing has been put at the upload's put_url yet",
            ))
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    if stored != record.size {
        let e = ApiError::invalid(format!(
            "the bucket holds {stored} bytes, not the {} the upload declared",
            record.size
        ));
        return Err(refused(state, &record.id, e).await);
    }
    let id = new_id();
    let file = MediaFiles::path(&id);
    // Within the bucket: no bytes pass through the server.
    state
        .media
        .store
        .copy(&put, &file)
        .await
        .map_err(ApiError::storage)?;
    let checked = check_in_place(state, who, record, id.clone(), &file).await;
    match checked {
        Ok(reference) => finished(state, who, &record.id, reference).await,
        Err(e) => {
            if let Err(gone) = state.media.remove(&id).await {
                tracing::warn!(error = %gone, "removing a refused upload");
            }
            Err(refused(state, &record.id, e).await)
        }
    }
}

async fn check_in_place(
    state: &AppState,
    who: &AuthedDevice,
    record: &UploadRecord,
    id: hark_proto::MediaId,
    file: &Path,
) -> ApiResult<MediaRef> {
    let objects = &state.media.store;
    let head_len = record.size.min(HEAD_BYTES as u64);
    let head = objects
        .get_range(file, 0..head_len)
        .await
        .map_err(ApiError::storage)?;
    let sniffed = sniff::sniff(record.kind, &head, state.config.media.max_pixels)?;
    let sha256 = match &record.sha256 {
        Some(sum) => sum.clone(),
        None => sha256_of(state, file).await?,
    };
    let stored = upload::Stored {
        id,
        kind: record.kind,
        name: record.name.as_deref(),
        size: record.size,
        sha256,
        sniffed,
    };
    upload::record(state, who, stored, &head).await
}

/// The SHA-256 of the stored object at `path`, lowercase hex.
async fn sha256_of(state: &AppState, path: &Path) -> ApiResult<String> {
    let mut hasher = Sha256::new();
    if state.media.local {
        // Read in large blocks on one blocking thread: the object store's
        // stream of a file takes a blocking hop per 8 KiB.
        let file = state.config.media_dir().join(path.as_ref());
        return tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            use std::io::Read;
            let mut file = std::fs::File::open(file)?;
            let mut buf = vec![0u8; 1024 * 1024];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    return Ok(format!("{:x}", hasher.finalize()));
                }
                hasher.update(buf.get(..n).unwrap_or_default());
            }
        })
        .await
        .map_err(ApiError::storage)?
        .map_err(ApiError::storage);
    }
    let mut bytes = state
        .media
        .store
        .get(path)
        .await
        .map_err(ApiError::storage)?
        .into_stream();
    while let Some(chunk) = bytes.next().await {
        hasher.update(chunk.map_err(ApiError::storage)?);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Ends upload `id` after error `e`: a refusal (the bytes are not what the
/// upload said: sending them again cannot help) removes it with its
/// pieces; a failure leaves it to be completed again.
async fn refused(state: &AppState, id: &str, e: ApiError) -> ApiError {
    if e.code.http_status() < 500 {
        remove_pieces(state, id).await;
        if let Err(gone) = state.store.remove_upload(id).await {
            return gone.into();
        }
    }
    e
}

/// A declared SHA-256 (hex) as the bucket checks it: base64 of the digest.
fn checksum(hex: &str) -> Option<String> {
    use base64::Engine;
    if hex.len() != 64 {
        return None;
    }
    let digest = (0..32)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(base64::engine::general_purpose::STANDARD.encode(digest))
}

/// The bytes of the objects at `paths`, one after the other.
fn pieces(objects: Arc<dyn ObjectStore>, paths: Vec<Path>) -> BoxStream<'static, ApiResult<Bytes>> {
    futures_util::stream::iter(paths)
        .then(move |path| {
            let objects = objects.clone();
            async move { objects.get(&path).await.map(|got| got.into_stream()) }
        })
        .try_flatten()
        .map(|chunk| chunk.map_err(ApiError::storage))
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

fn status_of(
    state: &AppState,
    record: &UploadRecord,
    media: Option<MediaRef>,
) -> ApiResult<UploadStatus> {
    let mut status = UploadStatus {
        id: record.id.clone(),
        kind: record.kind,
        size: record.size,
        received: record.received,
        expires_at: record.expires_at,
        direct: record.direct,
        put_url: None,
        put_headers: Default::default(),
        media,
    };
    if let (true, None, Some(signer)) =
        (record.direct, &status.media, state.media.presigner.as_ref())
    {
        // Signed afresh each time: a client whose URL expired asks again.
        let sum = record.sha256.as_deref().and_then(checksum);
        let put = signer
            .put(&whole_file(&record.id), record.size, sum.as_deref())
            .map_err(ApiError::internal)?;
        status.put_url = Some(put.url);
        status.put_headers = put.headers;
    }
    Ok(status)
}
