// Contacts and blocking. Contacts: added from a one-to-one chat's menu,
// listed in Settings, first in a new chat's search, removed from the contact
// info. Blocking: Amy blocks Ben from their chat's menu; the composer gives
// way to "You blocked Ben. Unblock", Settings lists him, his sends are
// refused with `blocked` (over the API, and in his browser as a message
// that was not sent and is not tried again); unblocking lets them through.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  apiRegister,
  expectStatus,
  launchBrowser,
  login,
  openChat,
  openPage,
  register,
  screenshotPath,
  sendMessage,
  startServer,
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

/** `api` (an apiRegister/apiLogin handle) opens the plain one-to-one chat with `username`; resolves to its id. */
async function directWith(api, username) {
  const [user] = (await api.get(`/v1/users?q=${username}`)).filter((u) => u.username === username);
  return (await api.post('/v1/chats/direct', { user_id: user.id })).id;
}

/** Send over HTTP; resolves to the status and the error code, if any. */
async function trySend(api, chatId, text) {
  const res = await fetch(`${server.url}/v1/chats/${chatId}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: `t-${Math.random().toString(36).slice(2)}`, text }),
  });
  const body = await res.json().catch(() => null);
  return { status: res.status, code: body?.error?.code ?? null };
}

async function openSettings(page) {
  await page.getByTestId('menu').click();
  await page.getByTestId('settings').click();
}

async function chatMenu(page, item) {
  await page.getByTestId('chat-header-menu').click();
  await page.getByTestId(item).click();
}

test('contacts: add from the chat menu, listed in settings, first in search, removed from the contact info', async () => {
  const { context, page } = await openPage(browser, server.url);
  await register(page, 'cora', 'Cora', undefined, { keys: false });
  await apiRegister(server.url, 'bella', 'Bella');
  const bert = await apiRegister(server.url, 'bert', 'Bert');
  await bert.send(await directWith(bert, 'cora'), 'hello Cora');
  await openChat(page, 'Bert');

  await chatMenu(page, 'chat-menu-add-contact');
  await page.getByTestId('chat-header-menu').click();
  await page.getByTestId('chat-menu-remove-contact').waitFor();
  await page.keyboard.press('Escape');

  await openSettings(page);
  const contacts = page.getByTestId('contacts');
  await contacts.locator('[data-testid=contact][data-username=bert]').waitFor();
  assert.equal(await contacts.getByTestId('contact').count(), 1);
  await page.getByTestId('back').click();

  // A new chat lists contacts before anything is typed, and first among those found.
  await page.getByTestId('new-chat').click();
  await page.locator('[data-testid=user-result][data-username=bert][data-contact=true]').waitFor();
  await page.getByTestId('people-search').fill('be');
  await page.locator('[data-testid=user-result][data-username=bella]').waitFor();
  const order = await page.getByTestId('user-result').evaluateAll((rows) => rows.map((r) => r.dataset.username));
  assert.deepEqual(order, ['bert', 'bella']);
  await page.screenshot({ path: screenshotPath('contacts-new-chat.png') });
  await page.getByTestId('back').click();

  // Removed from the contact info.
  await page.getByTestId('chat-info').click();
  await page.getByTestId('info-contact').waitFor();
  await page.getByTestId('info-remove-contact').click();
  await page.getByTestId('info-add-contact').waitFor();
  await openSettings(page);
  await page.getByTestId('no-contacts').waitFor();

  assert.deepEqual(page.errors, []);
  await context.close();
});

test('blocking: the blocked bar, refused sends on both paths, and unblocking', async () => {
  const amy = await openPage(browser, server.url);
  await register(amy.page, 'amy', 'Amy', undefined, { keys: false });
  const benApi = await apiRegister(server.url, 'ben', 'Ben');
  const chatId = await directWith(benApi, 'amy');
  await benApi.send(chatId, 'hi Amy');
  const { page } = amy;
  await openChat(page, 'Ben');
  await page.getByTestId('msg-in').filter({ hasText: 'hi Amy' }).waitFor();

  // Amy blocks Ben: after confirming, the composer gives way to the blocked bar.
  await chatMenu(page, 'chat-menu-block');
  await page.getByTestId('confirm-dialog').filter({ hasText: 'Block Ben?' }).waitFor();
  await page.getByTestId('confirm-ok').click();
  const bar = page.getByTestId('blocked-bar');
  await bar.filter({ hasText: 'You blocked Ben.' }).waitFor();
  assert.equal(await page.getByTestId('composer').count(), 0);
  await page.screenshot({ path: screenshotPath('blocked-bar.png') });

  // Ben's send over the API is refused, and Amy's chat gets nothing.
  assert.deepEqual(await trySend(benApi, chatId, 'anyone there?'), { status: 403, code: 'blocked' });

  // In Ben's browser: the message is not sent, says why, and is not tried again.
  const ben = await openPage(browser, server.url);
  const sends = [];
  ben.page.on('websocket', (ws) =>
    ws.on('framesent', (f) => {
      try {
        const frame = JSON.parse(String(f.payload));
        if (frame.type === 'send') sends.push(frame);
      } catch {}
    }),
  );
  await login(ben.page, 'ben', undefined, { keys: false });
  await openChat(ben.page, 'Amy');
  await sendMessage(ben.page, 'hello?');
  await expectStatus(ben.page, 'hello?', 'failed');
  const note = ben.page.getByTestId('msg-note');
  assert.match(await note.textContent(), /This message was not sent: you cannot message this user/);
  await ben.page.screenshot({ path: screenshotPath('blocked-send-failed.png') });
  // The outbox gave it up: no retry comes (a retry's first wait is about a second).
  await new Promise((r) => setTimeout(r, 2_500));
  assert.equal(sends.filter((f) => f.text === 'hello?').length, 1);
  // Nor after a reload: it is not waiting in the outbox.
  await ben.page.reload();
  await openChat(ben.page, 'Amy');
  await ben.page.getByTestId('msg-out').filter({ hasText: 'hi Amy' }).waitFor();
  assert.equal(await ben.page.locator('[data-testid=msg-out] .ticks[data-status=pending]').count(), 0);
  assert.equal(sends.filter((f) => f.text === 'hello?').length, 1);

  // Settings lists Ben as blocked.
  await openSettings(page);
  await page.locator('[data-testid=blocked-user][data-username=ben]').waitFor();
  await page.getByTestId('back').click();

  // Amy unblocks from the bar: the composer is back, and messages flow both ways.
  await bar.getByTestId('blocked-bar-unblock').click();
  await page.getByTestId('composer').waitFor();
  assert.equal((await trySend(benApi, chatId, 'back again')).status, 200);
  await page.getByTestId('msg-in').filter({ hasText: 'back again' }).waitFor();
  await sendMessage(ben.page, 'and from the browser');
  await page.getByTestId('msg-in').filter({ hasText: 'and from the browser' }).waitFor();
  await sendMessage(page, 'welcome back');
  await ben.page.getByTestId('msg-in').filter({ hasText: 'welcome back' }).waitFor();
  await openSettings(page);
  await page.getByTestId('no-blocked').waitFor();

  assert.deepEqual(page.errors, []);
  assert.deepEqual(ben.page.errors, []);
  await amy.context.close();
  await ben.context.close();
});
