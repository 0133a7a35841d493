//! Thumbnails of images, made when an upload's bytes are stored and before
//! it is answered, so the upload's answer (and every message that carries
//! the file) has one from the start; a job made later would have to change
//! messages already sent. Bounded: at most one decode per core at once
//! (`MediaFiles::decoders`), and a decode may allocate at most
//! `media.image_decode_max_bytes` (a decompression bomb is refused, never
//! an out-of-memory). docs/benchmarks.md ("Thumbnails") has the cost.
//!
//! The thumbnail is drawn from the decoded pixels, turned upright by the
//! original's EXIF orientation and encoded anew: no metadata of the
//! original (EXIF, GPS, comments) survives in it.

use super::MediaFiles;
use crate::error::{ApiError, ApiResult};
use hark_proto::{ErrorCode, MediaId, Thumbnail};
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, Limits};
use std::io::Cursor;

/// JPEG quality of thumbnails: small and sharp enough at their size.
const JPEG_QUALITY: u8 = 80;

/// What decoding an image gave.
pub(super) struct Rendered {
    /// The image's size turned upright (what a browser shows).
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) thumbnail: Thumbnail,
    pub(super) bytes: Vec<u8>,
}

/// Draws the thumbnail of the stored image `id` and stores it: the image's
/// upright size and its thumbnail.
pub(super) async fn make(
    files: &MediaFiles,
    id: &MediaId,
    max_alloc: u64,
) -> ApiResult<(u32, u32, Thumbnail)> {
    let _turn = files.decoders.acquire().await.map_err(ApiError::internal)?;
    // At most `media.image_max_bytes`: read whole, as the decoders want.
    let file = files
        .store
        .get(&MediaFiles::path(id))
        .await
        .map_err(ApiError::internal)?
        .bytes()
        .await
        .map_err(ApiError::internal)?;
    let rendered = tokio::task::spawn_blocking(move || render(&file, max_alloc))
        .await
        .map_err(ApiError::internal)??;
    files
        .store
        .put(&MediaFiles::thumbnail_path(id), rendered.bytes.into())
        .await
        .map_err(ApiError::internal)?;
    Ok((rendered.width, rendered.height, rendered.thumbnail))
}

/// Decodes `file` (an image whose header was already checked) and draws its
/// thumbnail. CPU-bound: run it on a blocking thread.
pub(super) fn render(file: &[u8], max_alloc: u64) -> ApiResult<Rendered> {
    let image = decode(file, max_alloc)?;
    let (width, height) = (image.width(), image.height());
    let side = Thumbnail::MAX_SIDE;
    let small = if width <= side && height <= side {
        image
    } else {
        image.thumbnail(side, side)
    };
    let mut bytes = Vec::new();
    let mime = if small.color().has_alpha() {
        small
            .to_rgba8()
            .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
            .map_err(ApiError::internal)?;
        "image/png"
    } else {
        JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY)
            .encode_image(&small.to_rgb8())
            .map_err(ApiError::internal)?;
        "image/jpeg"
    };
    Ok(Rendered {
        width,
        height,
        thumbnail: Thumbnail {
            mime: mime.to_owned(),
            width: small.width(),
            height: small.height(),
            size: bytes.len() as u64,
        },
        bytes,
    })
}

/// Decodes `file` (an image whose header was already checked), turned
/// upright by its EXIF orientation, allocating at most `max_alloc` bytes.
/// CPU-bound: run it on a blocking thread.
pub(super) fn decode(file: &[u8], max_alloc: u64) -> ApiResult<DynamicImage> {
    let mut reader = ImageReader::new(Cursor::new(file))
        .with_guessed_format()
        .map_err(|_| ApiError::invalid("the image cannot be read"))?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_alloc);
    reader.limits(limits.clone());
    let mut decoder = reader.into_decoder().map_err(refused)?;
    // The decoded pixels and one working copy of them (turned, or
    // converted for the encoder) must fit; `into_decoder` checks only what
    // the decoder itself allocates beside them.
    limits
        .reserve(decoder.total_bytes().saturating_mul(2))
        .map_err(refused)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(refused)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// A decode that failed: over the memory limit, or not an image after all.
fn refused(e: ImageError) -> ApiError {
    match e {
        ImageError::Limits(_) => ApiError::new(
            ErrorCode::TooLarge,
            "decoding the image would take more memory than this server allows",
        ),
        other => ApiError::invalid(format!("the image cannot be decoded: {other}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        out
    }

    /// `jpeg` with an APP1 EXIF segment after SOI: orientation `o` and a
    /// GPS marker string that must not reach the thumbnail.
    fn with_exif(jpeg: &[u8], o: u16) -> Vec<u8> {
        // TIFF header (big-endian), one IFD entry: Orientation (0x0112),
        // SHORT, count 1, value o.
        let mut tiff =
            b"MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01".to_vec();
        tiff.extend_from_slice(&o.to_be_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        tiff.extend_from_slice(b"GPS 52.37N 4.89E");
        let mut app1 = b"Exif\x00\x00".to_vec();
        app1.extend_from_slice(&tiff);
        let len = (app1.len() + 2) as u16;
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xff, 0xe1]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    #[test]
    fn a_photo_gets_a_small_upright_jpeg_without_its_metadata() {
        // 1200×800 stored sideways (orientation 6: turn 90° clockwise).
        let file = with_exif(&jpeg(1200, 800), 6);
        assert!(file.windows(3).any(|w| w == b"GPS"));
        let r = render(&file, 1 << 30).unwrap();
        assert_eq!((r.width, r.height), (800, 1200));
        let t = &r.thumbnail;
        assert_eq!(
            (t.mime.as_str(), t.width, t.height),
            ("image/jpeg", 320, 480)
        );
        assert_eq!(t.size, r.bytes.len() as u64);
        assert!(!r.bytes.windows(4).any(|w| w == b"Exif"));
        assert!(!r.bytes.windows(3).any(|w| w == b"GPS"));
        let back = image::load_from_memory(&r.bytes).unwrap();
        assert_eq!((back.width(), back.height()), (320, 480));
    }

    #[test]
    fn transparency_keeps_png_and_small_images_keep_their_size() {
        let img = RgbaImage::from_pixel(40, 30, Rgba([10, 20, 30, 0]));
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let r = render(&png, 1 << 30).unwrap();
        let t = &r.thumbnail;
        assert_eq!((t.mime.as_str(), t.width, t.height), ("image/png", 40, 30));
    }

    #[test]
    fn a_decode_over_the_memory_limit_is_refused() {
        // 2000×2000 RGB takes 12 MB to decode.
        let e = render(&jpeg(2000, 2000), 4 * 1024 * 1024).err().unwrap();
        assert_eq!(e.code, ErrorCode::TooLarge);
    }

    #[test]
    fn a_header_without_an_image_behind_it_is_refused() {
        // (A cut JPEG still decodes, its missing part grey, as browsers
        // show it; a PNG's compressed data must be whole.)
        let img = RgbImage::from_fn(300, 300, |x, y| Rgb([x as u8, y as u8, 7]));
        let mut whole = Vec::new();
        img.write_to(&mut Cursor::new(&mut whole), image::ImageFormat::Png)
            .unwrap();
        let e = render(&whole[..whole.len() / 3], 1 << 30).err().unwrap();
        assert_eq!(e.code, ErrorCode::InvalidField);
    }
}
