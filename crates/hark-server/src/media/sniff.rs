//! What a file is, from its first bytes, checked against the kind its
//! uploader declared ([`hark_media_sniff::sniff`]; the client's
//! `Content-Type` is never used), its refusals as API errors.

use crate::error::{ApiError, ApiResult};
use hark_media_sniff::SniffError;
use hark_proto::{ErrorCode, MediaKind};

pub(super) use hark_media_sniff::{clean_name, Sniffed, HEAD_BYTES};

/// Checks `head` (the file's first bytes, or all of a short one) against
/// the declared `kind`; `max_pixels` bounds an image's width × height.
pub(super) fn sniff(kind: MediaKind, head: &[u8], max_pixels: u64) -> ApiResult<Sniffed> {
    hark_media_sniff::sniff(kind, head, max_pixels).map_err(|e| match e {
        SniffError::TooManyPixels { .. } => ApiError::new(ErrorCode::TooLarge, e.to_string()),
        SniffError::NotOfKind { .. } | SniffError::UnreadableHeader => {
            ApiError::invalid(e.to_string())
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A 1×1 PNG.
    fn png() -> Vec<u8> {
        let mut png = std::io::Cursor::new(Vec::new());
        image::RgbaImage::new(1, 1)
            .write_to(&mut png, image::ImageFormat::Png)
            .unwrap();
        png.into_inner()
    }

    #[test]
    fn refusals_are_api_errors() {
        // Too many pixels is too large; anything else is an invalid field.
        let png = png();
        assert_eq!(
            sniff(MediaKind::Image, &png, 0).unwrap_err().code,
            ErrorCode::TooLarge
        );
        assert_eq!(
            sniff(MediaKind::Video, &png, 100).unwrap_err().code,
            ErrorCode::InvalidField
        );
        assert_eq!(
            sniff(MediaKind::Image, &png[..8], 100).unwrap_err().code,
            ErrorCode::InvalidField
        );
        assert_eq!(sniff(MediaKind::Image, &png, 1).unwrap().width, Some(1));
    }
}
