//! Exports of a user's data: a zip archive of everything the server keeps
//! about them, prepared by the job queue and kept in the media store
//! (`exports/<id>.zip`) for [`KEEP_MS`], then removed by a second job.
//!
//! The archive is written to a temporary file in the data directory (zip
//! needs to go back to write its directory; nothing of it is held in
//! memory but one file at a time) and then stored in parts, as uploads are.
//! A job that fails marks its export failed rather than retrying: the
//! person asks again. One that dies with its node runs again (the export
//! is still pending) and starts the archive over.

use crate::jobs::JobResult;
use crate::media::MediaFiles;
use crate::state::AppState;
use hark_proto::{ChatId, ExportStatus, Message, Seq, UserId};
use hark_store::profile::{ExportJob, Finished, EXPORT_EXPIRY_JOB};
use hark_store::HistoryQuery;
use object_store::path::Path;
use object_store::WriteMultipart;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use zip::write::SimpleFileOptions;
use zip::ZipWriter;

/// How long a ready archive is kept.
pub(crate) const KEEP_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// Messages read per history page while collecting the user's own.
const PAGE: u32 = 500;

/// Where an export's archive is kept.
pub(crate) fn path(id: &str) -> Path {
    Path::from(format!("exports/{id}.zip"))
}

/// What the archive's README says.
const README: &str = "\
Your data on this Hark server.

profile.json   your account: names, about line, who sees what, role,
               notification settings
photo.jpg      your profile photo, if you have one
devices.json   the devices logged in to your account
contacts.json  your contacts; blocked.json: the people you block
chats.json     the chats you are in, with their members
messages/      one file per chat: the messages you sent there (text,
               replies, reactions, files; in end-to-end encrypted chats
               the ciphertext, which only your devices can read)
media/         the files you sent, by id
audit.json     the audit log's entries about you
";

/// The job: builds the archive of `payload`'s export, if still pending.
pub(crate) async fn prepare(state: AppState, payload: String) -> JobResult {
    let job: ExportJob =
        serde_json::from_str(&payload).map_err(|e| format!("export job payload: {e}"))?;
    let Some(export) = state
        .store
        .export(job.user, job.export.clone())
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(()); // removed with its account
    };
    if export.status != ExportStatus::Pending {
        return Ok(());
    }
    let now = crate::now_ms();
    let (finished, then) = match build(&state, job.user, &job.export).await {
        Ok(size) => {
            let expires_at = now + KEEP_MS;
            (
                Finished {
                    status: ExportStatus::Ready,
                    at: now,
                    size: Some(size),
                    expires_at: Some(expires_at),
                },
                Some(job.job(EXPORT_EXPIRY_JOB, expires_at)),
            )
        }
        Err(why) => {
            tracing::warn!(export = %job.export, error = %why, "preparing a data export");
            remove_archive(&state.media, &job.export).await;
            (
                Finished {
                    status: ExportStatus::Failed,
                    at: now,
                    size: None,
                    expires_at: None,
                },
                None,
            )
        }
    };
    let ready = finished.status == ExportStatus::Ready;
    let ended = state
        .store
        .finish_export(job.export.clone(), finished, then)
        .await
        .map_err(|e| e.to_string())?;
    if !ended && ready {
        // Removed meanwhile (its account deleted): no archive stays.
        remove_archive(&state.media, &job.export).await;
    }
    Ok(())
}

/// The job that ends an archive's time: the bytes, then the row.
pub(crate) async fn expire(state: AppState, payload: String) -> JobResult {
    let job: ExportJob =
        serde_json::from_str(&payload).map_err(|e| format!("export job payload: {e}"))?;
    remove(&state, &job.export)
        .await
        .map_err(|e| e.to_string().into())
}

/// Removes an export: its archive, then its row.
pub(crate) async fn remove(state: &AppState, id: &str) -> anyhow::Result<()> {
    state.media.delete(&path(id)).await?;
    state.store.remove_export(id.to_owned()).await?;
    Ok(())
}

async fn remove_archive(files: &MediaFiles, id: &str) {
    if let Err(e) = files.delete(&path(id)).await {
        tracing::warn!(export = %id, error = %e, "removing a data export's archive");
    }
}

/// The archive being written, moved to a blocking thread for each write.
struct Archive {
    zip: ZipWriter<std::fs::File>,
}

impl Archive {
    async fn add(self, name: String, bytes: Vec<u8>) -> anyhow::Result<Self> {
        tokio::task::spawn_blocking(move || {
            let mut me = self;
            let options =
                SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            me.zip.start_file(name, options)?;
            me.zip.write_all(&bytes)?;
            Ok(me)
        })
        .await?
    }

    async fn json<T: Serialize>(self, name: &str, value: &T) -> anyhow::Result<Self> {
        let bytes = serde_json::to_vec_pretty(value)?;
        self.add(name.to_owned(), bytes).await
    }
}

/// Writes the user's archive and stores it; its size in bytes.
async fn build(state: &AppState, user: UserId, id: &str) -> anyhow::Result<u64> {
    let store = &state.store;
    let file = tempfile::tempfile_in(&state.config.data_dir)?;
    let mut archive = Archive {
        zip: ZipWriter::new(file),
    };
    archive = archive.add("README.txt".into(), README.into()).await?;

    let me = store
        .user(user)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no such user"))?;
    let profile = store.my_profile(user).await?;
    let privacy = store
        .presence_records(&[user])
        .await?
        .first()
        .map(|r| r.privacy);
    let notifications = store.notification_settings(user).await?;
    let role = store.admin_user(user).await?.map(|a| a.role);
    archive = archive
        .json(
            "profile.json",
            &serde_json::json!({
                "user": me,
                "role": role,
                "about": profile.about,
                "about_visibility": profile.about_visibility,
                "photo_visibility": profile.photo_visibility,
                "presence_privacy": privacy,
                "notifications": notifications,
            }),
        )
        .await?;
    if let Some(version) = &profile.photo {
        let bytes =
            crate::media::photo::read(&state.media, version, hark_proto::PhotoSize::Large).await;
        if let Ok(bytes) = bytes {
            archive = archive.add("photo.jpg".into(), bytes.to_vec()).await?;
        }
    }
    archive = archive
        .json("devices.json", &store.devices(user).await?)
        .await?;
    use hark_store::contacts::List;
    archive = archive
        .json("contacts.json", &store.listed(user, List::Contacts).await?)
        .await?;
    archive = archive
        .json("blocked.json", &store.listed(user, List::Blocks).await?)
        .await?;

    let summaries = store.chats(user).await?;
    let mut chats = Vec::with_capacity(summaries.len());
    let mut files = BTreeMap::new();
    for summary in &summaries {
        let chat_id = summary.chat.id;
        chats.push(store.chat(user, chat_id).await?);
        let mine = sent_in(state, user, chat_id).await?;
        for message in &mine {
            if let Some(media) = &message.media {
                files.insert(media.id.clone(), media.name.clone());
            }
        }
        if !mine.is_empty() {
            archive = archive
                .json(&format!("messages/{}.json", chat_id.0), &mine)
                .await?;
        }
    }
    archive = archive.json("chats.json", &chats).await?;

    for (media, name) in files {
        // A file erased since (its message deleted, then swept) is gone.
        let Ok(got) = state.media.store.get(&MediaFiles::path(&media)).await else {
            continue;
        };
        let bytes = got.bytes().await?;
        let name = name.map_or_else(|| "file".to_owned(), |n| n.replace(['/', '\\'], "_"));
        archive = archive
            .add(format!("media/{}/{name}", media.0), bytes.to_vec())
            .await?;
    }

    let mut audit = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .audit_page(hark_store::audit::AuditQuery {
                before,
                after: None,
                user: Some(user),
                action: None,
                chat: None,
                since: None,
                until: None,
                limit: PAGE,
            })
            .await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        let full = page.len() == PAGE as usize;
        audit.extend(page);
        if !full {
            break;
        }
    }
    archive = archive.json("audit.json", &audit).await?;

    let file = tokio::task::spawn_blocking(move || archive.zip.finish()).await??;
    store_file(state, id, file).await
}

/// The user's own messages in a chat, oldest first, as they read them.
async fn sent_in(state: &AppState, user: UserId, chat: ChatId) -> anyhow::Result<Vec<Message>> {
    let mut mine = Vec::new();
    let mut query = HistoryQuery::Latest { limit: PAGE };
    loop {
        let page = state.store.history(user, chat, query).await?;
        let oldest: Option<Seq> = page.messages.iter().map(|m| m.seq).min();
        mine.extend(
            page.messages
                .into_iter()
                .filter(|m| m.sender_id == user && !m.deleted),
        );
        match oldest {
            Some(seq) if page.has_more => query = HistoryQuery::Before { seq, limit: PAGE },
            _ => break,
        }
    }
    mine.sort_by_key(|m| m.seq);
    Ok(mine)
}

/// Stores the finished archive in parts; its size.
async fn store_file(state: &AppState, id: &str, mut file: std::fs::File) -> anyhow::Result<u64> {
    use std::io::Seek;
    let size = file.seek(std::io::SeekFrom::End(0))?;
    file.rewind()?;
    let parts = state.media.store.put_multipart(&path(id)).await?;
    let part = state.media.part_bytes();
    let mut writer = WriteMultipart::new_with_chunk_size(parts, part);
    let copied = copy(&mut writer, file, part).await;
    if let Err(e) = copied {
        // Nothing of it stays.
        if let Err(abort) = writer.abort().await {
            tracing::warn!(error = %abort, "removing an unfinished data export");
        }
        return Err(e);
    }
    writer.finish().await?;
    Ok(size)
}

/// Writes the file into the parts, a part at a time.
async fn copy(writer: &mut WriteMultipart, file: std::fs::File, part: usize) -> anyhow::Result<()> {
    let mut file = Some(file);
    loop {
        let mut f = file.take().ok_or_else(|| anyhow::anyhow!("file lost"))?;
        let (back, chunk) = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            let mut chunk = Vec::with_capacity(part);
            (&mut f).take(part as u64).read_to_end(&mut chunk)?;
            Ok((f, chunk))
        })
        .await??;
        file = Some(back);
        if chunk.is_empty() {
            return Ok(());
        }
        writer.wait_for_capacity(1).await?;
        writer.write(&chunk);
    }
}
