//! The WebSocket frame decoder as a server socket runs it: tungstenite (the
//! implementation under axum's `WebSocketUpgrade`) reading a client's bytes
//! in the server role, with the limits the server sets, every text message
//! then decoded as a client frame.
//!
//! Input: one byte that says how the bytes arrive (bits 0–5: at most
//! 1 + that many bytes a read; bit 6: every other read would block, as on
//! a socket in the runtime), then the bytes of the stream.
//! Corpus: fuzz/corpus/ws_socket/, frames of every opcode (the text frames
//! are client frames of every type), fragmented and not, masked with a
//! zero key so that mutations of a payload are mutations of its text.
#![no_main]

use hark_fuzz::decode_client_frame;
use libfuzzer_sys::fuzz_target;
use std::io::{self, Read, Write};
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tungstenite::{Error, Message};

/// The limits `upgrade` in crates/hark-server/src/ws/mod.rs sets, with
/// `limits.max_frame_bytes` at its default (64 KiB,
/// crates/hark-config/src/lib.rs). Unmasked frames are refused (axum's
/// default).
fn server_config() -> WebSocketConfig {
    let max_frame_bytes = 64 * 1024;
    WebSocketConfig::default()
        .read_buffer_size(2 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(2 * 1024 * 1024)
        .max_message_size(Some(max_frame_bytes))
        .max_frame_size(Some(max_frame_bytes))
}

/// A client's side of the connection: its bytes to read, a few at a time;
/// what the server writes back (pongs, a close) is dropped.
struct Client<'a> {
    bytes: &'a [u8],
    chunk: usize,
    block_every_other: bool,
    blocked: bool,
}

impl Read for Client<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.block_every_other {
            self.blocked = !self.blocked;
            if self.blocked {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        let n = buf.len().min(self.chunk).min(self.bytes.len());
        let (now, later) = self.bytes.split_at(n);
        buf[..n].copy_from_slice(now);
        self.bytes = later;
        Ok(n)
    }
}

impl Write for Client<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&how, bytes)) = data.split_first() else {
        return;
    };
    let client = Client {
        bytes,
        chunk: 1 + usize::from(how & 0x3f),
        block_every_other: how & 0x40 != 0,
        blocked: false,
    };
    let mut socket = WebSocket::from_raw_socket(client, Role::Server, Some(server_config()));
    loop {
        match socket.read() {
            Ok(Message::Text(text)) => {
                assert!(text.len() <= 64 * 1024, "a message over the limit was read");
                if let Some(frame) = decode_client_frame(text.as_str()) {
                    let _ = (frame.id(), frame.kind());
                }
            }
            Ok(Message::Binary(bytes)) => {
                assert!(
                    bytes.len() <= 64 * 1024,
                    "a message over the limit was read"
                );
            }
            Ok(_) => {}
            // The runtime waits for the socket to be readable, then reads again.
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            // The server closes the connection on any other error.
            Err(_) => break,
        }
    }
});
