//! An upload's first bytes: what they say the file is, as each declared
//! kind, and an image's size read from its header (PNG, JPEG, GIF and WebP
//! through the `image` crate, the types through `infer`).
//!
//! Corpus: fuzz/corpus/media_sniff/, small real files of every accepted type.
#![no_main]

use hark_media_sniff::{sniff, HEAD_BYTES};
use hark_proto::MediaKind;
use libfuzzer_sys::fuzz_target;

/// `media.max_pixels`'s default (crates/hark-config/src/lib.rs).
const MAX_PIXELS: u64 = 50_000_000;

fuzz_target!(|data: &[u8]| {
    // The server sniffs at most the first HEAD_BYTES.
    let head = &data[..data.len().min(HEAD_BYTES)];
    for kind in [
        MediaKind::Image,
        MediaKind::Video,
        MediaKind::Audio,
        MediaKind::File,
    ] {
        let Ok(sniffed) = sniff(kind, head, MAX_PIXELS) else {
            continue;
        };
        assert!(!sniffed.mime.is_empty());
        match (kind, sniffed.width, sniffed.height) {
            (MediaKind::Image, Some(w), Some(h)) => {
                assert!(w > 0 && h > 0 && u64::from(w) * u64::from(h) <= MAX_PIXELS);
            }
            (MediaKind::Image, _, _) => panic!("an image without its size: {sniffed:?}"),
            (_, None, None) => {}
            _ => panic!("a size for what is not an image: {sniffed:?}"),
        }
    }
});
