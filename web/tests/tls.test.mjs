// Hark's own TLS (`[tls]`, no proxy in front): the page comes over HTTP/2,
// so Chromium opens the socket over HTTP/2 too, as an extended CONNECT
// (RFC 8441) that carries the page's Origin and no Host header. Two people
// chat through it: live delivery and ticks work as over plain HTTP.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  expectStatus,
  launchBrowser,
  openPage,
  register,
  screenshotPath,
  sendMessage,
  startDirect,
  startServer,
} from './helpers.mjs';

let server;
let browser;
let certs;

before(async () => {
  // A self-signed certificate for 127.0.0.1 (the browser is told to accept it).
  certs = mkdtempSync(join(tmpdir(), 'hark-web-tls-'));
  const cert = join(certs, 'cert.pem');
  const key = join(certs, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'ignore' });
  const config = join(certs, 'hark.toml');
  writeFileSync(config, `[tls]\ncert = "${cert}"\nkey = "${key}"\n`);
  server = await startServer({
    config,
    // Each request's method and answer, to see how the socket was opened.
    env: { HARK_LOG: 'warn,hark_server::http::request_id=debug' },
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.destroy();
  if (certs) rmSync(certs, { recursive: true, force: true });
});

test('over Hark\'s own TLS the socket opens over HTTP/2 and two people chat', async () => {
  assert.match(server.url, /^https:/);
  const alice = await openPage(browser, server.url, { ignoreHTTPSErrors: true });
  const bob = await openPage(browser, server.url, { ignoreHTTPSErrors: true });
  const protocol = await alice.page.evaluate(
    () => performance.getEntriesByType('navigation')[0].nextHopProtocol,
  );
  assert.equal(protocol, 'h2', 'the page came over HTTP/2');
  // register() waits until the socket is live (the connection banner gone).
  await register(alice.page, 'alice', 'Alice Liddell');
  await register(bob.page, 'bob', 'Bob Marley');
  const sockets = server.log().match(/method=CONNECT path=\/v1\/ws\}: \S+ answered status=\d+/g) ?? [];
  assert.ok(sockets.length >= 2, `both sockets opened over HTTP/2:\n${server.log()}`);
  assert.ok(sockets.every((s) => s.endsWith('status=200')), sockets.join('\n'));
  assert.doesNotMatch(server.log(), /path=\/v1\/ws\}: \S+ answered status=[45]/);

  await startDirect(alice.page, 'bob');
  await sendMessage(alice.page, 'hello over h2');
  // Bob has the app open: it arrives live, and Alice's ticks go on to read.
  const row = bob.page.getByTestId('chat-row').first();
  await row.getByTestId('chat-preview').filter({ hasText: 'hello over h2' }).waitFor();
  await expectStatus(alice.page, 'hello over h2', 'delivered');
  await row.click();
  await bob.page.locator('[data-testid=msg-in] [data-testid=msg-text]', { hasText: 'hello over h2' }).waitFor();
  await expectStatus(alice.page, 'hello over h2', 'read');
  await alice.page.screenshot({ path: screenshotPath('tls-h2.png') });
  assert.deepEqual([...alice.page.errors, ...bob.page.errors], []);
});
