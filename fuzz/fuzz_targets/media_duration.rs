//! How long audio or video plays, read from its container's first and last
//! bytes (Ogg, WebM / Matroska, MP4 / QuickTime).
//!
//! Input: one byte choosing the type the file was sniffed as, one saying
//! where its head ends and its tail starts (0: a short file, both are all
//! of it, as when the server reads a file under 1 MiB), then the file.
//! Corpus: fuzz/corpus/media_duration/, small files of each container.
#![no_main]

use hark_media_sniff::duration_ms;
use libfuzzer_sys::fuzz_target;

/// Every type `duration_ms` reads (the others have no duration).
const TYPES: &[&str] = &[
    "audio/ogg",
    "audio/opus",
    "audio/webm",
    "video/webm",
    "video/x-matroska",
    "video/mp4",
    "audio/mp4",
    "audio/m4a",
    "video/quicktime",
];

fuzz_target!(|data: &[u8]| {
    let [which, cut, file @ ..] = data else {
        return;
    };
    let mime = TYPES[usize::from(*which) % TYPES.len()];
    let (head, tail) = match *cut {
        0 => (file, file),
        cut => file.split_at(file.len() * usize::from(cut) / 256),
    };
    if let Some(ms) = duration_ms(mime, head, tail) {
        assert!(ms > 0 && ms < 7 * 24 * 3600 * 1000, "{ms} ms");
    }
});
