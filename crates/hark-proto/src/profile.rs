//! A person's profile beyond their name: an "about" line and a photo, and
//! who may see each; and the export of everything the server keeps about
//! them (docs/protocol.md "Profile" and "Exporting your data").

use crate::{MediaId, UserId, Visibility};
use serde::{Deserialize, Serialize};

/// `GET /v1/me/profile`: your own profile and who sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MyProfile {
    /// The "about" line ("" when unset).
    pub about: String,
    /// The photo's version (changes with every new photo), `None` without
    /// one: fetch it from `GET /v1/users/{you}/photo`.
    pub photo: Option<String>,
    /// Who sees the about line.
    pub about_visibility: Visibility,
    /// Who sees the photo.
    pub photo_visibility: Visibility,
}

/// `PATCH /v1/me/profile`: what to change; at least one field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    /// At most 140 characters, one line ("" clears it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 140))]
    pub about: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about_visibility: Option<Visibility>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo_visibility: Option<Visibility>,
}

/// `PUT /v1/me/photo`: an image you uploaded (`POST /v1/media`) becomes
/// your photo, cut to the square at its centre.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetPhotoRequest {
    pub media_id: MediaId,
}

/// `GET /v1/users/{id}/profile`: what the caller may see of someone's
/// profile. A field is `None` when it is unset or hidden from the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Profile {
    pub user_id: UserId,
    pub about: Option<String>,
    /// The photo's version: `GET /v1/users/{id}/photo` serves it.
    pub photo: Option<String>,
}

/// The sizes a profile photo is kept in (`?size=` of
/// `GET /v1/users/{id}/photo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PhotoSize {
    /// 128 × 128: lists and chat headers.
    Small,
    /// 640 × 640 (or the original's side, if smaller).
    #[default]
    Large,
}

impl PhotoSize {
    /// The side of the square, in pixels, at most.
    pub const fn side(self) -> u32 {
        match self {
            PhotoSize::Small => 128,
            PhotoSize::Large => 640,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            PhotoSize::Small => "small",
            PhotoSize::Large => "large",
        }
    }
}

/// Where an export of your data stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExportStatus {
    /// Waiting for, or being prepared by, the job queue.
    Pending,
    /// The archive can be downloaded until `expires_at`.
    Ready,
    /// It could not be prepared; ask for a new one.
    Failed,
}

/// `POST` / `GET /v1/me/export`: your latest export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DataExport {
    pub id: String,
    pub status: ExportStatus,
    /// When it was asked for (ms since the epoch).
    pub requested_at: i64,
    /// When it was ready or failed.
    pub finished_at: Option<i64>,
    /// The archive's size in bytes, once ready.
    pub size: Option<u64>,
    /// When a ready archive is removed from the server.
    pub expires_at: Option<i64>,
}
