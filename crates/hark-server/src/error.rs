//! The API's error: a stable code from `hark-proto`, an HTTP status and a
//! message. Internal causes are logged, never shown.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hark_proto::{ErrorBody, ErrorCode};
use hark_store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds after which a retry may succeed (`Retry-After`), when known.
    pub retry_after_secs: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::InvalidField, message)
    }

    pub fn unauthorized() -> Self {
        ApiError::new(ErrorCode::Unauthorized, "a valid bearer token is required")
    }

    /// `503 unavailable` with `Retry-After: 1`: nothing was done, and the
    /// same request may succeed shortly.
    pub fn retry_later(message: impl Into<String>) -> Self {
        ApiError {
            retry_after_secs: Some(1),
            ..ApiError::new(ErrorCode::Unavailable, message)
        }
    }

    /// A storage failure of the media store: `503` when the disk is full
    /// (the upload may be retried once there is room), else internal.
    pub fn storage(cause: impl std::error::Error + 'static) -> Self {
        if disk_full(&cause) {
            tracing::error!(error = %cause, "the media store's disk is full");
            return ApiError::retry_later(
                "the server's disk is full; nothing was stored; retry later",
            );
        }
        ApiError::internal(cause)
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(ErrorCode::Internal, "internal server error")
    }
}

/// Whether an error, or one it wraps, is "no space left on device" (or
/// over a disk quota).
fn disk_full(cause: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(cause);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) {
                return true;
            }
        }
        next = e.source();
    }
    false
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::new(ErrorCode::NotFound, "not found"),
            StoreError::Forbidden(why) => ApiError::new(ErrorCode::Forbidden, why),
            StoreError::UsernameTaken => {
                ApiError::new(ErrorCode::UsernameTaken, "that username is taken")
            }
            StoreError::GroupFull(max) => ApiError::new(
                ErrorCode::GroupFull,
                format!("a group holds at most {max} members"),
            ),
            StoreError::Invalid(why) => ApiError::invalid(why),
            StoreError::Blocked(why) => ApiError::new(ErrorCode::Blocked, why),
            StoreError::EncryptionRequired => ApiError::new(
                ErrorCode::EncryptionRequired,
                "this chat is end-to-end encrypted: send the message's ciphertext in `encrypted`, with an empty text",
            ),
            StoreError::KeyConflict(why) => ApiError::new(ErrorCode::KeyConflict, why),
            StoreError::InboxFull(max) => ApiError::new(
                ErrorCode::InboxFull,
                format!("a device's inbox holds at most {max} messages; retry later"),
            ),
            StoreError::TooManySubscriptions(max) => ApiError::new(
                ErrorCode::TooManySubscriptions,
                format!("a device may have at most {max} push subscriptions"),
            ),
            other if other.is_disk_full() => {
                tracing::error!(error = %other, "the database's disk is full");
                ApiError::retry_later("the server's disk is full; nothing was stored; retry later")
            }
            StoreError::Busy => {
                tracing::debug!("the database's write queue is full; refusing a write");
                ApiError::retry_later("the server is busy; nothing was stored; retry")
            }
            other if other.is_retryable() => {
                tracing::warn!(error = %other, "database unavailable");
                ApiError::retry_later("the database could not store this right now; nothing was stored; retry")
            }
            other => ApiError::internal(other),
        }
    }
}

/// Counts an error answered (`via`: `http` for a response, `ws` for an
/// `error` frame) in `hark_errors_total{code, via}`: every refusal, by its
/// documented code.
pub(crate) fn counted(code: ErrorCode, via: &'static str) {
    metrics::counter!("hark_errors_total", "code" => code.as_str(), "via" => via).increment(1);
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        counted(self.code, "http");
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(ErrorBody::new(self.code, self.message))).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}
