// The page's side of the service worker (public/sw.js): registering it,
// answering its messages (open the chat of a clicked notification; which
// chat is on screen, so a push for it shows nothing), the `?chat=` a
// notification opens a new window with, and closing a chat's notifications
// once it is read here.

import { chatNotificationTag, type ChatId } from '../hark-client';

let registration: Promise<ServiceWorkerRegistration | null> | null = null;

/** Whether this page can have a service worker (a secure context: https, or localhost). */
export function serviceWorkerSupported(): boolean {
  return 'serviceWorker' in navigator && window.isSecureContext;
}

/** Register /sw.js (once, at start: a push is shown only by a registered worker); null when it cannot be. */
export function registerServiceWorker(): Promise<ServiceWorkerRegistration | null> {
  if (!registration) {
    registration = serviceWorkerSupported()
      ? navigator.serviceWorker.register('/sw.js').catch(() => null)
      : Promise.resolve(null);
  }
  return registration;
}

/** The registration once its worker is active (push subscriptions need one); null if it does not become active within 10 s. */
export async function activeRegistration(): Promise<ServiceWorkerRegistration | null> {
  const reg = await registerServiceWorker();
  if (!reg) return null;
  if (reg.active) return reg;
  return Promise.race([navigator.serviceWorker.ready, new Promise<null>((r) => setTimeout(() => r(null), 10_000))]);
}

/** What the page answers and does for the service worker. */
export interface ServiceWorkerHost {
  /** A notification of this chat was clicked. */
  openChat(id: ChatId): void;
  /** The chat shown now, if any. */
  openChatId(): ChatId | null;
}

/** Listen to the service worker's messages; returns the function that stops listening. */
export function listenToServiceWorker(host: ServiceWorkerHost): () => void {
  if (!serviceWorkerSupported()) return () => {};
  const container = navigator.serviceWorker;
  const onMessage = (e: MessageEvent) => {
    const d = e.data as { type?: string; chat_id?: unknown } | null;
    if (d?.type === 'hark:open-chat' && typeof d.chat_id === 'number') host.openChat(d.chat_id);
    else if (d?.type === 'hark:open-chat?') {
      e.ports[0]?.postMessage({ chat_id: document.visibilityState === 'visible' ? host.openChatId() : null });
    }
  };
  container.addEventListener('message', onMessage);
  container.startMessages();
  return () => container.removeEventListener('message', onMessage);
}

/**
 * The chat a clicked notification opened this window for (`/?chat=<id>`),
 * taken out of the address so a reload does not open it again.
 */
export function takeChatParam(): ChatId | null {
  const url = new URL(location.href);
  const raw = url.searchParams.get('chat');
  if (raw === null) return null;
  url.searchParams.delete('chat');
  history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  const id = Number(raw);
  return Number.isSafeInteger(id) && id > 0 ? id : null;
}

/** Close the notifications of a chat (it is being read here). */
export async function closeChatNotifications(chatId: ChatId): Promise<void> {
  const reg = registration ? await registration : null;
  if (!reg) return;
  try {
    for (const n of await reg.getNotifications({ tag: chatNotificationTag(chatId) })) n.close();
  } catch {
    // No notifications here (permission not granted): nothing to close.
  }
}
