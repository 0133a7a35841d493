//! Single sign-on: Hark as an OpenID Connect relying party (the
//! `openidconnect` crate), the authorization-code flow with PKCE.
//!
//! A sign-in starts at `GET /v1/sso/start`: the state, nonce, PKCE
//! verifier and where to go back to are sealed (HMAC-SHA256 with a server
//! key every node shares) into a short-lived cookie of the browser doing
//! the sign-in, so any node can finish it. The provider sends the browser
//! back to `/v1/sso/callback`, which checks the cookie and its `state`,
//! exchanges the code (with the verifier) at the provider's token
//! endpoint, and verifies the ID token in full: signature by the
//! provider's published keys (fetched again once when a token does not
//! verify, so a key rotation is followed), `iss`, `aud`, `exp` and the
//! `nonce`. The identity (issuer and `sub`) signs in to the account linked
//! to it, made on its first sign-in. The browser then goes back with a
//! one-time ticket, never the token: the client redeems the ticket for a
//! device and its token (`POST /v1/sso/redeem`).

use crate::config;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::two_factor::constant_time_eq;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hark_proto::{ErrorCode, SsoInfo};
use hmac::{Hmac, Mac};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenClaims, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope,
};
use rand::RngCore;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::time::{Duration, Instant};

/// How long a sign-in may take at the provider.
pub const SIGN_IN_SECS: i64 = 600;
/// How long a finished sign-in's ticket may wait for its client.
pub const TICKET_MS: i64 = 120_000;
/// The cookie holding a sign-in in progress.
pub const COOKIE: &str = "hark_sso";
/// How long the provider's metadata and keys are kept before they are
/// fetched again (also fetched again when a token does not verify).
const METADATA_TTL: Duration = Duration::from_secs(3600);

/// The relying party: the provider's settings and what was learnt of it.
pub struct Sso {
    settings: config::Sso,
    http: reqwest::Client,
    metadata: tokio::sync::Mutex<Option<(CoreProviderMetadata, Instant)>>,
    key: tokio::sync::OnceCell<Vec<u8>>,
}

/// A sign-in in progress, as sealed in the browser's cookie.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    return_to: String,
    /// Seconds since the epoch.
    expires: i64,
}

/// Who the provider says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    /// Usernames to try for a new account, in order.
    pub usernames: Vec<String>,
    pub display_name: String,
}

/// Why a sign-in did not finish, as the client is told (`sso_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The provider answered with an error (the person cancelled, or the
    /// provider refused).
    Provider,
    /// The callback's state or the sign-in cookie is missing, wrong or old.
    State,
    /// The code exchange or the ID token did not pass.
    Token,
    /// The provider cannot be reached.
    Unavailable,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Provider => "provider_error",
            Failure::State => "invalid_state",
            Failure::Token => "invalid_id_token",
            Failure::Unavailable => "unavailable",
        }
    }
}

impl Sso {
    pub fn new(settings: &config::Sso) -> anyhow::Result<Sso> {
        let http = reqwest::Client::builder()
            // Following a redirect would let the provider point requests anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Sso {
            settings: settings.clone(),
            http,
            metadata: tokio::sync::Mutex::new(None),
            key: tokio::sync::OnceCell::new(),
        })
    }

    pub fn enabled(&self) -> bool {
        self.settings.issuer.is_some()
    }

    /// Password logins and registering are refused.
    pub fn only(&self) -> bool {
        self.enabled() && self.settings.only
    }

    pub fn info(&self) -> SsoInfo {
        SsoInfo {
            enabled: self.enabled(),
            label: if self.settings.label.is_empty() {
                "Sign in with single sign-on".into()
            } else {
                self.settings.label.clone()
            },
            only: self.only(),
        }
    }

    fn off() -> ApiError {
        ApiError::new(ErrorCode::NotFound, "single sign-on is not set up here")
    }

    fn redirect_uri(&self) -> ApiResult<RedirectUrl> {
        let base = self.settings.public_url.as_deref().ok_or_else(Self::off)?;
        RedirectUrl::new(format!("{}/v1/sso/callback", base.trim_end_matches('/')))
            .map_err(ApiError::internal)
    }

    /// The provider's metadata and keys: kept an hour, or fetched now.
    async fn metadata(&self, fresh: bool) -> Result<CoreProviderMetadata, Failure> {
        let mut cached = self.metadata.lock().await;
        if let Some((metadata, at)) = cached.as_ref() {
            if !fresh && at.elapsed() < METADATA_TTL {
                return Ok(metadata.clone());
            }
        }
        let issuer = self.settings.issuer.clone().ok_or(Failure::Unavailable)?;
        let issuer = IssuerUrl::new(issuer).map_err(|_| Failure::Unavailable)?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "single sign-on: the provider's discovery failed");
                Failure::Unavailable
            })?;
        *cached = Some((metadata.clone(), Instant::now()));
        Ok(metadata)
    }

    fn secret(&self) -> Option<ClientSecret> {
        self.settings
            .client_secret
            .as_ref()
            .map(|s| ClientSecret::new(s.expose_secret().to_owned()))
    }

    /// The key sealing sign-ins in progress, the same on every node.
    async fn key(&self, state: &AppState) -> ApiResult<&[u8]> {
        self.key
            .get_or_try_init(|| async {
                let mut candidate = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut candidate);
                let key = state
                    .store
                    .server_key("sso_state", &URL_SAFE_NO_PAD.encode(candidate))
                    .await?;
                URL_SAFE_NO_PAD.decode(key).map_err(ApiError::internal)
            })
            .await
            .map(Vec::as_slice)
    }

    /// Starts a sign-in: where to send the browser, and the cookie to set.
    pub async fn start(&self, state: &AppState, return_to: &str) -> ApiResult<(String, String)> {
        if !self.enabled() {
            return Err(Self::off());
        }
        if !return_to_allowed(return_to) {
            return Err(ApiError::invalid(
                "return_to: a path of this server (/...) or a loopback http://127.0.0.1:<port>/ address",
            ));
        }
        let metadata = self.metadata(false).await.map_err(|_| {
            ApiError::retry_later("the single sign-on provider cannot be reached; retry later")
        })?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.secret(),
        )
        .set_redirect_uri(self.redirect_uri()?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, csrf, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge)
            .url();
        let pending = Pending {
            state: csrf.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            return_to: return_to.to_owned(),
            expires: crate::now_ms() / 1000 + SIGN_IN_SECS,
        };
        let sealed = seal(self.key(state).await?, &pending)
            .ok_or_else(|| ApiError::internal("sealing a sign-in failed"))?;
        Ok((url.to_string(), sealed))
    }

    /// Where a callback's answers go back to: the sealed sign-in's
    /// `return_to`, if the cookie is one of ours and not too old.
    pub async fn pending_return(&self, state: &AppState, cookie: &str) -> Option<String> {
        let key = self.key(state).await.ok()?;
        unseal(key, cookie, crate::now_ms() / 1000).map(|p| p.return_to)
    }

    /// Finishes a sign-in from the provider's callback: who signed in.
    pub async fn finish(
        &self,
        state: &AppState,
        cookie: &str,
        returned_state: &str,
        code: &str,
    ) -> Result<Identity, Failure> {
        let key = self.key(state).await.map_err(|_| Failure::Unavailable)?;
        let pending = unseal(key, cookie, crate::now_ms() / 1000).ok_or(Failure::State)?;
        if !constant_time_eq(pending.state.as_bytes(), returned_state.as_bytes()) {
            return Err(Failure::State);
        }
        let metadata = self.metadata(false).await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.secret(),
        )
        .set_redirect_uri(self.redirect_uri().map_err(|_| Failure::Unavailable)?);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|_| Failure::Unavailable)?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "single sign-on: the code exchange failed");
                Failure::Token
            })?;
        use openidconnect::TokenResponse;
        let token = response.id_token().ok_or(Failure::Token)?;
        self.verify(&token.to_string(), &pending.nonce, None).await
    }

    /// Verifies an ID token for this client: signature by the provider's
    /// keys, `iss`, `aud`, `exp` (against `now_secs`, or the clock) and the
    /// `nonce`; the keys are fetched again once if it does not verify.
    pub async fn verify(
        &self,
        token: &str,
        nonce: &str,
        now_secs: Option<i64>,
    ) -> Result<Identity, Failure> {
        let token: CoreIdToken = token.parse().map_err(|_| Failure::Token)?;
        let mut last = None;
        for fresh in [false, true] {
            let metadata = self.metadata(fresh).await?;
            let client = CoreClient::from_provider_metadata(
                metadata,
                ClientId::new(self.settings.client_id.clone()),
                self.secret(),
            );
            let mut verifier = client.id_token_verifier();
            if let Some(secs) = now_secs {
                verifier = verifier.set_time_fn(move || {
                    chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default()
                });
            }
            match token.claims(&verifier, &Nonce::new(nonce.to_owned())) {
                Ok(claims) => return Ok(identity(claims)),
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            tracing::warn!(error = %e, "single sign-on: an ID token was refused");
        }
        Err(Failure::Token)
    }
}

/// Where a finished sign-in may send the browser: a path of this server
/// (the web client), or a loopback `http` address (a command-line client
/// listening for its ticket, RFC 8252).
pub fn return_to_allowed(url: &str) -> bool {
    if url.len() > 512 || url.chars().any(|c| c.is_control() || c == '\\') {
        return false;
    }
    if url.starts_with('/') {
        return !url.starts_with("//");
    }
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    parsed.scheme() == "http"
        && parsed.username().is_empty()
        && parsed.password().is_none()
        && parsed.port().is_some()
        && loopback
}

/// `return_to` with a query parameter added.
pub fn with_param(return_to: &str, key: &str, value: &str) -> String {
    let encoded: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(key, value)
        .finish();
    let (base, fragment) = match return_to.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (return_to, None),
    };
    let joiner = if base.contains('?') { '&' } else { '?' };
    match fragment {
        Some(f) => format!("{base}{joiner}{encoded}#{f}"),
        None => format!("{base}{joiner}{encoded}"),
    }
}

fn identity(claims: &CoreIdTokenClaims) -> Identity {
    let preferred = claims.preferred_username().map(|u| u.as_str().to_owned());
    let email_local = claims
        .email()
        .and_then(|e| e.as_str().split('@').next().map(str::to_owned));
    let name = claims
        .name()
        .and_then(|n| n.get(None))
        .map(|n| n.as_str().trim().to_owned())
        .filter(|n| !n.is_empty());
    let usernames = usernames(
        [preferred.as_deref(), email_local.as_deref()]
            .into_iter()
            .flatten(),
    );
    let display_name = name
        .or(preferred)
        .unwrap_or_else(|| usernames[0].clone())
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    Identity {
        issuer: claims.issuer().as_str().to_owned(),
        subject: claims.subject().as_str().to_owned(),
        usernames,
        display_name,
    }
}

/// Usernames to try for a new account: each claim made valid (letters,
/// digits, `_ . -`, 3–32 long), then numbered (`alice-2` … `alice-9`),
/// then with random digits, so a taken name still gives an account.
pub fn usernames<'a>(claims: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut bases: Vec<String> = Vec::new();
    for claim in claims {
        let mut name: String = claim
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "_.-".contains(*c))
            .take(32)
            .collect();
        // Empty, or the form deleted accounts keep (`deleted-<id>`).
        if name.is_empty() || name.to_ascii_lowercase().starts_with("deleted-") {
            continue;
        }
        while name.len() < 3 {
            name.push('_');
        }
        if !bases.contains(&name) {
            bases.push(name);
        }
    }
    if bases.is_empty() {
        bases.push("user".into());
    }
    let mut out = bases.clone();
    let first: String = bases[0].chars().take(25).collect();
    out.extend((2..10).map(|n| format!("{first}-{n}")));
    let mut rng = rand::rngs::OsRng;
    out.extend((0..5).map(|_| format!("{first}-{}", 10_000 + rng.next_u32() % 90_000)));
    out
}

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of `body` (HMAC takes a key of any length, so `None` is
/// never expected).
fn mac(key: &[u8], body: &str) -> Option<Vec<u8>> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(body.as_bytes());
    Some(mac.finalize().into_bytes().to_vec())
}

fn seal(key: &[u8], pending: &Pending) -> Option<String> {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(pending).ok()?);
    let tag = URL_SAFE_NO_PAD.encode(mac(key, &body)?);
    Some(format!("{body}.{tag}"))
}

fn unseal(key: &[u8], sealed: &str, now_secs: i64) -> Option<Pending> {
    let (body, tag) = sealed.split_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    if !constant_time_eq(&mac(key, body)?, &tag) {
        return None;
    }
    let pending: Pending = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
    (pending.expires >= now_secs).then_some(pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_own_paths_and_loopback_addresses_are_returned_to() {
        for ok in [
            "/",
            "/chats?x=1",
            "http://127.0.0.1:49152/",
            "http://127.0.0.1:8/done",
            "http://localhost:9000/cb",
        ] {
            assert!(return_to_allowed(ok), "{ok}");
        }
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "http://evil.example:80/",
            "http://127.0.0.1/",
            "http://user@127.0.0.1:9000/",
            "javascript:alert(1)",
            "/\\evil",
            "",
            "relative",
            "http://127.0.0.1.evil.example:80/",
        ] {
            assert!(!return_to_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn a_sealed_sign_in_opens_only_whole_with_its_key_in_time() {
        let pending = Pending {
            state: "s".into(),
            nonce: "n".into(),
            verifier: "v".into(),
            return_to: "/".into(),
            expires: 1_000,
        };
        let sealed = seal(b"key", &pending).unwrap();
        assert_eq!(unseal(b"key", &sealed, 999).unwrap().nonce, "n");
        assert!(unseal(b"key", &sealed, 1_001).is_none(), "expired");
        assert!(unseal(b"other", &sealed, 999).is_none(), "another key");
        let mut tampered = sealed.clone().into_bytes();
        tampered[3] ^= 1;
        assert!(unseal(b"key", &String::from_utf8(tampered).unwrap(), 999).is_none());
    }

    #[test]
    fn usernames_come_from_the_claims_then_numbered() {
        let names = usernames(["Ann Lee", "ann.lee"]);
        assert_eq!(&names[..3], ["AnnLee", "ann.lee", "AnnLee-2"]);
        assert_eq!(names.len(), 2 + 8 + 5);
        assert_eq!(usernames(["é"])[0], "user");
        assert_eq!(usernames(["al"])[0], "al_");
        assert!(names.iter().all(|n| (3..=32).contains(&n.len())));
    }

    #[test]
    fn a_parameter_is_added_to_any_return_address() {
        assert_eq!(with_param("/", "sso_ticket", "a b"), "/?sso_ticket=a+b");
        assert_eq!(with_param("/x?y=1#f", "k", "v"), "/x?y=1&k=v#f");
    }
}
