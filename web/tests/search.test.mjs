// Message search: the sidebar finds messages in any of my chats (newest
// first, with chat, sender, time and the matched words marked), never in
// chats I am not in; opening a result shows that message even when it lies
// far above the loaded page; the chat header's search looks in one chat only.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiRegister, eventually, launchBrowser, login, openChat, openPage, screenshotPath, startServer } from './helpers.mjs';

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

/** Whether the bubble of message `seq` is on screen inside the message list. */
async function inView(page, seq) {
  return page.evaluate((seq) => {
    const list = document.querySelector('[data-testid=messages]');
    const el = list?.querySelector(`[data-seq="${seq}"]`);
    if (!list || !el) return false;
    const a = list.getBoundingClientRect();
    const b = el.getBoundingClientRect();
    return b.top >= a.top && b.bottom <= a.bottom;
  }, seq);
}

test('search finds messages across my chats only, and opening a result shows it in its chat', async () => {
  const alice = await apiRegister(server.url, 'alice', 'Alice');
  const bob = await apiRegister(server.url, 'bob', 'Bob Chen');
  const carol = await apiRegister(server.url, 'carol', 'Carol Diaz');
  const eve = await apiRegister(server.url, 'eve', 'Eve');

  // A long chat with Carol: the match is message 5 of 206, far above the newest page.
  const withCarol = await carol.post('/v1/chats/direct', { user_id: alice.user.id });
  for (let i = 1; i <= 4; i++) await carol.send(withCarol.id, `filler message ${i}`);
  const draft = await carol.send(withCarol.id, 'The quarterly budget draft is in the shared folder');
  for (let i = 6; i < 206; i += 10) {
    await Promise.all(
      Array.from({ length: 10 }, (_, k) => i + k).map((n) =>
        (n % 2 ? carol : alice).send(withCarol.id, n === 120 ? 'Kickoff is on Monday at nine' : `filler message ${n}`),
      ),
    );
  }
  const last = await alice.send(withCarol.id, "That's all for today");
  // A group where Bob wrote the newest match.
  const finance = await alice.post('/v1/chats/groups', { title: 'Finance', members: [bob.user.id] });
  await alice.send(finance.id, 'Hello finance people');
  await bob.send(finance.id, 'Budget meeting moved to Friday');
  // A chat Alice is not in, with the same word.
  const bobEve = await eve.post('/v1/chats/direct', { user_id: bob.user.id });
  await eve.send(bobEve.id, 'secret budget numbers for Bob only');

  const a = await openPage(browser, server.url);
  await login(a.page, 'alice');
  await a.page.getByTestId('search').fill('budg');
  const results = a.page.getByTestId('search-result');
  await eventually(async () => (await results.count()) === 2, { message: 'two results for "budg"' });
  // Newest first, with chat title, sender and the matched word marked.
  assert.deepEqual(await results.getByTestId('search-result-chat').allTextContents(), ['Finance', 'Carol Diaz']);
  assert.deepEqual(await results.getByTestId('search-result-sender').allTextContents(), ['Bob Chen: ', 'Carol Diaz: ']);
  assert.deepEqual(await results.locator('mark').allTextContents(), ['Budg', 'budg']);
  assert.equal(await results.nth(1).getByTestId('search-result-text').textContent(), 'Carol Diaz: The quarterly budget draft is in the shared folder');
  // Nothing of Bob and Eve's chat.
  assert.equal(await a.page.getByText('secret budget').count(), 0);
  await a.page.screenshot({ path: screenshotPath('search-results.png') });

  // Opening Carol's result shows message 5 in the middle of the chat, highlighted.
  await results.nth(1).click();
  await a.page.getByTestId('chat-header-title').filter({ hasText: 'Carol Diaz' }).waitFor();
  const bubble = a.page.locator(`[data-testid=msg-in][data-seq="${draft.seq}"]`);
  await bubble.filter({ hasText: 'The quarterly budget draft' }).waitFor();
  assert.equal(await bubble.getAttribute('data-focused'), 'true');
  await eventually(() => inView(a.page, draft.seq), { message: 'the found message on screen' });
  // Only a window around it was loaded, not the 200 messages in between…
  assert.ok((await a.page.getByTestId('msg-text').count()) < 80);
  await a.page.screenshot({ path: screenshotPath('search-opened.png') });
  // …the rest loads on scrolling down, up to the newest.
  await eventually(
    async () => {
      await a.page.getByTestId('messages').evaluate((el) => (el.scrollTop = el.scrollHeight));
      return (await a.page.getByText("That's all for today").count()) === 1;
    },
    { message: 'newer pages loaded down to the newest message', interval: 300 },
  );
  const seqs = await a.page.locator('[data-testid=messages] [data-seq]').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => seqs[0] + i), 'no gaps and no duplicates');
  assert.equal(seqs.at(-1), last.seq);

  // The header's search looks in the open chat only.
  await a.page.getByTestId('search').fill('');
  await openChat(a.page, 'Finance');
  await a.page.getByTestId('chat-search').click();
  await a.page.getByTestId('chat-search-input').fill('budget');
  const panel = a.page.getByTestId('search-panel');
  await panel.getByTestId('search-result').first().waitFor();
  await a.page.waitForTimeout(400);
  assert.deepEqual(await panel.getByTestId('search-result-text').allTextContents(), ['Budget meeting moved to Friday']);
  await a.page.screenshot({ path: screenshotPath('chat-search.png') });

  // Markup in a found message is shown as text, highlighted all the same.
  await alice.send(finance.id, '<img src=x onerror="window.pwned=1"> <b>xssbudget</b>');
  await a.page.getByTestId('chat-search-input').fill('xssbudg');
  const xss = panel.getByTestId('search-result-text').filter({ hasText: '<img src=x' });
  await xss.waitFor();
  assert.equal(await xss.textContent(), '<img src=x onerror="window.pwned=1"> <b>xssbudget</b>');
  assert.equal(await xss.locator('mark').textContent(), 'xssbudg');
  assert.equal(await panel.locator('img, b').count(), 0);
  assert.equal(await a.page.evaluate(() => window.pwned), undefined);

  // After a reload, a result a page above the newest is reached by loading older pages.
  await a.page.reload();
  await openChat(a.page, 'Carol Diaz');
  await a.page.getByTestId('chat-search').click();
  await a.page.getByTestId('chat-search-input').fill('kickoff mon');
  await panel.getByTestId('search-result').first().click();
  const kickoff = a.page.locator('[data-seq][data-focused=true]', { hasText: 'Kickoff is on Monday at nine' });
  await kickoff.waitFor();
  const seq = Number(await kickoff.getAttribute('data-seq'));
  await eventually(() => inView(a.page, seq), { message: 'the kickoff message on screen' });
  assert.deepEqual(a.page.errors, []);
  await a.context.close();
});
