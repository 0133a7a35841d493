//! The WebSocket on the wire, below what libraries show: long messages in
//! fragments, and the socket over HTTP/2 (RFC 8441).

use crate::support::{spawn_app, Ws};
use hark_proto::{ClientFrame, Event, Pos, ServerFrame, UserId};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;

/// A message longer than 8 KiB (here a sync page of 30 KiB) goes out as
/// fragments of at most 8 KiB (docs/protocol.md "Frames"): a text frame
/// without FIN, continuations, the last with FIN; joined, one `synced`.
/// Read off the wire, since WebSocket libraries join fragments unseen.
#[tokio::test]
async fn a_long_message_comes_in_fragments_that_join_into_one() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// One frame: FIN, opcode, payload (the server's are unmasked).
    async fn read_frame(tcp: &mut TcpStream) -> (bool, u8, Vec<u8>) {
        let mut head = [0u8; 2];
        tcp.read_exact(&mut head).await.unwrap();
        assert_eq!(head[1] & 0x80, 0, "a server frame is never masked");
        let len = match head[1] & 0x7f {
            126 => u64::from(tcp.read_u16().await.unwrap()),
            127 => tcp.read_u64().await.unwrap(),
            n => u64::from(n),
        };
        let mut payload = vec![0u8; len as usize];
        tcp.read_exact(&mut payload).await.unwrap();
        (head[0] & 0x80 != 0, head[0] & 0x0f, payload)
    }

    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut a = app.ws(&alice).await;
    for i in 0..30 {
        a.send_ok(chat, &format!("long-{i}"), &"x".repeat(1000))
            .await;
    }

    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "GET /v1/ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Authorization: Bearer {}\r\n\r\n",
        bob.token
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    // `hello` is short: one whole frame.
    let (fin, opcode, hello) = read_frame(&mut tcp).await;
    assert!(fin && opcode == 1, "hello: fin {fin}, opcode {opcode}");
    assert!(String::from_utf8(hello).unwrap().contains("\"hello\""));

    // A masked client text frame asking for everything.
    let sync = serde_json::to_vec(&ClientFrame::Sync {
        id: 1,
        after: Pos(0),
        limit: None,
    })
    .unwrap();
    assert!(sync.len() < 126);
    let mask = [7u8, 1, 3, 9];
    let mut frame = vec![0x81, 0x80 | sync.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(sync.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    tcp.write_all(&frame).await.unwrap();

    let mut joined = Vec::new();
    let mut fragments = 0;
    loop {
        let (fin, opcode, payload) = read_frame(&mut tcp).await;
        let expected = if fragments == 0 { 1 } else { 0 };
        assert_eq!(opcode, expected, "fragment {fragments}: opcode");
        assert!(payload.len() <= 8 * 1024, "fragment of {}", payload.len());
        joined.extend(payload);
        fragments += 1;
        if fin {
            break;
        }
    }
    assert!(joined.len() > 30_000, "the page is {} bytes", joined.len());
    assert_eq!(fragments, joined.len().div_ceil(8 * 1024));
    let page: ServerFrame = serde_json::from_slice(&joined).unwrap();
    let ServerFrame::Synced { events, more, .. } = page else {
        panic!("expected synced, got {page:?}");
    };
    assert!(!more);
    let texts = events
        .iter()
        .filter(|e| matches!(&e.event, Event::Message(m) if m.text.len() == 1000))
        .count();
    assert_eq!(texts, 30);
}

/// The socket over HTTP/2 (RFC 8441): an extended `CONNECT` with
/// `:protocol websocket` is answered 200 and carries the same protocol,
/// authenticated by its bearer header. Without the WebSocket version it
/// is refused with a JSON error.
#[tokio::test]
async fn the_socket_opens_over_http2() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut a = app.ws(&alice).await;
    a.send_ok(chat, "over-h2", "hello over HTTP/2").await;

    let addr = app.base.trim_start_matches("http://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut h2 = h2_client(tcp).await;
    let uri = format!("http://{addr}/v1/ws");

    let mut refused = async |version, origin| {
        let answer = h2
            .send_request(ws_connect(&uri, &bob.token, version, origin))
            .await
            .unwrap();
        let status = answer.status();
        let body = axum::body::to_bytes(axum::body::Body::new(answer.into_body()), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        (
            status,
            body["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    assert_eq!(
        refused(None, None).await,
        (hyper::http::StatusCode::BAD_REQUEST, "invalid_field".into())
    );
    // A page of another origin may not open it; the server's own may,
    // named by the `:authority` (there is no `Host` header over HTTP/2).
    assert_eq!(
        refused(Some("13"), Some("http://elsewhere.example")).await,
        (
            hyper::http::StatusCode::FORBIDDEN,
            "origin_not_allowed".into()
        )
    );
    let origin = format!("http://{addr}");
    let mut ws = ws_over_h2(&mut h2, &uri, &bob.token, Some(&origin)).await;
    hello_then_sync(&mut ws, bob.user_id, "hello over HTTP/2").await;
}

/// The protocol on a socket opened by hand: `hello` for `user`, then a
/// sync from the start whose page holds the message `text`.
pub(crate) async fn hello_then_sync(ws: &mut Ws<TokioIo<Upgraded>>, user: UserId, text: &str) {
    let hello = ws.next_frame().await;
    assert!(
        matches!(hello, ServerFrame::Hello(ref h) if h.user.id == user),
        "{hello:?}"
    );
    let page = ws
        .request(ClientFrame::Sync {
            id: 1,
            after: Pos(0),
            limit: None,
        })
        .await;
    let ServerFrame::Synced { events, .. } = page else {
        panic!("expected synced, got {page:?}");
    };
    assert!(events
        .iter()
        .any(|e| matches!(&e.event, Event::Message(m) if m.text == text)));
}

/// An HTTP/2 client on `io` (cleartext or TLS with ALPN `h2`), once the
/// server's SETTINGS (extended CONNECT enabled) have arrived.
pub(crate) async fn h2_client<IO>(io: IO) -> hyper::client::conn::http2::SendRequest<String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::TokioExecutor;
    let (mut h2, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    h2.ready().await.unwrap();
    h2
}

/// The extended `CONNECT` that opens the socket at `uri`, with the
/// WebSocket version header when `version` is given and, as a browser
/// sends it, `origin` when given (HTTP/2 has no `Host`: the host is in
/// `uri`, the `:authority`).
pub(crate) fn ws_connect(
    uri: &str,
    token: &str,
    version: Option<&str>,
    origin: Option<&str>,
) -> hyper::http::Request<String> {
    let mut req = hyper::http::Request::builder()
        .method(hyper::http::Method::CONNECT)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .extension(hyper::ext::Protocol::from_static("websocket"));
    if let Some(version) = version {
        req = req.header("sec-websocket-version", version);
    }
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    req.body(String::new()).unwrap()
}

/// The socket at `uri` opened over the HTTP/2 connection `h2`, with
/// `origin` as a browser would send it: asserts the server's 200.
pub(crate) async fn ws_over_h2(
    h2: &mut hyper::client::conn::http2::SendRequest<String>,
    uri: &str,
    token: &str,
    origin: Option<&str>,
) -> Ws<TokioIo<Upgraded>> {
    use tokio_tungstenite::tungstenite::protocol::Role;
    let mut answer = h2
        .send_request(ws_connect(uri, token, Some("13"), origin))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let upgraded = hyper::upgrade::on(&mut answer).await.unwrap();
    Ws::wrap(
        tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Client,
            None,
        )
        .await,
    )
}
