// The audit log's hash chain (docs/protocol.md "The hash chain"), checked
// here on the client from what the API returns: a port of hark-proto's
// `chain_hash`, `verify_run` and `verify_end` and of hark-sdk's
// `verify_audit`. SHA-256 is the browser's (`crypto.subtle`, which a page
// has only in a secure context: https, or http on localhost).

import type { AuditChain, AuditEntry, AuditPage, AuditQuery } from './types';

/** The hash before the first row ever written: 64 zeros. */
export const AUDIT_GENESIS = '0'.repeat(64);

/** Rows asked for per page while checking (the most the server gives). */
const CHECK_PAGE = 1000;

/** Compare as Rust's `String` does (UTF-8 bytes, i.e. code points), not by UTF-16 units as `sort()` does. */
function byCodePoint(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/**
 * `detail` as the server hashes it: compact JSON with its keys in sorted
 * order (`{}` when empty). Written out by hand, because a JS object puts
 * integer-like keys first whatever order they were added in.
 * JSON.stringify escapes a string as serde_json does (`\"`, `\\`, `\n`-style
 * short forms, `\u00xx` for other control characters, nothing else).
 */
export function auditDetailJson(detail: Record<string, string> | null | undefined): string {
  const keys = Object.keys(detail ?? {}).sort(byCodePoint);
  return `{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(String(detail![k]))}`).join(',')}}`;
}

/** The text a row's hash is taken of: its lines joined by "\n", absent values as empty lines. */
export function auditHashText(previous: string, e: AuditEntry): string {
  const opt = (v: number | string | null | undefined) => (v === null || v === undefined ? '' : String(v));
  return [
    'hark-audit-v1',
    previous,
    String(e.id),
    String(e.at),
    e.action,
    opt(e.actor),
    opt(e.actor_device),
    opt(e.target_user),
    opt(e.target_device),
    opt(e.chat),
    opt(e.address),
    auditDetailJson(e.detail),
  ].join('\n');
}

/** Whether this page can hash (`crypto.subtle` exists only in a secure context). */
export function canHash(): boolean {
  return typeof globalThis.crypto?.subtle?.digest === 'function';
}

/** The row's hash chained to `previous`: lowercase hex SHA-256 of `auditHashText` in UTF-8. */
export async function chainHash(previous: string, e: AuditEntry): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(auditHashText(previous, e)));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Where a read of the log breaks its chain. */
export type AuditBreak =
  /** Row `id` came where `expected` was due: one was removed or inserted. */
  | { kind: 'gap'; expected: number; id: number }
  /** Row `id`'s stored hash is not the one its content (and the row before) gives. */
  | { kind: 'hash'; id: number; stored: string; computed: string }
  /** The rows end at `last`, but the chain's head says `expected`. */
  | { kind: 'end'; expected: number; last: number }
  /** The last row's hash is not the one the head names. */
  | { kind: 'end_hash'; expected: string; got: string };

/** A break in words (hark-proto's `AuditBreak` Display, with the hashes when they differ). */
export function describeAuditBreak(b: AuditBreak): string {
  const short = (h: string) => `${h.slice(0, 12)}…`;
  switch (b.kind) {
    case 'gap':
      return b.id > b.expected
        ? `row ${b.expected} is missing (row ${b.id} came in its place)`
        : `row ${b.id} is out of place (row ${b.expected} was due)`;
    case 'hash':
      return `row ${b.id} does not match its hash (it stores ${short(b.stored)}, its content hashes to ${short(b.computed)})`;
    case 'end':
      return b.last < b.expected
        ? `the log ends at row ${b.last}, but its head says ${b.expected}`
        : `the log goes on to row ${b.last}, but its head says ${b.expected}`;
    case 'end_hash':
      return `the newest row's hash (${short(b.got)}) is not the head's (${short(b.expected)})`;
  }
}

/**
 * Checks rows in id order, continuing a chain: `previous` is the hash the
 * first row builds on and `nextId` its id. Gives the last hash and the id
 * after the last row, to feed to the next call, or where it broke.
 */
export async function verifyRun(
  previous: string,
  nextId: number,
  rows: AuditEntry[],
): Promise<{ ok: true; last: string; nextId: number } | { ok: false; broken: AuditBreak; checked: number }> {
  let checked = 0;
  for (const row of rows) {
    if (row.id !== nextId) return { ok: false, broken: { kind: 'gap', expected: nextId, id: row.id }, checked };
    const computed = await chainHash(previous, row);
    if (row.hash !== computed) return { ok: false, broken: { kind: 'hash', id: row.id, stored: row.hash, computed }, checked };
    previous = row.hash;
    nextId += 1;
    checked += 1;
  }
  return { ok: true, last: previous, nextId };
}

/** Checks where a whole read ended against the chain's head; null when it matches. */
export function verifyEnd(chain: AuditChain, lastHash: string, nextId: number): AuditBreak | null {
  if (nextId - 1 !== chain.last_id) return { kind: 'end', expected: chain.last_id, last: nextId - 1 };
  if (lastHash !== chain.last_hash) return { kind: 'end_hash', expected: chain.last_hash, got: lastHash };
  return null;
}

/** What a full check found: `rows` checked (up to the break, if any), against `chain`. */
export type AuditVerdict = { ok: true; rows: number; chain: AuditChain } | { ok: false; broken: AuditBreak; rows: number; chain: AuditChain };

/** The two routes the check reads (a `HarkApi` has both). */
export interface AuditSource {
  adminAudit(query: AuditQuery): Promise<AuditPage>;
  adminAuditChain(): Promise<AuditChain>;
}

/**
 * Reads the whole log oldest first (`after=0`, then each `next`) and checks
 * every row's hash, that ids run without a gap from `pruned_through + 1`,
 * and that the end is the head's `last_id` / `last_hash`. The head is read
 * first: rows written while this reads are past it and left out. If
 * retention moved the start meanwhile, it starts over (twice at most).
 * `onProgress(checked, total)` after each page. API errors reject.
 */
export async function verifyAuditLog(api: AuditSource, onProgress?: (checked: number, total: number) => void): Promise<AuditVerdict> {
  for (let attempt = 0; ; attempt++) {
    const verdict = await verifyOnce(api, onProgress);
    if (verdict.ok || verdict.rows > 0 || verdict.broken.kind !== 'gap' || attempt >= 2) return verdict;
    // A gap at the very start: retention may have run since the head was read.
    const now = await api.adminAuditChain();
    if (now.pruned_through === verdict.chain.pruned_through) return verdict;
  }
}

async function verifyOnce(api: AuditSource, onProgress?: (checked: number, total: number) => void): Promise<AuditVerdict> {
  const chain = await api.adminAuditChain();
  const total = Math.max(0, chain.last_id - chain.pruned_through);
  let previous = chain.pruned_hash;
  let nextId = chain.pruned_through + 1;
  let rows = 0;
  let after = 0;
  onProgress?.(0, total);
  for (;;) {
    const page = await api.adminAudit({ after, limit: CHECK_PAGE });
    const entries = page.entries.filter((e) => e.id <= chain.last_id);
    const run = await verifyRun(previous, nextId, entries);
    if (!run.ok) return { ok: false, broken: run.broken, rows: rows + run.checked, chain };
    previous = run.last;
    nextId = run.nextId;
    rows += entries.length;
    onProgress?.(rows, total);
    if (page.next === null || entries.length === 0 || page.next >= chain.last_id) break;
    after = page.next;
  }
  const end = verifyEnd(chain, previous, nextId);
  return end ? { ok: false, broken: end, rows, chain } : { ok: true, rows, chain };
}
