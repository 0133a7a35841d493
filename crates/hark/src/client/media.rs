//! `hark send --file` and `hark download`: files streamed to and from the
//! server with a progress bar on a terminal.

use super::view;
use anyhow::{bail, Context};
use hark_proto::{ChatId, MediaKind, MediaRef, Seq};
use hark_sdk::{Api, Page, UploadOptions};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Uploads `path` as `kind` (or the kind its extension suggests).
pub(super) async fn upload(api: &Api, path: &Path, kind: Option<&str>) -> anyhow::Result<MediaRef> {
    let kind = match kind {
        Some(k) => MediaKind::parse(k).context("--kind: one of image, video, audio, file")?,
        None => kind_of(path),
    };
    let bar = bar(&format!("uploading {}", path.display()));
    let shown = bar.clone();
    let show = move |sent, total| {
        shown.set_length(total);
        shown.set_position(sent);
    };
    let options = UploadOptions::default();
    let size = tokio::fs::metadata(path)
        .await
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    // A large file goes in pieces that survive a broken connection or a
    // restarting server (or straight into the server's bucket, when it
    // offers that); a small one in one request.
    let media = if size > options.piece_bytes {
        api.upload_resumable(path, kind, &options, show).await
    } else {
        api.upload_file(path, kind, show).await
    }
    .with_context(|| format!("uploading {}", path.display()));
    bar.finish_and_clear();
    let media = media?;
    eprintln!("uploaded {}", view::media_label(&media));
    Ok(media)
}

/// Saves the file message `seq` of `chat_id` carries (or, with
/// `thumbnail`, its image's thumbnail) to `output` (or its own name here).
pub(super) async fn download(
    api: &Api,
    chat_id: ChatId,
    seq: Seq,
    output: Option<PathBuf>,
    thumbnail: bool,
) -> anyhow::Result<()> {
    let page = api
        .history(chat_id, Page::After(Seq(seq.0 - 1)), Some(1))
        .await?;
    let Some(message) = page.messages.into_iter().find(|m| m.seq == seq) else {
        bail!("no message {seq} in chat {chat_id}");
    };
    let Some(media) = message.media else {
        bail!("message {seq} carries no file");
    };
    if thumbnail {
        let Some(small) = &media.thumbnail else {
            bail!("message {seq} carries no image with a thumbnail");
        };
        let ext = if small.mime == "image/png" {
            "png"
        } else {
            "jpg"
        };
        let dest = output
            .unwrap_or_else(|| PathBuf::from(format!("{}.thumbnail.{ext}", default_name(&media))));
        let bytes = api.thumbnail(&media.id).await?;
        tokio::fs::write(&dest, &bytes)
            .await
            .with_context(|| format!("writing {}", dest.display()))?;
        println!(
            "saved {} ({}×{}, {})",
            dest.display(),
            small.width,
            small.height,
            view::size(bytes.len() as u64)
        );
        return Ok(());
    }
    let dest = output.unwrap_or_else(|| PathBuf::from(default_name(&media)));
    let bar = bar(&format!("downloading {}", dest.display()));
    let shown = bar.clone();
    let got = api
        .download_file(&media.id, &dest, move |got, total| {
            shown.set_length(total);
            shown.set_position(got);
        })
        .await;
    bar.finish_and_clear();
    let got = got.with_context(|| format!("downloading into {}", dest.display()))?;
    println!("saved {} ({})", dest.display(), view::size(got));
    Ok(())
}

/// The name a download is saved under when none is given: the uploader's
/// (already cleaned by the server of any path), else the file's id.
fn default_name(media: &MediaRef) -> String {
    media
        .name
        .as_deref()
        .and_then(|n| Path::new(n).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .unwrap_or_else(|| media.id.0.clone())
}

fn kind_of(path: &Path) -> MediaKind {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" | "png" | "gif" | "webp" => MediaKind::Image,
        "mp4" | "webm" | "mkv" | "mov" => MediaKind::Video,
        "ogg" | "oga" | "opus" | "mp3" | "m4a" | "wav" | "flac" | "aac" => MediaKind::Audio,
        _ => MediaKind::File,
    }
}

/// A byte progress bar on standard error when it is a terminal, else none.
fn bar(what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    let style =
        ProgressStyle::with_template("{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar
}
