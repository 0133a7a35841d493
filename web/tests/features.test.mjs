// What people expect of a modern chat: reply with a quote, react, edit,
// delete for everyone and delete for me, each seen by the other person live.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  eventually,
  expectStatus,
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

/** Open the options menu of the bubble containing `text` and pick `action`. */
async function act(page, text, action) {
  const bubble = page.locator('[data-testid=msg-in], [data-testid=msg-out]').filter({ hasText: text }).first();
  await bubble.hover();
  await bubble.getByTestId('msg-menu').click();
  await bubble.locator(`[data-testid=msg-menu-list] [data-testid="${action}"]`).first().click();
  return bubble;
}

test('reply, react, edit, delete for everyone, delete for me', async () => {
  const alice = await openPage(browser, server.url);
  const bob = await openPage(browser, server.url);
  await register(alice.page, 'alice', 'Alice');
  await register(bob.page, 'bob', 'Bob');
  await startDirect(alice.page, 'bob', { encrypted: false });
  await sendMessage(alice.page, 'Lunch at noon?');
  await sendMessage(alice.page, 'oops, wrong chat');
  await sendMessage(alice.page, 'Bring the slides');
  await bob.page.getByTestId('chat-row').first().waitFor();
  await openChat(bob.page, 'Alice');
  await expectStatus(alice.page, 'Bring the slides', 'read');

  // Bob replies to the question: both see the quote.
  await act(bob.page, 'Lunch at noon?', 'reply');
  await bob.page.getByTestId('replying').waitFor();
  await sendMessage(bob.page, 'Yes, see you there');
  const reply = alice.page.locator('[data-testid=msg-in]', { hasText: 'Yes, see you there' });
  await reply.getByTestId('msg-quote').filter({ hasText: 'Lunch at noon?' }).waitFor();

  // Bob reacts to it.
  const bubble = bob.page.locator('[data-testid=msg-in]', { hasText: 'Lunch at noon?' });
  await bubble.hover();
  await bubble.getByTestId('msg-menu').click();
  await bubble.locator('[data-testid=react][data-emoji="👍"]').click();
  await alice.page.locator('[data-testid=msg-out]', { hasText: 'Lunch at noon?' }).getByTestId('msg-reactions').filter({ hasText: '👍' }).waitFor();

  // Alice edits her question; Bob sees the new text, marked edited, and the quote follows.
  await act(alice.page, 'Lunch at noon?', 'edit');
  await alice.page.getByTestId('editing').waitFor();
  await alice.page.getByTestId('composer').fill('Lunch at 1pm?');
  await alice.page.getByTestId('composer').press('Enter');
  const edited = bob.page.locator('[data-testid=msg-in]', { hasText: 'Lunch at 1pm?' });
  await edited.getByTestId('msg-edited').waitFor();
  await alice.page.locator('[data-testid=msg-in]', { hasText: 'Yes, see you there' }).getByTestId('msg-quote').filter({ hasText: 'Lunch at 1pm?' }).waitFor();

  // Alice deletes one for everyone.
  await act(alice.page, 'oops, wrong chat', 'delete-everyone');
  await alice.page.getByTestId('confirm-ok').click();
  await bob.page.locator('[data-testid=msg-in][data-deleted=true]').getByText('This message was deleted').waitFor();
  await alice.page.locator('[data-testid=msg-out][data-deleted=true]').getByText('You deleted this message').waitFor();
  assert.equal(await bob.page.getByText('oops, wrong chat').count(), 0);

  // Bob deletes one only for himself: gone for him, still there for Alice.
  await act(bob.page, 'Bring the slides', 'delete-me');
  await bob.page.getByTestId('confirm-ok').click();
  await bob.page.locator('[data-testid=msg-text]', { hasText: 'Bring the slides' }).waitFor({ state: 'detached' });
  await alice.page.waitForTimeout(200);
  assert.equal(await alice.page.locator('[data-testid=msg-text]', { hasText: 'Bring the slides' }).count(), 1);

  // After a reload both see the same state, served as it is now.
  await bob.page.reload();
  await openChat(bob.page, 'Alice');
  await eventually(
    async () =>
      JSON.stringify(await bob.page.locator('[data-testid=msg-text]').allTextContents()) ===
      JSON.stringify(['Lunch at 1pm?', 'This message was deleted', 'Yes, see you there']),
    { message: "Bob's chat after a reload" },
  );
  await bob.page.locator('[data-testid=msg-in]', { hasText: 'Lunch at 1pm?' }).getByTestId('msg-reactions').waitFor();
  await alice.page.screenshot({ path: screenshotPath('chat-features.png') });
  assert.deepEqual(alice.page.errors, []);
  assert.deepEqual(bob.page.errors, []);
  await alice.context.close();
  await bob.context.close();
});
