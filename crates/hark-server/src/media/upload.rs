//! `POST /v1/media`: the body streams into the object store, hashed and
//! counted on the way; only its first bytes are kept, to tell what it is.
//! A resumable upload's pieces are stored the same way when completed
//! (`resumable`).

use super::sniff::{self, Sniffed, HEAD_BYTES};
use super::{duration, new_id, thumbnail, MediaFiles};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Body;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use hark_proto::{ErrorCode, MediaId, MediaKind, MediaRef};
use hark_store::{AuthedDevice, MediaRecord};
use object_store::WriteMultipart;
use sha2::{Digest, Sha256};

/// What an upload request says of itself.
pub(crate) struct Upload {
    pub(crate) kind: MediaKind,
    pub(crate) name: Option<String>,
    /// `Content-Length`: the body must have exactly this many bytes.
    pub(crate) declared: Option<u64>,
}

/// Stores `body` as a new file of `who`'s and records it.
pub(crate) async fn upload(
    state: &AppState,
    who: &AuthedDevice,
    upload: Upload,
    body: Body,
) -> ApiResult<MediaRef> {
    let declared = upload
        .declared
        .ok_or_else(|| ApiError::invalid("Content-Length is required"))?;
    admit(state, who, upload.kind, declared).await?;
    let body = body
        .into_data_stream()
        .map(|chunk| chunk.map_err(|_| ApiError::invalid("the upload was cut off")));
    store(
        state,
        who,
        upload.kind,
        upload.name.as_deref(),
        declared,
        body,
    )
    .await
}

/// Refuses an upload of `declared` bytes of `kind` that `who` may not
/// start: too large or empty, too many uploads a minute, over the quota.
pub(super) async fn admit(
    state: &AppState,
    who: &AuthedDevice,
    kind: MediaKind,
    declared: u64,
) -> ApiResult<()> {
    let media = &state.config.media;
    let limit = match kind {
        MediaKind::Image => media.image_max_bytes,
        _ => media.max_bytes,
    };
    if declared > limit {
        let what = match kind {
            MediaKind::Image => "an image",
            MediaKind::Video => "a video",
            MediaKind::Audio => "an audio file",
            MediaKind::File => "a file",
        };
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "{what} may have at most {} MiB ({limit} bytes)",
                limit / (1024 * 1024)
            ),
        ));
    }
    if declared == 0 {
        return Err(ApiError::invalid("the file is empty"));
    }
    if state.upload_limiter.check_key(&who.device.id.0).is_err() {
        metrics::counter!("hark_rate_limited_total", "kind" => "uploads").increment(1);
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "at most {} uploads a minute from one device; wait a little",
                media.uploads_per_minute
            ),
        ));
    }
    // Checked when an upload starts: uploads running at once may together
    // pass it by what they carry.
    let used = state.store.media_bytes_of(who.user.id).await?;
    if used.saturating_add(declared) > media.quota_bytes_per_user {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "your files would take {} MiB of your {} MiB; delete some for everyone first",
                used.saturating_add(declared) / (1024 * 1024),
                media.quota_bytes_per_user / (1024 * 1024)
            ),
        ));
    }
    Ok(())
}

/// Writes `bytes` (exactly `declared` of them, admitted already) as a new
/// file of `who`'s, checks what they are, and records it.
pub(super) async fn store<S>(
    state: &AppState,
    who: &AuthedDevice,
    kind: MediaKind,
    name: Option<&str>,
    declared: u64,
    bytes: S,
) -> ApiResult<MediaRef>
where
    S: Stream<Item = ApiResult<Bytes>> + Unpin,
{
    let id = new_id();
    let path = MediaFiles::path(&id);
    let parts = state
        .media
        .store
        .put_multipart(&path)
        .await
        .map_err(ApiError::storage)?;
    let mut writer = WriteMultipart::new_with_chunk_size(parts, state.media.part_bytes());
    let media = &state.config.media;
    let received = receive(
        &mut writer,
        bytes,
        kind,
        declared,
        media.max_pixels,
        &state.media.pace,
    )
    .await;
    let Received {
        sniffed,
        sha256,
        head,
    } = match received {
        Ok(done) => done,
        Err(e) => {
            // Nothing of it stays: the parts written so far are removed.
            if let Err(abort) = writer.abort().await {
                tracing::warn!(error = %abort, "removing an unfinished upload");
            }
            return Err(e);
        }
    };
    writer.finish().await.map_err(ApiError::storage)?;
    let stored = Stored {
        id,
        kind,
        name,
        size: declared,
        sha256,
        sniffed,
    };
    let recorded = record(state, who, stored, &head).await;
    if recorded.is_err() {
        // Bytes no row will name (the database refused it: a full disk,
        // an outage) go now rather than at the next sweep.
        if let Err(e) = state.media.store.delete(&path).await {
            tracing::warn!(error = %e, "removing an upload that was not recorded");
        }
    }
    recorded
}

/// A file whose bytes are stored, as far as they were checked.
pub(super) struct Stored<'a> {
    pub(super) id: MediaId,
    pub(super) kind: MediaKind,
    /// As the uploader gave it.
    pub(super) name: Option<&'a str>,
    pub(super) size: u64,
    pub(super) sha256: String,
    pub(super) sniffed: Sniffed,
}

/// Records file `stored`, whose first [`HEAD_BYTES`] are `head`: its
/// duration and thumbnail first. Whatever fails, its bytes are removed.
pub(super) async fn record(
    state: &AppState,
    who: &AuthedDevice,
    stored: Stored<'_>,
    head: &[u8],
) -> ApiResult<MediaRef> {
    let mut reference = MediaRef {
        id: stored.id,
        kind: stored.kind,
        mime: stored.sniffed.mime,
        size: stored.size,
        sha256: stored.sha256,
        name: stored.name.and_then(sniff::clean_name),
        width: stored.sniffed.width,
        height: stored.sniffed.height,
        thumbnail: None,
        duration_ms: None,
    };
    let media = &state.config.media;
    if matches!(reference.kind, MediaKind::Audio | MediaKind::Video) {
        reference.duration_ms = duration::of_stored(
            &state.media,
            &reference.id,
            &reference.mime,
            head,
            reference.size,
        )
        .await;
    }
    if reference.kind == MediaKind::Image {
        match thumbnail::make(&state.media, &reference.id, media.image_decode_max_bytes).await {
            Ok((width, height, thumbnail)) => {
                (reference.width, reference.height) = (Some(width), Some(height));
                reference.thumbnail = Some(thumbnail);
            }
            Err(e) => {
                remove(&state.media, &reference.id).await;
                return Err(e);
            }
        }
    }
    let record = MediaRecord {
        reference,
        uploader: who.user.id,
        created_at: crate::now_ms(),
    };
    if let Err(e) = state.store.create_media(&record).await {
        // Without its row the file is unreachable: remove it now.
        remove(&state.media, &record.reference.id).await;
        return Err(e.into());
    }
    Ok(record.reference)
}

/// Removes what an upload stored before it failed (what is left, the sweep
/// removes later).
async fn remove(media: &MediaFiles, id: &MediaId) {
    if let Err(e) = media.remove(id).await {
        tracing::warn!(error = %e, "removing a failed upload's bytes");
    }
}

/// What a received body was.
struct Received {
    sniffed: Sniffed,
    sha256: String,
    /// Its first [`HEAD_BYTES`] (all of a shorter one).
    head: Vec<u8>,
}

/// Writes the body to `writer`: what its head says it is, its SHA-256, and
/// the head itself (a duration is read from it).
async fn receive<S>(
    writer: &mut WriteMultipart,
    mut bytes: S,
    kind: MediaKind,
    declared: u64,
    max_pixels: u64,
    pace: &super::Pace,
) -> ApiResult<Received>
where
    S: Stream<Item = ApiResult<Bytes>> + Unpin,
{
    let mut hasher = Sha256::new();
    let mut head: Vec<u8> = Vec::new();
    let mut sniffed: Option<Sniffed> = None;
    let mut received: u64 = 0;
    while let Some(chunk) = bytes.next().await {
        let chunk = chunk?;
        received += chunk.len() as u64;
        if received > declared {
            return Err(ApiError::invalid(format!(
                "the body has more than the {declared} bytes of its Content-Length"
            )));
        }
        hasher.update(&chunk);
        if sniffed.is_none() {
            let take = chunk.len().min(HEAD_BYTES - head.len());
            head.extend_from_slice(chunk.get(..take).unwrap_or_default());
            if head.len() == HEAD_BYTES {
                // Refused as soon as the head is known, before the rest is stored.
                sniffed = Some(sniff::sniff(kind, &head, max_pixels)?);
            }
        }
        pace.wait(chunk.len()).await;
        writer
            .wait_for_capacity(1)
            .await
            .map_err(ApiError::storage)?;
        writer.write(&chunk);
    }
    if received != declared {
        return Err(ApiError::invalid(format!(
            "the upload ended after {received} of its {declared} bytes"
        )));
    }
    let sniffed = match sniffed {
        Some(s) => s,
        None => sniff::sniff(kind, &head, max_pixels)?,
    };
    Ok(Received {
        sniffed,
        sha256: format!("{:x}", hasher.finalize()),
        head,
    })
}
