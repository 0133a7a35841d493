// Settings → Bots: accounts run by a program (docs/protocol.md "Bots"),
// made and managed by this person. Each bot opens to its tokens (made with
// a name, the actions it may take and, if wanted, only some chats; the
// token is shown once, with a copy button) and its webhooks (a URL and the
// events it is called for; the signing secret shown once; failures, the
// off state with Turn on again, Remove, and the delivery log). Deleting a
// bot asks first.

import { useEffect, useState } from 'preact/hooks';
import {
  BOT_ACTIONS,
  HarkError,
  WEBHOOK_KINDS,
  type Bot,
  type BotAction,
  type BotToken,
  type ChatId,
  type UserId,
  type Webhook,
  type WebhookDelivery,
  type WebhookKind,
} from '../hark-client';
import type { AppStore } from './store';
import { BotBadge, errorText, plural, when } from './ui';

const ACTION_LABELS: Record<BotAction, string> = {
  read: 'Read its chats and messages',
  send: 'Send messages',
  react: 'React to messages',
  mark: 'Mark messages delivered and read',
  typing: 'Show typing',
};

const KIND_LABELS: Record<WebhookKind, string> = {
  message_created: 'New messages',
  message_edited: 'Edited messages',
  message_deleted: 'Deleted messages',
  member_joined: 'Members joining',
  member_left: 'Members leaving',
  reaction: 'Reactions',
  chat_created: 'New chats with the bot',
};

/** A refusal in words; the server's message otherwise. */
function botError(e: unknown): string {
  if (e instanceof HarkError) {
    if (e.code === 'username_taken') return 'That username is taken.';
    if (e.code === 'url_not_allowed') return `This URL is not allowed: ${e.message}. Use an https address on the internet.`;
  }
  return errorText(e, 'bots');
}

/** The secret or token shown this once, with a copy button and Done. */
function ShownOnce(props: { label: string; value: string; testid: string; note: string; onDone: () => void }) {
  const [copied, setCopied] = useState(false);
  return (
    <div class="shown-once" data-testid={`${props.testid}-once`} role="status">
      <span class="shown-once-label">{props.label}</span>
      <code class="shown-once-value" data-testid={props.testid}>
        {props.value}
      </code>
      <p class="two-factor-save">{props.note}</p>
      <div class="settings-actions">
        {typeof navigator !== 'undefined' && navigator.clipboard && (
          <button
            class="secondary small"
            type="button"
            data-testid={`${props.testid}-copy`}
            onClick={() =>
              void navigator.clipboard
                .writeText(props.value)
                .then(() => setCopied(true))
                .catch(() => setCopied(false))
            }
          >
            {copied ? 'Copied' : 'Copy'}
          </button>
        )}
        <button class="secondary small" type="button" data-testid={`${props.testid}-done`} onClick={props.onDone}>
          I saved it
        </button>
      </div>
    </div>
  );
}

export function BotsCard(props: { store: AppStore }) {
  const { store } = props;
  const [bots, setBots] = useState<Bot[] | null>(null);
  const [open, setOpen] = useState<UserId | null>(null);
  const [creating, setCreating] = useState(false);
  const [username, setUsername] = useState('');
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const load = () =>
    store.api.bots().then(setBots, (e) => {
      if (store.refused(e)) return;
      setBots((b) => b ?? []);
      setError(botError(e));
    });
  useEffect(() => void load(), [store]);

  async function create(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const bot = await store.api.createBot(username.trim(), name.trim() || undefined);
      setBots((b) => [...(b ?? []), bot]);
      setCreating(false);
      setUsername('');
      setName('');
      setOpen(bot.user.id);
    } catch (err) {
      if (!store.refused(err)) setError(botError(err));
    } finally {
      setBusy(false);
    }
  }

  async function remove(bot: Bot) {
    const ok = await store.ask({
      title: `Delete ${bot.user.display_name}?`,
      body: 'Its tokens stop working at once and its webhooks are removed. Its messages stay in their chats.',
      confirm: 'Delete bot',
      danger: true,
    });
    if (!ok) return;
    setError(null);
    try {
      await store.api.deleteBot(bot.user.id);
      setBots((b) => (b ?? []).filter((x) => x.user.id !== bot.user.id));
      if (open === bot.user.id) setOpen(null);
    } catch (e) {
      if (!store.refused(e)) setError(botError(e));
    }
  }

  return (
    <section class="settings-card bots-card" data-testid="bots-card">
      <h3>Bots</h3>
      <p class="settings-note">
        Accounts a program runs: it signs in with a token you make here, limited to what you allow. People see a <BotBadge user={{ bot: true }} /> label next to a bot's
        name.
      </p>
      {bots === null && <p class="settings-note">Loading…</p>}
      {bots?.length === 0 && !creating && (
        <p class="settings-note" data-testid="no-bots">
          You have no bots yet.
        </p>
      )}
      {bots?.map((bot) => (
        <div class="bot-item" key={bot.user.id} data-testid="bot" data-username={bot.user.username}>
          <div class="person">
            <div class="person-text">
              <div class="person-name" dir="auto">
                {bot.user.display_name}
                <BotBadge user={bot.user} />
              </div>
              <div class="muted">
                @{bot.user.username} · made {when(bot.created_at)}
                {bot.owner !== store.me.id ? ` · owner #${bot.owner}` : ''}
              </div>
            </div>
            <button
              class="text-btn"
              data-testid="bot-manage"
              aria-expanded={open === bot.user.id}
              onClick={() => setOpen(open === bot.user.id ? null : bot.user.id)}
            >
              {open === bot.user.id ? 'Close' : 'Manage'}
            </button>
            <button class="text-btn danger" data-testid="bot-delete" aria-label={`Delete ${bot.user.display_name}`} onClick={() => void remove(bot)}>
              Delete
            </button>
          </div>
          {open === bot.user.id && <BotDetail store={store} bot={bot} />}
        </div>
      ))}
      {creating ? (
        <form class="settings-form" onSubmit={create} data-testid="bot-create-form">
          <label class="settings-field">
            <span>Username</span>
            <input
              required
              minLength={3}
              maxLength={32}
              pattern="[A-Za-z0-9_.\-]{3,32}"
              value={username}
              data-testid="bot-username"
              aria-describedby="bot-username-hint"
              onInput={(e) => setUsername(e.currentTarget.value)}
              autoFocus
            />
            <span class="field-hint" id="bot-username-hint">
              3 to 32 letters, digits, _ . or -
            </span>
          </label>
          <label class="settings-field">
            <span>Name people see (optional)</span>
            <input maxLength={64} value={name} dir="auto" data-testid="bot-name" onInput={(e) => setName(e.currentTarget.value)} />
          </label>
          <div class="settings-actions">
            <button class="primary" type="submit" disabled={busy} data-testid="bot-create-save">
              {busy ? 'Making…' : 'Make bot'}
            </button>
            <button class="secondary" type="button" onClick={() => setCreating(false)}>
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <div class="settings-row">
          <span class="muted">{bots && bots.length > 0 ? plural(bots.length, 'bot') : ''}</span>
          <button
            class="secondary small"
            data-testid="bot-create"
            onClick={() => {
              setCreating(true);
              setError(null);
            }}
          >
            New bot
          </button>
        </div>
      )}
      {error && (
        <p class="form-error settings-error" role="alert" data-testid="bots-error">
          {error}
        </p>
      )}
    </section>
  );
}

/** One bot opened: its tokens and its webhooks. */
function BotDetail(props: { store: AppStore; bot: Bot }) {
  return (
    <div class="bot-detail" data-testid="bot-detail">
      <BotTokens store={props.store} bot={props.bot} />
      <BotWebhooks store={props.store} bot={props.bot} />
    </div>
  );
}

function scopeText(t: BotToken): string {
  const actions = t.scope.actions.join(', ');
  const chats = t.scope.chats ? ` · only ${plural(t.scope.chats.length, 'chat')} (${t.scope.chats.join(', ')})` : ' · every chat of the bot';
  return actions + chats;
}

function BotTokens(props: { store: AppStore; bot: Bot }) {
  const { store, bot } = props;
  const [tokens, setTokens] = useState<BotToken[] | null>(null);
  const [making, setMaking] = useState(false);
  const [name, setName] = useState('');
  const [actions, setActions] = useState<Set<BotAction>>(() => new Set<BotAction>(['read', 'send']));
  const [limit, setLimit] = useState(false);
  const [chats, setChats] = useState<Set<ChatId>>(() => new Set());
  const [shown, setShown] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const load = () =>
    store.api.botTokens(bot.user.id).then(setTokens, (e) => {
      if (!store.refused(e)) setError(botError(e));
    });
  useEffect(() => void load(), [store, bot.user.id]);
  // The chats I share with the bot: those a token may be limited to here.
  const shared = store.sortedChats().filter((c) => c.chat.members.some((m) => m.user.id === bot.user.id));

  const toggle = <T,>(set: Set<T>, value: T, on: boolean): Set<T> => {
    const next = new Set(set);
    if (on) next.add(value);
    else next.delete(value);
    return next;
  };

  async function make(e: Event) {
    e.preventDefault();
    setError(null);
    if (actions.size === 0) return setError('Choose at least one thing the token may do.');
    if (limit && chats.size === 0) return setError('Choose at least one chat, or allow every chat.');
    setBusy(true);
    try {
      const made = await store.api.createBotToken(
        bot.user.id,
        name.trim(),
        BOT_ACTIONS.filter((a) => actions.has(a)),
        limit ? [...chats] : undefined,
      );
      setShown(made.token);
      setMaking(false);
      setName('');
      void load();
    } catch (err) {
      if (!store.refused(err)) setError(botError(err));
    } finally {
      setBusy(false);
    }
  }

  async function revoke(t: BotToken) {
    const ok = await store.ask({ title: `Revoke the token "${t.device.name}"?`, body: 'The program using it is signed out at once.', confirm: 'Revoke', danger: true });
    if (!ok) return;
    try {
      await store.api.revokeBotToken(bot.user.id, t.device.id);
      setTokens((ts) => (ts ?? []).filter((x) => x.device.id !== t.device.id));
    } catch (e) {
      if (!store.refused(e)) setError(botError(e));
    }
  }

  return (
    <div class="bot-section" data-testid="bot-tokens">
      <h4>Tokens</h4>
      {shown && (
        <ShownOnce
          label="The new token"
          value={shown}
          testid="bot-token"
          note="It is shown this once: copy it now into the program that runs the bot (as Authorization: Bearer <token>). Revoke it below if it leaks."
          onDone={() => setShown(null)}
        />
      )}
      {tokens === null && <p class="settings-note">Loading…</p>}
      {tokens?.length === 0 && <p class="settings-note">No tokens: the bot cannot sign in yet.</p>}
      {tokens?.map((t) => (
        <div class="person" key={t.device.id} data-testid="bot-token-row" data-device-id={t.device.id}>
          <div class="person-text">
            <div class="person-name" dir="auto">
              {t.device.name}
            </div>
            <div class="muted" data-testid="bot-token-scope">
              {scopeText(t)}
            </div>
            <div class="muted">{t.device.last_used_at ? `Last used ${when(t.device.last_used_at)}` : `Made ${when(t.device.created_at)}, not used yet`}</div>
          </div>
          <button class="text-btn danger" data-testid="bot-token-revoke" aria-label={`Revoke ${t.device.name}`} onClick={() => void revoke(t)}>
            Revoke
          </button>
        </div>
      ))}
      {making ? (
        <form class="settings-form" onSubmit={make} data-testid="bot-token-form">
          <label class="settings-field">
            <span>What the token is for</span>
            <input required maxLength={64} value={name} dir="auto" data-testid="bot-token-name" onInput={(e) => setName(e.currentTarget.value)} autoFocus />
          </label>
          <fieldset class="settings-fieldset">
            <legend>It may</legend>
            {BOT_ACTIONS.map((a) => (
              <label class="settings-check" key={a}>
                <input type="checkbox" checked={actions.has(a)} data-testid={`bot-action-${a}`} onChange={(e) => setActions(toggle(actions, a, e.currentTarget.checked))} />
                <span>{ACTION_LABELS[a]}</span>
              </label>
            ))}
          </fieldset>
          <fieldset class="settings-fieldset">
            <legend>In</legend>
            <label class="settings-check">
              <input type="radio" name={`bot-${bot.user.id}-chats`} checked={!limit} data-testid="bot-chats-all" onChange={() => setLimit(false)} />
              <span>Every chat the bot is in</span>
            </label>
            <label class="settings-check">
              <input type="radio" name={`bot-${bot.user.id}-chats`} checked={limit} data-testid="bot-chats-some" onChange={() => setLimit(true)} />
              <span>Only some chats (works over HTTP only)</span>
            </label>
            {limit && shared.length === 0 && <p class="settings-form-note">You share no chat with this bot yet: open a chat with it, or add it to a group, first.</p>}
            {limit &&
              shared.map((c) => (
                <label class="settings-check nested" key={c.chat.id}>
                  <input type="checkbox" checked={chats.has(c.chat.id)} data-testid="bot-chat" data-chat-id={c.chat.id} onChange={(e) => setChats(toggle(chats, c.chat.id, e.currentTarget.checked))} />
                  <span dir="auto">{store.title(c)}</span>
                </label>
              ))}
          </fieldset>
          {error && (
            <p class="form-error settings-error" role="alert" data-testid="bot-token-error">
              {error}
            </p>
          )}
          <div class="settings-actions">
            <button class="primary" type="submit" disabled={busy} data-testid="bot-token-save">
              {busy ? 'Making…' : 'Make token'}
            </button>
            <button class="secondary" type="button" onClick={() => setMaking(false)}>
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <div class="settings-row">
          <span />
          <button
            class="secondary small"
            data-testid="bot-token-new"
            onClick={() => {
              setMaking(true);
              setError(null);
            }}
          >
            New token
          </button>
        </div>
      )}
      {!making && error && (
        <p class="form-error settings-error" role="alert" data-testid="bot-token-error">
          {error}
        </p>
      )}
    </div>
  );
}

function kindsText(kinds: WebhookKind[]): string {
  if (WEBHOOK_KINDS.every((k) => kinds.includes(k))) return 'Every event';
  return kinds.map((k) => KIND_LABELS[k]).join(', ');
}

function BotWebhooks(props: { store: AppStore; bot: Bot }) {
  const { store, bot } = props;
  const [hooks, setHooks] = useState<Webhook[] | null>(null);
  const [adding, setAdding] = useState(false);
  const [url, setUrl] = useState('');
  const [kinds, setKinds] = useState<Set<WebhookKind>>(() => new Set(WEBHOOK_KINDS));
  const [secret, setSecret] = useState<string | null>(null);
  const [log, setLog] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const load = () =>
    store.api.botWebhooks(bot.user.id).then(setHooks, (e) => {
      if (!store.refused(e)) setError(botError(e));
    });
  useEffect(() => void load(), [store, bot.user.id]);

  async function add(e: Event) {
    e.preventDefault();
    setError(null);
    if (kinds.size === 0) return setError('Choose at least one event.');
    setBusy(true);
    try {
      const all = kinds.size === WEBHOOK_KINDS.length;
      const made = await store.api.createBotWebhook(bot.user.id, url.trim(), all ? undefined : WEBHOOK_KINDS.filter((k) => kinds.has(k)));
      setSecret(made.secret);
      setAdding(false);
      setUrl('');
      void load();
    } catch (err) {
      if (!store.refused(err)) setError(botError(err));
    } finally {
      setBusy(false);
    }
  }

  const act = async (f: () => Promise<void>) => {
    setError(null);
    try {
      await f();
    } catch (e) {
      if (!store.refused(e)) setError(botError(e));
    }
  };
  const enable = (h: Webhook) =>
    act(async () => {
      const on = await store.api.enableWebhook(h.id);
      setHooks((hs) => (hs ?? []).map((x) => (x.id === on.id ? on : x)));
    });
  const remove = (h: Webhook) =>
    act(async () => {
      const ok = await store.ask({ title: 'Remove this webhook?', body: `${h.url} is not called any more.`, confirm: 'Remove', danger: true });
      if (!ok) return;
      await store.api.deleteWebhook(h.id);
      setHooks((hs) => (hs ?? []).filter((x) => x.id !== h.id));
      if (log === h.id) setLog(null);
    });

  return (
    <div class="bot-section" data-testid="bot-webhooks">
      <h4>Webhooks</h4>
      {secret && (
        <ShownOnce
          label="The webhook's signing secret"
          value={secret}
          testid="webhook-secret"
          note="It is shown this once: each call carries Hark-Signature, an HMAC-SHA256 of the Hark-Timestamp, a dot and the body with this secret. Check it before trusting a call."
          onDone={() => setSecret(null)}
        />
      )}
      {hooks === null && <p class="settings-note">Loading…</p>}
      {hooks?.length === 0 && <p class="settings-note">No webhooks: nothing is sent to your server.</p>}
      {hooks?.map((h) => (
        <div class="webhook-item" key={h.id} data-testid="webhook" data-webhook-id={h.id} data-disabled={h.disabled ? 'true' : undefined}>
          <div class="person">
            <div class="person-text">
              <div class="person-name webhook-url" title={h.url}>
                {h.url}
              </div>
              <div class="muted">{kindsText(h.events)}</div>
              <div class={h.disabled ? 'webhook-off' : 'muted'} data-testid="webhook-state">
                {h.disabled ? `Off: ${h.disabled}` : h.failures > 0 ? `On · ${plural(h.failures, 'failed call')} in a row` : 'On'}
              </div>
            </div>
            <div class="person-actions">
              {h.disabled && (
                <button class="text-btn" data-testid="webhook-enable" onClick={() => void enable(h)}>
                  Turn on again
                </button>
              )}
              <button class="text-btn" data-testid="webhook-log" aria-expanded={log === h.id} onClick={() => setLog(log === h.id ? null : h.id)}>
                {log === h.id ? 'Hide log' : 'Delivery log'}
              </button>
              <button class="text-btn danger" data-testid="webhook-remove" onClick={() => void remove(h)}>
                Remove
              </button>
            </div>
          </div>
          {log === h.id && <DeliveryLog store={store} webhook={h} />}
        </div>
      ))}
      {adding ? (
        <form class="settings-form" onSubmit={add} data-testid="webhook-form">
          <label class="settings-field">
            <span>URL (https)</span>
            <input
              type="url"
              required
              maxLength={2048}
              placeholder="https://example.com/hark"
              value={url}
              data-testid="webhook-url"
              onInput={(e) => setUrl(e.currentTarget.value)}
              autoFocus
            />
          </label>
          <fieldset class="settings-fieldset">
            <legend>Called for</legend>
            {WEBHOOK_KINDS.map((k) => (
              <label class="settings-check" key={k}>
                <input
                  type="checkbox"
                  checked={kinds.has(k)}
                  data-testid={`webhook-kind-${k}`}
                  onChange={(e) => {
                    const next = new Set(kinds);
                    if (e.currentTarget.checked) next.add(k);
                    else next.delete(k);
                    setKinds(next);
                  }}
                />
                <span>{KIND_LABELS[k]}</span>
              </label>
            ))}
          </fieldset>
          {error && (
            <p class="form-error settings-error" role="alert" data-testid="webhook-error">
              {error}
            </p>
          )}
          <div class="settings-actions">
            <button class="primary" type="submit" disabled={busy} data-testid="webhook-save">
              {busy ? 'Adding…' : 'Add webhook'}
            </button>
            <button class="secondary" type="button" onClick={() => setAdding(false)}>
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <div class="settings-row">
          <span />
          <button
            class="secondary small"
            data-testid="webhook-new"
            onClick={() => {
              setAdding(true);
              setError(null);
            }}
          >
            Add webhook
          </button>
        </div>
      )}
      {!adding && error && (
        <p class="form-error settings-error" role="alert" data-testid="webhook-error">
          {error}
        </p>
      )}
    </div>
  );
}

function DeliveryLog(props: { store: AppStore; webhook: Webhook }) {
  const { store, webhook } = props;
  const [calls, setCalls] = useState<WebhookDelivery[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = () => {
    setError(null);
    store.api.webhookDeliveries(webhook.id, 20).then(setCalls, (e) => {
      if (!store.refused(e)) setError(botError(e));
    });
  };
  useEffect(load, [store, webhook.id]);
  return (
    <div class="delivery-log" data-testid="webhook-deliveries">
      {calls === null && !error && <p class="settings-note">Loading…</p>}
      {calls?.length === 0 && <p class="settings-note">Not called yet.</p>}
      {calls && calls.length > 0 && (
        <ul>
          {calls.map((c, i) => (
            <li key={`${c.event_id}-${i}`} class={c.delivered ? 'delivered' : 'failed'} data-testid="webhook-delivery">
              <span class="delivery-when">{when(c.attempted_at)}</span>
              <span class="delivery-kind">{KIND_LABELS[c.kind] ?? c.kind}</span>
              <span class="delivery-result">
                {c.delivered ? 'Delivered' : 'Failed'}
                {c.status !== undefined ? ` · HTTP ${c.status}` : ''}
                {c.error ? ` · ${c.error}` : ''} · {c.duration_ms} ms
              </span>
            </li>
          ))}
        </ul>
      )}
      {error && (
        <p class="form-error settings-error" role="alert">
          {error}
        </p>
      )}
      <div class="settings-row">
        <span />
        <button class="secondary small" data-testid="webhook-log-refresh" onClick={load}>
          Refresh
        </button>
      </div>
    </div>
  );
}
