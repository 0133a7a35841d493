//! How long a stored voice note or video plays: its first bytes (kept as
//! the upload went by) and its last, read from the store, given to
//! [`hark_media_sniff::duration_ms`], which reads the container (Ogg,
//! WebM / Matroska, MP4 / QuickTime), never a decode.

use hark_media_sniff::duration_ms;

/// Bytes read from a file's end for its duration (its start, the upload
/// kept as it went by).
const TAIL: u64 = 1024 * 1024;

/// The duration of the stored file `id` (`mime`, `size` bytes, starting
/// with `head`), reading its end from the store; `None` when it cannot be
/// read cheaply.
pub(super) async fn of_stored(
    files: &super::MediaFiles,
    id: &hark_proto::MediaId,
    mime: &str,
    head: &[u8],
    size: u64,
) -> Option<u64> {
    let path = super::MediaFiles::path(id);
    let tail = match files
        .store
        .get_range(&path, size.saturating_sub(TAIL)..size)
        .await
    {
        Ok(tail) => tail,
        Err(e) => {
            tracing::warn!(error = %e, "reading a file's end for its duration");
            return None;
        }
    };
    duration_ms(mime, head, &tail)
}
