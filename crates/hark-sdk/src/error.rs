//! The SDK's one error type, keeping the server's stable [`ErrorCode`] when it sent one.

use hark_proto::ErrorCode;

/// Everything that can go wrong talking to a Hark server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server refused the request with a stable error code (an HTTP error
    /// body or a WebSocket error frame). `status` is 0 for WebSocket errors.
    #[error("{}: {message}", code.as_str())]
    Server {
        status: u16,
        code: ErrorCode,
        message: String,
    },
    /// The server answered with a status and a body that is not an error body.
    #[error("unexpected HTTP status {status}: {body}")]
    Status { status: u16, body: String },
    /// The HTTP request failed below the API (connection refused, timeout…).
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// The WebSocket failed (handshake, I/O, protocol).
    #[error("websocket: {0}")]
    WebSocket(#[from] Box<tokio_tungstenite::tungstenite::Error>),
    /// A body or frame could not be encoded or decoded.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// The URL given is not an http(s) or ws(s) URL.
    #[error("invalid url {0:?}")]
    InvalidUrl(String),
    /// The route needs a token and the client has none.
    #[error("not logged in")]
    NoToken,
    /// The TLS settings could not be made (a CA file that cannot be read).
    #[error("tls: {0}")]
    Tls(String),
    /// The server sent something the protocol does not allow here.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A local file could not be read or written (uploads, downloads).
    #[error("file: {0}")]
    File(#[from] std::io::Error),
    /// The connection was closed (by [`crate::Connection::close`], because every
    /// handle was dropped, or for good by the server) before the request finished.
    #[error("connection closed")]
    Closed,
    /// End-to-end encryption failed (the crypto library or its store).
    #[error("encryption: {0}")]
    Crypto(String),
}

impl Error {
    /// The server's error code, when the server sent one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn ws(e: tokio_tungstenite::tungstenite::Error) -> Self {
        Error::WebSocket(Box::new(e))
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
