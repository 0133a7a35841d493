//! What a file is, from its first bytes, checked against the kind its
//! uploader declared. The client's `Content-Type` is never used.

use hark_proto::MediaKind;
use std::io::Cursor;

/// Bytes kept from the start of an upload to tell what it is (and, for
/// images, read their dimensions).
pub const HEAD_BYTES: usize = 256 * 1024;

/// What the head of a file says it is.
#[derive(Debug, PartialEq, Eq)]
pub struct Sniffed {
    pub mime: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Why a file's head was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SniffError {
    /// Its bytes are not of the kind its uploader declared.
    #[error("the file is not {expected} (its bytes look like {})", .found.unwrap_or("nothing known"))]
    NotOfKind {
        expected: &'static str,
        found: Option<&'static str>,
    },
    /// An image whose header says no size.
    #[error("the image's header cannot be read")]
    UnreadableHeader,
    /// An image larger than the server decodes.
    #[error("the image is {width}×{height} pixels; at most {max_pixels} pixels are accepted")]
    TooManyPixels {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
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
pub fn sniff(kind: MediaKind, head: &[u8], max_pixels: u64) -> Result<Sniffed, SniffError> {
    let found = infer::get(head).map(|t| t.mime_type());
    let refuse = |expected| SniffError::NotOfKind { expected, found };
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
            let (width, height) = dimensions(head)?;
            if u64::from(width) * u64::from(height) > max_pixels {
                return Err(SniffError::TooManyPixels {
                    width,
                    height,
                    max_pixels,
                });
            }
            (Some(width), Some(height))
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
fn dimensions(head: &[u8]) -> Result<(u32, u32), SniffError> {
    image::ImageReader::new(Cursor::new(head))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok())
        .filter(|&(w, h)| w > 0 && h > 0)
        .ok_or(SniffError::UnreadableHeader)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A 1×1 PNG.
    const PNG: &[u8] = &[
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
        let e = sniff(MediaKind::Image, b"<svg onload=alert(1)>", 100).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the file is not a JPEG, PNG, GIF or WebP image (its bytes look like nothing known)"
        );
        let e = sniff(MediaKind::Video, PNG, 100).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the file is not an MP4, WebM, Matroska or QuickTime video (its bytes look like image/png)"
        );
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
        assert_eq!(
            e,
            SniffError::TooManyPixels {
                width: 100_000,
                height: 100_000,
                max_pixels: 50_000_000
            }
        );
    }

    #[test]
    fn an_image_without_a_readable_header_is_refused() {
        // PNG's signature, then nothing.
        let e = sniff(MediaKind::Image, &PNG[..8], 100).unwrap_err();
        assert_eq!(e, SniffError::UnreadableHeader);
    }
}
