// Files' bytes, fetched with the device's token (`GET /v1/media/{id}` takes
// no cookie, so an <img src> cannot point at it) and kept a while in memory,
// so scrolling back to a photo or reopening a chat does not fetch it again.
// An image's thumbnail (`GET /v1/media/{id}/thumbnail`) is kept the same way,
// beside its file under a key of its own. Each element makes its own blob:
// URL of a kept Blob and revokes it when it goes away; the Blob itself lives
// as long as this cache or a URL holds it.

// A file of an encrypted chat (a `SealedMedia`, with its key) is fetched as
// ciphertext and decrypted here, in memory; only its decrypted bytes are
// kept, as a Blob of its own type.

import type { HarkApi, MediaRef } from '../hark-client';
import { isSealedMedia } from './encrypted';

/** Keep at most this many bytes of files in memory (the oldest used go first). */
const KEEP_BYTES = 64 * 1024 * 1024;
/** Files larger than this are fetched each time and never kept (long videos). */
const KEEP_AT_MOST = 16 * 1024 * 1024;

/** Which bytes of a file: the file itself, or its image's thumbnail. */
export type BlobVariant = 'file' | 'thumbnail';

/** The cache key: a thumbnail never answers for its file, nor the other way round. */
function keyOf(id: string, variant: BlobVariant): string {
  return variant === 'thumbnail' ? `${id}/thumbnail` : id;
}

export class BlobCache {
  /** By key (see `keyOf`), in use order (oldest first): a Map keeps insertion order. */
  private blobs = new Map<string, { blob: Promise<Blob>; size: number; ready?: Blob }>();
  private bytes = 0;

  constructor(
    private readonly api: HarkApi,
    /** Decrypts an encrypted chat's file with its key (rejects when the bytes are not the sender's). */
    private readonly openFile: (ciphertext: Uint8Array, file: Record<string, unknown>) => Promise<Uint8Array>,
  ) {}

  /**
   * The file's bytes (or, with `variant` "thumbnail", its thumbnail's: only
   * for a media ref that has one): kept ones at once, others from the server.
   */
  get(media: MediaRef, variant: BlobVariant = 'file'): Promise<Blob> {
    const key = keyOf(media.id, variant);
    const kept = this.blobs.get(key);
    if (kept) {
      // Used again: to the end of the line.
      this.blobs.delete(key);
      this.blobs.set(key, kept);
      return kept.blob;
    }
    const thumbnail = variant === 'thumbnail';
    const size = thumbnail ? (media.thumbnail?.size ?? 0) : media.size;
    const blob = isSealedMedia(media)
      ? this.api
          .mediaBlob(media.id)
          .then(async (sealed) => this.openFile(new Uint8Array(await sealed.arrayBuffer()), media.file))
          .then((bytes) => new Blob([bytes as Uint8Array<ArrayBuffer>], { type: media.mime }))
      : thumbnail
        ? this.api.mediaThumbnailBlob(media.id)
        : this.api.mediaBlob(media.id);
    if (size <= KEEP_AT_MOST) {
      this.keep(key, blob, size);
      // A failed fetch is not kept: the next look tries again.
      blob.catch(() => {
        if (this.blobs.get(key)?.blob === blob) this.forget(key);
      });
    }
    return blob;
  }

  /** The bytes, when kept and already here (to show them in the first frame, without a placeholder). */
  ready(id: string, variant: BlobVariant = 'file'): Blob | undefined {
    return this.blobs.get(keyOf(id, variant))?.ready;
  }

  /** A file this device just uploaded: shown from the local bytes, not fetched back. */
  put(media: MediaRef, blob: Blob): void {
    if (media.size <= KEEP_AT_MOST) this.keep(media.id, Promise.resolve(blob), media.size, blob);
  }

  private keep(key: string, blob: Promise<Blob>, size: number, ready?: Blob): void {
    this.forget(key);
    const entry: { blob: Promise<Blob>; size: number; ready?: Blob } = { blob, size, ready };
    if (!ready) blob.then((b) => (entry.ready = b)).catch(() => {});
    this.blobs.set(key, entry);
    this.bytes += size;
    for (const [old, oldest] of this.blobs) {
      if (this.bytes <= KEEP_BYTES || old === key) break;
      this.blobs.delete(old);
      this.bytes -= oldest.size;
    }
  }

  private forget(key: string): void {
    const entry = this.blobs.get(key);
    if (!entry) return;
    this.blobs.delete(key);
    this.bytes -= entry.size;
  }
}
