// Approving new devices: with "Require approval for new logins" on in
// Settings, a login on a new browser waits on a screen of its own (a
// reload too) and asks the server nothing but GET /v1/me; every open device
// of the account asks "A new login, …, wants to use your account"; Approve
// on one clears the others and lets the new device in (chats, sending).
// "It wasn't me" logs the waiting device out, back at the login screen, and
// a login cancelled on its own waiting screen takes the question away.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import { apiRegister, eventually, expectStatus, launchBrowser, openPage, register, screenshotPath, sendMessage, startDirect, startServer, switchableSocket, waitLive } from './helpers.mjs';

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

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

/** Serious and critical axe-core violations on the page (as screens.test.mjs counts them). */
async function axe(page) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .flatMap((v) => v.nodes.map((n) => `${v.id}: ${n.target.join(' ')}`));
}

async function openSettings(page) {
  await page.getByTestId('menu').click();
  await page.getByTestId('settings').click();
  await page.getByTestId('devices').waitFor();
}

/** Log in through the login form, without waiting for the app (the login may be held back). */
async function submitLogin(page, username) {
  await page.locator('input[name=username]').fill(username);
  await page.locator('input[name=password]').fill(PASSWORD);
  await page.getByTestId('auth-submit').click();
}

/** Every request the page makes to the API from now on, as "METHOD /path". */
function recordApi(page) {
  const seen = [];
  page.on('request', (r) => {
    const url = new URL(r.url());
    if (url.pathname.startsWith('/v1/')) seen.push(`${r.method()} ${url.pathname}`);
  });
  return seen;
}

async function turnOnApproval(page) {
  await openSettings(page);
  await page.locator('[data-testid=device-approval][data-required=false]').waitFor();
  await page.getByTestId('device-approval-toggle').check();
  await page.locator('[data-testid=device-approval][data-required=true]').waitFor();
}

test('a new login waits on its own screen until another device approves it', async () => {
  const bob = await apiRegister(server.url, 'bob', 'Bob Chen');
  const laptop = await openPage(browser, server.url);
  await register(laptop.page, 'dana', 'Dana Ruiz', PASSWORD, { keys: false });
  // A second approved device, open as well.
  const tablet = await openPage(browser, server.url);
  await submitLogin(tablet.page, 'dana');
  await tablet.page.getByTestId('chat-list').waitFor({ timeout: 30_000 });
  await waitLive(tablet.page);
  await turnOnApproval(laptop.page);
  assert.equal((await bob.get('/v1/me')).user.username, 'bob');

  // A new browser logs in: it waits, and asks the server only whether it was approved.
  const phone = await openPage(browser, server.url);
  const asked = recordApi(phone.page);
  await submitLogin(phone.page, 'dana');
  const waiting = phone.page.getByTestId('waiting-approval');
  await waiting.waitFor({ timeout: 30_000 });
  await waiting.getByText('Waiting for approval', { exact: true }).waitFor();
  assert.match(await waiting.textContent(), /Open Hark on one of your other devices and approve this login/);
  assert.equal(await phone.page.getByTestId('chat-list').count(), 0);

  // Every open device of the account asks.
  const prompt = laptop.page.getByTestId('approval-prompt');
  await prompt.waitFor({ timeout: 20_000 });
  const title = await prompt.getByTestId('approval-title').textContent();
  assert.match(title, /^A new login, Web · .+, wants to use your account$/);
  await tablet.page.getByTestId('approval-prompt').waitFor({ timeout: 20_000 });
  // The devices list (behind the question) marks the waiting one.
  await laptop.page.locator('[data-testid=device][data-pending=true]').getByTestId('device-pending').filter({ hasText: 'Waiting for approval' }).waitFor();

  // A reload of the waiting page shows the waiting screen again; still only /v1/me is asked.
  await phone.page.reload();
  await waiting.waitFor();
  await eventually(() => asked.filter((r) => r === 'GET /v1/me').length >= 2, { message: 'the waiting screen to poll GET /v1/me' });
  await phone.page.screenshot({ path: screenshotPath('device-approval-waiting.png') });
  await laptop.page.screenshot({ path: screenshotPath('device-approval-prompt.png') });
  assert.deepEqual(await axe(phone.page), [], 'the waiting screen passes axe');
  assert.deepEqual(await axe(laptop.page), [], 'the question passes axe');
  // Dark too (the theme follows the system's unless one was picked).
  for (const p of [phone.page, laptop.page]) await p.emulateMedia({ colorScheme: 'dark' });
  await phone.page.screenshot({ path: screenshotPath('device-approval-waiting-dark.png') });
  await laptop.page.screenshot({ path: screenshotPath('device-approval-prompt-dark.png') });
  assert.deepEqual(await axe(phone.page), [], 'the waiting screen passes axe (dark)');
  assert.deepEqual(await axe(laptop.page), [], 'the question passes axe (dark)');
  for (const p of [phone.page, laptop.page]) await p.emulateMedia({ colorScheme: 'light' });
  const others = asked.filter((r) => !['POST /v1/login', 'GET /v1/sso', 'GET /v1/me'].includes(r));
  assert.deepEqual(others, [], 'nothing but GET /v1/me while waiting');
  assert.equal(await phone.page.getByTestId('conn-banner').count(), 0);

  // Approved on the laptop: the tablet's question goes, the phone gets in.
  await prompt.getByTestId('approval-approve').click();
  await prompt.waitFor({ state: 'detached' });
  await tablet.page.getByTestId('approval-prompt').waitFor({ state: 'detached', timeout: 20_000 });
  await phone.page.getByTestId('chat-list').waitFor({ timeout: 30_000 });
  await waitLive(phone.page);
  await eventually(async () => (await laptop.page.locator('[data-testid=device][data-pending=true]').count()) === 0, {
    message: 'the laptop devices list to show the phone approved',
  });

  // The phone is a device like the others: it opens a chat and sends.
  await startDirect(phone.page, 'bob', { encrypted: false });
  await sendMessage(phone.page, 'approved and in');
  await expectStatus(phone.page, 'approved and in', 'sent');
  const chats = await bob.get('/v1/chats');
  assert.equal(chats.length, 1);
  const history = await bob.get(`/v1/chats/${chats[0].chat.id}/messages`);
  assert.deepEqual(
    history.messages.map((m) => m.text),
    ['approved and in'],
  );

  for (const p of [laptop, tablet, phone]) assert.deepEqual(p.page.errors, []);
  await Promise.all([laptop.context.close(), tablet.context.close(), phone.context.close()]);
});

test("It wasn't me: the waiting login is logged out; one cancelled on its own screen leaves no question", async () => {
  const first = await openPage(browser, server.url);
  // Its socket through a switch, to lose the connection at will.
  const net = await switchableSocket(first.context);
  await register(first.page, 'erin', 'Erin Park', PASSWORD, { keys: false });
  await turnOnApproval(first.page);
  await first.page.getByTestId('back').click();
  const prompt = first.page.getByTestId('approval-prompt');

  // A login cancelled on its waiting screen: nothing tells the first device,
  // which finds it gone from the devices list when it reconnects.
  const quitter = await openPage(browser, server.url);
  await submitLogin(quitter.page, 'erin');
  await quitter.page.getByTestId('waiting-approval').waitFor({ timeout: 30_000 });
  await prompt.waitFor({ timeout: 20_000 });
  await quitter.page.getByTestId('waiting-cancel').click();
  await quitter.page.getByTestId('auth-form').waitFor();
  assert.equal(await quitter.page.getByTestId('auth-error').count(), 0);
  await quitter.context.close();
  await net.goOffline();
  await first.page.getByTestId('conn-banner').waitFor();
  await net.goOnline();
  await prompt.waitFor({ state: 'detached', timeout: 30_000 });

  // Another login; "It wasn't me" on the first device.
  const stranger = await openPage(browser, server.url);
  await submitLogin(stranger.page, 'erin');
  await stranger.page.getByTestId('waiting-approval').waitFor({ timeout: 30_000 });
  await prompt.waitFor({ timeout: 20_000 });
  await prompt.getByTestId('approval-refuse').click();
  await prompt.waitFor({ state: 'detached' });
  // The waiting screen ends at the login screen, which says why.
  await stranger.page.getByTestId('auth-form').waitFor({ timeout: 20_000 });
  await stranger.page.getByTestId('auth-error').filter({ hasText: 'This login was not approved' }).waitFor();
  await stranger.page.screenshot({ path: screenshotPath('device-approval-refused.png') });
  assert.equal(await stranger.page.evaluate(() => Object.keys(localStorage).filter((k) => k.endsWith(':session')).length), 0);
  // Only the first device is left.
  await openSettings(first.page);
  await eventually(async () => (await first.page.getByTestId('device').count()) === 1, { message: 'one device listed' });

  assert.deepEqual(first.page.errors, []);
  assert.deepEqual(stranger.page.errors, []);
  await Promise.all([first.context.close(), stranger.context.close()]);
});
