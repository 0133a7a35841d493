//! Acting on single messages from the terminal: react, edit, delete,
//! forward, message info, search; and per-chat settings (mute, archive, pin).

use super::{connect, resolve_chat, view, ServerOpt};
use hark_proto::{ChatSettingsRequest, Seq};
use hark_sdk::{ConnectOptions, Connection};

#[derive(clap::Subcommand, Debug)]
pub(crate) enum MessageCommand {
    /// React to a message with an emoji (or remove your reaction with --remove).
    React {
        chat: String,
        seq: i64,
        emoji: Option<String>,
        #[arg(long)]
        remove: bool,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Change the text of your own message (within the edit window).
    Edit {
        chat: String,
        seq: i64,
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Delete a message for you, or for everyone with --for-everyone.
    Delete {
        chat: String,
        seq: i64,
        #[arg(long)]
        for_everyone: bool,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Copy a message into another chat, marked forwarded.
    Forward {
        chat: String,
        seq: i64,
        to: String,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Who received and read one of your messages, and when.
    Info {
        chat: String,
        seq: i64,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Search your chats' messages, newest first.
    Search {
        #[arg(required = true, num_args = 1..)]
        query: Vec<String>,
        /// Only this chat.
        #[arg(long)]
        chat: Option<String>,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Mute a chat's notifications for some hours (or unmute with --off).
    Mute {
        chat: String,
        #[arg(long, default_value_t = 8)]
        hours: i64,
        #[arg(long)]
        off: bool,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Archive a chat (or unarchive with --undo).
    Archive {
        chat: String,
        #[arg(long)]
        undo: bool,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Pin a chat to the top of the list (or unpin with --undo).
    Pin {
        chat: String,
        #[arg(long)]
        undo: bool,
        #[command(flatten)]
        server: ServerOpt,
    },
}

pub(crate) async fn run(command: MessageCommand) -> anyhow::Result<()> {
    match command {
        MessageCommand::React {
            chat,
            seq,
            emoji,
            remove,
            server,
        } => {
            if emoji.is_none() && !remove {
                anyhow::bail!("give an emoji, or --remove");
            }
            let emoji = if remove { None } else { emoji };
            with_socket(&server, &chat, |conn, chat_id| async move {
                conn.react(chat_id, Seq(seq), emoji).await
            })
            .await?;
            println!("reacted to [seq {seq}]");
        }
        MessageCommand::Edit {
            chat,
            seq,
            text,
            server,
        } => {
            let text = text.join(" ");
            let (api, mut session) = connect(&server)?;
            let chat_id = resolve_chat(&api, &session, &chat).await?;
            let summary = api.chat(chat_id).await?;
            // In an encrypted chat the new text goes as ciphertext.
            let sealed = if summary.chat.encrypted {
                let crypto = super::e2e::open(&api, &mut session).await?;
                Some(super::e2e::encrypt_edit(&crypto, &summary.chat, Seq(seq), &text).await?)
            } else {
                None
            };
            with_socket(&server, &chat, |conn, chat_id| async move {
                match sealed {
                    Some(sealed) => conn.edit_encrypted(chat_id, Seq(seq), sealed).await,
                    None => conn.edit(chat_id, Seq(seq), text).await,
                }
            })
            .await?;
            println!("edited [seq {seq}]");
        }
        MessageCommand::Delete {
            chat,
            seq,
            for_everyone,
            server,
        } => {
            with_socket(&server, &chat, |conn, chat_id| async move {
                conn.delete(chat_id, Seq(seq), for_everyone).await
            })
            .await?;
            let whom = if for_everyone { "everyone" } else { "you" };
            println!("deleted [seq {seq}] for {whom}");
        }
        MessageCommand::Forward {
            chat,
            seq,
            to,
            server,
        } => {
            let (api, session) = connect(&server)?;
            let to_chat = resolve_chat(&api, &session, &to).await?;
            let ack = with_socket(&server, &chat, |conn, chat_id| async move {
                conn.forward(chat_id, Seq(seq), to_chat).await
            })
            .await?;
            println!("forwarded to chat {to_chat} as [seq {}]", ack.seq);
        }
        MessageCommand::Info { chat, seq, server } => {
            let (api, session) = connect(&server)?;
            let chat_id = resolve_chat(&api, &session, &chat).await?;
            let info = api.message_info(chat_id, Seq(seq)).await?;
            let summary = api.chat(chat_id).await?;
            let when = |at: Option<i64>| at.map_or_else(|| "—".to_owned(), view::date_time);
            println!("{:<20} {:<20} {:<20}", "MEMBER", "DELIVERED", "READ");
            for r in info.recipients {
                let name = summary
                    .chat
                    .members
                    .iter()
                    .find(|m| m.user.id == r.user_id)
                    .map_or_else(
                        || format!("user {}", r.user_id),
                        |m| view::user_name(&m.user),
                    );
                println!(
                    "{name:<20} {:<20} {:<20}",
                    when(r.delivered_at),
                    when(r.read_at)
                );
            }
        }
        MessageCommand::Search {
            query,
            chat,
            server,
        } => {
            let (api, session) = connect(&server)?;
            let chat_id = match chat {
                Some(chat) => Some(resolve_chat(&api, &session, &chat).await?),
                None => None,
            };
            let found = api.search(&query.join(" "), chat_id, None).await?;
            if found.messages.is_empty() {
                println!("no messages found");
            }
            for m in found.messages {
                let sender = if m.sender_id == session.user.id {
                    "you".to_owned()
                } else {
                    api.user(m.sender_id).await.map_or_else(
                        |_| format!("user {}", m.sender_id),
                        |u| view::sender_name(&u),
                    )
                };
                println!(
                    "chat {} {}",
                    m.chat_id,
                    view::message_line(&m, &sender, None)
                );
            }
        }
        MessageCommand::Mute {
            chat,
            hours,
            off,
            server,
        } => {
            let until = (!off).then(|| now_ms() + hours.max(1) * 3_600_000);
            settings(
                &server,
                &chat,
                ChatSettingsRequest {
                    muted_until: Some(until),
                    ..Default::default()
                },
            )
            .await?;
        }
        MessageCommand::Archive { chat, undo, server } => {
            settings(
                &server,
                &chat,
                ChatSettingsRequest {
                    archived: Some(!undo),
                    ..Default::default()
                },
            )
            .await?;
        }
        MessageCommand::Pin { chat, undo, server } => {
            settings(
                &server,
                &chat,
                ChatSettingsRequest {
                    pinned: Some(!undo),
                    ..Default::default()
                },
            )
            .await?;
        }
    }
    Ok(())
}

async fn settings(
    server: &ServerOpt,
    chat: &str,
    change: ChatSettingsRequest,
) -> anyhow::Result<()> {
    let (api, session) = connect(server)?;
    let chat_id = resolve_chat(&api, &session, chat).await?;
    let now = api.set_chat_settings(chat_id, &change).await?;
    let muted = now
        .muted_until
        .filter(|until| *until > now_ms())
        .map_or_else(
            || "not muted".to_owned(),
            |u| format!("muted until {}", view::date_time(u)),
        );
    let archived = if now.archived {
        "archived"
    } else {
        "not archived"
    };
    let pinned = if now.pinned_at.is_some() {
        "pinned"
    } else {
        "not pinned"
    };
    println!("chat {chat_id}: {muted}, {archived}, {pinned}");
    Ok(())
}

/// Runs one request over a short-lived WebSocket (edits, deletes, reactions
/// and forwards travel the same path as live messages).
async fn with_socket<T, F, Fut>(server: &ServerOpt, chat: &str, act: F) -> anyhow::Result<T>
where
    F: FnOnce(Connection, hark_proto::ChatId) -> Fut,
    Fut: std::future::Future<Output = hark_sdk::Result<T>>,
{
    let (api, session) = connect(server)?;
    let chat_id = resolve_chat(&api, &session, chat).await?;
    // It only acts: its events are dropped unread (the SDK allows that, and
    // never blocks on a dropped receiver).
    let options = ConnectOptions {
        cursor: session.cursor,
        auto_delivered: false,
        tls: session.tls()?,
    };
    let (conn, _) = Connection::connect(&session.server, &session.token, options).await?;
    let result = act(conn.clone(), chat_id).await;
    conn.close().await;
    Ok(result?)
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
