// Text as people write it: right-to-left text gets dir="auto" wherever it
// shows; *bold* _italic_ ~strike~ `code` render as elements while "<b>"
// stays literal; only http, https and mailto become links (noopener
// noreferrer); emoji-only messages are large; a long message is cut with
// "Read more"; the composer counts down near the limit and says what to do
// past it; drafts survive a chat switch and a reload.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiLogin, apiRegister, chatRow, launchBrowser, openChat, openPage, register, startServer } from './helpers.mjs';

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

test('rtl, formatting, safe links, emoji, read more, counter, drafts', async () => {
  const bob = await apiRegister(server.url, 'bob', 'בוב');
  const carol = await apiRegister(server.url, 'carol', 'Carol');
  const { context, page } = await openPage(browser, server.url);
  await register(page, 'alice', 'Alice');
  const alice = await apiLogin(server.url, 'alice');
  const chat = await bob.post('/v1/chats/direct', { user_id: alice.user.id });
  const other = await carol.post('/v1/chats/direct', { user_id: alice.user.id });
  await carol.send(other.id, 'hi from Carol');
  const hebrew = 'שלום, מה שלומך?';
  await bob.send(chat.id, hebrew);
  await bob.send(chat.id, '*bold* _italic_ ~strike~ `code` and <b>not bold</b> <img src=x onerror=alert(1)>');
  await bob.send(chat.id, 'see https://example.com/a_(b)_c. or javascript:alert(1) or mailto:bob@example.com or www.example.org!');
  await bob.send(chat.id, '😀👍');
  await bob.send(chat.id, 'hi 😀');
  await bob.send(chat.id, `${'long text '.repeat(1600)}END`);

  await openChat(page, 'בוב');
  const bubble = (text) => page.locator('[data-testid=msg-in]', { hasText: text });
  await bubble('END').or(bubble('long text')).first().waitFor();

  // Right to left: dir="auto" on the bubble, the list preview and the names.
  assert.equal(await bubble(hebrew).getByTestId('msg-text').getAttribute('dir'), 'auto');
  assert.equal(await page.getByTestId('chat-header-title').getAttribute('dir'), 'auto');
  assert.equal(await chatRow(page, 'בוב').getByTestId('chat-title').getAttribute('dir'), 'auto');
  assert.equal(await page.getByTestId('composer').getAttribute('dir'), 'auto');
  // The browser resolves it: Hebrew text runs right to left.
  assert.equal(await bubble(hebrew).getByTestId('msg-text').evaluate((el) => getComputedStyle(el).direction), 'rtl');

  // Formatting as elements; HTML stays text.
  const f = bubble('not bold').getByTestId('msg-text');
  assert.equal(await f.locator('strong').textContent(), 'bold');
  assert.equal(await f.locator('em').textContent(), 'italic');
  assert.equal(await f.locator('del').textContent(), 'strike');
  assert.equal(await f.locator('code').textContent(), 'code');
  assert.equal(await f.locator('b, img').count(), 0);
  assert.match(await f.textContent(), /and <b>not bold<\/b> <img src=x onerror=alert\(1\)>$/);

  // Links: http(s), mailto and www., opened safely; javascript: is plain text.
  const links = bubble('example.com').getByTestId('msg-link');
  assert.deepEqual(await links.evaluateAll((as) => as.map((a) => [a.textContent, a.getAttribute('href'), a.rel, a.target])), [
    ['https://example.com/a_(b)_c', 'https://example.com/a_(b)_c', 'noopener noreferrer', '_blank'],
    ['mailto:bob@example.com', 'mailto:bob@example.com', 'noopener noreferrer', '_blank'],
    ['www.example.org', 'https://www.example.org/', 'noopener noreferrer', '_blank'],
  ]);
  assert.equal(await bubble('example.com').locator('a[href^=javascript]').count(), 0);

  // Emoji only: large; with words: normal.
  assert.equal(await bubble('😀👍').getByTestId('msg-text').evaluate((el) => el.classList.contains('jumbo')), true);
  assert.equal(await bubble('hi 😀').getByTestId('msg-text').evaluate((el) => el.classList.contains('jumbo')), false);

  // A 16,000-character message: its start and "Read more".
  const long = bubble('long text');
  const before = await long.boundingBox();
  assert.ok(before.height < 600, `the long message is ${before.height} px tall before "Read more"`);
  assert.equal(await long.getByText('END').count(), 0);
  await long.getByTestId('read-more').click();
  await long.getByTestId('msg-text').filter({ hasText: 'END' }).waitFor();
  assert.equal(await long.getByTestId('read-more').count(), 0);

  // The counter near the limit, and what to do past it.
  const box = page.getByTestId('composer');
  await box.fill('x'.repeat(15_000));
  assert.equal(await page.getByTestId('composer-limit').textContent(), '1,384 left');
  assert.equal(await page.getByTestId('send').isDisabled(), false);
  await box.fill('x'.repeat(20_000));
  assert.equal(await page.getByTestId('composer-limit').textContent(), 'Too long to send: remove 3,616 characters (the limit is 16,384 bytes).');
  assert.equal(await page.getByTestId('send').isDisabled(), true);
  assert.equal(await box.getAttribute('aria-invalid'), 'true');

  // Drafts: kept across a switch and a reload, shown in the list.
  await box.fill('a draft for Bob');
  await openChat(page, 'Carol');
  assert.equal(await page.getByTestId('composer').inputValue(), '');
  assert.equal(await chatRow(page, 'בוב').getByTestId('draft-preview').textContent(), 'a draft for Bob');
  await openChat(page, 'בוב');
  assert.equal(await page.getByTestId('composer').inputValue(), 'a draft for Bob');
  await page.reload();
  await chatRow(page, 'בוב').getByTestId('draft-preview').waitFor();
  await openChat(page, 'בוב');
  assert.equal(await page.getByTestId('composer').inputValue(), 'a draft for Bob');
  await page.getByTestId('composer').press('Enter');
  await page.locator('[data-testid=msg-out]', { hasText: 'a draft for Bob' }).waitFor();
  await page.reload();
  await openChat(page, 'בוב');
  assert.equal(await page.getByTestId('composer').inputValue(), '', 'a sent draft is gone');

  assert.deepEqual(page.errors, []);
  assert.deepEqual(page.dialogs ?? [], []);
  await context.close();
});
