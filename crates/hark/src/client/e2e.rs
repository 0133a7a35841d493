//! End-to-end encrypted chats in the terminal: this device's crypto store
//! (the SDK's [`Crypto`], in `crypto/<user>-<device>/` of the config
//! directory, encrypted with a key kept in the session file), encrypting
//! what is sent and decrypting what is shown.

use super::session::Session;
use anyhow::{bail, Context};
use hark_proto::{Chat, MediaKind, Message};
use hark_sdk::{Api, Crypto, CryptoStore};
use serde_json::json;

/// Opens this device's crypto state (made on first use), publishes its
/// keys and reads its inbox.
pub(crate) async fn open(api: &Api, session: &mut Session) -> anyhow::Result<Crypto> {
    let key = match &session.crypto_key {
        Some(hex) => hex.clone(),
        None => {
            let fresh = hex::encode(rand::random::<[u8; 32]>());
            session.crypto_key = Some(fresh.clone());
            session.save()?;
            fresh
        }
    };
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(&key, &mut bytes)
        .context("the session's crypto_key is not 64 hex digits")?;
    let dir = session.crypto_dir()?;
    let crypto = Crypto::open(
        api.clone(),
        session.user.id,
        session.device.id,
        CryptoStore::Sqlite {
            dir: &dir,
            key: &bytes,
        },
    )
    .await
    .context("opening this device's encryption keys")?;
    Ok(crypto)
}

/// The ciphertext of `text` for every member of `chat`.
pub(crate) async fn encrypt(
    crypto: &Crypto,
    chat: &Chat,
    text: &str,
) -> anyhow::Result<serde_json::Value> {
    let members: Vec<_> = chat.members.iter().map(|m| m.user.id).collect();
    let content = json!({"msgtype": "m.text", "body": text});
    let sealed = {
        // A one-shot command reads no event stream: fetch the members' devices now.
        crypto.devices_changed(&members).await?;
        crypto.encrypt(chat.id, &members, &content).await?
    };
    warn_unverified(crypto, chat).await;
    Ok(sealed)
}

/// Says on standard error which members one has verified have a device
/// one has not (it got the message too): a new login, or keys that are not
/// theirs.
pub(crate) async fn warn_unverified(crypto: &Crypto, chat: &Chat) {
    let members: Vec<_> = chat.members.iter().map(|m| m.user.id).collect();
    let Ok(found) = crypto.unverified_new_devices(&members).await else {
        return;
    };
    for (user, device) in found {
        let name = chat
            .members
            .iter()
            .find(|m| m.user.id == user)
            .map(|m| m.user.username.clone())
            .unwrap_or_else(|| format!("user {}", user.0));
        eprintln!(
            "warning: {name} has a device you have not verified (device {}): \
             check it with `hark devices --user {name}` and `hark verify {name} --device {}`",
            device.0, device.0
        );
    }
}

/// The ciphertext of `text` replacing message `seq` of `chat`.
pub(crate) async fn encrypt_edit(
    crypto: &Crypto,
    chat: &Chat,
    seq: hark_proto::Seq,
    text: &str,
) -> anyhow::Result<serde_json::Value> {
    let members: Vec<_> = chat.members.iter().map(|m| m.user.id).collect();
    let content = hark_sdk::replacement(seq, json!({"msgtype": "m.text", "body": text}));
    Ok({
        // A one-shot command reads no event stream: fetch the members' devices now.
        crypto.devices_changed(&members).await?;
        crypto.encrypt(chat.id, &members, &content).await?
    })
}

/// Encrypts the file at `path` on this device, uploads the ciphertext and
/// returns the message's ciphertext content (naming the file, its type,
/// size and key; `caption` as its text) with the upload's id.
pub(crate) async fn send_file(
    api: &Api,
    crypto: &Crypto,
    chat: &Chat,
    path: &std::path::Path,
    kind: Option<&str>,
    caption: &str,
) -> anyhow::Result<(serde_json::Value, hark_proto::MediaId)> {
    let kind = match kind {
        Some(k) => MediaKind::parse(k).context("--kind: one of image, video, audio, file")?,
        None => super::media::kind_of(path),
    };
    let bytes = tokio::fs::read(path)
        .await
        .with_context(|| format!("reading {}", path.display()))?;
    let sealed = hark_sdk::seal_file(&bytes)?;
    let media = api
        .upload_bytes(sealed.ciphertext.clone(), MediaKind::File)
        .await
        .with_context(|| format!("uploading {}", path.display()))?;
    let name = super::media::safe_name(path.file_name().and_then(|n| n.to_str()))
        .unwrap_or_else(|| "file".to_owned());
    eprintln!(
        "uploaded {name} encrypted ({})",
        super::view::size(bytes.len() as u64)
    );
    let content = sealed.content(
        &media.id,
        kind,
        &name,
        super::media::mime_of(path),
        bytes.len() as u64,
        caption,
    )?;
    let members: Vec<_> = chat.members.iter().map(|m| m.user.id).collect();
    let sealed = {
        // A one-shot command reads no event stream: fetch the members' devices now.
        crypto.devices_changed(&members).await?;
        crypto.encrypt(chat.id, &members, &content).await?
    };
    warn_unverified(crypto, chat).await;
    Ok((sealed, media.id))
}

/// Saves the file an encrypted chat's message carries, decrypted, to
/// `output` (or the name inside the message, here).
pub(crate) async fn download_file(
    api: &Api,
    session: &mut Session,
    m: &Message,
    output: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let content = content_of(api, session, m).await?;
    let media = m.media.as_deref().context("the message carries no file")?;
    let dest = output.unwrap_or_else(|| {
        let name = super::media::safe_name(content["filename"].as_str());
        std::path::PathBuf::from(name.unwrap_or_else(|| media.id.0.clone()))
    });
    let mut sealed = dest.as_os_str().to_owned();
    sealed.push(".sealed");
    let sealed = std::path::PathBuf::from(sealed);
    api.download_file(&media.id, &sealed, |_, _| {})
        .await
        .with_context(|| format!("downloading into {}", sealed.display()))?;
    let ciphertext = tokio::fs::read(&sealed).await?;
    let plain = hark_sdk::open_file(&ciphertext, &content);
    tokio::fs::remove_file(&sealed).await.ok();
    let plain = plain?;
    tokio::fs::write(&dest, &plain)
        .await
        .with_context(|| format!("writing {}", dest.display()))?;
    println!(
        "saved {} ({}, decrypted)",
        dest.display(),
        super::view::size(plain.len() as u64)
    );
    Ok(())
}

/// What encrypted message `m` decrypts to here.
async fn content_of(
    api: &Api,
    session: &mut Session,
    m: &Message,
) -> anyhow::Result<serde_json::Value> {
    let crypto = open(api, session).await?;
    Ok(crypto
        .decrypt_message(m)
        .await
        .map_err(|e| anyhow::anyhow!("message {} cannot be decrypted yet: {}", m.seq, e.reason))?
        .content)
}

/// Saves the thumbnail the sender put inside encrypted message `m` to
/// `output` (or `<name>.thumbnail.jpg` / `.png` here).
pub(crate) async fn save_thumbnail(
    api: &Api,
    session: &mut Session,
    m: &Message,
    output: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let content = content_of(api, session, m).await?;
    let Some(small) = hark_sdk::sealed_thumbnail(&content) else {
        bail!("message {} carries no picture with a thumbnail", m.seq);
    };
    let ext = if small.mimetype == "image/png" {
        "png"
    } else {
        "jpg"
    };
    let dest = output.unwrap_or_else(|| {
        let name = super::media::safe_name(content["filename"].as_str())
            .or_else(|| m.media.as_ref().map(|media| media.id.0.clone()))
            .unwrap_or_else(|| "picture".to_owned());
        std::path::PathBuf::from(format!("{name}.thumbnail.{ext}"))
    });
    tokio::fs::write(&dest, &small.bytes)
        .await
        .with_context(|| format!("writing {}", dest.display()))?;
    println!(
        "saved {} ({}×{}, {}, decrypted)",
        dest.display(),
        small.width,
        small.height,
        super::view::size(small.bytes.len() as u64)
    );
    Ok(())
}

/// `m` as the terminal shows it: an encrypted message's text is what it
/// decrypts to, or why it cannot be read yet.
pub(crate) async fn readable(crypto: Option<&Crypto>, m: &Message) -> Message {
    if m.encrypted.is_none() {
        return m.clone();
    }
    let content = match crypto {
        None => Err("🔒 (encrypted)".to_owned()),
        Some(crypto) => crypto
            .decrypt_message(m)
            .await
            .map(|d| d.content)
            .map_err(|e| format!("🔒 waiting for this message ({})", e.reason)),
    };
    let content = match content {
        Ok(content) => content,
        Err(text) => return Message { text, ..m.clone() },
    };
    let body = content["body"].as_str().unwrap_or("").to_owned();
    let mut shown = Message {
        text: body.clone(),
        ..m.clone()
    };
    // A file: shown by what the message says it is, not the opaque upload.
    if let (Some(media), Some(name)) = (shown.media.as_deref_mut(), content["filename"].as_str()) {
        media.name = Some(name.to_owned());
        media.kind = match content["msgtype"].as_str() {
            Some("m.image") => MediaKind::Image,
            Some("m.audio") => MediaKind::Audio,
            Some("m.video") => MediaKind::Video,
            _ => MediaKind::File,
        };
        if let Some(mime) = content["info"]["mimetype"].as_str() {
            media.mime = mime.to_owned();
        }
        if let Some(size) = content["info"]["size"].as_u64() {
            media.size = size;
        }
        let side = |k: &str| {
            content["info"][k]
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
        };
        if let (Some(w), Some(h)) = (side("w"), side("h")) {
            (media.width, media.height) = (Some(w), Some(h));
        }
        if body == name {
            shown.text = String::new();
        }
    }
    shown
}
