//! A local HTTP receiver for what the server sends out (Web Push
//! notifications, webhook calls): HTTP/1.1 with keep-alive, as much as the
//! server's client needs; every request is answered 201 at once, counted,
//! and its body handed to a callback.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// What is done with each request's body.
pub type OnBody = Arc<BodyFn>;
pub type BodyFn = dyn Fn(&[u8]) + Send + Sync;

/// A running receiver on 127.0.0.1.
pub struct HttpSink {
    pub port: u16,
    received: Arc<AtomicU64>,
}

impl HttpSink {
    /// On any free port.
    pub async fn start(on_body: Option<OnBody>) -> anyhow::Result<HttpSink> {
        Self::start_on(0, on_body).await
    }

    /// On `port` (0: any free one).
    pub async fn start_on(port: u16, on_body: Option<OnBody>) -> anyhow::Result<HttpSink> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        let received = Arc::new(AtomicU64::new(0));
        let count = received.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let count = count.clone();
                let on_body = on_body.clone();
                tokio::spawn(async move {
                    let _ = serve(socket, &count, on_body.as_deref()).await;
                });
            }
        });
        Ok(HttpSink { port, received })
    }

    /// Requests received so far.
    pub fn count(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

async fn serve(
    socket: tokio::net::TcpStream,
    count: &AtomicU64,
    on_body: Option<&BodyFn>,
) -> std::io::Result<()> {
    let _ = socket.set_nodelay(true);
    let (read, mut write) = socket.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        if let Some(f) = on_body {
            f(&body);
        }
        count.fetch_add(1, Ordering::Relaxed);
        write
            .write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n")
            .await?;
    }
}
