//! Stable error codes shared by HTTP responses and WebSocket error frames.

use serde::{Deserialize, Serialize};

/// A stable, machine-readable error code. Clients match on these; the
/// accompanying message is for people and may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request body or frame is not valid JSON.
    MalformedJson,
    /// The frame's `type` is not one the server knows.
    UnknownType,
    /// A field is missing, has the wrong type, or an invalid value.
    InvalidField,
    /// A message, frame or body is larger than the server accepts.
    TooLarge,
    /// Too many requests or frames; slow down.
    RateLimited,
    /// No valid credentials were given (missing, unknown or revoked token).
    Unauthorized,
    /// Wrong username or password.
    InvalidCredentials,
    /// Authenticated, but not allowed to do this (e.g. not a member of the chat).
    Forbidden,
    /// The thing asked for does not exist (or is not visible to the caller).
    NotFound,
    /// The username is taken.
    UsernameTaken,
    /// The group has reached its member limit.
    GroupFull,
    /// The WebSocket was not authenticated within the deadline.
    AuthTimeout,
    /// The connection was already authenticated.
    AlreadyAuthenticated,
    /// The connection fell too far behind; reconnect and sync.
    SlowConsumer,
    /// The device's token was revoked; the connection closes.
    Revoked,
    /// Too many open connections for this user.
    TooManyConnections,
    /// The browser origin is not allowed.
    OriginNotAllowed,
    /// The server is shutting down; reconnect.
    ShuttingDown,
    /// A service the server depends on (the database, the bus between
    /// nodes) cannot be reached right now; nothing was done, retry later.
    Unavailable,
    /// Something failed inside the server; the details are in its log.
    Internal,
    /// A `Range` the file cannot satisfy (it starts past the end).
    RangeNotSatisfiable,
    /// A piece of a resumable upload does not start where the upload
    /// stands (another piece got there first, or one was lost): read the
    /// upload's `received` and go on from there.
    OffsetMismatch,
    /// A push subscription or webhook URL is not `https`, or resolves to a
    /// loopback, private, link-local or metadata address.
    UrlNotAllowed,
    /// The device has as many push subscriptions as it may.
    TooManySubscriptions,
    /// An admin disabled the account: its login and tokens are refused.
    AccountDisabled,
    /// A plaintext message for an end-to-end encrypted chat.
    EncryptionRequired,
    /// The device already published other identity keys, or a one-time
    /// key with this id and other contents.
    KeyConflict,
    /// A device's inbox of to-device messages is full; retry later.
    InboxFull,
    /// The path exists but not with this HTTP method (the web client's
    /// paths answer only GET and HEAD).
    MethodNotAllowed,
    /// The device was not used for longer than the server allows
    /// (`devices.idle_days`) and was logged out: sign in again.
    TokenExpired,
    /// The password was right, and the account has two-factor
    /// authentication on: log in again with `two_factor_code`.
    TwoFactorRequired,
    /// The two-factor code is wrong, expired, or was used already.
    InvalidTwoFactorCode,
    /// One of the two users blocked the other: no messages, typing,
    /// presence or group invitations between them.
    Blocked,
    /// The server signs people in only through its OpenID provider
    /// (single sign-on): no registering or password logins.
    SsoRequired,
    /// This device's login waits for approval from another device of the
    /// account: until then only `GET /v1/me` and logging out work.
    DeviceNotApproved,
    /// The server requires two-factor authentication and this account has
    /// not turned it on: until it does, only enrolling works.
    TwoFactorSetupRequired,
    /// A bot's token was used where only a person's device may act
    /// (account settings, making chats, administration…).
    NotForBots,
    /// A bot's token lacks the action this needs (`read`, `send`, `react`,
    /// `mark`, `typing`), or is limited to other chats.
    ScopeDenied,
}

impl ErrorCode {
    /// The HTTP status that goes with the code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::MalformedJson
            | ErrorCode::UnknownType
            | ErrorCode::InvalidField
            | ErrorCode::EncryptionRequired => 400,
            ErrorCode::TooLarge => 413,
            ErrorCode::RangeNotSatisfiable => 416,
            ErrorCode::RateLimited | ErrorCode::TooManyConnections | ErrorCode::InboxFull => 429,
            ErrorCode::Unauthorized
            | ErrorCode::InvalidCredentials
            | ErrorCode::AuthTimeout
            | ErrorCode::Revoked
            | ErrorCode::TokenExpired
            | ErrorCode::TwoFactorRequired
            | ErrorCode::InvalidTwoFactorCode => 401,
            ErrorCode::Forbidden
            | ErrorCode::OriginNotAllowed
            | ErrorCode::AccountDisabled
            | ErrorCode::Blocked
            | ErrorCode::SsoRequired
            | ErrorCode::DeviceNotApproved
            | ErrorCode::TwoFactorSetupRequired
            | ErrorCode::NotForBots
            | ErrorCode::ScopeDenied => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::UsernameTaken
            | ErrorCode::GroupFull
            | ErrorCode::AlreadyAuthenticated
            | ErrorCode::OffsetMismatch
            | ErrorCode::TooManySubscriptions
            | ErrorCode::KeyConflict => 409,
            ErrorCode::UrlNotAllowed => 422,
            ErrorCode::SlowConsumer | ErrorCode::ShuttingDown | ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::UsernameTaken => "username_taken",
            ErrorCode::GroupFull => "group_full",
            ErrorCode::AuthTimeout => "auth_timeout",
            ErrorCode::AlreadyAuthenticated => "already_authenticated",
            ErrorCode::SlowConsumer => "slow_consumer",
            ErrorCode::Revoked => "revoked",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::OriginNotAllowed => "origin_not_allowed",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::RangeNotSatisfiable => "range_not_satisfiable",
            ErrorCode::OffsetMismatch => "offset_mismatch",
            ErrorCode::UrlNotAllowed => "url_not_allowed",
            ErrorCode::TooManySubscriptions => "too_many_subscriptions",
            ErrorCode::AccountDisabled => "account_disabled",
            ErrorCode::EncryptionRequired => "encryption_required",
            ErrorCode::KeyConflict => "key_conflict",
            ErrorCode::InboxFull => "inbox_full",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::TwoFactorRequired => "two_factor_required",
            ErrorCode::InvalidTwoFactorCode => "invalid_two_factor_code",
            ErrorCode::Blocked => "blocked",
            ErrorCode::SsoRequired => "sso_required",
            ErrorCode::DeviceNotApproved => "device_not_approved",
            ErrorCode::TwoFactorSetupRequired => "two_factor_setup_required",
            ErrorCode::NotForBots => "not_for_bots",
            ErrorCode::ScopeDenied => "scope_denied",
        }
    }
}

/// The JSON body of every HTTP error response: `{"error":{"code":…,"message":…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The inside of an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}
