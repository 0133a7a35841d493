//! `hark notifications` and `hark webhook`: the user's preview setting and
//! the logged-in device's webhooks (docs/push.md).

use super::{connect, ServerOpt};
use anyhow::bail;
use hark_proto::{NewPushSubscription, NotificationSettings, Previews, PushKind};

#[derive(clap::Subcommand, Debug)]
pub(crate) enum WebhookCommand {
    /// Have this device's notifications POSTed to an HTTPS URL, signed
    /// with the secret (HMAC-SHA256; see docs/push.md).
    Add {
        url: String,
        /// 16 to 256 characters (prefer HARK_WEBHOOK_SECRET: flags show in `ps`).
        #[arg(long, env = "HARK_WEBHOOK_SECRET", hide_env_values = true)]
        secret: String,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// List this device's push subscriptions and webhooks.
    List {
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Remove one (by id, see `hark webhook list`).
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
            server,
        } => {
            let (api, _) = connect(&server)?;
            let sub = api
                .subscribe_push(&NewPushSubscription::Webhook { url, secret })
                .await?;
            println!("webhook {}: {}", sub.id, sub.endpoint);
        }
        WebhookCommand::List { server } => {
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
        WebhookCommand::Remove { id, server } => {
            let (api, _) = connect(&server)?;
            api.unsubscribe_push(&id).await?;
            println!("removed {id}");
        }
    }
    Ok(())
}
