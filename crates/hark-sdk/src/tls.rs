//! Which certificate authorities the client trusts for `https://` and
//! `wss://`: the system's roots (the default), plus a CA of the operator's
//! own (a server with a certificate from a private CA, or a test's).

use crate::{Error, Result};
use std::sync::Arc;

/// The roots a client verifies the server's certificate against.
#[derive(Clone)]
pub struct Tls {
    pub(crate) config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

impl Tls {
    /// The system's roots and the CA certificates in `pem` (one or more).
    pub fn with_ca_pem(pem: &[u8]) -> Result<Self> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;
        let mut roots = system_roots();
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| Error::Tls(format!("reading the CA file: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| Error::Tls(format!("a CA certificate: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(Error::Tls("no certificate in the CA file".into()));
        }
        Ok(Self::from_roots(roots))
    }

    /// The CA certificates of the PEM file at `path`, with the system's.
    pub fn with_ca_file(path: &std::path::Path) -> Result<Self> {
        let pem = std::fs::read(path)
            .map_err(|e| Error::Tls(format!("reading {}: {e}", path.display())))?;
        Self::with_ca_pem(&pem)
    }

    fn from_roots(roots: rustls::RootCertStore) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|_| unreachable!("ring supports the default versions"))
            .with_root_certificates(roots)
            .with_no_client_auth();
        // HTTP/1.1 for the API and for the WebSocket upgrade alike.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Tls {
            config: Arc::new(config),
        }
    }
}

/// The system's trusted roots; none when it has none (a minimal container).
fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    roots
}
