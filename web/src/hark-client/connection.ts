// The WebSocket connection (the browser twin of crates/hark-sdk/src/actor.rs):
// authenticates with the first frame, runs catch-up (sync pages, buffered live
// events, gap detection), flushes the persisted outbox with stable client ids,
// marks others' messages delivered, pings, and reconnects with backoff.
// Its state is observable through `subscribe`.

import { CatchUp, type Step } from './catchup';
import { newClientId, Outbox, type OutboxRequest } from './outbox';
import type { DeviceStore } from './storage';
import type {
  Activity,
  ChatId,
  ClientFrame,
  ClientMsgId,
  EncryptedContent,
  ErrorCode,
  Event,
  Hello,
  MediaRef,
  Pos,
  PresenceState,
  SendAck,
  Seq,
  ServerFrame,
  TypingState,
  UserId,
} from './types';

/** Events asked for per sync page. */
const SYNC_PAGE = 500;
/** How long the server has to say hello after the socket opens. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * The heartbeat: a `ping` this often while the page is visible (a hidden
 * tab's timers are throttled anyway), answered within the deadline or the
 * socket is taken for dead (a half-open socket after a network change
 * otherwise looks alive for minutes).
 */
const PING_EVERY_MS = 10_000;
const PING_HIDDEN_EVERY_MS = 30_000;
const PONG_DEADLINE_MS = 5_000;
/**
 * How long a request the server asked to retry (e.g. rate_limited,
 * unavailable) waits: 1 s, doubling with each refusal in a row up to 16 s,
 * each wait shortened by up to a fifth at random so that many clients
 * refused at once do not come back at once (docs/protocol.md: retry with
 * backoff). An ack starts it again from 1 s.
 */
const RETRY_AFTER_MS = 1_000;
const RETRY_MAX_MS = 16_000;
/** Delivered marks are collected this long, so a burst costs one mark per chat. */
const DELIVER_DELAY_MS = 50;

export type ConnectionStatus = 'connecting' | 'syncing' | 'live' | 'reconnecting' | 'closed';

export interface PendingSend {
  chat_id: ChatId;
  client_id: ClientMsgId;
  text: string;
  queued_at: number;
  reply_to?: Seq;
  /** A forward of another message (its text is the source's, as queued). */
  forwarded?: boolean;
  /** The uploaded file it carries. */
  media?: MediaRef;
  /** In an encrypted chat: its ciphertext (`text` is empty). */
  encrypted?: EncryptedContent;
}

export interface ConnectionState {
  status: ConnectionStatus;
  /** Failed connection attempts since the last successful hello. */
  attempt: number;
  /** Why the last socket ended, for people. */
  lastError: string | null;
  /** Set when the server refused the device for good (revoked, unauthorized, account_disabled). */
  closedCode: ErrorCode | null;
  /** The last stream position applied. */
  cursor: Pos;
  /** The newest hello (user, device, head, limits). */
  hello: Hello | null;
  /**
   * Set while the server asks for queued requests to be retried later (its
   * disk full, its database behind or out of reach, a rate limit): its
   * code and words, and the wait before the next try. Cleared by an ack.
   */
  held: { code: ErrorCode; message: string; retryInMs: number } | null;
  /** Sends queued and not yet acked, oldest first. */
  pending: PendingSend[];
}

export type ConnectionEvent =
  /** A socket opened and authenticated. `fresh` is true on a device's very first connection. */
  | { type: 'hello'; hello: Hello; fresh: boolean }
  /** An event to apply, exactly once and in stream order. */
  | { type: 'event'; pos: Pos; event: Event }
  /** Catch-up finished; the device is live. */
  | { type: 'caught_up'; cursor: Pos }
  /** A queued send was committed (`duplicate` when an earlier copy was). */
  | { type: 'ack'; ack: SendAck; text: string; forwarded: boolean; media: MediaRef | null; encrypted: EncryptedContent | null }
  /**
   * The server refused a send for good (e.g. forbidden, too_large, or
   * blocked: one of a one-to-one chat's two people blocked the other); it
   * left the outbox and is never sent again.
   */
  | { type: 'send_failed'; chat_id: ChatId; client_id: ClientMsgId; text: string; code: ErrorCode; message: string }
  /** The server refused an edit, delete or reaction (e.g. the edit window passed). */
  | { type: 'request_failed'; request: OutboxRequest; code: ErrorCode; message: string }
  | { type: 'state'; state: ConnectionState }
  /** A watched user's presence (from `watching` or a live `presence` frame). */
  | { type: 'presence'; presence: PresenceState }
  /** Someone is typing in a watched chat (ephemeral). */
  | { type: 'typing'; typing: TypingState }
  /** This device's inbox got to-device messages (end-to-end encryption's key exchange): read it. */
  | { type: 'to_device' }
  /** The connection ended for good: `code` says why (revoked / unauthorized / account_disabled), null when closed locally. */
  | { type: 'closed'; code: ErrorCode | null };

export interface ConnectionOptions {
  /** The WebSocket URL, e.g. `wss://chat.example/v1/ws`. */
  url: string;
  token: string;
  /** Where cursor and outbox persist. */
  store: DeviceStore;
  /** Mark others' messages delivered as soon as they are applied (default true). */
  autoDelivered?: boolean;
  /** First reconnect delay and its cap, in ms. */
  backoff?: { initialMs: number; maxMs: number };
  /** Defaults to the global WebSocket. */
  WebSocket?: typeof WebSocket;
}

type Listener = (e: ConnectionEvent) => void;

export class Connection {
  private readonly catchup: CatchUp;
  private readonly outbox: Outbox;
  private readonly listeners = new Set<Listener>();
  private readonly WS: typeof WebSocket;
  private readonly autoDelivered: boolean;
  private readonly backoff: { initialMs: number; maxMs: number };

  private ws: WebSocket | null = null;
  /** Frame ids grow across sockets, so an answer meant for an old socket is never taken for a new one's. */
  private nextFrameId = 0;
  private authId: number | null = null;
  private authed = false;
  private syncId: number | null = null;
  private pingId: number | null = null;
  private fresh: boolean;
  private me: number | null = null;
  /** Highest seq of others' messages per chat applied and not yet marked delivered. */
  private toDeliver = new Map<ChatId, Seq>();
  /** What this connection looks at (presence, typing); sent again on every socket. */
  private watchSet: { users: UserId[]; chats: ChatId[] } = { users: [], chats: [] };
  /** Frame ids of ephemeral requests (watch, typing), whose errors are ignored. */
  private ephemeral = new Set<number>();
  /** Retryable refusals in a row, for the retry's backoff. */
  private refusedInRow = 0;
  private timers = {
    reconnect: 0 as ReturnType<typeof setTimeout> | 0,
    handshake: 0 as ReturnType<typeof setTimeout> | 0,
    ping: 0 as ReturnType<typeof setTimeout> | 0,
    pong: 0 as ReturnType<typeof setTimeout> | 0,
    retry: 0 as ReturnType<typeof setTimeout> | 0,
    deliver: 0 as ReturnType<typeof setTimeout> | 0,
  };
  private current: ConnectionState;
  private stopped = false;
  private readonly onOnline = () => {
    // Back online: connect now, or check at once that the socket survived.
    if (this.ws) this.ping();
    else this.reconnectNow();
  };
  /** The browser knows the network is gone: do not wait for the socket to time out. */
  private readonly onOffline = () => this.abandon('you are offline');
  /** A page coming back into view (a phone waking up) checks its socket at once. */
  private readonly onVisible = () => {
    if (document.visibilityState !== 'visible') return;
    if (this.authed) this.ping();
    else this.reconnectNow();
  };

  constructor(private readonly opts: ConnectionOptions) {
    const cursor = opts.store.loadCursor();
    this.fresh = cursor === null;
    this.catchup = new CatchUp(cursor ?? 0);
    this.outbox = new Outbox(opts.store.loadOutbox(), (entries) => {
      opts.store.saveOutbox(entries);
      this.update({ pending: this.outbox.pendingSends() });
    });
    this.WS = opts.WebSocket ?? WebSocket;
    this.autoDelivered = opts.autoDelivered ?? true;
    this.backoff = opts.backoff ?? { initialMs: 300, maxMs: 10_000 };
    this.current = {
      status: 'connecting',
      attempt: 0,
      lastError: null,
      closedCode: null,
      cursor: this.catchup.cursor,
      hello: null,
      held: null,
      pending: this.outbox.pendingSends(),
    };
  }

  get state(): ConnectionState {
    return this.current;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Open the first socket. Reconnects happen by themselves until `close`. */
  start(): void {
    if (typeof window !== 'undefined') {
      window.addEventListener('online', this.onOnline);
      window.addEventListener('offline', this.onOffline);
      document.addEventListener('visibilitychange', this.onVisible);
    }
    this.open();
  }

  /**
   * Queue a message; it goes out now or after the next reconnect, always with
   * the same client id. Returns that id; the answer arrives as an `ack` event.
   * `media` is a file uploaded with `HarkApi.upload`; `text` is then its
   * caption and may be empty.
   */
  send(chatId: ChatId, text: string, replyTo?: Seq, media?: MediaRef): ClientMsgId {
    const clientId = newClientId();
    const request: OutboxRequest = { kind: 'send', chat_id: chatId, client_id: clientId, text, queued_at: Date.now() };
    if (replyTo !== undefined) request.reply_to = replyTo;
    if (media) request.media = media;
    this.outbox.push(request);
    this.flush();
    return clientId;
  }

  /**
   * Queue a message of an end-to-end encrypted chat: `encrypted` is its
   * ciphertext (the text goes out empty), `clientId` the id chosen when it
   * was written (see `newClientId`). Like `send`, it keeps both until acked.
   */
  sendEncrypted(chatId: ChatId, clientId: ClientMsgId, encrypted: EncryptedContent, replyTo?: Seq, queuedAt = Date.now(), media?: MediaRef): void {
    const request: OutboxRequest = { kind: 'send', chat_id: chatId, client_id: clientId, text: '', queued_at: queuedAt, encrypted };
    if (replyTo !== undefined) request.reply_to = replyTo;
    // The encrypted file's upload: an opaque, unnamed `file` (what it is travels in `encrypted`).
    if (media) request.media = media;
    this.outbox.push(request);
    this.flush();
  }

  /**
   * Copy message `seq` of `fromChatId` into `toChatId` (marked forwarded),
   * through the outbox like a send: one client id until acked. `text` and
   * `media` are the source's, shown while the forward is queued.
   */
  forward(fromChatId: ChatId, seq: Seq, toChatId: ChatId, text: string, media?: MediaRef | null): ClientMsgId {
    const clientId = newClientId();
    this.outbox.push({
      kind: 'forward',
      from_chat_id: fromChatId,
      seq,
      to_chat_id: toChatId,
      client_id: clientId,
      text,
      queued_at: Date.now(),
      ...(media ? { media } : {}),
    });
    this.flush();
    return clientId;
  }

  /** Change the text of one's own message (within the server's edit window). */
  edit(chatId: ChatId, seq: Seq, text: string): void {
    this.outbox.push({ kind: 'edit', chat_id: chatId, seq, text });
    this.flush();
  }

  /** In an end-to-end encrypted chat: replace my message's ciphertext with `encrypted`, the new content's (the text goes out empty). */
  editEncrypted(chatId: ChatId, seq: Seq, encrypted: EncryptedContent): void {
    this.outbox.push({ kind: 'edit', chat_id: chatId, seq, text: '', encrypted });
    this.flush();
  }

  /** Delete a message for everyone (sender in the window, or a group admin) or only for me. */
  delete(chatId: ChatId, seq: Seq, forEveryone: boolean): void {
    this.outbox.push({ kind: 'delete', chat_id: chatId, seq, for_everyone: forEveryone });
    this.flush();
  }

  /** Set (or with null remove) my reaction to a message. */
  react(chatId: ChatId, seq: Seq, emoji: string | null): void {
    this.outbox.push({ kind: 'react', chat_id: chatId, seq, emoji });
    this.flush();
  }

  /** Raise this device's watermarks in a chat. */
  mark(chatId: ChatId, marks: { delivered_up_to?: Seq; read_up_to?: Seq }): void {
    this.outbox.push({ kind: 'mark', chat_id: chatId, ...marks });
    this.flush();
  }

  /**
   * Watch these users' presence and these chats' typing. Replaces the
   * previous set and is re-sent after every reconnect (presence is ephemeral).
   */
  watch(users: UserId[], chats: ChatId[]): void {
    this.watchSet = { users: [...users], chats: [...chats] };
    this.sendWatch();
  }

  /** Tell the chat's watchers what this user is doing. Dropped while offline. */
  typing(chatId: ChatId, activity: Activity): void {
    if (!this.authed) return;
    const id = this.nextId();
    this.ephemeral.add(id);
    this.write({ type: 'typing', id, chat_id: chatId, activity });
  }

  private sendWatch(): void {
    if (!this.authed) return;
    const id = this.nextId();
    this.ephemeral.add(id);
    this.write({ type: 'watch', id, users: this.watchSet.users, chats: this.watchSet.chats });
  }

  /** When waiting to reconnect, try at once (e.g. the browser came back online). */
  reconnectNow(): void {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timers.reconnect);
    this.open();
  }

  /** Close for good (logout, page teardown). The outbox stays persisted. */
  close(): void {
    this.finish(null);
  }

  // ---- socket lifecycle ----

  private open(): void {
    if (this.stopped) return;
    const ws = new this.WS(this.opts.url);
    this.ws = ws;
    this.authed = false;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.authId = this.nextId();
      this.write({ type: 'auth', id: this.authId, token: this.opts.token });
    };
    ws.onmessage = (m) => {
      if (this.ws !== ws || typeof m.data !== 'string') return;
      let frame: ServerFrame;
      try {
        frame = JSON.parse(m.data) as ServerFrame;
      } catch {
        return; // A frame that does not parse is ignored, like the SDK does.
      }
      this.onFrame(frame);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      // The close frame's reason is the code: a socket closed for good is
      // not reopened, even when the error frame before it went missing.
      if (e.code === 1008 && endsConnection(e.reason as ErrorCode)) return this.finish(e.reason as ErrorCode);
      this.dropped(e.reason ? `closed by the server: ${e.reason}` : 'the connection was lost');
    };
    ws.onerror = () => {
      // onclose follows and does the work.
    };
    clearTimeout(this.timers.handshake);
    this.timers.handshake = setTimeout(() => {
      if (this.ws === ws && !this.authed) this.abandon('the server did not say hello in time');
    }, HANDSHAKE_TIMEOUT_MS);
  }

  /** Close the current socket ourselves and reconnect. */
  private abandon(reason: string): void {
    const ws = this.ws;
    if (!ws) return;
    try {
      ws.close();
    } catch {
      // Already closing.
    }
    this.dropped(reason);
  }

  /** The socket is gone: reset per-socket state and schedule a reconnect. */
  private dropped(reason: string): void {
    this.teardownSocket();
    if (this.stopped) return;
    const attempt = this.current.attempt + 1;
    this.update({ status: 'reconnecting', attempt, lastError: reason });
    // While the browser says it is offline, try only now and then: its
    // `online` event reconnects at once.
    const offline = typeof navigator !== 'undefined' && navigator.onLine === false;
    const base = offline ? this.backoff.maxMs : Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** Math.min(attempt - 1, 10));
    const delay = base / 2 + Math.random() * (base / 2);
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = setTimeout(() => this.open(), delay);
  }

  private teardownSocket(): void {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    }
    this.authed = false;
    this.authId = this.syncId = this.pingId = null;
    this.ephemeral.clear();
    clearTimeout(this.timers.handshake);
    clearTimeout(this.timers.ping);
    clearTimeout(this.timers.pong);
    this.timers.ping = this.timers.pong = 0;
    clearTimeout(this.timers.retry);
    clearTimeout(this.timers.deliver);
    this.timers.retry = this.timers.deliver = 0;
    this.catchup.disconnected();
    this.outbox.disconnected();
    // Delivered marks not yet queued are re-derived by nothing, so queue them now:
    // they go out (persisted) on the next socket.
    this.queueDelivered();
  }

  private finish(code: ErrorCode | null): void {
    if (this.stopped) return;
    const ws = this.ws;
    this.teardownSocket();
    this.stopped = true;
    clearTimeout(this.timers.reconnect);
    if (typeof window !== 'undefined') {
      window.removeEventListener('online', this.onOnline);
      window.removeEventListener('offline', this.onOffline);
      document.removeEventListener('visibilitychange', this.onVisible);
    }
    try {
      ws?.close();
    } catch {
      // Already closing.
    }
    this.update({ status: 'closed', closedCode: code });
    this.emit({ type: 'closed', code });
  }

  // ---- frames ----

  private onFrame(frame: ServerFrame): void {
    if (!this.authed) {
      if (frame.type === 'hello') return this.onHello(frame);
      if (frame.type === 'error') {
        if (endsConnection(frame.code)) return this.finish(frame.code);
        return this.abandon(`${frame.code}: ${frame.message}`);
      }
      return;
    }
    switch (frame.type) {
      case 'hello':
        return;
      case 'ack': {
        const req = this.outbox.complete(frame.id);
        this.accepted();
        if (req?.kind === 'send' || req?.kind === 'forward') {
          const { type: _t, id: _i, ...ack } = frame;
          const encrypted = req.kind === 'send' ? req.encrypted ?? null : null;
          this.emit({ type: 'ack', ack, text: req.text, forwarded: req.kind === 'forward', media: req.media ?? null, encrypted });
        }
        return;
      }
      case 'ok':
        if (this.ephemeral.delete(frame.id)) return;
        if (this.outbox.complete(frame.id)) this.accepted();
        return;
      case 'synced': {
        if (this.syncId !== frame.id) return;
        this.syncId = null;
        const steps: Step[] = [];
        this.catchup.synced(frame.events, frame.more, steps);
        return this.carryOut(steps);
      }
      case 'pong':
        if (this.pingId === frame.id) {
          this.pingId = null;
          clearTimeout(this.timers.pong);
          this.timers.pong = 0;
          this.schedulePing();
        }
        return;
      case 'error':
        if (frame.id === undefined) {
          if (endsConnection(frame.code)) return this.finish(frame.code);
          return this.abandon(`${frame.code}: ${frame.message}`);
        }
        return this.onRequestError(frame.id, frame.code, frame.message);
      case 'event': {
        const steps: Step[] = [];
        this.catchup.live({ pos: frame.pos, event: frame.event }, steps);
        return this.carryOut(steps);
      }
      case 'watching':
        this.ephemeral.delete(frame.id);
        for (const presence of frame.presence) this.emit({ type: 'presence', presence });
        return;
      case 'presence': {
        const { type: _t, ...presence } = frame;
        this.emit({ type: 'presence', presence });
        return;
      }
      case 'typing': {
        const { type: _t, ...typing } = frame;
        this.emit({ type: 'typing', typing });
        return;
      }
      case 'presence_reset':
        // Someone's privacy changed: ask again what we may see.
        return this.sendWatch();
      case 'to_device':
        return this.emit({ type: 'to_device' });
      default:
        return; // A frame from a newer server: ignored.
    }
  }

  private onHello(hello: Hello): void {
    this.authed = true;
    clearTimeout(this.timers.handshake);
    this.me = hello.user.id;
    const fresh = this.fresh;
    if (fresh) {
      // A brand-new device starts at the server's head: its app loads the
      // current state over HTTP instead of replaying the account's history.
      this.catchup.resetCursor(hello.head);
      this.opts.store.saveCursor(hello.head);
      this.fresh = false;
    }
    // `attempt` is reset only once caught up, so a socket that keeps failing
    // during sync still backs off.
    this.update({ status: 'syncing', lastError: null, hello, cursor: this.catchup.cursor });
    this.emit({ type: 'hello', hello, fresh });
    this.carryOut([this.catchup.connected()]);
    this.flush();
    if (this.watchSet.users.length || this.watchSet.chats.length) this.sendWatch();
    this.schedulePing();
  }

  /** The server took a queued request: retries start again from the shortest wait. */
  private accepted(): void {
    this.refusedInRow = 0;
    if (this.current.held) this.update({ held: null });
  }

  private schedulePing(): void {
    clearTimeout(this.timers.ping);
    const hidden = typeof document !== 'undefined' && document.visibilityState === 'hidden';
    this.timers.ping = setTimeout(() => this.ping(), hidden ? PING_HIDDEN_EVERY_MS : PING_EVERY_MS);
  }

  private onRequestError(id: number, code: ErrorCode, message: string): void {
    // Presence and typing are best effort (an older server may not know them).
    if (this.ephemeral.delete(id)) return;
    if (this.outbox.contains(id)) {
      if (isRetryable(code)) {
        // Resending is safe: the client id makes it the same message.
        this.outbox.release(id);
        if (!this.timers.retry) {
          const full = Math.min(RETRY_AFTER_MS * 2 ** this.refusedInRow, RETRY_MAX_MS);
          const wait = Math.round(full * (0.8 + 0.2 * Math.random()));
          this.refusedInRow += 1;
          this.update({ held: { code, message, retryInMs: wait } });
          this.timers.retry = setTimeout(() => {
            this.timers.retry = 0;
            this.flush();
          }, wait);
        }
      } else {
        const req = this.outbox.complete(id);
        if (req?.kind === 'send' || req?.kind === 'forward') {
          this.emit({
            type: 'send_failed',
            chat_id: req.kind === 'send' ? req.chat_id : req.to_chat_id,
            client_id: req.client_id,
            text: req.text,
            code,
            message,
          });
        } else if (req && req.kind !== 'mark') {
          this.emit({ type: 'request_failed', request: req, code, message });
        }
      }
      return;
    }
    if (this.syncId === id) {
      // Catch-up cannot go on without this page; a fresh socket starts it again.
      return this.abandon(`sync failed: ${code}: ${message}`);
    }
    if (this.pingId === id) {
      // Any answer shows the socket is alive.
      this.pingId = null;
      clearTimeout(this.timers.pong);
      this.timers.pong = 0;
      this.schedulePing();
    }
  }

  private carryOut(steps: Step[]): void {
    for (const step of steps) {
      if (!this.ws) return; // A listener closed the connection.
      switch (step.kind) {
        case 'apply': {
          const { pos, event } = step.frame;
          this.opts.store.saveCursor(pos);
          this.noteDelivered(event);
          this.emit({ type: 'event', pos, event });
          break;
        }
        case 'sync':
          this.syncId = this.nextId();
          this.write({ type: 'sync', id: this.syncId, after: step.after, limit: SYNC_PAGE });
          break;
        case 'live':
          this.update({ status: 'live', attempt: 0 });
          this.emit({ type: 'caught_up', cursor: this.catchup.cursor });
          break;
      }
    }
    if (this.current.cursor !== this.catchup.cursor) this.update({ cursor: this.catchup.cursor });
    if (this.toDeliver.size > 0 && !this.timers.deliver) {
      this.timers.deliver = setTimeout(() => {
        this.timers.deliver = 0;
        this.queueDelivered();
        this.flush();
      }, DELIVER_DELAY_MS);
    }
  }

  private noteDelivered(event: Event): void {
    if (!this.autoDelivered || event.kind !== 'message' || event.sender_id === this.me) return;
    const seen = this.toDeliver.get(event.chat_id) ?? 0;
    if (event.seq > seen) this.toDeliver.set(event.chat_id, event.seq);
  }

  private queueDelivered(): void {
    for (const [chat_id, seq] of this.toDeliver) {
      this.outbox.push({ kind: 'mark', chat_id, delivered_up_to: seq });
    }
    this.toDeliver.clear();
  }

  /** Send a heartbeat (unless one is in flight); no pong within the deadline drops the socket. */
  private ping(): void {
    if (!this.ws || !this.authed || this.pingId !== null) return;
    clearTimeout(this.timers.ping);
    this.pingId = this.nextId();
    this.write({ type: 'ping', id: this.pingId });
    this.timers.pong = setTimeout(() => this.abandon('the server stopped answering'), PONG_DEADLINE_MS);
  }

  /** Send every queued request not yet sent on this socket. */
  private flush(): void {
    if (!this.ws || !this.authed) return;
    for (const frame of this.outbox.unsentFrames(() => this.nextId())) this.write(frame);
  }

  private write(frame: ClientFrame): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== ws.OPEN) return;
    ws.send(JSON.stringify(frame));
  }

  private nextId(): number {
    return ++this.nextFrameId;
  }

  private update(patch: Partial<ConnectionState>): void {
    this.current = { ...this.current, ...patch };
    this.emit({ type: 'state', state: this.current });
  }

  private emit(e: ConnectionEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch (err) {
        console.error('hark: a connection listener failed', err);
      }
    }
  }
}

/**
 * Codes that end the connection for good: this token will not work again
 * (`account_disabled`: not until an admin enables the account).
 */
export function isFinal(code: ErrorCode): boolean {
  return code === 'unauthorized' || code === 'revoked' || code === 'account_disabled' || code === 'token_expired';
}

/**
 * Codes that hold this device back until something else happens: its login
 * waits for approval (`device_not_approved`), or the server requires
 * two-factor authentication the account has not turned on
 * (`two_factor_setup_required`). The token stays good for `GET /v1/me`,
 * logging out (and enrolling); reconnecting would only be refused again.
 */
export function isRestriction(code: ErrorCode): boolean {
  return code === 'device_not_approved' || code === 'two_factor_setup_required';
}

/** The socket is not opened again after one of these. */
function endsConnection(code: ErrorCode): boolean {
  return isFinal(code) || isRestriction(code);
}

/**
 * Errors after which a request stays in the outbox and goes again later (a
 * send with its client id, so it cannot be stored twice). `unavailable` is
 * the server unable to store anything for a while (its database out of
 * reach or behind, its disk full): nothing was stored, and the protocol says
 * to retry the same request (docs/protocol.md). Any other refusal is final:
 * `blocked`, say, stands until a person unblocks, so resending would only
 * knock on the same door forever.
 */
function isRetryable(code: ErrorCode): boolean {
  return (
    code === 'rate_limited' ||
    code === 'internal' ||
    code === 'shutting_down' ||
    code === 'slow_consumer' ||
    code === 'unavailable'
  );
}

/** The WebSocket URL of the server at `origin` (e.g. `location.origin`). */
export function websocketUrl(origin: string): string {
  const u = new URL('/v1/ws', origin);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}
