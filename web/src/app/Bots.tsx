// Settings → Bots: accounts run by a program (docs/protocol.md "Bots"),
// made and managed by this person. Each bot opens to its tokens (made with
// a name, the actions it may take and, if wanted, only some chats; the
// token is shown once, with a copy button) and its webhooks (./Webhooks,
// as a group's). Deleting a bot asks first.

import { useEffect, useState } from 'preact/hooks';
import { BOT_ACTIONS, HarkError, type Bot, type BotAction, type BotToken, type ChatId, type UserId } from '../hark-client';
import { AddForm, Checklist, ShownOnce } from './forms';
import type { AppStore } from './store';
import { BotBadge, errorText, plural, when } from './ui';
import { Webhooks } from './Webhooks';

const ACTION_LABELS: Record<BotAction, string> = {
  read: 'Read its chats and messages',
  send: 'Send messages',
  react: 'React to messages',
  mark: 'Mark messages delivered and read',
  typing: 'Show typing',
};

/** A refusal in words; the server's message otherwise. */
function botError(e: unknown): string {
  if (e instanceof HarkError && e.code === 'username_taken') return 'That username is taken.';
  return errorText(e, 'bots');
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
      <div class="bot-section">
        <h4>Webhooks</h4>
        <Webhooks store={props.store} target={{ bot: props.bot.user.id }} testid="bot-webhooks" />
      </div>
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

  const toggle = (set: Set<ChatId>, value: ChatId, on: boolean): Set<ChatId> => {
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
      <AddForm
        testid="bot-token"
        open={making}
        onOpen={() => {
          setMaking(true);
          setError(null);
        }}
        onCancel={() => setMaking(false)}
        onSubmit={make}
        busy={busy}
        button="New token"
        submit="Make token"
        busyLabel="Making…"
        error={error}
      >
        <label class="settings-field">
          <span>What the token is for</span>
          <input required maxLength={64} value={name} dir="auto" data-testid="bot-token-name" onInput={(e) => setName(e.currentTarget.value)} autoFocus />
        </label>
        <Checklist legend="It may" options={BOT_ACTIONS} labels={ACTION_LABELS} chosen={actions} onChange={setActions} testid="bot-action" />
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
      </AddForm>
    </div>
  );
}
