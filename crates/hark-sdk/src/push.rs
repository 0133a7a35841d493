//! Push notifications: where this device wants them (Web Push or a
//! webhook), the server's VAPID key, and the user's preview setting
//! (docs/push.md).

use crate::api::Api;
use crate::Result;
use hark_proto::{NewPushSubscription, NotificationSettings, PushSubscription, VapidKey};
use reqwest::Method;

impl Api {
    /// `GET /v1/push/vapid`: the key a browser subscribes with.
    pub async fn vapid_key(&self) -> Result<VapidKey> {
        self.call(Method::GET, "/v1/push/vapid", None::<&()>, true)
            .await
    }

    /// `POST /v1/push/subscriptions`: adds one for this device (or answers
    /// the one it has for the same endpoint).
    pub async fn subscribe_push(&self, body: &NewPushSubscription) -> Result<PushSubscription> {
        self.call(Method::POST, "/v1/push/subscriptions", Some(body), true)
            .await
    }

    /// `GET /v1/push/subscriptions`: this device's.
    pub async fn push_subscriptions(&self) -> Result<Vec<PushSubscription>> {
        self.call(Method::GET, "/v1/push/subscriptions", None::<&()>, true)
            .await
    }

    /// `DELETE /v1/push/subscriptions/{id}`.
    pub async fn unsubscribe_push(&self, id: &str) -> Result<()> {
        let path = format!("/v1/push/subscriptions/{id}");
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }

    /// `GET /v1/me/notifications`.
    pub async fn notification_settings(&self) -> Result<NotificationSettings> {
        self.call(Method::GET, "/v1/me/notifications", None::<&()>, true)
            .await
    }

    /// `PUT /v1/me/notifications`: previews for all of the user's devices.
    pub async fn set_notification_settings(
        &self,
        settings: &NotificationSettings,
    ) -> Result<NotificationSettings> {
        self.call(Method::PUT, "/v1/me/notifications", Some(settings), true)
            .await
    }
}
