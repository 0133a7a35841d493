// The left column: profile header, connection banner, search, chat list,
// and the "new chat" / "new group" flows.

import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Device, PrivacySettings, User, Visibility } from '../hark-client';
import { DeleteAccountCard, PasswordCard, TwoFactorCard } from './Account';
import { DeviceApprovalSetting } from './DeviceApproval';
import { ChatRowMenu, useDismiss, useMenuKeys } from './ChatMenu';
import { BlockedCard, ContactsCard } from './Contacts';
import { EncryptionBanner, EncryptionCard, LockIcon } from './Encryption';
import { BotsCard } from './Bots';
import { ExportCard } from './Export';
import { applyTheme, loadTheme, type Theme } from './local';
import { NotificationsBanner, NotificationsCard } from './Notifications';
import { PersonAvatar, ProfileCard } from './Profile';
import { SearchResults, useMessageSearch } from './Search';
import type { AppStore, ChatModel } from './store';
import {
  ArchiveIcon,
  Avatar,
  BackIcon,
  CheckIcon,
  ChevronIcon,
  DotsIcon,
  errorText,
  ForwardIcon,
  GroupIcon,
  listTime,
  LogoutIcon,
  MutedIcon,
  NewChatIcon,
  LaptopIcon,
  PencilIcon,
  PinIcon,
  SearchBox,
  SearchIcon,
  SettingsIcon,
  ShieldIcon,
  Ticks,
  BotBadge,
} from './ui';

type Mode = 'list' | 'archived' | 'new-chat' | 'new-group' | 'settings';

/** Users whose username starts with `q`, refreshed as the query changes (debounced). */
function useUserSearch(store: AppStore, q: string): User[] {
  const [users, setUsers] = useState<User[]>([]);
  useEffect(() => {
    const query = q.trim().replace(/^@/, '');
    if (!query) {
      setUsers([]);
      return;
    }
    let cancelled = false;
    const t = setTimeout(() => {
      store.api
        .searchUsers(query)
        .then((u) => !cancelled && setUsers(u.filter((x) => x.id !== store.me.id)))
        .catch(() => !cancelled && setUsers([]));
    }, 150);
    return () => {
      cancelled = true;
      clearTimeout(t);
    };
  }, [q, store]);
  return users;
}

/** `onAdmin` opens Administration (offered to server admins only). */
export function Sidebar(props: { store: AppStore; onAdmin?: () => void }) {
  const { store } = props;
  const [mode, setMode] = useState<Mode>('list');
  return (
    <aside class="sidebar">
      {mode === 'list' && <ChatListView store={store} setMode={setMode} onAdmin={props.onAdmin} />}
      {mode === 'archived' && <ArchivedView store={store} onDone={() => setMode('list')} />}
      {mode === 'new-chat' && <NewChatView store={store} onDone={() => setMode('list')} />}
      {mode === 'new-group' && <NewGroupView store={store} onDone={() => setMode('list')} />}
      {mode === 'settings' && <SettingsView store={store} onDone={() => setMode('list')} />}
    </aside>
  );
}

/** "Reconnecting…" while the socket is down: in the list, and on phones also above the chat. */
export function ConnectionBanner(props: { store: AppStore; testid?: string }) {
  const { status, pending, held } = props.store.connState;
  if (status === 'live' && held && pending.length > 0) {
    // Connected, but the server asks to wait (its disk full, its database behind).
    const waiting = pending.length;
    const seconds = Math.max(1, Math.round(held.retryInMs / 1000));
    return (
      <div class="banner" role="status" data-testid={`${props.testid ?? 'conn-banner'}-held`} data-code={held.code}>
        <div class="banner-dot" />
        <div>
          <div class="banner-title">Waiting for the server</div>
          <div class="banner-sub">
            {`It can't take messages right now (${held.message}). ${waiting} message${waiting === 1 ? '' : 's'} will be sent by ${waiting === 1 ? 'itself' : 'themselves'}; next try in ${seconds} s.`}
          </div>
        </div>
      </div>
    );
  }
  if (status === 'live' || status === 'syncing' || status === 'closed') return null;
  const waiting = pending.length;
  const offline = typeof navigator !== 'undefined' && navigator.onLine === false;
  return (
    <div class="banner" role="status" data-testid={props.testid ?? 'conn-banner'} data-offline={offline ? 'true' : undefined}>
      <div class="banner-dot" />
      <div>
        <div class="banner-title">{status === 'reconnecting' ? 'Reconnecting…' : 'Connecting…'}</div>
        <div class="banner-sub">
          {offline ? 'You are offline. ' : ''}
          {waiting > 0
            ? `${waiting} message${waiting === 1 ? '' : 's'} will be sent when you're back online.`
            : 'Messages you write are sent once the connection is back.'}
        </div>
      </div>
    </div>
  );
}

function ChatListView(props: { store: AppStore; setMode: (m: Mode) => void; onAdmin?: () => void }) {
  const { store, setMode } = props;
  const [q, setQ] = useState('');
  const [menu, setMenu] = useState(false);
  // Whether this user is a server admin may have changed (another admin, or
  // `hark admin grant` on the server): ask again each time the menu opens.
  useEffect(() => {
    if (menu) void store.refreshRole();
  }, [menu, store]);
  useDismiss(menu, () => setMenu(false));
  const menuRef = useRef<HTMLDivElement>(null);
  useMenuKeys(menuRef, menu, () => setMenu(false));
  const users = useUserSearch(store, q);
  const messages = useMessageSearch(store, q);
  const needle = q.trim().toLowerCase();
  // Searching covers archived chats too; the plain list hides them behind the "Archived" row.
  const chats = needle ? store.sortedChats().filter((c) => store.title(c).toLowerCase().includes(needle)) : store.listChats(false);
  const archived = store.listChats(true);
  const directWith = new Set(store.sortedChats().map((c) => store.peer(c)?.id).filter((x) => x !== undefined));
  // Contacts first (those the server's username search missed too, found by name here).
  const newPeople = needle ? store.people.contactsFirst(q, users, store.me.id).filter((u) => !directWith.has(u.id)) : [];

  return (
    <>
      <header class="side-header">
        <div class="me" title={`@${store.me.username}`}>
          <PersonAvatar store={store} user={store.me} name={store.me.display_name} size={40} />
          <span class="me-name" dir="auto" data-testid="me-name">{store.me.display_name}</span>
        </div>
        <div class="header-actions">
          <button class="icon-btn" title="New group" aria-label="New group" data-testid="new-group" onClick={() => setMode('new-group')}>
            <GroupIcon />
          </button>
          <button class="icon-btn" title="New chat" aria-label="New chat" data-testid="new-chat" onClick={() => setMode('new-chat')}>
            <NewChatIcon />
          </button>
          <div class="menu-wrap">
            <button class="icon-btn" title="Menu" aria-label="Menu" aria-haspopup="menu" aria-expanded={menu} data-testid="menu" onClick={() => setMenu(!menu)}>
              <DotsIcon />
            </button>
            {menu && (
              <div class="menu" role="menu" aria-label="Menu" ref={menuRef} data-role={store.role ?? undefined}>
                <div class="menu-who" role="presentation">
                  Signed in as <b>@{store.me.username}</b>
                  <br />
                  <span>{store.session.device.name}</span>
                </div>
                <button
                  role="menuitem"
                  data-testid="settings"
                  onClick={() => {
                    setMenu(false);
                    setMode('settings');
                  }}
                >
                  <SettingsIcon /> Settings and devices
                </button>
                {store.role === 'admin' && props.onAdmin && (
                  <button
                    role="menuitem"
                    data-testid="admin-open"
                    onClick={() => {
                      setMenu(false);
                      props.onAdmin?.();
                    }}
                  >
                    <ShieldIcon /> Administration
                  </button>
                )}
                <button role="menuitem" data-testid="logout" onClick={() => void store.logout()}>
                  <LogoutIcon /> Log out
                </button>
              </div>
            )}
          </div>
        </div>
      </header>
      <ConnectionBanner store={store} />
      <EncryptionBanner store={store} />
      <NotificationsBanner store={store} />
      <SearchBox label="Search chats, messages or people" value={q} testId="search" onInput={setQ} />
      {store.notice && !store.openChatId && (
        <div class="notice" role="alert">
          {store.notice}
        </div>
      )}
      <div class="list" data-testid="chat-list">
        {!needle && archived.length > 0 && (
          <button class="row archived-row" data-testid="archived-row" onClick={() => setMode('archived')}>
            <span class="archived-icon">
              <ArchiveIcon />
            </span>
            <span class="archived-label">Archived</span>
            <span class="archived-count" data-testid="archived-count">{archived.length}</span>
          </button>
        )}
        {needle && chats.length > 0 && <div class="list-section">Chats</div>}
        <ChatRows store={store} chats={chats} />
        {needle && newPeople.length > 0 && <div class="list-section">People</div>}
        {needle &&
          newPeople.map((u) => (
            <UserRow
              key={u.id}
              user={u}
              testid="user-result"
              contact={store.people.isContact(u.id)}
              onClick={() => {
                setQ('');
                void store.startDirect(u.id);
              }}
            />
          ))}
        {needle && <div class="list-section">Messages</div>}
        {needle && <SearchResults store={store} search={messages} showChat onOpen={(m) => void store.openChatAt(m.chat_id, m.seq)} />}
        {store.ready && chats.length === 0 && archived.length === 0 && !needle && (
          <div class="list-empty">
            <p>No chats yet.</p>
            <p>Search for someone by username above, or start a group.</p>
          </div>
        )}
      </div>
    </>
  );
}

/** Chat rows with their menu (the chevron on hover, or a right click). */
function ChatRows(props: { store: AppStore; chats: ChatModel[] }) {
  const { store } = props;
  const [menu, setMenu] = useState<{ chatId: number; x: number; y: number } | null>(null);
  const menuChat = menu ? store.chats.get(menu.chatId) : undefined;
  return (
    <>
      {props.chats.map((c) => (
        <ChatRow key={c.chat.id} store={store} model={c} menuOpen={menu?.chatId === c.chat.id} onMenu={(x, y) => setMenu({ chatId: c.chat.id, x, y })} />
      ))}
      {menu && menuChat && <ChatRowMenu store={store} model={menuChat} x={menu.x} y={menu.y} onClose={() => setMenu(null)} />}
    </>
  );
}

function ArchivedView(props: { store: AppStore; onDone: () => void }) {
  const { store } = props;
  const chats = store.listChats(true);
  return (
    <>
      <PanelHeader title="Archived" onBack={props.onDone} />
      <div class="list" data-testid="archived-list">
        <div class="archived-note">These chats stay archived when new messages arrive.</div>
        <ChatRows store={store} chats={chats} />
        {chats.length === 0 && <div class="list-empty">No archived chats.</div>}
      </div>
    </>
  );
}

function ChatRow(props: { store: AppStore; model: ChatModel; menuOpen: boolean; onMenu: (x: number, y: number) => void }) {
  const { store, model } = props;
  const title = store.title(model);
  const unread = store.unread(model);
  const last = model.lastMessage;
  const pending = store.pending(model.chat.id);
  const lastPending = pending[pending.length - 1];
  const group = model.chat.kind === 'group';
  let preview: ComponentChildren = <span class="preview-text">{group ? 'Group created' : 'No messages yet'}</span>;
  let time = model.chat.created_at;
  if (lastPending) {
    preview = (
      <>
        <Ticks tick="pending" />
        <span class="preview-text" dir="auto">{store.summary(lastPending)}</span>
      </>
    );
    time = lastPending.queued_at;
  } else if (last) {
    const mine = last.sender_id === store.me.id;
    time = last.sent_at;
    preview = (
      <>
        {mine && <Ticks tick={store.tick(model, last.seq)} />}
        {!mine && group && <span class="preview-sender" dir="auto">{store.userName(model, last.sender_id)}:&nbsp;</span>}
        {last.forwarded && !last.deleted && (
          <span class="preview-icon" title="Forwarded">
            <ForwardIcon size={15} />
          </span>
        )}
        <span class="preview-text" dir="auto">{last.deleted ? (mine ? 'You deleted this message' : 'This message was deleted') : store.summary(last)}</span>
      </>
    );
  }
  const draft = store.openChatId === model.chat.id ? '' : store.local.draft(model.chat.id);
  if (draft) {
    preview = (
      <>
        <span class="preview-draft">Draft:&nbsp;</span>
        <span class="preview-text" dir="auto" data-testid="draft-preview">{draft}</span>
      </>
    );
  }
  const typing = store.typingLabel(model);
  if (typing) preview = <span class="preview-text typing" data-testid="typing">{typing}</span>;
  const active = store.openChatId === model.chat.id;
  const muted = store.isMuted(model);
  const pinned = store.isPinned(model);
  // The row and its menu button are siblings: a button inside a button is
  // not allowed (and screen readers cannot reach the inner one).
  return (
    <div
      class={`row-wrap ${props.menuOpen ? 'menu-open' : ''}`}
      data-testid="chat-row"
      data-chat-id={model.chat.id}
      data-pinned={pinned ? 'true' : undefined}
      data-muted={muted ? 'true' : undefined}
    >
    <div
      role="button"
      tabIndex={0}
      aria-current={active ? 'true' : undefined}
      class={`row ${active ? 'active' : ''} ${unread > 0 ? 'has-unread' : ''} ${muted ? 'is-muted' : ''}`}
      onClick={() => void store.openChat(model.chat.id)}
      onKeyDown={(e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          void store.openChat(model.chat.id);
        } else if (e.key === 'ContextMenu' || (e.key === 'F10' && e.shiftKey)) {
          e.preventDefault();
          const r = e.currentTarget.getBoundingClientRect();
          props.onMenu(r.right - 240, r.bottom);
        }
      }}
      onContextMenu={(e) => {
        e.preventDefault();
        e.stopPropagation();
        props.onMenu(e.clientX, e.clientY);
      }}
    >
      <PersonAvatar store={store} user={store.peer(model)} name={title} id={model.chat.id * 7} group={group} />
      <div class="row-body">
        <div class="row-top">
          <span class="row-title" dir="auto" data-testid="chat-title">{title}</span>
          {!group && <BotBadge user={store.peer(model)} />}
          {store.isEncrypted(model) && (
            <span class="row-lock" title="End-to-end encrypted" data-testid="row-lock">
              <LockIcon size={13} title="End-to-end encrypted" />
            </span>
          )}
          <span class="row-time">{listTime(time)}</span>
        </div>
        <div class="row-bottom">
          <span class="row-preview" data-testid="chat-preview">{preview}</span>
          {muted && (
            <span class="row-icon" title="Muted" data-testid="muted-icon">
              <MutedIcon />
            </span>
          )}
          {unread > 0 && (
            <span class="badge" data-testid="unread-badge" aria-label={`${unread} unread message${unread === 1 ? '' : 's'}`} role="img">
              {unread > 99 ? '99+' : unread}
            </span>
          )}
          {pinned && (
            <span class="row-icon" title="Pinned" data-testid="pin-icon">
              <PinIcon />
            </span>
          )}

        </div>
      </div>
    </div>
    <button
      class="row-menu-btn"
      aria-label="Chat options"
      data-testid="chat-row-menu"
      onClick={(e) => {
        e.stopPropagation();
        const r = e.currentTarget.getBoundingClientRect();
        props.onMenu(r.left, r.bottom + 4);
      }}
    >
      <ChevronIcon />
    </button>
    </div>
  );
}

function UserRow(props: { user: User; onClick: () => void; selected?: boolean; testid?: string; contact?: boolean }) {
  const { user } = props;
  return (
    <button
      class={`row user-row ${props.selected ? 'selected' : ''}`}
      data-testid={props.testid}
      data-username={user.username}
      data-contact={props.contact ? 'true' : undefined}
      onClick={props.onClick}
    >
      <Avatar name={user.display_name} id={user.id} size={44} />
      <div class="row-body">
        <div class="row-top">
          <span class="row-title" dir="auto">{user.display_name}</span>
          <BotBadge user={user} />
        </div>
        <div class="row-bottom">
          <span class="row-preview">@{user.username}</span>
        </div>
      </div>
      {props.selected && (
        <span class="check">
          <CheckIcon />
        </span>
      )}
    </button>
  );
}

function PanelHeader(props: { title: string; onBack: () => void }) {
  return (
    <header class="side-header drawer-header">
      <button class="icon-btn" aria-label="Back" data-testid="back" onClick={props.onBack}>
        <BackIcon />
      </button>
      <h2>{props.title}</h2>
    </header>
  );
}

/**
 * "End-to-end encrypted", on by default (as in WhatsApp): a new chat's
 * messages are then readable by its members' devices only. Off, a chat can
 * carry what encrypted chats cannot yet (files, edits, forwards).
 */
function EncryptedSwitch(props: { on: boolean; onChange: (on: boolean) => void; what: string }) {
  return (
    <label class="e2e-switch" data-testid="e2e-switch">
      <LockIcon size={18} />
      <span class="e2e-switch-text">
        <span>End-to-end encrypted</span>
        <span class="muted">
          {props.on
            ? `Only the people in this ${props.what} can read its messages. Files, edits and forwards are not available in encrypted chats yet.`
            : `The server can read this ${props.what}'s messages. It cannot be encrypted later.`}
        </span>
      </span>
      <input type="checkbox" role="switch" checked={props.on} data-testid="e2e-toggle" onChange={(e) => props.onChange(e.currentTarget.checked)} />
    </label>
  );
}

function NewChatView(props: { store: AppStore; onDone: () => void }) {
  const { store } = props;
  const [q, setQ] = useState('');
  const [encrypted, setEncrypted] = useState(true);
  const found = useUserSearch(store, q);
  // Contacts first (all of them before anything is typed), then the others found.
  const users = store.people.contactsFirst(q, found, store.me.id);
  const contacts = users.filter((u) => store.people.isContact(u.id));
  const others = users.filter((u) => !store.people.isContact(u.id));
  const row = (u: User) => (
    <UserRow
      key={u.id}
      user={u}
      testid="user-result"
      contact={store.people.isContact(u.id)}
      onClick={() => {
        void store.startDirect(u.id, encrypted);
        props.onDone();
      }}
    />
  );
  return (
    <>
      <PanelHeader title="New chat" onBack={props.onDone} />
      <div class="search">
        <div class="search-box">
          <SearchIcon />
          <input aria-label="Search people by username" autoFocus placeholder="Search people by username" value={q} data-testid="people-search" onInput={(e) => setQ(e.currentTarget.value)} />
        </div>
      </div>
      <EncryptedSwitch on={encrypted} onChange={setEncrypted} what="chat" />
      <div class="list">
        {contacts.length > 0 && <div class="list-section">Contacts</div>}
        {contacts.map(row)}
        {contacts.length > 0 && others.length > 0 && <div class="list-section">Other people</div>}
        {others.map(row)}
        {!q.trim() && <div class="list-empty">Type the start of a username{contacts.length > 0 ? ' to find someone else' : ''}.</div>}
      </div>
    </>
  );
}

function NewGroupView(props: { store: AppStore; onDone: () => void }) {
  const { store } = props;
  const [q, setQ] = useState('');
  const [title, setTitle] = useState('');
  const [picked, setPicked] = useState<User[]>([]);
  const [encrypted, setEncrypted] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // Contacts first (all of them before anything is typed).
  const users = store.people.contactsFirst(q, useUserSearch(store, q), store.me.id);
  const toggle = (u: User) =>
    setPicked(picked.some((p) => p.id === u.id) ? picked.filter((p) => p.id !== u.id) : [...picked, u]);

  async function create() {
    setBusy(true);
    setError(null);
    try {
      await store.createGroup(title.trim(), picked.map((p) => p.id), encrypted);
      props.onDone();
    } catch (e) {
      // Nothing was created: the subject and the people chosen stay, to try again.
      setError(errorText(e, 'new-group'));
      setBusy(false);
    }
  }

  return (
    <>
      <PanelHeader title="New group" onBack={props.onDone} />
      <div class="group-form">
        <div class="group-title-row">
          <div class="group-avatar-ph">
            <GroupIcon size={28} />
          </div>
          <input aria-label="Group subject"
            class="underline"
            placeholder="Group subject"
            maxLength={64}
            value={title}
            data-testid="group-title"
            onInput={(e) => setTitle(e.currentTarget.value)}
          />
        </div>
        {picked.length > 0 && (
          <div class="chips">
            {picked.map((u) => (
              <span class="chip" key={u.id}>
                <Avatar name={u.display_name} id={u.id} size={24} />
                <span>{u.display_name}</span>
                <BotBadge user={u} />
                <button aria-label={`Remove ${u.display_name}`} onClick={() => toggle(u)}>
                  ×
                </button>
              </span>
            ))}
          </div>
        )}
        <div class="search-box">
          <SearchIcon />
          <input aria-label="Add members by username" placeholder="Add members by username" value={q} data-testid="member-search" onInput={(e) => setQ(e.currentTarget.value)} />
        </div>
      </div>
      <EncryptedSwitch on={encrypted} onChange={setEncrypted} what="group" />
      <div class="list">
        {users.map((u) => (
          <UserRow key={u.id} user={u} testid="member-result" contact={store.people.isContact(u.id)} selected={picked.some((p) => p.id === u.id)} onClick={() => toggle(u)} />
        ))}
      </div>
      {error && (
        <div class="form-error" role="alert" data-testid="group-error">
          {error}
        </div>
      )}
      <div class="group-create">
        <button
          class="fab"
          aria-label="Create group"
          data-testid="create-group"
          disabled={busy || !title.trim() || picked.length === 0}
          onClick={() => void create()}
        >
          <CheckIcon />
        </button>
      </div>
    </>
  );
}

function SettingsView(props: { store: AppStore; onDone: () => void }) {
  const { store } = props;
  const [name, setName] = useState(store.me.display_name);
  const [editing, setEditing] = useState(false);
  const [devices, setDevices] = useState<Device[] | null>(null);
  const [privacy, setPrivacy] = useState<PrivacySettings | null>(null);
  const [theme, setTheme] = useState<Theme>(loadTheme);
  const [error, setError] = useState<string | null>(null);
  const load = () => {
    store.api.devices().then(setDevices).catch(() => setDevices([]));
  };
  useEffect(() => {
    store.api.privacy().then(setPrivacy).catch(() => setPrivacy(null));
    void store.people.load();
  }, [store]);
  // Again whenever a login waits, is approved or logged out (from any device of mine).
  useEffect(load, [store, store.devicesSeen]);
  const run = async (f: () => Promise<void>) => {
    setError(null);
    try {
      await f();
    } catch (e) {
      setError(e instanceof Error ? e.message : 'Something went wrong.');
    }
  };
  const choose = (key: keyof PrivacySettings, value: Visibility) =>
    void run(async () => setPrivacy(await store.api.setPrivacy({ ...privacy!, [key]: value })));
  const visibilityOptions: [Visibility, string][] = [
    ['everyone', 'Everyone'],
    ['contacts', 'My contacts'],
    ['nobody', 'Nobody'],
  ];
  return (
    <>
      <PanelHeader title="Settings" onBack={props.onDone} />
      <div class="list settings">
        <section class="settings-card">
          <div class="settings-profile">
            <PersonAvatar store={store} user={store.me} name={store.me.display_name} size={64} />
            <div class="settings-name">
              {editing ? (
                <form
                  class="rename"
                  onSubmit={(e) => {
                    e.preventDefault();
                    void run(async () => {
                      await store.updateName(name.trim());
                      setEditing(false);
                    });
                  }}
                >
                  <input class="underline" aria-label="Your name" dir="auto" value={name} maxLength={64} data-testid="name-input" onInput={(e) => setName(e.currentTarget.value)} autoFocus />
                  <button class="icon-btn" type="submit" aria-label="Save name" data-testid="name-save">
                    <CheckIcon />
                  </button>
                </form>
              ) : (
                <div class="info-title">
                  <span data-testid="settings-name">{store.me.display_name}</span>
                  <button class="icon-btn small" aria-label="Edit your name" data-testid="name-edit" onClick={() => setEditing(true)}>
                    <PencilIcon />
                  </button>
                </div>
              )}
              <div class="muted">@{store.me.username}</div>
            </div>
          </div>
        </section>
        <ProfileCard store={store} />
        <ContactsCard store={store} onOpen={props.onDone} />
        {privacy && (
          <section class="settings-card">
            <h3>Privacy</h3>
            {(['last_seen', 'online'] as const).map((key) => (
              <label class="settings-row" key={key}>
                <span>{key === 'last_seen' ? 'Who can see my last seen' : 'Who can see when I am online'}</span>
                <select value={privacy[key]} data-testid={`privacy-${key}`} onChange={(e) => choose(key, e.currentTarget.value as Visibility)}>
                  {visibilityOptions.map(([v, label]) => (
                    <option value={v} key={v}>
                      {label}
                    </option>
                  ))}
                </select>
              </label>
            ))}
            <p class="settings-note">If you hide yours from someone, you can't see theirs either.</p>
          </section>
        )}
        <BlockedCard store={store} />
        <PasswordCard store={store} onChanged={load} />
        <TwoFactorCard store={store} />
        <NotificationsCard store={store} />
        <EncryptionCard store={store} />
        <section class="settings-card">
          <h3>Appearance</h3>
          <label class="settings-row">
            <span>Theme</span>
            <select
              value={theme}
              data-testid="theme"
              onChange={(e) => {
                const t = e.currentTarget.value as Theme;
                applyTheme(t);
                setTheme(t);
              }}
            >
              <option value="system">System default</option>
              <option value="light">Light</option>
              <option value="dark">Dark</option>
            </select>
          </label>
          <p class="settings-note">Kept on this device.</p>
        </section>
        <section class="settings-card" data-testid="devices">
          <h3>Logged-in devices</h3>
          <DeviceApprovalSetting store={store} />
          {devices === null && <p class="settings-note">Loading…</p>}
          {devices?.map((d) => (
            <div class={`person${d.pending ? ' device-pending' : ''}`} key={d.id} data-testid="device" data-device-id={d.id} data-pending={d.pending ? 'true' : undefined}>
              <div class="device-icon" aria-hidden="true">
                <LaptopIcon />
              </div>
              <div class="person-text">
                <div class="person-name">{d.name}</div>
                {d.pending ? (
                  <div class="device-waiting" data-testid="device-pending" title={`Logged in ${new Date(d.created_at).toLocaleString()}`}>
                    Waiting for approval
                  </div>
                ) : (
                  <div class="muted" data-testid="device-when">
                    {d.current ? 'This device' : `Last used ${new Date(d.last_used_at || d.created_at).toLocaleString()} · since ${new Date(d.created_at).toLocaleDateString()}`}
                  </div>
                )}
              </div>
              {d.pending && !d.current && (
                <button class="text-btn" data-testid="approve-device" onClick={() => void run(async () => { await store.approveDevice(d.id); load(); })}>
                  Approve
                </button>
              )}
              {!d.current && (
                <button
                  class="text-btn danger"
                  data-testid="revoke-device"
                  onClick={() => void run(async () => { await (d.pending ? store.refuseDevice(d.id) : store.api.revokeDevice(d.id)); load(); })}
                >
                  Log out
                </button>
              )}
            </div>
          ))}
        </section>
        {error && <div class="form-error">{error}</div>}
        <BotsCard store={store} />
        <ExportCard store={store} />
        <DeleteAccountCard store={store} />
      </div>
    </>
  );
}
