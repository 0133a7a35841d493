//! What a file is, from its first bytes, checked against the kind its
//! uploader declared. The client's `Content-Type` is never used.

use crate::error::{ApiError, ApiResult};
use hark_proto::{ErrorCode, MediaKind};
use std::io::Cursor;

/// Bytes kept from the start of an upload to tell what it is (and, for
/// images, read their dimensions).
pub(super) const HEAD_BYTES: usize = 256 * 1024;

/// What the head of a file says it is.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Sniffed {
    pub(super) mime: String,
    pub(super) width: Option<u32>,
    pub(super) height: Option<u32>,
}

const IMAGES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];
const VIDEOS: &[&str] = &[
    "video/mp4",
    "video/webm",
    "video/x-matroska",
    "video/quicktime",
];
const AUDIO: &[&str] = &[
    "audio/ogg",
    "audio/opus",
    "audio/mpeg",
    "audio/m4a",
    "audio/x-wav",
    "audio/x-flac",
    "audio/aac",
];

/// Checks `head` (the file's first bytes, or all of a short one) against
/// the declared `kind`; `max_pixels` bounds an image's width × height.
pub(super) fn sniff(kind: MediaKind, head: &[u8], max_pixels: u64) -> ApiResult<Sniffed> {
    let found = infer::get(head).map(|t| t.mime_type());
    let refuse = |what: &str| {
        ApiError::invalid(format!(
            "the file is not {what} (its bytes look like {})",
            found.unwrap_or("nothing known")
        ))
    };
    let mime = match (kind, found) {
        (MediaKind::Image, Some(m)) if IMAGES.contains(&m) => m,
        (MediaKind::Image, _) => return Err(refuse("a JPEG, PNG, GIF or WebP image")),
        (MediaKind::Video, Some(m)) if VIDEOS.contains(&m) => m,
        (MediaKind::Video, _) => return Err(refuse("an MP4, WebM, Matroska or QuickTime video")),
        // A voice note recorded in a browser is WebM or Ogg with one audio
        // track; the container is all the bytes say.
        (MediaKind::Audio, Some("video/webm")) => "audio/webm",
        (MediaKind::Audio, Some("video/mp4")) => "audio/mp4",
        (MediaKind::Audio, Some(m)) if AUDIO.contains(&m) => m,
        (MediaKind::Audio, _) => return Err(refuse("Ogg, WebM, MP3, MP4, WAV, FLAC or AAC audio")),
        (MediaKind::File, Some(m)) => m,
        (MediaKind::File, None) => "application/octet-stream",
    };
    let (width, height) = match kind {
        MediaKind::Image => {
            let (w, h) = dimensions(head)?;
            if u64::from(w) * u64::from(h) > max_pixels {
                return Err(ApiError::new(
                    ErrorCode::TooLarge,
                    format!(
                        "the image is {w}×{h} pixels; at most {max_pixels} pixels are accepted"
                    ),
                ));
            }
            (Some(w), Some(h))
        }
        _ => (None, None),
    };
    Ok(Sniffed {
        mime: mime.to_owned(),
        width,
        height,
    })
}

/// An image's width and height from its header: nothing is decoded.
fn dimensions(head: &[u8]) -> ApiResult<(u32, u32)> {
    image::ImageReader::new(Cursor::new(head))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok())
        .filter(|&(w, h)| w > 0 && h > 0)
        .ok_or_else(|| ApiError::invalid("the image's header cannot be read"))
}

/// A file name as it may be stored and shown: its last path part, without
/// control characters, at most 255 bytes; `None` when nothing is left.
pub(super) fn clean_name(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let mut clean = String::new();
    for c in last.chars().filter(|c| !c.is_control()) {
        if clean.len() + c.len_utf8() > 255 {
            break;
        }
        clean.push(c);
    }
    let clean = clean.trim().trim_start_matches('.').trim().to_owned();
    (!clean.is_empty()).then_some(clean)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A 1×1 PNG.
    pub(crate) const PNG: &[u8] = &[
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f,
        0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8,
        0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00,
        0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];

    #[test]
    fn an_image_is_what_its_bytes_say() {
        let s = sniff(MediaKind::Image, PNG, 100).unwrap();
        assert_eq!(
            (s.mime.as_str(), s.width, s.height),
            ("image/png", Some(1), Some(1))
        );
        // Text declared an image, or an image declared a video: refused.
        assert!(sniff(MediaKind::Image, b"<svg onload=alert(1)>", 100).is_err());
        assert!(sniff(MediaKind::Video, PNG, 100).is_err());
        // Anything may be a file.
        let f = sniff(MediaKind::File, b"plain words", 100).unwrap();
        assert_eq!(f.mime, "application/octet-stream");
    }

    #[test]
    fn a_pixel_flood_is_refused_from_its_header() {
        // A PNG header claiming 100000 × 100000 pixels (its checksum
        // made right, so only the size is wrong with it).
        let mut huge = PNG.to_vec();
        huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32fast::hash(&huge[12..29]);
        huge[29..33].copy_from_slice(&crc.to_be_bytes());
        let e = sniff(MediaKind::Image, &huge, 50_000_000).unwrap_err();
        assert_eq!(e.code, ErrorCode::TooLarge);
    }

    #[test]
    fn names_lose_their_paths_and_controls() {
        assert_eq!(clean_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(
            clean_name("C:\\x\\report.pdf").as_deref(),
            Some("report.pdf")
        );
        assert_eq!(clean_name("a\u{0}b\nc.txt").as_deref(), Some("abc.txt"));
        assert_eq!(clean_name("..").as_deref(), None);
        assert_eq!(clean_name(&"é".repeat(300)).unwrap().len(), 254);
    }
}
