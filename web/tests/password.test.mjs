// Settings → Password: a wrong current password is refused in plain words;
// the right one changes it and, when asked, logs out every other device of
// the account (that browser drops back to the login screen) while this one
// stays logged in. The old password no longer works, the new one does.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eventually, launchBrowser, login, openPage, register, screenshotPath, startServer, waitLive } from './helpers.mjs';

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

/** The status of a login over HTTP with this password. */
async function loginStatus(username, password) {
  const res = await fetch(`${server.url}/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password, device_name: 'password check' }),
  });
  return res.status;
}

test('change the password and log out the other devices', async () => {
  const laptop = await openPage(browser, server.url);
  await register(laptop.page, 'petra', 'Petra', 'old-password-1', { keys: false });
  const phone = await openPage(browser, server.url);
  await login(phone.page, 'petra', 'old-password-1', { keys: false });

  const { page } = laptop;
  await page.getByTestId('menu').click();
  await page.getByTestId('settings').click();
  await eventually(async () => (await page.getByTestId('device').count()) === 2, { message: 'two devices listed' });
  const card = page.getByTestId('password-card');
  await card.getByTestId('password-change').click();

  // A wrong current password: said plainly, nothing changes.
  await card.getByTestId('password-current').fill('not-my-password');
  await card.getByTestId('password-new').fill('new-password-2');
  await card.getByTestId('password-save').click();
  await card.getByTestId('password-error').filter({ hasText: 'Your current password is wrong.' }).waitFor();

  await card.getByTestId('password-current').fill('old-password-1');
  await card.getByTestId('password-logout-others').check();
  await card.scrollIntoViewIfNeeded();
  await page.screenshot({ path: screenshotPath('password-form.png') });
  await card.getByTestId('password-save').click();
  await card.getByTestId('password-done').filter({ hasText: 'Password changed. 1 other device was logged out.' }).waitFor();
  await page.screenshot({ path: screenshotPath('password-changed.png') });

  // The phone is logged out; the device list here has only this browser.
  await phone.page.getByTestId('auth-form').waitFor({ timeout: 20_000 });
  await eventually(async () => (await page.getByTestId('device').count()) === 1, { message: 'one device left' });

  // This browser stays logged in (a reload keeps its session and socket).
  await page.reload();
  await waitLive(page);

  assert.equal(await loginStatus('petra', 'old-password-1'), 401);
  assert.equal(await loginStatus('petra', 'new-password-2'), 200);

  assert.deepEqual(page.errors, []);
  assert.deepEqual(phone.page.errors, []);
  await laptop.context.close();
  await phone.context.close();
});
