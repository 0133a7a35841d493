//! TLS to PostgreSQL: libpq's `sslmode` and `sslrootcert` in the database
//! URL, against this machine's server (`ssl = on` with Debian's snakeoil
//! certificate). What the server reports in `pg_stat_ssl` for the store's
//! own pooled connection is the proof that a session is encrypted.

use crate::{server_url, Recorder, TestDatabase};
use hark_store::postgres::PostgresStore;
use std::sync::Arc;

/// The certificate PostgreSQL serves here (Debian's `ssl-cert` package).
pub(crate) const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

/// `url` with `params` added to its query string.
pub(crate) fn with_params(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

/// `url` with its host replaced by `host` (user, port, path and query kept).
fn with_host(url: &str, host: &str) -> String {
    let start = url.find("://").unwrap() + 3;
    let authority_end = url[start..].find('/').map_or(url.len(), |i| start + i);
    let host_start = url[start..authority_end]
        .rfind('@')
        .map_or(start, |i| start + i + 1);
    let host_end = url[host_start..authority_end]
        .rfind(':')
        .map_or(authority_end, |i| host_start + i);
    format!("{}{host}{}", &url[..host_start], &url[host_end..])
}

/// The server certificate's DNS names (SAN, else the CN).
fn snakeoil_names() -> Vec<String> {
    let pem = std::fs::read(SNAKEOIL).unwrap_or_else(|e| {
        panic!(
            "{SNAKEOIL}: {e}. PostgreSQL serves it with `ssl = on`: \
             `apt-get install -y ssl-cert postgresql` makes it."
        )
    });
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    let mut names: Vec<String> = cert
        .subject_alternative_name()
        .unwrap()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok().map(str::to_owned)),
        );
    }
    names
}

/// Whether `name` resolves to the address the test server is reached at.
async fn reaches_the_test_server(name: &str, url: &str) -> bool {
    let Ok(addrs) = tokio::net::lookup_host((name, 5432)).await else {
        return false;
    };
    let host = host_of(url);
    addrs.into_iter().any(|a| {
        let ip = a.ip();
        ip.to_string() == host
            || (ip.is_loopback() && (host == "localhost" || host.starts_with("127.")))
    })
}

/// A store on a fresh database, connected with `params` added to its URL.
async fn store(params: &str) -> (TestDatabase, Result<PostgresStore, String>) {
    let (database, url) = TestDatabase::create().await;
    let store = PostgresStore::connect(&with_params(&url, params), Arc::new(Recorder::default()))
        .await
        .map_err(|e| e.to_string());
    (database, store)
}

/// A root certificate nobody signed the server's certificate with, named
/// `common_name`.
pub(crate) fn wrong_root(dir: &tempfile::TempDir, common_name: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![common_name.into()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let cert = params.self_signed(&key).unwrap();
    let path = dir.path().join(format!("{common_name}.pem"));
    std::fs::write(&path, cert.pem()).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_encrypts_the_stores_connections() {
    let (_db, store) = store("sslmode=require").await;
    let tls = store.unwrap().session_tls().await.unwrap();
    assert!(tls.encrypted, "{tls:?}");
    assert!(
        tls.version.as_deref().unwrap_or("").starts_with("TLSv1."),
        "{tls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_disable_stays_in_plain_text() {
    let (_db, store) = store("sslmode=disable").await;
    let tls = store.unwrap().session_tls().await.unwrap();
    assert!(!tls.encrypted, "{tls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sslmode_prefers_tls_as_libpq_does() {
    let (_db, store) = store("application_name=hark-tls-test").await;
    let tls = store.unwrap().session_tls().await.unwrap();
    assert!(
        tls.encrypted,
        "the server offers TLS, so prefer takes it: {tls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_takes_no_tls_whatever_sslmode_says() {
    // As libpq: the server offers no TLS on its socket, and the socket is
    // local, so even require connects (in plain text).
    let dir = "/var/run/postgresql";
    assert!(
        std::path::Path::new(dir).join(".s.PGSQL.5432").exists(),
        "PostgreSQL's socket is not in {dir}: start the local server with \
         `pg_ctlcluster --skip-systemctl-redirect 15 main start`"
    );
    let (_db, store) = store_at("%2Fvar%2Frun%2Fpostgresql", "sslmode=require").await;
    let tls = store.unwrap().session_tls().await.unwrap();
    assert!(!tls.encrypted, "{tls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_the_servers_root_and_name_succeeds() {
    let (database, url) = TestDatabase::create().await;
    let names = snakeoil_names();
    let mut name = None;
    for candidate in &names {
        if reaches_the_test_server(candidate, &url).await {
            name = Some(candidate.clone());
            break;
        }
    }
    // The certificate's name reaches this server: verify-full by that name.
    // Else (a machine whose snakeoil names a host elsewhere) the chain alone.
    let (url, mode) = match &name {
        Some(name) => (with_host(&url, name), "verify-full"),
        None => (url.clone(), "verify-ca"),
    };
    let url = with_params(&url, &format!("sslmode={mode}&sslrootcert={SNAKEOIL}"));
    let store = PostgresStore::connect(&url, Arc::new(Recorder::default()))
        .await
        .unwrap_or_else(|e| panic!("{mode} to {names:?} ({url}): {e}"));
    let tls = store.session_tls().await.unwrap();
    assert!(tls.encrypted, "{tls:?}");
    drop(store);
    drop(database);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_refuses_a_host_name_the_certificate_does_not_carry() {
    // The test server is reached by address; the snakeoil certificate
    // names a host, not an address, so the chain is good and the name not.
    let server = server_url();
    let host = host_of(&server);
    let names = snakeoil_names();
    assert!(
        !names.iter().any(|n| n == host),
        "this test needs HARK_TEST_POSTGRES to name the server by a name its certificate \
         lacks (its IP address); it names {host}, and the certificate has {names:?}"
    );
    let (_db, store) = store_at(host, &format!("sslmode=verify-full&sslrootcert={SNAKEOIL}")).await;
    let err = store.err().expect("verify-full must check the host name");
    assert!(err.contains("not valid for name"), "{err}");
    // verify-ca checks the chain only, so the same connection passes.
    let (_db, store) = store_at(host, &format!("sslmode=verify-ca&sslrootcert={SNAKEOIL}")).await;
    assert!(store.unwrap().session_tls().await.unwrap().encrypted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_root_fails_verify_ca_verify_full_and_require_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let stranger = wrong_root(&dir, "hark-test-stranger-ca");
    // Named like the server's issuer (whatever snakeoil's name is here),
    // but with another key: the chain is found and its signature fails.
    let impostor = wrong_root(&dir, &snakeoil_issuer());
    for (root, why) in [
        (&stranger, "UnknownIssuer"),
        (&impostor, "invalid peer certificate"),
    ] {
        for mode in ["verify-ca", "verify-full", "require"] {
            let (_db, store) = store(&format!("sslmode={mode}&sslrootcert={root}")).await;
            let err = store
                .err()
                .unwrap_or_else(|| panic!("{mode} with the root {root} connected"));
            assert!(
                err.contains("TLS handshake") && err.contains(why),
                "{mode} with {root}: {err}"
            );
        }
    }
}

/// The common name of the server certificate's issuer.
fn snakeoil_issuer() -> String {
    let pem = std::fs::read(SNAKEOIL).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    let issuer = cert.issuer().iter_common_name().next().unwrap();
    issuer.as_str().unwrap().to_owned()
}

/// The host part of a `postgres://` URL.
fn host_of(url: &str) -> &str {
    let start = url.find("://").unwrap() + 3;
    let authority_end = url[start..].find('/').map_or(url.len(), |i| start + i);
    let host = url[start..authority_end].rsplit('@').next().unwrap();
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// Like [`store`], with the fresh database reached at `host`.
async fn store_at(host: &str, params: &str) -> (TestDatabase, Result<PostgresStore, String>) {
    let (database, url) = TestDatabase::create().await;
    let url = with_params(&with_host(&url, host), params);
    let store = PostgresStore::connect(&url, Arc::new(Recorder::default()))
        .await
        .map_err(|e| e.to_string());
    (database, store)
}
