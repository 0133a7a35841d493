//! Server administration (`/v1/admin/…`, docs/protocol.md
//! "Administration"): for a logged-in server admin; anyone else gets
//! `forbidden`.

use crate::api::{decode, Api};
use crate::Result;
use hark_proto::{
    AdminChat, AdminUser, AdminUserPage, ChatId, Device, DeviceId, ResetPasswordRequest, Role,
    ServerStats, SetRoleRequest, UserId,
};
use reqwest::Method;

impl Api {
    /// `GET /v1/admin/users`: users by id after `after` (0 for the first
    /// page), those whose username starts with `prefix` when not empty.
    pub async fn admin_users(
        &self,
        prefix: &str,
        after: UserId,
        limit: u32,
    ) -> Result<AdminUserPage> {
        let req = self.request(Method::GET, "/v1/admin/users")?.query(&[
            ("q", prefix.to_owned()),
            ("after", after.0.to_string()),
            ("limit", limit.to_string()),
        ]);
        decode(req.send().await?).await
    }

    /// The user with exactly this username (any case), if there is one.
    pub async fn admin_user_by_username(&self, username: &str) -> Result<Option<AdminUser>> {
        let page = self.admin_users(username, UserId(0), 200).await?;
        Ok(page
            .users
            .into_iter()
            .find(|u| u.username.eq_ignore_ascii_case(username)))
    }

    /// `GET /v1/admin/users/{id}`.
    pub async fn admin_user(&self, user: UserId) -> Result<AdminUser> {
        let path = format!("/v1/admin/users/{user}");
        self.call(Method::GET, &path, None::<&()>, true).await
    }

    /// `POST /v1/admin/users/{id}/disable` (`enable: false`) or `…/enable`.
    pub async fn set_user_enabled(&self, user: UserId, enable: bool) -> Result<AdminUser> {
        let action = if enable { "enable" } else { "disable" };
        let path = format!("/v1/admin/users/{user}/{action}");
        self.call(Method::POST, &path, None::<&()>, true).await
    }

    /// `PUT /v1/admin/users/{id}/role`.
    pub async fn set_role(&self, user: UserId, role: Role) -> Result<AdminUser> {
        let path = format!("/v1/admin/users/{user}/role");
        self.call(Method::PUT, &path, Some(&SetRoleRequest { role }), true)
            .await
    }

    /// `POST /v1/admin/users/{id}/password`.
    pub async fn reset_password(
        &self,
        user: UserId,
        password: &str,
        revoke_devices: bool,
    ) -> Result<()> {
        let path = format!("/v1/admin/users/{user}/password");
        let body = ResetPasswordRequest {
            password: password.to_owned(),
            revoke_devices,
        };
        self.call_empty(Method::POST, &path, Some(&body)).await
    }

    /// `GET /v1/admin/users/{id}/devices`.
    pub async fn admin_devices(&self, user: UserId) -> Result<Vec<Device>> {
        let path = format!("/v1/admin/users/{user}/devices");
        self.call(Method::GET, &path, None::<&()>, true).await
    }

    /// `DELETE /v1/admin/users/{id}/devices/{device}`.
    pub async fn admin_revoke_device(&self, user: UserId, device: DeviceId) -> Result<()> {
        let path = format!("/v1/admin/users/{user}/devices/{device}");
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }

    /// `GET /v1/admin/chats/{id}`: who is in a chat.
    pub async fn admin_chat(&self, chat: ChatId) -> Result<AdminChat> {
        let path = format!("/v1/admin/chats/{chat}");
        self.call(Method::GET, &path, None::<&()>, true).await
    }

    /// `GET /v1/admin/stats`.
    pub async fn server_stats(&self) -> Result<ServerStats> {
        self.call(Method::GET, "/v1/admin/stats", None::<&()>, true)
            .await
    }
}
