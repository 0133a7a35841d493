// Hark's service worker: shows push notifications, one per chat (a burst
// updates it in place), and opens the chat when one is clicked. A plain
// script without imports, served at /sw.js for scope "/". It caches
// nothing: the app is always loaded from the server.
//
// A push message's data is JSON (docs/protocol.md, "Push"):
// { v, kind: "message" | "reaction" | "added", chat_id, chat_kind,
//   chat_title, seq, unread, sender, body, silent }

'use strict';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('push', (event) => {
  let payload = null;
  try {
    payload = event.data ? event.data.json() : null;
  } catch {
    payload = null;
  }
  event.waitUntil(onPush(payload));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const chatId = event.notification.data && event.notification.data.chat_id;
  event.waitUntil(openChat(Number.isSafeInteger(chatId) ? chatId : null));
});

/** The tag that keeps one notification per chat. */
function chatTag(chatId) {
  return `chat-${chatId}`;
}

async function onPush(p) {
  if (!p || !Number.isSafeInteger(p.chat_id)) {
    // Not Hark's format: still say something (a push must show a notification).
    await self.registration.showNotification('Hark', { body: 'New message', tag: 'hark' });
    return;
  }
  const tag = chatTag(p.chat_id);
  if (p.silent) {
    // State only: when the chat was read elsewhere, its notification is stale.
    if (p.unread === 0) for (const n of await self.registration.getNotifications({ tag })) n.close();
    return;
  }
  if (await onScreen(p.chat_id)) return;
  const { title, body } = notificationText(p);
  await self.registration.showNotification(title, {
    body,
    tag,
    // Each message of a burst alerts again, in the one notification of its chat.
    renotify: true,
    dir: 'auto',
    data: { chat_id: p.chat_id },
  });
}

/**
 * Title and body of a chat's notification: the group's title or the
 * sender's name; the preview the server sent (in a group after the
 * sender's name), or only that there is something new.
 */
function notificationText(p) {
  const group = p.chat_kind === 'group';
  const title = group ? p.chat_title || 'Group' : p.sender || 'Hark';
  const who = group && p.sender ? p.sender : null;
  let body = null;
  if (p.kind === 'added') {
    body = p.sender ? `${p.sender} added you` : 'You were added to a group';
  } else if (p.kind === 'reaction') {
    // The server's body reads "reacted 👍 to your message".
    const what = p.body || (p.sender ? 'reacted to your message' : null);
    if (what) body = who ? `${who} ${what}` : what.charAt(0).toUpperCase() + what.slice(1);
  } else if (p.body) {
    body = who ? `${who}: ${p.body}` : p.body;
  }
  if (!body) {
    if (p.unread > 1) body = who ? `${p.unread} new messages, the latest from ${who}` : `${p.unread} new messages`;
    else body = who ? `New message from ${who}` : 'New message';
  }
  return { title, body };
}

/** The Hark app's windows (not a file of /v1/media opened in a tab), most recently focused first. */
async function appWindows() {
  const all = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  return all.filter((c) => !new URL(c.url).pathname.startsWith('/v1/'));
}

/** Whether the person is looking at this chat now: a focused, visible window has it open. */
async function onScreen(chatId) {
  for (const win of await appWindows()) {
    if (!win.focused || win.visibilityState !== 'visible') continue;
    const answer = await ask(win, { type: 'hark:open-chat?' });
    if (answer && answer.chat_id === chatId) return true;
  }
  return false;
}

/** Ask a window a question over a message channel; null when it does not answer within 500 ms. */
function ask(win, question) {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    const timer = setTimeout(() => resolve(null), 500);
    channel.port1.onmessage = (e) => {
      clearTimeout(timer);
      resolve(e.data);
    };
    win.postMessage(question, [channel.port2]);
  });
}

/**
 * A notification was clicked: show its chat in the open Hark window (the
 * focused one, else the most recently used), or in a new window.
 */
async function openChat(chatId) {
  const windows = await appWindows();
  const win = windows.find((c) => c.focused) || windows[0];
  if (win) {
    if (chatId !== null) win.postMessage({ type: 'hark:open-chat', chat_id: chatId });
    await win.focus();
    return;
  }
  await self.clients.openWindow(chatId !== null ? `/?chat=${chatId}` : '/');
}
