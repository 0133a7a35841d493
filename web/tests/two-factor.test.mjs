// Two-step verification (TOTP): turned on in Settings (password, QR code and
// key, the app's first code, ten recovery codes shown once), then a login on
// a new device asks for a code (a wrong one is refused and the field stays),
// and a recovery code turns it off again. The test is the authenticator
// app: it computes each code from the key the page shows (RFC 6238). A code
// works once, so confirming uses the previous step's and logging in the next.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  apiLogin,
  awayFromStepEdge,
  eventually,
  launchBrowser,
  openPage,
  register,
  screenshotPath,
  startServer,
  totp,
  totpStep,
  waitLive,
  wrongTotp,
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

const PASSWORD = 'password-123';

async function openSettings(page) {
  await page.getByTestId('menu').click();
  await page.getByTestId('settings').click();
}

test('turn on two-step verification, log in with a code, turn it off with a recovery code', async () => {
  const { context, page } = await openPage(browser, server.url);
  await register(page, 'tara', 'Tara', PASSWORD, { keys: false });
  await openSettings(page);
  const card = page.getByTestId('two-factor');
  await card.getByTestId('two-factor-status').filter({ hasText: 'Off' }).waitFor();

  // Turning on: the password, then the QR code and the key for the app.
  await card.getByTestId('two-factor-on').click();
  await card.getByTestId('two-factor-password').fill(PASSWORD);
  await card.getByTestId('two-factor-continue').click();
  const secret = (await card.getByTestId('two-factor-secret').textContent({ timeout: 10_000 })).replace(/\s/g, '');
  assert.match(secret, /^[A-Z2-7]{16,}$/);
  const qr = card.getByTestId('two-factor-qr');
  assert.match(await qr.getAttribute('src'), /^data:image\/png;base64,/);
  await eventually(() => qr.evaluate((img) => img.complete && img.naturalWidth >= 21), { message: 'the QR code to load as an image' });

  // A wrong code is refused and the field stays for another try.
  await card.getByTestId('two-factor-code').fill(wrongTotp(secret));
  await card.getByTestId('two-factor-confirm').click();
  await card.getByTestId('two-factor-error').filter({ hasText: 'That code is not right' }).waitFor();
  assert.equal(await card.getByTestId('two-factor-code').isVisible(), true);

  // The app's code (the previous step's: the next one is kept for the login).
  await awayFromStepEdge();
  await card.getByTestId('two-factor-code').fill(totp(secret, totpStep() - 1));
  await card.getByTestId('two-factor-confirm').click();
  await card.getByTestId('two-factor-codes').waitFor();
  const recovery = await card.getByTestId('recovery-code').allTextContents();
  assert.equal(recovery.length, 10);
  assert.equal(new Set(recovery).size, 10);
  assert.match(await card.getByTestId('two-factor-save-note').textContent(), /Save these recovery codes/);
  await card.scrollIntoViewIfNeeded();
  await page.screenshot({ path: screenshotPath('two-factor-codes.png') });
  await card.getByTestId('two-factor-done').click();
  await card.getByTestId('two-factor-status').filter({ hasText: 'On · 10 recovery codes left' }).waitFor();

  // Log out, and in again: the password is not enough now.
  await page.getByTestId('back').click();
  await page.getByTestId('menu').click();
  await page.getByTestId('logout').click();
  await page.locator('input[name=username]').fill('tara');
  await page.locator('input[name=password]').fill(PASSWORD);
  await page.getByTestId('auth-submit').click();
  const codeField = page.getByTestId('auth-code');
  await codeField.waitFor();
  assert.equal(await page.getByTestId('auth-error').count(), 0);
  await page.screenshot({ path: screenshotPath('two-factor-login.png') });

  // A wrong code: a clear error, and the field stays with it.
  const wrong = wrongTotp(secret);
  await codeField.fill(wrong);
  await page.getByTestId('auth-submit').click();
  await page.getByTestId('auth-error').filter({ hasText: "That code didn't work" }).waitFor();
  assert.equal(await codeField.inputValue(), wrong);

  // The next step's code logs in.
  await awayFromStepEdge();
  await codeField.fill(totp(secret, totpStep() + 1));
  await page.getByTestId('auth-submit').click();
  await page.getByTestId('chat-list').waitFor({ timeout: 30_000 });
  await waitLive(page);

  // Turning it off takes the password and a code: here an unused recovery code.
  await openSettings(page);
  await card.getByTestId('two-factor-status').filter({ hasText: 'On · 10 recovery codes left' }).waitFor();
  await card.getByTestId('two-factor-off').click();
  await card.getByTestId('two-factor-password').fill(PASSWORD);
  await card.getByTestId('two-factor-code').fill(recovery[0].toUpperCase());
  await card.getByTestId('two-factor-disable').click();
  await card.getByTestId('two-factor-status').filter({ hasText: 'Off' }).waitFor();
  // A login needs only the password again.
  await apiLogin(server.url, 'tara', PASSWORD);

  assert.deepEqual(page.errors, []);
  await context.close();
});
