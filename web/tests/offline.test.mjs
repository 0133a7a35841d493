// A connection that notices it is gone: the browser's offline event drops
// the socket at once (banner within 5 s of `setOffline`), `online` brings it
// back; and a half-open socket (frames swallowed, nothing closed) is caught
// by the client's heartbeat on the `ping` frame with its short deadline.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import {
  apiRegister,
  expectStatus,
  launchBrowser,
  openPage,
  PHONE,
  register,
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

test('setOffline: the banner shows within 5 s, the other side sees last seen, back online it recovers', async () => {
  const { context, page } = await openPage(browser, server.url);
  await register(page, 'alice', 'Alice');
  const bob = await openPage(browser, server.url);
  await register(bob.page, 'bob', 'Bob');
  await startDirect(bob.page, 'alice');
  await sendMessage(bob.page, 'are you there?');
  await page.getByTestId('chat-row').first().click();
  await bob.page.getByTestId('chat-header-sub').filter({ hasText: 'online' }).waitFor();

  const t0 = Date.now();
  await context.setOffline(true);
  await page.getByTestId('conn-banner').getByText('Reconnecting…').waitFor({ timeout: 5_000 });
  const bannerMs = Date.now() - t0;
  assert.ok(bannerMs < 5_000, `banner after ${bannerMs} ms`);
  assert.equal(await page.getByTestId('conn-banner').getAttribute('data-offline'), 'true');
  // Bob sees Alice go: the client closed its socket, the server's presence grace (3 s) applies.
  // Measured, not asserted: in this emulation the socket's close frame still
  // reaches the server (a real network drop needs the server-side change
  // described in docs/web-client.md), and Chromium may let a new socket
  // through while "offline", which shows Alice online again.
  const lastSeenMs = await bob.page
    .getByTestId('chat-header-sub')
    .filter({ hasText: 'last seen' })
    .waitFor({ timeout: 10_000 })
    .then(() => Date.now() - t0)
    .catch(() => 'not within 10 s');
  console.log(`# offline banner after ${bannerMs} ms; the other side saw "last seen" after ${lastSeenMs} ms`);

  // Written while offline: queued, sent when back.
  await sendMessage(page, 'back soon');
  await expectStatus(page, 'back soon', 'pending');
  await context.setOffline(false);
  await waitLive(page, 10_000);
  await expectStatus(page, 'back soon', 'read');
  assert.deepEqual(page.errors, []);
  await context.close();
  await bob.context.close();
});

test('a half-open socket is caught by the heartbeat; on a phone the banner shows above the chat', async () => {
  await apiRegister(server.url, 'carol', 'Carol');
  const { context, page } = await openPage(browser, server.url, PHONE);
  await page.clock.install();
  // Frames from the server can be swallowed, the socket left open: what a dead Wi-Fi looks like.
  let swallow = false;
  await context.routeWebSocket(/\/v1\/ws$/, (ws) => {
    const upstream = ws.connectToServer();
    upstream.onMessage((m) => !swallow && ws.send(m));
    ws.onMessage((m) => upstream.send(m));
  });
  await page.reload();
  await register(page, 'dave', 'Dave');
  await startDirect(page, 'carol');

  swallow = true;
  // Ten seconds to the next heartbeat, five for its answer: then the socket is given up.
  await page.clock.fastForward(10_500);
  await page.clock.fastForward(5_500);
  await page.getByTestId('conn-banner-chat').getByText('Reconnecting…').waitFor({ timeout: 3_000 });
  swallow = false;
  await page.clock.fastForward(11_000);
  await page.getByTestId('conn-banner-chat').waitFor({ state: 'detached', timeout: 10_000 });
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('a network that goes silent both ways: the other side sees "last seen" within 14 s', async () => {
  // Erin's browser reaches the server through a TCP relay that can stop
  // passing bytes both ways without closing anything: what a dropped Wi-Fi
  // looks like to the server (a WebSocket route in Playwright would still
  // answer the server's pings). The server must notice on its own (browser
  // sockets are pinged every 3 s and cut after 7 s of silence), then the
  // 3 s presence grace runs, so Frank sees "last seen" some 10 s after the
  // drop (10.5 s measured); 14 s is the bound, for a loaded machine.
  let silent = false;
  const target = new URL(server.url);
  const sockets = new Set();
  const relay = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    client.on('data', (d) => !silent && upstream.write(d));
    upstream.on('data', (d) => !silent && client.write(d));
    // A silent network carries no close either.
    client.on('close', () => !silent && upstream.destroy());
    upstream.on('close', () => !silent && client.destroy());
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise((done) => relay.listen(0, '127.0.0.1', done));
  const relayUrl = `http://127.0.0.1:${relay.address().port}`;
  try {
    const erin = await openPage(browser, relayUrl);
    await register(erin.page, 'erin', 'Erin');
    const frank = await openPage(browser, server.url);
    await register(frank.page, 'frank', 'Frank');
    await startDirect(frank.page, 'erin');
    await frank.page.getByTestId('chat-header-sub').filter({ hasText: 'online' }).waitFor();

    const t0 = Date.now();
    silent = true;
    await frank.page.getByTestId('chat-header-sub').filter({ hasText: 'last seen' }).waitFor({ timeout: 14_000 });
    const lastSeenMs = Date.now() - t0;
    console.log(`# a silent network: the other side saw "last seen" after ${lastSeenMs} ms`);
    assert.ok(lastSeenMs >= 7_000, `not before the server's 7 s heartbeat timeout: ${lastSeenMs} ms`);
    assert.deepEqual(frank.page.errors, []);
    await erin.context.close();
    await frank.context.close();
  } finally {
    for (const socket of sockets) socket.destroy();
    relay.close();
  }
});
