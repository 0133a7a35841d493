// An end-to-end encrypted group of one browser and two `hark` command-line
// clients. The browser's user creates the group the way a person does
// (New group, encrypted by default) with the two CLI users; what the browser
// writes both terminals read decrypted, what each terminal writes the
// browser shows decrypted. The browser's user, the group's admin, then
// removes one of them and writes again: the one who stayed reads it, the
// one removed cannot (the server no longer gives her the chat, and the
// message is encrypted under a new Megolm session whose key went only to
// the members left).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { chatRow, eventually, launchBrowser, openChat, openPage, register, repo, screenshotPath, sendMessage, startServer } from './helpers.mjs';

const binary = process.env.HARK_BIN ?? join(repo, 'target', 'debug', 'hark');

let server;
let browser;
const dirs = [];

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const marker = (label) => `${label}-${Math.random().toString(36).slice(2, 10)}`;

function bubbleWith(page, text) {
  return page.locator('.bubble', { has: page.locator('[data-testid=msg-text]', { hasText: text }) });
}

function sessionOf(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem(`hark:${location.origin}:session`)));
}

/** A person at a terminal: `hark` with a config dir of their own, registered and logged in (which publishes the device's keys). */
async function terminal(username, name) {
  const config = mkdtempSync(join(tmpdir(), `hark-web-group-${username}-`));
  dirs.push(config);
  /** Runs `hark args`: its standard output, or it throws with its standard error. */
  const run = async (args) => {
    const { stdout } = await promisify(execFile)(binary, args, {
      env: { ...process.env, HARK_CONFIG_DIR: config, HARK_SERVER: server.url, HARK_PASSWORD: 'password-123', RUST_LOG: 'warn' },
      timeout: 60_000,
    });
    return stdout;
  };
  await run(['register', username, '--display-name', name]);
  await run(['login', username]);
  return { username, name, run };
}

/** `hark history` of `chat` once it shows `text` (after the sender's key reached this device's inbox). */
function historyWith(who, chat, text) {
  return eventually(
    async () => {
      const out = await who.run(['history', chat]);
      return out.includes(text) && out;
    },
    { timeout: 30_000, interval: 500, message: `${who.username}'s \`hark history\` showing ${text}` },
  );
}

test('an encrypted group of a browser and two command-line clients: each reads the others; a removed member cannot read what follows', async () => {
  const gwen = await openPage(browser, server.url);
  await register(gwen.page, 'gwen', 'Gwen Hale');
  const [hugo, iris] = await Promise.all([terminal('hugo', 'Hugo Brandt'), terminal('iris', 'Iris Vale')]);

  // Gwen makes the group from the browser: encrypted by default, the lock in the header.
  await gwen.page.getByTestId('new-group').click();
  assert.equal(await gwen.page.getByTestId('e2e-toggle').isChecked(), true);
  await gwen.page.getByTestId('group-title').fill('Harbour watch');
  for (const username of ['hugo', 'iris']) {
    await gwen.page.getByTestId('member-search').fill(username);
    await gwen.page.locator(`[data-testid=member-result][data-username="${username}"]`).click();
  }
  await gwen.page.getByTestId('create-group').click();
  await gwen.page.getByTestId('chat-header-title').filter({ hasText: 'Harbour watch' }).waitFor();
  await gwen.page.getByTestId('header-lock').waitFor();
  const chat = await gwen.page.getByTestId('chat-pane').getAttribute('data-chat-id');
  for (const who of [hugo, iris]) assert.match(await who.run(['chats']), /Harbour watch/);

  // Gwen writes: both terminals read it decrypted, under her name.
  const fromGwen = marker('lights-at-the-pier');
  await sendMessage(gwen.page, fromGwen);
  await bubbleWith(gwen.page, fromGwen).locator('.ticks[data-status=sent], .ticks[data-status=delivered], .ticks[data-status=read]').waitFor({ timeout: 30_000 });
  for (const who of [hugo, iris]) assert.match(await historyWith(who, chat, fromGwen), new RegExp(`Gwen Hale: ${fromGwen}`));

  // Each terminal writes: the browser shows both, decrypted, with who wrote them.
  const fromHugo = marker('boat-is-in');
  const fromIris = marker('nets-are-dry');
  const hugoFirst = Number(/\[seq (\d+)\]/.exec(await hugo.run(['send', chat, fromHugo]))[1]);
  await iris.run(['send', chat, fromIris]);
  for (const [text, name] of [[fromHugo, 'Hugo Brandt'], [fromIris, 'Iris Vale']]) {
    const bubble = bubbleWith(gwen.page, text);
    await bubble.waitFor({ timeout: 30_000 });
    assert.equal(await bubble.getAttribute('data-testid'), 'msg-in');
    assert.match(await bubble.textContent(), new RegExp(name));
  }
  await chatRow(gwen.page, 'Harbour watch').getByTestId('chat-preview').filter({ hasText: fromIris }).waitFor();
  assert.equal(await gwen.page.locator('[data-testid=msg-sealed]').count(), 0, 'nothing left undecrypted');
  // Each terminal reads the other's too.
  assert.match(await historyWith(hugo, chat, fromIris), new RegExp(`Iris Vale: ${fromIris}`));
  assert.match(await historyWith(iris, chat, fromHugo), new RegExp(`Hugo Brandt: ${fromHugo}`));

  // Gwen, the admin, removes Iris from the group info.
  await gwen.page.getByTestId('chat-info').click();
  await gwen.page.locator('[data-testid=member][data-username=iris] [data-testid=remove-member]').click();
  await gwen.page.getByTestId('confirm-ok').click();
  await gwen.page.locator('[data-testid=member][data-username=iris]').waitFor({ state: 'detached' });
  await gwen.page.getByTestId('event-line').filter({ hasText: 'You removed Iris Vale' }).waitFor();

  // And writes again: Hugo reads it, Iris cannot.
  const afterRemoval = marker('only-for-those-left');
  await sendMessage(gwen.page, afterRemoval);
  await bubbleWith(gwen.page, afterRemoval).locator('.ticks[data-status=sent], .ticks[data-status=delivered], .ticks[data-status=read]').waitFor({ timeout: 30_000 });
  assert.match(await historyWith(hugo, chat, afterRemoval), new RegExp(`Gwen Hale: ${afterRemoval}`));
  const irisSees = await iris.run(['history', chat]).then(
    (out) => out,
    (e) => `refused: ${e.stderr ?? e.message}`,
  );
  assert.ok(!irisSees.includes(afterRemoval), `Iris cannot read it: ${irisSees}`);

  // Under a new Megolm session: the key Iris holds (the group's first) does not open it.
  const { token } = await sessionOf(gwen.page);
  const r = await fetch(`${server.url}/v1/chats/${chat}/messages`, { headers: { authorization: `Bearer ${token}` } });
  const { messages } = await r.json();
  const me = (await sessionOf(gwen.page)).user.id;
  const mine = messages.filter((m) => m.sender_id === me && m.encrypted);
  assert.equal(mine.length, 2);
  assert.ok(!JSON.stringify(messages).includes(afterRemoval) && !JSON.stringify(messages).includes(fromGwen), 'the server holds ciphertext');
  assert.notEqual(mine[1].encrypted.session_id, mine[0].encrypted.session_id, 'the session was replaced once a member left');

  // Hugo, who stayed, writes once more: the browser reads it.
  const lastWord = marker('see-you-at-dawn');
  const hugoLast = Number(/\[seq (\d+)\]/.exec(await hugo.run(['send', chat, lastWord]))[1]);
  await bubbleWith(gwen.page, lastWord).waitFor({ timeout: 30_000 });
  // The CLI replaced its session too.
  const later = (await (await fetch(`${server.url}/v1/chats/${chat}/messages`, { headers: { authorization: `Bearer ${token}` } })).json()).messages;
  const sessionAt = (seq) => later.find((m) => m.seq === seq).encrypted.session_id;
  assert.notEqual(sessionAt(hugoLast), sessionAt(hugoFirst), "the CLI's session was replaced once a member left");
  await gwen.page.screenshot({ path: screenshotPath('encrypted-group-cli.png') });
  assert.deepEqual(gwen.page.errors, []);
  await gwen.context.close();
});

test('members changed by another admin while the browser re-reads the group: what it writes then is for the members as they are', async () => {
  const kate = await openPage(browser, server.url);
  await register(kate.page, 'kate', 'Kate Moss');
  const [lars, mira, nils] = await Promise.all([terminal('lars', 'Lars Holm'), terminal('mira', 'Mira Sol'), terminal('nils', 'Nils Berg')]);

  // Lars makes the group from his terminal, with Kate and Mira.
  const made = await lars.run(['group', 'create', 'Night ferry', 'kate', 'mira', '--encrypted']);
  const chat = /group (\d+)/.exec(made)?.[1];
  assert.ok(chat, made);
  await chatRow(kate.page, 'Night ferry').waitFor({ timeout: 30_000 });
  await openChat(kate.page, 'Night ferry');
  const first = marker('first-crossing');
  await sendMessage(kate.page, first);
  await bubbleWith(kate.page, first).locator('.ticks[data-status=sent], .ticks[data-status=delivered], .ticks[data-status=read]').waitFor({ timeout: 30_000 });
  assert.match(await historyWith(mira, chat, first), new RegExp(`Kate Moss: ${first}`));

  // Lars adds Nils: Kate's browser reads the group again, and the answer
  // (taken at once, with Mira still in) is held back while Lars removes
  // Mira and Kate writes.
  let taken;
  const answered = new Promise((resolve) => (taken = resolve));
  let release;
  const released = new Promise((resolve) => (release = resolve));
  let held = 0;
  await kate.page.route(
    (url) => new URL(url).pathname === `/v1/chats/${chat}`,
    async (route) => {
      if (route.request().method() !== 'GET' || held++ > 0) return route.continue();
      const response = await route.fetch();
      taken();
      await released;
      await route.fulfill({ response });
    },
  );
  await lars.run(['group', 'add', chat, 'nils']);
  await answered;
  await lars.run(['group', 'remove', chat, 'mira']);
  await kate.page.getByTestId('event-line').filter({ hasText: 'Lars Holm removed Mira Sol' }).waitFor({ timeout: 30_000 });
  const second = marker('second-crossing');
  await sendMessage(kate.page, second);
  await bubbleWith(kate.page, second).waitFor();
  release();

  // Kate's browser ends with the group as it is: Mira gone, Nils in.
  await bubbleWith(kate.page, second).locator('.ticks[data-status=sent], .ticks[data-status=delivered], .ticks[data-status=read]').waitFor({ timeout: 30_000 });
  await kate.page.getByTestId('chat-info').click();
  await kate.page.locator('[data-testid=member][data-username=nils]').waitFor();
  await eventually(async () => (await kate.page.locator('[data-testid=member][data-username=mira]').count()) === 0, { message: 'Mira gone from the member list' });

  // What Kate wrote meanwhile: Nils, just added, reads it, and Lars; it is
  // under a new session, not the one Mira holds.
  assert.match(await historyWith(nils, chat, second), new RegExp(`Kate Moss: ${second}`));
  assert.match(await historyWith(lars, chat, second), new RegExp(`Kate Moss: ${second}`));
  const { token, user } = await sessionOf(kate.page);
  const { messages } = await (await fetch(`${server.url}/v1/chats/${chat}/messages`, { headers: { authorization: `Bearer ${token}` } })).json();
  const mine = messages.filter((m) => m.sender_id === user.id && m.encrypted);
  assert.equal(mine.length, 2);
  assert.notEqual(mine[1].encrypted.session_id, mine[0].encrypted.session_id, 'the session was replaced: Mira never gets its key');
  assert.deepEqual(kate.page.errors, []);
  await kate.context.close();
});
