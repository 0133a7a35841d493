//! Server administration: the bodies of the `/v1/admin/` routes.

use crate::{ChatId, ChatKind, User, UserId};
use serde::{Deserialize, Serialize};

/// What a user may do on the server: run it, or just use it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    #[default]
    User,
    Admin,
}

impl Role {
    pub fn is_admin(self) -> bool {
        self == Role::Admin
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

/// A user as an admin sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminUser {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: i64,
    /// Live devices (logins not logged out).
    pub devices: u32,
    /// A bot (docs/protocol.md "Bots").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bot: bool,
}

/// `GET /v1/admin/users`: one page, by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminUserPage {
    pub users: Vec<AdminUser>,
    /// The `after` of the next page; `None` on the last.
    pub next: Option<UserId>,
}

/// `PUT /v1/admin/users/{id}/role`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetRoleRequest {
    pub role: Role,
}

/// `POST /v1/admin/users/{id}/password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 1024))]
    pub password: String,
    /// Log every device of the user out (the default).
    #[serde(default = "yes")]
    pub revoke_devices: bool,
}

fn yes() -> bool {
    true
}

/// A chat's membership as an admin sees it: who, not what was said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminChat {
    pub id: ChatId,
    pub kind: ChatKind,
    pub title: Option<String>,
    pub created_at: i64,
    /// The chat's last `seq`.
    pub messages: i64,
    /// Oldest member first.
    pub members: Vec<AdminMember>,
}

/// One member of an [`AdminChat`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminMember {
    pub user: User,
    /// A group admin (of this chat, not of the server).
    pub admin: bool,
    pub joined_at: i64,
}

/// `GET /v1/admin/stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerStats {
    pub users: u64,
    pub disabled_users: u64,
    pub admins: u64,
    /// Live devices of all users.
    pub devices: u64,
    /// Users with a socket open on any node.
    pub users_online: u64,
    pub chats: u64,
    /// Every message ever sent, deleted ones included.
    pub messages: u64,
    /// The last 7 days (UTC), oldest first, today included.
    pub messages_per_day: Vec<DayCount>,
    pub storage: StorageStats,
    pub jobs: JobStats,
}

/// Messages sent on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayCount {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub messages: u64,
}

/// Bytes the server keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StorageStats {
    pub database_bytes: u64,
    pub media_bytes: u64,
    pub media_files: u64,
}

/// The job queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobStats {
    pub pending: u64,
    pub dead: u64,
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01 (UTC, the proleptic
/// Gregorian calendar; Howard Hinnant's `civil_from_days`): a
/// [`DayCount`]'s `day`, and how clients print a date.
pub fn utc_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::utc_date;

    #[test]
    fn days_become_dates() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(59), "1970-03-01");
        assert_eq!(utc_date(11_016), "2000-02-29");
        assert_eq!(utc_date(20_791), "2026-12-04");
        assert_eq!(utc_date(-1), "1969-12-31");
    }
}
