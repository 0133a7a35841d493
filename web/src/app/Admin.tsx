// Server administration, for the server's admins (`role: "admin"` in
// `GET /v1/me`): the server's figures, its accounts (AdminUsers.tsx), who
// is in a chat, and the audit log (AdminAudit.tsx). Admins see accounts,
// devices, membership, counts and security events, never a message:
// nothing here reads one.

import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { HarkError, type AdminChat, type ChatId, type ServerStats, type UserId } from '../hark-client';
import { AuditView } from './AdminAudit';
import { adminFailure, UsersView } from './AdminUsers';
import { humanSize } from './media';
import type { AppStore } from './store';
import { Avatar, BackIcon, clock, count, plural, RefreshIcon, SearchIcon, ShieldIcon, when } from './ui';

type Tab = 'overview' | 'users' | 'chats' | 'audit';

const TABS: [Tab, string][] = [
  ['overview', 'Overview'],
  ['users', 'Users'],
  ['chats', 'Chats'],
  ['audit', 'Audit log'],
];

/** The whole-window administration screen; `onClose` goes back to the chats. */
export function AdminPanel(props: { store: AppStore; onClose: () => void }) {
  const { store } = props;
  const [tab, setTab] = useState<Tab>('overview');
  // The user whose details are open in Users (also reached from a chat's members).
  const [userId, setUserId] = useState<UserId | null>(null);
  const openUser = (id: UserId) => {
    setUserId(id);
    setTab('users');
  };
  // Tabs as the ARIA pattern has them: one Tab stop, the arrow keys (Home, End) move and select.
  const onTabKey = (e: KeyboardEvent) => {
    const i = TABS.findIndex(([t]) => t === tab);
    const to =
      e.key === 'ArrowRight' ? (i + 1) % TABS.length : e.key === 'ArrowLeft' ? (i + TABS.length - 1) % TABS.length : e.key === 'Home' ? 0 : e.key === 'End' ? TABS.length - 1 : -1;
    if (to < 0) return;
    e.preventDefault();
    setTab(TABS[to][0]);
    document.getElementById(`admin-tab-${TABS[to][0]}`)?.focus();
  };
  // Opening moves focus into the screen (the menu item that opened it is gone).
  const title = useRef<HTMLHeadingElement>(null);
  useEffect(() => title.current?.focus(), []);
  return (
    <section class="admin" data-testid="admin" aria-labelledby="admin-title">
      <header class="admin-header">
        <button class="icon-btn" aria-label="Back to chats" data-testid="admin-close" onClick={props.onClose}>
          <BackIcon />
        </button>
        <span class="admin-badge-icon" aria-hidden="true">
          <ShieldIcon size={22} />
        </span>
        <div class="admin-header-text">
          <h1 id="admin-title" tabIndex={-1} ref={title}>
            Administration
          </h1>
          <div class="admin-header-sub">{location.host}</div>
        </div>
      </header>
      <nav class="admin-tabs" role="tablist" aria-label="Administration" onKeyDown={onTabKey}>
        {TABS.map(([t, label]) => (
          <button
            key={t}
            role="tab"
            id={`admin-tab-${t}`}
            aria-selected={tab === t}
            tabIndex={tab === t ? 0 : -1}
            aria-controls="admin-tabpanel"
            class={tab === t ? 'active' : ''}
            data-testid={`admin-tab-${t}`}
            onClick={() => setTab(t)}
          >
            {label}
          </button>
        ))}
      </nav>
      <div class="admin-body" role="tabpanel" id="admin-tabpanel" aria-labelledby={`admin-tab-${tab}`}>
        {tab === 'overview' && <Overview store={store} />}
        {tab === 'users' && <UsersView store={store} selected={userId} onSelect={setUserId} />}
        {tab === 'chats' && <ChatLookup store={store} onUser={openUser} />}
        {tab === 'audit' && <AuditView store={store} onUser={openUser} />}
      </div>
    </section>
  );
}

// ---- overview ----

function Overview(props: { store: AppStore }) {
  const { store } = props;
  const [stats, setStats] = useState<ServerStats | null>(null);
  const [at, setAt] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const load = useCallback(async () => {
    setBusy(true);
    setError(null);
    try {
      setStats(await store.api.adminStats());
      setAt(Date.now());
    } catch (e) {
      setError(adminFailure(store, e));
    }
    setBusy(false);
  }, [store]);
  useEffect(() => void load(), [load]);

  return (
    <div class="admin-page" data-testid="admin-overview">
      <div class="admin-toolbar">
        <h2>Overview</h2>
        <span class="muted admin-updated" data-testid="stats-updated">
          {busy ? 'Updating…' : at ? `Updated at ${clock(at)}` : ''}
        </span>
        <button class="secondary with-icon" data-testid="stats-refresh" disabled={busy} onClick={() => void load()}>
          <RefreshIcon size={18} /> Refresh
        </button>
      </div>
      {error && (
        <div class="form-error admin-error" role="alert" data-testid="admin-error">
          {error}
        </div>
      )}
      {!stats && !error && <p class="muted">Loading…</p>}
      {stats && (
        <>
          <section class="admin-section">
            <h3>People</h3>
            <div class="stat-grid">
              <Stat id="users" label="Users" value={count(stats.users)} sub="accounts, disabled included" />
              <Stat id="online" label="Online now" value={count(stats.users_online)} sub="with Hark open" />
              <Stat id="admins" label="Admins" value={count(stats.admins)} sub="run this server" />
              <Stat id="disabled" label="Disabled" value={count(stats.disabled_users)} sub="cannot log in" warn={stats.disabled_users > 0} />
              <Stat id="devices" label="Devices" value={count(stats.devices)} sub="logged in" />
            </div>
          </section>
          <section class="admin-section">
            <h3>Activity</h3>
            <div class="stat-grid">
              <Stat id="chats" label="Chats" value={count(stats.chats)} sub="one-to-one and groups" />
              <Stat id="messages" label="Messages" value={count(stats.messages)} sub="ever sent" />
            </div>
            <MessagesChart days={stats.messages_per_day} />
          </section>
          <section class="admin-section">
            <h3>Server</h3>
            <div class="stat-grid">
              <Stat id="database" label="Database" value={humanSize(stats.storage.database_bytes)} sub="on disk" />
              <Stat id="media" label="Media" value={humanSize(stats.storage.media_bytes)} sub={plural(stats.storage.media_files, 'file')} />
              <Stat id="jobs-pending" label="Jobs pending" value={count(stats.jobs.pending)} sub="waiting to run" />
              <Stat id="jobs-dead" label="Jobs given up" value={count(stats.jobs.dead)} sub={stats.jobs.dead > 0 ? 'see the server log' : 'none failed'} warn={stats.jobs.dead > 0} />
            </div>
          </section>
        </>
      )}
    </div>
  );
}

function Stat(props: { id: string; label: string; value: string; sub?: string; warn?: boolean }) {
  return (
    <div class={`stat ${props.warn ? 'warn' : ''}`} data-testid={`stat-${props.id}`}>
      <div class="stat-label">{props.label}</div>
      <div class="stat-value" data-testid="stat-value">
        {props.value}
      </div>
      {props.sub && <div class="stat-sub">{props.sub}</div>}
    </div>
  );
}

/** A UTC day (`2026-12-04`) as a short weekday and date, "Fri 4 Dec". */
function dayName(day: string): { weekday: string; date: string } {
  const d = new Date(`${day}T00:00:00Z`);
  if (Number.isNaN(d.getTime())) return { weekday: day, date: '' };
  return {
    weekday: d.toLocaleDateString([], { weekday: 'short', timeZone: 'UTC' }),
    date: d.toLocaleDateString([], { day: 'numeric', month: 'short', timeZone: 'UTC' }),
  };
}

/** Messages per day as bars (plain CSS, no chart library), with each day's figure above its bar. */
function MessagesChart(props: { days: ServerStats['messages_per_day'] }) {
  const max = Math.max(1, ...props.days.map((d) => d.messages));
  const total = props.days.reduce((n, d) => n + d.messages, 0);
  const label = `Messages per day, last ${props.days.length} days: ${props.days
    .map((d) => `${dayName(d.day).weekday} ${dayName(d.day).date}: ${count(d.messages)}`)
    .join(', ')}`;
  return (
    <div class="chart-card">
      <div class="chart-head">
        <span>Messages, last {props.days.length} days</span>
        <span class="muted">
          {count(total)} in all · days in UTC
        </span>
      </div>
      <div class="chart" role="img" aria-label={label} data-testid="messages-chart">
        {props.days.map((d, i) => {
          const { weekday, date } = dayName(d.day);
          const today = i === props.days.length - 1;
          return (
            <div class="chart-col" key={d.day} data-testid="chart-day" data-day={d.day} data-messages={d.messages} title={`${d.day}: ${count(d.messages)} messages`}>
              <div class="chart-track">
                <div class={`chart-bar ${today ? 'today' : ''}`} style={{ height: `${d.messages === 0 ? 0 : Math.max(2, (d.messages / max) * 100)}%` }}>
                  <span class="chart-value">{count(d.messages)}</span>
                </div>
              </div>
              <span class="chart-day">{today ? 'Today' : weekday}</span>
              <span class="chart-date">{date}</span>
            </div>
          );
        })}
      </div>
    </div>
  );
}

// ---- chat membership ----

function ChatLookup(props: { store: AppStore; onUser: (id: UserId) => void }) {
  const { store } = props;
  const [input, setInput] = useState('');
  const [chat, setChat] = useState<AdminChat | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function lookUp(e: Event) {
    e.preventDefault();
    const id = Number(input.trim().replace(/^#/, ''));
    setChat(null);
    if (!Number.isSafeInteger(id) || id <= 0) {
      setError('A chat id is a whole number, like 7.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      setChat(await store.api.adminChat(id as ChatId));
    } catch (err) {
      setError(err instanceof HarkError && err.code === 'not_found' ? `There is no chat ${id}.` : adminFailure(store, err));
    }
    setBusy(false);
  }

  return (
    <div class="admin-page" data-testid="admin-chats">
      <div class="admin-toolbar">
        <h2>Chat membership</h2>
      </div>
      <p class="muted admin-note">Who is in a chat and since when. Administrators never see what was said.</p>
      <form class="admin-lookup" onSubmit={lookUp}>
        <div class="search-box">
          <SearchIcon />
          <input
            aria-label="Chat id"
            placeholder="Chat id, e.g. 7"
            inputMode="numeric"
            value={input}
            data-testid="chat-id"
            onInput={(e) => setInput(e.currentTarget.value)}
          />
        </div>
        <button class="primary" type="submit" disabled={busy || !input.trim()} data-testid="chat-lookup">
          {busy ? 'Looking…' : 'Look up'}
        </button>
      </form>
      {error && (
        <div class="form-error admin-error" role="alert" data-testid="admin-error">
          {error}
        </div>
      )}
      {chat && (
        <section class="admin-card" data-testid="admin-chat">
          <div class="admin-chat-head">
            <Avatar name={chat.title ?? 'Chat'} id={chat.id * 7} size={56} group={chat.kind === 'group'} />
            <div class="admin-chat-text">
              <div class="admin-name" dir="auto" data-testid="admin-chat-title">
                {chat.title ?? 'One-to-one chat'}
              </div>
              <div class="muted">
                <span data-testid="admin-chat-kind">{chat.kind === 'group' ? 'Group' : 'One-to-one'}</span> · chat {chat.id} · created {when(chat.created_at)}
              </div>
            </div>
          </div>
          <dl class="admin-facts">
            <div>
              <dt>Messages</dt>
              <dd data-testid="admin-chat-messages">{count(chat.messages)}</dd>
            </div>
            <div>
              <dt>Members</dt>
              <dd data-testid="admin-chat-member-count">{count(chat.members.length)}</dd>
            </div>
          </dl>
          <h3 class="admin-card-title">Members, oldest first</h3>
          <ul class="admin-list">
            {chat.members.map((m) => (
              <li key={m.user.id}>
                <button class="person" data-testid="admin-chat-member" data-username={m.user.username} onClick={() => props.onUser(m.user.id)}>
                  <Avatar name={m.user.display_name} id={m.user.id} size={40} />
                  <div class="person-text">
                    <div class="person-name" dir="auto">
                      {m.user.display_name} <span class="muted">@{m.user.username}</span>
                    </div>
                    <div class="muted">Joined {when(m.joined_at)}</div>
                  </div>
                  {m.admin && chat.kind === 'group' && (
                    <span class="admin-tag" data-testid="group-admin">
                      Group admin
                    </span>
                  )}
                </button>
              </li>
            ))}
          </ul>
        </section>
      )}
    </div>
  );
}
