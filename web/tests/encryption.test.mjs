// End-to-end encryption in the browser (@matrix-org/matrix-sdk-crypto-wasm).
// This device: Settings → Encryption shows its key (its Ed25519 identity
// key); the library and its .wasm load once the app has a session, under
// the page's real CSP (script-src 'self' 'wasm-unsafe-eval') with no
// violation; the key lives in IndexedDB, so a reload shows the same one, and
// is published; another user's device has another key; if the library
// cannot load, the card says why; one machine per device across tabs; a
// lost store is said as such; logging out deletes the store.
// Encrypted chats: two browsers talk in an encrypted one-to-one chat while
// the server holds only ciphertext; a third user cannot read it; a device
// that logged in later waits for what was sent before it and reads what
// came after; a key that arrives late heals the message; a resend after a
// lost ack carries the same ciphertext.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import {
  apiLogin,
  apiRegister,
  chatRow,
  eventually,
  launchBrowser,
  login,
  openChat,
  register,
  screenshotPath,
  sendMessage,
  startDirect,
  startServer,
  switchableSocket,
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

/** Serious and critical axe-core violations on the page, as "rule: target" strings. */
async function axe(page) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .flatMap((v) => v.nodes.map((n) => `${v.id}: ${n.target.join(' ')} ${n.failureSummary?.split('\n')[1]?.trim() ?? ''}`));
}

/** The crypto chunk (`assets/machine-*.js`) and the library's `.wasm`. */
const isCrypto = (url) => /\/assets\/machine-[^/]*\.js$|\.wasm$/.test(new URL(url).pathname);

/**
 * A page that records what a test must see did not happen: CSP violations
 * (the document's `securitypolicyviolation` events, reported through a
 * binding so they survive reloads), console errors, uncaught errors, and
 * every request for the crypto chunk or the .wasm with its response headers.
 */
async function watchedPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  const page = await context.newPage();
  const seen = { violations: [], consoleErrors: [], errors: [], crypto: [] };
  await page.exposeBinding('reportViolation', (_source, v) => seen.violations.push(v));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) =>
      window.reportViolation({ directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample }),
    );
  });
  page.on('console', (m) => m.type() === 'error' && seen.consoleErrors.push(m.text()));
  page.on('pageerror', (e) => seen.errors.push(String(e)));
  page.on('request', (r) => isCrypto(r.url()) && seen.crypto.push({ path: new URL(r.url()).pathname }));
  page.on('response', async (r) => {
    if (!isCrypto(r.url())) return;
    const entry = seen.crypto.find((c) => c.path === new URL(r.url()).pathname && !c.headers);
    if (entry) entry.headers = await r.allHeaders();
  });
  return { context, page, seen };
}

async function openSettings(page) {
  await page.getByTestId('menu').click();
  await page.getByTestId('settings').click();
  await page.getByTestId('encryption').waitFor();
}

/** The key as the card shows it, once shown (the wasm takes a moment to load and compile). */
async function shownKey(page) {
  const key = page.getByTestId('device-key');
  await key.waitFor({ timeout: 60_000 });
  return (await key.textContent()).trim();
}

// 43 characters of unpadded base64 (32 bytes), in ten groups of four and one of three.
const GROUPED = /^(?:[A-Za-z0-9+/]{4} ){10}[A-Za-z0-9+/]{3}$/;

test("this device's key: the library loads beside the app under the CSP, the same key after a reload, another user's differs", async () => {
  const alice = await watchedPage();
  // Hold the .wasm back to see the loading state, then let it through.
  let release;
  const held = new Promise((r) => (release = r));
  await alice.page.route('**/*.wasm', async (route) => {
    await held;
    await route.continue();
  });
  const response = await alice.page.goto(server.url);
  const csp = (await response.allHeaders())['content-security-policy'];
  assert.match(csp, /script-src 'self' 'wasm-unsafe-eval';/);
  assert.doesNotMatch(csp, /'unsafe-eval'/);
  // The login screen needs none of it.
  assert.deepEqual(alice.seen.crypto, [], 'no crypto chunk or .wasm before logging in');
  await register(alice.page, 'alice', 'Alice Martin', undefined, { keys: false });
  // The session says who this device is: the store and the Rust side name it alike.
  const { userId, deviceId } = await alice.page.evaluate(() => {
    const s = JSON.parse(localStorage.getItem(`hark:${location.origin}:session`));
    return { userId: s.user.id, deviceId: s.device.id };
  });

  // The chat list is up and live while the library is still loading.
  await openSettings(alice.page);
  await alice.page.getByTestId('device-key-loading').waitFor();
  assert.equal(await alice.page.getByTestId('device-key-loading').textContent(), 'Loading encryption…');
  await alice.page.screenshot({ path: screenshotPath('encryption-loading.png') });
  release();
  const key = await shownKey(alice.page);
  await alice.page.unroute('**/*.wasm');
  assert.match(key, GROUPED, 'the key in groups of four');
  assert.equal(key.replaceAll(' ', '').length, 43);
  assert.equal(Buffer.from(key.replaceAll(' ', ''), 'base64').length, 32, 'an Ed25519 public key is 32 bytes');
  assert.equal(await alice.page.getByTestId('device-key-error').count(), 0);

  // Published: the key directory has this very key for this device.
  const checker = await apiLogin(server.url, 'alice');
  const published = await eventually(async () => {
    const r = await checker.post('/v1/e2e/keys/query', { device_keys: { [`@${userId}:hark`]: [String(deviceId)] } });
    return r.device_keys[`@${userId}:hark`]?.[String(deviceId)];
  }, { message: "this device's keys in the key directory" });
  assert.equal(published.keys[`ed25519:${deviceId}`], key.replaceAll(' ', ''));

  // Monospace and selectable.
  const style = await alice.page.getByTestId('device-key').evaluate((el) => {
    const cs = getComputedStyle(el);
    return { font: cs.fontFamily, select: cs.userSelect };
  });
  assert.match(style.font, /monospace/);
  assert.notEqual(style.select, 'none');

  // The chunk and the .wasm were each fetched once, the .wasm as application/wasm and brotli.
  const paths = alice.seen.crypto.map((c) => c.path);
  assert.equal(paths.filter((p) => p.endsWith('.js')).length, 1, `crypto chunk once: ${paths}`);
  assert.equal(paths.filter((p) => p.endsWith('.wasm')).length, 1, `.wasm once: ${paths}`);
  const wasm = alice.seen.crypto.find((c) => c.path.endsWith('.wasm'));
  await eventually(() => wasm.headers, { message: 'the .wasm response' });
  assert.equal(wasm.headers['content-type'], 'application/wasm');
  assert.equal(wasm.headers['content-encoding'], 'br');

  // The store is IndexedDB, named after the user and the device.
  const databases = await alice.page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name).sort());
  assert.deepEqual(databases, [`hark-crypto-${userId}-${deviceId}::matrix-sdk-crypto`, `hark-crypto-${userId}-${deviceId}::matrix-sdk-crypto-meta`]);
  // Encrypted with a random 32-byte key kept beside the session.
  const storeKey = await alice.page.evaluate((name) => localStorage.getItem(`hark:${name}:key`), `hark-crypto-${userId}-${deviceId}`);
  assert.equal(Buffer.from(storeKey, 'base64').length, 32);

  assert.deepEqual(await axe(alice.page), [], 'Settings with the key: axe clean');
  await alice.page.getByTestId('encryption').scrollIntoViewIfNeeded();
  await alice.page.screenshot({ path: screenshotPath('encryption.png') });

  // A reload: the same key, from the store.
  await alice.page.reload();
  await alice.page.getByTestId('chat-list').waitFor();
  await alice.page.getByTestId('conn-banner').waitFor({ state: 'detached' });
  await openSettings(alice.page);
  assert.equal(await shownKey(alice.page), key, 'the same key after a reload');

  // Another user in another browser profile: another key.
  const bob = await watchedPage();
  await bob.page.goto(server.url);
  await register(bob.page, 'bob', 'Bob Chen');
  await openSettings(bob.page);
  const bobKey = await shownKey(bob.page);
  assert.match(bobKey, GROUPED);
  assert.notEqual(bobKey, key, "another device's key");

  for (const [name, { seen }] of [
    ['alice', alice],
    ['bob', bob],
  ]) {
    assert.deepEqual(seen.violations, [], `${name}: no CSP violation`);
    assert.deepEqual(seen.consoleErrors, [], `${name}: no console error`);
    assert.deepEqual(seen.errors, [], `${name}: no uncaught error`);
  }

  // The policy still refuses eval: 'wasm-unsafe-eval' allowed WebAssembly and nothing more.
  // (DevTools' own evaluation is exempt from the CSP, so the page's code runs it from a task of its own.)
  const evalResult = await alice.page.evaluate(
    () =>
      new Promise((resolve) =>
        setTimeout(() => {
          try {
            resolve(String(new Function('return 1')()));
          } catch (e) {
            resolve(e.name);
          }
        }),
      ),
  );
  assert.equal(evalResult, 'EvalError');
  await eventually(() => alice.seen.violations.some((v) => v.directive === 'script-src'), { message: 'the refused eval reported' });

  await alice.context.close();
  await bob.context.close();
});

test('when the library cannot load, the card says why', async () => {
  // The .wasm cannot be fetched.
  const carol = await watchedPage();
  await carol.page.route('**/*.wasm', (route) => route.fulfill({ status: 404, contentType: 'text/plain', body: 'not found' }));
  await carol.page.goto(server.url);
  await register(carol.page, 'carol', 'Carol Diaz', undefined, { keys: false });
  await openSettings(carol.page);
  const error = carol.page.getByTestId('device-key-error');
  await error.waitFor({ timeout: 30_000 });
  const text = await error.textContent();
  assert.match(text, /^Encryption could not start on this device: .+\. Reload the page to try again\.$/);
  console.log(`# no .wasm: "${text}"`);
  assert.equal(await carol.page.getByTestId('device-key').count(), 0);
  assert.deepEqual(await axe(carol.page), [], 'the error: axe clean');
  await carol.page.getByTestId('encryption').scrollIntoViewIfNeeded();
  await carol.page.screenshot({ path: screenshotPath('encryption-error.png') });
  assert.deepEqual(carol.seen.violations, []);
  assert.deepEqual(carol.seen.errors, []);
  await carol.context.close();

  // The server's CSP without 'wasm-unsafe-eval' (the page rewritten on its
  // way in): the browser refuses to compile the .wasm, so the allowance is
  // what makes it work. (Chromium treats a page fulfilled this way as from
  // the public internet and keeps its WebSocket from 127.0.0.1, so the app
  // stays "connecting"; Settings works all the same.)
  const dave = await watchedPage();
  await dave.page.goto(server.url);
  await register(dave.page, 'dave', 'Dave Kim');
  await dave.page.route(
    (url) => url.pathname === '/',
    async (route) => {
      const response = await route.fetch();
      const headers = response.headers();
      headers['content-security-policy'] = headers['content-security-policy'].replace(" 'wasm-unsafe-eval'", '');
      await route.fulfill({ response, headers });
    },
  );
  await dave.page.reload();
  await dave.page.getByTestId('chat-list').waitFor();
  await openSettings(dave.page);
  await dave.page.getByTestId('device-key-error').waitFor({ timeout: 30_000 });
  const refusal = await dave.page.getByTestId('device-key-error').textContent();
  console.log(`# no 'wasm-unsafe-eval': "${refusal}"`);
  assert.match(refusal, /WebAssembly/);
  await eventually(() => dave.seen.violations.some((v) => v.directive === 'script-src' && v.blocked === 'wasm-eval'), {
    message: 'the refused compilation reported as a script-src violation',
  });
  await dave.context.close();
});

test('one machine per device across tabs; a lost store says to log in again; logging out deletes the store', async () => {
  const erin = await watchedPage();
  await erin.page.goto(server.url);
  await register(erin.page, 'erin', 'Erin Wu');
  await openSettings(erin.page);
  await shownKey(erin.page);
  const storeName = await erin.page.evaluate(() => {
    const s = JSON.parse(localStorage.getItem(`hark:${location.origin}:session`));
    return `hark-crypto-${s.user.id}-${s.device.id}`;
  });

  // A second tab of the same browser profile: the first holds the store
  // (a Web Lock named after it), so the second says so and waits.
  const tab2 = await erin.context.newPage();
  await tab2.goto(server.url);
  const otherTab = tab2.getByTestId('e2e-other-tab');
  await otherTab.waitFor({ timeout: 20_000 });
  assert.match(await otherTab.textContent(), /Encryption is active in another tab/);
  assert.deepEqual(await axe(tab2), [], 'the other-tab banner: axe clean');
  // The first tab goes: the second takes the store over, with the same key.
  const key = await shownKey(erin.page);
  await erin.page.close();
  await otherTab.waitFor({ state: 'detached', timeout: 20_000 });
  await openSettings(tab2);
  assert.equal(await shownKey(tab2), key, 'the same device, the same key');

  // The store is lost (its key gone from localStorage): the new keys this
  // browser makes are not the device's, the server refuses them
  // (409 key_conflict), and the person is told what to do.
  await tab2.evaluate((name) => localStorage.removeItem(`hark:${name}:key`), storeName);
  await tab2.reload();
  const conflict = tab2.getByTestId('e2e-conflict');
  await conflict.waitFor({ timeout: 20_000 });
  assert.match(await conflict.textContent(), /encryption keys were lost.*Log out and log in again/);
  assert.deepEqual(await axe(tab2), [], 'the key conflict banner: axe clean');
  await tab2.screenshot({ path: screenshotPath('encryption-conflict.png') });

  // Logging out deletes the store and its key.
  await conflict.getByTestId('e2e-conflict-logout').click();
  await tab2.locator('input[name=username]').waitFor();
  await eventually(
    async () => {
      const left = await tab2.evaluate(async (name) => ({
        databases: (await indexedDB.databases()).map((d) => d.name).filter((n) => n.startsWith(name)),
        keys: Object.keys(localStorage).filter((k) => k.includes(name)),
      }), storeName);
      return left.databases.length === 0 && left.keys.length === 0 && left;
    },
    { message: 'the crypto store and its key deleted' },
  );
  assert.deepEqual(erin.seen.errors, []);
  await erin.context.close();
});

// ---------- encrypted chats ----------

/** A marker no one would type, to find plaintext where it must not be. */
const marker = (label) => `${label}-${Math.random().toString(36).slice(2, 10)}`;

/** The incoming or outgoing bubble whose text is exactly `text`. */
function bubbleWith(page, text) {
  return page.locator('.bubble', { has: page.locator('[data-testid=msg-text]', { hasText: text }) });
}

/** A user registered through the UI in a watched page of their own. */
async function person(username, name) {
  const p = await watchedPage();
  await p.page.goto(server.url);
  await register(p.page, username, name);
  return p;
}

/** The session of a page: user and device ids, token. */
function sessionOf(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem(`hark:${location.origin}:session`)));
}

/** Resolves once the page's device has its keys in the key directory (asked with its own token). */
async function published(page) {
  const { token, user, device } = await sessionOf(page);
  const who = `@${user.id}:hark`;
  await eventually(
    async () => {
      const r = await fetch(`${server.url}/v1/e2e/keys/query`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ device_keys: { [who]: [String(device.id)] } }),
      });
      return (await r.json()).device_keys?.[who]?.[String(device.id)];
    },
    { message: `${user.username}'s device keys published` },
  );
}

/** GET over HTTP with a page's own token (the server's copy, as that device may see it). */
async function getAs(page, path) {
  const { token } = await sessionOf(page);
  const r = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: r.status, body: await r.json().catch(() => null) };
}

test('an encrypted one-to-one chat: both read each other, the server holds only ciphertext, a third user cannot read', async () => {
  const t0 = Date.now();
  const [ana, ben] = await Promise.all([person('ana', 'Ana Lima'), person('ben', 'Ben Ode')]);
  const secretA = marker('hello-from-ana');
  const secretB = marker('hello-from-ben');
  const secretC = marker('reply-from-ana');

  // A new one-to-one chat is encrypted by default: the lock and the note.
  await startDirect(ana.page, 'ben');
  await ana.page.getByTestId('header-lock').waitFor();
  await ana.page.getByTestId('e2e-note').waitFor();
  assert.match(await ana.page.getByTestId('e2e-note').textContent(), /Messages are end-to-end encrypted/);
  await sendMessage(ana.page, secretA);
  await bubbleWith(ana.page, secretA).locator('.ticks[data-status=sent], .ticks[data-status=delivered], .ticks[data-status=read]').waitFor();

  // Ben reads it: the list's preview is decrypted too, under a lock.
  const row = chatRow(ben.page, 'Ana Lima');
  await row.getByTestId('chat-preview').filter({ hasText: secretA }).waitFor();
  await row.getByTestId('row-lock').waitFor();
  await openChat(ben.page, 'Ana Lima');
  await bubbleWith(ben.page, secretA).waitFor();
  await ben.page.getByTestId('header-lock').waitFor();
  await sendMessage(ben.page, secretB);
  await bubbleWith(ana.page, secretB).waitFor();

  // A reply quotes the decrypted text (the server's quote carries none).
  const theirs = bubbleWith(ana.page, secretB);
  await theirs.hover();
  await theirs.getByTestId('msg-menu').click();
  await ana.page.getByTestId('reply').click();
  await sendMessage(ana.page, secretC);
  await ben.page.locator('[data-testid=msg-quote]', { hasText: secretB }).waitFor();
  await bubbleWith(ben.page, secretC).waitFor();

  // Files, voice notes and edits are offered (encrypted-media.test.mjs);
  // forwards not yet, and said so.
  const attach = ana.page.getByTestId('attach');
  assert.equal(await attach.getAttribute('aria-disabled'), null, 'files can be attached');
  await ana.page.getByTestId('voice-record').waitFor();
  const mine = bubbleWith(ana.page, secretC);
  await mine.hover();
  await mine.getByTestId('msg-menu').click();
  assert.equal(await ana.page.getByTestId('forward').getAttribute('aria-disabled'), 'true');
  assert.equal(await ana.page.getByTestId('edit').getAttribute('aria-disabled'), null, 'my message can be edited');
  assert.match(await ana.page.getByTestId('e2e-menu-note').textContent(), /Forwarding is not available in encrypted chats/);
  assert.deepEqual(await axe(ana.page), [], 'the message menu of an encrypted chat: axe clean');
  await ana.page.keyboard.press('Escape');

  // The server's copy: empty text, a Megolm content without the plaintext.
  const { chatId } = await ana.page.getByTestId('chat-pane').evaluate((el) => ({ chatId: Number(el.dataset.chatId) }));
  const summary = await getAs(ana.page, `/v1/chats/${chatId}`);
  assert.equal(summary.body.chat.encrypted, true, 'the chat was created encrypted');
  const history = await getAs(ben.page, `/v1/chats/${chatId}/messages`);
  assert.equal(history.status, 200);
  assert.equal(history.body.messages.length, 3);
  for (const m of history.body.messages) {
    assert.equal(m.text, '', 'no text on the server');
    assert.equal(m.encrypted.algorithm, 'm.megolm.v1.aes-sha2');
    assert.ok(m.encrypted.ciphertext.length > 40);
  }
  const serverCopy = JSON.stringify(history.body) + JSON.stringify(summary.body);
  for (const secret of [secretA, secretB, secretC]) assert.ok(!serverCopy.includes(secret), `the server's copy has no "${secret}"`);
  assert.equal(history.body.messages[2].reply_to.seq, 2, 'the reply is a reply');
  assert.equal(history.body.messages[2].reply_to.snippet, '', "the server's quote carries no text");
  // Nor is any plaintext kept in localStorage.
  for (const { page } of [ana, ben]) {
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }));
    for (const secret of [secretA, secretB, secretC]) assert.ok(!stored.includes(secret), 'no plaintext in localStorage');
  }

  // A third user: not a member, the server refuses them the messages, and
  // their device got no key.
  const cleo = await apiRegister(server.url, 'cleo', 'Cleo');
  const refused = await fetch(`${server.url}/v1/chats/${chatId}/messages`, { headers: { authorization: `Bearer ${cleo.token}` } });
  assert.ok(refused.status === 403 || refused.status === 404, `a non-member is refused (${refused.status})`);

  await ana.page.screenshot({ path: screenshotPath('encryption-chat.png') });
  assert.deepEqual(await axe(ana.page), [], 'an encrypted chat: axe clean');
  assert.deepEqual(await axe(ben.page), [], 'an encrypted chat (reader): axe clean');
  for (const [name, { seen }] of [['ana', ana], ['ben', ben]]) {
    assert.deepEqual(seen.violations, [], `${name}: no CSP violation`);
    assert.deepEqual(seen.consoleErrors, [], `${name}: no console error`);
    assert.deepEqual(seen.errors, [], `${name}: no uncaught error`);
  }
  console.log(`# encrypted round trip: ${Date.now() - t0} ms`);
  await ana.context.close();
  await ben.context.close();
});

test('a device that logs in later waits for what was sent before it, and reads what comes after', async () => {
  const [dora, eli] = await Promise.all([person('dora', 'Dora Ng'), person('eli', 'Eli Park')]);
  const before = marker('before-second-device');
  const afterwards = marker('after-second-device');
  await startDirect(dora.page, 'eli');
  await sendMessage(dora.page, before);
  await bubbleWith(eli.page, before).or(chatRow(eli.page, 'Dora Ng').getByTestId('chat-preview').filter({ hasText: before })).first().waitFor();

  // Eli logs in on a second browser. Dora's browser learns of the new
  // device (devices_changed) and fetches its keys.
  const queried = dora.page.waitForResponse((r) => r.url().endsWith('/v1/e2e/keys/query'), { timeout: 20_000 });
  const eli2 = await watchedPage();
  await eli2.page.goto(server.url);
  await login(eli2.page, 'eli');
  await queried;
  await openChat(eli2.page, 'Dora Ng');

  // The message from before it existed: no key was ever sent to it (Megolm
  // shares a chat's key with the devices there when it is used).
  const waiting = eli2.page.getByTestId('msg-sealed');
  await waiting.waitFor();
  await eventually(async () => (await waiting.getAttribute('data-state')) === 'waiting', { message: 'the old message waits' });
  assert.match(await waiting.textContent(), /Waiting for this message/);
  const reason = await waiting.getAttribute('title');
  assert.ok(reason && reason.length > 5, `the library's reason in the tooltip: ${reason}`);
  console.log(`# waiting reason: "${reason}"`);
  await eli2.page.screenshot({ path: screenshotPath('encryption-waiting.png') });
  assert.deepEqual(await axe(eli2.page), [], 'a waiting message: axe clean');

  // What Dora sends now reaches both of Eli's devices.
  await sendMessage(dora.page, afterwards);
  await bubbleWith(eli2.page, afterwards).waitFor();
  await bubbleWith(eli.page, afterwards).or(chatRow(eli.page, 'Dora Ng').getByTestId('chat-preview').filter({ hasText: afterwards })).first().waitFor();
  // The old one still waits on the new device: its key never came.
  assert.equal(await eli2.page.getByTestId('msg-sealed').getAttribute('data-state'), 'waiting');
  assert.equal(await bubbleWith(eli2.page, before).count(), 0);
  for (const { seen } of [dora, eli, eli2]) {
    assert.deepEqual(seen.violations, []);
    assert.deepEqual(seen.errors, []);
  }
  await Promise.all([dora.context.close(), eli.context.close(), eli2.context.close()]);
});

test('a key that comes late heals the message by itself; written offline and reloaded, the outbox keeps only ciphertext; a lost ack resends the same ciphertext', async () => {
  const fay = await person('fay', 'Fay Roy');
  const gil = await watchedPage();
  const socket = await switchableSocket(gil.context);
  await gil.page.goto(server.url);
  await register(gil.page, 'gil', 'Gil Sa');
  const late = marker('key-comes-late');
  // (A device that goes offline before publishing its keys gets no key at
  // all for what is sent meanwhile: Fay's browser would not know of it.)
  await published(gil.page);

  // Gil's browser is offline, and once back it cannot read its inbox for a
  // while: the message comes before its key.
  await socket.goOffline();
  let releaseInbox;
  const inboxHeld = new Promise((r) => (releaseInbox = r));
  await gil.page.route('**/v1/e2e/inbox', async (route) => {
    await inboxHeld;
    await route.continue();
  });
  await startDirect(fay.page, 'gil');
  await sendMessage(fay.page, late);
  await bubbleWith(fay.page, late).locator('.ticks[data-status=sent]').waitFor();

  await socket.goOnline();
  await openChat(gil.page, 'Fay Roy');
  const sealed = gil.page.getByTestId('msg-sealed');
  await eventually(async () => (await sealed.getAttribute('data-state', { timeout: 1_000 })) === 'waiting', { message: 'the message waits for its key' });
  assert.match(await sealed.textContent(), /Waiting for this message/);
  // The key arrives: the message is decrypted, with nothing done.
  releaseInbox();
  await bubbleWith(gil.page, late).waitFor({ timeout: 20_000 });
  assert.equal(await gil.page.getByTestId('msg-sealed').count(), 0);
  await gil.page.unroute('**/v1/e2e/inbox');

  // Gil has written in the chat (his device made its sessions and shared
  // its key), then writes while offline and reloads the page: the message
  // is encrypted offline, the outbox keeps it as ciphertext only, and his
  // device reads it back from there.
  await sendMessage(gil.page, 'thanks!');
  await bubbleWith(fay.page, 'thanks!').waitFor();
  const queued = marker('queued-offline');
  await socket.goOffline();
  await gil.page.getByTestId('conn-banner').waitFor();
  await sendMessage(gil.page, queued);
  const pendingBubble = bubbleWith(gil.page, queued).locator('.ticks[data-status=pending]');
  await pendingBubble.waitFor();
  const outbox = await eventually(
    () => gil.page.evaluate(() => Object.entries(localStorage).find(([k]) => k.endsWith(':outbox'))?.[1]),
    { message: 'the message in the outbox' },
  );
  assert.match(outbox, /"text":"","queued_at":\d+,"encrypted":\{"algorithm":"m\.megolm\.v1\.aes-sha2"/);
  assert.ok(!JSON.stringify(await gil.page.evaluate(() => ({ ...localStorage }))).includes(queued), 'no plaintext in localStorage');
  await gil.context.setOffline(false); // the page loads; its sockets stay refused
  await gil.page.reload();
  await gil.page.getByTestId('conn-banner').waitFor();
  await openChat(gil.page, 'Fay Roy');
  await pendingBubble.waitFor();
  await gil.context.setOffline(true);
  await socket.goOnline();
  await bubbleWith(fay.page, queued).waitFor();
  await bubbleWith(gil.page, queued).locator('.ticks[data-status=read]').waitFor();

  // Gil answers; the ack is lost and the socket dropped: the outbox sends
  // again the very same ciphertext under the same client id, and the server
  // knows it (one message).
  const answer = marker('resent-answer');
  const sentBefore = socket.sends.length;
  socket.dropAcksThenClose = true;
  await sendMessage(gil.page, answer);
  const [first, again] = await eventually(
    () => {
      const fresh = socket.sends.slice(sentBefore);
      const copies = fresh.filter((f) => f.client_id === fresh[0]?.client_id);
      return copies.length >= 2 && copies;
    },
    { message: 'the send, then its resend' },
  );
  assert.equal(first.text, '');
  assert.equal(first.client_id, again.client_id);
  assert.deepEqual(first.encrypted, again.encrypted, 'the same ciphertext');
  assert.ok(!JSON.stringify(first).includes(answer));
  await eventually(() => socket.acks.some((a) => a.client_id === first.client_id && a.duplicate), { message: 'a duplicate ack' });
  await bubbleWith(fay.page, answer).waitFor();
  assert.equal(await bubbleWith(fay.page, answer).count(), 1, 'once');
  assert.equal(await bubbleWith(gil.page, answer).count(), 1, 'once on the sender too');
  assert.deepEqual(gil.seen.violations, []);
  assert.deepEqual(gil.seen.errors, []);
  await Promise.all([fay.context.close(), gil.context.close()]);
});

test('a new group is encrypted unless switched off', async () => {
  const [hal, ivy] = await Promise.all([person('hal', 'Hal Tan'), person('ivy', 'Ivy Lo')]);
  const said = marker('group-secret');
  await hal.page.getByTestId('new-group').click();
  const toggle = hal.page.getByTestId('e2e-toggle');
  assert.equal(await toggle.isChecked(), true, 'on by default');
  await hal.page.getByTestId('group-title').fill('Quiet room');
  await hal.page.getByTestId('member-search').fill('ivy');
  await hal.page.getByTestId('member-result').first().click();
  assert.deepEqual(await axe(hal.page), [], 'the new group screen: axe clean');
  await hal.page.getByTestId('create-group').click();
  await hal.page.getByTestId('header-lock').waitFor();
  await sendMessage(hal.page, said);
  await openChat(ivy.page, 'Quiet room');
  await bubbleWith(ivy.page, said).waitFor();
  const chatId = Number(await ivy.page.getByTestId('chat-pane').getAttribute('data-chat-id'));
  const copy = await getAs(ivy.page, `/v1/chats/${chatId}/messages`);
  assert.ok(!JSON.stringify(copy.body).includes(said));

  // Switched off: a plain group, no lock.
  await hal.page.getByTestId('new-group').click();
  await hal.page.getByTestId('e2e-toggle').uncheck();
  await hal.page.getByTestId('group-title').fill('Open room');
  await hal.page.getByTestId('member-search').fill('ivy');
  await hal.page.getByTestId('member-result').first().click();
  await hal.page.getByTestId('create-group').click();
  await hal.page.getByTestId('chat-header-title').filter({ hasText: 'Open room' }).waitFor();
  assert.equal(await hal.page.getByTestId('header-lock').count(), 0);
  assert.equal(await chatRow(hal.page, 'Open room').getByTestId('row-lock').count(), 0);
  await Promise.all([hal.context.close(), ivy.context.close()]);
});

// ---------- the decrypted view, without a browser ----------

test('Plaintexts: a decryption that was under way when keys came runs again; my own text needs no decryption', async () => {
  const web = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const out = mkdtempSync(join(tmpdir(), 'hark-plaintexts-'));
  try {
    await build({
      stdin: { contents: "export { Plaintexts } from './src/app/encrypted.ts'; export { NotReadable } from './src/crypto/index.ts';", resolveDir: web, loader: 'ts' },
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      external: ['@matrix-org/matrix-sdk-crypto-wasm'],
      outfile: join(out, 'plaintexts.mjs'),
      logLevel: 'error',
    });
    const { Plaintexts, NotReadable } = await import(pathToFileURL(join(out, 'plaintexts.mjs')).href);
    // A library stand-in: the first decryption is slow and finds no key
    // (the key comes while it runs), the next one reads the message.
    let calls = 0;
    let release = null;
    const e2e = {
      async decrypt() {
        calls++;
        if (calls === 1) {
          await new Promise((r) => (release = r));
          throw new NotReadable("Can't find the room key", true);
        }
        return { msgtype: 'm.text', body: 'hello' };
      },
    };
    const shown = [];
    const texts = new Plaintexts(e2e, (chat, seq) => shown.push(`${chat}:${seq}`));
    const message = { chat_id: 7, seq: 3, sender_id: 2, sender_device: 5, client_id: 'c1', text: '', sent_at: 1, encrypted: { algorithm: 'm.megolm.v1.aes-sha2' } };
    assert.deepEqual(texts.show(message).sealed, { state: 'opening' });
    await eventually(() => release !== null, { message: 'the first decryption to start' });
    texts.retryWaiting(); // the inbox brought keys meanwhile
    release();
    await eventually(() => texts.textOf(7, 3) === 'hello', { message: 'decrypted on the second try' });
    assert.equal(calls, 2);
    assert.equal(texts.show(message).text, 'hello');
    assert.equal(texts.show(message).sealed, undefined);

    // What I wrote is shown as written, and is the message once it has its seq.
    texts.wrote('c2', 'my words');
    texts.sent(7, 4, 'c2');
    assert.equal(texts.show({ ...message, seq: 4, client_id: 'c2', sender_id: 1 }).text, 'my words');
    assert.equal(calls, 2, 'no decryption of my own message');
    // A message deleted for everyone has nothing to decrypt.
    assert.equal(texts.show({ ...message, seq: 5, deleted: true, encrypted: null }).sealed, undefined);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('key claims and queries for more devices than one request may name go in several, and every answer is kept', async () => {
  const web = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const out = mkdtempSync(join(tmpdir(), 'hark-keychunks-'));
  try {
    await build({
      stdin: { contents: "export { HarkApi } from './src/hark-client/api.ts';", resolveDir: web, loader: 'ts' },
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      external: ['@matrix-org/matrix-sdk-crypto-wasm'],
      outfile: join(out, 'api.mjs'),
      logLevel: 'error',
    });
    const { HarkApi } = await import(pathToFileURL(join(out, 'api.mjs')).href);
    // The server's limit, as a stand-in server keeps it: at most 1,000
    // devices a claim, 1,000 users a query.
    const bodies = [];
    const api = Object.create(HarkApi.prototype);
    api.request = async (_method, path, body) => {
      bodies.push({ path, body });
      if (path.endsWith('/claim')) {
        const n = Object.values(body.one_time_keys).reduce((s, d) => s + Object.keys(d).length, 0);
        assert.ok(n <= 1000, `a claim of ${n} devices`);
        const keys = Object.fromEntries(
          Object.entries(body.one_time_keys).map(([u, d]) => [u, Object.fromEntries(Object.keys(d).map((id) => [id, { [`signed_curve25519:${u}${id}`]: {} }]))]),
        );
        return { one_time_keys: keys, failures: {} };
      }
      assert.ok(Object.keys(body.device_keys).length <= 1000);
      return { device_keys: Object.fromEntries(Object.keys(body.device_keys).map((u) => [u, { 1: {} }])), failures: {}, master_keys: {}, self_signing_keys: {}, user_signing_keys: {} };
    };
    // 1,024 members with 1–3 devices each.
    const wanted = {};
    for (let u = 0; u < 1024; u++) {
      wanted[`@${u}:hark`] = Object.fromEntries(Array.from({ length: 1 + (u % 3) }, (_, d) => [String(d), 'signed_curve25519']));
    }
    const total = Object.values(wanted).reduce((s, d) => s + Object.keys(d).length, 0);
    const claimed = await api.claimKeys({ one_time_keys: wanted });
    assert.ok(bodies.length >= 3, `${total} devices in ${bodies.length} claims`);
    assert.equal(Object.values(claimed.one_time_keys).reduce((s, d) => s + Object.keys(d).length, 0), total);
    assert.deepEqual(Object.keys(claimed.one_time_keys).sort(), Object.keys(wanted).sort());
    bodies.length = 0;
    const users = Object.fromEntries(Object.keys(wanted).map((u) => [u, []]));
    const found = await api.queryKeys({ device_keys: users });
    assert.equal(bodies.length, 2);
    assert.equal(Object.keys(found.device_keys).length, 1024);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
