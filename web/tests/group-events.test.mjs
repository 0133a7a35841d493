// Group event lines: created, renamed, added, admin, removed and left appear
// as centred lines in the chat, for the one who did it and for the others,
// and stay after a reload. History carries them too, so a fresh browser
// shows them in place among the messages, and a line seen live and again in
// history shows once. Removing a member asks first, in an in-app dialog; the
// removed member, who had read everything, gets no unread badge.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiRegister, chatRow, eventually, expectUnread, launchBrowser, login, openChat, openPage, register, screenshotPath, sendMessage, startServer } from './helpers.mjs';

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

/** Call the HTTP API as `who` (from apiRegister) with any method and body. */
async function call(who, method, path, body) {
  const r = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${who.token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.status === 204 ? null : r.json();
}

/** The chat's event lines and messages, top to bottom ("— line" or the message's text). */
async function transcript(page) {
  return page.locator('[data-testid=event-line], [data-testid=msg-in] [data-testid=msg-text], [data-testid=msg-out] [data-testid=msg-text]').evaluateAll((els) =>
    els.map((el) => (el.getAttribute('data-testid') === 'event-line' ? `— ${el.textContent}` : el.textContent)),
  );
}

test('a fresh browser shows the lines from history, in place, once', async () => {
  const [alice, bob, carol, dave] = await Promise.all(
    [['ann', 'Ann'], ['ben', 'Ben'], ['cid', 'Cid'], ['dot', 'Dot']].map(([u, n]) => apiRegister(server.url, u, n)),
  );
  const chat = await call(alice, 'POST', '/v1/chats/groups', { title: 'Book club', members: [bob.user.id, carol.user.id] });
  await alice.send(chat.id, 'First meeting on Tuesday');
  await bob.send(chat.id, 'I will bring snacks');
  await call(alice, 'PATCH', `/v1/chats/${chat.id}`, { title: 'Readers' });
  await call(alice, 'POST', `/v1/chats/${chat.id}/members`, { user_id: dave.user.id });
  await carol.send(chat.id, 'Cannot wait');
  await call(alice, 'PATCH', `/v1/chats/${chat.id}/members/${bob.user.id}`, { admin: true });
  await call(carol, 'DELETE', `/v1/chats/${chat.id}/members/${carol.user.id}`);
  await alice.send(chat.id, 'See you all');

  // Ben, on a browser that never saw any of it (a new context: empty storage).
  const ben = await openPage(browser, server.url);
  await login(ben.page, 'ben');
  await openChat(ben.page, 'Readers');
  const expected = [
    '— Ann created group "Book club"',
    'First meeting on Tuesday',
    'I will bring snacks',
    '— Ann changed the group name to "Readers"',
    '— Ann added Dot',
    'Cannot wait',
    "— You're now an admin",
    '— Cid left',
    'See you all',
  ];
  await eventually(async () => {
    const got = await transcript(ben.page);
    if (JSON.stringify(got) === JSON.stringify(expected)) return true;
    throw new Error(JSON.stringify(got));
  }, { message: "Ben's chat from history" });
  // Cid, who left, keeps his name on his message as in his line.
  await eventually(
    async () => (await ben.page.locator('[data-testid=msg-in]', { hasText: 'Cannot wait' }).getByTestId('msg-sender').textContent()) === 'Cid',
    { message: "Cid's name on his message" },
  );
  await ben.page.screenshot({ path: screenshotPath('group-lines-from-history.png') });

  // A line seen live, and again in history after a reload: once.
  await call(alice, 'PATCH', `/v1/chats/${chat.id}`, { title: 'Readers club' });
  await eventually(async () => (await lines(ben.page)).at(-1) === 'Ann changed the group name to "Readers club"', { message: 'the live rename' });
  await ben.page.reload();
  await openChat(ben.page, 'Readers club');
  const withRename = [...expected, '— Ann changed the group name to "Readers club"'];
  await eventually(async () => {
    const got = await transcript(ben.page);
    if (JSON.stringify(got) === JSON.stringify(withRename)) return true;
    throw new Error(JSON.stringify(got));
  }, { message: 'the lines after a reload, each once' });

  // Dot, added after the first messages, sees nothing from before he joined.
  const dot = await openPage(browser, server.url);
  await login(dot.page, 'dot');
  await openChat(dot.page, 'Readers club');
  const dots = ['— Ann added you', 'Cannot wait', '— Ben is now an admin', '— Cid left', 'See you all', '— Ann changed the group name to "Readers club"'];
  await eventually(async () => {
    const got = await transcript(dot.page);
    if (JSON.stringify(got) === JSON.stringify(dots)) return true;
    throw new Error(JSON.stringify(got));
  }, { message: "Dot's chat from history" });
  for (const p of [ben, dot]) {
    assert.deepEqual(p.page.errors, []);
    await p.context.close();
  }
});
