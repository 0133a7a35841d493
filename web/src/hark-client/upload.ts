// How a file goes up: small files in one `POST /v1/media`; larger ones as a
// resumable upload (`/v1/media/uploads`), in pieces that the server keeps as
// they arrive, so a connection that breaks costs at most what was in flight.
// When the server offers it, the bytes go straight to its bucket in one PUT
// instead. Network errors and 5xx answers are retried with a growing wait;
// the upload fails with a clear reason when they keep coming.

import type { HarkApi } from './api';
import { HarkError, type MediaKind, type MediaRef, type UploadStatus } from './types';

/** Files above this go up resumably, in pieces of this size; smaller ones in one request. */
export const PIECE_BYTES = 8 * 1024 * 1024;

/** The waits before each new try after a network error or a 5xx; when they run out, the upload fails. */
const RETRY_DELAYS_MS = [500, 1_000, 2_000, 4_000, 8_000];

export interface UploadOptions {
  kind: MediaKind;
  name?: string;
  /** Bytes sent so far of the whole file (may go back after a piece was cut off). */
  onProgress?: (sent: number, total: number) => void;
  /** Cancels the upload (the promise rejects with a HarkError of code `network`); a resumable one is also removed. */
  signal?: AbortSignal;
}

/** The error a cancelled upload rejects with. */
export function cancelled(): HarkError {
  return new HarkError(0, 'network', 'the upload was cancelled');
}

/** Upload `file`: one request up to `PIECE_BYTES`, resumable pieces (or the bucket) above. */
export function uploadFile(api: HarkApi, file: Blob, opts: UploadOptions): Promise<MediaRef> {
  return file.size <= PIECE_BYTES ? api.uploadWhole(file, opts) : resumable(api, file, opts);
}

async function resumable(api: HarkApi, file: Blob, opts: UploadOptions): Promise<MediaRef> {
  const { signal } = opts;
  const progress = (sent: number) => opts.onProgress?.(Math.min(sent, file.size), file.size);
  const request = { kind: opts.kind, size: file.size, name: opts.name || null };
  let upload = await api.startUpload({ ...request, direct: true }, signal);
  try {
    if (upload.direct && upload.put_url) {
      try {
        await putDirect(api, upload, file, progress, signal);
      } catch (e) {
        if (!(e instanceof BucketUnreachable)) throw e;
        // Most likely the bucket's CORS rules (or the page's CSP) do not let
        // this page PUT to it: the server takes the bytes instead.
        console.warn(`hark: the bucket cannot be reached from this page (${e.message}); uploading through the server`);
        void api.cancelUpload(upload.id).catch(() => {});
        upload = await api.startUpload({ ...request, direct: false }, signal);
        await sendPieces(api, upload, file, progress, signal);
      }
    } else {
      await sendPieces(api, upload, file, progress, signal);
    }
    const id = upload.id;
    return await retrying(() => api.completeUpload(id, signal), signal);
  } catch (e) {
    // Cancelled, or failed for good: the upload would hold the user's quota
    // at its whole size until it expires.
    void api.cancelUpload(upload.id).catch(() => {});
    throw signal?.aborted ? cancelled() : e;
  }
}

/**
 * Sends the pieces from where the upload stands to the end. After a network
 * error or a 5xx (the piece may have been cut off, keeping part of its
 * bytes) and after `409 offset_mismatch` (an answer was lost), the upload's
 * status says where to go on from.
 */
async function sendPieces(
  api: HarkApi,
  upload: UploadStatus,
  file: Blob,
  progress: (sent: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  let received = upload.received;
  // Failures in a row without a byte more stored; reset when `received` moves.
  let failures = 0;
  let resync = false;
  while (resync || received < file.size) {
    const before = received;
    try {
      if (resync) {
        received = (await api.uploadStatus(upload.id, signal)).received;
        resync = false;
      } else {
        const from = received;
        const piece = file.slice(from, Math.min(file.size, from + PIECE_BYTES));
        received = (await api.sendPiece(upload.id, from, piece, { onProgress: (sent) => progress(from + sent), signal })).received;
      }
      if (received > before) failures = 0;
      progress(received);
    } catch (e) {
      if (signal?.aborted) throw cancelled();
      const mismatch = e instanceof HarkError && e.code === 'offset_mismatch';
      if (!mismatch && !transient(e)) throw e;
      if (failures === RETRY_DELAYS_MS.length) throw gaveUp(e);
      const wait = RETRY_DELAYS_MS[failures++];
      // A mismatch is no trouble of the network's: look up the status at once.
      if (!mismatch) await sleep(wait, signal);
      resync = true;
    }
  }
}

/**
 * Raised when the very first PUT to the bucket gets no answer before a byte
 * went out: what a browser reports when CORS or the page's CSP forbids it.
 */
class BucketUnreachable extends Error {}

/**
 * A direct upload's bytes: the whole file PUT to the bucket, again from the
 * start after a failure, with a URL read afresh from the upload's status
 * (a URL works for a limited time).
 */
async function putDirect(
  api: HarkApi,
  upload: UploadStatus,
  file: Blob,
  progress: (sent: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  let tries = 0;
  let sentAny = false;
  await retrying(async () => {
    tries += 1;
    const target = tries === 1 ? upload : await api.uploadStatus(upload.id, signal);
    try {
      await api.putToBucket(target, file, {
        signal,
        onProgress: (sent) => {
          if (sent > 0) sentAny = true;
          progress(sent);
        },
      });
    } catch (e) {
      if (tries === 1 && !sentAny && !signal?.aborted && e instanceof HarkError && e.status === 0) {
        throw new BucketUnreachable(e.message);
      }
      progress(0);
      throw e;
    }
  }, signal);
}

/** Runs `attempt` until it succeeds, waiting `RETRY_DELAYS_MS` before each new try after a network error or a 5xx. */
async function retrying<T>(attempt: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  for (let failures = 0; ; failures++) {
    try {
      return await attempt();
    } catch (e) {
      if (signal?.aborted) throw cancelled();
      if (!transient(e)) throw e;
      if (failures === RETRY_DELAYS_MS.length) throw gaveUp(e);
      await sleep(RETRY_DELAYS_MS[failures], signal);
    }
  }
}

/** Whether trying again may help: no answer at all, or the server's (or bucket's) own failure. */
function transient(e: unknown): boolean {
  return e instanceof HarkError && (e.status === 0 || e.status >= 500);
}

/** The error shown once the tries have run out. */
function gaveUp(e: unknown): HarkError {
  const last = e instanceof HarkError ? e.message : String(e);
  const tries = RETRY_DELAYS_MS.length + 1;
  return new HarkError(e instanceof HarkError ? e.status : 0, 'network', `the upload gave up after ${tries} tries (${last})`);
}

/** Resolves after `ms`, or rejects at once when `signal` cancels. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelled());
    const done = () => {
      signal?.removeEventListener('abort', stop);
      resolve();
    };
    const stop = () => {
      clearTimeout(timer);
      reject(cancelled());
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', stop, { once: true });
  });
}
