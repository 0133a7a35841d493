// The SignalR hub and the web client together: Bob's program connects to
// `/chat` with the official @microsoft/signalr client (tools/signalr's,
// the one the hub tests drive; installed here through
// scripts/signalr.sh setup) and invokes SendMessage(Alice's id, text).
// Alice, signed in in the browser, sees the new chat with Bob and the
// message in it; her reply typed in the browser reaches Bob's
// ReceiveMessage handler (the text alone) and ReceiveChatMessage (the
// chat, the sender), and shows two ticks: the hub marks what it hands
// over delivered. Bob's MarkRead turns them blue.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { apiRegister, chatRow, eventually, expectStatus, launchBrowser, login, openChat, openPage, repo, screenshotPath, sendMessage, startServer } from './helpers.mjs';

let server;
let browser;
let signalR;
let connection;

before(async () => {
  // tools/signalr/node_modules, when missing or older than its lockfile (npm ci).
  execFileSync(join(repo, 'scripts', 'signalr.sh'), ['setup'], { stdio: ['ignore', 'inherit', 'inherit'] });
  signalR = createRequire(join(repo, 'tools', 'signalr', 'client.mjs'))('@microsoft/signalr');
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await connection?.stop();
  await browser?.close();
  await server?.destroy();
});

test('a message sent through the SignalR hub shows in the web client, and the reply typed there reaches the hub client', async () => {
  const alice = await apiRegister(server.url, 'alice', 'Alice Moreau');
  const bob = await apiRegister(server.url, 'bob', 'Bob Lindqvist');

  const { context, page } = await openPage(browser, server.url);
  await login(page, 'alice', undefined, { keys: false });

  // Bob's program: the docs' JavaScript client, with his device token.
  const received = [];
  const chatMessages = [];
  const receipts = [];
  connection = new signalR.HubConnectionBuilder()
    .withUrl(`${server.url}/chat`, { accessTokenFactory: () => bob.token })
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  // Handlers return nothing: a value returned is a client result, which the
  // client reports as an error for an invocation that expects none.
  connection.on('ReceiveMessage', (message) => void received.push(message));
  connection.on('ReceiveChatMessage', (m) => void chatMessages.push(m));
  connection.on('Receipt', (r) => void receipts.push(r));
  await connection.start();
  assert.equal(connection.state, signalR.HubConnectionState.Connected);

  const ack = await connection.invoke('SendMessage', String(alice.user.id), 'hello from SignalR');
  assert.ok(ack.chatId > 0 && ack.seq > 0, JSON.stringify(ack));
  assert.equal(ack.duplicate, false);

  // Alice's browser: a new chat with Bob, the message in it.
  const row = chatRow(page, 'Bob Lindqvist');
  await row.waitFor({ timeout: 20_000 });
  assert.match(await row.textContent(), /hello from SignalR/);
  await openChat(page, 'Bob Lindqvist');
  assert.equal(Number(await page.getByTestId('chat-pane').getAttribute('data-chat-id')), ack.chatId);
  await page.locator('[data-testid=msg-in] [data-testid=msg-text]', { hasText: 'hello from SignalR' }).waitFor();
  // Opened, it is read: Bob's program hears of it.
  await eventually(() => receipts.some((r) => r.chatId === ack.chatId && r.userId === alice.user.id && r.readUpTo >= ack.seq), {
    message: "Alice's read receipt at the hub client",
  });

  // Alice answers in the browser: Bob's handlers get it.
  await sendMessage(page, 'hi Bob, got it in the browser');
  await eventually(() => received.includes('hi Bob, got it in the browser'), { message: 'ReceiveMessage with the reply' });
  const reply = chatMessages.find((m) => m.text === 'hi Bob, got it in the browser');
  assert.ok(reply, JSON.stringify(chatMessages));
  assert.equal(reply.chatId, ack.chatId);
  assert.equal(reply.senderId, alice.user.id);
  assert.equal(reply.senderName, 'Alice Moreau');
  assert.equal(reply.encrypted, false);
  // Handed over by the hub: delivered (two ticks); Bob's MarkRead turns them blue.
  await expectStatus(page, 'hi Bob, got it in the browser', 'delivered');
  assert.equal(await connection.invoke('MarkRead', ack.chatId, reply.seq), null);
  await expectStatus(page, 'hi Bob, got it in the browser', 'read');
  // Bob's own message never comes back to him as ReceiveMessage.
  assert.deepEqual(received, ['hi Bob, got it in the browser']);

  await page.screenshot({ path: screenshotPath('signalr-chat.png') });
  assert.deepEqual(page.errors, []);
  await connection.stop();
  await context.close();
});
