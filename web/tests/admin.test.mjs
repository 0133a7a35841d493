// Server administration against the real server: the first account is an
// admin and finds Administration in the menu, the second does not. The
// admin sees the server's figures, pages through and searches the users,
// disables one (whose open browser drops to the login screen with the
// reason, and whose login is refused with it), cannot disable themselves
// (the server's refusal shows), enables them again, sets their password
// (their devices logged out; the old password refused, the new one works),
// logs one of their devices out, makes them an admin (they then see
// Administration, and lose it when it is taken back), and looks up who is
// in a chat. Then on a phone and in the dark theme: nothing sideways,
// axe-core clean, tabs by keyboard, the back button closes it.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import {
  apiLogin,
  apiRegister,
  eventually,
  launchBrowser,
  login,
  openPage,
  overflowingElements,
  PHONE,
  register,
  screenshotPath,
  startServer,
  waitLive,
} from './helpers.mjs';

const DISABLED = 'Your account has been disabled by an administrator.';
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

/** Open the menu and wait until it knows the user's role (its `GET /v1/me` answered). */
async function menuRole(page) {
  await page.getByTestId('menu').click();
  return eventually(() => page.locator('.menu[data-role]').getAttribute('data-role', { timeout: 1_000 }), { message: 'the menu to know the role' });
}

/** Menu → Administration (the menu asks the server for the role as it opens). */
async function openAdmin(page) {
  await page.getByTestId('menu').click();
  await page.getByTestId('admin-open').click({ timeout: 10_000 });
  await page.getByTestId('admin').waitFor();
}

async function stat(page, id) {
  return (await page.getByTestId(`stat-${id}`).getByTestId('stat-value').textContent()).trim();
}

async function expectStat(page, id, value) {
  await eventually(async () => (await stat(page, id)) === value, { message: `stat ${id} to read ${value}` });
}

function userRows(page) {
  return page.getByTestId('admin-user');
}

async function usernames(page) {
  return userRows(page).evaluateAll((rows) => rows.map((r) => r.getAttribute('data-username')));
}

/** Users tab, search, open that user's details. */
async function pickUser(page, username) {
  await page.getByTestId('admin-tab-users').click();
  await page.getByTestId('admin-user-search').fill(username);
  await page.locator(`[data-testid=admin-user-list][data-query="${username}"] [data-testid=admin-user][data-username="${username}"]`).click();
  await page.locator(`[data-testid=admin-user-detail][data-username="${username}"]`).waitFor();
}

async function confirm(page, title) {
  const dialog = page.getByTestId('confirm-dialog');
  await dialog.waitFor();
  if (title) assert.match(await dialog.locator('h2').textContent(), title);
  await page.getByTestId('confirm-ok').click();
  await dialog.waitFor({ state: 'detached' });
}

/**
 * On a fresh login screen (reloaded, so no earlier error shows), submit the
 * form; resolves to the error it shows, or null once the chat list is there.
 */
async function tryLogin(page, username, password = 'password-123') {
  await page.reload();
  await page.getByTestId('auth-form').waitFor();
  assert.equal(await page.getByTestId('auth-error').count(), 0);
  await page.locator('input[name=username]').fill(username);
  await page.locator('input[name=password]').fill(password);
  await page.getByTestId('auth-submit').click();
  await eventually(async () => (await page.getByTestId('auth-error').isVisible()) || (await page.getByTestId('chat-list').isVisible()), {
    message: `the login of ${username} to be answered`,
  });
  if (await page.getByTestId('chat-list').isVisible()) return null;
  return (await page.getByTestId('auth-error').textContent()).trim();
}

/** This browser's device id, from its saved session. */
function deviceIdOf(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem(`hark:${location.origin}:session`)).device.id);
}

/** Serious and critical axe-core violations on the page, as "rule: target" strings. */
async function axe(page) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .flatMap((v) => v.nodes.map((n) => `${v.id}: ${n.target.join(' ')} ${n.failureSummary?.split('\n')[1]?.trim() ?? ''}`));
}

let group;
let direct;

test('the first account runs the server: figures, users, disable and enable, password, devices, admins, chat membership', async () => {
  const alice = await openPage(browser, server.url);
  await register(alice.page, 'alice', 'Alice Admin');
  const bob = await openPage(browser, server.url);
  await register(bob.page, 'bob', 'Bob Builder');

  // Only the first account is an admin.
  assert.equal(await menuRole(bob.page), 'user');
  assert.equal(await bob.page.getByTestId('admin-open').count(), 0, 'no Administration for a user');
  await bob.page.keyboard.press('Escape');
  await openAdmin(alice.page);
  await alice.page.getByTestId('admin-overview').waitFor();
  await expectStat(alice.page, 'users', '2');
  await expectStat(alice.page, 'admins', '1');
  await expectStat(alice.page, 'disabled', '0');
  await expectStat(alice.page, 'online', '2');

  // More people, a group with three messages and a one-to-one chat with one.
  const carol = await apiRegister(server.url, 'carol', 'Carol Chat');
  await apiRegister(server.url, 'dave', 'Dave Direct');
  const aliceApi = await apiLogin(server.url, 'alice');
  const [bobUser] = await aliceApi.get('/v1/users?q=bob');
  group = await aliceApi.post('/v1/chats/groups', { title: 'Support', members: [bobUser.id, carol.user.id] });
  for (const text of ['one', 'two', 'three']) await aliceApi.send(group.id, text);
  direct = await carol.post('/v1/chats/direct', { user_id: aliceApi.user.id });
  await carol.send(direct.id, 'hi Alice');

  await alice.page.getByTestId('stats-refresh').click();
  await expectStat(alice.page, 'users', '4');
  await expectStat(alice.page, 'chats', '2');
  await expectStat(alice.page, 'messages', '4');
  // Two browsers and three HTTP logins.
  await expectStat(alice.page, 'devices', '5');
  const days = await alice.page.getByTestId('chart-day').evaluateAll((cols) => cols.map((c) => Number(c.getAttribute('data-messages'))));
  assert.equal(days.length, 7, 'a bar per day of the last week');
  assert.equal(days[6], 4, "today's bar counts today's messages");
  await alice.page.screenshot({ path: screenshotPath('admin-overview.png') });

  // Pages of two (the UI asks for 50; the page size is rewritten to see
  // "Load more" follow the server's `next` with a handful of users).
  await alice.context.route(/\/v1\/admin\/users\?/, (route) => {
    const url = new URL(route.request().url());
    url.searchParams.set('limit', '2');
    return route.continue({ url: url.toString() });
  });
  await alice.page.getByTestId('admin-tab-users').click();
  await eventually(async () => (await userRows(alice.page).count()) === 2, { message: 'the first page' });
  assert.deepEqual(await usernames(alice.page), ['alice', 'bob']);
  const more = alice.page.getByTestId('admin-users-more');
  while (await more.isVisible()) {
    const before = await userRows(alice.page).count();
    await more.click();
    await eventually(async () => (await userRows(alice.page).count()) > before || !(await more.isVisible()), { message: 'the next page' });
  }
  assert.deepEqual(await usernames(alice.page), ['alice', 'bob', 'carol', 'dave']);
  assert.match(await alice.page.getByTestId('admin-users-end').textContent(), /4 users/);
  const aliceRow = alice.page.locator('[data-testid=admin-user][data-username=alice]');
  assert.equal(await aliceRow.getByTestId('badge-admin').count(), 1);
  assert.equal(await alice.page.locator('[data-testid=admin-user][data-username=bob] [data-testid=badge-admin]').count(), 0);
  assert.equal(await alice.page.locator('[data-testid=admin-user][data-username=bob] [data-testid=device-count]').textContent(), '1 device');

  // Search by the start of the username, in any case.
  await alice.page.getByTestId('admin-user-search').fill('BO');
  await alice.page.locator('[data-testid=admin-user-list][data-query=BO]').waitFor();
  assert.deepEqual(await usernames(alice.page), ['bob'], 'only bob found');
  assert.match(await alice.page.getByTestId('admin-users-end').textContent(), /^1 user starting with “BO”$/);
  await alice.page.locator('[data-testid=admin-user][data-username=bob]').click();
  const detail = alice.page.locator('[data-testid=admin-user-detail][data-username=bob]');
  await detail.waitFor();
  assert.equal(await detail.getByTestId('admin-user-name').textContent(), 'Bob Builder');
  await eventually(async () => (await detail.getByTestId('admin-device').count()) === 1, { message: "bob's device listed" });
  await alice.page.screenshot({ path: screenshotPath('admin-user.png') });

  // Disable Bob: his open browser is back at login, saying why.
  await alice.page.getByTestId('admin-toggle-disabled').click();
  await confirm(alice.page, /Disable @bob/);
  await alice.page.getByTestId('admin-done').filter({ hasText: '@bob is disabled.' }).waitFor();
  await alice.page.locator('[data-testid=admin-user][data-username=bob] [data-testid=badge-disabled]').waitFor();
  await bob.page.getByTestId('auth-form').waitFor({ timeout: 20_000 });
  assert.equal((await bob.page.getByTestId('auth-error').textContent()).trim(), DISABLED);
  assert.equal(await bob.page.evaluate(() => localStorage.getItem(`hark:${location.origin}:session`)), null, 'signed out locally');
  await bob.page.screenshot({ path: screenshotPath('admin-disabled-login.png') });
  // Logging in (with the right password) is refused with the same reason.
  assert.equal(await tryLogin(bob.page, 'bob'), DISABLED);

  // An admin cannot disable themselves: the server's refusal shows beside the action.
  await pickUser(alice.page, 'alice');
  await alice.page.getByTestId('admin-toggle-disabled').click();
  await confirm(alice.page, /Disable @alice/);
  const refusal = alice.page.locator('[data-testid=admin-user-detail] [data-testid=admin-error]');
  await refusal.waitFor();
  const refusalText = (await refusal.textContent()).trim();
  assert.ok(refusalText.length > 0, 'the server says why');
  console.log(`# disabling yourself: "${refusalText}"`);
  assert.equal(await alice.page.locator('[data-testid=admin-user][data-username=alice]').getAttribute('data-disabled'), null);
  await alice.page.getByTestId('admin').waitFor();

  // Enable Bob: he can log in again.
  await pickUser(alice.page, 'bob');
  await alice.page.getByTestId('admin-toggle-disabled').click();
  await confirm(alice.page, /Enable @bob/);
  await alice.page.getByTestId('admin-done').filter({ hasText: '@bob can log in again.' }).waitFor();
  await alice.page.locator('[data-testid=admin-user][data-username=bob] [data-testid=badge-disabled]').waitFor({ state: 'detached' });
  await bob.page.reload();
  await login(bob.page, 'bob');

  // A new password, every device of his logged out (the box is ticked by default).
  assert.equal(await alice.page.getByTestId('admin-logout-all').isChecked(), true);
  await alice.page.getByTestId('admin-new-password').fill('new-password-456');
  await alice.page.getByTestId('admin-set-password').click();
  await alice.page.getByTestId('admin-done').filter({ hasText: 'Password changed.' }).waitFor();
  await bob.page.getByTestId('auth-form').waitFor({ timeout: 20_000 });
  await eventually(async () => (await alice.page.getByTestId('admin-device').count()) === 0, { message: 'no device left' });
  assert.equal(await alice.page.getByTestId('admin-user-devices').textContent(), '0');
  assert.equal(await tryLogin(bob.page, 'bob', 'password-123'), 'Wrong username or password.');
  assert.equal(await tryLogin(bob.page, 'bob', 'new-password-456'), null);
  await waitLive(bob.page);

  // Log one of his two browsers out: that one is back at login, the other stays.
  const bob2 = await openPage(browser, server.url);
  await login(bob2.page, 'bob', 'new-password-456');
  const bob2Device = await deviceIdOf(bob2.page);
  await alice.page.getByTestId('admin-devices-refresh').click();
  await eventually(async () => (await alice.page.getByTestId('admin-device').count()) === 2, { message: 'two devices' });
  await alice.page.locator(`[data-testid=admin-device][data-device-id="${bob2Device}"]`).getByTestId('admin-revoke-device').click();
  await confirm(alice.page, /Log out/);
  await bob2.page.getByTestId('auth-form').waitFor({ timeout: 20_000 });
  await eventually(async () => (await alice.page.getByTestId('admin-device').count()) === 1, { message: 'one device left' });
  assert.equal(await alice.page.locator(`[data-testid=admin-device][data-device-id="${bob2Device}"]`).count(), 0);
  assert.equal(await bob.page.getByTestId('auth-form').count(), 0, 'the other browser stays logged in');
  await waitLive(bob.page);

  // Make Bob an admin: he then finds Administration in his menu.
  await alice.page.getByTestId('admin-toggle-role').click();
  await confirm(alice.page, /Make @bob a server admin/);
  await alice.page.getByTestId('admin-done').filter({ hasText: '@bob is now a server admin.' }).waitFor();
  await alice.page.locator('[data-testid=admin-user][data-username=bob] [data-testid=badge-admin]').waitFor();
  await openAdmin(bob.page);
  await expectStat(bob.page, 'admins', '2');
  // Taken back: his next admin request is refused, and Administration closes.
  await alice.page.getByTestId('admin-toggle-role').click();
  await confirm(alice.page, /Remove @bob/);
  await alice.page.getByTestId('admin-done').filter({ hasText: 'no longer a server admin' }).waitFor();
  await bob.page.getByTestId('stats-refresh').click();
  await bob.page.getByTestId('admin').waitFor({ state: 'detached' });
  await bob.page.getByTestId('chat-list').waitFor();
  assert.equal(await menuRole(bob.page), 'user');
  assert.equal(await bob.page.getByTestId('admin-open').count(), 0);
  await bob.page.keyboard.press('Escape');

  // Who is in a chat: kind, title, count and members, oldest first; never a message.
  await alice.page.getByTestId('admin-tab-chats').click();
  await alice.page.getByTestId('chat-id').fill(String(group.id));
  await alice.page.getByTestId('chat-lookup').click();
  const chat = alice.page.getByTestId('admin-chat');
  await chat.waitFor();
  assert.equal(await chat.getByTestId('admin-chat-title').textContent(), 'Support');
  assert.equal(await chat.getByTestId('admin-chat-kind').textContent(), 'Group');
  assert.equal(await chat.getByTestId('admin-chat-messages').textContent(), '3');
  const members = chat.getByTestId('admin-chat-member');
  assert.deepEqual(await members.evaluateAll((m) => m.map((x) => x.getAttribute('data-username'))), ['alice', 'bob', 'carol']);
  assert.equal(await members.filter({ has: alice.page.getByTestId('group-admin') }).count(), 1);
  assert.equal(await members.first().getByTestId('group-admin').count(), 1, 'the creator is the group admin');
  assert.match(await members.nth(1).textContent(), /Joined /);
  const text = await chat.textContent();
  for (const m of ['one', 'two', 'three']) assert.ok(!new RegExp(`\\b${m}\\b`).test(text), `no message text ("${m}")`);
  await alice.page.screenshot({ path: screenshotPath('admin-chat.png') });
  await alice.page.getByTestId('chat-id').fill(String(direct.id));
  await alice.page.getByTestId('chat-lookup').click();
  await chat.getByTestId('admin-chat-title').filter({ hasText: 'One-to-one chat' }).waitFor();
  assert.equal(await chat.getByTestId('admin-chat-messages').textContent(), '1');
  assert.deepEqual(await members.evaluateAll((m) => m.map((x) => x.getAttribute('data-username')).sort()), ['alice', 'carol']);
  await alice.page.getByTestId('chat-id').fill('999999');
  await alice.page.getByTestId('chat-lookup').click();
  assert.equal(await alice.page.getByTestId('admin-error').textContent(), 'There is no chat 999999.');
  // A member leads to their account.
  await alice.page.getByTestId('chat-id').fill(String(group.id));
  await alice.page.getByTestId('chat-lookup').click();
  await members.filter({ hasText: 'Carol Chat' }).click();
  await alice.page.locator('[data-testid=admin-user-detail][data-username=carol]').waitFor();

  // Back to the chats.
  await alice.page.getByTestId('admin-close').click();
  await alice.page.getByTestId('admin').waitFor({ state: 'detached' });
  await alice.page.getByTestId('chat-list').waitFor();

  for (const p of [alice, bob, bob2]) assert.deepEqual(p.page.errors, []);
  await alice.context.close();
  await bob.context.close();
  await bob2.context.close();
});

test('on a phone and in the dark theme: nothing sideways, axe clean, tabs by keyboard, the back button closes it', async () => {
  const problems = [];
  for (const [name, options] of [
    ['phone', { ...PHONE, colorScheme: 'light' }],
    ['desktop-dark', { viewport: { width: 1280, height: 800 }, colorScheme: 'dark' }],
  ]) {
    const { context, page } = await openPage(browser, server.url, options);
    await login(page, 'alice');
    await openAdmin(page);
    await expectStat(page, 'users', '4');
    const check = async (screen) => {
      for (const v of await axe(page)) problems.push(`${screen}/${name}: ${v}`);
      for (const o of await overflowingElements(page)) problems.push(`${screen}/${name}: sideways ${o}`);
      await page.screenshot({ path: screenshotPath(`admin-${screen}-${name}.png`) });
    };
    await check('overview');
    // The tabs by keyboard: focus starts in the screen; one Tab stop, arrows move and select.
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'admin-title');
    await page.getByTestId('admin-tab-overview').focus();
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.getByTestId('admin-tab-users').getAttribute('aria-selected'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'admin-tab-users');
    await page.getByTestId('admin-users').waitFor();
    await pickUser(page, 'bob');
    await page.getByTestId('admin-device').first().waitFor();
    await check('user');
    if (name === 'phone') {
      // One pane at a time: the details' back arrow returns to the list.
      assert.equal(await page.getByTestId('admin-user-list').isVisible(), false);
      await page.getByTestId('admin-user-back').click();
      await page.getByTestId('admin-user-list').waitFor();
    }
    await page.getByTestId('admin-tab-chats').click();
    await page.getByTestId('chat-id').fill(String(group.id));
    await page.getByTestId('chat-lookup').click();
    await page.getByTestId('admin-chat').waitFor();
    await check('chat');
    // The browser's (and the phone's) back button leaves Administration.
    await page.goBack();
    await page.getByTestId('admin').waitFor({ state: 'detached' });
    await page.getByTestId('chat-list').waitFor();
    assert.deepEqual(page.errors, []);
    await context.close();
  }
  assert.deepEqual(problems, [], 'no sideways scrolling, no serious or critical axe violations');
});
