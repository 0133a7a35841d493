//! Thumbnails of photos in end-to-end encrypted chats. The server cannot
//! read such a file, so the sending device draws a small copy and puts it
//! inside the message's content (`info["hark.thumbnail"]`), encrypted with
//! the message: receivers show it before, or instead of, downloading the
//! file. docs/protocol.md ("Encrypted chats", Thumbnails) is the contract:
//! a JPEG (a PNG for a picture with transparency) of at most
//! [`MAX_SIDE`] pixels on its longer side and at most [`MAX_BYTES`] bytes,
//! drawn from the decoded pixels turned upright, so no metadata of the
//! original (EXIF, GPS) survives in it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use serde_json::{json, Value};
use std::io::Cursor;

/// At most this many pixels on a thumbnail's longer side.
pub(crate) const MAX_SIDE: u32 = 128;
/// At most this many bytes of image (before base64).
pub(crate) const MAX_BYTES: usize = 8192;
/// The most memory decoding a photo may take here (a decompression bomb
/// gets no thumbnail, never an out-of-memory).
const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;
/// JPEG qualities tried in turn until the thumbnail fits [`MAX_BYTES`].
const QUALITIES: [u8; 5] = [80, 65, 50, 35, 20];

/// A thumbnail as it travels in a content, or as a receiver read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedThumbnail {
    /// `image/jpeg` or `image/png`.
    pub mimetype: &'static str,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

/// What drawing a photo's thumbnail gave: the photo's upright size and its
/// thumbnail.
#[derive(Debug, Clone)]
pub(crate) struct Picture {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) thumbnail: SealedThumbnail,
}

/// Draws the thumbnail of `bytes` when they are a photo this library can
/// decode (JPEG, PNG, GIF, WebP); `None` for anything else, or when no
/// thumbnail fits [`MAX_BYTES`].
pub(crate) fn draw(bytes: &[u8]) -> Option<Picture> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()?;
    reader.format()?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().ok()?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).ok()?;
    image.apply_orientation(orientation);
    let (width, height) = (image.width(), image.height());
    let small = if width <= MAX_SIDE && height <= MAX_SIDE {
        image
    } else {
        image.thumbnail(MAX_SIDE, MAX_SIDE)
    };
    let transparent = small.color().has_alpha() && small.to_rgba8().pixels().any(|p| p[3] < 255);
    let thumbnail = if transparent {
        png(&small).or_else(|| jpeg(&small))
    } else {
        jpeg(&small)
    }?;
    Some(Picture {
        width,
        height,
        thumbnail,
    })
}

fn png(small: &DynamicImage) -> Option<SealedThumbnail> {
    let mut bytes = Vec::new();
    small
        .to_rgba8()
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .ok()?;
    (bytes.len() <= MAX_BYTES).then(|| SealedThumbnail {
        mimetype: "image/png",
        width: small.width(),
        height: small.height(),
        bytes,
    })
}

/// A JPEG of `small`, transparent parts on white (as the browser draws
/// them), at the best quality that fits.
fn jpeg(small: &DynamicImage) -> Option<SealedThumbnail> {
    let rgb = if small.color().has_alpha() {
        let rgba = small.to_rgba8();
        image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
            let [r, g, b, a] = rgba.get_pixel(x, y).0;
            let over_white =
                |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
            image::Rgb([over_white(r), over_white(g), over_white(b)])
        })
    } else {
        small.to_rgb8()
    };
    QUALITIES.iter().find_map(|&quality| {
        let mut bytes = Vec::new();
        JpegEncoder::new_with_quality(&mut bytes, quality)
            .encode_image(&rgb)
            .ok()?;
        (bytes.len() <= MAX_BYTES).then(|| SealedThumbnail {
            mimetype: "image/jpeg",
            width: rgb.width(),
            height: rgb.height(),
            bytes,
        })
    })
}

impl SealedThumbnail {
    /// As it goes into a content's `info["hark.thumbnail"]`.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "mimetype": self.mimetype,
            "w": self.width,
            "h": self.height,
            "data": STANDARD.encode(&self.bytes),
        })
    }
}

/// The thumbnail a decrypted content carries (`info["hark.thumbnail"]`),
/// if it is one a receiver may show: a JPEG or PNG that decodes as that
/// format, at most [`MAX_SIDE`] pixels a side and [`MAX_BYTES`] bytes.
/// Anything else is ignored (`None`), as the protocol says.
pub fn sealed_thumbnail(content: &Value) -> Option<SealedThumbnail> {
    let t = &content["info"]["hark.thumbnail"];
    let (mimetype, format) = match t["mimetype"].as_str()? {
        "image/jpeg" => ("image/jpeg", ImageFormat::Jpeg),
        "image/png" => ("image/png", ImageFormat::Png),
        _ => return None,
    };
    let data = t["data"].as_str()?;
    // Base64 of MAX_BYTES is at most 4/3 as long: refuse more unread.
    if data.len() > MAX_BYTES.div_ceil(3) * 4 {
        return None;
    }
    let bytes = STANDARD.decode(data).ok()?;
    if bytes.len() > MAX_BYTES {
        return None;
    }
    let decoder = ImageReader::with_format(Cursor::new(&bytes), format)
        .into_decoder()
        .ok()?;
    let (width, height) = decoder.dimensions();
    if width > MAX_SIDE || height > MAX_SIDE {
        return None;
    }
    DynamicImage::from_decoder(decoder).ok()?;
    Some(SealedThumbnail {
        mimetype,
        width,
        height,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    fn noisy_jpeg(w: u32, h: u32) -> Vec<u8> {
        // Noise compresses badly: the first qualities cannot fit.
        let img = RgbImage::from_fn(w, h, |x, y| {
            let v = x
                .wrapping_mul(2_654_435_761)
                .wrapping_add(y.wrapping_mul(40_503));
            Rgb([(v >> 3) as u8, (v >> 11) as u8, (v >> 19) as u8])
        });
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 95)
            .encode_image(&img)
            .unwrap();
        out
    }

    fn content_with(t: &SealedThumbnail) -> Value {
        json!({"info": {"hark.thumbnail": t.to_json()}})
    }

    #[test]
    fn a_photo_gets_a_small_jpeg_that_fits_and_reads_back() {
        let p = draw(&noisy_jpeg(1200, 800)).unwrap();
        assert_eq!((p.width, p.height), (1200, 800));
        let t = &p.thumbnail;
        assert_eq!((t.mimetype, t.width, t.height), ("image/jpeg", 128, 85));
        assert!(t.bytes.len() <= MAX_BYTES, "{} bytes", t.bytes.len());
        assert_eq!(sealed_thumbnail(&content_with(t)).as_ref(), Some(t));
    }

    #[test]
    fn transparency_keeps_png_and_a_small_picture_its_size() {
        let img = RgbaImage::from_pixel(40, 30, Rgba([10, 20, 30, 0]));
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let t = draw(&png).unwrap().thumbnail;
        assert_eq!((t.mimetype, t.width, t.height), ("image/png", 40, 30));
    }

    #[test]
    fn an_opaque_picture_with_an_alpha_channel_gets_a_jpeg_on_white() {
        // A screenshot: RGBA, every pixel opaque.
        let img = RgbaImage::from_pixel(300, 200, Rgba([200, 10, 10, 255]));
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let t = draw(&png).unwrap().thumbnail;
        assert_eq!((t.mimetype, t.width, t.height), ("image/jpeg", 128, 85));
        // Transparent parts of a JPEG thumbnail come out white, not black.
        let clear = DynamicImage::ImageRgba8(RgbaImage::from_pixel(8, 8, Rgba([0, 0, 0, 0])));
        let t = jpeg(&clear).unwrap();
        let back = image::load_from_memory(&t.bytes).unwrap().to_rgb8();
        assert!(
            back.pixels().all(|p| p.0.iter().all(|&c| c > 240)),
            "{:?}",
            back.get_pixel(0, 0)
        );
    }

    #[test]
    fn what_is_not_a_photo_gets_none() {
        assert!(draw(b"%PDF-1.7 not a picture").is_none());
        let whole = noisy_jpeg(300, 300);
        assert!(draw(&whole[..4]).is_none());
    }

    #[test]
    fn a_receiver_ignores_thumbnails_outside_the_contract() {
        let good = draw(&noisy_jpeg(600, 600)).unwrap().thumbnail;
        let mut c = content_with(&good);
        c["info"]["hark.thumbnail"]["mimetype"] = json!("image/svg+xml");
        assert!(sealed_thumbnail(&c).is_none(), "another type");
        let mut c = content_with(&good);
        c["info"]["hark.thumbnail"]["data"] = json!("not base64!");
        assert!(sealed_thumbnail(&c).is_none(), "not base64");
        let big = SealedThumbnail {
            bytes: noisy_jpeg(120, 120).repeat(3),
            ..good.clone()
        };
        assert!(big.bytes.len() > MAX_BYTES);
        assert!(sealed_thumbnail(&content_with(&big)).is_none(), "too big");
        let smooth = RgbImage::from_fn(300, 20, |x, _| Rgb([x as u8, 0, 0]));
        let mut wide_jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut wide_jpeg, 50)
            .encode_image(&smooth)
            .unwrap();
        let wide = SealedThumbnail {
            bytes: wide_jpeg,
            ..good.clone()
        };
        assert!(wide.bytes.len() <= MAX_BYTES);
        assert!(sealed_thumbnail(&content_with(&wide)).is_none(), "too wide");
        let png_as_jpeg = SealedThumbnail {
            mimetype: "image/png",
            ..good
        };
        assert!(
            sealed_thumbnail(&content_with(&png_as_jpeg)).is_none(),
            "not what it says"
        );
        assert!(sealed_thumbnail(&json!({"info": {}})).is_none());
    }
}
