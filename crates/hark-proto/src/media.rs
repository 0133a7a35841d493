//! Media: files uploaded over HTTP (`POST /v1/media`) and referenced by
//! messages.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// An uploaded file. Chosen by the server: 32 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct MediaId(pub String);

impl MediaId {
    /// Whether the id has the shape the server hands out (so a lookup of a
    /// made-up one is refused before it reaches storage).
    pub fn is_valid(&self) -> bool {
        self.0.len() == 32
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
}

impl fmt::Display for MediaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a file is, as the uploader declared it and the server checked
/// against its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// JPEG, PNG, GIF or WebP; the server reads its dimensions.
    Image,
    /// MP4, WebM, Matroska or QuickTime.
    Video,
    /// A voice note or other sound: Ogg, WebM, MP3, MP4 audio, WAV, FLAC.
    Audio,
    /// Anything else, served as a download.
    File,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::File => "file",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "image" => Some(MediaKind::Image),
            "video" => Some(MediaKind::Video),
            "audio" => Some(MediaKind::Audio),
            "file" => Some(MediaKind::File),
            _ => None,
        }
    }
}

/// An uploaded file as a message carries it and the upload answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MediaRef {
    pub id: MediaId,
    pub kind: MediaKind,
    /// Sniffed from the bytes, never taken from the client.
    pub mime: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
    /// The file name the uploader gave, cleaned (no path, no control
    /// characters, at most 255 bytes).
    #[serde(default)]
    pub name: Option<String>,
    /// Images: pixels.
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    /// Audio and video: how long it plays, read by the server from the
    /// container (Ogg, WebM/Matroska, MP4/QuickTime) when it can be.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// Images: a small copy made by the server, at
    /// `GET /v1/media/{id}/thumbnail` for whoever may download the file.
    #[serde(default)]
    pub thumbnail: Option<Thumbnail>,
}

/// A small copy of an image, made by the server from its pixels (no
/// metadata of the original survives), at most [`Thumbnail::MAX_SIDE`]
/// pixels on its longer side and turned upright.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Thumbnail {
    /// `image/jpeg`, or `image/png` for an image with transparency.
    pub mime: String,
    pub width: u32,
    pub height: u32,
    /// Bytes.
    pub size: u64,
}

impl Thumbnail {
    /// The longer side of a thumbnail, pixels.
    pub const MAX_SIDE: u32 = 480;
}

/// `POST /v1/media/uploads`: starts a resumable upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewUpload {
    pub kind: MediaKind,
    /// The bytes the whole file has.
    pub size: u64,
    /// The file's name, shown to those who receive it.
    #[serde(default)]
    pub name: Option<String>,
    /// Ask to put the bytes straight into the bucket (only where the
    /// server offers it: `direct` in the answer says whether it did).
    #[serde(default)]
    pub direct: bool,
    /// SHA-256 of the whole file, lowercase hex: required for a direct
    /// upload (the bucket refuses bytes that do not match it).
    #[serde(default)]
    pub sha256: Option<String>,
}

/// A resumable upload as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadStatus {
    /// 32 lowercase hex characters, chosen by the server.
    pub id: String,
    pub kind: MediaKind,
    pub size: u64,
    /// The bytes stored so far: the next piece starts here.
    pub received: u64,
    /// Milliseconds since the Unix epoch after which the upload and its
    /// pieces are gone, finished or not.
    pub expires_at: i64,
    /// Whether the bytes go straight into the bucket: `PUT` them to
    /// `put_url` (with `put_headers`), then complete the upload.
    #[serde(default)]
    pub direct: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub put_url: Option<String>,
    /// Headers the `PUT` to `put_url` must carry, exactly as given (and
    /// no other `x-amz-*` header).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub put_headers: BTreeMap<String, String>,
    /// The file it became, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaRef>,
}

/// `GET /v1/media/{id}/url`: where the file can be fetched for a while
/// without a token (a bucket's presigned URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MediaUrl {
    pub url: String,
    /// Milliseconds since the Unix epoch after which the URL stops working.
    pub expires_at: i64,
}
