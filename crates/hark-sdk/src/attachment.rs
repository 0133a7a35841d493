//! Files in end-to-end encrypted chats: the bytes are encrypted on the
//! sending device (AES-256-CTR with a fresh key, and a SHA-256 of the
//! ciphertext: the library's attachment format, the same in the browser)
//! and go up as an opaque file; the key, the hash and what the file is
//! (its name, type, size) travel inside the message's ciphertext, so the
//! server keeps bytes it cannot read and knows only their length.
//!
//! The whole file is held in memory on both ends (files in encrypted chats
//! are as large as `max_upload_bytes` allows).

use crate::crypto::crypto;
use crate::thumbnail::{self, Picture};
use crate::Result;
use hark_proto::{MediaId, MediaKind};
use matrix_sdk_crypto::{AttachmentDecryptor, AttachmentEncryptor, MediaEncryptionInfo};
use serde_json::{json, Value};
use std::io::{Cursor, Read};

/// A file encrypted for an encrypted chat: the bytes to upload and the
/// key and hash that open them (to go into the message's content).
pub struct SealedFile {
    pub ciphertext: Vec<u8>,
    info: MediaEncryptionInfo,
    /// A photo's size and thumbnail, drawn before encrypting (the server
    /// cannot make one).
    picture: Option<Picture>,
}

/// Encrypts `bytes` with a fresh key; for a photo, draws its thumbnail
/// first (see [`crate::sealed_thumbnail`]).
pub fn seal_file(bytes: &[u8]) -> Result<SealedFile> {
    let picture = thumbnail::draw(bytes);
    let mut input = Cursor::new(bytes);
    let mut encryptor = AttachmentEncryptor::new(&mut input);
    let mut ciphertext = Vec::with_capacity(bytes.len());
    encryptor.read_to_end(&mut ciphertext)?;
    Ok(SealedFile {
        ciphertext,
        info: encryptor.finish(),
        picture,
    })
}

impl SealedFile {
    /// The content to encrypt into the message once the ciphertext is
    /// uploaded as `media`: `{"msgtype": "m.file", "body": …, "filename": …,
    /// "info": {"mimetype", "size"}, "file": {"url": <media id>, "v", "key",
    /// "iv", "hashes"}}` (`m.image`, `m.audio`, `m.video` by `kind`). `body`
    /// is the caption, or the file name without one. A photo sent as an
    /// image also gets its upright size and thumbnail in `info` (`w`, `h`,
    /// `hark.thumbnail`).
    pub fn content(
        &self,
        media: &MediaId,
        kind: MediaKind,
        filename: &str,
        mimetype: &str,
        size: u64,
        caption: &str,
    ) -> Result<Value> {
        let mut file = serde_json::to_value(&self.info)?;
        file["url"] = json!(media.0);
        let msgtype = match kind {
            MediaKind::Image => "m.image",
            MediaKind::Audio => "m.audio",
            MediaKind::Video => "m.video",
            MediaKind::File => "m.file",
        };
        let body = if caption.is_empty() {
            filename
        } else {
            caption
        };
        let mut info = json!({"mimetype": mimetype, "size": size});
        if let (MediaKind::Image, Some(p)) = (kind, &self.picture) {
            info["w"] = json!(p.width);
            info["h"] = json!(p.height);
            info["hark.thumbnail"] = p.thumbnail.to_json();
        }
        Ok(json!({
            "msgtype": msgtype,
            "body": body,
            "filename": filename,
            "info": info,
            "file": file,
        }))
    }
}

/// The media id a decrypted content's file says it is (`file.url`).
pub fn sealed_file_id(content: &Value) -> Option<MediaId> {
    content["file"]["url"]
        .as_str()
        .map(|u| MediaId(u.to_owned()))
}

/// Decrypts a downloaded file with the key and hash of its message's
/// decrypted `content`: refused when the bytes are not what the sender
/// encrypted (the hash differs).
pub fn open_file(ciphertext: &[u8], content: &Value) -> Result<Vec<u8>> {
    let info: MediaEncryptionInfo = serde_json::from_value(content["file"].clone())
        .map_err(|e| crypto(format!("the message holds no file key: {e}")))?;
    let mut input = Cursor::new(ciphertext);
    let mut decryptor = AttachmentDecryptor::new(&mut input, info).map_err(crypto)?;
    let mut plain = Vec::with_capacity(ciphertext.len());
    decryptor
        .read_to_end(&mut plain)
        .map_err(|e| crypto(format!("the file is not the one the sender sent: {e}")))?;
    Ok(plain)
}
