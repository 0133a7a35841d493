// Administration → Users: the server's accounts a page at a time (found by
// the start of their username), and one account's details: disable or
// enable it, make or remove a server admin, set a new password, log its
// devices out. Every change asks the server and shows its answer; a refusal
// shows the server's reason beside the action.

import { useEffect, useRef, useState } from 'preact/hooks';
import { HarkError, type AdminUser, type AdminUserPage, type Device, type UserId } from '../hark-client';
import type { AppStore } from './store';
import { Avatar, BackIcon, BotBadge, count, errorText, LaptopIcon, plural, RefreshIcon, SearchBox, when } from './ui';

/** Users asked for per page (the server allows 1–200). */
const PAGE_SIZE = 50;

/**
 * What to show for a failed admin request: `errorText`'s words, mostly the
 * server's own message (it says why, e.g. that you cannot disable
 * yourself). A token the server no longer takes signs out; `forbidden` may
 * mean this user is no longer an admin, so the role is asked again (and the
 * panel closes if so).
 */
export function adminFailure(store: AppStore, e: unknown): string {
  if (store.refused(e)) return '';
  if (e instanceof HarkError && e.code === 'forbidden') void store.refreshRole();
  return errorText(e, 'admin');
}

export function UsersView(props: { store: AppStore; selected: UserId | null; onSelect: (id: UserId | null) => void }) {
  const { store, selected } = props;
  const [q, setQ] = useState('');
  // The users shown and the search they answer (which may lag what is typed by the debounce).
  const [page, setPage] = useState<(AdminUserPage & { query: string }) | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const query = q.trim().replace(/^@/, '');
  // The query a page belongs to: an answer for an older query is dropped.
  const current = useRef(query);
  current.current = query;

  useEffect(() => {
    let cancelled = false;
    const t = setTimeout(
      () => {
        store.api
          .adminUsers(query || undefined, null, PAGE_SIZE)
          .then((p) => {
            if (cancelled) return;
            setPage({ ...p, query });
            setError(null);
          })
          .catch((e) => !cancelled && setError(adminFailure(store, e)));
      },
      query ? 200 : 0,
    );
    return () => {
      cancelled = true;
      clearTimeout(t);
    };
  }, [store, query]);

  async function loadMore() {
    if (!page || page.next === null) return;
    const asked = page.query;
    setLoadingMore(true);
    try {
      const next = await store.api.adminUsers(asked || undefined, page.next, PAGE_SIZE);
      if (current.current === asked) {
        setPage((p) => p && { query: asked, users: [...p.users, ...next.users.filter((u) => !p.users.some((x) => x.id === u.id))], next: next.next });
      }
    } catch (e) {
      setError(adminFailure(store, e));
    }
    setLoadingMore(false);
  }

  /** An account changed (an action, or fresher details): the list shows it too. */
  const changed = (u: AdminUser) => setPage((p) => p && { ...p, users: p.users.map((x) => (x.id === u.id ? u : x)) });
  const listed = selected !== null ? page?.users.find((u) => u.id === selected) : undefined;

  return (
    <div class={`admin-users ${selected !== null ? 'has-selection' : ''}`} data-testid="admin-users">
      <div class="admin-users-list">
        <SearchBox label="Search users by username" value={q} testId="admin-user-search" onInput={setQ} />
        {error && (
          <div class="form-error admin-error" role="alert" data-testid="admin-error">
            {error}
          </div>
        )}
        <div class="list" data-testid="admin-user-list" data-query={page?.query} aria-busy={page === null || page.query !== query}>
          {page === null && !error && <div class="list-empty">Loading…</div>}
          {page?.users.map((u) => (
            <UserRow key={u.id} user={u} me={u.id === store.me.id} active={u.id === selected} onClick={() => props.onSelect(u.id)} />
          ))}
          {page && page.users.length === 0 && (
            <div class="list-empty">{page.query ? `No username starts with “${page.query}”.` : 'No users yet.'}</div>
          )}
          {page && page.next !== null && (
            <div class="admin-more">
              <button class="secondary" data-testid="admin-users-more" disabled={loadingMore} onClick={() => void loadMore()}>
                {loadingMore ? 'Loading…' : 'Load more'}
              </button>
            </div>
          )}
          {page && page.users.length > 0 && page.next === null && (
            <div class="admin-list-end muted" data-testid="admin-users-end">
              {plural(page.users.length, 'user')}
              {page.query ? ` starting with “${page.query}”` : ''}
            </div>
          )}
        </div>
      </div>
      <div class="admin-users-detail">
        {selected !== null ? (
          <UserDetails key={selected} store={store} userId={selected} initial={listed} onChange={changed} onBack={() => props.onSelect(null)} />
        ) : (
          <div class="admin-placeholder muted">Pick someone to see their account and devices.</div>
        )}
      </div>
    </div>
  );
}

function Badges(props: { user: AdminUser; me?: boolean }) {
  return (
    <span class="admin-badges">
      {props.me && <span class="role-badge you">You</span>}
      {props.user.role === 'admin' && (
        <span class="role-badge admin" data-testid="badge-admin">
          Admin
        </span>
      )}
      {props.user.disabled && (
        <span class="role-badge disabled" data-testid="badge-disabled">
          Disabled
        </span>
      )}
    </span>
  );
}

function UserRow(props: { user: AdminUser; me: boolean; active: boolean; onClick: () => void }) {
  const { user } = props;
  return (
    <button
      class={`row admin-user-row ${props.active ? 'active' : ''} ${user.disabled ? 'is-disabled' : ''}`}
      aria-current={props.active ? 'true' : undefined}
      data-testid="admin-user"
      data-username={user.username}
      data-role={user.role}
      data-disabled={user.disabled ? 'true' : undefined}
      onClick={props.onClick}
    >
      <Avatar name={user.display_name} id={user.id} size={44} />
      <div class="row-body">
        <div class="row-top">
          <span class="row-title" dir="auto">
            {user.display_name}
          </span>
          <BotBadge user={user} />
          <Badges user={user} me={props.me} />
        </div>
        <div class="row-bottom">
          <span class="row-preview">@{user.username}</span>
          <span class="admin-device-count" data-testid="device-count">
            {plural(user.devices, 'device')}
          </span>
        </div>
      </div>
    </button>
  );
}

/** One account: who, its state, the actions on it and its devices. */
function UserDetails(props: { store: AppStore; userId: UserId; initial?: AdminUser; onChange: (u: AdminUser) => void; onBack: () => void }) {
  const { store, userId } = props;
  const api = store.api;
  const [user, setUser] = useState<AdminUser | null>(props.initial ?? null);
  const [devices, setDevices] = useState<Device[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [password, setPassword] = useState('');
  const [logOutAll, setLogOutAll] = useState(true);
  const onChange = useRef(props.onChange);
  onChange.current = props.onChange;

  const show = (u: AdminUser) => {
    setUser(u);
    onChange.current(u);
  };
  /** The account and its devices as the server has them now. */
  const reload = async () => {
    const [u, d] = await Promise.all([api.adminUser(userId), api.adminDevices(userId)]);
    show(u);
    setDevices(d);
  };
  useEffect(() => {
    reload().catch((e) => setError(adminFailure(store, e)));
  }, [store, userId]);

  /** Run an action: one at a time, its outcome (or the server's refusal) shown above the actions. */
  async function act(f: () => Promise<string | null>) {
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      setDone(await f());
    } catch (e) {
      setError(adminFailure(store, e));
    }
    setBusy(false);
  }

  if (!user) {
    return (
      <div class="admin-detail" data-testid="admin-user-detail">
        {error ? (
          <div class="form-error admin-error" role="alert" data-testid="admin-error">
            {error}
          </div>
        ) : (
          <p class="muted admin-placeholder">Loading…</p>
        )}
      </div>
    );
  }

  const me = user.id === store.me.id;
  const name = `@${user.username}`;

  const toggleDisabled = async () => {
    const ok = await store.ask(
      user.disabled
        ? { title: `Enable ${name}?`, body: `${user.display_name} can log in again, and the devices they were logged in on work again.`, confirm: 'Enable' }
        : {
            title: `Disable ${name}?`,
            body: `${user.display_name} is logged out everywhere at once and cannot log in until an admin enables the account. Their chats and messages stay.`,
            confirm: 'Disable',
            danger: true,
          },
    );
    if (!ok) return;
    await act(async () => {
      const u = user.disabled ? await api.enableUser(user.id) : await api.disableUser(user.id);
      show(u);
      return u.disabled ? `${name} is disabled.` : `${name} can log in again.`;
    });
  };

  const toggleAdmin = async () => {
    const making = user.role !== 'admin';
    const ok = await store.ask(
      making
        ? {
            title: `Make ${name} a server admin?`,
            body: 'Admins run this server: they see every account, can disable people, set passwords and log devices out. They never see messages.',
            confirm: 'Make admin',
          }
        : { title: `Remove ${name} as a server admin?`, body: 'They keep their account and chats.', confirm: 'Remove admin', danger: true },
    );
    if (!ok) return;
    await act(async () => {
      const u = await api.setRole(user.id, making ? 'admin' : 'user');
      show(u);
      return u.role === 'admin' ? `${name} is now a server admin.` : `${name} is no longer a server admin.`;
    });
  };

  const setNewPassword = (e: Event) => {
    e.preventDefault();
    void act(async () => {
      const had = devices?.length ?? user.devices;
      await api.resetPassword(user.id, password, logOutAll);
      setPassword('');
      await reload();
      if (!logOutAll) return 'Password changed. Their devices stay logged in.';
      return had > 0 ? `Password changed. ${name} was logged out of ${plural(had, 'device')}.` : 'Password changed.';
    });
  };

  const revoke = async (d: Device) => {
    const ok = await store.ask({ title: `Log out “${d.name}”?`, body: `${name} has to log in again on that device.`, confirm: 'Log out', danger: true });
    if (!ok) return;
    await act(async () => {
      await api.adminRevokeDevice(user.id, d.id);
      await reload();
      return `“${d.name}” was logged out.`;
    });
  };

  return (
    <div class="admin-detail" data-testid="admin-user-detail" data-username={user.username}>
      <div class="admin-detail-bar">
        <button class="icon-btn" aria-label="Back to users" data-testid="admin-user-back" onClick={props.onBack}>
          <BackIcon />
        </button>
        <span>Account</span>
      </div>
      <section class="admin-card admin-profile">
        <Avatar name={user.display_name} id={user.id} size={72} />
        <div class="admin-profile-text">
          <div class="admin-name" dir="auto" data-testid="admin-user-name">
            {user.display_name}
            <BotBadge user={user} />
          </div>
          <div class="muted">{name}</div>
          <Badges user={user} me={me} />
        </div>
        <dl class="admin-facts">
          <div>
            <dt>User id</dt>
            <dd>{user.id}</dd>
          </div>
          <div>
            <dt>Joined</dt>
            <dd>{when(user.created_at)}</dd>
          </div>
          <div>
            <dt>Devices</dt>
            <dd data-testid="admin-user-devices">{count(user.devices)}</dd>
          </div>
        </dl>
      </section>

      <section class="admin-card" aria-labelledby="admin-actions-title">
        <h3 class="admin-card-title" id="admin-actions-title">
          Actions
        </h3>
        {error && (
          <div class="form-error admin-error" role="alert" data-testid="admin-error">
            {error}
          </div>
        )}
        {done && (
          <div class="admin-done" role="status" data-testid="admin-done">
            {done}
          </div>
        )}
        <div class="admin-actions">
          <div class="admin-action">
            <div>
              <div class="admin-action-title">{user.disabled ? 'This account is disabled' : 'Disable this account'}</div>
              <div class="muted">
                {user.disabled
                  ? 'They cannot log in, and their devices are refused until it is enabled.'
                  : 'Logs them out everywhere and stops them logging in. Nothing is deleted.'}
              </div>
            </div>
            <button class={user.disabled ? 'secondary' : 'secondary danger'} disabled={busy} data-testid="admin-toggle-disabled" onClick={() => void toggleDisabled()}>
              {user.disabled ? 'Enable' : 'Disable'}
            </button>
          </div>
          <div class="admin-action">
            <div>
              <div class="admin-action-title">{user.role === 'admin' ? 'Server admin' : 'Regular user'}</div>
              <div class="muted">
                {user.role === 'admin' ? 'Can use this Administration screen.' : 'Admins can use this Administration screen; they never see messages.'}
              </div>
            </div>
            <button class="secondary" disabled={busy} data-testid="admin-toggle-role" onClick={() => void toggleAdmin()}>
              {user.role === 'admin' ? 'Remove admin' : 'Make admin'}
            </button>
          </div>
        </div>
        <form class="admin-password" onSubmit={setNewPassword} data-testid="admin-password-form">
          <div class="admin-action-title">Set a new password</div>
          <label class="admin-field">
            <span>New password</span>
            <input
              type="password"
              autocomplete="new-password"
              minLength={8}
              maxLength={1024}
              required
              value={password}
              data-testid="admin-new-password"
              aria-describedby="admin-password-hint"
              onInput={(e) => setPassword(e.currentTarget.value)}
            />
            <span class="field-hint" id="admin-password-hint">
              At least 8 characters. Tell them in person or another safe way.
            </span>
          </label>
          <label class="admin-check">
            <input type="checkbox" checked={logOutAll} data-testid="admin-logout-all" onChange={(e) => setLogOutAll(e.currentTarget.checked)} />
            <span>Log out all their devices</span>
          </label>
          <button class="primary" type="submit" disabled={busy || password.length === 0} data-testid="admin-set-password">
            Set password
          </button>
        </form>
      </section>

      <section class="admin-card" data-testid="admin-devices" aria-labelledby="admin-devices-title">
        <div class="admin-card-head">
          <h3 class="admin-card-title" id="admin-devices-title">
            Logged-in devices
          </h3>
          <button
            class="icon-btn small"
            aria-label="Refresh the account and its devices"
            title="Refresh"
            disabled={busy}
            data-testid="admin-devices-refresh"
            onClick={() => void act(async () => (await reload(), null))}
          >
            <RefreshIcon size={18} />
          </button>
        </div>
        {devices === null && <p class="muted admin-note">Loading…</p>}
        {devices?.length === 0 && <p class="muted admin-note">None: {me ? 'you are' : 'they are'} not logged in anywhere.</p>}
        {devices?.map((d) => (
          <div class="person" key={d.id} data-testid="admin-device" data-device-id={d.id}>
            <div class="device-icon" aria-hidden="true">
              <LaptopIcon />
            </div>
            <div class="person-text">
              <div class="person-name">{d.name}</div>
              <div class="muted">Since {when(d.created_at)}</div>
            </div>
            <button class="text-btn danger" disabled={busy} data-testid="admin-revoke-device" onClick={() => void revoke(d)}>
              Log out
            </button>
          </div>
        ))}
      </section>
    </div>
  );
}
