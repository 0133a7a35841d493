// The right-hand drawer: group / contact info (disappearing messages,
// rename, members, add, remove, admins, the group's webhooks for its
// admins, leave; a contact's devices, adding them to contacts, blocking
// them) and "message info" (who received and read a message).

import { useEffect, useRef, useState } from 'preact/hooks';
import { DISAPPEARING_SECS, type Member, type MessageInfo as MessageInfoBody, type User } from '../hark-client';
import { PersonActions } from './Contacts';
import { ContactDevices, VerifiedIcon } from './Devices';
import { LockIcon } from './Encryption';
import { PersonAvatar } from './Profile';
import { ChatSearch } from './Search';
import { summaryOf } from './media';
import { isDeletedAccount, type AppStore, type ChatModel } from './store';
import { Avatar, BotBadge, clock, CloseIcon, dayLabel, disappearingLabel, errorText, PencilIcon, CheckIcon, SearchIcon, Ticks, TimerIcon } from './ui';
import { Webhooks } from './Webhooks';

export type Panel = { kind: 'chat' } | { kind: 'message'; seq: number } | { kind: 'search' } | { kind: 'devices'; user: number };

export function InfoPanel(props: { store: AppStore; model: ChatModel; panel: Panel; onPanel: (p: Panel | null) => void }) {
  const { panel } = props;
  return (
    <aside class="panel" data-testid={panel.kind === 'chat' ? 'info-panel' : panel.kind === 'search' ? 'search-panel' : panel.kind === 'devices' ? 'devices-panel' : 'message-info'}>
      <header class="panel-header">
        <button class="icon-btn" aria-label="Close" data-testid="panel-close" onClick={() => props.onPanel(null)}>
          <CloseIcon />
        </button>
        <h2>
          {panel.kind === 'message'
            ? 'Message info'
            : panel.kind === 'search'
            ? 'Search messages'
            : panel.kind === 'devices'
            ? 'Devices'
            : props.model.chat.kind === 'group'
            ? 'Group info'
            : 'Contact info'}
        </h2>
      </header>
      <div class="panel-body">
        {panel.kind === 'message' ? (
          <MessageInfo {...props} seq={panel.seq} />
        ) : panel.kind === 'search' ? (
          <ChatSearch store={props.store} model={props.model} />
        ) : panel.kind === 'devices' ? (
          <MemberDevices store={props.store} model={props.model} user={panel.user} onPanel={props.onPanel} />
        ) : (
          <ChatInfo {...props} />
        )}
      </div>
    </aside>
  );
}

/** Under an encrypted chat's name in its info. */
function EncryptionNote() {
  return (
    <div class="info-e2e" data-testid="info-e2e">
      <LockIcon size={16} />
      <span>Messages are end-to-end encrypted. Only the people in this chat can read them, not even the Hark server.</span>
    </div>
  );
}

/** One member's devices (from the group's member list or a chat's warning). */
function MemberDevices(props: { store: AppStore; model: ChatModel; user: number; onPanel: (p: Panel | null) => void }) {
  const { store, model, user } = props;
  const member = store.member(model, user);
  const name = store.userName(model, user);
  return (
    <>
      <div class="info-head">
        <PersonAvatar store={store} user={member?.user} name={name} id={user} size={96} />
        <div class="info-title" dir="auto">
          {name}
          <BotBadge user={member?.user} />
        </div>
        {member && <div class="muted">@{member.user.username}</div>}
      </div>
      <ContactDevices store={store} user={user} name={name} />
      <section class="card">
        <button class="danger-row back-row" data-testid="devices-back" onClick={() => props.onPanel({ kind: 'chat' })}>
          {model.chat.kind === 'group' ? 'Back to group info' : 'Back to contact info'}
        </button>
      </section>
    </>
  );
}

function MessageInfo(props: { store: AppStore; model: ChatModel; seq: number }) {
  const { store, model, seq } = props;
  const m = model.messages.get(seq);
  // Times come from the server's message info; the lists themselves follow
  // the live watermarks, so they change while the panel is open.
  const [times, setTimes] = useState<MessageInfoBody | null>(null);
  const readCount = model.chat.members.filter((x) => x.read_up_to >= seq).length;
  const deliveredCount = model.chat.members.filter((x) => x.delivered_up_to >= seq).length;
  useEffect(() => {
    let cancelled = false;
    store.api
      .messageInfo(model.chat.id, seq)
      .then((info) => !cancelled && setTimes(info))
      .catch(() => {});
    return () => {
      cancelled = true;
    };
  }, [store, model.chat.id, seq, readCount, deliveredCount]);
  const when = (userId: number, key: 'read_at' | 'delivered_at') => {
    const at = times?.recipients.find((r) => r.user_id === userId)?.[key];
    return at ? `${key === 'read_at' ? 'Read' : 'Delivered'} ${dayLabel(at) === 'Today' ? '' : `${dayLabel(at)}, `}${clock(at)}` : null;
  };
  const others = model.chat.members.filter((x) => x.user.id !== store.me.id);
  const read = others.filter((x) => x.read_up_to >= seq);
  const delivered = others.filter((x) => x.read_up_to < seq && x.delivered_up_to >= seq);
  const waiting = others.filter((x) => x.delivered_up_to < seq);
  const section = (label: string, people: Member[], tick: 'read' | 'delivered' | 'sent', testid: string) => (
    <section class="card" data-testid={testid}>
      <h3>
        <Ticks tick={tick} /> {label}
      </h3>
      {people.length === 0 ? (
        <p class="muted">Nobody yet</p>
      ) : (
        people.map((p) => (
          <div class="person" key={p.user.id} data-testid="receipt-person">
            <Avatar name={p.user.display_name} id={p.user.id} size={36} />
            <div>
              <div class="person-name" dir="auto">
                {p.user.display_name}
                <BotBadge user={p.user} />
              </div>
              <div class="muted" data-testid="receipt-time">
                {(tick === 'read' && when(p.user.id, 'read_at')) || (tick === 'delivered' && when(p.user.id, 'delivered_at')) || `@${p.user.username}`}
              </div>
            </div>
          </div>
        ))
      )}
    </section>
  );
  return (
    <>
      {m && (
        <div class="info-preview">
          <div class="bubble out-preview">
            <span class="text" dir="auto">{summaryOf(m)}</span>
            <span class="meta-spacer with-ticks" aria-hidden="true" />
            <span class="meta">
              {clock(m.sent_at)} <Ticks tick={store.tick(model, seq)} />
            </span>
          </div>
        </div>
      )}
      {section('Read by', read, 'read', 'read-by')}
      {section('Delivered to', delivered, 'delivered', 'delivered-to')}
      {waiting.length > 0 && section('Not delivered yet', waiting, 'sent', 'waiting-for')}
    </>
  );
}

function ChatInfo(props: { store: AppStore; model: ChatModel; onPanel: (p: Panel | null) => void }) {
  const { store, model } = props;
  const group = model.chat.kind === 'group';
  const title = store.title(model);
  const meMember = store.member(model, store.me.id);
  const admin = !!meMember?.admin && !model.left;
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(title);
  const [error, setError] = useState<string | null>(null);
  const [adding, setAdding] = useState(false);
  const run = async (f: () => Promise<void>) => {
    setError(null);
    try {
      await f();
    } catch (e) {
      setError(errorText(e, 'group-change'));
    }
  };

  if (!group) {
    const peer = store.peer(model);
    // Their account deleted: the chat's history stays, with nobody to add, block or verify.
    const gone = !!peer && isDeletedAccount(peer);
    return (
      <>
        <div class="info-head">
          <PersonAvatar store={store} user={peer} name={title} id={model.chat.id * 7} size={160} />
          <div class="info-title" dir="auto" data-testid="info-title">
            {title}
            <BotBadge user={peer} />
          </div>
          {gone ? (
            <div class="muted" data-testid="info-deleted">
              This account was deleted
            </div>
          ) : (
            <div class="muted">@{peer?.username}</div>
          )}
          {store.isEncrypted(model) && <EncryptionNote />}
          {store.isEncrypted(model) && peer && store.isVerifiedContact(peer.id) && (
            <div class="verified-tag" data-testid="info-verified">
              <VerifiedIcon size={16} /> Verified
            </div>
          )}
        </div>
        {peer && !gone && <AboutCard store={store} user={peer.id} />}
        {!gone && <DisappearingSetting store={store} model={model} />}
        {store.isEncrypted(model) && peer && !gone && <ContactDevices store={store} user={peer.id} name={peer.display_name} />}
        {peer && !gone && <PersonActions store={store} user={peer} />}
      </>
    );
  }

  const encrypted = store.isEncrypted(model);
  const members = [...model.chat.members].sort((a, b) =>
    a.user.id === store.me.id ? -1 : b.user.id === store.me.id ? 1 : a.user.display_name.localeCompare(b.user.display_name),
  );

  return (
    <>
      <div class="info-head">
        <Avatar name={title} id={model.chat.id * 7} size={160} group />
        {editing ? (
          <form
            class="rename"
            onSubmit={(e) => {
              e.preventDefault();
              void run(async () => {
                await store.rename(model.chat.id, draft.trim());
                setEditing(false);
              });
            }}
          >
            <input class="underline" aria-label="Group name" dir="auto" value={draft} maxLength={64} data-testid="rename-input" onInput={(e) => setDraft(e.currentTarget.value)} autoFocus />
            <button class="icon-btn" type="submit" aria-label="Save name" data-testid="rename-save">
              <CheckIcon />
            </button>
          </form>
        ) : (
          <div class="info-title" data-testid="info-title">
            <span dir="auto">{title}</span>
            {admin && (
              <button class="icon-btn small" aria-label="Rename group" data-testid="rename" onClick={() => { setDraft(title); setEditing(true); }}>
                <PencilIcon />
              </button>
            )}
          </div>
        )}
        <div class="muted">Group · {model.chat.members.length} members</div>
        {store.isEncrypted(model) && <EncryptionNote />}
      </div>
      {error && <div class="form-error" role="alert">{error}</div>}
      <DisappearingSetting store={store} model={model} />
      <section class="card">
        <h3>{model.chat.members.length} members</h3>
        {admin && !adding && (
          <button class="person add" data-testid="add-member" onClick={() => setAdding(true)}>
            <span class="add-icon">+</span>
            <span class="person-name">Add member</span>
          </button>
        )}
        {adding && <AddMember store={store} model={model} onDone={() => setAdding(false)} />}
        {members.map((m) => (
          <div class="person" key={m.user.id} data-testid="member" data-username={m.user.username}>
            <PersonAvatar store={store} user={m.user} name={m.user.display_name} size={40} />
            <div class="person-text">
              <div class="person-name" dir="auto">
                {m.user.id === store.me.id ? 'You' : m.user.display_name}
                <BotBadge user={m.user} />
              </div>
              <div class="muted">@{m.user.username}</div>
            </div>
            {m.admin && <span class="admin-tag">Group admin</span>}
            {encrypted && m.user.id !== store.me.id && store.isVerifiedContact(m.user.id) && (
              <span class="member-verified" data-testid="member-verified">
                <VerifiedIcon size={16} title="Verified" />
              </span>
            )}
            {encrypted && m.user.id !== store.me.id && (
              <button class="text-btn" data-testid="member-devices" aria-label={`Devices of ${m.user.display_name}`} onClick={() => props.onPanel({ kind: 'devices', user: m.user.id })}>
                Devices
              </button>
            )}
            {admin && m.user.id !== store.me.id && (
              <div class="person-actions">
                <button class="text-btn" data-testid="toggle-admin" onClick={() => void run(() => store.setAdmin(model.chat.id, m.user.id, !m.admin))}>
                  {m.admin ? 'Dismiss admin' : 'Make admin'}
                </button>
                <button
                  class="text-btn danger"
                  data-testid="remove-member"
                  onClick={() =>
                    void store
                      .ask({ title: `Remove ${m.user.display_name} from "${title}"?`, confirm: 'Remove', danger: true })
                      .then((ok) => void (ok && run(() => store.removeMember(model.chat.id, m.user.id))))
                  }
                >
                  Remove
                </button>
              </div>
            )}
          </div>
        ))}
      </section>
      {admin && (
        <section class="card webhooks-card" data-testid="chat-webhooks-card">
          <h3>Webhooks</h3>
          <Webhooks
            store={store}
            target={{ chat: model }}
            testid="chat-webhooks"
            note={
              encrypted
                ? "URLs Hark calls for this group's events, signed with a secret shown once. Messages here are end-to-end encrypted: a webhook gets only their ciphertext."
                : "URLs Hark calls for this group's events (new messages, members joining…), signed with a secret shown once. Only the group's admins see them."
            }
          />
        </section>
      )}
      {!model.left && (
        <section class="card">
          <button
            class="danger-row"
            data-testid="leave-group"
            onClick={() => {
              void store
                .ask({ title: `Exit "${title}"?`, body: 'You will no longer receive its messages.', confirm: 'Exit group', danger: true })
                .then((ok) => void (ok && run(() => store.removeMember(model.chat.id, store.me.id))));
            }}
          >
            Exit group
          </button>
        </section>
      )}
    </>
  );
}

/** A contact's about line, when they have one this user may see (asked for again as the panel opens). */
function AboutCard(props: { store: AppStore; user: number }) {
  const { store, user } = props;
  useEffect(() => store.profiles.refresh(user), [store, user]);
  const about = store.profiles.of(user)?.about;
  if (!about) return null;
  return (
    <section class="card about-card" data-testid="info-about-card">
      <h3>About</h3>
      <p class="about-text" dir="auto" data-testid="info-about">
        {about}
      </p>
    </section>
  );
}

/**
 * "Disappearing messages": Off, 24 hours, 7 days or 90 days, for messages
 * sent from now on (a radio group; the arrow keys move between the
 * choices, Enter or Space picks one). Either member of a one-to-one chat
 * may change it, in a group only admins: others see it greyed out and why.
 * A refusal shows here, in `errorText`'s words.
 */
function DisappearingSetting(props: { store: AppStore; model: ChatModel }) {
  const { store, model } = props;
  const chatId = model.chat.id;
  const current = model.chat.disappearing_secs ?? 0;
  const allowed = store.canSetDisappearing(model);
  const [busy, setBusy] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const group = useRef<HTMLDivElement>(null);
  useEffect(() => setError(null), [chatId]);
  const choose = async (seconds: number) => {
    if (!allowed || busy !== null || seconds === current) return;
    setBusy(seconds);
    setError(null);
    try {
      await store.setDisappearing(chatId, seconds);
    } catch (e) {
      setError(errorText(e, model.chat.kind === 'group' ? 'group-change' : 'disappearing'));
    } finally {
      setBusy(null);
    }
  };
  const onKey = (e: KeyboardEvent) => {
    const step = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 }[e.key];
    if (step === undefined) return;
    e.preventDefault();
    const radios = [...(group.current?.querySelectorAll<HTMLElement>('[role=radio]') ?? [])];
    const i = radios.indexOf(document.activeElement as HTMLElement);
    radios[(i + step + radios.length) % radios.length]?.focus();
  };
  const why = model.left
    ? "You're no longer a member of this group."
    : allowed
    ? null
    : 'Only group admins can change this setting.';
  return (
    <section class="card disappearing-card" data-testid="disappearing-setting" data-seconds={current}>
      <h3 id={`disappearing-${chatId}`}>
        <TimerIcon size={18} /> Disappearing messages
      </h3>
      <p class="disappearing-note" id={`disappearing-note-${chatId}`} data-testid="disappearing-note">
        {current
          ? `On: new messages disappear ${disappearingLabel(current)} after they are sent.`
          : 'Off. When on, new messages in this chat disappear after the time you choose.'}{' '}
        {why && (
          <span class="disappearing-locked" data-testid="disappearing-locked">
            {why}
          </span>
        )}
      </p>
      <div
        class="choices"
        role="radiogroup"
        ref={group}
        aria-labelledby={`disappearing-${chatId}`}
        aria-describedby={`disappearing-note-${chatId}`}
        aria-disabled={allowed ? undefined : 'true'}
        onKeyDown={onKey}
      >
        {DISAPPEARING_SECS.map((seconds) => (
          <button
            key={seconds}
            type="button"
            class="choice"
            role="radio"
            aria-checked={seconds === current}
            tabIndex={seconds === current ? 0 : -1}
            disabled={!allowed}
            data-testid="disappearing-option"
            data-seconds={seconds}
            onClick={() => void choose(seconds)}
          >
            <span class={`radio-dot ${seconds === current ? 'on' : ''}`} aria-hidden="true" />
            <span>{disappearingLabel(seconds)}</span>
            {busy === seconds && <span class="muted choice-busy">Saving…</span>}
          </button>
        ))}
      </div>
      {error && (
        <div class="form-error" role="alert" data-testid="disappearing-error">
          {error}
        </div>
      )}
    </section>
  );
}

/**
 * "Add member": people found by username; choosing one adds them. A refusal
 * (too many additions at once, not an admin, a full group) shows here, with
 * what was typed kept, so the same choice can be tried again.
 */
function AddMember(props: { store: AppStore; model: ChatModel; onDone: () => void }) {
  const { store, model } = props;
  const [q, setQ] = useState('');
  const [users, setUsers] = useState<User[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const add = async (u: User) => {
    setBusy(true);
    setError(null);
    try {
      await store.addMember(model.chat.id, u.id);
      props.onDone();
    } catch (e) {
      setError(errorText(e, 'add-member'));
      setBusy(false);
    }
  };
  useEffect(() => {
    const query = q.trim().replace(/^@/, '');
    if (!query) return setUsers([]);
    let cancelled = false;
    const t = setTimeout(() => {
      store.api.searchUsers(query).then((u) => !cancelled && setUsers(u)).catch(() => {});
    }, 150);
    return () => {
      cancelled = true;
      clearTimeout(t);
    };
  }, [q, store]);
  const inGroup = new Set(model.chat.members.map((m) => m.user.id));
  return (
    <div class="add-member">
      <div class="search-box">
        <SearchIcon />
        <input aria-label="Username to add" autoFocus placeholder="Username to add" value={q} data-testid="add-member-search" onInput={(e) => setQ(e.currentTarget.value)} />
        <button class="icon-btn small" aria-label="Cancel" onClick={props.onDone}>
          <CloseIcon />
        </button>
      </div>
      {error && (
        <div class="form-error" role="alert" data-testid="add-member-error">
          {error}
        </div>
      )}
      {users
        .filter((u) => !inGroup.has(u.id))
        .map((u) => (
          <button class="person add" key={u.id} data-testid="add-member-result" data-username={u.username} disabled={busy} onClick={() => void add(u)}>
            <Avatar name={u.display_name} id={u.id} size={40} />
            <div class="person-text">
              <div class="person-name" dir="auto">
                {u.display_name}
                <BotBadge user={u} />
              </div>
              <div class="muted">@{u.username}</div>
            </div>
          </button>
        ))}
    </div>
  );
}
