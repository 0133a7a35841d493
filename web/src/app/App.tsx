// The top level: the login screen, or the messenger for a session. Wide
// windows show the chat list, the open chat and its info side by side;
// narrow ones (phones) show one of them at a time, and the browser's back
// button walks back list ← chat ← info (each level is a history entry).

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { HarkApi, loadSession, saveSession, type Me, type Session } from '../hark-client';
import { AdminPanel } from './Admin';
import { ACCOUNT_DELETED, ACCOUNT_DISABLED, AuthScreen, DEVICE_EXPIRED, LOGIN_REFUSED } from './Auth';
import { ApprovalPrompt } from './DeviceApproval';
import { Checking, ForcedTwoFactor, gateOf, WaitingForApproval, type GateState } from './Gate';
import { ChatPane, EmptyPane } from './ChatPane';
import { InfoPanel, type Panel } from './InfoPanel';
import { listenToServiceWorker, takeChatParam } from './serviceWorker';
import { Sidebar } from './Sidebar';
import { AppStore, type LogoutReason, type Restriction } from './store';
import { Announcer, ConfirmDialog } from './ui';
import { VerificationDialog } from './Devices';

const SERVER = location.origin;

export function App() {
  const [session, setSession] = useState<Session | null>(() => loadSession(SERVER));
  // Why the last session ended, when the server ended it for a reason worth saying.
  const [notice, setNotice] = useState<string | null>(null);
  if (!session) {
    return (
      <AuthScreen
        server=""
        notice={notice}
        onSession={(s) => {
          saveSession(SERVER, s);
          setNotice(null);
          setSession(s);
        }}
      />
    );
  }
  const loggedOut = (code: LogoutReason | null) => {
    setNotice(
      code === 'account_disabled'
        ? ACCOUNT_DISABLED
        : code === 'token_expired'
          ? DEVICE_EXPIRED
          : code === 'account_deleted'
            ? ACCOUNT_DELETED
            : code === 'login_refused'
              ? LOGIN_REFUSED
              : null,
    );
    setSession(null);
  };
  const update = (s: Session) => {
    saveSession(SERVER, s);
    setSession(s);
  };
  return <SessionGate key={session.device.id} session={session} onSession={update} onLoggedOut={loggedOut} />;
}

/** How long start-up waits for `GET /v1/me` before opening the messenger anyway (it copes with a server out of reach). */
const CHECK_MS = 5_000;

/**
 * In front of the messenger: `GET /v1/me` says whether the server holds
 * this device back (a login waiting for approval, two-factor
 * authentication to set up first); then the screen that deals with it, or
 * the messenger. A login known to wait (its answer said `pending`, kept in
 * the session) shows the waiting screen at once, a reload too. The
 * messenger comes back here when the server refuses it for either reason.
 */
function SessionGate(props: { session: Session; onSession: (s: Session) => void; onLoggedOut: (code: LogoutReason | null) => void }) {
  const { session } = props;
  const [gate, setGate] = useState<GateState>(
    session.device.pending ? 'pending' : session.cleared ? 'open' : 'checking',
  );
  const decide = (me: Me) => {
    const pending = me.device.pending === true;
    const next = gateOf(me);
    const cleared = next === 'open';
    // Kept for a reload: a waiting login shows the waiting screen straight
    // away, and one the server cleared opens the messenger without asking.
    if (pending !== (session.device.pending === true) || cleared !== (session.cleared === true)) {
      props.onSession({ ...session, cleared, device: { ...session.device, pending } });
    }
    setGate(next);
  };
  useEffect(() => {
    if (gate !== 'checking') return;
    let done = false;
    const settle = (f: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      f();
    };
    // Whatever else goes wrong (the server out of reach, the token refused),
    // the messenger deals with it as it always has.
    const timer = setTimeout(() => settle(() => setGate('open')), CHECK_MS);
    new HarkApi('', session.token).me().then(
      (me) => settle(() => decide(me)),
      () => settle(() => setGate('open')),
    );
    return () => {
      done = true;
      clearTimeout(timer);
    };
  }, [gate]);
  switch (gate) {
    case 'checking':
      return <Checking />;
    case 'pending':
      return <WaitingForApproval session={session} onMe={decide} onLoggedOut={props.onLoggedOut} />;
    case 'two_factor':
      return <ForcedTwoFactor session={session} onDone={() => setGate('checking')} onLoggedOut={props.onLoggedOut} />;
    case 'open':
      return (
        <Messenger
          session={session}
          onLoggedOut={props.onLoggedOut}
          onRestricted={() => {
            if (session.cleared) props.onSession({ ...session, cleared: false });
            setGate('checking');
          }}
        />
      );
  }
}

function useStore(store: AppStore): void {
  const [, setVersion] = useState(0);
  useEffect(() => store.subscribe(() => setVersion((v) => v + 1)), [store]);
}

/** How deep the view is: 0 the chat list, 1 a chat, 2 its info panel. */
type Level = 0 | 1 | 2;
const levelOf = (state: unknown): Level => {
  const l = (state as { harkLevel?: number } | null)?.harkLevel;
  return l === 1 || l === 2 ? l : 0;
};

/**
 * Keep one history entry per level, so the browser's back button (and the
 * phone's) closes the panel, then the chat. Going back in the app goes back
 * in history too, so the two never disagree.
 */
function useHistoryLevels(level: Level, onBack: (to: Level) => void): void {
  const going = useRef(false);
  const back = useRef(onBack);
  back.current = onBack;
  useEffect(() => {
    // A reload keeps history.state; the app starts at the list again.
    if (levelOf(history.state) !== 0) history.replaceState({ ...(history.state ?? {}), harkLevel: 0 }, '');
    const onPop = (e: PopStateEvent) => {
      going.current = false;
      back.current(levelOf(e.state));
    };
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);
  useEffect(() => {
    if (going.current) return;
    const current = levelOf(history.state);
    if (level > current) {
      for (let l = current + 1; l <= level; l++) history.pushState({ harkLevel: l }, '');
    } else if (level < current) {
      going.current = true;
      history.go(level - current);
    }
  }, [level]);
}

/**
 * Administration covers the whole window and is a history entry of its own
 * (`harkAdmin` in the entry's state), so the browser's back button closes it.
 */
function useAdminView(): [boolean, () => void, () => void] {
  const [open, setOpen] = useState(false);
  useEffect(() => {
    // A reload starts at the chats again.
    if ((history.state as { harkAdmin?: boolean } | null)?.harkAdmin) history.replaceState({ ...history.state, harkAdmin: false }, '');
    const onPop = (e: PopStateEvent) => setOpen(Boolean((e.state as { harkAdmin?: boolean } | null)?.harkAdmin));
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);
  const show = () => {
    history.pushState({ ...(history.state ?? {}), harkAdmin: true }, '');
    setOpen(true);
  };
  const hide = () => {
    if ((history.state as { harkAdmin?: boolean } | null)?.harkAdmin) history.back();
    else setOpen(false);
  };
  return [open, show, hide];
}

function Messenger(props: { session: Session; onLoggedOut: (code: LogoutReason | null) => void; onRestricted: (code: Restriction) => void }) {
  const store = useMemo(() => new AppStore('', props.session, props.onLoggedOut, props.onRestricted), [props.session]);
  useEffect(() => {
    store.start();
    return () => store.conn.close();
  }, [store]);
  useStore(store);
  // A clicked notification opens its chat: in this window (a message from
  // the service worker), or in a new one at /?chat=<id>.
  useEffect(() => {
    const chat = takeChatParam();
    if (chat !== null) store.openWhenReady(chat);
    return listenToServiceWorker({ openChat: (id) => store.openWhenReady(id), openChatId: () => store.openChatId });
  }, [store]);
  const [panel, setPanel] = useState<Panel | null>(null);
  const open = store.openChatId !== null ? store.chats.get(store.openChatId) : undefined;
  const [admin, showAdmin, hideAdmin] = useAdminView();
  // Someone took this user's admin role away: Administration closes.
  const isAdmin = store.role === 'admin';
  useEffect(() => {
    if (admin && !isAdmin) hideAdmin();
  }, [admin, isAdmin]);

  useEffect(() => setPanel(null), [store.openChatId]);

  const level: Level = open ? (panel ? 2 : 1) : 0;
  useHistoryLevels(level, (to) => {
    if (to < 2) setPanel(null);
    if (to < 1) void store.openChat(null);
  });

  // The tab title carries the unread count, like WhatsApp Web's "(3) WhatsApp".
  // Muted chats do not count, as their notifications are off.
  const unread = [...store.chats.values()].reduce((n, c) => n + (store.unread(c) > 0 && !store.isMuted(c) ? 1 : 0), 0);
  useEffect(() => {
    document.title = unread > 0 ? `(${unread}) Hark` : 'Hark';
  }, [unread]);

  const view = level === 2 ? 'info' : level === 1 ? 'chat' : 'list';
  if (admin && isAdmin) {
    return (
      <div class="app admin-open" data-view="admin" data-testid="app">
        <AdminPanel store={store} onClose={hideAdmin} />
        <ApprovalPrompt store={store} />
        <ConfirmDialog store={store} />
        <Announcer store={store} />
      </div>
    );
  }
  return (
    <div
      class={`app ${panel && open ? 'with-panel' : ''}`}
      data-view={view}
      data-testid="app"
      data-e2e={store.e2e.status.state}
      data-e2e-published={store.e2e.published ? 'true' : undefined}
    >
      <Sidebar store={store} onAdmin={showAdmin} />
      <main class="main">
        {open ? (
          <ChatPane key={open.chat.id} store={store} model={open} onPanel={setPanel} onBack={() => void store.openChat(null)} />
        ) : (
          <EmptyPane />
        )}
      </main>
      {panel && open && <InfoPanel store={store} model={open} panel={panel} onPanel={setPanel} />}
      <VerificationDialog store={store} />
      <ApprovalPrompt store={store} />
      <ConfirmDialog store={store} />
      <Announcer store={store} />
    </div>
  );
}
