//! A resumable upload's pieces in a media directory: appended to one file,
//! `incoming/<upload>/file`, so completing it checks that file where it
//! is and links it into place (no second write, as pieces kept one object
//! each would need; a bucket's objects cannot be appended to).
//!
//! One writer at a time per upload, across every process sharing the
//! directory: the file's lock is held from reading where the upload stands
//! until the piece is recorded. The bytes past what is recorded (a piece
//! the server died writing) are cut off before the next piece is written.

use super::resumable::{receive_piece, whole_file, Sink};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Body;
use std::io::{Seek, SeekFrom};

/// The writes a piece's bytes are gathered into.
const WRITE_BYTES: usize = 1024 * 1024;

/// Writes `body`, `declared` bytes from `offset`, into upload `id`'s file
/// and records them, if the upload still stands at `offset` once the
/// file is locked (else `Ok(Err(received))`). What arrived of a piece cut
/// off is kept and recorded; the error then says why it stopped.
pub(super) async fn append(
    state: &AppState,
    id: &str,
    offset: u64,
    declared: u64,
    body: Body,
) -> ApiResult<Result<(u64, Option<ApiError>), u64>> {
    let path = state.config.media_dir().join(whole_file(id).as_ref());
    let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .map_err(ApiError::storage)?
    .map_err(ApiError::storage)?;
    // Under the lock: where the upload stands now.
    let now = state
        .store
        .upload(id)
        .await?
        .ok_or_else(|| ApiError::new(hark_proto::ErrorCode::NotFound, "no such upload"))?;
    if now.received != offset || now.media_id.is_some() {
        return Ok(Err(now.received));
    }
    // Bytes past what is recorded were never acknowledged: cut them off.
    let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        let mut file = file;
        file.set_len(offset)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(file)
    })
    .await
    .map_err(ApiError::storage)?
    .map_err(ApiError::storage)?;
    // Written in large blocks: tokio hands each write to a blocking thread.
    let mut file =
        tokio::io::BufWriter::with_capacity(WRITE_BYTES, tokio::fs::File::from_std(file));
    let (got, stopped) = receive_piece(state, Sink::File(&mut file), body, declared).await?;
    tokio::io::AsyncWriteExt::flush(&mut file)
        .await
        .map_err(ApiError::storage)?;
    // On disk before it is recorded: a recorded byte is never lost.
    let std_file = file.into_inner().into_std().await;
    // The file comes back: its lock holds until the piece is recorded.
    let _locked = tokio::task::spawn_blocking(move || {
        std_file.sync_data()?;
        Ok::<_, std::io::Error>(std_file)
    })
    .await
    .map_err(ApiError::storage)?
    .map_err(ApiError::storage)?;
    let part = format!("{offset:016x}");
    if !state
        .store
        .advance_upload(id, offset, offset + got, &part)
        .await?
    {
        // Cannot happen while the lock is held, but for a lock the file
        // system ignores: the row is the truth, the next piece cuts this off.
        let now = state.store.upload(id).await?.map_or(0, |u| u.received);
        return Ok(Err(now));
    }
    Ok(Ok((got, stopped)))
}
