//! The caller's own account (docs/protocol.md "Your account"): changing
//! the password, two-factor authentication, approving new devices,
//! deleting the account, contacts and blocked users.
//!
//! Refusals come back as [`crate::Error::Server`] with the server's code:
//! `invalid_credentials` for a wrong password, `invalid_two_factor_code`
//! for a wrong, expired, used or missing code, `blocked` (from sends, reactions,
//! typing and group changes elsewhere) while either of two users blocks
//! the other.
//!
//! Two refusals say a token works only in part (see [`Api::me`]):
//! `device_not_approved` (this login waits for another device of the
//! account to approve it: [`hark_proto::Me`]'s `device.pending`) and
//! `two_factor_setup_required` (the server requires two-factor
//! authentication and the account has not turned it on:
//! `two_factor_setup_required`; [`Api::start_two_factor`] and
//! [`Api::confirm_two_factor`] still work and lift it).

use crate::api::Api;
use crate::Result;
use hark_proto::{
    ChangePasswordRequest, DeviceApproval, DeviceId, PasswordChanged, RecoveryCodes, TwoFactorCode,
    TwoFactorEnrolment, TwoFactorPassword, TwoFactorStatus, User, UserId,
};
use reqwest::Method;

impl Api {
    /// `POST /v1/me/password`: replaces the password (8 to 1024 bytes).
    /// With `log_out_other_devices`, every other device of the account is
    /// logged out; this one stays logged in either way.
    pub async fn change_password(
        &self,
        current_password: &str,
        new_password: &str,
        log_out_other_devices: bool,
    ) -> Result<PasswordChanged> {
        let body = ChangePasswordRequest {
            current_password: current_password.to_owned(),
            new_password: new_password.to_owned(),
            log_out_other_devices,
        };
        self.call(Method::POST, "/v1/me/password", Some(&body), true)
            .await
    }

    /// `GET /v1/me/two-factor`: whether a login needs a code, and how many
    /// recovery codes are left.
    pub async fn two_factor_status(&self) -> Result<TwoFactorStatus> {
        self.call(Method::GET, "/v1/me/two-factor", None::<&()>, true)
            .await
    }

    /// `POST /v1/me/two-factor`: starts (or starts again) turning two-factor
    /// authentication on. Logins change only once
    /// [`Api::confirm_two_factor`] proves the authenticator app has the
    /// secret.
    pub async fn start_two_factor(&self, password: &str) -> Result<TwoFactorEnrolment> {
        let body = TwoFactorPassword {
            password: password.to_owned(),
            code: None,
        };
        self.call(Method::POST, "/v1/me/two-factor", Some(&body), true)
            .await
    }

    /// `POST /v1/me/two-factor/confirm` with a code from the app: turns it
    /// on, and answers the recovery codes, which are never shown again.
    pub async fn confirm_two_factor(&self, code: &str) -> Result<RecoveryCodes> {
        let body = TwoFactorCode {
            code: code.to_owned(),
        };
        self.call(Method::POST, "/v1/me/two-factor/confirm", Some(&body), true)
            .await
    }

    /// `POST /v1/me/two-factor/disable`: turns it off, given the password
    /// and a current code or an unused recovery code.
    pub async fn disable_two_factor(&self, password: &str, code: &str) -> Result<()> {
        let body = TwoFactorPassword {
            password: password.to_owned(),
            code: Some(code.to_owned()),
        };
        self.call_empty(Method::POST, "/v1/me/two-factor/disable", Some(&body))
            .await
    }

    /// `POST /v1/devices/{device_id}/approve`: lets a pending login of the
    /// account (a [`hark_proto::Device`] with `pending`) in. `not_found`
    /// when that device is not the account's, not waiting or logged out;
    /// `device_not_approved` when this device is itself waiting. To refuse
    /// a login, log it out with [`Api::revoke_device`].
    pub async fn approve_device(&self, device_id: DeviceId) -> Result<()> {
        let path = format!("/v1/devices/{device_id}/approve");
        self.call_empty(Method::POST, &path, None::<&()>).await
    }

    /// `GET /v1/me/device-approval`: whether a new login of the account
    /// waits for one of its devices to approve it.
    pub async fn device_approval(&self) -> Result<bool> {
        let answer: DeviceApproval = self
            .call(Method::GET, "/v1/me/device-approval", None::<&()>, true)
            .await?;
        Ok(answer.required)
    }

    /// `PUT /v1/me/device-approval`: turns approval of new logins on or
    /// off; answers the setting as it is now.
    pub async fn set_device_approval(&self, required: bool) -> Result<bool> {
        let body = DeviceApproval { required };
        let answer: DeviceApproval = self
            .call(Method::PUT, "/v1/me/device-approval", Some(&body), true)
            .await?;
        Ok(answer.required)
    }

    /// `POST /v1/me/delete`: deletes the caller's account, for good. Before
    /// it answers, every device of the account is logged out (this client's
    /// token too), every message it sent is erased for everyone, it leaves
    /// its groups, and what stays is `deleted-<id>`, "Deleted account".
    ///
    /// With two-factor authentication on, `code` (a current code or an
    /// unused recovery code) is needed: without it, or with a wrong one, the
    /// answer is `invalid_two_factor_code`; a wrong password is
    /// `invalid_credentials`. Either way nothing is done.
    pub async fn delete_account(&self, password: &str, code: Option<&str>) -> Result<()> {
        let body = TwoFactorPassword {
            password: password.to_owned(),
            code: code.map(str::to_owned),
        };
        self.call_empty(Method::POST, "/v1/me/delete", Some(&body))
            .await
    }

    /// `GET /v1/contacts`: the caller's address book, by display name.
    pub async fn contacts(&self) -> Result<Vec<User>> {
        self.call(Method::GET, "/v1/contacts", None::<&()>, true)
            .await
    }

    /// `PUT /v1/contacts/{user_id}` (again is fine; they are not told).
    pub async fn add_contact(&self, user_id: UserId) -> Result<()> {
        let path = format!("/v1/contacts/{user_id}");
        self.call_empty(Method::PUT, &path, None::<&()>).await
    }

    /// `DELETE /v1/contacts/{user_id}` (fine when they were not one).
    pub async fn remove_contact(&self, user_id: UserId) -> Result<()> {
        let path = format!("/v1/contacts/{user_id}");
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }

    /// `GET /v1/blocks`: the users the caller blocked.
    pub async fn blocks(&self) -> Result<Vec<User>> {
        self.call(Method::GET, "/v1/blocks", None::<&()>, true)
            .await
    }

    /// `PUT /v1/blocks/{user_id}`: from now on neither can message the
    /// other, type to them, add them to a group or see them online (they
    /// are not told; chats they share stay).
    pub async fn block(&self, user_id: UserId) -> Result<()> {
        let path = format!("/v1/blocks/{user_id}");
        self.call_empty(Method::PUT, &path, None::<&()>).await
    }

    /// `DELETE /v1/blocks/{user_id}`.
    pub async fn unblock(&self, user_id: UserId) -> Result<()> {
        let path = format!("/v1/blocks/{user_id}");
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }
}
