// Verifying devices in encrypted chats. A contact's devices in the chat's
// info, each with its key fingerprint (the key directory's Ed25519 key, in
// groups of four) and whether this device verified it; verification by
// emoji (SAS, m.sas.v1 over to-device messages) between two browsers, both
// seeing the same seven emoji in the same order; "They don't match" and
// Decline end it on both sides with nothing verified; a verified contact's
// new device is warned about in the chat until it is verified ("Mark as
// verified" after comparing the fingerprint); and an encrypted chat between
// the browser and the `hark` command-line client, both ways.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import {
  chatRow,
  eventually,
  launchBrowser,
  login,
  openChat,
  openPage,
  register,
  repo,
  screenshotPath,
  sendMessage,
  startDirect,
  startServer,
} from './helpers.mjs';

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const binary = process.env.HARK_BIN ?? join(repo, 'target', 'debug', 'hark');

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

/** Serious and critical axe-core violations on the page. */
async function axe(page) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .flatMap((v) => v.nodes.map((n) => `${v.id}: ${n.target.join(' ')}`));
}

/** A user registered through the UI in a browser context of their own. */
async function person(username, name) {
  const p = await openPage(browser, server.url);
  await register(p.page, username, name);
  return p;
}

/** The page's session: user, device, token. */
function sessionOf(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem(`hark:${location.origin}:session`)));
}

/** The Ed25519 key the key directory holds for the page's own device (asked with its token). */
async function publishedKey(page) {
  const { token, user, device } = await sessionOf(page);
  const who = `@${user.id}:hark`;
  return eventually(
    async () => {
      const r = await fetch(`${server.url}/v1/e2e/keys/query`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ device_keys: { [who]: [String(device.id)] } }),
      });
      return (await r.json()).device_keys?.[who]?.[String(device.id)]?.keys?.[`ed25519:${device.id}`];
    },
    { message: `${user.username}'s key published` },
  );
}

/** A message marker no one would type. */
const marker = (label) => `${label}-${Math.random().toString(36).slice(2, 10)}`;

/** The bubble whose text is exactly `text`. */
function bubbleWith(page, text) {
  return page.locator('.bubble', { has: page.locator('[data-testid=msg-text]', { hasText: text }) });
}

/** `a` and `b` in an encrypted one-to-one chat (a started it), both with it open. */
async function encryptedChat(a, b, aName, bName, bUsername) {
  await startDirect(a.page, bUsername);
  await a.page.getByTestId('header-lock').waitFor();
  const hello = marker('hello');
  await sendMessage(a.page, hello);
  await chatRow(b.page, aName).waitFor();
  await openChat(b.page, aName);
  await bubbleWith(b.page, hello).waitFor();
  await a.page.getByTestId('chat-header-title').filter({ hasText: bName }).waitFor();
}

/** The open chat's info panel with the contact's devices listed. */
async function openDevices(page) {
  if (!(await page.getByTestId('info-panel').isVisible())) await page.getByTestId('chat-info').click();
  await page.getByTestId('contact-devices').waitFor();
  await page.getByTestId('contact-device').first().waitFor();
  return page.getByTestId('contact-device');
}

/** What a device row shows: id, fingerprint, status. */
async function deviceRows(page) {
  const rows = page.getByTestId('contact-device');
  const out = [];
  for (let i = 0; i < (await rows.count()); i++) {
    const row = rows.nth(i);
    out.push({
      id: await row.getAttribute('data-device-id'),
      verified: (await row.getAttribute('data-verified')) === 'true',
      fingerprint: (await row.getByTestId('device-fingerprint').textContent()).trim(),
      status: (await row.getByTestId('device-status').textContent()).trim(),
    });
  }
  return out;
}

/** The verification dialog once it shows `state`. */
async function dialogIn(page, state, timeout = 30_000) {
  const dialog = page.locator(`[data-testid=verification][data-state=${state}]`);
  await dialog.waitFor({ timeout });
  return dialog;
}

/** The emoji the dialog shows, in order, as "symbol name". */
async function shownEmoji(page) {
  const items = page.getByTestId('sas-emoji');
  const out = [];
  for (let i = 0; i < (await items.count()); i++) {
    const item = items.nth(i);
    out.push(`${(await item.locator('.sas-symbol').textContent()).trim()} ${await item.getAttribute('data-name')}`);
  }
  return out;
}

// 43 characters of unpadded base64 (32 bytes) in ten groups of four and one of three.
const GROUPED = /^(?:[A-Za-z0-9+/]{4} ){10}[A-Za-z0-9+/]{3}$/;

test('two browsers verify each other by emoji: the same seven emoji on both sides, then each shows the other verified', async () => {
  const [alice, bob] = await Promise.all([person('alice', 'Alice Martin'), person('bob', 'Bob Chen')]);
  await encryptedChat(alice, bob, 'Alice Martin', 'Bob Chen', 'bob');
  const bobSession = await sessionOf(bob.page);
  const aliceSession = await sessionOf(alice.page);

  // Alice sees Bob's one device with the key the directory has for it, not verified.
  await openDevices(alice.page);
  const bobKey = await publishedKey(bob.page);
  let rows = await deviceRows(alice.page);
  assert.equal(rows.length, 1, JSON.stringify(rows));
  assert.equal(rows[0].id, String(bobSession.device.id));
  assert.match(rows[0].fingerprint, GROUPED);
  assert.equal(rows[0].fingerprint.replaceAll(' ', ''), bobKey, "the fingerprint is Bob's device's Ed25519 key");
  assert.equal(rows[0].verified, false);
  assert.equal(rows[0].status, 'Not verified');
  const font = await alice.page.getByTestId('device-fingerprint').evaluate((el) => getComputedStyle(el).fontFamily);
  assert.match(font, /monospace/);
  assert.equal(await alice.page.getByTestId('header-verified').count(), 0);
  assert.equal(await alice.page.getByTestId('unverified-warning').count(), 0, 'no warning: nobody verified yet');

  // Alice asks; Bob's browser asks him.
  await alice.page.getByTestId('device-verify').click();
  await dialogIn(alice.page, 'waiting');
  const asked = await dialogIn(bob.page, 'requested');
  assert.equal((await asked.locator('h2').textContent()).trim(), 'Alice Martin wants to verify this device');
  assert.deepEqual(await axe(bob.page), [], 'the request: axe clean');
  await bob.page.screenshot({ path: screenshotPath('verification-request.png') });
  // By keyboard: Accept has the focus, Tab stays within the dialog.
  const focused = () => bob.page.evaluate(() => document.activeElement?.getAttribute('data-testid'));
  await eventually(async () => (await focused()) === 'verify-accept', { message: 'Accept focused' });
  await bob.page.keyboard.press('Tab');
  assert.equal(await focused(), 'verify-decline');
  await bob.page.keyboard.press('Tab');
  assert.equal(await focused(), 'verify-accept');
  await bob.page.keyboard.press('Enter');

  // Both compare: seven emoji with their names, the same in the same order, and the same numbers.
  await dialogIn(alice.page, 'comparing');
  await dialogIn(bob.page, 'comparing');
  const aliceEmoji = await shownEmoji(alice.page);
  const bobEmoji = await shownEmoji(bob.page);
  assert.equal(aliceEmoji.length, 7, JSON.stringify(aliceEmoji));
  for (const e of aliceEmoji) assert.match(e, /^\S+ [A-Z][A-Za-z ]+$/u, `an emoji and its name: ${e}`);
  assert.deepEqual(bobEmoji, aliceEmoji, 'both sides show the same emoji in the same order');
  const aliceNumbers = (await alice.page.getByTestId('sas-decimals').textContent()).trim();
  assert.match(aliceNumbers, /^\d{4} \d{4} \d{4}$/);
  assert.equal((await bob.page.getByTestId('sas-decimals').textContent()).trim(), aliceNumbers);
  assert.deepEqual(await axe(alice.page), [], 'the emoji: axe clean');
  await alice.page.screenshot({ path: screenshotPath('verification-emoji.png') });

  // Both say they match: verified on both sides.
  await alice.page.getByTestId('sas-match').click();
  await bob.page.getByTestId('sas-match').click();
  const doneA = await dialogIn(alice.page, 'done');
  const doneB = await dialogIn(bob.page, 'done');
  assert.match(await doneA.getByTestId('verification-message').textContent(), new RegExp(`Bob Chen's device ${bobSession.device.id} is verified`));
  assert.match(await doneB.getByTestId('verification-message').textContent(), new RegExp(`Alice Martin's device ${aliceSession.device.id} is verified`));
  await alice.page.screenshot({ path: screenshotPath('verification-done.png') });
  await alice.page.getByTestId('verify-close').click();
  await bob.page.getByTestId('verify-close').click();
  await alice.page.getByTestId('verification').waitFor({ state: 'detached' });

  // Alice's list shows Bob's device verified, and the chat says so.
  await alice.page.locator(`[data-testid=contact-device][data-verified=true]`).waitFor();
  rows = await deviceRows(alice.page);
  assert.deepEqual(
    rows.map((r) => [r.id, r.verified, r.status]),
    [[String(bobSession.device.id), true, 'Verified']],
  );
  assert.equal(await alice.page.getByTestId('device-verify').count(), 0, 'nothing left to verify');
  await alice.page.getByTestId('header-verified').waitFor();
  await alice.page.getByTestId('info-verified').waitFor();
  assert.equal(await alice.page.getByTestId('unverified-warning').count(), 0);

  // Bob's shows Alice's device verified.
  await openDevices(bob.page);
  await bob.page.locator(`[data-testid=contact-device][data-verified=true]`).waitFor();
  rows = await deviceRows(bob.page);
  assert.deepEqual(
    rows.map((r) => [r.id, r.verified]),
    [[String(aliceSession.device.id), true]],
  );
  assert.equal(rows[0].fingerprint.replaceAll(' ', ''), await publishedKey(alice.page));
  await bob.page.getByTestId('header-verified').waitFor();
  assert.deepEqual(await axe(bob.page), [], 'the verified device list: axe clean');
  await bob.page.screenshot({ path: screenshotPath('verification-devices.png') });

  // Kept in the device's store: still verified after a reload.
  await alice.page.reload();
  await openChat(alice.page, 'Bob Chen');
  await alice.page.getByTestId('header-verified').waitFor({ timeout: 30_000 });

  assert.deepEqual(alice.page.errors, []);
  assert.deepEqual(bob.page.errors, []);
  await alice.context.close();
  await bob.context.close();
});

test("a verified contact's new device: the chat warns until it is verified (by comparing its fingerprint)", async () => {
  const [erin, frank] = await Promise.all([person('erin', 'Erin Wells'), person('frank', 'Frank Ocean')]);
  await encryptedChat(erin, frank, 'Erin Wells', 'Frank Ocean', 'frank');
  const frankDevice = (await sessionOf(frank.page)).device.id;

  // Erin compares Frank's key by another channel and marks his device verified.
  await openDevices(erin.page);
  const row = erin.page.locator(`[data-testid=contact-device][data-device-id="${frankDevice}"]`);
  assert.equal((await row.getByTestId('device-fingerprint').textContent()).replaceAll(' ', ''), await publishedKey(frank.page));
  await row.getByTestId('device-mark-verified').click();
  const confirm = erin.page.getByTestId('confirm-dialog');
  assert.match(await confirm.textContent(), /Mark Frank Ocean's device \d+ as verified\?/);
  await erin.page.getByTestId('confirm-ok').click();
  await row.and(erin.page.locator('[data-verified=true]')).waitFor();
  await erin.page.getByTestId('header-verified').waitFor();
  assert.equal(await erin.page.getByTestId('unverified-warning').count(), 0);

  // Frank logs in on a new browser: a new device with new keys.
  const frank2 = await openPage(browser, server.url);
  await login(frank2.page, 'frank');
  const newDevice = (await sessionOf(frank2.page)).device.id;
  assert.notEqual(newDevice, frankDevice);

  // Erin's chat warns, names Frank and offers to review; the header no longer says verified.
  const warning = erin.page.getByTestId('unverified-warning');
  await warning.waitFor({ timeout: 30_000 });
  assert.match(await warning.textContent(), /Frank Ocean has a new device that you have not verified/);
  await erin.page.getByTestId('header-verified').waitFor({ state: 'detached' });
  assert.deepEqual(await axe(erin.page), [], 'the warning: axe clean');
  await erin.page.screenshot({ path: screenshotPath('verification-new-device.png') });

  // Review: both devices, the new one not verified, with the new device's own key.
  await erin.page.getByTestId('panel-close').click();
  await warning.getByTestId('review-devices').click();
  await erin.page.locator(`[data-testid=contact-device][data-device-id="${newDevice}"]`).waitFor();
  const rows = await deviceRows(erin.page);
  assert.deepEqual(
    rows.map((r) => [r.id, r.verified]),
    [
      [String(frankDevice), true],
      [String(newDevice), false],
    ],
  );
  assert.equal(rows[1].fingerprint.replaceAll(' ', ''), await publishedKey(frank2.page));
  assert.notEqual(rows[1].fingerprint, rows[0].fingerprint);
  // Still warned while it is not verified.
  assert.equal(await warning.count(), 1);

  const fresh = erin.page.locator(`[data-testid=contact-device][data-device-id="${newDevice}"]`);
  await fresh.getByTestId('device-mark-verified').click();
  await erin.page.getByTestId('confirm-ok').click();
  await fresh.and(erin.page.locator('[data-verified=true]')).waitFor();
  await warning.waitFor({ state: 'detached' });
  await erin.page.getByTestId('header-verified').waitFor();

  assert.deepEqual(erin.page.errors, []);
  for (const p of [erin, frank, frank2]) await p.context.close();
});

test("\"They don't match\" on one side ends it on both with nothing verified; a declined request says so", async () => {
  const [gina, hugo] = await Promise.all([person('gina', 'Gina Park'), person('hugo', 'Hugo Brandt')]);
  await encryptedChat(gina, hugo, 'Gina Park', 'Hugo Brandt', 'hugo');

  await openDevices(gina.page);
  await gina.page.getByTestId('device-verify').click();
  await dialogIn(hugo.page, 'requested');
  await hugo.page.getByTestId('verify-accept').click();
  await dialogIn(gina.page, 'comparing');
  await dialogIn(hugo.page, 'comparing');
  assert.deepEqual(await shownEmoji(hugo.page), await shownEmoji(gina.page));

  // Gina says they match; Hugo says they don't.
  await gina.page.getByTestId('sas-match').click();
  await hugo.page.getByTestId('sas-mismatch').click();
  const endedH = await dialogIn(hugo.page, 'cancelled');
  const endedG = await dialogIn(gina.page, 'cancelled');
  assert.equal((await endedH.locator('h2').textContent()).trim(), 'Not verified');
  assert.match(await endedH.getByTestId('verification-message').textContent(), /^You said the emoji don't match, so nothing was verified/);
  assert.match(await endedG.getByTestId('verification-message').textContent(), /^Hugo Brandt said the emoji don't match, so nothing was verified/);
  await gina.page.screenshot({ path: screenshotPath('verification-mismatch.png') });
  await gina.page.getByTestId('verify-close').click();
  await hugo.page.getByTestId('verify-close').click();

  // Nothing is verified on either side.
  let rows = await deviceRows(gina.page);
  assert.deepEqual(rows.map((r) => [r.verified, r.status]), [[false, 'Not verified']]);
  await openDevices(hugo.page);
  rows = await deviceRows(hugo.page);
  assert.deepEqual(rows.map((r) => [r.verified, r.status]), [[false, 'Not verified']]);
  assert.equal(await gina.page.getByTestId('header-verified').count(), 0);
  assert.equal(await hugo.page.getByTestId('header-verified').count(), 0);

  // Asked again, Hugo declines: both are told, still nothing verified.
  await gina.page.getByTestId('device-verify').click();
  await dialogIn(hugo.page, 'requested');
  await hugo.page.getByTestId('verify-decline').click();
  const declinedG = await dialogIn(gina.page, 'cancelled');
  const declinedH = await dialogIn(hugo.page, 'cancelled');
  assert.equal((await declinedG.getByTestId('verification-message').textContent()).trim(), 'Hugo Brandt declined the verification.');
  assert.equal((await declinedH.getByTestId('verification-message').textContent()).trim(), 'You declined the verification.');
  await gina.page.getByTestId('verify-close').click();
  await hugo.page.getByTestId('verify-close').click();
  rows = await deviceRows(gina.page);
  assert.deepEqual(rows.map((r) => r.verified), [false]);

  // Asked once more and withdrawn before Hugo answers: he is told she cancelled.
  await gina.page.getByTestId('device-verify').click();
  await dialogIn(hugo.page, 'requested');
  await (await dialogIn(gina.page, 'waiting')).getByTestId('verify-cancel').click();
  const withdrawnH = await dialogIn(hugo.page, 'cancelled');
  const withdrawnG = await dialogIn(gina.page, 'cancelled');
  assert.equal((await withdrawnH.getByTestId('verification-message').textContent()).trim(), 'Gina Park cancelled the verification. Nothing was verified.');
  assert.equal((await withdrawnG.getByTestId('verification-message').textContent()).trim(), 'You cancelled the verification. Nothing was verified.');
  await gina.page.getByTestId('verify-close').click();
  await hugo.page.getByTestId('verify-close').click();
  assert.deepEqual((await deviceRows(gina.page)).map((r) => r.verified), [false]);

  assert.deepEqual(gina.page.errors, []);
  assert.deepEqual(hugo.page.errors, []);
  await gina.context.close();
  await hugo.context.close();
});

test('a verification nobody finishes times out, said on both sides, nothing verified', async () => {
  // Kira's page runs on a clock the test can move on (the library reads the time through the page's Date and performance).
  const kiraContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await kiraContext.clock.install();
  const kiraPage = await kiraContext.newPage();
  kiraPage.errors = [];
  kiraPage.on('pageerror', (e) => kiraPage.errors.push(String(e)));
  await kiraPage.goto(server.url);
  await register(kiraPage, 'kira', 'Kira Holm');
  const kira = { context: kiraContext, page: kiraPage };
  const leo = await person('leo', 'Leo Varga');
  await encryptedChat(kira, leo, 'Kira Holm', 'Leo Varga', 'leo');

  await openDevices(kira.page);
  await kira.page.getByTestId('device-verify').click();
  await dialogIn(kira.page, 'waiting');
  await dialogIn(leo.page, 'requested');
  // Leo does not answer; eleven minutes pass on Kira's side (a request lasts ten).
  await kira.page.clock.fastForward('11:00');
  const endedK = await dialogIn(kira.page, 'cancelled');
  const timedOut = 'The verification timed out before it was finished. Nothing was verified.';
  assert.equal((await endedK.getByTestId('verification-message').textContent()).trim(), timedOut);
  const endedL = await dialogIn(leo.page, 'cancelled');
  assert.equal((await endedL.getByTestId('verification-message').textContent()).trim(), timedOut, 'the other side is told why');
  await kira.page.getByTestId('verify-close').click();
  await leo.page.getByTestId('verify-close').click();
  assert.deepEqual((await deviceRows(kira.page)).map((r) => r.verified), [false]);
  assert.deepEqual(kira.page.errors, []);
  await kira.context.close();
  await leo.context.close();
});

test("in an encrypted group: each member's devices from the member list, and a verified member's new device warned about", async () => {
  const [kim, lena, mo] = await Promise.all([person('kim', 'Kim Novak'), person('lena', 'Lena Berg'), person('mona', 'Mona Farah')]);
  await kim.page.getByTestId('new-group').click();
  await kim.page.getByTestId('group-title').fill('Night shift');
  for (const name of ['lena', 'mona']) {
    await kim.page.getByTestId('member-search').fill(name);
    await kim.page.locator(`[data-testid=member-result][data-username="${name}"]`).click();
  }
  await kim.page.getByTestId('create-group').click();
  await kim.page.getByTestId('chat-header-title').filter({ hasText: 'Night shift' }).waitFor();
  await kim.page.getByTestId('header-lock').waitFor();
  await chatRow(lena.page, 'Night shift').waitFor();
  const lenaDevice = (await sessionOf(lena.page)).device.id;

  // Group info → Lena → Devices: her one device with her key.
  await kim.page.getByTestId('chat-info').click();
  const lenaRow = kim.page.locator('[data-testid=member][data-username=lena]');
  await lenaRow.getByTestId('member-devices').click();
  const panel = kim.page.getByTestId('devices-panel');
  await panel.getByTestId('contact-device').first().waitFor();
  let rows = await deviceRows(kim.page);
  assert.deepEqual(rows.map((r) => [r.id, r.verified]), [[String(lenaDevice), false]]);
  assert.equal(rows[0].fingerprint.replaceAll(' ', ''), await publishedKey(lena.page));
  assert.match(await panel.getByTestId('contact-devices').locator('h3').textContent(), /Lena Berg's devices/);

  // Marked verified: her member row shows it; nothing to warn about.
  await panel.getByTestId('device-mark-verified').click();
  await kim.page.getByTestId('confirm-ok').click();
  await panel.locator('[data-testid=contact-device][data-verified=true]').waitFor();
  await panel.getByTestId('devices-back').click();
  await lenaRow.getByTestId('member-verified').waitFor();
  assert.equal(await kim.page.locator('[data-testid=member][data-username=mona] [data-testid=member-verified]').count(), 0);
  assert.equal(await kim.page.getByTestId('unverified-warning').count(), 0);

  // Lena logs in somewhere new: the group warns about her (not about Mona, whom Kim never verified).
  const lena2 = await openPage(browser, server.url);
  await login(lena2.page, 'lena');
  const warning = kim.page.getByTestId('unverified-warning');
  await warning.waitFor({ timeout: 30_000 });
  assert.equal(await warning.count(), 1);
  assert.match(await warning.textContent(), /Lena Berg has a new device that you have not verified/);
  await lenaRow.getByTestId('member-verified').waitFor({ state: 'detached' });
  await warning.getByTestId('review-devices').click();
  await panel.locator(`[data-testid=contact-device][data-device-id="${(await sessionOf(lena2.page)).device.id}"][data-verified=false]`).waitFor();
  await kim.page.screenshot({ path: screenshotPath('verification-group.png') });

  assert.deepEqual(kim.page.errors, []);
  for (const p of [kim, lena, mo, lena2]) await p.context.close();
});

/** Runs the `hark` command-line client with its own config dir; its standard output. */
async function cli(configDir, args) {
  const { stdout } = await promisify(execFile)(binary, args, {
    env: { ...process.env, HARK_CONFIG_DIR: configDir, HARK_SERVER: server.url, HARK_PASSWORD: 'password-123', RUST_LOG: 'warn' },
    timeout: 60_000,
  });
  return stdout;
}

test('the browser and the command-line client in one encrypted chat: each reads what the other wrote', async () => {
  const config = mkdtempSync(join(tmpdir(), 'hark-web-cli-'));
  try {
    const ivy = await person('ivy', 'Ivy Stone');
    await cli(config, ['register', 'jack', '--display-name', 'Jack Cole']);
    await cli(config, ['login', 'jack']);

    // The CLI starts an encrypted chat with Ivy ("chat 7: Ivy Stone 🔒") and writes in it.
    const direct = await cli(config, ['direct', 'ivy', '--encrypted']);
    const made = /^chat (\d+): .*🔒\s*$/u.exec(direct.trim());
    assert.ok(made, direct);
    const chat = made[1];
    const fromCli = marker('from-the-terminal');
    assert.match(await cli(config, ['send', chat, fromCli]), /\[seq 1\]/);

    // The browser shows its plaintext, in the list and the chat, under a lock.
    await chatRow(ivy.page, 'Jack Cole').getByTestId('chat-preview').filter({ hasText: fromCli }).waitFor({ timeout: 30_000 });
    await openChat(ivy.page, 'Jack Cole');
    await ivy.page.getByTestId('header-lock').waitFor();
    await bubbleWith(ivy.page, fromCli).waitFor();

    // The CLI's device is listed with the key it published.
    await openDevices(ivy.page);
    const rows = await deviceRows(ivy.page);
    assert.equal(rows.length, 1);
    assert.match(rows[0].fingerprint, GROUPED);

    // Ivy replies; the CLI's history shows the reply's plaintext.
    const fromBrowser = marker('from-the-browser');
    await sendMessage(ivy.page, fromBrowser);
    await bubbleWith(ivy.page, fromBrowser).locator('.ticks[data-status=sent], .ticks[data-status=delivered], .ticks[data-status=read]').waitFor();
    const history = await eventually(
      async () => {
        const out = await cli(config, ['history', chat]);
        return out.includes(fromBrowser) && out;
      },
      { timeout: 30_000, interval: 500, message: "the browser's reply in `hark history`" },
    );
    assert.match(history, new RegExp(`Ivy Stone: ${fromBrowser}`));
    assert.match(history, new RegExp(`you: ${fromCli}`));
    assert.deepEqual(ivy.page.errors, []);
    await ivy.context.close();
  } finally {
    rmSync(config, { recursive: true, force: true });
  }
});

/** `hark args` running with its own config dir, its output read as it comes and its standard input open. */
function cliRunning(configDir, args) {
  const proc = spawn(binary, args, {
    env: { ...process.env, HARK_CONFIG_DIR: configDir, HARK_SERVER: server.url, HARK_PASSWORD: 'password-123', RUST_LOG: 'warn' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout.on('data', (c) => (out += c.toString()));
  proc.stderr.on('data', (c) => (err += c.toString()));
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  const killOnExit = () => proc.kill('SIGKILL');
  process.on('exit', killOnExit);
  void exited.then(() => process.off('exit', killOnExit));
  return {
    output: () => out,
    errors: () => err,
    exited,
    /** Resolves with the output once it matches `pattern`. */
    shows: (pattern, message) =>
      eventually(() => pattern.test(out) && out, { timeout: 60_000, message: `${message}; the CLI said: ${out}${err}` }),
    answer: (line) => proc.stdin.write(`${line}\n`),
    kill: () => proc.kill('SIGKILL'),
  };
}

/** The emoji and numbers `hark verify` printed: "🐶 Dog" strings, in order, and the three numbers. */
function cliSas(out) {
  const lines = out.split('\n');
  const at = lines.findIndex((l) => l.startsWith('Compare with the other screen:'));
  assert.ok(at >= 0, out);
  const emoji = lines[at + 1].trim().split(/ {3}/);
  const numbers = /or the numbers (\d+) (\d+) (\d+)/.exec(lines[at + 2]);
  assert.ok(numbers, out);
  return { emoji, numbers: numbers.slice(1).map(Number) };
}

test('the command-line client and a browser verify each other by emoji (hark verify), both ways', async () => {
  const config = mkdtempSync(join(tmpdir(), 'hark-web-cli-'));
  const running = [];
  try {
    const nora = await person('nora', 'Nora Quinn');
    const noraDevice = (await sessionOf(nora.page)).device.id;
    await cli(config, ['register', 'otto', '--display-name', 'Otto Lind']);
    await cli(config, ['login', 'otto']);
    const chat = /^chat (\d+):/.exec((await cli(config, ['direct', 'nora', '--encrypted'])).trim())[1];
    await cli(config, ['send', chat, marker('hi')]);
    await openChat(nora.page, 'Otto Lind');
    await openDevices(nora.page);
    const ottoDevice = await nora.page.getByTestId('contact-device').first().getAttribute('data-device-id');

    // The CLI asks; the browser accepts; the CLI says they don't match: nothing is verified.
    const asking = cliRunning(config, ['verify', 'nora', '--timeout', '90']);
    running.push(asking);
    await asking.shows(/Asked nora's device \d+ to verify/, 'the CLI asks');
    const asked = await dialogIn(nora.page, 'requested');
    assert.equal((await asked.locator('h2').textContent()).trim(), 'Otto Lind wants to verify this device');
    await nora.page.getByTestId('verify-accept').click();
    await dialogIn(nora.page, 'comparing');
    let printed = cliSas(await asking.shows(/Do they match\? \[y\/N\]/, 'the CLI shows the emoji'));
    assert.deepEqual(printed.emoji, await shownEmoji(nora.page), 'the CLI prints the emoji the browser shows, in the same order');
    assert.deepEqual(printed.numbers, (await nora.page.getByTestId('sas-decimals').textContent()).trim().split(' ').map(Number));
    asking.answer('n');
    assert.notEqual(await asking.exited, 0, 'a mismatch fails the command');
    assert.match(asking.errors(), /do not match/);
    const ended = await dialogIn(nora.page, 'cancelled');
    assert.match(await ended.getByTestId('verification-message').textContent(), /^Otto Lind said the emoji don't match, so nothing was verified/);
    await nora.page.getByTestId('verify-close').click();
    assert.deepEqual((await deviceRows(nora.page)).map((r) => r.verified), [false]);
    assert.match(await cli(config, ['devices', '--user', 'nora']), new RegExp(`^${noraDevice}\\s+[A-Za-z0-9+/ ]+\\s+not verified$`, 'm'));

    // The browser asks; `hark verify` answers; both say they match: verified on both sides.
    const answering = cliRunning(config, ['verify', '--timeout', '90']);
    running.push(answering);
    await answering.shows(/Waiting for another device/, 'the CLI waits for a request');
    await nora.page.getByTestId('device-verify').click();
    await dialogIn(nora.page, 'comparing');
    printed = cliSas(await answering.shows(/Do they match\? \[y\/N\]/, 'the CLI shows the emoji'));
    assert.deepEqual(printed.emoji, await shownEmoji(nora.page));
    answering.answer('y');
    await nora.page.getByTestId('sas-match').click();
    await dialogIn(nora.page, 'done');
    assert.equal(await answering.exited, 0, answering.errors());
    assert.match(answering.output(), new RegExp(`✓ nora's device ${noraDevice} is verified`));
    await nora.page.getByTestId('verify-close').click();
    await nora.page.locator(`[data-testid=contact-device][data-device-id="${ottoDevice}"][data-verified=true]`).waitFor();
    await nora.page.getByTestId('header-verified').waitFor();
    assert.match(await cli(config, ['devices', '--user', 'nora']), new RegExp(`^${noraDevice}\\s+[A-Za-z0-9+/ ]+\\s+✓ verified$`, 'm'));
    assert.deepEqual(nora.page.errors, []);
    await nora.context.close();
  } finally {
    for (const r of running) r.kill();
    rmSync(config, { recursive: true, force: true });
  }
});

test("a request from one's own other device says so: \"Your other device (Device N) wants to verify this device\"", async () => {
  const config = mkdtempSync(join(tmpdir(), 'hark-web-cli-'));
  const running = [];
  try {
    const wren = await person('wren', 'Wren Gale');
    const wrenDevice = (await sessionOf(wren.page)).device.id;
    // The CLI logs in as Wren too: her other device asks the browser.
    await cli(config, ['login', 'wren']);
    const asking = cliRunning(config, ['verify', 'wren', '--device', String(wrenDevice), '--timeout', '60']);
    running.push(asking);
    const asked = await dialogIn(wren.page, 'requested', 60_000);
    const title = (await asked.locator('h2').textContent()).trim();
    const cliDevice = /^Your other device \(Device (\d+)\) wants to verify this device$/.exec(title);
    assert.ok(cliDevice, title);
    assert.notEqual(Number(cliDevice[1]), wrenDevice, "the other device's id, not this one's");
    assert.doesNotMatch(await asked.textContent(), /You wants|Wren Gale wants/);
    await wren.page.getByTestId('verify-decline').click();
    await dialogIn(wren.page, 'cancelled');
    assert.equal(await asking.exited.then((code) => code !== 0), true, 'the CLI is told it was declined');
    assert.deepEqual(wren.page.errors, []);
    await wren.context.close();
  } finally {
    for (const r of running) r.kill();
    rmSync(config, { recursive: true, force: true });
  }
});
