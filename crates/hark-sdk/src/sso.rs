//! Single sign-on through the server's OpenID provider (docs/protocol.md
//! "Single sign-on"): whether it is offered, where a browser starts, and
//! redeeming the one-time ticket the browser brings back for a device.
//!
//! The sign-in itself happens in a browser, which the server sends to the
//! provider and back to `return_to` with `?sso_ticket=…` (or
//! `?sso_error=<reason>`); a command-line client listens on a loopback
//! address for it (RFC 8252) and redeems the ticket with
//! [`Api::sso_redeem`].

use crate::api::Api;
use crate::Result;
use hark_proto::{LoginResponse, SsoInfo, SsoRedeem};
use reqwest::Method;

impl Api {
    /// `GET /v1/sso` (no token needed): whether single sign-on is offered,
    /// what its button says, and whether it is the only way in.
    pub async fn sso_info(&self) -> Result<SsoInfo> {
        self.call(Method::GET, "/v1/sso", None::<&()>, false).await
    }

    /// The address a browser opens to sign in: `/v1/sso/start` coming back
    /// to `return_to` (a path of this server, or a loopback address with a
    /// port such as `http://127.0.0.1:49152/`). Made here, not fetched: it
    /// is a navigation, and the cookie it sets belongs to the browser.
    pub fn sso_start_url(&self, return_to: &str) -> String {
        format!(
            "{}/v1/sso/start?return_to={}",
            self.base_url(),
            crate::url::query_value(return_to)
        )
    }

    /// `POST /v1/sso/redeem`: the ticket a finished sign-in handed back,
    /// for a new device, answered as [`Api::login`] answers (this client's
    /// token does not change). A ticket works once, within 2 minutes: an
    /// unknown, used or expired one is `invalid_credentials`; a disabled
    /// account `account_disabled`.
    pub async fn sso_redeem(&self, ticket: &str, device_name: &str) -> Result<LoginResponse> {
        let body = SsoRedeem {
            ticket: ticket.to_owned(),
            device_name: device_name.to_owned(),
        };
        self.call(Method::POST, "/v1/sso/redeem", Some(&body), false)
            .await
    }
}
