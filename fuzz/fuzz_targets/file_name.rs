//! The name a file is uploaded with (`name` of `POST /v1/media` and of a
//! resumable upload), made safe to keep and to show in a download's
//! `Content-Disposition`.
//!
//! Corpus: fuzz/corpus/file_name/, names with paths, controls, dots and
//! long multi-byte text.
#![no_main]

use hark_media_sniff::clean_name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let Some(clean) = clean_name(name) else {
        return;
    };
    assert!(!clean.is_empty() && clean.len() <= 255, "{clean:?}");
    assert!(!clean.contains(['/', '\\']), "a path: {clean:?}");
    assert!(!clean.chars().any(char::is_control), "a control: {clean:?}");
    assert!(!clean.starts_with('.'), "a leading dot: {clean:?}");
    assert_eq!(clean.trim(), clean, "spaces around it");
    // Clean already: cleaning it again changes nothing.
    assert_eq!(clean_name(&clean).as_deref(), Some(clean.as_str()));
});
