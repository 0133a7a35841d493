//! Two-factor authentication's storage, once for both backends: a user's
//! TOTP secret (confirmed, or waiting for its first code), the last
//! 30-second step a code was used for, and the hashes of their unused
//! recovery codes. The codes themselves are checked by the server.

/// A user's two-factor state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TwoFactor {
    /// The confirmed secret (base32): a login needs a code.
    pub secret: Option<String>,
    /// A secret waiting for its first code.
    pub pending: Option<String>,
    /// The step of the last code used: a code of it or an earlier step is
    /// refused.
    pub last_step: Option<i64>,
    /// Recovery codes not used yet.
    pub recovery_codes_left: u32,
}

/// `$1` the user: `totp_secret, totp_pending, totp_last_step`, the count of
/// recovery codes.
pub(crate) const STATE: &str = "SELECT totp_secret, totp_pending, totp_last_step,
        (SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1)
     FROM users WHERE id = $1";

/// `$1` the secret (or null), `$2` the user.
pub(crate) const SET_PENDING: &str = "UPDATE users SET totp_pending = $1 WHERE id = $2";

/// `$1` the step of the confirming code, `$2` the user, `$3` the secret
/// the code was checked against: on, if that secret is still the pending
/// one and two-factor is off.
pub(crate) const ENABLE: &str = "UPDATE users
     SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = $1
     WHERE id = $2 AND totp_pending = $3 AND totp_secret IS NULL";

/// `$1` the user: off.
pub(crate) const DISABLE: &str = "UPDATE users
     SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL WHERE id = $1";

/// `$1` the user: their recovery codes gone.
pub(crate) const CLEAR_CODES: &str = "DELETE FROM recovery_codes WHERE user_id = $1";

/// `$1` the user, `$2` a code's hash.
pub(crate) const ADD_CODE: &str = "INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)";

/// `$1` the step, `$2` the user: records a code of that step as used,
/// unless one of it or a later step was (then no row changes).
pub(crate) const USE_STEP: &str = "UPDATE users SET totp_last_step = $1
     WHERE id = $2 AND totp_secret IS NOT NULL
       AND (totp_last_step IS NULL OR totp_last_step < $1)";

/// `$1` the user, `$2` a code's hash: used up (no row if it was not one).
pub(crate) const USE_CODE: &str =
    "DELETE FROM recovery_codes WHERE user_id = $1 AND code_hash = $2";
