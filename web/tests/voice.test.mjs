// Voice notes in the browser, with Chromium's fake microphone (a beeping
// tone, granted without asking). With nothing typed, the microphone takes
// the Send button's place. Alice records about two seconds and sends it: it
// goes up as an `audio` file named voice-note-….webm/.ogg, without a caption;
// meanwhile Bob's list says "recording audio…". Bob sees a compact player
// with its length (0:02), the chat list says "🎤 Voice message (0:02)", and
// pressing play really plays it (the element's position advances); the bar
// seeks. The length in the list and the player is the server's `duration_ms`
// (rounded to whole seconds), and Bob's page fetches no file for it before
// he opens the chat. On a phone, from history, the same; a recording
// cancelled there sends nothing. The microphone is released after each
// recording, and a refused microphone is said in the composer. A page that
// gets the media ref without `duration_ms` (as for an older upload) reads
// the length from the file instead.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import {
  apiLogin,
  apiRegister,
  chatRow,
  eventually,
  launchBrowser,
  login,
  openChat,
  overflowingElements,
  PHONE,
  screenshotPath,
  smallTargets,
  startDirect,
  startServer,
} from './helpers.mjs';

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let server;
let browser;
/** The voice note the first test sent (its media ref, as the server gave it) and the length the UI shows for it. */
let note = null;

/** The length the UI shows for `ms` milliseconds: whole seconds, rounded, at least one ("0:02"). */
function shownLength(ms) {
  const s = Math.max(1, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** Serious and critical axe-core violations within `selector`, as "rule: target" strings. */
async function axe(page, selector) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const result = await page.evaluate((sel) => window.axe.run(sel, { resultTypes: ['violations'] }), selector);
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').flatMap((v) => v.nodes.map((n) => `${v.id}: ${n.target.join(' ')}`));
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser({ fakeMedia: true });
});

after(async () => {
  await browser?.close();
  await server?.destroy();
});

/**
 * A page whose microphone streams are kept in `window.__micTracks`, to check
 * they are stopped once a recording ends.
 */
async function openTracked(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  await context.addInitScript(() => {
    window.__micTracks = [];
    const md = navigator.mediaDevices;
    if (!md?.getUserMedia) return;
    const real = md.getUserMedia.bind(md);
    md.getUserMedia = async (constraints) => {
      const stream = await real(constraints);
      window.__micTracks.push(...stream.getTracks());
      return stream;
    };
  });
  const page = await context.newPage();
  page.errors = [];
  // Every file fetched (GET /v1/media/…), by path.
  page.mediaGets = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (r.method() === 'GET' && u.pathname.startsWith('/v1/media/')) page.mediaGets.push(u.pathname);
  });
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('dialog', (d) => {
    page.errors.push(`unexpected dialog: ${d.message()}`);
    void d.dismiss();
  });
  await page.goto(server.url);
  return { context, page };
}

/** Every microphone track the page opened is stopped (and there was at least one). */
async function micReleased(page) {
  return page.evaluate(() => window.__micTracks.length > 0 && window.__micTracks.every((t) => t.readyState === 'ended'));
}

/** Record until the composer's clock shows `seconds` (m:ss); returns the recording bar. */
async function recordFor(page, seconds) {
  await page.getByTestId('voice-record').click();
  const bar = page.getByTestId('recording');
  await bar.waitFor();
  await page.getByTestId('voice-elapsed').filter({ hasText: `0:${String(seconds).padStart(2, '0')}` }).waitFor({ timeout: 10_000 });
  return bar;
}

const DURATION = /^0:0[1-4]$/;

test('a voice note: recorded, sent, listed, played and seeked; a cancelled one is not sent', async () => {
  await apiRegister(server.url, 'alice', 'Alice');
  await apiRegister(server.url, 'bob', 'Bob');
  const alice = await openTracked();
  const bob = await openTracked();
  await login(alice.page, 'alice');
  await login(bob.page, 'bob');
  await startDirect(alice.page, 'bob', { encrypted: false });

  // Nothing typed: the microphone in the Send button's place; text brings Send back.
  const a = alice.page;
  await a.getByTestId('voice-record').waitFor();
  assert.equal(await a.getByTestId('send').count(), 0);
  assert.equal(await a.getByTestId('voice-record').getAttribute('aria-label'), 'Record a voice note');
  await a.getByTestId('composer').fill('hello');
  await a.getByTestId('send').waitFor();
  assert.equal(await a.getByTestId('voice-record').count(), 0);
  await a.getByTestId('composer').fill('');
  await a.getByTestId('voice-record').waitFor();

  // Recording: a red dot, the time, Cancel and Send; about two seconds, then sent.
  const bar = await recordFor(a, 1);
  // Bob's list says what Alice is doing.
  await chatRow(bob.page, 'Alice').getByTestId('typing').filter({ hasText: 'recording audio…' }).waitFor({ timeout: 5_000 });
  assert.equal(await bar.locator('.rec-dot').count(), 1);
  assert.equal(await a.getByTestId('voice-cancel').getAttribute('aria-label'), 'Cancel recording');
  assert.equal(await a.getByTestId('voice-send').getAttribute('aria-label'), 'Send voice note');
  assert.equal(await a.getByTestId('composer').count(), 0, 'the text box gives way to the recording');
  assert.deepEqual(await axe(a, '[data-testid=chat-pane]'), [], 'recording: axe');
  await a.screenshot({ path: screenshotPath('voice-recording-desktop.png') });
  await a.getByTestId('voice-elapsed').filter({ hasText: '0:02' }).waitFor({ timeout: 10_000 });
  await a.getByTestId('voice-send').click();
  await bar.waitFor({ state: 'detached' });
  await eventually(() => micReleased(a), { timeout: 5_000, message: "Alice's microphone released after sending" });
  const mine = a.locator('[data-testid=msg-out] [data-testid=audio-player][data-voice=true]');
  await mine.waitFor();
  await eventually(async () => DURATION.test((await mine.getAttribute('data-duration')) ?? ''), { message: "the length of Alice's own voice note" });
  assert.equal(await a.getByTestId('composer').inputValue(), '');
  await a.getByTestId('voice-record').waitFor();

  // What went up: an audio file named voice-note-….webm (or .ogg), no caption.
  const bobApi = await apiLogin(server.url, 'bob');
  const [chat] = await bobApi.get('/v1/chats');
  const history = await bobApi.get(`/v1/chats/${chat.chat.id}/messages`);
  assert.equal(history.messages.length, 1);
  const sent = history.messages[0];
  assert.equal(sent.text, '');
  assert.equal(sent.media.kind, 'audio');
  assert.match(sent.media.name, /^voice-note-\d{4}-\d{2}-\d{2}-\d{4}\.(webm|ogg)$/);
  assert.match(sent.media.mime, /^audio\/(webm|ogg)$/);
  assert.ok(sent.media.size > 1000 && sent.media.size < 40_000, `about two seconds of speech-rate Opus: ${sent.media.size} bytes`);
  // The server read its length from the container (MediaRecorder's WebM
  // has no duration field: the last block's time says it): about the two
  // seconds recorded.
  assert.ok(
    sent.media.duration_ms >= 1500 && sent.media.duration_ms <= 4000,
    `the server's duration of a two-second note: ${sent.media.duration_ms} ms`,
  );
  console.log(`voice note: ${sent.media.name}, ${sent.media.mime}, ${sent.media.size} bytes, ${sent.media.duration_ms} ms`);
  const expected = shownLength(sent.media.duration_ms);
  assert.match(expected, DURATION);
  note = { media: sent.media, expected };
  const filePath = `/v1/media/${sent.media.id}`;

  // Bob: the list's label with the server's length, without fetching the file; then the player with it.
  const b = bob.page;
  await eventually(async () => (await chatRow(b, 'Alice').getByTestId('chat-preview').textContent()) === `🎤 Voice message (${expected})`, {
    message: `Bob's chat list label for the voice note, with the server's length (${expected})`,
  });
  // Time for a (wrong) probe of the file to start.
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(b.mediaGets, [], "Bob's page fetched no file for the label");
  await openChat(b, 'Alice');
  const got = b.locator('[data-testid=msg-in] [data-testid=audio-player][data-voice=true]');
  await got.waitFor();
  await eventually(async () => (await got.getByTestId('audio-time').textContent()) === expected, { message: "the server's length in Bob's player" });
  const length = await got.getAttribute('data-duration');
  assert.equal(length, expected);
  // The player loads the (small) file with the message, to play at once; the total stays the server's.
  await eventually(() => got.getByTestId('media-audio').evaluate((el) => Number.isFinite(el.duration) && el.duration > 0), {
    message: 'the element read its own length',
  });
  assert.deepEqual(b.mediaGets, [filePath], 'the file fetched once, by the player');
  assert.equal(await got.getAttribute('data-duration'), expected, 'the total did not change once the element read its own');
  console.log(`server ${sent.media.duration_ms} ms, element ${await got.getByTestId('media-audio').evaluate((el) => Math.round(el.duration * 1000))} ms`);
  assert.equal(await chatRow(b, 'Alice').getByTestId('chat-preview').textContent(), `🎤 Voice message (${length})`);
  assert.deepEqual(await axe(b, '[data-testid=chat-pane]'), [], 'the player: axe');
  await b.screenshot({ path: screenshotPath('voice-bob-desktop.png') });

  // Play: the element's position advances, the button says Pause; it ends back at the start.
  const audio = got.getByTestId('media-audio');
  await got.getByTestId('audio-play').click();
  await eventually(() => audio.evaluate((el) => !el.paused && el.currentTime > 0.3), { timeout: 10_000, message: 'the voice note playing' });
  assert.match(await got.getByTestId('audio-play').getAttribute('aria-label'), /^Pause voice message/);
  await b.screenshot({ path: screenshotPath('voice-bob-playing-desktop.png') });
  await eventually(() => audio.evaluate((el) => el.paused && el.currentTime === 0), { timeout: 10_000, message: 'the voice note played to its end' });
  assert.equal(await got.getByTestId('audio-time').textContent(), length);
  assert.deepEqual(b.mediaGets, [filePath], 'playing fetched nothing more');

  // The bar seeks: a click three quarters along.
  const seek = got.getByTestId('audio-seek');
  const box = await seek.boundingBox();
  await b.mouse.click(box.x + box.width * 0.75, box.y + box.height / 2);
  const at = await audio.evaluate((el) => el.currentTime / el.duration);
  assert.ok(Math.abs(at - 0.75) < 0.1, `seeked to ${at}`);
  assert.equal(await b.getByTestId('msg-menu-list').count(), 0, 'seeking opens no menu');

  // Alice's list says the same; her message is read.
  await eventually(async () => (await chatRow(a, 'Bob').getByTestId('chat-preview').textContent()) === `🎤 Voice message (${length})`, {
    message: "Alice's chat list label",
  });
  await eventually(async () => (await a.locator('[data-testid=msg-out] .ticks').getAttribute('data-status')) === 'read', { message: 'the voice note read' });
  await a.screenshot({ path: screenshotPath('voice-alice-desktop.png') });
  await a.emulateMedia({ colorScheme: 'dark' });
  await eventually(() => a.evaluate(() => document.documentElement.dataset.theme === 'dark'), { timeout: 3_000, message: 'the dark theme' });
  await a.screenshot({ path: screenshotPath('voice-alice-dark.png') });
  await a.emulateMedia({ colorScheme: 'light' });

  // Bob on a phone (a new device): the note from history with its length; a recording cancelled sends nothing.
  const phone = await openTracked(PHONE);
  const p = phone.page;
  await login(p, 'bob');
  await eventually(async () => (await chatRow(p, 'Alice').getByTestId('chat-preview').textContent()) === `🎤 Voice message (${length})`, {
    message: 'the label on the phone, from history',
  });
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(p.mediaGets, [], 'the phone fetched no file for the label');
  await openChat(p, 'Alice');
  const onPhone = p.locator('[data-testid=msg-in] [data-testid=audio-player][data-voice=true]');
  await eventually(async () => (await onPhone.getByTestId('audio-time').textContent()) === length, { message: 'the length on the phone' });
  assert.deepEqual(await overflowingElements(p), []);
  assert.deepEqual(await smallTargets(p, '[data-testid=chat-pane]'), [], 'phone: touch targets');
  await p.screenshot({ path: screenshotPath('voice-bob-phone.png') });

  const phoneBar = await recordFor(p, 1);
  assert.deepEqual(await overflowingElements(p), []);
  assert.deepEqual(await smallTargets(p, '[data-testid=chat-pane]'), [], 'phone while recording: touch targets');
  await p.screenshot({ path: screenshotPath('voice-recording-phone.png') });
  await p.getByTestId('voice-cancel').click();
  await phoneBar.waitFor({ state: 'detached' });
  await p.getByTestId('voice-record').waitFor();
  await eventually(() => micReleased(p), { timeout: 5_000, message: 'the phone microphone released after cancelling' });
  // Give a wrongly sent note time to arrive; there must be none.
  await new Promise((r) => setTimeout(r, 1_000));
  assert.equal(await p.locator('[data-testid=msg-out]').count(), 0);
  assert.equal(await p.getByTestId('attachment').count(), 0);
  assert.equal((await bobApi.get(`/v1/chats/${chat.chat.id}/messages`)).messages.length, 1, 'nothing sent after Cancel');
  assert.equal(await a.locator('[data-testid=msg-in]').count(), 0);

  // A refused microphone: a clear message in the composer, no alert.
  await a.evaluate(() => {
    navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
  });
  await a.getByTestId('voice-record').click();
  const refusal = a.getByTestId('voice-error');
  await refusal.waitFor();
  assert.match(await refusal.textContent(), /Microphone access was refused/);
  assert.equal(await a.getByTestId('recording').count(), 0);
  await a.getByTestId('voice-error-close').click();
  await refusal.waitFor({ state: 'detached' });

  assert.deepEqual(alice.page.errors, []);
  assert.deepEqual(bob.page.errors, []);
  assert.deepEqual(phone.page.errors, []);
  await alice.context.close();
  await bob.context.close();
  await phone.context.close();
});

test("a voice note without the server's duration_ms: its length read from the file", async () => {
  assert.ok(note, 'the first test sent a voice note');
  const bob = await openTracked();
  const b = bob.page;
  // As for an older upload: every media ref the API gives this page loses its duration_ms.
  let stripped = 0;
  const strip = async (route) => {
    if (route.request().method() !== 'GET') return route.continue();
    const res = await route.fetch();
    if (!(res.headers()['content-type'] ?? '').includes('json')) return route.fulfill({ response: res });
    const body = await res.json();
    const drop = (v) => {
      if (Array.isArray(v)) v.forEach(drop);
      else if (v && typeof v === 'object') {
        if (v.media && typeof v.media === 'object' && 'duration_ms' in v.media) {
          delete v.media.duration_ms;
          stripped++;
        }
        Object.values(v).forEach(drop);
      }
    };
    drop(body);
    await route.fulfill({ response: res, json: body });
  };
  const isApi = (url) => url.pathname.startsWith('/v1/') && !url.pathname.startsWith('/v1/media/');
  await b.route(isApi, strip);
  await login(b, 'bob');

  // The label still gets its length: the chat list probes the file for it.
  const filePath = `/v1/media/${note.media.id}`;
  await eventually(async () => DURATION.test(/^🎤 Voice message \((.*)\)$/.exec(await chatRow(b, 'Alice').getByTestId('chat-preview').textContent())?.[1] ?? ''), {
    message: 'the label with the length read from the file',
  });
  assert.ok(stripped > 0, 'the media ref came without duration_ms');
  assert.deepEqual(b.mediaGets, [filePath], 'the file was fetched to read its length');
  const label = await chatRow(b, 'Alice').getByTestId('chat-preview').textContent();
  console.log(`without duration_ms: "${label}" (the server's would be ${note.expected})`);

  // The player: the same length, from the same bytes (the blob cache: not fetched again).
  await openChat(b, 'Alice');
  const got = b.locator('[data-testid=msg-in] [data-testid=audio-player][data-voice=true]');
  await eventually(async () => DURATION.test((await got.getAttribute('data-duration')) ?? ''), { message: 'the length in the player' });
  assert.equal(label, `🎤 Voice message (${await got.getAttribute('data-duration')})`);
  assert.equal(await got.getByTestId('audio-time').textContent(), await got.getAttribute('data-duration'));
  assert.deepEqual(b.mediaGets, [filePath], 'the player used the bytes the probe fetched');

  // It plays and seeks as before.
  const audio = got.getByTestId('media-audio');
  await got.getByTestId('audio-play').click();
  await eventually(() => audio.evaluate((el) => !el.paused && el.currentTime > 0.3), { timeout: 10_000, message: 'playing' });
  await audio.evaluate((el) => el.pause());
  const seek = got.getByTestId('audio-seek');
  const box = await seek.boundingBox();
  await b.mouse.click(box.x + box.width * 0.25, box.y + box.height / 2);
  const at = await audio.evaluate((el) => el.currentTime / el.duration);
  assert.ok(Math.abs(at - 0.25) < 0.1, `seeked to ${at}`);

  assert.deepEqual(b.errors, []);
  await bob.context.close();
});
