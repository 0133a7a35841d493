//! Profile photos: an image the user uploaded, cut to the square at its
//! centre and kept in two sizes (`photos/<version>/small` and `/large` in
//! the media store, JPEG). Drawn from the decoded pixels like thumbnails
//! (the same decode, memory cap and one decode per core), so nothing of
//! the original's metadata survives; transparency is laid on white.
//! A new photo is a new version: the old images are removed once the
//! user's row names the new one.

use super::{thumbnail, MediaFiles};
use crate::error::{ApiError, ApiResult};
use hark_proto::{ErrorCode, MediaId, MediaKind, PhotoSize};
use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, RgbImage};
use object_store::path::Path;

/// JPEG quality of photos.
const JPEG_QUALITY: u8 = 85;

/// The sizes kept.
const SIZES: [PhotoSize; 2] = [PhotoSize::Small, PhotoSize::Large];

/// Where one size of a photo version is kept.
pub(crate) fn path(version: &str, size: PhotoSize) -> Path {
    Path::from(format!("photos/{version}/{}", size.name()))
}

/// Whether `version` has the shape the server gives versions (so a made-up
/// one never reaches the store's paths).
pub(crate) fn is_version(version: &str) -> bool {
    MediaId(version.to_owned()).is_valid()
}

/// Draws and stores the photo made from the stored upload `id` (of kind
/// `kind`); its new version.
pub(crate) async fn make(
    files: &MediaFiles,
    id: &MediaId,
    kind: MediaKind,
    max_alloc: u64,
) -> ApiResult<String> {
    if kind != MediaKind::Image {
        return Err(ApiError::invalid("media_id: a photo must be an image"));
    }
    let _turn = files.decoders.acquire().await.map_err(ApiError::internal)?;
    let file = files
        .store
        .get(&MediaFiles::path(id))
        .await
        .map_err(|e| match e {
            object_store::Error::NotFound { .. } => {
                ApiError::new(ErrorCode::NotFound, "no such upload")
            }
            other => ApiError::internal(other),
        })?
        .bytes()
        .await
        .map_err(ApiError::internal)?;
    let drawn = tokio::task::spawn_blocking(move || draw(&file, max_alloc))
        .await
        .map_err(ApiError::internal)??;
    let version = super::new_id().0;
    for (size, bytes) in SIZES.into_iter().zip(drawn) {
        files
            .store
            .put(&path(&version, size), bytes.into())
            .await
            .map_err(ApiError::internal)?;
    }
    Ok(version)
}

/// Removes a version's images, whichever exist.
pub(crate) async fn remove(files: &MediaFiles, version: &str) -> object_store::Result<()> {
    for size in SIZES {
        files.delete(&path(version, size)).await?;
    }
    Ok(())
}

/// One size of a version.
pub(crate) async fn read(
    files: &MediaFiles,
    version: &str,
    size: PhotoSize,
) -> ApiResult<bytes::Bytes> {
    match files.store.get(&path(version, size)).await {
        Ok(got) => got.bytes().await.map_err(ApiError::internal),
        Err(object_store::Error::NotFound { .. }) => {
            Err(ApiError::new(ErrorCode::NotFound, "no photo"))
        }
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// The JPEGs of each of [`SIZES`], from an image file. CPU-bound.
fn draw(file: &[u8], max_alloc: u64) -> ApiResult<Vec<Vec<u8>>> {
    let image = thumbnail::decode(file, max_alloc)?;
    let side = image.width().min(image.height());
    if side == 0 {
        return Err(ApiError::invalid("media_id: the image is empty"));
    }
    let square = image.crop_imm(
        (image.width() - side) / 2,
        (image.height() - side) / 2,
        side,
        side,
    );
    let square = on_white(&square);
    SIZES
        .into_iter()
        .map(|size| {
            let target = size.side().min(side);
            let scaled = if target == side {
                square.clone()
            } else {
                image::imageops::resize(&square, target, target, FilterType::Lanczos3)
            };
            let mut out = Vec::new();
            JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
                .encode_image(&scaled)
                .map_err(ApiError::internal)?;
            Ok(out)
        })
        .collect()
}

/// The image's pixels laid on white (JPEG has no transparency).
fn on_white(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = u16::from(p[3]);
        let over = |c: u8| ((u16::from(c) * a + 255 * (255 - a)) / 255) as u8;
        image::Rgb([over(p[0]), over(p[1]), over(p[2])])
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use image::{Rgba, RgbaImage};
    use std::io::Cursor;

    fn png(w: u32, h: u32) -> Vec<u8> {
        // Left third red, the rest blue, transparent in the top rows.
        let img = RgbaImage::from_fn(w, h, |x, y| {
            let alpha = if y < 2 { 0 } else { 255 };
            if x < w / 3 {
                Rgba([255, 0, 0, alpha])
            } else {
                Rgba([0, 0, 255, alpha])
            }
        });
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn a_wide_image_becomes_its_centre_square_in_two_sizes() {
        // 900×300: the centre square is x 300..600, all blue.
        let drawn = draw(&png(900, 300), 1 << 30).unwrap();
        let small = image::load_from_memory(&drawn[0]).unwrap().to_rgb8();
        let large = image::load_from_memory(&drawn[1]).unwrap().to_rgb8();
        assert_eq!(small.dimensions(), (128, 128));
        // Smaller than 640: kept at its own side.
        assert_eq!(large.dimensions(), (300, 300));
        let p = large.get_pixel(150, 150).0;
        assert!(p[2] > 200 && p[0] < 40, "{p:?}");
        // Transparent rows come out white, not black.
        let top = large.get_pixel(150, 0).0;
        assert!(top.iter().all(|&c| c > 200), "{top:?}");
    }

    #[test]
    fn a_large_image_is_scaled_down() {
        let drawn = draw(&png(1000, 1500), 1 << 30).unwrap();
        let large = image::load_from_memory(&drawn[1]).unwrap();
        assert_eq!((large.width(), large.height()), (640, 640));
    }

    #[test]
    fn versions_are_checked_before_they_name_a_path() {
        assert!(is_version(&"a".repeat(32)));
        assert!(!is_version("../files/x"));
        assert!(!is_version(""));
    }
}
