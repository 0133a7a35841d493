//! TLS in Hark itself, for a server with no proxy in front (the `[tls]`
//! table): rustls (ring, no OpenSSL), HTTP/2 and HTTP/1.1 by ALPN, the
//! WebSocket over either (over HTTP/2 as an extended CONNECT, RFC 8441, as
//! a browser whose page came over h2 opens it). The certificate and key
//! are read from PEM files and read again when the files change, without a
//! restart: new connections get the new certificate, open ones keep theirs. A renewal that cannot be read
//! (half-written, a key that does not match) is logged and the old
//! certificate stays.
//!
//! Handshakes run in tasks of their own, so a slow or silent client never
//! holds up the accept loop; the finished ones reach axum through
//! [`TlsListener`].

use crate::config::Tls;
use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client has to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for axum to take them.
const READY_QUEUE: usize = 256;

/// The certificate in use, swapped when its files change.
#[derive(Debug)]
pub struct Certificate {
    current: RwLock<Arc<CertifiedKey>>,
    cert: PathBuf,
    key: PathBuf,
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c))
    }
}

/// Reads a certificate chain and its private key from PEM files.
fn load(cert: &Path, key: &Path) -> anyhow::Result<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading the certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading the certificate {}", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in {}", cert.display());
    let private = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key {}", key.display()))?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, private, &provider).with_context(|| {
        format!(
            "{} and {} do not go together",
            cert.display(),
            key.display()
        )
    })?;
    Ok(certified)
}

impl Certificate {
    /// Loads the files the configuration names; `None` without `[tls]`.
    pub fn from_config(tls: &Tls) -> anyhow::Result<Option<Arc<Certificate>>> {
        let (Some(cert), Some(key)) = (&tls.cert, &tls.key) else {
            return Ok(None);
        };
        let current = load(cert, key)?;
        Ok(Some(Arc::new(Certificate {
            current: RwLock::new(Arc::new(current)),
            cert: cert.clone(),
            key: key.clone(),
        })))
    }

    /// The acceptor of new connections: this certificate, HTTP/2 or 1.1.
    fn acceptor(self: &Arc<Self>) -> TlsAcceptor {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| unreachable!("ring supports the default versions"))
        .with_no_client_auth()
        .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    }

    /// When the files last changed (the later of the two).
    fn stamp(&self) -> Option<(SystemTime, u64)> {
        let a = std::fs::metadata(&self.cert).ok()?;
        let b = std::fs::metadata(&self.key).ok()?;
        Some((
            a.modified().ok()?.max(b.modified().ok()?),
            a.len() + b.len(),
        ))
    }

    /// Reads the files again when they change, until `stop` resolves.
    pub async fn watch(
        self: Arc<Self>,
        every: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        let mut seen = self.stamp();
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = &mut stop => return,
            }
            let now = self.stamp();
            if now.is_none() || now == seen {
                continue;
            }
            match load(&self.cert, &self.key) {
                Ok(fresh) => {
                    if let Ok(mut current) = self.current.write() {
                        *current = Arc::new(fresh);
                    }
                    seen = now;
                    tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                }
                // Perhaps written halfway: tried again at the next look.
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "TLS certificate not reloaded; the old one stays"
                    );
                }
            }
        }
    }
}

/// Accepted connections after their TLS handshake, for `axum::serve`.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl TlsListener {
    /// Accepts on `listener` and runs each handshake in a task of its own.
    pub fn new(listener: TcpListener, certificate: &Arc<Certificate>) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let acceptor = certificate.acceptor();
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little.
                        tracing::warn!(error = %e, "accepting a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let _ = tcp.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, addr })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept task is gone: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
