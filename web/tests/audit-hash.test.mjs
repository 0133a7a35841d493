// Unit tests of the audit log's hash chain in the protocol module
// (src/hark-client/audit.ts): the worked example of docs/protocol.md "The
// hash chain", `detail` written as serde_json writes a BTreeMap, and the
// checks (a changed row, a removed one, a cut end, rows written during the
// read, retention) on rows made here and on a fake API. Bundled with
// esbuild; no browser or server needed (Node has crypto.subtle).

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'hark-audit-test-'));
after(() => rmSync(out, { recursive: true, force: true }));
await build({
  entryPoints: [resolve(here, '../src/hark-client/index.ts')],
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  outfile: join(out, 'hark-client.mjs'),
  logLevel: 'error',
});
const { AUDIT_GENESIS, auditDetailJson, auditHashText, chainHash, describeAuditBreak, verifyAuditLog, verifyEnd, verifyRun } = await import(
  pathToFileURL(join(out, 'hark-client.mjs')).href
);

/** docs/protocol.md's `AuditEntry` example (row 1). */
const EXAMPLE = {
  id: 1,
  at: 1700000000001,
  action: 'login',
  actor: 7,
  actor_device: 9,
  target_user: null,
  target_device: null,
  chat: null,
  address: '192.0.2.1',
  detail: { device_name: 'phone' },
  hash: '85c587b5a12ec0b3d38c6dd70d0f33a50309068923a749414cd9192ed67b42fc',
};

test('the worked example of docs/protocol.md hashes to 85c587b5…42fc', async () => {
  assert.equal(
    auditHashText(AUDIT_GENESIS, EXAMPLE),
    `hark-audit-v1\n${'0'.repeat(64)}\n1\n1700000000001\nlogin\n7\n9\n\n\n\n192.0.2.1\n{"device_name":"phone"}`,
  );
  assert.equal(await chainHash(AUDIT_GENESIS, EXAMPLE), EXAMPLE.hash);
  // And the hash the document prints is the one it gives for that row.
  const doc = readFileSync(resolve(here, '../../docs/protocol.md'), 'utf8');
  assert.ok(doc.includes(`"hash": "${EXAMPLE.hash}"`), 'docs/protocol.md prints this hash');
});

test('detail is compact JSON with its keys in code point order, escaped as serde_json escapes', () => {
  assert.equal(auditDetailJson({}), '{}');
  assert.equal(auditDetailJson(undefined), '{}');
  // A JS object lists integer-like keys first; a BTreeMap sorts them as strings.
  assert.equal(auditDetailJson({ seq: '41', 10: 'b', 9: 'a', members: '2,3' }), '{"10":"b","9":"a","members":"2,3","seq":"41"}');
  // UTF-8 byte order (Rust's), not UTF-16's: U+FF5E sorts before U+1F600, which sort() would put first.
  assert.equal(auditDetailJson({ '😀': '1', '～': '2' }), '{"～":"2","😀":"1"}');
  // serde_json: \" \\ and the short forms, \u00xx for other control characters, everything else as is.
  assert.equal(
    auditDetailJson({ username: 'a"b\\c\n\t\r\b\f\u0001\u001f\u007f é 😀 </script> \u2028' }),
    '{"username":"a\\"b\\\\c\\n\\t\\r\\b\\f\\u0001\\u001f\u007f é 😀 </script> \u2028"}',
  );
});

test('absent values are empty lines; numbers as decimals', () => {
  const row = { ...EXAMPLE, actor: null, actor_device: null, target_user: 12, target_device: 34, chat: 56, address: null, detail: {} };
  assert.equal(auditHashText('ab', row), 'hark-audit-v1\nab\n1\n1700000000001\nlogin\n\n\n12\n34\n56\n\n{}');
});

/** A chain of `n` rows from `from`, built with the module's own hash (the example above pins it to the server's). */
async function chain(n, { from = 1, previous = AUDIT_GENESIS } = {}) {
  const rows = [];
  for (let id = from; id < from + n; id++) {
    const row = { ...EXAMPLE, id, at: 1700000000000 + id, detail: { device_name: `phone ${id}` } };
    row.hash = await chainHash(previous, row);
    previous = row.hash;
    rows.push(row);
  }
  return rows;
}

test('an intact run checks, page by page too; a change, a removal or a cut end shows', async () => {
  const rows = await chain(5);
  const whole = await verifyRun(AUDIT_GENESIS, 1, rows);
  assert.deepEqual(whole, { ok: true, last: rows[4].hash, nextId: 6 });
  const first = await verifyRun(AUDIT_GENESIS, 1, rows.slice(0, 2));
  assert.deepEqual(await verifyRun(first.last, first.nextId, rows.slice(2)), whole);
  const head = { pruned_through: 0, pruned_hash: AUDIT_GENESIS, last_id: 5, last_hash: rows[4].hash };
  assert.equal(verifyEnd(head, whole.last, whole.nextId), null);

  // A changed row (here its address, as the browser test does in the database).
  const changed = rows.map((r) => ({ ...r }));
  changed[1].address = '203.0.113.9';
  const broken = await verifyRun(AUDIT_GENESIS, 1, changed);
  assert.equal(broken.ok, false);
  assert.equal(broken.checked, 1);
  assert.equal(broken.broken.kind, 'hash');
  assert.equal(broken.broken.id, 2);
  assert.equal(broken.broken.stored, rows[1].hash);
  assert.match(describeAuditBreak(broken.broken), /^row 2 does not match its hash \(it stores [0-9a-f]{12}…, its content hashes to [0-9a-f]{12}…\)$/);

  // A row whose hash was rewritten to match breaks the next one.
  changed[1].hash = await chainHash(rows[0].hash, changed[1]);
  const next = await verifyRun(AUDIT_GENESIS, 1, changed);
  assert.deepEqual([next.broken.kind, next.broken.id], ['hash', 3]);

  // A removed row.
  const removed = [...rows.slice(0, 2), ...rows.slice(3)];
  const gap = await verifyRun(AUDIT_GENESIS, 1, removed);
  assert.deepEqual(gap.broken, { kind: 'gap', expected: 3, id: 4 });
  assert.equal(describeAuditBreak(gap.broken), 'row 3 is missing (row 4 came in its place)');

  // Rows cut from the end (the head still says 5).
  const cut = await verifyRun(AUDIT_GENESIS, 1, rows.slice(0, 4));
  assert.deepEqual(verifyEnd(head, cut.last, cut.nextId), { kind: 'end', expected: 5, last: 4 });
  assert.equal(describeAuditBreak(verifyEnd(head, cut.last, cut.nextId)), 'the log ends at row 4, but its head says 5');
  assert.equal(verifyEnd({ ...head, last_hash: 'f'.repeat(64) }, whole.last, whole.nextId).kind, 'end_hash');
});

/** A stand-in for the two routes: `rows` served oldest first in pages of `pageSize` as the server pages them. */
function fakeApi(rows, head, { pageSize = 2 } = {}) {
  const calls = [];
  return {
    calls,
    async adminAuditChain() {
      calls.push('chain');
      return typeof head === 'function' ? head() : head;
    },
    async adminAudit(q) {
      calls.push(`after=${q.after}`);
      assert.equal(q.before, undefined);
      const limit = Math.min(q.limit, pageSize);
      const after = rows.filter((r) => r.id > q.after);
      const entries = after.slice(0, limit);
      return { entries, next: after.length > limit ? entries.at(-1).id : null };
    },
  };
}

test('verifyAuditLog reads from after=0 by next, checks the head, and leaves out rows written meanwhile', async () => {
  const rows = await chain(5);
  const head = { pruned_through: 0, pruned_hash: AUDIT_GENESIS, last_id: 5, last_hash: rows[4].hash };
  const progress = [];
  const api = fakeApi(rows, head);
  const verdict = await verifyAuditLog(api, (checked, total) => progress.push([checked, total]));
  assert.deepEqual(verdict, { ok: true, rows: 5, chain: head });
  assert.deepEqual(api.calls, ['chain', 'after=0', 'after=2', 'after=4']);
  assert.deepEqual(progress.at(-1), [5, 5]);

  // Two rows written after the head was read are not part of this check.
  const more = await chain(2, { from: 6, previous: rows[4].hash });
  assert.deepEqual(await verifyAuditLog(fakeApi([...rows, ...more], head)), { ok: true, rows: 5, chain: head });

  // A changed row: where, and how many before it checked.
  const changed = rows.map((r) => ({ ...r }));
  changed[3].detail = { device_name: 'laptop' };
  const broken = await verifyAuditLog(fakeApi(changed, head));
  assert.equal(broken.ok, false);
  assert.equal(broken.rows, 3);
  assert.deepEqual([broken.broken.kind, broken.broken.id], ['hash', 4]);

  // Rows cut from the end, head untouched.
  const cut = await verifyAuditLog(fakeApi(rows.slice(0, 3), head));
  assert.deepEqual(cut.broken, { kind: 'end', expected: 5, last: 3 });

  // An empty log.
  assert.deepEqual(await verifyAuditLog(fakeApi([], { ...head, last_id: 0, last_hash: AUDIT_GENESIS })), {
    ok: true,
    rows: 0,
    chain: { ...head, last_id: 0, last_hash: AUDIT_GENESIS },
  });
});

test('after retention the check starts from pruned_hash at pruned_through + 1, and starts over if retention ran meanwhile', async () => {
  const rows = await chain(6);
  const kept = rows.slice(2);
  const head = { pruned_through: 2, pruned_hash: rows[1].hash, last_id: 6, last_hash: rows[5].hash };
  assert.deepEqual(await verifyAuditLog(fakeApi(kept, head)), { ok: true, rows: 4, chain: head });
  // Row 3 deleted by hand, the head not moved: a gap.
  const gap = await verifyAuditLog(fakeApi(rows.slice(3), head));
  assert.deepEqual(gap.broken, { kind: 'gap', expected: 3, id: 4 });
  // Retention moved on between reading the head and the rows: read again.
  const heads = [head, { ...head, pruned_through: 3, pruned_hash: rows[2].hash }];
  let i = 0;
  const moving = fakeApi(rows.slice(3), () => heads[Math.min(i++, 1)]);
  assert.deepEqual(await verifyAuditLog(moving), { ok: true, rows: 3, chain: heads[1] });
});
