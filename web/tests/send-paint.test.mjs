// Sending paints a message once: the queued copy gives way to the
// confirmed one in the same frame, never both at once (the message's own
// event can arrive before its ack). And a message's menu is reachable
// without hovering (right click; Enter on a focused message) and closes
// with Escape.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiRegister, launchBrowser, openPage, register, startDirect, startServer } from './helpers.mjs';

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

test('twenty sends, each painted once; the message menu without hover', async () => {
  await apiRegister(server.url, 'bob', 'Bob');
  const { context, page } = await openPage(browser, server.url);
  await register(page, 'alice', 'Alice');
  await startDirect(page, 'bob');
  // Count, every frame and after every DOM change, the bubbles per text.
  await page.evaluate(() => {
    window.maxCopies = 0;
    const count = () => {
      const seen = new Map();
      for (const el of document.querySelectorAll('[data-testid=msg-out] [data-testid=msg-text]')) {
        const t = el.textContent;
        seen.set(t, (seen.get(t) ?? 0) + 1);
        window.maxCopies = Math.max(window.maxCopies, seen.get(t));
      }
    };
    new MutationObserver(count).observe(document.body, { childList: true, subtree: true, characterData: true });
    const frame = () => {
      count();
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  });
  const box = page.getByTestId('composer');
  for (let i = 1; i <= 20; i++) {
    await box.fill(`paint check ${i}`);
    await box.press('Enter');
  }
  await page.locator('[data-testid=msg-out]', { hasText: 'paint check 20' }).locator('[data-status=sent], [data-status=delivered], [data-status=read]').waitFor();
  await page.waitForTimeout(200);
  assert.equal(await page.locator('[data-testid=msg-out]').count(), 20);
  assert.equal(await page.evaluate(() => window.maxCopies), 1, 'no message was ever painted twice');

  // The menu: right click opens it, Escape closes it.
  const bubble = page.locator('[data-testid=msg-out]', { hasText: 'paint check 3' });
  await bubble.click({ button: 'right' });
  await page.getByTestId('msg-menu-list').waitFor();
  await page.keyboard.press('Escape');
  await page.getByTestId('msg-menu-list').waitFor({ state: 'detached' });
  // Enter on the focused message opens it too.
  await bubble.focus();
  await page.keyboard.press('Enter');
  await page.getByTestId('msg-menu-list').getByTestId('reply').waitFor();
  await page.keyboard.press('Escape');
  await page.getByTestId('msg-menu-list').waitFor({ state: 'detached' });
  assert.equal(await page.evaluate(() => document.activeElement?.textContent?.includes('paint check 3')), true, 'focus back on the message');
  assert.deepEqual(page.errors, []);
  await context.close();
});
