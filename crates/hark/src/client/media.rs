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
    let options = UploadOptions {
        // About a minute of retrying: a server restarting is waited for.
        attempts: 12,
        ..UploadOptions::default()
    };
    let meta = tokio::fs::metadata(path)
        .await
        .with_context(|| format!("reading {}", path.display()))?;
    // A large file goes in pieces that survive a broken connection or a
    // restarting server (or straight into the server's bucket, when it
    // offers that), and across runs of this command; a small one in one
    // request.
    let media = if meta.len() > options.piece_bytes {
        resumable(api, path, &meta, kind, &options, show).await
    } else {
        api.upload_file(path, kind, show)
            .await
            .map_err(anyhow::Error::from)
    }
    .with_context(|| format!("uploading {}", path.display()));
    bar.finish_and_clear();
    let media = media?;
    eprintln!("uploaded {}", view::media_label(&media));
    Ok(media)
}

/// Uploads `path` in pieces, going on with the upload an earlier run left
/// unfinished for the same file (path, size, modification time, kind),
/// kept in `uploads.json` in the config directory until it completes.
async fn resumable(
    api: &Api,
    path: &Path,
    meta: &std::fs::Metadata,
    kind: MediaKind,
    options: &UploadOptions,
    show: impl FnMut(u64, u64) + Send + 'static,
) -> anyhow::Result<MediaRef> {
    let key = upload_key(path, meta, kind);
    let mut unfinished = Unfinished::load()?;
    let earlier = match unfinished.0.get(&key) {
        Some(id) => match api.upload_status(id).await {
            Ok(status) if status.media.is_none() => {
                eprintln!(
                    "going on with the upload started before ({} of {} bytes there)",
                    status.received, status.size
                );
                Some(status.id)
            }
            Ok(_) => Some(id.clone()),
            // Expired, cancelled or refused: start again.
            Err(e) if e.code() == Some(hark_proto::ErrorCode::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let id = match earlier {
        Some(id) => id,
        None => {
            let status = api.start_upload(path, kind, options.direct).await?;
            unfinished.0.insert(key.clone(), status.id.clone());
            unfinished.save()?;
            status.id
        }
    };
    match api.resume_upload(&id, path, options, show).await {
        Ok(media) => {
            unfinished.0.remove(&key);
            unfinished.save()?;
            Ok(media)
        }
        Err(e) if e.code().is_some_and(|c| c.http_status() < 500) => {
            // Refused for good: the next run starts afresh.
            unfinished.0.remove(&key);
            unfinished.save()?;
            Err(e.into())
        }
        Err(e) => Err(anyhow::Error::from(e)
            .context("the upload stopped; run the same command again to go on from where it is")),
    }
}

/// What identifies a file for going on with its upload.
fn upload_key(path: &Path, meta: &std::fs::Metadata, kind: MediaKind) -> String {
    let full = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}|{}|{modified}|{}",
        full.display(),
        meta.len(),
        kind.as_str()
    )
}

/// Unfinished uploads: file key → upload id.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Unfinished(std::collections::BTreeMap<String, String>);

impl Unfinished {
    fn path() -> anyhow::Result<PathBuf> {
        Ok(super::session::config_dir()?.join("uploads.json"))
    }

    fn load() -> anyhow::Result<Self> {
        let path = Self::path()?;
        match std::fs::read(&path) {
            // A damaged file only loses the chance to go on.
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    fn save(&self) -> anyhow::Result<()> {
        let path = Self::path()?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }
}

/// Saves the file message `seq` of `chat_id` carries (or, with
/// `thumbnail`, its image's thumbnail) to `output` (or its own name here).
pub(super) async fn download(
    api: &Api,
    session: &mut super::session::Session,
    (chat_id, seq): (ChatId, Seq),
    output: Option<PathBuf>,
    thumbnail: bool,
) -> anyhow::Result<()> {
    let page = api
        .history(chat_id, Page::After(Seq(seq.0 - 1)), Some(1))
        .await?;
    let Some(message) = page.messages.into_iter().find(|m| m.seq == seq) else {
        bail!("no message {seq} in chat {chat_id}");
    };
    let Some(media) = message.media.clone() else {
        bail!("message {seq} carries no file");
    };
    if message.encrypted.is_some() {
        if thumbnail {
            return super::e2e::save_thumbnail(api, session, &message, output).await;
        }
        return super::e2e::download_file(api, session, &message, output).await;
    }
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
    safe_name(media.name.as_deref()).unwrap_or_else(|| media.id.0.clone())
}

/// A name given by someone else, as a file name here: no directories, no
/// hidden files.
pub(super) fn safe_name(name: Option<&str>) -> Option<String> {
    name.and_then(|n| Path::new(n).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && !n.is_empty())
}

pub(super) fn kind_of(path: &Path) -> MediaKind {
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

/// A file's type by its name, for the content of an encrypted chat's file
/// (the server never sees it).
pub(super) fn mime_of(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "mov" => "video/quicktime",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "mp3" => "audio/mpeg",
        "m4a" | "aac" => "audio/mp4",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

/// A byte progress bar on standard error when it is a terminal, else none.
pub(super) fn bar(what: &str) -> ProgressBar {
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
