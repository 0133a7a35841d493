//! A person's own account: password change, two-factor authentication,
//! contacts and blocked users (docs/protocol.md "Your account").

use serde::{Deserialize, Serialize};

/// `POST /v1/me/password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 1024))]
    pub new_password: String,
    /// Also log out every other device of the account (their tokens stop
    /// working and their sockets close with `revoked`).
    #[serde(default)]
    pub log_out_other_devices: bool,
}

/// The answer to a password change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordChanged {
    /// How many other devices were logged out (0 unless asked).
    pub devices_logged_out: u32,
}

/// `GET /v1/me/two-factor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TwoFactorStatus {
    /// A login needs a code.
    pub enabled: bool,
    /// Recovery codes not used yet (0 when off).
    pub recovery_codes_left: u32,
}

/// `POST /v1/me/two-factor` (start enrolling) and
/// `POST /v1/me/two-factor/disable`: the account's password again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TwoFactorPassword {
    pub password: String,
    /// To turn it off: a current code or an unused recovery code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// The secret of an enrolment that is not confirmed yet: put it in an
/// authenticator app (scan the QR code or type the secret), then confirm
/// with a code the app shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TwoFactorEnrolment {
    /// The shared secret, base32 without padding (RFC 4648).
    pub secret: String,
    /// The same as an `otpauth://totp/…` URL (issuer, account, SHA-1,
    /// 6 digits, 30 s).
    pub otpauth_url: String,
    /// That URL as a QR code: a PNG, base64 (no `data:` prefix).
    pub qr_png: String,
}

/// `POST /v1/me/two-factor/confirm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TwoFactorCode {
    /// Six digits from the authenticator app.
    pub code: String,
}

/// Two-factor authentication is on: the recovery codes, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoveryCodes {
    /// Each works once in place of a code (`xxxxx-xxxxx`).
    pub recovery_codes: Vec<String>,
}

/// `GET /v1/sso`: whether the server signs people in through an OpenID
/// provider, for a login screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SsoInfo {
    pub enabled: bool,
    /// What the sign-in button says.
    pub label: String,
    /// Single sign-on is the only way in (no password logins).
    pub only: bool,
}

/// `POST /v1/sso/redeem`: the ticket a finished sign-in handed back, for
/// a device and its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SsoRedeem {
    pub ticket: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub device_name: String,
}

/// `GET` / `PUT /v1/me/device-approval`: whether a new login of the
/// account must be approved from one of its devices first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeviceApproval {
    pub required: bool,
}
