//! The RabbitMQ exporter (`lapin`): each event is published to a durable
//! topic exchange, persistent, with routing key `<kind>.<chat id>` (bind
//! `message_created.*` for new messages everywhere, `*.42` for one chat,
//! `#` for all), `message_id` the event's id and `type` its kind, on a
//! channel in confirm mode: a batch counts as exported once the broker
//! confirmed every message of it. A broken connection is dropped and made
//! again at the next batch.

use super::{Exported, Exporter};
use crate::config;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use secrecy::ExposeSecret;
use tokio::sync::Mutex;

pub struct RabbitMq {
    url: String,
    exchange: String,
    /// The open connection and its confirm-mode channel, once made.
    open: Mutex<Option<(Connection, Channel)>>,
}

impl RabbitMq {
    /// The exporter `[export]` names; `None` when export is off.
    pub fn from_config(settings: &config::Export) -> Option<RabbitMq> {
        let url = settings.rabbitmq_url.as_ref()?.expose_secret().to_owned();
        Some(RabbitMq {
            url,
            exchange: settings.exchange.clone(),
            open: Mutex::new(None),
        })
    }

    async fn connect(&self) -> anyhow::Result<(Connection, Channel)> {
        let properties = ConnectionProperties::default().with_connection_name("hark-export".into());
        let connection = Connection::connect(&self.url, properties).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        channel
            .exchange_declare(
                self.exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        tracing::info!(exchange = %self.exchange, "export: connected to RabbitMQ");
        Ok((connection, channel))
    }
}

#[async_trait::async_trait]
impl Exporter for RabbitMq {
    async fn publish(&self, events: &[Exported]) -> anyhow::Result<()> {
        let mut open = self.open.lock().await;
        if open.as_ref().is_none_or(|(c, _)| !c.status().connected()) {
            *open = Some(self.connect().await?);
        }
        let Some((_, channel)) = open.as_ref() else {
            anyhow::bail!("no channel");
        };
        let result = publish_all(channel, &self.exchange, events).await;
        if result.is_err() {
            // Made again at the next batch.
            *open = None;
        }
        result
    }
}

async fn publish_all(channel: &Channel, exchange: &str, events: &[Exported]) -> anyhow::Result<()> {
    let mut confirms = Vec::with_capacity(events.len());
    for event in events {
        let body = serde_json::to_vec(event)?;
        let properties = BasicProperties::default()
            .with_message_id(event.id.as_str().into())
            .with_type(event.kind.as_str().into())
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_timestamp(u64::try_from(event.committed_at / 1000).unwrap_or(0));
        let routing_key = format!("{}.{}", event.kind, event.chat_id.0);
        confirms.push(
            channel
                .basic_publish(
                    exchange.into(),
                    routing_key.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    properties,
                )
                .await?,
        );
    }
    for confirm in confirms {
        let confirmation = confirm.await?;
        if !confirmation.is_ack() {
            anyhow::bail!("RabbitMQ refused a message (nack)");
        }
    }
    Ok(())
}
