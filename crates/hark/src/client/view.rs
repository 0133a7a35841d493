//! How the terminal client shows things: chat titles, names, times and ticks.

use hark_proto::{Chat, ChatKind, Event, Member, Message, Seq, User, UserId};
use std::collections::HashMap;
use std::io::IsTerminal;

/// The delivery state of one of our own messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Tick {
    /// Committed by the server.
    Sent,
    /// Reached every other member.
    Delivered,
    /// Read by every other member.
    Read,
}

impl Tick {
    /// `✓`, `✓✓`, or a blue `✓✓ read` (blue only on a terminal).
    pub(crate) fn render(self) -> String {
        match self {
            Tick::Sent => "✓".into(),
            Tick::Delivered => "✓✓".into(),
            Tick::Read if std::io::stdout().is_terminal() => "\x1b[34m✓✓\x1b[0m read".into(),
            Tick::Read => "✓✓ read".into(),
        }
    }
}

/// The other members' receipt watermarks in one chat.
#[derive(Debug, Default)]
pub(crate) struct Watermarks {
    /// user -> (delivered_up_to, read_up_to), for everyone but us.
    others: HashMap<UserId, (Seq, Seq)>,
}

impl Watermarks {
    pub(crate) fn new(members: &[Member], me: UserId) -> Self {
        let others = members
            .iter()
            .filter(|m| m.user.id != me)
            .map(|m| (m.user.id, (m.delivered_up_to, m.read_up_to)))
            .collect();
        Watermarks { others }
    }

    /// A receipt arrived; watermarks only rise.
    pub(crate) fn update(&mut self, user: UserId, delivered: Seq, read: Seq) {
        let entry = self.others.entry(user).or_insert((Seq(0), Seq(0)));
        entry.0 = entry.0.max(delivered);
        entry.1 = entry.1.max(read);
    }

    pub(crate) fn remove(&mut self, user: UserId) {
        self.others.remove(&user);
    }

    /// The tick of our message at `seq`: delivered or read once every other
    /// member got that far (as WhatsApp does for groups).
    pub(crate) fn tick(&self, seq: Seq) -> Tick {
        if self.others.is_empty() {
            return Tick::Sent;
        }
        if self.others.values().all(|(_, read)| *read >= seq) {
            Tick::Read
        } else if self
            .others
            .values()
            .all(|(delivered, read)| *delivered >= seq || *read >= seq)
        {
            Tick::Delivered
        } else {
            Tick::Sent
        }
    }
}

/// How a user is named: the display name, with the username when they
/// differ, and ` [bot]` after a bot's.
pub(crate) fn user_name(user: &User) -> String {
    let name = if user.display_name.is_empty() || user.display_name == user.username {
        user.username.clone()
    } else {
        format!("{} (@{})", user.display_name, user.username)
    };
    format!("{name}{}", bot_mark(user.bot))
}

/// How a message's sender is shown: just the display name (` [bot]` after
/// a bot's).
pub(crate) fn sender_name(user: &User) -> String {
    let name = if user.display_name.is_empty() {
        &user.username
    } else {
        &user.display_name
    };
    format!("{name}{}", bot_mark(user.bot))
}

/// What follows a bot's name wherever a name is shown: ` [bot]` (nothing
/// after a person's).
pub(crate) fn bot_mark(bot: bool) -> &'static str {
    if bot {
        " [bot]"
    } else {
        ""
    }
}

/// A membership or title event as a line among the messages ("— alice
/// added carol —"), with `name` naming each person; `None` for events that
/// draw no line (a direct chat's creation, anything else).
pub(crate) fn event_line(event: &Event, name: impl Fn(UserId) -> String) -> Option<String> {
    let text = match event {
        Event::ChatCreated {
            chat_kind: ChatKind::Group,
            by,
            ..
        } => format!("{} created the group", name(*by)),
        Event::ChatRenamed { title, by, .. } => {
            format!("{} renamed the group to \"{title}\"", name(*by))
        }
        Event::MemberAdded { user_id, by, .. } => {
            format!("{} added {}", name(*by), name(*user_id))
        }
        Event::MemberRemoved { user_id, by, .. } if user_id == by => {
            format!("{} left", name(*user_id))
        }
        Event::MemberRemoved { user_id, by, .. } => {
            format!("{} removed {}", name(*by), name(*user_id))
        }
        Event::AdminChanged { user_id, admin, .. } => {
            let what = if *admin {
                "is now an admin"
            } else {
                "is no longer an admin"
            };
            format!("{} {what}", name(*user_id))
        }
        Event::DisappearingChanged { seconds: 0, by, .. } => {
            format!("{} turned off disappearing messages", name(*by))
        }
        Event::DisappearingChanged { seconds, by, .. } => format!(
            "{} turned on disappearing messages: new messages disappear after {}",
            name(*by),
            timer_name(*seconds)
        ),
        _ => return None,
    };
    Some(format!("— {text} —"))
}

/// The timers a chat may have, as `hark disappearing` takes and shows them.
const TIMERS: [(&str, u32, &str); 4] = [
    ("off", 0, "never"),
    ("24h", 24 * 3600, "24 hours"),
    ("7d", 7 * 24 * 3600, "7 days"),
    ("90d", 90 * 24 * 3600, "90 days"),
];

/// `off`, `24h`, `7d` or `90d` as seconds.
pub(crate) fn timer_seconds(word: &str) -> Option<u32> {
    TIMERS
        .iter()
        .find(|(w, ..)| w.eq_ignore_ascii_case(word.trim()))
        .map(|&(_, secs, _)| secs)
}

/// A timer for people: `24 hours`, `7 days`.
pub(crate) fn timer_name(seconds: u32) -> String {
    TIMERS
        .iter()
        .find(|&&(_, secs, _)| secs == seconds)
        .map(|&(.., name)| name.to_owned())
        .unwrap_or_else(|| format!("{seconds} seconds"))
}

/// A group's title, or the other person's name for a direct chat.
pub(crate) fn chat_title(chat: &Chat, me: UserId) -> String {
    match chat.kind {
        ChatKind::Group => chat
            .title
            .clone()
            .unwrap_or_else(|| format!("group {}", chat.id)),
        ChatKind::Direct => chat
            .members
            .iter()
            .find(|m| m.user.id != me)
            .map(|m| user_name(&m.user))
            .unwrap_or_else(|| "(just you)".into()),
    }
}

/// What a message's file is, in brackets: `[image photo.jpg, 1.2 MB, 800×600]`.
pub(crate) fn media_label(media: &hark_proto::MediaRef) -> String {
    let mut parts = vec![media.kind.as_str().to_owned()];
    if let Some(name) = &media.name {
        parts[0].push(' ');
        parts[0].push_str(name);
    }
    parts.push(size(media.size));
    if let (Some(w), Some(h)) = (media.width, media.height) {
        parts.push(format!("{w}×{h}"));
    }
    if let Some(ms) = media.duration_ms {
        let secs = ms / 1000;
        parts.push(format!("{}:{:02}", secs / 60, secs % 60));
    }
    format!("[{}]", parts.join(", "))
}

/// A byte count for people: `512 B`, `12.3 KB`, `4.5 MB`.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// One message line: `[seq 5] 14:02 alice: hi ✓✓`, ticks only on our own;
/// replies, forwards, edits, deletions and reactions are marked.
pub(crate) fn message_line(m: &Message, sender: &str, tick: Option<Tick>) -> String {
    let mut line = format!("[seq {}] {} {sender}: ", m.seq, hhmm(m.sent_at));
    if let Some(quote) = &m.reply_to {
        let quoted = match &quote.snippet {
            Some(text) => snippet(text, 30),
            None => "message deleted".into(),
        };
        line.push_str(&format!("↪ [seq {}] \"{quoted}\" | ", quote.seq));
    }
    if m.forwarded {
        line.push_str("(forwarded) ");
    }
    if m.expired {
        line.push_str("(message disappeared)");
    } else if m.deleted {
        line.push_str("(message deleted)");
    } else {
        if let Some(media) = &m.media {
            line.push_str(&media_label(media));
            if !m.text.is_empty() {
                line.push(' ');
            }
        }
        line.push_str(&m.text);
    }
    if m.edited_at.is_some() && !m.deleted {
        line.push_str(" (edited)");
    }
    if m.expires_at.is_some() && !m.deleted {
        line.push_str(" ⏱");
    }
    if !m.reactions.is_empty() {
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for r in &m.reactions {
            match counts.iter_mut().find(|(e, _)| *e == r.emoji) {
                Some((_, n)) => *n += 1,
                None => counts.push((&r.emoji, 1)),
            }
        }
        let shown: Vec<String> = counts.iter().map(|(e, n)| format!("{e} {n}")).collect();
        line.push_str(&format!(" [{}]", shown.join(", ")));
    }
    if let Some(tick) = tick {
        line.push(' ');
        line.push_str(&tick.render());
    }
    line
}

/// Short text for a table cell: one line, at most `max` characters.
pub(crate) fn snippet(text: &str, max: usize) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// `HH:MM` (UTC) of a time in milliseconds since the epoch.
pub(crate) fn hhmm(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}", secs / 3600, secs % 3600 / 60)
}

/// `YYYY-MM-DD HH:MM` (UTC) of a time in milliseconds since the epoch.
pub(crate) fn date_time(ms: i64) -> String {
    let day = hark_proto::utc_date(ms.div_euclid(86_400_000));
    format!("{day} {} UTC", hhmm(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times() {
        assert_eq!(date_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(date_time(1_709_210_096_000), "2024-02-29 12:34 UTC");
    }

    #[test]
    fn bots_are_marked_wherever_a_name_is_shown() {
        let mut user = User {
            id: UserId(7),
            username: "echo".into(),
            display_name: "Echo".into(),
            bot: true,
        };
        assert_eq!(user_name(&user), "Echo (@echo) [bot]");
        assert_eq!(sender_name(&user), "Echo [bot]");
        user.bot = false;
        assert_eq!(user_name(&user), "Echo (@echo)");
        assert_eq!(sender_name(&user), "Echo");
    }

    #[test]
    fn ticks_follow_the_slowest_other_member() {
        let mut w = Watermarks::default();
        w.update(UserId(2), Seq(3), Seq(1));
        w.update(UserId(3), Seq(2), Seq(2));
        assert_eq!(w.tick(Seq(1)), Tick::Read);
        assert_eq!(w.tick(Seq(2)), Tick::Delivered);
        assert_eq!(w.tick(Seq(3)), Tick::Sent);
        w.update(UserId(3), Seq(1), Seq(1));
        assert_eq!(w.tick(Seq(2)), Tick::Delivered, "watermarks never fall");
    }
}
