// Group event lines: created, renamed, added, admin, removed and left appear
// as centred lines in the chat, for the one who did it and for the others,
// and stay after a reload (history carries no membership events, so this
// browser keeps the lines it applied). Removing a member asks first, in an
// in-app dialog; the removed member, who had read everything, gets no
// unread badge.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiRegister, chatRow, eventually, expectUnread, launchBrowser, openChat, openPage, register, sendMessage, startServer } from './helpers.mjs';

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

const lines = (page) => page.getByTestId('event-line').allTextContents();

test('event lines for created, renamed, added, admin, removed, left; confirm before removing', async () => {
  const alice = await openPage(browser, server.url);
  const bob = await openPage(browser, server.url);
  const carol = await openPage(browser, server.url);
  await register(alice.page, 'alice', 'Alice');
  await register(bob.page, 'bob', 'Bob');
  await register(carol.page, 'carol', 'Carol');
  await apiRegister(server.url, 'dave', 'Dave');

  await alice.page.getByTestId('new-group').click();
  await alice.page.getByTestId('group-title').fill('Trip');
  for (const name of ['bob', 'carol']) {
    await alice.page.getByTestId('member-search').fill(name);
    await alice.page.locator(`[data-testid=member-result][data-username="${name}"]`).click();
  }
  await alice.page.getByTestId('create-group').click();
  await alice.page.getByTestId('chat-header-title').filter({ hasText: 'Trip' }).waitFor();
  await sendMessage(alice.page, 'Welcome all');
  await openChat(bob.page, 'Trip');
  await openChat(carol.page, 'Trip');
  await carol.page.locator('[data-testid=msg-in]', { hasText: 'Welcome all' }).waitFor();

  // Rename, add, admin.
  await alice.page.getByTestId('chat-info').click();
  await alice.page.getByTestId('rename').click();
  await alice.page.getByTestId('rename-input').fill('Lake trip');
  await alice.page.getByTestId('rename-save').click();
  await alice.page.getByTestId('add-member').click();
  await alice.page.getByTestId('add-member-search').fill('dave');
  await alice.page.locator('[data-testid=add-member-result][data-username=dave]').click();
  await alice.page.locator('[data-testid=member][data-username=dave]').waitFor();
  await alice.page.locator('[data-testid=member][data-username=bob] [data-testid=toggle-admin]').click();

  // Removing Carol asks first; cancelling keeps her.
  await alice.page.locator('[data-testid=member][data-username=carol] [data-testid=remove-member]').click();
  const dialog = alice.page.getByTestId('confirm-dialog');
  await dialog.waitFor();
  assert.equal(await dialog.getAttribute('role'), 'alertdialog');
  assert.match(await dialog.textContent(), /Remove Carol from "Lake trip"\?/);
  await alice.page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assert.equal(await alice.page.locator('[data-testid=member][data-username=carol]').count(), 1);
  await alice.page.locator('[data-testid=member][data-username=carol] [data-testid=remove-member]').click();
  await alice.page.getByTestId('confirm-ok').click();
  await carol.page.getByTestId('left-note').waitFor();

  const expected = [
    'Alice created group "Trip"',
    'Alice changed the group name to "Lake trip"',
    'Alice added Dave',
    "You're now an admin",
    'Alice removed Carol',
  ];
  await eventually(async () => {
    const got = await lines(bob.page);
    if (JSON.stringify(got) === JSON.stringify(expected)) return true;
    throw new Error(JSON.stringify(got));
  }, { message: "Bob's event lines" });
  await eventually(
    async () =>
      JSON.stringify(await lines(alice.page)) ===
      JSON.stringify(['You created group "Trip"', 'You changed the group name to "Lake trip"', 'You added Dave', 'Bob is now an admin', 'You removed Carol']),
    { message: "Alice's event lines" },
  );
  await eventually(async () => (await lines(carol.page)).at(-1) === 'Alice removed you', { message: "Carol's line" });
  // The creation line comes before the first message.
  const order = await bob.page.locator('[data-testid=event-line], [data-testid=msg-in]').allTextContents();
  assert.ok(order[0].includes('created group') && order[1].includes('Welcome all'), JSON.stringify(order));

  // Carol had read everything: no false unread badge after her removal, even after a reload.
  await carol.page.getByTestId('chat-info').waitFor();
  await expectUnread(carol.page, 'Lake trip', 0);
  await carol.page.reload();
  await carol.page.getByTestId('chat-list').waitFor();
  await carol.page.waitForTimeout(300);
  assert.equal(await carol.page.getByTestId('unread-badge').count(), 0);

  // Bob leaves; the lines survive a reload.
  await bob.page.getByTestId('chat-info').click();
  await bob.page.getByTestId('leave-group').click();
  await bob.page.getByTestId('confirm-ok').click();
  await eventually(async () => (await lines(alice.page)).at(-1) === 'Bob left', { message: 'Bob left' });
  await alice.page.reload();
  await openChat(alice.page, 'Lake trip');
  await eventually(async () => (await lines(alice.page)).length === 6, { message: 'lines after a reload' });
  for (const p of [alice, bob, carol]) {
    assert.deepEqual(p.page.errors, []);
    await p.context.close();
  }
});
