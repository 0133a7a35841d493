// A server that requires two-step verification ([accounts]
// require_two_factor): a new account logs in to a screen that asks it to
// turn it on before anything else (a reload too), with Settings' own
// enrolment (password, QR code and key, the app's first code, recovery
// codes); once done the same session opens the app, and a chat can be
// started. "Log out" there ends at the login screen. The test is the
// authenticator app, as in two-factor.test.mjs.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import {
  apiRegister,
  awayFromStepEdge,
  expectStatus,
  launchBrowser,
  openPage,
  screenshotPath,
  sendMessage,
  startDirect,
  startServer,
  totp,
  waitLive,
} from './helpers.mjs';

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let server;
let browser;

before(async () => {
  server = await startServer({ env: { HARK_ACCOUNTS__REQUIRE_TWO_FACTOR: 'true' } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.destroy();
});

const PASSWORD = 'password-123';

/** Serious and critical axe-core violations on the page (as screens.test.mjs counts them). */
async function axe(page) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .flatMap((v) => v.nodes.map((n) => `${v.id}: ${n.target.join(' ')}`));
}

/** Register through the login screen; the app does not open on this server. */
async function registerOnly(page, username, displayName) {
  await page.getByTestId('auth-switch').click();
  await page.locator('input[name=username]').fill(username);
  await page.locator('input[name=display_name]').fill(displayName);
  await page.locator('input[name=password]').fill(PASSWORD);
  await page.getByTestId('auth-submit').click();
}

test('a new account turns on two-step verification before the app opens, then chats', async () => {
  const bob = await apiRegister(server.url, 'bob', 'Bob Chen');
  // What the server says of an account without it: only enrolling works.
  assert.equal((await bob.get('/v1/me')).two_factor_setup_required, true);

  const { context, page } = await openPage(browser, server.url);
  const asked = [];
  page.on('request', (r) => {
    const url = new URL(r.url());
    if (url.pathname.startsWith('/v1/')) asked.push(`${r.method()} ${url.pathname}`);
  });
  await registerOnly(page, 'tara', 'Tara Singh');
  const screen = page.getByTestId('forced-two-factor');
  await screen.waitFor({ timeout: 30_000 });
  assert.match(await screen.textContent(), /This server requires two-step verification/);
  assert.equal(await page.getByTestId('chat-list').count(), 0);
  // A reload asks again, and shows it again.
  await page.reload();
  await screen.waitFor();
  await page.screenshot({ path: screenshotPath('required-two-factor.png') });
  assert.deepEqual(await axe(page), [], 'the forced screen passes axe');
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: screenshotPath('required-two-factor-dark.png') });
  assert.deepEqual(await axe(page), [], 'the forced screen passes axe (dark)');
  await page.emulateMedia({ colorScheme: 'light' });

  // Settings' enrolment: the password, the key, the app's code.
  const card = screen.getByTestId('two-factor');
  await card.getByTestId('two-factor-password').fill(PASSWORD);
  await card.getByTestId('two-factor-continue').click();
  const secret = (await card.getByTestId('two-factor-secret').textContent({ timeout: 10_000 })).replace(/\s/g, '');
  assert.match(secret, /^[A-Z2-7]{16,}$/);
  await page.screenshot({ path: screenshotPath('required-two-factor-scan.png') });
  await awayFromStepEdge();
  await card.getByTestId('two-factor-code').fill(totp(secret));
  await card.getByTestId('two-factor-confirm').click();
  await card.getByTestId('two-factor-codes').waitFor();
  assert.equal((await card.getByTestId('recovery-code').allTextContents()).length, 10);
  // Until then the app asked the server for nothing it would refuse.
  const refused = asked.filter(
    (r) => !['POST /v1/register', 'POST /v1/login', 'GET /v1/sso', 'GET /v1/me', 'POST /v1/me/two-factor', 'POST /v1/me/two-factor/confirm'].includes(r),
  );
  assert.deepEqual(refused, [], 'only enrolment routes before it is on');
  await card.getByTestId('two-factor-done').click();

  // The same session opens the app.
  await page.getByTestId('chat-list').waitFor({ timeout: 30_000 });
  await waitLive(page);
  await startDirect(page, 'bob', { encrypted: false });
  await sendMessage(page, 'set up and in');
  await expectStatus(page, 'set up and in', 'sent');
  // And the account is one with two-step verification on.
  await page.getByTestId('menu').click();
  await page.getByTestId('settings').click();
  await page.getByTestId('two-factor').getByTestId('two-factor-status').filter({ hasText: 'On · 10 recovery codes left' }).waitFor();

  assert.deepEqual(page.errors, []);
  await context.close();
});

test('Log out on the forced screen ends at the login screen', async () => {
  const { context, page } = await openPage(browser, server.url);
  await registerOnly(page, 'uma', 'Uma Stone');
  await page.getByTestId('forced-two-factor').waitFor({ timeout: 30_000 });
  await page.getByTestId('forced-two-factor-logout').click();
  await page.getByTestId('auth-form').waitFor();
  assert.equal(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.endsWith(':session')).length), 0);
  assert.deepEqual(page.errors, []);
  await context.close();
});
