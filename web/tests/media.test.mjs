// Media in the browser: Alice attaches a photo with a caption and sends it;
// Bob sees it inline (really decoded) with the caption, opens it full size
// and closes it. Alice sends a text file; Bob sees its name and size and
// downloads it, byte for byte. A file that is not what it claims is refused
// with the server's reason, and the draft stays. Files also come by drag and
// drop and by pasting. A phone shows them from history without sideways
// scrolling. A large photo shows in the receiver's bubble from its thumbnail
// (`GET /v1/media/{id}/thumbnail`, token in the header), and its file is
// fetched only when the viewer opens, which shows the thumbnail blurred until
// then; on a desktop and on a phone. A photo without a thumbnail (an older
// upload) or whose thumbnail fails shows from its file, as before.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
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
  waitLive,
  png,
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

/** Every request `page` makes under /v1/media/: its path, query and Authorization header. */
function mediaRequests(page) {
  const seen = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/v1/media')) seen.push({ method: r.method(), path: u.pathname, query: u.search, auth: r.headers().authorization ?? null });
  });
  return seen;
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Serious and critical axe-core violations on the page, as "rule: target" strings. */
async function axe(page) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .flatMap((v) => v.nodes.map((n) => `${v.id}: ${n.target.join(' ')}`));
}

/** The GET paths among `seen`. */
const gets = (seen) => seen.filter((r) => r.method === 'GET').map((r) => r.path);

/** A bubble image's decoded size, once decoded (else null). */
const naturalSize = (img) => img.evaluate((el) => (el.complete && el.naturalWidth ? { width: el.naturalWidth, height: el.naturalHeight } : null));

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
  await startDirect(alice.page, 'bob', { encrypted: false });

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

test('a large photo: its thumbnail in the bubble, blurred in the viewer until the file is here', async () => {
  const photo = join(dir, 'harbour.png');
  writeFileSync(photo, png(1200, 900, { grain: 6 }));

  await apiRegister(server.url, 'carol', 'Carol');
  const daveApi = await apiRegister(server.url, 'dave', 'Dave');
  const carol = await openPage(browser, server.url);
  const dave = await openPage(browser, server.url);
  const carolSeen = mediaRequests(carol.page);
  const daveSeen = mediaRequests(dave.page);
  await login(carol.page, 'carol');
  await login(dave.page, 'dave');
  await startDirect(carol.page, 'dave', { encrypted: false });

  // Carol sends it; the message carries the thumbnail's description.
  await carol.page.getByTestId('file-input').setInputFiles(photo);
  await carol.page.getByTestId('attachment-name').filter({ hasText: 'harbour.png' }).waitFor();
  await carol.page.getByTestId('composer').fill('The harbour at noon');
  await carol.page.getByTestId('send').click();
  const ref = await eventually(async () => (await daveApi.get('/v1/chats'))[0]?.last_message?.media, { message: 'the message on the server' });
  assert.equal(ref.kind, 'image');
  assert.deepEqual([ref.width, ref.height], [1200, 900]);
  assert.ok(ref.thumbnail, `a thumbnail: ${JSON.stringify(ref)}`);
  assert.equal(ref.thumbnail.mime, 'image/jpeg', 'an opaque PNG gets a JPEG thumbnail');
  assert.deepEqual([ref.thumbnail.width, ref.thumbnail.height], [480, 360]);
  assert.ok(ref.thumbnail.size < ref.size / 4, `the thumbnail is much smaller: ${ref.thumbnail.size} of ${ref.size} bytes`);
  const filePath = `/v1/media/${ref.id}`;
  const thumbPath = `/v1/media/${ref.id}/thumbnail`;

  // Carol's own bubble shows the bytes she has: nothing fetched back.
  const sent = carol.page.locator('[data-testid=msg-out]', { hasText: 'The harbour at noon' });
  await eventually(async () => (await naturalSize(sent.getByTestId('media-image')))?.width === 1200, { message: "Carol's photo from her own bytes" });
  assert.deepEqual(gets(carolSeen), [], 'the sender fetches neither the file nor its thumbnail');

  // Dave's chat list fetches nothing; his bubble, the thumbnail only, with the token in a header.
  await eventually(async () => (await chatRow(dave.page, 'Carol').getByTestId('chat-preview').textContent()) === '📷 The harbour at noon', {
    message: "Dave's chat list preview",
  });
  assert.deepEqual(gets(daveSeen), [], 'the chat list shows no image');
  await openChat(dave.page, 'Carol');
  const got = dave.page.locator('[data-testid=msg-in]', { hasText: 'The harbour at noon' });
  const img = got.getByTestId('media-image');
  const size = await eventually(() => naturalSize(img), { message: "Dave's bubble image decoded" });
  assert.deepEqual(size, { width: ref.thumbnail.width, height: ref.thumbnail.height }, 'the bubble shows the thumbnail');
  assert.equal(await img.getAttribute('data-source'), 'thumbnail');
  assert.equal(await img.getAttribute('alt'), 'harbour.png');
  assert.deepEqual(gets(daveSeen), [thumbPath], 'the bubble fetched the thumbnail, not the file');
  for (const r of daveSeen) {
    assert.match(r.auth ?? '', /^Bearer \S+$/, 'the token goes in the Authorization header');
    assert.equal(r.query, '', 'nothing in the URL');
  }
  const bubble = await got.getByTestId('media-photo').boundingBox();
  assert.ok(bubble.width <= 321 && Math.abs(bubble.width / bubble.height - 4 / 3) < 0.02, `the bubble has the photo's shape: ${JSON.stringify(bubble)}`);
  await dave.page.screenshot({ path: screenshotPath('media-thumbnail-bubble.png') });

  // The viewer: the file is held back, so the blurred thumbnail shows in the photo's frame first.
  let release;
  const held = new Promise((r) => (release = r));
  const isFile = (url) => url.pathname === filePath;
  await dave.page.route(isFile, async (route) => {
    await held;
    await route.continue();
  });
  await got.getByTestId('media-open').click();
  await dave.page.getByTestId('media-viewer').waitFor();
  const placeholder = dave.page.getByTestId('media-viewer-placeholder');
  await eventually(async () => (await naturalSize(placeholder))?.width === 480, { message: 'the blurred thumbnail in the viewer' });
  assert.match(await placeholder.evaluate((el) => getComputedStyle(el).filter), /blur\(\d+(\.\d+)?px\)/);
  assert.equal(await placeholder.getAttribute('alt'), '', 'the placeholder is decoration');
  await dave.page.getByTestId('media-viewer-loading').waitFor();
  const frame = await dave.page.getByTestId('media-viewer-frame').boundingBox();
  assert.ok(frame.width > bubble.width * 1.5 && Math.abs(frame.width / frame.height - 4 / 3) < 0.01, `the frame is the photo's, full size: ${JSON.stringify(frame)}`);
  const blurred = await placeholder.boundingBox();
  assert.ok(blurred.width >= frame.width, 'the thumbnail is scaled up to the frame');
  await eventually(() => gets(daveSeen).includes(filePath), { message: 'the viewer asks for the file' });
  assert.equal(gets(daveSeen).filter((p) => p === thumbPath).length, 1, 'the thumbnail was not fetched again');
  assert.deepEqual(await axe(dave.page), [], 'the viewer while loading');
  await dave.page.screenshot({ path: screenshotPath('media-viewer-placeholder.png') });

  // The bytes come: the full image takes the frame's place, the placeholder goes.
  release();
  const full = dave.page.getByTestId('media-viewer-image');
  await eventually(async () => (await naturalSize(full))?.width === 1200, { message: 'the full image in the viewer' });
  await placeholder.waitFor({ state: 'detached' });
  assert.equal(await dave.page.getByTestId('media-viewer-loading').count(), 0);
  assert.equal(await full.evaluate((el) => getComputedStyle(el).opacity), '1');
  assert.equal(await full.getAttribute('alt'), 'harbour.png');
  const shown = await full.boundingBox();
  for (const k of ['x', 'y', 'width', 'height']) assert.ok(Math.abs(shown[k] - frame[k]) < 1, `the full image is where the placeholder was (${k}: ${shown[k]} vs ${frame[k]})`);
  assert.deepEqual(await axe(dave.page), [], 'the viewer with the full image');
  await dave.page.screenshot({ path: screenshotPath('media-viewer-full.png') });
  await dave.page.keyboard.press('Escape');
  await dave.page.getByTestId('media-viewer').waitFor({ state: 'detached' });
  await dave.page.unroute(isFile);
  // Opened again from the keyboard: the file is kept, so it shows at once; focus goes to Close and back.
  await got.getByTestId('media-open').focus();
  await dave.page.keyboard.press('Enter');
  await eventually(async () => (await naturalSize(full))?.width === 1200, { message: 'the full image again' });
  assert.equal(await dave.page.getByTestId('media-viewer-placeholder').count(), 0, 'no placeholder for kept bytes');
  assert.equal(await dave.page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'media-viewer-close');
  await dave.page.keyboard.press('Escape');
  await dave.page.getByTestId('media-viewer').waitFor({ state: 'detached' });
  assert.equal(await dave.page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'media-open');
  assert.equal(gets(daveSeen).filter((p) => p === filePath).length, 1, 'the file was fetched once');

  // Dave on a phone: the same from history, the viewer as wide as the screen.
  const phone = await openPage(browser, server.url, PHONE);
  const phoneSeen = mediaRequests(phone.page);
  await login(phone.page, 'dave');
  await openChat(phone.page, 'Carol');
  const phoneImg = phone.page.locator('[data-testid=msg-in] [data-testid=media-image]').first();
  assert.deepEqual(await eventually(() => naturalSize(phoneImg), { message: 'the thumbnail on the phone' }), { width: 480, height: 360 });
  assert.deepEqual(gets(phoneSeen), [thumbPath]);
  assert.deepEqual(await overflowingElements(phone.page), []);
  await phone.page.screenshot({ path: screenshotPath('media-thumbnail-phone.png') });
  await phone.page.locator('[data-testid=msg-in] [data-testid=media-open]').first().tap();
  const phoneFull = phone.page.getByTestId('media-viewer-image');
  await eventually(async () => (await naturalSize(phoneFull))?.width === 1200, { message: 'the full image on the phone' });
  await phone.page.getByTestId('media-viewer-placeholder').waitFor({ state: 'detached' });
  const phoneFrame = await phone.page.getByTestId('media-viewer-frame').boundingBox();
  assert.ok(Math.abs(phoneFrame.width - 390) < 1 && Math.abs(phoneFrame.height - 292.5) < 1, `the whole width: ${JSON.stringify(phoneFrame)}`);
  assert.deepEqual(gets(phoneSeen), [thumbPath, filePath]);
  await phone.page.screenshot({ path: screenshotPath('media-viewer-phone.png') });
  await phone.page.getByTestId('media-viewer-close').tap();
  await phone.page.getByTestId('media-viewer').waitFor({ state: 'detached' });

  // A browser that sees no thumbnail (as for an older upload): the bubble shows the file, as before.
  const old = await openPage(browser, server.url);
  const oldSeen = mediaRequests(old.page);
  const strip = async (route) => {
    const res = await route.fetch();
    const body = await res.json();
    const drop = (v) => {
      if (Array.isArray(v)) v.forEach(drop);
      else if (v && typeof v === 'object') {
        if (v.media && typeof v.media === 'object') delete v.media.thumbnail;
        Object.values(v).forEach(drop);
      }
    };
    drop(body);
    await route.fulfill({ response: res, json: body });
  };
  const isChats = (url) => /^\/v1\/chats(\/\d+(\/messages)?)?$/.test(url.pathname);
  await old.page.route(isChats, strip);
  await login(old.page, 'dave');
  await openChat(old.page, 'Carol');
  const oldImg = old.page.locator('[data-testid=msg-in] [data-testid=media-image]').first();
  assert.deepEqual(await eventually(() => naturalSize(oldImg), { message: 'the file without a thumbnail' }), { width: 1200, height: 900 });
  assert.equal(await oldImg.getAttribute('data-source'), 'file');
  assert.deepEqual(gets(oldSeen), [filePath]);
  await old.page.locator('[data-testid=msg-in] [data-testid=media-open]').first().click();
  await eventually(async () => (await naturalSize(old.page.getByTestId('media-viewer-image')))?.width === 1200, { message: 'the viewer without a thumbnail' });
  assert.equal(await old.page.getByTestId('media-viewer-placeholder').count(), 0);
  assert.deepEqual(gets(oldSeen), [filePath], 'the viewer uses the bytes the bubble has');
  await old.page.keyboard.press('Escape');

  // A thumbnail that cannot be fetched: the file instead, no error shown.
  await old.page.unroute(isChats);
  await old.page.route((url) => url.pathname === thumbPath, (route) =>
    route.fulfill({ status: 404, json: { error: { code: 'not_found', message: 'not found' } } }),
  );
  oldSeen.length = 0;
  await old.page.reload();
  await waitLive(old.page);
  await openChat(old.page, 'Carol');
  assert.deepEqual(await eventually(() => naturalSize(oldImg), { message: 'the file after the thumbnail failed' }), { width: 1200, height: 900 });
  assert.equal(await old.page.getByTestId('media-retry').count(), 0);
  assert.deepEqual(gets(oldSeen), [thumbPath, filePath]);

  assert.deepEqual(carol.page.errors, []);
  assert.deepEqual(dave.page.errors, []);
  assert.deepEqual(phone.page.errors, []);
  assert.deepEqual(old.page.errors, []);
  await carol.context.close();
  await dave.context.close();
  await phone.context.close();
  await old.context.close();
});
