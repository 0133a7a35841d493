//! Removes what no one can reach any more, every `media.sweep_ms`:
//! - uploads no message carries once `media.unreferenced_grace_ms` has
//!   passed since they were uploaded: never sent, or every message with
//!   them deleted for everyone; the row goes first, then the bytes;
//! - bytes without a row that old (files and thumbnails): an upload cut off
//!   mid-way (its unfinished parts), or a crash between storing the bytes
//!   and writing the row.
//!
//! So a row and its bytes cannot disagree for longer than a grace period
//! and a sweep, whatever crashed when. A file is never sent once older than
//! half the grace period (see `messaging`), so the sweep never removes a
//! file a send is about to reference.

use super::MediaFiles;
use crate::state::AppState;
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
}

/// Sweeps every `media.sweep_ms` until shutdown.
pub(crate) async fn sweep_forever(state: AppState) {
    let every = Duration::from_millis(state.config.media.sweep_ms.max(10));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = state.shutdown.wait() => return,
        }
        match sweep(&state).await {
            Ok(s) if s == Swept::default() => {}
            Ok(s) => tracing::info!(
                unreferenced = s.unreferenced,
                orphan_files = s.orphan_files,
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
                remove_bytes(state, id).await?;
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
    let dir = state.config.media_dir();
    let candidates = tokio::task::spawn_blocking(move || {
        let mut files = old_files(&dir.join("files"), older)?;
        files.extend(old_files(&dir.join("thumbs"), older)?);
        Ok::<_, std::io::Error>(files)
    })
    .await??;
    for (path, name) in candidates {
        // An unfinished upload's parts are named `<id>#<n>`.
        let id = MediaId(name.split('#').next().unwrap_or_default().to_owned());
        let finished = !name.contains('#');
        if finished && id.is_valid() && state.store.media(&id).await?.is_some() {
            continue;
        }
        match tokio::fs::remove_file(&path).await {
            Ok(()) => swept.orphan_files += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(swept)
}

async fn remove_bytes(state: &AppState, id: &MediaId) -> anyhow::Result<()> {
    for path in [MediaFiles::path(id), MediaFiles::thumbnail_path(id)] {
        match state.media.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The files in `dir` last written before `older`, with their names.
fn old_files(dir: &std::path::Path, older: SystemTime) -> std::io::Result<Vec<(PathBuf, String)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let meta = entry.metadata()?;
        if !meta.is_file() || meta.modified()? >= older {
            continue;
        }
        out.push((
            entry.path(),
            entry.file_name().to_string_lossy().into_owned(),
        ));
    }
    Ok(out)
}
