//! TLS to PostgreSQL: libpq's `sslmode` and `sslrootcert` read from the
//! database URL, and the rustls connector (ring provider) that enforces
//! them.
//!
//! tokio-postgres parses `sslmode=disable|prefer|require` itself but
//! refuses `verify-ca`, `verify-full` and `sslrootcert`, and leaves
//! certificate checks to the connector. So both parameters are taken out
//! of the URL here, tokio-postgres is told only whether TLS is off, tried
//! or required, and the connector's certificate verifier carries the rest:
//!
//! | `sslmode` | TLS | certificate chain | host name |
//! |---|---|---|---|
//! | `disable` | never | – | – |
//! | `prefer` (the default, as in libpq) | if the server offers it | only with `sslrootcert` | no |
//! | `require` | always | only with `sslrootcert` | no |
//! | `verify-ca` | always | yes, against `sslrootcert` | no |
//! | `verify-full` | always | yes, against `sslrootcert` or the system roots | yes |
//!
//! Where libpq would read `~/.postgresql/root.crt`, Hark reads nothing
//! implicitly: a service user has no home worth trusting.
//! `verify-ca` without `sslrootcert` is refused: checked against the
//! public roots, any certificate any public CA issued for any name would
//! pass, which is no check at all (libpq refuses `sslrootcert=system`
//! below `verify-full` for the same reason). `sslmode=allow` is refused:
//! tokio-postgres cannot start in plain text and upgrade. Over a Unix
//! socket there is no TLS whatever the mode, as in libpq.

use super::tx::Db;
use super::PostgresStore;
use crate::{StoreError, StoreResult};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::Path;
use std::sync::Arc;
use tokio_postgres::config::SslMode as Negotiate;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`, the five values Hark supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> StoreResult<Self> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err(StoreError::Config(
                    "sslmode=allow is not supported (the client cannot start in plain text \
                     and upgrade); use prefer, require or disable"
                        .into(),
                ))
            }
            other => {
                return Err(StoreError::Config(format!(
                    "sslmode={other:?}: use disable, prefer, require, verify-ca or verify-full"
                )))
            }
        })
    }

    /// What tokio-postgres is told: whether to ask for TLS and whether a
    /// server without it is refused. The checks are the connector's.
    fn negotiate(self) -> Negotiate {
        match self {
            SslMode::Disable => Negotiate::Disable,
            SslMode::Prefer => Negotiate::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Negotiate::Require,
        }
    }
}

/// Where trusted roots come from: `sslrootcert=<file>` or `sslrootcert=system`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RootCert {
    File(String),
    System,
}

/// A database URL's TLS settings, taken out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TlsParams {
    /// The URL without `sslmode` and `sslrootcert`, for tokio-postgres.
    rest: String,
    mode: SslMode,
    root: Option<RootCert>,
}

/// Reads a database URL (`postgres://…?sslmode=…&sslrootcert=…`, or
/// libpq's `key=value` form) into a connection config and the TLS
/// connector its `sslmode` calls for.
pub(crate) fn connection(url: &str) -> StoreResult<(tokio_postgres::Config, MakeRustlsConnect)> {
    let params = split(url)?;
    let mut config: tokio_postgres::Config = params
        .rest
        .parse()
        // tokio-postgres's parse errors name the bad part, never the whole
        // URL, so no password reaches the message.
        .map_err(|e| StoreError::Config(format!("bad database URL: {}", causes(&e))))?;
    config.ssl_mode(params.mode.negotiate());
    // libpq never uses TLS over a Unix socket (the server offers none
    // there), whatever sslmode says; tokio-postgres would ask, and under
    // require fail.
    #[cfg(unix)]
    if !config.get_hosts().is_empty()
        && config
            .get_hosts()
            .iter()
            .all(|h| matches!(h, tokio_postgres::config::Host::Unix(_)))
    {
        config.ssl_mode(Negotiate::Disable);
    }
    let tls = connector(params.mode, params.root.as_ref())?;
    Ok((config, tls))
}

/// A failed connection as `Unavailable`, with every cause in the message:
/// tokio-postgres's own text for a TLS failure is only "error performing
/// TLS handshake", and the reason (an unknown issuer, a name the
/// certificate lacks) is what an operator needs to read.
pub(crate) fn connect_failed(e: impl std::error::Error) -> StoreError {
    StoreError::Unavailable(causes(&e))
}

/// An error's text followed by each cause's that it does not already hold.
pub(crate) fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// The rustls connector for `mode`, trusting `root`.
fn connector(mode: SslMode, root: Option<&RootCert>) -> StoreResult<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, root) {
        (SslMode::VerifyFull, root) => {
            let roots = Arc::new(roots(root)?);
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| StoreError::Config(format!("TLS roots: {e}")))?
        }
        (SslMode::VerifyCa, None) => {
            return Err(StoreError::Config(
                "sslmode=verify-ca needs sslrootcert=<file>: against the system roots any \
                 publicly issued certificate would pass; use verify-full for those"
                    .into(),
            ))
        }
        (_, Some(RootCert::System)) => {
            return Err(StoreError::Config(
                "sslrootcert=system needs sslmode=verify-full (as in libpq)".into(),
            ))
        }
        // libpq checks the chain whenever it has a root file, in every mode
        // that encrypts; only verify-full adds the host name.
        (_, Some(root)) => Arc::new(ChainOnly {
            roots: Arc::new(roots(Some(root))?),
            provider: provider.clone(),
        }),
        // prefer and require without a root: encrypted, unauthenticated,
        // as in libpq. Handshake signatures are still checked.
        (_, None) => Arc::new(Unverified {
            provider: provider.clone(),
        }),
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The trusted roots: the certificates of a PEM file, or the platform's.
fn roots(root: Option<&RootCert>) -> StoreResult<RootCertStore> {
    let mut store = RootCertStore::empty();
    match root {
        Some(RootCert::File(path)) => {
            let certs = CertificateDer::pem_file_iter(Path::new(path))
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| StoreError::Config(format!("sslrootcert={path}: {e}")))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(StoreError::Config(format!(
                    "sslrootcert={path}: no usable certificate in it"
                )));
            }
        }
        Some(RootCert::System) | None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map_or_else(|| "none installed".to_owned(), ToString::to_string);
                return Err(StoreError::Config(format!(
                    "no system root certificates ({why}); give sslrootcert=<file>"
                )));
            }
        }
    }
    Ok(store)
}

/// Takes `sslmode` and `sslrootcert` out of a database URL or `key=value`
/// string; the last of a repeated key wins, as in tokio-postgres.
fn split(url: &str) -> StoreResult<TlsParams> {
    let mut mode = None;
    let mut root = None;
    let mut take = |key: &str, value: &str| -> StoreResult<bool> {
        match key {
            "sslmode" => mode = Some(SslMode::parse(value)?),
            "sslrootcert" => {
                root = Some(match value {
                    "system" => RootCert::System,
                    path => RootCert::File(path.to_owned()),
                })
            }
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_owned(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&') {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    if !take(&decode(key)?, &decode(value)?)? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for (key, value) in key_values(url)? {
            if !take(&key, &value)? {
                kept.push(format!(
                    "{key}='{}'",
                    value.replace('\\', "\\\\").replace('\'', "\\'")
                ));
            }
        }
        kept.join(" ")
    };
    let mode = match (mode, &root) {
        (Some(mode), _) => mode,
        // libpq: sslrootcert=system makes verify-full the default.
        (None, Some(RootCert::System)) => SslMode::VerifyFull,
        (None, _) => SslMode::Prefer,
    };
    Ok(TlsParams { rest, mode, root })
}

/// A URL query component, percent-decoded.
fn decode(s: &str) -> StoreResult<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| StoreError::Config("bad percent-encoding in database URL".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| StoreError::Config("database URL parameter is not UTF-8".into()))
}

/// libpq's `key = value` pairs: values bare or single-quoted, `\` escaping.
fn key_values(s: &str) -> StoreResult<Vec<(String, String)>> {
    let bad = || StoreError::Config("bad database connection string".into());
    let mut pairs = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') || key.is_empty() {
            return Err(bad());
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next().ok_or_else(bad)? {
                    '\'' => break,
                    '\\' => value.push(chars.next().ok_or_else(bad)?),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.push(chars.next().ok_or_else(bad)?);
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

/// verify-ca (and prefer / require given a root file): the chain must lead
/// to a trusted root; the host name is not checked.
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// prefer and require without a root file: any certificate is taken (libpq
/// does the same), but the handshake signature must still match it, so the
/// session is encrypted to whoever holds that certificate's key.
#[derive(Debug)]
struct Unverified {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What a database session's TLS is, as the server sees it (`pg_stat_ssl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTls {
    /// Whether the session is encrypted.
    pub encrypted: bool,
    /// The protocol, e.g. `TLSv1.3`, when encrypted.
    pub version: Option<String>,
    /// The cipher suite, when encrypted.
    pub cipher: Option<String>,
}

impl PostgresStore {
    /// The TLS of one of this store's pooled connections, as the server
    /// reports it: for operators' checks and the TLS tests.
    pub async fn session_tls(&self) -> StoreResult<SessionTls> {
        let db = Db::new(self.pool.get().await.map_err(connect_failed)?);
        let row = db
            .one(
                "SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await?;
        Ok(SessionTls {
            encrypted: row.try_get(0)?,
            version: row.try_get(1)?,
            cipher: row.try_get(2)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_come_out_of_the_url_and_the_rest_stays() {
        let p = split(
            "postgres://hark:p%40ss@db:5432/hark?application_name=hark&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(
            p.rest,
            "postgres://hark:p%40ss@db:5432/hark?application_name=hark"
        );
        assert_eq!(p.mode, SslMode::VerifyFull);
        assert_eq!(p.root, Some(RootCert::File("/etc/ca.pem".into())));
        let p = split("postgresql://db/hark?sslmode=require").unwrap();
        assert_eq!(
            (p.rest.as_str(), p.mode),
            ("postgresql://db/hark", SslMode::Require)
        );
        let p = split("postgres://db/hark").unwrap();
        assert_eq!((p.mode, p.root), (SslMode::Prefer, None), "libpq's default");
        let p = split("postgres://db/hark?sslrootcert=system").unwrap();
        assert_eq!(
            p.mode,
            SslMode::VerifyFull,
            "libpq: system roots imply verify-full"
        );
    }

    #[test]
    fn key_value_strings_work_too() {
        let p = split(
            "host=db user=hark password='it''s' sslmode = verify-ca sslrootcert='/etc/my ca.pem'",
        );
        assert!(p.is_err(), "'' is not an escape in libpq's syntax");
        let p = split(
            r"host=db user=hark password='it\'s' sslmode = verify-ca sslrootcert='/etc/my ca.pem'",
        )
        .unwrap();
        assert_eq!(p.rest, r"host='db' user='hark' password='it\'s'");
        assert_eq!(p.mode, SslMode::VerifyCa);
        assert_eq!(p.root, Some(RootCert::File("/etc/my ca.pem".into())));
        let config: tokio_postgres::Config = p.rest.parse().unwrap();
        assert_eq!(config.get_password(), Some(&b"it's"[..]));
    }

    #[test]
    fn bad_or_weak_settings_are_refused_with_the_reason() {
        let err = |url: &str| connection(url).err().unwrap().to_string();
        assert!(err("postgres://db/h?sslmode=allow").contains("allow is not supported"));
        assert!(err("postgres://db/h?sslmode=verify").contains("use disable, prefer"));
        assert!(err("postgres://db/h?sslmode=verify-ca").contains("needs sslrootcert"));
        assert!(err("postgres://db/h?sslmode=require&sslrootcert=system").contains("verify-full"));
        assert!(
            err("postgres://db/h?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem")
                .contains("sslrootcert=/nonexistent/ca.pem")
        );
        assert!(err("postgres://db/h?sslmode=require&nonsense=1").contains("bad database URL"));
        assert!(
            !err("postgres://hark:hunter2@db/h?sslmode=require&nonsense=1").contains("hunter2"),
            "no password in errors"
        );
    }

    #[test]
    fn tokio_postgres_is_told_whether_tls_is_off_tried_or_required() {
        let mode = |url: &str| connection(url).unwrap().0.get_ssl_mode();
        assert_eq!(mode("postgres://db/h?sslmode=disable"), Negotiate::Disable);
        assert_eq!(mode("postgres://db/h"), Negotiate::Prefer);
        assert_eq!(mode("postgres://db/h?sslmode=require"), Negotiate::Require);
        assert_eq!(
            mode("postgres://db/h?sslmode=verify-full"),
            Negotiate::Require
        );
        assert_eq!(
            mode("postgres://%2Fvar%2Frun%2Fpostgresql/h?sslmode=require"),
            Negotiate::Disable,
            "no TLS over a Unix socket, as in libpq"
        );
    }
}
