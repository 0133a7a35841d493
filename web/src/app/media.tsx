// Files in messages: a photo inline (full size in a viewer), a video or a
// sound with the browser's controls, any other file as a card with a
// Download button; and the file chosen in the composer, with its upload's
// progress. The bytes come through the store's BlobCache as blob: URLs
// (the download route needs the token), each revoked when its element goes.

import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { createPortal } from 'preact/compat';
import { HarkError, type MediaKind, type MediaRef } from '../hark-client';
import type { AppStore, Attachment } from './store';
import { CloseIcon, DownloadIcon, FileIcon, PlayIcon } from './ui';

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

/** A message with a file in one line (the chat list, quotes): "📷 Photo", "📄 report.pdf", "📷 its caption". */
export function mediaLabel(media: MediaRef, caption: string): string {
  const what = caption.trim() ? caption : media.kind === 'file' ? media.name || NOUNS.file : NOUNS[media.kind];
  return `${ICONS[media.kind]} ${what}`;
}

/** A message's text in one line: its text, or for a file its label. */
export function summaryOf(m: { text: string; media?: MediaRef | null }): string {
  return m.media ? mediaLabel(m.media, m.text) : m.text;
}

/** How wide a message's file is drawn (its bubble takes this width plus its padding). */
export function mediaWidth(media: MediaRef): number {
  return media.kind === 'image' ? photoBox(media).width : CARD_WIDTH;
}

/** A photo's box: its own aspect ratio within the limits (beyond them it is cropped to fit). */
function photoBox(media: MediaRef): { width: number; height: number } {
  const w = media.width || 4;
  const h = media.height || 3;
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
 * A blob: URL of the file's bytes while the calling element is mounted
 * (`enabled` false: not fetched yet). Bytes already at hand give the URL in
 * the first render, so a sent photo does not flash a placeholder.
 */
export function useBlobUrl(store: AppStore, media: MediaRef, enabled = true) {
  const [state, setState] = useState(() => {
    const ready = enabled ? store.blobs.ready(media.id) : undefined;
    return { id: media.id, url: ready ? URL.createObjectURL(ready) : null, error: null as string | null };
  });
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    if (!enabled) return;
    let live = true;
    let made = state.id === media.id ? state.url : null;
    if (!made) {
      store.blobs.get(media).then(
        (blob) => {
          if (!live) return;
          made = URL.createObjectURL(blob);
          setState({ id: media.id, url: made, error: null });
        },
        (e) => {
          if (live) setState({ id: media.id, url: null, error: reasonOf(e) });
        },
      );
    }
    return () => {
      live = false;
      if (made) URL.revokeObjectURL(made);
    };
  }, [media.id, enabled, attempt]);
  const current = state.id === media.id ? state : { url: null, error: null };
  return {
    url: current.url,
    error: current.error,
    retry: () => {
      setState({ id: media.id, url: null, error: null });
      setAttempt((n) => n + 1);
    },
  };
}

/** Save the file under its name, as a browser download. */
async function saveFile(store: AppStore, media: MediaRef): Promise<void> {
  const blob = await store.blobs.get(media);
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = nameOf(media);
  a.rel = 'noopener';
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  a.remove();
  // The download has taken the bytes by then.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** The file a message carries, as its bubble shows it. */
export function MessageMedia(props: { store: AppStore; media: MediaRef; tabbable: boolean }) {
  switch (props.media.kind) {
    case 'image':
      return <Photo {...props} />;
    case 'video':
    case 'audio':
      return <Playable {...props} />;
    default:
      return <FileCard {...props} />;
  }
}

function Photo(props: { store: AppStore; media: MediaRef; tabbable: boolean }) {
  const { store, media } = props;
  const { url, error, retry } = useBlobUrl(store, media);
  const [viewing, setViewing] = useState(false);
  const box = photoBox(media);
  const name = nameOf(media);
  return (
    <div class="media-photo" style={{ aspectRatio: `${box.width} / ${box.height}` }} data-testid="media-photo">
      {url ? (
        <button class="media-photo-open" tabIndex={props.tabbable ? 0 : -1} aria-label={`Open photo ${name}`} data-testid="media-open" onClick={(e) => { e.stopPropagation(); setViewing(true); }}>
          <img src={url} alt={name} data-testid="media-image" />
        </button>
      ) : error ? (
        <button class="media-retry" tabIndex={props.tabbable ? 0 : -1} data-testid="media-retry" onClick={(e) => { e.stopPropagation(); retry(); }}>
          {error} · Retry
        </button>
      ) : (
        <span class="media-loading" role="img" aria-label="Loading photo" />
      )}
      {viewing && url && <PhotoViewer store={store} media={media} url={url} onClose={() => setViewing(false)} />}
    </div>
  );
}

/** A photo full size over everything: Escape, a click or the close button closes it. */
function PhotoViewer(props: { store: AppStore; media: MediaRef; url: string; onClose: () => void }) {
  const box = useRef<HTMLDivElement>(null);
  const name = nameOf(props.media);
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
      <img class="viewer-image" src={props.url} alt={name} data-testid="media-viewer-image" />
    </div>,
    document.body,
  );
}

/** A video or a sound: the browser's own player, once its bytes are here. */
function Playable(props: { store: AppStore; media: MediaRef; tabbable: boolean }) {
  const { store, media } = props;
  const video = media.kind === 'video';
  const [asked, setAsked] = useState(false);
  // The browser cannot play it (a format it lacks, or a page policy that
  // refuses blob: media): it can still be saved.
  const [unplayable, setUnplayable] = useState(false);
  const { url, error, retry } = useBlobUrl(store, media, !unplayable && (asked || media.size <= AUTOLOAD_BYTES));
  const what = video ? 'video' : 'audio';
  if (unplayable) return <FileCard {...props} note="can't be played here" />;
  if (url) {
    const common = {
      controls: true,
      preload: 'metadata' as const,
      autoplay: asked,
      src: url,
      tabIndex: props.tabbable ? 0 : -1,
      onError: () => setUnplayable(true),
    };
    return video ? <video class="media-video" {...common} data-testid="media-video" /> : <audio class="media-audio" {...common} data-testid="media-audio" />;
  }
  const loading = (asked || media.size <= AUTOLOAD_BYTES) && !error;
  return (
    <button
      class={`media-play ${video ? 'video' : 'audio'}`}
      tabIndex={props.tabbable ? 0 : -1}
      aria-label={error ? `${error}: retry the ${what}` : `Play the ${what}, ${humanSize(media.size)}`}
      data-testid="media-play"
      disabled={loading}
      onClick={(e) => {
        e.stopPropagation();
        if (error) retry();
        setAsked(true);
      }}
    >
      <span class="media-play-icon">{loading ? <span class="spinner" aria-hidden="true" /> : <PlayIcon />}</span>
      <span class="media-play-text">{error ?? (loading ? `Loading ${what}…` : `${video ? 'Video' : 'Audio'} · ${humanSize(media.size)}`)}</span>
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
          <FileIcon size={28} />
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
