//! Passwords (Argon2id), device tokens (random, stored as SHA-256), and the
//! `Authed` extractor that turns a bearer token into a user and device.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use hark_proto::ErrorCode;
use hark_store::AuthedDevice;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Argon2id with 19 MiB of memory and 2 passes (OWASP's minimum).
fn argon2() -> ApiResult<Argon2<'static>> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(ApiError::internal)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Runs Argon2 work on a small pool of its own threads. Each hash takes
/// ~60 ms and 19 MiB by design; on tokio's blocking pool every one of its
/// many threads would keep such a buffer in its allocator arena (measured:
/// 1.5 GiB of RSS after 400 logins), and a burst of logins would not queue.
pub struct PasswordHasherPool {
    jobs: std::sync::mpsc::SyncSender<Box<dyn FnOnce() + Send>>,
    /// A hash of a random password, made on first need: what a login for a
    /// username that does not exist is checked against.
    nobody: tokio::sync::OnceCell<String>,
}

impl PasswordHasherPool {
    /// Starts `threads` hashing threads; logins beyond them wait their turn.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Box<dyn FnOnce() + Send>>(1024);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for n in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("hark-argon2-{n}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                })?;
        }
        Ok(PasswordHasherPool {
            jobs: tx,
            nobody: tokio::sync::OnceCell::new(),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Box<dyn FnOnce() + Send> = Box::new(move || {
            let _ = tx.send(work());
        });
        let jobs = self.jobs.clone();
        // The queue is bounded; waiting for room must not block the runtime.
        tokio::task::spawn_blocking(move || jobs.send(job))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
        rx.await.map_err(ApiError::internal)?
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: String) -> ApiResult<String> {
        self.run(move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            argon2()?
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(ApiError::internal)
        })
        .await
    }

    /// Checks a password against its stored hash.
    pub async fn verify(&self, password: String, hash: String) -> ApiResult<bool> {
        self.run(move || {
            let parsed = PasswordHash::new(&hash).map_err(ApiError::internal)?;
            Ok(argon2()?
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await
    }
}

impl PasswordHasherPool {
    /// The work of [`Self::verify`] for a username that does not exist,
    /// against a hash of a random password: a login for nobody takes as
    /// long as one with a wrong password, so its timing tells no usernames.
    pub async fn verify_nobody(&self, password: String) -> ApiResult<()> {
        let hash = self.nobody_hash().await?;
        self.verify(password, hash).await.map(|_| ())
    }

    /// A hash of a random password nobody is told: what an account that
    /// signs in only through single sign-on keeps, so a password login to
    /// it is an ordinary wrong password.
    pub async fn nobody_hash(&self) -> ApiResult<String> {
        Ok(self
            .nobody
            .get_or_try_init(|| self.hash(new_token()))
            .await?
            .clone())
    }
}

/// A fresh 256-bit token, base64url.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Looks a token up; `Unauthorized` when unknown or revoked, `TokenExpired`
/// when its device went unused past `devices.idle_days`.
pub async fn authenticate(state: &AppState, token: &str) -> ApiResult<AuthedDevice> {
    if token.is_empty() || token.len() > 128 {
        return Err(ApiError::unauthorized());
    }
    authenticate_hash(state, token_hash(token)).await
}

/// [`authenticate`] for a token known by its hash (a SignalR socket
/// ticket carries the hash, never the token).
pub async fn authenticate_hash(state: &AppState, hash: [u8; 32]) -> ApiResult<AuthedDevice> {
    let device = state
        .store
        .device_by_token(hash)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if device.disabled {
        return Err(disabled());
    }
    // A bot's token is never idle: an integration may call once a season.
    if device.expired
        || (device.scope.is_none()
            && crate::devices::idle_cutoff(state)
                .is_some_and(|cutoff| device.device.last_used_at < cutoff))
    {
        return Err(expired(state));
    }
    crate::devices::touch(state, &device);
    Ok(device)
}

/// What the token of a device logged out for idleness gets.
fn expired(state: &AppState) -> ApiError {
    let message = match state.config.devices.idle_days {
        0 => "this device was logged out for going unused; sign in again".to_owned(),
        days => format!("this device was logged out after {days} days without use; sign in again"),
    };
    ApiError::new(ErrorCode::TokenExpired, message)
}

/// What a disabled account's login and tokens get.
pub fn disabled() -> ApiError {
    ApiError::new(
        ErrorCode::AccountDisabled,
        "this account was disabled by an administrator",
    )
}

/// The token of an `Authorization: Bearer …` header, if there is one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// What a device with a working token may not do yet: one waiting for
/// approval, or (when the server requires two-factor authentication) one
/// of an account without a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriction {
    Pending,
    TwoFactorSetup,
}

/// The restriction the device is under, if any.
pub fn restriction(state: &AppState, device: &AuthedDevice) -> Option<Restriction> {
    if device.device.pending {
        Some(Restriction::Pending)
    } else if state.config.accounts.require_two_factor
        && !device.second_factor
        && device.scope.is_none()
    {
        Some(Restriction::TwoFactorSetup)
    } else {
        None
    }
}

impl Restriction {
    pub fn refusal(self) -> ApiError {
        match self {
            Restriction::Pending => ApiError::new(
                ErrorCode::DeviceNotApproved,
                "this login waits for approval from another device of the account",
            ),
            Restriction::TwoFactorSetup => ApiError::new(
                ErrorCode::TwoFactorSetupRequired,
                "this server requires two-factor authentication: turn it on first (POST /v1/me/two-factor)",
            ),
        }
    }
}

/// [`authenticate`], then refused if the device is under a restriction:
/// what every route and the WebSocket need but those named below.
pub async fn authorize(state: &AppState, token: &str) -> ApiResult<AuthedDevice> {
    unrestricted(state, authenticate(state, token).await?)
}

/// [`authorize`] for a token known by its hash.
pub async fn authorize_hash(state: &AppState, hash: [u8; 32]) -> ApiResult<AuthedDevice> {
    unrestricted(state, authenticate_hash(state, hash).await?)
}

fn unrestricted(state: &AppState, device: AuthedDevice) -> ApiResult<AuthedDevice> {
    match restriction(state, &device) {
        Some(r) => Err(r.refusal()),
        None => Ok(device),
    }
}

/// The authenticated device of a request, under no restriction, and a
/// person's: a bot's token is refused (`not_for_bots`), so a route is
/// closed to bots unless it takes [`Acting`].
pub struct Authed(pub AuthedDevice);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let token = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        let device = authorize(state, token).await?;
        crate::scope::person(&device)?;
        Ok(Authed(device))
    }
}

/// The authenticated device of a request, under no restriction: a
/// person's, or a bot's token, whose scope the handler checks
/// (`crate::scope`) — the routes a bot may use.
pub struct Acting(pub AuthedDevice);

impl FromRequestParts<AppState> for Acting {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let token = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        authorize(state, token).await.map(Acting)
    }
}

/// Any authenticated device, under a restriction or not: for `GET /v1/me`
/// (which says which) and logging out.
pub struct AnyDevice(pub AuthedDevice);

impl FromRequestParts<AppState> for AnyDevice {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let token = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        authenticate(state, token).await.map(AnyDevice)
    }
}

/// A device that may enrol in two-factor authentication: one that is
/// approved (it may lack the second factor the server requires).
pub struct Enrolling(pub AuthedDevice);

impl FromRequestParts<AppState> for Enrolling {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let token = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        let device = authenticate(state, token).await?;
        crate::scope::person(&device)?;
        match restriction(state, &device) {
            Some(Restriction::Pending) => Err(Restriction::Pending.refusal()),
            _ => Ok(Enrolling(device)),
        }
    }
}
