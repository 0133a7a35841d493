// Deleting your account (Settings → Delete account). Amy and Ben chat; Amy
// deletes her account in her browser: a wrong password is refused in plain
// words and nothing happens, the right one (with DELETE typed out) takes
// her browser back to the login screen saying "Your account was deleted."
// and her login no longer works. In Ben's open chat, live, her messages
// show as deleted (as a delete for everyone shows), her name as "Deleted
// account", the composer gives way to "This account was deleted" and the
// chat menu offers no contact or block items. With two-step verification
// on, the card asks for a code too: a wrong one is refused, a recovery
// code works.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  apiRegister,
  awayFromStepEdge,
  launchBrowser,
  login,
  openChat,
  openPage,
  register,
  screenshotPath,
  sendMessage,
  startServer,
  totp,
  totpStep,
  wrongTotp,
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

/** The status of a login over HTTP with this password. */
async function loginStatus(username, password) {
  const res = await fetch(`${server.url}/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password, device_name: 'deleted check' }),
  });
  return res.status;
}

/** `api` opens the plain one-to-one chat with `username`; resolves to its id. */
async function directWith(api, username) {
  const [user] = (await api.get(`/v1/users?q=${username}`)).filter((u) => u.username === username);
  return (await api.post('/v1/chats/direct', { user_id: user.id })).id;
}

/** Settings, scrolled to the Delete account card, its form open. */
async function openDeleteForm(page) {
  await page.getByTestId('menu').click();
  await page.getByTestId('settings').click();
  const card = page.getByTestId('delete-account');
  await card.scrollIntoViewIfNeeded();
  await card.getByTestId('delete-account-start').click();
  return card;
}

test('delete your account: refused with a wrong password, then gone for everyone', async () => {
  const amyPassword = 'amy-password-1';
  const amyApi = await apiRegister(server.url, 'amy', 'Amy', amyPassword);
  const ben = await openPage(browser, server.url);
  await register(ben.page, 'ben', 'Ben', undefined, { keys: false });
  const chatId = await directWith(amyApi, 'ben');
  await amyApi.send(chatId, 'Hi Ben, Amy here');
  await amyApi.send(chatId, 'A second line from Amy');

  await openChat(ben.page, 'Amy');
  await sendMessage(ben.page, 'Hello Amy');
  await ben.page.locator('[data-testid=msg-in]').nth(1).waitFor();

  const amy = await openPage(browser, server.url);
  await login(amy.page, 'amy', amyPassword, { keys: false });
  const { page } = amy;
  const card = await openDeleteForm(page);
  await card.getByTestId('delete-account-facts').filter({ hasText: 'erased for everyone' }).waitFor();
  // No two-step verification on: no code asked for.
  await card.getByTestId('delete-account-password').waitFor();
  assert.equal(await card.getByTestId('delete-account-code').count(), 0);

  // The button waits for DELETE typed out.
  await card.getByTestId('delete-account-password').fill('not-my-password');
  assert.equal(await card.getByTestId('delete-account-submit').isDisabled(), true);
  await card.getByTestId('delete-account-confirm').fill('DELETE');
  await card.getByTestId('delete-account-submit').click();
  await card.getByTestId('delete-account-error').filter({ hasText: 'That password is wrong.' }).waitFor();
  await page.screenshot({ path: screenshotPath('delete-account-wrong-password.png') });
  // Nothing was done: Amy is still here, her messages still in Ben's chat.
  assert.equal(await page.getByTestId('app').count(), 1);
  assert.equal(await ben.page.locator('[data-testid=msg-in][data-deleted=true]').count(), 0);

  await card.getByTestId('delete-account-password').fill(amyPassword);
  await card.getByTestId('delete-account-submit').click();
  // Her browser: the login screen, saying why.
  await page.getByTestId('auth-form').waitFor({ timeout: 20_000 });
  await page.getByTestId('auth-error').filter({ hasText: 'Your account was deleted.' }).waitFor();
  await page.screenshot({ path: screenshotPath('delete-account-login.png') });
  assert.equal(await loginStatus('amy', amyPassword), 401);
  const me = await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${amyApi.token}` } });
  assert.equal(me.status, 401, 'her other device is logged out too');

  // Ben's open chat, live: her messages erased, her name gone, no composer.
  const bp = ben.page;
  await bp.locator('[data-testid=msg-in][data-deleted=true]').nth(1).waitFor();
  assert.deepEqual(await bp.locator('[data-testid=msg-in] [data-testid=msg-text]').allTextContents(), ['This message was deleted', 'This message was deleted']);
  assert.equal(await bp.locator('[data-testid=msg-out] [data-testid=msg-text]').textContent(), 'Hello Amy');
  await bp.getByTestId('chat-header-title').filter({ hasText: 'Deleted account' }).waitFor({ timeout: 10_000 });
  await bp.getByTestId('deleted-bar').filter({ hasText: 'This account was deleted' }).waitFor();
  assert.equal(await bp.getByTestId('composer').count(), 0);
  await bp.locator('[data-testid=chat-row] [data-testid=chat-title]', { hasText: 'Deleted account' }).waitFor();
  await bp.screenshot({ path: screenshotPath('delete-account-peer.png') });
  // Nobody to add or block.
  await bp.getByTestId('chat-header-menu').click();
  await bp.getByTestId('chat-menu').waitFor();
  for (const item of ['chat-menu-add-contact', 'chat-menu-remove-contact', 'chat-menu-block', 'chat-menu-unblock']) {
    assert.equal(await bp.getByTestId(item).count(), 0, `${item} offered`);
  }
  await bp.keyboard.press('Escape');

  assert.deepEqual(page.errors, []);
  assert.deepEqual(bp.errors, []);
  await amy.context.close();
  await ben.context.close();
});

test('with two-step verification on, deleting asks for a code', async () => {
  const password = 'cleo-password-1';
  const cleoApi = await apiRegister(server.url, 'cleo', 'Cleo', password);
  const { secret } = await cleoApi.post('/v1/me/two-factor', { password });
  // Turned on over the API, with the previous step's code (not at a step's
  // edge: the server takes one step either side of its own).
  await awayFromStepEdge();
  const { recovery_codes } = await cleoApi.post('/v1/me/two-factor/confirm', { code: totp(secret, totpStep() - 1) });

  const { context, page } = await openPage(browser, server.url);
  await page.locator('input[name=username]').fill('cleo');
  await page.locator('input[name=password]').fill(password);
  await page.getByTestId('auth-submit').click();
  await page.getByTestId('auth-code').fill(recovery_codes[0]);
  await page.getByTestId('auth-submit').click();
  await page.getByTestId('chat-list').waitFor({ timeout: 30_000 });

  const card = await openDeleteForm(page);
  await card.getByTestId('delete-account-password').fill(password);
  await card.getByTestId('delete-account-code').fill(wrongTotp(secret));
  await card.getByTestId('delete-account-confirm').fill('delete');
  await card.getByTestId('delete-account-submit').click();
  await card.getByTestId('delete-account-error').filter({ hasText: 'That code is not right.' }).waitFor();
  await page.screenshot({ path: screenshotPath('delete-account-two-factor.png') });
  // Nothing was done: her other device still works.
  assert.equal((await cleoApi.get('/v1/me')).user.username, 'cleo');

  await card.getByTestId('delete-account-code').fill(recovery_codes[1]);
  await card.getByTestId('delete-account-submit').click();
  await page.getByTestId('auth-error').filter({ hasText: 'Your account was deleted.' }).waitFor({ timeout: 20_000 });
  assert.equal(await loginStatus('cleo', password), 401);
  assert.equal((await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${cleoApi.token}` } })).status, 401);
  assert.deepEqual(page.errors, []);
  await context.close();
});
