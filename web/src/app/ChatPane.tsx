// The right column: the open chat's header, its messages (history loads as
// you scroll up) and the composer. Messages are marked read while the chat is
// open and the page visible.

import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { MediaRef, Message } from '../hark-client';
import { ChatSettingsItems, useDismiss, useMenuKeys } from './ChatMenu';
import { BlockedBar, DeletedBar, PersonMenuItems } from './Contacts';
import { UnverifiedWarning, VerifiedIcon } from './Devices';
import { LockIcon } from './Encryption';
import type { ChatMessage } from './encrypted';
import { ForwardDialog } from './ForwardDialog';
import { ConnectionBanner } from './Sidebar';
import type { Panel } from './InfoPanel';
import type { Note } from './local';
import { AttachmentPreview, mediaLabel, mediaWidth, MessageMedia, summaryOf } from './media';
import { PersonAvatar } from './Profile';
import { isEmojiOnly, isLong, RichText, textStart } from './rich';
import { isDeletedAccount, sealedLabel, type AppStore, type ChatModel, type Tick } from './store';
import { BackIcon, ChevronIcon, clock, CloseIcon, dayKey, dayLabel, disappearingLabel, DotsIcon, ForwardIcon, HarkLogo, InfoIcon, MicIcon, MutedIcon, PaperclipIcon, presenceLabel, SearchIcon, SendIcon, Ticks, TimerIcon, TrashIcon, nameColorFor, BotBadge } from './ui';
import { formatDuration, useVoiceRecorder } from './voice';

/** A typing indicator is refreshed this often while the person keeps typing. */
const TYPING_EVERY_MS = 3_000;

export function EmptyPane() {
  return (
    <div class="empty-pane">
      <HarkLogo size={72} />
      <h2>Hark for the web</h2>
      <p>Send and receive messages from your browser. Pick a chat on the left, or start a new one.</p>
      <p class="muted">Your messages are stored on your own Hark server.</p>
    </div>
  );
}

/** Whether the page is visible (a hidden tab does not read messages). */
function usePageVisible(): boolean {
  const [visible, setVisible] = useState(document.visibilityState === 'visible');
  useEffect(() => {
    const on = () => setVisible(document.visibilityState === 'visible');
    document.addEventListener('visibilitychange', on);
    return () => document.removeEventListener('visibilitychange', on);
  }, []);
  return visible;
}

interface Row {
  key: string;
  day?: string;
  /** The "N unread messages" divider. */
  unread?: number;
  /** A group event line. */
  note?: string;
  message?: ChatMessage;
  pending?: { client_id: string; text: string; at: number; tick: Tick; failedNote?: string; forwarded?: boolean; media?: MediaRef };
}

export function ChatPane(props: { store: AppStore; model: ChatModel; onPanel: (p: Panel | null) => void; onBack: () => void }) {
  const { store, model, onPanel } = props;
  const chatId = model.chat.id;
  const group = model.chat.kind === 'group';
  const encrypted = store.isEncrypted(model);
  const title = store.title(model);
  /** The disappearing-messages timer (seconds; 0: off). */
  const timer = model.chat.disappearing_secs ?? 0;
  const scroller = useRef<HTMLDivElement>(null);
  const stickToBottom = useRef(true);
  /** Older messages are loading: the height and oldest seq before, to keep the reading position once they are in. */
  const restoreFrom = useRef<{ height: number; oldest: number } | null>(null);
  const visible = usePageVisible();
  const [menu, setMenu] = useState<number | null>(null);
  const [replyTo, setReplyTo] = useState<ChatMessage | null>(null);
  const [editing, setEditing] = useState<ChatMessage | null>(null);
  const [forwarding, setForwarding] = useState<Message | null>(null);
  const [headerMenu, setHeaderMenu] = useState(false);
  useDismiss(headerMenu, () => setHeaderMenu(false));
  const headerMenuRef = useRef<HTMLDivElement>(null);
  useMenuKeys(headerMenuRef, headerMenu, () => setHeaderMenu(false));
  /** The search jump (`focus.at`) already scrolled to. */
  const focusDone = useRef(0);
  useEffect(() => {
    if (menu === null) return;
    const close = () => setMenu(null);
    document.addEventListener('click', close);
    return () => document.removeEventListener('click', close);
  }, [menu]);

  const messages = [...model.messages.values()].sort((a, b) => a.seq - b.seq);
  // A queued send whose message already arrived (its event can come before
  // its ack) is painted once, as the message.
  const confirmed = new Set(messages.filter((m) => m.sender_device === store.session.device.id).map((m) => m.client_id));
  const pending = store.pending(chatId).filter((p) => !confirmed.has(p.client_id));
  const failed = store.failedIn(chatId);

  // The unread divider: where the unread messages started when the chat was
  // opened (it stays put while the chat is open, as in WhatsApp).
  const [unreadAtOpen] = useState(() => {
    const first = store.firstUnread(model);
    return first === null ? null : { first, count: store.unread(model) };
  });
  /** The divider is still to be scrolled to (once, on opening). */
  const toDivider = useRef(unreadAtOpen !== null);
  const [dividerAbove, setDividerAbove] = useState(false);
  const [atBottom, setAtBottom] = useState(true);

  // Read receipts only for what was on screen while the page was visible:
  // an IntersectionObserver reports the bubbles in view, and the highest seq
  // seen so far is marked read.
  const seenUpTo = useRef(0);
  const observer = useRef<IntersectionObserver | null>(null);
  const observed = useRef(new WeakSet<Element>());
  const markSeen = () => {
    if (document.visibilityState === 'visible' && seenUpTo.current > 0) store.markRead(chatId, seenUpTo.current);
  };
  useEffect(() => {
    const root = scroller.current;
    if (!root || typeof IntersectionObserver === 'undefined') return;
    const io = new IntersectionObserver(
      (entries) => {
        for (const e of entries) {
          if (!e.isIntersecting) continue;
          // Half of it, or a good part of a tall one, is in view.
          if (e.intersectionRect.height < Math.min(e.boundingClientRect.height * 0.5, 40)) continue;
          const seq = Number((e.target as HTMLElement).dataset.seq);
          if (seq > seenUpTo.current) seenUpTo.current = seq;
        }
        markSeen();
      },
      { root, threshold: [0, 0.1, 0.5, 1] },
    );
    observer.current = io;
    return () => io.disconnect();
  }, [chatId]);
  useLayoutEffect(() => {
    const io = observer.current;
    if (!io || !scroller.current) return;
    for (const el of scroller.current.querySelectorAll('.bubble[data-seq]')) {
      if (observed.current.has(el)) continue;
      observed.current.add(el);
      io.observe(el);
    }
  });
  useEffect(() => {
    if (visible) markSeen();
  }, [visible]);

  const rows: Row[] = [];
  let lastDay = '';
  const dayRow = (at: number) => {
    const k = dayKey(at);
    if (k !== lastDay) {
      lastDay = k;
      rows.push({ key: `day-${k}`, day: dayLabel(at) });
    }
  };
  // Shown only where the unread start is loaded (not above a later page).
  // Group event lines go below the message they followed; lines older than
  // the loaded range wait until it reaches them.
  const notes = store.notes(chatId).filter((n) => !model.hasMoreBefore || (messages.length > 0 && n.afterSeq >= messages[0].seq));
  let nextNote = 0;
  const notesUpTo = (seq: number) => {
    while (nextNote < notes.length && notes[nextNote].afterSeq < seq) {
      const n = notes[nextNote];
      rows.push({ key: `n-${nextNote}`, note: noteText(store, n) });
      nextNote++;
    }
  };
  let dividerShown = !unreadAtOpen || (messages.length > 0 && messages[0].seq > unreadAtOpen.first && model.hasMoreBefore);
  for (const m of messages) {
    notesUpTo(m.seq);
    dayRow(m.sent_at);
    if (unreadAtOpen && !dividerShown && m.seq >= unreadAtOpen.first && m.sender_id !== store.me.id) {
      dividerShown = true;
      rows.push({ key: 'unread', unread: unreadAtOpen.count });
    }
    rows.push({ key: `m-${m.seq}`, message: m });
  }
  if (!model.hasMoreAfter) notesUpTo(Infinity);
  for (const p of pending) {
    dayRow(p.queued_at);
    rows.push({ key: `p-${p.client_id}`, pending: { client_id: p.client_id, text: p.text, at: p.queued_at, tick: 'pending', forwarded: p.forwarded, media: p.media } });
  }
  for (const f of failed) {
    rows.push({ key: `f-${f.client_id}`, pending: { client_id: f.client_id, text: f.text, at: Date.now(), tick: 'failed', failedNote: store.failedNote(f) } });
  }

  // Keep the view pinned to the bottom when it was there; keep the reading
  // position when older messages are prepended.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const divider = toDivider.current ? el.querySelector<HTMLElement>('[data-testid=unread-divider]') : null;
    if (divider) {
      // Opened with unread messages: the divider at the top, the unread below it.
      toDivider.current = false;
      restoreFrom.current = null;
      el.scrollTop += divider.getBoundingClientRect().top - el.getBoundingClientRect().top - 12;
      stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80 && !model.hasMoreAfter;
    } else if (restoreFrom.current !== null && messages.length > 0 && messages[0].seq < restoreFrom.current.oldest) {
      el.scrollTop += el.scrollHeight - restoreFrom.current.height;
      restoreFrom.current = null;
    } else if (stickToBottom.current) {
      el.scrollTop = el.scrollHeight;
    }
  });

  // Back at the newest page after a jump (e.g. sent a message from there): follow new messages again.
  // (Only on that change: on opening, the unread divider decides where to be.)
  const wasAway = useRef(false);
  useEffect(() => {
    const away = model.hasMoreAfter || !!model.focus;
    if (wasAway.current && !away) stickToBottom.current = true;
    wasAway.current = away;
  }, [model.hasMoreAfter, model.focus]);

  // A search result was opened: show that message in the middle, once per jump.
  useLayoutEffect(() => {
    const focus = model.focus;
    if (!focus || focusDone.current === focus.at) return;
    const el = scroller.current?.querySelector(`[data-seq="${focus.seq}"]`);
    if (!el) return; // Its page is still loading.
    focusDone.current = focus.at;
    stickToBottom.current = false;
    centerIn(scroller.current!, el, 'instant');
  });

  async function onScroll() {
    const el = scroller.current;
    if (!el) return;
    const nearBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
    stickToBottom.current = nearBottom && !model.hasMoreAfter;
    if (nearBottom !== atBottom) setAtBottom(nearBottom);
    const divider = el.querySelector<HTMLElement>('[data-testid=unread-divider]');
    const above = unreadAtOpen !== null && (divider ? divider.offsetTop + divider.offsetHeight < el.scrollTop : true);
    if (above !== dividerAbove) setDividerAbove(above);
    if (el.scrollHeight - el.scrollTop - el.clientHeight < 200 && model.hasMoreAfter && !model.loadingNewer) {
      void store.loadNewer(chatId);
    }
    if (el.scrollTop < 120 && model.hasMoreBefore && !model.loadingOlder) {
      restoreFrom.current = { height: el.scrollHeight, oldest: messages[0]?.seq ?? Infinity };
      const loaded = await store.loadOlder(chatId);
      if (!loaded) restoreFrom.current = null;
    }
  }

  const unreadNow = store.unread(model);

  // In an encrypted chat, know the others' devices: a verified contact's new
  // device is warned about, a verified peer shows so in the header.
  const people = encrypted ? store.watchedPeople(model).join(',') : '';
  useEffect(() => {
    if (people) store.e2e.loadDevices(people.split(',').map(Number));
  }, [store, people]);

  // A file dragged over the chat: a drop zone over it; dropped, it becomes
  // the composer's attachment. (enter/leave fire for every child crossed,
  // hence the depth.)
  const [dragging, setDragging] = useState(false);
  const dragDepth = useRef(0);
  const carriesFiles = (e: DragEvent) => !model.left && !!e.dataTransfer && [...e.dataTransfer.types].includes('Files');
  const dropHandlers = {
    onDragEnter: (e: DragEvent) => {
      if (!carriesFiles(e)) return;
      e.preventDefault();
      dragDepth.current++;
      setDragging(true);
    },
    onDragOver: (e: DragEvent) => {
      if (!carriesFiles(e)) return;
      e.preventDefault();
      e.dataTransfer!.dropEffect = 'copy';
    },
    onDragLeave: (e: DragEvent) => {
      if (!carriesFiles(e)) return;
      dragDepth.current = Math.max(0, dragDepth.current - 1);
      if (dragDepth.current === 0) setDragging(false);
    },
    onDrop: (e: DragEvent) => {
      if (!carriesFiles(e)) return;
      e.preventDefault();
      dragDepth.current = 0;
      setDragging(false);
      const file = e.dataTransfer?.files[0];
      if (file) store.attach(chatId, file);
    },
  };

  // One Tab stop for the whole list: the last message focused (else the
  // newest); the arrow keys move between messages, Enter opens a menu.
  const [activeSeq, setActiveSeq] = useState<number | null>(null);
  const tabSeq = activeSeq !== null && model.messages.has(activeSeq) ? activeSeq : messages.length ? messages[messages.length - 1].seq : null;
  function onListKey(e: KeyboardEvent) {
    const target = e.target as HTMLElement;
    if (!target.matches('.bubble[data-seq]')) return;
    const all = [...(scroller.current?.querySelectorAll<HTMLElement>('.bubble[data-seq]') ?? [])];
    const i = all.indexOf(target);
    const page = Math.max(1, Math.floor((scroller.current?.clientHeight ?? 600) / 60));
    const to = { ArrowUp: i - 1, ArrowDown: i + 1, Home: 0, End: all.length - 1, PageUp: i - page, PageDown: i + page }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    const next = all[Math.max(0, Math.min(all.length - 1, to))];
    next?.focus({ preventScroll: true });
    if (next && scroller.current) {
      const r = next.getBoundingClientRect();
      const b = scroller.current.getBoundingClientRect();
      if (r.top < b.top + 8) scroller.current.scrollTop -= b.top + 8 - r.top;
      else if (r.bottom > b.bottom - 8) scroller.current.scrollTop += r.bottom - b.bottom + 8;
    }
  }

  async function jumpToLatest() {
    const el = scroller.current;
    if (model.hasMoreAfter) await store.showLatest(chatId);
    stickToBottom.current = true;
    if (el) el.scrollTop = el.scrollHeight;
    setAtBottom(true);
  }

  async function jumpToUnread() {
    if (!unreadAtOpen) return;
    const el = scroller.current;
    if (!el?.querySelector('[data-testid=unread-divider]')) await store.openChatAt(chatId, unreadAtOpen.first, { highlight: false });
    toDivider.current = true;
    restoreFrom.current = null;
    stickToBottom.current = false;
    setDividerAbove(false);
    store.notify();
  }

  const peer = store.peer(model);
  // Opening the chat asks for their profile again (a new photo, a new about line, or one hidden now).
  const peerId = peer && !isDeletedAccount(peer) ? peer.id : null;
  useEffect(() => {
    if (peerId !== null) store.profiles.refresh(peerId);
  }, [store, peerId]);
  const typing = store.typingLabel(model);
  const about = peerId !== null ? store.profiles.of(peerId)?.about : null;
  const subtitle = typing
    ? typing
    : group
    ? model.chat.members
        .map((m) => (m.user.id === store.me.id ? 'You' : m.user.display_name))
        .sort((a, b) => (a === 'You' ? 1 : b === 'You' ? -1 : a.localeCompare(b)))
        .join(', ')
    : peer && isDeletedAccount(peer)
    ? 'Account deleted'
    : (presenceLabel(peer ? store.presence.get(peer.id) : undefined) ?? (about || `@${peer?.username ?? ''}`));

  return (
    <section class="chat" data-testid="chat-pane" data-chat-id={chatId} {...dropHandlers}>
      {dragging && (
        <div class="drop-zone" data-testid="drop-zone" aria-hidden="true">
          <span>Drop the file here to send it</span>
        </div>
      )}
      <header class="chat-header" onClick={() => onPanel({ kind: 'chat' })}>
        <button class="icon-btn back-btn" aria-label="Back to chats" data-testid="chat-back" onClick={(e) => { e.stopPropagation(); props.onBack(); }}>
          <BackIcon />
        </button>
        <PersonAvatar store={store} user={peer} name={title} id={chatId * 7} size={40} group={group} />
        <div class="chat-header-text">
          <div class="chat-title-row">
            <span class="chat-title" dir="auto" data-testid="chat-header-title">{title}</span>
            {!group && <BotBadge user={peer} />}
            {encrypted && (
              <span class="header-lock" title="Messages are end-to-end encrypted" data-testid="header-lock">
                <LockIcon size={14} title="End-to-end encrypted" />
              </span>
            )}
            {encrypted && peer && store.isVerifiedContact(peer.id) && (
              <span class="header-verified" title={`You verified ${title}'s devices`} data-testid="header-verified">
                <VerifiedIcon size={15} title="Verified" />
              </span>
            )}
            {timer > 0 && (
              <span class="header-timer" title={`Disappearing messages: ${disappearingLabel(timer)}`} data-testid="header-disappearing" data-seconds={timer}>
                <TimerIcon size={15} />
                <span class="header-timer-label">{disappearingLabel(timer)}</span>
              </span>
            )}
          </div>
          <div class={`chat-sub ${typing ? 'typing' : ''}`} dir="auto" data-testid="chat-header-sub">{subtitle}</div>
        </div>
        {store.isMuted(model) && (
          <span class="header-muted" title="Muted" data-testid="header-muted">
            <MutedIcon />
          </span>
        )}
        <button class="icon-btn" aria-label="Search messages" title="Search messages" data-testid="chat-search" onClick={(e) => { e.stopPropagation(); onPanel({ kind: 'search' }); }}>
          <SearchIcon size={24} />
        </button>
        <button class="icon-btn" aria-label={group ? 'Group info' : 'Contact info'} data-testid="chat-info" onClick={(e) => { e.stopPropagation(); onPanel({ kind: 'chat' }); }}>
          <InfoIcon />
        </button>
        <div class="menu-wrap" onClick={(e) => e.stopPropagation()}>
          <button class="icon-btn" aria-label="Chat menu" title="Menu" aria-haspopup="menu" aria-expanded={headerMenu} data-testid="chat-header-menu" onClick={() => setHeaderMenu(!headerMenu)}>
            <DotsIcon />
          </button>
          {headerMenu && (
            <div class="menu" role="menu" aria-label="Chat menu" data-testid="chat-menu" ref={headerMenuRef}>
              <button role="menuitem" data-testid="chat-menu-info" onClick={() => { setHeaderMenu(false); onPanel({ kind: 'chat' }); }}>
                <InfoIcon /> {group ? 'Group info' : 'Contact info'}
              </button>
              <button role="menuitem" data-testid="chat-menu-search" onClick={() => { setHeaderMenu(false); onPanel({ kind: 'search' }); }}>
                <SearchIcon /> Search messages
              </button>
              {!model.left && <ChatSettingsItems store={store} model={model} onClose={() => setHeaderMenu(false)} />}
              {/* Nobody to add or block once they deleted their account. */}
              {peer && !isDeletedAccount(peer) && <PersonMenuItems store={store} user={peer} onClose={() => setHeaderMenu(false)} />}
            </div>
          )}
        </div>
      </header>
      <div class="chat-banner">
        <ConnectionBanner store={store} testid="conn-banner-chat" />
      </div>
      <UnverifiedWarning store={store} model={model} onReview={(user) => onPanel(group ? { kind: 'devices', user } : { kind: 'chat' })} />
      <div class="messages" ref={scroller} onScroll={() => void onScroll()} data-testid="messages">
        <div class="messages-inner" role="region" aria-label={`Messages with ${title}`} onKeyDown={onListKey}>
          {encrypted && (
            <div class="e2e-note" data-testid="e2e-note">
              <LockIcon size={12} /> Messages are end-to-end encrypted. Only the people in this chat can read them, not even the Hark server.
            </div>
          )}
          {model.loadingOlder && <div class="loading-older top">Loading earlier messages…</div>}
          {model.historyLoaded && !model.hasMoreBefore && (
            <div class="chat-start">
              {group ? 'Members see the messages sent from the moment they joined.' : 'This is the start of your conversation.'}
            </div>
          )}
          {rows.map((r, i) => {
            if (r.day) return <div class="day" key={r.key}><span>{r.day}</span></div>;
            if (r.note !== undefined) {
              return (
                <div class="event-line" key={r.key} data-testid="event-line">
                  <span dir="auto">{r.note}</span>
                </div>
              );
            }
            if (r.unread !== undefined) {
              return (
                <div class="unread-divider" key={r.key} data-testid="unread-divider">
                  <span>{r.unread === 1 ? '1 unread message' : `${r.unread} unread messages`}</span>
                </div>
              );
            }
            const prev = rows[i - 1];
            if (r.message) {
              const m = r.message;
              const mine = m.sender_id === store.me.id;
              const first = !prev?.message || prev.message.sender_id !== m.sender_id;
              return (
                <Bubble
                  key={r.key}
                  store={store}
                  mine={mine}
                  first={first}
                  tabbable={m.seq === tabSeq}
                  onFocused={() => setActiveSeq(m.seq)}
                  sender={group && !mine && first ? store.userName(model, m.sender_id) : null}
                  senderBot={!!store.userOf(model, m.sender_id)?.bot}
                  senderColor={nameColorFor(m.sender_id)}
                  text={m.text}
                  time={m.sent_at}
                  tick={mine && !m.deleted ? store.tick(model, m.seq) : null}
                  seq={m.seq}
                  message={m}
                  quoteName={m.reply_to ? store.userName(model, m.reply_to.sender_id) : undefined}
                  quoteText={
                    !m.reply_to
                      ? undefined
                      : encrypted && m.reply_to.snippet !== null
                      ? store.quoteText(model, m.reply_to.seq) ?? 'Encrypted message'
                      : quoteText(m.reply_to, model.messages.get(m.reply_to.seq))
                  }
                  reactions={m.reactions ?? []}
                  focused={model.focus?.seq === m.seq}
                  menu={
                    menu === m.seq && !m.deleted ? (
                      <MessageMenu
                        mine={mine}
                        canEdit={store.canEdit(m)}
                        encrypted={encrypted}
                        canDeleteForEveryone={store.canDeleteForEveryone(model, m)}
                        myReaction={(m.reactions ?? []).find((x) => x.user_id === store.me.id)?.emoji ?? null}
                        onClose={() => setMenu(null)}
                        onReply={() => { setEditing(null); setReplyTo(m); }}
                        onForward={() => setForwarding(m)}
                        onReact={(emoji) => store.conn.react(chatId, m.seq, emoji)}
                        onInfo={() => onPanel({ kind: 'message', seq: m.seq })}
                        onEdit={() => { setReplyTo(null); setEditing(m); }}
                        onDelete={(everyone) => {
                          void store
                            .ask({ title: everyone ? 'Delete this message for everyone?' : 'Delete this message for you?', confirm: everyone ? 'Delete for everyone' : 'Delete for me', danger: true })
                            .then((ok) => ok && store.conn.delete(chatId, m.seq, everyone));
                        }}
                      />
                    ) : null
                  }
                  onMenu={m.deleted || model.left ? undefined : (open) => setMenu(open || menu !== m.seq ? m.seq : null)}
                  onQuote={(seq) => { const q = scroller.current?.querySelector(`[data-seq="${seq}"]`); if (q) centerIn(scroller.current!, q, 'smooth'); }}
                />
              );
            }
            const p = r.pending!;
            const first = !!prev?.message && prev.message.sender_id !== store.me.id;
            return (
              <Bubble
                key={r.key}
                store={store}
                mine
                first={first}
                sender={null}
                text={p.text}
                media={p.media}
                time={p.at}
                tick={p.tick}
                forwarded={p.forwarded}
                note={p.failedNote}
                onInfo={p.tick === 'failed' ? () => store.dismissFailed(p.client_id) : undefined}
              />
            );
          })}
          {model.loadingNewer && <div class="loading-older bottom">Loading newer messages…</div>}
        </div>
      </div>
      {unreadAtOpen && dividerAbove && (
        <button class="jump jump-unread" data-testid="jump-unread" onClick={() => void jumpToUnread()}>
          ↑ {unreadAtOpen.count === 1 ? '1 unread message' : `${unreadAtOpen.count} unread messages`}
        </button>
      )}
      {(!atBottom || model.hasMoreAfter) && (
        <button class="jump jump-latest" aria-label={unreadNow > 0 ? `Jump to the latest message, ${unreadNow} unread` : 'Jump to the latest message'} data-testid="jump-latest" onClick={() => void jumpToLatest()}>
          <ChevronIcon />
          {unreadNow > 0 && <span class="jump-count" data-testid="jump-latest-count">{unreadNow > 99 ? '99+' : unreadNow}</span>}
        </button>
      )}
      {forwarding && <ForwardDialog store={store} message={forwarding} onClose={() => setForwarding(null)} />}
      {store.notice && (
        <div class="notice" role="alert" data-testid="notice">
          {store.notice}
        </div>
      )}
      <Composer
        store={store}
        model={model}
        replyTo={replyTo}
        editing={editing}
        onCancel={() => {
          setReplyTo(null);
          setEditing(null);
        }}
      />
    </section>
  );
}

/** What a reply shows of the message it answers: its start, "📷 Photo" for a photo without a caption. */
function quoteText(q: NonNullable<Message['reply_to']>, quoted: Message | undefined): string {
  if (q.snippet === null) return 'This message was deleted';
  if (!q.snippet && quoted?.media) return mediaLabel(quoted.media, '');
  return q.snippet;
}

/** "Alice added Carol", "You changed the group name to "Desk"", … */
function noteText(store: AppStore, n: Note): string {
  const by = store.nameOf(n.by, n.names);
  const who = n.user_id !== undefined ? store.nameOf(n.user_id, n.names) : '';
  switch (n.kind) {
    case 'chat_created':
      return `${by} created group "${n.title ?? ''}"`;
    case 'chat_renamed':
      return `${by} changed the group name to "${n.title ?? ''}"`;
    case 'member_added':
      return n.by === n.user_id ? `${who} joined` : `${by} added ${who === 'You' ? 'you' : who}`;
    case 'member_removed':
      return n.by === n.user_id ? `${who} left` : `${by} removed ${who === 'You' ? 'you' : who}`;
    case 'admin_changed':
      if (n.user_id === store.me.id) return n.admin ? "You're now an admin" : "You're no longer an admin";
      return n.admin ? `${who} is now an admin` : `${who} is no longer an admin`;
    case 'disappearing_changed':
      return n.seconds
        ? `${by} turned on disappearing messages. New messages will disappear after ${disappearingLabel(n.seconds)}.`
        : `${by} turned off disappearing messages.`;
  }
}

/**
 * Scroll the message list (and only it: scrollIntoView would also scroll the
 * app's overflow-hidden ancestors) so `el` is in the middle.
 */
function centerIn(scroller: HTMLElement, el: Element, behavior: ScrollBehavior): void {
  const r = el.getBoundingClientRect();
  const s = scroller.getBoundingClientRect();
  scroller.scrollTo({ top: scroller.scrollTop + r.top - s.top - (s.height - r.height) / 2, behavior });
}

/** Touch handlers that call `f` when a finger rests ~half a second without moving (a long press). */
function longPress(f: () => void) {
  let timer: ReturnType<typeof setTimeout> | 0 = 0;
  let start = { x: 0, y: 0 };
  const cancel = () => {
    clearTimeout(timer);
    timer = 0;
  };
  return {
    onPointerDown: (e: PointerEvent) => {
      if (e.pointerType !== 'touch') return;
      start = { x: e.clientX, y: e.clientY };
      cancel();
      timer = setTimeout(f, 500);
    },
    onPointerMove: (e: PointerEvent) => {
      if (timer && Math.hypot(e.clientX - start.x, e.clientY - start.y) > 10) cancel();
    },
    onPointerUp: cancel,
    onPointerCancel: cancel,
  };
}

const QUICK_REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🙏'];

function Bubble(props: {
  store: AppStore;
  mine: boolean;
  first: boolean;
  sender: string | null;
  /** The sender is a bot: a badge after their name. */
  senderBot?: boolean;
  senderColor?: string;
  text: string;
  time: number;
  tick: Tick | null;
  seq?: number;
  note?: string;
  message?: ChatMessage;
  quoteName?: string;
  quoteText?: string;
  /** A queued message's file (a sent one's is in `message`). */
  media?: MediaRef | null;
  reactions?: { user_id: number; emoji: string }[];
  focused?: boolean;
  forwarded?: boolean;
  menu?: preact.ComponentChildren;
  onInfo?: () => void;
  /** The message list's one Tab stop (the others are reached with the arrow keys). */
  tabbable?: boolean;
  onFocused?: () => void;
  /** Toggle the message's menu, or with `true` open it (a right click, a long press). */
  onMenu?: (open?: boolean) => void;
  onQuote?: (seq: number) => void;
}) {
  const m = props.message;
  const deleted = !!m?.deleted;
  /** When it disappears (it shows a timer by its time). */
  const expiresAt = !deleted ? m?.expires_at ?? null : null;
  // An encrypted message shows its file once decrypted (the server's ref says nothing of it).
  const media = deleted || m?.sealed ? null : (m?.media ?? props.media ?? null);
  // A photo or video without a caption has its time over it, on a shade;
  // a sound without one (a voice note), beside its player's length.
  const mediaOnly = !!media && !props.text && (media.kind === 'image' || media.kind === 'video');
  const audioOnly = !!media && !props.text && media.kind === 'audio';
  const body = (
    <>
      {deleted ? (
        <span class="text deleted" data-testid="msg-text">
          {props.mine ? 'You deleted this message' : 'This message was deleted'}
        </span>
      ) : m?.sealed ? (
        <SealedText sealed={m.sealed} />
      ) : (
        (props.text || !media) && <BubbleText text={props.text} tabbable={!!props.tabbable || props.seq === undefined} />
      )}
      {/* Keeps room on the last line for the time and ticks, like WhatsApp. */}
      <span class={`meta-spacer ${props.tick ? 'with-ticks' : ''} ${m?.edited_at && !deleted ? 'with-edited' : ''} ${expiresAt ? 'with-timer' : ''}`} aria-hidden="true" />
    </>
  );
  const grouped = new Map<string, number>();
  for (const r of props.reactions ?? []) grouped.set(r.emoji, (grouped.get(r.emoji) ?? 0) + 1);
  return (
    <div class={`msg-row ${props.mine ? 'out' : 'in'} ${props.first ? 'first' : ''} ${grouped.size ? 'reacted' : ''}`}>
      <div
        class={`bubble ${props.onInfo && !props.onMenu ? 'clickable' : ''} ${props.focused ? 'focused' : ''} ${media ? 'has-media' : ''} ${mediaOnly ? 'media-only' : ''} ${audioOnly ? 'audio-only' : ''}`}
        style={media ? { width: `${mediaWidth(media) + 6}px` } : undefined}
        data-focused={props.focused ? 'true' : undefined}
        data-testid={props.mine ? 'msg-out' : 'msg-in'}
        data-seq={props.seq}
        data-deleted={deleted ? 'true' : undefined}
        role={props.seq !== undefined ? 'article' : undefined}
        tabIndex={props.seq !== undefined ? (props.tabbable ? 0 : -1) : undefined}
        onFocus={props.seq !== undefined ? (e) => e.target === e.currentTarget && props.onFocused?.() : undefined}
        onKeyDown={
          props.onMenu
            ? (e) => {
                if (e.target !== e.currentTarget) return;
                if (e.key === 'Enter' || e.key === 'ContextMenu' || (e.key === 'F10' && e.shiftKey)) {
                  e.preventDefault();
                  props.onMenu!(true);
                }
              }
            : undefined
        }
        onClick={props.onMenu ? undefined : props.onInfo}
        onContextMenu={props.onMenu ? (e) => { e.preventDefault(); props.onMenu!(true); } : undefined}
        {...(props.onMenu ? longPress(() => props.onMenu!(true)) : {})}
      >
        {props.onMenu && (
          <button class="bubble-menu-btn" tabIndex={-1} aria-label="Message options" aria-haspopup="menu" data-testid="msg-menu" onClick={(e) => { e.stopPropagation(); props.onMenu!(); }}>
            <svg viewBox="0 0 18 18" width="18" height="18" aria-hidden="true">
              <path fill="currentColor" d="M3.3 4.6 9 10.3l5.7-5.7 1.6 1.6L9 13.4 1.7 6.2l1.6-1.6z" />
            </svg>
          </button>
        )}
        {props.menu}
        {props.sender && (
          <div class="sender" dir="auto" style={{ color: props.senderColor }} data-testid="msg-sender">
            {props.sender}
            {props.senderBot && <BotBadge user={{ bot: true }} />}
          </div>
        )}
        {(m?.forwarded || props.forwarded) && !deleted && (
          <div class="forwarded" data-testid="msg-forwarded">
            <ForwardIcon size={14} /> Forwarded
          </div>
        )}
        {m?.reply_to && !deleted && (
          <button class="quote" tabIndex={props.tabbable ? 0 : -1} data-testid="msg-quote" onClick={() => props.onQuote?.(m.reply_to!.seq)}>
            <span class="quote-name" dir="auto">{props.quoteName}</span>
            <span class="quote-text" dir="auto">{props.quoteText ?? m.reply_to.snippet ?? 'This message was deleted'}</span>
          </button>
        )}
        {media && <MessageMedia store={props.store} media={media} tabbable={!!props.tabbable || props.seq === undefined} />}
        {mediaOnly || audioOnly ? null : media ? <div class="media-caption">{body}</div> : body}
        <span class="meta">
          {m?.edited_at && !deleted && <span data-testid="msg-edited">Edited</span>}
          {expiresAt && (
            <span class="msg-timer" data-testid="msg-expiring" data-expires-at={expiresAt} title={`Disappears ${dayLabel(expiresAt) === 'Today' ? 'today' : `on ${dayLabel(expiresAt)}`} at ${clock(expiresAt)}`}>
              <TimerIcon size={12} title="Disappearing message" />
            </span>
          )}
          {clock(props.time)}
          {props.tick && <Ticks tick={props.tick} />}
        </span>
        {props.note && <div class="note" data-testid="msg-note">{props.note} — click to dismiss</div>}
        {grouped.size > 0 && (
          <div class="reactions" data-testid="msg-reactions">
            {[...grouped].map(([emoji, n]) => (
              <span key={emoji}>
                {emoji}
                {n > 1 ? ` ${n}` : ''}
              </span>
            ))}
          </div>
        )}
      </div>
    </div>
  );
}

/**
 * An encrypted message this device cannot show yet: "Waiting for this
 * message" (its key has not arrived; it heals by itself when it does), or
 * that it cannot be decrypted; the library's reason in the tooltip and for
 * screen readers.
 */
function SealedText(props: { sealed: NonNullable<ChatMessage['sealed']> }) {
  const { sealed } = props;
  const reason = sealed.state === 'opening' ? undefined : sealed.reason;
  return (
    <span class={`text sealed ${sealed.state}`} data-testid="msg-sealed" data-state={sealed.state} data-reason={reason} title={reason}>
      <LockIcon size={13} />
      <span>
        {sealedLabel(sealed)}
        {sealed.state === 'waiting' ? '. This may take a while.' : ''}
      </span>
      {reason && <span class="sr-only"> ({reason})</span>}
    </span>
  );
}

/** A message's text: formatted, links clickable, emoji-only enlarged, long ones cut with "Read more". */
function BubbleText(props: { text: string; tabbable: boolean }) {
  const [expanded, setExpanded] = useState(false);
  const long = isLong(props.text);
  const shown = long && !expanded ? `${textStart(props.text)}…` : props.text;
  return (
    <>
      <span class={`text ${isEmojiOnly(props.text) ? 'jumbo' : ''}`} dir="auto" data-testid="msg-text">
        <RichText text={shown} tabIndex={props.tabbable ? 0 : -1} />
      </span>
      {long && !expanded && (
        <button class="read-more" tabIndex={props.tabbable ? 0 : -1} data-testid="read-more" onClick={(e) => { e.stopPropagation(); setExpanded(true); }}>
          Read more
        </button>
      )}
    </>
  );
}

function MessageMenu(props: {
  mine: boolean;
  canEdit: boolean;
  /** In an encrypted chat: no forward yet (the server refuses it), said as such. */
  encrypted: boolean;
  canDeleteForEveryone: boolean;
  myReaction: string | null;
  onClose: () => void;
  onReply: () => void;
  onForward: () => void;
  onReact: (emoji: string | null) => void;
  onInfo: () => void;
  onEdit: () => void;
  onDelete: (forEveryone: boolean) => void;
}) {
  const item = (label: string, testid: string, f: () => void) => (
    <button role="menuitem" data-testid={testid} onClick={(e) => { e.stopPropagation(); props.onClose(); f(); }}>
      {label}
    </button>
  );
  const disabled = (label: string, testid: string) => (
    <button role="menuitem" aria-disabled="true" aria-describedby="e2e-menu-note" class="disabled" data-testid={testid} data-disabled="true" onClick={(e) => e.stopPropagation()}>
      {label}
    </button>
  );
  const ref = useRef<HTMLDivElement>(null);
  useMenuKeys(ref, true, props.onClose);
  return (
    <div class="menu msg-menu" role="menu" aria-label="Message options" data-testid="msg-menu-list" ref={ref} onClick={(e) => e.stopPropagation()}>
      <div class="react-row" role="group" aria-label="React">
        {QUICK_REACTIONS.map((emoji) => (
          <button
            key={emoji}
            class={props.myReaction === emoji ? 'mine' : ''}
            role="menuitem"
            aria-label={`React ${emoji}`}
            data-testid="react"
            data-emoji={emoji}
            onClick={() => {
              props.onClose();
              props.onReact(props.myReaction === emoji ? null : emoji);
            }}
          >
            {emoji}
          </button>
        ))}
      </div>
      {item('Reply', 'reply', props.onReply)}
      {props.encrypted ? disabled('Forward', 'forward') : item('Forward', 'forward', props.onForward)}
      {props.mine && item('Message info', 'info', props.onInfo)}
      {props.canEdit && item('Edit', 'edit', props.onEdit)}
      {props.canDeleteForEveryone && item('Delete for everyone', 'delete-everyone', () => props.onDelete(true))}
      {item('Delete for me', 'delete-me', () => props.onDelete(false))}
      {props.encrypted && (
        <div class="menu-note" id="e2e-menu-note" data-testid="e2e-menu-note">
          Forwarding is not available in encrypted chats yet.
        </div>
      )}
    </div>
  );
}

function Composer(props: { store: AppStore; model: ChatModel; replyTo: ChatMessage | null; editing: ChatMessage | null; onCancel: () => void }) {
  const { store, model, replyTo, editing } = props;
  // An encrypted chat's draft stays in memory only.
  const encrypted = store.isEncrypted(model);
  // The draft of this chat, kept across chat switches and reloads.
  const [text, setText] = useState(() => store.local.draft(model.chat.id));
  // A layout effect: the message's text is in the box in the same frame
  // the edit bar appears, so nothing typed right away is overwritten by it.
  useLayoutEffect(() => {
    if (editing) setText(editing.text);
    else setText(store.local.draft(model.chat.id));
    if (editing || replyTo) input.current?.focus();
  }, [editing, replyTo]);
  const input = useRef<HTMLTextAreaElement>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const typingSentAt = useRef(0);
  const mounted = useRef(true);
  useEffect(() => () => void (mounted.current = false), []);
  // A voice note: recorded here, then sent like a chosen file (upload with
  // progress, then the message through the outbox), without a caption.
  const recorder = useVoiceRecorder((file, seconds) => {
    const chatId = model.chat.id;
    store.attach(chatId, file, 'audio', seconds);
    void store.sendAttachment(chatId, '', replyTo?.seq).then((sent) => {
      if (!sent) return;
      if (model.hasMoreAfter) void store.showLatest(chatId);
      if (mounted.current) props.onCancel();
    });
  });
  const recording = recorder.phase !== 'idle';
  const voiceSend = useRef<HTMLButtonElement>(null);
  const wasRecording = useRef(false);
  useEffect(() => {
    if (recorder.phase === 'recording') voiceSend.current?.focus();
    else if (recorder.phase === 'idle' && wasRecording.current && matchMedia('(pointer: fine)').matches) input.current?.focus();
    wasRecording.current = recorder.phase !== 'idle';
    if (recorder.phase !== 'recording') return;
    // "recording audio…" for the others while it lasts.
    const chatId = model.chat.id;
    store.conn.typing(chatId, 'recording');
    const t = setInterval(() => store.conn.typing(chatId, 'recording'), TYPING_EVERY_MS);
    return () => {
      clearInterval(t);
      store.conn.typing(chatId, 'stopped');
    };
  }, [recorder.phase]);
  // You blocked the other person (the bar below stands in for the composer).
  const blocked = store.blockedPeer(model);
  const deleted = store.deletedPeer(model);
  // No longer a member, blocking them, their account deleted, or now editing: nothing is recorded on.
  useEffect(() => {
    if (model.left || blocked || deleted || editing) recorder.cancel();
  }, [model.left, !!blocked, !!deleted, !!editing]);
  // The file chosen to send (not while editing: an edit changes only the text).
  const attachment = editing ? undefined : store.attachments.get(model.chat.id);
  const uploading = !!attachment?.abort;
  const max = store.connState.hello?.limits.max_text_bytes ?? 16384;
  const bytes = new TextEncoder().encode(text).length;
  const tooLong = bytes > max;
  // Near the limit a counter; past it, how much to remove.
  const near = bytes > max * 0.9;
  const over = tooLong ? charsOver(text, max) : 0;

  useEffect(() => input.current?.focus(), [model.chat.id]);

  useLayoutEffect(() => {
    const el = input.current;
    if (!el) return;
    el.style.height = 'auto';
    el.style.height = `${Math.min(el.scrollHeight, 140)}px`;
  }, [text]);

  if (model.left) {
    return (
      <footer class="composer left-note" data-testid="left-note">
        You can't send messages to this group because you're no longer a member.
      </footer>
    );
  }
  if (deleted) return <DeletedBar />;
  if (blocked) return <BlockedBar store={store} user={blocked} />;

  function submit() {
    if (tooLong || uploading) return;
    if (attachment) {
      // Upload, then send with the text as the caption; on failure both stay.
      const chatId = model.chat.id;
      void store.sendAttachment(chatId, text.trim() ? text : '', replyTo?.seq).then((sent) => {
        if (!sent) return;
        if (model.hasMoreAfter) void store.showLatest(chatId);
        if (!mounted.current) return;
        setText('');
        props.onCancel();
      });
      typingSentAt.current = 0;
      return;
    }
    if (!text.trim()) return;
    if (editing) {
      if (text !== editing.text) store.edit(model.chat.id, editing, text);
      setText('');
      props.onCancel();
      return;
    }
    store.send(model.chat.id, text, replyTo?.seq);
    store.local.setDraft(model.chat.id, '');
    // Sent while looking at older messages (a search jump): back to the newest.
    if (model.hasMoreAfter) void store.showLatest(model.chat.id);
    setText('');
    props.onCancel();
    // Sending ends the indicator on the server's side.
    typingSentAt.current = 0;
  }

  function onInput(value: string) {
    setText(value);
    if (!editing) store.local.setDraft(model.chat.id, value, !encrypted);
    const now = Date.now();
    if (value.trim() && now - typingSentAt.current > TYPING_EVERY_MS) {
      typingSentAt.current = now;
      store.conn.typing(model.chat.id, 'typing');
    } else if (!value.trim() && typingSentAt.current) {
      typingSentAt.current = 0;
      store.conn.typing(model.chat.id, 'stopped');
    }
  }

  function attach(file: File | undefined) {
    if (!file || editing) return;
    store.attach(model.chat.id, file);
    input.current?.focus();
  }

  const context = editing ?? replyTo;
  // WhatsApp's way: with nothing to send, the Send button's place is the microphone's.
  const showMic = !editing && !attachment && !text.trim();
  return (
    <footer class="composer-wrap">
      {attachment && <AttachmentPreview attachment={attachment} onRemove={() => store.detach(model.chat.id)} />}
      {context && (
        <div class="composer-context" data-testid={editing ? 'editing' : 'replying'}>
          <div class="quote">
            <span class="quote-name">{editing ? 'Edit message' : store.userName(model, context.sender_id)}</span>
            <span class="quote-text" dir="auto">{editing ? context.text : summaryOf(context)}</span>
          </div>
          <button class="icon-btn small" aria-label="Cancel" data-testid="cancel-context" onClick={() => { if (editing) setText(''); props.onCancel(); }}>
            ×
          </button>
        </div>
      )}
      {near && (
        <div id="composer-limit" class={`composer-limit ${tooLong ? 'over' : ''}`} role="status" data-testid="composer-limit">
          {tooLong
            ? `Too long to send: remove ${over.toLocaleString()} character${over === 1 ? '' : 's'} (the limit is ${max.toLocaleString()} bytes).`
            : `${(max - bytes).toLocaleString()} left`}
        </div>
      )}
      {recorder.error && !recording && (
        <div class="composer-notice" role="alert" data-testid="voice-error">
          <span>{recorder.error}</span>
          <button class="icon-btn small" aria-label="Dismiss" title="Dismiss" data-testid="voice-error-close" onClick={recorder.clearError}>
            <CloseIcon />
          </button>
        </div>
      )}
      <div class="composer">
      {recording ? (
        <div
          class="recording"
          data-testid="recording"
          onKeyDown={(e) => {
            if (e.key === 'Escape') {
              e.preventDefault();
              recorder.cancel();
            }
          }}
        >
          <button class="icon-btn rec-cancel" aria-label="Cancel recording" title="Cancel" data-testid="voice-cancel" onClick={recorder.cancel}>
            <TrashIcon />
          </button>
          {recorder.phase === 'asking' ? (
            <span class="rec-waiting" role="status" data-testid="voice-asking">Waiting for the microphone…</span>
          ) : (
            <>
              <span class="rec-dot" aria-hidden="true" />
              <span class="rec-time" role="timer" aria-label={`Recording, ${formatDuration(recorder.elapsed / 1000)}`} data-testid="voice-elapsed">
                {formatDuration(recorder.elapsed / 1000)}
              </span>
              <span class="rec-hint" aria-hidden="true">Recording…</span>
            </>
          )}
          <button
            ref={voiceSend}
            class="send-btn"
            aria-label="Send voice note"
            title="Send voice note"
            data-testid="voice-send"
            disabled={recorder.phase !== 'recording'}
            onClick={recorder.finish}
          >
            <SendIcon />
          </button>
        </div>
      ) : (
      <>
      <textarea
        ref={input}
        rows={1}
        dir="auto"
        aria-label={editing ? 'Edit the message' : 'Type a message'}
        aria-describedby={near ? 'composer-limit' : undefined}
        aria-invalid={tooLong ? 'true' : undefined}
        placeholder={attachment ? 'Add a caption' : 'Type a message'}
        value={text}
        readOnly={uploading}
        data-testid="composer"
        onInput={(e) => onInput(e.currentTarget.value)}
        onPaste={(e) => {
          // A pasted image (a screenshot) or file becomes the attachment; text pastes as usual.
          const file = e.clipboardData?.files[0];
          if (!file || editing) return;
          e.preventDefault();
          attach(file);
        }}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            submit();
          } else if (e.key === 'Escape' && (editing || replyTo)) {
            if (editing) setText('');
            props.onCancel();
          } else if (e.key === 'Escape' && attachment && !uploading) {
            store.detach(model.chat.id);
          }
        }}
      />
      {!editing && (
        <>
          <button class="icon-btn attach-btn" aria-label="Attach a file" title="Attach a file" data-testid="attach" disabled={uploading} onClick={() => fileInput.current?.click()}>
            <PaperclipIcon />
          </button>
          <input
            ref={fileInput}
            type="file"
            hidden
            tabIndex={-1}
            aria-hidden="true"
            data-testid="file-input"
            onChange={(e) => {
              attach(e.currentTarget.files?.[0]);
              // The same file can be chosen again after removing it.
              e.currentTarget.value = '';
            }}
          />
        </>
      )}
      {showMic ? (
        <button
          class="send-btn mic-btn"
          aria-label="Record a voice note"
          title="Record a voice note"
          data-testid="voice-record"
          onClick={() => {
            typingSentAt.current = 0;
            recorder.start();
          }}
        >
          <MicIcon />
        </button>
      ) : (
        <button class="send-btn" aria-label="Send" data-testid="send" disabled={(!text.trim() && !attachment) || tooLong || uploading} onClick={submit}>
          <SendIcon />
        </button>
      )}
      </>
      )}
      </div>
    </footer>
  );
}

/** How many characters to remove from the end of `text` to fit in `max` UTF-8 bytes. */
function charsOver(text: string, max: number): number {
  const enc = new TextEncoder();
  let bytes = enc.encode(text).length;
  const chars = Array.from(text);
  let n = 0;
  while (bytes > max && n < chars.length) {
    bytes -= enc.encode(chars[chars.length - 1 - n]).length;
    n++;
  }
  return n;
}
