//! TLS in Hark itself (`[tls]`): HTTPS and WSS with a certificate from a
//! CA the test makes (rcgen), HTTP/2 offered by ALPN, the SDK trusting that
//! CA, and the certificate read again when its files change.

use crate::support::{spawn_with, TestApp};
use hark_sdk::proto::{LoginRequest, Register};
use hark_sdk::{Api, ClientEvent, ConnectOptions, Connection, Tls};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A CA: its PEM, and what signs with it.
fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

/// A server certificate for localhost and 127.0.0.1 named `name`, written
/// to `dir` as cert.pem and key.pem; its DER.
fn leaf(dir: &Path, issuer: &Issuer<'static, KeyPair>, name: &str) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.signed_by(&key, issuer).unwrap();
    // The key first, so a reader never pairs the new certificate with the
    // old key for long (the server retries a mismatch at its next look).
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    cert.der().to_vec()
}

/// A TLS connection to the server, trusting `ca_pem`, offering `alpn`.
async fn connect(
    app: &TestApp,
    ca_pem: &str,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let addr = app.base.trim_start_matches("https://");
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// What a client sees: the server's certificate and the protocol ALPN chose.
async fn handshake(app: &TestApp, ca_pem: &str, alpn: &[&[u8]]) -> (Vec<u8>, Option<Vec<u8>>) {
    let tls = connect(app, ca_pem, alpn).await;
    let (_, session) = tls.get_ref();
    (
        session.peer_certificates().unwrap()[0].to_vec(),
        session.alpn_protocol().map(<[u8]>::to_vec),
    )
}

#[tokio::test]
async fn hark_serves_https_and_wss_and_reloads_its_certificate() {
    let files = tempfile::tempdir().unwrap();
    let (ca_pem, issuer) = ca("Hark test CA");
    let first = leaf(files.path(), &issuer, "first");
    let (cert, key) = (files.path().join("cert.pem"), files.path().join("key.pem"));
    let app = spawn_with(|c| {
        c.tls.cert = Some(cert.clone());
        c.tls.key = Some(key.clone());
        c.tls.reload_secs = 1;
    })
    .await;
    assert!(app.base.starts_with("https://127.0.0.1:"), "{}", app.base);

    // The SDK trusting the test's CA: HTTPS for the API, WSS for the socket.
    let tls = Tls::with_ca_pem(ca_pem.as_bytes()).unwrap();
    let api = Api::new(&app.base).unwrap().with_tls(&tls).unwrap();
    let login = async |api: &Api, name: &str| {
        api.register(&Register {
            username: name.into(),
            password: "correct horse".into(),
            display_name: None,
        })
        .await
        .unwrap();
        api.login(&LoginRequest {
            username: name.into(),
            password: "correct horse".into(),
            device_name: "tls".into(),
            two_factor_code: None,
        })
        .await
        .unwrap()
    };
    let alice = login(&api, "alice").await;
    let bob = login(&api, "bob").await;
    let alice_api = api.clone().with_token(alice.token.clone());
    let chat = alice_api.create_direct(bob.user.id).await.unwrap().id;
    let options = ConnectOptions {
        tls: Some(tls.clone()),
        ..ConnectOptions::default()
    };
    let (bob_conn, mut bob_events) = Connection::connect(&app.base, &bob.token, options.clone())
        .await
        .unwrap();
    let (alice_conn, _) = Connection::connect(&app.base, &alice.token, options)
        .await
        .unwrap();
    alice_conn.send(chat, "over wss").await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match bob_events.recv().await.unwrap() {
                ClientEvent::Event {
                    event: hark_sdk::proto::Event::Message(m),
                    ..
                } => return m.text,
                _ => continue,
            }
        }
    })
    .await
    .expect("bob hears alice over wss");
    assert_eq!(got, "over wss");
    bob_conn.close().await;

    // Without the CA the system's roots do not know the certificate.
    let stranger = Api::new(&app.base).unwrap();
    let refused = stranger
        .login(&LoginRequest {
            username: "alice".into(),
            password: "correct horse".into(),
            device_name: "x".into(),
            two_factor_code: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(refused, hark_sdk::Error::Http(_)), "{refused}");
    // Plain HTTP to the TLS port gets nothing.
    let plain = reqwest::get(app.base.replace("https://", "http://") + "/healthz").await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // HTTP/2 and HTTP/1.1 are offered.
    let (seen, alpn) = handshake(&app, &ca_pem, &[b"h2", b"http/1.1"]).await;
    assert_eq!(seen, first);
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    let (_, alpn) = handshake(&app, &ca_pem, &[b"http/1.1"]).await;
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));

    // The socket over HTTP/2 inside TLS, as a browser whose page came over
    // h2 opens it (RFC 8441): the same protocol on an extended CONNECT.
    {
        use crate::websocket::{h2_client, hello_then_sync, ws_over_h2};
        let mut h2 = h2_client(connect(&app, &ca_pem, &[b"h2"]).await).await;
        // The page's origin, as Chromium sends it with the CONNECT.
        let origin = app.base.replace("127.0.0.1", "localhost");
        let uri = format!("{origin}/v1/ws");
        let mut ws = ws_over_h2(&mut h2, &uri, &bob.token, Some(&origin)).await;
        hello_then_sync(&mut ws, bob.user.id, "over wss").await;
    }

    // A renewed certificate is served without a restart...
    let second = leaf(files.path(), &issuer, "second");
    let mut served = first.clone();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        served = handshake(&app, &ca_pem, &[b"http/1.1"]).await.0;
        if served != first {
            break;
        }
    }
    assert_eq!(served, second, "the renewed certificate");
    // ...and a broken one is not: the last good one stays.
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(handshake(&app, &ca_pem, &[b"http/1.1"]).await.0, second);
    // The socket opened before the renewal is still served.
    alice_conn.send(chat, "still here").await.unwrap();
    alice_conn.close().await;
}

#[tokio::test]
async fn a_half_configured_tls_table_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = hark_server::config::Config {
        data_dir: dir.path().to_owned(),
        ..Default::default()
    };
    config.tls.cert = Some(dir.path().join("cert.pem"));
    let e = hark_server::build(config.clone()).await.err().unwrap();
    assert!(format!("{e:#}").contains("tls"), "{e:#}");
    config.tls.key = Some(dir.path().join("key.pem"));
    let e = hark_server::build(config).await.err().unwrap();
    assert!(format!("{e:#}").contains("cert.pem"), "{e:#}");
}
