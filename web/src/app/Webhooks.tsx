// Webhooks (docs/protocol.md "Webhooks"): URLs Hark calls for events, a
// bot's (Settings → Bots) or one group's (its info, for its admins). The
// list says what each is called for, whether it is on (its failures in a
// row, or why it was turned off) and its last call; adding one shows its
// signing secret once; one is turned on again, removed, and its delivery
// log read here by who added it (or the bot's owner, or a server admin).

import { useEffect, useState } from 'preact/hooks';
import { HarkError, WEBHOOK_KINDS, type ChatId, type UserId, type Webhook, type WebhookCreated, type WebhookDelivery, type WebhookKind } from '../hark-client';
import { AddForm, Checklist, ShownOnce } from './forms';
import type { AppStore, ChatModel } from './store';
import { errorText, plural, when } from './ui';

/** Whose events: a bot's (every chat it is in), or one chat's. */
export type WebhookTarget = { bot: UserId } | { chat: ChatModel };

const KIND_LABELS: Record<WebhookKind, string> = {
  message_created: 'New messages',
  message_edited: 'Edited messages',
  message_deleted: 'Deleted messages',
  member_joined: 'Members joining',
  member_left: 'Members leaving',
  reaction: 'Reactions',
  chat_created: 'New chats with the bot',
};

/** A chat's webhook is never called for a new chat: it is offered the rest. */
const CHAT_KINDS: readonly WebhookKind[] = WEBHOOK_KINDS.filter((k) => k !== 'chat_created');

/** A refusal in words: a URL Hark will not call (SSRF protection) says which and why; the server's message otherwise. */
export function webhookError(e: unknown): string {
  if (e instanceof HarkError && e.code === 'url_not_allowed') {
    return `This URL is not allowed: ${e.message}. Hark calls only https addresses on the public internet (a server's operator may allow hosts of their own network).`;
  }
  return errorText(e, 'webhooks');
}

function kindsText(kinds: WebhookKind[], offered: readonly WebhookKind[]): string {
  if (offered.every((k) => kinds.includes(k))) return 'Every event';
  return kinds.map((k) => KIND_LABELS[k]).join(', ');
}

function callText(c: WebhookDelivery): string {
  return `${c.delivered ? 'Delivered' : 'Failed'}${c.status !== undefined ? ` · HTTP ${c.status}` : ''}${c.error ? ` · ${c.error}` : ''}`;
}

/**
 * The webhooks of a bot or a chat, with adding, turning on again, removing
 * and the delivery log. `testid` names the section (`bot-webhooks`,
 * `chat-webhooks`); `note` is said above the list.
 */
export function Webhooks(props: { store: AppStore; target: WebhookTarget; testid: string; note?: string }) {
  const { store, target } = props;
  const chat: ChatModel | null = 'chat' in target ? target.chat : null;
  const chatId: ChatId | null = chat?.chat.id ?? null;
  const botId: UserId | null = 'bot' in target ? target.bot : null;
  const offered = chat ? CHAT_KINDS : WEBHOOK_KINDS;
  const [hooks, setHooks] = useState<Webhook[] | null>(null);
  // The newest call of each webhook this person manages (null: none yet).
  const [last, setLast] = useState<Record<string, WebhookDelivery | null>>({});
  const [adding, setAdding] = useState(false);
  const [url, setUrl] = useState('');
  const [kinds, setKinds] = useState<Set<WebhookKind>>(() => new Set(offered));
  const [secret, setSecret] = useState<string | null>(null);
  const [log, setLog] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  // A bot's webhooks are its owner's; a chat's, each of who added it (or a server admin).
  const manages = (h: Webhook) => !chat || h.user_id === store.me.id || store.role === 'admin';
  const fail = (e: unknown) => {
    if (!store.refused(e)) setError(webhookError(e));
  };
  const load = async () => {
    try {
      const list = chatId !== null ? await store.api.chatWebhooks(chatId) : await store.api.botWebhooks(botId as UserId);
      setHooks(list);
      const calls = await Promise.all(
        list.filter(manages).map(async (h) => [h.id, (await store.api.webhookDeliveries(h.id, 1))[0] ?? null] as const),
      );
      setLast(Object.fromEntries(calls));
    } catch (e) {
      setHooks((hs) => hs ?? []);
      fail(e);
    }
  };
  useEffect(() => {
    setLog(null);
    setSecret(null);
    void load();
  }, [store, chatId, botId]);

  async function add(e: Event) {
    e.preventDefault();
    setError(null);
    if (kinds.size === 0) return setError('Choose at least one event.');
    setBusy(true);
    try {
      const events = offered.every((k) => kinds.has(k)) ? undefined : offered.filter((k) => kinds.has(k));
      const made: WebhookCreated =
        chatId !== null ? await store.api.createChatWebhook(chatId, url.trim(), events) : await store.api.createBotWebhook(botId as UserId, url.trim(), events);
      setSecret(made.secret);
      setAdding(false);
      setUrl('');
      setKinds(new Set(offered));
      void load();
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  }

  const act = async (f: () => Promise<void>) => {
    setError(null);
    try {
      await f();
    } catch (e) {
      fail(e);
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
  const addedBy = (h: Webhook) => {
    if (!chat) return null;
    const who = h.user_id === store.me.id ? 'you' : store.userName(chat, h.user_id);
    return `Added by ${who}, ${when(h.created_at)}`;
  };
  const lastText = (h: Webhook) => {
    if (!(h.id in last)) return null;
    const c = last[h.id];
    return c ? `Last call ${when(c.attempted_at)}: ${callText(c)}` : 'Not called yet';
  };

  return (
    <div class="webhooks" data-testid={props.testid}>
      {props.note && <p class="settings-note">{props.note}</p>}
      {secret && (
        <ShownOnce
          label="The webhook's signing secret"
          value={secret}
          testid="webhook-secret"
          note="It is shown this once: copy it now into the program that receives the calls. Each call carries Hark-Signature, an HMAC-SHA256 of the Hark-Timestamp, a dot and the body with this secret. Check it before trusting a call."
          onDone={() => setSecret(null)}
        />
      )}
      {hooks === null && <p class="settings-note">Loading…</p>}
      {hooks?.length === 0 && (
        <p class="settings-note" data-testid="no-webhooks">
          {chat ? 'No webhooks: nothing from this group is sent anywhere.' : 'No webhooks: nothing is sent to your server.'}
        </p>
      )}
      {hooks?.map((h) => (
        <div class="webhook-item" key={h.id} data-testid="webhook" data-webhook-id={h.id} data-disabled={h.disabled ? 'true' : undefined}>
          <div class="person">
            <div class="person-text">
              <div class="person-name webhook-url" title={h.url}>
                {h.url}
              </div>
              <div class="muted" data-testid="webhook-events">
                {kindsText(h.events, offered)}
              </div>
              <div class={h.disabled ? 'webhook-off' : 'muted'} data-testid="webhook-state">
                {h.disabled ? `Off: ${h.disabled}` : h.failures > 0 ? `On · ${plural(h.failures, 'failed call')} in a row` : 'On'}
              </div>
              {lastText(h) && (
                <div class="muted" data-testid="webhook-last">
                  {lastText(h)}
                </div>
              )}
              {addedBy(h) && (
                <div class="muted" data-testid="webhook-added-by">
                  {addedBy(h)}
                </div>
              )}
            </div>
            {manages(h) && (
              <div class="person-actions">
                {h.disabled && (
                  <button class="text-btn" data-testid="webhook-enable" onClick={() => void enable(h)}>
                    Turn on again
                  </button>
                )}
                <button class="text-btn" data-testid="webhook-log" aria-expanded={log === h.id} onClick={() => setLog(log === h.id ? null : h.id)}>
                  {log === h.id ? 'Hide log' : 'Delivery log'}
                </button>
                <button class="text-btn danger" data-testid="webhook-remove" aria-label={`Remove the webhook ${h.url}`} onClick={() => void remove(h)}>
                  Remove
                </button>
              </div>
            )}
          </div>
          {log === h.id && <DeliveryLog store={store} webhook={h} onRefresh={() => void load()} />}
        </div>
      ))}
      <AddForm
        testid="webhook"
        open={adding}
        onOpen={() => {
          setAdding(true);
          setError(null);
        }}
        onCancel={() => setAdding(false)}
        onSubmit={add}
        busy={busy}
        button="Add webhook"
        submit="Add webhook"
        busyLabel="Adding…"
        error={error}
      >
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
        <Checklist legend="Called for" options={offered} labels={KIND_LABELS} chosen={kinds} onChange={setKinds} testid="webhook-kind" />
      </AddForm>
    </div>
  );
}

/** A webhook's newest calls (20), newest first; Refresh asks again (and the list around it, with its state). */
function DeliveryLog(props: { store: AppStore; webhook: Webhook; onRefresh: () => void }) {
  const { store, webhook } = props;
  const [calls, setCalls] = useState<WebhookDelivery[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = () => {
    setError(null);
    store.api.webhookDeliveries(webhook.id, 20).then(setCalls, (e) => {
      if (!store.refused(e)) setError(webhookError(e));
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
                {callText(c)} · {c.duration_ms} ms
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
        <button
          class="secondary small"
          data-testid="webhook-log-refresh"
          onClick={() => {
            load();
            props.onRefresh();
          }}
        >
          Refresh
        </button>
      </div>
    </div>
  );
}
