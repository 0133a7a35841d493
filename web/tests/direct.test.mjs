// Two people in two browser contexts: register, start a chat, exchange
// messages; the sender's ticks go sent -> delivered -> read, and the unread
// badge clears when the chat is read.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  apiLogin,
  eventually,
  expectStatus,
  launchBrowser,
  login,
  openChat,
  openPage,
  outStatus,
  register,
  screenshotPath,
  sendMessage,
  startDirect,
  startServer,
  waitLive,
} from './helpers.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.destroy();
});

test('two users chat and the sender sees sent, delivered, read', async () => {
  const alice = await openPage(browser, server.url);
  const bob = await openPage(browser, server.url);
  await alice.page.getByTestId('auth-form').waitFor();
  await alice.page.screenshot({ path: screenshotPath('login.png') });
  await register(alice.page, 'alice', 'Alice Liddell');
  await register(bob.page, 'bob', 'Bob Marley');

  // Bob closes the app: his device is offline, so Alice's message waits for him.
  await bob.page.goto('about:blank');

  await startDirect(alice.page, 'bob');
  assert.equal(await alice.page.getByTestId('chat-header-title').textContent(), 'Bob Marley');
  await sendMessage(alice.page, 'Hi Bob, are you there?');
  await expectStatus(alice.page, 'Hi Bob, are you there?', 'sent');
  // It stays at one tick while Bob is away (the ack alone does not deliver it).
  await alice.page.waitForTimeout(300);
  assert.equal(await outStatus(alice.page, 'Hi Bob, are you there?'), 'sent');

  // Bob comes back: his device catches up, marks the message delivered.
  await bob.page.goto(server.url);
  await waitLive(bob.page);
  await expectStatus(alice.page, 'Hi Bob, are you there?', 'delivered');
  const row = bob.page.getByTestId('chat-row').first();
  await eventually(async () => (await row.getByTestId('unread-badge').textContent()) === '1', {
    message: "Bob's unread badge to show 1",
  });
  assert.equal(await row.getByTestId('chat-title').textContent(), 'Alice Liddell');
  // (The chat is end-to-end encrypted: the preview is decrypted in the browser, a moment after it shows.)
  await row.getByTestId('chat-preview').filter({ hasText: 'Hi Bob, are you there?' }).waitFor();

  // Bob opens the chat: Alice's message turns read (blue), his badge clears.
  await openChat(bob.page, 'Alice Liddell');
  await expectStatus(alice.page, 'Hi Bob, are you there?', 'read');
  await row.getByTestId('unread-badge').waitFor({ state: 'detached' });

  // Bob answers; Alice has the chat open, so his message is read at once.
  await sendMessage(bob.page, 'Yes! Hello Alice 👋');
  await alice.page.locator('[data-testid=msg-in] [data-testid=msg-text]', { hasText: 'Yes! Hello Alice 👋' }).waitFor();
  await expectStatus(bob.page, 'Yes! Hello Alice 👋', 'read');

  // A few more, in order, each exactly once.
  for (const t of ['one', 'two', 'three']) await sendMessage(alice.page, t);
  await eventually(
    async () => {
      const texts = await bob.page.locator('[data-testid=msg-text]').allTextContents();
      return JSON.stringify(texts) === JSON.stringify(['Hi Bob, are you there?', 'Yes! Hello Alice 👋', 'one', 'two', 'three']);
    },
    { message: 'Bob to see every message once, in order' },
  );
  await expectStatus(alice.page, 'three', 'read');
  await alice.page.screenshot({ path: screenshotPath('direct-chat-alice.png') });

  // Logging out revokes this browser's device: its token stops working.
  const token = await alice.page.evaluate(() => {
    const key = Object.keys(localStorage).find((k) => k.endsWith(':session'));
    return JSON.parse(localStorage.getItem(key)).token;
  });
  await alice.page.getByTestId('menu').click();
  await alice.page.getByTestId('logout').click();
  await alice.page.getByTestId('auth-form').waitFor();
  const me = await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(me.status, 401);
  assert.deepEqual(await alice.page.evaluate(() => Object.keys(localStorage).filter((k) => k.includes(':session'))), []);

  assert.deepEqual(alice.page.errors, []);
  assert.deepEqual(bob.page.errors, []);
  await alice.context.close();
  await bob.context.close();
});

test('history loads as you scroll up', async () => {
  // A bot fills a chat with 130 messages over HTTP before the reader's
  // browser ever connects, so the browser pages through history.
  for (const [username, display_name] of [['reader', 'Rita Reader'], ['newsbot', 'News Bot']]) {
    const res = await fetch(`${server.url}/v1/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password: 'password-123', display_name }),
    });
    assert.equal(res.status, 201);
  }
  const bot = await apiLogin(server.url, 'newsbot');
  const users = await bot.get('/v1/users?q=reader');
  const chat = await bot.post('/v1/chats/direct', { user_id: users[0].id });
  for (let i = 1; i <= 130; i++) await bot.post(`/v1/chats/${chat.id}/messages`, { client_id: `n-${i}`, text: `news item ${i}` });

  const reader = await openPage(browser, server.url);
  await login(reader.page, 'reader');
  await expectUnreadBadge(reader.page, 'News Bot', '99+');
  await openChat(reader.page, 'News Bot');
  // 130 unread: the chat opens at the first of them, under the divider.
  await reader.page.getByTestId('unread-divider').filter({ hasText: '130 unread messages' }).waitFor();
  await reader.page.locator('[data-testid=msg-text]', { hasText: 'news item 1' }).first().waitFor();
  // The latest: the newest page.
  await reader.page.getByTestId('jump-latest').click();
  await reader.page.locator('[data-testid=msg-text]', { hasText: 'news item 130' }).waitFor();
  const count = () => reader.page.locator('[data-testid=msg-text]').count();
  assert.equal(await count(), 50, 'the newest page');
  // Scroll to the top until the start of the conversation shows.
  await eventually(
    async () => {
      await reader.page.getByTestId('messages').evaluate((el) => (el.scrollTop = 0));
      return (await count()) === 130;
    },
    { message: 'every older page to load on scrolling up' },
  );
  const texts = await reader.page.locator('[data-testid=msg-text]').allTextContents();
  assert.deepEqual(texts, Array.from({ length: 130 }, (_, i) => `news item ${i + 1}`));
  await reader.page.getByText('This is the start of your conversation.').waitFor();
  await expectUnreadBadge(reader.page, 'News Bot', null);
  assert.deepEqual(reader.page.errors, []);
  await reader.context.close();
});

async function expectUnreadBadge(page, title, n) {
  const row = page.locator('[data-testid=chat-row]', { has: page.locator('[data-testid=chat-title]', { hasText: title }) });
  if (n === null) return row.getByTestId('unread-badge').waitFor({ state: 'detached' });
  await eventually(async () => (await row.getByTestId('unread-badge').textContent({ timeout: 1_000 })) === n, {
    message: `unread badge ${n} on ${title}`,
  });
}
