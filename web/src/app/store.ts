// The app's model: chats, their members' watermarks and loaded messages,
// folded from an HTTP snapshot plus the event stream. Every fold is
// idempotent (watermarks and seqs only rise, messages are keyed by seq), so an
// event already reflected in a snapshot changes nothing when it is replayed.

import {
  Connection,
  deviceStore,
  HarkApi,
  HarkError,
  hasDisappeared,
  mediaKindOf,
  newClientId,
  isFinal,
  isRestriction,
  saveSession,
  websocketUrl,
  type Chat,
  type ChatId,
  type ChatSettings,
  type ChatSummary,
  type ConnectionState,
  type Device,
  type DeviceId,
  type ErrorCode,
  type Event,
  type EventFrame,
  type History,
  type MediaKind,
  type MediaRef,
  type Message,
  type PendingSend,
  type Pos,
  type PresenceState,
  type Role,
  type Seq,
  type Session,
  type User,
  type UserId,
} from '../hark-client';
import { Encryption, NotReadable, type ContactDevice } from '../crypto';
import { BlobCache } from './blobs';
import { Plaintexts, readContent, replacement, type ChatMessage, type SealedMedia } from './encrypted';
import { DeviceLocal, sameNote, type Note } from './local';
import { mediaLabel } from './media';
import { People } from './people';
import { Profiles } from './profiles';
import { PushNotifications } from './push';
import { closeChatNotifications } from './serviceWorker';
import { photoInfo, videoInfo } from './thumbnail';
import { Durations, probeDuration } from './voice';

export interface ChatModel {
  chat: Chat;
  lastMessage: ChatMessage | null;
  /** Loaded messages by seq: a contiguous range once history was loaded (encrypted ones as decrypted here). */
  messages: Map<Seq, ChatMessage>;
  historyLoaded: boolean;
  hasMoreBefore: boolean;
  loadingOlder: boolean;
  /**
   * The loaded range ends below the newest message (after jumping to an old
   * search result): newer pages load on scrolling down, and live messages
   * wait on the server until the range reaches them.
   */
  hasMoreAfter: boolean;
  loadingNewer: boolean;
  /** The message to scroll to and highlight (a search result); `at` tells repeated jumps apart. */
  focus: { seq: Seq; at: number } | null;
  /** The user left or was removed: read-only. */
  left: boolean;
  /** The caller's own settings (mute, archive, pin), when the server sends them. */
  settings: ChatSettings | null;
  /**
   * The seq below which nothing counts as unread, learnt from the server's
   * unread count (`last_seq - unread`): it covers the member's join point,
   * which `Member` does not carry (messages before joining are not shown).
   */
  unreadFloor: Seq;
  /** Event lines that came with history pages, by stream position (what a fresh browser knows). */
  historyNotes: Map<Pos, Note>;
  /**
   * When the newest message that disappeared was sent: the chat keeps its
   * place in the list after its last message is gone (0: none).
   */
  activityAt: number;
}

/**
 * A message of an encrypted chat written here and not yet encrypted (its
 * text only in memory), or (`edit`) a new content for my message `edit`.
 */
interface Encrypting {
  chat_id: ChatId;
  client_id: string;
  text: string;
  queued_at: number;
  reply_to?: Seq;
  /** What is encrypted: an `m.text` of `text`, or a file's content, or an edit's. */
  content: Record<string, unknown>;
  /** The uploaded ciphertext of a file (the server's ref: an opaque file) and how it is shown. */
  media?: MediaRef;
  shown?: SealedMedia;
  /** An edit of my message with this seq. */
  edit?: Seq;
}

export interface FailedSend {
  chat_id: ChatId;
  client_id: string;
  text: string;
  code: ErrorCode;
  message: string;
}

export interface Confirmation {
  title: string;
  body?: string;
  confirm: string;
  danger?: boolean;
  resolve: (ok: boolean) => void;
}

export type Tick = 'pending' | 'sent' | 'delivered' | 'read' | 'failed';

/** A file chosen in a chat's composer, not yet sent. */
export interface Attachment {
  file: File;
  kind: MediaKind;
  /** A local blob: URL of an image, for its thumbnail (revoked when the attachment goes). */
  previewUrl: string | null;
  /** Bytes uploaded so far while sending; null before. */
  sent: number | null;
  /** Why the last try failed (the server's message). */
  error: string | null;
  /** Cancels the upload in flight. */
  abort: AbortController | null;
  /** A recorded voice note's length (seconds), as the recorder measured it. */
  seconds?: number;
}

const PAGE = 50;
/** Messages shown above the first unread one when a chat opens there. */
const BEFORE_UNREAD = 10;
/** A search result at most this far above the loaded range is reached by loading older pages; further back, it gets a window of its own. */
const REACH = 100;
/** Messages loaded on each side of a search result reached by a jump. */
const AROUND = 25;

/** A message this device cannot show the text of, in one line. */
export function sealedLabel(sealed: NonNullable<ChatMessage['sealed']>): string {
  if (sealed.state === 'opening') return 'Decrypting…';
  if (sealed.state === 'waiting') return 'Waiting for this message';
  return "This message can't be decrypted";
}

/**
 * Why a session ended: the server's refusal, this account deleted from this
 * browser, or this login (waiting for approval) logged out from another
 * device of the account.
 */
export type LogoutReason = ErrorCode | 'account_deleted' | 'login_refused';

/** What holds a device back from the app until it is dealt with (see `isRestriction`). */
export type Restriction = 'device_not_approved' | 'two_factor_setup_required';

/**
 * What is left of an account its owner deleted: the server names it
 * `deleted-<id>` (shown as "Deleted account"); no one can register a
 * username starting with `deleted-`.
 */
export function isDeletedAccount(user: User): boolean {
  return user.username === `deleted-${user.id}`;
}

/** "Mute always": the end of year 9999. */
export const MUTED_FOREVER = 253402300799000;
/** WhatsApp lets a message go to at most five chats at once. */
export const MAX_FORWARD = 5;

export type SettingsPatch = { muted_until?: number | null; archived?: boolean; pinned?: boolean };

export class AppStore {
  readonly api: HarkApi;
  readonly conn: Connection;
  me: User;
  chats = new Map<ChatId, ChatModel>();
  /** The chat list snapshot is loaded; events are folded directly. */
  ready = false;
  openChatId: ChatId | null = null;
  failed: FailedSend[] = [];
  connState: ConnectionState;
  /** Set when the server refused this device (revoked): the app goes back to login. */
  loggedOut = false;
  /**
   * Set while this account is being deleted (`deleteAccount`): the server
   * logs every device out before it answers, so the end of the session it
   * causes (the socket's `revoked`) waits for the answer, kept here.
   */
  private deleting: { ended: LogoutReason | null | undefined } | null = null;
  /** One-to-one chats to fetch again shortly, to see whether their person deleted their account. */
  private rechecks = new Map<ChatId, ReturnType<typeof setTimeout>>();
  /**
   * What the server lets this user do (`GET /v1/me`): an `admin` sees
   * Administration. Null until the server answered; asked again on every
   * connection and whenever the menu opens, as another admin may change it.
   */
  role: Role | null = null;
  /** A short-lived message for the person (e.g. an edit the server refused). */
  notice: string | null = null;
  /**
   * New logins of this account waiting for approval, by device id, oldest
   * first: told by the event stream (`device_approval_requested`), gone once
   * one of the account's devices approved (`device_approved`) or logged
   * them out (no longer listed by `GET /v1/devices`).
   */
  approvals = new Map<DeviceId, Device>();
  /** Rises whenever this account's devices may have changed (for the devices list to load again). */
  devicesSeen = 0;
  /** Set when the server held this device back (`Restriction`): the app gives way to what deals with it. */
  restricted = false;
  /** Group event lines, drafts: kept in this browser. */
  readonly local: DeviceLocal;
  /** Files' bytes for blob: URLs (media needs the token). */
  readonly blobs: BlobCache;
  /** Voice notes' lengths (seconds) by media id, for their labels. */
  readonly durations: Durations;
  /** Push notifications on this device (turned on and off in the app). */
  readonly push: PushNotifications;
  /** This device's end-to-end encryption (its keys, its inbox, its machine). */
  readonly e2e: Encryption;
  /** Encrypted messages as this device read them (memory only). */
  readonly plaintexts: Plaintexts;
  /** My contacts and the people I blocked. */
  readonly people: People;
  /** People's about lines and photos (and my own, with who sees them). */
  readonly profiles: Profiles;
  /** Messages written in encrypted chats, oldest first, waiting to be encrypted into the outbox. */
  private encrypting: Encrypting[] = [];
  /** The encrypting queue is being worked through. */
  private draining = false;
  /** The newest incoming encrypted message, announced once decrypted. */
  private toAnnounce: string | null = null;
  /** Per chat, the file chosen in its composer (kept across chat switches). */
  attachments = new Map<ChatId, Attachment>();
  /** Everyone seen in any chat, so event lines can name people who have left. */
  private knownUsers = new Map<UserId, User>();
  /** An in-app confirmation waiting for an answer (instead of the browser's confirm()). */
  confirmation: Confirmation | null = null;
  /** The newest incoming message, for the screen reader's polite live region. */
  announcement = '';
  /** Presence of watched users (ephemeral; hidden fields are null). */
  presence = new Map<UserId, PresenceState>();
  /** Who is typing (or recording a voice note) where, until when (ms since the epoch). */
  private typingIn = new Map<ChatId, Map<UserId, { until: number; recording: boolean }>>();
  private lastWatch = '';
  /** A chat to open once the chat list is loaded (a clicked notification's). */
  private openOnReady: ChatId | null = null;
  /** The message each of my unacked replies answers, to quote it as soon as it is acked. */
  private replyOf = new Map<string, Seq>();
  /** The next time a shown message disappears (its `expires_at`), and the timer set for it. */
  private expiryDue = Infinity;
  private expiryTimer: ReturnType<typeof setTimeout> | null = null;

  private listeners = new Set<() => void>();
  private queued: EventFrame[] = [];
  private fetching = new Map<ChatId, Promise<void>>();
  /** The one more fetch of a chat that follows the one under way (see `fetchChat`). */
  private fetchingAgain = new Map<ChatId, Promise<void>>();
  private notifyScheduled = false;
  private snapshotLoading = false;
  private readonly hasCursor: boolean;

  constructor(
    readonly server: string,
    readonly session: Session,
    /** Called once the session is gone: `code` says why when the server ended it (revoked, account_disabled…). */
    private readonly onLoggedOut: (code: LogoutReason | null) => void,
    /** Called once when the server holds this device back (waiting for approval, or two-factor to be set up). */
    private readonly onRestricted: (code: Restriction) => void = () => {},
  ) {
    this.me = session.user;
    this.knownUsers.set(this.me.id, this.me);
    this.local = new DeviceLocal(server || location.origin, session.device.id);
    this.api = new HarkApi(server, session.token);
    this.blobs = new BlobCache(this.api, (bytes, file) => this.e2e.openFile(bytes, file));
    this.durations = new Durations(this.blobs, () => this.notify());
    this.push = new PushNotifications(this.api, server || location.origin, session.device.id, () => this.notify());
    this.e2e = new Encryption(
      this.api,
      session.user.id,
      session.device.id,
      () => {
        // Encryption started in this tab (or another tab let go of it): read what waited, send what was written.
        if (this.e2e.status.state === 'ready') {
          this.plaintexts.retryWaiting();
          void this.drainEncrypting();
        }
        this.notify();
      },
      () => this.plaintexts.retryWaiting(),
      () => this.notify(),
    );
    this.plaintexts = new Plaintexts(this.e2e, (chat, seq) => this.opened(chat, seq));
    this.people = new People(this.api, () => this.notify());
    this.profiles = new Profiles(this.api, session.user.id, () => this.notify());
    this.conn = new Connection({
      url: websocketUrl(server || location.origin),
      token: session.token,
      store: deviceStore(server || location.origin, session.device.id),
    });
    this.connState = this.conn.state;
    this.hasCursor = deviceStore(server || location.origin, session.device.id).loadCursor() !== null;
    this.conn.subscribe((e) => {
      switch (e.type) {
        case 'state':
          this.connState = e.state;
          break;
        case 'hello':
          if (!this.ready && !this.snapshotLoading) void this.loadSnapshot();
          void this.refreshRole();
          // Another device of mine may have added contacts or blocked someone meanwhile.
          void this.people.load();
          // Photos and about lines may have changed while the connection was down: asked again as shown.
          this.profiles.stale();
          // Publish this device's keys and read its inbox (to-device nudges are never replayed).
          this.e2e.sync();
          void this.drainEncrypting();
          // A login waiting for approval may have been dealt with while this device was away.
          void this.checkApprovals();
          break;
        case 'to_device':
          this.e2e.sync();
          break;
        case 'event':
          if (this.ready) this.apply(e.event, e.pos);
          else this.queued.push({ pos: e.pos, event: e.event });
          if (this.connState.status === 'live' && e.event.kind === 'message' && e.event.sender_id !== this.me.id) {
            if (e.event.encrypted) this.toAnnounce = `${e.event.chat_id}:${e.event.seq}`;
            else this.announce(e.event);
          }
          break;
        case 'ack': {
          const { ack } = e;
          const replyTo = this.replyOf.get(ack.client_id);
          this.replyOf.delete(ack.client_id);
          const quoted = replyTo !== undefined ? this.chats.get(ack.chat_id)?.messages.get(replyTo) : undefined;
          // An encrypted chat's quotes carry no text on the server: shown from this device's copy.
          const snippet = quoted?.deleted ? null : e.encrypted ? '' : quoted?.text.slice(0, 200) ?? '';
          if (e.encrypted) this.plaintexts.sent(ack.chat_id, ack.seq, ack.client_id, e.encrypted);
          this.addMessage({
            reply_to: quoted ? { seq: quoted.seq, sender_id: quoted.sender_id, snippet } : null,
            chat_id: ack.chat_id,
            seq: ack.seq,
            sender_id: this.me.id,
            sender_device: this.session.device.id,
            client_id: ack.client_id,
            text: e.text,
            sent_at: ack.sent_at,
            forwarded: e.forwarded,
            media: e.media,
            ...(e.encrypted ? { encrypted: e.encrypted } : {}),
            ...(ack.expires_at != null ? { expires_at: ack.expires_at } : {}),
          });
          break;
        }
        case 'caught_up': {
          // History that failed to load while offline is fetched now.
          const open = this.openChatId !== null ? this.chats.get(this.openChatId) : undefined;
          if (open && !open.historyLoaded) void this.openChat(open.chat.id);
          break;
        }
        case 'presence':
          this.presence.set(e.presence.user_id, e.presence);
          break;
        case 'typing': {
          const { chat_id, user_id, activity, expires_in_ms } = e.typing;
          const inChat = this.typingIn.get(chat_id) ?? new Map<UserId, { until: number; recording: boolean }>();
          if (activity === 'stopped') inChat.delete(user_id);
          else {
            inChat.set(user_id, { until: Date.now() + expires_in_ms, recording: activity === 'recording' });
            setTimeout(() => this.notify(), expires_in_ms + 20);
          }
          this.typingIn.set(chat_id, inChat);
          break;
        }
        case 'send_failed':
          // An encrypted message went out without its text: the text is this page's.
          this.failed = [...this.failed, { ...e, text: e.text || this.plaintexts.writtenText(e.client_id) || '' }];
          // Refused in a one-to-one chat whose person I do not block: they
          // may have deleted their account (the chat then says so).
          if (e.code === 'blocked') this.recheckDirect(e.chat_id);
          break;
        case 'request_failed':
          this.notice =
            e.code === 'blocked'
              ? `Your ${e.request.kind === 'react' ? 'reaction' : 'change'} was not sent: you cannot message this user.`
              : `Could not ${e.request.kind} the message: ${e.message}`;
          setTimeout(() => {
            this.notice = null;
            this.notify();
          }, 5000);
          break;
        case 'closed':
          if (e.code && isRestriction(e.code)) this.restrict(e.code as Restriction);
          else if (e.code) this.forgetSession(e.code);
          break;
        default:
          break;
      }
      this.notify();
    });
  }

  start(): void {
    // A device that has a cursor can show its chats before the socket is up
    // (e.g. a reload while the WebSocket cannot connect). A brand-new device
    // waits for hello, whose head becomes its cursor, so the snapshot it loads
    // afterwards covers every event before that head.
    if (!this.conn.state.hello && this.hasCursor) void this.loadSnapshot();
    // Load the encryption library and open this device's store meanwhile (its keys go out on hello).
    this.e2e.start();
    this.conn.start();
    void this.push.start();
  }

  /** Open a chat as soon as the chat list is loaded (a notification was clicked). */
  openWhenReady(id: ChatId): void {
    if (!this.ready) {
      this.openOnReady = id;
      return;
    }
    const open = async () => {
      if (!this.chats.has(id)) await this.fetchChat(id);
      if (this.chats.has(id)) await this.openChat(id);
    };
    void open();
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Re-render at most once per task, however many events arrive. */
  notify(): void {
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    queueMicrotask(() => {
      this.notifyScheduled = false;
      this.updateWatch();
      for (const l of [...this.listeners]) l();
    });
  }

  /**
   * Watch the open one-to-one chat's peer (online / last seen in the header)
   * and every chat (typing in the list and the header), within the server's limits.
   */
  private updateWatch(): void {
    if (this.loggedOut) return;
    const open = this.openChatId !== null ? this.chats.get(this.openChatId) : undefined;
    const peer = open && this.peer(open);
    const users = peer ? [peer.id] : [];
    const chats = this.sortedChats()
      .filter((c) => !c.left)
      .slice(0, 256)
      .map((c) => c.chat.id)
      .sort((a, b) => a - b);
    const key = JSON.stringify([users, chats]);
    if (key === this.lastWatch) return;
    this.lastWatch = key;
    this.conn.watch(users, chats);
  }

  /** Who is typing in a chat now (not me; expired indicators dropped). */
  typers(chatId: ChatId): UserId[] {
    const inChat = this.typingIn.get(chatId);
    if (!inChat) return [];
    const now = Date.now();
    const out: UserId[] = [];
    for (const [user, { until }] of inChat) {
      if (until > now && user !== this.me.id) out.push(user);
      else if (until <= now) inChat.delete(user);
    }
    return out;
  }

  /**
   * "Bob is typing…" for groups, "typing…" for one-to-one chats ("recording
   * audio…" when all of them are recording a voice note); null when nobody is.
   */
  typingLabel(c: ChatModel): string | null {
    const who = this.typers(c.chat.id);
    if (who.length === 0) return null;
    const inChat = this.typingIn.get(c.chat.id);
    const recording = who.every((id) => inChat?.get(id)?.recording);
    const doing = recording ? 'recording audio…' : 'typing…';
    if (c.chat.kind === 'direct') return doing;
    const names = who.map((id) => this.member(c, id)?.user.display_name ?? 'Someone');
    if (names.length === 1) return `${names[0]} is ${doing}`;
    if (names.length === 2) return `${names[0]} and ${names[1]} are ${doing}`;
    return `${names.length} people are ${doing}`;
  }

  /**
   * A message in one line (the chat list, quotes): its text, or its file's
   * label (a voice note's with its length: the server's `duration_ms`, else
   * read from the file, which this starts).
   */
  summary(m: { text: string; media?: MediaRef | null; sealed?: ChatMessage['sealed'] }): string {
    if (m.sealed) return sealedLabel(m.sealed);
    return m.media ? mediaLabel(m.media, m.text, this.durations.want(m.media)) : m.text;
  }

  /** Whether a chat is end-to-end encrypted. */
  isEncrypted(c: ChatModel): boolean {
    return !!c.chat.encrypted;
  }

  /** The people of a chat whose devices this device keeps an eye on (the first 50 others: a big group's would cost too much). */
  watchedPeople(c: ChatModel): UserId[] {
    return c.chat.members.filter((m) => m.user.id !== this.me.id).slice(0, 50).map((m) => m.user.id);
  }

  /** `user`'s devices as this device knows them (null until read: see `Encryption.loadDevices`). */
  devicesOf(user: UserId): ContactDevice[] | null {
    return this.e2e.devices.get(user) ?? null;
  }

  /** Every device of `user` is verified here (and there is one). */
  isVerifiedContact(user: UserId): boolean {
    const list = this.devicesOf(user);
    return !!list && list.length > 0 && list.every((d) => d.verified);
  }

  /**
   * The people of an encrypted chat of whom this device verified at least
   * one device and who now have a device it has not verified (a new login,
   * new keys): the chat warns about them until those devices are verified.
   */
  unverifiedDevicesIn(c: ChatModel): { user: UserId; devices: ContactDevice[] }[] {
    if (!this.isEncrypted(c)) return [];
    return this.watchedPeople(c).flatMap((user) => {
      const list = this.devicesOf(user) ?? [];
      const unverified = list.filter((d) => !d.verified);
      return list.some((d) => d.verified) && unverified.length > 0 ? [{ user, devices: unverified }] : [];
    });
  }

  /**
   * What a reply in an encrypted chat shows of the message it answers: this
   * device's decrypted copy (the server's quote carries no text). A quoted
   * message not loaded here is fetched and decrypted.
   */
  quoteText(c: ChatModel, seq: Seq): string | null {
    const loaded = c.messages.get(seq);
    if (loaded) return loaded.sealed ? sealedLabel(loaded.sealed) : this.summary(loaded);
    const read = this.plaintexts.readableOf(c.chat.id, seq);
    if (read !== null) return this.summary(read);
    if (!this.plaintexts.known(c.chat.id, seq)) void this.fetchQuoted(c.chat.id, seq);
    return null;
  }

  /** Fetch one message (a quoted one, outside the loaded pages) so it can be decrypted. */
  private async fetchQuoted(chatId: ChatId, seq: Seq): Promise<void> {
    try {
      const page = await this.api.history(chatId, { before: seq + 1, limit: 1 });
      for (const m of page.messages) if (m.seq === seq) this.plaintexts.show(m);
    } catch {
      // Shown without its text; opening the chat again retries.
    }
  }

  /** A message was decrypted (or found unreadable): show it wherever it is. */
  private opened(chatId: ChatId, seq: Seq): void {
    const c = this.chats.get(chatId);
    if (c) {
      const m = c.messages.get(seq);
      if (m) c.messages.set(seq, this.plaintexts.show(m));
      if (c.lastMessage?.seq === seq) c.lastMessage = this.plaintexts.show(c.lastMessage);
    }
    if (this.toAnnounce === `${chatId}:${seq}`) {
      this.toAnnounce = null;
      const m = c?.messages.get(seq) ?? (c?.lastMessage?.seq === seq ? c.lastMessage : undefined);
      if (m && !m.sealed) this.announce(m);
    }
    this.notify();
  }

  // ---- reading the model ----

  /**
   * Chats in list order: pinned first (most recently pinned first), then by
   * latest activity (newest message, pending send or creation).
   */
  sortedChats(): ChatModel[] {
    const pendingAt = new Map<ChatId, number>();
    for (const p of this.connState.pending) pendingAt.set(p.chat_id, Math.max(pendingAt.get(p.chat_id) ?? 0, p.queued_at));
    const key = (c: ChatModel) =>
      Math.max(c.lastMessage?.sent_at ?? c.chat.created_at, c.activityAt, pendingAt.get(c.chat.id) ?? 0);
    const pin = (c: ChatModel) => c.settings?.pinned_at ?? 0;
    return [...this.chats.values()].sort((a, b) => pin(b) - pin(a) || key(b) - key(a) || b.chat.id - a.chat.id);
  }

  /** The main list (`archived` false) or the archived one, in list order. */
  listChats(archived: boolean): ChatModel[] {
    return this.sortedChats().filter((c) => this.isArchived(c) === archived);
  }

  isArchived(c: ChatModel): boolean {
    return !!c.settings?.archived;
  }

  isPinned(c: ChatModel): boolean {
    return !!c.settings?.pinned_at;
  }

  /** Muted until a time still to come. */
  isMuted(c: ChatModel): boolean {
    const until = c.settings?.muted_until;
    return until != null && until > Date.now();
  }

  member(c: ChatModel, userId: UserId) {
    return c.chat.members.find((m) => m.user.id === userId);
  }

  /** Messages from others above my read watermark (own messages imply reading). */
  unread(c: ChatModel): number {
    const mine = this.member(c, this.me.id);
    return Math.max(0, c.chat.last_seq - Math.max(mine?.read_up_to ?? 0, c.unreadFloor));
  }

  /** The name a chat goes by: the group's title or the other person's name. */
  title(c: ChatModel): string {
    if (c.chat.kind === 'group') return c.chat.title ?? 'Group';
    const other = c.chat.members.find((m) => m.user.id !== this.me.id);
    return other?.user.display_name ?? c.chat.title ?? 'Chat';
  }

  peer(c: ChatModel): User | null {
    if (c.chat.kind !== 'direct') return null;
    return c.chat.members.find((m) => m.user.id !== this.me.id)?.user ?? null;
  }

  /**
   * My messages not yet acked, oldest first: those in the outbox (an
   * encrypted one with the text I wrote, while this page remembers it),
   * then those still being encrypted.
   */
  pending(chatId: ChatId): PendingSend[] {
    const queued = this.connState.pending
      .filter((p) => p.chat_id === chatId)
      .map((p) => {
        if (!p.encrypted) return p;
        const read = this.plaintexts.queuedMessage(p, this.me.id);
        // A file shows once its content is known (its kind, name and key).
        const { media: _m, ...rest } = p;
        return read ? { ...rest, text: read.text, ...(read.media ? { media: read.media } : {}) } : { ...rest, text: 'Decrypting…' };
      });
    const encrypting = this.encrypting
      .filter((p) => p.chat_id === chatId && p.edit === undefined)
      .map(({ content: _c, media: _m, shown, edit: _e, ...p }) => (shown ? { ...p, media: shown } : p));
    return encrypting.length ? [...queued, ...encrypting] : queued;
  }

  failedIn(chatId: ChatId): FailedSend[] {
    return this.failed.filter((f) => f.chat_id === chatId);
  }

  /**
   * What a send the server refused says under it. `blocked` is final (the
   * outbox does not try it again): one of the chat's two people blocked
   * the other, and only the one who did may undo it.
   */
  failedNote(f: FailedSend): string {
    if (f.code === 'blocked') {
      const c = this.chats.get(f.chat_id);
      if (c && this.deletedPeer(c)) return 'Not sent: this account was deleted';
      const blocked = c ? this.blockedPeer(c) : null;
      return blocked ? `Not sent: you blocked ${blocked.display_name}` : 'This message was not sent: you cannot message this user';
    }
    return `Not sent: ${f.message}`;
  }

  /** The other person of a one-to-one chat, when they deleted their account (the chat then takes no new messages). */
  deletedPeer(c: ChatModel): User | null {
    const peer = this.peer(c);
    return peer && isDeletedAccount(peer) ? peer : null;
  }

  /**
   * Fetch a one-to-one chat again in a moment, when its other person may
   * have just deleted their account: no event says so, but their messages
   * are erased (`message_deleted` by them) and their devices logged out
   * (`devices_changed`) first, and a send to them is refused `blocked`.
   * Each new sign waits a little more, so a burst makes one fetch after
   * the account is emptied; one more follows a while later in case that
   * fetch still came too soon.
   */
  private recheckDirect(chatId: ChatId, delayMs = 1200, again = true): void {
    const c = this.chats.get(chatId);
    if (!c || c.chat.kind !== 'direct' || this.deletedPeer(c)) return;
    clearTimeout(this.rechecks.get(chatId));
    this.rechecks.set(
      chatId,
      setTimeout(() => {
        this.rechecks.delete(chatId);
        if (this.loggedOut) return;
        void this.fetchChat(chatId).then(() => {
          if (again && !this.rechecks.has(chatId)) this.recheckDirect(chatId, 5000, false);
        });
      }, delayMs),
    );
  }

  /** The other person of a one-to-one chat, when I blocked them (the chat then offers to unblock instead of a composer). */
  blockedPeer(c: ChatModel): User | null {
    const peer = this.peer(c);
    return peer && this.people.isBlocked(peer.id) ? peer : null;
  }

  /** The ticks of my message `seq`: read / delivered once every other member got there. */
  tick(c: ChatModel, seq: Seq): Tick {
    const others = c.chat.members.filter((m) => m.user.id !== this.me.id);
    if (others.length === 0) return 'sent';
    if (others.every((m) => m.read_up_to >= seq)) return 'read';
    if (others.every((m) => m.delivered_up_to >= seq)) return 'delivered';
    return 'sent';
  }

  /** The user behind a member id of a chat: a member, or someone this browser saw before (null: never seen). */
  userOf(c: ChatModel, id: UserId): User | null {
    return this.member(c, id)?.user ?? this.knownUsers.get(id) ?? null;
  }

  userName(c: ChatModel, id: UserId): string {
    if (id === this.me.id) return 'You';
    // Someone who left keeps the name this browser knows them by (event lines look them up).
    return this.member(c, id)?.user.display_name ?? this.knownUsers.get(id)?.display_name ?? 'Former member';
  }

  // ---- folding events ----

  private async loadSnapshot(): Promise<void> {
    this.snapshotLoading = true;
    try {
      const summaries = await this.api.chats();
      this.snapshotLoading = false;
      for (const s of summaries) this.markDelivered(this.merge(s));
      this.ready = true;
      const queued = this.queued;
      this.queued = [];
      for (const e of queued) this.apply(e.event, e.pos);
      if (this.openOnReady !== null) this.openWhenReady(this.openOnReady);
      this.openOnReady = null;
      this.notify();
    } catch (e) {
      if (this.refused(e)) return;
      // Try again shortly; the socket keeps running meanwhile.
      this.snapshotLoading = false;
      if (this.loggedOut) return;
      setTimeout(() => void this.loadSnapshot(), 1000);
    }
  }

  /** Fold in a chat from the server; `unread` is null when the answer carried none. */
  private remember(chat: Chat): void {
    for (const m of chat.members) this.knownUsers.set(m.user.id, m.user);
  }

  /** A person's name for event lines: "You", their name, or "Someone" when never seen. */
  nameOf(id: UserId, names: Record<number, string> = {}): string {
    if (id === this.me.id) return 'You';
    return this.knownUsers.get(id)?.display_name ?? names[id] ?? 'Someone';
  }

  /** Ask the person to confirm (an in-app dialog); resolves to their answer. */
  ask(c: Omit<Confirmation, 'resolve'>): Promise<boolean> {
    this.confirmation?.resolve(false);
    return new Promise((resolve) => {
      this.confirmation = {
        ...c,
        resolve: (ok) => {
          this.confirmation = null;
          this.notify();
          resolve(ok);
        },
      };
      this.notify();
    });
  }

  /**
   * The group event lines of a chat, oldest first: those history carried,
   * and those applied live that history has not (yet) carried. History's
   * copy of a line wins (its placement is the server's).
   */
  notes(chatId: ChatId): Note[] {
    const fromHistory = [...(this.chats.get(chatId)?.historyNotes.values() ?? [])];
    const live = this.local
      .notesOf(chatId)
      .filter((n) => (n.pos !== undefined ? !this.chats.get(chatId)?.historyNotes.has(n.pos) : !fromHistory.some((h) => sameNote(h, n))));
    return [...live, ...fromHistory].sort((a, b) => a.afterSeq - b.afterSeq || (a.pos ?? 0) - (b.pos ?? 0));
  }

  /** Keep the event lines a history page carried, and learn the names of people in them who have left. */
  private takeLines(c: ChatModel, page: History): void {
    const unknown = new Set<UserId>();
    for (const { after, pos, event: e } of page.lines ?? []) {
      if (e.chat_id !== c.chat.id || c.historyNotes.has(pos)) continue;
      let extra: Partial<Note>;
      switch (e.kind) {
        case 'chat_created':
          if (e.chat_kind !== 'group') continue;
          extra = { title: e.title };
          break;
        case 'chat_renamed':
          extra = { title: e.title };
          break;
        case 'member_added':
        case 'member_removed':
          extra = { user_id: e.user_id };
          break;
        case 'admin_changed':
          extra = { user_id: e.user_id, admin: e.admin };
          break;
        case 'disappearing_changed':
          extra = { seconds: e.seconds };
          break;
        default:
          continue;
      }
      for (const id of [e.by, extra.user_id]) if (id !== undefined && !this.knownUsers.has(id)) unknown.add(id);
      c.historyNotes.set(pos, { afterSeq: after, pos, kind: e.kind, by: e.by, names: {}, ...extra });
    }
    for (const id of unknown) {
      this.api
        .user(id)
        .then((u) => {
          this.knownUsers.set(u.id, u);
          this.notify();
        })
        .catch(() => {
          // Named "Someone" until a later page or event names them.
        });
    }
  }

  private note(e: Event & { by: UserId }, c: ChatModel | undefined, pos: Pos | undefined, extra: Partial<Note>): void {
    const names: Record<number, string> = {};
    for (const id of [e.by, extra.user_id]) {
      const u = id !== undefined ? this.knownUsers.get(id) : undefined;
      if (u) names[u.id] = u.display_name;
    }
    this.local.addNote(e.chat_id, {
      afterSeq: c?.chat.last_seq ?? 0,
      pos,
      kind: e.kind as Note['kind'],
      by: e.by,
      names,
      ...extra,
    });
  }

  /** I am no longer a member: keep my read point, so no false unread count appears. */
  private forgetMe(c: ChatModel): void {
    const mine = this.member(c, this.me.id);
    if (mine) c.unreadFloor = Math.max(c.unreadFloor, mine.read_up_to);
    c.left = true;
    c.chat = { ...c.chat, members: c.chat.members.filter((m) => m.user.id !== this.me.id) };
  }

  private merge(s: Omit<ChatSummary, 'unread' | 'settings'> & { unread: number | null; settings?: ChatSettings }): ChatModel {
    const existing = this.chats.get(s.chat.id);
    this.remember(s.chat);
    const floor = s.unread === null ? 0 : Math.max(0, s.chat.last_seq - s.unread);
    if (!existing) {
      const model: ChatModel = {
        chat: s.chat,
        lastMessage: s.last_message && this.plaintexts.show(s.last_message),
        messages: new Map(),
        historyLoaded: false,
        hasMoreBefore: false,
        loadingOlder: false,
        hasMoreAfter: false,
        loadingNewer: false,
        focus: null,
        left: !s.chat.members.some((m) => m.user.id === this.me.id),
        unreadFloor: floor,
        settings: s.settings ?? null,
        historyNotes: new Map(),
        activityAt: 0,
      };
      this.chats.set(s.chat.id, model);
      if (s.last_message) this.dropIfGone(model, s.last_message);
      return model;
    }
    // Watermarks only rise: keep the higher of what we have and what came.
    const old = new Map(existing.chat.members.map((m) => [m.user.id, m]));
    const myOld = old.get(this.me.id);
    if (myOld && !s.chat.members.some((m) => m.user.id === this.me.id)) {
      existing.unreadFloor = Math.max(existing.unreadFloor, myOld.read_up_to);
    }
    existing.chat = {
      ...s.chat,
      last_seq: Math.max(s.chat.last_seq, existing.chat.last_seq),
      members: s.chat.members.map((m) => {
        const o = old.get(m.user.id);
        return o
          ? {
              ...m,
              delivered_up_to: Math.max(m.delivered_up_to, o.delivered_up_to),
              read_up_to: Math.max(m.read_up_to, o.read_up_to),
            }
          : m;
      }),
    };
    if (s.last_message && (!existing.lastMessage || s.last_message.seq > existing.lastMessage.seq)) {
      existing.lastMessage = this.plaintexts.show(s.last_message);
    }
    if (s.last_message) this.dropIfGone(existing, s.last_message);
    existing.left = !s.chat.members.some((m) => m.user.id === this.me.id);
    existing.unreadFloor = Math.max(existing.unreadFloor, floor);
    if (s.settings) existing.settings = s.settings;
    return existing;
  }

  /**
   * Messages this device learnt of from a snapshot rather than as events
   * (e.g. on a brand-new device) are received all the same: say so.
   */
  private markDelivered(c: ChatModel): void {
    const mine = this.member(c, this.me.id);
    if (!mine || c.left || c.chat.last_seq <= mine.delivered_up_to) return;
    mine.delivered_up_to = c.chat.last_seq;
    this.conn.mark(c.chat.id, { delivered_up_to: c.chat.last_seq });
  }

  /**
   * Fetch one chat (new to us, or its members changed). Asks while a
   * request is under way share one more request after it: the answer under
   * way may have been taken before what made us ask (a member removed
   * meanwhile would stay in the list, and get the keys of what is written
   * next in an encrypted chat).
   */
  fetchChat(id: ChatId): Promise<void> {
    const inflight = this.fetching.get(id);
    if (inflight) {
      let again = this.fetchingAgain.get(id);
      if (!again) {
        again = inflight.then(() => {
          this.fetchingAgain.delete(id);
          return this.fetchChat(id);
        });
        this.fetchingAgain.set(id, again);
      }
      return again;
    }
    const p = this.api
      .chat(id)
      .then((s) => {
        this.markDelivered(this.merge(s));
      })
      .catch((e) => {
        const c = this.chats.get(id);
        if (c && e instanceof HarkError && (e.code === 'forbidden' || e.code === 'not_found')) c.left = true;
      })
      .finally(() => {
        this.fetching.delete(id);
        this.notify();
      });
    this.fetching.set(id, p);
    return p;
  }

  private apply(e: Event, pos?: Pos): void {
    const c = this.chats.get(e.chat_id);
    switch (e.kind) {
      case 'message': {
        if (!c) return void this.fetchChat(e.chat_id);
        const { kind: _k, ...m } = e;
        this.addMessage(m);
        return;
      }
      case 'devices_changed':
        // Someone I share a chat with (or I) got or lost a device: their keys are fetched again before the next encryption.
        this.e2e.devicesChanged(e.user_id);
        // Lost them all, perhaps: an account being deleted.
        this.recheckDirectWith(e.user_id);
        if (e.user_id === this.me.id) {
          this.devicesSeen++;
          // A waiting login logged out from another device of mine: its prompt goes.
          void this.checkApprovals();
        }
        return;
      case 'device_approval_requested':
        if (e.device.id === this.session.device.id) return;
        this.approvals.set(e.device.id, e.device);
        this.devicesSeen++;
        // Caught up from the stream, it may have been dealt with since: the devices list says.
        if (this.connState.status !== 'live') void this.checkApprovals();
        return;
      case 'device_approved':
      case 'device_approval_withdrawn':
        this.approvals.delete(e.device_id);
        this.devicesSeen++;
        return;
      case 'receipt': {
        const m = c && this.member(c, e.user_id);
        if (!m) return;
        m.read_up_to = Math.max(m.read_up_to, e.read_up_to);
        m.delivered_up_to = Math.max(m.delivered_up_to, e.delivered_up_to, m.read_up_to);
        return;
      }
      case 'chat_created':
        if (e.chat_kind === 'group') this.note(e, c, pos, { title: e.title });
        if (!c) void this.fetchChat(e.chat_id);
        return;
      case 'chat_renamed':
        this.note(e, c, pos, { title: e.title });
        if (c) c.chat = { ...c.chat, title: e.title };
        else void this.fetchChat(e.chat_id);
        return;
      case 'member_removed':
        this.note(e, c, pos, { user_id: e.user_id });
        if (c && e.user_id === this.me.id) return this.forgetMe(c);
        // Someone left: perhaps by deleting their account (their name is then "Deleted account").
        if (e.by === e.user_id) this.refreshUser(e.user_id);
        // Out of the list at once (what is encrypted next is not for them), then the chat as the server has it.
        if (c) c.chat = { ...c.chat, members: c.chat.members.filter((m) => m.user.id !== e.user_id) };
        void this.fetchChat(e.chat_id);
        return;
      case 'member_added':
        this.note(e, c, pos, { user_id: e.user_id });
        void this.fetchChat(e.chat_id);
        return;
      case 'admin_changed':
        this.note(e, c, pos, { user_id: e.user_id, admin: e.admin });
        void this.fetchChat(e.chat_id);
        return;
      case 'message_edited':
        if (c && e.encrypted) {
          // Its new ciphertext, read again (and shown only if it names this message).
          const encrypted = e.encrypted;
          this.patchMessage(c, e.seq, (m) => this.plaintexts.show({ ...m, text: '', encrypted, edited_at: e.edited_at }));
          this.patchQuotes(c, e.seq, '');
        } else if (c) {
          this.patchMessage(c, e.seq, (m) => ({ ...m, text: e.text, edited_at: e.edited_at }));
          this.patchQuotes(c, e.seq, e.text.slice(0, 200));
        }
        return;
      case 'message_deleted':
        if (c) {
          this.patchMessage(c, e.seq, (m) => ({ ...m, text: '', deleted: true, reactions: [], media: null, encrypted: null, sealed: undefined }));
          this.patchQuotes(c, e.seq, null);
          // The other person erasing their messages: perhaps their account going.
          if (e.by !== this.me.id && this.peer(c)?.id === e.by) this.recheckDirect(c.chat.id);
        }
        return;
      case 'message_hidden':
        if (c) {
          c.messages.delete(e.seq);
          if (c.lastMessage?.seq === e.seq) this.newestAsLast(c);
        }
        return;
      case 'message_expired':
        if (c) this.disappear(c, e.seq);
        return;
      case 'disappearing_changed':
        this.note(e, c, pos, { seconds: e.seconds });
        if (c) c.chat = { ...c.chat, disappearing_secs: e.seconds };
        else void this.fetchChat(e.chat_id);
        return;
      case 'reaction':
        if (c)
          this.patchMessage(c, e.seq, (m) => ({
            ...m,
            reactions: [
              ...(m.reactions ?? []).filter((r) => r.user_id !== e.user_id),
              ...(e.emoji ? [{ user_id: e.user_id, emoji: e.emoji }] : []),
            ],
          }));
        return;
      case 'chat_settings_changed':
        if (c) c.settings = e.settings;
        else void this.fetchChat(e.chat_id);
        return;
      default:
        return; // An event kind from a newer server: ignored.
    }
  }

  /** Ask for a person's name again (shown for a former member); their account deleted, my chat with them shows so too. */
  private refreshUser(id: UserId): void {
    this.api.user(id).then(
      (u) => {
        if (this.loggedOut) return;
        this.knownUsers.set(u.id, u);
        if (isDeletedAccount(u)) this.recheckDirectWith(u.id, 0);
        this.notify();
      },
      () => {
        // The name known stays.
      },
    );
  }

  /** `recheckDirect` for my one-to-one chat with `user`, if any. */
  private recheckDirectWith(user: UserId, delayMs?: number): void {
    if (user === this.me.id) return;
    for (const c of this.chats.values()) if (this.peer(c)?.id === user) this.recheckDirect(c.chat.id, delayMs, delayMs === undefined);
  }

  /** Replies quote a message as it is now: follow its edits and deletion. */
  private patchQuotes(c: ChatModel, seq: Seq, snippet: string | null): void {
    for (const [k, m] of c.messages) {
      if (m.reply_to?.seq === seq) c.messages.set(k, { ...m, reply_to: { ...m.reply_to, snippet } });
    }
  }

  /** Change a message wherever it is shown (the loaded page and the list preview). */
  private patchMessage(c: ChatModel, seq: Seq, f: (m: ChatMessage) => ChatMessage): void {
    const m = c.messages.get(seq);
    if (m) c.messages.set(seq, f(m));
    if (c.lastMessage?.seq === seq) c.lastMessage = f(c.lastMessage);
  }

  private addMessage(message: Message): void {
    const c = this.chats.get(message.chat_id);
    if (!c) return void this.fetchChat(message.chat_id);
    if (message.seq > c.chat.last_seq) c.chat = { ...c.chat, last_seq: message.seq };
    // Sending implies having read (and received) the chat up to the message.
    const sender = this.member(c, message.sender_id);
    if (sender) {
      sender.read_up_to = Math.max(sender.read_up_to, message.seq);
      sender.delivered_up_to = Math.max(sender.delivered_up_to, message.seq);
    }
    // Gone already (e.g. learnt of through sync after it disappeared): shown nowhere.
    if (hasDisappeared(message)) return this.disappear(c, message.seq, message.sent_at);
    const m = this.plaintexts.show(message);
    this.expireAt(m.expires_at);
    // Beyond a loaded window that stops short of the newest: fetched with the next page.
    if (!c.hasMoreAfter) c.messages.set(m.seq, m);
    if (!c.lastMessage || m.seq >= c.lastMessage.seq) c.lastMessage = m;
  }

  /** A page of history as shown: without the messages that disappeared, the others' expiry timed. */
  private shown(messages: Message[]): [Seq, ChatMessage][] {
    return messages
      .filter((m) => !hasDisappeared(m))
      .map((m) => {
        this.expireAt(m.expires_at);
        return [m.seq, this.plaintexts.show(m)];
      });
  }

  /** The newest loaded message stands in the list for a last message that is gone. */
  private newestAsLast(c: ChatModel): void {
    const rest = [...c.messages.keys()];
    c.lastMessage = rest.length ? c.messages.get(Math.max(...rest)) ?? null : null;
  }

  /**
   * Message `seq` disappeared (the server's `message_expired`, an `expired`
   * copy, or its `expires_at` passed here): it is shown nowhere, not even
   * as deleted, and replies quote it as gone. `sentAt`, when known, keeps
   * the chat's place in the list.
   */
  private disappear(c: ChatModel, seq: Seq, sentAt?: number): void {
    const m = c.messages.get(seq) ?? (c.lastMessage?.seq === seq ? c.lastMessage : undefined);
    const at = sentAt ?? m?.sent_at;
    if (at !== undefined) c.activityAt = Math.max(c.activityAt, at);
    c.messages.delete(seq);
    if (c.lastMessage?.seq === seq) this.newestAsLast(c);
    this.patchQuotes(c, seq, null);
    this.plaintexts.forget(c.chat.id, seq);
  }

  /** A chat's last message from the server: dropped when it disappeared, else its expiry timed. */
  private dropIfGone(c: ChatModel, m: Message): void {
    if (hasDisappeared(m)) {
      if (c.lastMessage?.seq === m.seq) this.disappear(c, m.seq, m.sent_at);
    } else if (c.lastMessage?.seq === m.seq) this.expireAt(m.expires_at);
  }

  /**
   * A shown message disappears at `at` (ms since the epoch): remove it then,
   * without waiting for the server's `message_expired` (its sweep runs every
   * few seconds; it stays the truth: an event or an `expired` copy removes
   * a message whatever this device's clock says).
   */
  private expireAt(at: number | null | undefined): void {
    if (at == null || at >= this.expiryDue || this.loggedOut) return;
    this.expiryDue = at;
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    // A timer waits at most 2^31 - 1 ms (about 24.8 days): a later time is looked at again after a day.
    const delay = Math.min(Math.max(0, at - Date.now()), 86_400_000);
    this.expiryTimer = setTimeout(() => this.sweepExpired(), delay + 20);
  }

  /** Remove every shown message whose `expires_at` passed; time the next one. */
  private sweepExpired(): void {
    this.expiryTimer = null;
    this.expiryDue = Infinity;
    if (this.loggedOut) return;
    const now = Date.now();
    let next = Infinity;
    let changed = false;
    for (const c of this.chats.values()) {
      for (const m of [...c.messages.values()]) {
        if (m.expires_at == null) continue;
        if (m.expires_at <= now) {
          this.disappear(c, m.seq);
          changed = true;
        } else next = Math.min(next, m.expires_at);
      }
      // The list's last message (its chat's history perhaps not loaded), and whichever stands in for it.
      while (c.lastMessage && c.lastMessage.expires_at != null && c.lastMessage.expires_at <= now) {
        this.disappear(c, c.lastMessage.seq);
        changed = true;
      }
      if (c.lastMessage?.expires_at != null) next = Math.min(next, c.lastMessage.expires_at);
    }
    if (next < Infinity) this.expireAt(next);
    if (changed) this.notify();
  }

  // ---- actions ----

  async openChat(id: ChatId | null, opts: { latest?: boolean } = {}): Promise<void> {
    this.openChatId = id;
    this.notify();
    if (id === null) return;
    // Read here now: its notification has done its job.
    void closeChatNotifications(id);
    const c = this.chats.get(id);
    if (!c || c.historyLoaded) return;
    try {
      const first = this.firstUnread(c);
      if (!opts.latest && first !== null && c.chat.last_seq - first >= PAGE) {
        // Many unread: open at the first of them (a window around it, newer
        // pages on scrolling down), not at the bottom, which would read them all.
        const [older, newer] = await Promise.all([
          this.api.history(id, { before: first, limit: BEFORE_UNREAD }),
          this.api.history(id, { after: first - 1, limit: PAGE }),
        ]);
        c.messages = new Map(this.shown([...older.messages, ...newer.messages]));
        this.takeLines(c, older);
        this.takeLines(c, newer);
        c.hasMoreBefore = older.has_more;
        c.hasMoreAfter = newer.has_more;
        c.historyLoaded = true;
      } else {
        const page = await this.api.history(id, { limit: PAGE });
        for (const m of page.messages) this.addMessage(m);
        this.takeLines(c, page);
        c.historyLoaded = true;
        // Anything older than the page's first message is still on the server.
        const oldest = page.messages[0]?.seq ?? 1;
        c.hasMoreBefore = page.has_more || oldest > 1 && page.messages.length === 0;
      }
    } catch {
      // Shown as an empty chat; opening again retries.
    }
    this.notify();
  }

  /** The first message from others I have not read, or null when all is read. */
  firstUnread(c: ChatModel): Seq | null {
    if (this.unread(c) === 0) return null;
    const mine = this.member(c, this.me.id);
    return Math.max(mine?.read_up_to ?? 0, c.unreadFloor) + 1;
  }

  /** Load the page before the oldest loaded message (scrolling up). */
  async loadOlder(id: ChatId, limit = PAGE): Promise<boolean> {
    const c = this.chats.get(id);
    if (!c || !c.historyLoaded || !c.hasMoreBefore || c.loadingOlder) return false;
    const oldest = Math.min(...c.messages.keys());
    c.loadingOlder = true;
    this.notify();
    try {
      const page = await this.api.history(id, { before: oldest, limit });
      for (const [seq, m] of this.shown(page.messages)) c.messages.set(seq, m);
      this.takeLines(c, page);
      c.hasMoreBefore = page.has_more;
      return page.messages.length > 0;
    } catch {
      return false;
    } finally {
      c.loadingOlder = false;
      this.notify();
    }
  }

  /** Load the page after the newest loaded message (scrolling down a window left by a jump). */
  async loadNewer(id: ChatId): Promise<boolean> {
    const c = this.chats.get(id);
    if (!c || !c.hasMoreAfter || c.loadingNewer || c.messages.size === 0) return false;
    const newest = Math.max(...c.messages.keys());
    c.loadingNewer = true;
    this.notify();
    try {
      const page = await this.api.history(id, { after: newest, limit: PAGE });
      for (const [seq, m] of this.shown(page.messages)) c.messages.set(seq, m);
      this.takeLines(c, page);
      c.hasMoreAfter = page.has_more;
      return page.messages.length > 0;
    } catch {
      return false;
    } finally {
      c.loadingNewer = false;
      this.notify();
    }
  }

  /**
   * Open a chat scrolled to message `seq` (a search result). A message a few
   * pages back is reached by loading older pages (the range stays contiguous);
   * one further back gets a window of its own around it (`before`/`after`),
   * whose newer pages load on scrolling down.
   */
  async openChatAt(id: ChatId, seq: Seq, opts: { highlight?: boolean } = {}): Promise<void> {
    await this.openChat(id);
    const c = this.chats.get(id);
    if (!c || this.openChatId !== id) return;
    if (opts.highlight !== false) c.focus = { seq, at: Date.now() };
    this.notify();
    if (c.messages.has(seq)) return;
    const oldest = c.messages.size ? Math.min(...c.messages.keys()) : Infinity;
    if (seq < oldest && oldest - seq <= REACH) {
      while (!c.messages.has(seq) && c.hasMoreBefore) {
        if (!(await this.loadOlder(id, REACH))) break;
      }
      if (c.messages.has(seq)) return;
    }
    try {
      const [older, newer] = await Promise.all([
        this.api.history(id, { before: seq + 1, limit: AROUND + 1 }),
        this.api.history(id, { after: seq, limit: AROUND }),
      ]);
      c.messages = new Map(this.shown([...older.messages, ...newer.messages]));
      this.takeLines(c, older);
      this.takeLines(c, newer);
      c.hasMoreBefore = older.has_more;
      c.hasMoreAfter = newer.has_more;
      c.historyLoaded = true;
    } catch {
      // The chat stays as it was; clicking the result again retries.
    }
    this.notify();
  }

  /** Back to the newest page (e.g. sending while a jump left the view on older messages). */
  async showLatest(id: ChatId): Promise<void> {
    const c = this.chats.get(id);
    if (!c || !c.hasMoreAfter) return;
    c.hasMoreAfter = false;
    c.focus = null;
    c.messages = new Map();
    c.historyLoaded = false;
    await this.openChat(id, { latest: true });
  }

  /** Change my own settings for a chat (mute, archive, pin); my other devices follow by event. */
  async setSettings(chatId: ChatId, patch: SettingsPatch): Promise<void> {
    const settings = await this.api.chatSettings(chatId, patch);
    const c = this.chats.get(chatId);
    if (c) c.settings = settings;
    this.notify();
  }

  /** Forward my copy of message `seq` to each chat, through the outbox (marked forwarded). */
  forward(fromChatId: ChatId, seq: Seq, toChatIds: ChatId[]): void {
    const m = this.chats.get(fromChatId)?.messages.get(seq);
    for (const to of toChatIds.slice(0, MAX_FORWARD)) this.conn.forward(fromChatId, seq, to, m?.text ?? '', m?.media);
    this.notify();
  }

  /** Full-text search over my chats (or one chat), newest first. */
  async searchMessages(q: string, chatId?: ChatId): Promise<Message[]> {
    const res = await this.api.search(q, { chatId, limit: 50 });
    return res.messages;
  }

  send(chatId: ChatId, text: string, replyTo?: Seq, media?: MediaRef): void {
    const c = this.chats.get(chatId);
    if (c && this.isEncrypted(c) && !media) return this.sendEncrypted(c, { msgtype: 'm.text', body: text }, text, replyTo);
    const clientId = this.conn.send(chatId, text, replyTo, media);
    if (replyTo !== undefined) this.replyOf.set(clientId, replyTo);
  }

  /**
   * A message in an encrypted chat: shown at once as pending, encrypted for
   * every member's devices (in the order written), then queued in the
   * outbox as ciphertext, so a resend after a reconnect carries the same
   * ciphertext under the same client id. Its text stays in this page's memory.
   */
  private sendEncrypted(c: ChatModel, content: Record<string, unknown>, text: string, replyTo?: Seq, file?: { media: MediaRef; shown: SealedMedia }): void {
    const clientId = newClientId();
    this.plaintexts.wrote(clientId, text, file?.shown, content);
    if (replyTo !== undefined) this.replyOf.set(clientId, replyTo);
    this.encrypting.push({
      chat_id: c.chat.id,
      client_id: clientId,
      text,
      content,
      queued_at: Date.now(),
      ...(replyTo !== undefined ? { reply_to: replyTo } : {}),
      ...(file ? { media: file.media, shown: file.shown } : {}),
    });
    this.notify();
    void this.drainEncrypting();
  }

  /**
   * Encrypt the written messages one after another into the outbox. One that
   * cannot be encrypted on this device fails (with why); one that failed for
   * the network waits for the next connection, and those after it too.
   */
  private async drainEncrypting(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.encrypting.length > 0 && !this.loggedOut) {
        const next = this.encrypting[0];
        try {
          // Members changed and the chat is being read again: encrypted for the members it answers.
          await (this.fetchingAgain.get(next.chat_id) ?? this.fetching.get(next.chat_id));
          const c = this.chats.get(next.chat_id);
          if (!c || c.left) throw new NotReadable("You can't send messages to this chat.", false);
          const members = c.chat.members.map((m) => m.user.id);
          const encrypted = await this.e2e.encrypt(next.chat_id, members, next.content);
          if (this.loggedOut) return;
          if (next.edit !== undefined) {
            const read = readContent(next.content, { seq: next.edit, edited_at: Date.now(), media: next.media ?? null });
            if (!('broken' in read)) this.plaintexts.edited(next.chat_id, next.edit, read, encrypted);
            this.conn.editEncrypted(next.chat_id, next.edit, encrypted);
          } else this.conn.sendEncrypted(next.chat_id, next.client_id, encrypted, next.reply_to, next.queued_at, next.media);
        } catch (e) {
          if (e instanceof HarkError && (e.code === 'network' || e.status >= 500 || e.status === 429)) {
            // Offline, or the server had a moment: tried again on the next
            // connection (or shortly), and the messages after it wait with it.
            console.warn('hark: could not encrypt a message yet', e);
            if (e.code !== 'network') setTimeout(() => void this.drainEncrypting(), 5_000);
            return;
          }
          const message = e instanceof NotReadable ? e.message : `Could not encrypt the message: ${e instanceof Error ? e.message : String(e)}`;
          const code: ErrorCode = e instanceof HarkError && e.code !== 'network' ? e.code : 'forbidden';
          if (next.edit !== undefined) this.flash(`Could not edit the message: ${message}`);
          else this.failed = [...this.failed, { chat_id: next.chat_id, client_id: next.client_id, text: next.text, code, message }];
        }
        this.encrypting = this.encrypting.filter((p) => p !== next);
        this.notify();
      }
    } finally {
      this.draining = false;
    }
  }


  /** Choose the file to send in a chat (replacing one chosen before); `kind` by default from its type. */
  attach(chatId: ChatId, file: File, kind: MediaKind = mediaKindOf(file), seconds?: number): void {
    this.detach(chatId);
    this.attachments.set(chatId, {
      file,
      kind,
      previewUrl: kind === 'image' ? URL.createObjectURL(file) : null,
      sent: null,
      error: null,
      abort: null,
      ...(seconds !== undefined ? { seconds } : {}),
    });
    this.notify();
  }

  /** Drop the chosen file (cancelling its upload). */
  detach(chatId: ChatId): void {
    const a = this.attachments.get(chatId);
    if (!a) return;
    this.attachments.delete(chatId);
    a.abort?.abort();
    if (a.previewUrl) URL.revokeObjectURL(a.previewUrl);
    this.notify();
  }

  /**
   * Upload the chosen file, then send it with `caption` through the outbox
   * like any message. In an encrypted chat the file is encrypted here first
   * and its ciphertext goes up as an unnamed `file`; its name, type, size,
   * shape, length, thumbnail and key go inside the message's ciphertext. Resolves true once sent; false when the upload failed
   * (the attachment then carries the server's reason and stays, with the
   * draft, for another try) or was cancelled.
   */
  async sendAttachment(chatId: ChatId, caption: string, replyTo?: Seq): Promise<boolean> {
    const chosen = this.attachments.get(chatId);
    if (!chosen || chosen.abort) return false;
    const abort = new AbortController();
    const uploading: Attachment = { ...chosen, sent: 0, error: null, abort };
    this.attachments.set(chatId, uploading);
    this.notify();
    const still = () => this.attachments.get(chatId)?.abort === abort;
    const onProgress = (sent: number) => {
      const a = this.attachments.get(chatId);
      if (a?.abort !== abort) return;
      this.attachments.set(chatId, { ...a, sent });
      this.notify();
    };
    const c = this.chats.get(chatId);
    try {
      if (c && this.isEncrypted(c)) {
        const { content, media, shown, text } = await this.sealAndUpload(chosen, caption, abort.signal, onProgress);
        if (!still()) return false;
        // Shown from the bytes at hand rather than fetched back and decrypted.
        this.blobs.put(shown, chosen.file);
        const a = this.attachments.get(chatId)!;
        this.attachments.delete(chatId);
        if (a.previewUrl) URL.revokeObjectURL(a.previewUrl);
        this.sendEncrypted(c, content, text, replyTo, { media, shown });
        this.local.setDraft(chatId, '');
        this.notify();
        return true;
      }
      const media = await this.api.upload(chosen.file, { kind: chosen.kind, name: chosen.file.name, signal: abort.signal, onProgress });
      if (!still()) return false;
      // Shown from the bytes at hand rather than fetched back.
      this.blobs.put(media, chosen.file);
      const a = this.attachments.get(chatId)!;
      this.attachments.delete(chatId);
      if (a.previewUrl) URL.revokeObjectURL(a.previewUrl);
      this.send(chatId, caption, replyTo, media);
      this.local.setDraft(chatId, '');
      this.notify();
      return true;
    } catch (e) {
      if (!still()) return false;
      const a = this.attachments.get(chatId)!;
      const reason = e instanceof HarkError || e instanceof NotReadable ? e.message : String(e);
      this.attachments.set(chatId, { ...a, sent: null, abort: null, error: reason });
      this.notify();
      return false;
    }
  }

  /**
   * Encrypt a chosen file and upload its ciphertext (kind `file`, no name):
   * the content to encrypt into the message (`m.image`… with `body`,
   * `filename`, `info` and `file`: the key, with the upload's id as `url`),
   * the server's media ref and the file as shown here.
   */
  private async sealAndUpload(
    chosen: Attachment,
    caption: string,
    signal: AbortSignal,
    onProgress: (sent: number) => void,
  ): Promise<{ content: Record<string, unknown>; media: MediaRef; shown: SealedMedia; text: string }> {
    const { file, kind } = chosen;
    const info: Record<string, unknown> = { mimetype: file.type || 'application/octet-stream', size: file.size, ...(await fileShape(file, kind, chosen.seconds)) };
    const { ciphertext, info: key } = await this.e2e.sealFile(new Uint8Array(await file.arrayBuffer()));
    if (signal.aborted) throw new HarkError(0, 'network', 'the upload was cancelled');
    const media = await this.api.upload(new Blob([ciphertext as Uint8Array<ArrayBuffer>]), { kind: 'file', signal, onProgress });
    const name = file.name || (kind === 'file' ? 'File' : kind);
    const msgtype = { image: 'm.image', video: 'm.video', audio: 'm.audio', file: 'm.file' }[kind];
    const content = { msgtype, body: caption.trim() ? caption : name, filename: name, info, file: { ...key, url: media.id } };
    const read = readContent(content, { seq: 0, edited_at: null, media });
    if ('broken' in read || !read.media) throw new NotReadable(`Could not send the file: ${'broken' in read ? read.broken : 'no key'}`, false);
    return { content, media, shown: read.media, text: read.text };
  }

  /** Whether I may still edit my message (the server's default window is 15 minutes). */
  canEdit(m: Message): boolean {
    // An encrypted message is edited from what this device read of it.
    return m.sender_id === this.me.id && !m.deleted && !(m as ChatMessage).sealed && Date.now() - m.sent_at < 15 * 60_000;
  }

  /**
   * Change the text (a file's caption) of my message `m`. In an encrypted
   * chat the new content is encrypted first (in order with the messages
   * written before it), naming the message it replaces and keeping its file.
   */
  edit(chatId: ChatId, m: ChatMessage, text: string): void {
    const c = this.chats.get(chatId);
    if (!c || !this.isEncrypted(c)) return this.conn.edit(chatId, m.seq, text);
    const before = this.plaintexts.readableOf(chatId, m.seq);
    if (!before) return this.flash("This message can't be edited on this device: it could not be read here.");
    const file = before.media;
    // A file's content is needed to keep its file (known once sent or read here).
    if (file && !before.content) return this.flash("This message can't be edited on this device.");
    const content = file
      ? replacement(m.seq, { ...(before.content ?? {}), body: text.trim() ? text : file.name || '' })
      : replacement(m.seq, { msgtype: 'm.text', body: text });
    this.encrypting.push({ chat_id: chatId, client_id: newClientId(), text, content, queued_at: Date.now(), edit: m.seq, ...(m.media ? { media: m.media } : {}) });
    this.notify();
    void this.drainEncrypting();
  }

  /** Whether I may delete a message for everyone (mine within 2 days, or as a group admin). */
  canDeleteForEveryone(c: ChatModel, m: Message): boolean {
    if (m.deleted) return false;
    if (m.sender_id === this.me.id && Date.now() - m.sent_at < 2 * 86_400_000) return true;
    return c.chat.kind === 'group' && !!this.member(c, this.me.id)?.admin;
  }

  /**
   * Messages up to `upTo` were on screen while the page was visible: mark
   * them read (never beyond what is loaded).
   */
  markRead(chatId: ChatId, upTo: Seq): void {
    const c = this.chats.get(chatId);
    const mine = c && this.member(c, this.me.id);
    if (!c || !mine || c.left || c.messages.size === 0) return;
    const newest = Math.min(upTo, Math.max(...c.messages.keys()));
    if (newest <= mine.read_up_to) return;
    mine.read_up_to = newest;
    mine.delivered_up_to = Math.max(mine.delivered_up_to, newest);
    this.conn.mark(chatId, { read_up_to: newest });
    this.notify();
  }

  /** Tell screen readers of an incoming message (a polite live region). */
  private announce(m: Message): void {
    const c = this.chats.get(m.chat_id);
    const from = c ? this.userName(c, m.sender_id) : 'Someone';
    const where = c && c.chat.kind === 'group' ? ` in ${this.title(c)}` : '';
    // (A voice note's length only if already known, the server's or read before: no download for an announcement.)
    const body = m.media ? mediaLabel(m.media, m.text, this.durations.of(m.media)) : m.text;
    const text = body.length > 140 ? `${body.slice(0, 140)}…` : body;
    this.announcement = `${from}${where}: ${text}`;
  }

  /** Show a short notice for a few seconds. */
  flash(text: string): void {
    this.notice = text;
    this.notify();
    setTimeout(() => {
      if (this.notice !== text) return;
      this.notice = null;
      this.notify();
    }, 5000);
  }

  dismissFailed(clientId: string): void {
    this.failed = this.failed.filter((f) => f.client_id !== clientId);
    this.notify();
  }

  /** The one-to-one chat with `userId`: a new one is end-to-end encrypted unless `encrypted` is false. */
  async startDirect(userId: UserId, encrypted = true): Promise<ChatId> {
    const chat = await this.api.createDirect(userId, encrypted);
    this.merge({ chat, last_message: null, unread: null });
    await this.openChat(chat.id);
    return chat.id;
  }

  async createGroup(title: string, members: UserId[], encrypted = true): Promise<ChatId> {
    const chat = await this.api.createGroup(title, members, encrypted);
    this.merge({ chat, last_message: null, unread: null });
    await this.openChat(chat.id);
    return chat.id;
  }

  async rename(chatId: ChatId, title: string): Promise<void> {
    const chat = await this.api.renameChat(chatId, title);
    this.mergeChat(chat);
  }

  async addMember(chatId: ChatId, userId: UserId): Promise<void> {
    const chat = await this.api.addMember(chatId, userId);
    this.mergeChat(chat);
  }

  async removeMember(chatId: ChatId, userId: UserId): Promise<void> {
    await this.api.removeMember(chatId, userId);
    const c = this.chats.get(chatId);
    if (c) {
      if (userId === this.me.id) this.forgetMe(c);
      else c.chat = { ...c.chat, members: c.chat.members.filter((m) => m.user.id !== userId) };
    }
    this.notify();
  }

  async setAdmin(chatId: ChatId, userId: UserId, admin: boolean): Promise<void> {
    this.mergeChat(await this.api.setAdmin(chatId, userId, admin));
  }

  /**
   * Set a chat's disappearing-messages timer (seconds, 0: off) for messages
   * sent from now on; every member (me too) gets the line from the event.
   */
  async setDisappearing(chatId: ChatId, seconds: number): Promise<void> {
    this.mergeChat(await this.api.setDisappearing(chatId, seconds));
  }

  /** Whether I may set a chat's disappearing-messages timer: either member of a one-to-one chat, a group's admins. */
  canSetDisappearing(c: ChatModel): boolean {
    if (c.left) return false;
    const mine = this.member(c, this.me.id);
    return !!mine && (c.chat.kind === 'direct' || mine.admin);
  }

  private mergeChat(chat: Chat): void {
    const c = this.chats.get(chat.id);
    this.merge({ chat, last_message: c?.lastMessage ?? null, unread: null });
    this.notify();
  }

  async updateName(displayName: string): Promise<void> {
    this.me = await this.api.updateMe(displayName);
    saveSession(this.server || location.origin, { ...this.session, user: this.me });
    this.notify();
  }

  async logout(): Promise<void> {
    // While the token still works: the server forgets this browser's push subscription.
    await this.push.forget();
    try {
      await this.api.logout();
    } catch {
      // Revoking failed (offline?); the local session is forgotten all the same.
    }
    this.forgetSession();
  }

  /**
   * Delete this account (see `HarkApi.deleteAccount`). Once the server
   * answered, the session is forgotten and the login screen says why; a
   * refusal (wrong password or code) throws and changes nothing.
   */
  async deleteAccount(password: string, code?: string): Promise<void> {
    this.deleting = { ended: undefined };
    try {
      await this.api.deleteAccount(password, code);
    } catch (e) {
      const ended = this.deleting.ended;
      this.deleting = null;
      // The session ended meanwhile for another reason: as it would have.
      if (ended !== undefined) this.forgetSession(ended);
      throw e;
    }
    this.deleting = null;
    this.forgetSession('account_deleted');
  }

  /**
   * Drop the approval prompts of logins no longer waiting (approved or
   * logged out while this device was not listening): `GET /v1/devices`
   * lists the waiting ones with `pending`.
   */
  async checkApprovals(): Promise<void> {
    if (this.approvals.size === 0) return;
    try {
      const devices = await this.api.devices();
      const waiting = new Set(devices.filter((d) => d.pending).map((d) => d.id));
      let changed = false;
      for (const id of [...this.approvals.keys()]) {
        if (!waiting.has(id)) {
          this.approvals.delete(id);
          changed = true;
        }
      }
      if (changed) this.notify();
    } catch (e) {
      this.refused(e);
    }
  }

  /** Let the waiting login `id` in; one already dealt with elsewhere (404) just leaves the prompt. */
  async approveDevice(id: DeviceId): Promise<void> {
    try {
      await this.api.approveDevice(id);
    } catch (e) {
      if (!(e instanceof HarkError && e.code === 'not_found')) throw e;
    }
    this.approvals.delete(id);
    this.devicesSeen++;
    this.notify();
  }

  /** Log the waiting login `id` out ("It wasn't me"); one already gone (404) just leaves the prompt. */
  async refuseDevice(id: DeviceId): Promise<void> {
    try {
      await this.api.revokeDevice(id);
    } catch (e) {
      if (!(e instanceof HarkError && e.code === 'not_found')) throw e;
    }
    this.approvals.delete(id);
    this.devicesSeen++;
    this.notify();
  }

  /** Ask the server again whether this user is a server admin. */
  async refreshRole(): Promise<void> {
    try {
      const me = await this.api.me();
      if (this.loggedOut) return;
      // A server older than administration has no roles.
      const role = me.role ?? 'user';
      if (role !== this.role) {
        this.role = role;
        this.notify();
      }
    } catch (e) {
      this.refused(e);
    }
  }

  /**
   * When `e` says this device's token will not work again (logged out
   * elsewhere, or the account disabled by an admin), forget the session and
   * go back to login; returns whether it did.
   */
  refused(e: unknown): boolean {
    if (!(e instanceof HarkError) || e.code === 'network') return false;
    if (isRestriction(e.code)) {
      this.restrict(e.code as Restriction);
      return true;
    }
    if (!isFinal(e.code)) return false;
    this.forgetSession(e.code);
    return true;
  }

  /**
   * The server holds this device back (its login waits for approval, or
   * two-factor authentication must be set up first): stop asking it for
   * anything and let the app show what deals with it. The session stays.
   */
  private restrict(code: Restriction): void {
    if (this.loggedOut || this.restricted) return;
    this.restricted = true;
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    this.conn.close();
    this.onRestricted(code);
  }

  private forgetSession(code: LogoutReason | null = null): void {
    if (this.loggedOut) return;
    if (this.deleting && code !== 'account_deleted') {
      this.deleting.ended ??= code;
      return;
    }
    this.loggedOut = true;
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    this.conn.close();
    // Logged out or revoked elsewhere: this browser's push subscription goes too.
    void this.push.forget();
    deviceStore(this.server || location.origin, this.session.device.id).clear();
    this.local.clear();
    // The device is gone on the server, its keys with it: so is its crypto store here.
    this.plaintexts.clear();
    this.encrypting = [];
    void this.e2e.destroy();
    saveSession(this.server || location.origin, null);
    this.onLoggedOut(code);
  }
}

/**
 * What an encrypted file's content says of its shape: a photo's or a
 * video's upright width and height (`w`, `h`) and its thumbnail
 * (`hark.thumbnail`, see thumbnail.ts), a sound's or video's length in ms
 * (`duration`), when this browser can read them (the server, which cannot,
 * says nothing and makes no thumbnail).
 */
async function fileShape(file: File, kind: MediaKind, seconds?: number): Promise<Record<string, unknown>> {
  const shape: Record<string, unknown> = {};
  try {
    if (kind === 'image') Object.assign(shape, await photoInfo(file));
    if (kind === 'video') Object.assign(shape, await videoInfo(file).catch(() => ({})));
    if (kind === 'audio' || kind === 'video') {
      let s = seconds;
      if (s === undefined || !Number.isFinite(s) || s <= 0) {
        const url = URL.createObjectURL(file);
        try {
          s = (await probeDuration(url, 5_000)) ?? undefined;
        } finally {
          URL.revokeObjectURL(url);
        }
      }
      if (s !== undefined && Number.isFinite(s) && s > 0) shape.duration = Math.round(s * 1000);
    }
  } catch {
    // Not readable here: the receiver reads it from the file.
  }
  return shape;
}
