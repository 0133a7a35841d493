// End-to-end encryption on this device: Olm and Megolm from
// `@matrix-org/matrix-sdk-crypto-wasm`, the WebAssembly build of the same
// `matrix-sdk-crypto` the Rust SDK uses. This file is what the app imports:
// the names shared with the Rust side and `Encryption`, which owns this
// device's machine. It loads the library (a 145 KB chunk and a 5.6 MB
// `.wasm`, 21 KB and 1.3 MB as brotli) through a dynamic import when the
// app starts with a session, so the app's main chunk carries none of it.

import type { ChatId, DeviceId, EncryptedContent, HarkApi, Message, UserId } from '../hark-client';
import type { DeviceCrypto } from './machine';
import { deleteStore } from './store';

/**
 * The library speaks Matrix ids. A Hark user is `@<user id>:hark` and a
 * Hark device is its id in decimal: the Rust side maps them the same way,
 * so both sides name every device alike.
 */
export function matrixUserId(user: UserId): string {
  return `@${user}:hark`;
}

export function matrixDeviceId(device: DeviceId): string {
  return String(device);
}

/** A chat is the library's room `!<chat id>:hark`. */
export function matrixRoomId(chat: ChatId): string {
  return `!${chat}:hark`;
}

/**
 * The IndexedDB crypto store of one device of one user (the library adds
 * `::matrix-sdk-crypto` and `::matrix-sdk-crypto-meta` for its two
 * databases). IndexedDB is per origin already, so the server is not in the name.
 */
export function cryptoStoreName(user: UserId, device: DeviceId): string {
  return `hark-crypto-${user}-${device}`;
}

/** The Hark user a Matrix id `@<user id>:hark` names (null for any other spelling). */
export function harkUserId(matrixUser: string): UserId | null {
  const m = /^@([1-9][0-9]*):hark$/.exec(matrixUser);
  return m ? Number(m[1]) : null;
}

/** One of a contact's devices, as this device knows it. */
export interface ContactDevice {
  /** The device id (decimal). */
  id: string;
  /** Its Ed25519 identity key, unpadded base64: what people compare. */
  fingerprint: string;
  /** This device trusts it: verified by emoji, or marked verified after comparing the fingerprint. */
  verified: boolean;
}

/**
 * Where a verification by emoji stands. `requested`: someone asks this
 * device (Accept / Decline); `waiting`: we asked, they have not accepted;
 * `starting`: accepted, the keys are being exchanged; `comparing`: the
 * emoji are shown; `confirmed`: we said they match, the other side has
 * not yet; `done`: verified; `cancelled`: see `cancel`.
 */
export type VerificationState = 'requested' | 'waiting' | 'starting' | 'comparing' | 'confirmed' | 'done' | 'cancelled';

/** A verification flow with another device, as the UI shows it. */
export interface VerificationView {
  flowId: string;
  /** The other side (Matrix id); see `harkUserId`. */
  user: string;
  /** Their device id, once known. */
  device: string | null;
  /** This device asked. */
  weStarted: boolean;
  state: VerificationState;
  /** The seven emoji, in order, with their English names (`comparing`, `confirmed`). */
  emoji?: { symbol: string; name: string }[];
  /** The same as three four-digit numbers. */
  decimals?: number[];
  /** Why it ended (`cancelled`): the code (`m.user`, `m.mismatched_sas`, `m.timeout`…), who ended it, the library's words, and whether it ended before it was accepted. */
  cancel?: { code: string; byUs: boolean; reason: string; declined: boolean };
}

/** A fingerprint in groups of four characters, the way people read it out. */
export function fingerprintGroups(key: string): string[] {
  return key.match(/.{1,4}/g) ?? [];
}

/** Where this device's encryption stands, for the UI. */
export type EncryptionStatus =
  /** The library is loading, or the store opening. */
  | { state: 'loading' }
  /** Another tab of this browser holds this device's store (one machine per device): this one waits for it. */
  | { state: 'other_tab' }
  | { state: 'ready'; fingerprint: string }
  /**
   * The server keeps other keys for this device (`409 key_conflict`): this
   * browser's store was lost. Only a new device (logging out and in) helps.
   */
  | { state: 'conflict' }
  /** The library could not start (e.g. the .wasm could not be fetched or compiled): the browser's reason. */
  | { state: 'failed'; reason: string }
  /** Logged out: the store is gone. */
  | { state: 'closed' };

/** What a person is told when a message cannot be read, and whether it may heal by itself. */
export class NotReadable extends Error {
  constructor(
    message: string,
    /** The key may still arrive (through the inbox): try again after the next read. */
    readonly waiting: boolean,
  ) {
    super(message);
    this.name = 'NotReadable';
  }
}

/** The text people see for the states in which this device cannot read anything. */
export const STATUS_REASON: Record<'loading' | 'other_tab' | 'conflict' | 'closed', string> = {
  loading: 'Encryption is starting on this device.',
  other_tab: 'Encryption for this device is active in another tab of this browser: read it there, or close that tab.',
  conflict: "This browser's encryption keys were lost, so it cannot read or send encrypted messages. Log out and log in again to use encrypted chats.",
  closed: 'Logged out.',
};

/** How long a failed read of the inbox waits before trying again, first and at most. */
const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 30_000;

/**
 * This device's end-to-end encryption, for the app: opens the crypto store
 * (one machine per device across this browser's tabs, held with a Web
 * Lock named after the store), publishes the device's keys and reads its
 * inbox on every connection and to-device nudge, and encrypts and decrypts
 * chat messages. Calls that talk to the server run one at a time, in the
 * order asked.
 */
export class Encryption {
  status: EncryptionStatus = { state: 'loading' };
  /**
   * This device's keys went out (the first read of the inbox after
   * publishing them succeeded): others' browsers can encrypt for it from
   * now on. A message sent to this user before that never reaches this
   * device.
   */
  published = false;
  private crypto: DeviceCrypto | null = null;
  /** Resolves once the machine is open (never rejects: see `status`). */
  private opened: Promise<DeviceCrypto | null>;
  private markOpened!: (c: DeviceCrypto | null) => void;
  /** The tail of the one-at-a-time queue. */
  private tail: Promise<unknown> = Promise.resolve();
  /** A sync is queued and not started: further asks join it. */
  private syncQueued = false;
  private retryDelay = RETRY_FIRST_MS;
  private retryTimer: ReturnType<typeof setTimeout> | 0 = 0;
  /** Ends the Web Lock (and a wait for it) when this session ends. */
  private readonly lockAbort = new AbortController();
  private releaseLock: () => void = () => {};
  private readonly storeName: string;
  private started = false;
  /**
   * Contacts' devices as last read from this device's store, by user:
   * filled for the people of the open chat and the info panel, read again
   * when their devices change or one is verified.
   */
  readonly devices = new Map<UserId, ContactDevice[]>();
  /** Verification flows by id, as last seen; kept until the person closes them. */
  readonly verifications = new Map<string, VerificationView>();
  /** Users whose devices are being read, and whether another read was asked meanwhile (it runs after). */
  private readingDevices = new Map<UserId, boolean>();
  /** While a flow is under way, the machine is asked every few seconds (it times flows out then). */
  private verificationTimer: ReturnType<typeof setInterval> | 0 = 0;

  constructor(
    private readonly api: HarkApi,
    private readonly user: UserId,
    private readonly device: DeviceId,
    /** Called when `status` changes. */
    private readonly onStatus: () => void,
    /** Called after the inbox handed the machine new messages (room keys may have come): retry what could not be read. */
    private readonly onKeys: () => void,
    /** Called when a contact's devices or a verification flow changed. */
    private readonly onTrust: () => void = () => {},
  ) {
    this.storeName = cryptoStoreName(user, device);
    this.opened = new Promise((resolve) => (this.markOpened = resolve));
  }

  /** Take this device's store (waiting while another tab has it) and load the library. Then `sync`. */
  start(): void {
    if (this.started) return;
    this.started = true;
    void this.open();
  }

  private async open(): Promise<void> {
    try {
      await this.lock();
      if (this.closed) return;
      this.setStatus({ state: 'loading' });
      const { DeviceCrypto } = await import('./machine');
      const crypto = await DeviceCrypto.open(matrixUserId(this.user), matrixDeviceId(this.device), this.storeName, this.api, (flowId) =>
        this.verificationChanged(flowId),
      );
      if (this.closed) return crypto.close();
      this.crypto = crypto;
      this.setStatus({ state: 'ready', fingerprint: crypto.fingerprint });
      this.markOpened(crypto);
    } catch (e) {
      if (this.closed) return;
      // The browser's own words, without their last full stop: the UI adds a sentence.
      this.setStatus({ state: 'failed', reason: (e instanceof Error ? e.message : String(e)).replace(/\.+$/, '') });
      this.markOpened(null);
    }
  }

  /**
   * Hold the Web Lock named after the store for as long as this session
   * lasts. While another tab holds it, say so and wait. Browsers without
   * Web Locks go on without it.
   */
  private lock(): Promise<void> {
    const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
    if (!locks) return Promise.resolve();
    const held = new Promise<void>((release) => (this.releaseLock = release));
    return new Promise<void>((granted, failed) => {
      const hold = () => {
        granted();
        return held;
      };
      locks
        .request(this.storeName, { ifAvailable: true }, (lock) => (lock ? hold() : 'busy'))
        .then((outcome) => {
          if (outcome !== 'busy') return;
          this.setStatus({ state: 'other_tab' });
          return locks.request(this.storeName, { signal: this.lockAbort.signal }, hold);
        })
        .catch((e) => {
          if (this.lockAbort.signal.aborted) return;
          failed(e);
        });
    });
  }

  /** Logged out: nothing more happens. */
  private get closed(): boolean {
    return this.status.state === 'closed';
  }

  private setStatus(status: EncryptionStatus): void {
    this.status = status;
    this.onStatus();
  }

  /** Why nothing can be decrypted now, when that is so. */
  private unavailable(): NotReadable | null {
    const s = this.status;
    if (s.state === 'ready') return null;
    if (s.state === 'failed') return new NotReadable(`Encryption could not start on this device: ${s.reason}.`, false);
    return new NotReadable(STATUS_REASON[s.state], s.state === 'loading' || s.state === 'other_tab');
  }

  /** Run `f` with the machine once it is open, after everything queued before it. */
  private queue<T>(f: (c: DeviceCrypto) => Promise<T>): Promise<T> {
    const run = this.tail.then(async () => {
      const crypto = await this.opened;
      const why = this.unavailable();
      if (!crypto || why) throw why ?? new NotReadable('Encryption is not available on this device.', false);
      return f(crypto);
    });
    this.tail = run.catch(() => {});
    return run;
  }

  /**
   * Publish this device's keys (when the library has any to publish) and
   * read its inbox to the end. Asks made while one waits in the queue join
   * it. A failure (offline) is retried with a growing delay; a refused key
   * (`key_conflict`) stops encryption on this device for good.
   */
  sync(): void {
    if (this.syncQueued) return;
    this.syncQueued = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    this.queue(async (crypto) => {
      this.syncQueued = false;
      return crypto.sync();
    }).then(
      (handed) => {
        this.retryDelay = RETRY_FIRST_MS;
        if (!this.published) {
          this.published = true;
          this.onStatus();
        }
        if (handed > 0) this.onKeys();
      },
      (e) => {
        this.syncQueued = false;
        this.failedCall(e);
      },
    );
  }

  /** A call to the server failed: a refused key ends encryption here; anything else is tried again later. */
  private failedCall(e: unknown): void {
    if (e instanceof Error && e.name === 'KeyConflict') {
      this.setStatus({ state: 'conflict' });
      return;
    }
    if (e instanceof NotReadable || this.status.state !== 'ready') return;
    console.warn('hark: reading the encryption inbox failed; trying again', e);
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = 0;
      this.sync();
    }, this.retryDelay);
    this.retryDelay = Math.min(RETRY_MAX_MS, this.retryDelay * 2);
  }

  /** A `devices_changed` event: `user` added or lost a device. */
  devicesChanged(user: UserId): void {
    this.queue((crypto) => crypto.devicesChanged([matrixUserId(user)])).catch((e) => this.failedCall(e));
    // Shown somewhere (a device list, a warning): read again once fetched.
    if (this.devices.has(user)) this.loadDevices([user]);
  }

  /**
   * Read the devices of `users` (fetching their keys when not known or
   * changed) into `devices`. Failures leave what was there (offline: the
   * next change or opening reads again).
   */
  loadDevices(users: UserId[]): void {
    for (const user of users) {
      if (user === this.user) continue;
      if (this.readingDevices.has(user)) {
        // A read is under way, maybe from before the change: read once more after it.
        this.readingDevices.set(user, true);
        continue;
      }
      this.readingDevices.set(user, false);
      this.queue((crypto) => crypto.devices(matrixUserId(user)))
        .then((list) => {
          this.devices.set(user, list);
          this.onTrust();
        })
        .catch(() => {})
        .finally(() => {
          const again = this.readingDevices.get(user);
          this.readingDevices.delete(user);
          if (again) this.loadDevices([user]);
        });
    }
  }

  /** Trust `device` of `user` after comparing its fingerprint by another channel. */
  async markVerified(user: UserId, device: string): Promise<void> {
    await this.queue((crypto) => crypto.markVerified(matrixUserId(user), device));
    this.loadDevices([user]);
  }

  /** Ask `device` of `user` to verify by emoji; the flow shows in `verifications`. */
  async requestVerification(user: UserId, device: string): Promise<string> {
    const flowId = await this.queue((crypto) => crypto.requestVerification(matrixUserId(user), device));
    this.verificationChanged(flowId);
    return flowId;
  }

  /** Accept the request `flowId` from someone else. */
  acceptVerification(flowId: string): Promise<void> {
    return this.act((crypto) => crypto.acceptVerification(flowId));
  }

  /** The emoji of `flowId` match. */
  confirmVerification(flowId: string): Promise<void> {
    return this.act((crypto) => crypto.confirmVerification(flowId));
  }

  /** Decline or cancel `flowId`, or (`m.mismatched_sas`) say its emoji do not match. */
  cancelVerification(flowId: string, code: 'm.user' | 'm.mismatched_sas' = 'm.user'): Promise<void> {
    return this.act((crypto) => crypto.cancelVerification(flowId, code));
  }

  /** The person closed a finished flow. */
  dismissVerification(flowId: string): void {
    this.verifications.delete(flowId);
    this.crypto?.forgetVerification(flowId);
    this.onTrust();
  }

  private async act(f: (c: DeviceCrypto) => Promise<VerificationView | null>): Promise<void> {
    this.shown(await this.queue(f));
  }

  /** The library says a flow changed: take its next step in turn, then show it. */
  private verificationChanged(flowId: string): void {
    this.queue((crypto) => crypto.stepVerification(flowId))
      .then((view) => this.shown(view))
      .catch((e) => {
        if (!(e instanceof NotReadable)) console.warn('hark: a verification step failed', e);
      });
  }

  private shown(view: VerificationView | null): void {
    if (!view) return;
    const before = this.verifications.get(view.flowId);
    this.verifications.set(view.flowId, view);
    const user = harkUserId(view.user);
    // Verified now: its device list shows it.
    if (view.state === 'done' && before?.state !== 'done' && user !== null) this.loadDevices([user]);
    this.watchTimeouts();
    this.onTrust();
  }

  /** While a flow is under way, let the machine time it out (and tell us) even if nothing arrives. */
  private watchTimeouts(): void {
    const running = [...this.verifications.values()].some((v) => v.state !== 'done' && v.state !== 'cancelled');
    if (running && !this.verificationTimer) {
      this.verificationTimer = setInterval(() => {
        this.queue((crypto) => crypto.activeVerifications())
          .then((views) => views.forEach((v) => this.shown(v)))
          .catch(() => {});
      }, 5_000);
    } else if (!running && this.verificationTimer) {
      clearInterval(this.verificationTimer);
      this.verificationTimer = 0;
    }
  }

  /**
   * The ciphertext of `text` (an `m.text` content), or of a whole
   * `content` (a file's, an edit's), for every device of `members` (include
   * yourself: your other devices read it too) in `chat`. Rejects with a
   * `NotReadable` when this device cannot encrypt, or with the server's
   * error (offline: retry later).
   */
  encrypt(chat: ChatId, members: UserId[], content: string | Record<string, unknown>): Promise<EncryptedContent> {
    const clear = typeof content === 'string' ? { msgtype: 'm.text', body: content } : content;
    return this.queue((crypto) => crypto.encrypt(matrixRoomId(chat), members.map(matrixUserId), clear)).catch((e) => {
      if (e instanceof Error && e.name === 'KeyConflict') {
        this.setStatus({ state: 'conflict' });
        throw new NotReadable(STATUS_REASON.conflict, false);
      }
      throw e;
    });
  }

  /**
   * The decrypted content of an encrypted message (`msgtype`, `body`, and
   * a file's `filename`, `info` and `file`; see encrypted.ts for the checks
   * on it). Rejects with a `NotReadable` saying
   * why not (`waiting`: its key may still come). `eventId` names a message
   * that has no seq yet (one of mine waiting in the outbox); the library
   * keeps no record of event ids, so the same ciphertext reads the same
   * under its real id later.
   */
  async decrypt(m: Pick<Message, 'chat_id' | 'seq' | 'sender_id' | 'sent_at' | 'encrypted'>, eventId?: string): Promise<Record<string, unknown>> {
    const crypto = await this.openedOrNow();
    const why = this.unavailable();
    if (why || !crypto) throw why ?? new NotReadable('Encryption is not available on this device.', false);
    try {
      const content = await crypto.decrypt(matrixRoomId(m.chat_id), {
        type: 'm.room.encrypted',
        sender: matrixUserId(m.sender_id),
        event_id: eventId ?? `$c${m.chat_id}s${m.seq}`,
        origin_server_ts: Math.max(0, m.sent_at),
        room_id: matrixRoomId(m.chat_id),
        content: m.encrypted ?? {},
      });
      return content;
    } catch (e) {
      if (e instanceof Error && e.name === 'Undecryptable') throw new NotReadable(e.message, (e as Error & { keyMissing: boolean }).keyMissing);
      throw new NotReadable(e instanceof Error ? e.message : String(e), false);
    }
  }

  /**
   * Encrypt a file's bytes (see machine.ts `sealFile`): the ciphertext to
   * upload and the key that opens it. Needs only the library, loaded with
   * the machine.
   */
  async sealFile(bytes: Uint8Array): Promise<{ ciphertext: Uint8Array; info: Record<string, unknown> }> {
    const lib = await this.library();
    return lib.sealFile(bytes);
  }

  /** Decrypt a downloaded file with its message's `file` (key, iv, hash); rejects when the bytes are not the sender's. */
  async openFile(ciphertext: Uint8Array, file: Record<string, unknown>): Promise<Uint8Array> {
    const lib = await this.library();
    try {
      return lib.openFile(ciphertext, file);
    } catch (e) {
      throw new NotReadable(`The file could not be decrypted: ${e instanceof Error ? e.message : String(e)}`, false);
    }
  }

  /** The library's module once the machine is open (so its `.wasm` is initialised). */
  private async library(): Promise<typeof import('./machine')> {
    const crypto = await this.openedOrNow();
    const why = this.unavailable();
    if (why || !crypto) throw why ?? new NotReadable('Encryption is not available on this device.', false);
    return import('./machine');
  }

  /** The machine when open; while another tab holds the store, do not wait for it. */
  private openedOrNow(): Promise<DeviceCrypto | null> {
    if (this.crypto || this.status.state === 'loading') return this.opened;
    return Promise.resolve(null);
  }

  /**
   * Logging out: release the store and delete it with its key (the device
   * is gone on the server; its keys with it). Resolves once deleted (or
   * when the browser refuses, logged).
   */
  async destroy(): Promise<void> {
    if (this.status.state === 'closed') return;
    this.setStatus({ state: 'closed' });
    clearTimeout(this.retryTimer);
    clearInterval(this.verificationTimer);
    this.crypto?.close();
    this.crypto = null;
    this.markOpened(null);
    try {
      // Deleted while this tab still holds the lock, so no other tab opens it meanwhile.
      await deleteStore(this.storeName);
    } catch (e) {
      console.warn('hark: could not delete the encryption store', e);
    } finally {
      this.lockAbort.abort();
      this.releaseLock();
    }
  }
}
