// Voice notes in the browser, with Chromium's fake microphone (a beeping
// tone, granted without asking). With nothing typed, the microphone takes
// the Send button's place. Alice records about two seconds and sends it: it
// goes up as an `audio` file named voice-note-….webm/.ogg, without a caption;
// meanwhile Bob's list says "recording audio…". Bob sees a compact player
// with its length (0:02), the chat list says "🎤 Voice message (0:02)", and
// pressing play really plays it (the element's position advances); the bar
// seeks. On a phone, from history, the same; a recording cancelled there
// sends nothing. The microphone is released after each recording, and a
// refused microphone is said in the composer.

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

const DURATION = /^0:0[123]$/;

test('a voice note: recorded, sent, listed, played and seeked; a cancelled one is not sent', async () => {
  await apiRegister(server.url, 'alice', 'Alice');
  await apiRegister(server.url, 'bob', 'Bob');
  const alice = await openTracked();
  const bob = await openTracked();
  await login(alice.page, 'alice');
  await login(bob.page, 'bob');
  await startDirect(alice.page, 'bob');

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

  // Bob: the list's label with the length, then the player with it.
  const b = bob.page;
  await eventually(async () => /^🎤 Voice message \(0:0[123]\)$/.test(await chatRow(b, 'Alice').getByTestId('chat-preview').textContent()), {
    message: "Bob's chat list label for the voice note",
  });
  await openChat(b, 'Alice');
  const got = b.locator('[data-testid=msg-in] [data-testid=audio-player][data-voice=true]');
  await got.waitFor();
  await eventually(async () => DURATION.test((await got.getByTestId('audio-time').textContent()) ?? ''), { message: "the voice note's length in Bob's player" });
  const length = await got.getAttribute('data-duration');
  assert.match(length, DURATION);
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
  await eventually(async () => /^🎤 Voice message/.test(await chatRow(p, 'Alice').getByTestId('chat-preview').textContent()), { message: 'the label on the phone' });
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
