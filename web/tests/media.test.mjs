// Media in the browser: Alice attaches a photo with a caption and sends it;
// Bob sees it inline (really decoded) with the caption, opens it full size
// and closes it. Alice sends a text file; Bob sees its name and size and
// downloads it, byte for byte. A file that is not what it claims is refused
// with the server's reason, and the draft stays. Files also come by drag and
// drop and by pasting. A phone shows them from history without sideways
// scrolling.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import {
  apiRegister,
  chatRow,
  eventually,
  expectStatus,
  launchBrowser,
  login,
  openChat,
  openPage,
  overflowingElements,
  PHONE,
  screenshotPath,
  startDirect,
  startServer,
} from './helpers.mjs';

let server;
let browser;
let dir;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  dir = mkdtempSync(join(tmpdir(), 'hark-media-test-'));
});

after(async () => {
  await browser?.close();
  await server?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A real PNG of `width` × `height`: an evening sky over a sea, with a sun. */
function png(width, height) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bits per channel
  header[9] = 2; // RGB
  const rows = Buffer.alloc((width * 3 + 1) * height);
  const horizon = Math.round(height * 0.62);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    for (let x = 0; x < width; x++) {
      const t = y / horizon;
      let rgb =
        y < horizon ? [Math.round(40 + 215 * t), Math.round(60 + 90 * t), Math.round(140 - 60 * t)] : [20, Math.round(70 + (y - horizon) * 0.4), 110];
      const d = Math.hypot(x - width * 0.6, y - horizon);
      if (d < height * 0.18 && y < horizon) rgb = [255, 214, 90];
      rows.set(rgb, row + 1 + x * 3);
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

test('a photo with a caption and a file, sent, seen, opened and downloaded', async () => {
  const photo = join(dir, 'sunset.png');
  writeFileSync(photo, png(480, 320));
  const notes = join(dir, 'notes.txt');
  const notesBytes = Buffer.from('Hark media test: these bytes must come back unchanged.\n'.repeat(30));
  writeFileSync(notes, notesBytes);
  const fake = join(dir, 'fake.png');
  writeFileSync(fake, 'not a picture at all, only text');

  await apiRegister(server.url, 'alice', 'Alice');
  await apiRegister(server.url, 'bob', 'Bob');
  const alice = await openPage(browser, server.url);
  const bob = await openPage(browser, server.url);
  await login(alice.page, 'alice');
  await login(bob.page, 'bob');
  await startDirect(alice.page, 'bob');

  // A file that is not the image it claims to be: the server's reason shows, the caption stays.
  await alice.page.getByTestId('file-input').setInputFiles(fake);
  await alice.page.getByTestId('attachment-name').filter({ hasText: 'fake.png' }).waitFor();
  await alice.page.getByTestId('composer').fill('Keep this caption');
  await alice.page.getByTestId('composer').press('Enter');
  const refused = await alice.page.getByTestId('upload-error').textContent();
  assert.match(refused, /Couldn't send it: .+/);
  assert.equal(await alice.page.getByTestId('composer').inputValue(), 'Keep this caption');
  assert.equal(await alice.page.locator('[data-testid=msg-out]').count(), 0);

  // The photo instead, with a caption: previewed, uploaded, sent with ticks.
  await alice.page.getByTestId('file-input').setInputFiles(photo);
  await alice.page.getByTestId('attachment-name').filter({ hasText: 'sunset.png' }).waitFor();
  assert.equal(await alice.page.getByTestId('upload-error').count(), 0, 'a new file clears the old error');
  await alice.page.getByTestId('composer').fill('Look at this sunset');
  await alice.page.getByTestId('send').click();
  await alice.page.getByTestId('attachment').waitFor({ state: 'detached' });
  assert.equal(await alice.page.getByTestId('composer').inputValue(), '');
  const sentPhoto = alice.page.locator('[data-testid=msg-out]', { hasText: 'Look at this sunset' });
  await sentPhoto.getByTestId('media-image').waitFor();

  // Bob sees the photo decoded, with the caption, and the list's preview.
  await eventually(async () => (await chatRow(bob.page, 'Alice').getByTestId('chat-preview').textContent()) === '📷 Look at this sunset', {
    message: "Bob's chat list preview of the photo",
  });
  await openChat(bob.page, 'Alice');
  const got = bob.page.locator('[data-testid=msg-in]', { hasText: 'Look at this sunset' });
  const img = got.getByTestId('media-image');
  await img.waitFor();
  await eventually(() => img.evaluate((el) => el.complete && el.naturalWidth === 480 && el.naturalHeight === 320), { message: 'the photo decoded' });
  const box = await got.getByTestId('media-photo').boundingBox();
  assert.ok(box.width <= 321 && Math.abs(box.width / box.height - 1.5) < 0.02, `the photo keeps its shape: ${JSON.stringify(box)}`);
  await expectStatus(alice.page, 'Look at this sunset', 'read');

  // Full size, closed with Escape; again, closed with a click.
  await got.getByTestId('media-open').click();
  const viewer = bob.page.getByTestId('media-viewer');
  await viewer.waitFor();
  await eventually(() => bob.page.getByTestId('media-viewer-image').evaluate((el) => el.naturalWidth === 480), { message: 'the viewer shows the photo' });
  const full = await bob.page.getByTestId('media-viewer-image').boundingBox();
  assert.ok(full.width > box.width, 'full size is larger than the bubble');
  await bob.page.screenshot({ path: screenshotPath('media-viewer.png') });
  await bob.page.keyboard.press('Escape');
  await viewer.waitFor({ state: 'detached' });
  await got.getByTestId('media-open').click();
  await viewer.waitFor();
  await bob.page.getByTestId('media-viewer-image').click();
  await viewer.waitFor({ state: 'detached' });

  // A file without a caption: its name and size, then a download of the same bytes.
  await alice.page.getByTestId('file-input').setInputFiles(notes);
  await alice.page.getByTestId('attachment-name').filter({ hasText: 'notes.txt' }).waitFor();
  await alice.page.getByTestId('send').click();
  await alice.page.locator('[data-testid=msg-out] [data-testid=media-file-name]', { hasText: 'notes.txt' }).waitFor();
  const card = bob.page.locator('[data-testid=msg-in] [data-testid=media-file]', { hasText: 'notes.txt' });
  await card.waitFor();
  assert.equal(notesBytes.length, 1650);
  assert.equal(await card.getByTestId('media-file-size').textContent(), '1.6 KB · TXT');
  await eventually(async () => (await chatRow(bob.page, 'Alice').getByTestId('chat-preview').textContent()) === '📄 notes.txt', {
    message: "Bob's chat list preview of the file",
  });
  const [download] = await Promise.all([bob.page.waitForEvent('download'), card.getByTestId('media-download').click()]);
  assert.equal(download.suggestedFilename(), 'notes.txt');
  assert.deepEqual(readFileSync(await download.path()), notesBytes);

  // A file dragged onto the chat: a drop zone, then the attachment.
  const pane = alice.page.getByTestId('chat-pane');
  const dropped = await alice.page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(['dropped bytes'], 'dropped.txt', { type: 'text/plain' }));
    return dt;
  });
  await pane.dispatchEvent('dragenter', { dataTransfer: dropped });
  await alice.page.getByTestId('drop-zone').waitFor();
  await pane.dispatchEvent('drop', { dataTransfer: dropped });
  await alice.page.getByTestId('drop-zone').waitFor({ state: 'detached' });
  await alice.page.getByTestId('attachment-name').filter({ hasText: 'dropped.txt' }).waitFor();
  await alice.page.getByTestId('attachment-remove').click();
  await alice.page.getByTestId('attachment').waitFor({ state: 'detached' });

  // An image pasted into the composer (a screenshot), sent without a caption.
  const pngBase64 = png(90, 160).toString('base64');
  await alice.page.getByTestId('composer').evaluate((box, b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], 'image.png', { type: 'image/png' }));
    box.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  }, pngBase64);
  await alice.page.getByTestId('attachment-name').filter({ hasText: 'image.png' }).waitFor();
  await alice.page.getByTestId('composer').press('Enter');
  const tall = bob.page.locator('[data-testid=msg-in] [data-testid=media-image]').nth(1);
  await eventually(() => tall.evaluate((el) => el.complete && el.naturalWidth === 90 && el.naturalHeight === 160), { message: 'the pasted photo' });
  await eventually(async () => (await chatRow(bob.page, 'Alice').getByTestId('chat-preview').textContent()) === '📷 Photo', {
    message: "Bob's chat list preview of a photo without a caption",
  });

  await alice.page.screenshot({ path: screenshotPath('media-alice.png') });
  await bob.page.screenshot({ path: screenshotPath('media-bob.png') });

  // Bob on a phone (a new device): both come with the history, nothing scrolls sideways.
  const phone = await openPage(browser, server.url, PHONE);
  await login(phone.page, 'bob');
  await openChat(phone.page, 'Alice');
  const phoneImg = phone.page.locator('[data-testid=msg-in] [data-testid=media-image]').first();
  await eventually(() => phoneImg.evaluate((el) => el.complete && el.naturalWidth === 480), { message: 'the photo on the phone' });
  await phone.page.locator('[data-testid=msg-in] [data-testid=media-file-name]', { hasText: 'notes.txt' }).waitFor();
  assert.deepEqual(await overflowingElements(phone.page), []);
  await phone.page.getByTestId('file-input').setInputFiles(photo);
  await phone.page.getByTestId('attachment').waitFor();
  assert.deepEqual(await overflowingElements(phone.page), []);
  await phone.page.screenshot({ path: screenshotPath('media-phone.png') });
  await phone.page.getByTestId('attachment-remove').click();
  await phone.page.getByTestId('attachment').waitFor({ state: 'detached' });

  assert.deepEqual(alice.page.errors, []);
  assert.deepEqual(bob.page.errors, []);
  assert.deepEqual(phone.page.errors, []);
  await alice.context.close();
  await bob.context.close();
  await phone.context.close();
});
