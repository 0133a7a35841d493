// The catch-up state machine (a port of crates/hark-sdk/src/sync.rs): applies
// the user's event stream exactly once and in order across sync pages and live
// pushes. Pure logic; the Connection carries out the steps it returns.
//
// The rule everywhere: pos <= cursor was applied already (drop it),
// pos == cursor + 1 is next (apply it), pos > cursor + 1 means something was
// missed (sync from the cursor).

import type { EventFrame, Pos } from './types';

export const MAX_BUFFERED = 10_000;

export type Step =
  | { kind: 'apply'; frame: EventFrame }
  | { kind: 'sync'; after: Pos }
  | { kind: 'live' };

type Phase = 'idle' | 'syncing' | 'live';

export class CatchUp {
  private phase: Phase = 'idle';
  /** Live events that arrived while syncing, in arrival order. */
  private buffer: EventFrame[] = [];
  /** Live events were dropped this round (buffer overflow): one more sync before going live. */
  private overflowed = false;

  constructor(
    private cursorPos: Pos,
    private readonly maxBuffered = MAX_BUFFERED,
  ) {}

  get cursor(): Pos {
    return this.cursorPos;
  }

  get isLive(): boolean {
    return this.phase === 'live';
  }

  /** Only before the first sync of a brand-new device (start at the server's head). */
  resetCursor(pos: Pos): void {
    this.cursorPos = pos;
  }

  /** The socket is (re)established: sync from the cursor. */
  connected(): Step {
    this.phase = 'syncing';
    this.buffer = [];
    this.overflowed = false;
    return { kind: 'sync', after: this.cursorPos };
  }

  /** The socket is gone; whatever was buffered comes again by sync. */
  disconnected(): void {
    this.phase = 'idle';
    this.buffer = [];
    this.overflowed = false;
  }

  /** A live `event` frame arrived. */
  live(frame: EventFrame, out: Step[]): void {
    if (this.phase === 'idle') return;
    if (this.phase === 'syncing') {
      this.bufferFrame(frame);
      return;
    }
    if (frame.pos <= this.cursorPos) return; // a duplicate
    if (frame.pos === this.cursorPos + 1) {
      this.apply(frame, out);
      return;
    }
    // A gap: keep the event (sync will likely cover it) and fetch what is missing.
    this.phase = 'syncing';
    this.buffer = [];
    this.overflowed = false;
    this.bufferFrame(frame);
    out.push({ kind: 'sync', after: this.cursorPos });
  }

  /** The `synced` page answering the outstanding sync arrived. */
  synced(events: EventFrame[], more: boolean, out: Step[]): void {
    if (this.phase !== 'syncing') return;
    const before = this.cursorPos;
    for (const frame of events) {
      if (frame.pos <= this.cursorPos) continue;
      if (frame.pos !== this.cursorPos + 1) {
        // The server promised a gapless page; ask again from where we are.
        out.push({ kind: 'sync', after: this.cursorPos });
        return;
      }
      this.apply(frame, out);
    }
    const progressed = this.cursorPos !== before;
    if (more && progressed) {
      out.push({ kind: 'sync', after: this.cursorPos });
      return;
    }
    if (this.overflowed) {
      this.overflowed = false;
      this.buffer = [];
      out.push({ kind: 'sync', after: this.cursorPos });
      return;
    }
    this.drain(out);
  }

  private drain(out: Step[]): void {
    const buffered = this.buffer.sort((a, b) => a.pos - b.pos);
    this.buffer = [];
    for (let i = 0; i < buffered.length; i++) {
      const frame = buffered[i];
      if (frame.pos <= this.cursorPos) continue;
      if (frame.pos === this.cursorPos + 1) {
        this.apply(frame, out);
        continue;
      }
      this.buffer = buffered.slice(i);
      out.push({ kind: 'sync', after: this.cursorPos });
      return;
    }
    this.phase = 'live';
    out.push({ kind: 'live' });
  }

  private bufferFrame(frame: EventFrame): void {
    if (this.overflowed) return;
    if (this.buffer.length >= this.maxBuffered) {
      this.buffer = [];
      this.overflowed = true;
      return;
    }
    this.buffer.push(frame);
  }

  private apply(frame: EventFrame, out: Step[]): void {
    this.cursorPos = frame.pos;
    out.push({ kind: 'apply', frame });
  }
}
