// Where a device keeps what must survive a page reload: its session (token),
// its cursor in the event stream and its outbox. Keys are per server origin,
// and cursor and outbox per device, so two servers or two accounts never mix.

import type { OutboxEntry } from './outbox';
import type { Device, Pos, User } from './types';

/** The state of one device that the Connection persists. */
export interface DeviceStore {
  loadCursor(): Pos | null;
  saveCursor(pos: Pos): void;
  loadOutbox(): OutboxEntry[];
  saveOutbox(entries: OutboxEntry[]): void;
  clear(): void;
}

export interface Session {
  token: string;
  user: User;
  device: Device;
  /**
   * The server once said this device is held back by nothing (`GET
   * /v1/me`): later starts open the messenger at once, and a refusal
   * (`device_not_approved`, `two_factor_setup_required`) brings the check back.
   */
  cleared?: boolean;
}

/** Something shaped like `window.localStorage`. */
export interface KeyValue {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

function prefix(server: string): string {
  return `hark:${server}`;
}

export function loadSession(server: string, kv: KeyValue = localStorage): Session | null {
  try {
    const raw = kv.getItem(`${prefix(server)}:session`);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export function saveSession(server: string, session: Session | null, kv: KeyValue = localStorage): void {
  const key = `${prefix(server)}:session`;
  if (session) kv.setItem(key, JSON.stringify(session));
  else kv.removeItem(key);
}

export function deviceStore(server: string, deviceId: number, kv: KeyValue = localStorage): DeviceStore {
  const base = `${prefix(server)}:device:${deviceId}`;
  return {
    loadCursor() {
      const raw = kv.getItem(`${base}:cursor`);
      const n = raw === null ? NaN : Number(raw);
      return Number.isSafeInteger(n) && n >= 0 ? n : null;
    },
    saveCursor(pos) {
      kv.setItem(`${base}:cursor`, String(pos));
    },
    loadOutbox() {
      try {
        const raw = kv.getItem(`${base}:outbox`);
        const parsed = raw ? (JSON.parse(raw) as OutboxEntry[]) : [];
        return Array.isArray(parsed) ? parsed : [];
      } catch {
        return [];
      }
    },
    saveOutbox(entries) {
      if (entries.length === 0) kv.removeItem(`${base}:outbox`);
      else kv.setItem(`${base}:outbox`, JSON.stringify(entries));
    },
    clear() {
      kv.removeItem(`${base}:cursor`);
      kv.removeItem(`${base}:outbox`);
    },
  };
}

/** An in-memory store, for tests and tools that should not persist. */
export function memoryStore(): DeviceStore {
  let cursor: Pos | null = null;
  let outbox: OutboxEntry[] = [];
  return {
    loadCursor: () => cursor,
    saveCursor: (p) => void (cursor = p),
    loadOutbox: () => outbox,
    saveOutbox: (e) => void (outbox = [...e]),
    clear: () => {
      cursor = null;
      outbox = [];
    },
  };
}
