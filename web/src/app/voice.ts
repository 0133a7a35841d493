// Voice notes: recorded in the composer with the browser's MediaRecorder and
// sent as an `audio` file named `voice-note-….webm` (or .ogg); played in a
// compact player that shows their length. The length is the server's
// `duration_ms` (read from the container) when the media ref has one, so the
// chat list can say "🎤 Voice message (0:07)" without fetching the file;
// otherwise (MP3, WAV, older uploads) it is read from the file itself and
// kept here by media id.

import { useEffect, useRef, useState } from 'preact/hooks';
import type { MediaRef } from '../hark-client';
import type { BlobCache } from './blobs';

/** A recording stops (and is sent) at this length, as WhatsApp limits voice notes. */
export const MAX_RECORDING_MS = 15 * 60_000;
/** Files larger than this are not fetched only to learn their length (15 minutes at VOICE_BITS is 3.6 MB). */
const PROBE_AT_MOST = 8 * 1024 * 1024;
/** Opus at 32 kbit/s: clear speech at a quarter of the browser's default size. */
const VOICE_BITS = 32_000;
/** How many files are probed at once. */
const PROBES_AT_ONCE = 2;

/** Whether a file is a voice note (recorded here or by another client that names them alike). */
export function isVoiceNote(media: Pick<MediaRef, 'kind' | 'name'>): boolean {
  return media.kind === 'audio' && !!media.name && media.name.toLowerCase().startsWith('voice-note');
}

/** "0:07", "12:40", "1:02:03". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** A length to show: whole seconds, rounded (a 1.92 s recording is "0:02"), at least one. */
export function roundedDuration(seconds: number): number {
  return Math.max(1, Math.round(seconds));
}

/** The server's length of an audio or video file (seconds), from `duration_ms`; undefined when it sent none. */
export function serverDuration(media: Pick<MediaRef, 'duration_ms'>): number | undefined {
  const ms = media.duration_ms;
  return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? ms / 1000 : undefined;
}

/** The recording format: Ogg Opus where the browser records it, else WebM Opus, else its default. */
export function recorderMime(): string | undefined {
  if (typeof MediaRecorder === 'undefined') return undefined;
  for (const type of ['audio/ogg;codecs=opus', 'audio/webm;codecs=opus']) {
    try {
      if (MediaRecorder.isTypeSupported(type)) return type;
    } catch {
      // An old browser without isTypeSupported: its default.
    }
  }
  return undefined;
}

/** The file's type (without codecs) and extension for what the recorder made. */
function fileTypeOf(mime: string): { type: string; ext: string } {
  const base = mime.toLowerCase().split(';')[0].trim();
  if (base.includes('ogg')) return { type: 'audio/ogg', ext: 'ogg' };
  if (base.includes('mp4') || base.includes('m4a') || base.includes('aac')) return { type: 'audio/mp4', ext: 'm4a' };
  if (base.includes('mpeg') || base.includes('mp3')) return { type: 'audio/mpeg', ext: 'mp3' };
  if (base.includes('wav')) return { type: 'audio/wav', ext: 'wav' };
  return { type: 'audio/webm', ext: 'webm' };
}

/** `voice-note-2026-12-04-1130.webm`: the local date and time it was recorded. */
export function voiceNoteName(at: Date, mime: string): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp = `${at.getFullYear()}-${p(at.getMonth() + 1)}-${p(at.getDate())}-${p(at.getHours())}${p(at.getMinutes())}`;
  return `voice-note-${stamp}.${fileTypeOf(mime).ext}`;
}

/** The recorded pieces as one file to upload. */
export function voiceNoteFile(chunks: Blob[], mime: string, at: Date): File {
  return new File(chunks, voiceNoteName(at, mime), { type: fileTypeOf(mime).type });
}

/**
 * Follow a media element's length. A recording made by MediaRecorder (WebM
 * above all) has no length in its header: the browser says Infinity until it
 * has read the whole file. Seeking far past the end once makes it read it;
 * the length then comes with the next `durationchange`, and the position goes
 * back to the start. `probing()` is true meanwhile (its time updates are not
 * the listener's). Returns the function that stops following.
 */
export function followDuration(el: HTMLMediaElement, onDuration: (seconds: number) => void) {
  let probing = false;
  let done = false;
  let last = NaN;
  const check = () => {
    const d = el.duration;
    if (Number.isFinite(d) && d > 0) {
      if (probing) {
        probing = false;
        el.currentTime = 0;
      }
      if (!done || d !== last) onDuration(d);
      done = true;
      last = d;
      return true;
    }
    return false;
  };
  const onMetadata = () => {
    if (check()) return;
    if (el.duration === Infinity && !probing) {
      probing = true;
      el.currentTime = 1e101;
    }
  };
  el.addEventListener('loadedmetadata', onMetadata);
  el.addEventListener('durationchange', check);
  // Metadata already read before the listeners came.
  if (el.readyState >= 1) onMetadata();
  return {
    probing: () => probing,
    stop: () => {
      el.removeEventListener('loadedmetadata', onMetadata);
      el.removeEventListener('durationchange', check);
    },
  };
}

/** The length of the sound at `url` (seconds), read by an element off the page; null when it cannot be read. */
export function probeDuration(url: string, timeoutMs = 15_000): Promise<number | null> {
  return new Promise((resolve) => {
    const el = new Audio();
    el.preload = 'metadata';
    el.muted = true;
    let follow: ReturnType<typeof followDuration> | null = null;
    const finish = (d: number | null) => {
      clearTimeout(timer);
      follow?.stop();
      el.onerror = null;
      el.removeAttribute('src');
      el.load();
      resolve(d);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    follow = followDuration(el, (d) => finish(d));
    el.onerror = () => finish(null);
    el.src = url;
  });
}

/**
 * Voice notes' lengths: the server's `duration_ms` when the media ref has
 * one (nothing is fetched for it); otherwise by media id, read by their
 * players, or probed from the bytes (through the blob cache, so a player
 * opened later does not fetch them again) when a label asks for one.
 */
export class Durations {
  private known = new Map<string, number>();
  /** Asked for or being probed (a failed probe is not retried until reload). */
  private asked = new Set<string>();
  private queue: MediaRef[] = [];
  private running = 0;

  constructor(
    private readonly blobs: BlobCache,
    private readonly onChange: () => void,
  ) {}

  /** The length (seconds) when known. */
  get(id: string): number | undefined {
    return this.known.get(id);
  }

  /** A length read elsewhere (a player). */
  set(id: string, seconds: number): void {
    if (!Number.isFinite(seconds) || seconds <= 0 || this.known.get(id) === seconds) return;
    this.known.set(id, seconds);
    this.onChange();
  }

  /** The length (seconds) when known without reading the file: the server's, else one read before. */
  of(media: MediaRef): number | undefined {
    return serverDuration(media) ?? this.known.get(media.id);
  }

  /**
   * The length of a voice note when known (the server's first); otherwise
   * starts reading it from the file (the change is notified) and gives
   * undefined.
   */
  want(media: MediaRef): number | undefined {
    const d = this.of(media);
    if (d !== undefined || !isVoiceNote(media)) return d;
    if (media.size <= PROBE_AT_MOST && !this.asked.has(media.id)) {
      this.asked.add(media.id);
      this.queue.push(media);
      // Not during the render that asked.
      setTimeout(() => this.next(), 0);
    }
    return undefined;
  }

  private next(): void {
    while (this.running < PROBES_AT_ONCE && this.queue.length) {
      const media = this.queue.shift()!;
      this.running++;
      void this.probe(media).finally(() => {
        this.running--;
        this.next();
      });
    }
  }

  private async probe(media: MediaRef): Promise<void> {
    if (this.known.has(media.id)) return;
    let url: string | null = null;
    try {
      url = URL.createObjectURL(await this.blobs.get(media));
      const d = await probeDuration(url);
      if (d !== null) this.set(media.id, d);
    } catch {
      // Not reachable (deleted, offline): the label goes without a length.
    } finally {
      if (url) URL.revokeObjectURL(url);
    }
  }
}

export type RecorderPhase = 'idle' | 'asking' | 'recording';

/** Why recording could not start, in words for the composer. */
function micError(e: unknown): string {
  const name = (e as { name?: string } | null)?.name ?? '';
  switch (name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
      return 'Microphone access was refused. Allow the microphone for this site in your browser to record a voice note.';
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      return 'No microphone was found. Connect one to record a voice note.';
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return 'The microphone could not be started (another app may be using it).';
    default:
      return `Couldn't start recording: ${e instanceof Error ? e.message : String(e)}`;
  }
}

/**
 * A voice note being recorded: `start` asks for the microphone and records;
 * `finish` stops and hands the file to `onDone`; `cancel` throws it away.
 * The microphone is released when either ends, and on unmount (which cancels).
 */
export function useVoiceRecorder(onDone: (file: File, seconds: number) => void) {
  const [phase, setPhase] = useState<RecorderPhase>('idle');
  const [error, setError] = useState<string | null>(null);
  const [elapsed, setElapsed] = useState(0);
  const live = useRef<{
    stream: MediaStream | null;
    recorder: MediaRecorder | null;
    chunks: Blob[];
    startedAt: number;
    at: Date;
    timer: ReturnType<typeof setInterval> | 0;
    /** Bumped by cancel and finish: an answer to an older request is ignored. */
    generation: number;
  }>({ stream: null, recorder: null, chunks: [], startedAt: 0, at: new Date(), timer: 0, generation: 0 });
  const doneRef = useRef(onDone);
  doneRef.current = onDone;
  const mounted = useRef(true);

  const release = () => {
    const r = live.current;
    clearInterval(r.timer);
    r.timer = 0;
    r.stream?.getTracks().forEach((t) => t.stop());
    r.stream = null;
    r.recorder = null;
  };

  /** Stop; `keep` hands the file over, else it is dropped. */
  const end = (keep: boolean) => {
    const r = live.current;
    r.generation++;
    const recorder = r.recorder;
    const seconds = (performance.now() - r.startedAt) / 1000;
    if (recorder && recorder.state !== 'inactive') {
      const chunks = r.chunks;
      const at = r.at;
      const stream = r.stream;
      recorder.onstop = () => {
        stream?.getTracks().forEach((t) => t.stop());
        if (!keep) return;
        const file = voiceNoteFile(chunks, recorder.mimeType || chunks[0]?.type || 'audio/webm', at);
        if (file.size > 0) doneRef.current(file, seconds);
        else if (mounted.current) setError('Nothing was recorded: check your microphone.');
      };
      // The tracks stop once the last data is in (onstop), the timer now.
      clearInterval(r.timer);
      r.timer = 0;
      r.recorder = null;
      r.stream = null;
      recorder.stop();
    } else {
      release();
    }
    r.chunks = [];
    if (mounted.current) {
      setPhase('idle');
      setElapsed(0);
    }
  };

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
      end(false);
    };
  }, []);

  async function start() {
    if (phase !== 'idle') return;
    setError(null);
    if (!window.isSecureContext) {
      setError('Recording needs a secure connection: open Hark over https.');
      return;
    }
    if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === 'undefined') {
      setError("This browser can't record audio.");
      return;
    }
    const r = live.current;
    const generation = ++r.generation;
    setPhase('asking');
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      if (generation === r.generation && mounted.current) {
        setPhase('idle');
        setError(micError(e));
      }
      return;
    }
    if (generation !== r.generation || !mounted.current) {
      // Cancelled (or gone) while the browser asked.
      stream.getTracks().forEach((t) => t.stop());
      return;
    }
    let recorder: MediaRecorder;
    try {
      const mimeType = recorderMime();
      recorder = new MediaRecorder(stream, { ...(mimeType ? { mimeType } : {}), audioBitsPerSecond: VOICE_BITS });
      r.chunks = [];
      const chunks = r.chunks;
      recorder.ondataavailable = (e) => {
        if (e.data.size > 0) chunks.push(e.data);
      };
      recorder.onerror = () => {
        if (r.recorder !== recorder) return;
        end(false);
        if (mounted.current) setError('Recording stopped: the microphone failed.');
      };
      // A piece every second: a recorder that fails late keeps what came before.
      recorder.start(1000);
    } catch (e) {
      stream.getTracks().forEach((t) => t.stop());
      setPhase('idle');
      setError(`Couldn't start recording: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    r.stream = stream;
    r.recorder = recorder;
    r.startedAt = performance.now();
    r.at = new Date();
    setElapsed(0);
    setPhase('recording');
    r.timer = setInterval(() => {
      const ms = performance.now() - r.startedAt;
      setElapsed(ms);
      if (ms >= MAX_RECORDING_MS) end(true);
    }, 250);
  }

  return {
    phase,
    /** Milliseconds recorded so far. */
    elapsed,
    error,
    clearError: () => setError(null),
    start: () => void start(),
    finish: () => end(true),
    cancel: () => end(false),
  };
}
