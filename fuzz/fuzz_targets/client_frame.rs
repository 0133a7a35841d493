//! WebSocket text frames, as JSON: a client's frame decoded as the server
//! decodes it, and a server's frame decoded as the SDK does.
//!
//! Corpus: fuzz/corpus/client_frame/, a valid frame of every type of both.
#![no_main]

use hark_fuzz::{decode_client_frame, round_trip};
use hark_proto::{ClientFrame, ServerFrame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A text frame is UTF-8 (tungstenite refuses any other).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(frame) = decode_client_frame(text) {
        // What the connection asks of every frame before handling it.
        let _ = (frame.id(), frame.kind());
        round_trip::<ClientFrame>(&frame);
    }
    // The SDK's reader (crates/hark-sdk/src/actor.rs).
    if let Ok(frame) = serde_json::from_str::<ServerFrame>(text) {
        round_trip::<ServerFrame>(&frame);
    }
});
