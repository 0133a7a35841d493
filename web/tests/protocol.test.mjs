// Unit tests of the protocol module's pure parts (catch-up and outbox): the
// cases of crates/hark-sdk's sync.rs and outbox.rs, against the TypeScript
// port. The module is bundled with esbuild first; no browser or server needed.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'hark-proto-test-'));
after(() => rmSync(out, { recursive: true, force: true }));
await build({
  entryPoints: [resolve(here, '../src/hark-client/index.ts')],
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  outfile: join(out, 'hark-client.mjs'),
  logLevel: 'error',
});
const { CatchUp, Outbox, newClientId, memoryStore, Connection } = await import(pathToFileURL(join(out, 'hark-client.mjs')).href);

const ev = (pos) => ({ pos, event: { kind: 'receipt', chat_id: 1, user_id: 1, delivered_up_to: pos, read_up_to: 0 } });
const evs = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => ev(from + i));
const applied = (steps) => steps.filter((s) => s.kind === 'apply').map((s) => s.frame.pos);
const syncs = (steps) => steps.filter((s) => s.kind === 'sync').map((s) => s.after);

test('connecting syncs from the cursor and pages until done', () => {
  const c = new CatchUp(3);
  assert.deepEqual(c.connected(), { kind: 'sync', after: 3 });
  let out = [];
  c.synced(evs(2, 6), true, out);
  assert.deepEqual(applied(out), [4, 5, 6]);
  assert.deepEqual(syncs(out), [6]);
  assert.equal(c.isLive, false);
  out = [];
  c.synced(evs(7, 8), false, out);
  assert.deepEqual(applied(out), [7, 8]);
  assert.deepEqual(out.at(-1), { kind: 'live' });
  assert.equal(c.cursor, 8);
});

test('live events during sync are buffered, then applied once', () => {
  const c = new CatchUp(0);
  c.connected();
  const out = [];
  c.live(ev(3), out);
  c.live(ev(4), out);
  assert.deepEqual(out, []);
  c.synced(evs(1, 3), false, out);
  assert.deepEqual(applied(out), [1, 2, 3, 4]);
  assert.equal(c.isLive, true);
});

test('live duplicates are dropped; a gap starts a sync and nothing is lost', () => {
  const c = new CatchUp(5);
  c.connected();
  let out = [];
  c.synced([], false, out);
  out = [];
  c.live(ev(5), out);
  c.live(ev(6), out);
  c.live(ev(6), out);
  assert.deepEqual(applied(out), [6]);
  out = [];
  c.live(ev(8), out); // 7 was lost
  assert.deepEqual(syncs(out), [6]);
  assert.equal(c.isLive, false);
  out = [];
  c.live(ev(9), out);
  c.synced(evs(7, 8), false, out);
  assert.deepEqual(applied(out), [7, 8, 9]);
  assert.equal(c.isLive, true);
});

test('a gap left in the buffer after sync syncs again, keeping the rest', () => {
  const c = new CatchUp(0);
  c.connected();
  let out = [];
  c.live(ev(2), out);
  c.live(ev(5), out);
  c.synced(evs(1, 1), false, out);
  assert.deepEqual(applied(out), [1, 2]);
  assert.deepEqual(syncs(out), [2]);
  out = [];
  c.synced(evs(3, 4), false, out);
  assert.deepEqual(applied(out), [3, 4, 5]);
  assert.equal(c.isLive, true);
});

test('an overflowing buffer is dropped and fetched by another sync', () => {
  const c = new CatchUp(0, 2);
  c.connected();
  let out = [];
  for (let p = 3; p <= 6; p++) c.live(ev(p), out);
  c.synced(evs(1, 2), false, out);
  assert.deepEqual(applied(out), [1, 2]);
  assert.deepEqual(syncs(out), [2]);
  out = [];
  c.synced(evs(3, 6), false, out);
  assert.deepEqual(applied(out), [3, 4, 5, 6]);
  assert.equal(c.isLive, true);
});

test('a reconnect discards the buffer; an empty page claiming more does not loop', () => {
  const c = new CatchUp(0);
  c.connected();
  let out = [];
  c.synced(evs(1, 4), false, out);
  c.disconnected();
  out = [];
  c.live(ev(5), out);
  assert.deepEqual(out, []);
  assert.deepEqual(c.connected(), { kind: 'sync', after: 4 });
  c.synced(evs(3, 5), false, out);
  assert.deepEqual(applied(out), [5]);
  const d = new CatchUp(0);
  d.connected();
  out = [];
  d.synced([], true, out);
  assert.deepEqual(syncs(out), []);
  assert.equal(d.isLive, true);
});

test('outbox resends after a reconnect keep client ids and order, and persist', () => {
  let saved = [];
  const box = new Outbox([], (e) => (saved = structuredClone(e)));
  const send = (chat, text) => ({ kind: 'send', chat_id: chat, client_id: newClientId(), text, queued_at: 0 });
  box.push(send(1, 'a'));
  box.push(send(1, 'b'));
  box.push(send(2, 'c'));
  let n = 0;
  const first = box.unsentFrames(() => ++n);
  assert.deepEqual(first.map((f) => f.id), [1, 2, 3]);
  assert.deepEqual(box.unsentFrames(() => ++n), [], 'nothing is sent twice on one socket');
  assert.equal(box.complete(2).text, 'b');
  box.disconnected();
  assert.equal(box.contains(1), false);
  // A page reload: a new outbox from what was persisted.
  const reloaded = new Outbox(saved);
  n = 100;
  const again = reloaded.unsentFrames(() => ++n);
  assert.deepEqual(again.map((f) => f.id), [101, 102]);
  assert.deepEqual(again.map((f) => f.client_id), [first[0].client_id, first[2].client_id]);
  assert.equal(reloaded.complete(1), undefined, 'an answer for a dead socket finds nothing');
  assert.ok(reloaded.complete(101));
  assert.equal(reloaded.length, 1);
});

test('client ids are 32 hex digits and distinct; marks become mark frames', () => {
  const a = newClientId();
  assert.match(a, /^[0-9a-f]{32}$/);
  assert.notEqual(a, newClientId());
  const box = new Outbox();
  box.push({ kind: 'mark', chat_id: 4, read_up_to: 9 });
  assert.deepEqual(box.unsentFrames(() => 1), [{ type: 'mark', id: 1, chat_id: 4, read_up_to: 9 }]);
});

test('a forward is a forward frame with a stable client id, shown as pending in its target chat', () => {
  let saved = [];
  const box = new Outbox([], (e) => (saved = structuredClone(e)));
  const client_id = newClientId();
  box.push({ kind: 'forward', from_chat_id: 7, seq: 12, to_chat_id: 9, client_id, text: 'hello', queued_at: 5 });
  assert.deepEqual(box.unsentFrames(() => 1), [{ type: 'forward', id: 1, from_chat_id: 7, seq: 12, to_chat_id: 9, client_id }]);
  assert.deepEqual(box.pendingSends(), [{ kind: 'send', chat_id: 9, client_id, text: 'hello', queued_at: 5, forwarded: true }]);
  // Resent after a reload with the same client id, so the server answers a repeat as a duplicate.
  const reloaded = new Outbox(saved);
  assert.equal(reloaded.unsentFrames(() => 2)[0].client_id, client_id);
  assert.equal(reloaded.complete(2).kind, 'forward');
  assert.equal(reloaded.length, 0);
});

/** A scripted WebSocket: records frames, lets the test play the server. */
class FakeSocket {
  static all = [];
  OPEN = 1;
  readyState = 0;
  sent = [];
  constructor(url) {
    this.url = url;
    FakeSocket.all.push(this);
  }
  send(data) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(frame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  drop() {
    this.readyState = 3;
    this.onclose?.({ reason: '' });
  }
}

test('Connection: auth frame, catch-up, live events, resend with the same client id', async () => {
  FakeSocket.all = [];
  const store = memoryStore();
  store.saveCursor(10);
  const conn = new Connection({ url: 'ws://x/v1/ws', token: 't0k', store, WebSocket: FakeSocket, backoff: { initialMs: 1, maxMs: 2 } });
  const seen = [];
  conn.subscribe((e) => e.type === 'event' && seen.push(e.pos));
  conn.start();
  const ws = FakeSocket.all[0];
  ws.open();
  assert.deepEqual(ws.sent[0], { type: 'auth', id: 1, token: 't0k' });
  const clientId = conn.send(7, 'hello'); // queued before hello: goes out after it
  ws.receive({ type: 'hello', id: 1, protocol: 1, user: { id: 1, username: 'a', display_name: 'A' }, device_id: 3, head: 12, limits: {} });
  const sync = ws.sent.find((f) => f.type === 'sync');
  assert.deepEqual(sync, { type: 'sync', id: sync.id, after: 10, limit: 500 });
  const send = ws.sent.find((f) => f.type === 'send');
  assert.equal(send.client_id, clientId);
  ws.receive({ type: 'event', pos: 12, event: ev(12).event }); // live while syncing: buffered
  ws.receive({ type: 'synced', id: sync.id, events: evs(11, 12), head: 12, more: false });
  assert.deepEqual(seen, [11, 12]);
  assert.equal(conn.state.status, 'live');
  assert.equal(store.loadCursor(), 12);
  // The socket drops before the ack: the send goes out again with the same client id.
  ws.drop();
  assert.equal(conn.state.status, 'reconnecting');
  await new Promise((r) => setTimeout(r, 20));
  const ws2 = FakeSocket.all[1];
  ws2.open();
  ws2.receive({ type: 'hello', id: ws2.sent[0].id, protocol: 1, user: { id: 1, username: 'a', display_name: 'A' }, device_id: 3, head: 13, limits: {} });
  const resend = ws2.sent.find((f) => f.type === 'send');
  assert.equal(resend.client_id, clientId);
  assert.ok(resend.id > send.id, 'frame ids keep growing across sockets');
  let acked = null;
  conn.subscribe((e) => e.type === 'ack' && (acked = e.ack));
  ws2.receive({ type: 'ack', id: resend.id, chat_id: 7, seq: 4, client_id: clientId, sent_at: 1, duplicate: true });
  assert.equal(acked.seq, 4);
  assert.deepEqual(conn.state.pending, []);
  // A revoked device stops for good.
  ws2.receive({ type: 'error', code: 'revoked', message: 'logged out' });
  assert.equal(conn.state.status, 'closed');
  assert.equal(conn.state.closedCode, 'revoked');
});

test('Connection: watch is re-sent on every socket; presence and typing are surfaced; their errors ignored', async () => {
  FakeSocket.all = [];
  const store = memoryStore();
  store.saveCursor(0);
  const conn = new Connection({ url: 'ws://x/v1/ws', token: 't', store, WebSocket: FakeSocket, backoff: { initialMs: 1, maxMs: 2 } });
  const seen = [];
  conn.subscribe((e) => (e.type === 'presence' || e.type === 'typing') && seen.push(e));
  conn.start();
  const hello = (ws) => ws.receive({ type: 'hello', id: ws.sent[0].id, protocol: 1, user: { id: 1, username: 'a', display_name: 'A' }, device_id: 3, head: 0, limits: {} });
  conn.watch([2], [7]); // before any socket: remembered
  const ws = FakeSocket.all[0];
  ws.open();
  hello(ws);
  const watch = ws.sent.find((f) => f.type === 'watch');
  assert.deepEqual(watch, { type: 'watch', id: watch.id, users: [2], chats: [7] });
  ws.receive({ type: 'watching', id: watch.id, presence: [{ user_id: 2, online: true, last_seen: null }] });
  ws.receive({ type: 'typing', chat_id: 7, user_id: 2, activity: 'typing', expires_in_ms: 6000 });
  ws.receive({ type: 'presence', user_id: 2, online: false, last_seen: 5 });
  ws.receive({ type: 'something_new' }); // a newer server's frame: ignored
  assert.deepEqual(seen.map((e) => e.type), ['presence', 'typing', 'presence']);
  assert.equal(seen[2].presence.last_seen, 5);
  conn.typing(7, 'typing');
  const typing = ws.sent.find((f) => f.type === 'typing');
  ws.receive({ type: 'error', id: typing.id, code: 'rate_limited', message: 'slow down' });
  assert.equal(conn.state.status, 'syncing', 'an ephemeral error does not disturb the socket');
  ws.receive({ type: 'presence_reset' });
  assert.equal(ws.sent.filter((f) => f.type === 'watch').length, 2, 'presence_reset asks again');
  ws.drop();
  await new Promise((r) => setTimeout(r, 20));
  const ws2 = FakeSocket.all[1];
  ws2.open();
  hello(ws2);
  assert.deepEqual(ws2.sent.find((f) => f.type === 'watch').users, [2]);
  conn.close();
});

test('Connection: account_disabled ends it for good (refused auth, error frame, or the close frame alone); slow_consumer reconnects', async () => {
  const hello = (ws) => ws.receive({ type: 'hello', id: ws.sent[0].id, protocol: 1, user: { id: 1, username: 'a', display_name: 'A' }, device_id: 3, head: 0, limits: {} });
  for (const how of ['auth', 'frame', 'close']) {
    FakeSocket.all = [];
    const store = memoryStore();
    store.saveCursor(0);
    const conn = new Connection({ url: 'ws://x/v1/ws', token: 't', store, WebSocket: FakeSocket, backoff: { initialMs: 1, maxMs: 2 } });
    let closed;
    conn.subscribe((e) => e.type === 'closed' && (closed = e.code));
    conn.start();
    const ws = FakeSocket.all[0];
    ws.open();
    if (how === 'auth') {
      ws.receive({ type: 'error', id: ws.sent[0].id, code: 'account_disabled', message: 'account disabled' });
    } else {
      hello(ws);
      if (how === 'frame') ws.receive({ type: 'error', code: 'account_disabled', message: 'account disabled' });
      else {
        ws.readyState = 3;
        ws.onclose?.({ code: 1008, reason: 'account_disabled' });
      }
    }
    assert.equal(conn.state.status, 'closed', how);
    assert.equal(conn.state.closedCode, 'account_disabled', how);
    assert.equal(closed, 'account_disabled', how);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(FakeSocket.all.length, 1, `${how}: no reconnect`);
  }
  FakeSocket.all = [];
  const store = memoryStore();
  store.saveCursor(0);
  const conn = new Connection({ url: 'ws://x/v1/ws', token: 't', store, WebSocket: FakeSocket, backoff: { initialMs: 1, maxMs: 2 } });
  conn.start();
  FakeSocket.all[0].open();
  hello(FakeSocket.all[0]);
  FakeSocket.all[0].readyState = 3;
  FakeSocket.all[0].onclose?.({ code: 1008, reason: 'slow_consumer' });
  assert.equal(conn.state.status, 'reconnecting');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(FakeSocket.all.length, 2, 'slow_consumer: a new socket');
  conn.close();
});
