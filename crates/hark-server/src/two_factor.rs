//! Two-factor authentication: TOTP codes (RFC 6238 through `totp-rs`:
//! SHA-1, 6 digits, 30-second steps, what authenticator apps support),
//! accepted one step early or late for clock skew, each step's code once
//! (the store keeps the last step used); and one-time recovery codes, kept
//! as SHA-256 hashes.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use hark_proto::{ErrorCode, TwoFactorEnrolment, UserId};
use rand::RngCore;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds per code.
pub const STEP_SECS: u64 = 30;
/// Recovery codes made when two-factor is turned on.
pub const RECOVERY_CODES: usize = 10;
/// The issuer authenticator apps show beside the account.
const ISSUER: &str = "Hark";
/// Recovery codes' letters: no 0/o, 1/l/i, to be read back from paper.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A new shared secret: 160 random bits (RFC 4226's recommendation), base32.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::Raw(bytes.to_vec()).to_encoded().to_string()
}

fn totp(secret: &str, account: &str) -> ApiResult<TOTP> {
    let bytes = Secret::Encoded(secret.to_owned())
        .to_bytes()
        .map_err(|e| ApiError::internal(format!("a stored TOTP secret is not base32: {e:?}")))?;
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP_SECS,
        bytes,
        Some(ISSUER.to_owned()),
        account.to_owned(),
    )
    .map_err(|e| ApiError::internal(format!("TOTP: {e}")))
}

/// What an authenticator app needs to enrol: the secret, its URL and that
/// URL as a QR code.
pub fn enrolment(secret: &str, account: &str) -> ApiResult<TwoFactorEnrolment> {
    let totp = totp(secret, account)?;
    Ok(TwoFactorEnrolment {
        secret: secret.to_owned(),
        otpauth_url: totp.get_url(),
        qr_png: totp
            .get_qr_base64()
            .map_err(|e| ApiError::internal(format!("QR code: {e}")))?,
    })
}

/// The step a six-digit `code` belongs to at `now_secs` (this step, the
/// one before or the one after), if it is right.
pub fn verify(secret: &str, code: &str, now_secs: u64) -> ApiResult<Option<i64>> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let totp = totp(secret, "")?;
    let step = now_secs / STEP_SECS;
    for candidate in [step.saturating_sub(1), step, step + 1] {
        let expected = totp.generate(candidate * STEP_SECS);
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) {
            return Ok(Some(candidate as i64));
        }
    }
    Ok(None)
}

/// Whether two secrets are equal, in time that does not depend on where
/// they differ (codes here, sealed sign-ins in `crate::sso`).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// New recovery codes, `xxxxx-xxxxx` (about 49 bits each).
pub fn recovery_codes() -> Vec<String> {
    let mut rng = rand::rngs::OsRng;
    (0..RECOVERY_CODES)
        .map(|_| {
            let letters: String = (0..10)
                .map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char)
                .collect();
            format!("{}-{}", &letters[..5], &letters[5..])
        })
        .collect()
}

/// The hash a recovery code is kept as: of its ten letters, lower case,
/// without spaces or the dash.
pub fn recovery_hash(code: &str) -> Option<String> {
    let letters: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    if letters.len() != 10 || !letters.bytes().all(|b| ALPHABET.contains(&b)) {
        return None;
    }
    Some(hex::encode(Sha256::digest(letters.as_bytes())))
}

/// Now, in seconds since the epoch.
pub fn now_secs() -> u64 {
    u64::try_from(crate::now_ms()).unwrap_or(0) / 1000
}

/// How a code was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Totp,
    RecoveryCode,
}

/// Checks a code for a user whose two-factor is on with `secret`: a TOTP
/// code of a step not used yet (the step is then used), or an unused
/// recovery code (then used up). `invalid_two_factor_code` otherwise.
pub async fn use_code(
    state: &AppState,
    user: UserId,
    secret: &str,
    code: &str,
) -> ApiResult<Accepted> {
    let code = code.trim();
    if let Some(step) = verify(secret, code, now_secs())? {
        if state.store.use_totp_step(user, step).await? {
            return Ok(Accepted::Totp);
        }
    } else if let Some(hash) = recovery_hash(code) {
        if state.store.use_recovery_code(user, hash).await? {
            return Ok(Accepted::RecoveryCode);
        }
    }
    Err(invalid())
}

/// The refusal of a wrong, expired or used code.
pub fn invalid() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidTwoFactorCode,
        "wrong or expired two-factor code, or one already used",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B's SHA-1 secret ("12345678901234567890") and
    // times, the last six digits of its eight-digit answers.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn codes_follow_rfc_6238_with_a_step_of_skew() {
        for (time, code) in [
            (59u64, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            let step = (time / STEP_SECS) as i64;
            assert_eq!(verify(RFC_SECRET, code, time).unwrap(), Some(step));
            // A step late or early still counts, as that step.
            assert_eq!(verify(RFC_SECRET, code, time + 30).unwrap(), Some(step));
            assert_eq!(verify(RFC_SECRET, code, time - 30).unwrap(), Some(step));
            // Two steps off does not.
            assert_eq!(verify(RFC_SECRET, code, time + 60).unwrap(), None);
        }
        assert_eq!(verify(RFC_SECRET, "28708", 59).unwrap(), None);
        assert_eq!(verify(RFC_SECRET, "28708a", 59).unwrap(), None);
        assert_eq!(verify(RFC_SECRET, "000000", 59).unwrap(), None);
    }

    #[test]
    fn recovery_codes_are_read_back_loosely_and_hashed_once() {
        let codes = recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let first = &codes[0];
        assert_eq!(first.len(), 11);
        let hash = recovery_hash(first).unwrap();
        let typed = first.to_uppercase().replace('-', " ");
        assert_eq!(recovery_hash(&typed), Some(hash));
        assert_eq!(recovery_hash("12345-67890"), None, "0 and 1 are never used");
        assert_eq!(recovery_hash("abcde"), None);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
    }

    #[test]
    fn a_new_secret_enrols() {
        let secret = new_secret();
        assert_eq!(secret.len(), 32);
        let e = enrolment(&secret, "alice").unwrap();
        assert!(e.otpauth_url.starts_with("otpauth://totp/Hark:alice?"));
        assert!(e.otpauth_url.contains(&format!("secret={secret}")));
        assert!(!e.qr_png.is_empty());
    }
}
