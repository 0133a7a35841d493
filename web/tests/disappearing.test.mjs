// Disappearing messages. In a one-to-one chat either person turns the timer
// on or off from the chat's info panel; both see an inline line saying who
// did what and a timer in the header, and messages sent from then on carry
// a timer by their time (those from before do not). When the server
// erases a message (its `message_expired`), it goes from both browsers at
// once, and after a reload it is not shown either, not even as "deleted";
// a new browser shows the lines from history.
// The shortest timer is 24 hours, so the test moves that message's
// `expires_at` into the past in the server's database (as if the day had
// passed); the server, sweeping every 200 ms here, does the rest. In a
// group only admins may change it: a member sees it greyed out with why,
// until made admin. A refused change shows the server's words. And the
// browser drops a message whose `expires_at` has passed by its own clock,
// before any word from the server.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import {
  apiLogin,
  apiRegister,
  eventually,
  launchBrowser,
  login,
  openChat,
  openPage,
  register,
  screenshotPath,
  sendMessage,
  startDirect,
  startServer,
} from './helpers.mjs';

const DAY = 86_400;
const WEEK = 7 * DAY;

let server;
let browser;
let configDir;

before(async () => {
  configDir = mkdtempSync(join(tmpdir(), 'hark-web-disappearing-'));
  const config = join(configDir, 'hark.toml');
  // The server looks for messages whose time is up every 200 ms (instead of every few seconds).
  writeFileSync(config, '[retention]\nsweep_ms = 200\n');
  server = await startServer({ config });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.destroy();
  if (configDir) rmSync(configDir, { recursive: true, force: true });
});

test('the protocol module: the timers, and which messages have disappeared', async () => {
  const out = mkdtempSync(join(tmpdir(), 'hark-expiry-test-'));
  try {
    await build({
      entryPoints: [resolve(dirname(fileURLToPath(import.meta.url)), '../src/hark-client/index.ts')],
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      outfile: join(out, 'hark-client.mjs'),
      logLevel: 'error',
    });
    const { DISAPPEARING_SECS, hasDisappeared } = await import(pathToFileURL(join(out, 'hark-client.mjs')).href);
    assert.deepEqual([...DISAPPEARING_SECS], [0, DAY, WEEK, 90 * DAY]);
    const now = 1_800_000_000_000;
    assert.equal(hasDisappeared({}, now), false, 'no timer: stays');
    assert.equal(hasDisappeared({ expires_at: null }, now), false);
    assert.equal(hasDisappeared({ expires_at: now + 1 }, now), false, 'not yet');
    assert.equal(hasDisappeared({ expires_at: now }, now), true, 'its time is up');
    assert.equal(hasDisappeared({ expires_at: now + DAY * 1000, expired: true }, now), true, 'the server said so, whatever the clock says');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

const lines = (page) => page.getByTestId('event-line').allTextContents();

/** The bubble (in or out) whose text is `text`. */
const bubble = (page, text) =>
  page.locator('[data-testid=msg-in], [data-testid=msg-out]', { has: page.locator('[data-testid=msg-text]', { hasText: text }) });

/** Call the HTTP API as `who` (from apiLogin / apiRegister); resolves to `{ status, body }`, refusals included. */
async function call(who, method, path, body) {
  const r = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${who.token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

async function expectLines(page, expected, message) {
  await eventually(
    async () => {
      const got = await lines(page);
      if (JSON.stringify(got) === JSON.stringify(expected)) return true;
      throw new Error(JSON.stringify(got));
    },
    { message },
  );
}

/** Open the chat's info panel and wait for its disappearing-messages setting. */
async function openSetting(page) {
  await page.getByTestId('chat-info').click();
  const setting = page.getByTestId('info-panel').getByTestId('disappearing-setting');
  await setting.waitFor();
  return setting;
}

const option = (setting, seconds) => setting.locator(`[data-testid=disappearing-option][data-seconds="${seconds}"]`);

/** Which option is checked, by its seconds (the radio's `aria-checked`). */
async function checked(setting) {
  const on = setting.locator('[data-testid=disappearing-option][aria-checked=true]');
  assert.equal(await on.count(), 1, 'exactly one choice is checked');
  return Number(await on.getAttribute('data-seconds'));
}

/** As if the message's timer had run out: its `expires_at` set to a moment ago in the server's database. */
function timeIsUp(chatId, seq) {
  execFileSync('sqlite3', [
    '-cmd',
    '.timeout 10000',
    join(server.dataDir, 'hark.db'),
    `UPDATE messages SET expires_at = ${Date.now() - 1000} WHERE chat_id = ${Number(chatId)} AND seq = ${Number(seq)} AND expires_at IS NOT NULL`,
  ]);
}

test('one-to-one: either person sets the timer from the info panel; lines, header, message timers; an erased message goes everywhere', async () => {
  const alice = await openPage(browser, server.url);
  const bob = await openPage(browser, server.url);
  await register(alice.page, 'alice', 'Alice');
  await register(bob.page, 'bob', 'Bob');
  await startDirect(alice.page, 'bob');
  await sendMessage(alice.page, 'Before the timer');
  await openChat(bob.page, 'Alice');
  await bubble(bob.page, 'Before the timer').waitFor();
  assert.equal(await bob.page.getByTestId('header-disappearing').count(), 0, 'no timer in the header while off');

  // Alice turns on 24 hours from the contact info.
  const setting = await openSetting(alice.page);
  assert.equal(await checked(setting), 0, 'off at first');
  assert.deepEqual(
    await setting.getByTestId('disappearing-option').allTextContents(),
    ['Off', '24 hours', '7 days', '90 days'],
  );
  assert.equal(await setting.getByTestId('disappearing-locked').count(), 0, 'either person of a one-to-one chat may change it');
  await option(setting, DAY).click();
  await eventually(async () => (await checked(setting)) === DAY, { message: "Alice's setting at 24 hours" });
  await setting.getByText('On: new messages disappear 24 hours after they are sent.').waitFor();
  await alice.page.screenshot({ path: '/tmp/disappearing-info-panel.png' });
  await alice.page.screenshot({ path: screenshotPath('disappearing-info-panel.png') });

  // Bob sees who turned it on, and the timer in his header; so does Alice.
  await expectLines(bob.page, ['Alice turned on disappearing messages. New messages will disappear after 24 hours.'], "Bob's line");
  await expectLines(alice.page, ['You turned on disappearing messages. New messages will disappear after 24 hours.'], "Alice's line");
  const header = bob.page.getByTestId('header-disappearing');
  await header.waitFor();
  assert.equal(await header.getAttribute('data-seconds'), String(DAY));
  assert.equal(await header.getAttribute('title'), 'Disappearing messages: 24 hours');
  await alice.page.getByTestId('header-disappearing').waitFor();

  // Only messages sent from now on disappear: they carry a timer by their time, for both.
  const sentAt = Date.now();
  await sendMessage(alice.page, 'After the timer');
  const afterIn = bubble(bob.page, 'After the timer');
  await afterIn.waitFor();
  const expiresAt = Number(await afterIn.getByTestId('msg-expiring').getAttribute('data-expires-at'));
  assert.ok(Math.abs(expiresAt - (sentAt + DAY * 1000)) < 60_000, `expires a day after it was sent: ${expiresAt - sentAt} ms`);
  await bubble(alice.page, 'After the timer').getByTestId('msg-expiring').waitFor();
  assert.equal(await bubble(bob.page, 'Before the timer').getByTestId('msg-expiring').count(), 0, 'the message from before stays');
  // The line sits between the message before and the one after.
  const order = await bob.page.locator('[data-testid=event-line], [data-testid=msg-in] [data-testid=msg-text]').allTextContents();
  assert.deepEqual(order, ['Before the timer', 'Alice turned on disappearing messages. New messages will disappear after 24 hours.', 'After the timer']);
  await bob.page.mouse.move(900, 400);
  await bob.page.screenshot({ path: '/tmp/disappearing-chat.png' });
  await bob.page.screenshot({ path: screenshotPath('disappearing-chat.png') });

  // Bob, the other person of the chat, may change it too: 7 days.
  const bobs = await openSetting(bob.page);
  assert.equal(await checked(bobs), DAY);
  await option(bobs, WEEK).click();
  await eventually(async () => (await alice.page.getByTestId('header-disappearing').getAttribute('data-seconds')) === String(WEEK), {
    message: "Alice's header at 7 days",
  });
  await eventually(async () => (await checked(setting)) === WEEK, { message: "Alice's open setting follows Bob's change" });
  await eventually(async () => (await lines(alice.page)).at(-1) === 'Bob turned on disappearing messages. New messages will disappear after 7 days.', {
    message: "Bob's change on Alice's side",
  });
  await bob.page.getByTestId('panel-close').click();

  // The server erases "After the timer" (its day has passed): it goes from both browsers, not even "deleted" stays.
  const chatId = await bob.page.getByTestId('chat-pane').getAttribute('data-chat-id');
  const seq = await afterIn.getAttribute('data-seq');
  timeIsUp(chatId, seq);
  await afterIn.waitFor({ state: 'detached', timeout: 15_000 });
  await bubble(alice.page, 'After the timer').waitFor({ state: 'detached', timeout: 15_000 });
  for (const page of [alice.page, bob.page]) {
    assert.equal(await page.locator(`[data-seq="${seq}"]`).count(), 0, 'the bubble is gone');
    assert.equal(await page.locator('[data-deleted=true]').count(), 0, 'no "deleted" placeholder');
    await bubble(page, 'Before the timer').waitFor();
  }
  const checker = await apiLogin(server.url, 'bob');
  const history = await checker.get(`/v1/chats/${chatId}/messages`);
  const gone = history.messages.find((m) => m.seq === Number(seq));
  assert.ok(gone?.expired && gone.deleted, `the server has it expired: ${JSON.stringify(gone)}`);

  // After a reload, history's expired copy is not shown either; the lines stay (kept in this browser).
  await bob.page.reload();
  await openChat(bob.page, 'Alice');
  await bubble(bob.page, 'Before the timer').waitFor();
  await expectLines(
    bob.page,
    ['Alice turned on disappearing messages. New messages will disappear after 24 hours.', 'You turned on disappearing messages. New messages will disappear after 7 days.'],
    "Bob's lines after a reload",
  );
  assert.equal(await bob.page.locator('[data-testid=msg-in], [data-testid=msg-out]').count(), 1, 'only the message from before the timer');

  // A refusal shows the server's words, and the setting stays as it was.
  await alice.page.route('**/v1/chats/*/disappearing', (route) => route.continue({ postData: JSON.stringify({ seconds: 3600 }) }));
  await option(setting, DAY).click();
  const error = setting.getByTestId('disappearing-error');
  await error.waitFor();
  assert.ok((await error.textContent()).length > 0);
  assert.equal(await checked(setting), WEEK, 'unchanged after the refusal');
  await alice.page.unroute('**/v1/chats/*/disappearing');

  // Alice turns it off: Bob's line, and the header's timer goes.
  await option(setting, 0).click();
  await eventually(async () => (await lines(bob.page)).at(-1) === 'Alice turned off disappearing messages.', { message: 'turned off' });
  await bob.page.getByTestId('header-disappearing').waitFor({ state: 'detached' });
  assert.equal(await setting.getByTestId('disappearing-error').count(), 0, 'the error went with the next change');
  await sendMessage(alice.page, 'Stays for good');
  await bubble(bob.page, 'Stays for good').waitFor();
  assert.equal(await bubble(bob.page, 'Stays for good').getByTestId('msg-expiring').count(), 0);

  // A browser that saw none of it (Bob's new login) shows the lines from history.
  const fresh = await openPage(browser, server.url);
  await login(fresh.page, 'bob');
  await openChat(fresh.page, 'Alice');
  await expectLines(
    fresh.page,
    [
      'Alice turned on disappearing messages. New messages will disappear after 24 hours.',
      'You turned on disappearing messages. New messages will disappear after 7 days.',
      'Alice turned off disappearing messages.',
    ],
    "the lines on Bob's new browser, from history",
  );
  await fresh.context.close();

  for (const p of [alice, bob]) {
    assert.deepEqual(p.page.errors, []);
    await p.context.close();
  }
});

test('a group: only admins may change the timer; a member sees why, and may once made admin', async () => {
  const [ann, ben] = await Promise.all([['ann', 'Ann'], ['ben', 'Ben']].map(([u, n]) => apiRegister(server.url, u, n)));
  const cid = await apiRegister(server.url, 'cid', 'Cid');
  const group = (await call(ann, 'POST', '/v1/chats/groups', { title: 'Hikers', members: [ben.user.id, cid.user.id] })).body;
  await ann.send(group.id, 'Trail map attached');

  const b = await openPage(browser, server.url);
  await login(b.page, 'ben');
  await openChat(b.page, 'Hikers');
  const setting = await openSetting(b.page);
  assert.equal(await checked(setting), 0);
  for (const o of await setting.getByTestId('disappearing-option').all()) assert.ok(await o.isDisabled(), 'greyed out for a member');
  assert.equal(await setting.getByTestId('disappearing-locked').textContent(), 'Only group admins can change this setting.');
  // The server agrees.
  assert.equal((await call(ben, 'PUT', `/v1/chats/${group.id}/disappearing`, { seconds: DAY })).status, 403);

  // Ann, an admin, sets 7 days: Ben's line, header and (still greyed) setting follow.
  const set = await call(ann, 'PUT', `/v1/chats/${group.id}/disappearing`, { seconds: WEEK });
  assert.equal(set.status, 200);
  assert.equal(set.body.disappearing_secs, WEEK);
  await expectLines(b.page, ['Ann created group "Hikers"', 'Ann turned on disappearing messages. New messages will disappear after 7 days.'], "Ben's line");
  await eventually(async () => (await b.page.getByTestId('header-disappearing').getAttribute('data-seconds')) === String(WEEK), {
    message: "Ben's header",
  });
  await eventually(async () => (await checked(setting)) === WEEK, { message: "Ben's setting shows 7 days" });
  assert.ok(await option(setting, 0).isDisabled());

  // Made admin, Ben may: he turns it off.
  await call(ann, 'PATCH', `/v1/chats/${group.id}/members/${ben.user.id}`, { admin: true });
  await eventually(async () => !(await option(setting, 0).isDisabled()), { message: "Ben's choices enabled once admin" });
  assert.equal(await setting.getByTestId('disappearing-locked').count(), 0);
  await option(setting, 0).click();
  await eventually(async () => (await call(cid, 'GET', `/v1/chats/${group.id}`)).body.chat.disappearing_secs === 0, { message: 'off on the server' });
  await eventually(async () => (await lines(b.page)).at(-1) === 'You turned off disappearing messages.', { message: "Ben's own line" });
  await b.page.getByTestId('header-disappearing').waitFor({ state: 'detached' });
  assert.deepEqual(b.page.errors, []);
  await b.context.close();
});

test("the browser drops a message once its expires_at has passed by its own clock, and never shows an expired one", async () => {
  const dee = await apiRegister(server.url, 'dee', 'Dee');
  const eve = await apiRegister(server.url, 'eve', 'Eve');
  const chat = (await call(dee, 'POST', '/v1/chats/direct', { user_id: eve.user.id })).body;
  for (const text of ['Kept', 'Already gone', 'Erased by the server', 'Going soon', 'Last word']) await dee.send(chat.id, text);
  // With this many unread, the chat opens on a window of pages at the first of them (the newest page's way is the other test's reload).
  for (let i = 1; i <= 55; i++) await dee.send(chat.id, `Filler ${i}`);

  // Eve's browser gets the history with these messages' timers as if they
  // had been sent under one (the server set none): one passed, one erased
  // by the server, one that passes 4 s after the page was fetched.
  let soon = null;
  const e = await openPage(browser, server.url);
  await e.page.route('**/v1/chats/*/messages**', async (route) => {
    if (route.request().method() !== 'GET') return route.continue();
    const response = await route.fetch();
    const page = await response.json();
    soon ??= Date.now() + 4_000;
    for (const m of page.messages) {
      if (m.text === 'Already gone') m.expires_at = Date.now() - 60_000;
      // (As this device's clock sees it, its time is not up yet: only `expired` says it is gone.)
      if (m.text === 'Erased by the server') Object.assign(m, { text: '', deleted: true, expired: true, expires_at: Date.now() + DAY * 1000 });
      if (m.text === 'Going soon') m.expires_at = soon;
    }
    await route.fulfill({ response, json: page });
  });
  await login(e.page, 'eve', 'password-123', { keys: false });
  await openChat(e.page, 'Dee');
  const texts = async () => (await e.page.locator('[data-testid=msg-in] [data-testid=msg-text]').allTextContents()).filter((t) => !t.startsWith('Filler'));
  await bubble(e.page, 'Last word').waitFor();
  assert.deepEqual(await texts(), ['Kept', 'Going soon', 'Last word']);
  assert.equal(await e.page.locator('[data-deleted=true]').count(), 0, 'an expired message is no "deleted" placeholder');
  await bubble(e.page, 'Going soon').getByTestId('msg-expiring').waitFor();
  assert.equal(await bubble(e.page, 'Kept').getByTestId('msg-expiring').count(), 0);
  assert.ok(Date.now() < soon, 'checked before its time was up');

  // Its time passes: gone, though the server never said so.
  await bubble(e.page, 'Going soon').waitFor({ state: 'detached', timeout: 10_000 });
  assert.ok(Date.now() >= soon, 'not before its time');
  assert.deepEqual(await texts(), ['Kept', 'Last word']);
  assert.deepEqual(e.page.errors, []);
  await e.context.close();
});
