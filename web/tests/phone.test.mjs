// Phones and narrow windows: one pane at a time (list → chat → info) with a
// back button and the browser's back button, a conversation that gets the
// width, no horizontal scrolling at 320 px, 44 px touch targets, a composer
// above the on-screen keyboard, and no overlap at 760 px with group info open.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  apiRegister,
  launchBrowser,
  openPage,
  overflowingElements,
  PHONE,
  register,
  screenshotPath,
  sendMessage,
  smallTargets,
  startServer,
} from './helpers.mjs';

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

const box = (page, testid) => page.getByTestId(testid).boundingBox();

test('on a phone: list → chat → info and back, full-width chat, big targets, no sideways scroll', async () => {
  const bob = await apiRegister(server.url, 'bob', 'Bob Chen');
  const carol = await apiRegister(server.url, 'carol', 'Carol Diaz');
  const { context, page } = await openPage(browser, server.url, PHONE);
  await register(page, 'alice', 'Alice Martin');
  const group = await bob.post('/v1/chats/groups', { title: 'Weekend trip', members: [carol.user.id, (await bob.get('/v1/users?q=alice'))[0].id] });
  await bob.send(group.id, 'Who is in for the lake on Saturday? Bring sunscreen and a good book.');
  assert.deepEqual(await overflowingElements(page), [], 'list: nothing sticks out');

  // The list fills the screen; opening a chat replaces it.
  await page.getByTestId('chat-row').first().click();
  await page.getByTestId('chat-pane').waitFor();
  assert.equal(await page.getByTestId('chat-list').isVisible(), false, 'the list is hidden behind the chat');
  const chat = await box(page, 'chat-pane');
  assert.ok(chat.width >= 300, `the conversation is ${chat.width} px wide`);
  assert.equal(chat.width, 390);
  const bubble = await page.getByTestId('msg-in').first().boundingBox();
  assert.ok(bubble.width > 200, `a bubble is ${bubble.width} px wide`);
  const composer = await box(page, 'composer');
  assert.ok(composer.height >= 40 && composer.width > 250, `composer ${composer.width}x${composer.height}`);
  assert.deepEqual(await smallTargets(page, '[data-testid=chat-pane]'), [], 'chat: touch targets');
  await sendMessage(page, 'Me! I will bring the kayak.');
  await page.locator('[data-testid=msg-out] [data-status=read], [data-testid=msg-out] [data-status=delivered], [data-testid=msg-out] [data-status=sent]').first().waitFor();

  // Info is a third screen; the browser's back button walks back.
  await page.getByTestId('chat-info').click();
  await page.getByTestId('info-panel').waitFor();
  assert.equal(await page.getByTestId('chat-pane').isVisible(), false);
  assert.equal((await box(page, 'info-panel')).width, 390);
  assert.deepEqual(await smallTargets(page, '[data-testid=info-panel]'), [], 'info: touch targets');
  await page.goBack();
  await page.getByTestId('chat-pane').waitFor({ state: 'visible' });
  assert.equal(await page.getByTestId('info-panel').count(), 0);
  await page.goBack();
  await page.getByTestId('chat-list').waitFor({ state: 'visible' });
  assert.equal(await page.getByTestId('chat-pane').count(), 0);

  // The app's own back button does the same (and keeps history in step).
  await page.getByTestId('chat-row').first().click();
  await page.getByTestId('chat-back').click();
  await page.getByTestId('chat-list').waitFor({ state: 'visible' });
  assert.deepEqual(await smallTargets(page, '.sidebar'), [], 'list: touch targets');

  // 320 px wide: every screen, nothing scrolls sideways.
  await page.setViewportSize({ width: 320, height: 640 });
  assert.deepEqual(await overflowingElements(page), [], 'list at 320');
  await page.getByTestId('chat-row').first().click();
  await page.getByTestId('composer').waitFor();
  assert.deepEqual(await overflowingElements(page), [], 'chat at 320');
  await page.screenshot({ path: screenshotPath('chat-320.png') });
  assert.equal((await box(page, 'chat-pane')).width, 320);
  await page.getByTestId('chat-info').click();
  await page.getByTestId('info-panel').waitFor();
  assert.deepEqual(await overflowingElements(page), [], 'info at 320');
  await page.screenshot({ path: screenshotPath('group-info-320.png') });
  await page.goBack();
  await page.getByTestId('chat-pane').waitFor({ state: 'visible' });

  // An on-screen keyboard shrinks the visual viewport: the composer stays above it.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByTestId('composer').click();
  await page.evaluate(() => {
    Object.defineProperty(window.visualViewport, 'height', { configurable: true, get: () => 500 });
    window.visualViewport.dispatchEvent(new Event('resize'));
  });
  const above = await box(page, 'composer');
  assert.ok(above.y + above.height <= 500, `composer bottom at ${above.y + above.height}, keyboard from 500`);
  assert.ok(above.y > 300, 'and it sits just above the keyboard');
  await page.evaluate(() => {
    delete window.visualViewport.height;
    window.visualViewport.dispatchEvent(new Event('resize'));
  });

  assert.deepEqual(page.errors, []);
  await context.close();
});

test('a 760 px window with group info open: nothing overlaps', async () => {
  const { context, page } = await openPage(browser, server.url, { viewport: { width: 760, height: 800 } });
  await register(page, 'dave', 'Dave Okafor');
  const bob = await apiRegister(server.url, 'erin', 'Erin');
  const dave = (await bob.get('/v1/users?q=dave'))[0];
  const g = await bob.post('/v1/chats/groups', { title: 'A group with a rather long title', members: [dave.id] });
  await bob.send(g.id, 'hello');
  await page.getByTestId('chat-row').first().click();
  await page.getByTestId('chat-info').click();
  await page.getByTestId('info-panel').waitFor();
  const panel = await box(page, 'info-panel');
  assert.ok(panel.width >= 300, `panel ${panel.width}`);
  // The header's parts do not overlap one another.
  const parts = await page.evaluate(() =>
    [...document.querySelectorAll('.chat-header > *')].map((e) => e.getBoundingClientRect()).filter((r) => r.width > 0).map((r) => [r.left, r.right]),
  );
  for (let i = 1; i < parts.length; i++) assert.ok(parts[i][0] >= parts[i - 1][1] - 0.5, `header parts overlap: ${JSON.stringify(parts)}`);
  assert.deepEqual(await overflowingElements(page), []);
  await page.screenshot({ path: screenshotPath('group-info-760.png') });
  await page.setViewportSize({ width: 1280, height: 800 });
  const chat = await box(page, 'chat-pane');
  assert.ok(chat.width >= 400, `at 1280 the chat keeps ${chat.width} px beside the panel`);
  assert.deepEqual(page.errors, []);
  await context.close();
});
