// Thumbnails of photos and videos in end-to-end encrypted chats. The server
// cannot read such a file, so it makes no thumbnail: the sending device
// draws a small one and puts it inside the message's content, encrypted with
// it (`info["hark.thumbnail"]`, docs/protocol.md, "Encrypted chats"); a
// receiver shows it at once, while the file is fetched and decrypted. It is
// drawn from the decoded pixels turned upright, so nothing of the original's
// metadata (EXIF, GPS) goes with it.

/** Where a content's `info` carries the thumbnail. */
export const THUMBNAIL_KEY = 'hark.thumbnail';
/** At most this many pixels on a thumbnail's longer side. */
export const THUMBNAIL_MAX_SIDE = 128;
/** At most this many bytes of image (before base64). */
export const THUMBNAIL_MAX_BYTES = 8192;
/** JPEG qualities tried in turn until the thumbnail fits (as the Rust SDK's). */
const QUALITIES = [0.8, 0.65, 0.5, 0.35, 0.2];
/** How long a video may take to show its first frame here. */
const VIDEO_FRAME_MS = 5_000;

/** A thumbnail a decrypted content carries, checked (see `readThumbnail`). */
export interface InlineThumbnail {
  mime: 'image/jpeg' | 'image/png';
  /** Its pixels, as the sender says (null when it does not). */
  width: number | null;
  height: number | null;
  /** Standard base64 of its bytes. */
  data: string;
}

const SIGNATURES: Record<InlineThumbnail['mime'], number[]> = {
  'image/jpeg': [0xff, 0xd8, 0xff],
  'image/png': [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
};

/** Standard base64 → bytes; null when it is not base64. */
function fromBase64(data: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data)) return null;
  try {
    const text = atob(data);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes;
  } catch {
    return null;
  }
}

function toBase64(bytes: Uint8Array): string {
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

const side = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= THUMBNAIL_MAX_SIDE ? v : null);

/**
 * The thumbnail in a decrypted content's `info`, or null when there is none
 * or it is not one a receiver shows: another `mimetype` than JPEG or PNG,
 * not base64, more than 8,192 bytes, or bytes that are not what it says.
 * (One that still does not decode is dropped by its <img>'s error.)
 */
export function readThumbnail(info: Record<string, unknown>): InlineThumbnail | null {
  const t = info[THUMBNAIL_KEY];
  if (!t || typeof t !== 'object') return null;
  const { mimetype, data, w, h } = t as Record<string, unknown>;
  if ((mimetype !== 'image/jpeg' && mimetype !== 'image/png') || typeof data !== 'string') return null;
  // Cheap first: base64 of 8,192 bytes is at most 10,924 characters.
  if (data.length > Math.ceil(THUMBNAIL_MAX_BYTES / 3) * 4) return null;
  const bytes = fromBase64(data);
  if (!bytes || bytes.length === 0 || bytes.length > THUMBNAIL_MAX_BYTES) return null;
  if (SIGNATURES[mimetype].some((b, i) => bytes[i] !== b)) return null;
  return { mime: mimetype, width: side(w), height: side(h), data };
}

/** The thumbnail's bytes, to show from a blob: URL. */
export function thumbnailBlob(t: InlineThumbnail): Blob {
  return new Blob([fromBase64(t.data) as Uint8Array<ArrayBuffer>], { type: t.mime });
}

type Canvas = OffscreenCanvas | HTMLCanvasElement;
type Context = OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D;

function canvasOf(width: number, height: number): Canvas {
  if (typeof OffscreenCanvas === 'function') return new OffscreenCanvas(width, height);
  const c = document.createElement('canvas');
  c.width = width;
  c.height = height;
  return c;
}

async function encode(canvas: Canvas, type: string, quality?: number): Promise<Blob | null> {
  try {
    const blob =
      'convertToBlob' in canvas
        ? await canvas.convertToBlob({ type, quality })
        : await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, type, quality));
    // A browser that cannot write `type` answers a PNG instead.
    return blob && blob.type === type ? blob : null;
  } catch {
    return null;
  }
}

function transparent(ctx: Context, width: number, height: number): boolean {
  const pixels = ctx.getImageData(0, 0, width, height).data;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] < 255) return true;
  return false;
}

/**
 * Draws `source` (upright, `width` × `height` pixels) at most 128 px on its
 * longer side (never enlarged): a PNG when it has transparency and that fits
 * in 8,192 bytes, else a JPEG whose quality is lowered step by step until it
 * fits; null when none fits or the browser cannot draw it. As it goes into
 * `info["hark.thumbnail"]`.
 */
export async function drawThumbnail(source: CanvasImageSource, width: number, height: number, { alpha = true } = {}): Promise<Record<string, unknown> | null> {
  if (!(width > 0 && height > 0)) return null;
  const scale = Math.min(1, THUMBNAIL_MAX_SIDE / Math.max(width, height));
  const w = Math.max(1, Math.min(THUMBNAIL_MAX_SIDE, Math.round(width * scale)));
  const h = Math.max(1, Math.min(THUMBNAIL_MAX_SIDE, Math.round(height * scale)));
  const canvas = canvasOf(w, h);
  const ctx = canvas.getContext('2d') as Context | null;
  if (!ctx) return null;
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, 0, 0, w, h);
  const made = (blob: Blob, mimetype: string) =>
    blob.arrayBuffer().then((b) => ({ mimetype, w, h, data: toBase64(new Uint8Array(b)) }));
  if (alpha && transparent(ctx, w, h)) {
    const png = await encode(canvas, 'image/png');
    if (png && png.size <= THUMBNAIL_MAX_BYTES) return made(png, 'image/png');
    // Too large as a PNG: a JPEG, the transparent parts white (not black).
    ctx.globalCompositeOperation = 'destination-over';
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, w, h);
    ctx.globalCompositeOperation = 'source-over';
  }
  for (const quality of QUALITIES) {
    const jpeg = await encode(canvas, 'image/jpeg', quality);
    if (jpeg && jpeg.size <= THUMBNAIL_MAX_BYTES) return made(jpeg, 'image/jpeg');
  }
  return null;
}

/**
 * A photo's upright size (`w`, `h`) and thumbnail, as its encrypted
 * content's `info` holds them; only what could be read (nothing for a
 * format this browser does not decode).
 */
export async function photoInfo(file: Blob): Promise<Record<string, unknown>> {
  if (typeof createImageBitmap !== 'function') return {};
  const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' }).catch(() => null);
  if (!bitmap) return {};
  try {
    const info: Record<string, unknown> = { w: bitmap.width, h: bitmap.height };
    const thumbnail = await drawThumbnail(bitmap, bitmap.width, bitmap.height).catch(() => null);
    if (thumbnail) info[THUMBNAIL_KEY] = thumbnail;
    return info;
  } finally {
    bitmap.close();
  }
}

/**
 * A video's size and the thumbnail of its first frame (a JPEG), as its
 * encrypted content's `info` holds them; nothing when this browser cannot
 * show a frame of it within a few seconds.
 */
export async function videoInfo(file: Blob): Promise<Record<string, unknown>> {
  if (typeof document === 'undefined') return {};
  const url = URL.createObjectURL(file);
  const video = document.createElement('video');
  video.muted = true;
  video.playsInline = true;
  video.preload = 'auto';
  try {
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), VIDEO_FRAME_MS);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        resolve(ok);
      };
      video.onerror = () => done(false);
      // A frame is decoded once the seek to the start is done.
      video.onloadeddata = () => {
        video.onseeked = () => done(true);
        video.currentTime = 0;
      };
      video.src = url;
    });
    const { videoWidth: width, videoHeight: height } = video;
    if (!ready || video.readyState < 2 || !width || !height) return {};
    const info: Record<string, unknown> = { w: width, h: height };
    const thumbnail = await drawThumbnail(video, width, height, { alpha: false }).catch(() => null);
    if (thumbnail) info[THUMBNAIL_KEY] = thumbnail;
    return info;
  } finally {
    video.onloadeddata = video.onseeked = video.onerror = null;
    video.removeAttribute('src');
    video.load();
    URL.revokeObjectURL(url);
  }
}
