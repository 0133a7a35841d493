//! Bots, once for both backends: a bot is a user whose `bot_owner` names
//! the person who made it; it has no password anyone knows and signs in
//! only with tokens its owner makes, each a device of the bot's account
//! whose `scopes` (the actions, comma-separated) and `scope_chats` (chat
//! ids, comma-separated; null for every chat the bot is in) bound what it
//! may do. A person's device has null `scopes`: everything its user may.

use crate::columns::{self, Columns, USER};
use hark_proto::{Bot, BotAction, BotScope, BotToken, ChatId};

/// A bot's row: [`USER`], `bot_owner, created_at`.
pub(crate) fn bot_columns() -> String {
    format!("{USER}, u.bot_owner, u.created_at")
}

/// `$1` the owner: their bots, oldest first.
pub(crate) fn owned() -> String {
    format!(
        "SELECT {} FROM users u WHERE u.bot_owner = $1 AND u.disabled_at IS NULL ORDER BY u.id",
        bot_columns()
    )
}

/// Every bot not deleted, oldest first (for admins).
pub(crate) fn every() -> String {
    format!(
        "SELECT {} FROM users u WHERE u.bot_owner IS NOT NULL AND u.disabled_at IS NULL
         ORDER BY u.id",
        bot_columns()
    )
}

/// `$1` the bot: itself, if it is a bot not deleted.
pub(crate) fn one() -> String {
    format!(
        "SELECT {} FROM users u
         WHERE u.id = $1 AND u.bot_owner IS NOT NULL AND u.disabled_at IS NULL",
        bot_columns()
    )
}

/// `$1` the owner, `$2` the new user: made a bot.
pub(crate) const MAKE_BOT: &str = "UPDATE users SET bot_owner = $1 WHERE id = $2";

/// `$1` the bot, `$2` name, `$3` token hash, `$4` now, `$5` scopes, `$6`
/// chats: a token, its id returned.
pub(crate) const INSERT_TOKEN: &str =
    "INSERT INTO devices (user_id, name, token_hash, created_at, last_used_at, scopes, scope_chats)
     VALUES ($1, $2, $3, $4, $4, $5, $6) RETURNING id";

/// `$1` the bot: its live tokens, oldest first.
pub(crate) fn tokens() -> String {
    format!(
        "SELECT {}, scopes, scope_chats FROM devices
         WHERE user_id = $1 AND revoked_at IS NULL AND scopes IS NOT NULL ORDER BY id",
        columns::DEVICE_COLUMNS
    )
}

/// A [`bot_columns`] row.
pub(crate) fn bot<R: Columns>(r: &R) -> Result<Bot, R::Error> {
    Ok(Bot {
        user: columns::user(r, 0)?,
        owner: hark_proto::UserId(r.int(4)?),
        created_at: r.int(5)?,
    })
}

/// A [`tokens`] row.
pub(crate) fn token<R: Columns>(r: &R) -> Result<BotToken, R::Error> {
    let device = columns::device(r, 0, false)?;
    let scope = scope(r.opt_text(5)?.as_deref(), r.opt_text(6)?.as_deref()).unwrap_or(BotScope {
        actions: Vec::new(),
        chats: None,
    });
    Ok(BotToken { device, scope })
}

/// The stored form of a scope: `(scopes, scope_chats)`.
pub(crate) fn stored(scope: &BotScope) -> (String, Option<String>) {
    let mut actions = scope.actions.clone();
    actions.sort();
    actions.dedup();
    let actions: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
    let chats = scope.chats.as_ref().map(|chats| {
        chats
            .iter()
            .map(|c| c.0.to_string())
            .collect::<Vec<_>>()
            .join(",")
    });
    (actions.join(","), chats)
}

/// A device's stored scope: `None` for a person's device. Names this
/// build does not know are left out (a token never gains an action).
pub(crate) fn scope(scopes: Option<&str>, chats: Option<&str>) -> Option<BotScope> {
    let scopes = scopes?;
    Some(BotScope {
        actions: scopes.split(',').filter_map(BotAction::parse).collect(),
        chats: chats.map(|chats| {
            chats
                .split(',')
                .filter_map(|c| c.parse().ok().map(ChatId))
                .collect()
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_is_stored_and_read_back() {
        let scope = BotScope {
            actions: vec![BotAction::Send, BotAction::Read, BotAction::Send],
            chats: Some(vec![ChatId(7), ChatId(12)]),
        };
        let (actions, chats) = stored(&scope);
        assert_eq!(actions, "read,send");
        assert_eq!(chats.as_deref(), Some("7,12"));
        let back = super::scope(Some(&actions), chats.as_deref()).unwrap();
        assert_eq!(back.actions, vec![BotAction::Read, BotAction::Send]);
        assert_eq!(back.chats, Some(vec![ChatId(7), ChatId(12)]));
        assert_eq!(super::scope(None, None), None);
        // An unknown name grants nothing.
        assert_eq!(
            super::scope(Some("read,admin"), None).unwrap().actions,
            vec![BotAction::Read]
        );
    }
}
