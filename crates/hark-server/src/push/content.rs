//! What a notification says: decided from the chat as the user sees it
//! when the job runs, and the user's preview setting.

use hark_proto::{
    ChatKind, ChatSummary, MediaKind, Message, NotificationKind, Previews, PushNotification, UserId,
};
use hark_store::push::PushJob;

/// The longest preview, in characters.
const PREVIEW_CHARS: usize = 200;

/// The notification for `job`, or `None` when there is nothing to tell:
/// every message of the chat is read (on any device) by now.
/// `name_of` finds a display name. A muted chat's notification is silent.
pub(crate) fn notification(
    job: &PushJob,
    summary: &ChatSummary,
    previews: Previews,
    now: i64,
    name_of: impl Fn(UserId) -> Option<String>,
) -> Option<PushNotification> {
    let (who, body, seq) = match job.kind {
        NotificationKind::Message => {
            let last = summary.last_message.as_ref()?;
            if summary.unread == 0 {
                return None;
            }
            (last.sender_id, Some(preview(last)), last.seq)
        }
        NotificationKind::Reaction => (
            job.by,
            Some(format!(
                "reacted {} to your message",
                job.emoji.as_deref().unwrap_or("")
            )),
            job.seq,
        ),
        NotificationKind::Added => (job.by, None, summary.chat.last_seq),
    };
    let group = summary.chat.kind == ChatKind::Group;
    let (sender, body, chat_title) = match previews {
        Previews::Full => (name_of(who), body, summary.chat.title.clone()),
        Previews::Sender => (name_of(who), None, summary.chat.title.clone()),
        Previews::None => (None, None, None),
    };
    Some(PushNotification {
        v: 1,
        kind: job.kind,
        chat_id: summary.chat.id,
        chat_kind: summary.chat.kind,
        chat_title: if group { chat_title } else { None },
        seq,
        unread: summary.unread,
        sender,
        body,
        silent: summary
            .settings
            .muted_until
            .is_some_and(|until| until > now),
    })
}

/// A message in a line: its text, cut short, or what it carries.
fn preview(m: &Message) -> String {
    if m.deleted {
        return "This message was deleted".into();
    }
    if m.encrypted.is_some() {
        // Only the members' devices can read it; the server never could.
        return "🔒 New message".into();
    }
    let text = m.text.trim();
    if !text.is_empty() {
        let mut cut: String = text.chars().take(PREVIEW_CHARS).collect();
        if text.chars().nth(PREVIEW_CHARS).is_some() {
            cut.push('…');
        }
        return cut;
    }
    match m.media.as_ref().map(|media| media.kind) {
        Some(MediaKind::Image) => "📷 Photo",
        Some(MediaKind::Video) => "🎥 Video",
        Some(MediaKind::Audio) => "🎤 Voice message",
        Some(MediaKind::File) => "📎 File",
        None => "New message",
    }
    .into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use hark_proto::{Chat, ChatId, ChatSettings, Seq};

    fn summary(kind: ChatKind, unread: u64, text: &str) -> ChatSummary {
        ChatSummary {
            chat: Chat {
                id: ChatId(4),
                kind,
                title: (kind == ChatKind::Group).then(|| "Team".into()),
                created_at: 0,
                last_seq: Seq(9),
                members: Vec::new(),
                encrypted: false,
                disappearing_secs: 0,
            },
            last_message: Some(crate::fixtures::message(4, 9, 2, 1, text)),
            unread,
            settings: ChatSettings::default(),
        }
    }

    fn job(kind: NotificationKind) -> PushJob {
        PushJob {
            chat_id: ChatId(4),
            kind,
            seq: Seq(9),
            by: UserId(2),
            emoji: Some("👍".into()),
        }
    }

    fn name(_: UserId) -> Option<String> {
        Some("Bob".into())
    }

    #[test]
    fn previews_show_what_the_user_allows() {
        let s = summary(ChatKind::Group, 3, "hello there");
        let full =
            notification(&job(NotificationKind::Message), &s, Previews::Full, 0, name).unwrap();
        assert_eq!(
            (
                full.sender.as_deref(),
                full.body.as_deref(),
                full.chat_title.as_deref(),
                full.unread
            ),
            (Some("Bob"), Some("hello there"), Some("Team"), 3)
        );
        let sender = notification(
            &job(NotificationKind::Message),
            &s,
            Previews::Sender,
            0,
            name,
        )
        .unwrap();
        assert_eq!((sender.sender.as_deref(), sender.body), (Some("Bob"), None));
        let none =
            notification(&job(NotificationKind::Message), &s, Previews::None, 0, name).unwrap();
        assert_eq!(
            (none.sender, none.body, none.chat_title),
            (None, None, None)
        );
    }

    #[test]
    fn a_read_chat_tells_nothing_and_a_muted_one_is_silent() {
        let read = summary(ChatKind::Direct, 0, "hi");
        assert_eq!(
            notification(
                &job(NotificationKind::Message),
                &read,
                Previews::Full,
                0,
                name
            ),
            None
        );
        let mut muted = summary(ChatKind::Direct, 1, "hi");
        muted.settings.muted_until = Some(100);
        assert!(
            notification(
                &job(NotificationKind::Message),
                &muted,
                Previews::Full,
                50,
                name
            )
            .unwrap()
            .silent
        );
        assert!(
            !notification(
                &job(NotificationKind::Message),
                &muted,
                Previews::Full,
                150,
                name
            )
            .unwrap()
            .silent
        );
    }

    #[test]
    fn reactions_and_long_texts_read_well() {
        let s = summary(ChatKind::Direct, 0, &"x".repeat(500));
        let r = notification(
            &job(NotificationKind::Reaction),
            &s,
            Previews::Full,
            0,
            name,
        )
        .unwrap();
        assert_eq!(r.body.as_deref(), Some("reacted 👍 to your message"));
        assert_eq!(r.chat_title, None, "a one-to-one chat has no title");
        let long = summary(ChatKind::Direct, 1, &"x".repeat(500));
        let m = notification(
            &job(NotificationKind::Message),
            &long,
            Previews::Full,
            0,
            name,
        )
        .unwrap();
        assert_eq!(m.body.unwrap().chars().count(), PREVIEW_CHARS + 1);
    }

    #[test]
    fn an_encrypted_message_says_nothing_of_its_content() {
        let mut s = summary(ChatKind::Direct, 1, "");
        if let Some(m) = s.last_message.as_mut() {
            m.encrypted = Some(Box::new(serde_json::json!({"ciphertext": "AwgAEp"})));
        }
        let n = notification(&job(NotificationKind::Message), &s, Previews::Full, 0, name).unwrap();
        assert_eq!(n.body.as_deref(), Some("🔒 New message"));
    }
}
