// Administration → Audit log against the real server: an admin logs in,
// another user registers, a login is refused (a wrong password, an unknown
// username), the admin disables and enables that user; the Audit log shows
// those rows newest first with their labels, actors, targets, addresses and
// details, pages with "Older", narrows by action, by user (an unknown
// username says so) and by dates, and "Verify chain" says the chain is
// intact with the server's head. Then the server is stopped, one row is
// changed in its SQLite file, and after a restart Verify says which row
// broke. Last, on a phone and in the dark theme: nothing sideways, axe clean.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
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
} from './helpers.mjs';

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

async function openAdmin(page) {
  await page.getByTestId('menu').click();
  await page.getByTestId('admin-open').click({ timeout: 10_000 });
  await page.getByTestId('admin').waitFor();
}

async function confirm(page) {
  await page.getByTestId('confirm-dialog').waitFor();
  await page.getByTestId('confirm-ok').click();
  await page.getByTestId('confirm-dialog').waitFor({ state: 'detached' });
}

/** A failed login over HTTP (no UI involved); resolves to the status. */
async function failLogin(username, password) {
  const res = await fetch(`${server.url}/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password, device_name: 'guess' }),
  });
  return res.status;
}

/** GET an admin route with the page's own session (no new login, so no new audit row). */
function adminGet(page, path) {
  return page.evaluate(async (path) => {
    const { token } = JSON.parse(localStorage.getItem(`hark:${location.origin}:session`));
    const r = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
    if (!r.ok) throw new Error(`${path}: ${r.status}`);
    return r.json();
  }, path);
}

/** The rows shown, top to bottom: [id, action]. */
function shown(page) {
  return page.getByTestId('audit-row').evaluateAll((rows) => rows.map((r) => [Number(r.getAttribute('data-id')), r.getAttribute('data-action')]));
}

function row(page, id) {
  return page.locator(`[data-testid=audit-row][data-id="${id}"]`);
}

async function text(locator) {
  return (await locator.textContent()).replace(/\s+/g, ' ').trim();
}

/** Wait until the list answers these filters (the list marks what it shows) and holds `n` rows. */
async function expectList(page, { action = '', user = '', n }) {
  await page.locator(`[data-testid=audit-list][data-action="${action}"][data-user="${user}"][data-count="${n}"]`).waitFor({ timeout: 10_000 });
}

/** A local date `days` from today, as a date input's value. */
function localDate(page, days) {
  return page.evaluate((days) => {
    const d = new Date();
    d.setDate(d.getDate() + days);
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  }, days);
}

async function verify(page) {
  await page.getByTestId('audit-verify').click();
  const verdict = page.locator('[data-testid=audit-verdict][data-state=intact], [data-testid=audit-verdict][data-state=broken], [data-testid=audit-verdict][data-state=error]');
  await verdict.waitFor({ timeout: 20_000 });
  return { state: await verdict.getAttribute('data-state'), row: await verdict.getAttribute('data-broken-row'), text: await text(page.getByTestId('audit-verdict-text')) };
}

/** Change one row behind the server's back: the `sqlite3` CLI, else python3's sqlite3 module. */
function tamper(db, sql) {
  let r = spawnSync('sqlite3', [db, sql], { encoding: 'utf8' });
  if (r.error) r = spawnSync('python3', ['-c', 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()', db, sql], { encoding: 'utf8' });
  assert.equal(r.status, 0, `changing the database: ${r.stderr}`);
}

const EXPECTED = [
  [8, 'admin_enable_user'],
  [7, 'admin_disable_user'],
  [6, 'login_failed'],
  [5, 'login_failed'],
  [4, 'login'],
  [3, 'register'],
  [2, 'login'],
  [1, 'register'],
];

test('the audit log: rows newest first with labels, Older, filters, Verify chain intact; a row changed in the database breaks it', async () => {
  // Alice (the first account, so an admin) in the browser: rows 1 and 2.
  const alice = await openPage(browser, server.url);
  await register(alice.page, 'alice', 'Alice Admin');
  // Bob registers (rows 3, 4); a wrong password for bob (5) and an unknown username (6).
  const bob = await apiRegister(server.url, 'bob', 'Bob Builder');
  assert.equal(await failLogin('bob', 'not-his-password'), 401);
  assert.equal(await failLogin('mallory', 'guess-123'), 401);

  // Alice disables bob and enables him again (7, 8).
  await openAdmin(alice.page);
  await alice.page.getByTestId('admin-tab-users').click();
  await alice.page.getByTestId('admin-user-search').fill('bob');
  await alice.page.locator('[data-testid=admin-user-list][data-query=bob] [data-testid=admin-user][data-username=bob]').click();
  await alice.page.getByTestId('admin-toggle-disabled').click();
  await confirm(alice.page);
  await alice.page.getByTestId('admin-done').filter({ hasText: '@bob is disabled.' }).waitFor();
  await alice.page.getByTestId('admin-toggle-disabled').click();
  await confirm(alice.page);
  await alice.page.getByTestId('admin-done').filter({ hasText: '@bob can log in again.' }).waitFor();

  // The Audit log: newest first, as the server has it.
  const page = alice.page;
  await page.getByTestId('admin-tab-audit').click();
  await page.getByTestId('admin-audit').waitFor();
  await expectList(page, { n: 8 });
  assert.deepEqual(await shown(page), EXPECTED);
  const api = await adminGet(page, '/v1/admin/audit');
  assert.deepEqual(
    api.entries.map((e) => [e.id, e.action]),
    EXPECTED,
    'the list is the API’s',
  );

  // Each row: a label and the raw action, the actor by username, the target, the address, the details.
  const disable = row(page, 7);
  assert.equal(await text(disable.getByTestId('audit-label')), 'Admin disabled an account');
  assert.equal(await text(disable.getByTestId('audit-action')), 'admin_disable_user');
  await disable.getByTestId('audit-actor').filter({ hasText: '@alice' }).waitFor();
  await disable.getByTestId('audit-target').filter({ hasText: '@bob' }).waitFor();
  assert.equal(await text(disable.getByTestId('audit-address')), '127.0.0.1');
  assert.equal(await text(row(page, 8).getByTestId('audit-label')), 'Admin enabled an account');

  const wrong = row(page, 5);
  assert.equal(await text(wrong.getByTestId('audit-label')), 'Login refused');
  assert.equal(await wrong.getByTestId('audit-actor').count(), 0, 'a refused login has no actor');
  await wrong.getByTestId('audit-target').filter({ hasText: '@bob' }).waitFor();
  assert.equal(await text(wrong.getByTestId('audit-detail')), 'reason=wrong_password');
  assert.equal(await text(row(page, 6).getByTestId('audit-detail')), 'reason=unknown_user username=mallory');
  assert.equal(await row(page, 6).getByTestId('audit-target').count(), 0, 'no such user to point at');

  assert.equal(await text(row(page, 3).getByTestId('audit-label')), 'Account created');
  await row(page, 3).getByTestId('audit-actor').filter({ hasText: '@bob' }).waitFor();
  const aliceLogin = row(page, 2);
  assert.equal(await text(aliceLogin.getByTestId('audit-label')), 'Logged in');
  await aliceLogin.getByTestId('audit-actor').filter({ hasText: /^@alice · device \d+$/ }).waitFor();
  assert.match(await text(aliceLogin.getByTestId('audit-detail')), /^device_name=.+/);
  // Times in the browser's time zone, the exact instant in the datetime attribute.
  const at = Date.parse(await row(page, 1).getByTestId('audit-time').getAttribute('datetime'));
  assert.ok(Math.abs(Date.now() - at) < 10 * 60_000, 'written minutes ago');
  assert.equal(
    await text(row(page, 1).getByTestId('audit-time')),
    await page.evaluate(
      (at) => new Date(at).toLocaleString([], { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' }),
      api.entries[7].at,
    ),
  );
  assert.deepEqual(alice.page.errors, []);
  await page.screenshot({ path: screenshotPath('audit-log.png') });

  // The action filter narrows the list; "any" brings everything back.
  await page.getByTestId('audit-filter-action').selectOption('login_failed');
  await expectList(page, { action: 'login_failed', n: 2 });
  assert.deepEqual(await shown(page), [
    [6, 'login_failed'],
    [5, 'login_failed'],
  ]);
  await page.getByTestId('audit-filter-action').selectOption('');
  await expectList(page, { n: 8 });

  // By user: a username typed is found through the admin users API.
  await page.getByTestId('audit-filter-user').fill('bob');
  await page.getByTestId('audit-filter-user').press('Enter');
  await expectList(page, { user: String(bob.user.id), n: 5 });
  assert.deepEqual(
    (await shown(page)).map(([id]) => id),
    [8, 7, 5, 4, 3],
    'rows bob did or had done to him',
  );
  assert.match(await text(page.getByTestId('audit-showing-user')), /@bob/);
  // With the action too: both must match.
  await page.getByTestId('audit-filter-action').selectOption('admin_disable_user');
  await expectList(page, { action: 'admin_disable_user', user: String(bob.user.id), n: 1 });
  // An unknown username says so, and the list stays as it was.
  await page.getByTestId('audit-filter-user').fill('nobody');
  await page.getByTestId('audit-filter-apply').click();
  assert.match(await text(page.getByTestId('audit-filter-error')), /^There is no user “nobody”\./);
  await expectList(page, { action: 'admin_disable_user', user: String(bob.user.id), n: 1 });
  await page.getByTestId('audit-filter-clear').click();
  await expectList(page, { n: 8 });
  assert.equal(await page.getByTestId('audit-filter-error').count(), 0);

  // Dates, in local days: from tomorrow finds nothing, to yesterday nothing, from today all.
  await page.getByTestId('audit-filter-since').fill(await localDate(page, 1));
  await page.getByTestId('audit-empty').filter({ hasText: 'No entries match these filters.' }).waitFor();
  await page.getByTestId('audit-filter-since').fill(await localDate(page, 0));
  await expectList(page, { n: 8 });
  await page.getByTestId('audit-filter-until').fill(await localDate(page, -1));
  await page.getByTestId('audit-filter-error').filter({ hasText: 'after the “To” date' }).waitFor();
  await page.getByTestId('audit-filter-since').fill('');
  await page.getByTestId('audit-empty').waitFor();
  await page.getByTestId('audit-filter-until').fill(await localDate(page, 0));
  await expectList(page, { n: 8 });
  await page.getByTestId('audit-filter-clear').click();

  // Pages of three (the UI asks for 100; rewritten to see "Older" follow `next` as `before`).
  const asked = [];
  await alice.context.route(/\/v1\/admin\/audit\?/, (route) => {
    const url = new URL(route.request().url());
    url.searchParams.set('limit', '3');
    asked.push(url.search);
    return route.continue({ url: url.toString() });
  });
  await page.getByTestId('audit-refresh').click();
  await expectList(page, { n: 3 });
  assert.deepEqual(await shown(page), EXPECTED.slice(0, 3));
  await page.getByTestId('audit-older').click();
  await expectList(page, { n: 6 });
  await page.getByTestId('audit-older').click();
  await expectList(page, { n: 8 });
  assert.deepEqual(await shown(page), EXPECTED);
  assert.equal(await page.getByTestId('audit-older').count(), 0, 'no Older on the last page');
  assert.equal(await text(page.getByTestId('audit-end')), '8 entries, back to the oldest kept');
  assert.deepEqual(asked.slice(-3), ['?limit=3', '?before=6&limit=3', '?before=3&limit=3']);

  // Verify chain (still in pages of three: after=0, then each next) against the server's head.
  asked.length = 0;
  const intact = await verify(page);
  const head = await adminGet(page, '/v1/admin/audit/chain');
  assert.equal(head.last_id, 8);
  assert.deepEqual(intact, { state: 'intact', row: null, text: `Chain intact: 8 rows, head ${head.last_hash.slice(0, 12)}` });
  assert.deepEqual(asked, ['?after=0&limit=3', '?after=3&limit=3', '?after=6&limit=3']);
  await page.screenshot({ path: screenshotPath('audit-verified.png') });
  await alice.context.unroute(/\/v1\/admin\/audit\?/);

  // Behind the server's back: row 2's address changed in the database.
  const port = server.port;
  await server.stop();
  tamper(join(server.dataDir, 'hark.db'), "UPDATE audit SET address='203.0.113.9' WHERE id=2");
  server = await startServer({ dataDir: server.dataDir, port });
  await page.getByTestId('audit-refresh').click();
  await row(page, 2).getByTestId('audit-address').filter({ hasText: '203.0.113.9' }).waitFor({ timeout: 20_000 });
  const broken = await verify(page);
  assert.equal(broken.state, 'broken');
  assert.equal(broken.row, '2');
  assert.match(broken.text, /^Chain broken: row 2 does not match its hash \(it stores [0-9a-f]{12}…, its content hashes to [0-9a-f]{12}…\)\.$/);
  assert.match(await text(page.getByTestId('audit-verdict')), /1 row before it checks out\./);
  await page.getByTestId('audit-verdict').scrollIntoViewIfNeeded();
  await page.screenshot({ path: screenshotPath('audit-broken.png') });

  // A name leads to that account.
  await row(page, 7).getByTestId('audit-target').getByRole('button').click();
  await page.locator('[data-testid=admin-user-detail][data-username=bob]').waitFor();
  assert.deepEqual(alice.page.errors, []);
  await alice.context.close();
});

/** Serious and critical axe-core violations on the page, as "rule: target" strings. */
async function axe(page) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .flatMap((v) => v.nodes.map((n) => `${v.id}: ${n.target.join(' ')} ${n.failureSummary?.split('\n')[1]?.trim() ?? ''}`));
}

test('on a phone and in the dark theme: nothing sideways, axe clean', async () => {
  const problems = [];
  for (const [name, options] of [
    ['phone', { ...PHONE, colorScheme: 'light' }],
    ['desktop-dark', { viewport: { width: 1280, height: 800 }, colorScheme: 'dark' }],
  ]) {
    const { context, page } = await openPage(browser, server.url, options);
    await login(page, 'alice');
    await openAdmin(page);
    await page.getByTestId('admin-tab-audit').click();
    await eventually(async () => Number(await page.getByTestId('audit-list').getAttribute('data-count', { timeout: 1_000 })) >= 9, {
      message: 'the rows',
    });
    await verify(page);
    for (const v of await axe(page)) problems.push(`${name}: ${v}`);
    for (const o of await overflowingElements(page)) problems.push(`${name}: sideways ${o}`);
    await page.screenshot({ path: screenshotPath(`audit-${name}.png`) });
    await page.getByTestId('audit-list').evaluate((list) => list.scrollIntoView());
    await page.screenshot({ path: screenshotPath(`audit-${name}-rows.png`) });
    assert.deepEqual(page.errors, []);
    await context.close();
  }
  assert.deepEqual(problems, [], 'no sideways scrolling, no serious or critical axe violations');
});
