// The outbox (a port of crates/hark-sdk/src/outbox.rs): requests that must
// reach the server across reconnects and page reloads. A send keeps its
// client id from the moment it is queued until it is acked, so a resend after
// a reconnect is recognised by the server as the same message (it answers
// `duplicate: true` with the original seq). Marks are watermarks, so
// resending them is harmless too.

import type { ChatId, ClientFrame, ClientMsgId, EncryptedContent, MediaRef, Seq } from './types';

export type OutboxRequest =
  // `media` is an uploaded file: its id goes on the wire as `media_id`, the
  // rest is kept to show it while queued and once acked. `encrypted` is the
  // ciphertext of a message in an end-to-end encrypted chat (`text` is then
  // empty): made once, so a resend carries the very same ciphertext.
  | {
      kind: 'send';
      chat_id: ChatId;
      client_id: ClientMsgId;
      text: string;
      queued_at: number;
      reply_to?: Seq;
      media?: MediaRef;
      encrypted?: EncryptedContent;
    }
  // A forward is a send whose text and file the server copies from the source
  // message; `text` and `media` are only kept to show it while queued (they
  // do not go on the wire).
  | {
      kind: 'forward';
      from_chat_id: ChatId;
      seq: Seq;
      to_chat_id: ChatId;
      client_id: ClientMsgId;
      text: string;
      queued_at: number;
      media?: MediaRef;
    }
  | { kind: 'mark'; chat_id: ChatId; delivered_up_to?: Seq; read_up_to?: Seq }
  // Edits, deletes and reactions set a state, so resending them is harmless too.
  | { kind: 'edit'; chat_id: ChatId; seq: Seq; text: string; encrypted?: EncryptedContent }
  | { kind: 'delete'; chat_id: ChatId; seq: Seq; for_everyone: boolean }
  | { kind: 'react'; chat_id: ChatId; seq: Seq; emoji: string | null };

/** A queued send or forward as the target chat shows it. */
export type PendingMessage = Extract<OutboxRequest, { kind: 'send' }> & { forwarded?: boolean };

/** What is persisted: the request and its place in the queue. */
export interface OutboxEntry {
  key: number;
  request: OutboxRequest;
}

export class Outbox {
  private entries: OutboxEntry[];
  /** Frame id on the current socket -> entry key; cleared on disconnect. */
  private byFrame = new Map<number, number>();
  private inFlight = new Set<number>();
  private nextKey: number;

  constructor(
    restored: OutboxEntry[] = [],
    private readonly persist: (entries: OutboxEntry[]) => void = () => {},
  ) {
    this.entries = [...restored].sort((a, b) => a.key - b.key);
    this.nextKey = this.entries.reduce((m, e) => Math.max(m, e.key + 1), 0);
  }

  push(request: OutboxRequest): void {
    this.entries.push({ key: this.nextKey++, request });
    this.persist(this.entries);
  }

  /** Frames for every request not yet sent on this socket, in queueing order. */
  unsentFrames(nextId: () => number): ClientFrame[] {
    const frames: ClientFrame[] = [];
    for (const entry of this.entries) {
      if (this.inFlight.has(entry.key)) continue;
      const id = nextId();
      this.inFlight.add(entry.key);
      this.byFrame.set(id, entry.key);
      frames.push(toFrame(entry.request, id));
    }
    return frames;
  }

  contains(frameId: number): boolean {
    return this.byFrame.has(frameId);
  }

  /** The server answered frame `frameId`: the request leaves the outbox. */
  complete(frameId: number): OutboxRequest | undefined {
    const key = this.byFrame.get(frameId);
    if (key === undefined) return undefined;
    this.byFrame.delete(frameId);
    this.inFlight.delete(key);
    const i = this.entries.findIndex((e) => e.key === key);
    if (i < 0) return undefined;
    const [entry] = this.entries.splice(i, 1);
    this.persist(this.entries);
    return entry.request;
  }

  /** The server asked to retry frame `frameId` later: it stays queued, unsent. */
  release(frameId: number): void {
    const key = this.byFrame.get(frameId);
    if (key === undefined) return;
    this.byFrame.delete(frameId);
    this.inFlight.delete(key);
  }

  /** The socket dropped: everything goes out again (same client ids) on the next one. */
  disconnected(): void {
    this.byFrame.clear();
    this.inFlight.clear();
  }

  /** Sends and forwards not yet acked, oldest first (for showing them with a clock). */
  pendingSends(): PendingMessage[] {
    const out: PendingMessage[] = [];
    for (const { request: r } of this.entries) {
      if (r.kind === 'send') out.push(r);
      else if (r.kind === 'forward') {
        const p: PendingMessage = { kind: 'send', chat_id: r.to_chat_id, client_id: r.client_id, text: r.text, queued_at: r.queued_at, forwarded: true };
        if (r.media) p.media = r.media;
        out.push(p);
      }
    }
    return out;
  }

  get length(): number {
    return this.entries.length;
  }
}

function toFrame(r: OutboxRequest, id: number): ClientFrame {
  switch (r.kind) {
    case 'send': {
      const frame: ClientFrame = { type: 'send', id, chat_id: r.chat_id, client_id: r.client_id, text: r.text };
      if (r.reply_to !== undefined) frame.reply_to = r.reply_to;
      if (r.media) frame.media_id = r.media.id;
      if (r.encrypted) frame.encrypted = r.encrypted;
      return frame;
    }
    case 'forward':
      return { type: 'forward', id, from_chat_id: r.from_chat_id, seq: r.seq, to_chat_id: r.to_chat_id, client_id: r.client_id };
    case 'edit':
      return r.encrypted ? { type: 'edit', id, chat_id: r.chat_id, seq: r.seq, text: r.text, encrypted: r.encrypted } : { type: 'edit', id, chat_id: r.chat_id, seq: r.seq, text: r.text };
    case 'delete':
      return { type: 'delete', id, chat_id: r.chat_id, seq: r.seq, for_everyone: r.for_everyone };
    case 'react':
      return { type: 'react', id, chat_id: r.chat_id, seq: r.seq, emoji: r.emoji };
    case 'mark':
      break;
  }
  const frame: ClientFrame = { type: 'mark', id, chat_id: r.chat_id };
  if (r.delivered_up_to !== undefined) frame.delivered_up_to = r.delivered_up_to;
  if (r.read_up_to !== undefined) frame.read_up_to = r.read_up_to;
  return frame;
}

/** A fresh client message id: 128 random bits as 32 hex digits. */
export function newClientId(): ClientMsgId {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
