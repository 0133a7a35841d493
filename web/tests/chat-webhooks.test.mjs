// A group's webhooks, in its info for its admins: Alice (an admin of
// "Support team") is refused a URL Hark will not call (a cloud metadata
// address) with the reason, then adds one pointing at a receiver in this
// process. Its signing secret shows once; Bob's message in the group
// reaches the receiver signed with it (the HMAC checked here as
// docs/integrations.md says), and the delivery log and the list's last
// call say so. When the receiver fails, the webhook turns off with its
// reason and Turn on again delivers what waited. Bob, a member but no
// admin, sees no webhooks in the same info; removing the webhook ends it.

import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { apiRegister, eventually, launchBrowser, login, openChat, openPage, screenshotPath, sendMessage, startServer } from './helpers.mjs';

let server;
let browser;
let receiver;
/** Every call the receiver got, as received. */
const calls = [];
/** What the receiver answers. */
let answer = 204;

before(async () => {
  receiver = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      calls.push({ headers: req.headers, raw, body: JSON.parse(raw.toString()), answered: answer });
      res.writeHead(answer).end();
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  const dir = mkdtempSync(join(tmpdir(), 'hark-chat-webhooks-test-'));
  const config = join(dir, 'hark.toml');
  // Loopback is refused unless the operator allows this host; two failures
  // in a row turn a webhook off (ten by default).
  writeFileSync(config, `[push]\nallow_hosts = ["127.0.0.1:${receiver.address().port}"]\n[webhooks]\nsweep_ms = 200\ndisable_after = 2\n`);
  server = await startServer({ config });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.destroy();
  receiver?.close();
});

/** docs/integrations.md's check: the signature over the exact bytes, a timestamp within five minutes. */
function verify(secret, headers, body) {
  const ts = headers['hark-timestamp'];
  const sig = (headers['hark-signature'] ?? '').replace(/^v1=/, '');
  if (Math.abs(Date.now() / 1000 - Number(ts)) > 300) return false;
  const want = createHmac('sha256', secret).update(`${ts}.`).update(body).digest('hex');
  return sig.length === want.length && timingSafeEqual(Buffer.from(sig), Buffer.from(want));
}

const callFor = (text) => calls.find((c) => c.body.event?.text === text && c.answered === 204);

async function openInfo(page) {
  await page.getByTestId('chat-info').click();
  await page.getByTestId('info-panel').waitFor();
}

test('a group admin adds a webhook in the group info; calls are signed, logged, turned on again and removed; members see none', async () => {
  const alice = await apiRegister(server.url, 'alice', 'Alice Moreau');
  const bob = await apiRegister(server.url, 'bob', 'Bob Lindqvist');
  const group = await alice.post('/v1/chats/groups', { title: 'Support team', members: [bob.user.id] });
  await bob.send(group.id, 'Morning! Queue is quiet so far.');

  const a = await openPage(browser, server.url);
  await login(a.page, 'alice', undefined, { keys: false });
  await openChat(a.page, 'Support team');
  await openInfo(a.page);
  const card = a.page.getByTestId('chat-webhooks-card');
  await card.getByTestId('no-webhooks').waitFor();

  // A cloud metadata address is refused, and the form says why.
  await card.getByTestId('webhook-new').click();
  // A group's webhook is never called for new chats: not offered.
  assert.equal(await card.getByTestId('webhook-kind-chat_created').count(), 0);
  assert.equal(await card.getByTestId('webhook-kind-message_created').isChecked(), true);
  await card.getByTestId('webhook-url').fill('https://169.254.169.254/latest/meta-data');
  await card.getByTestId('webhook-save').click();
  const refusal = card.getByTestId('webhook-error');
  await refusal.waitFor();
  assert.match(await refusal.textContent(), /^This URL is not allowed: 169\.254\.169\.254 is not a public address \(link-local or cloud metadata\)\. Hark calls only https addresses/);
  await card.scrollIntoViewIfNeeded();
  await a.page.screenshot({ path: screenshotPath('chat-webhooks-refused.png') });

  // The receiver's URL (allowed by the operator): the secret shows once.
  const hookUrl = `http://127.0.0.1:${receiver.address().port}/hark/support`;
  await card.getByTestId('webhook-url').fill(hookUrl);
  await card.getByTestId('webhook-save').click();
  const secret = (await card.getByTestId('webhook-secret').textContent()).trim();
  assert.match(secret, /^\S{20,}$/);
  assert.match(await card.getByTestId('webhook-secret-once').textContent(), /shown this once.*Hark-Signature/);
  await card.getByTestId('webhook-secret-copy').waitFor();
  assert.equal(await card.getByTestId('webhook-error').count(), 0, 'the refusal is gone');
  const hook = card.locator('[data-testid=webhook]', { hasText: hookUrl });
  await hook.waitFor();
  const hookId = await hook.getAttribute('data-webhook-id');
  assert.equal(await hook.getByTestId('webhook-events').textContent(), 'Every event');
  assert.equal(await hook.getByTestId('webhook-state').textContent(), 'On');
  assert.equal(await hook.getByTestId('webhook-last').textContent(), 'Not called yet');
  assert.match(await hook.getByTestId('webhook-added-by').textContent(), /^Added by you, /);
  await card.getByTestId('webhook-secret-once').scrollIntoViewIfNeeded();
  await a.page.screenshot({ path: screenshotPath('chat-webhooks-secret.png') });
  await card.getByTestId('webhook-secret-done').click();
  await card.getByTestId('webhook-secret-once').waitFor({ state: 'detached' });

  // Bob writes in the group: the receiver gets it, signed with that secret.
  await bob.send(group.id, 'Customer 4411 asks about a refund.');
  const call = await eventually(() => callFor('Customer 4411 asks about a refund.'), { message: "the webhook called for Bob's message" });
  assert.equal(call.body.kind, 'message_created');
  assert.equal(call.body.chat_id, group.id);
  assert.equal(call.body.webhook_id, hookId);
  assert.equal(call.headers['hark-webhook'], hookId);
  assert.equal(call.headers['hark-event'], call.body.id);
  assert.match(call.headers['hark-signature'], /^v1=[0-9a-f]{64}$/);
  assert.ok(verify(secret, call.headers, call.raw), 'the signature checks out with the secret shown');
  assert.ok(!verify('not-the-secret', call.headers, call.raw), 'and not with another');
  // Alice's own messages too (a chat's webhook is called for every member's).
  await sendMessage(a.page, 'On it, refunds take 3 days.');
  await eventually(() => callFor('On it, refunds take 3 days.'), { message: "the webhook called for Alice's message" });

  // The delivery log, and the list's last call once refreshed.
  await hook.getByTestId('webhook-log').click();
  await eventually(
    async () => {
      await hook.getByTestId('webhook-log-refresh').click();
      return (await hook.getByTestId('webhook-delivery').filter({ hasText: 'Delivered' }).count()) >= 2;
    },
    { message: 'two delivered calls in the log' },
  );
  assert.match(await hook.getByTestId('webhook-delivery').first().textContent(), /New messages.*Delivered · HTTP 204 · \d+ ms/);
  await eventually(async () => /^Last call .*: Delivered · HTTP 204$/.test(await hook.getByTestId('webhook-last').textContent()), {
    message: 'the last call in the list',
  });
  await hook.scrollIntoViewIfNeeded();
  await a.page.screenshot({ path: screenshotPath('chat-webhooks-log.png') });

  // The receiver fails: after two failures in a row the webhook is off, and says why.
  answer = 500;
  await bob.send(group.id, 'Customer 4412 is waiting too.');
  await eventually(
    async () => {
      await hook.getByTestId('webhook-log-refresh').click();
      return (await hook.getAttribute('data-disabled')) === 'true';
    },
    { message: 'the webhook turned off', timeout: 30_000 },
  );
  assert.equal(await hook.getByTestId('webhook-state').textContent(), 'Off: turned off after 2 failed calls in a row');
  await eventually(async () => /Failed · HTTP 500/.test(await hook.getByTestId('webhook-delivery').first().textContent()), { message: 'the failure in the log' });
  await hook.scrollIntoViewIfNeeded();
  await a.page.screenshot({ path: screenshotPath('chat-webhooks-off.png') });
  // Turned on again, it delivers what waited.
  answer = 204;
  await hook.getByTestId('webhook-enable').click();
  await hook.getByTestId('webhook-enable').waitFor({ state: 'detached' });
  assert.equal(await hook.getByTestId('webhook-state').textContent(), 'On');
  const late = await eventually(() => callFor('Customer 4412 is waiting too.'), { message: 'the waiting message delivered once on again' });
  assert.ok(verify(secret, late.headers, late.raw));

  // Bob, a member but not an admin: no webhooks in his group info (and the server refuses him).
  const b = await openPage(browser, server.url);
  await login(b.page, 'bob', undefined, { keys: false });
  await openChat(b.page, 'Support team');
  await openInfo(b.page);
  await b.page.getByTestId('info-panel').getByTestId('member').first().waitFor();
  assert.equal(await b.page.getByTestId('chat-webhooks-card').count(), 0);
  assert.equal(await b.page.getByTestId('webhook-new').count(), 0);
  assert.equal(await b.page.getByTestId('webhook').count(), 0);
  const refused = await fetch(`${server.url}/v1/chats/${group.id}/webhooks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bob.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ url: hookUrl }),
  });
  assert.equal(refused.status, 403);

  // Alice removes it (after confirming): gone from the list and from the server.
  await hook.getByTestId('webhook-remove').click();
  await a.page.getByTestId('confirm-ok').click();
  await hook.waitFor({ state: 'detached' });
  await card.getByTestId('no-webhooks').waitFor();
  assert.deepEqual(await alice.get(`/v1/chats/${group.id}/webhooks`), []);
  const gone = await fetch(`${server.url}/v1/webhooks/${hookId}`, { headers: { authorization: `Bearer ${alice.token}` } });
  assert.equal(gone.status, 404);

  assert.deepEqual(a.page.errors, []);
  assert.deepEqual(b.page.errors, []);
  await a.context.close();
  await b.context.close();
});
