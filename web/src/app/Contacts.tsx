// Contacts and blocking in the UI: the chat header's menu items and the
// contact info's buttons for a one-to-one chat's other person, the bar that
// stands in for the composer while you block them (or once they deleted
// their account), and the Contacts and Blocked users cards of Settings. The
// lists themselves live in people.ts.

import type { User } from '../hark-client';
import type { AppStore } from './store';
import { PersonAvatar } from './Profile';
import { BotBadge, errorText } from './ui';

/** Ask, then block `user`: nothing reaches either of you until you unblock. Resolves whether it happened. */
export async function askToBlock(store: AppStore, user: User): Promise<boolean> {
  const ok = await store.ask({
    title: `Block ${user.display_name}?`,
    body: `Blocked people can't send you messages or reactions, see when you're online, or add you to groups. ${user.display_name} is not told. Your chat stays.`,
    confirm: 'Block',
    danger: true,
  });
  if (!ok) return false;
  return act(store, () => store.people.block(user), 'Could not block');
}

export function unblock(store: AppStore, user: User): Promise<boolean> {
  return act(store, () => store.people.unblock(user.id), 'Could not unblock');
}

export function toggleContact(store: AppStore, user: User): Promise<boolean> {
  return store.people.isContact(user.id)
    ? act(store, () => store.people.removeContact(user.id), 'Could not remove the contact')
    : act(store, () => store.people.addContact(user), 'Could not add the contact');
}

/** Run a change; a refusal shows for a few seconds (in the chat, or above the list). */
async function act(store: AppStore, f: () => Promise<void>, what: string): Promise<boolean> {
  try {
    await f();
    return true;
  } catch (e) {
    store.flash(`${what}: ${errorText(e, 'people')}`);
    return false;
  }
}

/** The chat header menu's items for a one-to-one chat's other person. */
export function PersonMenuItems(props: { store: AppStore; user: User; onClose: () => void }) {
  const { store, user } = props;
  const contact = store.people.isContact(user.id);
  const blocked = store.people.isBlocked(user.id);
  const run = (f: () => Promise<unknown>) => {
    props.onClose();
    void f();
  };
  return (
    <>
      <button role="menuitem" data-testid={contact ? 'chat-menu-remove-contact' : 'chat-menu-add-contact'} onClick={() => run(() => toggleContact(store, user))}>
        <PersonIcon /> {contact ? 'Remove from contacts' : 'Add to contacts'}
      </button>
      <button role="menuitem" class={blocked ? undefined : 'danger'} data-testid={blocked ? 'chat-menu-unblock' : 'chat-menu-block'} onClick={() => run(() => (blocked ? unblock(store, user) : askToBlock(store, user)))}>
        <BlockIcon /> {blocked ? `Unblock ${user.display_name}` : `Block ${user.display_name}`}
      </button>
    </>
  );
}

/** The contact info's card: add to / remove from contacts, block / unblock. */
export function PersonActions(props: { store: AppStore; user: User }) {
  const { store, user } = props;
  const contact = store.people.isContact(user.id);
  const blocked = store.people.isBlocked(user.id);
  return (
    <section class="card person-actions-card" data-testid="person-actions">
      {contact && (
        <p class="muted contact-tag" data-testid="info-contact">
          In your contacts
        </p>
      )}
      <button class="action-row" data-testid={contact ? 'info-remove-contact' : 'info-add-contact'} onClick={() => void toggleContact(store, user)}>
        <PersonIcon /> {contact ? 'Remove from contacts' : 'Add to contacts'}
      </button>
      <button
        class={`action-row ${blocked ? '' : 'danger'}`}
        data-testid={blocked ? 'info-unblock' : 'info-block'}
        onClick={() => void (blocked ? unblock(store, user) : askToBlock(store, user))}
      >
        <BlockIcon /> {blocked ? `Unblock ${user.display_name}` : `Block ${user.display_name}`}
      </button>
    </section>
  );
}

/** In place of the composer while you block the chat's other person. */
export function BlockedBar(props: { store: AppStore; user: User }) {
  const { store, user } = props;
  return (
    <footer class="composer blocked-bar" data-testid="blocked-bar">
      <span dir="auto">You blocked {user.display_name}.</span>
      <button class="text-btn" data-testid="blocked-bar-unblock" onClick={() => void unblock(store, user)}>
        Unblock
      </button>
    </footer>
  );
}

/** In place of the composer once the chat's other person deleted their account: the chat takes no new messages. */
export function DeletedBar() {
  return (
    <footer class="composer blocked-bar" data-testid="deleted-bar">
      <span>This account was deleted</span>
    </footer>
  );
}

/** Settings → Contacts: one's own address book. A row opens the chat with them. */
export function ContactsCard(props: { store: AppStore; onOpen: () => void }) {
  const { store } = props;
  const contacts = store.people.contacts === null ? null : store.people.contactList();
  return (
    <section class="settings-card" data-testid="contacts">
      <h3>Contacts</h3>
      {contacts === null && <p class="settings-note">Loading…</p>}
      {contacts?.length === 0 && (
        <p class="settings-note" data-testid="no-contacts">
          No contacts yet. Add people from a chat's menu or their contact info; they come first when you start a new chat.
        </p>
      )}
      {contacts?.map((u) => (
        <div class="person" key={u.id} data-testid="contact" data-username={u.username}>
          <button
            class="person-open"
            aria-label={`Message ${u.display_name}`}
            data-testid="contact-open"
            onClick={() => {
              props.onOpen();
              void store.startDirect(u.id).catch((e) => store.flash(`Could not open the chat: ${errorText(e, 'people')}`));
            }}
          >
            <PersonAvatar store={store} user={u} name={u.display_name} size={40} />
            <span class="person-text">
              <span class="person-name" dir="auto">
                {u.display_name}
                <BotBadge user={u} />
              </span>
              <span class="muted">@{u.username}</span>
            </span>
          </button>
          <button class="text-btn danger" data-testid="contact-remove" aria-label={`Remove ${u.display_name} from contacts`} onClick={() => void toggleContact(store, u)}>
            Remove
          </button>
        </div>
      ))}
    </section>
  );
}

/** Settings → Blocked users, each with Unblock. */
export function BlockedCard(props: { store: AppStore }) {
  const { store } = props;
  const blocked = store.people.blocked === null ? null : store.people.blockedList();
  return (
    <section class="settings-card" data-testid="blocked-users">
      <h3>Blocked users</h3>
      {blocked === null && <p class="settings-note">Loading…</p>}
      {blocked?.length === 0 && (
        <p class="settings-note" data-testid="no-blocked">
          Nobody. Block someone from their chat's menu or contact info.
        </p>
      )}
      {blocked?.map((u) => (
        <div class="person" key={u.id} data-testid="blocked-user" data-username={u.username}>
          <PersonAvatar store={store} user={u} name={u.display_name} size={40} />
          <div class="person-text">
            <div class="person-name" dir="auto">
              {u.display_name}
              <BotBadge user={u} />
            </div>
            <div class="muted">@{u.username}</div>
          </div>
          <button class="text-btn" data-testid="blocked-user-unblock" aria-label={`Unblock ${u.display_name}`} onClick={() => void unblock(store, u)}>
            Unblock
          </button>
        </div>
      ))}
      {blocked !== null && blocked.length > 0 && (
        <p class="settings-note">They can't message you, see when you're online, or add you to groups. They are not told.</p>
      )}
    </section>
  );
}

/** A person with a plus: contacts. */
function PersonIcon() {
  return (
    <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
      <path fill="currentColor" d="M15 12c2.21 0 4-1.79 4-4s-1.79-4-4-4-4 1.79-4 4 1.79 4 4 4zm-9-2V7H4v3H1v2h3v3h2v-3h3v-2H6zm9 4c-2.67 0-8 1.34-8 4v2h16v-2c0-2.66-5.33-4-8-4z" />
    </svg>
  );
}

/** A circle struck through: block. */
function BlockIcon() {
  return (
    <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
      <path fill="currentColor" d="M12 2C6.48 2 2 6.48 2 12s4.48 10 10 10 10-4.48 10-10S17.52 2 12 2zM4 12c0-4.42 3.58-8 8-8 1.85 0 3.55.63 4.9 1.69L5.69 16.9A7.902 7.902 0 0 1 4 12zm8 8c-1.85 0-3.55-.63-4.9-1.69L18.31 7.1A7.902 7.902 0 0 1 20 12c0 4.42-3.58 8-8 8z" />
    </svg>
  );
}
