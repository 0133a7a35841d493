//! The support desk's bot: it greets each customer who opens a chat with
//! it, answers what it knows (opening hours, delivery, refunds, prices),
//! and when a customer asks for a person (or it does not understand twice)
//! hands the conversation over: it posts the customer and their question
//! in the agents' group, where the bot is a member, and tells the customer
//! an agent will write. Everything goes through the Rust SDK with the
//! bot's token: `read`, `send`, `mark` and `typing` are all it needs.

use hark_proto::{Activity, ChatId, ChatKind, Event, Message, Pos, UserId};
use hark_sdk::{Api, ClientEvent, ConnectOptions};
use std::collections::HashMap;

/// What the bot says to a customer's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An answer from what the bot knows.
    Answer(String),
    /// A person takes over: what the customer is told.
    Handoff(String),
    /// Not understood: ask again (the second time, hand off).
    Unknown(String),
}

/// The first message in a new chat.
pub fn greeting(name: &str) -> String {
    format!(
        "Hello {name}, this is the help desk. Ask me about opening hours, delivery, \
         refunds or prices, or write \"agent\" to talk to a person."
    )
}

/// The bot's answer to `text`, from keywords (a real desk would ask its
/// knowledge base here).
pub fn answer(text: &str) -> Reply {
    let text = text.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    if has(&["agent", "human", "person", "someone"]) {
        Reply::Handoff(
            "I am handing you to one of our agents; they will write to you here shortly.".into(),
        )
    } else if has(&["hour", "open", "close"]) {
        Reply::Answer(
            "We are open Monday to Friday, 9:00 to 18:00, and Saturday 10:00 to 14:00.".into(),
        )
    } else if has(&["deliver", "parcel", "shipping", "track"]) {
        Reply::Answer("Parcels leave our warehouse within one working day; the tracking link comes by e-mail.".into())
    } else if has(&["refund", "return", "money back"]) {
        Reply::Answer("You can return anything within 30 days; the refund reaches your card within 5 working days.".into())
    } else if has(&["price", "cost", "how much"]) {
        Reply::Answer("Our prices are on the website; members get 10 % off everything.".into())
    } else {
        Reply::Unknown(
            "Sorry, I did not understand. Ask about opening hours, delivery, refunds or prices, \
             or write \"agent\"."
                .into(),
        )
    }
}

/// The bot's state: who it is, where the agents are, what it knows of
/// each chat.
pub struct Desk {
    api: Api,
    agents: ChatId,
    me: Option<UserId>,
    /// Direct chats with customers (groups are left alone), as learnt.
    kinds: HashMap<ChatId, ChatKind>,
    /// Messages not understood, per chat (two mean a handoff).
    misses: HashMap<ChatId, u32>,
    /// Told once the bot is connected.
    ready: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Desk {
    /// A desk for the bot whose token `api` carries, handing over to the
    /// group `agents` (the bot must be a member of it).
    pub fn new(api: Api, agents: ChatId) -> Desk {
        Desk {
            api,
            agents,
            me: None,
            kinds: HashMap::new(),
            misses: HashMap::new(),
            ready: None,
        }
    }

    /// Resolves once the bot is connected: what is committed after that
    /// gets an answer.
    pub fn ready(&mut self) -> tokio::sync::oneshot::Receiver<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.ready = Some(tx);
        rx
    }

    /// Connects and serves until the connection ends for good. Events
    /// up to `cursor` are not delivered; with no cursor, the past (what
    /// the stream held when the bot connected) is skipped: a restarted bot
    /// does not answer old messages again. Returns the last position
    /// handled.
    pub async fn run(&mut self, cursor: Option<Pos>) -> anyhow::Result<Pos> {
        let options = ConnectOptions {
            cursor: cursor.unwrap_or(Pos(0)),
            ..ConnectOptions::default()
        };
        let (connection, mut events) = self.api.connect(options).await?;
        let mut past = cursor.unwrap_or(Pos(i64::MAX));
        let mut last = cursor.unwrap_or(Pos(0));
        while let Some(event) = events.recv().await {
            match event {
                ClientEvent::Connected { user, head, .. } => {
                    self.me = Some(user.id);
                    if past.0 == i64::MAX {
                        past = head;
                    }
                    if let Some(ready) = self.ready.take() {
                        let _ = ready.send(());
                    }
                }
                ClientEvent::Event { pos, event } => {
                    if pos > past {
                        if let Err(e) = self.handle(&connection, event).await {
                            tracing::warn!(error = %e, "handling an event");
                        }
                    }
                    last = pos;
                }
                ClientEvent::Closed { code } => {
                    anyhow::bail!("the connection ended: {code:?}");
                }
                _ => {}
            }
        }
        Ok(last)
    }

    async fn handle(
        &mut self,
        connection: &hark_sdk::Connection,
        event: Event,
    ) -> anyhow::Result<()> {
        match event {
            Event::ChatCreated {
                chat_id,
                chat_kind: ChatKind::Direct,
                by,
                encrypted: false,
                ..
            } if Some(by) != self.me => {
                self.kinds.insert(chat_id, ChatKind::Direct);
                let customer = self.api.user(by).await?;
                connection
                    .send(chat_id, greeting(&customer.display_name))
                    .await?;
            }
            // A customer's message in a one-to-one chat (not the bot's
            // own; an encrypted chat's text the bot cannot read).
            Event::Message(message)
                if Some(message.sender_id) != self.me && message.encrypted.is_none() =>
            {
                if self.kind(message.chat_id).await? != ChatKind::Direct {
                    return Ok(()); // groups: the agents' and others
                }
                self.reply(connection, &message).await?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn kind(&mut self, chat: ChatId) -> anyhow::Result<ChatKind> {
        if let Some(kind) = self.kinds.get(&chat) {
            return Ok(*kind);
        }
        let kind = self.api.chat(chat).await?.chat.kind;
        self.kinds.insert(chat, kind);
        Ok(kind)
    }

    async fn reply(
        &mut self,
        connection: &hark_sdk::Connection,
        message: &Message,
    ) -> anyhow::Result<()> {
        let chat = message.chat_id;
        connection.mark_read(chat, message.seq).await?;
        connection.typing(chat, Activity::Typing).await?;
        let reply = match answer(&message.text) {
            Reply::Unknown(_) if self.misses.get(&chat).copied().unwrap_or(0) >= 1 => Reply::Handoff(
                "Let me find you a person who can help; an agent will write to you here shortly."
                    .into(),
            ),
            reply => reply,
        };
        match reply {
            Reply::Answer(text) => {
                self.misses.remove(&chat);
                connection.send_reply(chat, text, message.seq).await?;
            }
            Reply::Unknown(text) => {
                *self.misses.entry(chat).or_default() += 1;
                connection.send_reply(chat, text, message.seq).await?;
            }
            Reply::Handoff(text) => {
                self.misses.remove(&chat);
                let customer = self.api.user(message.sender_id).await?;
                let note = format!(
                    "{} (@{}) asks for a person in chat {}: \"{}\" — open a chat with them to take it.",
                    customer.display_name, customer.username, chat.0, message.text
                );
                connection.send(self.agents, note).await?;
                connection.send_reply(chat, text, message.seq).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_knows_a_few_things_and_hands_off_the_rest() {
        assert!(matches!(answer("When are you open?"), Reply::Answer(a) if a.contains("Monday")));
        assert!(matches!(answer("where is my parcel"), Reply::Answer(a) if a.contains("tracking")));
        assert!(matches!(answer("I want a REFUND"), Reply::Answer(a) if a.contains("30 days")));
        assert!(matches!(answer("can I talk to a human"), Reply::Handoff(_)));
        assert!(matches!(answer("blue"), Reply::Unknown(_)));
    }
}
