// Settings: change the display name, see this account's devices, and log
// another device out: that browser's socket closes and it is back at login.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eventually, launchBrowser, login, openPage, register, screenshotPath, startServer } from './helpers.mjs';

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

test('rename yourself, list devices, revoke another device', async () => {
  const laptop = await openPage(browser, server.url);
  await register(laptop.page, 'erin', 'Erin');
  const other = await openPage(browser, server.url);
  await login(other.page, 'erin');

  await laptop.page.getByTestId('menu').click();
  await laptop.page.getByTestId('settings').click();
  await eventually(async () => (await laptop.page.getByTestId('device').count()) === 2, { message: 'two devices listed' });
  assert.equal(await laptop.page.getByTestId('device').filter({ hasText: 'This device' }).count(), 1);

  await laptop.page.getByTestId('name-edit').click();
  await laptop.page.getByTestId('name-input').fill('Erin Brockovich');
  await laptop.page.getByTestId('name-save').click();
  await laptop.page.getByTestId('settings-name').filter({ hasText: 'Erin Brockovich' }).waitFor();
  await laptop.page.getByTestId('privacy-last_seen').selectOption('contacts');
  await laptop.page.screenshot({ path: screenshotPath('settings.png') });

  // Log the other browser out from here: it drops back to the login screen.
  await laptop.page.getByTestId('revoke-device').click();
  await other.page.getByTestId('auth-form').waitFor({ timeout: 20_000 });
  await eventually(async () => (await laptop.page.getByTestId('device').count()) === 1, { message: 'one device left' });
  await laptop.page.getByTestId('back').click();
  assert.equal(await laptop.page.getByTestId('me-name').textContent(), 'Erin Brockovich');

  // The name and privacy choice persist on the server.
  await laptop.page.reload();
  await laptop.page.getByTestId('me-name').filter({ hasText: 'Erin Brockovich' }).waitFor();
  await laptop.page.getByTestId('menu').click();
  await laptop.page.getByTestId('settings').click();
  assert.equal(await laptop.page.getByTestId('privacy-last_seen').inputValue(), 'contacts');

  assert.deepEqual(laptop.page.errors, []);
  assert.deepEqual(other.page.errors, []);
  await laptop.context.close();
  await other.context.close();
});
