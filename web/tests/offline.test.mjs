// A connection that notices it is gone: the browser's offline event drops
// the socket at once (banner within 5 s of `setOffline`), `online` brings it
// back; and a half-open socket (frames swallowed, nothing closed) is caught
// by the client's heartbeat on the `ping` frame with its short deadline.

import assert from 'node:assert/strict';
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
