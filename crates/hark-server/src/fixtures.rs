//! Values the unit tests of several modules build alike.

use hark_proto::{ChatId, ClientMsgId, DeviceId, Message, Seq, UserId};

/// A plain message `seq` of chat `chat` by `sender` from `device`.
pub(crate) fn message(chat: i64, seq: i64, sender: i64, device: i64, text: &str) -> Message {
    Message {
        chat_id: ChatId(chat),
        seq: Seq(seq),
        sender_id: UserId(sender),
        sender_device: DeviceId(device),
        client_id: ClientMsgId("c".into()),
        text: text.into(),
        sent_at: 5,
        reply_to: None,
        forwarded: false,
        edited_at: None,
        deleted: false,
        reactions: Vec::new(),
        media: None,
        encrypted: None,
        expires_at: None,
        expired: false,
    }
}
