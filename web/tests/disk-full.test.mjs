// The server's disk fills up while a person is writing. The server then
// refuses every write with `unavailable` (an error frame on the socket; 503
// with Retry-After over HTTP): nothing was stored, retry the same request.
// The message a person sends meanwhile stays queued with its clock, never
// shown as failed, and goes out by itself once there is room again (no
// reload, no click), stored once.
//
// The disk is a small tmpfs the test mounts as the server's data directory
// and fills with a file of its own; mounting needs root, which CI has. Where
// mounting is forbidden the test fails and says so: it does not skip.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  apiLogin,
  apiRegister,
  eventually,
  expectStatus,
  launchBrowser,
  openChat,
  openPage,
  outStatus,
  register,
  screenshotPath,
  sendMessage,
  startDirect,
  startServer,
} from './helpers.mjs';

const DISK_MIB = 48;

let mountDir;
let mounted = false;
let server;
let browser;

before(async () => {
  mountDir = mkdtempSync(join(tmpdir(), 'hark-web-disk-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${DISK_MIB}m`, 'tmpfs', mountDir], { stdio: 'pipe' });
  } catch (e) {
    throw new Error(
      `this test mounts a ${DISK_MIB} MiB tmpfs as the server's data directory and needs root ` +
        `(CI runs as root); \`mount -t tmpfs\` failed: ${String(e.stderr ?? e.message).trim()}`,
    );
  }
  mounted = true;
  server = await startServer({ dataDir: join(mountDir, 'data') });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  // The server first: it has its database open on the tmpfs.
  await server?.stop();
  if (mounted) execFileSync('umount', ['-l', mountDir]);
  rmSync(mountDir, { recursive: true, force: true });
});

/** Write `path` until the filesystem has no room left: 1 MiB pieces, then 4 KiB, then 512 bytes. */
function fill(path) {
  const fd = openSync(path, 'w');
  try {
    for (const size of [1 << 20, 4096, 512]) {
      const piece = Buffer.alloc(size, 7);
      for (;;) {
        try {
          writeSync(fd, piece);
        } catch (e) {
          if (e.code === 'ENOSPC') break;
          throw e;
        }
      }
    }
    try {
      fsyncSync(fd);
    } catch {}
  } finally {
    closeSync(fd);
  }
}

/** A send over HTTP: `{ status, code, retryAfter }` (status 200 when stored). */
async function httpSend(who, chatId, clientId, text) {
  const r = await fetch(`${server.url}/v1/chats/${chatId}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${who.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: clientId, text }),
  });
  const body = await r.json().catch(() => null);
  return { status: r.status, code: body?.error?.code ?? null, message: body?.error?.message ?? '', retryAfter: r.headers.get('retry-after') };
}

/** Every message of a chat, oldest first, as `who` reads it over HTTP. */
async function history(who, chatId) {
  const out = [];
  let after = 0;
  for (;;) {
    const page = await who.get(`/v1/chats/${chatId}/messages?after=${after}&limit=200`);
    out.push(...page.messages);
    if (!page.has_more || page.messages.length === 0) return out;
    after = page.messages[page.messages.length - 1].seq;
  }
}

test('a message written while the server disk is full stays pending, then goes out by itself once there is room', async () => {
  const alice = await openPage(browser, server.url);
  const bob = await openPage(browser, server.url);
  // What Alice's page writes and hears on its sockets (watched, not changed).
  const sent = [];
  const heard = [];
  alice.page.on('websocket', (ws) => {
    const parse = (payload) => {
      try {
        return JSON.parse(String(payload));
      } catch {
        return null;
      }
    };
    ws.on('framesent', ({ payload }) => {
      const f = parse(payload);
      if (f) sent.push({ ...f, at: Date.now() });
    });
    ws.on('framereceived', ({ payload }) => {
      const f = parse(payload);
      if (f) heard.push(f);
    });
  });
  await register(alice.page, 'alice', 'Alice');
  await register(bob.page, 'bob', 'Bob');
  await startDirect(alice.page, 'bob', { encrypted: false });
  await sendMessage(alice.page, 'before the disk filled up');
  await openChat(bob.page, 'Alice');
  await expectStatus(alice.page, 'before the disk filled up', 'read');

  // Two others, whose chat takes the last of the room SQLite still has in
  // its files once the disk itself is full, so that Alice's chat shows
  // nothing but her own messages.
  const carol = await apiRegister(server.url, 'carol', 'Carol');
  const dave = await apiRegister(server.url, 'dave', 'Dave');
  const padChat = (await carol.post('/v1/chats/direct', { user_id: dave.user.id })).id;
  // Bob's checker logs in now: a login is a write too.
  const bobApi = await apiLogin(server.url, 'bob');
  const bobChats = await bobApi.get('/v1/chats');
  assert.equal(bobChats.length, 1, 'Bob has one chat, with Alice');
  const aliceChat = bobChats[0].chat.id;

  const filler = join(mountDir, 'filler');
  let t = Date.now();
  fill(filler);
  // SQLite still has room inside its files: a WAL the checkpointer (every
  // 200 ms) has copied, which the next commit writes over, and free space
  // in its pages. So on a full disk a short message still fits now and then
  // (one per checkpoint, for some 90 of them, is what this takes without
  // the steps below). Carol sends messages of 3,000 characters, then 1,000,
  // then 300, each until they are refused every time for a while, then
  // short ones like Alice's, until those are refused for 1.5 s in a row.
  let refusal = null;
  let padded = 0;
  let n = 0;
  for (const [size, forMs] of [
    [3000, 500],
    [1000, 500],
    [300, 500],
    [0, 1_500],
  ]) {
    let refusedInRow = 0;
    let refusedSince = 0;
    for (;;) {
      assert.ok(n++ < 5_000, `5,000 sends on a full disk and still not refused for good (${padded} went through)`);
      const r = await httpSend(carol, padChat, `pad-${n}`, `pad ${n} ${'z'.repeat(size)}`);
      if (r.status === 200) {
        padded++;
        refusedInRow = 0;
        continue;
      }
      assert.deepEqual([r.status, r.code, r.retryAfter], [503, 'unavailable', '1'], `a full disk is a retryable refusal: ${r.message}`);
      refusal ??= r;
      if (refusedInRow++ === 0) refusedSince = Date.now();
      if (refusedInRow >= 5 && Date.now() - refusedSince >= forMs) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  assert.match(refusal.message, /disk is full/);
  console.log(`# the disk was full after ${padded} more sends (${Date.now() - t} ms): ${refusal.message}`);

  // Alice writes now, from the page.
  const text = 'written while the disk is full';
  const stored = (msgs) => msgs.filter((m) => m.text === text).length;
  await sendMessage(alice.page, text);
  await expectStatus(alice.page, text, 'pending', 5_000);
  // It stays queued with its clock for a while (the client retries after
  // 1 s, then 2 s…, refused each time): never failed, never acked.
  const until = Date.now() + 3_500;
  const seen = new Set();
  while (Date.now() < until) {
    const status = await outStatus(alice.page, text);
    seen.add(status);
    assert.notEqual(status, 'failed', 'a refusal the server says to retry is shown as failed');
    assert.equal(status, 'pending', `"${text}" left pending while the disk is full`);
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.deepEqual([...seen], ['pending']);
  assert.equal(await alice.page.locator('[data-testid=msg-out] .ticks.failed').count(), 0, 'no message shown as not sent');
  assert.equal(stored(await history(bobApi, aliceChat)), 0, 'stored while the disk is full');
  // The client did send it, was refused with `unavailable` and sent it
  // again, with the same client id each time.
  const tries = sent.filter((f) => f.type === 'send' && f.text === text);
  const refusedIds = new Set(heard.filter((f) => f.type === 'error' && f.code === 'unavailable').map((f) => f.id));
  assert.ok(tries.length >= 2, `sent ${tries.length} times while the disk was full`);
  assert.equal(new Set(tries.map((f) => f.client_id)).size, 1, 'one client id for every try');
  assert.ok(tries.filter((f) => refusedIds.has(f.id)).length >= 2, 'refused as unavailable, more than once');
  console.log(`# sent ${tries.length} times while the disk was full, every one refused as unavailable`);
  // With backoff: the second wait is longer than the first.
  if (tries.length >= 3) {
    const [first, second] = [tries[1].at - tries[0].at, tries[2].at - tries[1].at];
    console.log(`# waits between tries: ${first} ms, then ${second} ms`);
    assert.ok(first >= 700, `first wait ${first} ms`);
    assert.ok(second >= first * 1.3, `the wait grows: ${first} ms, then ${second} ms`);
  }
  // The page says why it waits.
  const held = alice.page.getByTestId('conn-banner-held');
  await held.waitFor({ timeout: 5_000 });
  assert.match(await held.textContent(), /Waiting for the server.*disk is full/s);
  assert.equal(await held.getAttribute('data-code'), 'unavailable');
  await alice.page.screenshot({ path: screenshotPath('disk-full-pending.png') });

  // Room again: the message goes out on its own.
  rmSync(filler);
  const t0 = Date.now();
  await eventually(async () => ['sent', 'delivered', 'read'].includes(await outStatus(alice.page, text)), {
    timeout: 20_000,
    message: `"${text}" to be sent once the disk has room`,
  });
  console.log(`# sent by itself ${Date.now() - t0} ms after the disk had room`);
  await held.waitFor({ state: 'detached', timeout: 5_000 });
  await bob.page.locator('[data-testid=msg-in]', { has: bob.page.locator('[data-testid=msg-text]', { hasText: text }) }).waitFor({ timeout: 10_000 });
  await expectStatus(alice.page, text, 'read');
  assert.equal(stored(await history(bobApi, aliceChat)), 1, `"${text}" stored exactly once`);
  assert.equal(
    await bob.page.locator('[data-testid=msg-in] [data-testid=msg-text]', { hasText: text }).count(),
    1,
    'Bob sees it once',
  );
  assert.equal(
    await alice.page.locator('[data-testid=msg-out] [data-testid=msg-text]', { hasText: text }).count(),
    1,
    'Alice sees it once',
  );
  await alice.page.screenshot({ path: screenshotPath('disk-full-recovered.png') });
  await bob.page.screenshot({ path: screenshotPath('disk-full-recovered-bob.png') });
  assert.deepEqual(alice.page.errors, []);
  assert.deepEqual(bob.page.errors, []);
  await alice.context.close();
  await bob.context.close();
});
