// The top level: the login screen, or the two-column messenger for a session.

import { useEffect, useMemo, useState } from 'preact/hooks';
import { loadSession, saveSession, type Session } from '../hark-client';
import { AuthScreen } from './Auth';
import { ChatPane, EmptyPane } from './ChatPane';
import { InfoPanel, type Panel } from './InfoPanel';
import { Sidebar } from './Sidebar';
import { AppStore } from './store';

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

function Messenger(props: { session: Session; onLoggedOut: () => void }) {
  const store = useMemo(() => new AppStore('', props.session, props.onLoggedOut), [props.session]);
  useEffect(() => {
    store.start();
    return () => store.conn.close();
  }, [store]);
  useStore(store);
  const [panel, setPanel] = useState<Panel | null>(null);
  const open = store.openChatId !== null ? store.chats.get(store.openChatId) : undefined;

  useEffect(() => setPanel(null), [store.openChatId]);

  // The tab title carries the unread count, like WhatsApp Web's "(3) WhatsApp".
  // Muted chats do not count, as their notifications are off.
  const unread = [...store.chats.values()].reduce((n, c) => n + (store.unread(c) > 0 && !store.isMuted(c) ? 1 : 0), 0);
  useEffect(() => {
    document.title = unread > 0 ? `(${unread}) Hark` : 'Hark';
  }, [unread]);

  return (
    <div class={`app ${panel ? 'with-panel' : ''}`}>
      <Sidebar store={store} />
      <main class="main">
        {open ? <ChatPane key={open.chat.id} store={store} model={open} onPanel={setPanel} /> : <EmptyPane />}
      </main>
      {panel && open && <InfoPanel store={store} model={open} panel={panel} onPanel={setPanel} />}
    </div>
  );
}
