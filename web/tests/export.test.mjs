// Settings → Export my data: Xena asks for an export, sees it pending
// (the card asks again every 2 s by itself) until it is ready, with its
// size and until when it is available, and downloads it: a zip archive
// (its central directory lists profile.json), saved under a name through
// a blob: URL. A failed export offers to try again.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { launchBrowser, openPage, register, screenshotPath, startServer } from './helpers.mjs';

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

async function openSettings(page) {
  await page.getByTestId('menu').click();
  await page.getByTestId('settings').click();
}

/** The file names a zip archive's central directory lists. */
function zipNames(zip) {
  // The end of central directory record: at least 22 bytes from the end (more with a comment).
  let end = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      end = i;
      break;
    }
  }
  assert.ok(end >= 0, 'no end of central directory record');
  const names = [];
  let at = zip.readUInt32LE(end + 16);
  while (at + 46 <= zip.length && zip.readUInt32LE(at) === 0x02014b50) {
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    names.push(zip.subarray(at + 46, at + 46 + nameLength).toString('utf8'));
    at += 46 + nameLength + extraLength + commentLength;
  }
  return names;
}

test('request an export, wait until it is ready, download the zip', async () => {
  const { context, page } = await openPage(browser, server.url);
  await register(page, 'xena', 'Xena', undefined, { keys: false });
  const polls = [];
  page.on('request', (r) => {
    if (r.method() === 'GET' && new URL(r.url()).pathname === '/v1/me/export') polls.push(Date.now());
  });
  await openSettings(page);
  const card = page.getByTestId('export-card');
  await page.locator('[data-testid=export-card][data-status=none]').waitFor();
  await card.getByTestId('export-request').click();

  // Pending (with its spinner) until the server has it ready; the card asks by itself.
  await page.locator('[data-testid=export-card][data-status=pending], [data-testid=export-card][data-status=ready]').waitFor();
  if ((await card.getAttribute('data-status')) === 'pending') {
    await card.scrollIntoViewIfNeeded();
    await card.screenshot({ path: screenshotPath('export-pending.png') });
  }
  await page.locator('[data-testid=export-card][data-status=ready]').waitFor({ timeout: 90_000 });
  // The first look, then one every 2 s while it was pending: never faster.
  for (let i = 2; i < polls.length; i++) assert.ok(polls[i] - polls[i - 1] >= 1_900, `asked again after ${polls[i] - polls[i - 1]} ms`);
  const ready = card.getByTestId('export-ready');
  assert.match(await ready.textContent(), /Ready · \d+(\.\d)? (B|KB|MB)/);
  await card.getByTestId('export-expires').filter({ hasText: 'Available until' }).waitFor();
  await card.scrollIntoViewIfNeeded();
  await card.screenshot({ path: screenshotPath('export-ready.png') });

  const [download] = await Promise.all([page.waitForEvent('download'), card.getByTestId('export-download').click()]);
  assert.match(download.url(), /^blob:/);
  assert.match(download.suggestedFilename(), /\.zip$/);
  const zip = readFileSync(await download.path());
  assert.equal(zip.subarray(0, 2).toString('latin1'), 'PK');
  const names = zipNames(zip);
  assert.ok(
    names.some((n) => n === 'profile.json' || n.endsWith('/profile.json')),
    `profile.json in ${JSON.stringify(names)}`,
  );

  assert.deepEqual(page.errors, []);
  await context.close();
});

test('a failed export offers to try again', async () => {
  const { context, page } = await openPage(browser, server.url);
  await register(page, 'yves', 'Yves', undefined, { keys: false });
  // The server's answer, as it would be for an export whose job failed.
  await page.route('**/v1/me/export', (route) =>
    route.request().method() === 'GET'
      ? route.fulfill({
          status: 200,
          contentType: 'application/json',
          body: JSON.stringify({ id: 'x1', status: 'failed', requested_at: Date.now() - 60_000, finished_at: Date.now() - 30_000, size: null, expires_at: null }),
        })
      : route.fallback(),
  );
  await openSettings(page);
  const card = page.getByTestId('export-card');
  await card.getByTestId('export-failed').filter({ hasText: 'The export could not be prepared.' }).waitFor();
  await card.scrollIntoViewIfNeeded();
  await card.screenshot({ path: screenshotPath('export-failed.png') });
  await page.unroute('**/v1/me/export');
  await card.getByTestId('export-retry').click();
  await page.locator('[data-testid=export-card][data-status=pending], [data-testid=export-card][data-status=ready]').waitFor();
  await page.locator('[data-testid=export-card][data-status=ready]').waitFor({ timeout: 90_000 });

  assert.deepEqual(page.errors, []);
  await context.close();
});
