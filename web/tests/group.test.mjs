// A group of three: create it with the member picker, per-member ticks and
// the message-info view, sender names, rename, remove / add / leave, and the
// unread badge clearing on every device of a user. Saves the screenshots of
// the chat list and an open chat.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  chatRow,
  eventually,
  expectStatus,
  expectUnread,
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

test('a group of three: ticks per member, message info, admin actions, multi-device unread', async () => {
  const alice = await openPage(browser, server.url);
  const bob = await openPage(browser, server.url);
  const carol = await openPage(browser, server.url);
  await register(alice.page, 'alice', 'Alice Martin');
  await register(bob.page, 'bob', 'Bob Chen');
  await register(carol.page, 'carol', 'Carol Diaz');
  // Bob's second device: his phone, say.
  const bob2 = await openPage(browser, server.url);
  await login(bob2.page, 'bob');

  // Some one-to-one history, so the chat list looks lived in.
  await startDirect(alice.page, 'carol');
  await sendMessage(alice.page, 'Did you get the tickets?');
  await carol.page.getByTestId('chat-row').first().waitFor();
  await openChat(carol.page, 'Alice Martin');
  await sendMessage(carol.page, 'Yes, two of them. Friday 7pm!');
  await expectStatus(carol.page, 'Yes, two of them. Friday 7pm!', 'read');

  // Dave writes to Alice; she has not read it yet (an unread badge in her list).
  const dave = await openPage(browser, server.url);
  await register(dave.page, 'dave', 'Dave Okafor');
  await startDirect(dave.page, 'alice');
  await sendMessage(dave.page, 'Hey Alice, are we still on for the review tomorrow?');
  await sendMessage(dave.page, 'I moved it to 10:30, hope that works');
  await expectUnread(alice.page, 'Dave Okafor', 2);

  // Alice creates the group with the member picker.
  await alice.page.getByTestId('new-group').click();
  await alice.page.getByTestId('group-title').fill('Weekend trip');
  for (const name of ['bob', 'carol']) {
    await alice.page.getByTestId('member-search').fill(name);
    await alice.page.locator(`[data-testid=member-result][data-username="${name}"]`).click();
  }
  await alice.page.getByTestId('create-group').click();
  await alice.page.getByTestId('chat-header-title').filter({ hasText: 'Weekend trip' }).waitFor();
  for (const p of [bob.page, carol.page, bob2.page]) await chatRow(p, 'Weekend trip').waitFor();

  // Everyone is online, so Alice's message reaches both devices at once (two grey ticks)…
  await sendMessage(alice.page, 'Who is in for the lake on Saturday?');
  await expectStatus(alice.page, 'Who is in for the lake on Saturday?', 'delivered');
  await expectUnread(bob2.page, 'Weekend trip', 1);

  // …Bob reads it on his laptop: his phone's badge clears too; Carol has not read yet.
  await openChat(bob.page, 'Weekend trip');
  await expectUnread(bob2.page, 'Weekend trip', 0);
  const asked = alice.page.locator('[data-testid=msg-out]', { hasText: 'Who is in for the lake' });
  await asked.hover();
  await asked.getByTestId('msg-menu').click();
  await asked.getByTestId('info').click();
  const info = alice.page.getByTestId('message-info');
  await info.getByTestId('read-by').getByText('Bob Chen').waitFor();
  await info.getByTestId('delivered-to').getByText('Carol Diaz').waitFor();
  assert.equal(await info.getByTestId('read-by').getByText('Carol Diaz').count(), 0);
  assert.equal(await outStatus(alice.page, 'Who is in for the lake on Saturday?'), 'delivered');

  // Carol reads it: blue ticks, and both are listed as readers.
  await openChat(carol.page, 'Weekend trip');
  await expectStatus(alice.page, 'Who is in for the lake on Saturday?', 'read');
  await info.getByTestId('read-by').getByText('Carol Diaz').waitFor();
  await eventually(async () => (await info.getByTestId('receipt-time').allTextContents()).every((t) => t.startsWith('Read ')), {
    message: 'read times in message info',
  });
  await alice.page.getByTestId('panel-close').click();

  // Replies show their sender's name to the others.
  await sendMessage(bob.page, "Me! I'll bring the kayak.");
  await sendMessage(carol.page, 'Count me in — I can drive.');
  const bobBubble = carol.page.locator('[data-testid=msg-in]', { hasText: "I'll bring the kayak" });
  assert.equal(await bobBubble.getByTestId('msg-sender').textContent(), 'Bob Chen');
  await alice.page.locator('[data-testid=msg-in]', { hasText: 'I can drive' }).waitFor();
  await sendMessage(alice.page, 'Perfect. Leaving at 8 from my place.');
  await expectStatus(alice.page, 'Perfect. Leaving at 8 from my place.', 'read');

  // Rename: everyone sees the new title.
  await alice.page.getByTestId('chat-info').click();
  await alice.page.getByTestId('rename').click();
  await alice.page.getByTestId('rename-input').fill('Lake weekend');
  await alice.page.getByTestId('rename-save').click();
  await bob.page.getByTestId('chat-header-title').filter({ hasText: 'Lake weekend' }).waitFor();
  await chatRow(carol.page, 'Lake weekend').waitFor();

  // Remove Carol: she can no longer write. Add her back: she can again.
  await alice.page.locator('[data-testid=member][data-username=carol] [data-testid=remove-member]').click();
  await alice.page.getByTestId('confirm-ok').click();
  await carol.page.getByTestId('left-note').waitFor();
  await eventually(async () => (await bob.page.getByTestId('chat-header-sub').textContent()) === 'Alice Martin, You', {
    message: "Bob's header to list the remaining members",
  });
  await alice.page.getByTestId('add-member').click();
  await alice.page.getByTestId('add-member-search').fill('carol');
  await alice.page.locator('[data-testid=add-member-result][data-username=carol]').click();
  await carol.page.getByTestId('composer').waitFor();
  await alice.page.locator('[data-testid=member][data-username=carol]').waitFor();

  // The screenshots a person would look at: the open group with its info, and the chat list.
  await alice.page.screenshot({ path: screenshotPath('group-chat-with-info.png') });
  await alice.page.getByTestId('panel-close').click();
  await alice.page.screenshot({ path: screenshotPath('group-chat.png') });
  await alice.page.screenshot({ path: screenshotPath('chat-list.png'), clip: { x: 0, y: 0, width: 384, height: 800 } });
  await bob2.page.screenshot({ path: screenshotPath('chat-list-second-device.png') });

  // Bob leaves; Alice sees two members left.
  await bob.page.getByTestId('chat-info').click();
  await bob.page.getByTestId('leave-group').click();
  await bob.page.getByTestId('confirm-ok').click();
  await bob.page.getByTestId('left-note').waitFor();
  await eventually(async () => (await alice.page.getByTestId('chat-header-sub').textContent()) === 'Carol Diaz, You', {
    message: "Alice's header to show Bob left",
  });

  assert.equal(await chatRow(alice.page, 'Dave Okafor').getByTestId('unread-badge').textContent(), '2');
  for (const p of [alice, bob, carol, bob2, dave]) {
    assert.deepEqual(p.page.errors, []);
    await p.context.close();
  }
});
