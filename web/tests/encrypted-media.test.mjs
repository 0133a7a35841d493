// Files and edits in end-to-end encrypted chats. Alice sends Bob a photo
// with a caption, a file and a sound in an encrypted one-to-one chat: Bob's
// browser decrypts each into a blob: URL (the real picture, its caption and
// name; the file downloaded under its name, byte for byte; the sound plays
// with its length), while the server holds only ciphertext: an unnamed
// `file` without thumbnail whose bytes are not the picture's. Alice edits a
// message: Bob sees the new words live and after a reload, marked edited; a
// reply quotes the file from the decrypted copy. Without a browser, the
// checks on what a decrypted content may be shown as (`readContent`): an
// edit must name its message, no content may name another, a file's key must
// name the file the message carries. And with the `hark` command-line
// client: its encrypted photo and file are shown and downloaded exactly, the
// browser's file comes out of `hark download` exactly, its edit shows.
// Thumbnails travel inside the encrypted message (`info["hark.thumbnail"]`):
// with the receiver's file downloads held back, a photo's (or a video's
// first frame's) thumbnail shows at once, at most 128 px and 8 KiB, upright,
// a PNG only for a picture with transparency; the CLI's thumbnails show in
// the browser and the browser's come out of `hark download --thumbnail`.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { crc32, deflateSync } from 'node:zlib';
import { build } from 'esbuild';
import { chatRow, eventually, launchBrowser, openChat, openPage, register, repo, screenshotPath, sendMessage, startDirect, png, startServer, waitLive } from './helpers.mjs';

const binary = process.env.HARK_BIN ?? join(repo, 'target', 'debug', 'hark');
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

let server;
let browser;
let dir;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  dir = mkdtempSync(join(tmpdir(), 'hark-e2e-media-test-'));
});

after(async () => {
  await browser?.close();
  await server?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A WAV file of `seconds` of a 440 Hz tone (8 kHz, 8-bit mono). */
function wav(seconds) {
  const rate = 8000;
  const samples = Buffer.alloc(rate * seconds);
  for (let i = 0; i < samples.length; i++) samples[i] = 128 + Math.round(90 * Math.sin((2 * Math.PI * 440 * i) / rate));
  const head = Buffer.alloc(44);
  head.write('RIFF', 0);
  head.writeUInt32LE(36 + samples.length, 4);
  head.write('WAVEfmt ', 8);
  head.writeUInt32LE(16, 16);
  head.writeUInt16LE(1, 20);
  head.writeUInt16LE(1, 22);
  head.writeUInt32LE(rate, 24);
  head.writeUInt32LE(rate, 28);
  head.writeUInt16LE(1, 32);
  head.writeUInt16LE(8, 34);
  head.write('data', 36);
  head.writeUInt32LE(samples.length, 40);
  return Buffer.concat([head, samples]);
}

/** Bytes no one would guess, with a marker inside (to look for where they must not be). */
function randomFile(label) {
  const bytes = Buffer.alloc(3000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919 + label.length * 31) % 256;
  return Buffer.concat([Buffer.from(`${label}\n`), bytes]);
}

const marker = (label) => `${label}-${Math.random().toString(36).slice(2, 10)}`;

/** A user registered through the UI (their keys published) in a browser context of their own. */
async function person(username, name) {
  const p = await openPage(browser, server.url);
  await register(p.page, username, name);
  return p;
}

function sessionOf(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem(`hark:${location.origin}:session`)));
}

/** GET with a page's own token: JSON, or the raw bytes. */
async function getAs(page, path, { raw = false } = {}) {
  const { token } = await sessionOf(page);
  const r = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200, `GET ${path}`);
  return raw ? Buffer.from(await r.arrayBuffer()) : r.json();
}

/** The newest message of `chatId` as the server serves it. */
async function newest(page, chatId) {
  const history = await getAs(page, `/v1/chats/${chatId}/messages`);
  return history.messages[history.messages.length - 1];
}

const chatIdOf = async (page) => Number(await page.getByTestId('chat-pane').getAttribute('data-chat-id'));

/** Attach `path` in the open chat, with `caption`, and send it. */
async function sendFile(page, path, caption = '') {
  await page.getByTestId('file-input').setInputFiles(path);
  await page.getByTestId('attachment-name').waitFor();
  if (caption) await page.getByTestId('composer').fill(caption);
  await page.getByTestId('send').click();
  await page.getByTestId('attachment-name').waitFor({ state: 'detached', timeout: 30_000 });
}

/** Click `button` and save the download: its suggested name and bytes. */
async function download(page, button) {
  const [d] = await Promise.all([page.waitForEvent('download'), button.click()]);
  return { name: d.suggestedFilename(), bytes: readFileSync(await d.path()) };
}

/** Open the options menu of the bubble containing `text` and pick `action`. */
async function act(page, text, action) {
  const bubble = page.locator('[data-testid=msg-in], [data-testid=msg-out]').filter({ hasText: text }).first();
  await bubble.hover();
  await bubble.getByTestId('msg-menu').click();
  await bubble.locator(`[data-testid=msg-menu-list] [data-testid="${action}"]`).first().click();
}

/** Runs the `hark` command-line client with its own config dir; its standard output. */
async function cli(configDir, args) {
  const { stdout } = await promisify(execFile)(binary, args, {
    env: { ...process.env, HARK_CONFIG_DIR: configDir, HARK_SERVER: server.url, HARK_PASSWORD: 'password-123', RUST_LOG: 'warn' },
    timeout: 60_000,
  });
  return stdout;
}

/** A PNG with transparency: an opaque orange disc on a transparent square (RGBA). */
function transparentPng(size) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header[8] = 8;
  header[9] = 6; // RGBA
  const rows = Buffer.alloc((size * 4 + 1) * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const inside = Math.hypot(x - size / 2, y - size / 2) < size * 0.35;
      rows.set(inside ? [240, 120, 30, 255] : [0, 0, 0, 0], y * (size * 4 + 1) + 1 + x * 4);
    }
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

/**
 * A JPEG stored 200 × 100 (its left half red, its right half blue) whose
 * EXIF says to turn it a quarter clockwise (orientation 6): upright it is
 * 100 × 200, red on top. Encoded by the page's canvas.
 */
async function rotatedJpeg(page) {
  const bytes = Buffer.from(
    await page.evaluate(async () => {
      const canvas = Object.assign(document.createElement('canvas'), { width: 200, height: 100 });
      const g = canvas.getContext('2d');
      g.fillStyle = '#e01010';
      g.fillRect(0, 0, 100, 100);
      g.fillStyle = '#1020e0';
      g.fillRect(100, 0, 100, 100);
      const blob = await new Promise((r) => canvas.toBlob(r, 'image/jpeg', 0.9));
      return Array.from(new Uint8Array(await blob.arrayBuffer()));
    }),
  );
  // APP1 "Exif": a big-endian TIFF header and one IFD entry, Orientation (0x0112) = 6.
  const tiff = Buffer.from([0x4d, 0x4d, 0x00, 0x2a, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]);
  const payload = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const app1 = Buffer.concat([Buffer.from([0xff, 0xe1, (payload.length + 2) >> 8, (payload.length + 2) & 0xff]), payload]);
  return Buffer.concat([bytes.subarray(0, 2), app1, bytes.subarray(2)]);
}

/** A WebM clip of changing colours (160 × 120), recorded by the page. */
async function webmClip(page) {
  return Buffer.from(
    await page.evaluate(async () => {
      const canvas = Object.assign(document.createElement('canvas'), { width: 160, height: 120 });
      const g = canvas.getContext('2d');
      const recorder = new MediaRecorder(canvas.captureStream(15), { mimeType: 'video/webm' });
      const parts = [];
      recorder.ondataavailable = (e) => parts.push(e.data);
      const done = new Promise((resolve) => (recorder.onstop = resolve));
      recorder.start(100);
      for (let frame = 0; frame < 15; frame++) {
        g.fillStyle = `hsl(${frame * 24}, 80%, 50%)`;
        g.fillRect(0, 0, 160, 120);
        await new Promise((r) => setTimeout(r, 60));
      }
      recorder.stop();
      await done;
      return Array.from(new Uint8Array(await new Blob(parts).arrayBuffer()));
    }),
  );
}

/**
 * Holds back `page`'s downloads of files (`GET /v1/media/{id}`), so what a
 * bubble shows before the file is here stays on screen; `release()` lets
 * them (and later ones) through.
 */
async function holdFiles(page) {
  const held = [];
  let holding = true;
  const isFile = (url) => /^\/v1\/media\/[0-9a-f]{32}$/.test(new URL(url).pathname);
  await page.route(isFile, (route) => (holding && route.request().method() === 'GET' ? held.push(route) : route.continue()));
  return {
    count: () => held.length,
    async release() {
      holding = false;
      for (const r of held.splice(0)) await r.continue();
    },
  };
}

/**
 * What the inline thumbnail `img` of `page` shows: its pixels and the bytes
 * it was decoded from (its type by their signature). The page's CSP refuses
 * `fetch` of a blob: URL, so the bytes are those the page loaded, read
 * through the DevTools protocol.
 */
async function previewFacts(page, img) {
  const { src, width, height } = await img.evaluate((el) => ({ src: el.src, width: el.naturalWidth, height: el.naturalHeight }));
  const cdp = await page.context().newCDPSession(page);
  try {
    await cdp.send('Page.enable');
    const { frameTree } = await cdp.send('Page.getResourceTree');
    const { content, base64Encoded } = await cdp.send('Page.getResourceContent', { frameId: frameTree.frame.id, url: src });
    const bytes = Buffer.from(content, base64Encoded ? 'base64' : 'latin1');
    const type = bytes.subarray(0, 3).equals(Buffer.from([0xff, 0xd8, 0xff])) ? 'image/jpeg' : bytes.subarray(0, 8).equals(PNG_SIGNATURE) ? 'image/png' : 'unknown';
    return { src, width, height, type, bytes: bytes.length };
  } finally {
    await cdp.detach();
  }
}

/** A JPEG's pixel size, from its frame header (SOFn); null when it is no JPEG. */
function jpegSize(bytes) {
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  for (let i = 2; i + 9 < bytes.length; ) {
    if (bytes[i] !== 0xff) return null;
    const marker = bytes[i + 1];
    const length = bytes.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) return { width: bytes.readUInt16BE(i + 7), height: bytes.readUInt16BE(i + 5) };
    i += 2 + length;
  }
  return null;
}

test('an encrypted chat: a photo, a file and a sound decrypted in the browser, the server holding ciphertext; an edit, live and after a reload', async () => {
  const photo = join(dir, 'harbour.png');
  const photoBytes = png(480, 320);
  writeFileSync(photo, photoBytes);
  const notes = join(dir, 'ledger.bin');
  const notesBytes = randomFile(marker('ledger'));
  writeFileSync(notes, notesBytes);
  const tone = join(dir, 'voice-note-2026-12-05-0415.wav');
  writeFileSync(tone, wav(2));
  const caption = marker('the-harbour-at-dusk');

  const [alice, bob] = await Promise.all([person('alice', 'Alice Reed'), person('bob', 'Bob Vance')]);
  await startDirect(alice.page, 'bob');
  await alice.page.getByTestId('header-lock').waitFor();
  const chatId = await chatIdOf(alice.page);

  // A photo with a caption: Alice sees it from her own bytes at once.
  await sendFile(alice.page, photo, caption);
  const sent = alice.page.locator('[data-testid=msg-out]', { hasText: caption });
  await eventually(() => sent.getByTestId('media-image').evaluate((el) => el.complete && el.naturalWidth === 480), { message: "Alice's photo" });

  // Bob's browser decrypts it: the real picture, its caption, its name.
  await openChat(bob.page, 'Alice Reed');
  const got = bob.page.locator('[data-testid=msg-in]', { hasText: caption });
  await got.waitFor({ timeout: 30_000 });
  const img = got.getByTestId('media-image');
  await eventually(() => img.evaluate((el) => el.complete && el.naturalWidth === 480 && el.naturalHeight === 320), { message: 'the decrypted photo decoded at 480 × 320' });
  assert.match(await img.getAttribute('src'), /^blob:/);
  assert.equal(await img.getAttribute('alt'), 'harbour.png');
  assert.equal((await got.locator('.media-caption').textContent()).includes(caption), true);
  await img.click();
  const viewer = bob.page.getByTestId('media-viewer');
  await viewer.waitFor();
  assert.equal(await viewer.locator('.viewer-name').textContent(), 'harbour.png');
  await eventually(() => bob.page.getByTestId('media-viewer-image').evaluate((el) => el.complete && el.naturalWidth === 480), { message: 'the viewer shows the photo' });
  await bob.page.screenshot({ path: screenshotPath('encrypted-media-viewer.png') });
  const fromViewer = await download(bob.page, bob.page.getByTestId('media-viewer-download'));
  assert.equal(fromViewer.name, 'harbour.png');
  assert.ok(fromViewer.bytes.equals(photoBytes), 'the photo downloaded byte for byte');
  await bob.page.keyboard.press('Escape');
  await viewer.waitFor({ state: 'detached' });

  // The server's copy: an unnamed file without thumbnail, empty text, and ciphertext bytes.
  const stored = await newest(bob.page, chatId);
  assert.equal(stored.text, '');
  assert.equal(typeof stored.encrypted, 'object');
  assert.equal(stored.media.kind, 'file');
  assert.ok(stored.media.name == null, `no name: ${stored.media.name}`);
  assert.ok(stored.media.thumbnail == null, 'no thumbnail');
  assert.ok(stored.media.width == null && stored.media.height == null, 'no shape');
  assert.ok(!JSON.stringify(stored).includes(caption) && !JSON.stringify(stored).includes('harbour'), 'neither caption nor name on the server');
  const ciphertext = await getAs(bob.page, `/v1/media/${stored.media.id}`, { raw: true });
  assert.equal(ciphertext.length, photoBytes.length, 'AES-CTR keeps the length');
  assert.equal(ciphertext.indexOf(PNG_SIGNATURE), -1, 'no PNG signature in the stored bytes');
  assert.ok(!ciphertext.equals(photoBytes));

  // A file without a caption: its real name, downloaded byte for byte.
  await sendFile(alice.page, notes);
  const card = bob.page.locator('[data-testid=msg-in] [data-testid=media-file]', { hasText: 'ledger.bin' });
  await card.waitFor({ timeout: 30_000 });
  const saved = await download(bob.page, card.getByTestId('media-download'));
  assert.equal(saved.name, 'ledger.bin');
  assert.ok(saved.bytes.equals(notesBytes), 'the file downloaded byte for byte');
  const storedFile = await newest(bob.page, chatId);
  assert.equal(storedFile.media.kind, 'file');
  assert.ok(storedFile.media.name == null);
  const fileCiphertext = await getAs(bob.page, `/v1/media/${storedFile.media.id}`, { raw: true });
  assert.ok(!fileCiphertext.equals(notesBytes) && fileCiphertext.indexOf(notesBytes.subarray(0, 20)) === -1, 'the stored file is ciphertext');

  // A voice note: its length shown (from the message, the server knows none), and it plays.
  await sendFile(alice.page, tone);
  const player = bob.page.locator('[data-testid=msg-in] [data-testid=audio-player][data-voice=true]').last();
  await player.waitFor({ timeout: 30_000 });
  await eventually(async () => (await player.getByTestId('audio-time').textContent()) === '0:02', { message: 'the sound shows its length' });
  await player.getByTestId('audio-play').click();
  await eventually(async () => /^Pause/.test(await player.getByTestId('audio-play').getAttribute('aria-label')), { message: 'the sound plays' });
  await eventually(() => player.locator('audio').evaluate((a) => a.currentTime > 0), { message: 'the sound advances' });

  // The chat list says what the last file is, from the decrypted copy, with its length.
  await chatRow(bob.page, 'Alice Reed').getByTestId('chat-preview').filter({ hasText: '🎤 Voice message (0:02)' }).waitFor();

  // A reply quotes the file from Bob's decrypted copy (the server's quote is empty).
  await act(bob.page, 'ledger.bin', 'reply');
  await sendMessage(bob.page, 'got the ledger');
  await alice.page.locator('[data-testid=msg-in]', { hasText: 'got the ledger' }).getByTestId('msg-quote').filter({ hasText: 'ledger.bin' }).waitFor();

  // An edit: the new words live on Bob's side, marked edited, and after a reload.
  const before = marker('meet-at-noon');
  const afterEdit = marker('meet-at-one');
  await sendMessage(alice.page, before);
  await bob.page.locator('[data-testid=msg-in]', { hasText: before }).waitFor();
  await act(alice.page, before, 'edit');
  await alice.page.getByTestId('editing').waitFor();
  await alice.page.getByTestId('composer').fill(afterEdit);
  await alice.page.getByTestId('composer').press('Enter');
  const edited = bob.page.locator('[data-testid=msg-in]', { hasText: afterEdit });
  await edited.getByTestId('msg-edited').waitFor({ timeout: 30_000 });
  assert.equal(await bob.page.locator('[data-testid=msg-in]', { hasText: before }).count(), 0, 'the old words are gone');
  await alice.page.locator('[data-testid=msg-out]', { hasText: afterEdit }).getByTestId('msg-edited').waitFor();
  const storedEdit = await newest(alice.page, chatId);
  assert.ok(storedEdit.edited_at, 'edited on the server');
  assert.equal(storedEdit.text, '');
  assert.ok(!JSON.stringify(storedEdit).includes(afterEdit), 'the new words are not on the server');
  // Alice's caption edit of her photo keeps the photo.
  const newCaption = marker('harbour-at-night');
  await act(alice.page, caption, 'edit');
  await alice.page.getByTestId('composer').fill(newCaption);
  await alice.page.getByTestId('composer').press('Enter');
  const recaptioned = bob.page.locator('[data-testid=msg-in]', { hasText: newCaption });
  await recaptioned.getByTestId('msg-edited').waitFor({ timeout: 30_000 });
  await eventually(() => recaptioned.getByTestId('media-image').evaluate((el) => el.complete && el.naturalWidth === 480), { message: 'the photo kept by its edit' });

  await bob.page.reload();
  await waitLive(bob.page);
  await openChat(bob.page, 'Alice Reed');
  await bob.page.locator('[data-testid=msg-in]', { hasText: afterEdit }).getByTestId('msg-edited').waitFor({ timeout: 30_000 });
  const again = bob.page.locator('[data-testid=msg-in]', { hasText: newCaption });
  await eventually(() => again.getByTestId('media-image').evaluate((el) => el.complete && el.naturalWidth === 480), { message: 'the photo after a reload' });
  await bob.page.locator('[data-testid=msg-in] [data-testid=media-file]', { hasText: 'ledger.bin' }).waitFor();
  await bob.page.locator('[data-testid=msg-in] [data-testid=audio-player][data-voice=true]').waitFor();
  await eventually(async () => (await bob.page.locator('[data-testid=msg-sealed]').count()) === 0, { message: 'nothing left undecrypted' });
  await bob.page.screenshot({ path: screenshotPath('encrypted-media-bob.png') });

  // Nothing of it in either browser's localStorage.
  for (const p of [alice.page, bob.page]) {
    const stored = await p.evaluate(() => JSON.stringify({ ...localStorage }));
    for (const secret of [caption, newCaption, afterEdit, 'harbour.png', 'ledger.bin']) assert.ok(!stored.includes(secret), `no ${secret} in localStorage`);
  }
  assert.deepEqual(alice.page.errors ?? [], []);
  assert.deepEqual(bob.page.errors ?? [], []);
  await Promise.all([alice.context.close(), bob.context.close()]);
});

test('thumbnails inside the encrypted message: shown before the file, small, upright, PNG only for transparency, a video\'s first frame', async () => {
  const [ann, ben] = await Promise.all([person('ann', 'Ann Lee'), person('ben', 'Ben Ortiz')]);
  await startDirect(ann.page, 'ben');
  await ann.page.getByTestId('header-lock').waitFor();
  await sendMessage(ann.page, 'photos coming');
  await openChat(ben.page, 'Ann Lee');
  await ben.page.locator('[data-testid=msg-in]', { hasText: 'photos coming' }).waitFor({ timeout: 30_000 });
  // Ben's browser gets no file until released: only what the message itself carries can show.
  const files = await holdFiles(ben.page);
  const bubbleOf = (caption) => ben.page.locator('[data-testid=msg-in]', { hasText: caption });

  // A 1200 × 800 photo: a 128 × 85 JPEG inside the message, shown at once in the photo's 3:2 box.
  const photo = join(dir, 'quay.png');
  writeFileSync(photo, png(1200, 800));
  const caption = marker('the-quay');
  await sendFile(ann.page, photo, caption);
  const got = bubbleOf(caption);
  const preview = got.getByTestId('media-preview');
  await preview.waitFor({ timeout: 30_000 });
  await eventually(() => preview.evaluate((el) => el.complete && el.naturalWidth > 0), { message: 'the thumbnail decoded' });
  let facts = await previewFacts(ben.page, preview);
  assert.match(facts.src, /^blob:/);
  assert.deepEqual([facts.width, facts.height, facts.type], [128, 85, 'image/jpeg'], 'at most 128 px, the photo\'s shape, a JPEG');
  assert.ok(facts.bytes > 0 && facts.bytes <= 8192, `at most 8 KiB: ${facts.bytes}`);
  assert.equal(await got.getByTestId('media-image').count(), 0, 'the file itself is not here yet');
  assert.ok(files.count() >= 1, 'the file was asked for (and held back)');
  const box = await got.getByTestId('media-photo').boundingBox();
  assert.ok(Math.abs(box.width / box.height - 1.5) < 0.02, `the photo's 3:2 box: ${box.width} × ${box.height}`);
  await ben.page.screenshot({ path: screenshotPath('encrypted-thumbnail-placeholder.png') });
  // The viewer opens on it too, blurred in the photo's frame, while the file is still away.
  await got.getByTestId('media-open').click();
  await ben.page.getByTestId('media-viewer-placeholder').waitFor();
  await ben.page.getByTestId('media-viewer-loading').waitFor();
  await ben.page.keyboard.press('Escape');
  await ben.page.getByTestId('media-viewer').waitFor({ state: 'detached' });

  // A picture with transparency: a PNG thumbnail.
  const clear = join(dir, 'sticker.png');
  writeFileSync(clear, transparentPng(300));
  const clearCaption = marker('a-sticker');
  await sendFile(ann.page, clear, clearCaption);
  const sticker = bubbleOf(clearCaption).getByTestId('media-preview');
  await sticker.waitFor({ timeout: 30_000 });
  await eventually(() => sticker.evaluate((el) => el.complete && el.naturalWidth > 0), { message: 'the PNG thumbnail decoded' });
  facts = await previewFacts(ben.page, sticker);
  assert.deepEqual([facts.width, facts.height, facts.type], [128, 128, 'image/png']);
  assert.ok(facts.bytes <= 8192, `at most 8 KiB: ${facts.bytes}`);

  // A small photo full of grain: not enlarged, and its JPEG quality lowered until it fits in 8 KiB.
  const grainy = join(dir, 'grain.png');
  writeFileSync(grainy, png(128, 120, { grain: 90 }));
  const grainCaption = marker('grain');
  await sendFile(ann.page, grainy, grainCaption);
  const small = bubbleOf(grainCaption).getByTestId('media-preview');
  await small.waitFor({ timeout: 30_000 });
  await eventually(() => small.evaluate((el) => el.complete && el.naturalWidth > 0), { message: 'the grainy thumbnail decoded' });
  facts = await previewFacts(ben.page, small);
  assert.deepEqual([facts.width, facts.height, facts.type], [128, 120, 'image/jpeg']);
  assert.ok(facts.bytes <= 8192, `at most 8 KiB: ${facts.bytes}`);
  const firstTry = await ann.page.evaluate(async (b64) => {
    const bitmap = await createImageBitmap(new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))]));
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    canvas.getContext('2d').drawImage(bitmap, 0, 0);
    return (await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.8 })).size;
  }, readFileSync(grainy).toString('base64'));
  assert.ok(firstTry > 8192, `the first quality alone would not fit (${firstTry} bytes): the test tries the lowering`);

  // A JPEG whose EXIF turns it: the thumbnail upright (64 × 128, red on top), the box portrait.
  const turned = join(dir, 'turned.jpg');
  writeFileSync(turned, await rotatedJpeg(ann.page));
  const turnedCaption = marker('turned');
  await sendFile(ann.page, turned, turnedCaption);
  const upright = bubbleOf(turnedCaption).getByTestId('media-preview');
  await upright.waitFor({ timeout: 30_000 });
  await eventually(() => upright.evaluate((el) => el.complete && el.naturalWidth > 0), { message: 'the turned thumbnail decoded' });
  facts = await previewFacts(ben.page, upright);
  assert.deepEqual([facts.width, facts.height, facts.type], [64, 128, 'image/jpeg']);
  const [top, bottom] = await upright.evaluate((el) => {
    const c = new OffscreenCanvas(el.naturalWidth, el.naturalHeight);
    const g = c.getContext('2d');
    g.drawImage(el, 0, 0);
    return [g.getImageData(32, 20, 1, 1).data, g.getImageData(32, 108, 1, 1).data].map((d) => Array.from(d.slice(0, 3)));
  });
  assert.ok(top[0] > 150 && top[2] < 100, `red on top: ${top}`);
  assert.ok(bottom[2] > 150 && bottom[0] < 100, `blue below: ${bottom}`);
  const tall = await bubbleOf(turnedCaption).getByTestId('media-photo').boundingBox();
  assert.ok(tall.height > tall.width, `a portrait box: ${tall.width} × ${tall.height}`);

  // A video: the thumbnail of its first frame on the button while it loads.
  const clip = join(dir, 'clip.webm');
  writeFileSync(clip, await webmClip(ann.page));
  await sendFile(ann.page, clip);
  const play = ben.page.locator('[data-testid=msg-in] [data-testid=media-play]').last();
  const poster = play.getByTestId('media-preview');
  await poster.waitFor({ timeout: 30_000 });
  await eventually(() => poster.evaluate((el) => el.complete && el.naturalWidth > 0), { message: "the video's thumbnail decoded" });
  facts = await previewFacts(ben.page, poster);
  assert.deepEqual([facts.width, facts.height, facts.type], [128, 96, 'image/jpeg']);
  await ben.page.screenshot({ path: screenshotPath('encrypted-thumbnail-video.png') });

  // The files come: each photo replaces its thumbnail, the video keeps it as its poster.
  await files.release();
  const image = got.getByTestId('media-image');
  await eventually(() => image.evaluate((el) => el.complete && el.naturalWidth === 1200), { message: 'the photo itself' });
  await got.getByTestId('media-preview').waitFor({ state: 'detached' });
  const video = ben.page.locator('[data-testid=msg-in] [data-testid=media-video]').last();
  await video.waitFor({ timeout: 30_000 });
  assert.match(await video.getAttribute('poster'), /^blob:/);
  await eventually(async () => (await bubbleOf(turnedCaption).getByTestId('media-preview').count()) === 0, { message: 'the turned photo itself' });

  // Ann's own bubbles show her files; the server's copies hold no thumbnail.
  const chatId = await chatIdOf(ben.page);
  const history = await getAs(ben.page, `/v1/chats/${chatId}/messages`);
  for (const m of history.messages.filter((m) => m.media)) {
    assert.equal(m.media.kind, 'file');
    assert.ok(m.media.thumbnail == null && m.media.width == null, 'nothing of the picture on the server');
  }
  assert.deepEqual(ben.page.errors, []);
  assert.deepEqual(ann.page.errors, []);
  await Promise.all([ann.context.close(), ben.context.close()]);
});

test('readContent: an edit names its message, no content names another, a file key names its file', async () => {
  const web = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const out = mkdtempSync(join(tmpdir(), 'hark-readcontent-'));
  try {
    await build({
      stdin: { contents: "export { Plaintexts, readContent, replacement } from './src/app/encrypted.ts';", resolveDir: web, loader: 'ts' },
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      external: ['@matrix-org/matrix-sdk-crypto-wasm'],
      outfile: join(out, 'encrypted.mjs'),
      logLevel: 'error',
    });
    const { Plaintexts, readContent, replacement } = await import(pathToFileURL(join(out, 'encrypted.mjs')).href);
    const text = (body) => ({ msgtype: 'm.text', body });
    // Not edited: its content, or one naming itself.
    assert.deepEqual(readContent(text('hi'), { seq: 4, edited_at: null, media: null }).text, 'hi');
    assert.equal(readContent(replacement(4, text('hi')), { seq: 4, edited_at: null }).text, 'hi');
    // Edited: only content naming this very message.
    assert.equal(readContent(replacement(4, text('new')), { seq: 4, edited_at: 10 }).text, 'new');
    assert.match(readContent(text('old'), { seq: 4, edited_at: 10 }).broken, /does not say which message it replaces/);
    assert.match(readContent(replacement(3, text('other')), { seq: 4, edited_at: 10 }).broken, /edit of another message/);
    assert.match(readContent(replacement(3, text('other')), { seq: 4, edited_at: null }).broken, /edit of another message/);
    assert.match(readContent({ ...text('x'), 'hark.replaces': '4' }, { seq: 4, edited_at: 10 }).broken, /edit of another message/);
    // A file: only with the key of the file the message carries.
    const media = { id: 'a'.repeat(32), kind: 'file', mime: 'application/octet-stream', size: 108, sha256: 'f'.repeat(64) };
    const file = { v: 'v2', key: { k: 'secret' }, iv: 'iv', hashes: { sha256: 'h' } };
    const photo = { msgtype: 'm.image', body: 'the plan', filename: 'plan.png', info: { mimetype: 'image/png', size: 100, w: 40, h: 30 }, file: { ...file, url: media.id } };
    const read = readContent(photo, { seq: 5, edited_at: null, media });
    assert.equal(read.text, 'the plan');
    assert.deepEqual(
      { kind: read.media.kind, name: read.media.name, mime: read.media.mime, size: read.media.size, width: read.media.width, height: read.media.height, id: read.media.id },
      { kind: 'image', name: 'plan.png', mime: 'image/png', size: 100, width: 40, height: 30, id: media.id },
    );
    assert.equal(readContent({ ...photo, body: 'plan.png' }, { seq: 5, media }).text, '', 'the file name as body is no caption');
    assert.match(readContent({ ...photo, file: { ...file, url: 'b'.repeat(32) } }, { seq: 5, media }).broken, /not the one the sender sent/);
    assert.match(readContent(text('no file'), { seq: 5, media }).broken, /not the one the sender sent/);
    assert.match(readContent(photo, { seq: 5, media: null }).broken, /not the one the sender sent/);
    // The thumbnail inside: kept when it is a JPEG or PNG of at most 8 KiB that is what it says; ignored otherwise.
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(600, 7)]);
    const withThumbnail = (t) => readContent({ ...photo, info: { ...photo.info, 'hark.thumbnail': t } }, { seq: 5, media }).media.preview;
    assert.equal(read.media.preview, null, 'none sent, none shown');
    assert.deepEqual(withThumbnail({ mimetype: 'image/jpeg', w: 128, h: 96, data: jpeg.toString('base64') }), { mime: 'image/jpeg', width: 128, height: 96, data: jpeg.toString('base64') });
    assert.equal(withThumbnail({ mimetype: 'image/jpeg', data: jpeg.toString('base64') }).width, null, 'w and h optional');
    assert.equal(withThumbnail({ mimetype: 'image/jpeg', w: 4000, h: 3, data: jpeg.toString('base64') }).width, null, 'a size past 128 px not believed');
    const big = Buffer.concat([jpeg, Buffer.alloc(8192 - jpeg.length + 1)]);
    assert.equal(withThumbnail({ mimetype: 'image/jpeg', data: big.toString('base64') }), null, 'over 8 KiB');
    assert.ok(withThumbnail({ mimetype: 'image/jpeg', data: big.subarray(0, 8192).toString('base64') }), '8 KiB exactly');
    assert.equal(withThumbnail({ mimetype: 'image/gif', data: jpeg.toString('base64') }), null, 'another type');
    assert.equal(withThumbnail({ mimetype: 'image/svg+xml', data: Buffer.from('<svg/>').toString('base64') }), null, 'SVG');
    assert.equal(withThumbnail({ mimetype: 'image/png', data: jpeg.toString('base64') }), null, 'bytes not what it says');
    assert.equal(withThumbnail({ mimetype: 'image/jpeg', data: `${jpeg.toString('base64')}!` }), null, 'not base64');
    assert.equal(withThumbnail({ mimetype: 'image/jpeg', data: '' }), null, 'empty');
    assert.equal(withThumbnail('a string'), null);
    assert.equal(readContent({ ...photo, msgtype: 'm.file', info: { ...photo.info, 'hark.thumbnail': { mimetype: 'image/jpeg', data: jpeg.toString('base64') } } }, { seq: 5, media }).media.preview, null, 'only photos and videos');

    // Plaintexts: an edited message is decrypted again and shown only when its content names it.
    const contents = new Map([
      ['ct-1', text('first words')],
      ['ct-2', replacement(3, text('second words'))],
      ['ct-3', replacement(9, text('words of message 9'))],
    ]);
    const e2e = { decrypt: async (m) => contents.get(m.encrypted.ciphertext) };
    const texts = new Plaintexts(e2e, () => {});
    const m = { chat_id: 7, seq: 3, sender_id: 2, sender_device: 5, client_id: 'c1', text: '', sent_at: 1, encrypted: { ciphertext: 'ct-1' } };
    texts.show(m);
    await eventually(() => texts.show(m).text === 'first words', { message: 'the first content' });
    const edit = { ...m, edited_at: 2, encrypted: { ciphertext: 'ct-2' } };
    assert.deepEqual(texts.show(edit).sealed, { state: 'opening' }, 'a new ciphertext is read again');
    await eventually(() => texts.show(edit).text === 'second words', { message: 'the edit' });
    const swapped = { ...m, edited_at: 3, encrypted: { ciphertext: 'ct-3' } };
    texts.show(swapped);
    await eventually(() => texts.show(swapped).sealed?.state === 'broken', { message: 'content naming another message refused' });
    assert.equal(texts.show(swapped).text, '');
    assert.match(texts.show(swapped).sealed.reason, /edit of another message/);
    const unnamed = { ...m, edited_at: 4, encrypted: { ciphertext: 'ct-1' } };
    texts.show(unnamed);
    await eventually(() => texts.show(unnamed).sealed?.state === 'broken', { message: 'an edited message whose content names none refused' });
    assert.match(texts.show(unnamed).sealed.reason, /does not say which message it replaces/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('the command-line client and a browser exchange encrypted files and edits', async () => {
  const config = mkdtempSync(join(tmpdir(), 'hark-web-cli-'));
  try {
    const dora = await person('dora', 'Dora Quill');
    await cli(config, ['register', 'carl', '--display-name', 'Carl Moss']);
    await cli(config, ['login', 'carl']);
    const made = /^chat (\d+):/.exec((await cli(config, ['direct', 'dora', '--encrypted'])).trim());
    assert.ok(made);
    const chat = made[1];

    // The CLI sends a photo and a file, encrypted: the browser shows and downloads them exactly.
    const photo = join(dir, 'pier.png');
    const photoBytes = png(200, 120);
    writeFileSync(photo, photoBytes);
    const data = join(dir, 'readings.dat');
    const dataBytes = randomFile(marker('readings'));
    writeFileSync(data, dataBytes);
    const photoCaption = marker('the-pier');
    await cli(config, ['send', chat, '--file', photo, photoCaption]);
    await cli(config, ['send', chat, '--file', data]);
    await chatRow(dora.page, 'Carl Moss').waitFor({ timeout: 30_000 });
    await openChat(dora.page, 'Carl Moss');
    const pic = dora.page.locator('[data-testid=msg-in]', { hasText: photoCaption });
    await pic.waitFor({ timeout: 30_000 });
    await eventually(() => pic.getByTestId('media-image').evaluate((el) => el.complete && el.naturalWidth === 200 && el.naturalHeight === 120), { message: "the CLI's photo decoded" });
    const card = dora.page.locator('[data-testid=msg-in] [data-testid=media-file]', { hasText: 'readings.dat' });
    await card.waitFor({ timeout: 30_000 });
    const saved = await download(dora.page, card.getByTestId('media-download'));
    assert.equal(saved.name, 'readings.dat');
    assert.ok(saved.bytes.equals(dataBytes), "the CLI's file byte for byte");

    // The browser sends a file; `hark download` gets its exact bytes.
    const report = join(dir, 'report.bin');
    const reportBytes = randomFile(marker('report'));
    writeFileSync(report, reportBytes);
    await sendFile(dora.page, report, 'the report');
    const chatId = await chatIdOf(dora.page);
    const seq = await eventually(
      async () => {
        const m = await newest(dora.page, chatId);
        return m?.media && m.sender_id === (await sessionOf(dora.page)).user.id && m.seq;
      },
      { message: "the browser's file on the server" },
    );
    const out = join(dir, 'report-from-cli.bin');
    await cli(config, ['download', chat, String(seq), '-o', out]);
    assert.ok(readFileSync(out).equals(reportBytes), "the browser's file byte for byte in the CLI");

    // The CLI edits its message: the browser shows the new words, marked edited.
    const first = marker('see-you-monday');
    const second = marker('see-you-tuesday');
    const said = await cli(config, ['send', chat, first]);
    const sentSeq = /\[seq (\d+)\]/.exec(said)[1];
    await dora.page.locator('[data-testid=msg-in]', { hasText: first }).waitFor({ timeout: 30_000 });
    await cli(config, ['edit', chat, sentSeq, ...second.split(' ')]);
    await dora.page.locator('[data-testid=msg-in]', { hasText: second }).getByTestId('msg-edited').waitFor({ timeout: 30_000 });
    assert.equal(await dora.page.locator('[data-testid=msg-in]', { hasText: first }).count(), 0);
    await dora.context.close();
  } finally {
    rmSync(config, { recursive: true, force: true });
  }
});

test("the command-line client's thumbnails show in the browser, and the browser's come out of `hark download --thumbnail`", async () => {
  const config = mkdtempSync(join(tmpdir(), 'hark-web-cli-'));
  try {
    const fern = await person('fern', 'Fern Gully');
    await cli(config, ['register', 'cleo', '--display-name', 'Cleo Park']);
    await cli(config, ['login', 'cleo']);
    const chat = /^chat (\d+):/.exec((await cli(config, ['direct', 'fern', '--encrypted'])).trim())[1];
    await cli(config, ['send', chat, 'hello fern']);
    await chatRow(fern.page, 'Cleo Park').waitFor({ timeout: 30_000 });
    await openChat(fern.page, 'Cleo Park');
    await fern.page.locator('[data-testid=msg-in]', { hasText: 'hello fern' }).waitFor({ timeout: 30_000 });
    const files = await holdFiles(fern.page);

    // The CLI's photo (640 × 480): its thumbnail shows in the browser before the file, in the photo's 4:3 box.
    const photo = join(dir, 'lighthouse.png');
    writeFileSync(photo, png(640, 480));
    const caption = marker('the-lighthouse');
    await cli(config, ['send', chat, '--file', photo, caption]);
    const got = fern.page.locator('[data-testid=msg-in]', { hasText: caption });
    const preview = got.getByTestId('media-preview');
    await preview.waitFor({ timeout: 30_000 });
    await eventually(() => preview.evaluate((el) => el.complete && el.naturalWidth > 0), { message: "the CLI's thumbnail decoded" });
    const facts = await previewFacts(fern.page, preview);
    assert.deepEqual([facts.width, facts.height, facts.type], [128, 96, 'image/jpeg']);
    assert.ok(facts.bytes <= 8192, `at most 8 KiB: ${facts.bytes}`);
    assert.equal(await got.getByTestId('media-image').count(), 0, 'the file itself is not here yet');
    const box = await got.getByTestId('media-photo').boundingBox();
    assert.ok(Math.abs(box.width / box.height - 4 / 3) < 0.02, `the photo's 4:3 box: ${box.width} × ${box.height}`);
    await files.release();
    await eventually(() => got.getByTestId('media-image').evaluate((el) => el.complete && el.naturalWidth === 640), { message: "the CLI's photo itself" });
    await got.getByTestId('media-preview').waitFor({ state: 'detached' });

    // The browser's photo (1000 × 600): `hark download --thumbnail` saves a JPEG of 128 × 77.
    const mine = join(dir, 'dunes.png');
    writeFileSync(mine, png(1000, 600));
    await sendFile(fern.page, mine, marker('the-dunes'));
    const chatId = await chatIdOf(fern.page);
    const me = (await sessionOf(fern.page)).user.id;
    const seq = await eventually(
      async () => {
        const m = await newest(fern.page, chatId);
        return m?.media && m.sender_id === me && m.seq;
      },
      { message: "the browser's photo on the server" },
    );
    const out = join(dir, 'dunes-thumbnail.jpg');
    const said = await cli(config, ['download', chat, String(seq), '--thumbnail', '-o', out]);
    assert.match(said, /128×77/);
    const thumbnail = readFileSync(out);
    assert.ok(thumbnail.length > 0 && thumbnail.length <= 8192, `at most 8 KiB: ${thumbnail.length}`);
    assert.deepEqual(jpegSize(thumbnail), { width: 128, height: 77 }, 'a JPEG of at most 128 px, the photo\'s shape');
    assert.equal(thumbnail.indexOf(Buffer.from('Exif')), -1, 'no EXIF in it');
    // And its size as the CLI reads it from the content.
    assert.match(await cli(config, ['history', chat]), /\[image dunes\.png, [^\]]*1000×600\]/);
    assert.deepEqual(fern.page.errors, []);
    await fern.context.close();
  } finally {
    rmSync(config, { recursive: true, force: true });
  }
});
