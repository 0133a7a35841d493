//! `Api`: a typed HTTP client for every `/v1` route, one method per route.

use crate::{Error, Result};
use hark_proto::{
    AddMemberRequest, Chat, ChatId, ChatSettings, ChatSettingsRequest, ChatSummary,
    CreateDirectRequest, CreateGroupRequest, Device, DeviceId, ErrorBody, ErrorCode, History,
    LoginRequest, LoginResponse, Me, MessageInfo, Register, RenameChatRequest, SearchResults,
    SendAck, SendRequest, Seq, SetAdminRequest, UpdateProfileRequest, User, UserId,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Which page of a chat's history to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Page {
    /// The newest messages.
    #[default]
    Newest,
    /// Messages with `seq` below this one (scrolling back).
    Before(Seq),
    /// Messages with `seq` above this one (catching up in one chat).
    After(Seq),
}

/// How many times [`Api::send`] sends again a message refused with
/// `rate_limited`, a second apart.
pub const SEND_RETRIES: u32 = 30;

/// An HTTP client for one server, optionally holding a device token.
///
/// Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Api {
    pub(crate) http: reqwest::Client,
    /// The server's base URL without a trailing slash, e.g. `http://127.0.0.1:8080`.
    base: String,
    /// The bearer token of the logged-in device, if any.
    token: Option<String>,
}

impl Api {
    /// A client for the server at `base_url` (`http://host:port`), with no token.
    pub fn new(base_url: &str) -> Result<Self> {
        let base = crate::url::http_base(base_url)?;
        Ok(Api {
            http: reqwest::Client::new(),
            base,
            token: None,
        })
    }

    /// The same client, trusting the roots of `tls` (a private CA) for
    /// `https://`.
    pub fn with_tls(mut self, tls: &crate::Tls) -> Result<Self> {
        self.http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls.config).clone())
            .build()?;
        Ok(self)
    }

    /// The same client, authenticated as the device holding `token`.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Replace (or forget, with `None`) the token.
    pub fn set_token(&mut self, token: Option<String>) {
        self.token = token;
    }

    /// The token in use, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The server's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The WebSocket URL of this server (`ws://host:port/v1/ws`).
    pub fn ws_url(&self) -> Result<String> {
        crate::url::ws_url(&self.base)
    }

    /// `POST /v1/register`.
    pub async fn register(&self, body: &Register) -> Result<User> {
        self.call(Method::POST, "/v1/register", Some(body), false)
            .await
    }

    /// `POST /v1/login`. Does not change this client's token; use
    /// [`Api::with_token`] with the answer's token.
    ///
    /// An account with two-factor authentication on answers the right
    /// password without `two_factor_code` with `two_factor_required`: ask
    /// for a code and log in again with it (or with a recovery code).
    pub async fn login(&self, body: &LoginRequest) -> Result<LoginResponse> {
        self.call(Method::POST, "/v1/login", Some(body), false)
            .await
    }

    /// `POST /v1/logout`: revokes the calling device's token.
    pub async fn logout(&self) -> Result<()> {
        self.call_empty(Method::POST, "/v1/logout", None::<&()>)
            .await
    }

    /// `GET /v1/me`. It answers a token that works for nothing else too:
    /// `device.pending` (the login waits for approval; other routes and the
    /// WebSocket are `device_not_approved`) and `two_factor_setup_required`
    /// (other routes but two-factor enrolment are
    /// `two_factor_setup_required`) say why. Poll it to learn of an approval.
    pub async fn me(&self) -> Result<Me> {
        self.call(Method::GET, "/v1/me", None::<&()>, true).await
    }

    /// `PATCH /v1/me`.
    pub async fn update_profile(&self, body: &UpdateProfileRequest) -> Result<User> {
        self.call(Method::PATCH, "/v1/me", Some(body), true).await
    }

    /// `GET /v1/devices`.
    pub async fn devices(&self) -> Result<Vec<Device>> {
        self.call(Method::GET, "/v1/devices", None::<&()>, true)
            .await
    }

    /// `DELETE /v1/devices/{device_id}`: revokes that device (closing its sockets).
    pub async fn revoke_device(&self, device_id: DeviceId) -> Result<()> {
        let path = format!("/v1/devices/{device_id}");
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }

    /// `GET /v1/users?q=prefix`: users whose username starts with `prefix` (at most 50).
    pub async fn search_users(&self, prefix: &str) -> Result<Vec<User>> {
        let req = self
            .request(Method::GET, "/v1/users")?
            .query(&[("q", prefix)]);
        decode(req.send().await?).await
    }

    /// `GET /v1/users/{user_id}`.
    pub async fn user(&self, user_id: UserId) -> Result<User> {
        let path = format!("/v1/users/{user_id}");
        self.call(Method::GET, &path, None::<&()>, true).await
    }

    /// The user with exactly this username, if there is one.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        let found = self.search_users(username).await?;
        Ok(found.into_iter().find(|u| u.username == username))
    }

    /// `POST /v1/chats/direct`: the one-to-one chat with `user_id` (created once per pair).
    pub async fn create_direct(&self, user_id: UserId) -> Result<Chat> {
        self.create_direct_chat(&CreateDirectRequest {
            user_id,
            encrypted: false,
        })
        .await
    }

    /// `POST /v1/chats/direct` with every option (`encrypted`: end-to-end
    /// encrypted, when this call creates the chat).
    pub async fn create_direct_chat(&self, body: &CreateDirectRequest) -> Result<Chat> {
        self.call(Method::POST, "/v1/chats/direct", Some(body), true)
            .await
    }

    /// `POST /v1/chats/groups`.
    pub async fn create_group(&self, body: &CreateGroupRequest) -> Result<Chat> {
        self.call(Method::POST, "/v1/chats/groups", Some(body), true)
            .await
    }

    /// `GET /v1/chats`: the caller's chats, newest activity first.
    pub async fn chats(&self) -> Result<Vec<ChatSummary>> {
        self.call(Method::GET, "/v1/chats", None::<&()>, true).await
    }

    /// `GET /v1/chats/{chat_id}`.
    pub async fn chat(&self, chat_id: ChatId) -> Result<ChatSummary> {
        let path = format!("/v1/chats/{chat_id}");
        self.call(Method::GET, &path, None::<&()>, true).await
    }

    /// `PATCH /v1/chats/{chat_id}`: rename a group.
    pub async fn rename_chat(&self, chat_id: ChatId, title: &str) -> Result<Chat> {
        let path = format!("/v1/chats/{chat_id}");
        let body = RenameChatRequest {
            title: title.to_owned(),
        };
        self.call(Method::PATCH, &path, Some(&body), true).await
    }

    /// `PUT /v1/chats/{chat_id}/disappearing`: the chat's
    /// disappearing-messages timer, one of [`hark_proto::DISAPPEARING_SECS`]
    /// (0 turns it off); messages sent from now on disappear this long after
    /// they are sent.
    pub async fn set_disappearing(&self, chat_id: ChatId, seconds: u32) -> Result<Chat> {
        let path = format!("/v1/chats/{chat_id}/disappearing");
        let body = hark_proto::DisappearingRequest { seconds };
        self.call(Method::PUT, &path, Some(&body), true).await
    }

    /// `POST /v1/chats/{chat_id}/members`.
    pub async fn add_member(&self, chat_id: ChatId, user_id: UserId) -> Result<Chat> {
        let path = format!("/v1/chats/{chat_id}/members");
        let body = AddMemberRequest { user_id };
        self.call(Method::POST, &path, Some(&body), true).await
    }

    /// `DELETE /v1/chats/{chat_id}/members/{user_id}`: remove a member, or
    /// leave when `user_id` is the caller.
    pub async fn remove_member(&self, chat_id: ChatId, user_id: UserId) -> Result<()> {
        let path = format!("/v1/chats/{chat_id}/members/{user_id}");
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }

    /// `PATCH /v1/chats/{chat_id}/members/{user_id}`: make or unmake an admin.
    pub async fn set_admin(&self, chat_id: ChatId, user_id: UserId, admin: bool) -> Result<Chat> {
        let path = format!("/v1/chats/{chat_id}/members/{user_id}");
        let body = SetAdminRequest { admin };
        self.call(Method::PATCH, &path, Some(&body), true).await
    }

    /// `GET /v1/chats/{chat_id}/messages`: one page, ascending by seq, with
    /// the membership and title events within it (`History::lines`, each
    /// after the seq it followed). `limit` is capped by the server at 200
    /// (50 when `None`).
    pub async fn history(
        &self,
        chat_id: ChatId,
        page: Page,
        limit: Option<u32>,
    ) -> Result<History> {
        let path = format!("/v1/chats/{chat_id}/messages");
        let mut query: Vec<(&str, String)> = Vec::new();
        match page {
            Page::Newest => {}
            Page::Before(seq) => query.push(("before", seq.to_string())),
            Page::After(seq) => query.push(("after", seq.to_string())),
        }
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        let req = self.request(Method::GET, &path)?.query(&query);
        decode(req.send().await?).await
    }

    /// `POST /v1/chats/{chat_id}/messages`: send over HTTP. Resending the same
    /// `client_id` returns the original seq with `duplicate: true`.
    ///
    /// A send refused with `rate_limited` (the device's `sends_per_second`)
    /// goes again a second later with the same client id, so it cannot be
    /// stored twice, up to [`SEND_RETRIES`] times, as the WebSocket outbox
    /// does; past that the refusal is returned.
    pub async fn send(&self, chat_id: ChatId, body: &SendRequest) -> Result<SendAck> {
        let path = format!("/v1/chats/{chat_id}/messages");
        let mut tries = 0;
        loop {
            match self.call(Method::POST, &path, Some(body), true).await {
                Err(e) if e.code() == Some(ErrorCode::RateLimited) && tries < SEND_RETRIES => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                answer => return answer,
            }
        }
    }

    /// `GET /v1/search`: messages matching every word (the last as a
    /// prefix) in the caller's chats, newest first.
    pub async fn search(
        &self,
        query: &str,
        chat_id: Option<ChatId>,
        limit: Option<u32>,
    ) -> Result<SearchResults> {
        let mut params = vec![("q", query.to_owned())];
        if let Some(chat) = chat_id {
            params.push(("chat_id", chat.to_string()));
        }
        if let Some(limit) = limit {
            params.push(("limit", limit.to_string()));
        }
        let req = self.request(Method::GET, "/v1/search")?.query(&params);
        decode(req.send().await?).await
    }

    /// `GET /v1/chats/{chat_id}/messages/{seq}/info`: who got and read one of
    /// the caller's messages, when.
    pub async fn message_info(&self, chat_id: ChatId, seq: Seq) -> Result<MessageInfo> {
        let path = format!("/v1/chats/{chat_id}/messages/{seq}/info");
        self.call(Method::GET, &path, None::<&()>, true).await
    }

    /// `PATCH /v1/chats/{chat_id}/settings`: mute, archive or pin, for all
    /// of the caller's devices.
    pub async fn set_chat_settings(
        &self,
        chat_id: ChatId,
        change: &ChatSettingsRequest,
    ) -> Result<ChatSettings> {
        let path = format!("/v1/chats/{chat_id}/settings");
        self.call(Method::PATCH, &path, Some(change), true).await
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> Result<RequestBuilder> {
        let token = self.token.as_deref().ok_or(Error::NoToken)?;
        Ok(self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token))
    }

    pub(crate) async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        auth: bool,
    ) -> Result<T> {
        let mut req = if auth {
            self.request(method, path)?
        } else {
            self.http.request(method, format!("{}{path}", self.base))
        };
        if let Some(body) = body {
            req = req.json(body);
        }
        decode(req.send().await?).await
    }

    pub(crate) async fn call_empty<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<()> {
        let mut req = self.request(method, path)?;
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(error_from(resp).await)
        }
    }
}

pub(crate) async fn decode<T: DeserializeOwned>(resp: Response) -> Result<T> {
    if !resp.status().is_success() {
        return Err(error_from(resp).await);
    }
    let bytes = resp.bytes().await?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// Turn a failed response into [`Error::Server`] when it carries an error
/// body, else into [`Error::Status`].
pub(crate) async fn error_from(resp: Response) -> Error {
    let status = resp.status();
    let body = match resp.text().await {
        Ok(body) => body,
        Err(e) => return Error::Http(e),
    };
    error_from_parts(status, &body)
}

fn error_from_parts(status: StatusCode, body: &str) -> Error {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => Error::Server {
            status: status.as_u16(),
            code: error.code,
            message: error.message,
        },
        Err(_) => Error::Status {
            status: status.as_u16(),
            body: body.chars().take(200).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_keep_the_code() {
        let e = error_from_parts(
            StatusCode::CONFLICT,
            r#"{"error":{"code":"username_taken","message":"taken"}}"#,
        );
        assert_eq!(e.code(), Some(ErrorCode::UsernameTaken));
        let e = error_from_parts(StatusCode::BAD_GATEWAY, "<html>");
        assert!(matches!(e, Error::Status { status: 502, .. }));
    }

    #[tokio::test]
    async fn routes_needing_a_token_fail_without_one() {
        let api = Api::new("http://127.0.0.1:9").unwrap();
        assert!(matches!(api.me().await, Err(Error::NoToken)));
    }
}
