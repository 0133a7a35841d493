// Files in messages: a photo inline (its thumbnail; full size in a viewer), a video with
// the browser's controls, a sound (a voice note above all) in a compact
// player, any other file as a card with a Download button; and the file chosen in the composer, with its upload's
// progress. The bytes come through the store's BlobCache as blob: URLs
// (the download route needs the token), each revoked when its element goes.

import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { createPortal } from 'preact/compat';
import { HarkError, type MediaKind, type MediaRef } from '../hark-client';
import type { BlobVariant } from './blobs';
import { isSealedMedia } from './encrypted';
import { thumbnailBlob } from './thumbnail';
import type { AppStore, Attachment } from './store';
import { CloseIcon, DownloadIcon, FileIcon, MicIcon, MusicIcon, PauseIcon, PlayIcon } from './ui';
import { followDuration, formatDuration, isVoiceNote, roundedDuration, serverDuration } from './voice';

/** A photo is shown at most this wide and this tall (CSS pixels); smaller ones are not blown up past MIN_SIDE. */
const MAX_WIDTH = 320;
const MAX_HEIGHT = 360;
const MIN_SIDE = 120;
/** Video and audio up to this size load with the message; larger ones when asked to play. */
const AUTOLOAD_BYTES = 8 * 1024 * 1024;
/** The width of a video, a sound or a file card in its bubble. */
const CARD_WIDTH = 300;

/** "512 B", "12.3 KB", "4.5 MB" (units of 1024, as file managers show them). */
export function humanSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 100 ? v.toFixed(1).replace(/\.0$/, '') : Math.round(v)} ${units[i]}`;
}

const ICONS: Record<MediaKind, string> = { image: '📷', video: '🎥', audio: '🎤', file: '📄' };
const NOUNS: Record<MediaKind, string> = { image: 'Photo', video: 'Video', audio: 'Audio', file: 'File' };

/**
 * A message with a file in one line (the chat list, quotes): "📷 Photo",
 * "📄 report.pdf", "📷 its caption", "🎤 Voice message (0:07)" (`seconds`:
 * a voice note's length, when known; else the server's `duration_ms`, if any).
 */
export function mediaLabel(media: MediaRef, caption: string, seconds?: number): string {
  if (!caption.trim() && isVoiceNote(media)) {
    const length = seconds ?? serverDuration(media);
    return length ? `🎤 Voice message (${formatDuration(roundedDuration(length))})` : '🎤 Voice message';
  }
  const what = caption.trim() ? caption : media.kind === 'file' ? media.name || NOUNS.file : NOUNS[media.kind];
  return `${ICONS[media.kind]} ${what}`;
}

/** A message's text in one line: its text, or for a file its label (with the server's length of a voice note; `store.summary` also reads one it lacks). */
export function summaryOf(m: { text: string; media?: MediaRef | null }): string {
  return m.media ? mediaLabel(m.media, m.text) : m.text;
}

/** How wide a message's file is drawn (its bubble takes this width plus its padding). */
export function mediaWidth(media: MediaRef): number {
  return media.kind === 'image' ? photoBox(media).width : CARD_WIDTH;
}

/**
 * A photo's size for its box: its own, or (an encrypted chat's photo whose
 * content says none) its thumbnail's shape at the largest width; else 4:3.
 */
function pictureSize(media: MediaRef): { w: number; h: number } {
  if (media.width && media.height) return { w: media.width, h: media.height };
  const p = isSealedMedia(media) ? media.preview : null;
  if (p?.width && p.height) return { w: MAX_WIDTH, h: (MAX_WIDTH * p.height) / p.width };
  return { w: 4, h: 3 };
}

/** A photo's box: its own aspect ratio within the limits (beyond them it is cropped to fit). */
function photoBox(media: MediaRef): { width: number; height: number } {
  const { w, h } = pictureSize(media);
  let width = Math.min(MAX_WIDTH, Math.max(w, MIN_SIDE));
  let height = (width * h) / w;
  if (height > MAX_HEIGHT) {
    height = MAX_HEIGHT;
    width = Math.max(MIN_SIDE, Math.min(width, (MAX_HEIGHT * w) / h));
  }
  if (height < MIN_SIDE / 2) height = MIN_SIDE / 2;
  return { width: Math.round(width), height: Math.round(height) };
}

function nameOf(media: MediaRef): string {
  return media.name || (media.kind === 'file' ? 'File' : NOUNS[media.kind]);
}

function reasonOf(e: unknown): string {
  if (e instanceof HarkError && e.status === 404) return 'No longer available';
  return "Couldn't load";
}

/**
 * A blob: URL of the file's bytes (`variant` "thumbnail": its image's
 * thumbnail) while the calling element is mounted (`enabled` false: not
 * fetched yet). Bytes already at hand give the URL in the first render, so a
 * sent photo does not flash a placeholder.
 */
export function useBlobUrl(store: AppStore, media: MediaRef, enabled = true, variant: BlobVariant = 'file') {
  const key = `${variant}:${media.id}`;
  const [state, setState] = useState(() => {
    const ready = enabled ? store.blobs.ready(media.id, variant) : undefined;
    return { key, url: ready ? URL.createObjectURL(ready) : null, error: null as string | null };
  });
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    if (!enabled) return;
    let live = true;
    let made = state.key === key ? state.url : null;
    if (!made) {
      store.blobs.get(media, variant).then(
        (blob) => {
          if (!live) return;
          made = URL.createObjectURL(blob);
          setState({ key, url: made, error: null });
        },
        (e) => {
          if (live) setState({ key, url: null, error: reasonOf(e) });
        },
      );
    }
    return () => {
      live = false;
      if (made) URL.revokeObjectURL(made);
    };
  }, [key, enabled, attempt]);
  const current = state.key === key ? state : { url: null, error: null };
  return {
    url: current.url,
    error: current.error,
    retry: () => {
      setState({ key, url: null, error: null });
      setAttempt((n) => n + 1);
    },
  };
}

/**
 * A blob: URL of the thumbnail an encrypted chat's photo or video carries
 * inside its content (see thumbnail.ts), from the first render while the
 * calling element is mounted; null without one, or once it failed to decode
 * (`failed`).
 */
function usePreviewUrl(media: MediaRef): { url: string | null; failed: () => void } {
  const preview = isSealedMedia(media) ? media.preview : null;
  // Another message's (or an edit's) thumbnail gets a URL of its own.
  const key = preview ? `${media.id}:${preview.data}` : null;
  const url = useMemo(() => (preview ? URL.createObjectURL(thumbnailBlob(preview)) : null), [key]);
  useEffect(() => () => {
    if (url) URL.revokeObjectURL(url);
  }, [url]);
  const [broken, setBroken] = useState<string | null>(null);
  return { url: broken !== null && broken === key ? null : url, failed: () => setBroken(key) };
}

/**
 * Save the file under its name, as a browser download: a `file` straight
 * from the server's bucket when it hands out URLs (the bucket answers with
 * `Content-Disposition: attachment` and the name, so the browser saves it
 * without the page holding its bytes), else from its bytes fetched here.
 */
async function saveFile(store: AppStore, media: MediaRef): Promise<void> {
  // An encrypted chat's file is decrypted here: never straight from the bucket.
  if (media.kind === 'file' && !isSealedMedia(media) && !store.blobs.ready(media.id, 'file')) {
    const link = await store.api.mediaUrl(media.id).catch(() => null);
    if (link) return clickLink(link.url);
  }
  const blob = await store.blobs.get(media);
  const url = URL.createObjectURL(blob);
  clickLink(url, nameOf(media));
  // The download has taken the bytes by then.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function clickLink(href: string, download?: string): void {
  const a = document.createElement('a');
  a.href = href;
  if (download) a.download = download;
  a.rel = 'noopener';
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  a.remove();
}

/** The file a message carries, as its bubble shows it. */
export function MessageMedia(props: { store: AppStore; media: MediaRef; tabbable: boolean }) {
  switch (props.media.kind) {
    case 'image':
      return <Photo {...props} />;
    case 'video':
      return <VideoPlayer {...props} />;
    case 'audio':
      return <AudioPlayer {...props} />;
    default:
      return <FileCard {...props} />;
  }
}

/**
 * A photo in its bubble: its thumbnail (a few tens of KB, at most 480 px),
 * in a box shaped from the image's width and height so nothing moves when it
 * arrives. The file itself when there is no thumbnail (an older upload), when
 * the thumbnail cannot be had, or when the file's bytes are already in this
 * browser and the thumbnail's are not (a photo sent from here: shown at once,
 * nothing fetched). An encrypted chat's photo (the server makes no
 * thumbnail of it) shows the small thumbnail its sender put inside the
 * message, blurred, from the first paint until the file is fetched,
 * decrypted and decoded.
 */
function Photo(props: { store: AppStore; media: MediaRef; tabbable: boolean }) {
  const { store, media } = props;
  const [preferFile, setPreferFile] = useState(() => !store.blobs.ready(media.id, 'thumbnail') && !!store.blobs.ready(media.id));
  const variant: BlobVariant = media.thumbnail && !preferFile ? 'thumbnail' : 'file';
  const { url, error, retry } = useBlobUrl(store, media, true, variant);
  const preview = usePreviewUrl(media);
  /** The URL whose image has decoded: the preview goes then. */
  const [decoded, setDecoded] = useState<string | null>(null);
  // A thumbnail that fails falls back to the file, which then shows its own error if it fails too.
  const thumbnailFailed = variant === 'thumbnail' && !!error;
  useEffect(() => {
    if (thumbnailFailed) setPreferFile(true);
  }, [thumbnailFailed]);
  const [viewing, setViewing] = useState(false);
  const box = photoBox(media);
  const name = nameOf(media);
  const failed = !url && !!error && !thumbnailFailed;
  return (
    <div class="media-photo" style={{ aspectRatio: `${box.width} / ${box.height}` }} data-testid="media-photo">
      {preview.url && (!url || decoded !== url) && (
        <img class="media-preview" src={preview.url} alt="" aria-hidden="true" data-testid="media-preview" onError={preview.failed} />
      )}
      {(url || preview.url) && !failed ? (
        <button class="media-photo-open" tabIndex={props.tabbable ? 0 : -1} aria-label={`Open photo ${name}`} data-testid="media-open" onClick={(e) => { e.stopPropagation(); setViewing(true); }}>
          {url && <img src={url} alt={name} data-testid="media-image" data-source={variant} onLoad={() => setDecoded(url)} />}
        </button>
      ) : failed ? (
        <button class="media-retry" tabIndex={props.tabbable ? 0 : -1} data-testid="media-retry" onClick={(e) => { e.stopPropagation(); retry(); }}>
          {error} · Retry
        </button>
      ) : (
        <span class="media-loading" role="img" aria-label="Loading photo" />
      )}
      {viewing && (url || preview.url) && (
        <PhotoViewer
          store={store}
          media={media}
          full={variant === 'file' ? url : null}
          placeholder={variant === 'thumbnail' ? url : preview.url}
          onClose={() => setViewing(false)}
        />
      )}
    </div>
  );
}

/** The image's shape for the viewer: its own size, or its thumbnail's; null when neither is known. */
function shapeOf(media: MediaRef): { width: number; height: number } | null {
  if (media.width && media.height) return { width: media.width, height: media.height };
  const t = media.thumbnail;
  return t && t.width && t.height ? { width: t.width, height: t.height } : null;
}

/**
 * A photo full size over everything: Escape, a click or the close button
 * closes it. `full`: the file's blob: URL when the bubble already has it;
 * otherwise its bytes are fetched here, and meanwhile `placeholder` (the
 * thumbnail's URL) shows scaled up to the photo's size and blurred, in a frame
 * of the photo's shape, so the full image takes its place without a jump.
 */
function PhotoViewer(props: { store: AppStore; media: MediaRef; full: string | null; placeholder: string | null; onClose: () => void }) {
  const box = useRef<HTMLDivElement>(null);
  const name = nameOf(props.media);
  const fetched = useBlobUrl(props.store, props.media, !props.full);
  const fullUrl = props.full ?? fetched.url;
  /** The full image's URL once it has decoded (then the placeholder goes). */
  const [shown, setShown] = useState<string | null>(null);
  /** Whether the bytes were at hand when the viewer opened: then no placeholder shows, not even while the image decodes. */
  const [kept] = useState(() => !!fullUrl);
  const loaded = !!fullUrl && shown === fullUrl;
  const shape = shapeOf(props.media);
  useLayoutEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    box.current?.querySelector<HTMLElement>('[data-testid=media-viewer-close]')?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        props.onClose();
      } else if (e.key === 'Tab') {
        // Focus stays in the viewer.
        const buttons = [...(box.current?.querySelectorAll<HTMLElement>('button') ?? [])];
        const i = buttons.indexOf(document.activeElement as HTMLElement);
        e.preventDefault();
        buttons[(i + (e.shiftKey ? buttons.length - 1 : 1)) % buttons.length]?.focus();
      }
    };
    document.addEventListener('keydown', onKey, true);
    return () => {
      document.removeEventListener('keydown', onKey, true);
      before?.focus?.({ preventScroll: true });
    };
  }, []);
  const image = fullUrl && (
    <img class="viewer-image" src={fullUrl} alt={name} data-testid="media-viewer-image" onLoad={() => setShown(fullUrl)} />
  );
  const status = loaded ? null : fetched.error && !props.full ? (
    <button
      class="viewer-retry"
      data-testid="media-viewer-retry"
      onClick={(e) => {
        e.stopPropagation();
        fetched.retry();
      }}
    >
      {fetched.error} · Retry
    </button>
  ) : !fullUrl ? (
    <span class="viewer-loading" role="status" aria-label="Loading the photo" data-testid="media-viewer-loading">
      <span class="spinner" aria-hidden="true" />
    </span>
  ) : null;
  return createPortal(
    <div class="viewer" role="dialog" aria-modal="true" aria-label={name} data-testid="media-viewer" ref={box} onClick={props.onClose}>
      <div class="viewer-bar" onClick={(e) => e.stopPropagation()}>
        <span class="viewer-name" dir="auto">{name}</span>
        <button class="icon-btn" aria-label={`Download ${name}`} title="Download" data-testid="media-viewer-download" onClick={() => void saveFile(props.store, props.media)}>
          <DownloadIcon />
        </button>
        <button class="icon-btn" aria-label="Close" title="Close" data-testid="media-viewer-close" onClick={props.onClose}>
          <CloseIcon />
        </button>
      </div>
      {shape ? (
        <div
          class={`viewer-frame ${loaded ? 'loaded' : ''}`}
          style={{
            aspectRatio: `${shape.width} / ${shape.height}`,
            // As large as the image itself, within the window less the bar's room.
            width: `min(100cqw - var(--viewer-gap-x), ${shape.width}px, (100cqh - var(--viewer-gap-y)) * ${shape.width / shape.height})`,
          }}
          aria-busy={loaded ? undefined : 'true'}
          data-testid="media-viewer-frame"
        >
          {!loaded && !kept && props.placeholder && (
            <img class="viewer-placeholder" src={props.placeholder} alt="" aria-hidden="true" data-testid="media-viewer-placeholder" />
          )}
          {image}
          {status}
        </div>
      ) : (
        <>
          {image}
          {status}
        </>
      )}
    </div>,
    document.body,
  );
}

/**
 * A sound: play/pause, a bar to seek on and its length (the position while
 * it plays), as WhatsApp shows a voice note; other audio also with its name.
 * Small files load with the message (ready to play; without the server's
 * `duration_ms` that is also how their length shows); larger ones when asked
 * to play. One sound plays at a time.
 *
 * Which length is used for what: the total shown (and `data-duration`, and
 * the chat list's label) is the server's `duration_ms` whenever the media
 * ref has one, from the first paint to the end, so it never jumps when the
 * element reads its own or while playing. Seeking and the bar's fill are
 * computed against the element's own length once it has read it (that is
 * what `currentTime` counts in, and it may differ from the server's by a few
 * milliseconds), against the server's before then. Without `duration_ms`,
 * the length read from the file (a probe's, then the element's) serves both,
 * as before.
 */
function AudioPlayer(props: { store: AppStore; media: MediaRef; tabbable: boolean }) {
  const { store, media } = props;
  const voice = isVoiceNote(media);
  const name = nameOf(media);
  const [asked, setAsked] = useState(false);
  const [unplayable, setUnplayable] = useState(false);
  const autoload = media.size <= AUTOLOAD_BYTES;
  const { url, error, retry } = useBlobUrl(store, media, !unplayable && (asked || autoload));
  const audio = useRef<HTMLAudioElement>(null);
  const track = useRef<HTMLDivElement>(null);
  const follow = useRef<ReturnType<typeof followDuration> | null>(null);
  /** Play as soon as the length is read (asked before the bytes or the length were here). */
  const playWhenReady = useRef(false);
  const dragging = useRef(false);
  const [playing, setPlaying] = useState(false);
  const [position, setPosition] = useState(0);
  /** The server's length (seconds), from the media ref. */
  const fromServer = serverDuration(media) ?? null;
  /** The element's own length once read (else one read before by a probe or another player). */
  const [measured, setMeasured] = useState<number | null>(() => store.durations.get(media.id) ?? null);
  /** The length shown: the server's when it sent one (see above). */
  const duration = fromServer ?? measured;
  /** The length seeking is computed against: the element's once read. */
  const seekLength = measured ?? fromServer;

  const play = () => {
    const el = audio.current;
    if (!el) return;
    if (follow.current?.probing() || el.readyState < 1) {
      playWhenReady.current = true;
      return;
    }
    for (const other of document.querySelectorAll('audio')) if (other !== el) other.pause();
    el.play().catch(() => {
      // Refused (no user gesture yet) or interrupted: the button shows Play again.
    });
  };

  // The length, read from the file once its bytes are here.
  useEffect(() => {
    const el = audio.current;
    if (!el || !url) return;
    const f = followDuration(el, (d) => {
      setMeasured(d);
      // The chat list needs it only without the server's.
      if (fromServer === null) store.durations.set(media.id, d);
      if (playWhenReady.current) {
        playWhenReady.current = false;
        play();
      }
    });
    follow.current = f;
    return () => {
      f.stop();
      follow.current = null;
    };
  }, [url]);

  // The bar moves smoothly while playing (timeupdate comes only a few times a second).
  useEffect(() => {
    if (!playing) return;
    let frame = 0;
    const tick = () => {
      const el = audio.current;
      if (el && !dragging.current) setPosition(el.currentTime);
      frame = requestAnimationFrame(tick);
    };
    frame = requestAnimationFrame(tick);
    return () => cancelAnimationFrame(frame);
  }, [playing]);

  if (unplayable) return <FileCard {...props} note="can't be played here" />;

  const loading = (asked || autoload) && !url && !error;
  const known = duration !== null && Number.isFinite(duration) && duration > 0;
  const total = known ? formatDuration(roundedDuration(duration!)) : null;
  const seekable = seekLength !== null && Number.isFinite(seekLength) && seekLength > 0;
  const active = playing || position > 0;
  const fraction = seekable ? Math.min(1, position / seekLength!) : 0;
  const canSeek = !!url && seekable;
  const what = voice ? 'voice message' : name;

  function toggle(e: Event) {
    e.stopPropagation();
    if (error) {
      retry();
      return;
    }
    const el = audio.current;
    if (!url || !el) {
      setAsked(true);
      playWhenReady.current = true;
      return;
    }
    if (playWhenReady.current) playWhenReady.current = false;
    else if (el.paused) play();
    else el.pause();
  }

  function seekTo(seconds: number) {
    const el = audio.current;
    // Not while the element scans a recording for its length (it seeks itself).
    if (!el || !seekable || follow.current?.probing()) return;
    const to = Math.max(0, Math.min(seekLength!, seconds));
    el.currentTime = to;
    setPosition(to);
  }

  function seekAt(clientX: number) {
    const r = track.current?.getBoundingClientRect();
    if (!r || r.width === 0 || !seekable) return;
    seekTo(((clientX - r.left) / r.width) * seekLength!);
  }

  const time = error ? error : active ? formatDuration(position) : total ?? (autoload || asked ? '0:00' : humanSize(media.size));
  return (
    <div class={`voice ${voice ? 'is-voice' : 'is-audio'} ${playing ? 'playing' : ''}`} data-testid="audio-player" data-voice={voice ? 'true' : undefined} data-duration={total ?? undefined}>
      <span class="voice-badge" aria-hidden="true">
        {voice ? <MicIcon size={24} /> : <MusicIcon size={24} />}
      </span>
      <button
        class="voice-play"
        tabIndex={props.tabbable ? 0 : -1}
        aria-label={error ? `${error}: retry the ${voice ? 'voice message' : 'audio'}` : `${playing ? 'Pause' : 'Play'} ${what}${total ? `, ${total}` : ''}`}
        data-testid="audio-play"
        onClick={toggle}
      >
        {loading && asked ? <span class="spinner" aria-hidden="true" /> : playing ? <PauseIcon size={28} /> : <PlayIcon size={28} />}
      </button>
      <div class="voice-body">
        {!voice && (
          <span class="voice-name" dir="auto" data-testid="audio-name">
            {name}
          </span>
        )}
        <div
          ref={track}
          class={`voice-track ${canSeek ? '' : 'disabled'}`}
          role="slider"
          tabIndex={canSeek && props.tabbable ? 0 : -1}
          aria-label={`Position in the ${voice ? 'voice message' : 'audio'}`}
          aria-valuemin={0}
          aria-valuemax={seekable ? Math.round(seekLength!) : 0}
          aria-valuenow={Math.floor(position)}
          aria-valuetext={total ? `${formatDuration(position)} of ${total}` : formatDuration(position)}
          aria-disabled={canSeek ? undefined : 'true'}
          data-testid="audio-seek"
          onClick={(e) => e.stopPropagation()}
          onPointerDown={(e) => {
            // Not the bubble's long press or menu.
            e.stopPropagation();
            if (!canSeek || e.button !== 0) return;
            dragging.current = true;
            e.currentTarget.setPointerCapture?.(e.pointerId);
            seekAt(e.clientX);
          }}
          onPointerMove={(e) => {
            e.stopPropagation();
            if (dragging.current) seekAt(e.clientX);
          }}
          onPointerUp={(e) => {
            e.stopPropagation();
            dragging.current = false;
          }}
          onPointerCancel={() => (dragging.current = false)}
          onKeyDown={(e) => {
            if (!canSeek) return;
            const step = Math.max(1, Math.min(5, seekLength! / 10));
            const to = { ArrowLeft: position - step, ArrowDown: position - step, ArrowRight: position + step, ArrowUp: position + step, Home: 0, End: seekLength! }[e.key];
            if (to === undefined) return;
            e.preventDefault();
            e.stopPropagation();
            seekTo(to);
          }}
        >
          <span class="voice-rail">
            <span class="voice-fill" style={{ width: `${fraction * 100}%` }} />
          </span>
          <span class="voice-thumb" style={{ left: `${fraction * 100}%` }} />
        </div>
        <span class={`voice-time ${error ? 'error' : ''}`} data-testid="audio-time">
          {time}
        </span>
      </div>
      {url && (
        <audio
          ref={audio}
          src={url}
          preload="metadata"
          data-testid="media-audio"
          onPlay={() => setPlaying(true)}
          onPause={() => {
            setPlaying(false);
            const el = audio.current;
            if (el && !follow.current?.probing()) setPosition(el.currentTime);
          }}
          onEnded={() => {
            setPlaying(false);
            setPosition(0);
            if (audio.current) audio.current.currentTime = 0;
          }}
          onTimeUpdate={() => {
            const el = audio.current;
            if (el && !follow.current?.probing() && !dragging.current) setPosition(el.currentTime);
          }}
          onError={() => setUnplayable(true)}
        />
      )}
    </div>
  );
}

/**
 * Where a video streams from when the server's bucket hands out URLs
 * (`GET /v1/media/{id}/url`): the player then fetches only what it plays
 * and seeks with ranges. `undefined` while asking, `null` when the server
 * serves files itself (the video then comes whole, as a blob).
 */
function useStreamUrl(store: AppStore, media: MediaRef, enabled: boolean): string | null | undefined {
  const [url, setUrl] = useState<string | null | undefined>(undefined);
  useEffect(() => {
    if (!enabled || url !== undefined) return;
    // An encrypted chat's video is decrypted whole, as a blob.
    if (isSealedMedia(media)) return setUrl(null);
    let live = true;
    store.api.mediaUrl(media.id).then(
      (link) => live && setUrl(link.url),
      () => live && setUrl(null),
    );
    return () => {
      live = false;
    };
  }, [media.id, enabled]);
  return url;
}

/** A video's box: its own shape when known (an encrypted chat's, from its content), never taller than 4:3 portrait; else 16:9. */
function videoRatio(media: MediaRef): string | undefined {
  if (!media.width || !media.height) return undefined;
  return `${Math.max(media.width / media.height, 3 / 4)}`;
}

/**
 * A video: the browser's own player, streaming from the bucket or once its
 * bytes are here. An encrypted chat's video shows the thumbnail of its first
 * frame that its sender put inside the message (as the button's picture
 * while it loads, then as the player's poster).
 */
function VideoPlayer(props: { store: AppStore; media: MediaRef; tabbable: boolean }) {
  const { store, media } = props;
  const [asked, setAsked] = useState(false);
  // The browser cannot play it (a format it lacks, or a page policy that
  // refuses blob: media): it can still be saved.
  const [unplayable, setUnplayable] = useState(false);
  const wanted = !unplayable && (asked || media.size <= AUTOLOAD_BYTES);
  const stream = useStreamUrl(store, media, wanted);
  const blob = useBlobUrl(store, media, wanted && stream === null);
  const preview = usePreviewUrl(media);
  const { error, retry } = blob;
  const url = stream ?? blob.url;
  const length = serverDuration(media);
  const about = length ? `${formatDuration(roundedDuration(length))} · ${humanSize(media.size)}` : humanSize(media.size);
  const ratio = videoRatio(media);
  if (unplayable) return <FileCard {...props} note="can't be played here" />;
  if (url) {
    const common = {
      controls: true,
      preload: 'metadata' as const,
      autoplay: asked,
      src: url,
      tabIndex: props.tabbable ? 0 : -1,
      onError: () => setUnplayable(true),
      ...(preview.url ? { poster: preview.url } : {}),
    };
    return <video class="media-video" style={ratio ? { aspectRatio: ratio } : undefined} {...common} data-testid="media-video" />;
  }
  const loading = (asked || media.size <= AUTOLOAD_BYTES) && !error;
  return (
    <button
      class="media-play video"
      style={ratio ? { aspectRatio: ratio } : undefined}
      tabIndex={props.tabbable ? 0 : -1}
      aria-label={error ? `${error}: retry the video` : `Play the video, ${about}`}
      data-testid="media-play"
      disabled={loading}
      onClick={(e) => {
        e.stopPropagation();
        if (error) retry();
        setAsked(true);
      }}
    >
      {preview.url && <img class="media-poster" src={preview.url} alt="" aria-hidden="true" data-testid="media-preview" onError={preview.failed} />}
      <span class="media-play-icon">{loading ? <span class="spinner" aria-hidden="true" /> : <PlayIcon />}</span>
      <span class="media-play-text">{error ?? (loading ? 'Loading video…' : `Video · ${about}`)}</span>
    </button>
  );
}

/** Any other file: its name, size and a Download button. */
function FileCard(props: { store: AppStore; media: MediaRef; tabbable: boolean; note?: string }) {
  const { store, media } = props;
  const name = nameOf(media);
  const ext = name.match(/\.([A-Za-z0-9]{1,5})$/)?.[1]?.toUpperCase();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  async function download() {
    setBusy(true);
    setError(null);
    try {
      await saveFile(store, media);
    } catch (e) {
      setError(reasonOf(e));
    } finally {
      setBusy(false);
    }
  }
  return (
    <div class="media-file" data-testid="media-file">
      <span class="media-file-icon" aria-hidden="true">
        <FileIcon size={30} />
      </span>
      <span class="media-file-body">
        <span class="media-file-name" dir="auto" data-testid="media-file-name">{name}</span>
        <span class="media-file-size" data-testid="media-file-size">
          {error ?? [humanSize(media.size), props.note ?? ext].filter(Boolean).join(' · ')}
        </span>
      </span>
      <button
        class="icon-btn media-download"
        tabIndex={props.tabbable ? 0 : -1}
        aria-label={`Download ${name}`}
        title="Download"
        data-testid="media-download"
        disabled={busy}
        onClick={(e) => {
          e.stopPropagation();
          void download();
        }}
      >
        {busy ? <span class="spinner" aria-hidden="true" /> : <DownloadIcon />}
      </button>
    </div>
  );
}

/** The file chosen in the composer: a thumbnail or an icon, its name and size, the upload's progress or why it failed. */
export function AttachmentPreview(props: { attachment: Attachment; onRemove: () => void }) {
  const a = props.attachment;
  const uploading = a.sent !== null;
  const percent = uploading ? Math.min(100, Math.round(((a.sent ?? 0) / Math.max(1, a.file.size)) * 100)) : 0;
  return (
    <div class="attachment" data-testid="attachment">
      {a.previewUrl ? (
        <img class="attachment-thumb" src={a.previewUrl} alt="" />
      ) : (
        <span class="attachment-icon" aria-hidden="true">
          {a.kind === 'audio' ? isVoiceNote({ kind: a.kind, name: a.file.name }) ? <MicIcon size={28} /> : <MusicIcon size={28} /> : <FileIcon size={28} />}
        </span>
      )}
      <div class="attachment-body">
        <div class="attachment-name" dir="auto" data-testid="attachment-name">{a.file.name || NOUNS[a.kind]}</div>
        <div class="attachment-size">{humanSize(a.file.size)}</div>
        {uploading && (
          <div class="progress" role="progressbar" aria-label="Uploading" aria-valuemin={0} aria-valuemax={100} aria-valuenow={percent} data-testid="upload-progress">
            <div class="progress-bar" style={{ width: `${percent}%` }} />
          </div>
        )}
        {a.error && (
          <div class="attachment-error" role="alert" data-testid="upload-error">
            Couldn't send it: {a.error}
          </div>
        )}
      </div>
      <button class="icon-btn small" aria-label={uploading ? 'Cancel the upload' : 'Remove the attachment'} title={uploading ? 'Cancel' : 'Remove'} data-testid="attachment-remove" onClick={props.onRemove}>
        <CloseIcon />
      </button>
    </div>
  );
}
