// This device's `OlmMachine` (the library's state machine for Olm and
// Megolm) over an encrypted IndexedDB crypto store, and the loop that
// drives it against Hark's key directory and this device's inbox
// (docs/protocol.md, "End-to-end encryption"): a port of the Rust SDK's
// crates/hark-sdk/src/crypto.rs. Imported only through `import('./machine')`
// in index.ts: everything this file pulls in (the bindings and their `.wasm`)
// goes into a chunk of its own.

import {
  Attachment,
  DecryptionSettings,
  DeviceId,
  DeviceLists,
  EncryptedAttachment,
  EncryptionSettings,
  initAsync,
  MegolmDecryptionError,
  OlmMachine,
  RequestType,
  RoomId,
  StoreHandle,
  TrustRequirement,
  UserId,
} from '@matrix-org/matrix-sdk-crypto-wasm';
import type { EncryptedContent, HarkApi } from '../hark-client';
import { HarkError } from '../hark-client';
import type { ContactDevice, VerificationView } from './index';
import { Verifications } from './verify';

/**
 * Encrypts a file's bytes for an encrypted chat (the library's attachment
 * format: AES-256-CTR with a fresh key, SHA-256 of the ciphertext, as the
 * Rust SDK's `seal_file`): the ciphertext to upload and the key, iv and
 * hash that open it (`v`, `key`, `iv`, `hashes`: the content's `file`, less
 * its `url`).
 */
export function sealFile(bytes: Uint8Array): { ciphertext: Uint8Array; info: Record<string, unknown> } {
  const sealed = Attachment.encrypt(bytes);
  try {
    const info = JSON.parse(sealed.mediaEncryptionInfo ?? 'null') as Record<string, unknown> | null;
    if (!info) throw new Error('the library gave no key for the file');
    return { ciphertext: sealed.encryptedData, info };
  } finally {
    sealed.free();
  }
}

/**
 * Decrypts a downloaded file with its content's `file` (key, iv, hash):
 * throws when the bytes are not what the sender encrypted (the hash differs).
 */
export function openFile(ciphertext: Uint8Array, file: Record<string, unknown>): Uint8Array {
  const sealed = new EncryptedAttachment(ciphertext, JSON.stringify(file));
  try {
    return Attachment.decrypt(sealed);
  } finally {
    sealed.free();
  }
}

/**
 * One machine per store for the life of the page, whoever asks: two
 * machines over one store would each hold their own copy of the account
 * and overwrite each other's writes. (Across tabs, index.ts holds a Web
 * Lock named after the store.) A failed open is forgotten, so it can be
 * retried.
 */
const machines = new Map<string, Promise<OlmMachine>>();

/** The machine of `device` (Matrix ids: see index.ts) over the store called `storeName`. */
export function openMachine(user: string, device: string, storeName: string): Promise<OlmMachine> {
  let machine = machines.get(storeName);
  if (!machine) {
    machine = open(storeName, user, device);
    machines.set(storeName, machine);
    machine.catch(() => machines.delete(storeName));
  }
  return machine;
}

async function open(name: string, user: string, device: string): Promise<OlmMachine> {
  // Fetches and compiles the .wasm (the page's CSP allows it with 'wasm-unsafe-eval').
  await initAsync();
  const { key, fresh } = storeKey(name);
  // A store left from a key that is gone can never be read again: start over.
  if (fresh) await Promise.all(STORE_DATABASES.map((suffix) => deleteDatabase(`${name}${suffix}`, 'fail')));
  const handle = await StoreHandle.openWithKey(name, key);
  const userId = new UserId(user);
  const deviceId = new DeviceId(device);
  try {
    return await OlmMachine.initFromStore(userId, deviceId, handle);
  } finally {
    userId.free();
    deviceId.free();
    handle.free();
  }
}

/** The Ed25519 identity key, unpadded base64. */
export function ed25519Fingerprint(machine: OlmMachine): string {
  const keys = machine.identityKeys;
  const ed25519 = keys.ed25519;
  try {
    return ed25519.toBase64();
  } finally {
    ed25519.free();
    keys.free();
  }
}

import { ackEntry, deleteDatabase, keyEntry, STORE_DATABASES } from './store';

/**
 * The store's 32-byte encryption key, made at random for a new store and
 * kept in this origin's `localStorage` beside the session token, which
 * guards the same account. A raw key spares the PBKDF2 rounds a passphrase
 * costs at every open. It does not protect the keys from someone holding
 * the whole browser profile; it does mean that forgetting this entry
 * leaves the store unreadable.
 */
function storeKey(name: string): { key: Uint8Array; fresh: boolean } {
  const saved = localStorage.getItem(keyEntry(name));
  if (saved) {
    const key = Uint8Array.from(atob(saved), (c) => c.charCodeAt(0));
    if (key.length === 32) return { key, fresh: false };
  }
  const key = crypto.getRandomValues(new Uint8Array(32));
  localStorage.setItem(keyEntry(name), btoa(String.fromCharCode(...key)));
  localStorage.removeItem(ackEntry(name));
  return { key, fresh: true };
}

/** The server refused this device's keys (`409 key_conflict`): its store was lost, the server keeps the keys it first published. */
export class KeyConflict extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyConflict';
  }
}

/** Why a message could not be decrypted (the library's words), and whether its key may still come. */
export class Undecryptable extends Error {
  constructor(
    message: string,
    /** The key is missing (or only a later part of the session is known): it may arrive through the inbox. */
    readonly keyMissing: boolean,
  ) {
    super(message);
    this.name = 'Undecryptable';
  }
}

/** The routes the machine's requests go to (`HarkApi`'s). */
type KeyApi = Pick<HarkApi, 'uploadKeys' | 'queryKeys' | 'claimKeys' | 'sendToDevice' | 'inbox'>;

/** Inbox messages asked for per read. */
const INBOX_PAGE = 100;

/**
 * End-to-end encryption for this device: the machine and the server it
 * talks to. Calls that talk to the server must not overlap (the library
 * asks that key claims and room-key shares run one at a time): index.ts
 * runs them one after another. Decrypting may run beside them.
 */
export class DeviceCrypto {
  /** Other people's devices and their verification (verify.ts). */
  private readonly verifications: Verifications;

  private constructor(
    private readonly machine: OlmMachine,
    private readonly api: KeyApi,
    private readonly storeName: string,
    verificationChanged: (flowId: string) => void,
  ) {
    this.verifications = new Verifications(machine, api, verificationChanged);
  }

  /**
   * Opens (or creates) the store named `storeName` for this device;
   * publishes nothing yet (see `sync`). `verificationChanged` is called
   * when a verification flow changed (call `stepVerification` then, in turn
   * with the other calls).
   */
  static async open(user: string, device: string, storeName: string, api: KeyApi, verificationChanged: (flowId: string) => void): Promise<DeviceCrypto> {
    return new DeviceCrypto(await openMachine(user, device, storeName), api, storeName, verificationChanged);
  }

  get fingerprint(): string {
    return ed25519Fingerprint(this.machine);
  }

  /** Close the machine (and its IndexedDB connections): logging out. */
  close(): void {
    machines.delete(this.storeName);
    try {
      this.machine.close();
    } catch {
      // Closed already.
    }
  }

  /**
   * Sends what the machine asks for (publishing this device's keys first of
   * all), then reads the inbox to the end, handing each page to the
   * machine, and sends again (e.g. replenished one-time keys). Answers how
   * many to-device messages the machine was given. Call it after every
   * `hello` and on every `to_device` frame.
   */
  async sync(): Promise<number> {
    await this.sendOutgoing();
    let handed = 0;
    let acked = Number(localStorage.getItem(ackEntry(this.storeName)) ?? 0) || 0;
    for (;;) {
      const inbox = await this.api.inbox(acked, INBOX_PAGE);
      // The library ignores a verification request from a device whose keys
      // it does not have: fetch the askers' keys before it reads the request.
      const askers = [...new Set(inbox.messages.filter((m) => m.type === 'm.key.verification.request').map((m) => m.sender))];
      if (askers.length > 0) {
        await this.machine.updateTrackedUsers(askers.map((u) => new UserId(u)));
        await this.devicesChanged(askers);
      }
      const events = inbox.messages.map((m) => ({ sender: m.sender, type: m.type, content: m.content }));
      const counts = new Map(Object.entries(inbox.one_time_key_counts));
      const processed = await this.machine.receiveSyncChanges(
        JSON.stringify(events),
        new DeviceLists(),
        counts,
        new Set(inbox.unused_fallback_key_types),
        untrusted(),
      );
      for (const p of processed) p.free();
      // A verification request may have come: the flows of whoever wrote.
      this.verifications.discover(inbox.messages.map((m) => m.sender));
      handed += inbox.messages.length;
      const last = inbox.messages[inbox.messages.length - 1];
      if (last) {
        // Kept across reloads: the next read (maybe after one) removes them from the server.
        acked = last.id;
        localStorage.setItem(ackEntry(this.storeName), String(acked));
      }
      if (!inbox.more) break;
    }
    await this.sendOutgoing();
    return handed;
  }

  /** These users' devices changed (`devices_changed` events): their keys are fetched again before the next encryption. */
  async devicesChanged(users: string[]): Promise<void> {
    await this.machine.receiveSyncChanges('[]', new DeviceLists(users.map((u) => new UserId(u))), new Map(), undefined, untrusted());
    await this.sendOutgoing();
  }

  /**
   * Encrypts `content` (`{"msgtype": "m.text", "body": "…"}`) for every
   * device of `members` in room `room`: fetches their keys, makes the Olm
   * sessions it lacks, shares the room's Megolm key with the devices that
   * do not have it, then encrypts. Answers the `m.room.encrypted` content.
   */
  async encrypt(room: string, members: string[], content: Record<string, unknown>): Promise<EncryptedContent> {
    // The library takes (and frees) the ids it is given: a fresh list per call.
    const users = () => members.map((u) => new UserId(u));
    await this.machine.updateTrackedUsers(users());
    try {
      await this.sendOutgoing();
    } catch (e) {
      // Offline: what the machine knows may be enough (sessions made and the
      // chat's key shared before), so go on; a claim or a share that needs
      // the server fails below. A refused key stops everything.
      if (e instanceof KeyConflict || !(e instanceof HarkError) || (e.code !== 'network' && e.status < 500)) throw e;
    }
    const claim = await this.machine.getMissingSessions(users());
    if (claim) {
      const body = JSON.parse(claim.body);
      const answer = await this.api.claimKeys({ one_time_keys: body.one_time_keys });
      await this.machine.markRequestAsSent(claim.id, RequestType.KeysClaim, JSON.stringify(answer));
      claim.free();
    }
    const roomId = new RoomId(room);
    try {
      const shares = await this.machine.shareRoomKey(roomId, users(), new EncryptionSettings());
      for (const share of shares) {
        await this.api.sendToDevice(share.event_type, share.txn_id, { messages: JSON.parse(share.body).messages });
        await this.machine.markRequestAsSent(share.id, RequestType.ToDevice, '{}');
        share.free();
      }
      return JSON.parse(await this.machine.encryptRoomEvent(roomId, 'm.room.message', JSON.stringify(content)));
    } finally {
      roomId.free();
    }
  }

  /**
   * Decrypts the `m.room.encrypted` event `event` (see docs/protocol.md,
   * "Encrypted chats") of room `room`; answers its content. Throws
   * `Undecryptable` with the library's reason when it cannot.
   */
  async decrypt(room: string, event: Record<string, unknown>): Promise<Record<string, unknown>> {
    const roomId = new RoomId(room);
    try {
      const decrypted = await this.machine.decryptRoomEvent(JSON.stringify(event), roomId, untrusted());
      const clear = JSON.parse(decrypted.event) as { room_id?: string; content?: Record<string, unknown> };
      decrypted.free();
      // Megolm binds a message to its room: one replayed from another chat is refused.
      if (clear.room_id !== room) throw new Undecryptable('The message was encrypted for another chat.', false);
      return clear.content ?? {};
    } catch (e) {
      if (e instanceof Undecryptable) throw e;
      if (e instanceof MegolmDecryptionError) {
        // The withheld reason, when the sender said why it sends no key, says most.
        const reason = e.maybe_withheld ?? e.description;
        throw new Undecryptable(reason, e.code === 0 /* MissingRoomKey */ || e.code === 1 /* UnknownMessageIndex */);
      }
      throw new Undecryptable(e instanceof Error ? e.message : String(e), false);
    } finally {
      roomId.free();
    }
  }

  /** The devices of `user` (Matrix id), fetched from the key directory first when not known or changed. */
  async devices(user: string): Promise<ContactDevice[]> {
    await this.machine.updateTrackedUsers([new UserId(user)]);
    await this.sendOutgoing();
    return this.verifications.devices(user);
  }

  /** Trust `device` of `user`: its fingerprint was compared by another channel. */
  async markVerified(user: string, device: string): Promise<void> {
    await this.verifications.markVerified(user, device);
  }

  /** Ask `device` of `user` to verify by emoji; answers the flow's id. */
  async requestVerification(user: string, device: string): Promise<string> {
    await this.machine.updateTrackedUsers([new UserId(user)]);
    await this.sendOutgoing();
    return this.verifications.request(user, device);
  }

  /** Takes the flow's automatic steps, sends what the machine queued (keys, MACs), answers the flow as shown. */
  async stepVerification(flowId: string): Promise<VerificationView | null> {
    const view = await this.verifications.step(flowId);
    await this.sendOutgoing();
    return this.verifications.view(flowId) ?? view;
  }

  /** Accept someone's request; then the flow as shown. */
  async acceptVerification(flowId: string): Promise<VerificationView | null> {
    await this.verifications.accept(flowId);
    return this.stepVerification(flowId);
  }

  /** The emoji match; then the flow as shown. */
  async confirmVerification(flowId: string): Promise<VerificationView | null> {
    await this.verifications.confirm(flowId);
    return this.stepVerification(flowId);
  }

  /** Decline, cancel, or say the emoji do not match; then the flow as shown. */
  async cancelVerification(flowId: string, code: 'm.user' | 'm.mismatched_sas'): Promise<VerificationView | null> {
    await this.verifications.cancel(flowId, code);
    return this.stepVerification(flowId);
  }

  /**
   * The flows still under way, as shown now, after the machine had its
   * chance to time them out (it does so when handed sync changes, even
   * none, and queues the cancellation for the other side).
   */
  async activeVerifications(): Promise<VerificationView[]> {
    const active = this.verifications.active();
    if (active.length === 0) return [];
    const processed = await this.machine.receiveSyncChanges('[]', new DeviceLists(), new Map(), undefined, untrusted());
    for (const p of processed) p.free();
    await this.sendOutgoing();
    return active.flatMap((id) => this.verifications.view(id) ?? []);
  }

  /** Forget a finished flow. */
  forgetVerification(flowId: string): void {
    this.verifications.forget(flowId);
  }

  /** Sends every request the machine has waiting and hands back the answers. */
  private async sendOutgoing(): Promise<void> {
    for (const request of await this.machine.outgoingRequests()) {
      const body = JSON.parse(request.body);
      let answer: unknown;
      switch (request.type) {
        case RequestType.KeysUpload:
          try {
            answer = await this.api.uploadKeys({ device_keys: body.device_keys, one_time_keys: body.one_time_keys, fallback_keys: body.fallback_keys });
          } catch (e) {
            if (e instanceof HarkError && e.code === 'key_conflict') throw new KeyConflict(e.message);
            throw e;
          }
          break;
        case RequestType.KeysQuery:
          answer = await this.api.queryKeys({ device_keys: body.device_keys });
          break;
        case RequestType.KeysClaim:
          answer = await this.api.claimKeys({ one_time_keys: body.one_time_keys });
          break;
        case RequestType.ToDevice: {
          const toDevice = request as unknown as { event_type: string; txn_id: string };
          await this.api.sendToDevice(toDevice.event_type, toDevice.txn_id, { messages: body.messages });
          answer = {};
          break;
        }
        default:
          // Cross-signing, in-chat verification and key backup are not
          // served: left waiting, the machine asks again later.
          continue;
      }
      await this.machine.markRequestAsSent(request.id ?? '', request.type, JSON.stringify(answer));
    }
  }
}

/** The library trusts a device it has keys for; verification comes later. */
function untrusted(): DecryptionSettings {
  return new DecryptionSettings(TrustRequirement.Untrusted);
}
