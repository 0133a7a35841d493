// Mute, archive and pin: set from the chat list's row menu (chevron or right
// click) and from the chat header's menu, synced live to the user's other
// browser; pinned chats first (most recently pinned first), archived chats
// behind the "Archived" row until unarchived.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiRegister, chatRow, eventually, launchBrowser, login, openChat, openPage, rowTitles, screenshotPath, startServer } from './helpers.mjs';

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

/** Pick `action` from the row menu of chat `title`: opened by the chevron, or by a right click. */
async function rowAction(page, title, actions, how = 'chevron', within = page, shot = null) {
  const row = within.locator('[data-testid=chat-row]', { hasText: title }).first();
  if (how === 'chevron') {
    await row.hover();
    await row.getByTestId('chat-row-menu').click();
  } else {
    await row.click({ button: 'right' });
  }
  const menu = page.getByTestId('chat-menu');
  for (const action of actions) {
    await menu.getByTestId(action).waitFor();
    if (shot) await page.screenshot({ path: screenshotPath(shot) });
    await menu.getByTestId(action).click();
  }
  await menu.waitFor({ state: 'detached' });
}

async function expectOrder(page, titles, message) {
  await eventually(async () => JSON.stringify(await rowTitles(page)) === JSON.stringify(titles), { message });
}

test('pin, mute and archive sync live to a second browser of the same user, in list order', async () => {
  const alice = await apiRegister(server.url, 'alice', 'Alice');
  const users = {};
  for (const [name, display] of [['bob', 'Bob Chen'], ['carol', 'Carol Diaz'], ['dave', 'Dave Okafor']]) {
    users[name] = await apiRegister(server.url, name, display);
  }
  const club = await alice.post('/v1/chats/groups', { title: 'Book club', members: [users.bob.user.id] });
  await users.bob.send(club.id, 'Next book: Piranesi');
  const lines = { carol: 'Photos from the trip are up', dave: 'Invoice attached', bob: 'Lunch tomorrow?' };
  for (const name of ['carol', 'dave', 'bob']) {
    const chat = await users[name].post('/v1/chats/direct', { user_id: alice.user.id });
    await users[name].send(chat.id, lines[name]);
  }

  // Alice on two browsers: her laptop (a1) and her desktop (a2).
  const a1 = await openPage(browser, server.url);
  const a2 = await openPage(browser, server.url);
  await login(a1.page, 'alice');
  await login(a2.page, 'alice');
  const byActivity = ['Bob Chen', 'Dave Okafor', 'Carol Diaz', 'Book club'];
  await expectOrder(a1.page, byActivity, 'the list by latest activity');
  await expectOrder(a2.page, byActivity, 'the list by latest activity');

  // Pin Carol from the row's chevron menu: first on both, with a pin.
  await rowAction(a1.page, 'Carol Diaz', ['chat-pin']);
  await expectOrder(a2.page, ['Carol Diaz', 'Bob Chen', 'Dave Okafor', 'Book club'], 'Carol pinned first on the other browser');
  await chatRow(a2.page, 'Carol Diaz').getByTestId('pin-icon').waitFor();
  // Pin the book club with a right click: the most recently pinned comes first.
  await rowAction(a1.page, 'Book club', ['chat-pin'], 'right-click', a1.page, 'chat-row-menu.png');
  await expectOrder(a2.page, ['Book club', 'Carol Diaz', 'Bob Chen', 'Dave Okafor'], 'most recently pinned first');
  await expectOrder(a1.page, ['Book club', 'Carol Diaz', 'Bob Chen', 'Dave Okafor'], 'the same order where it was pinned');

  // Mute Bob for 8 hours from the chat header's menu on the desktop; the laptop shows it muted.
  await openChat(a2.page, 'Bob Chen');
  await a2.page.getByTestId('chat-header-menu').click();
  await a2.page.getByTestId('chat-menu').getByTestId('chat-mute').click();
  await a2.page.getByTestId('chat-menu').getByTestId('mute-8h').waitFor();
  await a2.page.screenshot({ path: screenshotPath('chat-header-mute.png') });
  await a2.page.getByTestId('chat-menu').getByTestId('mute-8h').click();
  await a2.page.getByTestId('header-muted').waitFor();
  await chatRow(a1.page, 'Bob Chen').getByTestId('muted-icon').waitFor();
  assert.equal(await chatRow(a1.page, 'Bob Chen').getAttribute('data-muted'), 'true');

  // Archive Dave on the laptop: gone from the desktop's list, behind "Archived (1)".
  await rowAction(a1.page, 'Dave Okafor', ['chat-archive']);
  await expectOrder(a2.page, ['Book club', 'Carol Diaz', 'Bob Chen'], 'Dave archived away');
  assert.equal(await a2.page.getByTestId('archived-count').textContent(), '1');
  await a2.page.mouse.move(900, 400);
  await a2.page.screenshot({ path: screenshotPath('chat-list-organized.png') });

  // The desktop opens the archived list and unarchives Dave there; both lists have him back.
  await a2.page.getByTestId('archived-row').click();
  const archived = a2.page.getByTestId('archived-list');
  await archived.locator('[data-testid=chat-row]', { hasText: 'Dave Okafor' }).waitFor();
  await a2.page.screenshot({ path: screenshotPath('archived-list.png') });
  await rowAction(a2.page, 'Dave Okafor', ['chat-unarchive'], 'chevron', archived);
  await archived.getByText('No archived chats.').waitFor();
  await a2.page.getByTestId('back').click();
  await expectOrder(a1.page, ['Book club', 'Carol Diaz', 'Bob Chen', 'Dave Okafor'], 'Dave back in the main list');
  await expectOrder(a2.page, ['Book club', 'Carol Diaz', 'Bob Chen', 'Dave Okafor'], 'Dave back in the main list');
  await a1.page.getByTestId('archived-row').waitFor({ state: 'detached' });

  // Unpin and unmute from the laptop; archiving a pinned chat unpins it.
  await rowAction(a1.page, 'Book club', ['chat-unpin']);
  await expectOrder(a2.page, ['Carol Diaz', 'Bob Chen', 'Dave Okafor', 'Book club'], 'book club unpinned');
  await rowAction(a1.page, 'Bob Chen', ['chat-unmute']);
  await a2.page.getByTestId('header-muted').waitFor({ state: 'detached' });
  await rowAction(a2.page, 'Carol Diaz', ['chat-archive']);
  await expectOrder(a1.page, ['Bob Chen', 'Dave Okafor', 'Book club'], 'Carol archived');
  const summary = (await alice.get('/v1/chats')).find((s) => s.chat.title === null && s.chat.members.some((m) => m.user.username === 'carol'));
  assert.deepEqual([summary.settings.archived, summary.settings.pinned_at], [true, null]);

  // A reload shows the same, from the server's snapshot.
  await a1.page.reload();
  await expectOrder(a1.page, ['Bob Chen', 'Dave Okafor', 'Book club'], 'the same list after a reload');
  assert.equal(await a1.page.getByTestId('archived-count').textContent(), '1');
  assert.deepEqual(a1.page.errors, []);
  assert.deepEqual(a2.page.errors, []);
  await a1.context.close();
  await a2.context.close();
});
