// Profiles: Paula writes an about line (the counter refuses 141
// characters), chooses who sees it and her photo, and sets a photo through
// the crop step (a non-square PNG made here, its square frame dragged and
// zoomed); Settings shows it. Quinn, who shares a chat with her, sees her
// small photo (128 px, from a blob: URL) in the chat list and the chat
// header, and her about line in her contact info; once she shows her photo
// to nobody, he sees her initials. Hiding the about line hides it from him
// too, and removing the photo leaves her initials.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiLogin, apiRegister, eventually, launchBrowser, login, openChat, openPage, png, register, screenshotPath, startServer } from './helpers.mjs';

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

async function openSettings(page) {
  await page.getByTestId('menu').click();
  await page.getByTestId('settings').click();
}

/** The image an avatar shows: its src and its pixels (null when it is the initials). */
function photoOf(avatar) {
  return avatar.evaluate((img) => (img.complete && img.naturalWidth > 0 ? { src: img.src, width: img.naturalWidth, height: img.naturalHeight } : null));
}

const ABOUT = 'Out sailing until Sunday ⛵';

test('about line, who sees it, a cropped photo; seen by someone who shares a chat, then hidden', async () => {
  const paula = await openPage(browser, server.url);
  const { page } = paula;
  await register(page, 'paula', 'Paula Photo', undefined, { keys: false });
  const paulaApi = await apiLogin(server.url, 'paula');
  const quinnApi = await apiRegister(server.url, 'quinn', 'Quinn');
  const chat = await quinnApi.post('/v1/chats/direct', { user_id: paulaApi.user.id });
  await quinnApi.send(chat.id, 'hi Paula');
  const theirView = () => quinnApi.get(`/v1/users/${paulaApi.user.id}/profile`);

  await openSettings(page);
  const card = page.getByTestId('profile-card');
  await page.locator('[data-testid=profile-card][data-photo=false]').waitFor();
  assert.equal(await card.getByTestId('avatar-initials').textContent(), 'PP');

  // The about line: 141 characters are too many (said, and Save stays off).
  const about = card.getByTestId('profile-about');
  await about.fill('x'.repeat(141));
  await card.getByTestId('profile-about-count').filter({ hasText: '141/140' }).waitFor();
  assert.equal(await card.getByTestId('profile-about-save').isDisabled(), true);
  await about.fill(ABOUT);
  // An emoji is one character, as the server counts them.
  await card.getByTestId('profile-about-count').filter({ hasText: `${Array.from(ABOUT).length}/140` }).waitFor();
  await card.getByTestId('profile-about-save').click();
  await card.getByTestId('profile-done').filter({ hasText: 'About saved.' }).waitFor();
  assert.equal((await paulaApi.get('/v1/me/profile')).about, ABOUT);
  assert.equal((await theirView()).about, ABOUT);

  // Who sees it: nobody, then everyone again (saved as chosen).
  await card.getByTestId('profile-about_visibility').selectOption('nobody');
  await eventually(async () => (await paulaApi.get('/v1/me/profile')).about_visibility === 'nobody', { message: 'about shown to nobody' });
  assert.equal((await theirView()).about, null);
  await card.getByTestId('profile-about_visibility').selectOption('everyone');
  await eventually(async () => (await theirView()).about === ABOUT, { message: 'about shown to everyone again' });
  await card.getByTestId('profile-photo_visibility').selectOption('contacts');
  await eventually(async () => (await paulaApi.get('/v1/me/profile')).photo_visibility === 'contacts', { message: 'photo shown to contacts' });
  await card.getByTestId('profile-photo_visibility').selectOption('everyone');
  await eventually(async () => (await paulaApi.get('/v1/me/profile')).photo_visibility === 'everyone', { message: 'photo shown to everyone' });

  // A photo: a landscape picture, its square frame zoomed and dragged to the right.
  await card.getByTestId('profile-photo-input').setInputFiles({ name: 'sunset.png', mimeType: 'image/png', buffer: png(1200, 800) });
  const dialog = page.getByTestId('crop-dialog');
  const frame = dialog.getByTestId('crop-frame');
  await frame.waitFor();
  const stage = await dialog.getByTestId('crop-stage').boundingBox();
  const start = await frame.boundingBox();
  // The frame starts as the largest centred square: the picture's height.
  assert.ok(Math.abs(start.height - stage.height) <= 1, `frame ${start.height} high in a stage ${stage.height} high`);
  assert.ok(Math.abs(start.width - start.height) <= 1, 'the frame is square');
  await dialog.getByTestId('crop-zoom').fill('1.6');
  const zoomed = await frame.boundingBox();
  assert.ok(Math.abs(zoomed.width - start.width / 1.6) <= 1.5, `zoomed frame ${zoomed.width} wide, was ${start.width}`);
  await page.mouse.move(zoomed.x + zoomed.width / 2, zoomed.y + zoomed.height / 2);
  await page.mouse.down();
  await page.mouse.move(zoomed.x + zoomed.width / 2 + 60, zoomed.y + zoomed.height / 2 + 15, { steps: 6 });
  await page.mouse.up();
  const moved = await frame.boundingBox();
  assert.ok(Math.abs(moved.x - zoomed.x - 60) <= 2 && Math.abs(moved.y - zoomed.y - 15) <= 2, `the frame moved by ${moved.x - zoomed.x}, ${moved.y - zoomed.y}`);
  await page.screenshot({ path: screenshotPath('profile-crop.png') });

  const uploads = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname === '/v1/media') uploads.push(r);
  });
  await dialog.getByTestId('crop-save').click();
  await dialog.waitFor({ state: 'detached', timeout: 20_000 });
  await page.locator('[data-testid=profile-card][data-photo=true]').waitFor();
  await card.getByTestId('profile-done').filter({ hasText: 'Photo updated.' }).waitFor();
  // What went up is the square cut here: 800 / 1.6 = 500 px.
  assert.equal(uploads.length, 1);
  assert.match(uploads[0].headers()['content-type'] ?? '', /^image\/jpeg/);
  const mine = card.getByTestId('avatar-photo');
  const shown = await eventually(() => photoOf(mine), { message: 'the photo in the Profile card' });
  assert.match(shown.src, /^blob:/);
  assert.equal(shown.width, shown.height);
  assert.equal(shown.width, 500);
  // Settings' name card shows it too, small.
  const small = await eventually(() => photoOf(page.locator('.settings-profile [data-testid=avatar-photo]')), { message: 'my photo beside my name' });
  assert.equal(small.width, 128);
  await card.scrollIntoViewIfNeeded();
  await card.screenshot({ path: screenshotPath('profile-card.png') });
  const version = (await paulaApi.get('/v1/me/profile')).photo;
  assert.ok(version);

  // Quinn: her photo in the chat list and the chat header, her about line in her info.
  const quinn = await openPage(browser, server.url);
  const q = quinn.page;
  const photoRequests = [];
  q.on('request', (r) => {
    if (/\/v1\/users\/\d+\/photo/.test(r.url())) photoRequests.push(r.url());
  });
  await login(q, 'quinn', undefined, { keys: false });
  const row = q.locator('[data-testid=chat-row]', { has: q.locator('[data-testid=chat-title]', { hasText: 'Paula Photo' }) });
  const inRow = await eventually(() => photoOf(row.getByTestId('avatar-photo')), { message: 'her photo in the chat list' });
  assert.match(inRow.src, /^blob:/);
  assert.equal(inRow.width, 128);
  assert.equal(inRow.height, 128);
  await openChat(q, 'Paula Photo');
  const chatHeader = q.locator('.chat-header');
  const inHeader = await eventually(() => photoOf(chatHeader.getByTestId('avatar-photo')), { message: 'her photo in the chat header' });
  assert.match(inHeader.src, /^blob:/);
  assert.equal(inHeader.width, 128);
  await q.getByTestId('chat-info').click();
  await q.getByTestId('info-about').filter({ hasText: ABOUT }).waitFor();
  await eventually(() => photoOf(q.locator('[data-testid=info-panel] .info-head [data-testid=avatar-photo]')), { message: 'her photo in her contact info' });
  await q.screenshot({ path: screenshotPath('profile-contact-info.png') });
  await q.getByTestId('panel-close').click();
  await chatHeader.screenshot({ path: screenshotPath('profile-chat-header.png') });
  // Each size fetched once, however often it was drawn.
  const smallFetches = photoRequests.filter((u) => u.includes('size=small'));
  assert.equal(smallFetches.length, 1, `small photo fetched ${smallFetches.length} times`);

  // Paula shows her photo to nobody: Quinn sees her initials once he looks again.
  await card.getByTestId('profile-photo_visibility').selectOption('nobody');
  await eventually(async () => (await theirView()).photo === null, { message: 'her photo hidden from Quinn' });
  // (Looking again within half a second of the last answer shows that answer: look until it is newer.)
  await eventually(
    async () => {
      if (await q.getByTestId('info-panel').count()) await q.getByTestId('panel-close').click();
      await q.getByTestId('chat-info').click();
      return (await chatHeader.getByTestId('avatar-initials').filter({ hasText: 'PP' }).count()) === 1;
    },
    { interval: 600, message: 'her initials in the chat header' },
  );
  assert.equal(await chatHeader.getByTestId('avatar-photo').count(), 0);
  await row.getByTestId('avatar-initials').waitFor();
  await q.getByTestId('panel-close').click();
  await chatHeader.screenshot({ path: screenshotPath('profile-chat-header-hidden.png') });
  // She still sees her own.
  assert.ok(await photoOf(card.getByTestId('avatar-photo')));

  // Removing it leaves her initials.
  await card.getByTestId('profile-photo-remove').click();
  await page.getByTestId('confirm-ok').click();
  await page.locator('[data-testid=profile-card][data-photo=false]').waitFor();
  await card.getByTestId('avatar-initials').waitFor();
  assert.equal((await paulaApi.get('/v1/me/profile')).photo, null);

  assert.deepEqual(page.errors, []);
  assert.deepEqual(q.errors, []);
  await paula.context.close();
  await quinn.context.close();
});

test('a file that is not a picture is refused in the crop step', async () => {
  const { context, page } = await openPage(browser, server.url);
  await register(page, 'rita', 'Rita', undefined, { keys: false });
  await openSettings(page);
  const card = page.getByTestId('profile-card');
  await page.locator('[data-testid=profile-card][data-photo=false]').waitFor();
  await card.getByTestId('profile-photo-input').setInputFiles({ name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not a picture at all') });
  await page.getByTestId('crop-error').waitFor();
  assert.equal(await page.getByTestId('crop-save').isDisabled(), true);
  await page.keyboard.press('Escape');
  await page.getByTestId('crop-dialog').waitFor({ state: 'detached' });
  assert.equal(await page.locator('[data-testid=profile-card][data-photo=false]').count(), 1);
  assert.deepEqual(page.errors, []);
  await context.close();
});
