// Everything people type is rendered as text: HTML in a message, a display
// name and a group title shows literally, injects no element, runs no script.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  chatRow,
  launchBrowser,
  openChat,
  openPage,
  register,
  screenshotPath,
  sendMessage,
  startDirect,
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

const EVIL_NAME = '<img src=x onerror="window.__xss=1;alert(1)">Mallory';
const EVIL_TITLE = '<script>window.__xss=2</script><b>bold</b> group';
const EVIL_TEXTS = [
  '<img src=x onerror="window.__xss=3;alert(3)">',
  '<svg onload="window.__xss=4"></svg><iframe src="javascript:alert(4)"></iframe>',
  '"><script>alert(5)</script>&lt;not an entity&gt; &amp;',
];

/** Elements that user text could have smuggled in; the app itself renders none of them. */
async function injected(page) {
  return page.evaluate(() => ({
    elements: document.querySelectorAll('#app img, #app iframe, #app script, #app b, #app object, #app embed').length,
    svgWithHandlers: [...document.querySelectorAll('#app svg')].filter((s) => s.getAttribute('onload')).length,
    flag: window.__xss ?? null,
  }));
}

test('HTML in messages, names and titles renders as literal text', async () => {
  const mallory = await openPage(browser, server.url);
  const victim = await openPage(browser, server.url);
  await register(mallory.page, 'mallory', EVIL_NAME);
  await register(victim.page, 'victim', 'Victor');

  await startDirect(mallory.page, 'victim');
  for (const t of EVIL_TEXTS) await sendMessage(mallory.page, t);

  // A group with a hostile title, created by Mallory with the victim in it.
  await mallory.page.getByTestId('new-group').click();
  await mallory.page.getByTestId('group-title').fill(EVIL_TITLE);
  await mallory.page.getByTestId('member-search').fill('victim');
  await mallory.page.locator('[data-testid=member-result][data-username=victim]').click();
  await mallory.page.getByTestId('create-group').click();
  await mallory.page.getByTestId('chat-header-title').filter({ hasText: 'bold</b> group' }).waitFor();
  await sendMessage(mallory.page, EVIL_TEXTS[0]);

  // The victim sees the names, title and texts exactly as typed.
  await chatRow(victim.page, 'Mallory').waitFor();
  const titles = await victim.page.getByTestId('chat-title').allTextContents();
  assert.ok(titles.includes(EVIL_NAME), `display name shown literally: ${JSON.stringify(titles)}`);
  assert.ok(titles.includes(EVIL_TITLE), `group title shown literally: ${JSON.stringify(titles)}`);

  await openChat(victim.page, 'Mallory');
  await victim.page.locator('[data-testid=msg-text]').nth(EVIL_TEXTS.length - 1).waitFor();
  assert.deepEqual(await victim.page.locator('[data-testid=msg-text]').allTextContents(), EVIL_TEXTS);
  assert.equal(await victim.page.getByTestId('chat-header-title').textContent(), EVIL_NAME);

  await openChat(victim.page, 'bold</b> group');
  await victim.page.locator('[data-testid=msg-in]').first().waitFor();
  assert.equal(await victim.page.getByTestId('msg-sender').first().textContent(), EVIL_NAME);
  assert.equal(await victim.page.getByTestId('chat-header-title').textContent(), EVIL_TITLE);
  await victim.page.getByTestId('chat-info').click();
  assert.equal(await victim.page.getByTestId('info-title').textContent(), EVIL_TITLE);
  await victim.page.screenshot({ path: screenshotPath('xss-as-text.png') });

  for (const p of [victim.page, mallory.page]) {
    assert.deepEqual(await injected(p), { elements: 0, svgWithHandlers: 0, flag: null });
    assert.deepEqual(p.dialogs ?? [], [], 'no dialog opened');
    assert.deepEqual(p.errors, []);
  }
  await mallory.context.close();
  await victim.context.close();
});
