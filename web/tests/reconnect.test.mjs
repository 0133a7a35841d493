// Keep working through a dropped connection: the app shows it is
// reconnecting, queues what is typed, sends it once when back (same client
// id, no duplicate) and catches up what arrived meanwhile. Covers a browser
// losing its network, the server restarting, and a lost ack.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  apiLogin,
  eventually,
  expectStatus,
  launchBrowser,
  openChat,
  openPage,
  outStatus,
  register,
  screenshotPath,
  sendMessage,
  startDirect,
  startServer,
  switchableSocket,
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

const texts = (page) => page.locator('[data-testid=msg-text]').allTextContents();

test('messages typed while offline are sent once when back; missed ones are caught up', async () => {
  const aliceCtx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const net = await switchableSocket(aliceCtx);
  const alicePage = await aliceCtx.newPage();
  const errors = [];
  alicePage.on('pageerror', (e) => errors.push(String(e)));
  await alicePage.goto(server.url);
  const alice = { context: aliceCtx, page: alicePage };
  const bob = await openPage(browser, server.url);
  await register(alice.page, 'alice', 'Alice');
  await register(bob.page, 'bob', 'Bob');

  // A plain chat: the test reads the texts of the frames and of the server's copy.
  await startDirect(alice.page, 'bob', { encrypted: false });
  await sendMessage(alice.page, 'before the drop');
  await bob.page.getByTestId('chat-row').first().waitFor();
  await openChat(bob.page, 'Alice');
  await expectStatus(alice.page, 'before the drop', 'read');

  // 1. Alice's network goes down; the server and Bob stay up.
  await net.goOffline();
  await alice.page.getByTestId('conn-banner').getByText('Reconnecting…').waitFor();
  await sendMessage(alice.page, 'typed while offline');
  await expectStatus(alice.page, 'typed while offline', 'pending');
  await alice.page.getByTestId('conn-banner').getByText('1 message will be sent').waitFor();
  await alice.page.screenshot({ path: screenshotPath('offline-queued.png') });
  await sendMessage(bob.page, 'sent while you were away');
  await sendMessage(bob.page, 'and another one');
  // The queued message survives a reload of the page (the outbox is persisted);
  // the page itself loads over HTTP while its WebSocket still cannot connect.
  await alice.context.setOffline(false);
  await alice.page.reload();
  await alice.page.getByTestId('conn-banner').waitFor();
  await alice.context.setOffline(true);
  await openChat(alice.page, 'Bob');
  await expectStatus(alice.page, 'typed while offline', 'pending');

  await net.goOnline();
  await waitLive(alice.page);
  await expectStatus(alice.page, 'typed while offline', 'read');
  await eventually(
    async () =>
      JSON.stringify(await texts(alice.page)) ===
      JSON.stringify(['before the drop', 'sent while you were away', 'and another one', 'typed while offline']),
    { message: 'Alice to catch up in order' },
  );
  await eventually(
    async () => (await texts(bob.page)).filter((t) => t === 'typed while offline').length === 1,
    { message: 'Bob to get the queued message once' },
  );

  // 2. The server restarts (same port, same data): both reconnect by themselves.
  await server.stop();
  await alice.page.getByTestId('conn-banner').waitFor();
  await bob.page.getByTestId('conn-banner').waitFor();
  await sendMessage(alice.page, 'typed while the server was down');
  await expectStatus(alice.page, 'typed while the server was down', 'pending');
  server = await startServer({ dataDir: server.dataDir, port: server.port });
  await waitLive(alice.page, 30_000);
  await waitLive(bob.page, 30_000);
  await bob.page.locator('[data-testid=msg-text]', { hasText: 'typed while the server was down' }).waitFor();
  await expectStatus(alice.page, 'typed while the server was down', 'read');

  // 3. The connection dies after the server committed a send but before the
  // ack arrived: the resend carries the same client id and is recognised.
  net.dropAcksThenClose = true;
  const acksBefore = net.acks.length;
  await sendMessage(alice.page, 'ack lost once');
  await expectStatus(alice.page, 'ack lost once', 'read', 30_000);
  const sends = net.sends.filter((f) => f.text === 'ack lost once');
  assert.ok(sends.length >= 2, `the message was resent after the drop (${sends.length} sends)`);
  assert.equal(new Set(sends.map((f) => f.client_id)).size, 1, 'every resend used the same client id');
  const acks = net.acks.slice(acksBefore).filter((a) => a.client_id === sends[0].client_id);
  assert.deepEqual(acks.map((a) => a.duplicate), [false, true], 'the resend was answered as a duplicate');

  // The server holds every message exactly once, in order.
  const checker = await apiLogin(server.url, 'bob');
  const [summary] = await checker.get('/v1/chats');
  const history = await checker.get(`/v1/chats/${summary.chat.id}/messages?limit=200`);
  assert.deepEqual(
    history.messages.map((m) => m.text),
    [
      'before the drop',
      'sent while you were away',
      'and another one',
      'typed while offline',
      'typed while the server was down',
      'ack lost once',
    ],
  );
  await eventually(
    async () => (await texts(bob.page)).filter((t) => t === 'ack lost once').length === 1,
    { message: 'Bob to see the resent message once' },
  );
  assert.equal(await outStatus(alice.page, 'ack lost once'), 'read');
  assert.deepEqual(errors, []);
  assert.deepEqual(bob.page.errors, []);
  await aliceCtx.close();
  await bob.context.close();
});
