// Presence and typing: the open chat's header says "online", "typing…" and
// "last seen …" as the other person comes, types and goes.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  eventually,
  launchBrowser,
  openChat,
  openPage,
  register,
  screenshotPath,
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

test('the header shows online, typing… and last seen', async () => {
  const alice = await openPage(browser, server.url);
  const bob = await openPage(browser, server.url);
  await register(alice.page, 'alice', 'Alice');
  await register(bob.page, 'bob', 'Bob');
  await startDirect(alice.page, 'bob');
  const sub = alice.page.getByTestId('chat-header-sub');
  await eventually(async () => (await sub.textContent()) === 'online', { message: 'Bob to show online' });

  await bob.page.getByTestId('chat-row').first().waitFor();
  await openChat(bob.page, 'Alice');
  await bob.page.getByTestId('composer').pressSequentially('hello the', { delay: 20 });
  await eventually(async () => (await sub.textContent()) === 'typing…', { message: "Alice to see Bob typing" });
  await alice.page.screenshot({ path: screenshotPath('typing.png') });
  await bob.page.getByTestId('composer').press('Enter');
  await eventually(async () => (await sub.textContent()) === 'online', { message: 'typing to stop when Bob sends' });

  await bob.context.close();
  await eventually(async () => (await sub.textContent()).startsWith('last seen today at'), {
    message: 'Bob to show last seen after the grace period',
  });
  assert.deepEqual(alice.page.errors, []);
  await alice.context.close();
});
