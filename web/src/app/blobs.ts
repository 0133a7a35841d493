// Files' bytes, fetched with the device's token (`GET /v1/media/{id}` takes
// no cookie, so an <img src> cannot point at it) and kept a while in memory,
// so scrolling back to a photo or reopening a chat does not fetch it again.
// Each element makes its own blob: URL of a kept Blob and revokes it when it
// goes away; the Blob itself lives as long as this cache or a URL holds it.

import type { HarkApi, MediaRef } from '../hark-client';

/** Keep at most this many bytes of files in memory (the oldest used go first). */
const KEEP_BYTES = 64 * 1024 * 1024;
/** Files larger than this are fetched each time and never kept (long videos). */
const KEEP_AT_MOST = 16 * 1024 * 1024;

export class BlobCache {
  /** By media id, in use order (oldest first): a Map keeps insertion order. */
  private blobs = new Map<string, { blob: Promise<Blob>; size: number; ready?: Blob }>();
  private bytes = 0;

  constructor(private readonly api: HarkApi) {}

  /** The file's bytes: kept ones at once, others from the server. */
  get(media: MediaRef): Promise<Blob> {
    const kept = this.blobs.get(media.id);
    if (kept) {
      // Used again: to the end of the line.
      this.blobs.delete(media.id);
      this.blobs.set(media.id, kept);
      return kept.blob;
    }
    const blob = this.api.mediaBlob(media.id);
    if (media.size <= KEEP_AT_MOST) {
      this.keep(media.id, blob, media.size);
      // A failed fetch is not kept: the next look tries again.
      blob.catch(() => {
        if (this.blobs.get(media.id)?.blob === blob) this.forget(media.id);
      });
    }
    return blob;
  }

  /** The bytes, when kept and already here (to show them in the first frame, without a placeholder). */
  ready(id: string): Blob | undefined {
    return this.blobs.get(id)?.ready;
  }

  /** A file this device just uploaded: shown from the local bytes, not fetched back. */
  put(media: MediaRef, blob: Blob): void {
    if (media.size <= KEEP_AT_MOST) this.keep(media.id, Promise.resolve(blob), media.size, blob);
  }

  private keep(id: string, blob: Promise<Blob>, size: number, ready?: Blob): void {
    this.forget(id);
    const entry: { blob: Promise<Blob>; size: number; ready?: Blob } = { blob, size, ready };
    if (!ready) blob.then((b) => (entry.ready = b)).catch(() => {});
    this.blobs.set(id, entry);
    this.bytes += size;
    for (const [old, oldest] of this.blobs) {
      if (this.bytes <= KEEP_BYTES || old === id) break;
      this.blobs.delete(old);
      this.bytes -= oldest.size;
    }
  }

  private forget(id: string): void {
    const entry = this.blobs.get(id);
    if (!entry) return;
    this.blobs.delete(id);
    this.bytes -= entry.size;
  }
}
