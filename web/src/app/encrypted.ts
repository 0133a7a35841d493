// What this browser shows of end-to-end encrypted chats: each message's
// text (and file), decrypted by this device (web/src/crypto) and kept in
// memory only (never in localStorage), or why it cannot be read yet. A
// message whose key has not arrived waits, and is decrypted again after
// every read of the inbox that brought something, so it heals by itself.
// An edited message is decrypted again (its ciphertext changed), and shown
// only if its content names it (`hark.replaces`); a file only if its key
// names the file the message carries (`readContent`, as the Rust SDK's
// `Crypto::decrypt_message`).

import type { ChatId, ClientMsgId, MediaKind, MediaRef, Message, Seq } from '../hark-client';
import { NotReadable, type Encryption } from '../crypto';
import { readThumbnail, type InlineThumbnail } from './thumbnail';

/**
 * A message as the app shows it. For an encrypted one, `text` is the
 * decrypted text once known (empty before), `media` its file as the
 * decrypted content describes it (a `SealedMedia`), and `sealed` says why
 * it is not known yet.
 */
export type ChatMessage = Message & { sealed?: Sealed };

/**
 * A file of an encrypted chat as the app shows it: the server's media ref
 * (an opaque `file`, no name) with what the decrypted content says of it
 * (kind, name, type, size, shape, length), `file`, the key, iv and hash
 * that open its bytes (see blobs.ts), and `preview`, the thumbnail the
 * sender put inside the content (a photo's or a video's), shown until the
 * file is here. In memory only.
 */
export interface SealedMedia extends MediaRef {
  file: Record<string, unknown>;
  preview?: InlineThumbnail | null;
}

export function isSealedMedia(media: MediaRef | null | undefined): media is SealedMedia {
  return !!media && typeof (media as Partial<SealedMedia>).file === 'object' && (media as Partial<SealedMedia>).file !== null;
}

/** Why an encrypted message shows no text. */
export type Sealed =
  /** Being decrypted (the library may still be loading). */
  | { state: 'opening' }
  /** Its key has not arrived (or this device cannot decrypt now): it may come. `reason` is the library's. */
  | { state: 'waiting'; reason: string }
  /** It cannot be decrypted, ever (e.g. tampered with). */
  | { state: 'broken'; reason: string };

/** What an encrypted message says: its text (a file's caption) and file, and the content itself (an edit of a file keeps its file). */
export interface Readable {
  text: string;
  media?: SealedMedia;
  content?: Record<string, unknown>;
}

/** `ct`: the ciphertext this was read from (an edit brings another). */
type Opened = (Readable | { sealed: Sealed }) & { ct?: string };

/** What a decryption needs to know of a message, and what its content is checked against. */
type Target = Pick<Message, 'chat_id' | 'seq' | 'sender_id' | 'sent_at' | 'encrypted' | 'edited_at' | 'media'>;

/** The key of an edit's content naming the message it replaces (see `replacement`). */
export const REPLACES = 'hark.replaces';

/** The content of an edit of message `seq`: `content` naming the message it replaces, as the Rust SDK's `replacement`. */
export function replacement(seq: Seq, content: Record<string, unknown>): Record<string, unknown> {
  return { ...content, [REPLACES]: seq };
}

const KINDS: Record<string, MediaKind> = { 'm.image': 'image', 'm.video': 'video', 'm.audio': 'audio', 'm.file': 'file' };

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.round(v) : null);

/**
 * What the decrypted `content` of message `m` may be shown as, or why not
 * (`broken`): an edited message (`edited_at`) only with content naming it
 * (`hark.replaces`), and no content naming another message, so the server
 * cannot pass one message's ciphertext off as another's, or as its edit;
 * a file only if its key names the file the message carries (`file.url` is
 * `media.id`), and a message carrying a file only with that file's key.
 */
export function readContent(content: Record<string, unknown>, m: Pick<Message, 'seq' | 'edited_at' | 'media'>): Readable | { broken: string } {
  const named = content[REPLACES];
  if (named !== undefined && named !== m.seq) return { broken: 'This content is an edit of another message.' };
  if (named === undefined && m.edited_at) return { broken: 'This edit does not say which message it replaces.' };
  const body = typeof content.body === 'string' ? content.body : '';
  const file = content.file;
  const url = file && typeof file === 'object' && typeof (file as { url?: unknown }).url === 'string' ? (file as { url: string }).url : null;
  if (url !== (m.media?.id ?? null)) return { broken: 'The file is not the one the sender sent.' };
  if (!url || !m.media) return { text: body, content };
  const info = (content.info && typeof content.info === 'object' ? content.info : {}) as Record<string, unknown>;
  const filename = typeof content.filename === 'string' && content.filename ? content.filename : null;
  const kind = KINDS[String(content.msgtype)] ?? 'file';
  const pictured = kind === 'image' || kind === 'video';
  const media: SealedMedia = {
    id: m.media.id,
    kind,
    mime: typeof info.mimetype === 'string' && info.mimetype ? info.mimetype : 'application/octet-stream',
    size: num(info.size) ?? m.media.size,
    sha256: m.media.sha256,
    name: filename ?? (body || null),
    width: pictured ? num(info.w) : null,
    height: pictured ? num(info.h) : null,
    thumbnail: null,
    duration_ms: kind === 'audio' || kind === 'video' ? num(info.duration) : null,
    file: file as Record<string, unknown>,
    // One that is too large, of another type or not what it says is ignored.
    preview: pictured ? readThumbnail(info) : null,
  };
  // `body` is the caption, or the file name when there is none.
  return { text: filename !== null && body === filename ? '' : body, media, content };
}

const key = (chat: ChatId, seq: Seq) => `${chat}:${seq}`;
/** Which ciphertext a message holds now (an edit replaces it). */
const cipherOf = (m: Pick<Message, 'encrypted'>): string | undefined => {
  const c = m.encrypted?.ciphertext;
  return typeof c === 'string' ? c : undefined;
};

export class Plaintexts {
  /** By chat and seq: what an encrypted message says, or why it does not. */
  private opened = new Map<string, Opened>();
  /** The decryptions asked for and not answered yet, by chat, seq and ciphertext. */
  private asked = new Set<string>();
  /** By chat and seq: the ciphertext the message holds now (as last shown). */
  private latest = new Map<string, string | undefined>();
  /** What I wrote, by client id, until the message has its seq (and while it waits in the outbox). */
  private written = new Map<ClientMsgId, Readable>();
  /** Decryptions run one after another: cheap, and in the order the messages are shown. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly e2e: Pick<Encryption, 'decrypt'>,
    /** A message's text (or reason) became known: show it. */
    private readonly onOpened: (chat: ChatId, seq: Seq) => void,
  ) {}

  /** `m` as shown: its text and file when decrypted; otherwise empty, with why, and its decryption started. */
  show(m: ChatMessage): ChatMessage {
    if (!m.encrypted || m.deleted) {
      if (!('sealed' in m)) return m;
      const { sealed: _s, ...plain } = m;
      return plain;
    }
    const k = key(m.chat_id, m.seq);
    const ct = cipherOf(m);
    this.latest.set(k, ct);
    let opened = this.opened.get(k);
    // Edited since: read again.
    if (opened && opened.ct !== ct) opened = undefined;
    if (!opened) {
      // My own message, written here: its text is at hand.
      const mine = this.written.get(m.client_id);
      if (mine !== undefined && !m.edited_at) {
        opened = { ...mine, ct };
        this.opened.set(k, opened);
      }
    }
    if (!opened) {
      this.open(m);
      const { sealed: _s, ...plain } = m;
      return { ...plain, text: '', sealed: { state: 'opening' } };
    }
    if ('sealed' in opened) return { ...m, text: '', sealed: opened.sealed };
    return { ...m, text: opened.text, media: opened.media ?? m.media, sealed: undefined };
  }

  /** The text of message `seq` of `chat`, when this device has read it. */
  textOf(chat: ChatId, seq: Seq): string | null {
    const o = this.opened.get(key(chat, seq));
    return o && 'text' in o ? o.text : null;
  }

  /** What message `seq` of `chat` says (text, file, content), when this device has read it. */
  readableOf(chat: ChatId, seq: Seq): Readable | null {
    const o = this.opened.get(key(chat, seq));
    return o && 'text' in o ? o : null;
  }

  /** Whether message `seq` of `chat` was ever shown (read or not). */
  known(chat: ChatId, seq: Seq): boolean {
    const k = key(chat, seq);
    return this.opened.has(k) || this.latest.has(k);
  }

  /** I wrote `text` (with `media`, a file I encrypted; `content`, what was encrypted), sent as `clientId`: show it as written, without decrypting my own message. */
  wrote(clientId: ClientMsgId, text: string, media?: SealedMedia, content?: Record<string, unknown>): void {
    this.written.set(clientId, { text, ...(media ? { media } : {}), ...(content ? { content } : {}) });
  }

  /** What I wrote as `clientId`, while this page remembers it. */
  writtenText(clientId: ClientMsgId): string | undefined {
    return this.written.get(clientId)?.text;
  }

  /**
   * My encrypted message waiting in the outbox: what I wrote, or, after a
   * reload (the outbox keeps only ciphertext), what my own device decrypts
   * of it; null until then (the decryption is started).
   */
  queuedMessage(
    p: { chat_id: ChatId; client_id: ClientMsgId; queued_at: number; encrypted?: Message['encrypted']; media?: MediaRef },
    me: Message['sender_id'],
  ): Readable | null {
    const mine = this.written.get(p.client_id);
    if (mine !== undefined) return mine;
    if (!p.encrypted || this.queued.has(p.client_id)) return null;
    this.queued.add(p.client_id);
    const target = { chat_id: p.chat_id, seq: 0, sender_id: me, sent_at: p.queued_at, encrypted: p.encrypted };
    const run = this.chain.then(async () => {
      try {
        const read = readContent(await this.e2e.decrypt(target, `$queued-${p.client_id}`), { seq: 0, edited_at: null, media: p.media ?? null });
        if ('broken' in read) return;
        this.written.set(p.client_id, read);
        this.onOpened(p.chat_id, 0);
      } catch {
        // Shown as an encrypted message until it is sent and read back.
      }
    });
    this.chain = run.catch(() => {});
    return null;
  }

  /** The text of `queuedMessage`. */
  queuedText(p: Parameters<Plaintexts['queuedMessage']>[0], me: Message['sender_id']): string | null {
    return this.queuedMessage(p, me)?.text ?? null;
  }

  /** Queued messages a decryption was started for (after a reload). */
  private queued = new Set<ClientMsgId>();

  /** My message `clientId` became `seq` of `chat`, holding the ciphertext `encrypted`. */
  sent(chat: ChatId, seq: Seq, clientId: ClientMsgId, encrypted?: Message['encrypted']): void {
    const mine = this.written.get(clientId);
    if (mine === undefined) return;
    const k = key(chat, seq);
    const ct = encrypted ? cipherOf({ encrypted }) : undefined;
    // An edit already seen (from another of my devices) is not overwritten.
    const now = this.latest.get(k);
    if (!this.latest.has(k) || now === ct) this.opened.set(k, { ...mine, ct });
    this.written.delete(clientId);
  }

  /** I edited message `seq` of `chat` to `readable`, now the ciphertext `encrypted`: shown without decrypting it back. */
  edited(chat: ChatId, seq: Seq, readable: Readable, encrypted: Message['encrypted']): void {
    const k = key(chat, seq);
    this.opened.set(k, { ...readable, ct: cipherOf({ encrypted }) });
  }

  /**
   * Try again every message that waits for its key (after a read of the
   * inbox brought something, or once encryption started in this tab).
   */
  retryWaiting(): void {
    this.keysMayHaveCome++;
    for (const [k, o] of this.opened) {
      if ('sealed' in o && o.sealed.state === 'waiting') {
        const m = this.seen.get(k);
        if (m) this.open(m, true);
      }
    }
  }

  /**
   * Bumped whenever keys may have arrived: a decryption that was under way
   * then (and so not retried) and found no key runs again.
   */
  private keysMayHaveCome = 0;

  /** Every encrypted message shown and not read yet, to retry the waiting ones. */
  private seen = new Map<string, Target>();

  private open(m: Target, retry = false): void {
    const k = key(m.chat_id, m.seq);
    const ct = cipherOf(m);
    const asking = `${k}:${ct}`;
    if (this.asked.has(asking)) return;
    const target: Target = { chat_id: m.chat_id, seq: m.seq, sender_id: m.sender_id, sent_at: m.sent_at, encrypted: m.encrypted, edited_at: m.edited_at ?? null, media: m.media ?? null };
    this.asked.add(asking);
    this.seen.set(k, target);
    const run = this.chain.then(async () => {
      const keysBefore = this.keysMayHaveCome;
      let opened: Opened;
      try {
        const read = readContent(await this.e2e.decrypt(target), target);
        opened = 'broken' in read ? { sealed: { state: 'broken', reason: read.broken }, ct } : { ...read, ct };
      } catch (e) {
        const why = e instanceof NotReadable ? e : new NotReadable(e instanceof Error ? e.message : String(e), false);
        opened = { sealed: why.waiting ? { state: 'waiting', reason: why.message } : { state: 'broken', reason: why.message }, ct };
      }
      this.asked.delete(asking);
      if (this.gone.has(k)) return;
      // The message was edited meanwhile: the newer ciphertext's reading counts.
      if (this.latest.has(k) && this.latest.get(k) !== ct) return;
      if ('sealed' in opened && opened.sealed.state === 'waiting' && this.keysMayHaveCome !== keysBefore) {
        // Its key may have come while this decryption ran: once more.
        this.opened.set(k, opened);
        this.onOpened(m.chat_id, m.seq);
        return this.open(target, true);
      }
      const before = this.opened.get(k);
      this.opened.set(k, opened);
      if ('text' in opened) this.seen.delete(k);
      // A retry that changed nothing shows nothing new.
      if (retry && before && JSON.stringify(before) === JSON.stringify(opened)) return;
      this.onOpened(m.chat_id, m.seq);
    });
    this.chain = run.catch(() => {});
  }

  /** Message `seq` of `chat` disappeared: forget what it said (a decryption under way is dropped). */
  forget(chat: ChatId, seq: Seq): void {
    const k = key(chat, seq);
    this.gone.add(k);
    this.opened.delete(k);
    this.latest.delete(k);
    this.seen.delete(k);
  }

  /** Messages that disappeared, by chat and seq: never read again. */
  private gone = new Set<string>();

  /** Logging out: forget every text. */
  clear(): void {
    this.opened.clear();
    this.asked.clear();
    this.latest.clear();
    this.seen.clear();
    this.written.clear();
    this.queued.clear();
    this.gone.clear();
  }
}
