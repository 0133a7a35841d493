// Push notifications: the service worker shows one notification per chat,
// worded as the previews setting allows (a burst updates it, a silent push
// shows nothing), a click on it opens the chat (in the open window, or a new
// one), turning notifications on and off in the app (the subscription on the
// server, deleted on logout), the previews setting, and the unread count in
// the tab's title.
//
// Notifications go to the desktop through a stand-in notification daemon
// on a private D-Bus (notifications.mjs), so the test clicks them as a
// desktop does; push messages come through the DevTools protocol, as
// headless Chromium has no push service.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  apiLogin,
  apiRegister,
  chatRow,
  eventually,
  launchBrowser,
  launchProfile,
  login,
  openChat,
  openPage,
  screenshotPath,
  startServer,
} from './helpers.mjs';
import { notificationsOf, pushChannel, startNotificationDaemon } from './notifications.mjs';
import { browserKeys, startPushService } from './push-service.mjs';

let server;
let pushService;
let daemon;
let context;
let push;
let alice;
let bob;
let carol;
let direct;
let club;

before(async () => {
  // The server may post pushes to the test's push service, on a loopback address over http.
  pushService = await startPushService();
  const config = join(tmpdir(), `hark-push-test-${process.pid}.toml`);
  writeFileSync(config, `[push]\nallow_hosts = ["${pushService.host}"]\n`);
  server = await startServer({ config });
  daemon = await startNotificationDaemon();
  context = await launchProfile({ env: { DBUS_SESSION_BUS_ADDRESS: daemon.address } });
  await context.grantPermissions(['notifications'], { origin: server.url });
  // DevTools' session lives on the profile's first (blank) page, which stays open throughout.
  push = await pushChannel(context, context.pages()[0], server.url);
  alice = await apiRegister(server.url, 'alice', 'Alice Moreau');
  bob = await apiRegister(server.url, 'bob', 'Bob Chen');
  carol = await apiRegister(server.url, 'carol', 'Carol Diaz');
  direct = await bob.post('/v1/chats/direct', { user_id: alice.user.id });
  await bob.send(direct.id, 'Lunch tomorrow?');
  club = await alice.post('/v1/chats/groups', { title: 'Book club', members: [bob.user.id, carol.user.id] });
  await carol.send(club.id, 'Next book: Piranesi');
});

after(async () => {
  await context?.close();
  await daemon?.stop();
  await server?.destroy();
  await pushService?.stop();
});

/** A push for a chat, as the server sends it (previews "full" unless overridden). */
function message(chat, fields) {
  return {
    v: 1,
    kind: 'message',
    chat_id: chat.id,
    chat_kind: chat.kind,
    chat_title: chat.title,
    seq: 1,
    unread: 1,
    sender: null,
    body: null,
    silent: false,
    ...fields,
  };
}

/** A page of the app, logged in as Alice (the profile keeps her session after the first login). */
async function appPage() {
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  await page.goto(server.url);
  // The login screen or the app, whichever the page shows once it has drawn.
  const loginForm = page.locator('input[name=username]');
  await loginForm.or(page.getByTestId('chat-list')).first().waitFor();
  if (await loginForm.isVisible()) await login(page, 'alice');
  await page.getByTestId('chat-list').waitFor();
  return page;
}

/**
 * Deliver a push and wait until its notification is on the desktop, then
 * check what the service worker's registration lists for its chat: one
 * notification reading `title` / `body`. (Reading the list only after the
 * desktop has it: Chromium drops a notification from the list for good when
 * it is read while the desktop has not shown it yet.)
 */
async function deliverShown(page, payload, title, body) {
  const mark = daemon.shown.length;
  await push.deliver(payload);
  await eventually(() => daemon.shown.slice(mark).some((n) => n.summary === title && n.body.endsWith(`\n\n${body}`)), {
    message: `"${title}" / "${body}" on the desktop (has ${JSON.stringify(daemon.shown.slice(mark))})`,
  });
  const list = await notificationsOf(page, `chat-${payload.chat_id}`);
  assert.deepEqual(list.map((n) => [n.title, n.body]), [[title, body]]);
  return list[0];
}

test('the service worker shows one notification per chat, worded as the previews allow', async () => {
  const page = await appPage();
  assert.equal(await page.evaluate(() => navigator.serviceWorker.ready.then((r) => r.active.state)), 'activated');

  // A direct message: the sender is the title, the text the body; the chat in its data.
  const first = await deliverShown(page, message(direct, { sender: 'Bob Chen', body: 'Lunch tomorrow?', seq: 2 }), 'Bob Chen', 'Lunch tomorrow?');
  assert.deepEqual([first.tag, first.data], [`chat-${direct.id}`, { chat_id: direct.id }]);

  // In a group: the group's title, and who wrote before the text.
  await deliverShown(page, message(club, { sender: 'Carol Diaz', body: 'Next book: Piranesi', seq: 2 }), 'Book club', 'Carol Diaz: Next book: Piranesi');
  const clubId = daemon.shown.at(-1).id;

  // A burst in the group is one notification, updated in place on the desktop.
  const mark = daemon.shown.length;
  for (const [seq, body] of [[3, 'I loved it'], [4, 'The statues!'], [5, 'Meet on Friday?']]) {
    await deliverShown(page, message(club, { sender: 'Bob Chen', body, seq, unread: seq - 1 }), 'Book club', `Bob Chen: ${body}`);
  }
  assert.deepEqual(daemon.shown.slice(mark).map((n) => n.replaces), [clubId, clubId, clubId]);
  assert.deepEqual((await notificationsOf(page)).map((n) => n.tag).sort(), [`chat-${direct.id}`, `chat-${club.id}`], 'one notification per chat');

  // Previews "none": nothing of who or what.
  await deliverShown(page, message(direct, { seq: 3 }), 'Hark', 'New message');
  await deliverShown(page, message(direct, { seq: 4, unread: 3 }), 'Hark', '3 new messages');
  // Previews "sender" in a group: who, not what.
  await deliverShown(page, message(club, { sender: 'Carol Diaz', seq: 6 }), 'Book club', 'New message from Carol Diaz');

  // A reaction, and being added to a group.
  const reaction = { kind: 'reaction', sender: 'Carol Diaz', body: 'reacted 👍 to your message', seq: 5 };
  await deliverShown(page, message(club, reaction), 'Book club', 'Carol Diaz reacted 👍 to your message');
  await deliverShown(page, message(direct, { ...reaction, sender: 'Bob Chen', seq: 2 }), 'Bob Chen', 'Reacted 👍 to your message');
  const hiking = { id: club.id + 100, kind: 'group', title: 'Hiking' };
  await deliverShown(page, message(hiking, { kind: 'added', sender: 'Bob Chen', seq: 0, unread: 0 }), 'Hiking', 'Bob Chen added you');

  // Silent: nothing shown. With nothing unread left (read on another device) the chat's notification goes.
  const quiet = { id: club.id + 200, kind: 'direct', title: null };
  await push.deliver(message(quiet, { sender: 'Bob Chen', body: 'shh', silent: true }));
  const directId = daemon.shown.findLast((n) => n.summary === 'Hark').id;
  await push.deliver(message(direct, { silent: true, unread: 0, seq: 4 }));
  await eventually(() => daemon.closed.includes(directId), { message: 'the read chat\'s notification closed' });
  // (Pushes are handled in order: once a later one is on the desktop, the silent one was not.)
  await deliverShown(page, message(club, { sender: 'Carol Diaz', body: 'Friday works', seq: 7 }), 'Book club', 'Carol Diaz: Friday works');
  assert.equal(daemon.shown.filter((n) => n.body.endsWith('shh')).length, 0);
  assert.deepEqual(await notificationsOf(page, `chat-${quiet.id}`), []);
  assert.deepEqual(await notificationsOf(page, `chat-${direct.id}`), []);

  // Looking at the chat in this (focused, visible) window: no notification for it, but for others.
  await openChat(page, 'Bob Chen');
  await push.deliver(message(direct, { sender: 'Bob Chen', body: 'Are you there?', seq: 5 }));
  await deliverShown(page, message(club, { sender: 'Carol Diaz', body: 'See you there', seq: 8 }), 'Book club', 'Carol Diaz: See you there');
  assert.equal(daemon.shown.filter((n) => n.body.endsWith('Are you there?')).length, 0);
  assert.deepEqual(await notificationsOf(page, `chat-${direct.id}`), []);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('clicking a notification opens its chat: in the open window, or in a new one', async () => {
  // A window shows the chat list: the click opens the chat there.
  const page = await appPage();
  await deliverShown(page, message(club, { sender: 'Bob Chen', body: 'Which edition?', seq: 9 }), 'Book club', 'Bob Chen: Which edition?');
  const inWindow = daemon.shown.at(-1);
  daemon.click(inWindow.id);
  await page.getByTestId('chat-header-title').filter({ hasText: 'Book club' }).waitFor();
  await eventually(() => daemon.closed.includes(inWindow.id), { message: 'the clicked notification closed' });
  assert.deepEqual(await notificationsOf(page, `chat-${club.id}`), []);
  assert.deepEqual(page.errors, []);
  await page.close();

  // Hark is closed (only the profile's blank page is left): the click opens a window on the chat.
  assert.deepEqual(context.pages().map((p) => p.url()), ['about:blank']);
  const mark = daemon.shown.length;
  await push.deliver(message(direct, { sender: 'Bob Chen', body: 'Call me when you can', seq: 6 }));
  const closed = await eventually(() => daemon.shown.slice(mark).find((n) => n.summary === 'Bob Chen'), { message: 'the notification on the desktop' });
  const opening = context.waitForEvent('page');
  daemon.click(closed.id);
  const win = await opening;
  await win.getByTestId('chat-header-title').filter({ hasText: 'Bob Chen' }).waitFor();
  assert.equal(new URL(win.url()).search, '', 'the ?chat= of the new window is taken out of the address');
  await win.getByTestId('msg-text').filter({ hasText: 'Lunch tomorrow?' }).waitFor();
  await win.screenshot({ path: screenshotPath('push-click-opened-chat.png') });
  await win.close();
});

test('the tab title counts the chats with unread messages, muted ones aside', async () => {
  const browser = await launchBrowser();
  try {
    const dana = await apiRegister(server.url, 'dana', 'Dana Ito');
    const chat = await bob.post('/v1/chats/direct', { user_id: dana.user.id });
    const group = await carol.post('/v1/chats/groups', { title: 'Climbing', members: [dana.user.id, bob.user.id] });
    const { context: ctx, page } = await openPage(browser, server.url);
    await login(page, 'dana');
    assert.equal(await page.title(), 'Hark');
    await bob.send(chat.id, 'Are you coming on Saturday?');
    await bob.send(chat.id, 'We leave at 8');
    await eventually(async () => (await page.title()) === '(1) Hark', { message: 'title (1) Hark' });
    await carol.send(group.id, 'Bring a rope');
    await eventually(async () => (await page.title()) === '(2) Hark', { message: 'title (2) Hark' });
    // A muted chat does not count, as it does not notify.
    await chatRow(page, 'Climbing').click({ button: 'right' });
    await page.getByTestId('chat-menu').getByTestId('chat-mute').click();
    await page.getByTestId('chat-menu').getByTestId('mute-always').click();
    await eventually(async () => (await page.title()) === '(1) Hark', { message: 'title (1) Hark with the group muted' });
    // Reading the chat clears it.
    await openChat(page, 'Bob Chen');
    await eventually(async () => (await page.title()) === 'Hark', { message: 'title Hark once read' });
    const settings = (await dana.get('/v1/chats')).find((s) => s.chat.id === group.id).settings;
    assert.ok(settings.muted_until > Date.now() + 365 * 86_400_000, 'muted "always"');
    assert.deepEqual(page.errors, []);
    await ctx.close();
  } finally {
    await browser.close();
  }
});

/**
 * Stand in for the browser's push service in `pushManager` (headless
 * Chromium has none): subscribing gives an endpoint of the test's push
 * service with `keys`, kept in localStorage like a browser keeps it.
 */
async function fakePushManager(keys, endpoint) {
  await context.addInitScript(({ keys, endpoint }) => {
    const KEY = 'test:push-subscription';
    const subscription = (saved) => ({
      endpoint: saved.endpoint,
      expirationTime: null,
      options: { userVisibleOnly: true, applicationServerKey: Uint8Array.from(atob(saved.key), (c) => c.charCodeAt(0)).buffer },
      toJSON: () => ({ endpoint: saved.endpoint, expirationTime: null, keys }),
      unsubscribe: async () => (localStorage.removeItem(KEY), true),
    });
    PushManager.prototype.getSubscription = async function () {
      const raw = localStorage.getItem(KEY);
      return raw ? subscription(JSON.parse(raw)) : null;
    };
    PushManager.prototype.subscribe = async function (options) {
      const saved = { endpoint, key: btoa(String.fromCharCode(...new Uint8Array(options.applicationServerKey))) };
      localStorage.setItem(KEY, JSON.stringify(saved));
      return subscription(saved);
    };
  }, { keys, endpoint });
}

/** This page's device token (to ask the server about this device's subscriptions). */
function pageDevice(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem(`hark:${location.origin}:session`)).token);
}

async function subscriptionsOf(token) {
  const res = await fetch(`${server.url}/v1/push/subscriptions`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  return res.json();
}

/** Bob writes to Alice while Hark is closed: the push the server posts, decrypted. */
async function pushFor(keys, endpoint, text) {
  const after = pushService.received.length;
  await bob.send(direct.id, text);
  const posted = await pushService.next(endpoint, after);
  return { posted, payload: JSON.parse(keys.decrypt(posted.body)) };
}

test('turning notifications on: the server pushes a new message to the desktop; previews; off, and logout, delete the subscription', async () => {
  let page = await appPage();
  const banner = page.getByTestId('push-banner');
  await banner.waitFor();
  assert.match(await banner.textContent(), /Get a notification for new messages when Hark is closed\./);
  await page.screenshot({ path: screenshotPath('push-banner.png') });

  // This headless browser's push service never answers (no network): after 10 s, a clear message; nothing registered.
  await page.getByTestId('push-enable').click();
  const error = await page.getByTestId('push-error').textContent();
  assert.match(error, /^This browser could not subscribe to push messages \(.+\)\. New messages still show here while Hark is open\.$/);
  await page.screenshot({ path: screenshotPath('push-banner-error.png') });
  const token = await pageDevice(page);
  assert.deepEqual(await subscriptionsOf(token), []);

  // With a push service: turned on from the banner, the server has this browser's subscription.
  const keys = browserKeys();
  const endpoint = pushService.endpoint(`alice-${Date.now()}`);
  await fakePushManager({ p256dh: keys.p256dh, auth: keys.auth }, endpoint);
  await page.reload();
  await page.getByTestId('push-enable').click();
  await banner.waitFor({ state: 'detached' });
  const [registered] = await subscriptionsOf(token);
  assert.deepEqual([registered.kind, registered.endpoint], ['web_push', endpoint]);
  await page.close();

  // Hark is closed; Bob writes. The server posts to the push service, signed (VAPID) and encrypted to the browser's keys.
  const { posted, payload } = await pushFor(keys, endpoint, 'Dinner at 8?');
  const vapid = await alice.get('/v1/push/vapid');
  assert.match(posted.headers.authorization, new RegExp(`^vapid t=[\\w-]+\\.[\\w-]+\\.[\\w-]+, ?k=${vapid.public_key}$`));
  assert.equal(posted.headers['content-encoding'], 'aes128gcm');
  assert.equal(payload.v, 1);
  assert.deepEqual(
    [payload.kind, payload.chat_id, payload.chat_kind, payload.sender, payload.body, payload.silent],
    ['message', direct.id, 'direct', 'Bob Chen', 'Dinner at 8?', false],
  );
  // The browser hands it to the service worker: on the desktop, and a click opens the chat.
  let mark = daemon.shown.length;
  await push.deliver(payload);
  const shown = await eventually(() => daemon.shown.slice(mark).find((n) => n.summary === 'Bob Chen'), { message: 'the pushed message on the desktop' });
  assert.match(shown.body, /\n\nDinner at 8\?$/);
  const opening = context.waitForEvent('page');
  daemon.click(shown.id);
  page = await opening;
  await page.getByTestId('msg-text').filter({ hasText: 'Dinner at 8?' }).waitFor();

  // Previews "sender only", set in the settings, for all of Alice's devices.
  await page.getByTestId('menu').click();
  await page.getByTestId('settings').click();
  let card = page.getByTestId('notification-settings');
  await card.getByTestId('push-toggle').filter({ hasText: 'Turn off' }).waitFor();
  assert.equal(await card.getByTestId('previews').inputValue(), 'full');
  await card.getByTestId('previews').selectOption('sender');
  await eventually(async () => (await alice.get('/v1/me/notifications')).previews === 'sender', { message: 'previews "sender" on the server' });
  await page.screenshot({ path: screenshotPath('push-settings.png') });
  await page.reload();
  await page.getByTestId('menu').click();
  await page.getByTestId('settings').click();
  await eventually(async () => (await card.getByTestId('previews').inputValue()) === 'sender', { message: 'previews "sender" after a reload' });
  await page.close();
  const hidden = await pushFor(keys, endpoint, 'The surprise is at 9');
  assert.deepEqual([hidden.payload.sender, hidden.payload.body], ['Bob Chen', null]);
  mark = daemon.shown.length;
  await push.deliver(hidden.payload);
  const vague = await eventually(() => daemon.shown.slice(mark).find((n) => n.summary === 'Bob Chen'), { message: 'the sender-only push on the desktop' });
  assert.doesNotMatch(vague.body, /surprise/);
  const count = hidden.payload.unread > 1 ? `${hidden.payload.unread} new messages` : 'New message';
  assert.ok(vague.body.endsWith(`\n\n${count}`), vague.body);

  // Turned off in the settings: the server forgets it, the browser drops it.
  page = await appPage();
  await page.getByTestId('menu').click();
  await page.getByTestId('settings').click();
  card = page.getByTestId('notification-settings');
  await card.getByTestId('push-toggle').filter({ hasText: 'Turn off' }).click();
  await card.getByTestId('push-toggle').filter({ hasText: 'Turn on' }).waitFor();
  assert.deepEqual(await subscriptionsOf(token), []);
  assert.equal(await page.evaluate(() => localStorage.getItem('test:push-subscription')), null);

  // On again, then logging out deletes it while the token still works.
  await card.getByTestId('push-toggle').filter({ hasText: 'Turn on' }).click();
  await card.getByTestId('push-toggle').filter({ hasText: 'Turn off' }).waitFor();
  const [again] = await subscriptionsOf(token);
  const deleted = page.waitForResponse((r) => r.request().method() === 'DELETE' && r.url().endsWith(`/v1/push/subscriptions/${again.id}`));
  await page.getByTestId('back').click();
  await page.getByTestId('menu').click();
  await page.getByTestId('logout').click();
  assert.equal((await deleted).status(), 204);
  await page.getByTestId('auth-form').waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem('test:push-subscription')), null);
  assert.deepEqual(page.errors, []);
  await page.close();
});
