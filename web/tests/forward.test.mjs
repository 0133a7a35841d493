// Forwarding: a message's menu opens a searchable chat picker; the copy goes
// to the chosen chat marked "Forwarded", sent by the forwarder, and the
// source chat is left as it was.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiRegister, eventually, expectStatus, launchBrowser, login, openChat, openPage, screenshotPath, startServer } from './helpers.mjs';

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

test('forward a message to another chat: the recipient sees it forwarded, the source chat is unchanged', async () => {
  const alice = await apiRegister(server.url, 'alice', 'Alice');
  const bob = await apiRegister(server.url, 'bob', 'Bob Chen');
  const carol = await apiRegister(server.url, 'carol', 'Carol Diaz');
  const withAlice = await bob.post('/v1/chats/direct', { user_id: alice.user.id });
  await bob.send(withAlice.id, 'The launch moved to Thursday, 10:00');
  await bob.send(withAlice.id, 'Keep it quiet for now');
  const team = await alice.post('/v1/chats/groups', { title: 'Launch team', members: [bob.user.id, carol.user.id] });
  await alice.send(team.id, 'Welcome to the launch team!');
  const withCarol = await carol.post('/v1/chats/direct', { user_id: alice.user.id });
  await carol.send(withCarol.id, 'Any news about the launch?');

  const a = await openPage(browser, server.url);
  const c = await openPage(browser, server.url);
  await login(a.page, 'alice');
  await login(c.page, 'carol');

  // Alice opens Bob's message's menu and picks Forward.
  await openChat(a.page, 'Bob Chen');
  const source = a.page.locator('[data-testid=msg-in]', { hasText: 'The launch moved to Thursday' });
  await source.hover();
  await source.getByTestId('msg-menu').click();
  await source.getByTestId('forward').click();
  const dialog = a.page.getByTestId('forward-dialog');
  await dialog.waitFor();
  const targets = dialog.getByTestId('forward-target');
  await eventually(async () => (await targets.count()) === 3, { message: 'three chats in the picker' });

  // The picker searches chats by name.
  await dialog.getByTestId('forward-search').fill('car');
  await eventually(async () => JSON.stringify(await targets.locator('.row-title').allTextContents()) === '["Carol Diaz"]', {
    message: 'only Carol left after searching "car"',
  });
  await targets.first().click();
  await dialog.getByTestId('forward-search').fill('');
  await eventually(async () => (await targets.count()) === 3, { message: 'every chat back after clearing the search' });
  assert.equal(await dialog.getByTestId('forward-picked').textContent(), 'Carol Diaz');
  await a.page.screenshot({ path: screenshotPath('forward-picker.png') });
  await dialog.getByTestId('forward-send').click();
  await dialog.waitFor({ state: 'detached' });

  // Alice lands in the chat with Carol: her copy, marked forwarded, acked (a tick).
  await a.page.getByTestId('chat-header-title').filter({ hasText: 'Carol Diaz' }).waitFor();
  const mine = a.page.locator('[data-testid=msg-out]', { hasText: 'The launch moved to Thursday, 10:00' });
  await mine.getByTestId('msg-forwarded').waitFor();

  // Carol receives it live, marked forwarded, from Alice.
  await openChat(c.page, 'Alice');
  const got = c.page.locator('[data-testid=msg-in]', { hasText: 'The launch moved to Thursday, 10:00' });
  await got.getByTestId('msg-forwarded').waitFor();
  await expectStatus(a.page, 'The launch moved to Thursday, 10:00', 'read');
  const carolView = await carol.get(`/v1/chats/${withCarol.id}/messages`);
  const copy = carolView.messages.at(-1);
  assert.equal(copy.forwarded, true);
  assert.equal(copy.sender_id, alice.user.id);
  assert.equal(copy.text, 'The launch moved to Thursday, 10:00');
  assert.equal(copy.chat_id, withCarol.id);

  // The source chat is as it was: same two messages, nothing forwarded, for both of its members.
  const bobView = await bob.get(`/v1/chats/${withAlice.id}/messages`);
  assert.deepEqual(bobView.messages.map((m) => [m.text, !!m.forwarded]), [
    ['The launch moved to Thursday, 10:00', false],
    ['Keep it quiet for now', false],
  ]);
  await openChat(a.page, 'Bob Chen');
  await eventually(async () => (await a.page.getByTestId('msg-text').count()) === 2, { message: "two messages in Alice's chat with Bob" });
  assert.equal(await a.page.getByTestId('msg-forwarded').count(), 0);
  // The group got nothing either.
  const teamView = await carol.get(`/v1/chats/${team.id}/messages`);
  assert.equal(teamView.messages.length, 1);
  await c.page.screenshot({ path: screenshotPath('forwarded.png') });
  assert.deepEqual(a.page.errors, []);
  assert.deepEqual(c.page.errors, []);
  await a.context.close();
  await c.context.close();
});
