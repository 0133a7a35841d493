//! The server's WebSocket (this gateway's and the SignalR hub's): the
//! upgrade, and text sent in fragments.
//!
//! The upgrade is done here rather than by axum's `WebSocketUpgrade`
//! because axum's socket sends whole messages only, and tungstenite's
//! write buffer keeps the capacity of the largest frame it ever wrote for
//! as long as the connection lives: after a catch-up every connected
//! device held its largest sync page (measured ~30 KiB per device, up to
//! 512 KiB). A long text goes out here as fragments of [`FRAGMENT`] bytes
//! (RFC 6455 §5.4; every client reassembles them into one message), so
//! the buffer never grows past one fragment.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Version};
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::SinkExt;
use hyper_util::rt::TokioIo;
use std::future::Future;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

pub(crate) use tokio_tungstenite::tungstenite::protocol::CloseFrame;
pub(crate) use tokio_tungstenite::tungstenite::{Error, Message};

/// An upgraded connection.
pub(crate) type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;
pub(crate) type Sink = SplitSink<Socket, Message>;
pub(crate) type Stream = SplitStream<Socket>;

/// The largest frame the server writes. A longer text message is sent as
/// several frames of this size; the write buffer holds one at a time.
pub(crate) const FRAGMENT: usize = 8 * 1024;

/// A request the server will switch to the WebSocket protocol: HTTP/1.1
/// `GET` with `Upgrade: websocket` (answered 101), or HTTP/2's extended
/// `CONNECT` with `:protocol websocket` (RFC 8441, answered 200).
pub(crate) struct Upgrade {
    /// `Sec-WebSocket-Key` (HTTP/1.1 only).
    key: Option<HeaderValue>,
    on_upgrade: hyper::upgrade::OnUpgrade,
    config: WebSocketConfig,
}

impl Upgrade {
    /// The request's upgrade, with the buffers and size limits of every
    /// socket the server serves; a frame or message over `limits.max_frame_bytes`
    /// fails the read with [`Error::Capacity`].
    pub(crate) fn from_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Upgrade> {
        let max_frame_bytes = state.config.limits.max_frame_bytes;
        let refused = |why: &str| ApiError::invalid(format!("not a WebSocket upgrade: {why}"));
        let key = if parts.version <= Version::HTTP_11 {
            if parts.method != Method::GET {
                return Err(refused("the request must be GET"));
            }
            if !header_has_token(&parts.headers, header::CONNECTION, "upgrade") {
                return Err(refused("`Connection` must include `upgrade`"));
            }
            if !header_is(&parts.headers, header::UPGRADE, "websocket") {
                return Err(refused("`Upgrade` must be `websocket`"));
            }
            let key = parts
                .headers
                .get(header::SEC_WEBSOCKET_KEY)
                .ok_or_else(|| refused("`Sec-WebSocket-Key` is missing"))?;
            Some(key.clone())
        } else {
            if parts.method != Method::CONNECT {
                return Err(refused("over HTTP/2 the request must be CONNECT"));
            }
            let protocol = parts.extensions.get::<hyper::ext::Protocol>();
            if protocol.is_none_or(|p| p.as_str() != "websocket") {
                return Err(refused("`:protocol` must be `websocket`"));
            }
            None
        };
        if !header_is(&parts.headers, header::SEC_WEBSOCKET_VERSION, "13") {
            return Err(refused("`Sec-WebSocket-Version` must be 13"));
        }
        let on_upgrade = parts
            .extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .ok_or_else(|| refused("this connection cannot be upgraded"))?;
        let config = WebSocketConfig::default()
            // Small buffers keep an idle socket cheap (the defaults cost
            // ~133 KiB). Frames are mostly far below 2 KiB; a larger one
            // takes a few reads.
            .read_buffer_size(2 * 1024)
            // Each frame is written at once: the buffer holds one frame
            // (at most a fragment) and what the socket did not yet take.
            .write_buffer_size(0)
            .max_write_buffer_size(2 * 1024 * 1024)
            .max_message_size(Some(max_frame_bytes))
            .max_frame_size(Some(max_frame_bytes));
        Ok(Upgrade {
            key,
            on_upgrade,
            config,
        })
    }

    /// The answer that switches protocols; `serve` runs on the upgraded
    /// socket in a task of its own once the client has it.
    pub(crate) fn on_upgrade<F, Fut>(self, serve: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Upgrade {
            key,
            on_upgrade,
            config,
        } = self;
        // The connection logs under its upgrade request's span (its id).
        let span = tracing::Span::current();
        let connection = async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let io = TokioIo::new(upgraded);
                    let socket =
                        WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                    serve(socket).await;
                }
                Err(e) => tracing::debug!(error = %e, "the upgrade did not complete"),
            }
        };
        tokio::spawn(tracing::Instrument::instrument(connection, span));
        let mut response = Response::new(Body::empty());
        if let Some(key) = key {
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let headers = response.headers_mut();
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            let accept = derive_accept_key(key.as_bytes());
            if let Ok(accept) = HeaderValue::from_str(&accept) {
                headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
            }
        }
        response
    }
}

fn header_is(headers: &HeaderMap, name: HeaderName, value: &str) -> bool {
    headers
        .get(name)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
}

/// Whether a comma-separated header (`Connection: keep-alive, Upgrade`)
/// holds `token`.
fn header_has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Queues `text` as one text message: one frame up to [`FRAGMENT`] bytes,
/// fragments beyond. The fragments share `text`'s allocation.
pub(crate) async fn feed_text(sink: &mut Sink, text: String) -> Result<(), Error> {
    if text.len() <= FRAGMENT {
        return sink.feed(Message::Text(text.into())).await;
    }
    for frame in fragments(text) {
        sink.feed(frame).await?;
    }
    Ok(())
}

/// Sends `text` as one text message (see [`feed_text`]) and flushes.
pub(crate) async fn send_text(sink: &mut Sink, text: String) -> Result<(), Error> {
    feed_text(sink, text).await?;
    sink.flush().await
}

/// The frames of one text message.
fn fragments(text: String) -> Vec<Message> {
    if text.len() <= FRAGMENT {
        return vec![Message::Text(text.into())];
    }
    // A fragment may end inside a character: the receiver checks UTF-8 on
    // the whole message (RFC 6455 §8.1).
    let bytes = Bytes::from(text);
    let mut frames = Vec::with_capacity(bytes.len().div_ceil(FRAGMENT));
    let mut start = 0;
    while start < bytes.len() {
        let end = (start + FRAGMENT).min(bytes.len());
        let opcode = if start == 0 {
            Data::Text
        } else {
            Data::Continue
        };
        let frame = Frame::message(
            bytes.slice(start..end),
            OpCode::Data(opcode),
            end == bytes.len(),
        );
        frames.push(Message::Frame(frame));
        start = end;
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_frame() {
        let frames = fragments("x".repeat(FRAGMENT));
        assert_eq!(frames.len(), 1);
        assert!(matches!(&frames[0], Message::Text(t) if t.len() == FRAGMENT));
    }

    #[test]
    fn long_text_is_fragments_that_join_into_it() {
        // Multi-byte characters, so that fragment ends fall inside them.
        let text = "héllo wörld ✓ ".repeat(2_000);
        let frames = fragments(text.clone());
        assert_eq!(frames.len(), text.len().div_ceil(FRAGMENT));
        let mut joined = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            let Message::Frame(frame) = frame else {
                panic!("frame {i} is not a raw frame");
            };
            let header = frame.header();
            let expected = if i == 0 { Data::Text } else { Data::Continue };
            assert_eq!(header.opcode, OpCode::Data(expected), "frame {i}");
            assert_eq!(header.is_final, i == frames.len() - 1, "frame {i}");
            assert!(frame.payload().len() <= FRAGMENT);
            joined.extend_from_slice(frame.payload());
        }
        assert_eq!(joined, text.as_bytes());
    }
}
