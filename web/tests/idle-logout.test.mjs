// Devices nobody uses are logged out. The settings list each device's last
// use; a browser left closed for longer than the server's `devices.idle_days`
// opens on the login screen saying why (its token answers `token_expired`),
// with nothing of the old session kept, and logging in again works.
// The test stands in for the 31 days by moving the device's stored last use
// back in the server's database.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { apiLogin, eventually, launchBrowser, login, openPage, register, screenshotPath, startServer } from './helpers.mjs';

const DAY_MS = 86_400_000;

let server;
let browser;
let configDir;

before(async () => {
  configDir = mkdtempSync(join(tmpdir(), 'hark-web-idle-'));
  const config = join(configDir, 'hark.toml');
  // Devices unused for 30 days are logged out; the server looks every 200 ms.
  writeFileSync(config, '[devices]\nidle_days = 30\nsweep_ms = 200\n');
  server = await startServer({ config });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.destroy();
  if (configDir) rmSync(configDir, { recursive: true, force: true });
});

function sql(statement) {
  return execFileSync('sqlite3', ['-cmd', '.timeout 10000', join(server.dataDir, 'hark.db'), statement]).toString().trim();
}

test('a browser unused past the limit opens on the login screen saying why', async () => {
  const { context, page } = await openPage(browser, server.url);
  await register(page, 'ines', 'Ines');
  const checker = await apiLogin(server.url, 'ines');

  // The settings show when the other device was last used.
  await page.getByTestId('menu').click();
  await page.getByTestId('settings').click();
  await eventually(async () => (await page.getByTestId('device').count()) === 2, { message: 'two devices listed' });
  const other = page.getByTestId('device').filter({ hasText: 'test checker' });
  const when = await other.getByTestId('device-when').textContent();
  assert.match(when, /^Last used .+ · since /, when);
  await other.scrollIntoViewIfNeeded();
  await page.screenshot({ path: screenshotPath('devices-last-used.png') });

  // The browser is closed; a month passes.
  const browserDevice = Number(sql("SELECT id FROM devices WHERE name != 'test checker' AND revoked_at IS NULL"));
  assert.ok(browserDevice > 0);
  await page.close();
  // Its socket is gone before the time moves (an open socket counts as use).
  await new Promise((r) => setTimeout(r, 1_000));
  sql(`UPDATE devices SET last_used_at = last_used_at - ${31 * DAY_MS} WHERE id = ${browserDevice}`);
  await eventually(() => sql(`SELECT revoked_reason FROM devices WHERE id = ${browserDevice}`) === 'idle', {
    message: 'the server logged the device out',
  });

  // Opened again, it is at the login screen, saying why.
  const again = await context.newPage();
  again.errors = [];
  again.on('pageerror', (e) => again.errors.push(String(e)));
  await again.goto(server.url);
  await again.getByTestId('auth-form').waitFor({ timeout: 20_000 });
  await again.getByText('went unused for a long time').waitFor();
  await again.screenshot({ path: screenshotPath('idle-logged-out.png') });
  const kept = await again.evaluate(() => Object.keys(localStorage).filter((k) => localStorage.getItem(k)?.includes('token')));
  assert.deepEqual(kept, [], 'no session is kept');

  // The device in use stays logged in; logging in again works.
  assert.equal((await checker.get('/v1/me')).user.username, 'ines');
  await login(again, 'ines');
  await again.getByTestId('menu').click();
  await again.getByTestId('settings').click();
  await eventually(async () => (await again.getByTestId('device').count()) === 2, { message: 'the new and the checker device' });
  assert.deepEqual(again.errors, []);
  await context.close();
});
