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

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
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
