//! What a bot's token may do (docs/protocol.md "Bots"). A person's device
//! (no scope) may do whatever its user may; a bot's token only the actions
//! it was given, in the chats it was given. Every bot-reachable action
//! checks here before it reaches the store: the messaging functions, the
//! typing relay, the chat reads and the WebSocket's opening.

use crate::error::{ApiError, ApiResult};
use hark_proto::{BotAction, ChatId, ErrorCode};
use hark_store::AuthedDevice;

/// `who` may take `action` in `chat`.
pub fn allow(who: &AuthedDevice, action: BotAction, chat: ChatId) -> ApiResult<()> {
    allow_action(who, action)?;
    match &who.scope {
        Some(scope) if !scope.covers(chat) => Err(ApiError::new(
            ErrorCode::ScopeDenied,
            "this bot token is limited to other chats",
        )),
        _ => Ok(()),
    }
}

/// `who` may take `action` somewhere (a list, filtered by [`covers`]).
pub fn allow_action(who: &AuthedDevice, action: BotAction) -> ApiResult<()> {
    match &who.scope {
        Some(scope) if !scope.allows(action) => Err(ApiError::new(
            ErrorCode::ScopeDenied,
            format!("this bot token may not {}", action.as_str()),
        )),
        _ => Ok(()),
    }
}

/// Whether `who` may see `chat` at all.
pub fn covers(who: &AuthedDevice, chat: ChatId) -> bool {
    who.scope.as_ref().is_none_or(|scope| scope.covers(chat))
}

/// A person's device, not a bot's token: for everything a bot may not do.
pub fn person(who: &AuthedDevice) -> ApiResult<()> {
    if who.scope.is_some() {
        Err(ApiError::new(
            ErrorCode::NotForBots,
            "a bot's token cannot do this; use a person's login",
        ))
    } else {
        Ok(())
    }
}

/// A WebSocket carries all of the user's events: a bot's token needs
/// `read`, and no limit to some chats.
pub fn socket(who: &AuthedDevice) -> ApiResult<()> {
    allow_action(who, BotAction::Read)?;
    match &who.scope {
        Some(scope) if scope.chats.is_some() => Err(ApiError::new(
            ErrorCode::ScopeDenied,
            "a bot token limited to some chats works over HTTP only; the WebSocket carries every chat's events",
        )),
        _ => Ok(()),
    }
}
