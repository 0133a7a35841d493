//! `hark notifications` and `hark webhook`: the user's preview setting and
//! the logged-in device's webhooks (docs/push.md); a bot's and a chat's
//! webhooks are in `bots`.

use super::{bots, connect, ServerOpt};
use anyhow::bail;
use hark_proto::{NewPushSubscription, NotificationSettings, Previews, PushKind};

#[derive(clap::Subcommand, Debug)]
pub(crate) enum WebhookCommand {
    /// Have this device's notifications POSTed to an HTTPS URL, signed
    /// with the secret (HMAC-SHA256; see docs/push.md); or, with --bot or
    /// --chat, a bot's or a chat's events (the server makes the secret and
    /// prints it once).
    Add {
        url: String,
        /// 16 to 256 characters (prefer HARK_WEBHOOK_SECRET: flags show in
        /// `ps`). For this device's webhook only.
        #[arg(long, env = "HARK_WEBHOOK_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// A bot's events, every chat it is in (its username or id).
        #[arg(long, conflicts_with = "chat")]
        bot: Option<String>,
        /// A chat's events, as you see them (chat id, group title or
        /// username; in a group, as its admin).
        #[arg(long)]
        chat: Option<String>,
        /// Only these events, comma-separated (by default all):
        /// message_created, message_edited, message_deleted,
        /// member_joined, member_left, reaction, chat_created.
        #[arg(long, value_parser = bots::parse_kinds)]
        events: Option<bots::Kinds>,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// List this device's push subscriptions and webhooks, or (with --bot
    /// or --chat) a bot's or a chat's webhooks.
    List {
        /// A bot's webhooks (its username or id).
        #[arg(long, conflicts_with = "chat")]
        bot: Option<String>,
        /// A chat's webhooks (chat id, group title or username).
        #[arg(long)]
        chat: Option<String>,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Show a bot's or chat's webhook: its URL, events, failures, state.
    Show {
        id: String,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// A bot's or chat's webhook's newest calls, newest first.
    Deliveries {
        id: String,
        /// How many (1 to 100).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: u32,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Turn a bot's or chat's webhook on again after failures turned it off.
    Enable {
        id: String,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Remove a webhook (by id, see `hark webhook list`): a bot's or a
    /// chat's, or one of this device's.
    Remove {
        id: String,
        #[command(flatten)]
        server: ServerOpt,
    },
}

/// Shows the preview setting, or sets it to `previews`.
pub(crate) async fn notifications(
    previews: Option<String>,
    server: ServerOpt,
) -> anyhow::Result<()> {
    let (api, _) = connect(&server)?;
    let settings = match previews {
        None => api.notification_settings().await?,
        Some(choice) => {
            let Some(previews) = Previews::parse(&choice) else {
                bail!("previews must be full, sender or none, not {choice:?}");
            };
            api.set_notification_settings(&NotificationSettings { previews })
                .await?
        }
    };
    let what = match settings.previews {
        Previews::Full => "who wrote and what",
        Previews::Sender => "who wrote, not what",
        Previews::None => "only that something is new",
    };
    println!("previews: {} ({what})", settings.previews.as_str());
    Ok(())
}

pub(crate) async fn webhook(command: WebhookCommand) -> anyhow::Result<()> {
    match command {
        WebhookCommand::Add {
            url,
            secret,
            bot,
            chat,
            events,
            server,
        } => {
            if let Some(target) = bots::Target::from(bot, chat) {
                return bots::add_webhook(target, &url, events, &server).await;
            }
            if events.is_some() {
                return bots::events_need_a_target();
            }
            let Some(secret) = secret else {
                bail!("this device's webhook needs --secret (or HARK_WEBHOOK_SECRET); a bot's or a chat's takes --bot or --chat");
            };
            let (api, _) = connect(&server)?;
            let sub = api
                .subscribe_push(&NewPushSubscription::Webhook { url, secret })
                .await?;
            println!("webhook {}: {}", sub.id, sub.endpoint);
        }
        WebhookCommand::List { bot, chat, server } => {
            if let Some(target) = bots::Target::from(bot, chat) {
                return bots::list_webhooks(target, &server).await;
            }
            let (api, _) = connect(&server)?;
            let subs = api.push_subscriptions().await?;
            if subs.is_empty() {
                println!("no push subscriptions on this device");
            }
            for sub in subs {
                let kind = match sub.kind {
                    PushKind::WebPush => "web push",
                    PushKind::Webhook => "webhook",
                };
                println!("{}  {kind}  {}", sub.id, sub.endpoint);
            }
        }
        WebhookCommand::Show { id, server } => bots::show_webhook(&id, &server).await?,
        WebhookCommand::Deliveries { id, limit, server } => {
            bots::deliveries(&id, limit, &server).await?
        }
        WebhookCommand::Enable { id, server } => bots::enable_webhook(&id, &server).await?,
        WebhookCommand::Remove { id, server } => {
            let (api, _) = connect(&server)?;
            // A bot's or chat's webhook by that id, else this device's.
            if !bots::remove_webhook(&api, &id).await? {
                api.unsubscribe_push(&id).await?;
            }
            println!("removed {id}");
        }
    }
    Ok(())
}
