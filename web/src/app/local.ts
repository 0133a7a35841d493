// What this browser keeps for the app beyond the protocol's cursor and
// outbox: group event lines applied live (history carries them too, so these
// only show them before history is loaded, offline) and the lines of
// disappearing-message timer changes, drafts per chat, and the colour theme. Kept per device; logging out forgets them.

import type { ChatId, Pos, Seq, UserId } from '../hark-client';

/**
 * An event line ("Alice added Carol", "Alice turned on disappearing
 * messages…"), placed after the message it followed.
 */
export interface Note {
  /** The seq of the message the event followed: the line goes below that message. */
  afterSeq: Seq;
  /** The event's position in my stream: the same line live and from history. Absent in lines kept before history carried them. */
  pos?: Pos;
  kind: 'chat_created' | 'chat_renamed' | 'member_added' | 'member_removed' | 'admin_changed' | 'disappearing_changed';
  by: UserId;
  user_id?: UserId;
  title?: string | null;
  admin?: boolean;
  /** `disappearing_changed`: the new timer in seconds (0: off). */
  seconds?: number;
  /** Names as known when the event was applied (members who left are no longer listed). */
  names: Record<number, string>;
}

/** At most this many lines are kept per chat. */
const NOTES_PER_CHAT = 100;

function get<T>(key: string, fallback: T): T {
  try {
    const raw = localStorage.getItem(key);
    return raw === null ? fallback : (JSON.parse(raw) as T);
  } catch {
    return fallback;
  }
}

function put(key: string, value: unknown): void {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or disabled: the app works on without it.
  }
}

export class DeviceLocal {
  private readonly base: string;
  private notes: Record<number, Note[]>;
  private drafts: Record<number, string>;
  private memoryDrafts = new Map<ChatId, string>();

  constructor(origin: string, deviceId: number) {
    this.base = `hark:${origin}:device:${deviceId}`;
    this.notes = get(`${this.base}:notes`, {});
    this.drafts = get(`${this.base}:drafts`, {});
  }

  notesOf(chatId: ChatId): Note[] {
    return this.notes[chatId] ?? [];
  }

  addNote(chatId: ChatId, note: Note): void {
    if (note.pos !== undefined && this.notesOf(chatId).some((n) => n.pos === note.pos)) return;
    this.notes[chatId] = [...this.notesOf(chatId), note].slice(-NOTES_PER_CHAT);
    put(`${this.base}:notes`, this.notes);
  }

  draft(chatId: ChatId): string {
    return this.memoryDrafts.get(chatId) ?? this.drafts[chatId] ?? '';
  }

  /**
   * Keep the draft of a chat. `persist` false (an end-to-end encrypted
   * chat's): in this page's memory only, so no plaintext of an encrypted
   * chat lands in localStorage.
   */
  setDraft(chatId: ChatId, text: string, persist = true): void {
    if (!persist) {
      if (text) this.memoryDrafts.set(chatId, text);
      else this.memoryDrafts.delete(chatId);
      if (this.drafts[chatId] === undefined) return;
      text = '';
    } else this.memoryDrafts.delete(chatId);
    if ((this.drafts[chatId] ?? '') === text) return;
    if (text) this.drafts[chatId] = text;
    else delete this.drafts[chatId];
    put(`${this.base}:drafts`, this.drafts);
  }

  clear(): void {
    put(`${this.base}:notes`, null);
    put(`${this.base}:drafts`, null);
    this.notes = {};
    this.drafts = {};
    this.memoryDrafts.clear();
  }
}

export type Theme = 'system' | 'light' | 'dark';
const THEME_KEY = 'hark:theme';

/** The theme chosen on this device ("system" follows prefers-color-scheme). */
export function loadTheme(): Theme {
  const t = get<string>(THEME_KEY, 'system');
  return t === 'light' || t === 'dark' ? t : 'system';
}

const systemDark = window.matchMedia('(prefers-color-scheme: dark)');
let followsSystem = false;

/** Sets `data-theme` on the root, the one switch the stylesheet reads:
 * "system" resolves to the system's scheme now and whenever it changes. */
export function applyTheme(theme: Theme): void {
  put(THEME_KEY, theme === 'system' ? null : theme);
  followsSystem = theme === 'system';
  const resolved = followsSystem ? (systemDark.matches ? 'dark' : 'light') : theme;
  document.documentElement.setAttribute('data-theme', resolved);
}

systemDark.addEventListener('change', () => {
  if (followsSystem) applyTheme('system');
});

/** Whether two lines say the same thing (for lines kept without a position). */
export function sameNote(a: Note, b: Note): boolean {
  return a.kind === b.kind && a.by === b.by && a.user_id === b.user_id && (a.title ?? null) === (b.title ?? null) && a.admin === b.admin && a.seconds === b.seconds;
}
