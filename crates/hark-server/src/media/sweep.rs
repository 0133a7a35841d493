//! Removes what no one can reach any more, every `media.sweep_ms`:
//! - uploads no message carries once `media.unreferenced_grace_ms` has
//!   passed since they were uploaded: never sent, or every message with
//!   them deleted for everyone; the row goes first, then the bytes;
//! - bytes without a row that old (files and thumbnails): an upload cut off
//!   mid-way (its unfinished parts), or a crash between storing the bytes
//!   and writing the row.
//!
//! - profile photos' images no user's row names that old (a crash between
//!   storing a new photo and naming it, or a failed removal of a replaced
//!   one);
//! - resumable uploads past their `expires_at`, finished or not, with their
//!   pieces; and pieces whose upload has no row that old (a piece written
//!   while its upload was cancelled).
//!
//! So a row and its bytes cannot disagree for longer than a grace period
//! and a sweep, whatever crashed when. A file is never sent once older than
//! half the grace period (see `messaging`), so the sweep never removes a
//! file a send is about to reference.

use super::{resumable, FOLDERS};
use crate::state::AppState;
use futures_util::StreamExt;
use hark_proto::MediaId;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// Rows looked at per statement.
const BATCH: u32 = 500;

/// What one sweep removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub unreferenced: u64,
    pub orphan_files: u64,
    pub expired_uploads: u64,
}

/// Sweeps every `media.sweep_ms` until shutdown.
pub(crate) async fn sweep_forever(state: AppState) {
    let every = Duration::from_millis(state.config.media.sweep_ms.max(10));
    while state.shutdown.pause(every).await {
        match sweep(&state).await {
            Ok(s) if s == Swept::default() => {}
            Ok(s) => tracing::info!(
                unreferenced = s.unreferenced,
                orphan_files = s.orphan_files,
                expired_uploads = s.expired_uploads,
                "removed media no one can reach"
            ),
            Err(e) => tracing::warn!(error = %e, "media sweep"),
        }
    }
}

pub async fn sweep(state: &AppState) -> anyhow::Result<Swept> {
    let grace = i64::try_from(state.config.media.unreferenced_grace_ms).unwrap_or(i64::MAX);
    let cutoff = crate::now_ms().saturating_sub(grace);
    let mut swept = Swept::default();
    loop {
        let ids = state.store.unreferenced_media(cutoff, BATCH).await?;
        for id in &ids {
            if state.store.remove_unreferenced_media(id).await? {
                state.media.remove(id).await?;
                swept.unreferenced += 1;
            }
        }
        if ids.len() < BATCH as usize {
            break;
        }
    }
    let older = SystemTime::now()
        .checked_sub(Duration::from_millis(
            state.config.media.unreferenced_grace_ms,
        ))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    for (old, name) in old_bytes(state, older).await? {
        // An unfinished upload's parts (in a directory) are `<id>#<n>`.
        let id = MediaId(name.split('#').next().unwrap_or_default().to_owned());
        let finished = !name.contains('#');
        if finished && id.is_valid() && state.store.media(&id).await?.is_some() {
            continue;
        }
        let removed = match old {
            Old::File(path) => match tokio::fs::remove_file(&path).await {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => return Err(e.into()),
            },
            Old::Object(path) => match state.media.store.delete(&path).await {
                Ok(()) => true,
                Err(object_store::Error::NotFound { .. }) => false,
                Err(e) => return Err(e.into()),
            },
        };
        swept.orphan_files += u64::from(removed);
    }
    swept.orphan_files += unnamed_photos(state, older).await?;
    loop {
        let expired = state.store.expired_uploads(crate::now_ms(), BATCH).await?;
        for upload in &expired {
            // The pieces first: a crash in between leaves the row, and the
            // next sweep tries again.
            resumable::remove_pieces(state, &upload.id).await;
            state.store.remove_upload(&upload.id).await?;
            swept.expired_uploads += 1;
        }
        if expired.len() < BATCH as usize {
            break;
        }
    }
    for id in old_upload_folders(state, older).await? {
        if state.store.upload(&id).await?.is_none() {
            resumable::remove_pieces(state, &id).await;
            swept.orphan_files += 1;
        }
    }
    Ok(swept)
}

/// Removes the images of photo versions stored before `older` that no
/// user's row names; how many images went.
async fn unnamed_photos(state: &AppState, older: SystemTime) -> anyhow::Result<u64> {
    let prefix = object_store::path::Path::from("photos");
    let mut old = Vec::new();
    let mut listed = state.media.store.list(Some(&prefix));
    while let Some(meta) = listed.next().await {
        let meta = meta?;
        if SystemTime::from(meta.last_modified) < older {
            // `photos/<version>/<size>`
            let version = meta.location.parts().nth(1).map(|v| v.as_ref().to_owned());
            if let Some(version) = version {
                old.push((version, meta.location));
            }
        }
    }
    if old.is_empty() {
        return Ok(0);
    }
    let named = state.store.photos_in_use().await?;
    let mut removed = 0;
    for (version, path) in old {
        if named.contains(&version) {
            continue;
        }
        match state.media.store.delete(&path).await {
            Ok(()) => removed += 1,
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(removed)
}

/// The uploads with pieces stored before `older`.
async fn old_upload_folders(state: &AppState, older: SystemTime) -> anyhow::Result<Vec<String>> {
    let mut out = std::collections::BTreeSet::new();
    if state.media.local {
        let dir = state.config.media_dir().join("incoming");
        let folders =
            tokio::task::spawn_blocking(move || old_entries(&dir, older, Entry::Dir)).await??;
        out.extend(folders.into_iter().map(|(_, name)| name));
    } else {
        let older_ms = millis(older);
        let prefix = object_store::path::Path::from("incoming");
        let mut listed = state.media.store.list(Some(&prefix));
        while let Some(meta) = listed.next().await {
            let meta = meta?;
            if meta.last_modified.timestamp_millis() < older_ms {
                if let Some(id) = meta.location.parts().nth(1) {
                    out.insert(id.as_ref().to_owned());
                }
            }
        }
    }
    Ok(out.into_iter().collect())
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Stored bytes, as the sweep removes them.
enum Old {
    /// A file of the media directory (an unfinished upload's parts are
    /// files there that the object store does not list).
    File(PathBuf),
    /// An object of the bucket.
    Object(object_store::path::Path),
}

/// Files and thumbnails last written before `older`, with their names.
/// (A bucket lists only finished objects: an upload cut off by a crash
/// leaves an unfinished multipart upload there, which the bucket's own
/// lifecycle rule removes; see docs/deploy.md.)
async fn old_bytes(state: &AppState, older: SystemTime) -> anyhow::Result<Vec<(Old, String)>> {
    if state.media.local {
        let dir = state.config.media_dir();
        return Ok(tokio::task::spawn_blocking(move || {
            let mut files = Vec::new();
            for folder in FOLDERS {
                files.extend(old_entries(&dir.join(folder), older, Entry::File)?);
            }
            Ok::<_, std::io::Error>(files)
        })
        .await??
        .into_iter()
        .map(|(path, name)| (Old::File(path), name))
        .collect());
    }
    let older_ms = millis(older);
    let mut out = Vec::new();
    for prefix in FOLDERS {
        let prefix = object_store::path::Path::from(prefix);
        let mut listed = state.media.store.list(Some(&prefix));
        while let Some(meta) = listed.next().await {
            let meta = meta?;
            if meta.last_modified.timestamp_millis() < older_ms {
                let name = meta.location.filename().unwrap_or_default().to_owned();
                out.push((Old::Object(meta.location), name));
            }
        }
    }
    Ok(out)
}

/// What of a directory [`old_entries`] lists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Entry {
    File,
    Dir,
}

/// The files (or directories) in `dir` last written before `older`, with
/// their names.
fn old_entries(
    dir: &std::path::Path,
    older: SystemTime,
    kind: Entry,
) -> std::io::Result<Vec<(PathBuf, String)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let meta = entry.metadata()?;
        let is = match (meta.is_file(), meta.is_dir()) {
            (true, _) => Some(Entry::File),
            (_, true) => Some(Entry::Dir),
            _ => None,
        };
        if is != Some(kind) || meta.modified()? >= older {
            continue;
        }
        out.push((
            entry.path(),
            entry.file_name().to_string_lossy().into_owned(),
        ));
    }
    Ok(out)
}
