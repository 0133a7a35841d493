//! `hark chat`: recent history, then live messages with ticks; every line
//! typed is sent, and incoming messages are marked read while it is open.

use super::session::Session;
use super::view::{self, Tick, Watermarks};
use hark_proto::{
    Activity, ChatId, Event, HistoryLine, Message, Pos, PresenceState, Seq, TypingState, UserId,
};
use hark_sdk::{Api, ClientEvent, ConnectOptions, Connection, Page};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long leaving waits for the last read mark to be acknowledged.
const MARK_GRACE: Duration = Duration::from_secs(5);
/// How long, after standard input ends, to wait for sends to be acked and shown.
const LEAVE_GRACE: Duration = Duration::from_secs(15);

/// What the open chat window knows.
struct Window {
    api: Api,
    /// The highest seq to mark read; a separate task sends the marks so this
    /// loop never waits on the connection it is reading events from.
    read_to: watch::Sender<Seq>,
    chat_id: ChatId,
    me: UserId,
    /// Display names by user, filled from the chat's members and on demand.
    names: HashMap<UserId, String>,
    marks: Watermarks,
    /// Ticks last printed for our own messages, to reprint only changes.
    own: BTreeMap<Seq, Tick>,
    /// The highest seq printed; replayed events at or below it are skipped.
    shown: Seq,
    /// The stream position of the newest event line printed from history;
    /// the same events replayed by catch-up are not printed again.
    lines_shown: Pos,
    /// The highest seq marked read.
    read: Seq,
    /// Who was last shown as online, to print only changes.
    online: HashMap<UserId, bool>,
    /// Who is shown as typing (or recording) right now.
    typing: HashMap<UserId, Activity>,
    /// This device's encryption, in an end-to-end encrypted chat.
    crypto: Option<hark_sdk::Crypto>,
}

pub(super) async fn run(
    api: Api,
    mut session: Session,
    chat_id: ChatId,
    limit: u32,
) -> anyhow::Result<()> {
    let me = session.user.id;
    let summary = api.chat(chat_id).await?;
    let crypto = match summary.chat.encrypted {
        true => Some(super::e2e::open(&api, &mut session).await?),
        false => None,
    };
    let page = api.history(chat_id, Page::Newest, Some(limit)).await?;
    let options = ConnectOptions {
        cursor: session.cursor,
        auto_delivered: true,
        tls: session.tls()?,
    };
    let (conn, mut events) = Connection::connect(&session.server, &session.token, options).await?;
    let (read_to, read_rx) = watch::channel(Seq(0));
    let marker = tokio::spawn(mark_read(conn.clone(), chat_id, read_rx));
    let mut window = Window {
        api,
        read_to,
        chat_id,
        me,
        names: summary
            .chat
            .members
            .iter()
            .map(|m| (m.user.id, view::sender_name(&m.user)))
            .collect(),
        marks: Watermarks::new(&summary.chat.members, me),
        own: BTreeMap::new(),
        shown: Seq(0),
        lines_shown: Pos(0),
        read: Seq(0),
        online: HashMap::new(),
        typing: HashMap::new(),
        crypto,
    };
    // Presence of the other members and this chat's typing indicators.
    let others: Vec<UserId> = summary
        .chat
        .members
        .iter()
        .map(|m| m.user.id)
        .filter(|id| *id != me)
        .take(512)
        .collect();
    conn.watch(others, vec![chat_id]).await?;
    println!(
        "— {} (chat {chat_id}) — type a message and press Enter; Ctrl-D or Ctrl-C to leave",
        view::chat_title(&summary.chat, me)
    );
    // Event lines go below the message they followed (`after`).
    let mut lines = page.lines.iter().peekable();
    for m in &page.messages {
        while let Some(line) = lines.next_if(|l| l.after < m.seq) {
            window.line(line).await;
        }
        window.show(m).await;
    }
    for line in lines {
        window.line(line).await;
    }

    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let mut acks = JoinSet::new();
    // Our highest acked seq: after standard input ends, leave once it is shown.
    let mut acked = Seq(0);
    let mut leave_by = None;
    let result = loop {
        if !stdin_open && acks.is_empty() && window.shown >= acked {
            break Ok(());
        }
        let deadline = leave_by.unwrap_or_else(|| tokio::time::Instant::now() + LEAVE_GRACE);
        tokio::select! {
            line = stdin.next_line(), if stdin_open => match line {
                Ok(Some(line)) => {
                    let text = line.trim();
                    if text.is_empty() {
                        continue;
                    }
                    // Queued in typing order; the ack is awaited on the side.
                    let pending = match &window.crypto {
                        None => conn.queue_send(chat_id, text).await?,
                        Some(crypto) => {
                            // The members as they are now: the key goes to each of their devices.
                            let chat = window.api.chat(chat_id).await?.chat;
                            let sealed = super::e2e::encrypt(crypto, &chat, text).await?;
                            conn.queue_send_encrypted(chat_id, sealed, None).await?
                        }
                    };
                    acks.spawn(pending.ack());
                }
                Ok(None) => {
                    stdin_open = false;
                    leave_by = Some(tokio::time::Instant::now() + LEAVE_GRACE);
                }
                Err(e) => break Err(e.into()),
            },
            Some(done) = acks.join_next() => match done {
                Ok(Ok(ack)) => acked = acked.max(ack.seq),
                Ok(Err(e)) if e.code() == Some(hark_proto::ErrorCode::Blocked) => {
                    eprintln!("! not sent: {}", super::BLOCKED);
                }
                Ok(Err(e)) => eprintln!("! not sent: {e}"),
                Err(e) => eprintln!("! send task failed: {e}"),
            },
            event = events.recv() => match event {
                Some(ClientEvent::Event { pos, event }) => window.apply(pos, event).await,
                Some(ClientEvent::Presence(state)) => window.presence(state).await,
                Some(ClientEvent::Typing(state)) => window.typing(state).await,
                Some(ClientEvent::Disconnected { reason }) => eprintln!("(connection lost: {reason}; reconnecting)"),
                Some(ClientEvent::Closed { code }) => {
                    break match code {
                        Some(code) => Err(anyhow::anyhow!("the server closed the connection: {}", code.as_str())),
                        None => Ok(()),
                    };
                }
                Some(ClientEvent::Connected { .. } | ClientEvent::ToDevice) => {
                    // Keys that arrived for this device (after a reconnect, or now).
                    if let Some(crypto) = &window.crypto {
                        if let Err(e) = crypto.sync().await {
                            eprintln!("! could not read this device's keys: {e}");
                        }
                    }
                }
                Some(ClientEvent::CaughtUp { .. }) => {}
                None => break Ok(()),
            },
            () = tokio::time::sleep_until(deadline), if leave_by.is_some() => {
                break if acks.is_empty() {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!("{} message(s) were not acknowledged in time", acks.len()))
                };
            }
            _ = tokio::signal::ctrl_c() => break Ok(()),
        }
    };
    session.cursor = conn.cursor();
    // Let the last read mark reach the server before the socket closes.
    drop(window);
    if tokio::time::timeout(MARK_GRACE, marker).await.is_err() {
        eprintln!("! the last read mark was not confirmed");
    }
    conn.close().await;
    // Remembering the cursor only saves replay next time; failing to is not fatal.
    if let Err(e) = session.save() {
        eprintln!("! could not save the cursor: {e:#}");
    }
    result
}

/// Send a read mark whenever the window's read watermark rises, coalescing
/// bursts; ends (after the last mark) when the window is dropped.
async fn mark_read(conn: Connection, chat_id: ChatId, mut read_to: watch::Receiver<Seq>) {
    while read_to.changed().await.is_ok() {
        let seq = *read_to.borrow_and_update();
        if let Err(e) = conn.mark_read(chat_id, seq).await {
            eprintln!("! could not mark read: {e}");
        }
    }
}

impl Window {
    async fn apply(&mut self, pos: Pos, event: Event) {
        if let Event::DevicesChanged { user_id } = event {
            // A contact's devices changed: their keys are fetched again
            // before the next message is encrypted.
            if let Some(crypto) = &self.crypto {
                if let Err(e) = crypto.devices_changed(&[user_id]).await {
                    eprintln!("! could not update {user_id}'s devices: {e}");
                }
            }
            return;
        }
        if let Event::DeviceApprovalRequested { device } = &event {
            // No chat's (its chat id is 0), so shown in whichever chat is
            // open; catch-up replays old ones too: only a login still
            // waiting gets a line.
            if self.still_waiting(device.id).await {
                println!(
                    "* a new login of your account, \"{}\" (device {}), waits for approval: `hark approve {}`, or `hark revoke {}` if it is not you",
                    device.name, device.id.0, device.id.0, device.id.0
                );
            }
            return;
        }
        if event.chat_id() != self.chat_id {
            return;
        }
        // An event line history already printed changes state, not the screen.
        let quiet = pos <= self.lines_shown;
        match event {
            Event::Message(m) => self.show(&m).await,
            Event::Receipt(r) => {
                if r.user_id == self.me {
                    return;
                }
                self.marks
                    .update(r.user_id, r.delivered_up_to, r.read_up_to);
                self.reprint_ticks();
            }
            Event::ChatRenamed { title, by, .. } => {
                let by = self.name(by).await;
                if !quiet {
                    println!("* {by} renamed the chat to \"{title}\"");
                }
            }
            Event::MemberAdded { user_id, by, .. } => {
                let who = self.name(user_id).await;
                let by = self.name(by).await;
                if user_id != self.me {
                    self.marks.update(user_id, Seq(0), Seq(0));
                }
                if !quiet {
                    println!("* {by} added {who}");
                }
            }
            Event::MemberRemoved { user_id, by, .. } => {
                let who = self.name(user_id).await;
                self.marks.remove(user_id);
                if !quiet {
                    if user_id == by {
                        println!("* {who} left");
                    } else {
                        let by = self.name(by).await;
                        println!("* {by} removed {who}");
                    }
                }
                self.reprint_ticks();
            }
            Event::AdminChanged { user_id, admin, .. } => {
                let who = self.name(user_id).await;
                let what = if admin {
                    "is now an admin"
                } else {
                    "is no longer an admin"
                };
                if !quiet {
                    println!("* {who} {what}");
                }
            }
            Event::MessageEdited {
                seq,
                text,
                encrypted,
                ..
            } => {
                let text = match encrypted {
                    None => text,
                    Some(_) => self.edited_now(seq).await,
                };
                println!("* [seq {seq}] edited: {text}");
            }
            Event::MessageDeleted { seq, by, .. } => {
                let by = self.name(by).await;
                println!("* [seq {seq}] was deleted by {by}");
            }
            Event::MessageExpired { seq, .. } => {
                if !quiet {
                    println!("* [seq {seq}] disappeared");
                }
            }
            Event::DisappearingChanged { seconds, by, .. } => {
                let by = self.name(by).await;
                if !quiet {
                    match seconds {
                        0 => println!("* {by} turned off disappearing messages"),
                        s => println!(
                            "* {by} turned on disappearing messages: new messages disappear after {}",
                            view::timer_name(s)
                        ),
                    }
                }
            }
            Event::Reaction {
                seq,
                user_id,
                emoji,
                ..
            } => {
                let who = self.name(user_id).await;
                match emoji {
                    Some(emoji) => println!("* {who} reacted {emoji} to [seq {seq}]"),
                    None => println!("* {who} removed their reaction to [seq {seq}]"),
                }
            }
            Event::ChatCreated { .. }
            | Event::MessageHidden { .. }
            | Event::ChatSettingsChanged { .. }
            | Event::DevicesChanged { .. }
            | Event::DeviceApprovalRequested { .. }
            | Event::DeviceApproved { .. }
            | Event::DeviceApprovalWithdrawn { .. } => {}
        }
    }

    /// Whether `device` (of this account) still waits for approval.
    async fn still_waiting(&self, device: hark_proto::DeviceId) -> bool {
        match self.api.devices().await {
            Ok(devices) => devices.iter().any(|d| d.id == device && d.pending),
            // Cannot tell: better a line too many than a login unnoticed.
            Err(_) => true,
        }
    }

    /// Print a member's online / last seen when it changes.
    async fn presence(&mut self, state: PresenceState) {
        let name = self.name(state.user_id).await;
        match (state.online, state.last_seen) {
            (Some(true), _) => {
                if self.online.insert(state.user_id, true) != Some(true) {
                    println!("* {name} is online");
                }
            }
            (online, last_seen) => {
                let was_online = self.online.insert(state.user_id, false) == Some(true);
                self.typing.remove(&state.user_id);
                match last_seen {
                    Some(at) => println!("* {name} was last seen {}", view::date_time(at)),
                    None if was_online || online.is_some() => println!("* {name} is offline"),
                    None => {}
                }
            }
        }
    }

    /// Print "typing…" once when someone starts; a message or a stop ends it.
    async fn typing(&mut self, state: TypingState) {
        if state.chat_id != self.chat_id || state.user_id == self.me {
            return;
        }
        if state.activity == Activity::Stopped {
            self.typing.remove(&state.user_id);
            return;
        }
        if self.typing.insert(state.user_id, state.activity) != Some(state.activity) {
            let name = self.name(state.user_id).await;
            let what = match state.activity {
                Activity::Recording => "is recording audio…",
                _ => "is typing…",
            };
            println!("* {name} {what}");
        }
    }

    /// Print a message once; mark others' messages read.
    async fn show(&mut self, m: &Message) {
        if m.seq <= self.shown {
            return;
        }
        let readable = super::e2e::readable(self.crypto.as_ref(), m).await;
        let m = &readable;
        self.shown = m.seq;
        self.typing.remove(&m.sender_id);
        if m.sender_id == self.me {
            let tick = self.marks.tick(m.seq);
            self.own.insert(m.seq, tick);
            println!("{}", view::message_line(m, "you", Some(tick)));
            return;
        }
        let sender = self.name(m.sender_id).await;
        println!("{}", view::message_line(m, &sender, None));
        if m.seq > self.read {
            self.read = m.seq;
            self.read_to.send_replace(m.seq);
        }
    }

    /// Reprint the tick of each of our messages whose tick rose.
    fn reprint_ticks(&mut self) {
        for (seq, shown) in self.own.iter_mut() {
            let now = self.marks.tick(*seq);
            if now > *shown {
                *shown = now;
                println!("[seq {seq}] {}", now.render());
            }
        }
        // Read messages cannot change any more; stop tracking them.
        self.own.retain(|_, tick| *tick != Tick::Read);
    }

    /// Print an event line from history ("— alice added carol —").
    async fn line(&mut self, line: &HistoryLine) {
        let mut names = HashMap::new();
        if let Event::MemberAdded { user_id, by, .. }
        | Event::MemberRemoved { user_id, by, .. }
        | Event::AdminChanged { user_id, by, .. } = line.event
        {
            names.insert(user_id, self.name(user_id).await);
            names.insert(by, self.name(by).await);
        }
        if let Event::ChatCreated { by, .. } | Event::ChatRenamed { by, .. } = line.event {
            names.insert(by, self.name(by).await);
        }
        let name = |id: UserId| names.get(&id).cloned().unwrap_or_default();
        if let Some(text) = view::event_line(&line.event, name) {
            println!("{text}");
        }
        self.lines_shown = self.lines_shown.max(line.pos);
    }

    /// An encrypted message's text as it is now (after an edit): read
    /// again and decrypted, since the edit event carries no sender.
    async fn edited_now(&self, seq: Seq) -> String {
        let page = self
            .api
            .history(
                self.chat_id,
                hark_sdk::Page::Before(Seq(seq.0 + 1)),
                Some(1),
            )
            .await;
        match page
            .ok()
            .and_then(|p| p.messages.into_iter().find(|m| m.seq == seq))
        {
            Some(m) => super::e2e::readable(self.crypto.as_ref(), &m).await.text,
            None => "🔒 (encrypted)".to_owned(),
        }
    }

    async fn name(&mut self, user: UserId) -> String {
        if user == self.me {
            return "you".into();
        }
        if let Some(name) = self.names.get(&user) {
            return name.clone();
        }
        let name = match self.api.user(user).await {
            Ok(u) => view::sender_name(&u),
            Err(_) => format!("user {user}"),
        };
        self.names.insert(user, name.clone());
        name
    }
}
