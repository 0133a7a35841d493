// Bots: Petra makes a bot in Settings → Bots and a token for it (read and
// send), shown once with a copy button; the test uses that token over
// plain HTTP (fetch in node, as the program running the bot would) to
// write into Petra's one-to-one chat with the bot, and Petra sees the
// message with a "bot" badge next to the bot's name in the chat row, the
// chat header and the contact info. A webhook added to the bot in the same
// card shows its secret once, is called (at a receiver in this process)
// for Petra's message to the bot, and its delivery log says so; revoking
// the token stops it working.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { eventually, launchBrowser, openPage, register, screenshotPath, sendMessage, startServer } from './helpers.mjs';

let server;
let browser;
let receiver;
const calls = [];

before(async () => {
  // The webhook's receiver: every call kept, each answered 204.
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      calls.push({ headers: req.headers, raw: body, body: JSON.parse(body) });
      res.writeHead(204).end();
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  const port = receiver.address().port;
  const dir = mkdtempSync(join(tmpdir(), 'hark-bots-test-'));
  const config = join(dir, 'hark.toml');
  // A webhook on this machine is allowed only when the operator says so.
  writeFileSync(config, `[push]\nallow_hosts = ["127.0.0.1:${port}"]\n[webhooks]\nsweep_ms = 200\n`);
  server = await startServer({ config });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.destroy();
  receiver?.close();
});

async function openSettings(page) {
  await page.getByTestId('menu').click();
  await page.getByTestId('settings').click();
}

/** Sends `text` into `chatId` with a bot's token, as its program would. */
async function botSend(token, chatId, text) {
  return fetch(`${server.url}/v1/chats/${chatId}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: `bot-${Math.random().toString(36).slice(2)}`, text }),
  });
}

test('make a bot and a token in Settings, the bot writes over HTTP, the person sees it with a badge', async () => {
  const { context, page } = await openPage(browser, server.url);
  await register(page, 'petra', 'Petra', undefined, { keys: false });

  // Settings → Bots: none yet; make one.
  await openSettings(page);
  const card = page.getByTestId('bots-card');
  await card.getByTestId('no-bots').waitFor();
  await card.getByTestId('bot-create').click();
  await card.getByTestId('bot-username').fill('helperbot');
  await card.getByTestId('bot-name').fill('Helper');
  await card.getByTestId('bot-create-save').click();
  const bot = card.locator('[data-testid=bot][data-username=helperbot]');
  await bot.getByTestId('bot-badge').waitFor();
  // It opens by itself once made: its tokens and webhooks.
  await bot.getByTestId('bot-detail').waitFor();

  // A token that may read and send (ticked by default), in every chat.
  await bot.getByTestId('bot-token-new').click();
  assert.equal(await bot.getByTestId('bot-action-read').isChecked(), true);
  assert.equal(await bot.getByTestId('bot-action-send').isChecked(), true);
  assert.equal(await bot.getByTestId('bot-action-react').isChecked(), false);
  await bot.getByTestId('bot-token-name').fill('echo program');
  await bot.getByTestId('bot-token-save').click();
  const shown = bot.getByTestId('bot-token');
  await shown.waitFor();
  const token = (await shown.textContent()).trim();
  assert.match(token, /^\S{20,}$/);
  assert.match(await bot.getByTestId('bot-token-once').textContent(), /shown this once/);
  await bot.getByTestId('bot-token-copy').waitFor();
  const row = bot.locator('[data-testid=bot-token-row]', { hasText: 'echo program' });
  assert.match(await row.getByTestId('bot-token-scope').textContent(), /read, send · every chat of the bot/);
  await card.scrollIntoViewIfNeeded();
  await card.screenshot({ path: screenshotPath('bots-card-token.png') });
  await bot.getByTestId('bot-token-done').click();
  await bot.getByTestId('bot-token-once').waitFor({ state: 'detached' });

  // A webhook for the bot's new messages: its secret shown once.
  await bot.getByTestId('webhook-new').click();
  const hookUrl = `http://127.0.0.1:${receiver.address().port}/hark`;
  await bot.getByTestId('webhook-url').fill(hookUrl);
  for (const kind of ['message_edited', 'message_deleted', 'member_joined', 'member_left', 'reaction', 'chat_created']) {
    await bot.getByTestId(`webhook-kind-${kind}`).uncheck();
  }
  await bot.getByTestId('webhook-save').click();
  const secret = (await bot.getByTestId('webhook-secret').textContent()).trim();
  assert.match(secret, /^\S{20,}$/);
  const hook = bot.locator('[data-testid=webhook]', { hasText: hookUrl });
  await hook.waitFor();
  assert.match(await hook.textContent(), /New messages/);
  assert.equal(await hook.getByTestId('webhook-state').textContent(), 'On');
  await bot.getByTestId('webhook-secret-done').click();
  await page.getByTestId('back').click();

  // Petra opens a (plain) chat with the bot: the search shows its badge.
  await page.getByTestId('new-chat').click();
  await page.getByTestId('e2e-toggle').uncheck();
  await page.getByTestId('people-search').fill('helperbot');
  const result = page.locator('[data-testid=user-result][data-username=helperbot]');
  await result.getByTestId('bot-badge').waitFor();
  await result.click();
  const pane = page.getByTestId('chat-pane');
  await pane.waitFor();
  const chatId = Number(await pane.getAttribute('data-chat-id'));
  assert.ok(chatId > 0);

  // The bot's program writes with the token alone.
  const sent = await botSend(token, chatId, 'Hello Petra, I am a bot.');
  assert.equal(sent.status, 200, await sent.clone().text());
  const inbound = page.locator('[data-testid=msg-in]', { hasText: 'Hello Petra, I am a bot.' });
  await inbound.waitFor({ timeout: 20_000 });
  await page.locator('.chat-title-row [data-testid=bot-badge]').waitFor();
  const chatRow = page.locator(`[data-testid=chat-row][data-chat-id="${chatId}"]`);
  await chatRow.getByTestId('bot-badge').waitFor();
  assert.equal(await chatRow.getByTestId('chat-title').textContent(), 'Helper');
  await page.screenshot({ path: screenshotPath('bots-chat.png') });

  // Petra answers: the bot's webhook is called, signed, and the log says so.
  await sendMessage(page, 'Hi bot!');
  await eventually(() => calls.some((c) => c.body.event?.text === 'Hi bot!'), { message: 'the webhook called for Petra’s message' });
  const call = calls.find((c) => c.body.event?.text === 'Hi bot!');
  assert.equal(call.body.kind, 'message_created');
  assert.match(call.headers['hark-signature'], /^v1=[0-9a-f]{64}$/);
  {
    const { createHmac } = await import('node:crypto');
    const mac = createHmac('sha256', secret).update(`${call.headers['hark-timestamp']}.${call.raw}`);
    assert.equal(call.headers['hark-signature'], `v1=${mac.digest('hex')}`);
  }

  // The contact info shows the badge too.
  await page.locator('.chat-header').click();
  await page.locator('[data-testid=info-title] [data-testid=bot-badge]').waitFor();

  await openSettings(page);
  const again = page.locator('[data-testid=bot][data-username=helperbot]');
  await again.getByTestId('bot-manage').click();
  const hookAgain = again.locator('[data-testid=webhook]', { hasText: hookUrl });
  await hookAgain.getByTestId('webhook-log').click();
  await eventually(
    async () => {
      await hookAgain.getByTestId('webhook-log-refresh').click();
      return (await hookAgain.getByTestId('webhook-delivery').filter({ hasText: 'Delivered' }).count()) > 0;
    },
    { message: 'a delivered call in the log' },
  );
  assert.match(await hookAgain.getByTestId('webhook-delivery').first().textContent(), /New messages.*Delivered · HTTP 204/);
  await again.scrollIntoViewIfNeeded();
  await again.screenshot({ path: screenshotPath('bots-card-webhook.png') });

  // Revoking the token: the program is signed out.
  await again.locator('[data-testid=bot-token-row]', { hasText: 'echo program' }).getByTestId('bot-token-revoke').click();
  await page.getByTestId('confirm-ok').click();
  await again.getByTestId('bot-token-row').waitFor({ state: 'detached' });
  const refused = await botSend(token, chatId, 'still here?');
  assert.equal(refused.status, 401);

  assert.deepEqual(page.errors, []);
  await context.close();
});
