// Reading a long chat: opening 300 unread messages lands on the "300 unread
// messages" divider (not the bottom, which would read them all); a
// jump-to-latest button counts what is still unread; "jump to first unread"
// comes back to the divider; and a message that arrives while the reader is
// scrolled up is not marked read until it is scrolled into view.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiLogin, apiRegister, eventually, expectUnread, launchBrowser, openPage, register, startServer } from './helpers.mjs';

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

test('300 unread: divider, jump to latest with a count, jump to first unread; scrolled up is not read', async () => {
  const bob = await apiRegister(server.url, 'bob', 'Bob');
  const { context, page } = await openPage(browser, server.url);
  await register(page, 'alice', 'Alice');
  const alice = await apiLogin(server.url, 'alice');
  const chat = await bob.post('/v1/chats/direct', { user_id: alice.user.id });
  await bob.send(chat.id, 'an old message, already read');
  await page.getByTestId('chat-row').first().click();
  await page.getByTestId('msg-in').first().waitFor();
  const aliceRead = async () => (await bob.get(`/v1/chats/${chat.id}`)).chat.members.find((m) => m.user.id === alice.user.id).read_up_to;
  await eventually(async () => (await aliceRead()) === 1, { message: 'the first message read' });
  await page.reload();
  await page.getByTestId('chat-list').waitFor();

  for (let i = 1; i <= 300; i += 25) {
    await Promise.all(Array.from({ length: 25 }, (_, k) => bob.send(chat.id, `message number ${i + k}`)));
  }
  await expectUnread(page, 'Bob', '99+');
  await page.getByTestId('chat-row').first().click();
  const divider = page.getByTestId('unread-divider');
  await divider.waitFor();
  assert.equal(await divider.textContent(), '300 unread messages');
  // The divider is on screen, near the top; what is below it is only partly read.
  const box = await divider.boundingBox();
  assert.ok(box.y < 200, `divider at y=${box.y}`);
  await eventually(async () => (await aliceRead()) > 1, { message: 'the visible unread messages marked read' });
  const readNow = await aliceRead();
  assert.ok(readNow < 40, `only what is on screen is read (read up to ${readNow} of 301)`);
  const count = page.getByTestId('jump-latest-count');
  assert.equal(await count.textContent(), '99+');
  const label = await page.getByTestId('jump-latest').getAttribute('aria-label');
  assert.match(label, /Jump to the latest message, \d+ unread/);
  assert.equal(Number(label.match(/(\d+) unread/)[1]), 301 - (await aliceRead()));

  // Jump to the latest: everything is on screen in turn, read up to the last.
  await page.getByTestId('jump-latest').click();
  await page.locator('[data-testid=msg-in]', { hasText: 'message number 300' }).waitFor();
  await eventually(async () => (await aliceRead()) === 301, { message: 'all read at the bottom' });
  await expectUnread(page, 'Bob', 0);
  await page.getByTestId('jump-latest').waitFor({ state: 'detached' });

  // Back to where the unread started.
  await page.getByTestId('jump-unread').click();
  await divider.waitFor();
  await eventually(async () => {
    const b = await divider.boundingBox();
    if (b && b.y > 50 && b.y < 400) return true;
    throw new Error(JSON.stringify(b) + (await page.evaluate(() => { const m = document.querySelector('[data-testid=messages]'); return JSON.stringify([m.getBoundingClientRect(), m.scrollTop, m.scrollHeight, document.querySelector('.chat').getBoundingClientRect().top, document.querySelector('.main').scrollTop, document.querySelector('.app').scrollTop]); })));
  }, { message: 'the divider in view again' });

  // Scrolled up 534 px, a new message arrives: it is counted, not read.
  await page.getByTestId('jump-latest').click();
  await page.getByTestId('jump-latest').waitFor({ state: 'detached' });
  await page.getByTestId('messages').evaluate((el) => (el.scrollTop = el.scrollHeight - el.clientHeight - 534));
  await page.getByTestId('jump-latest').waitFor();
  await bob.send(chat.id, 'sent while you were scrolled up');
  await page.getByTestId('jump-latest-count').filter({ hasText: '1' }).waitFor();
  await new Promise((r) => setTimeout(r, 1_000));
  assert.equal(await aliceRead(), 301, 'not read while out of view');
  await page.getByTestId('messages').evaluate((el) => (el.scrollTop = el.scrollHeight));
  await eventually(async () => (await aliceRead()) === 302, { message: 'read once scrolled into view' });
  assert.deepEqual(page.errors, []);
  await context.close();
});
