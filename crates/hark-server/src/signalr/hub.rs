//! The hub's methods, as a client invokes them (names match case-blind, as
//! ASP.NET Core's do). Each runs Hark's own service (`messaging`,
//! `presence`), so a SignalR send is a Hark send: durable, acked, with
//! receipts and catch-up for everyone else. A refusal is the completion's
//! error: `"<hark error code>: <message>"`.

use crate::error::ApiError;
use crate::messaging;
use crate::presence::Presence;
use crate::state::AppState;
use hark_proto::{Activity, ChatId, ChatKind, ClientMsgId, ErrorCode, Seq, UserId};
use hark_store::AuthedDevice;
use serde_json::{json, Value};
use std::sync::Arc;

/// What a method call knows of its connection.
pub(super) struct Caller {
    pub(super) state: AppState,
    pub(super) who: Arc<AuthedDevice>,
    /// The hub registration's id (typing indicators belong to it).
    pub(super) registration: u64,
    /// The SignalR connection id: client message ids are made from it.
    pub(super) connection_id: Arc<str>,
    /// This call's number on the connection.
    pub(super) call: u64,
}

/// A refusal as a completion's error text (counted like any error).
pub(super) fn error_text(e: ApiError) -> String {
    crate::error::counted(e.code, "signalr");
    format!("{}: {}", e.code.as_str(), e.message)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid(message)
}

/// The methods there are, with their arguments, for error texts and the
/// `WatchTyping` check in the connection.
pub(super) const METHODS: &[(&str, &str)] = &[
    ("SendMessage", "receiverId, message"),
    ("SendToChat", "chatId, message"),
    ("MarkRead", "chatId, seq"),
    ("Typing", "chatId"),
    ("StopTyping", "chatId"),
    ("WatchTyping", "chatIds"),
    ("JoinedChats", ""),
];

/// The method's canonical name, if there is one by that name (any case).
pub(super) fn method(target: &str) -> Option<&'static str> {
    METHODS
        .iter()
        .map(|(name, _)| *name)
        .find(|name| name.eq_ignore_ascii_case(target))
}

/// Checks the argument count against the method's.
pub(super) fn arity(name: &str, args: &[Value]) -> Result<(), ApiError> {
    let params = METHODS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, p)| *p);
    let want = if params.is_empty() {
        0
    } else {
        params.split(',').count()
    };
    if args.len() == want {
        Ok(())
    } else {
        Err(invalid(format!(
            "{name}({params}) takes {want} argument{}, got {}",
            if want == 1 { "" } else { "s" },
            args.len()
        )))
    }
}

/// An id given as a JSON integer or a string of digits.
pub(super) fn id_arg(value: &Value, what: &str) -> Result<i64, ApiError> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        invalid(format!(
            "{what}: an integer id (a number or a string of digits)"
        ))
    })
}

fn text_arg(value: &Value, what: &str) -> Result<String, ApiError> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| invalid(format!("{what}: a string")))
}

/// Runs one method (not `WatchTyping`, which changes the connection and
/// is done there). The result is the completion's `result`.
pub(super) async fn invoke(
    caller: Caller,
    name: &'static str,
    args: Vec<Value>,
) -> Result<Value, String> {
    run(&caller, name, &args).await.map_err(error_text)
}

async fn run(caller: &Caller, name: &str, args: &[Value]) -> Result<Value, ApiError> {
    arity(name, args)?;
    let state = &caller.state;
    let who = &*caller.who;
    match name {
        "SendMessage" => {
            let text = text_arg(&args[1], "message")?;
            let chat_id = direct_chat_with(state, who, &args[0]).await?;
            send(caller, chat_id, text).await
        }
        "SendToChat" => {
            let chat_id = ChatId(id_arg(&args[0], "chatId")?);
            let text = text_arg(&args[1], "message")?;
            send(caller, chat_id, text).await
        }
        "MarkRead" => {
            let chat_id = ChatId(id_arg(&args[0], "chatId")?);
            let seq = Seq(id_arg(&args[1], "seq")?);
            messaging::mark(state, who, chat_id, None, Some(seq)).await?;
            Ok(Value::Null)
        }
        "Typing" | "StopTyping" => {
            let chat_id = ChatId(id_arg(&args[0], "chatId")?);
            let activity = if name == "Typing" {
                Activity::Typing
            } else {
                Activity::Stopped
            };
            Presence::typing(state, who, caller.registration, chat_id, activity).await?;
            Ok(Value::Null)
        }
        "JoinedChats" => joined_chats(state, who).await,
        other => Err(ApiError::internal(format!(
            "hub method {other} reached run"
        ))),
    }
}

/// The user a `receiverId` names: a user id (number or digits) or a
/// username.
/// The one-to-one chat of the caller and `receiver` (an id or a
/// username). The usual case, a chat already there named by id, is one
/// read; otherwise the receiver is looked up and the chat opened (one
/// write, once per pair). People open chats with bots, never the other way
/// round: a bot's token reaches only a chat that is already there.
async fn direct_chat_with(
    state: &AppState,
    who: &AuthedDevice,
    receiver: &Value,
) -> Result<ChatId, ApiError> {
    let by_id = id_arg(receiver, "receiverId").ok().map(UserId);
    if let Some(id) = by_id {
        if let Some(chat) = state.store.direct_chat(who.user.id, id).await? {
            return Ok(chat);
        }
    }
    let receiver = resolve_user(state, receiver).await?;
    if who.scope.is_some() {
        // Named by id, the chat was looked for above already.
        let found = match by_id {
            Some(id) if id == receiver => None,
            _ => state.store.direct_chat(who.user.id, receiver).await?,
        };
        return found.ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotForBots,
                "a bot cannot open a one-to-one chat; people open chats with bots",
            )
        });
    }
    Ok(state
        .store
        .create_direct(who.user.id, receiver, false)
        .await?)
}

async fn resolve_user(state: &AppState, value: &Value) -> Result<UserId, ApiError> {
    let missing = || ApiError::new(ErrorCode::NotFound, "receiverId: no such user");
    if let Ok(id) = id_arg(value, "receiverId") {
        if let Some(user) = state.store.user(UserId(id)).await? {
            return Ok(user.id);
        }
    }
    let Some(name) = value.as_str().map(str::trim) else {
        return Err(missing());
    };
    if name.is_empty() || name.len() > 64 {
        return Err(missing());
    }
    // The exact lookup a login makes (only the user is kept).
    let found = state.store.credentials(name).await?;
    found.map(|c| c.user.id).ok_or_else(missing)
}

/// Sends `text` to the chat; the result is the send's ack.
async fn send(caller: &Caller, chat_id: ChatId, text: String) -> Result<Value, ApiError> {
    let client_id = ClientMsgId(format!("sr-{}-{}", caller.connection_id, caller.call));
    let out = messaging::Outgoing {
        client_id,
        text,
        reply_to: None,
        media_id: None,
        encrypted: None,
    };
    let ack = messaging::send(&caller.state, &caller.who, chat_id, out).await?;
    Ok(json!({
        "chatId": ack.chat_id,
        "seq": ack.seq,
        "clientId": ack.client_id,
        "sentAt": ack.sent_at,
        "duplicate": ack.duplicate,
        "expiresAt": ack.expires_at,
    }))
}

async fn joined_chats(state: &AppState, who: &AuthedDevice) -> Result<Value, ApiError> {
    let me = who.user.id;
    let chats = state.store.chats(me).await?;
    Ok(chats
        .into_iter()
        .map(|summary| {
            let chat = &summary.chat;
            let with = (chat.kind == ChatKind::Direct)
                .then(|| chat.members.iter().find(|m| m.user.id != me))
                .flatten()
                .map(|m| json!({ "id": m.user.id, "username": m.user.username, "displayName": m.user.display_name }));
            json!({
                "chatId": chat.id,
                "kind": chat.kind,
                "title": chat.title,
                "with": with,
                "encrypted": chat.encrypted,
                "lastSeq": chat.last_seq,
                "unread": summary.unread,
                "lastMessage": summary.last_message.as_ref().map(super::events::chat_message),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_match_case_blind() {
        assert_eq!(method("sendmessage"), Some("SendMessage"));
        assert_eq!(method("SENDTOCHAT"), Some("SendToChat"));
        assert_eq!(method("Fly"), None);
    }

    #[test]
    fn arguments_are_counted_and_typed() {
        assert!(arity("SendMessage", &[json!("1"), json!("hi")]).is_ok());
        let e = arity("SendMessage", &[json!("1")]).unwrap_err();
        assert_eq!(
            e.message,
            "SendMessage(receiverId, message) takes 2 arguments, got 1"
        );
        assert!(arity("JoinedChats", &[]).is_ok());
        assert!(arity("JoinedChats", &[json!(1)]).is_err());
        assert_eq!(id_arg(&json!(42), "chatId").unwrap(), 42);
        assert_eq!(id_arg(&json!("42"), "chatId").unwrap(), 42);
        assert!(id_arg(&json!("x"), "chatId").is_err());
        assert!(id_arg(&json!(1.5), "chatId").is_err());
        assert!(text_arg(&json!(5), "message").is_err());
    }

    #[test]
    fn refusals_carry_the_code() {
        let text = error_text(ApiError::new(ErrorCode::Blocked, "no"));
        assert_eq!(text, "blocked: no");
    }
}
