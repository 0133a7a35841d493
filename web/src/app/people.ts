// The people of one's own account: contacts (an address book of one's own,
// nobody is told) and the users one blocked, as the server keeps them
// (`/v1/contacts`, `/v1/blocks`). Read again on every connection and when
// Settings opens, since another device of the account may have changed them.

import type { HarkApi, User, UserId } from '../hark-client';

export class People {
  /** By id; null until the server answered. */
  contacts: Map<UserId, User> | null = null;
  blocked: Map<UserId, User> | null = null;

  constructor(
    private readonly api: HarkApi,
    /** Something changed: the app renders again. */
    private readonly changed: () => void,
  ) {}

  /** Read both lists from the server; on failure what was known stays (a button press tries again). */
  async load(): Promise<void> {
    try {
      const [contacts, blocked] = await Promise.all([this.api.contacts(), this.api.blocks()]);
      this.contacts = byId(contacts);
      this.blocked = byId(blocked);
      this.changed();
    } catch (e) {
      console.warn('hark: could not read contacts and blocked users', e);
    }
  }

  isContact(id: UserId): boolean {
    return !!this.contacts?.has(id);
  }

  isBlocked(id: UserId): boolean {
    return !!this.blocked?.has(id);
  }

  async addContact(user: User): Promise<void> {
    await this.api.addContact(user.id);
    this.contacts = new Map(this.contacts ?? []).set(user.id, user);
    this.changed();
  }

  async removeContact(id: UserId): Promise<void> {
    await this.api.removeContact(id);
    const next = new Map(this.contacts ?? []);
    next.delete(id);
    this.contacts = next;
    this.changed();
  }

  async block(user: User): Promise<void> {
    await this.api.block(user.id);
    this.blocked = new Map(this.blocked ?? []).set(user.id, user);
    this.changed();
  }

  async unblock(id: UserId): Promise<void> {
    await this.api.unblock(id);
    const next = new Map(this.blocked ?? []);
    next.delete(id);
    this.blocked = next;
    this.changed();
  }

  /** Contacts as the lists show them: by name. */
  contactList(): User[] {
    return byName([...(this.contacts?.values() ?? [])]);
  }

  blockedList(): User[] {
    return byName([...(this.blocked?.values() ?? [])]);
  }

  /**
   * Contacts whose username starts with `q` or whose name contains it (any
   * case), for a search that shows them before anyone else.
   */
  matchingContacts(q: string): User[] {
    const needle = q.trim().replace(/^@/, '').toLowerCase();
    if (!needle) return this.contactList();
    return this.contactList().filter((u) => u.username.toLowerCase().startsWith(needle) || u.display_name.toLowerCase().includes(needle));
  }

  /**
   * Search results with contacts first: the contacts matching `q`, then
   * the others the server found (each once, otherwise in the server's order).
   */
  contactsFirst(q: string, found: User[], me: UserId): User[] {
    const contacts = [...this.matchingContacts(q), ...found.filter((u) => this.isContact(u.id))];
    const seen = new Set<UserId>([me]);
    const out: User[] = [];
    for (const u of [...contacts, ...found]) {
      if (seen.has(u.id)) continue;
      seen.add(u.id);
      out.push(u);
    }
    return out;
  }
}

function byId(users: User[]): Map<UserId, User> {
  return new Map(users.map((u) => [u.id, u]));
}

function byName(users: User[]): User[] {
  return users.sort((a, b) => a.display_name.localeCompare(b.display_name) || a.username.localeCompare(b.username));
}
