//! `hark bot` and the bot and chat side of `hark webhook` (docs/protocol.md
//! "Bots" and "Webhooks"): accounts run by a program, made and managed by
//! the logged-in person; the tokens those programs sign in with, each
//! limited to some actions (and chats); and signed HTTP calls to an
//! integrator's URL for a bot's or a chat's events.

use super::{connect, resolve_chat, view, ServerOpt};
use anyhow::{bail, Context};
use hark_proto::{
    Bot, BotAction, BotToken, ChatId, DeviceId, NewBotToken, UserId, Webhook, WebhookDelivery,
    WebhookKind,
};
use hark_sdk::Api;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum BotCommand {
    /// Make a bot: an account a program runs, signing in with tokens you
    /// make (`hark bot token`); it has no password.
    Create {
        /// Its username (3 to 32 of A-Z a-z 0-9 _ . -).
        username: String,
        /// The name people see (defaults to the username).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// List your bots (an admin: every bot).
    List {
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Delete a bot: its tokens stop working and its webhooks are removed
    /// (its messages stay in their chats).
    Delete {
        /// The bot's username or id.
        bot: String,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Make a token for a bot, limited to some actions (and chats). The
    /// token is printed once, alone on standard output.
    Token {
        /// The bot's username or id.
        bot: String,
        /// What the token is for (shown in `hark bot tokens`).
        #[arg(long)]
        name: String,
        /// What it may do, comma-separated: read, send, react, mark, typing.
        #[arg(long, value_parser = parse_actions)]
        actions: Actions,
        /// Only these chats (comma-separated chat ids); by default every
        /// chat the bot is in. Such a token works over HTTP only (no
        /// WebSocket).
        #[arg(long, value_parser = parse_chats)]
        chats: Option<Chats>,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// List a bot's tokens (not their secrets).
    Tokens {
        /// The bot's username or id.
        bot: String,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Revoke one of a bot's tokens (by device id, see `hark bot tokens`).
    Revoke {
        /// The bot's username or id.
        bot: String,
        device_id: i64,
        #[command(flatten)]
        server: ServerOpt,
    },
}

/// `--actions` once parsed (a type of its own: clap takes a `Vec` as
/// "several values").
#[derive(Debug, Clone)]
pub(crate) struct Actions(Vec<BotAction>);

/// `--chats` once parsed.
#[derive(Debug, Clone)]
pub(crate) struct Chats(Vec<ChatId>);

/// `--events` once parsed.
#[derive(Debug, Clone)]
pub(crate) struct Kinds(Vec<WebhookKind>);

fn parse_actions(text: &str) -> Result<Actions, String> {
    let actions = hark_sdk::parse_actions(text).map_err(|word| {
        format!("{word:?} is not an action: say read, send, react, mark or typing")
    })?;
    if actions.is_empty() {
        return Err("at least one of read, send, react, mark, typing".into());
    }
    Ok(Actions(actions))
}

fn parse_chats(text: &str) -> Result<Chats, String> {
    let mut chats = Vec::new();
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let id = word
            .parse::<i64>()
            .map_err(|_| format!("{word:?} is not a chat id (see `hark chats`)"))?;
        chats.push(ChatId(id));
    }
    if chats.is_empty() {
        return Err("at least one chat id".into());
    }
    Ok(Chats(chats))
}

pub(super) fn parse_kinds(text: &str) -> Result<Kinds, String> {
    let kinds = hark_sdk::parse_webhook_kinds(text).map_err(|word| {
        let all: Vec<&str> = WebhookKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("{word:?} is not an event: say {}", all.join(", "))
    })?;
    if kinds.is_empty() {
        return Err("at least one event (or leave --events out for all)".into());
    }
    Ok(Kinds(kinds))
}

pub(crate) async fn run(command: BotCommand) -> anyhow::Result<()> {
    match command {
        BotCommand::Create {
            username,
            name,
            server,
        } => {
            let (api, _) = connect(&server)?;
            let bot = api.create_bot(&username, name.as_deref()).await?;
            println!(
                "made bot {} (user {}); `hark bot token {} --name <what for> --actions read,send` gives it a token",
                view::user_name(&bot.user),
                bot.user.id,
                bot.user.username
            );
        }
        BotCommand::List { server } => {
            let (api, session) = connect(&server)?;
            let bots = api.bots().await?;
            if bots.is_empty() {
                println!("no bots yet: `hark bot create <username>` makes one");
                return Ok(());
            }
            println!(
                "{:<6} {:<20} {:<24} {:<16} CREATED",
                "ID", "USERNAME", "NAME", "OWNER"
            );
            for bot in bots {
                let owner = if bot.owner == session.user.id {
                    "you".to_owned()
                } else {
                    match api.user(bot.owner).await {
                        Ok(user) => user.username,
                        Err(_) => format!("user {}", bot.owner),
                    }
                };
                println!(
                    "{:<6} {:<20} {:<24} {:<16} {}",
                    bot.user.id,
                    bot.user.username,
                    view::snippet(&bot.user.display_name, 24),
                    view::snippet(&owner, 16),
                    view::date_time(bot.created_at)
                );
            }
        }
        BotCommand::Delete { bot, server } => {
            let (api, _) = connect(&server)?;
            let bot = find_bot(&api, &bot).await?;
            api.delete_bot(bot.user.id).await?;
            println!(
                "deleted bot {}: its tokens no longer work and its webhooks are gone",
                bot.user.username
            );
        }
        BotCommand::Token {
            bot,
            name,
            actions,
            chats,
            server,
        } => {
            let (api, _) = connect(&server)?;
            let bot = find_bot(&api, &bot).await?;
            let made = api
                .create_bot_token(
                    bot.user.id,
                    &NewBotToken {
                        name,
                        actions: actions.0,
                        chats: chats.map(|c| c.0),
                    },
                )
                .await?;
            eprintln!(
                "token \"{}\" of bot {} (device {}): {}",
                made.bot_token.device.name,
                bot.user.username,
                made.bot_token.device.id,
                scope_line(&made.bot_token)
            );
            println!("{}", made.token);
            eprintln!(
                "This token is shown once: keep it now (it cannot be shown again; \
                 `hark bot revoke {} {}` revokes it). Use it as `Authorization: Bearer <token>`.",
                bot.user.username, made.bot_token.device.id
            );
        }
        BotCommand::Tokens { bot, server } => {
            let (api, _) = connect(&server)?;
            let bot = find_bot(&api, &bot).await?;
            let tokens = api.bot_tokens(bot.user.id).await?;
            if tokens.is_empty() {
                println!(
                    "bot {} has no tokens: `hark bot token {} --name <what for> --actions read,send` makes one",
                    bot.user.username, bot.user.username
                );
                return Ok(());
            }
            println!(
                "{:<6} {:<20} {:<22} {:<22} MAY",
                "DEVICE", "NAME", "MADE", "LAST USED"
            );
            for token in tokens {
                let d = &token.device;
                let used = if d.last_used_at > 0 {
                    view::date_time(d.last_used_at)
                } else {
                    "never".to_owned()
                };
                println!(
                    "{:<6} {:<20} {:<22} {:<22} {}",
                    d.id,
                    view::snippet(&d.name, 20),
                    view::date_time(d.created_at),
                    used,
                    scope_line(&token)
                );
            }
        }
        BotCommand::Revoke {
            bot,
            device_id,
            server,
        } => {
            let (api, _) = connect(&server)?;
            let bot = find_bot(&api, &bot).await?;
            api.revoke_bot_token(bot.user.id, DeviceId(device_id))
                .await?;
            println!("token {device_id} of bot {} is revoked", bot.user.username);
        }
    }
    Ok(())
}

/// What a token may do, in words: `read, send in every chat of the bot`.
fn scope_line(token: &BotToken) -> String {
    let actions: Vec<&str> = token.scope.actions.iter().map(|a| a.as_str()).collect();
    let chats = match &token.scope.chats {
        None => "in every chat of the bot".to_owned(),
        Some(chats) => {
            let ids: Vec<String> = chats.iter().map(ToString::to_string).collect();
            format!("in chats {} only (HTTP only)", ids.join(", "))
        }
    };
    format!("{} {chats}", actions.join(", "))
}

/// The bot meant by `arg`: its id, or its username (a leading `@` is
/// allowed), among the bots the caller manages.
pub(super) async fn find_bot(api: &Api, arg: &str) -> anyhow::Result<Bot> {
    if let Ok(id) = arg.parse::<i64>() {
        return Ok(api.bot(UserId(id)).await?);
    }
    let name = arg.trim_start_matches('@');
    api.bots()
        .await?
        .into_iter()
        .find(|b| b.user.username.eq_ignore_ascii_case(name))
        .with_context(|| format!("no bot of yours named {name:?} (see `hark bot list`)"))
}

/// Whose webhooks a `hark webhook` command means.
pub(super) enum Target {
    Bot(String),
    Chat(String),
}

impl Target {
    /// From `--bot` and `--chat` (clap makes sure there are not both).
    pub(super) fn from(bot: Option<String>, chat: Option<String>) -> Option<Target> {
        match (bot, chat) {
            (Some(bot), _) => Some(Target::Bot(bot)),
            (None, Some(chat)) => Some(Target::Chat(chat)),
            (None, None) => None,
        }
    }
}

/// `hark webhook add --bot B | --chat C <url> [--events a,b]`.
pub(super) async fn add_webhook(
    target: Target,
    url: &str,
    events: Option<Kinds>,
    server: &ServerOpt,
) -> anyhow::Result<()> {
    let (api, session) = connect(server)?;
    let events = events.map(|k| k.0);
    let (made, whose) = match target {
        Target::Bot(bot) => {
            let bot = find_bot(&api, &bot).await?;
            let made = api
                .create_bot_webhook(bot.user.id, url, events.as_deref())
                .await?;
            (made, format!("bot {}", bot.user.username))
        }
        Target::Chat(chat) => {
            let chat_id = resolve_chat(&api, &session, &chat).await?;
            let made = api
                .create_chat_webhook(chat_id, url, events.as_deref())
                .await?;
            (made, format!("chat {chat_id}"))
        }
    };
    let hook = &made.webhook;
    println!(
        "webhook {}: {} for {whose} ({})",
        hook.id,
        hook.url,
        kinds_line(&hook.events)
    );
    println!("secret: {}", made.secret);
    eprintln!(
        "The secret is shown once: keep it now. Each call is signed with it: \
         Hark-Signature is v1=<hex HMAC-SHA256 of \"<Hark-Timestamp>.<body>\">."
    );
    Ok(())
}

/// `hark webhook list --bot B | --chat C`.
pub(super) async fn list_webhooks(target: Target, server: &ServerOpt) -> anyhow::Result<()> {
    let (api, session) = connect(server)?;
    let (hooks, whose) = match target {
        Target::Bot(bot) => {
            let bot = find_bot(&api, &bot).await?;
            (
                api.bot_webhooks(bot.user.id).await?,
                format!("bot {}", bot.user.username),
            )
        }
        Target::Chat(chat) => {
            let chat_id = resolve_chat(&api, &session, &chat).await?;
            (api.chat_webhooks(chat_id).await?, format!("chat {chat_id}"))
        }
    };
    if hooks.is_empty() {
        println!("{whose} has no webhooks");
        return Ok(());
    }
    println!(
        "{:<32} {:<5} {:>8}  {:<24} URL",
        "ID", "STATE", "FAILURES", "EVENTS"
    );
    for hook in &hooks {
        println!(
            "{:<32} {:<5} {:>8}  {:<24} {}",
            hook.id,
            if hook.disabled.is_some() { "off" } else { "on" },
            hook.failures,
            view::snippet(&kinds_line(&hook.events), 24),
            hook.url
        );
        if let Some(why) = &hook.disabled {
            println!(
                "    off: {why} (`hark webhook enable {}` turns it on again)",
                hook.id
            );
        }
    }
    Ok(())
}

/// `hark webhook show <id>`.
pub(super) async fn show_webhook(id: &str, server: &ServerOpt) -> anyhow::Result<()> {
    let (api, _) = connect(server)?;
    let hook = api.webhook(id).await?;
    print_webhook(&api, &hook).await;
    Ok(())
}

/// `hark webhook enable <id>`.
pub(super) async fn enable_webhook(id: &str, server: &ServerOpt) -> anyhow::Result<()> {
    let (api, _) = connect(server)?;
    let hook = api.enable_webhook(id).await?;
    println!(
        "webhook {} is on: calls go on from the first event not delivered",
        hook.id
    );
    Ok(())
}

/// `hark webhook deliveries <id>`: the newest calls, newest first.
pub(super) async fn deliveries(id: &str, limit: u32, server: &ServerOpt) -> anyhow::Result<()> {
    let (api, _) = connect(server)?;
    let log = api.webhook_deliveries(id, Some(limit)).await?;
    if log.is_empty() {
        println!("webhook {id} has not been called yet");
        return Ok(());
    }
    println!("{:<22} {:<16} {:<16} RESULT", "WHEN", "EVENT", "KIND");
    for call in &log {
        println!(
            "{:<22} {:<16} {:<16} {}",
            view::date_time(call.attempted_at),
            view::snippet(&call.event_id, 16),
            call.kind.as_str(),
            delivery_result(call)
        );
    }
    Ok(())
}

/// Removes a bot's or chat's webhook; `false` when there is none by that
/// id (it may be one of the device's push webhooks).
pub(super) async fn remove_webhook(api: &Api, id: &str) -> anyhow::Result<bool> {
    match api.delete_webhook(id).await {
        Ok(()) => Ok(true),
        Err(e) if e.code() == Some(hark_proto::ErrorCode::NotFound) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn print_webhook(api: &Api, hook: &Webhook) {
    let whose = match api.bot(hook.user_id).await {
        Ok(bot) => format!("bot {}", bot.user.username),
        Err(_) => match api.user(hook.user_id).await {
            Ok(user) => view::user_name(&user),
            Err(_) => format!("user {}", hook.user_id),
        },
    };
    println!("webhook {}", hook.id);
    println!("url:      {}", hook.url);
    match hook.chat_id {
        Some(chat) => println!("for:      chat {chat} (as {whose} sees it)"),
        None => println!("for:      {whose} (every chat it is in)"),
    }
    println!("events:   {}", kinds_line(&hook.events));
    println!("made:     {}", view::date_time(hook.created_at));
    match &hook.disabled {
        Some(why) => println!(
            "state:    off: {why} (`hark webhook enable {}` turns it on again)",
            hook.id
        ),
        None => println!("state:    on"),
    }
    println!("failures: {} in a row", hook.failures);
}

/// `all`, or the kinds by name.
fn kinds_line(kinds: &[WebhookKind]) -> String {
    if WebhookKind::ALL.iter().all(|k| kinds.contains(k)) {
        return "all events".to_owned();
    }
    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    names.join(",")
}

fn delivery_result(call: &WebhookDelivery) -> String {
    let status = call.status.map(|s| format!("HTTP {s}"));
    let what = match (call.delivered, status, &call.error) {
        (true, Some(status), _) => format!("delivered ({status})"),
        (true, None, _) => "delivered".to_owned(),
        (false, Some(status), Some(e)) => format!("failed: {status}: {e}"),
        (false, Some(status), None) => format!("failed: {status}"),
        (false, None, Some(e)) => format!("failed: {e}"),
        (false, None, None) => "failed".to_owned(),
    };
    format!("{what}, {} ms", call.duration_ms)
}

/// `bail!` for `--events` without a bot or chat.
pub(super) fn events_need_a_target() -> anyhow::Result<()> {
    bail!("--events is for a bot's or a chat's webhook (--bot or --chat)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_in_flags() {
        assert_eq!(
            parse_actions("read,send").unwrap().0,
            vec![BotAction::Read, BotAction::Send]
        );
        assert!(parse_actions("read,fly").unwrap_err().contains("fly"));
        assert!(parse_actions(",").is_err());
        assert_eq!(parse_chats("3, 7").unwrap().0, vec![ChatId(3), ChatId(7)]);
        assert!(parse_chats("3,x").is_err());
        assert!(parse_kinds("message_created,nope").is_err());
        assert_eq!(
            kinds_line(&WebhookKind::ALL),
            "all events",
            "every kind reads as all"
        );
        assert_eq!(
            kinds_line(&[WebhookKind::Reaction, WebhookKind::MemberLeft]),
            "reaction,member_left"
        );
    }
}
