//! Profiles and data exports, once for both backends: a user's about line,
//! their photo's version and who sees each (columns of `users`), and the
//! rows of their data exports (`exports`). The photo's images and the
//! export's archive are bytes in the media store, the server's.

use crate::columns::{parse_visibility, visibility_str};
use crate::jobs::NewJob;
use crate::StoreResult;
use hark_proto::{DataExport, ExportStatus, MyProfile, ProfileUpdate, UserId};

/// The job that prepares an export: its payload is [`ExportJob`].
pub const EXPORT_JOB: &str = "export";
/// The job that removes an export's archive once it expires.
pub const EXPORT_EXPIRY_JOB: &str = "export_expiry";

/// What an export job carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportJob {
    pub export: String,
    pub user: UserId,
}

impl ExportJob {
    pub fn job(&self, kind: &str, run_at: i64) -> NewJob {
        NewJob {
            kind: kind.to_owned(),
            payload: serde_json::to_string(self).unwrap_or_default(),
            run_at,
        }
    }
}

/// `$1` the user: `about, about_privacy, photo, photo_privacy`.
pub(crate) const PROFILE: &str =
    "SELECT about, about_privacy, photo, photo_privacy FROM users WHERE id = $1";

/// `$1` about, `$2` its visibility, `$3` the photo's, each null to keep it;
/// `$4` the user.
pub(crate) const UPDATE: &str = "UPDATE users
     SET about = COALESCE($1, about),
         about_privacy = COALESCE($2, about_privacy),
         photo_privacy = COALESCE($3, photo_privacy)
     WHERE id = $4";

/// `$1` the user: the photo's version.
pub(crate) const PHOTO: &str = "SELECT photo FROM users WHERE id = $1";

/// `$1` the new version (or null), `$2` the user.
pub(crate) const SET_PHOTO: &str = "UPDATE users SET photo = $1 WHERE id = $2";

/// Every photo version a user's row names (for the media sweep).
pub(crate) const PHOTOS_IN_USE: &str = "SELECT photo FROM users WHERE photo IS NOT NULL";

/// The columns of an export, in [`export`]'s order.
const EXPORT_COLUMNS: &str = "id, status, requested_at, finished_at, size, expires_at";

/// `$1` the user: their pending export, if any.
pub(crate) fn pending() -> String {
    format!("SELECT {EXPORT_COLUMNS} FROM exports WHERE user_id = $1 AND status = 'pending'")
}

/// `$1` the user: their newest export.
pub(crate) fn latest() -> String {
    format!(
        "SELECT {EXPORT_COLUMNS} FROM exports WHERE user_id = $1
         ORDER BY requested_at DESC, id DESC LIMIT 1"
    )
}

/// `$1` the export, `$2` its user.
pub(crate) fn one() -> String {
    format!("SELECT {EXPORT_COLUMNS} FROM exports WHERE id = $1 AND user_id = $2")
}

/// `$1` id, `$2` user, `$3` now.
pub(crate) const INSERT_EXPORT: &str = "INSERT INTO exports (id, user_id, status, requested_at)
     VALUES ($1, $2, 'pending', $3)";

/// `$1` status, `$2` finished at, `$3` size, `$4` expires at, `$5` the
/// export: only a pending one finishes.
pub(crate) const FINISH_EXPORT: &str = "UPDATE exports
     SET status = $1, finished_at = $2, size = $3, expires_at = $4
     WHERE id = $5 AND status = 'pending'";

/// `$1` the export.
pub(crate) const REMOVE_EXPORT: &str = "DELETE FROM exports WHERE id = $1";

/// `$1` the user: the ids of all their exports (to remove them with the
/// account).
pub(crate) const EXPORTS_OF: &str = "SELECT id FROM exports WHERE user_id = $1";

/// A profile from [`PROFILE`]'s columns.
pub(crate) fn my_profile(
    about: String,
    about_privacy: &str,
    photo: Option<String>,
    photo_privacy: &str,
) -> StoreResult<MyProfile> {
    Ok(MyProfile {
        about,
        photo,
        about_visibility: parse_visibility(about_privacy)?,
        photo_visibility: parse_visibility(photo_privacy)?,
    })
}

/// [`UPDATE`]'s first three parameters.
pub(crate) fn update_params(
    update: &ProfileUpdate,
) -> (Option<&str>, Option<&'static str>, Option<&'static str>) {
    (
        update.about.as_deref(),
        update.about_visibility.map(visibility_str),
        update.photo_visibility.map(visibility_str),
    )
}

pub(crate) fn status_str(status: ExportStatus) -> &'static str {
    match status {
        ExportStatus::Pending => "pending",
        ExportStatus::Ready => "ready",
        ExportStatus::Failed => "failed",
    }
}

/// An export from its columns.
pub(crate) fn export(
    id: String,
    status: &str,
    requested_at: i64,
    finished_at: Option<i64>,
    size: Option<i64>,
    expires_at: Option<i64>,
) -> StoreResult<DataExport> {
    let status = match status {
        "pending" => ExportStatus::Pending,
        "ready" => ExportStatus::Ready,
        "failed" => ExportStatus::Failed,
        other => return Err(crate::StoreError::Corrupt(format!("export status {other}"))),
    };
    Ok(DataExport {
        id,
        status,
        requested_at,
        finished_at,
        size: size.and_then(|s| u64::try_from(s).ok()),
        expires_at,
    })
}

/// How an export ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    pub status: ExportStatus,
    pub at: i64,
    pub size: Option<u64>,
    pub expires_at: Option<i64>,
}
