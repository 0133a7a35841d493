// The server's per-user limits (`[limits]` searches_per_minute,
// groups_per_hour, member_additions_per_minute), set low here: each refusal
// (`429 rate_limited`, nothing done) is shown in words where it was tried,
// what was typed stays, nothing is created or added, and trying again once
// the allowance is back works.

import assert from 'node:assert/strict';
import { writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { apiLogin, apiRegister, chatRow, eventually, launchBrowser, login, openPage, screenshotPath, startServer, waitLive } from './helpers.mjs';

const config = join(tmpdir(), `hark-limits-test-${process.pid}.toml`);
let server;
let browser;

before(async () => {
  // Two searches a minute (one back every 30 s), one new group an hour, two
  // member additions a minute (one back every 30 s).
  writeFileSync(config, '[limits]\nsearches_per_minute = 2\ngroups_per_hour = 1\nmember_additions_per_minute = 2\n');
  server = await startServer({ config });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.destroy();
  rmSync(config, { force: true });
});

const TOO_MANY_SEARCHES = 'Too many searches — wait a moment and try again.';
const TOO_MANY_GROUPS = 'Too many new groups — wait a moment and try again.';
const TOO_MANY_ADDITIONS = 'Too many members added — wait a moment and try again.';

/** The titles of `who`'s chats, asked of the server. */
async function serverTitles(who) {
  return (await who.get('/v1/chats')).map((s) => s.chat.title).filter(Boolean);
}

/** The usernames of a chat's members, asked of the server. */
async function serverMembers(who, chatId) {
  return (await who.get(`/v1/chats/${chatId}`)).chat.members.map((m) => m.user.username).sort();
}

test('a refused search, new group or member addition says so, keeps what was typed, does nothing, and works once allowed again', async () => {
  const alice = await apiRegister(server.url, 'alice', 'Alice Martin');
  const bob = await apiRegister(server.url, 'bob', 'Bob Chen');
  await apiRegister(server.url, 'carol', 'Carol Diaz');
  await apiRegister(server.url, 'dave', 'Dave Okafor');
  await apiRegister(server.url, 'erin', 'Erin Wu');
  // Bob's group (his allowance, not Alice's), with Alice as an admin.
  const club = await bob.post('/v1/chats/groups', { title: 'Book club', members: [alice.user.id] });
  const made = await fetch(`${server.url}/v1/chats/${club.id}/members/${alice.user.id}`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${bob.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ admin: true }),
  });
  assert.equal(made.status, 200, await made.text());
  await bob.send(club.id, 'The harbour walk is on Sunday');
  await bob.send(club.id, 'Bring the lighthouse book');

  const { page } = await openPage(browser, server.url);
  await login(page, 'alice');
  const search = page.getByTestId('search');
  const results = page.locator('[data-testid=chat-list] [data-testid=search-result-text]');
  const searchError = page.locator('[data-testid=chat-list] [data-testid=search-error]');

  // 1. Searches: two answered, the third refused in words (not the server's
  // "at most 2 message searches a minute"), with no results and a way to try again.
  await search.fill('harbour');
  await results.filter({ hasText: 'The harbour walk is on Sunday' }).waitFor();
  await search.fill('lighthouse');
  await results.filter({ hasText: 'Bring the lighthouse book' }).waitFor();
  await search.fill('walk');
  await searchError.waitFor();
  assert.equal(await searchError.locator('p').textContent(), TOO_MANY_SEARCHES);
  assert.equal(await searchError.getAttribute('role'), 'alert');
  assert.equal(await results.count(), 0);
  await searchError.getByTestId('search-retry').waitFor();
  await page.screenshot({ path: screenshotPath('limits-search.png'), clip: { x: 0, y: 0, width: 420, height: 800 } });

  // Open the group from the list (the search still refused meanwhile).
  await search.fill('book club');
  await chatRow(page, 'Book club').click();
  await page.getByTestId('chat-header-title').filter({ hasText: 'Book club' }).waitFor();

  // 2. Member additions: Carol and Dave added, Erin refused: the words in
  // the "Add member" box, which stays open with "erin" typed; she is not in.
  await page.getByTestId('chat-info').click();
  const info = page.getByTestId('info-panel');
  for (const name of ['carol', 'dave']) {
    await info.getByTestId('add-member').click();
    await info.getByTestId('add-member-search').fill(name);
    await info.locator(`[data-testid=add-member-result][data-username=${name}]`).click();
    await info.locator(`[data-testid=member][data-username=${name}]`).waitFor();
  }
  await info.getByTestId('add-member').click();
  await info.getByTestId('add-member-search').fill('erin');
  await info.locator('[data-testid=add-member-result][data-username=erin]').click();
  const addError = info.getByTestId('add-member-error');
  await addError.waitFor();
  assert.equal(await addError.textContent(), TOO_MANY_ADDITIONS);
  assert.equal(await info.getByTestId('add-member-search').inputValue(), 'erin');
  assert.equal(await info.locator('[data-testid=member][data-username=erin]').count(), 0);
  assert.deepEqual(await serverMembers(alice, club.id), ['alice', 'bob', 'carol', 'dave']);
  await page.screenshot({ path: screenshotPath('limits-add-member.png') });

  // 3. Once the allowances come back (one every 30 s), trying again works:
  // "Try again" beside the refused search, and Erin chosen again.
  await search.fill('walk');
  await eventually(
    async () => {
      if (await searchError.isVisible()) await searchError.getByTestId('search-retry').click();
      return (await results.filter({ hasText: 'The harbour walk is on Sunday' }).count()) === 1;
    },
    { timeout: 90_000, interval: 3_000, message: 'the search to be answered once allowed again' },
  );
  assert.equal(await searchError.count(), 0);
  await eventually(
    async () => {
      if (await info.locator('[data-testid=member][data-username=erin]').count()) return true;
      await info.locator('[data-testid=add-member-result][data-username=erin]').click({ timeout: 2_000 });
      return false;
    },
    { timeout: 90_000, interval: 3_000, message: 'Erin to be added once allowed again' },
  );
  await info.getByTestId('add-member-search').waitFor({ state: 'detached' });
  assert.deepEqual(await serverMembers(alice, club.id), ['alice', 'bob', 'carol', 'dave', 'erin']);
  await search.fill('');

  // 4. New groups: the first made, the second refused: the words in the
  // "New group" view, which stays open with its subject and people; no
  // second group on the server.
  const createGroup = async (title, members) => {
    await page.getByTestId('new-group').click();
    await page.getByTestId('group-title').fill(title);
    for (const name of members) {
      await page.getByTestId('member-search').fill(name);
      await page.locator(`[data-testid=member-result][data-username="${name}"]`).click();
    }
    await page.getByTestId('create-group').click();
  };
  await createGroup('Weekend trip', ['bob']);
  await page.getByTestId('chat-header-title').filter({ hasText: 'Weekend trip' }).waitFor();
  await createGroup('Second trip', ['carol', 'dave']);
  const groupError = page.getByTestId('group-error');
  await groupError.waitFor();
  assert.equal(await groupError.textContent(), TOO_MANY_GROUPS);
  assert.equal(await page.getByTestId('group-title').inputValue(), 'Second trip');
  for (const name of ['Carol Diaz', 'Dave Okafor']) await page.getByRole('button', { name: `Remove ${name}` }).waitFor({ timeout: 1_000 });
  assert.equal(await page.getByTestId('create-group').isEnabled(), true);
  await page.screenshot({ path: screenshotPath('limits-new-group.png') });
  const titles = await serverTitles(alice);
  assert.ok(titles.includes('Weekend trip') && !titles.includes('Second trip'), JSON.stringify(titles));

  // The group allowance is an hour away: a restarted server (its counts are
  // in memory) stands in for the wait. The view kept everything, so one
  // click makes the group.
  await server.stop();
  server = await startServer({ dataDir: server.dataDir, port: server.port, config });
  await page.getByTestId('create-group').click();
  await page.getByTestId('chat-header-title').filter({ hasText: 'Second trip' }).waitFor();
  await page.getByTestId('group-error').waitFor({ state: 'detached' });
  await waitLive(page);
  const again = await apiLogin(server.url, 'alice');
  const second = (await again.get('/v1/chats')).filter((s) => s.chat.title === 'Second trip');
  assert.equal(second.length, 1);
  assert.deepEqual(second[0].chat.members.map((m) => m.user.username).sort(), ['alice', 'carol', 'dave']);
  assert.deepEqual(page.errors, []);
});
