// Administration → Audit log: the server's record of security events
// (logins and failed ones, devices, groups, deletes for everyone, every
// admin action), newest first a page at a time, filtered by action, user
// and dates; and a check of its whole hash chain, done here in the browser
// from what the API returns (docs/protocol.md "The audit log").

import { Fragment } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import {
  AUDIT_ACTIONS,
  canHash,
  describeAuditBreak,
  HarkError,
  verifyAuditLog,
  type AdminUser,
  type AuditEntry,
  type AuditPage,
  type AuditVerdict,
  type UserId,
} from '../hark-client';
import { adminFailure } from './AdminUsers';
import type { AppStore } from './store';
import { count, plural, RefreshIcon, ShieldIcon } from './ui';

/** Rows asked for per page (the server allows 1–1000). */
const PAGE_SIZE = 100;

/** Each action in words; the raw name is shown beside it. */
const ACTION_LABELS: Record<string, string> = {
  register: 'Account created',
  login: 'Logged in',
  login_failed: 'Login refused',
  logout: 'Logged out',
  device_revoked: 'Logged out another device',
  device_expired: 'Logged out after going unused',
  group_created: 'Group created',
  member_added: 'Member added',
  member_removed: 'Member removed',
  member_left: 'Left a group',
  member_made_admin: 'Made a group admin',
  member_admin_removed: 'Group admin removed',
  message_deleted_for_everyone: 'Message deleted for everyone',
  admin_disable_user: 'Admin disabled an account',
  admin_enable_user: 'Admin enabled an account',
  admin_grant_admin: 'Admin made a server admin',
  admin_revoke_admin: 'Admin removed a server admin',
  admin_reset_password: 'Admin set a password',
  admin_revoke_device: 'Admin logged out a device',
};

export function actionLabel(action: string): string {
  return ACTION_LABELS[action] ?? action.replace(/_/g, ' ');
}

/** A row's colour: refusals stand out, admins' own actions are marked. */
function tone(action: string): string {
  if (action === 'login_failed') return 'failed';
  if (action.startsWith('admin_')) return 'by-admin';
  return '';
}

/** "5 Dec 2026, 10:22:19" in the browser's time zone. */
function stamp(ms: number): string {
  return new Date(ms).toLocaleString([], { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

// ---- who a user id is: asked once per id and kept (per signed-in store) ----

const known = new WeakMap<AppStore, Map<UserId, Promise<AdminUser | null>>>();

function cacheOf(store: AppStore): Map<UserId, Promise<AdminUser | null>> {
  let m = known.get(store);
  if (!m) known.set(store, (m = new Map()));
  return m;
}

/** The account `id` (null when there is none); a failed lookup is asked again next time. */
function lookUpUser(store: AppStore, id: UserId): Promise<AdminUser | null> {
  const cache = cacheOf(store);
  let p = cache.get(id);
  if (!p) {
    p = store.api.adminUser(id).catch((e) => {
      if (!(e instanceof HarkError && e.code === 'not_found')) cache.delete(id);
      return null;
    });
    cache.set(id, p);
  }
  return p;
}

/**
 * The account a typed username (or `#id`) names, or null: users whose
 * username starts with it, page by page, until one is it (any case).
 */
async function findUser(store: AppStore, typed: string): Promise<AdminUser | null> {
  const byId = /^#(\d+)$/.exec(typed);
  if (byId) return lookUpUser(store, Number(byId[1]));
  const name = typed.replace(/^@/, '');
  const cache = cacheOf(store);
  let after: UserId | null = null;
  for (;;) {
    const page = await store.api.adminUsers(name, after, 200);
    for (const u of page.users) if (!cache.has(u.id)) cache.set(u.id, Promise.resolve(u));
    const hit = page.users.find((u) => u.username === name) ?? page.users.find((u) => u.username.toLowerCase() === name.toLowerCase());
    if (hit) return hit;
    if (page.next === null) return null;
    after = page.next;
  }
}

/** The accounts the rows name, filled in as the lookups answer. */
function useUserNames(store: AppStore, entries: AuditEntry[] | undefined): Map<UserId, AdminUser | null> {
  const [names, setNames] = useState<Map<UserId, AdminUser | null>>(new Map());
  useEffect(() => {
    let live = true;
    const ids = new Set<UserId>();
    for (const e of entries ?? []) {
      if (e.actor !== null) ids.add(e.actor);
      if (e.target_user !== null) ids.add(e.target_user);
    }
    for (const id of ids) {
      if (names.has(id)) continue;
      void lookUpUser(store, id).then((u) => live && setNames((m) => (m.has(id) ? m : new Map(m).set(id, u))));
    }
    return () => {
      live = false;
    };
  }, [store, entries]);
  return names;
}

// ---- filters ----

interface Draft {
  action: string;
  user: string;
  since: string;
  until: string;
}

/** The filters a page was asked with. */
interface Applied {
  action: string | null;
  user: AdminUser | null;
  /** ms, the first moment counted. */
  since: number | null;
  /** ms, the first moment no longer counted. */
  until: number | null;
}

const NO_DRAFT: Draft = { action: '', user: '', since: '', until: '' };
const NO_FILTER: Applied = { action: null, user: null, since: null, until: null };

/** Local midnight at the start of a date input's day (`days` later), in ms. */
function localDay(value: string, days = 0): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!m) return null;
  return new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + days).getTime();
}

function filtered(a: Applied): boolean {
  return a.action !== null || a.user !== null || a.since !== null || a.until !== null;
}

// ---- the view ----

export function AuditView(props: { store: AppStore; onUser: (id: UserId) => void }) {
  const { store } = props;
  const [draft, setDraft] = useState<Draft>(NO_DRAFT);
  const [applied, setApplied] = useState<Applied>(NO_FILTER);
  const [page, setPage] = useState<AuditPage | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [filterError, setFilterError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [loadingMore, setLoadingMore] = useState(false);
  // Answers to an older request (other filters, an older refresh) are dropped.
  const asked = useRef(0);
  const names = useUserNames(store, page?.entries);

  const query = (a: Applied) => ({
    action: a.action,
    user: a.user?.id ?? null,
    since: a.since,
    until: a.until,
    limit: PAGE_SIZE,
  });

  async function load(a: Applied) {
    const n = ++asked.current;
    setBusy(true);
    setError(null);
    try {
      const p = await store.api.adminAudit(query(a));
      if (n !== asked.current) return;
      setApplied(a);
      setPage(p);
    } catch (e) {
      if (n === asked.current) setError(adminFailure(store, e));
    }
    if (n === asked.current) setBusy(false);
  }

  async function older() {
    if (!page || page.next === null) return;
    const n = asked.current;
    setLoadingMore(true);
    try {
      const p = await store.api.adminAudit({ ...query(applied), before: page.next });
      if (n === asked.current) setPage((cur) => cur && { entries: [...cur.entries, ...p.entries.filter((e) => e.id < (cur.entries.at(-1)?.id ?? Infinity))], next: p.next });
    } catch (e) {
      setError(adminFailure(store, e));
    }
    setLoadingMore(false);
  }

  useEffect(() => void load(NO_FILTER), [store]);

  /** Turn what the form says into filters (the username asked of the server) and load the first page. */
  async function apply(d: Draft) {
    setFilterError(null);
    const since = d.since ? localDay(d.since) : null;
    const until = d.until ? localDay(d.until, 1) : null;
    if (since !== null && until !== null && since >= until) {
      setFilterError('The “From” date is after the “To” date.');
      return;
    }
    let user: AdminUser | null = null;
    const typed = d.user.trim();
    if (typed) {
      try {
        user = await findUser(store, typed);
      } catch (e) {
        setFilterError(adminFailure(store, e));
        return;
      }
      if (!user) {
        setFilterError(`There is no user “${typed.replace(/^@/, '')}”. Type a username as it is, like “alice”.`);
        return;
      }
    }
    await load({ action: d.action || null, user, since, until });
  }

  /** A change the form applies at once (the action, a date). */
  const change = (patch: Partial<Draft>) => {
    const d = { ...draft, ...patch };
    setDraft(d);
    void apply(d);
  };

  const clear = () => {
    setDraft(NO_DRAFT);
    setFilterError(null);
    void load(NO_FILTER);
  };

  const name = (id: UserId | null, device: number | null, testId: string) => {
    if (id === null) return <span class="muted">someone not logged in</span>;
    const u = names.get(id);
    return (
      <span data-testid={testId} data-user-id={id}>
        <button class="link audit-user" onClick={() => props.onUser(id)} title={`User ${id}`}>
          {u ? `@${u.username}` : `#${id}`}
        </button>
        {device !== null && <span class="muted"> · device {device}</span>}
      </span>
    );
  };

  const entries = page?.entries ?? [];
  return (
    <div class="admin-page" data-testid="admin-audit">
      <div class="admin-toolbar">
        <h2>Audit log</h2>
        <button class="secondary with-icon" data-testid="audit-refresh" disabled={busy} onClick={() => void load(applied)}>
          <RefreshIcon size={18} /> Refresh
        </button>
      </div>
      <p class="muted admin-note">
        Security events, newest first: logins and refused ones, devices logged out, group membership, messages deleted for everyone and every admin
        action. Never what anyone wrote. Times are in your time zone.
      </p>
      <ChainCheck store={store} />
      <form
        class="audit-filters"
        aria-label="Filter the audit log"
        onSubmit={(e) => {
          e.preventDefault();
          void apply(draft);
        }}
      >
        <label class="admin-field">
          <span>Action</span>
          <select value={draft.action} data-testid="audit-filter-action" onChange={(e) => change({ action: e.currentTarget.value })}>
            <option value="">Any action</option>
            {AUDIT_ACTIONS.map((a) => (
              <option key={a} value={a}>
                {actionLabel(a)} ({a})
              </option>
            ))}
          </select>
        </label>
        <label class="admin-field">
          <span>User</span>
          <input
            type="search"
            placeholder="Username, e.g. alice"
            autocomplete="off"
            spellcheck={false}
            value={draft.user}
            data-testid="audit-filter-user"
            onInput={(e) => setDraft({ ...draft, user: e.currentTarget.value })}
          />
        </label>
        <label class="admin-field">
          <span>From</span>
          <input type="date" value={draft.since} data-testid="audit-filter-since" onChange={(e) => change({ since: e.currentTarget.value })} />
        </label>
        <label class="admin-field">
          <span>To (inclusive)</span>
          <input type="date" value={draft.until} data-testid="audit-filter-until" onChange={(e) => change({ until: e.currentTarget.value })} />
        </label>
        <div class="audit-filter-buttons">
          <button class="primary" type="submit" disabled={busy} data-testid="audit-filter-apply">
            Apply
          </button>
          {(filtered(applied) || draft.user || draft.action || draft.since || draft.until) && (
            <button class="secondary" type="button" data-testid="audit-filter-clear" onClick={clear}>
              Clear
            </button>
          )}
        </div>
      </form>
      {filterError && (
        <div class="form-error admin-error" role="alert" data-testid="audit-filter-error">
          {filterError}
        </div>
      )}
      {error && (
        <div class="form-error admin-error" role="alert" data-testid="admin-error">
          {error}
        </div>
      )}
      {page === null && !error && <p class="muted">Loading…</p>}
      {page && (
        <section class="admin-card audit-card" aria-label="Audit log entries" aria-busy={busy}>
          {applied.user && (
            <p class="audit-showing muted" data-testid="audit-showing-user">
              Rows @{applied.user.username} did or had done to them.
            </p>
          )}
          <ol class="audit-list" data-testid="audit-list" data-count={entries.length} data-action={applied.action ?? ''} data-user={applied.user?.id ?? ''}>
            {entries.map((e) => {
              const sameTarget = e.target_user === e.actor && e.target_device === e.actor_device;
              const detail = Object.entries(e.detail ?? {});
              return (
                <li key={e.id} class={`audit-row ${tone(e.action)}`} data-testid="audit-row" data-id={e.id} data-action={e.action}>
                  <div class="audit-head">
                    <span class="audit-label" data-testid="audit-label">
                      {actionLabel(e.action)}
                    </span>
                    <code class="audit-code" data-testid="audit-action">
                      {e.action}
                    </code>
                    <time class="audit-time" dateTime={new Date(e.at).toISOString()} title={new Date(e.at).toISOString()} data-testid="audit-time">
                      {stamp(e.at)}
                    </time>
                  </div>
                  <dl class="audit-facts">
                    <div>
                      <dt>By</dt>
                      <dd>{name(e.actor, e.actor_device, 'audit-actor')}</dd>
                    </div>
                    {(e.target_user !== null || e.target_device !== null) && !sameTarget && (
                      <div>
                        <dt>To</dt>
                        <dd>
                          {e.target_user !== null ? (
                            name(e.target_user, e.target_device, 'audit-target')
                          ) : (
                            <span data-testid="audit-target">device {e.target_device}</span>
                          )}
                        </dd>
                      </div>
                    )}
                    {e.chat !== null && (
                      <div>
                        <dt>Chat</dt>
                        <dd data-testid="audit-chat">chat {e.chat}</dd>
                      </div>
                    )}
                    <div>
                      <dt>From</dt>
                      <dd data-testid="audit-address">{e.address ?? <span class="muted">the app's connection</span>}</dd>
                    </div>
                    {detail.length > 0 && (
                      <div class="audit-detail-wrap">
                        <dt>Detail</dt>
                        <dd data-testid="audit-detail">
                          {detail.map(([k, v], i) => (
                            <Fragment key={k}>
                              {i > 0 && ' '}
                              <code class="audit-kv">
                                {k}={v}
                              </code>
                            </Fragment>
                          ))}
                        </dd>
                      </div>
                    )}
                  </dl>
                  <span class="audit-id muted" aria-label={`Row ${e.id}`}>
                    #{e.id}
                  </span>
                </li>
              );
            })}
          </ol>
          {entries.length === 0 && (
            <div class="list-empty" data-testid="audit-empty">
              {filtered(applied) ? 'No entries match these filters.' : 'Nothing recorded yet.'}
            </div>
          )}
          {page.next !== null && (
            <div class="admin-more">
              <button class="secondary" data-testid="audit-older" disabled={loadingMore} onClick={() => void older()}>
                {loadingMore ? 'Loading…' : 'Older'}
              </button>
            </div>
          )}
          {entries.length > 0 && page.next === null && (
            <div class="admin-list-end muted" data-testid="audit-end">
              {plural(entries.length, 'entry', 'entries')}
              {filtered(applied) ? ' match' : ''}, back to the oldest kept
            </div>
          )}
        </section>
      )}
    </div>
  );
}

/** "Verify chain": read every row oldest first and check each hash, the ids and the end against the head. */
function ChainCheck(props: { store: AppStore }) {
  const { store } = props;
  const [state, setState] = useState<
    | { kind: 'idle' }
    | { kind: 'checking'; checked: number; total: number }
    | { kind: 'done'; verdict: AuditVerdict }
    | { kind: 'error'; message: string }
  >({ kind: 'idle' });
  const mounted = useRef(true);
  useEffect(
    () => () => {
      mounted.current = false;
    },
    [],
  );

  async function verify() {
    if (!canHash()) {
      setState({ kind: 'error', message: 'This page cannot compute SHA-256: browsers allow it only over https (or on localhost). Use `hark admin audit verify` on the server.' });
      return;
    }
    setState({ kind: 'checking', checked: 0, total: 0 });
    try {
      const verdict = await verifyAuditLog(store.api, (checked, total) => mounted.current && setState({ kind: 'checking', checked, total }));
      if (mounted.current) setState({ kind: 'done', verdict });
    } catch (e) {
      if (mounted.current) setState({ kind: 'error', message: adminFailure(store, e) });
    }
  }

  const checking = state.kind === 'checking';
  const verdict = state.kind === 'done' ? state.verdict : null;
  return (
    <section class="audit-verify admin-card" aria-labelledby="audit-verify-title">
      <div class="audit-verify-head">
        <span class="audit-verify-icon" aria-hidden="true">
          <ShieldIcon size={22} />
        </span>
        <div class="audit-verify-text">
          <h3 id="audit-verify-title">Hash chain</h3>
          <div class="muted">Each row carries the hash of itself and the row before: checking them all shows a changed, removed or inserted row.</div>
        </div>
        <button class="secondary" data-testid="audit-verify" disabled={checking} onClick={() => void verify()}>
          {checking ? 'Checking…' : 'Verify chain'}
        </button>
      </div>
      <div
        class={`audit-verdict ${verdict ? (verdict.ok ? 'intact' : 'broken') : state.kind}`}
        role="status"
        data-testid="audit-verdict"
        data-state={verdict ? (verdict.ok ? 'intact' : 'broken') : state.kind}
        data-broken-row={verdict && !verdict.ok ? brokenRow(verdict) : undefined}
        hidden={state.kind === 'idle'}
      >
        {state.kind === 'checking' && (state.total > 0 ? `Checked ${count(state.checked)} of ${count(state.total)} rows…` : 'Reading the log…')}
        {state.kind === 'error' && state.message}
        {verdict?.ok && (
          <>
            <strong data-testid="audit-verdict-text">
              Chain intact: {plural(verdict.rows, 'row')}, head {verdict.chain.last_hash.slice(0, 12)}
            </strong>
            <div class="audit-verdict-sub">
              Keep the head somewhere else to compare later: <code class="audit-hash">{verdict.chain.last_hash}</code> (row {verdict.chain.last_id}
              {verdict.chain.pruned_through > 0 ? `; rows up to ${verdict.chain.pruned_through} were removed by retention` : ''}).
            </div>
          </>
        )}
        {verdict && !verdict.ok && (
          <>
            <strong data-testid="audit-verdict-text">Chain broken: {describeAuditBreak(verdict.broken)}.</strong>
            <div class="audit-verdict-sub">
              {verdict.rows > 0 ? `${plural(verdict.rows, 'row')} before it ${verdict.rows === 1 ? 'checks' : 'check'} out.` : 'No row before it checks out.'} The log was changed outside Hark, or
              the database was damaged: compare with a backup and the head you kept.
            </div>
          </>
        )}
      </div>
    </section>
  );
}

function brokenRow(v: AuditVerdict & { ok: false }): number {
  const b = v.broken;
  return b.kind === 'hash' ? b.id : b.kind === 'gap' ? b.expected : b.kind === 'end' ? b.last + 1 : v.chain.last_id;
}
