// The top level: the login screen, or the messenger for a session. Wide
// windows show the chat list, the open chat and its info side by side;
// narrow ones (phones) show one of them at a time, and the browser's back
// button walks back list ← chat ← info (each level is a history entry).

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { loadSession, saveSession, type Session } from '../hark-client';
import { AuthScreen } from './Auth';
import { ChatPane, EmptyPane } from './ChatPane';
import { InfoPanel, type Panel } from './InfoPanel';
import { listenToServiceWorker, takeChatParam } from './serviceWorker';
import { Sidebar } from './Sidebar';
import { AppStore } from './store';
import { Announcer, ConfirmDialog } from './ui';

const SERVER = location.origin;

export function App() {
  const [session, setSession] = useState<Session | null>(() => loadSession(SERVER));
  if (!session) {
    return (
      <AuthScreen
        server=""
        onSession={(s) => {
          saveSession(SERVER, s);
          setSession(s);
        }}
      />
    );
  }
  return <Messenger key={session.device.id} session={session} onLoggedOut={() => setSession(null)} />;
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

function Messenger(props: { session: Session; onLoggedOut: () => void }) {
  const store = useMemo(() => new AppStore('', props.session, props.onLoggedOut), [props.session]);
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
  return (
    <div class={`app ${panel && open ? 'with-panel' : ''}`} data-view={view} data-testid="app">
      <Sidebar store={store} />
      <main class="main">
        {open ? (
          <ChatPane key={open.chat.id} store={store} model={open} onPanel={setPanel} onBack={() => void store.openChat(null)} />
        ) : (
          <EmptyPane />
        )}
      </main>
      {panel && open && <InfoPanel store={store} model={open} panel={panel} onPanel={setPanel} />}
      <ConfirmDialog store={store} />
      <Announcer store={store} />
    </div>
  );
}
