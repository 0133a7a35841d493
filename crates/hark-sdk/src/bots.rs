//! Bots and webhooks (docs/protocol.md "Bots" and "Webhooks"): a person's
//! calls to make bots, their tokens and webhooks; and the chat actions over
//! plain HTTP (typing, marks, reactions) that a bot's token (or anyone's)
//! may use without keeping a WebSocket.
//!
//! A bot signs in with a token its owner made ([`Api::create_bot_token`]):
//! `Api::new(url)?.with_token(token)` is the bot's client, and
//! [`Api::connect`] (or [`crate::Connection::connect`] with the token) its
//! WebSocket, as for a logged-in device. A bot has no password login.
//!
//! Refusals come back as [`crate::Error::Server`] with the server's code:
//! `not_for_bots` for a route a bot's token may not use (anything but
//! reading chats, users and `me`, sending, and the chat actions here);
//! `scope_denied` for an action the token was not given, or a chat it is
//! not limited to (and for a WebSocket opened with a token limited to some
//! chats: such a token works over HTTP only); `not_found` for a bot or
//! webhook that is not the caller's to manage; `url_not_allowed` for a
//! webhook URL that is not `https` on a public address.

use crate::api::Api;
use crate::{ClientEvent, ConnectOptions, Connection, Error, Result};
use hark_proto::{
    Activity, Bot, BotAction, BotToken, BotTokenCreated, ChatId, DeviceId, MarkRequest, NewBot,
    NewBotToken, NewWebhook, ReactRequest, Seq, TypingRequest, UserId, Webhook, WebhookCreated,
    WebhookDelivery, WebhookKind,
};
use reqwest::Method;
use tokio::sync::mpsc;

impl Api {
    /// `POST /v1/bots`: a bot owned by the caller (a person's login).
    /// `display_name` defaults to the username.
    pub async fn create_bot(&self, username: &str, display_name: Option<&str>) -> Result<Bot> {
        let body = NewBot {
            username: username.to_owned(),
            display_name: display_name.map(str::to_owned),
        };
        self.call(Method::POST, "/v1/bots", Some(&body), true).await
    }

    /// `GET /v1/bots`: the caller's bots, oldest first (an admin: every bot).
    pub async fn bots(&self) -> Result<Vec<Bot>> {
        self.call(Method::GET, "/v1/bots", None::<&()>, true).await
    }

    /// `GET /v1/bots/{bot_id}`: one of the caller's bots (`not_found` for
    /// anyone else's).
    pub async fn bot(&self, bot_id: UserId) -> Result<Bot> {
        let path = format!("/v1/bots/{bot_id}");
        self.call(Method::GET, &path, None::<&()>, true).await
    }

    /// `DELETE /v1/bots/{bot_id}`: its tokens stop working (open sockets
    /// close) and its webhooks are removed; its messages stay.
    pub async fn delete_bot(&self, bot_id: UserId) -> Result<()> {
        let path = format!("/v1/bots/{bot_id}");
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }

    /// `POST /v1/bots/{bot_id}/tokens`: a token for the bot, allowed these
    /// actions (at least one), in these chats (`None`: every chat the bot
    /// is in). The answer's `token` is shown this once.
    pub async fn create_bot_token(
        &self,
        bot_id: UserId,
        body: &NewBotToken,
    ) -> Result<BotTokenCreated> {
        let path = format!("/v1/bots/{bot_id}/tokens");
        self.call(Method::POST, &path, Some(body), true).await
    }

    /// [`Api::create_bot_token`] from its parts.
    pub async fn create_bot_token_for(
        &self,
        bot_id: UserId,
        name: &str,
        actions: &[BotAction],
        chats: Option<&[ChatId]>,
    ) -> Result<BotTokenCreated> {
        let body = NewBotToken {
            name: name.to_owned(),
            actions: actions.to_vec(),
            chats: chats.map(<[ChatId]>::to_vec),
        };
        self.create_bot_token(bot_id, &body).await
    }

    /// `GET /v1/bots/{bot_id}/tokens`: the bot's tokens (each a device of
    /// the bot's account, with its scope; not the secrets), oldest first.
    pub async fn bot_tokens(&self, bot_id: UserId) -> Result<Vec<BotToken>> {
        let path = format!("/v1/bots/{bot_id}/tokens");
        self.call(Method::GET, &path, None::<&()>, true).await
    }

    /// `DELETE /v1/bots/{bot_id}/tokens/{device_id}`: the token stops
    /// working and its sockets close.
    pub async fn revoke_bot_token(&self, bot_id: UserId, device_id: DeviceId) -> Result<()> {
        let path = format!("/v1/bots/{bot_id}/tokens/{device_id}");
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }

    /// `POST /v1/bots/{bot_id}/webhooks`: call `url` for the bot's events
    /// (every chat it is in) of these kinds (`None`: every kind). The
    /// answer's `secret` (which signs each call) is shown this once.
    pub async fn create_bot_webhook(
        &self,
        bot_id: UserId,
        url: &str,
        events: Option<&[WebhookKind]>,
    ) -> Result<WebhookCreated> {
        let path = format!("/v1/bots/{bot_id}/webhooks");
        self.call(Method::POST, &path, Some(&new_webhook(url, events)), true)
            .await
    }

    /// `GET /v1/bots/{bot_id}/webhooks`, oldest first.
    pub async fn bot_webhooks(&self, bot_id: UserId) -> Result<Vec<Webhook>> {
        let path = format!("/v1/bots/{bot_id}/webhooks");
        self.call(Method::GET, &path, None::<&()>, true).await
    }

    /// `POST /v1/chats/{chat_id}/webhooks`: call `url` for one chat's
    /// events as the caller sees them (a member; in a group, an admin of
    /// it). The answer's `secret` is shown this once.
    pub async fn create_chat_webhook(
        &self,
        chat_id: ChatId,
        url: &str,
        events: Option<&[WebhookKind]>,
    ) -> Result<WebhookCreated> {
        let path = format!("/v1/chats/{chat_id}/webhooks");
        self.call(Method::POST, &path, Some(&new_webhook(url, events)), true)
            .await
    }

    /// `GET /v1/chats/{chat_id}/webhooks`, oldest first (members only).
    pub async fn chat_webhooks(&self, chat_id: ChatId) -> Result<Vec<Webhook>> {
        let path = format!("/v1/chats/{chat_id}/webhooks");
        self.call(Method::GET, &path, None::<&()>, true).await
    }

    /// `GET /v1/webhooks/{id}` (not its secret).
    pub async fn webhook(&self, id: &str) -> Result<Webhook> {
        let path = format!("/v1/webhooks/{}", crate::url::segment(id));
        self.call(Method::GET, &path, None::<&()>, true).await
    }

    /// `DELETE /v1/webhooks/{id}`: no call starts after this; its delivery
    /// log goes too.
    pub async fn delete_webhook(&self, id: &str) -> Result<()> {
        let path = format!("/v1/webhooks/{}", crate::url::segment(id));
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }

    /// `POST /v1/webhooks/{id}/enable`: on again after too many failures
    /// turned it off; calls go on from the first event not delivered.
    pub async fn enable_webhook(&self, id: &str) -> Result<Webhook> {
        let path = format!("/v1/webhooks/{}/enable", crate::url::segment(id));
        self.call(Method::POST, &path, None::<&()>, true).await
    }

    /// `GET /v1/webhooks/{id}/deliveries?limit=`: its newest calls, newest
    /// first (`limit` 1 to 100; 50 when `None`).
    pub async fn webhook_deliveries(
        &self,
        id: &str,
        limit: Option<u32>,
    ) -> Result<Vec<WebhookDelivery>> {
        let path = format!("/v1/webhooks/{}/deliveries", crate::url::segment(id));
        let mut req = self.request(Method::GET, &path)?;
        if let Some(limit) = limit {
            req = req.query(&[("limit", limit.to_string())]);
        }
        crate::api::decode(req.send().await?).await
    }

    /// `POST /v1/chats/{chat_id}/typing`: tell the chat's watchers what the
    /// caller is doing, over HTTP (the WebSocket's typing frame without a
    /// socket). The indicator ends by itself after a few seconds, or at the
    /// caller's next message; [`Activity::Stopped`] ends it now.
    pub async fn typing(&self, chat_id: ChatId, activity: Activity) -> Result<()> {
        let path = format!("/v1/chats/{chat_id}/typing");
        let body = TypingRequest {
            activity: Some(activity),
        };
        self.call_empty(Method::POST, &path, Some(&body)).await
    }

    /// `POST /v1/chats/{chat_id}/marks`: raise the caller's delivered and/or
    /// read watermarks over HTTP (a watermark never goes down; read implies
    /// delivered).
    pub async fn mark(
        &self,
        chat_id: ChatId,
        delivered_up_to: Option<Seq>,
        read_up_to: Option<Seq>,
    ) -> Result<()> {
        let path = format!("/v1/chats/{chat_id}/marks");
        let body = MarkRequest {
            delivered_up_to,
            read_up_to,
        };
        self.call_empty(Method::POST, &path, Some(&body)).await
    }

    /// `PUT /v1/chats/{chat_id}/messages/{seq}/reaction`: set (`Some`) or
    /// take back (`None`) the caller's reaction, over HTTP.
    pub async fn react(&self, chat_id: ChatId, seq: Seq, emoji: Option<&str>) -> Result<()> {
        let path = format!("/v1/chats/{chat_id}/messages/{seq}/reaction");
        let body = ReactRequest {
            emoji: emoji.map(str::to_owned),
        };
        self.call_empty(Method::PUT, &path, Some(&body)).await
    }

    /// Opens this client's WebSocket with its token, as
    /// [`Connection::connect`] does: a logged-in device's token or a bot's
    /// (which needs `read` and no limit to some chats; else the answer is
    /// `scope_denied`). Pass the client's TLS roots in `options.tls` for a
    /// private CA.
    pub async fn connect(
        &self,
        options: ConnectOptions,
    ) -> Result<(Connection, mpsc::Receiver<ClientEvent>)> {
        let token = self.token().ok_or(Error::NoToken)?;
        Connection::connect(self.base_url(), token, options).await
    }
}

fn new_webhook(url: &str, events: Option<&[WebhookKind]>) -> NewWebhook {
    NewWebhook {
        url: url.to_owned(),
        events: events.map(<[WebhookKind]>::to_vec),
    }
}

/// Parses a comma-separated list of bot actions (`read,send`), as the CLI
/// and configuration files write them; the unknown word is the error.
pub fn parse_actions(list: &str) -> std::result::Result<Vec<BotAction>, String> {
    parse_list(list, BotAction::parse)
}

/// Parses a comma-separated list of webhook kinds
/// (`message_created,reaction`); the unknown word is the error.
pub fn parse_webhook_kinds(list: &str) -> std::result::Result<Vec<WebhookKind>, String> {
    parse_list(list, WebhookKind::parse)
}

fn parse_list<T: PartialEq>(
    list: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> std::result::Result<Vec<T>, String> {
    let mut out = Vec::new();
    for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let item = parse(&word.to_ascii_lowercase()).ok_or_else(|| word.to_owned())?;
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_name_the_unknown_word() {
        assert_eq!(
            parse_actions("read, send,READ").unwrap(),
            vec![BotAction::Read, BotAction::Send]
        );
        assert_eq!(parse_actions("read,fly").unwrap_err(), "fly");
        assert_eq!(
            parse_webhook_kinds("message_created,reaction").unwrap(),
            vec![WebhookKind::MessageCreated, WebhookKind::Reaction]
        );
        assert!(parse_webhook_kinds("").unwrap().is_empty());
    }

    #[tokio::test]
    async fn connecting_needs_a_token() {
        let api = Api::new("http://127.0.0.1:9").unwrap();
        assert!(matches!(
            api.connect(ConnectOptions::default()).await,
            Err(Error::NoToken)
        ));
    }
}
